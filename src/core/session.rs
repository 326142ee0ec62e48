//! A session: what the broker keeps for a client id across connections — subscriptions,
//! the offline queue, in-flight messages in both directions, and the will.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Instant;

use super::keys::ConnKey;
use super::message::Message;
use crate::auth::acl::ClientAcl;
use crate::protocol::{PacketId, Qos, SubscriptionOptions};

/// One subscription of a session, as stored in the trie and in `Session::subscriptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubEntry {
    pub options: SubscriptionOptions,
    /// The MQTT 5 Subscription Identifier, attached to every matching delivery.
    pub identifier: Option<u32>,
}

/// A message waiting for this session, with the QoS and flags of its delivery.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub message: Arc<Message>,
    pub qos: Qos,
    pub retain: bool,
    /// Identifiers of every matching subscription (usually none or one).
    pub subscription_ids: Vec<u32>,
    /// Its row in the store's queue of this session; `None` when not persisted.
    pub seq: Option<u64>,
}

/// Where an outbound QoS 1/2 message stands in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: PacketId,
    pub state: InflightState,
    pub outbound: Outbound,
}

/// The will of the current (or last) connection.
#[derive(Debug, Clone)]
pub struct Will {
    pub message: Arc<Message>,
    /// Seconds to wait after the connection drops before publishing (MQTT 5).
    pub delay: u32,
}

/// The part of a persistent session's queue that is on disk only: queued rows (state 0)
/// after `after_seq`, all of them later than anything in the memory queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskTail {
    pub count: usize,
    /// Their topic and payload bytes.
    pub bytes: usize,
    /// Rows up to this seq are in memory, in flight or gone; the next page starts after it.
    pub after_seq: u64,
}

/// Messages and packet ids in transit, in both directions.
#[derive(Debug, Default)]
pub struct Flight {
    /// Messages not yet sent, in memory: a clean session's whole queue, or the page of a
    /// persistent session's queue that is being delivered.
    pub queue: VecDeque<Outbound>,
    /// The rest of a persistent session's queue, on disk only (after `queue`).
    pub disk: DiskTail,
    /// Topic and payload bytes of the whole queue (memory and disk), for `max_queued_bytes`.
    pub queued_bytes: usize,
    /// Sent QoS 1/2 messages not yet fully acknowledged, oldest first.
    pub inflight: VecDeque<Inflight>,
    /// Inbound QoS 2 packet ids whose PUBREC went out and whose PUBREL has not come yet
    /// (a few at most: bounded by our Receive Maximum).
    pub incoming_qos2: Vec<u16>,
    /// Publishers held back because this queue is full, as (connection, serial), in the
    /// order they came: released in that order as it drains.
    pub waiting: Vec<(ConnKey, u64)>,
    /// Since when this session has kept publishers waiting, for `slow_consumer_timeout`.
    pub holding_since: Option<Instant>,
    /// Set once it kept publishers waiting past `slow_consumer_timeout` and could not be
    /// relieved by a disconnect: new messages for it are dropped until it has room again.
    pub overflowing: bool,
}

impl Flight {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
            && self.disk.count == 0
            && self.inflight.is_empty()
            && self.incoming_qos2.is_empty()
            && self.waiting.is_empty()
            && !self.overflowing
    }

    /// Messages queued, in memory and on disk.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.disk.count
    }
}

/// What `Session::flight` shows while nothing is in transit.
static NO_FLIGHT: Flight = Flight {
    queue: VecDeque::new(),
    disk: DiskTail {
        count: 0,
        bytes: 0,
        after_seq: 0,
    },
    queued_bytes: 0,
    inflight: VecDeque::new(),
    incoming_qos2: Vec::new(),
    waiting: Vec::new(),
    holding_since: None,
    overflowing: false,
};

#[derive(Debug)]
pub struct Session {
    /// Shared with the connection (the session index hashes it in place): one
    /// allocation per client.
    pub client_id: Arc<str>,
    /// The connection that owns the session now; `None` while offline.
    connection: Option<ConnKey>,
    /// Seconds the session outlives its connection; `u32::MAX` never expires.
    pub expiry_interval: u32,
    /// Filter (with any `$share/group/` prefix) → options; mirrors the trie for this session.
    /// Boxed, made by the first subscription and dropped with the last: an empty map
    /// would still take 48 bytes in every session.
    // The box is the point: 8 bytes in every session instead of a `HashMap`'s 48.
    #[allow(clippy::box_collection)]
    subscriptions: Option<Box<HashMap<Box<str>, SubEntry>>>,
    /// Boxed, made on first use and dropped once empty again: most sessions have nothing
    /// in transit most of the time. Emptied only through the methods below.
    flight: Option<Box<Flight>>,
    /// Boxed: few clients set a will, and it is only read when the connection ends.
    pub will: Option<Box<Will>>,
    /// The user who owns the session, kept for ACL checks and the store.
    pub username: Option<Box<str>>,
    /// The topic rules of this client, fixed when it connects; shared between clients
    /// whose rules are the same (all anonymous clients, usually).
    pub acl: Arc<ClientAcl>,
    /// Messages dropped for this session because its queue was full (for the log).
    pub dropped: u64,
    /// True once the session has a row in the store (it has a non-zero expiry).
    pub stored: bool,
    /// Queue sequence number for the next persisted message.
    pub next_seq: u64,
    /// Renewed whenever the session is attached or detached, so timers set for an earlier
    /// state (will delay, expiry) can tell they are stale.
    pub generation: u64,
    next_packet_id: u16,
}

