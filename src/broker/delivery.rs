//! Carrying out a message's routing: ask the core who gets it (`core/route.rs`) and what
//! a full queue means for it (`core/admission.rs`), then send now (within the client's
//! in-flight window) or queue it. Also resuming and ending sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::close::Ending;
use super::Broker;
use crate::core::acks::{self, Resend};
use crate::core::admission::{self, Holder, Rules, Step, Verdict};
use crate::core::alias::TopicAlias;
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::message::{Delivery, Message};
use crate::core::queue;
use crate::core::route::{self, Matches, Plan};
use crate::core::session::{Inflight, InflightState, Outbound, Session};
use crate::protocol::{self, Ack, Packet, Properties, Qos, QosPid, ReasonCode};

/// The core's verdict on a client's message, with its deliveries when accepted.
pub enum Admission {
    /// Deliver it: every delivery with what it does.
    Accepted(Plan),
    /// Hold the publisher back until the holder's queue has room.
    Held(Holder),
    /// Refuse it: PUBACK/PUBREC 0x97, delivered to nobody.
    Refused,
}

impl Broker {
    /// Finds the subscriptions matching `topic` (see [`Matches::find`]), in the turn's
    /// buffer: hand it to [`Self::admit`], or back with [`Self::done_matching`].
    pub(super) fn match_topic(&mut self, topic: &str) -> Matches {
        let mut matches = std::mem::take(&mut self.turn.matches);
        matches.find(topic, &self.trie, &self.sessions, &mut self.shared_cursors);
        matches
    }

    /// Gives the buffer of [`Self::match_topic`] back for the next message.
    pub(super) fn done_matching(&mut self, matches: Matches) {
        self.turn.matches = matches;
    }

    /// Every delivery of `message` to the sessions `matches` found (see
    /// [`route::deliveries`]), in the turn's plan buffer: give it back with
    /// `self.turn.plan = plan` once drained.
    fn deliveries(&mut self, message: &Arc<Message>, mut matches: Matches) -> Plan {
        let mut plan = std::mem::take(&mut self.turn.plan);
        let private_replies = self.chat.is_some();
        route::deliveries(
            message,
            &mut matches,
            &self.sessions,
            private_replies,
            &mut plan,
        );
        self.done_matching(matches);
        plan
    }

    /// Delivers a message the broker itself publishes (a will, `$SYS`) to every matching
    /// session: queued even past the queue limits, since nobody could be held back.
    pub(super) fn route(&mut self, message: Arc<Message>, now: Instant) {
        let matches = self.match_topic(&message.topic);
        let plan = self.deliveries(&message, matches);
        self.deliver(plan, now);
    }

    /// Decides what a client's message meets at its targets' queues (`queue_full`), before
    /// anything is delivered (`core/admission.rs`), from the `matches` of its topic.
    /// `v5` says whether the publisher can be told 0x97.
    pub(super) fn admit(
        &mut self,
        message: &Arc<Message>,
        matches: Matches,
        v5: bool,
    ) -> Admission {
        let mut plan = self.deliveries(message, matches);
        let rules = Rules {
            limits: self.queue_limits(),
            policy: self.config.limits.queue_full,
            v5,
        };
        let verdict = admission::admit(&mut plan, &self.sessions, &self.budget, &rules, |t| {
            self.window(t)
        });
        let stopped = match verdict {
            Verdict::Accepted => return Admission::Accepted(plan),
            Verdict::Held(holder) => Admission::Held(holder),
            Verdict::Refused => Admission::Refused,
        };
        // Nothing is delivered: the buffer goes back for the next message.
        self.turn.plan = plan;
        stopped
    }

    /// Carries out an admitted message's deliveries.
    pub(super) fn deliver(&mut self, mut plan: Plan, now: Instant) {
        for (session, outbound, step) in plan.drain(..) {
            match step {
                Step::Deliver => self.enqueue(session, outbound, now),
                Step::MakeRoom(full) => {
                    if self.drop_oldest(session, full, now) {
                        self.enqueue(session, outbound, now);
                    } else {
                        // Nothing of its own to drop (a broker-wide budget is spent).
                        self.count_drop(session, &outbound, full);
                    }
                }
                Step::Drop(full) => self.count_drop(session, &outbound, full),
            }
        }
        self.turn.plan = plan;
    }

