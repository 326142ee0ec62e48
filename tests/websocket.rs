//! MQTT over WebSocket: the real binary's `ws_listen` listener with real clients (paho-mqtt
//! `transport="websockets"` in 3.1.1 and 5, MQTT.js over `ws://`) and with raw WebSocket
//! bytes (handshakes good and bad, frames split, packed, broken and oversized, ping and
//! close), side by side with TCP clients on the same broker, and the listener's stop and
//! start through the console inbox.

mod common;

use std::time::Duration;

use common::clients::{Observer, QoS5, V5};
use common::frames::{self, Connect, Version, Will};
use common::raw::Raw;
use common::scripts;
use common::ws::{self, WsNext, WsRaw, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, TEXT, WAIT};
use common::Broker;
use outpost::broker::console::{ask, ConsoleAnswer, ConsoleAsk};
use outpost::broker::{InboxSender, ListenerKind, Server};
use outpost::config::Config;

/// Sends `request` (raw text) and returns the broker's whole answer; it must close after it.
fn handshake_answer(port: u16, request: &str) -> String {
    let mut raw = WsRaw::open(port);
    raw.send(request.as_bytes());
    raw.read_to_close(WAIT)
}

/// Runs a client script with the broker's TCP and WebSocket ports and `version`.
fn run_client(program: &str, dir: &str, script: &str, version: &str) {
    let broker = Broker::start();
    let args = [
        script.to_string(),
        broker.port().to_string(),
        broker.ws_port().to_string(),
        version.to_string(),
    ];
    scripts::run_until_ok(program, dir, &args);
}

#[test]
fn paho_over_websocket_v311() {
    scripts::require_paho();
    run_client("python3", scripts::PYTHON, "websocket.py", "311");
}

#[test]
fn paho_over_websocket_v5() {
    scripts::require_paho();
    run_client("python3", scripts::PYTHON, "websocket.py", "5");
}

#[test]
fn mqtt_js_over_websocket_v311() {
    scripts::require_mqtt_js();
    run_client("node", scripts::JS, "websocket.mjs", "4");
}

#[test]
fn mqtt_js_over_websocket_v5() {
    scripts::require_mqtt_js();
    run_client("node", scripts::JS, "websocket.mjs", "5");
}

/// The chat page's own client (`assets/mqtt-ws.js`) in headless Chromium, logged in as a
/// user made with `outpost user add`.
#[test]
fn the_page_client_talks_mqtt_from_chromium() {
    scripts::require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let config = "bcrypt_cost = 4\n";
    std::fs::write(dir.path().join("outpost.toml"), config).unwrap();
    common::add_user(dir.path(), "ana", "ana-password");
    let broker = Broker::start_in(dir, Some(config));
    let args = [
        "browser_client.mjs".to_string(),
        broker.port().to_string(),
        broker.ws_port().to_string(),
        "ana".to_string(),
        "ana-password".to_string(),
    ];
    scripts::run_until_ok("node", scripts::JS, &args);
}

#[test]
fn a_websocket_client_connects_pings_and_talks_to_a_tcp_client() {
    let broker = Broker::start();
    let port = broker.ws_port();
    for version in [Version::V311, Version::V5] {
        let mut ws = WsRaw::connect(port, &Connect::new(version, "ws-basic"));
        ws.send(&ws::binary(&frames::pingreq()));
        ws.expect_packet(frames::PINGRESP, WAIT);

        ws.send(&ws::binary(&frames::subscribe(version, 1, "ws/in", 1)));
        ws.expect_packet(frames::SUBACK, WAIT);
        let tcp = V5::connect(broker.port(), "tcp-basic");
        tcp.subscribe("ws/out", QoS5::AtLeastOnce);
        tcp.publish("ws/in", QoS5::AtLeastOnce, false, "to ws");
        let publish = ws.expect_packet(frames::PUBLISH, WAIT);
        let (topic, id, payload) = publish.publish(version);
        assert_eq!((&topic[..], &payload[..]), (&b"ws/in"[..], &b"to ws"[..]));
        ws.send(&ws::binary(&frames::ack(frames::PUBACK, id.unwrap())));

        ws.send(&ws::binary(&frames::publish(
            version, "ws/out", 2, 7, b"to tcp",
        )));
        let rec = ws.expect_packet(frames::PUBREC, WAIT);
        assert_eq!(rec.body[..2], [0, 7]);
        ws.send(&ws::binary(&frames::ack(frames::PUBREL, 7)));
        ws.expect_packet(frames::PUBCOMP, WAIT);
        assert_eq!(&tcp.expect_publish().payload[..], b"to tcp");

        ws.send(&ws::binary(&frames::disconnect()));
        ws.expect_close(1000);
        broker.wait_disconnected("ws-basic");
        tcp.disconnect();
    }
}

