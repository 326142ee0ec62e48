//! The property the `connection` fuzz target checks: whatever one client sends, the broker
//! keeps serving everyone else.
//!
//! One case: open a TCP connection, optionally send a valid CONNECT (the input's first byte
//! picks MQTT 5, MQTT 3.1.1 or none), send the rest of the input, half-close, and wait for
//! the broker to close its side. Everything the broker sent on that connection must decode
//! as whole frames of the connection's version (checked when the harness sent the CONNECT
//! and so knows the version). Then a fresh client must connect and get a PINGRESP to its
//! PINGREQ within [`PROBE_DEADLINE`]. A broker thread that panics aborts the process, which
//! libFuzzer also reports as a crash.
//!
//! Shared with `tests/fuzz_regressions.rs` (through `#[path]`), which replays the seed corpus
//! against the real binary.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use outpost::protocol::{decode, ProtocolVersion, MAX_PACKET_SIZE};

/// How long the fresh client may take from TCP connect to PINGRESP.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// How long the broker may take to close a connection after the client's FIN. Generous:
/// a CONNECT with a password waits for a bcrypt check first.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client id "fuzz".
const CONNECT_V311: &[u8] = &[
    0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x04, b'f', b'u',
    b'z', b'z',
];

/// CONNECT, MQTT 5, clean start, keep alive 60 s, no properties, client id "fuzz".
pub const CONNECT_V5: &[u8] = &[
    0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x04, b'f',
    b'u', b'z', b'z',
];

/// CONNECT, MQTT 3.1.1, clean session, keep alive 60 s, client id "fuzz-probe".
const PROBE_CONNECT: &[u8] = &[
    0x10, 0x16, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x0A, b'f', b'u',
    b'z', b'z', b'-', b'p', b'r', b'o', b'b', b'e',
];
const CONNACK_ACCEPTED: &[u8] = &[0x20, 0x02, 0x00, 0x00];
const PINGREQ: &[u8] = &[0xC0, 0x00];
const PINGRESP: &[u8] = &[0xD0, 0x00];

/// What a case sends before its fuzz bytes, chosen by the input's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// The fuzz bytes are the first thing the broker sees.
    Nothing,
    ConnectV311,
    ConnectV5,
}

/// Splits an input into its preamble and the bytes sent after it. Even first bytes send no
/// CONNECT, so half the inputs start in the connected state and half before it.
pub fn split(data: &[u8]) -> (Preamble, &[u8]) {
    match data.split_first() {
        None => (Preamble::Nothing, data),
        Some((b, rest)) if b & 1 == 0 => (Preamble::Nothing, rest),
        Some((b, rest)) if b & 2 == 0 => (Preamble::ConnectV311, rest),
        Some((_, rest)) => (Preamble::ConnectV5, rest),
    }
}

/// Runs one case against the broker at `addr`; panics if the broker stops serving.
pub fn check_connection(addr: SocketAddr, data: &[u8]) {
    let (preamble, bytes) = split(data);
    let mut victim = TcpStream::connect(addr).expect("the broker refused a TCP connection");
    victim.set_nodelay(true).unwrap();
    let (connect, version) = match preamble {
        Preamble::Nothing => (&[][..], None),
        Preamble::ConnectV311 => (CONNECT_V311, Some(ProtocolVersion::V311)),
        Preamble::ConnectV5 => (CONNECT_V5, Some(ProtocolVersion::V5)),
    };
    // The broker may close mid-way (that is its right on bad input): ignore write errors.
    let _ = victim
        .write_all(&[connect, bytes].concat())
        .and_then(|()| victim.shutdown(Shutdown::Write));
    let (replies, clean_eof) = read_until_close(&mut victim);
    if let Some(version) = version {
        check_replies(&replies, version, clean_eof);
    }
    probe(addr);
}

/// The broker's output must be a sequence of valid frames. After a reset the tail may be
/// lost, so a cut-off last frame only counts after a clean close.
fn check_replies(mut replies: &[u8], version: ProtocolVersion, clean_eof: bool) {
    let all = replies;
    while !replies.is_empty() {
        match decode(replies, version, MAX_PACKET_SIZE) {
            Ok(Some((_, n))) => replies = &replies[n..],
            Ok(None) if !clean_eof => return,
            other => panic!(
                "the broker sent an invalid {version:?} frame at offset {}: {other:?}; all it sent: {all:02x?}",
                all.len() - replies.len()
            ),
        }
    }
}

/// Reads replies until the broker closes the connection, so its handling of every byte is
/// over before the probe starts. Returns what it sent and whether it closed cleanly (FIN)
/// rather than with a reset.
fn read_until_close(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + CLOSE_DEADLINE;
    let mut replies = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the broker kept a connection open {CLOSE_DEADLINE:?} after the client's FIN"
        );
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (replies, true),
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Reset: the broker closed with our unread bytes still queued.
            Err(_) => return (replies, false),
        }
    }
}

/// A fresh client connects and pings; the broker must answer within [`PROBE_DEADLINE`].
pub fn probe(addr: SocketAddr) {
    let deadline = Instant::now() + PROBE_DEADLINE;
    let mut s = TcpStream::connect_timeout(&addr, PROBE_DEADLINE)
        .expect("the broker no longer accepts connections");
    s.set_nodelay(true).unwrap();
    s.write_all(PROBE_CONNECT).expect("probe: send CONNECT");
    let connack = read_exact_by(&mut s, CONNACK_ACCEPTED.len(), deadline, "CONNACK");
    assert_eq!(connack, CONNACK_ACCEPTED, "probe: CONNACK refused");
    s.write_all(PINGREQ).expect("probe: send PINGREQ");
    let pingresp = read_exact_by(&mut s, PINGRESP.len(), deadline, "PINGRESP");
    assert_eq!(pingresp, PINGRESP, "probe: expected PINGRESP");
}

fn read_exact_by(s: &mut TcpStream, n: usize, deadline: Instant, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "probe: no {what} within {PROBE_DEADLINE:?}: the broker stopped serving"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf[got..]) {
            Ok(0) => panic!("probe: the broker closed the connection before {what}"),
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("probe: reading {what}: {e}"),
        }
    }
    buf
}
