//! MQTT 5 properties end to end: request/response metadata forwarded unchanged, Payload
//! Format Indicator, Response Information, Message Expiry, outbound Topic Aliases, Receive
//! Maximum and Maximum Packet Size toward a client, DISCONNECT reason codes both ways, AUTH.

mod common;

use common::clients::{QoS5, V5, WAIT};
use common::frames::{self, prop, prop5, Bytes, Connect, Frame, Version, Will};
use common::raw::{Next, Raw};
use common::sys::{number, sys_client, wait_sys};
use common::Broker;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use std::time::{Duration, Instant};

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

fn publish_properties() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    }
}

/// Publishes with properties through rumqttc and waits for the PUBACK.
fn publish_with(client: &V5, topic: &str, payload: &[u8], properties: PublishProperties) {
    client
        .client
        .publish_with_properties(
            topic,
            QoS5::AtLeastOnce,
            false,
            payload.to_vec(),
            properties,
        )
        .unwrap();
    client.expect(
        |p| matches!(p, common::clients::V5Packet::PubAck(_)),
        "PUBACK",
    );
}

/// A raw MQTT 5 connection with CONNECT `properties`; returns it with its CONNACK.
fn raw_v5(port: u16, id: &str, properties: Vec<u8>) -> (Raw, Frame) {
    let mut raw = Raw::open(port, Version::V5);
    raw.send(
        &Connect::new(Version::V5, id)
            .properties(properties)
            .encode(),
    );
    let connack = raw.expect_frame(frames::CONNACK, WAIT);
    (raw, connack)
}

fn connack_property(connack: &Frame, id: u8) -> Option<Vec<u8>> {
    connack
        .connack_properties()
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, v)| v)
}

/// A two-byte-length-prefixed property value as text.
fn text(value: &[u8]) -> String {
    String::from_utf8(value[2..].to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Request/response and metadata

#[test]
fn request_response_and_metadata_properties_are_forwarded_unchanged() {
    let broker = Broker::start();
    let responder = V5::connect(broker.port(), "responder");
    responder.subscribe("rr/requests", QoS5::AtLeastOnce);
    let requester = V5::connect(broker.port(), "requester");
    requester.subscribe("rr/replies/requester", QoS5::AtLeastOnce);

    let user = vec![
        ("z".to_string(), "first".to_string()),
        ("a".to_string(), "second".to_string()),
        ("z".to_string(), "third".to_string()),
    ];
    let sent = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("rr/replies/requester".into()),
        correlation_data: Some(b"\x00\x01\xfe\xff".to_vec().into()),
        user_properties: user.clone(),
        ..publish_properties()
    };
    publish_with(&requester, "rr/requests", b"{\"q\":1}", sent);

    let request = responder.expect_publish();
    let p = request
        .properties
        .expect("request delivered without properties");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.response_topic.as_deref(), Some("rr/replies/requester"));
    assert_eq!(
        p.correlation_data.as_deref(),
        Some(&b"\x00\x01\xfe\xff"[..])
    );
    assert_eq!(
        p.user_properties, user,
        "user properties keep their order and duplicates"
    );

    let reply = PublishProperties {
        correlation_data: p.correlation_data.clone(),
        ..publish_properties()
    };
    publish_with(
        &responder,
        p.response_topic.as_deref().unwrap(),
        b"ok",
        reply,
    );
    let answer = requester.expect_publish();
    assert_eq!(&answer.payload[..], b"ok");
    assert_eq!(
        answer
            .properties
            .and_then(|p| p.correlation_data)
            .as_deref(),
        Some(&b"\x00\x01\xfe\xff"[..])
    );
}

#[test]
fn payload_format_0_with_binary_payload_is_forwarded() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "pfi0-sub");
    sub.subscribe("pfi/zero", QoS5::AtLeastOnce);
    let publisher = V5::connect(broker.port(), "pfi0-pub");
    let props = PublishProperties {
        payload_format_indicator: Some(0),
        ..publish_properties()
    };
    publish_with(&publisher, "pfi/zero", b"\xff\xfe\x00", props);
    let got = sub.expect_publish();
    assert_eq!(&got.payload[..], b"\xff\xfe\x00");
    assert_eq!(
        got.properties.and_then(|p| p.payload_format_indicator),
        Some(0)
    );
}