#[test]
fn mqtt_packets_split_over_frames_and_packed_in_one_are_all_read() {
    let broker = Broker::start();
    let port = broker.ws_port();
    let mut ws = WsRaw::upgraded(port);
    // CONNECT as a fragmented message of three frames with a ping between two of them,
    // the first fragment one byte long.
    let connect = Connect::new(Version::V5, "ws-split").encode();
    let mut bytes = ws::frame(BINARY, &connect[..1]);
    bytes.extend(ws::frame(CONTINUATION, &connect[1..5]));
    bytes.extend(ws::frame(FIN | PING, b"mid"));
    bytes.extend(ws::frame(FIN | CONTINUATION, &connect[5..]));
    // Then SUBSCRIBE split over two messages, each frame sent in its own write.
    let subscribe = frames::subscribe(Version::V5, 1, "split/#", 0);
    bytes.extend(ws::binary(&subscribe[..3]));
    bytes.extend(ws::binary(&subscribe[3..]));
    for byte in bytes {
        ws.send(&[byte]);
    }
    let pong = ws.expect_frame(WAIT);
    assert_eq!((pong.opcode(), &pong.payload[..]), (PONG, &b"mid"[..]));
    ws.expect_packet(frames::CONNACK, WAIT);
    ws.expect_packet(frames::SUBACK, WAIT);

    // Three publishes and a PINGREQ packed in one frame, and an empty frame.
    let mut packed = Vec::new();
    for n in 0..3 {
        packed.extend(frames::publish(
            Version::V5,
            "split/packed",
            0,
            0,
            format!("m{n}").as_bytes(),
        ));
    }
    packed.extend(frames::pingreq());
    ws.send(&ws::binary(&[]));
    ws.send(&ws::binary(&packed));
    for n in 0..3 {
        let (_, _, payload) = ws.expect_packet(frames::PUBLISH, WAIT).publish(Version::V5);
        assert_eq!(payload, format!("m{n}").as_bytes());
    }
    ws.expect_packet(frames::PINGRESP, WAIT);

    // A publish larger than 64 KiB (8-byte frame length), written in odd-sized pieces.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let frame = ws::binary(&frames::publish(Version::V5, "split/big", 0, 0, &big));
    for piece in frame.chunks(7_777) {
        ws.send(piece);
    }
    let (_, _, payload) = ws.expect_packet(frames::PUBLISH, WAIT).publish(Version::V5);
    assert_eq!(payload, big);
}

