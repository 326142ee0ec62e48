//! The broker's side of the services seam (`crate::service`): which topics a service
//! claims, handing it a claimed PUBLISH with who sent it, and applying the effects it
//! returns within the same turn — publishes go through `distribute`, store writes join the
//! turn's group commit, account work goes to an auth worker and its result comes back
//! through the inbox.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Broker, Inbound, Violation};
use crate::accounts::{self, Bcrypt};
use crate::auth::acl::{is_reply_topic, Action};
use crate::chat::{AccountReply, ChatConfig, ChatService, Context};
use crate::clock;
use crate::core::keys::{ConnKey, Key, SessionKey};
use crate::core::message::{ForwardedProperties, Message};
use crate::core::route;
use crate::core::timers::Timer;
use crate::protocol::{Publish, Qos, ReasonCode};
use crate::service::{Effect, Outgoing, Request, Requester, SessionEvent};
use crate::store::StoreError;

impl Broker {
    /// Starts the configured services on what the store holds.
    pub(super) fn load_services(&mut self) -> Result<(), StoreError> {
        if self.config.chat.enabled {
            let c = &self.config;
            let config = ChatConfig {
                max_text: c.chat.chat_max_text,
                page_max: c.chat.chat_history_page,
                room_creation: c.chat.chat_room_creation,
                requests_per_second: c.chat.chat_requests_per_second,
                request_burst: c.chat.chat_request_burst,
                registrations_per_hour: c.accounts.registrations_per_hour,
            };
            self.chat = Some(ChatService::load(config, &self.db.store)?);
        }
        Ok(())
    }

    /// After a failed commit: the services drop what they counted on being written.
    pub(super) fn services_commit_failed(&mut self) {
        if let Some(chat) = self.chat.as_mut() {
            if let Err(e) = chat.reload(&self.db.store) {
                log::error!("chat: cannot reload rooms after a failed commit: {e}");
            }
        }
    }

    /// True when a service takes PUBLISHes to `topic` instead of routing them.
    pub(super) fn claimed(&self, topic: &str) -> bool {
        self.chat.is_some() && ChatService::claims(topic)
    }

    /// True when `session` may read `topic_or_filter`: its ACL, and reply topics only for
    /// their owner while the chat service runs.
    pub(super) fn may_read(&self, session: SessionKey, topic_or_filter: &str) -> bool {
        route::may_read(
            &self.sessions[session],
            topic_or_filter,
            self.chat.is_some(),
        )
    }

    /// The rule every service obeys before it replies to a client-chosen Response Topic:
    /// the client could publish there itself and read it. A valid topic name, never a
    /// `$` topic, writable under the client's ACL (`deny_publish` and the store's rules)
    /// and readable under it (reply topics only by their owner).
    fn may_reply_to(&self, session: SessionKey, topic: &str) -> bool {
        self.valid_topic(topic)
            && !topic.starts_with('$')
            && self.sessions[session].acl.allows(Action::Write, topic)
            && self.may_read(session, topic)
    }

    /// Hands a claimed PUBLISH to its service and applies what it answers, returning the
    /// reason code for the PUBLISH's acknowledgement: Not authorized (0x87) when its
    /// Response Topic is one the client may not use (see [`Broker::may_reply_to`]); the
    /// service is then told only that it was refused, never the topic. A client the
    /// service could never answer (anonymous, no usable Response Topic, and a client id
    /// that cannot name a reply topic — an MQTT 3.1.1 client that left it empty never
    /// learns the one the broker assigned) is disconnected with 0x87: MQTT 3.1.1 has no
    /// other way to refuse a PUBLISH, and silence would leave it waiting forever.
    pub(super) fn hand_to_service(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        topic: &str,
        publish: &Publish<'_>,
        now: Instant,
    ) -> Result<ReasonCode, Violation> {
        // Reads must see this turn's earlier writes (a like of a message just sent).
        if ChatService::reads_store(topic) && self.writes_pending() {
            self.sync_store();
        }
        let Some(mut chat) = self.chat.take() else {
            return Ok(ReasonCode::Success);
        };
        let refused = publish
            .properties
            .response_topic
            .filter(|t| !self.may_reply_to(session, t));
        if let Some(t) = refused {
            log::info!(
                "client {}: request on {topic} refused: Response Topic {t:?} is not one it may publish to and read",
                self.conns[token].client_id
            );
        }
        let effects = {
            let conn = &self.conns[token];
            let s = &self.sessions[session];
            let response_topic = publish.properties.response_topic.map(|t| {
                if refused.is_some() {
                    ("", false)
                } else {
                    (t, true)
                }
            });
            let request = Request {
                topic,
                payload: publish.payload,
                from: Requester {
                    username: s.username.as_deref(),
                    // An id the client was never told cannot address its replies.
                    client_id: if conn.client_id_untold && s.username.is_none() {
                        ""
                    } else {
                        &s.client_id
                    },
                    version: conn.version,
                    addr: conn.addr.ip(),
                    response_topic,
                    correlation_data: publish.properties.correlation_data,
                    // The seam carries the key as a plain number; it comes back as
                    // `Outgoing::publisher`.
                    session: Some(session.index()),
                },
                now,
                unix: clock::unix_seconds(),
            };
            if !ChatService::answerable(&request.from) {
                None
            } else {
                let members = |topic: &str| self.members(topic);
                let ctx = Context {
                    store: &self.db.store,
                    members: &members,
                };
                Some(chat.handle(&request, &ctx))
            }
        };
        self.chat = Some(chat);
        let Some(effects) = effects else {
            return Err(Violation::new(
                ReasonCode::NotAuthorized,
                "chat request that cannot be answered: an anonymous client needs a client id \
                 without '/', '+', '#' (or an MQTT 5 Response Topic)",
            ));
        };
        self.apply_effects(effects, now);
        Ok(if refused.is_some() {
            ReasonCode::NotAuthorized
        } else {
            ReasonCode::Success
        })
    }

