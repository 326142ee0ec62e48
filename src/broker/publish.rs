//! Inbound PUBLISH: resolve the topic alias, check what the broker allows, keep
//! exactly-once state for QoS 2, update the retained tree, route, acknowledge.

use std::sync::Arc;
use std::time::Instant;

use super::delivery::Admission;
use super::watch::SeenProperties;
use super::{Broker, Violation};
use crate::auth::acl::Action;
use crate::core::acks;
use crate::core::keys::{BridgeKey, ConnKey, SessionKey};
use crate::core::message::Message;
use crate::core::route::Matches;
use crate::protocol::{Ack, Packet, Properties, ProtocolVersion, Publish, Qos, QosPid, ReasonCode};

impl Broker {
    pub(super) fn handle_publish(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        publish: Publish<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        if publish.qos.qos() as u8 > self.config.features.maximum_qos {
            return Err(Violation::new(
                ReasonCode::QosNotSupported,
                "QoS above Maximum QoS",
            ));
        }
        if publish.retain && !self.config.features.retain_available {
            return Err(Violation::new(
                ReasonCode::RetainNotSupported,
                "retain not available",
            ));
        }
        // Subscription Identifiers travel only from server to client [MQTT-3.3.4-6].
        if !publish.properties.subscription_identifiers.is_empty() {
            return Err(Violation::protocol(
                "PUBLISH from a client carries a Subscription Identifier",
            ));
        }
        let topic = self.resolve_alias(token, &publish)?;
        if !self.valid_topic(&topic) {
            return Err(Violation::new(
                ReasonCode::TopicNameInvalid,
                "invalid topic name",
            ));
        }
        if publish.qos != QosPid::AtMostOnce
            && self.conns[token].version == ProtocolVersion::V5
            && !self.is_qos2_resend(session, &publish)
            && self.beyond_receive_maximum(token, session)?
        {
            // Slowed, not refused: the frame waits until its acknowledgements are out.
            return Ok(());
        }
        if let QosPid::ExactlyOnce(id) = publish.qos {
            if acks::is_qos2_resend(&self.sessions[session], id) {
                // A resend of a message already taken: answer again, deliver nothing.
                self.stats.messages_received += 1;
                self.await_durable(token);
                self.send_ack(token, Packet::PubRec, id, ReasonCode::Success);
                return Ok(());
            }
        }

        // What the publish stages decides what its acknowledgement waits for.
        let others = self.db.store.staged_others();
        let mut message_id = None;
        let denied =
            topic.starts_with("$SYS") || !self.sessions[session].acl.allows(Action::Write, &topic);
        let reason = if denied {
            log::debug!(
                "client {}: publish to {} denied",
                self.conns[token].client_id,
                topic
            );
            ReasonCode::NotAuthorized
        } else if self.claimed(&topic) {
            // A service's topic: the service decides what, if anything, is routed.
            self.hand_to_service(token, session, &topic, &publish, now)?
        } else if let Some(matches) = self.takers(&topic, publish.retain) {
            let message = Message::from_publish(&topic, &publish, Some(session), now);
            let v5 = self.conns[token].version == ProtocolVersion::V5;
            match self.admit(&message, matches, v5) {
                Admission::Held(holder) => {
                    // Nothing happened yet: the frame is handled again once released.
                    self.hold(token, holder, now);
                    return Ok(());
                }
                Admission::Refused => {
                    self.stats.messages_refused += 1;
                    log::debug!(
                        "client {}: publish to {} refused, a queue is full",
                        self.conns[token].client_id,
                        topic
                    );
                    ReasonCode::QuotaExceeded
                }
                Admission::Accepted(plan) => {
                    self.watch_message(&message, now);
                    if message.retain {
                        self.retain(&message, now);
                    }
                    self.forward_to_bridges(&message, None, now);
                    self.deliver(plan, now);
                    // Given when the message was staged, if it was.
                    message_id = message.store_id.get().copied();
                    // No 0x10 (no matching subscribers) even when nobody got it: on a thin
                    // link that byte on every such acknowledgement buys the publisher nothing.
                    ReasonCode::Success
                }
            }
        } else {
            // Nobody takes it: it is noted for the console and never copied.
            let properties = SeenProperties::of_publish(&publish.properties);
            self.watch(
                &topic,
                publish.payload,
                publish.qos.qos(),
                publish.retain,
                properties,
            );
            ReasonCode::Success
        };
        self.stats.messages_received += 1;
        self.conns[token].messages_in += 1;
        if let QosPid::AtLeastOnce(_) = publish.qos {
            let conn = &mut self.conns[token];
            // Saturating: only compared with a Receive Maximum, itself a u16.
            conn.unflushed_qos1_acks = conn.unflushed_qos1_acks.saturating_add(1);
        }

        match publish.qos {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(id) => {
                self.await_delivery(token, message_id, others);
                self.send_ack(token, Packet::PubAck, id, reason);
            }
            QosPid::ExactlyOnce(id) => {
                if !reason.is_error() {
                    acks::take_qos2(&mut self.sessions[session], id);
                    self.stage_qos2(session, id.get(), true);
                }
                self.await_delivery(token, message_id, others);
                self.send_ack(token, Packet::PubRec, id, reason);
            }
        }
        Ok(())
    }