#[test]
fn bad_handshakes_get_an_http_error_and_the_broker_keeps_serving() {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let port = broker.ws_port();
    let good = ws::request(port);
    let cases = [
        (
            good.replace("Upgrade: websocket\r\n", ""),
            "400 Bad Request",
            "Upgrade",
        ),
        (
            good.replace("Sec-WebSocket-Protocol: mqtt\r\n", ""),
            "400 Bad Request",
            "mqtt",
        ),
        (
            good.replace(ws::KEY, "short"),
            "400 Bad Request",
            "Sec-WebSocket-Key",
        ),
        (
            good.replace("GET /mqtt", "GET /chat"),
            "404 Not Found",
            "path",
        ),
        (
            good.replace("Version: 13", "Version: 8"),
            "426 Upgrade Required",
            "13",
        ),
        (
            "\x16\x03\x01\x02\x00\x01\x00\x01\x03\x03\r\n\r\n".to_string(),
            "400 Bad Request",
            "request line",
        ),
        (
            format!("GET /mqtt HTTP/1.1\r\nX: {}", "y".repeat(9000)),
            "400 Bad Request",
            "too large",
        ),
    ];
    for (request, status, detail) in cases {
        let answer = handshake_answer(port, &request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request:?} → {answer}"
        );
        assert!(answer.contains(detail), "{request:?} → {answer}");
        if status.starts_with("426") {
            assert!(
                answer.contains("\r\nSec-WebSocket-Version: 13\r\n"),
                "{answer}"
            );
        }
    }
    broker
        .wait_for_log(WAIT, |l| l.contains("no websocket endpoint at this path"))
        .expect("a log line for the refused handshake");
    observer.assert_healthy();
    let mut ok = WsRaw::connect(port, &Connect::new(Version::V311, "after-bad"));
    ok.send(&ws::binary(&frames::pingreq()));
    ok.expect_packet(frames::PINGRESP, WAIT);
}

#[test]
fn an_unfinished_handshake_is_closed_at_the_connect_deadline() {
    let broker = Broker::with_config("connect_timeout = 1\n");
    let mut raw = WsRaw::open(broker.ws_port());
    raw.send(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n");
    let rest = raw.read_to_close(Duration::from_secs(5));
    assert!(
        rest.is_empty(),
        "nothing is sent before the request is whole: {rest:?}"
    );
}

/// A connected MQTT 5 client with a will on `will/<id>`, and a TCP subscriber to it.
fn connected_with_will(broker: &Broker, id: &str) -> (WsRaw, V5) {
    let watcher = V5::connect(broker.port(), &format!("watch-{id}"));
    watcher.subscribe(&format!("will/{id}"), QoS5::AtLeastOnce);
    let topic = format!("will/{id}");
    let connect = Connect::new(Version::V5, id).will(Will {
        topic: &topic,
        payload: b"gone",
        qos: 1,
        retain: false,
    });
    (WsRaw::connect(broker.ws_port(), &connect), watcher)
}

#[test]
fn broken_frames_close_with_their_code_and_publish_the_will() {
    let broker = Broker::with_config("max_packet_size = 4096\n");
    let observer = Observer::connect(broker.port());
    let unmasked = vec![0x82, 0x02, 0xC0, 0x00];
    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        ("unmasked", unmasked, 1002, "unmasked frame"),
        (
            "reserved",
            ws::frame(FIN | 0x40 | BINARY, &[0xC0, 0]),
            1002,
            "reserved bits",
        ),
        ("opcode", ws::frame(FIN | 0x3, &[0xC0, 0]), 1002, "opcode"),
        (
            "continuation",
            ws::frame(FIN | CONTINUATION, &[0xC0, 0]),
            1002,
            "continuation",
        ),
        (
            "text",
            ws::frame(FIN | TEXT, b"{\"connect\":1}"),
            1003,
            "text frame",
        ),
        // Only the header of a message one byte over the limit: refused before its payload.
        (
            "oversized",
            ws::binary(&[0; 4097])[..8].to_vec(),
            1009,
            "larger than max_packet_size",
        ),
    ];
    for (id, bytes, code, detail) in cases {
        let (mut ws, watcher) = connected_with_will(&broker, id);
        ws.send(&bytes);
        let packets = ws.expect_close(code);
        assert!(
            packets.is_empty(),
            "{id}: no MQTT answer to a broken frame: {packets:?}"
        );
        let will = watcher.expect_publish();
        assert_eq!(&will.payload[..], b"gone", "{id}");
        broker
            .wait_for_log(WAIT, |l| l.contains(id) && l.contains(detail))
            .unwrap_or_else(|| panic!("{id}: no log line with {detail:?}"));
        watcher.disconnect();
    }
    observer.assert_healthy();
}

