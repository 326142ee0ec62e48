//! Malformed and out-of-order packets over raw TCP: bad remaining lengths, reserved flags,
//! QoS 3, wildcards and bad UTF-8 in topics, packet id 0, duplicated or unknown properties,
//! packets before CONNECT, unknown protocol levels, oversized and truncated frames. MQTT 5
//! clients get a DISCONNECT with the spec's reason code, 3.1.1 clients are closed, the broker
//! logs why, and a client connected beforehand keeps working.

mod common;

use common::clients::{Observer, QoS5, V5, WAIT};
use common::frames::{self, assert_rejected, prop5, Bytes, Connect, Frame, Version};
use common::raw::{Next, Raw};
use common::{unique, Broker};
use std::time::{Duration, Instant};

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

/// The broker's log details for bad strings.
const NOT_UTF8: &str = "string is not valid UTF-8";
const NUL: &str = "string contains U+0000";

/// What the broker must do with one bad packet: the MQTT 5 DISCONNECT reason, and the log
/// line's detail fragment and `{:?}` reason name for each version.
struct Expect<'a> {
    v5_reason: u8,
    detail: &'a str,
    v5_log: &'a str,
    v311_log: &'a str,
}

impl Expect<'_> {
    /// 0x81 Malformed Packet, logged as such for both versions.
    const fn malformed(detail: &str) -> Expect<'_> {
        Expect {
            v5_reason: MALFORMED,
            detail,
            v5_log: "MalformedPacket",
            v311_log: "MalformedPacket",
        }
    }

    /// 0x82 Protocol Error, for MQTT 5 only cases (3.1.1 has no property block).
    const fn protocol_error(detail: &str) -> Expect<'_> {
        Expect {
            v5_reason: PROTOCOL_ERROR,
            detail,
            v5_log: "ProtocolError",
            v311_log: "ProtocolError",
        }
    }

    fn log_reason(&self, version: Version) -> &str {
        match version {
            Version::V5 => self.v5_log,
            Version::V311 => self.v311_log,
        }
    }
}

/// Waits for the broker's `client <id> from <addr>: <detail> (<Reason>), closing` line.
fn assert_logged(broker: &Broker, id: &str, detail: &str, reason: &str) {
    let head = format!("client {id} from 127.0.0.1:");
    let tail = format!("({reason}), closing");
    let line = broker.wait_for_log(WAIT, |l| {
        l.contains(&head) && l.contains(detail) && l.ends_with(&tail)
    });
    assert!(
        line.is_some(),
        "no log line `{head}…: …{detail}… {tail}`; log:\n{}",
        broker.log().join("\n")
    );
}

/// Connects a raw client of `version` after a healthy observer, sends `bad`, and checks the
/// reply, the close, the log line, and the observer.
fn misbehave(version: Version, bad: &[u8], expect: &Expect) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let id = unique("malformed");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(version, &id));
    raw.send(bad);
    let frames = raw.expect_closed(CLOSE);
    assert_rejected(version, &frames, expect.v5_reason);
    assert_logged(&broker, &id, expect.detail, expect.log_reason(version));
    observer.assert_healthy();
}

/// Sends `bad` as the very first packet: the broker closes without a successful CONNACK (an
/// MQTT 5 refusal CONNACK with `v5_reason` would be allowed too), logs the reason with the
/// still-empty client id, and keeps serving the observer.
fn bad_connect(version: Version, bad: &[u8], v5_reason: u8, detail: &str, reason: &str) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut raw = Raw::open(broker.port(), version);
    raw.send(bad);
    let frames = raw.expect_closed(CLOSE);
    let refusal = Frame {
        first_byte: frames::CONNACK,
        body: vec![0x00, v5_reason, 0x00],
    };
    assert!(
        frames.is_empty() || (version == Version::V5 && frames == [refusal]),
        "a CONNECT that fails to decode gets no CONNACK, got {frames:?}"
    );
    assert_logged(&broker, "", detail, reason);
    observer.assert_healthy();
}

