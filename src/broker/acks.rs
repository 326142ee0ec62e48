//! Inbound PUBACK, PUBREC, PUBREL and PUBCOMP: the core advances the QoS 1/2 handshakes
//! (`core/acks.rs`); this stages what changed, sends the answer and refills the client's
//! in-flight window from its queue.

use std::time::Instant;

use super::{Broker, Violation};
use crate::core::acks::{self, PubAck, PubRec};
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::session::InflightState;
use crate::protocol::{Ack, Packet, ReasonCode};

impl Broker {
    pub(super) fn handle_puback(
        &mut self,
        _token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        match acks::puback(&mut self.sessions[session], ack.packet_id) {
            PubAck::Settled(done) => {
                self.stage_dequeue(session, &done.outbound);
                self.fill_window(session, now);
                Ok(())
            }
            PubAck::NotQos1 => Err(Violation::protocol("PUBACK for a QoS 2 message")),
            PubAck::Unknown => Ok(()),
        }
    }

    pub(super) fn handle_pubrec(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let refused = ack.reason.is_error();
        match acks::pubrec(&mut self.sessions[session], ack.packet_id, refused) {
            PubRec::Release(outbound) => {
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
            }
            PubRec::Refused(done) => {
                self.stage_dequeue(session, &done.outbound);
                self.fill_window(session, now);
            }
            PubRec::Unknown => self.send_ack(
                token,
                Packet::PubRel,
                ack.packet_id,
                ReasonCode::PacketIdentifierNotFound,
            ),
        }
        Ok(())
    }

    pub(super) fn handle_pubrel(
        &mut self,
        token: ConnKey,
        session: SessionKey,
        ack: Ack<'_>,
    ) -> Result<(), Violation> {
        let staged = self.db.store.staged_total();
        let known = acks::pubrel(&mut self.sessions[session], ack.packet_id);
        let reason = if known {
            self.stage_qos2(session, ack.packet_id.get(), false);
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
        if let Some(done) = acks::pubcomp(&mut self.sessions[session], ack.packet_id) {
            self.stage_dequeue(session, &done.outbound);
            self.fill_window(session, now);
        }
        Ok(())
    }
}
