//! A lingering close: when the broker refuses a CONNECT or disconnects a client with a
//! reason code while the client is still sending, the reason arrives, followed by a clean
//! end of stream (FIN, or TLS close_notify), not a reset; the client's writes meanwhile do
//! not fail. Over plain TCP, WebSocket and TLS; each scenario runs many times, since a
//! reset is a race the client loses only some of the time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::certs::Certs;
use common::clients::Observer;
use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::upstream::free_port;
use common::{ws, Broker};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// How often each scenario runs.
const RUNS: usize = 20;
/// What the client sends after provoking the refusal, without reading.
const KEEP_SENDING: usize = 1_000_000;
/// How long the client waits between provoking the refusal and sending on.
const PAUSE: Duration = Duration::from_millis(20);
/// The CONNACK an MQTT 5 client gets for protocol level 6: 0x84, no properties.
const CONNACK_0X84: [u8; 5] = [0x20, 0x03, 0x00, 0x84, 0x00];

/// Writes `provoke`, pauses, then `filler` over and over until `KEEP_SENDING` bytes went (every
/// write must succeed), then reads to the end of the stream (which must be clean).
/// Returns what the broker sent.
fn provoke_and_keep_sending(
    stream: &mut (impl Read + Write),
    provoke: &[u8],
    filler: &[u8],
) -> Result<Vec<u8>, String> {
    stream
        .write_all(provoke)
        .map_err(|e| format!("provoking write failed: {e}"))?;
    // Time for the broker to answer and close: what follows must not fit the socket
    // buffers before that, or a reset would come only after the last write.
    std::thread::sleep(PAUSE);
    let mut sent = 0;
    while sent < KEEP_SENDING {
        stream
            .write_all(filler)
            .map_err(|e| format!("write failed after {sent} bytes: {e}"))?;
        sent += filler.len();
    }
    stream.flush().map_err(|e| format!("flush failed: {e}"))?;
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) => Err(format!("read failed after {got:02x?}: {e}")),
    }
}

fn tcp(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
    timeouts(&stream);
    stream
}

/// No step of a run may hang: a broker that stops reading makes a write time out.
fn timeouts(stream: &TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
}

/// The MQTT packets in `bytes`, whole.
fn packets(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while bytes.len() > 1 {
        let (len, used) = frames::read_varint(&bytes[1..]).expect("a whole length");
        let (packet, rest) = bytes.split_at(1 + used + len);
        out.push(packet.to_vec());
        bytes = rest;
    }
    assert!(
        bytes.is_empty(),
        "a partial packet at the end: {bytes:02x?}"
    );
    out
}

#[test]
fn a_refused_connect_answers_0x84_while_the_client_keeps_sending() {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let connect = frames::connect_with_protocol("MQTT", 6, "too-new");
    for run in 0..RUNS {
        let got = provoke_and_keep_sending(&mut tcp(broker.port()), &connect, &[0; 16 * 1024]);
        assert_eq!(got, Ok(CONNACK_0X84.to_vec()), "run {run}");
    }
    observer.assert_healthy();
}

#[test]
fn a_flood_of_open_qos2_flows_answers_0x93_while_the_client_keeps_sending() {
    let broker = Broker::with_config("receive_maximum = 2\n");
    let observer = Observer::connect(broker.port());
    let flood: Vec<u8> = (1..=5)
        .flat_map(|id| frames::publish(Version::V5, "flood", 2, id, b"x"))
        .collect();
    let more: Vec<u8> = (6..=200)
        .flat_map(|id| frames::publish(Version::V5, "flood", 2, id, &[0; 64]))
        .collect();
    for run in 0..RUNS {
        let (raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "flooder"));
        let mut stream = raw.into_stream();
        timeouts(&stream);
        let got = provoke_and_keep_sending(&mut stream, &flood, &more)
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        let got = packets(&got);
        let (last, acks) = got.split_last().expect("packets");
        assert_eq!(last, &[0xE0, 0x02, 0x93, 0x00], "run {run}: {got:02x?}");
        assert!(
            acks.iter().all(|p| p[0] == frames::PUBREC),
            "run {run}: {got:02x?}"
        );
    }
    observer.assert_healthy();
}

