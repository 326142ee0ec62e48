//! Malformed and out-of-order packets over raw TCP: the broker answers MQTT 5 clients with a
//! DISCONNECT carrying the spec's reason code, closes 3.1.1 clients, and keeps serving others.

mod common;

use common::clients::Observer;
use common::frames::{self, assert_rejected, Bytes, Connect, Version};
use common::raw::{Next, Raw};
use common::Broker;
use std::time::Duration;

const CLOSE: Duration = Duration::from_secs(3);

const MALFORMED: u8 = 0x81;
const PROTOCOL_ERROR: u8 = 0x82;
const TOPIC_NAME_INVALID: u8 = 0x90;

/// Connects a raw client of `version`, sends `bad`, and checks the broker's reaction: an MQTT 5
/// client gets exactly one DISCONNECT with `v5_reason` and is closed; a 3.1.1 client is closed
/// without any reply. A client connected beforehand must keep working.
fn misbehave_after_connect(version: Version, bad: &[u8], v5_reason: u8) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(version, "misbehaving"));
    raw.send(bad);
    let frames = raw.expect_closed(CLOSE);
    assert_rejected(version, &frames, v5_reason);
    observer.assert_healthy();
}

/// A PUBLISH whose remaining length uses five bytes (the maximum is four).
fn five_byte_remaining_length() -> Vec<u8> {
    let mut bad = vec![frames::PUBLISH, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
    bad.extend_from_slice(&[b'x'; 32]);
    bad
}

#[test]
fn v5_remaining_length_of_five_bytes_is_malformed() {
    misbehave_after_connect(Version::V5, &five_byte_remaining_length(), MALFORMED);
}

#[test]
fn v311_remaining_length_of_five_bytes_closes() {
    misbehave_after_connect(Version::V311, &five_byte_remaining_length(), MALFORMED);
}

#[test]
fn v5_pingreq_with_reserved_flags_is_malformed() {
    misbehave_after_connect(Version::V5, &[frames::PINGREQ | 0x01, 0], MALFORMED);
}

#[test]
fn v311_pingreq_with_reserved_flags_closes() {
    misbehave_after_connect(Version::V311, &[frames::PINGREQ | 0x01, 0], MALFORMED);
}

/// A SUBSCRIBE whose fixed-header flags are 0000 instead of the required 0010.
fn subscribe_with_wrong_flags(version: Version) -> Vec<u8> {
    let mut bad = frames::subscribe(version, 1, "a/b", 0);
    bad[0] = 0x80;
    bad
}

#[test]
fn v5_subscribe_with_wrong_fixed_header_flags_is_malformed() {
    misbehave_after_connect(
        Version::V5,
        &subscribe_with_wrong_flags(Version::V5),
        MALFORMED,
    );
}

#[test]
fn v311_subscribe_with_wrong_fixed_header_flags_closes() {
    let bad = subscribe_with_wrong_flags(Version::V311);
    misbehave_after_connect(Version::V311, &bad, MALFORMED);
}

/// A PUBLISH with both QoS bits set.
fn publish_qos3(version: Version) -> Vec<u8> {
    let mut bad = frames::publish(version, "a/b", 2, 1, b"three");
    bad[0] |= 0x06;
    bad
}

#[test]
fn v5_publish_with_qos_3_is_malformed() {
    misbehave_after_connect(Version::V5, &publish_qos3(Version::V5), MALFORMED);
}

#[test]
fn v311_publish_with_qos_3_closes() {
    misbehave_after_connect(Version::V311, &publish_qos3(Version::V311), MALFORMED);
}

#[test]
fn v5_publish_topic_with_hash_wildcard_is_an_invalid_topic_name() {
    let bad = frames::publish(Version::V5, "a/#", 0, 0, b"wild");
    misbehave_after_connect(Version::V5, &bad, TOPIC_NAME_INVALID);
}

#[test]
fn v311_publish_topic_with_hash_wildcard_closes() {
    let bad = frames::publish(Version::V311, "a/#", 1, 1, b"wild");
    misbehave_after_connect(Version::V311, &bad, TOPIC_NAME_INVALID);
}

#[test]
fn v5_publish_topic_with_plus_wildcard_is_an_invalid_topic_name() {
    let bad = frames::publish(Version::V5, "a/+/c", 1, 1, b"wild");
    misbehave_after_connect(Version::V5, &bad, TOPIC_NAME_INVALID);
}

#[test]
fn v5_publish_topic_with_invalid_utf8_is_malformed() {
    let bad = frames::publish(Version::V5, b"a/\xFF\xFE", 0, 0, b"bytes");
    misbehave_after_connect(Version::V5, &bad, MALFORMED);
}

#[test]
fn v311_publish_topic_with_invalid_utf8_closes() {
    let bad = frames::publish(Version::V311, b"a/\xC3\x28", 0, 0, b"bytes");
    misbehave_after_connect(Version::V311, &bad, MALFORMED);
}

#[test]
fn v5_publish_topic_with_null_character_is_malformed() {
    let bad = frames::publish(Version::V5, b"a/\x00b", 0, 0, b"null");
    misbehave_after_connect(Version::V5, &bad, MALFORMED);
}

#[test]
fn v5_subscribe_without_filters_is_a_protocol_error() {
    let bad = Bytes::new().u16(7).varint(0).packet(frames::SUBSCRIBE);
    misbehave_after_connect(Version::V5, &bad, PROTOCOL_ERROR);
}

#[test]
fn v311_subscribe_without_filters_closes() {
    let bad = Bytes::new().u16(7).packet(frames::SUBSCRIBE);
    misbehave_after_connect(Version::V311, &bad, PROTOCOL_ERROR);
}

#[test]
fn v5_second_connect_is_a_protocol_error() {
    let again = Connect::new(Version::V5, "misbehaving").encode();
    misbehave_after_connect(Version::V5, &again, PROTOCOL_ERROR);
}

#[test]
fn v311_second_connect_closes() {
    let again = Connect::new(Version::V311, "misbehaving").encode();
    misbehave_after_connect(Version::V311, &again, PROTOCOL_ERROR);
}

/// Sends `first` as the very first packet of a connection: the broker must close it without a
/// CONNACK, and keep serving the observer.
fn first_packet_is_not_connect(first: &[u8]) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut raw = Raw::open(broker.port(), Version::V311);
    raw.send(first);
    let frames = raw.expect_closed(CLOSE);
    assert!(
        frames
            .iter()
            .all(|f| f.kind() != frames::CONNACK && f.kind() != frames::PINGRESP),
        "no CONNACK or other reply is due before CONNECT, got {frames:?}"
    );
    observer.assert_healthy();
}

