//! Ending connections: an inbound DISCONNECT, and what happens to the session and the
//! will when a connection closes for any reason.

use crate::service::SessionEvent;
use std::time::Instant;

use super::client::CloseReason;
use super::close::Ending;
use super::{Broker, Violation};
use crate::clock;
use crate::core::expiry::{self, Afterlife, Due, WillFate};
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
        expiry::on_disconnect(
            &mut self.sessions[session],
            disconnect.properties.session_expiry_interval,
            self.config.limits.max_session_expiry,
        )
        .map_err(Violation::protocol)?;
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
        let detached = expiry::detach(&mut self.sessions[session], why.publish_will, generation);
        self.tell_services(
            SessionEvent::Offline {
                session: session.index(),
            },
            now,
        );
        match detached.will {
            WillFate::None => {}
            WillFate::Publish(will) => self.distribute(will, now),
            WillFate::Delay(delay) => self.timers.schedule(
                now + delay,
                Timer::WillDelay {
                    session,
                    generation,
                },
            ),
        }
        if detached.session != Afterlife::Ends {
            self.stage_session(session, Some(clock::unix_seconds()), now);
            self.stage_will(session, now);
            self.spill_queue(session);
        }
        match detached.session {
            Afterlife::Ends => self.end_session(session),
            Afterlife::Kept => {}
            Afterlife::Expires(after) => self.timers.schedule(
                now + after,
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
        if let Due::Fire { will: Some(will) } = expiry::will_delay_elapsed(s, generation) {
            self.stage_will(session, now);
            self.distribute(will, now);
        }
    }

    /// A session's expiry ran out while it stayed offline: publish any pending will, end it.
    pub(super) fn session_expired(&mut self, session: SessionKey, generation: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        let Due::Fire { will } = expiry::session_expired(s, generation) else {
            return;
        };
        log::info!("session {} expired", s.client_id);
        if let Some(will) = will {
            self.distribute(will, now);
        }
        self.end_session(session);
    }
}