// --- Packet identifier 0 -----------------------------------------------------------------------

const PID_ZERO: Expect = Expect {
    v5_reason: PROTOCOL_ERROR,
    detail: "packet identifier 0",
    v5_log: "ProtocolError",
    v311_log: "MalformedPacket",
};

#[test]
fn v5_qos1_publish_with_packet_id_0_is_a_protocol_error() {
    let bad = frames::publish(Version::V5, "a/b", 1, 0, b"zero");
    misbehave(Version::V5, &bad, &PID_ZERO);
}

#[test]
fn v311_qos1_publish_with_packet_id_0_closes() {
    let bad = frames::publish(Version::V311, "a/b", 1, 0, b"zero");
    misbehave(Version::V311, &bad, &PID_ZERO);
}

#[test]
fn v5_subscribe_with_packet_id_0_is_a_protocol_error() {
    let bad = frames::subscribe(Version::V5, 0, "a/b", 0);
    misbehave(Version::V5, &bad, &PID_ZERO);
}

#[test]
fn v311_subscribe_with_packet_id_0_closes() {
    let bad = frames::subscribe(Version::V311, 0, "a/b", 0);
    misbehave(Version::V311, &bad, &PID_ZERO);
}

#[test]
fn v5_puback_with_packet_id_0_is_a_protocol_error() {
    misbehave(Version::V5, &frames::ack(frames::PUBACK, 0), &PID_ZERO);
}

#[test]
fn v311_puback_with_packet_id_0_closes() {
    misbehave(Version::V311, &frames::ack(frames::PUBACK, 0), &PID_ZERO);
}

// --- MQTT 5 properties (3.1.1 packets have no property block) -----------------------------------

/// A v5 QoS 0 PUBLISH on `a/b` carrying `properties`.
fn publish_with_properties(properties: &[u8]) -> Vec<u8> {
    frames::publish_with(Version::V5, "a/b", 0, false, 0, properties, b"payload")
}

#[test]
fn v5_publish_with_message_expiry_twice_is_a_protocol_error() {
    let expiry = prop5::MESSAGE_EXPIRY_INTERVAL;
    let bad = publish_with_properties(&[expiry, 0, 0, 0, 10, expiry, 0, 0, 0, 20]);
    let expect = Expect::protocol_error("property appears more than once");
    misbehave(Version::V5, &bad, &expect);
}

#[test]
fn v5_connect_with_session_expiry_twice_is_closed_without_connack() {
    let expiry = frames::prop::SESSION_EXPIRY_INTERVAL;
    let properties = [expiry, 0, 0, 0, 10, expiry, 0, 0, 0, 20];
    let bad = frames::connect_raw_id(Version::V5, b"twice", 60, &properties);
    bad_connect(
        Version::V5,
        &bad,
        PROTOCOL_ERROR,
        "property appears more than once",
        "ProtocolError",
    );
}

#[test]
fn v5_publish_with_unknown_property_id_is_malformed() {
    let bad = publish_with_properties(&[0x7F, 0x00]);
    let expect = Expect::malformed("unknown property identifier");
    misbehave(Version::V5, &bad, &expect);
}

#[test]
fn v5_subscribe_with_topic_alias_is_a_protocol_error() {
    let properties = [frames::prop::TOPIC_ALIAS, 0x00, 0x01];
    let bad = frames::subscribe_with(Version::V5, 1, &properties, &[("a/b", 0)]);
    let expect = Expect::protocol_error("property not allowed in this packet");
    misbehave(Version::V5, &bad, &expect);
}

#[test]
fn v5_property_length_beyond_the_packet_is_malformed() {
    // Property length 50, but only a 5-byte Message Expiry Interval and the payload follow.
    let bad = Bytes::new()
        .str("a/b")
        .varint(50)
        .raw([prop5::MESSAGE_EXPIRY_INTERVAL, 0, 0, 0, 10])
        .raw(b"short")
        .packet(frames::PUBLISH);
    let expect = Expect::malformed("property length exceeds the packet");
    misbehave(Version::V5, &bad, &expect);
}

