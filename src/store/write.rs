//! The writes the broker stages during a loop turn, and the turn's one
//! transaction they are applied in (see [`super::Store::commit`]); also the
//! start-up purge of what expired, the other transaction over several table
//! groups. Each write is handed to the file of its table group, which holds
//! its SQL: `retained.rs`, `sessions.rs`, `queues.rs`, `clients.rs`,
//! `chat.rs` and `bridge.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use rusqlite::{Connection, Row, Transaction, TransactionBehavior};

use super::{bridge, chat, clients, queues, retained, sessions, Store, StoreError};

/// A message as it is kept on disk: owned, because it outlives the read
/// buffer it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Where it was published; subscribers are matched against it.
    pub topic: String,
    /// The application bytes, delivered unchanged.
    pub payload: Vec<u8>,
    /// The QoS it was published with; delivery uses the lower of this and the
    /// subscription's.
    pub qos: u8,
    /// Whether it was published with RETAIN, which some subscribers keep
    /// (retain-as-published). Always true for retained messages on load.
    pub retain: bool,
    /// The encoded MQTT 5 property block, forwarded as it came; the store does
    /// not look inside.
    pub properties: Vec<u8>,
    /// Unix seconds after which it must not be delivered (message expiry).
    pub expires_at: Option<i64>,
}

impl Write {
    /// True for the writes of the MQTT publish flow (message bodies, queue rows, retained
    /// messages, QoS 2 state, bridge queues), which a sensor's trickle makes many of and
    /// which wait for the commit window; false for the rest (sessions, subscriptions,
    /// wills, chat, client records), which someone waits on at a person's pace and which
    /// are committed at once.
    pub fn is_publish_flow(&self) -> bool {
        matches!(
            self,
            Write::RetainSet(_)
                | Write::RetainClear { .. }
                | Write::MessagePut { .. }
                | Write::QueuePut { .. }
                | Write::QueueDelete { .. }
                | Write::Qos2Received { .. }
                | Write::Qos2Released { .. }
                | Write::Bridge(_)
        )
    }
}

impl StoredMessage {
    /// Reads a message from the columns topic, payload, qos, retain,
    /// properties, expires_at starting at `first`.
    pub(super) fn from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<StoredMessage> {
        Ok(StoredMessage {
            topic: r.get(first)?,
            payload: r.get(first + 1)?,
            qos: r.get(first + 2)?,
            retain: r.get(first + 3)?,
            properties: r.get(first + 4)?,
            expires_at: r.get(first + 5)?,
        })
    }
}