    /// Sends an outbound message to the session's connection, or queues it.
    pub(super) fn enqueue(&mut self, session: SessionKey, mut outbound: Outbound, now: Instant) {
        let s = &mut self.sessions[session];
        if s.stored && outbound.qos != Qos::AtMostOnce {
            outbound.seq = Some(s.next_seq);
            s.next_seq += 1;
        }
        let Some(token) = s.connection() else {
            if outbound.qos != Qos::AtMostOnce {
                self.push_queue(session, outbound, now);
            } else if self.config.limits.queue_qos0 {
                let limits = self.queue_limits();
                match queue::room(&self.sessions[session], &outbound, &self.budget, &limits) {
                    Ok(()) => self.push_queue(session, outbound, now),
                    Err(full) => self.count_drop(session, &outbound, full),
                }
            }
            return;
        };
        if outbound.qos == Qos::AtMostOnce {
            if self.output_full(token) {
                self.slow_consumer(token, now);
                return;
            }
            self.write_publish(token, &outbound, QosPid::AtMostOnce, false, now);
        } else if s.flight().queued() == 0 && s.flight().inflight.len() < self.window(token) {
            self.send_inflight(session, token, outbound, true, now);
        } else {
            self.push_queue(session, outbound, now);
        }
    }

    /// True when the client has more than `max_output_buffer` unsent even after a write
    /// now. (Acknowledgements waiting for their commit are held apart, so a write mid-turn
    /// cannot let one overtake it.)
    fn output_full(&mut self, token: ConnKey) -> bool {
        let limit = self.config.limits.max_output_buffer;
        if self.conns[token].pending_output() <= limit {
            return false;
        }
        let conn = &mut self.conns[token];
        if conn.closing.is_some() {
            return true;
        }
        // A write error shows up again at the end-of-turn flush, which closes the client.
        let _ = conn.flush(&mut self.stats.bytes_sent);
        conn.pending_output() > limit
    }

    /// A QoS 0 message cannot be sent because the client leaves its output unread: drop it
    /// (counted), and disconnect the client once this has lasted `slow_consumer_timeout`.
    fn slow_consumer(&mut self, token: ConnKey, now: Instant) {
        self.stats.messages_dropped += 1;
        self.stats.dropped_slow_consumer += 1;
        let conn = &mut self.conns[token];
        if conn.closing.is_some() {
            return;
        }
        let (since, first) = conn.note_backlog(now);
        if first {
            log::warn!(
                "client {}: {} bytes of output unread, dropping QoS 0 messages to it",
                conn.client_id,
                conn.pending_output()
            );
        }
        let timeout = Duration::from_secs(self.config.limits.slow_consumer_timeout);
        if now.saturating_duration_since(since) >= timeout {
            // No DISCONNECT: it could not get past the unread backlog anyway.
            self.end_connection(token, Ending::SlowConsumer);
        }
    }

    /// Sends queued messages while the client's in-flight window has room.
    pub(super) fn fill_window(&mut self, session: SessionKey, now: Instant) {
        let Some(token) = self.sessions[session].connection() else {
            return;
        };
        let window = self.window(token);
        while self.sessions[session].flight().inflight.len() < window {
            let Some(outbound) = self.pop_queue(session, now) else {
                break;
            };
            if outbound.message.is_expired(now) {
                self.stats.messages_dropped += 1;
                self.stats.dropped_expired += 1;
                self.stage_dequeue(session, &outbound);
                continue;
            }
            if outbound.qos == Qos::AtMostOnce {
                self.write_publish(token, &outbound, QosPid::AtMostOnce, false, now);
            } else {
                self.send_inflight(session, token, outbound, false, now);
            }
        }
        self.queue_drained(session);
    }

    /// On reconnect: resend unacknowledged messages with DUP (and PUBRELs), then the queue.
    pub(super) fn resume_session(&mut self, session: SessionKey, now: Instant) {
        let Some(token) = self.sessions[session].connection() else {
            return;
        };
        for resend in acks::resends(&self.sessions[session]) {
            match resend {
                Resend::Publish(packet_id, outbound) => {
                    let qos = qos_pid(outbound.qos, packet_id);
                    self.write_publish(token, &outbound, qos, true, now);
                }
                Resend::Release(packet_id) => {
                    self.conns[token].send(&Packet::PubRel(Ack {
                        packet_id,
                        reason: ReasonCode::Success,
                        properties: Properties::default(),
                    }));
                }
            }
        }
        self.mark_flush(token);
        self.fill_window(session, now);
    }