impl Session {
    pub fn new(client_id: Arc<str>, expiry_interval: u32) -> Session {
        Session {
            client_id,
            connection: None,
            expiry_interval,
            subscriptions: None,
            flight: None,
            will: None,
            username: None,
            acl: Arc::default(),
            stored: false,
            dropped: 0,
            next_seq: 1,
            generation: 0,
            next_packet_id: 1,
        }
    }

    /// The next packet id not used by an in-flight message. The caller guarantees fewer
    /// than 65535 messages in flight (Receive Maximum is at most 65535).
    pub fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Some(id) = NonZeroU16::new(id) {
                if !self.flight().inflight.iter().any(|i| i.packet_id == id) {
                    return id;
                }
            }
        }
    }

    /// The connection that owns the session now; `None` while offline.
    pub fn connection(&self) -> Option<ConnKey> {
        self.connection
    }

    pub fn set_connection(&mut self, token: Option<ConnKey>) {
        self.connection = token;
    }

    /// Every subscription: filter and options.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, &SubEntry)> {
        self.subscriptions
            .iter()
            .flat_map(|subs| subs.iter().map(|(f, e)| (&**f, e)))
    }

    /// How many subscriptions, for `max_subscriptions_per_client`.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.as_ref().map_or(0, |subs| subs.len())
    }

    /// True when subscribed to exactly `filter` (a resubscription replaces it).
    pub fn is_subscribed(&self, filter: &str) -> bool {
        self.subscriptions
            .as_ref()
            .is_some_and(|subs| subs.contains_key(filter))
    }

    /// Adds or replaces the subscription to `filter`.
    pub fn subscribe(&mut self, filter: &str, entry: SubEntry) {
        let subs = self.subscriptions.get_or_insert_with(Box::default);
        subs.insert(filter.into(), entry);
    }

    /// Removes the subscription to `filter`; false if there was none.
    pub fn unsubscribe(&mut self, filter: &str) -> bool {
        let Some(subs) = self.subscriptions.as_mut() else {
            return false;
        };
        let existed = subs.remove(filter).is_some();
        if subs.is_empty() {
            self.subscriptions = None;
        }
        existed
    }

    /// What is in transit (nothing, without allocating, while there is nothing).
    pub fn flight(&self) -> &Flight {
        self.flight.as_deref().unwrap_or(&NO_FLIGHT)
    }

    /// What is in transit, to add to.
    pub fn flight_mut(&mut self) -> &mut Flight {
        self.flight.get_or_insert_with(Box::default)
    }

    /// Drops the flight once nothing is left in it (also for callers of `flight_mut`
    /// that may have found nothing to change).
    pub fn settle(&mut self) {
        if self.flight.as_ref().is_some_and(|f| f.is_empty()) {
            self.flight = None;
        }
    }

    /// Removes the in-flight entry with `packet_id` in `state`, if any.
    pub fn take_inflight(&mut self, packet_id: PacketId, state: InflightState) -> Option<Inflight> {
        let pos = self
            .flight()
            .inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.state == state)?;
        self.remove_inflight(pos)
    }

    /// Removes the in-flight entry at `pos`.
    pub fn remove_inflight(&mut self, pos: usize) -> Option<Inflight> {
        let done = self.flight.as_mut()?.inflight.remove(pos);
        self.settle();
        done
    }

    /// Forgets an inbound QoS 2 packet id (its PUBREL came); false if it was unknown.
    pub fn remove_incoming_qos2(&mut self, id: u16) -> bool {
        let Some(flight) = self.flight.as_mut() else {
            return false;
        };
        let position = flight.incoming_qos2.iter().position(|&i| i == id);
        let known = position
            .map(|i| flight.incoming_qos2.swap_remove(i))
            .is_some();
        self.settle();
        known
    }
}