#[test]
fn payload_format_1_with_invalid_utf8_is_refused_with_0x99() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "pfi1-sub");
    sub.subscribe("pfi/one", QoS5::AtLeastOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "pfi1-pub"));
    let pfi = [prop5::PAYLOAD_FORMAT_INDICATOR, 1];
    raw.send(&frames::publish_with(
        Version::V5,
        "pfi/one",
        1,
        false,
        1,
        &pfi,
        b"\xff\xfe",
    ));
    // The spec allows either answer: PUBACK 0x99, or DISCONNECT 0x99 and close.
    match raw.next(WAIT) {
        Next::Frame(f) if f.kind() == frames::PUBACK => assert_eq!(f.ack_reason(), 0x99),
        Next::Frame(f) if f.kind() == frames::DISCONNECT => {
            assert_eq!(f.disconnect_reason(), 0x99);
            raw.expect_closed(WAIT);
        }
        other => panic!("expected PUBACK or DISCONNECT with 0x99, got {other:?}"),
    }
    assert!(
        sub.recv_publish(QUIET).is_none(),
        "an invalid payload must not be forwarded"
    );
}

#[test]
fn response_information_is_returned_only_when_requested() {
    let broker = Broker::start();
    let ask = vec![prop5::REQUEST_RESPONSE_INFORMATION, 1];
    let (_raw, connack) = raw_v5(broker.port(), "wants-info", ask);
    let info = connack_property(&connack, prop5::RESPONSE_INFORMATION)
        .expect("Response Information missing although requested");
    assert!(!text(&info).is_empty());

    let (_raw, connack) = raw_v5(broker.port(), "no-info", Vec::new());
    assert_eq!(
        connack_property(&connack, prop5::RESPONSE_INFORMATION),
        None,
        "Response Information only when requested"
    );
}

// ---------------------------------------------------------------------------------------------
// Message Expiry Interval

fn expiring(secs: u32) -> PublishProperties {
    PublishProperties {
        message_expiry_interval: Some(secs),
        ..publish_properties()
    }
}

#[test]
fn expired_queued_message_is_not_delivered() {
    let broker = Broker::start();
    let opts = V5::persistent_options(broker.port(), "expiry-sub", 60);
    let sub = V5::connect_with(opts.clone());
    sub.subscribe("exp/t", QoS5::AtLeastOnce);
    sub.disconnect();
    broker.wait_disconnected("expiry-sub");

    let publisher = V5::connect(broker.port(), "expiry-pub");
    publish_with(&publisher, "exp/t", b"short-lived", expiring(1));
    publish_with(&publisher, "exp/t", b"long-lived", expiring(600));
    std::thread::sleep(Duration::from_millis(1300));
    let again = V5::connect_with(opts);
    let got = again.expect_publish();
    assert_eq!(
        &got.payload[..],
        b"long-lived",
        "a message whose expiry passed while queued must be dropped"
    );
    assert!(again.recv_publish(QUIET).is_none());
}

#[test]
fn forwarded_expiry_interval_is_reduced_by_the_time_queued() {
    let broker = Broker::start();
    let opts = V5::persistent_options(broker.port(), "reduce-sub", 60);
    let sub = V5::connect_with(opts.clone());
    sub.subscribe("reduce/t", QoS5::AtLeastOnce);
    sub.disconnect();
    broker.wait_disconnected("reduce-sub");

    let publisher = V5::connect(broker.port(), "reduce-pub");
    publish_with(&publisher, "reduce/t", b"queued", expiring(60));
    std::thread::sleep(Duration::from_millis(1200));
    let again = V5::connect_with(opts);
    let got = again.expect_publish();
    let left = got
        .properties
        .and_then(|p| p.message_expiry_interval)
        .expect("Message Expiry Interval not forwarded");
    assert!(
        (50..=58).contains(&left),
        "60 s minus >1 s queued must leave at most 58 s, got {left}"
    );
}

#[test]
fn live_delivery_forwards_the_expiry_interval() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "live-exp-sub");
    sub.subscribe("liveexp/t", QoS5::AtLeastOnce);
    let publisher = V5::connect(broker.port(), "live-exp-pub");
    publish_with(&publisher, "liveexp/t", b"now", expiring(30));
    let left = sub
        .expect_publish()
        .properties
        .and_then(|p| p.message_expiry_interval);
    assert!(matches!(left, Some(29..=30)), "got {left:?}");
}

// ---------------------------------------------------------------------------------------------
// Outbound topic aliases

fn alias_of(publish: &Frame) -> Option<u16> {
    publish
        .publish_property(prop::TOPIC_ALIAS)
        .map(|v| u16::from_be_bytes([v[0], v[1]]))
}

