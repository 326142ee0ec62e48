//! CONNECT: validate, authenticate (anonymous policy, login token, credential cache, or the bcrypt
//! worker), take or create the session (takeover, clean start, will), answer CONNACK
//! with what the broker supports, then resume whatever the session is owed.

use crate::service::SessionEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::Phase;
use super::close::Ending;
use super::{Broker, Inbound, Violation};
use crate::auth::bans;
use crate::auth::cache::Credential;
use crate::auth::login::{check_login, AuthOutcome, Verdict};
use crate::auth::throttle::Attempt;
use crate::clock;
use crate::core::alias::OutboundAliases;
use crate::core::connect as core_connect;
use crate::core::keys::Key as _;
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::message::{ForwardedProperties, Message};
use crate::core::session::{Session, Will};
use crate::core::timers::Timer;
use crate::protocol::{self, ConnAck, Connect, Packet, Properties, ProtocolVersion, ReasonCode};
use crate::store::Write;

/// Response Information given to MQTT 5 clients that ask for it: the prefix of a topic
/// the client may use to receive responses (its client id follows).
const RESPONSE_TOPIC_PREFIX: &str = "responses/";

/// What the broker keeps of a CONNECT once its frame is gone (while the password is
/// checked off the loop).
pub(super) struct ConnectRequest {
    version: ProtocolVersion,
    clean_start: bool,
    keep_alive: u16,
    client_id: String,
    /// True when the broker made the client id up (sent back in CONNACK).
    assigned: bool,
    session_expiry: u32,
    /// True when `session_expiry` is lower than asked: CONNACK must then say so.
    session_expiry_capped: bool,
    receive_maximum: u16,
    max_packet_size: u32,
    /// How many topic aliases the client accepts from us.
    client_alias_maximum: u16,
    request_response_information: bool,
    will: Option<Box<Will>>,
    username: Option<String>,
}

/// The auth worker's verdict on a CONNECT, and the connection it is for.
pub struct AuthReply {
    /// The connection's key and serial, to find it again (or learn it is gone).
    token: ConnKey,
    serial: u64,
    verdict: Verdict,
}

/// A CONNECT waiting for the auth worker.
pub(super) struct PendingConnect {
    serial: u64,
    request: ConnectRequest,
    credential: Credential,
    /// Its place in the login throttle, taken before bcrypt runs.
    attempt: Attempt,
}

impl Broker {
    pub(super) fn handle_connect(
        &mut self,
        token: ConnKey,
        connect: Connect<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        self.conns[token].version = connect.version;
        if let Err(reason) = self.check_connect(&connect) {
            self.refuse_connect(token, reason);
            return Ok(());
        }
        let request = self.connect_request(token, &connect, now);
        if self.banned(token, &request.client_id, connect.username) {
            self.refuse_connect(token, ReasonCode::Banned);
            return Ok(());
        }
        let Some(username) = connect.username else {
            if self.anonymous_allowed(token) {
                self.accept_connect(token, request, now);
            } else {
                self.refuse_connect(token, ReasonCode::NotAuthorized);
            }
            return Ok(());
        };
        let password = connect.password.unwrap_or_default();
        if self.access.login_tokens.redeem(username, password, now) {
            log::info!(
                "client {} from {}: {username} logged in with a login token",
                request.client_id,
                self.conns[token].addr
            );
            self.accept_connect(token, request, now);
            return Ok(());
        }
        let credential = self.access.credentials.credential(username, password);
        if self.access.credentials.check(username, &credential, now) {
            self.accept_connect(token, request, now);
            return Ok(());
        }
        let addr = self.conns[token].addr.ip();
        let attempt = match self.access.throttle.begin(addr, username, now) {
            Ok(attempt) => attempt,
            Err(wait) => {
                log::info!(
                    "client {} from {addr}: login as {username:?} held back, next try in {wait:?}",
                    request.client_id
                );
                self.refuse_connect(token, ReasonCode::ConnectionRateExceeded);
                return Ok(());
            }
        };
        let conn = &mut self.conns[token];
        conn.phase = Phase::Authenticating;
        log::debug!(
            "client {} from {}: checking the password of {username} off the loop",
            request.client_id,
            conn.addr
        );
        let serial = conn.serial;
        let (username, password) = (username.to_string(), password.to_vec());
        self.access.worker.run(Box::new(move |store, dummy| {
            let verdict = check_login(store, &username, &password, dummy);
            Inbound::Auth(AuthReply {
                token,
                serial,
                verdict,
            })
        }));
        self.access.pending.insert(
            token,
            PendingConnect {
                serial: conn.serial,
                request,
                credential,
                attempt,
            },
        );
        Ok(())
    }

