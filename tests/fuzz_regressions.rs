//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own checks, so
//! `cargo test` keeps every seed and every crash ever found passing without libFuzzer.
//!
//! The checks are the fuzz crate's files, included by path: `codec::check_decode` (no panic,
//! decode stays inside the buffer, encode then decode gives the same packet) and
//! `connection::check_connection` (after any bytes from one client, a fresh client still gets
//! a PINGRESP within a second), here against the real binary, and `ws::check_ws` (the
//! WebSocket layer gives the same outcome in one read or many). A crash found by fuzzing is
//! added as a file under `fuzz/corpus/<target>/` named `crash-<what>`, and described in
//! `docs/fuzzing.md`.

mod common;

#[path = "../fuzz/src/codec.rs"]
mod codec;
#[path = "../fuzz/src/connection.rs"]
mod connection;
#[path = "../fuzz/src/ws.rs"]
mod ws;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::Broker;
use outpost::protocol::{decode, ProtocolVersion, MAX_PACKET_SIZE};

/// Every file of `fuzz/corpus/<target>/`, sorted, with its name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seeds", dir.display());
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Seeds are hand-made valid frames; files named `crash-*` are fuzz findings and may be
/// anything.
fn is_seed(name: &str) -> bool {
    !name.starts_with("crash-")
}

fn replay_decode(target: &str, version: ProtocolVersion) {
    for (name, data) in corpus(target) {
        // A failing check panics with its own message; name the file that caused it.
        let result = std::panic::catch_unwind(|| codec::check_decode(&data, version));
        assert!(
            result.is_ok(),
            "{target}/{name} ({data:02x?}) failed the check"
        );
        if is_seed(&name) {
            // A seed that stopped decoding would quietly stop steering the fuzzer.
            match decode(&data, version, MAX_PACKET_SIZE) {
                Ok(Some((_, n))) => assert_eq!(n, data.len(), "{target}/{name}: trailing bytes"),
                other => panic!("{target}/{name} is not a valid frame: {other:?}"),
            }
        }
    }
}

#[test]
fn decode_v5_corpus() {
    replay_decode("decode_v5", ProtocolVersion::V5);
}

#[test]
fn decode_v311_corpus() {
    replay_decode("decode_v311", ProtocolVersion::V311);
}

/// Each packet type has a seed in both versions (AUTH only in MQTT 5), so the fuzzer starts
/// from every decoder.
#[test]
fn seeds_cover_every_packet_type() {
    for (target, version, types) in [
        ("decode_v5", ProtocolVersion::V5, 1..=15u8),
        ("decode_v311", ProtocolVersion::V311, 1..=14u8),
    ] {
        let seen: Vec<u8> = corpus(target)
            .iter()
            .filter(|(name, _)| is_seed(name))
            .filter(|(_, data)| matches!(decode(data, version, MAX_PACKET_SIZE), Ok(Some(_))))
            .map(|(_, data)| data[0] >> 4)
            .collect();
        for kind in types {
            assert!(
                seen.contains(&kind),
                "{target}: no seed of packet type {kind}"
            );
        }
    }
}

#[test]
fn ws_frames_corpus() {
    for (name, data) in corpus("ws_frames") {
        let result = std::panic::catch_unwind(|| ws::check_ws(&data));
        assert!(
            result.is_ok(),
            "ws_frames/{name} ({data:02x?}) failed the check"
        );
    }
}

#[test]
fn connection_corpus() {
    let broker = Broker::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], broker.port()));
    connection::probe(addr);
    for (name, data) in corpus("connection") {
        let result = std::panic::catch_unwind(|| connection::check_connection(addr, &data));
        assert!(
            result.is_ok(),
            "connection/{name} ({data:02x?}) failed the connection check"
        );
    }
}

/// Found by the `connection` target: a second CONNECT whose protocol level is unknown made
/// the broker answer an MQTT 5 client with DISCONNECT 0x84 (Unsupported Protocol Version), a
/// CONNACK-only reason code that clients reject as malformed. A second CONNECT is a Protocol
/// Error whatever it holds (MQTT-3.1.0-2).
#[test]
fn crash_v5_second_connect_bad_level() {
    use std::io::{Read, Write};
    let broker = Broker::start();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", broker.port())).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let input = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/connection/crash-v5-second-connect-bad-level"),
    )
    .unwrap();
    let (connection::Preamble::ConnectV5, second_connect) = connection::split(&input) else {
        panic!("the regression input must use the MQTT 5 preamble");
    };
    s.write_all(connection::CONNECT_V5).unwrap();
    s.write_all(second_connect).unwrap();
    let mut replies = Vec::new();
    let _ = s.read_to_end(&mut replies);
    let Ok(Some((_, n))) = decode(&replies, ProtocolVersion::V5, MAX_PACKET_SIZE) else {
        panic!("no CONNACK: {replies:02x?}");
    };
    assert_eq!(
        &replies[n..],
        [0xE0, 0x02, 0x82, 0x00],
        "expected DISCONNECT Protocol Error after the CONNACK"
    );
}

#[test]
fn connection_input_layout() {
    use connection::{split, Preamble};
    assert_eq!(split(b""), (Preamble::Nothing, &b""[..]));
    assert_eq!(split(b"\x00ab"), (Preamble::Nothing, &b"ab"[..]));
    assert_eq!(split(b"\x01ab"), (Preamble::ConnectV311, &b"ab"[..]));
    assert_eq!(split(b"\x03ab"), (Preamble::ConnectV5, &b"ab"[..]));
    assert_eq!(split(b"\xff"), (Preamble::ConnectV5, &b""[..]));
}