#[test]
fn outbound_topic_aliases_replace_the_topic_after_first_use() {
    let broker = Broker::with_config("sys_interval = 1\n");
    let sys = sys_client(broker.port(), "alias-sys");
    let (mut raw, connack) = raw_v5(
        broker.port(),
        "alias-out",
        vec![prop::TOPIC_ALIAS_MAXIMUM, 0, 2],
    );
    assert_eq!(connack.connack().1, 0);
    raw.send(&frames::subscribe(Version::V5, 1, "alias/out/#", 0));
    raw.expect_frame(frames::SUBACK, WAIT);

    let publisher = V5::connect(broker.port(), "alias-out-pub");
    let sends = [
        ("alias/out/first", 1),
        ("alias/out/first", 1),
        ("alias/out/second", 2),
        ("alias/out/first", 1),
        ("alias/out/second", 2),
        // The client's maximum of 2 is used up: the least recently used slot (first's,
        // alias 1) is remapped to the new topic.
        ("alias/out/third", 1),
        ("alias/out/third", 1),
    ];
    for (i, (topic, _)) in sends.iter().enumerate() {
        publisher.publish(topic, QoS5::AtLeastOnce, false, format!("m{i}"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, (topic, alias)) in sends.iter().enumerate() {
        let f = raw.expect_frame(frames::PUBLISH, WAIT);
        let (wire_topic, _, payload) = f.publish(Version::V5);
        assert_eq!(payload, format!("m{i}").as_bytes());
        let what = format!("publish {i} on {topic}");
        if *alias == 0 {
            // The client's maximum of 2 is used up: sent in full, without an alias.
            assert_eq!(wire_topic, topic.as_bytes(), "{what}");
            assert_eq!(alias_of(&f), None, "{what}");
        } else if seen.insert(*topic) {
            assert_eq!(
                wire_topic,
                topic.as_bytes(),
                "{what}: first use has the topic"
            );
            assert_eq!(alias_of(&f), Some(*alias), "{what}: and the new alias");
        } else {
            assert!(
                wire_topic.is_empty(),
                "{what}: later uses have an empty topic"
            );
            assert_eq!(alias_of(&f), Some(*alias), "{what}: and the known alias");
        }
    }
    // Four sends with a known alias: 3 × (15 − 3) + (16 − 3) bytes saved, net of the alias
    // property.
    let saved = wait_sys(
        &sys,
        "bytes/saved by topic aliases",
        Duration::from_secs(4),
        |v| number(v) > 0,
    );
    assert_eq!(saved, Ok("49".to_string()));
}

#[test]
fn no_outbound_aliases_without_the_clients_topic_alias_maximum() {
    let broker = Broker::start();
    let (mut raw, _) = raw_v5(broker.port(), "alias-none", Vec::new());
    raw.send(&frames::subscribe(Version::V5, 1, "alias/none", 0));
    raw.expect_frame(frames::SUBACK, WAIT);
    let publisher = V5::connect(broker.port(), "alias-none-pub");
    for _ in 0..2 {
        publisher.publish("alias/none", QoS5::AtLeastOnce, false, "x");
        let f = raw.expect_frame(frames::PUBLISH, WAIT);
        assert_eq!(f.publish(Version::V5).0, b"alias/none");
        assert_eq!(alias_of(&f), None);
    }
}

// ---------------------------------------------------------------------------------------------
// Flow control and packet size toward the client

#[test]
fn receive_maximum_2_limits_unacknowledged_deliveries_to_the_client() {
    let broker = Broker::start();
    let (mut raw, _) = raw_v5(
        broker.port(),
        "slow-acker",
        vec![prop::RECEIVE_MAXIMUM, 0, 2],
    );
    raw.send(&frames::subscribe(Version::V5, 1, "flow/t", 1));
    raw.expect_frame(frames::SUBACK, WAIT);
    let publisher = V5::connect(broker.port(), "flow-pub");
    for i in 0..4 {
        publisher.publish("flow/t", QoS5::AtLeastOnce, false, format!("m{i}"));
    }
    let first = raw.expect_frame(frames::PUBLISH, WAIT);
    let second = raw.expect_frame(frames::PUBLISH, WAIT);
    assert!(
        raw.is_quiet(QUIET),
        "Receive Maximum 2: a third PUBLISH before any PUBACK"
    );
    raw.send(&frames::ack(
        frames::PUBACK,
        first.publish(Version::V5).1.unwrap(),
    ));
    let third = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(third.publish(Version::V5).2, b"m2");
    assert!(raw.is_quiet(QUIET), "still only 2 unacknowledged");
    raw.send(&frames::ack(
        frames::PUBACK,
        second.publish(Version::V5).1.unwrap(),
    ));
    let fourth = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(fourth.publish(Version::V5).2, b"m3");
}

#[test]
fn message_larger_than_the_clients_maximum_packet_size_is_skipped() {
    let broker = Broker::start();
    let (mut raw, _) = raw_v5(
        broker.port(),
        "small-packets",
        Bytes::new().u8(prop::MAXIMUM_PACKET_SIZE).u32(100).0,
    );
    raw.send(&frames::subscribe(Version::V5, 1, "size/t", 1));
    raw.expect_frame(frames::SUBACK, WAIT);
    let publisher = V5::connect(broker.port(), "size-pub");
    publisher.publish("size/t", QoS5::AtLeastOnce, false, vec![b'x'; 200]);
    publisher.publish("size/t", QoS5::AtLeastOnce, false, "small");
    let got = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(
        got.publish(Version::V5).2,
        b"small",
        "the 200-byte message exceeds the client's 100-byte maximum and is skipped"
    );
    raw.send(&frames::ack(
        frames::PUBACK,
        got.publish(Version::V5).1.unwrap(),
    ));
    assert!(raw.is_quiet(QUIET));
}

// ---------------------------------------------------------------------------------------------
// DISCONNECT and AUTH

#[test]
fn client_disconnect_with_an_error_reason_publishes_the_will() {
    let broker = Broker::start();
    let watcher = V5::connect(broker.port(), "disc-watch");
    watcher.subscribe("disc/will", QoS5::AtLeastOnce);
    let will = Will {
        topic: "disc/will",
        payload: b"gone",
        qos: 1,
        retain: false,
    };
    let (mut raw, _) = Raw::connect(
        broker.port(),
        &Connect::new(Version::V5, "disc-error").will(will),
    );
    raw.send(&frames::disconnect_with(0x80, &[]));
    raw.expect_closed(WAIT);
    let got = watcher.recv_publish(WAIT);
    assert!(
        got.is_some(),
        "only DISCONNECT 0x00 discards the will (MQTT 5 §3.14.4); 0x80 must publish it"
    );
}

#[test]
fn disconnect_can_lower_the_session_expiry_to_end_the_session() {
    let broker = Broker::start();
    let connect = Connect::new(Version::V5, "disc-expiry")
        .clean(false)
        .properties(vec![prop::SESSION_EXPIRY_INTERVAL, 0, 0, 0, 60]);
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    raw.send(&frames::subscribe(Version::V5, 1, "disc/t", 1));
    raw.expect_frame(frames::SUBACK, WAIT);
    raw.send(&frames::disconnect_with(
        0x00,
        &[prop::SESSION_EXPIRY_INTERVAL, 0, 0, 0, 0],
    ));
    raw.expect_closed(WAIT);
    broker.wait_disconnected("disc-expiry");
    let (_raw, present) = Raw::connect(broker.port(), &connect);
    assert!(
        !present,
        "DISCONNECT with Session Expiry 0 ends the session"
    );
}

#[test]
fn disconnect_raising_a_zero_session_expiry_gets_0x82() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "disc-raise"));
    raw.send(&frames::disconnect_with(
        0x00,
        &[prop::SESSION_EXPIRY_INTERVAL, 0, 0, 0, 10],
    ));
    raw.expect_disconnect_and_close(0x82);
}

