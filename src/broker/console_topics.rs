//! The web console's topic commands on the loop: publish a message as the logged-in admin
//! (under that user's ACL rules and the broker's limits, admitted like a client's), list
//! and read retained messages, and clear them one topic or a subtree at a time. A command
//! answers once what it wrote is durable.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::console::{ConsoleAnswer, ConsolePublish, RetainedInfo, Rows, PAYLOAD_CAP};
use super::delivery::Admission;
use super::Broker;
use crate::auth::acl::{Action, ClientAcl};
use crate::core::message::{ForwardedProperties, Message};
use crate::protocol::Qos;
use crate::store::Write;

/// The client id the console's publishes are checked as (for `%c` in pattern rules).
pub const CONSOLE_CLIENT_ID: &str = "outpost-console";
/// Payload bytes of each row of a retained-message list.
const LIST_PREVIEW: usize = 128;

impl Broker {
    /// The rules that apply to the console acting as `user`.
    fn console_acl(&mut self, user: &str) -> Arc<ClientAcl> {
        self.access
            .acl_for(&self.config, Some(user), CONSOLE_CLIENT_ID)
    }

    pub(super) fn console_publish(&mut self, p: ConsolePublish, now: Instant) -> ConsoleAnswer {
        if !self.valid_topic(&p.topic) {
            return ConsoleAnswer::Invalid(format!("{:?} is not a valid topic name", p.topic));
        }
        let Some(qos) = Qos::from_u8(p.qos).filter(|_| p.qos <= self.config.features.maximum_qos)
        else {
            return ConsoleAnswer::Invalid(format!(
                "QoS {} is above this broker's maximum_qos ({})",
                p.qos, self.config.features.maximum_qos
            ));
        };
        if p.retain && !self.config.features.retain_available {
            return ConsoleAnswer::Invalid("retained messages are off (retain_available)".into());
        }
        let acl = self.console_acl(&p.user);
        if p.topic.starts_with('$') || !acl.allows(Action::Write, &p.topic) {
            log::info!("web console: {} may not publish to {}", p.user, p.topic);
            return ConsoleAnswer::NotAuthorized(format!(
                "the ACL rules do not let {} publish to {}",
                p.user, p.topic
            ));
        }
        if self.claimed(&p.topic) {
            return ConsoleAnswer::Failed(
                "the chat service owns this topic; use the chat page or an MQTT client".into(),
            );
        }
        let message = Arc::new(Message {
            topic: p.topic.as_str().into(),
            payload: p.payload.into(),
            qos,
            retain: p.retain,
            properties: ForwardedProperties {
                payload_format_indicator: p.utf8.then_some(1),
                content_type: p.content_type.map(Into::into),
                user_properties: p
                    .user_properties
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                ..ForwardedProperties::default()
            },
            expires_at: p
                .message_expiry
                .map(|s| now + std::time::Duration::from_secs(u64::from(s))),
            publisher: None,
            store_id: OnceLock::new(),
        });
        let matches = self.match_topic(&message.topic);
        match self.admit(&message, matches, true) {
            Admission::Held(_) | Admission::Refused => {
                self.stats.messages_refused += 1;
                ConsoleAnswer::Failed(
                    "a subscriber's queue is full; nothing was published, try again later".into(),
                )
            }
            Admission::Accepted(plan) => {
                self.stats.messages_received += 1;
                self.watch_message(&message, now);
                if message.retain {
                    self.retain(&message, now);
                }
                self.forward_to_bridges(&message, None, now);
                self.deliver(plan, now);
                self.durable_before_answer();
                log::info!("web console: {} published to {}", p.user, message.topic);
                ConsoleAnswer::Done
            }
        }
    }

    /// The retained messages whose topic starts with `prefix`, by topic, cut at the
    /// console's row limit; `$` topics only when the prefix asks for them.
    pub(super) fn retained_infos(&self, prefix: &str, now: Instant) -> Rows<RetainedInfo> {
        let mut rows = Vec::new();
        let mut visit = |topic: &str, message: &Arc<Message>| {
            if topic.starts_with(prefix) && !message.is_expired(now) {
                rows.push(retained_info(message, LIST_PREVIEW, now));
            }
        };
        self.retained.for_each_match("#", &mut visit);
        if prefix.starts_with('$') {
            self.retained.for_each_match("$SYS/#", &mut visit);
        }
        rows.sort_by(|a, b| a.topic.cmp(&b.topic));
        Rows::cut(rows)
    }

    pub(super) fn retained_message(&self, topic: &str, now: Instant) -> ConsoleAnswer {
        match self.retained.get(topic) {
            Some(m) if !m.is_expired(now) => {
                ConsoleAnswer::RetainedMessage(retained_info(m, PAYLOAD_CAP, now))
            }
            _ => ConsoleAnswer::NotFound,
        }
    }

    /// Clears every retained message matching `filter` that `user` may publish to.
    pub(super) fn clear_retained(&mut self, user: &str, filter: &str) -> ConsoleAnswer {
        if !self.valid_filter(filter) {
            return ConsoleAnswer::Invalid(format!("{filter:?} is not a valid topic filter"));
        }
        let acl = self.console_acl(user);
        if filter.starts_with('$') || !acl.allows(Action::Write, filter) {
            return ConsoleAnswer::NotAuthorized(format!(
                "the ACL rules do not let {user} publish to {filter}"
            ));
        }
        let mut topics = Vec::new();
        self.retained
            .for_each_match(filter, |topic, _| topics.push(topic.to_owned()));
        if topics.is_empty() {
            return ConsoleAnswer::NotFound;
        }
        for topic in &topics {
            self.retained.remove(topic);
            self.db.store.stage(Write::RetainClear {
                topic: topic.clone(),
            });
        }
        self.durable_before_answer();
        log::info!(
            "web console: {user} cleared {} retained messages under {filter}",
            topics.len()
        );
        ConsoleAnswer::Cleared(topics.len())
    }
}

impl Broker {
    /// The console's answer is its acknowledgement: what the command wrote (a retained
    /// message, queued copies for persistent sessions, cleared retained messages) is made
    /// durable first. The loop waits for that one flush; console commands are rare.
    pub(super) fn durable_before_answer(&mut self) {
        if self.writes_pending() {
            self.sync_store();
        }
    }
}

fn retained_info(m: &Message, cap: usize, now: Instant) -> RetainedInfo {
    RetainedInfo {
        topic: m.topic.to_string(),
        qos: m.qos as u8,
        size: m.payload.len(),
        payload: m.payload[..m.payload.len().min(cap)].to_vec(),
        content_type: m.properties.content_type.as_deref().map(str::to_owned),
        payload_format_utf8: m.properties.payload_format_indicator == Some(1),
        expires_in: m.remaining_expiry(now),
        user_properties: m
            .properties
            .user_properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}
