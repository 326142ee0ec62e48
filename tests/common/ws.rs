//! A raw MQTT-over-WebSocket client for tests: writes the upgrade request and masked frames
//! byte by byte as the test wants them (split, packed, broken), and reads the broker's
//! frames back, both as WebSocket frames and as the MQTT packets their payloads carry.
//! Written apart from `outpost::ws` so that a test does not check the broker against itself.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::frames::{self, Connect, Frame};

pub const WAIT: Duration = Duration::from_secs(5);
/// The mask every frame the test sends uses; not zero, so unmasking is really tested.
pub const MASK: [u8; 4] = [0xA5, 0x3C, 0x0F, 0x96];
/// RFC 6455 §1.3's sample key and the answer the broker must give to it.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub const BINARY: u8 = 0x2;
pub const TEXT: u8 = 0x1;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// The upgrade request MQTT.js sends, for `port`.
pub fn request(port: u16) -> String {
    format!(
        "GET /mqtt HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
}

/// A masked client frame: `first` is FIN/RSV/opcode, the length takes the shortest form.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend(MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A final binary frame.
pub fn binary(payload: &[u8]) -> Vec<u8> {
    frame(FIN | BINARY, payload)
}

/// One frame from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsFrame {
    pub first: u8,
    pub payload: Vec<u8>,
}

impl WsFrame {
    pub fn opcode(&self) -> u8 {
        self.first & 0x0F
    }

    /// A Close frame's code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode() == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// What the next read gave.
#[derive(Debug)]
pub enum WsNext {
    Frame(WsFrame),
    Closed,
    Timeout,
}

pub struct WsRaw {
    stream: TcpStream,
    /// Bytes from the socket not yet taken as frames.
    buf: Vec<u8>,
    /// The MQTT bytes of the binary frames taken so far, not yet taken as packets.
    mqtt: Vec<u8>,
}

impl WsRaw {
    /// A TCP connection to the WebSocket listener, nothing sent yet.
    pub fn open(port: u16) -> WsRaw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the ws listener");
        stream.set_nodelay(true).unwrap();
        WsRaw {
            stream,
            buf: Vec::new(),
            mqtt: Vec::new(),
        }
    }

    /// Opens and completes the handshake, checking the 101 answer.
    pub fn upgraded(port: u16) -> WsRaw {
        let mut ws = WsRaw::open(port);
        ws.send(request(port).as_bytes());
        let answer = ws.http_answer(WAIT);
        assert!(
            answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{answer}"
        );
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{answer}");
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{answer}");
        assert!(
            answer.contains(&format!("\r\nSec-WebSocket-Accept: {ACCEPT}\r\n")),
            "{answer}"
        );
        assert!(
            answer.contains("\r\nSec-WebSocket-Protocol: mqtt\r\n"),
            "{answer}"
        );
        ws
    }

    /// Upgrades, sends CONNECT in one binary frame and expects a successful CONNACK.
    pub fn connect(port: u16, connect: &Connect) -> WsRaw {
        let mut ws = WsRaw::upgraded(port);
        ws.send(&binary(&connect.encode()));
        let connack = ws.expect_packet(frames::CONNACK, WAIT);
        assert_eq!(connack.connack().1, 0, "CONNACK refused: {connack:?}");
        ws
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads an HTTP answer head (up to its blank line); what follows stays buffered.
    pub fn http_answer(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).expect("UTF-8 answer");
            }
            if !self.fill(deadline) {
                panic!(
                    "no whole HTTP answer; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// Everything the broker sends until it closes the connection, as text.
    pub fn read_to_close(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while self.fill(deadline) {}
        assert!(
            Instant::now() < deadline,
            "still open after {timeout:?}: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }

    /// Reads more bytes; false on close, error or deadline.
    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        self.stream.set_read_timeout(Some(deadline - now)).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(_) => false,
        }
    }

    /// The next frame from the broker, which must be unmasked and final.
    pub fn next_frame(&mut self, timeout: Duration) -> WsNext {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_frame() {
                return WsNext::Frame(frame);
            }
            if Instant::now() >= deadline {
                return WsNext::Timeout;
            }
            let before = self.buf.len();
            if !self.fill(deadline) && self.buf.len() == before && Instant::now() < deadline {
                return WsNext::Closed;
            }
        }
    }

    fn take_frame(&mut self) -> Option<WsFrame> {
        let [first, second, rest @ ..] = &self.buf[..] else {
            return None;
        };
        assert_eq!(second & 0x80, 0, "server frames must not be masked");
        assert_eq!(first & 0x70, 0, "no reserved bits");
        assert_ne!(first & 0x80, 0, "the broker sends final frames only");
        let (len, header) = match second & 0x7F {
            126 => (
                usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().unwrap())),
                4,
            ),
            127 => (
                u64::from_be_bytes(rest.get(..8)?.try_into().unwrap()) as usize,
                10,
            ),
            n => (usize::from(n), 2),
        };
        if self.buf.len() < header + len {
            return None;
        }
        let first = *first;
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some(WsFrame { first, payload })
    }

    /// Waits for the next frame; panics on close or timeout.
    pub fn expect_frame(&mut self, timeout: Duration) -> WsFrame {
        match self.next_frame(timeout) {
            WsNext::Frame(f) => f,
            other => panic!("expected a websocket frame, got {other:?}"),
        }
    }

    /// The next MQTT packet, from as many binary frames as it takes (others skipped).
    pub fn next_packet(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(packet) = self.take_packet() {
                return Some(packet);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left) {
                WsNext::Frame(f) if f.opcode() == BINARY => self.mqtt.extend(f.payload),
                WsNext::Frame(f) => panic!("expected a binary frame, got {f:?}"),
                WsNext::Closed | WsNext::Timeout => return None,
            }
        }
    }

    fn take_packet(&mut self) -> Option<Frame> {
        let (len, used) = frames::read_varint(self.mqtt.get(1..)?)?;
        let total = 1 + used + len;
        if self.mqtt.len() < total {
            return None;
        }
        let packet = Frame {
            first_byte: self.mqtt[0],
            body: self.mqtt[1 + used..total].to_vec(),
        };
        self.mqtt.drain(..total);
        Some(packet)
    }

    /// Waits for an MQTT packet of `kind`, skipping other packets.
    pub fn expect_packet(&mut self, kind: u8, timeout: Duration) -> Frame {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_packet(left) {
                Some(p) if p.kind() == kind & 0xF0 => return p,
                Some(_) => continue,
                None => panic!("expected MQTT packet type {kind:#04x}, got nothing"),
            }
        }
    }

    /// The broker must send a Close frame with `code` (after any binary frames, whose MQTT
    /// packets are returned) and then close the TCP connection.
    pub fn expect_close(&mut self, code: u16) -> Vec<Frame> {
        let mut packets = Vec::new();
        loop {
            match self.next_frame(WAIT) {
                WsNext::Frame(f) if f.opcode() == BINARY => {
                    self.mqtt.extend(f.payload);
                    while let Some(p) = self.take_packet() {
                        packets.push(p);
                    }
                }
                WsNext::Frame(f) if f.opcode() == CLOSE => {
                    assert_eq!(f.close_code(), Some(code), "close frame {f:?}");
                    break;
                }
                other => panic!("expected a close frame with {code}, got {other:?}"),
            }
        }
        match self.next_frame(WAIT) {
            WsNext::Closed => packets,
            other => panic!("expected the TCP connection to close after Close, got {other:?}"),
        }
    }
}
