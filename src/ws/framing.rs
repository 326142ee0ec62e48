//! One connection's WebSocket layer, pure bytes in and out: the opening handshake, then
//! client frames unwrapped into the MQTT byte stream, MQTT output wrapped into binary
//! frames, and the close handshake. The broker keeps one of these, boxed, in every
//! connection accepted on a WebSocket listener (`broker/transport.rs`).

use std::ops::Range;

use super::deframe::{Deframer, PeerEnd};
use super::frame::{self, CloseCode, Opcode};
use super::handshake;

/// A WebSocket connection's state between reads.
#[derive(Debug, Default)]
pub struct Framing {
    /// The handshake is done: bytes in and out are frames.
    open: bool,
    /// Nothing more may be sent: our Close frame, or the handshake's refusal, is out.
    closed: bool,
    /// The HTTP request while it is incomplete.
    // The box keeps an idle connection 16 bytes smaller.
    #[allow(clippy::box_collection)]
    request: Option<Box<Vec<u8>>>,
    deframer: Deframer,
    /// The code our Close frame carries when this layer decided it (an echo of the
    /// client's, or the error it broke); otherwise the broker's reason decides.
    close_code: Option<CloseCode>,
}

/// What one read's bytes gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Input {
    /// Where in the buffer the MQTT bytes now are.
    pub data: Range<usize>,
    /// Bytes to send ahead of any later output: the handshake's answer, a Pong.
    pub reply: Vec<u8>,
    /// The connection must close (after `data` is handled and `reply` sent).
    pub end: Option<End>,
}

/// Why the WebSocket layer ends a connection; the text is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The handshake was refused with an HTTP error (already in `reply`).
    Refused(&'static str),
    /// The client sent a Close frame.
    PeerClosed,
    /// A frame broke the protocol; our Close frame says how.
    Broken(&'static str),
}

impl End {
    pub fn detail(self) -> &'static str {
        match self {
            End::Refused(detail) | End::Broken(detail) => detail,
            End::PeerClosed => "websocket closed by the client",
        }
    }
}

impl Framing {
    /// Takes fresh bytes from the socket; `max_message` bounds one data message, and a
    /// browser's handshake (one with an `Origin`) is refused with 403 unless `admits` the
    /// origin.
    pub fn input(
        &mut self,
        buf: &mut [u8],
        max_message: u32,
        admits: &dyn Fn(&str) -> bool,
    ) -> Input {
        let mut input = Input::default();
        let mut start = 0;
        if !self.open {
            match self.handshake(buf, &mut input.reply, admits) {
                Ok(Some(after)) => start = after,
                Ok(None) => return input,
                Err(end) => {
                    input.end = Some(end);
                    return input;
                }
            }
        }
        let deframed = self.deframer.deframe(&mut buf[start..], max_message);
        input.data = start..start + deframed.data;
        if let Some(ping) = deframed.ping {
            frame::encode(Opcode::Pong, &ping, &mut input.reply);
        }
        input.end = deframed.end.map(|end| match end {
            PeerEnd::Closed(code) => {
                self.close_code = Some(code.unwrap_or(CloseCode::NORMAL));
                End::PeerClosed
            }
            PeerEnd::Broken(e) => {
                self.close_code = Some(e.code);
                End::Broken(e.detail)
            }
        });
        input
    }