#[test]
fn an_oversized_mqtt_packet_split_into_small_frames_gets_the_mqtt_answer() {
    let broker = Broker::with_config("max_packet_size = 4096\n");
    let mut ws = WsRaw::connect(broker.ws_port(), &Connect::new(Version::V5, "ws-big"));
    let publish = frames::publish(Version::V5, "big", 0, 0, &[1; 5000]);
    for piece in publish.chunks(1000) {
        ws.send(&ws::binary(piece));
    }
    // Each message is under the limit; the MQTT packet is not: 0x95 Packet too large.
    let packets = ws.expect_close(1008);
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert_eq!(packets[0].disconnect_reason(), 0x95);
}

#[test]
fn malformed_mqtt_inside_good_frames_is_answered_as_on_tcp() {
    let broker = Broker::start();
    let mut ws = WsRaw::connect(broker.ws_port(), &Connect::new(Version::V5, "ws-malformed"));
    // A PUBLISH to a topic with a wildcard in it.
    ws.send(&ws::binary(&frames::publish(
        Version::V5,
        "a/+",
        0,
        0,
        b"x",
    )));
    let packets = ws.expect_close(1008);
    assert_eq!(packets.len(), 1, "{packets:?}");
    let mut tcp = Raw::connect(broker.port(), &Connect::new(Version::V5, "tcp-malformed")).0;
    tcp.send(&frames::publish(Version::V5, "a/+", 0, 0, b"x"));
    let tcp_frames = tcp.expect_closed(WAIT);
    assert_eq!(
        packets[0].disconnect_reason(),
        tcp_frames[0].disconnect_reason(),
        "same reason code on both transports"
    );
    // Before CONNECT, a non-CONNECT packet closes without an MQTT answer, with Close 1008.
    let mut early = WsRaw::upgraded(broker.ws_port());
    early.send(&ws::binary(&frames::pingreq()));
    assert!(early.expect_close(1008).is_empty());
}

#[test]
fn pings_are_answered_and_the_close_handshake_is_echoed_with_the_will_published() {
    let broker = Broker::start();
    let (mut ws, watcher) = connected_with_will(&broker, "ws-close");
    ws.send(&ws::frame(FIN | PING, b"are you there"));
    let pong = ws.expect_frame(WAIT);
    assert_eq!(
        (pong.opcode(), &pong.payload[..]),
        (PONG, &b"are you there"[..])
    );
    // An unsolicited pong needs no answer.
    ws.send(&ws::frame(FIN | PONG, b""));
    ws.send(&ws::binary(&frames::pingreq()));
    ws.expect_packet(frames::PINGRESP, WAIT);

    // Close 1001 with a reason: echoed, then the TCP connection closes. No DISCONNECT was
    // sent, so the will goes out.
    let mut close = 1001u16.to_be_bytes().to_vec();
    close.extend(b"tab closed");
    ws.send(&ws::frame(FIN | CLOSE, &close));
    assert!(ws.expect_close(1001).is_empty());
    assert_eq!(&watcher.expect_publish().payload[..], b"gone");
    broker
        .wait_for_log(WAIT, |l| {
            l.contains("ws-close") && l.contains("websocket closed by the client")
        })
        .expect("a log line for the client's close");

    // A close with a reserved code is a protocol error.
    let mut bad = WsRaw::connect(
        broker.ws_port(),
        &Connect::new(Version::V311, "ws-bad-close"),
    );
    bad.send(&ws::frame(FIN | CLOSE, &1005u16.to_be_bytes()));
    bad.expect_close(1002);
}

#[test]
fn a_stopping_broker_says_going_away() {
    let mut broker = Broker::start();
    let port = broker.ws_port();
    let mut v5 = WsRaw::connect(port, &Connect::new(Version::V5, "ws-sigterm"));
    let mut upgraded_only = WsRaw::upgraded(port);
    let (status, _) = broker
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("the broker stops on SIGTERM");
    assert!(status.success(), "{status}");
    let packets = v5.expect_close(1001);
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert_eq!(packets[0].disconnect_reason(), 0x8B);
    assert!(upgraded_only.expect_close(1001).is_empty());
}