/// One change to durable state, staged with [`super::Store::stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    // Retained messages (`store::retained`).
    /// Sets the retained message of `msg.topic`.
    RetainSet(StoredMessage),
    /// Removes the retained message of `topic` (empty retained publish).
    RetainClear {
        /// The topic whose retained message goes.
        topic: String,
    },

    // Sessions and what belongs to them (`store::sessions`).
    /// Creates or updates a persistent session.
    SessionPut {
        /// Whose session.
        client_id: String,
        /// Seconds the session outlives a disconnect.
        expiry_interval: u32,
        /// Who owns it, so a reconnect under another user can be refused.
        username: Option<String>,
        /// Unix seconds of the disconnect; `None` while connected. With the
        /// interval it gives the session's expiry after a restart.
        disconnected_at: Option<i64>,
    },
    /// Deletes a session with its subscriptions, queue and inbound QoS 2 ids.
    SessionDelete {
        /// Whose session.
        client_id: String,
    },
    /// Creates or replaces a subscription of a session.
    SubscriptionPut {
        /// Whose subscription.
        client_id: String,
        /// The full filter text, `$share/group/` prefix included.
        filter: String,
        /// The MQTT 5 subscription options byte (QoS, no-local,
        /// retain-as-published, retain handling).
        options: u8,
        /// The subscription identifier sent back with matching messages.
        identifier: Option<u32>,
    },
    /// Removes a subscription of a session.
    SubscriptionDelete {
        /// Whose subscription.
        client_id: String,
        /// The full filter text, as put.
        filter: String,
    },
    /// An inbound QoS 2 PUBLISH was received: a resend with this id must not
    /// be delivered again until it is released.
    Qos2Received {
        /// Who sent it.
        client_id: String,
        /// Its packet id.
        packet_id: u16,
    },
    /// The PUBREL for an inbound QoS 2 packet id arrived; the id is free again.
    Qos2Released {
        /// Who sent it.
        client_id: String,
        /// Its packet id.
        packet_id: u16,
    },
    /// Sets the will of a persistent session (replacing any earlier one).
    WillPut {
        /// Whose will.
        client_id: String,
        /// The will message.
        msg: StoredMessage,
        /// Its Will Delay Interval, in seconds, counted from the session's
        /// `disconnected_at`.
        delay: u32,
    },
    /// Removes the will of a session (published, cancelled or replaced by none).
    WillDelete {
        /// Whose will.
        client_id: String,
    },

    // Message bodies and session queues (`store::queues`).
    /// Stores a message body once for every queue row that will reference it.
    /// A body that no queue row references when the commit ends is deleted.
    MessagePut {
        /// The broker's id for the body, referenced by [`Write::QueuePut`].
        id: u64,
        /// The body.
        msg: StoredMessage,
    },
    /// Creates or updates one row of a session's outbound queue. A row keeps
    /// its `message_id` for life; re-putting it with another fails the commit.
    QueuePut {
        /// Whose queue.
        client_id: String,
        /// Position in the queue; delivery order after a restart.
        seq: u64,
        /// The body, stored by an earlier or the same commit's [`Write::MessagePut`].
        message_id: u64,
        /// The QoS of this delivery (already downgraded to the subscription's).
        qos: u8,
        /// The packet id once the message was sent with QoS 1 or 2.
        packet_id: Option<u16>,
        /// 0 queued, 1 sent awaiting PUBACK/PUBREC, 2 PUBREL sent awaiting PUBCOMP.
        state: u8,
    },
    /// Removes one row of a session's outbound queue (delivered or dropped).
    QueueDelete {
        /// Whose queue.
        client_id: String,
        /// The row's position.
        seq: u64,
    },

    // Client records (`store::clients`).
    /// A client connected; recorded for the web pages.
    ClientConnected {
        /// Who connected: the session's own copy of the id, so a burst of connects
        /// allocates nothing per record that would stay behind as holes in the heap.
        client_id: Arc<str>,
        /// As authenticated, if any.
        username: Option<String>,
        /// The peer address (written as text).
        address: SocketAddr,
        /// The MQTT protocol level (4 for 3.1.1, 5 for 5.0).
        protocol: u8,
        /// Unix seconds.
        at: i64,
    },
    /// A client disconnected; recorded for the web pages.
    ClientDisconnected {
        /// Who disconnected.
        client_id: String,
        /// Unix seconds.
        at: i64,
        /// Why, in words (reason code name, timeout, error).
        reason: String,
    },

    // Services beside the broker.
    /// A chat room, message or like (see `store::chat`).
    Chat(chat::ChatWrite),
    /// A change to a bridge's forward queue (`store::bridge`).
    Bridge(bridge::BridgeWrite),
}

/// Applies `writes` in one transaction, then deletes the message bodies the
/// batch left unreferenced. On error the transaction is rolled back and the
/// rest of `writes` is dropped.
pub(super) fn apply_all(
    conn: &mut Connection,
    writes: impl Iterator<Item = Write>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Message ids whose last reference this batch may have removed.
    let mut maybe_orphaned = Vec::new();
    for w in writes {
        apply(&tx, &w, &mut maybe_orphaned)?;
    }
    queues::delete_orphans(&tx, &mut maybe_orphaned)?;
    tx.commit()?;
    Ok(())
}