    /// The auth worker's verdict on a pending CONNECT.
    pub(super) fn auth_replied(&mut self, reply: AuthReply, now: Instant) {
        let AuthReply {
            token,
            serial,
            verdict,
        } = reply;
        if let Some(rules) = verdict.rules {
            self.access.acl_rules = rules;
        }
        let Some(pending) = self.access.pending.remove(&token) else {
            return;
        };
        if pending.serial != serial {
            self.access.pending.insert(token, pending);
            return;
        }
        let addr = self.conns[token].addr.ip();
        let username = pending.request.username.clone().unwrap_or_default();
        // A user name without an account, where anonymous clients may connect anyway.
        let as_anonymous = verdict.outcome == AuthOutcome::UnknownUser
            && self.config.access.anonymous_unknown_users
            && self.anonymous_allowed(token);
        // No password was guessed when the client connects as anonymous instead.
        let succeeded = verdict.outcome == AuthOutcome::Accepted || as_anonymous;
        self.access.throttle.finish(pending.attempt, succeeded, now);
        match verdict.outcome {
            AuthOutcome::UnknownUser if as_anonymous => {
                log::info!(
                    "client {} from {addr}: user {username:?} has no account, connecting as anonymous",
                    pending.request.client_id
                );
                let mut request = pending.request;
                request.username = None;
                self.accept_connect(token, request, now);
                self.handle_input(token, now);
            }
            AuthOutcome::Accepted => {
                let mut request = pending.request;
                match verdict.account {
                    // Logged in under another spelling: the session takes the account's
                    // own name (ACLs, chat), and the cache keeps only exact names.
                    Some(account) if account != username => request.username = Some(account),
                    _ => self
                        .access
                        .credentials
                        .remember(&username, pending.credential, now),
                }
                self.accept_connect(token, request, now);
                // Packets pipelined behind CONNECT waited in the read buffer.
                self.handle_input(token, now);
            }
            AuthOutcome::Rejected | AuthOutcome::UnknownUser => {
                log::info!(
                    "client {} from {addr}: bad user name or password",
                    pending.request.client_id
                );
                self.access.credentials.forget(&username);
                self.refuse_connect(token, ReasonCode::BadUserNameOrPassword);
            }
            AuthOutcome::Unavailable => self.refuse_connect(token, ReasonCode::ServerUnavailable),
        }
    }

    /// True (and logged) when a ban names this client id, user name or address.
    fn banned(&self, token: ConnKey, client_id: &str, username: Option<&str>) -> bool {
        let addr = self.conns[token].addr.ip();
        let now = clock::unix_seconds();
        let Some(ban) = bans::find(&self.access.bans, client_id, username, addr, now) else {
            return false;
        };
        log::info!(
            "client {client_id} from {addr}: refused, {} {} is banned (ban {})",
            ban.kind,
            ban.value,
            ban.id
        );
        true
    }

    /// Anonymous clients: as configured, or by default only on loopback listeners.
    fn anonymous_allowed(&self, token: ConnKey) -> bool {
        self.config
            .access
            .allow_anonymous
            .unwrap_or(self.conns[token].local_is_loopback)
    }

    /// The checks whose failure is answered with a CONNACK reason code.
    fn check_connect(&self, connect: &Connect<'_>) -> Result<(), ReasonCode> {
        if connect.properties.authentication_method.is_some() {
            return Err(ReasonCode::BadAuthenticationMethod);
        }
        if connect.client_id.is_empty()
            && connect.version == ProtocolVersion::V311
            && !connect.clean_start
        {
            return Err(ReasonCode::ClientIdentifierNotValid);
        }
        if connect.password.is_some() && connect.username.is_none() {
            return Err(ReasonCode::BadUserNameOrPassword);
        }
        if let Some(will) = &connect.will {
            if !self.valid_topic(will.topic) || will.topic.starts_with("$SYS") {
                return Err(ReasonCode::TopicNameInvalid);
            }
            // A will would reach a service's subscribers without the service.
            if self.claimed(will.topic) {
                return Err(ReasonCode::NotAuthorized);
            }
            if will.qos as u8 > self.config.features.maximum_qos {
                return Err(ReasonCode::QosNotSupported);
            }
            if will.retain && !self.config.features.retain_available {
                return Err(ReasonCode::RetainNotSupported);
            }
        }
        Ok(())
    }

