//! A raw TCP MQTT client: writes bytes from `frames`, reads whole frames back, and tells a
//! clean close from silence.

use super::frames::{self, Connect, Frame, Version};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// What the raw client saw when it asked for the next frame.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    pub version: Version,
}

impl Raw {
    /// Opens a TCP connection without sending anything.
    pub fn open(port: u16, version: Version) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
            version,
        }
    }

    /// Opens a connection, sends CONNECT and expects a successful CONNACK; returns session present.
    pub fn connect(port: u16, connect: &Connect) -> (Raw, bool) {
        let mut raw = Raw::open(port, connect.version);
        raw.send(&connect.encode());
        let connack = raw.expect_frame(frames::CONNACK, Duration::from_secs(5));
        let (session_present, code) = connack.connack();
        assert_eq!(
            code, 0,
            "CONNACK refused for {:?}: {connack:?}",
            connect.client_id
        );
        (raw, session_present)
    }

    /// Sends bytes; a write error is ignored because the broker may legitimately have closed.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Waits up to `timeout` for the next whole frame.
    pub fn next(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.take_frame() {
                return Next::Frame(frame);
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::Timeout;
            }
            self.stream.set_read_timeout(Some(deadline - now)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Next::Closed,
            }
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if self.buf.len() < 2 {
            return None;
        }
        let (len, used) = frames::read_varint(&self.buf[1..])?;
        let total = 1 + used + len;
        if self.buf.len() < total {
            return None;
        }
        let frame = Frame {
            first_byte: self.buf[0],
            body: self.buf[1 + used..total].to_vec(),
        };
        self.buf.drain(..total);
        Some(frame)
    }

    /// Waits for a frame of the given type, skipping others (e.g. PINGRESP); panics on close/timeout.
    pub fn expect_frame(&mut self, kind: u8, timeout: Duration) -> Frame {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Next::Frame(f) if f.kind() == kind & 0xF0 => return f,
                Next::Frame(_) => continue,
                other => panic!("expected packet type {kind:#04x}, got {other:?}"),
            }
        }
    }

    /// Reads until the broker closes the connection; returns every frame received before the
    /// close, or panics if the connection is still open after `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        match self.frames_until_closed(timeout) {
            Ok(frames) => frames,
            Err(frames) => {
                panic!("connection still open after {timeout:?}; received before that: {frames:?}")
            }
        }
    }

    /// Like `expect_closed`, but reports a timeout as `Err(frames so far)` instead of panicking.
    pub fn frames_until_closed(&mut self, timeout: Duration) -> Result<Vec<Frame>, Vec<Frame>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Next::Frame(f) => seen.push(f),
                Next::Closed => return Ok(seen),
                Next::Timeout => return Err(seen),
            }
        }
    }

    /// MQTT 5: the broker must send DISCONNECT with `reason` and then close.
    pub fn expect_disconnect_and_close(&mut self, reason: u8) {
        let frames = self.expect_closed(Duration::from_secs(3));
        let disconnects: Vec<&Frame> = frames
            .iter()
            .filter(|f| f.kind() == frames::DISCONNECT)
            .collect();
        assert!(
            !disconnects.is_empty(),
            "expected DISCONNECT with reason {reason:#04x} before close, got frames {frames:?}"
        );
        assert_eq!(
            disconnects.last().unwrap().disconnect_reason(),
            reason,
            "wrong DISCONNECT reason code (frames: {frames:?})"
        );
    }

    /// True when no frame and no close arrive within `wait` (the connection is still alive).
    pub fn is_quiet(&mut self, wait: Duration) -> bool {
        matches!(self.next(wait), Next::Timeout)
    }

    /// Reads until a CONNACK arrives or the broker closes; every frame received.
    pub fn expect_closed_or_connack(&mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        loop {
            match self.next(Duration::from_secs(3)) {
                Next::Frame(f) if f.kind() == frames::CONNACK => {
                    seen.push(f);
                    return seen;
                }
                Next::Frame(f) => seen.push(f),
                Next::Closed => return seen,
                Next::Timeout => panic!("neither CONNACK nor close; received {seen:?}"),
            }
        }
    }

    /// The socket itself, for a test that drives it by hand from here (nothing may be
    /// buffered unread).
    pub fn into_stream(self) -> TcpStream {
        assert!(self.buf.is_empty(), "unread bytes: {:02x?}", self.buf);
        self.stream
    }

    /// Closes the socket without sending DISCONNECT ("abnormal" disconnect).
    pub fn drop_socket(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