#[test]
fn a_refused_connect_over_websocket_answers_0x84_then_close_while_the_client_keeps_sending() {
    let broker = Broker::with_config("ws_listen = [\"127.0.0.1:0\"]\n");
    let port = broker.ws_port();
    let observer = Observer::connect(broker.port());
    let connect = ws::binary(&frames::connect_with_protocol("MQTT", 6, "too-new"));
    let filler = ws::binary(&[0; 16 * 1024]);
    for run in 0..RUNS {
        let mut stream = tcp(port);
        stream.write_all(ws::request(port).as_bytes()).unwrap();
        let head = read_http_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        let got = provoke_and_keep_sending(&mut stream, &connect, &filler)
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        // A binary frame with the CONNACK, then Close 1008 (policy violation).
        let mut expected = vec![0x82, CONNACK_0X84.len() as u8];
        expected.extend(CONNACK_0X84);
        expected.extend([0x88, 0x02, 0x03, 0xF0]);
        assert_eq!(got, expected, "run {run}");
    }
    observer.assert_healthy();
}

/// Reads the answer to the upgrade request, byte by byte up to its blank line.
fn read_http_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the upgrade answer");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn a_refused_connect_over_tls_answers_0x84_then_close_notify_while_the_client_keeps_sending() {
    let certs = Certs::make();
    let port = free_port();
    let broker = Broker::with_config(&format!(
        "tls_listen = [\"127.0.0.1:{port}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        certs.arg("server.pem"),
        certs.arg("server.key")
    ));
    broker
        .wait_for_log(Duration::from_secs(5), |l| l.contains("mqtts listener on"))
        .expect("the TLS listener is announced");
    let observer = Observer::connect(broker.port());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.path("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let connect = frames::connect_with_protocol("MQTT", 6, "too-new");
    for run in 0..RUNS {
        let session =
            rustls::ClientConnection::new(config.clone(), "localhost".try_into().unwrap()).unwrap();
        // rustls reports an end without close_notify as an error: the read checks it came.
        let mut stream = rustls::StreamOwned::new(session, tcp(port));
        let got = provoke_and_keep_sending(&mut stream, &connect, &[0; 16 * 1024]);
        assert_eq!(got, Ok(CONNACK_0X84.to_vec()), "run {run}");
    }
    observer.assert_healthy();
}

/// Opens a connection and sends CONNECT; true when the broker answers with a CONNACK
/// (false: closed at accept, as past a connection cap).
fn accepted(port: u16, id: &str) -> bool {
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&Connect::new(Version::V5, id).encode());
    let frames = raw.expect_closed_or_connack();
    frames.iter().any(|f| f.kind() == frames::CONNACK)
}

#[test]
fn a_lingering_socket_counts_toward_the_address_cap_until_its_time_is_up() {
    let broker = Broker::with_config("max_connections_per_address = 1\n");
    // Refused, then silent and never closing: its socket lingers for its whole time.
    let mut silent = tcp(broker.port());
    silent
        .write_all(&frames::connect_with_protocol("MQTT", 6, "too-new"))
        .unwrap();
    let mut connack = [0u8; CONNACK_0X84.len()];
    silent.read_exact(&mut connack).unwrap();
    assert_eq!(connack, CONNACK_0X84);
    assert!(
        !accepted(broker.port(), "meanwhile"),
        "the lingering socket is not counted"
    );
    broker
        .wait_for_log(Duration::from_secs(3), |l| {
            l.contains("refused: max_connections_per_address")
        })
        .expect("the cap's log line");
    // Then the broker closes it (end of stream) and the address may connect again.
    let mut rest = Vec::new();
    assert_eq!(silent.read_to_end(&mut rest).unwrap(), 0);
    let again = common::wait_until(Duration::from_secs(5), || {
        accepted(broker.port(), "afterwards").then_some(())
    });
    assert!(again.is_some(), "the address stayed at its cap");
}

#[test]
fn a_client_that_never_stops_sending_is_cut_off() {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut stream = tcp(broker.port());
    let outcome = provoke_and_keep_sending_forever(&mut stream);
    assert!(outcome.is_err(), "still writing after {outcome:?} bytes");
    observer.assert_healthy();
}

/// Provokes a refusal, then writes until a write fails; Ok(bytes) if still going after 50 MB.
fn provoke_and_keep_sending_forever(stream: &mut TcpStream) -> Result<usize, String> {
    stream
        .write_all(&frames::connect_with_protocol("MQTT", 6, "too-new"))
        .unwrap();
    let chunk = [0u8; 16 * 1024];
    let mut sent = 0;
    while sent < 50_000_000 {
        stream
            .write_all(&chunk)
            .map_err(|e| format!("cut off after {sent} bytes: {e}"))?;
        sent += chunk.len();
    }
    Ok(sent)
}