#[test]
fn publish_before_connect_closes() {
    first_packet_is_not_connect(&frames::publish(Version::V311, "a/b", 0, 0, b"early"));
}

#[test]
fn pingreq_before_connect_closes() {
    first_packet_is_not_connect(&frames::pingreq());
}

#[test]
fn subscribe_before_connect_closes() {
    first_packet_is_not_connect(&frames::subscribe(Version::V5, 1, "#", 0));
}

/// A CONNECT with an unsupported protocol name/level gets a CONNACK refusal in the form its
/// client can read, then the connection closes: the 3.1.1 form (return code 0x01) for older
/// protocols [MQTT-3.1.2-2 of 3.1.1], the MQTT 5 form with 0x84 for a newer level
/// [MQTT-3.1.2-2 of 5.0], whose clients read MQTT 5 CONNACKs.
fn unsupported_protocol(name: &str, level: u8, connack_body: &[u8]) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut raw = Raw::open(broker.port(), Version::V311);
    raw.send(&frames::connect_with_protocol(name, level, "old-timer"));
    let frames = raw.expect_closed(CLOSE);
    assert_eq!(
        frames,
        vec![frames::Frame {
            first_byte: frames::CONNACK,
            body: connack_body.to_vec(),
        }],
        "expected CONNACK {connack_body:02x?} then close for protocol {name:?} level {level}"
    );
    observer.assert_healthy();
}

#[test]
fn mqisdp_level_3_is_refused_with_return_code_1() {
    unsupported_protocol("MQIsdp", 3, &[0x00, 0x01]);
}

#[test]
fn mqtt_level_3_is_refused_with_return_code_1() {
    unsupported_protocol("MQTT", 3, &[0x00, 0x01]);
}

#[test]
fn mqtt_level_6_is_refused_with_an_mqtt5_connack_0x84() {
    // Flags 0, reason 0x84, empty property block.
    unsupported_protocol("MQTT", 6, &[0x00, 0x84, 0x00]);
}

/// A client may not send a Subscription Identifier in a PUBLISH [MQTT-3.3.4-6]: DISCONNECT
/// 0x82, close, nothing delivered.
#[test]
fn v5_publish_with_a_subscription_identifier_is_a_protocol_error() {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let (mut sub, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "sid-sub"));
    sub.send(&frames::subscribe(Version::V5, 1, "sid/#", 1));
    sub.expect_frame(frames::SUBACK, CLOSE);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "sid-pub"));
    // Property 0x0B (Subscription Identifier), variable byte integer 7.
    let bad = frames::publish_with(Version::V5, "sid/x", 1, false, 1, &[0x0B, 0x07], b"no");
    raw.send(&bad);
    let frames = raw.expect_closed(CLOSE);
    assert_rejected(Version::V5, &frames, PROTOCOL_ERROR);
    assert!(
        matches!(sub.next(Duration::from_millis(300)), Next::Timeout),
        "the refused message must not be delivered"
    );
    observer.assert_healthy();
}

#[test]
fn garbage_instead_of_connect_closes() {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut raw = Raw::open(broker.port(), Version::V311);
    raw.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let frames = raw.expect_closed(CLOSE);
    assert!(
        frames.is_empty(),
        "no reply is due to garbage, got {frames:?}"
    );
    observer.assert_healthy();
}