/// Hands one write to its table group; pushes message ids it may have orphaned.
fn apply(tx: &Transaction<'_>, w: &Write, maybe_orphaned: &mut Vec<u64>) -> Result<(), StoreError> {
    match w {
        Write::RetainSet(msg) => retained::set(tx, msg),
        Write::RetainClear { topic } => retained::clear(tx, topic),
        Write::SessionPut {
            client_id,
            expiry_interval,
            username,
            disconnected_at,
        } => sessions::put(
            tx,
            client_id,
            *expiry_interval,
            username.as_deref(),
            *disconnected_at,
        ),
        Write::SessionDelete { client_id } => {
            queues::note_bodies_of(tx, client_id, maybe_orphaned)?;
            sessions::delete(tx, client_id)
        }
        Write::SubscriptionPut {
            client_id,
            filter,
            options,
            identifier,
        } => sessions::subscribe(tx, client_id, filter, *options, *identifier),
        Write::SubscriptionDelete { client_id, filter } => {
            sessions::unsubscribe(tx, client_id, filter)
        }
        Write::Qos2Received {
            client_id,
            packet_id,
        } => sessions::qos2_received(tx, client_id, *packet_id),
        Write::Qos2Released {
            client_id,
            packet_id,
        } => sessions::qos2_released(tx, client_id, *packet_id),
        Write::WillPut {
            client_id,
            msg,
            delay,
        } => sessions::put_will(tx, client_id, msg, *delay),
        Write::WillDelete { client_id } => sessions::delete_will(tx, client_id),
        Write::MessagePut { id, msg } => queues::put_message(tx, *id, msg, maybe_orphaned),
        Write::QueuePut {
            client_id,
            seq,
            message_id,
            qos,
            packet_id,
            state,
        } => queues::put(tx, client_id, *seq, *message_id, *qos, *packet_id, *state),
        Write::QueueDelete { client_id, seq } => {
            queues::delete(tx, client_id, *seq, maybe_orphaned)
        }
        Write::ClientConnected {
            client_id,
            username,
            address,
            protocol,
            at,
        } => clients::connected(tx, client_id, username.as_deref(), *address, *protocol, *at),
        Write::ClientDisconnected {
            client_id,
            at,
            reason,
        } => clients::disconnected(tx, client_id, *at, reason),
        Write::Chat(w) => chat::apply(tx, w),
        Write::Bridge(w) => bridge::apply(tx, w),
    }
}

impl Store {
    /// Deletes what expired before `now` (unix seconds): retained messages,
    /// queue rows not yet sent (state 0) whose message expired, and expired
    /// bodies no row references any more. Messages already in flight are kept:
    /// their exchange must complete. Call once at start-up, before the loads.
    /// Returns how many rows were deleted.
    pub fn purge_expired(&mut self, now: i64) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = retained::purge_expired(&tx, now)? + queues::purge_expired(&tx, now)?;
        tx.commit()?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{commit, message_ids, msg, queued, session, store};
    use crate::store::SyncMode;
    use crate::store::{ClientRecord, Store, StoredQueued, StoredSession, StoredSubscription};