    /// Reads the request (buffering it while incomplete) and writes the answer. Ok(Some)
    /// once open, with where the first frame starts in `buf`.
    fn handshake(
        &mut self,
        buf: &[u8],
        reply: &mut Vec<u8>,
        admits: &dyn Fn(&str) -> bool,
    ) -> Result<Option<usize>, End> {
        let held = self.request.as_ref().map_or(0, |r| r.len());
        let parsed = match self.request.as_mut() {
            Some(request) => {
                request.extend_from_slice(buf);
                handshake::parse(request)
            }
            None => handshake::parse(buf),
        };
        let parsed = parsed.and_then(|p| match &p {
            Some((upgrade, _)) if upgrade.origin.as_deref().is_some_and(|o| !admits(o)) => {
                Err(handshake::Refusal {
                    status: 403,
                    detail: "a page from this Origin may not connect (ws_allowed_origins)",
                })
            }
            _ => Ok(p),
        });
        match parsed {
            Ok(Some((upgrade, len))) => {
                self.request = None;
                self.open = true;
                handshake::accept(&upgrade, reply);
                Ok(Some(len - held))
            }
            Ok(None) => {
                if self.request.is_none() {
                    self.request = Some(Box::new(buf.to_vec()));
                }
                Ok(None)
            }
            Err(refusal) => {
                self.request = None;
                self.closed = true;
                handshake::refuse(&refusal, reply);
                Err(End::Refused(refusal.detail))
            }
        }
    }

    /// Frames output: wraps `buf[*sealed..]` (MQTT bytes queued since the last call) in one
    /// binary frame and moves `sealed` to the end. Before the handshake is done the
    /// output is the HTTP answer and goes as it is; after our Close nothing more goes.
    pub fn seal(&self, buf: &mut Vec<u8>, sealed: &mut usize) {
        if self.closed {
            buf.truncate(*sealed);
        } else if self.open && *sealed < buf.len() {
            let (header, used) = frame::server_header(Opcode::Binary, buf.len() - *sealed);
            buf.splice(*sealed..*sealed, header[..used].iter().copied());
        }
        *sealed = buf.len();
    }