#[test]
fn connect_with_an_authentication_method_gets_0x8c() {
    let broker = Broker::start();
    let method = Bytes::new()
        .u8(prop5::AUTHENTICATION_METHOD)
        .str("SCRAM-SHA-256")
        .0;
    let (mut raw, connack) = raw_v5(broker.port(), "enhanced-auth", method);
    assert_eq!(
        connack.connack().1,
        0x8C,
        "enhanced authentication is not supported: Bad authentication method"
    );
    raw.expect_closed(WAIT);
}

#[test]
fn auth_packet_after_a_plain_connect_gets_0x82() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "late-auth"));
    let props = Bytes::new()
        .u8(prop5::AUTHENTICATION_METHOD)
        .str("SCRAM-SHA-256")
        .0;
    raw.send(
        &Bytes::new()
            .u8(0x19) // Re-authenticate
            .varint(props.len())
            .raw(&props)
            .packet(0xF0),
    );
    raw.expect_disconnect_and_close(0x82);
}

#[test]
fn server_disconnect_carries_the_reason_of_a_protocol_violation() {
    // A PUBLISH with Topic Alias beyond our maximum: the server closes with 0x94 in MQTT 5.
    let broker = Broker::with_config("topic_alias_maximum = 1\n");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "disc-server"));
    let started = Instant::now();
    raw.send(&frames::publish_with(
        Version::V5,
        "a/b",
        0,
        false,
        0,
        &[prop::TOPIC_ALIAS, 0, 2],
        b"x",
    ));
    raw.expect_disconnect_and_close(0x94);
    assert!(started.elapsed() < WAIT);
}