    /// The subscriptions matching `topic`, or `None` when nobody takes a message on it:
    /// no subscriber, not retained, no bridge forwarding it.
    fn takers(&mut self, topic: &str, retain: bool) -> Option<Matches> {
        let matches = self.match_topic(topic);
        if matches.is_empty() && !retain && !self.bridges_take(topic) {
            self.done_matching(matches);
            return None;
        }
        Some(matches)
    }

    fn is_qos2_resend(&self, session: SessionKey, publish: &Publish<'_>) -> bool {
        match publish.qos {
            QosPid::ExactlyOnce(id) => acks::is_qos2_resend(&self.sessions[session], id),
            _ => false,
        }
    }

    /// The topic this PUBLISH is for, after applying (and learning) its Topic Alias.
    fn resolve_alias<'p>(
        &mut self,
        token: ConnKey,
        publish: &Publish<'p>,
    ) -> Result<std::borrow::Cow<'p, str>, Violation> {
        let conn = &mut self.conns[token];
        let Some(alias) = publish.properties.topic_alias else {
            return if publish.topic.is_empty() {
                Err(Violation::protocol("empty topic without a topic alias"))
            } else {
                Ok(publish.topic.into())
            };
        };
        if alias == 0 || alias > conn.topic_alias_maximum {
            return Err(Violation::new(
                ReasonCode::TopicAliasInvalid,
                "topic alias out of range",
            ));
        }
        if publish.topic.is_empty() {
            match conn.inbound_aliases.as_ref().and_then(|a| a.get(alias)) {
                Some(topic) => Ok(String::from(topic).into()),
                None => Err(Violation::protocol("unknown topic alias")),
            }
        } else {
            conn.inbound_aliases
                .get_or_insert_with(Default::default)
                .set(alias, publish.topic);
            Ok(publish.topic.into())
        }
    }

    /// Retains (if flagged) and routes a message: a client's publish, or a will.
    pub(super) fn distribute(&mut self, message: Arc<Message>, now: Instant) {
        self.distribute_from(message, None, now)
    }

    /// [`Self::distribute`] for a message that may have come in over bridge `bridge`,
    /// which does not get it back. Bridges whose `out` rules match get it too.
    pub(super) fn distribute_from(
        &mut self,
        message: Arc<Message>,
        bridge: Option<BridgeKey>,
        now: Instant,
    ) {
        self.watch_message(&message, now);
        if message.retain {
            self.retain(&message, now);
        }
        self.forward_to_bridges(&message, bridge, now);
        self.route(message, now)
    }

    /// Notes a routed message in the web console's topic history.
    pub(super) fn watch_message(&mut self, message: &Message, now: Instant) {
        self.watch(
            &message.topic,
            &message.payload,
            message.qos,
            message.retain,
            SeenProperties::of_message(message, now),
        );
    }

    /// Notes a message in the web console's topic history (O(1), bounded; it keeps a
    /// short preview, so it needs no copy of the message).
    fn watch(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: Qos,
        retain: bool,
        properties: Option<SeenProperties>,
    ) {
        let at = crate::clock::unix_millis();
        self.watch
            .record(topic, payload, qos, retain, at, properties);
    }

    /// Sets, replaces or (with an empty payload) clears the retained message of its topic.
    pub(super) fn retain(&mut self, message: &Arc<Message>, now: Instant) {
        self.stage_retained(message, now);
        if message.payload.is_empty() {
            self.retained.remove(&message.topic);
        } else {
            self.retained.insert(&message.topic, message.clone());
        }
    }

    /// Queues PUBACK, PUBREC, PUBREL or PUBCOMP (behind any held output: the caller
    /// decides what it waits for, see `commit.rs`); 3.1.1 clients get the bare form.
    pub(super) fn send_ack(
        &mut self,
        token: ConnKey,
        kind: fn(Ack<'static>) -> Packet<'static>,
        packet_id: crate::protocol::PacketId,
        reason: ReasonCode,
    ) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        let reason = match conn.version {
            ProtocolVersion::V5 => reason,
            ProtocolVersion::V311 => ReasonCode::Success,
        };
        conn.send(&kind(Ack {
            packet_id,
            reason,
            properties: Properties::default(),
        }));
        self.mark_flush(token);
    }
}
