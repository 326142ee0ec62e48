//! Why connections end, and the one place that turns each reason into what goes on the
//! wire (a CONNACK or DISCONNECT reason code, or nothing), the log line, and whether the
//! will is published. Every path that closes a client names an [`Ending`] here.

use super::client::{CloseReason, Connection, Phase};
use super::{Broker, Violation};
use crate::core::keys::ConnKey;
use crate::protocol::{self, Disconnect, Packet, Properties, ProtocolVersion, ReasonCode};

/// Why the broker closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client broke a rule: MQTT 5 clients past CONNECT get DISCONNECT with the reason.
    Violation(Violation),
    /// CONNECT refused with this CONNACK reason; no will (there is no session yet).
    Refused(ReasonCode),
    /// The client sent DISCONNECT with this reason; only 0x00 discards the will.
    ClientDisconnected(ReasonCode),
    /// Another connection took the client id (MQTT 5: DISCONNECT 0x8E).
    TakenOver,
    /// Its listener was stopped from the console (MQTT 5: DISCONNECT 0x8B).
    ListenerStopped,
    /// It left its output unread past `slow_consumer_timeout`; nothing more is sent, since
    /// it could not get past the unread backlog anyway.
    SlowConsumer,
    /// The transport under MQTT ended it (WebSocket: a refused handshake, a broken frame,
    /// the client's Close); its own answer is already queued. The text is for the log.
    Transport(&'static str),
    /// The socket closed or failed.
    Lost,
    /// The turn's commit failed: its output must not leave (it may acknowledge what is not
    /// on disk), and no will is published for a failure of ours.
    StoreFailure,
}

impl Ending {
    /// The reason recorded for the close, whether the will goes out, and the log detail.
    fn close_reason(self) -> CloseReason {
        let (reason, publish_will, detail) = match self {
            Ending::Violation(v) => (v.reason, true, v.detail),
            Ending::Refused(reason) => (reason, false, "CONNECT refused"),
            Ending::ClientDisconnected(reason) => {
                (reason, reason != ReasonCode::Success, "client disconnected")
            }
            Ending::TakenOver => (ReasonCode::SessionTakenOver, true, "session taken over"),
            Ending::ListenerStopped => (ReasonCode::ServerShuttingDown, true, "listener stopped"),
            Ending::SlowConsumer => (ReasonCode::QuotaExceeded, true, "slow consumer"),
            Ending::Transport(detail) => (ReasonCode::UnspecifiedError, true, detail),
            Ending::Lost => (ReasonCode::UnspecifiedError, true, "connection lost"),
            Ending::StoreFailure => (ReasonCode::UnspecifiedError, false, "store failure"),
        };
        // Whatever the broker answered (it answers nothing to a peer already gone, to a
        // client that said goodbye, a slow consumer or a failed commit) must arrive.
        let linger = matches!(
            self,
            Ending::Violation(_)
                | Ending::Refused(_)
                | Ending::TakenOver
                | Ending::ListenerStopped
                | Ending::Transport(_)
        );
        CloseReason {
            reason,
            publish_will,
            detail,
            linger,
        }
    }
}

impl Broker {
    /// Ends a connection: answers on the wire as `ending` asks, logs it, and marks the
    /// connection to close at the end of the turn, after its output is flushed.
    pub(super) fn end_connection(&mut self, token: ConnKey, ending: Ending) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if ending == Ending::StoreFailure {
            conn.discard_output();
        }
        if conn.closing.is_some() {
            return;
        }
        match ending {
            Ending::Violation(v) => {
                match (conn.phase, conn.version) {
                    (Phase::Connected { .. }, ProtocolVersion::V5) => {
                        // E.g. a second CONNECT with an unknown level decodes to 0x84, which
                        // only a CONNACK may carry: after CONNECT that is a Protocol Error.
                        let reason = if v.reason.is_disconnect_reason() {
                            v.reason
                        } else {
                            ReasonCode::ProtocolError
                        };
                        send_disconnect(conn, reason);
                    }
                    (Phase::AwaitingConnect, _)
                        if v.reason == ReasonCode::UnsupportedProtocolVersion =>
                    {
                        // In the form the decoder chose for the client's protocol level
                        // (set by `handle_frames`).
                        send_connack(conn, v.reason);
                    }
                    _ => {}
                }
                log::info!(
                    "client {} from {}: {} ({:?}), closing",
                    conn.client_id,
                    conn.addr,
                    v.detail,
                    v.reason
                );
            }
            Ending::Refused(reason) => {
                send_connack(conn, reason);
                log::info!("connection from {} refused: {reason:?}", conn.addr);
            }
            Ending::TakenOver | Ending::ListenerStopped => {
                let why = ending.close_reason();
                if matches!(conn.phase, Phase::Connected { .. }) {
                    send_disconnect(conn, why.reason);
                }
                log::info!(
                    "client {} from {}: {}, closing",
                    conn.client_id,
                    conn.addr,
                    why.detail
                );
            }
            Ending::Transport(detail) => log::info!(
                "client {} from {}: {detail}, closing",
                conn.client_id,
                conn.addr
            ),
            Ending::SlowConsumer => log::info!(
                "client {} from {}: slow consumer: output unread for too long, closing",
                conn.client_id,
                conn.addr
            ),
            Ending::ClientDisconnected(_) | Ending::Lost | Ending::StoreFailure => {}
        }
        let mut why = ending.close_reason();
        // Only an answer on its way is worth lingering for.
        why.linger &= conn.pending_output() > 0 || conn.closes_with_a_frame();
        conn.closing = Some(Box::new(why));
        self.turn.close.push(token);
        self.mark_flush(token);
    }
}

/// Queues DISCONNECT with `reason` for an MQTT 5 client (3.1.1 has no server DISCONNECT).
pub(super) fn send_disconnect(conn: &mut Connection, reason: ReasonCode) {
    if conn.version == ProtocolVersion::V5 {
        conn.send(&Packet::Disconnect(Disconnect {
            reason,
            properties: Properties::default(),
        }));
    }
}

fn send_connack(conn: &mut Connection, reason: ReasonCode) {
    conn.send(&Packet::ConnAck(protocol::ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    }));
}