    fn connect_request(
        &mut self,
        token: ConnKey,
        connect: &Connect<'_>,
        now: Instant,
    ) -> ConnectRequest {
        let assigned = connect.client_id.is_empty();
        let client_id = if assigned {
            self.assign_client_id(token)
        } else {
            connect.client_id.to_string()
        };
        let p = &connect.properties;
        let (session_expiry, session_expiry_capped) = core_connect::session_expiry(
            connect.version,
            connect.clean_start,
            p.session_expiry_interval,
            self.config.limits.max_session_expiry,
        );
        ConnectRequest {
            version: connect.version,
            clean_start: connect.clean_start,
            keep_alive: connect.keep_alive,
            client_id,
            assigned,
            session_expiry,
            session_expiry_capped,
            receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
            max_packet_size: p.maximum_packet_size.unwrap_or(protocol::MAX_PACKET_SIZE),
            client_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            request_response_information: p.request_response_information == Some(1),
            will: connect.will.as_ref().map(|w| {
                Box::new(Will {
                    message: Arc::new(Message {
                        topic: w.topic.into(),
                        payload: w.payload.into(),
                        qos: w.qos,
                        retain: w.retain,
                        properties: ForwardedProperties::copy_from(&w.properties),
                        expires_at: w
                            .properties
                            .message_expiry_interval
                            .map(|s| now + Duration::from_secs(u64::from(s))),
                        publisher: None,
                        store_id: Default::default(),
                    }),
                    delay: w.properties.will_delay_interval.unwrap_or(0),
                })
            }),
            username: connect.username.map(String::from),
        }
    }

