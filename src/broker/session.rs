//! A session: what the broker keeps for a client id across connections — subscriptions,
//! the offline queue, in-flight messages in both directions, and the will.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU16;
use std::sync::Arc;

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

#[derive(Debug)]
pub struct Session {
    /// Shared with the connection and the `session_ids` key: one allocation per client.
    pub client_id: Arc<str>,
    /// Slab key of the connection that owns the session now; `None` while offline.
    pub connection: Option<usize>,
    /// Seconds the session outlives its connection; `u32::MAX` never expires.
    pub expiry_interval: u32,
    /// Filter (with any `$share/group/` prefix) → options; mirrors the trie for this session.
    pub subscriptions: HashMap<Box<str>, SubEntry>,
    /// Messages not yet sent: offline, or beyond the client's Receive Maximum.
    pub queue: VecDeque<Outbound>,
    /// Sent QoS 1/2 messages not yet fully acknowledged, oldest first.
    pub inflight: VecDeque<Inflight>,
    /// Inbound QoS 2 packet ids whose PUBREC went out and whose PUBREL has not come yet
    /// (a few at most: bounded by our Receive Maximum).
    pub incoming_qos2: Vec<u16>,
    pub will: Option<Will>,
    /// The user who owns the session, kept for ACL checks and the store.
    pub username: Option<String>,
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
            subscriptions: HashMap::new(),
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            incoming_qos2: Vec::new(),
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
                if !self.inflight.iter().any(|i| i.packet_id == id) {
                    return id;
                }
            }
        }
    }

    /// Removes the in-flight entry with `packet_id` in `state`, if any.
    pub fn take_inflight(&mut self, packet_id: PacketId, state: InflightState) -> Option<Inflight> {
        let pos = self
            .inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.state == state)?;
        self.inflight.remove(pos)
    }
}
