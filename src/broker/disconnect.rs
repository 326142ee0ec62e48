//! Ending connections: an inbound DISCONNECT, and what happens to the session and the
//! will when a connection closes for any reason.

use crate::service::SessionEvent;
use std::time::{Duration, Instant};

use super::client::CloseReason;
use super::close::Ending;
use super::{Broker, Violation};
use crate::clock;
use crate::core::keys::Key as _;
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::timers::Timer;
use crate::protocol::Disconnect;
use crate::store::Write;

impl Broker {
    pub(super) fn handle_disconnect(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        disconnect: Disconnect<'_>,
    ) -> Result<(), Violation> {
        let s = &mut self.sessions[session];
        if let Some(expiry) = disconnect.properties.session_expiry_interval {
            if s.expiry_interval == 0 && expiry != 0 {
                return Err(Violation::protocol(
                    "session expiry set on DISCONNECT after 0 at CONNECT",
                ));
            }
            s.expiry_interval = expiry.min(self.config.limits.max_session_expiry);
        }
        // Only a normal disconnection (0x00) discards the will (MQTT 5 §3.1.2.5).
        self.end_connection(token, Ending::ClientDisconnected(disconnect.reason));
        Ok(())
    }

    /// Detaches a closed connection from its session: publishes or schedules the will, and
    /// ends the session now or schedules its expiry.
    pub(super) fn detach(&mut self, token: ConnKey, why: CloseReason, now: Instant) {
        let Some(conn) = self.conns.get(token) else {
            return;
        };
        log::info!(
            "client {} from {} disconnected: {} ({:?})",
            conn.client_id,
            conn.addr,
            why.detail,
            why.reason
        );
        let Some(session) = conn.session() else {
            return;
        };
        let record = Write::ClientDisconnected {
            client_id: conn.client_id.to_string(),
            at: clock::unix_seconds(),
            reason: why.detail.to_string(),
        };
        self.stage_record(record, now);
        // After a takeover the session already belongs to the new connection.
        if self.sessions.get(session).map(|s| s.connection()) != Some(Some(token)) {
            return;
        }
        let generation = self.next_generation();
        let s = &mut self.sessions[session];
        s.set_connection(None);
        s.generation = generation;
        self.tell_services(
            SessionEvent::Offline {
                session: session.index(),
            },
            now,
        );
        let s = &mut self.sessions[session];
        let expiry = s.expiry_interval;
        let will = s.will.take();
        if let Some(will) = will.filter(|_| why.publish_will) {
            if will.delay > 0 && expiry > 0 {
                let delay = will.delay.min(expiry);
                self.sessions[session].will = Some(will);
                self.timers.schedule(
                    now + Duration::from_secs(u64::from(delay)),
                    Timer::WillDelay {
                        session,
                        generation,
                    },
                );
            } else {
                self.distribute(will.message, now);
            }
        }
        if expiry > 0 {
            self.stage_session(session, Some(clock::unix_seconds()), now);
            self.stage_will(session, now);
            self.spill_queue(session);
        }
        match expiry {
            0 => self.end_session(session),
            u32::MAX => {}
            secs => self.timers.schedule(
                now + Duration::from_secs(u64::from(secs)),
                Timer::SessionExpiry {
                    session,
                    generation,
                },
            ),
        }
    }

    /// A will delay ran out while the session stayed offline: publish the will.
    pub(super) fn will_delay_elapsed(
        &mut self,
        session: SessionKey,
        generation: u64,
        now: Instant,
    ) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.generation != generation || s.connection().is_some() {
            return;
        }
        if let Some(will) = s.will.take() {
            self.stage_will(session, now);
            self.distribute(will.message, now);
        }
    }

    /// A session's expiry ran out while it stayed offline: publish any pending will, end it.
    pub(super) fn session_expired(&mut self, session: SessionKey, generation: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.generation != generation || s.connection().is_some() {
            return;
        }
        log::info!("session {} expired", s.client_id);
        if let Some(will) = s.will.take() {
            self.distribute(will.message, now);
        }
        self.end_session(session);
    }
}