#[test]
fn v5_user_property_with_invalid_utf8_is_malformed() {
    let bad = publish_with_properties(&frames::user_property(b"key", b"bad \xC3\x28"));
    misbehave(Version::V5, &bad, &Expect::malformed(NOT_UTF8));
}

// --- UTF-8 in filters and client ids ------------------------------------------------------------

#[test]
fn v5_subscribe_filter_with_null_character_is_malformed() {
    let bad = frames::subscribe(Version::V5, 1, "a/\u{0}b", 0);
    misbehave(Version::V5, &bad, &Expect::malformed(NUL));
}

#[test]
fn v311_subscribe_filter_with_null_character_closes() {
    let bad = frames::subscribe(Version::V311, 1, "a/\u{0}b", 0);
    misbehave(Version::V311, &bad, &Expect::malformed(NUL));
}

#[test]
fn v5_connect_with_invalid_utf8_client_id_is_closed_without_connack() {
    let bad = frames::connect_raw_id(Version::V5, b"id-\xFF\xFE", 60, &[]);
    bad_connect(Version::V5, &bad, MALFORMED, NOT_UTF8, "MalformedPacket");
}

#[test]
fn v311_connect_with_invalid_utf8_client_id_closes() {
    let bad = frames::connect_raw_id(Version::V311, b"id-\xFF\xFE", 60, &[]);
    bad_connect(Version::V311, &bad, MALFORMED, NOT_UTF8, "MalformedPacket");
}

// --- Oversized packets (wire behaviour is in tests/limits.rs; this checks the log line) ----------

#[test]
fn oversized_packet_is_logged_as_packet_too_large() {
    let broker = Broker::with_config("max_packet_size = 1024\n");
    let observer = Observer::connect(broker.port());
    for version in [Version::V5, Version::V311] {
        let id = unique("too-big");
        let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(version, &id));
        raw.send(&frames::publish(version, "big", 0, 0, &[7u8; 2000]));
        raw.expect_closed(CLOSE);
        assert_logged(
            &broker,
            &id,
            "packet exceeds the maximum packet size",
            "PacketTooLarge",
        );
        observer.assert_healthy();
    }
}

// --- Truncated frames, then silence ----------------------------------------------------------------

/// A second client's publish/receive round trip, run while a truncated connection waits.
struct Peer {
    client: V5,
    topic: String,
    sent: u32,
}

impl Peer {
    fn connect(port: u16) -> Peer {
        let topic = unique("peer/echo");
        let client = V5::connect(port, &unique("peer"));
        client.subscribe(&topic, QoS5::AtLeastOnce);
        Peer {
            client,
            topic,
            sent: 0,
        }
    }

    fn round_trip(&mut self) {
        self.sent += 1;
        let payload = format!("echo {}", self.sent);
        self.client
            .publish(&self.topic, QoS5::AtLeastOnce, false, payload.clone());
        let got = self
            .client
            .recv_publish(Duration::from_secs(2))
            .unwrap_or_else(|| panic!("round trip {} stalled", self.sent));
        assert_eq!(&got.payload[..], payload.as_bytes());
    }
}

/// Waits for `raw` to be closed, doing a `peer` round trip between reads; returns the frames
/// received and how long after `since` the close came. Panics after `limit`.
fn wait_closed_meanwhile(
    raw: &mut Raw,
    peer: &mut Peer,
    since: Instant,
    limit: Duration,
) -> (Vec<Frame>, Duration) {
    let mut frames = Vec::new();
    loop {
        match raw.next(Duration::from_millis(50)) {
            Next::Frame(f) => frames.push(f),
            Next::Closed => return (frames, since.elapsed()),
            Next::Timeout => {
                assert!(
                    since.elapsed() < limit,
                    "still open after {limit:?}; frames {frames:?}"
                );
                peer.round_trip();
            }
        }
    }
}

