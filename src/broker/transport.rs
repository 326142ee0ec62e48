//! The framing layer between a connection's socket and its MQTT read buffer, so every
//! handler stays transport-blind. Plain TCP passes bytes through; WebSocket answers the
//! HTTP upgrade, unwraps client frames in place in the loop's scratch buffer before the
//! MQTT decoder sees them, and wraps pending output in one binary frame at each flush.
//! TLS sits below it, as the connection's own layer (`Connection::tls`); `dispatch.rs`
//! hands it the socket's bytes. It knows nothing of the broker.

use super::listeners::ListenerKind;
use crate::protocol::ReasonCode;
use crate::ws::{CloseCode, Framing};

/// What a connection's bytes travel in.
#[derive(Debug)]
pub enum Transport {
    /// MQTT straight on the socket.
    Tcp,
    /// MQTT in WebSocket binary frames. Boxed: a TCP connection pays one pointer for it.
    WebSocket(Box<Framing>),
}

impl Transport {
    /// The transport a listener's connections start with.
    pub fn for_listener(kind: ListenerKind) -> Transport {
        match kind {
            // TLS is the connection's own layer under the MQTT bytes (`Connection::tls`).
            ListenerKind::Mqtt | ListenerKind::Tls => Transport::Tcp,
            ListenerKind::WebSocket | ListenerKind::SecureWebSocket => {
                Transport::WebSocket(Box::default())
            }
        }
    }

    /// Readies `buf[*sealed..]`, the MQTT bytes queued since the last flush, for the wire.
    pub fn seal(&self, buf: &mut Vec<u8>, sealed: &mut usize) {
        match self {
            Transport::Tcp => *sealed = buf.len(),
            Transport::WebSocket(ws) => ws.seal(buf, sealed),
        }
    }

    /// Seals the output and ends the transport's own session, the connection closing for
    /// `reason`: WebSocket's Close frame (going away when the broker or listener stops,
    /// policy violation after an MQTT error, normal otherwise).
    pub fn close(&mut self, reason: ReasonCode, buf: &mut Vec<u8>, sealed: &mut usize) {
        let Transport::WebSocket(ws) = self else {
            return self.seal(buf, sealed);
        };
        let code = match reason {
            ReasonCode::ServerShuttingDown => CloseCode::GOING_AWAY,
            reason if reason.is_error() => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::NORMAL,
        };
        ws.close(code, buf, sealed);
    }
}