    /// Binds the connection to its session and answers CONNACK.
    fn accept_connect(&mut self, token: ConnKey, request: ConnectRequest, now: Instant) {
        let staged = self.db.store.staged_total();
        let ConnectRequest {
            version,
            clean_start,
            keep_alive,
            client_id,
            assigned,
            session_expiry,
            session_expiry_capped,
            receive_maximum,
            max_packet_size,
            client_alias_maximum,
            request_response_information,
            will,
            username,
        } = request;
        let (session, session_present) =
            self.take_session(&client_id, clean_start, session_expiry, now);
        let acl = self
            .access
            .acl_for(&self.config, username.as_deref(), &client_id);
        self.conns[token].clean_start = clean_start;
        let s = &mut self.sessions[session];
        s.set_connection(Some(token));
        s.will = will;
        s.acl = acl;
        s.username = username.as_deref().map(Box::from);
        self.stage_session(session, None, now);
        self.stage_will(session, now);
        let record = Write::ClientConnected {
            client_id: self.sessions[session].client_id.clone(),
            username,
            address: self.conns[token].addr,
            protocol: match version {
                ProtocolVersion::V5 => 5,
                ProtocolVersion::V311 => 4,
            },
            at: clock::unix_seconds(),
        };
        self.stage_record(record, now);

        let server_keep_alive = self.server_keep_alive(version, keep_alive);
        let response_information = (request_response_information && version == ProtocolVersion::V5)
            .then(|| format!("{RESPONSE_TOPIC_PREFIX}{client_id}"));
        let conn = &mut self.conns[token];
        conn.phase = Phase::Connected { session };
        conn.client_id = self.sessions[session].client_id.clone();
        conn.client_id_untold = assigned && version == ProtocolVersion::V311;
        conn.keep_alive = server_keep_alive.unwrap_or(keep_alive);
        conn.last_read = now;
        conn.receive_maximum = receive_maximum;
        conn.max_packet_size = max_packet_size;
        conn.outbound_aliases = (client_alias_maximum > 0)
            .then(|| Box::new(OutboundAliases::new(client_alias_maximum)));
        conn.topic_alias_maximum = self.config.limits.topic_alias_maximum;
        let serial = conn.serial;
        if let Some(deadline) = conn.keep_alive_deadline() {
            self.timers
                .schedule(deadline, Timer::KeepAlive { token, serial });
        }

        if session_present {
            self.tell_services_resumed(session, now);
        }
        let mut properties = self.connack_properties(version, server_keep_alive);
        properties.assigned_client_identifier = assigned.then_some(client_id.as_str());
        properties.response_information = response_information.as_deref();
        properties.session_expiry_interval = session_expiry_capped.then_some(session_expiry);
        // A persistent session is durable before its CONNACK says it is present.
        self.await_own(token, staged);
        let conn = &mut self.conns[token];
        conn.send(&Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties,
        }));
        log::info!(
            "client {} connected from {} (MQTT {}, keep alive {}s, clean start {}, session present {})",
            client_id,
            conn.addr,
            if version == ProtocolVersion::V5 { "5" } else { "3.1.1" },
            conn.keep_alive,
            clean_start,
            session_present
        );
        self.stats.connections_total += 1;
        self.mark_flush(token);
        self.resume_session(session, now);
    }

    /// Sends CONNACK with a failure code and closes without a will.
    fn refuse_connect(&mut self, token: ConnKey, reason: ReasonCode) {
        self.end_connection(token, Ending::Refused(reason));
    }

    fn assign_client_id(&mut self, token: ConnKey) -> String {
        let nanos = clock::unix_nanos();
        format!(
            "outpost-{:x}-{:x}",
            nanos & 0xffff_ffff_ffff,
            self.conns[token].serial
        )
    }

    /// The Server Keep Alive to impose, if any (see [`core_connect::server_keep_alive`]).
    fn server_keep_alive(&self, version: ProtocolVersion, asked: u16) -> Option<u16> {
        core_connect::server_keep_alive(version, asked, self.config.limits.max_keepalive)
    }

    /// Finds the client's session, taking it over from a live connection or ending it for a
    /// clean start, or creates one. Returns the session key and Session Present.
    fn take_session(
        &mut self,
        client_id: &str,
        clean_start: bool,
        expiry: u32,
        now: Instant,
    ) -> (SessionKey, bool) {
        if let Some(key) = self.session_ids.find(client_id, &self.sessions) {
            let takeover = core_connect::take_over(&mut self.sessions[key], clean_start);
            if let Some(old) = takeover.old {
                self.take_over(old);
                let offline = SessionEvent::Offline {
                    session: key.index(),
                };
                self.tell_services(offline, now);
            }
            if let Some(will) = takeover.will {
                self.distribute(will, now);
            }
            if takeover.resumed {
                let generation = self.next_generation();
                let session = &mut self.sessions[key];
                session.generation = generation;
                session.expiry_interval = expiry;
                return (key, true);
            }
            self.end_session(key);
        }
        let key = self.sessions.insert(Session::new(client_id.into(), expiry));
        self.session_ids.insert(key, &self.sessions);
        (key, false)
    }

    /// Closes a connection whose client id connected again (MQTT 5: DISCONNECT 0x8E).
    fn take_over(&mut self, old: ConnKey) {
        self.end_connection(old, Ending::TakenOver);
    }

    fn connack_properties(
        &self,
        version: ProtocolVersion,
        server_keep_alive: Option<u16>,
    ) -> Properties<'static> {
        if version != ProtocolVersion::V5 {
            return Properties::default();
        }
        let c = &self.config;
        let flag = |on: bool| (!on).then_some(0);
        Properties {
            receive_maximum: (c.features.receive_maximum < u16::MAX)
                .then_some(c.features.receive_maximum),
            maximum_qos: (c.features.maximum_qos < 2).then_some(c.features.maximum_qos),
            retain_available: flag(c.features.retain_available),
            maximum_packet_size: Some(c.features.max_packet_size),
            topic_alias_maximum: (c.limits.topic_alias_maximum > 0)
                .then_some(c.limits.topic_alias_maximum),
            wildcard_subscription_available: flag(c.features.wildcard_subscriptions),
            subscription_identifier_available: flag(c.features.subscription_identifiers),
            shared_subscription_available: flag(c.features.shared_subscriptions),
            server_keep_alive,
            ..Properties::default()
        }
    }
}
