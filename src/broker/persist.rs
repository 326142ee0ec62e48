//! What the broker stages in the store during a turn, and what it loads back at start.
//!
//! Only what must survive a restart is written: retained messages, sessions with a
//! non-zero expiry (their subscriptions, queued and in-flight QoS 1/2 messages, inbound
//! QoS 2 ids), and client records. Writes are staged here; `commit.rs` hands them to the
//! store writer and holds back the acknowledgements until they are durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock;

use super::commit::Batches;
use super::Broker;
use crate::core::keys::SessionKey;
use crate::core::message::{ForwardedProperties, Message};
use crate::core::session::{DiskTail, Inflight, InflightState, Outbound, Session, SubEntry, Will};
use crate::core::timers::Timer;
use crate::protocol::{self, PacketId, Properties, Qos, SubscriptionOptions};
use crate::store::{Store, StoreError, StoredMessage, StoredSession, Write, Writer};
use crate::topic::parse_shared;

/// Queue row states, as the store keeps them.
const QUEUED: u8 = 0;
const PUBLISHED: u8 = 1;
const RELEASED: u8 = 2;

/// How long client records may wait for a commit: they ride along with the next commit
/// of anything else, or get one of their own this long after the first of them.
const RECORD_DELAY: Duration = Duration::from_secs(1);

/// The database, what is staged in it, and the writer that commits it.
pub struct Db {
    /// The loop's own connection (start-up loads, queue pages) and the staged writes.
    pub store: Store,
    /// The thread that commits the staged batches (`commit.rs`).
    pub writer: Writer,
    /// Which batch is staged, handed over, durable; who waits for which.
    pub batches: Batches,
    /// Last message id handed out in the store.
    next_message_id: u64,
}

impl Db {
    pub fn new(store: Store, writer: Writer) -> Db {
        Db {
            store,
            writer,
            batches: Batches::default(),
            next_message_id: 0,
        }
    }

    /// Stages the message body once per batch and returns its store id.
    fn stage_message(&mut self, message: &Arc<Message>, now: Instant) -> u64 {
        let id = *message.store_id.get_or_init(|| {
            self.next_message_id += 1;
            self.next_message_id
        });
        if !self.store.stages_body(id) {
            let msg = stored_message(message, now);
            self.store.stage(Write::MessagePut { id, msg });
        }
        id
    }
}

impl Broker {
    /// Records a queue entry of a persistent session (new, sent, or released); `created`
    /// says the entry is new, so that its acknowledgement within the batch undoes it.
    pub(super) fn stage_queue(
        &mut self,
        session: SessionKey,
        outbound: &Outbound,
        packet_id: Option<PacketId>,
        state: InflightState,
        created: bool,
        now: Instant,
    ) {
        let (Some(seq), true) = (outbound.seq, self.sessions[session].stored) else {
            return;
        };
        let message_id = self.db.stage_message(&outbound.message, now);
        let state = match (packet_id, state) {
            (None, _) => QUEUED,
            (Some(_), InflightState::Published) => PUBLISHED,
            (Some(_), InflightState::Released) => RELEASED,
        };
        let put = Write::QueuePut {
            client_id: self.sessions[session].client_id.to_string(),
            seq,
            message_id,
            qos: outbound.qos as u8,
            packet_id: packet_id.map(|p| p.get()),
            state,
        };
        if created {
            self.db.store.stage_new_row(put);
        } else {
            self.db.store.stage(put);
        }
    }

    /// Forgets a queue entry that was delivered, refused or dropped.
    pub(super) fn stage_dequeue(&mut self, session: SessionKey, outbound: &Outbound) {
        let s = &self.sessions[session];
        if let (Some(seq), true) = (outbound.seq, s.stored) {
            self.db.store.stage(Write::QueueDelete {
                client_id: s.client_id.to_string(),
                seq,
            });
        }
    }

