//! A connection's input: bytes from the socket through its transport (WebSocket frames
//! unwrapped in place), decoding its buffered frames, the one `match` from packet to
//! handler, and the one place where a broken rule becomes a reason code on the wire and
//! a log line.

use std::time::Instant;

use super::client::{Hold, Phase};
use super::close::Ending;
use super::transport::Transport;
use super::{Broker, Violation};
use crate::core::keys::ConnKey;
use crate::protocol::{self, Packet};

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

    /// New bytes from the socket: decoded straight from `data` when nothing is buffered;
    /// only an incomplete frame is copied into the connection's own buffer.
    pub(super) fn take_input(&mut self, token: ConnKey, data: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        conn.bytes_in += data.len() as u64;
        if conn.has_buffered_input() {
            conn.buffer_input(data);
            self.handle_input(token, now);
            return;
        }
        let used = self.handle_frames(token, data, now);
        if let Some(conn) = self.conns.get_mut(token) {
            if conn.closing.is_none() {
                conn.buffer_input(&data[used..]);
            }
        }
    }

    /// Handles every whole frame in the connection's own buffer.
    pub(super) fn handle_input(&mut self, token: ConnKey, now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        let mut buf = conn.take_input();
        let used = self.handle_frames(token, &buf, now);
        if let Some(conn) = self.conns.get_mut(token) {
            buf.drain(..used);
            conn.keep_input(buf);
        }
    }

    /// Decodes and handles whole frames from the front of `buf`; returns the bytes used.
    fn handle_frames(&mut self, token: ConnKey, buf: &[u8], now: Instant) -> usize {
        let mut consumed = 0;
        while consumed < buf.len() {
            let Some(conn) = self.conns.get(token) else {
                break;
            };
            if conn.closing.is_some() || matches!(conn.phase, Phase::Authenticating) {
                break;
            }
            match protocol::decode(
                &buf[consumed..],
                conn.version,
                self.config.features.max_packet_size,
            ) {
                Ok(None) => break,
                Ok(Some((packet, len))) => {
                    if let Some(conn) = self.conns.get_mut(token) {
                        conn.last_read = now;
                    }
                    if let Err(v) = self.dispatch(token, packet, now) {
                        self.reject(token, v);
                    }
                    if self.conns.get(token).is_some_and(|c| c.hold == Hold::Held) {
                        // Held back (backpressure): the frame stays, to be handled again.
                        break;
                    }
                    consumed += len;
                }
                Err(e) => {
                    if let (Some(form), Some(conn)) = (e.connack_version, self.conns.get_mut(token))
                    {
                        // The CONNACK that refuses the level goes out in a form its client reads.
                        if conn.phase == Phase::AwaitingConnect {
                            conn.version = form;
                        }
                    }
                    self.reject(token, Violation::new(e.reason, e.detail));
                    break;
                }
            }
        }
        consumed
    }

    fn dispatch(
        &mut self,
        token: ConnKey,
        packet: Packet<'_>,
        now: Instant,
    ) -> Result<(), Violation> {
        let session = match self.conns[token].phase {
            Phase::AwaitingConnect => {
                return match packet {
                    Packet::Connect(connect) => self.handle_connect(token, connect, now),
                    _ => Err(Violation::protocol("first packet is not CONNECT")),
                };
            }
            Phase::Connected { session } => session,
            Phase::Authenticating => return Ok(()),
        };
        match packet {
            Packet::Publish(publish) => self.handle_publish(token, session, publish, now),
            Packet::PubAck(ack) => self.handle_puback(token, session, ack, now),
            Packet::PubRec(ack) => self.handle_pubrec(token, session, ack, now),
            Packet::PubRel(ack) => self.handle_pubrel(token, session, ack),
            Packet::PubComp(ack) => self.handle_pubcomp(token, session, ack, now),
            Packet::Subscribe(subscribe) => self.handle_subscribe(token, session, subscribe, now),
            Packet::Unsubscribe(unsubscribe) => {
                self.handle_unsubscribe(token, session, unsubscribe, now)
            }
            Packet::PingReq => {
                self.conns[token].send(&Packet::PingResp);
                self.mark_flush(token);
                Ok(())
            }
            Packet::Disconnect(disconnect) => self.handle_disconnect(token, session, disconnect),
            Packet::Connect(_) => Err(Violation::protocol("second CONNECT")),
            Packet::Auth(_) => Err(Violation::protocol("AUTH without an authentication method")),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                Err(Violation::protocol("server-only packet sent by a client"))
            }
        }
    }

    /// Answers a broken rule (see `close.rs`): the connection closes and its will is
    /// published.
    pub(super) fn reject(&mut self, token: ConnKey, v: Violation) {
        self.end_connection(token, Ending::Violation(v));
    }
}
