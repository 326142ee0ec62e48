//! CONNECT: validate, take or create the session (takeover, clean start, will), answer
//! CONNACK with what the broker supports, then resume whatever the session is owed.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::{CloseReason, Phase};
use super::message::{ForwardedProperties, Message};
use super::persist::unix_now;
use super::session::{Session, Will};
use super::timers::Timer;
use super::{Broker, Violation};
use crate::protocol::{
    self, ConnAck, Connect, Disconnect, Packet, Properties, ProtocolVersion, ReasonCode,
};
use crate::store::Write;
use crate::topic;

impl Broker {
    pub(super) fn handle_connect(
        &mut self,
        token: usize,
        connect: Connect<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        self.conns[token].version = connect.version;
        if let Err(reason) = self.check_connect(&connect) {
            return self.refuse_connect(token, reason);
        }
        let assigned = connect
            .client_id
            .is_empty()
            .then(|| self.assign_client_id(token));
        let client_id = assigned.as_deref().unwrap_or(connect.client_id);
        let expiry = self.session_expiry(&connect);
        let (session, session_present) =
            self.take_session(client_id, connect.clean_start, expiry, now);
        let s = &mut self.sessions[session];
        s.connection = Some(token);
        s.username = connect.username.map(String::from);
        self.stage_session(session, None, now);
        self.store.stage(Write::ClientConnected {
            client_id: client_id.to_string(),
            username: connect.username.map(String::from),
            address: self.conns[token].addr.to_string(),
            protocol: match connect.version {
                ProtocolVersion::V5 => 5,
                ProtocolVersion::V311 => 4,
            },
            at: unix_now(),
        });
        self.sessions[session].will = connect.will.as_ref().map(|w| Will {
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
        });

        let server_keep_alive = self.server_keep_alive(&connect);
        let conn = &mut self.conns[token];
        conn.phase = Phase::Connected { session };
        conn.client_id = Arc::from(client_id);
        conn.keep_alive = server_keep_alive.unwrap_or(connect.keep_alive);
        conn.last_read = now;
        conn.receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        conn.max_packet_size = connect
            .properties
            .maximum_packet_size
            .unwrap_or(protocol::MAX_PACKET_SIZE);
        conn.topic_alias_maximum = self.config.topic_alias_maximum;
        let serial = conn.serial;
        if let Some(deadline) = conn.keep_alive_deadline() {
            self.timers
                .schedule(deadline, Timer::KeepAlive { token, serial });
        }

        let properties = self.connack_properties(&connect, assigned.as_deref(), server_keep_alive);
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
            if connect.version == ProtocolVersion::V5 { "5" } else { "3.1.1" },
            conn.keep_alive,
            connect.clean_start,
            session_present
        );
        self.stats.connections_total += 1;
        self.mark_flush(token);
        self.resume_session(session, now);
        Ok(())
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
        if let Some(will) = &connect.will {
            if !topic::valid_topic_name(will.topic, self.config.max_topic_levels)
                || will.topic.starts_with("$SYS")
            {
                return Err(ReasonCode::TopicNameInvalid);
            }
            if will.qos as u8 > self.config.maximum_qos {
                return Err(ReasonCode::QosNotSupported);
            }
            if will.retain && !self.config.retain_available {
                return Err(ReasonCode::RetainNotSupported);
            }
        }
        Ok(())
    }

    /// Sends CONNACK with a failure code and closes without a will.
    fn refuse_connect(&mut self, token: usize, reason: ReasonCode) -> Result<(), Violation> {
        let conn = &mut self.conns[token];
        conn.send(&Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: Properties::default(),
        }));
        log::info!("connection from {} refused: {:?}", conn.addr, reason);
        self.close(
            token,
            CloseReason {
                reason,
                publish_will: false,
                detail: "CONNECT refused",
            },
        );
        Ok(())
    }

    fn assign_client_id(&mut self, token: usize) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!(
            "outpost-{:x}-{:x}",
            nanos & 0xffff_ffff_ffff,
            self.conns[token].serial
        )
    }

    /// Session Expiry Interval: MQTT 5 asks for it (default 0); 3.1.1 clean session 0
    /// means a session that never expires.
    fn session_expiry(&self, connect: &Connect<'_>) -> u32 {
        let asked = match connect.version {
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
            ProtocolVersion::V311 if connect.clean_start => 0,
            ProtocolVersion::V311 => u32::MAX,
        };
        asked.min(self.config.max_session_expiry)
    }

    /// The Server Keep Alive to impose when the client asks more than `max_keepalive`
    /// (or none at all while a maximum is configured). MQTT 5 only.
    fn server_keep_alive(&self, connect: &Connect<'_>) -> Option<u16> {
        let max = self.config.max_keepalive;
        let asked = connect.keep_alive;
        (connect.version == ProtocolVersion::V5 && max < u16::MAX && (asked == 0 || asked > max))
            .then_some(max)
    }

    /// Finds the client's session, taking it over from a live connection or ending it for a
    /// clean start, or creates one. Returns the session key and Session Present.
    fn take_session(
        &mut self,
        client_id: &str,
        clean_start: bool,
        expiry: u32,
        now: Instant,
    ) -> (usize, bool) {
        if let Some(&key) = self.session_ids.get(client_id) {
            if let Some(old) = self.sessions[key].connection.take() {
                self.take_over(old);
            }
            // A will still waiting on its delay is cancelled by a reconnect that resumes
            // the session, and published now if the session is about to end.
            if let Some(will) = self.sessions[key].will.take() {
                if clean_start || will.delay == 0 {
                    self.route(will.message, now);
                }
            }
            if clean_start {
                self.end_session(key);
            } else {
                let generation = self.next_generation();
                let session = &mut self.sessions[key];
                session.generation = generation;
                session.expiry_interval = expiry;
                return (key, true);
            }
        }
        let key = self.sessions.insert(Session::new(client_id, expiry));
        self.session_ids.insert(client_id.into(), key);
        (key, false)
    }

    /// Closes a connection whose client id connected again (MQTT 5: DISCONNECT 0x8E).
    fn take_over(&mut self, old: usize) {
        let Some(conn) = self.conns.get_mut(old) else {
            return;
        };
        if conn.version == ProtocolVersion::V5 {
            conn.send(&Packet::Disconnect(Disconnect {
                reason: ReasonCode::SessionTakenOver,
                properties: Properties::default(),
            }));
        }
        log::info!(
            "client {} from {} taken over by a new connection",
            conn.client_id,
            conn.addr
        );
        self.close(
            old,
            CloseReason {
                reason: ReasonCode::SessionTakenOver,
                publish_will: false,
                detail: "session taken over",
            },
        );
    }

    fn connack_properties<'a>(
        &self,
        connect: &Connect<'_>,
        assigned: Option<&'a str>,
        server_keep_alive: Option<u16>,
    ) -> Properties<'a> {
        if connect.version != ProtocolVersion::V5 {
            return Properties::default();
        }
        let c = &self.config;
        let flag = |on: bool| (!on).then_some(0);
        Properties {
            receive_maximum: (c.receive_maximum < u16::MAX).then_some(c.receive_maximum),
            maximum_qos: (c.maximum_qos < 2).then_some(c.maximum_qos),
            retain_available: flag(c.retain_available),
            maximum_packet_size: Some(c.max_packet_size),
            assigned_client_identifier: assigned,
            topic_alias_maximum: (c.topic_alias_maximum > 0).then_some(c.topic_alias_maximum),
            wildcard_subscription_available: flag(c.wildcard_subscriptions),
            subscription_identifier_available: flag(c.subscription_identifiers),
            shared_subscription_available: flag(c.shared_subscriptions),
            server_keep_alive,
            ..Properties::default()
        }
    }
}
