//! Inbound PUBACK, PUBREC, PUBREL and PUBCOMP: advance the QoS 1/2 handshakes and refill
//! the client's in-flight window from its queue.

use std::time::Instant;

use super::{Broker, Violation};
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::session::InflightState;
use crate::protocol::{Ack, Packet, Qos, ReasonCode};

impl Broker {
    pub(super) fn handle_puback(
        &mut self,
        _token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let s = &mut self.sessions[session];
        match s.take_inflight(ack.packet_id, InflightState::Published) {
            Some(done) if done.outbound.qos == Qos::AtLeastOnce => {
                self.stage_dequeue(session, &done.outbound);
            }
            Some(other) => {
                s.flight_mut().inflight.push_front(other);
                return Err(Violation::protocol("PUBACK for a QoS 2 message"));
            }
            // An ack for something no longer in flight (e.g. after a resend): harmless.
            None => return Ok(()),
        }
        self.fill_window(session, now);
        Ok(())
    }

    pub(super) fn handle_pubrec(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let s = &mut self.sessions[session];
        let Some(pos) = s
            .flight()
            .inflight
            .iter()
            .position(|i| i.packet_id == ack.packet_id && i.outbound.qos == Qos::ExactlyOnce)
        else {
            self.send_ack(
                token,
                Packet::PubRel,
                ack.packet_id,
                ReasonCode::PacketIdentifierNotFound,
            );
            return Ok(());
        };
        if ack.reason.is_error() {
            // The receiver refused the message: the exchange ends here.
            if let Some(done) = s.remove_inflight(pos) {
                self.stage_dequeue(session, &done.outbound);
            }
            self.fill_window(session, now);
            return Ok(());
        }
        let entry = &mut s.flight_mut().inflight[pos];
        entry.state = InflightState::Released;
        let outbound = entry.outbound.clone();
        self.stage_queue(
            session,
            &outbound,
            Some(ack.packet_id),
            InflightState::Released,
            false,
            now,
        );
        self.await_own(token, staged);
        self.send_ack(token, Packet::PubRel, ack.packet_id, ReasonCode::Success);
        Ok(())
    }

    pub(super) fn handle_pubrel(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let known = self.sessions[session].remove_incoming_qos2(ack.packet_id.get());
        if known {
            self.stage_qos2(session, ack.packet_id.get(), false);
        }
        let reason = if known {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.await_own(token, staged);
        self.send_ack(token, Packet::PubComp, ack.packet_id, reason);
        Ok(())
    }

    pub(super) fn handle_pubcomp(
        &mut self,
        _token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        if let Some(done) =
            self.sessions[session].take_inflight(ack.packet_id, InflightState::Released)
        {
            self.stage_dequeue(session, &done.outbound);
            self.fill_window(session, now);
        }
        Ok(())
    }
}