    /// Seals the output so far and appends the Close frame that starts (or answers) the
    /// close handshake, once: with this layer's code if it decided one, else `code`.
    /// Nothing when not open or already sent.
    pub fn close(&mut self, code: CloseCode, buf: &mut Vec<u8>, sealed: &mut usize) {
        if !self.open || self.closed {
            return;
        }
        self.seal(buf, sealed);
        frame::encode_close(self.close_code.unwrap_or(code), buf);
        *sealed = buf.len();
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_an_idle_connection_holds_stays_small() {
        // One allocation of this size per idle WebSocket connection (see the idle case
        // of `make bench`); a TCP connection has none.
        assert!(
            std::mem::size_of::<Framing>() <= 56,
            "{}",
            std::mem::size_of::<Framing>()
        );
    }

    const REQUEST: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    /// A masked binary frame holding PINGREQ (mask 01 02 03 04).
    const PINGREQ_FRAME: [u8; 8] = [0x82, 0x82, 1, 2, 3, 4, 0xC0 ^ 1, 2];

    /// The Close frame `f` sends when the broker's own reason would be a normal close.
    fn closing(f: &mut Framing) -> Vec<u8> {
        let (mut out, mut sealed) = (Vec::new(), 0);
        f.close(CloseCode::NORMAL, &mut out, &mut sealed);
        out
    }

    fn is_101(reply: &[u8]) -> bool {
        let text = String::from_utf8_lossy(reply);
        text.starts_with("HTTP/1.1 101 ")
            && text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
    }

    #[test]
    fn a_request_with_a_frame_behind_it_opens_and_yields_the_mqtt_bytes() {
        let mut f = Framing::default();
        let mut buf = REQUEST.to_vec();
        buf.extend(PINGREQ_FRAME);
        let input = f.input(&mut buf, 1024, &|_| true);
        assert!(is_101(&input.reply));
        assert_eq!(&buf[input.data], [0xC0, 0x00]);
        assert_eq!(input.end, None);
        assert!(f.request.is_none());
    }

    #[test]
    fn a_request_split_over_reads_is_held_until_whole() {
        let mut bytes = REQUEST.to_vec();
        bytes.extend(PINGREQ_FRAME);
        for cut in 1..bytes.len() {
            let mut f = Framing::default();
            let mut first = bytes[..cut].to_vec();
            let a = f.input(&mut first, 1024, &|_| true);
            let mut second = bytes[cut..].to_vec();
            let b = f.input(&mut second, 1024, &|_| true);
            let mut data = first[a.data].to_vec();
            data.extend_from_slice(&second[b.data]);
            assert_eq!(data, [0xC0, 0x00], "cut at {cut}");
            let reply = if a.reply.is_empty() { b.reply } else { a.reply };
            assert!(is_101(&reply), "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_request_is_refused_and_nothing_else_is_sent() {
        let mut f = Framing::default();
        let mut buf = b"GET /mqtt HTTP/1.1\r\nHost: gw\r\n\r\n".to_vec();
        let input = f.input(&mut buf, 1024, &|_| true);
        assert!(input.reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(matches!(input.end, Some(End::Refused(d)) if d.contains("Upgrade")));
        let mut out = input.reply.clone();
        let mut sealed = out.len();
        out.extend([0x20, 0x02, 0, 0]);
        f.close(CloseCode::NORMAL, &mut out, &mut sealed);
        f.seal(&mut out, &mut sealed);
        assert_eq!(
            out, input.reply,
            "no MQTT bytes and no Close after a refusal"
        );
    }

    #[test]
    fn output_is_sealed_into_binary_frames_and_ends_with_one_close() {
        let mut f = Framing::default();
        let mut buf = REQUEST.to_vec();
        let input = f.input(&mut buf, 1024, &|_| true);
        // The answer goes out as it is (the broker appends it already sealed).
        let mut out = input.reply;
        let mut sealed = out.len();
        let handshake_len = out.len();
        f.seal(&mut out, &mut sealed);
        assert!(is_101(&out) && out.len() == handshake_len);

        out.extend([0x20, 0x02, 0x00, 0x00]); // CONNACK
        out.extend([0xD0, 0x00]); // PINGRESP
        f.seal(&mut out, &mut sealed);
        f.seal(&mut out, &mut sealed);
        assert_eq!(
            out[handshake_len..],
            [0x82, 0x06, 0x20, 0x02, 0x00, 0x00, 0xD0, 0x00]
        );
        // A DISCONNECT queued just before the close goes first, in its own frame.
        out.extend([0xE0, 0x01, 0x8B]);
        f.close(CloseCode::GOING_AWAY, &mut out, &mut sealed);
        f.close(CloseCode::GOING_AWAY, &mut out, &mut sealed);
        out.extend([0xD0, 0x00]);
        f.seal(&mut out, &mut sealed);
        assert_eq!(
            out[handshake_len + 8..],
            [0x82, 0x03, 0xE0, 0x01, 0x8B, 0x88, 0x02, 0x03, 0xE9],
            "one Close, and nothing after it"
        );
    }

    #[test]
    fn pings_get_pongs_and_a_client_close_is_echoed() {
        let mut f = Framing::default();
        let mut buf = REQUEST.to_vec();
        f.input(&mut buf, 1024, &|_| true);
        // Ping "hi", then Close 1001.
        let mut frames = vec![0x89, 0x82, 0, 0, 0, 0, b'h', b'i'];
        frames.extend([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE9]);
        let input = f.input(&mut frames, 1024, &|_| true);
        assert_eq!(input.reply, [0x8A, 0x02, b'h', b'i']);
        assert_eq!(input.end, Some(End::PeerClosed));
        assert!(input.data.is_empty());
        assert_eq!(closing(&mut f), [0x88, 0x02, 0x03, 0xE9]);
    }

    #[test]
    fn a_broken_frame_closes_with_its_code() {
        let mut f = Framing::default();
        let mut buf = REQUEST.to_vec();
        f.input(&mut buf, 16, &|_| true);
        let mut big = vec![0x82, 0x91, 0, 0, 0, 0];
        big.extend([0u8; 17]);
        let input = f.input(&mut big, 16, &|_| true);
        assert!(matches!(input.end, Some(End::Broken(d)) if d.contains("larger")));
        assert_eq!(closing(&mut f), [0x88, 0x02, 0x03, 0xF1]);
    }
}