    /// Writes the session row (and, the first time, everything in it).
    pub(super) fn stage_session(
        &mut self,
        session: SessionKey,
        disconnected_at: Option<i64>,
        now: Instant,
    ) {
        let s = &self.sessions[session];
        if s.expiry_interval == 0 {
            if s.stored {
                // Its rows go: what waits on disk comes into memory first.
                self.unspill_queue(session, now);
                let s = &mut self.sessions[session];
                s.stored = false;
                self.db.store.stage(Write::SessionDelete {
                    client_id: s.client_id.to_string(),
                });
            }
            return;
        }
        let s = &mut self.sessions[session];
        let first_time = !s.stored;
        s.stored = true;
        self.db.store.stage(Write::SessionPut {
            client_id: s.client_id.to_string(),
            expiry_interval: s.expiry_interval,
            username: s.username.as_deref().map(String::from),
            disconnected_at,
        });
        if first_time {
            self.stage_session_contents(session, now);
        }
    }

    /// Everything a session holds, for a session that becomes persistent while it
    /// already has state (a takeover that raises the expiry from 0).
    fn stage_session_contents(&mut self, session: SessionKey, now: Instant) {
        let s = &self.sessions[session];
        let client_id = s.client_id.to_string();
        let subs: Vec<(String, SubEntry)> = s
            .subscriptions()
            .map(|(f, e)| (f.to_string(), *e))
            .collect();
        for (filter, entry) in subs {
            self.db
                .store
                .stage(subscription_put(&client_id, filter, entry));
        }
        for id in self.sessions[session].flight().incoming_qos2.clone() {
            self.db.store.stage(Write::Qos2Received {
                client_id: client_id.clone(),
                packet_id: id,
            });
        }
        let mut entries: Vec<(Outbound, Option<PacketId>, InflightState)> = Vec::new();
        let s = &mut self.sessions[session];
        let mut next_seq = s.next_seq;
        let flight = s.flight_mut();
        for i in flight.inflight.iter_mut() {
            i.outbound.seq = Some(next_seq);
            next_seq += 1;
            entries.push((i.outbound.clone(), Some(i.packet_id), i.state));
        }
        for o in flight.queue.iter_mut() {
            o.seq = Some(next_seq);
            next_seq += 1;
            entries.push((o.clone(), None, InflightState::Published));
        }
        s.next_seq = next_seq;
        s.settle();
        self.back_queue(session);
        for (outbound, packet_id, state) in entries {
            self.stage_queue(session, &outbound, packet_id, state, true, now);
        }
    }

    /// Records the will of a persistent session, or that it has none (any more).
    pub(super) fn stage_will(&mut self, session: SessionKey, now: Instant) {
        let s = &self.sessions[session];
        if !s.stored {
            return;
        }
        let client_id = s.client_id.to_string();
        self.db.store.stage(match &s.will {
            Some(will) => Write::WillPut {
                client_id,
                msg: stored_message(&will.message, now),
                delay: will.delay,
            },
            None => Write::WillDelete { client_id },
        });
    }

    pub(super) fn stage_session_delete(&mut self, session: &Session) {
        if session.stored {
            self.db.store.stage(Write::SessionDelete {
                client_id: session.client_id.to_string(),
            });
        }
    }

    pub(super) fn stage_subscription(
        &mut self,
        session: SessionKey,
        filter: &str,
        entry: Option<SubEntry>,
    ) {
        let s = &self.sessions[session];
        if !s.stored {
            return;
        }
        let client_id = s.client_id.to_string();
        self.db.store.stage(match entry {
            Some(entry) => subscription_put(&client_id, filter.to_string(), entry),
            None => Write::SubscriptionDelete {
                client_id,
                filter: filter.to_string(),
            },
        });
    }

    pub(super) fn stage_qos2(&mut self, session: SessionKey, packet_id: u16, received: bool) {
        let s = &self.sessions[session];
        if !s.stored {
            return;
        }
        let client_id = s.client_id.to_string();
        self.db.store.stage(if received {
            Write::Qos2Received {
                client_id,
                packet_id,
            }
        } else {
            Write::Qos2Released {
                client_id,
                packet_id,
            }
        });
    }

