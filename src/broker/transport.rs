//! The framing layer between a connection's socket and its MQTT read buffer, so every
//! handler stays transport-blind. Plain TCP passes bytes through; WebSocket answers the
//! HTTP upgrade, unwraps client frames in place in the loop's scratch buffer before the
//! MQTT decoder sees them, and wraps pending output in one binary frame at each flush.
//! (A TLS layer would be one more variant here.)

use std::time::Instant;

use super::close::Ending;
use super::listeners::ListenerKind;
use super::Broker;
use crate::core::keys::ConnKey;
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

impl Broker {
    /// Bytes fresh from a connection's socket (in the loop's scratch buffer, which the
    /// WebSocket layer unwraps in place) go to the MQTT decoder.
    pub(super) fn receive(&mut self, token: ConnKey, data: &mut [u8], now: Instant) {
        let max_message = self.config.features.max_packet_size;
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        let Transport::WebSocket(ws) = &mut conn.transport else {
            self.take_input(token, data, now);
            return;
        };
        // A browser page may connect only from the console's hosts or the configured list;
        // asked once, when a handshake with an `Origin` is complete.
        let sites = &self.web_sites;
        let socket = &conn.socket;
        let admits = |origin: &str| {
            let local = socket.local_addr().map(|a| a.ip());
            local.is_ok_and(|local| sites.origin_allowed(origin, local))
        };
        let input = ws.input(data, max_message, &admits);
        if !input.reply.is_empty() {
            conn.send_raw(&input.reply);
            self.mark_flush(token);
        }
        if !input.data.is_empty() {
            self.take_input(token, &data[input.data], now);
        }
        if let Some(end) = input.end {
            self.end_connection(token, Ending::Transport(end.detail()));
        }
    }
}