    /// Removes a session and all its subscriptions; publishers it held back go on.
    pub(super) fn end_session(&mut self, session: SessionKey) {
        let client_id = self.sessions[session].client_id.clone();
        self.session_ids.remove(&client_id, session);
        self.forget_queue(session);
        let s: Session = self.sessions.remove(session);
        let flight = s.flight();
        self.release(flight.waiting.iter().copied());
        self.release_budget_waiters();
        self.stage_session_delete(&s);
        for (filter, _) in s.subscriptions() {
            self.remove_from_trie(session, filter);
        }
        if flight.queued() > 0 || !flight.inflight.is_empty() {
            log::debug!(
                "session {} ended with {} queued and {} in-flight messages",
                s.client_id,
                flight.queued(),
                flight.inflight.len()
            );
        }
    }

    /// How many unacknowledged QoS 1/2 messages this connection may have.
    pub(super) fn window(&self, token: ConnKey) -> usize {
        acks::send_window(
            self.conns[token].receive_maximum,
            self.config.limits.max_inflight,
        )
    }

    /// Sends a QoS 1/2 message within the window and records it in flight; `created`
    /// says its queue entry is new (not taken from the queue). A QoS 1 message leaves at
    /// once: if its subscriber acknowledges it within the commit window it is never
    /// written. A QoS 2 message waits until its entry is durable, so that a crash cannot
    /// make it look new to a subscriber that already has it.
    fn send_inflight(
        &mut self,
        session: SessionKey,
        token: ConnKey,
        outbound: Outbound,
        created: bool,
        now: Instant,
    ) {
        let s = &mut self.sessions[session];
        let packet_id = s.allocate_packet_id();
        let qos = qos_pid(outbound.qos, packet_id);
        self.stage_queue(
            session,
            &outbound,
            Some(packet_id),
            InflightState::Published,
            created,
            now,
        );
        if outbound.qos == Qos::ExactlyOnce {
            self.await_durable(token);
        }
        if self.write_publish(token, &outbound, qos, false, now) {
            self.sessions[session]
                .flight_mut()
                .inflight
                .push_back(Inflight {
                    packet_id,
                    state: InflightState::Published,
                    outbound,
                });
        } else {
            self.stage_dequeue(session, &outbound);
        }
    }

    /// Encodes one PUBLISH into the connection's write buffer. Returns false when the
    /// message expired or exceeds the client's Maximum Packet Size (it is then dropped, as
    /// the spec says, and counted).
    fn write_publish(
        &mut self,
        token: ConnKey,
        outbound: &Outbound,
        qos: QosPid,
        dup: bool,
        now: Instant,
    ) -> bool {
        let message = &outbound.message;
        if message.is_expired(now) {
            self.stats.messages_dropped += 1;
            self.stats.dropped_expired += 1;
            return false;
        }
        let conn = &mut self.conns[token];
        let alias = conn
            .outbound_aliases
            .as_ref()
            .and_then(|a| a.lookup(&message.topic));
        let delivery = Delivery {
            qos,
            dup,
            retain: outbound.retain,
            subscription_ids: &outbound.subscription_ids,
            topic_alias: alias.map(TopicAlias::number),
            omit_topic: matches!(alias, Some(TopicAlias::Known(_))),
        };
        let packet = Packet::Publish(message.to_publish(&delivery, now));
        if !conn.send_within_limit(&packet) {
            self.stats.messages_dropped += 1;
            self.stats.dropped_too_large += 1;
            log::debug!(
                "client {}: message on {} exceeds its maximum packet size, dropped",
                conn.client_id,
                message.topic
            );
            return false;
        }
        // Counted net of the 3 bytes an alias property costs.
        if let (Some(alias), Some(aliases)) = (alias, conn.outbound_aliases.as_mut()) {
            aliases.used(&message.topic, alias);
            if let TopicAlias::Known(_) = alias {
                self.stats.alias_bytes_saved += (message.topic.len() as u64).saturating_sub(3);
            }
        }
        self.stats.messages_sent += 1;
        self.conns[token].messages_out += 1;
        self.mark_flush(token);
        true
    }
}

fn qos_pid(qos: Qos, packet_id: protocol::PacketId) -> QosPid {
    match qos {
        Qos::AtMostOnce => QosPid::AtMostOnce,
        Qos::AtLeastOnce => QosPid::AtLeastOnce(packet_id),
        Qos::ExactlyOnce => QosPid::ExactlyOnce(packet_id),
    }
}