    pub(super) fn stage_retained(&mut self, message: &Arc<Message>, now: Instant) {
        self.db.store.stage(if message.payload.is_empty() {
            Write::RetainClear {
                topic: message.topic.to_string(),
            }
        } else {
            Write::RetainSet(stored_message(message, now))
        });
    }

    /// Stages a client record (last connect or disconnect) without making this turn's
    /// replies wait for it: a clean-session CONNACK promises nothing that is on disk.
    pub(super) fn stage_record(&mut self, record: Write, now: Instant) {
        if self.db.store.stage_record(record) {
            self.timers
                .schedule(now + RECORD_DELAY, Timer::ClientRecords);
        }
    }

    /// Loads retained messages and persistent sessions at start.
    pub(super) fn load(&mut self, now: Instant) -> Result<(), StoreError> {
        let unix = clock::unix_seconds();
        let purged = self.db.store.purge_expired(unix)?;
        if purged > 0 {
            log::info!("{purged} expired messages removed from the store");
        }
        for stored in self.db.store.load_retained()? {
            let message = loaded_message(&stored, now);
            self.retained.insert(&message.topic.clone(), message);
        }
        self.access.acl_rules = Arc::new(self.db.store.list_acl_rules()?);
        self.access.bans = self.db.store.list_bans()?;
        self.db.next_message_id = self.db.store.max_message_id()?;
        let mut bodies: HashMap<u64, Arc<Message>> = HashMap::new();
        for (id, stored) in self.db.store.load_inflight_messages()? {
            let message = loaded_message(&stored, now);
            let _ = message.store_id.set(id);
            bodies.insert(id, message);
        }
        let sessions = self.db.store.load_sessions()?;
        let count = sessions.len();
        for stored in sessions {
            self.restore_session(stored, &bodies, now, unix);
        }
        log::info!(
            "store loaded: {} retained messages, {} sessions, {} queued messages",
            self.retained.len(),
            count,
            self.budget.messages
        );
        Ok(())
    }

    fn restore_session(
        &mut self,
        stored: StoredSession,
        bodies: &HashMap<u64, Arc<Message>>,
        now: Instant,
        unix: i64,
    ) {
        let client_id: Arc<str> = stored.client_id.as_str().into();
        let mut session = Session::new(client_id.clone(), stored.expiry_interval);
        session.stored = true;
        session.acl = self
            .access
            .acl_for(&self.config, stored.username.as_deref(), &client_id);
        session.username = stored.username.map(String::into_boxed_str);
        if !stored.qos2_received.is_empty() {
            session
                .flight_mut()
                .incoming_qos2
                .extend(stored.qos2_received);
        }
        let mut subs = Vec::new();
        for sub in stored.subscriptions {
            let Some(options) = SubscriptionOptions::from_byte(sub.options) else {
                continue;
            };
            let entry = SubEntry {
                options,
                identifier: sub.identifier,
            };
            session.subscribe(&sub.filter, entry);
            subs.push((sub.filter, entry));
        }
        for row in stored.queue {
            let Some(message) = bodies.get(&row.message_id) else {
                continue;
            };
            let outbound = Outbound {
                message: message.clone(),
                qos: Qos::from_u8(row.qos).unwrap_or(Qos::AtLeastOnce),
                retain: false,
                subscription_ids: Vec::new(),
                seq: Some(row.seq),
            };
            session.next_seq = session.next_seq.max(row.seq + 1);
            let Some(packet_id) = row.packet_id.and_then(PacketId::new) else {
                continue;
            };
            session.flight_mut().inflight.push_back(Inflight {
                packet_id,
                state: if row.state == RELEASED {
                    InflightState::Released
                } else {
                    InflightState::Published
                },
                outbound,
            });
        }
        if stored.queued > 0 {
            // The queue stays on disk; it is paged in as the client takes it.
            session.next_seq = session.next_seq.max(stored.queued_last_seq + 1);
            let flight = session.flight_mut();
            flight.disk = DiskTail {
                count: stored.queued,
                bytes: stored.queued_bytes,
                after_seq: 0,
            };
            flight.queued_bytes = stored.queued_bytes;
            self.budget.messages += stored.queued;
            self.budget.disk_bytes += stored.queued_bytes;
        }
        if let Some((will, delay)) = &stored.will {
            session.will = Some(Box::new(Will {
                message: loaded_message(will, now),
                delay: *delay,
            }));
        }
        let generation = self.next_generation();
        session.generation = generation;
        let expiry = session.expiry_interval;
        let key = self.sessions.insert(session);
        self.session_ids.insert(key, &self.sessions);
        for (filter, entry) in subs {
            let plain = match parse_shared(&filter) {
                Some(Ok(shared)) => {
                    self.trie
                        .subscribe(shared.filter, Some(shared.group), key, entry);
                    shared.filter
                }
                _ => {
                    self.trie.subscribe(&filter, None, key, entry);
                    &filter
                }
            };
            self.sys_wanted(plain, now);
        }
        // A broker that stopped while the client was connected: count from now.
        let since = stored
            .disconnected_at
            .map_or(0, |at| (unix - at).max(0) as u64);
        if let Some(delay) = stored.will.as_ref().map(|(_, delay)| (*delay).min(expiry)) {
            // Published when its delay runs out (at once if it has), unless the client
            // comes back first.
            let left = u64::from(delay).saturating_sub(since);
            self.timers.schedule(
                now + Duration::from_secs(left),
                Timer::WillDelay {
                    session: key,
                    generation,
                },
            );
        }
        if expiry != u32::MAX {
            let left = u64::from(expiry).saturating_sub(since);
            self.timers.schedule(
                now + Duration::from_secs(left),
                Timer::SessionExpiry {
                    session: key,
                    generation,
                },
            );
        }
    }
}