    #[test]
    fn every_write_round_trips() {
        let (_dir, mut store) = store();
        let retained = StoredMessage {
            retain: true,
            ..msg("r/1", Some(4_000_000_000))
        };
        let body = StoredMessage {
            retain: true,
            ..msg("a/b", None)
        };
        let writes = vec![
            // Children before parents: foreign keys are checked at COMMIT.
            queued("c1", 2, 7),
            Write::RetainSet(retained.clone()),
            Write::RetainSet(msg("r/2", None)),
            Write::RetainClear {
                topic: "r/2".into(),
            },
            Write::MessagePut {
                id: 7,
                msg: body.clone(),
            },
            session("c1"),
            Write::SessionPut {
                client_id: "c2".into(),
                expiry_interval: 60,
                username: None,
                disconnected_at: Some(1_700_000_000),
            },
            Write::SubscriptionPut {
                client_id: "c1".into(),
                filter: "$share/g/a/+".into(),
                options: 0b0010_1110,
                identifier: Some(268_435_455),
            },
            Write::SubscriptionPut {
                client_id: "c1".into(),
                filter: "x".into(),
                options: 0,
                identifier: None,
            },
            Write::SubscriptionDelete {
                client_id: "c1".into(),
                filter: "x".into(),
            },
            Write::QueuePut {
                client_id: "c1".into(),
                seq: 1,
                message_id: 7,
                qos: 2,
                packet_id: Some(65535),
                state: 1,
            },
            queued("c1", 3, 7),
            Write::QueueDelete {
                client_id: "c1".into(),
                seq: 3,
            },
            Write::Qos2Received {
                client_id: "c1".into(),
                packet_id: 9,
            },
            Write::Qos2Received {
                client_id: "c1".into(),
                packet_id: 9,
            },
            Write::Qos2Received {
                client_id: "c1".into(),
                packet_id: 10,
            },
            Write::Qos2Released {
                client_id: "c1".into(),
                packet_id: 10,
            },
            Write::WillPut {
                client_id: "c1".into(),
                msg: msg("will/c1", Some(4_000_000_000)),
                delay: 30,
            },
            Write::WillPut {
                client_id: "c2".into(),
                msg: msg("will/c2", None),
                delay: 0,
            },
            Write::WillDelete {
                client_id: "c2".into(),
            },
            Write::ClientConnected {
                client_id: "c1".into(),
                username: Some("alice".into()),
                address: "10.0.0.1:5000".parse().unwrap(),
                protocol: 5,
                at: 100,
            },
            Write::ClientDisconnected {
                client_id: "c1".into(),
                at: 200,
                reason: "keep alive timeout".into(),
            },
            Write::ClientConnected {
                client_id: "c2".into(),
                username: None,
                address: "[::1]:1".parse().unwrap(),
                protocol: 4,
                at: 150,
            },
        ];
        // 23 staged: the retained r/2 set then cleared, and queue row 3 put then deleted,
        // each leave only their last write.
        assert_eq!(commit(&mut store, writes).unwrap(), 21);
        assert!(!store.has_staged());

        assert_eq!(store.load_retained().unwrap(), [retained]);
        assert_eq!(store.load_messages().unwrap(), [(7, body)]);
        assert_eq!(store.max_message_id().unwrap(), 7);
        assert_eq!(
            store.load_sessions().unwrap(),
            [
                StoredSession {
                    client_id: "c1".into(),
                    expiry_interval: u32::MAX,
                    username: Some("alice".into()),
                    disconnected_at: None,
                    subscriptions: vec![StoredSubscription {
                        filter: "$share/g/a/+".into(),
                        options: 0b0010_1110,
                        identifier: Some(268_435_455),
                    }],
                    queue: vec![StoredQueued {
                        seq: 1,
                        qos: 2,
                        packet_id: Some(65535),
                        state: 1,
                        message_id: 7
                    }],
                    queued: 1,
                    queued_bytes: "a/b".len() + 4,
                    queued_last_seq: 2,
                    qos2_received: vec![9],
                    will: Some((msg("will/c1", Some(4_000_000_000)), 30)),
                },
                StoredSession {
                    client_id: "c2".into(),
                    expiry_interval: 60,
                    username: None,
                    disconnected_at: Some(1_700_000_000),
                    subscriptions: vec![],
                    queue: vec![],
                    queued: 0,
                    queued_bytes: 0,
                    queued_last_seq: 0,
                    qos2_received: vec![],
                    will: None,
                },
            ]
        );
        assert_eq!(
            store.client_records().unwrap(),
            [
                ClientRecord {
                    client_id: "c2".into(),
                    username: None,
                    address: "[::1]:1".parse().unwrap(),
                    protocol: 4,
                    connected_at: 150,
                    disconnected_at: None,
                    disconnect_reason: None,
                },
                ClientRecord {
                    client_id: "c1".into(),
                    username: Some("alice".into()),
                    address: "10.0.0.1:5000".parse().unwrap(),
                    protocol: 5,
                    connected_at: 100,
                    disconnected_at: Some(200),
                    disconnect_reason: Some("keep alive timeout".into()),
                },
            ]
        );

        // A reconnect clears the disconnect; the data survives reopening.
        let path = store.path().to_owned();
        commit(
            &mut store,
            vec![Write::ClientConnected {
                client_id: "c1".into(),
                username: None,
                address: "10.0.0.9:1".parse().unwrap(),
                protocol: 5,
                at: 300,
            }],
        )
        .unwrap();
        drop(store);
        let store = Store::open(&path, SyncMode::Full).unwrap();
        let c1 = &store.client_records().unwrap()[0];
        assert_eq!((c1.connected_at, c1.disconnected_at.as_ref()), (300, None));
        assert_eq!(store.load_sessions().unwrap().len(), 2);
    }