/// Half a PUBLISH after CONNECT with keep alive 1 s: the broker waits 1.5 s for the rest, then
/// closes (MQTT 5: DISCONNECT 0x8D) while another client keeps working.
fn truncated_publish_times_out(version: Version) {
    let broker = Broker::start();
    let observer = Observer::connect(broker.port());
    let mut peer = Peer::connect(broker.port());
    let id = unique("truncated");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(version, &id).keep_alive(1));
    let publish = frames::publish(version, "a/b", 1, 1, &[b'x'; 64]);
    raw.send(&publish[..publish.len() / 2]);
    let sent = Instant::now();
    let (frames, after) = wait_closed_meanwhile(&mut raw, &mut peer, sent, Duration::from_secs(4));
    assert!(
        after >= Duration::from_millis(1300),
        "closed after {after:?}, before 1.5 × keep alive"
    );
    assert!(peer.sent >= 3, "only {} round trips meanwhile", peer.sent);
    assert_rejected(version, &frames, 0x8D);
    assert_logged(&broker, &id, "keep alive timeout", "KeepAliveTimeout");
    peer.round_trip();
    observer.assert_healthy();
}

#[test]
fn v5_truncated_publish_then_silence_times_out_with_0x8d() {
    truncated_publish_times_out(Version::V5);
}

#[test]
fn v311_truncated_publish_then_silence_times_out() {
    truncated_publish_times_out(Version::V311);
}

/// A PUBLISH trickled in a byte every 300 ms with keep alive 1 s: bytes of an unfinished
/// packet do not reset the keep-alive clock, so the connection is closed after about 1.5 s
/// instead of being held open for as long as the trickle lasts.
#[test]
fn v5_trickled_publish_times_out_with_0x8d() {
    let broker = Broker::start();
    let id = unique("trickle");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, &id).keep_alive(1));
    let publish = frames::publish(Version::V5, "a/b", 1, 1, &[b'x'; 64]);
    let sent = Instant::now();
    let mut frames = Vec::new();
    for byte in &publish[..publish.len() - 1] {
        raw.send(std::slice::from_ref(byte));
        match raw.next(Duration::from_millis(300)) {
            Next::Frame(f) => frames.push(f),
            Next::Closed => break,
            Next::Timeout => {}
        }
        assert!(
            sent.elapsed() < Duration::from_secs(4),
            "a trickle held the connection open for {:?}",
            sent.elapsed()
        );
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(1300),
        "closed after {:?}, before 1.5 × keep alive",
        sent.elapsed()
    );
    assert_rejected(Version::V5, &frames, 0x8D);
    assert_logged(&broker, &id, "keep alive timeout", "KeepAliveTimeout");
}

/// Half a CONNECT with `connect_timeout = 1`: closed without a reply after about a second.
fn truncated_connect_times_out(version: Version) {
    let broker = Broker::with_config("connect_timeout = 1\n");
    let observer = Observer::connect(broker.port());
    let mut peer = Peer::connect(broker.port());
    let opened = Instant::now();
    let mut raw = Raw::open(broker.port(), version);
    let connect = Connect::new(version, "half").encode();
    raw.send(&connect[..connect.len() / 2]);
    let (frames, after) =
        wait_closed_meanwhile(&mut raw, &mut peer, opened, Duration::from_secs(3));
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}, before connect_timeout"
    );
    assert!(frames.is_empty(), "no reply is due, got {frames:?}");
    assert_logged(&broker, "", "no CONNECT in time", "MaximumConnectTime");
    peer.round_trip();
    observer.assert_healthy();
}

#[test]
fn v5_truncated_connect_then_silence_closes_after_connect_timeout() {
    truncated_connect_times_out(Version::V5);
}

#[test]
fn v311_truncated_connect_then_silence_closes_after_connect_timeout() {
    truncated_connect_times_out(Version::V311);
}