    /// An auth worker finished a chat request's account work.
    pub(super) fn chat_account_done(&mut self, reply: AccountReply, now: Instant) {
        let Some(chat) = self.chat.as_mut() else {
            return;
        };
        let effects = chat.account_done(reply, now);
        self.apply_effects(effects, now);
    }

    /// Tells the services about a connected session's subscriptions or its end. Cheap for
    /// anything but a room topic or a user's inbox: the chat service looks only at
    /// `chat/r/<room>` and `chat/u/<user>/…`.
    pub(super) fn tell_services(&mut self, event: SessionEvent<'_>, now: Instant) {
        let Some(chat) = self.chat.as_mut() else {
            return;
        };
        let effects = chat.session_event(event, now, clock::unix_seconds());
        self.apply_effects(effects, now);
    }

    /// A service's callback time came (the presence window closed).
    pub(super) fn services_due(&mut self, now: Instant) {
        let Some(chat) = self.chat.as_mut() else {
            return;
        };
        let effects = chat.due(now);
        self.apply_effects(effects, now);
    }

    /// Tells the services that a session now receives each of its stored subscriptions
    /// (a reconnect that resumed it).
    pub(super) fn tell_services_resumed(&mut self, session: SessionKey, now: Instant) {
        if self.chat.is_none() {
            return;
        }
        let s = &self.sessions[session];
        let filters: Vec<String> = s.subscriptions().map(|(f, _)| f.to_owned()).collect();
        let username = s.username.clone();
        for filter in &filters {
            self.tell_services(
                SessionEvent::Subscribed {
                    session: session.index(),
                    username: username.as_deref(),
                    filter,
                },
                now,
            );
        }
    }

    /// Applies what a service answered, and asks for the callback it wants, if any.
    fn apply_effects(&mut self, effects: Vec<Effect>, now: Instant) {
        if let Some(at) = self.chat.as_mut().and_then(ChatService::wake_at) {
            self.timers.schedule(at, Timer::Services);
        }
        for effect in effects {
            match effect {
                Effect::Stage(w) => self.db.store.stage(w),
                Effect::Publish(out) => {
                    self.publish_service(service_message(out, Qos::AtLeastOnce), now);
                }
                Effect::Announce(out) => {
                    self.publish_service(service_message(out, Qos::AtMostOnce), now);
                }
                Effect::Account { ticket, op } => {
                    let cost = self.config.accounts.bcrypt_cost;
                    self.access.worker.run(Box::new(move |store, dummy| {
                        let result = accounts::run(store, &Bcrypt(cost), &op, dummy);
                        Inbound::Chat(AccountReply { ticket, result })
                    }));
                }
                Effect::ForgetCredentials(name) => self.access.credentials.forget(&name),
            }
        }
    }

    /// Routes what a service published. Someone's replies, direct messages or direct
    /// presence go to them only, never to the console's topic history or a bridge.
    fn publish_service(&mut self, message: Arc<Message>, now: Instant) {
        self.stats.messages_received += 1;
        if is_reply_topic(&message.topic) {
            self.route(message, now);
        } else {
            self.distribute(message, now);
        }
    }

    /// How many sessions receive messages on `topic`.
    fn members(&self, topic: &str) -> usize {
        let mut sessions = HashSet::new();
        let mut grouped = Vec::new();
        self.trie.for_each_match(
            topic,
            |session, _| {
                sessions.insert(session);
            },
            |group| grouped.extend(group.members.iter().map(|(s, _)| *s)),
        );
        sessions.extend(grouped);
        sessions.len()
    }
}

/// A message a service publishes, from the broker (no retain, no expiry).
fn service_message(out: Outgoing, qos: Qos) -> Arc<Message> {
    Arc::new(Message {
        topic: out.topic.into(),
        payload: out.payload.into(),
        qos,
        retain: false,
        properties: ForwardedProperties {
            correlation_data: out.correlation_data.map(Into::into),
            ..ForwardedProperties::default()
        },
        expires_at: None,
        publisher: out.publisher.map(SessionKey::from_index),
        store_id: OnceLock::new(),
    })
}