#[test]
fn a_persistent_session_survives_a_dropped_websocket_and_resumes_over_tcp() {
    let broker = Broker::start();
    let props = frames::Bytes::new().u8(0x11).u32(300).0;
    let connect = Connect::new(Version::V5, "ws-persist")
        .clean(false)
        .properties(props.clone());
    let mut ws = WsRaw::connect(broker.ws_port(), &connect);
    ws.send(&ws::binary(&frames::subscribe(
        Version::V5,
        1,
        "persist/#",
        1,
    )));
    ws.expect_packet(frames::SUBACK, WAIT);
    drop(ws);
    broker.wait_disconnected("ws-persist");

    let publisher = V5::connect(broker.port(), "persist-pub");
    publisher.publish("persist/a", QoS5::AtLeastOnce, false, "queued while away");
    publisher.disconnect();

    let (mut tcp, present) = Raw::connect(broker.port(), &connect);
    assert!(present, "session present on the other transport");
    let (_, _, payload) = tcp.expect_frame(frames::PUBLISH, WAIT).publish(Version::V5);
    assert_eq!(payload, b"queued while away");
}

// ---------------------------------------------------------------------------------------------
// The listener from the console, in process (the test holds the inbox as the web thread does).

fn start_in_process(dir: &tempfile::TempDir) -> (InboxSender, u16, u16) {
    let toml = format!(
        "listen = [\"127.0.0.1:0\"]\nws_listen = [\"127.0.0.1:0\"]\ndb = \"{}\"\n",
        dir.path().join("outpost.db").display()
    );
    let server = Server::bind(Config::from_toml_str(&toml).unwrap()).unwrap();
    let inbox = server.inbox();
    let addrs = server.listen_addrs();
    std::thread::spawn(move || server.run());
    (inbox, addrs[0].port(), addrs[1].port())
}

fn answer(inbox: &InboxSender, what: ConsoleAsk) -> ConsoleAnswer {
    ask(inbox, what, WAIT).expect("the loop answers")
}

#[test]
fn the_websocket_listener_stops_and_starts_from_the_console_without_touching_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, tcp_port, ws_port) = start_in_process(&dir);
    let ConsoleAnswer::Listeners(listeners) = answer(&inbox, ConsoleAsk::Listeners) else {
        panic!("expected the listener list");
    };
    let ws_listener = listeners
        .iter()
        .find(|l| l.kind == ListenerKind::WebSocket)
        .expect("a websocket listener");
    assert_eq!(ws_listener.addr.port(), ws_port);
    assert_eq!(ws_listener.kind.to_string(), "websocket");

    let mut tcp = Raw::connect(tcp_port, &Connect::new(Version::V5, "stays")).0;
    let mut v5 = WsRaw::connect(ws_port, &Connect::new(Version::V5, "ws-stop-v5"));
    let mut v311 = WsRaw::connect(ws_port, &Connect::new(Version::V311, "ws-stop-v311"));
    assert_eq!(
        answer(&inbox, ConsoleAsk::StopListener(ws_listener.id)),
        ConsoleAnswer::Done
    );
    // MQTT 5: DISCONNECT 0x8B inside a binary frame, then Close 1001 (going away).
    let packets = v5.expect_close(1001);
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert_eq!(packets[0].disconnect_reason(), 0x8B);
    assert!(
        v311.expect_close(1001).is_empty(),
        "3.1.1 has no server DISCONNECT"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", ws_port)).is_err());

    tcp.send(&frames::pingreq());
    tcp.expect_frame(frames::PINGRESP, WAIT);

    assert_eq!(
        answer(&inbox, ConsoleAsk::StartListener(ws_listener.id)),
        ConsoleAnswer::Done
    );
    let mut again = WsRaw::connect(ws_port, &Connect::new(Version::V5, "ws-stop-v5"));
    again.send(&ws::binary(&frames::pingreq()));
    again.expect_packet(frames::PINGRESP, WAIT);
    match again.next_frame(Duration::from_millis(200)) {
        WsNext::Timeout => {}
        other => panic!("nothing more expected, got {other:?}"),
    }
}