fn subscription_put(client_id: &str, filter: String, entry: SubEntry) -> Write {
    Write::SubscriptionPut {
        client_id: client_id.to_string(),
        filter,
        options: entry.options.to_byte(),
        identifier: entry.identifier,
    }
}

/// The store's copy of a message: properties as an MQTT 5 property block.
fn stored_message(message: &Message, now: Instant) -> StoredMessage {
    let p = &message.properties;
    let user_properties = p
        .user_properties
        .iter()
        .map(|(k, v)| (&**k, &**v))
        .collect();
    let props = Properties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.as_deref(),
        response_topic: p.response_topic.as_deref(),
        correlation_data: p.correlation_data.as_deref(),
        user_properties,
        ..Properties::default()
    };
    let mut properties = Vec::new();
    protocol::write_properties(&props, &mut properties);
    StoredMessage {
        topic: message.topic.to_string(),
        payload: message.payload.to_vec(),
        qos: message.qos as u8,
        retain: message.retain,
        properties,
        expires_at: message
            .expires_at
            // Rounded down: a message read back expires a fraction early, never late.
            .map(|at| {
                (clock::unix_precise() + at.saturating_duration_since(now).as_secs_f64()) as i64
            }),
    }
}

/// A stored message back in memory; its expiry is reckoned against the clock now, to the
/// fraction of a second.
pub(super) fn loaded_message(stored: &StoredMessage, now: Instant) -> Arc<Message> {
    let unix = clock::unix_precise();
    let properties = protocol::read_publish_properties(&stored.properties)
        .map(|p| ForwardedProperties::copy_from(&p))
        .unwrap_or_default();
    Arc::new(Message {
        topic: stored.topic.as_str().into(),
        payload: stored.payload.as_slice().into(),
        qos: Qos::from_u8(stored.qos).unwrap_or(Qos::AtMostOnce),
        retain: stored.retain,
        properties,
        expires_at: stored
            .expires_at
            .map(|at| now + Duration::from_secs_f64((at as f64 - unix).max(0.0))),
        publisher: None,
        store_id: Default::default(),
    })
}
