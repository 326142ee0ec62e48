//! SUBSCRIBE and UNSUBSCRIBE: validate each filter, update the trie and the session,
//! answer SUBACK/UNSUBACK, then send the retained messages the subscription asks for.

use std::sync::Arc;
use std::time::Instant;

use super::{Broker, Violation};
use crate::auth::acl::USER_REPLIES;
use crate::chat::codec::ROOM_PREFIX;
use crate::core::keys::Key as _;
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::message::Message;
use crate::core::retain;
use crate::core::session::SubEntry;
use crate::protocol::{
    Packet, Properties, Qos, ReasonCode, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
use crate::service::SessionEvent;
use crate::topic::parse_shared;

impl Broker {
    pub(super) fn handle_subscribe(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        subscribe: Subscribe<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let identifier = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();
        if identifier.is_some() && !self.config.features.subscription_identifiers {
            return Err(Violation::new(
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are disabled",
            ));
        }
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained_for: Vec<(&str, SubscriptionOptions)> = Vec::new();
        for &(filter, options) in &subscribe.filters {
            let reason = self.subscribe_one(session, filter, options, identifier, now)?;
            if let Ok(is_new) = reason {
                let shared = parse_shared(filter).is_some();
                if retain::wants_retained(shared, options, is_new) {
                    retained_for.push((filter, options));
                }
            }
            reasons.push(match reason {
                Ok(_) => granted(options.qos.min(self.max_qos())),
                Err(code) => code,
            });
        }
        self.await_own(token, staged);
        self.conns[token].send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Properties::default(),
            reasons,
        }));
        self.mark_flush(token);
        for (filter, options) in retained_for {
            self.send_retained(session, filter, options, identifier, now);
        }
        Ok(())
    }

    /// Adds one subscription. The outer error is a violation that closes the connection;
    /// the inner result is the filter's SUBACK outcome (`Ok(is_new)` or a failure code).
    fn subscribe_one(
        &mut self,
        session: SessionKey,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
        now: Instant,
    ) -> Result<Result<bool, ReasonCode>, Violation> {
        if !self.within_length(filter) {
            return Ok(Err(ReasonCode::TopicFilterInvalid));
        }
        let (group, plain) = match parse_shared(filter) {
            Some(Ok(shared)) => {
                if options.no_local {
                    return Err(Violation::protocol("No Local on a shared subscription"));
                }
                if !self.config.features.shared_subscriptions {
                    return Ok(Err(ReasonCode::SharedSubscriptionsNotSupported));
                }
                (Some(shared.group), shared.filter)
            }
            Some(Err(())) => return Ok(Err(ReasonCode::TopicFilterInvalid)),
            None => (None, filter),
        };
        if !self.valid_filter(plain) {
            return Ok(Err(ReasonCode::TopicFilterInvalid));
        }
        if !self.config.features.wildcard_subscriptions
            && (plain.contains('+') || plain.contains('#'))
        {
            return Ok(Err(ReasonCode::WildcardSubscriptionsNotSupported));
        }
        if !self.may_read(session, plain) {
            log::info!(
                "client {}: subscription to {filter} denied",
                self.sessions[session].client_id
            );
            return Ok(Err(ReasonCode::NotAuthorized));
        }
        let max_qos = self.max_qos();
        let s = &mut self.sessions[session];
        let limit = self.config.limits.max_subscriptions_per_client;
        if limit > 0 && s.subscription_count() >= limit && !s.is_subscribed(filter) {
            return Ok(Err(ReasonCode::QuotaExceeded));
        }
        let entry = SubEntry {
            options: SubscriptionOptions {
                qos: options.qos.min(max_qos),
                ..options
            },
            identifier,
        };
        s.subscribe(filter, entry);
        self.stage_subscription(session, filter, Some(entry));
        self.sys_wanted(plain, now);
        let is_new = self.trie.subscribe(plain, group, session, entry);
        if group.is_none() && (plain.starts_with(ROOM_PREFIX) || plain.starts_with(USER_REPLIES)) {
            let username = self.sessions[session].username.clone();
            self.tell_services(
                SessionEvent::Subscribed {
                    session: session.index(),
                    username: username.as_deref(),
                    filter: plain,
                },
                now,
            );
        }
        Ok(Ok(is_new))
    }

    /// Sends the retained messages matching a new subscription, flagged retained.
    fn send_retained(
        &mut self,
        session: SessionKey,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
        now: Instant,
    ) {
        let mut found: Vec<Arc<Message>> = Vec::new();
        self.retained
            .for_each_match(filter, |_, message| found.push(message.clone()));
        for message in found {
            if message.is_expired(now) {
                self.retained.remove(&message.topic);
                continue;
            }
            let outbound = retain::delivery(message, options, identifier);
            self.enqueue(session, outbound, now);
        }
    }

    pub(super) fn handle_unsubscribe(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        unsubscribe: Unsubscribe<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = self.sessions[session].unsubscribe(filter);
            if existed {
                self.remove_from_trie(session, filter);
                self.stage_subscription(session, filter, None);
                self.tell_services(
                    SessionEvent::Unsubscribed {
                        session: session.index(),
                        filter,
                    },
                    now,
                );
            }
            reasons.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        self.await_own(token, staged);
        self.conns[token].send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Properties::default(),
            reasons,
        }));
        self.mark_flush(token);
        Ok(())
    }

    /// Removes one of the session's filters (plain or `$share/…`) from the trie.
    pub(super) fn remove_from_trie(&mut self, session: SessionKey, filter: &str) {
        match parse_shared(filter) {
            Some(Ok(shared)) => self
                .trie
                .unsubscribe(shared.filter, Some(shared.group), session),
            _ => self.trie.unsubscribe(filter, None, session),
        };
    }

    fn max_qos(&self) -> Qos {
        Qos::from_u8(self.config.features.maximum_qos).unwrap_or(Qos::ExactlyOnce)
    }
}

fn granted(qos: Qos) -> ReasonCode {
    match qos {
        Qos::AtMostOnce => ReasonCode::Success,
        Qos::AtLeastOnce => ReasonCode::GrantedQos1,
        Qos::ExactlyOnce => ReasonCode::GrantedQos2,
    }
}