    #[test]
    fn a_failing_write_rolls_back_the_whole_batch() {
        let (_dir, mut store) = store();
        let bad_qos = Write::RetainSet(StoredMessage {
            qos: 3,
            ..msg("bad", None)
        });
        let err = commit(
            &mut store,
            vec![Write::RetainSet(msg("good", None)), session("c1"), bad_qos],
        );
        assert!(matches!(err, Err(StoreError::Sqlite(_))));
        assert!(!store.has_staged(), "a failed batch is dropped");
        assert!(store.load_retained().unwrap().is_empty());
        assert!(store.load_sessions().unwrap().is_empty());

        // A foreign key broken at COMMIT time (queue row of no session).
        let err = commit(
            &mut store,
            vec![
                Write::RetainSet(msg("good", None)),
                Write::MessagePut {
                    id: 1,
                    msg: msg("m", None),
                },
                queued("ghost", 1, 1),
            ],
        );
        assert!(err.is_err());
        assert!(store.load_retained().unwrap().is_empty());
        assert!(store.load_messages().unwrap().is_empty());

        // The store still works afterwards.
        assert_eq!(
            commit(&mut store, vec![Write::RetainSet(msg("good", None))]).unwrap(),
            1
        );
        assert_eq!(store.load_retained().unwrap().len(), 1);
    }

    #[test]
    fn purge_drops_expired_but_keeps_in_flight() {
        let (_dir, mut store) = store();
        commit(
            &mut store,
            vec![
                session("c1"),
                Write::RetainSet(msg("old", Some(50))),
                Write::RetainSet(msg("new", Some(150))),
                Write::MessagePut {
                    id: 1,
                    msg: msg("expired, queued", Some(50)),
                },
                Write::MessagePut {
                    id: 2,
                    msg: msg("expired, in flight", Some(50)),
                },
                Write::MessagePut {
                    id: 3,
                    msg: msg("fresh", None),
                },
                queued("c1", 1, 1),
                Write::QueuePut {
                    client_id: "c1".into(),
                    seq: 2,
                    message_id: 2,
                    qos: 2,
                    packet_id: Some(5),
                    state: 2,
                },
                queued("c1", 3, 3),
            ],
        )
        .unwrap();
        assert_eq!(store.purge_expired(100).unwrap(), 3);
        let topics: Vec<_> = store
            .load_retained()
            .unwrap()
            .into_iter()
            .map(|m| m.topic)
            .collect();
        assert_eq!(topics, ["new"]);
        assert_eq!(message_ids(&store), [2, 3]);
        let session = &store.load_sessions().unwrap()[0];
        let in_flight: Vec<_> = session.queue.iter().map(|q| q.seq).collect();
        assert_eq!(in_flight, [2]);
        assert_eq!(session.queued, 1);
        let page: Vec<_> = store
            .load_queue_page("c1", 0, 10)
            .unwrap()
            .into_iter()
            .map(|row| (row.seq, row.message.topic))
            .collect();
        assert_eq!(page, [(3, "fresh".to_string())]);
    }
}
