//! MQTT 5 limits and flow control from the config: maximum packet size, receive maximum, topic
//! aliases, server keep alive, maximum QoS and retain availability.

mod common;

use common::clients::{Observer, QoS4, QoS5, V4, V5, WAIT};
use common::frames::{self, prop, Connect, Version};
use common::raw::Raw;
use common::Broker;
use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as Sub5;
use rumqttc::SubscribeReasonCode as Sub4;

/// The value bytes of a CONNACK property, if present.
fn connack_property(port: u16, id: u8) -> Option<Vec<u8>> {
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&Connect::new(Version::V5, "props").encode());
    let connack = raw.expect_frame(frames::CONNACK, WAIT);
    assert_eq!(connack.connack(), (false, 0));
    connack
        .connack_properties()
        .into_iter()
        .find(|(p, _)| *p == id)
        .map(|(_, v)| v)
}

/// A v5 PUBLISH (retain off) carrying Topic Alias `alias`.
fn publish_with_alias(topic: &str, qos: u8, packet_id: u16, alias: u16, payload: &[u8]) -> Vec<u8> {
    let [hi, lo] = alias.to_be_bytes();
    let properties = [prop::TOPIC_ALIAS, hi, lo];
    frames::publish_with(
        Version::V5,
        topic,
        qos,
        false,
        packet_id,
        &properties,
        payload,
    )
}

#[test]
fn v5_packet_larger_than_max_packet_size_gets_0x95() {
    let broker = Broker::with_config("max_packet_size = 1024\n");
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "too-big"));
    raw.send(&frames::publish(Version::V5, "big", 0, 0, &[7u8; 2000]));
    raw.expect_disconnect_and_close(0x95);
    observer.assert_healthy();
}

#[test]
fn v311_packet_larger_than_max_packet_size_closes() {
    let broker = Broker::with_config("max_packet_size = 1024\n");
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "too-big"));
    raw.send(&frames::publish(Version::V311, "big", 0, 0, &[7u8; 2000]));
    let frames = raw.expect_closed(std::time::Duration::from_secs(3));
    assert!(frames.is_empty(), "unexpected frames {frames:?}");
    observer.assert_healthy();
}

#[test]
fn packet_just_under_max_packet_size_is_accepted() {
    let broker = Broker::with_config("max_packet_size = 1024\n");
    let sub = V5::connect(broker.port(), "fits-sub");
    sub.subscribe("fits", QoS5::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "fits"));
    // 2 (header) + 6 (topic) + 1 (properties) + 1000 = 1009 bytes.
    raw.send(&frames::publish(Version::V5, "fits", 0, 0, &[1u8; 1000]));
    assert_eq!(sub.expect_publish().payload.len(), 1000);
}

#[test]
fn v5_exceeding_receive_maximum_gets_0x93() {
    let broker = Broker::with_config("receive_maximum = 2\n");
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "flooder"));
    // QoS 2 publishes stay unacknowledged until PUBREL/PUBCOMP; the third exceeds the quota.
    for id in 1..=3 {
        raw.send(&frames::publish(Version::V5, "flood", 2, id, b"x"));
    }
    raw.expect_disconnect_and_close(0x93);
    observer.assert_healthy();
}

#[test]
fn v5_receive_maximum_counts_only_unfinished_flows() {
    let broker = Broker::with_config("receive_maximum = 2\n");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "polite"));
    for id in 1..=6u16 {
        raw.send(&frames::publish(Version::V5, "paced", 2, id, b"x"));
        raw.expect_frame(frames::PUBREC, WAIT);
        raw.send(&frames::ack(frames::PUBREL, id));
        raw.expect_frame(frames::PUBCOMP, WAIT);
    }
}

#[test]
fn v5_topic_alias_is_resolved_for_subscribers() {
    let broker = Broker::with_config("topic_alias_maximum = 4\n");
    let sub = V5::connect(broker.port(), "alias-sub");
    sub.subscribe("alias/#", QoS5::AtLeastOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "aliaser"));
    raw.send(&publish_with_alias("alias/long", 1, 1, 3, b"one"));
    raw.send(&publish_with_alias("", 1, 2, 3, b"two"));
    for payload in [&b"one"[..], b"two"] {
        let got = sub.expect_publish();
        assert_eq!(&got.topic[..], b"alias/long", "alias must be resolved");
        assert_eq!(&got.payload[..], payload);
    }
    raw.expect_frame(frames::PUBACK, WAIT);
    raw.expect_frame(frames::PUBACK, WAIT);
}

#[test]
fn v5_topic_alias_above_maximum_gets_0x94() {
    let broker = Broker::with_config("topic_alias_maximum = 2\n");
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "alias-high"));
    raw.send(&publish_with_alias("a/b", 0, 0, 3, b"x"));
    raw.expect_disconnect_and_close(0x94);
    observer.assert_healthy();
}

#[test]
fn v5_topic_alias_zero_gets_0x94() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "alias-zero"));
    raw.send(&publish_with_alias("a/b", 0, 0, 0, b"x"));
    raw.expect_disconnect_and_close(0x94);
}

#[test]
fn v5_unknown_topic_alias_with_empty_topic_is_a_protocol_error() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "alias-unset"));
    raw.send(&publish_with_alias("", 0, 0, 1, b"x"));
    raw.expect_disconnect_and_close(0x82);
}

#[test]
fn v5_keep_alive_above_max_keepalive_is_lowered_with_server_keep_alive() {
    let broker = Broker::with_config("max_keepalive = 10\n");
    let value = connack_property(broker.port(), prop::SERVER_KEEP_ALIVE)
        .expect("CONNACK must carry Server Keep Alive when the requested 60 s exceeds 10 s");
    assert_eq!(value, 10u16.to_be_bytes());
}

#[test]
fn maximum_qos_1_is_advertised_and_applied_to_subscriptions() {
    let broker = Broker::with_config("maximum_qos = 1\n");
    assert_eq!(
        connack_property(broker.port(), prop::MAXIMUM_QOS),
        Some(vec![1]),
        "CONNACK Maximum QoS"
    );
    let v5 = V5::connect(broker.port(), "maxqos5");
    assert_eq!(
        v5.subscribe("q", QoS5::ExactlyOnce),
        vec![Sub5::Success(QoS5::AtLeastOnce)]
    );
    let v4 = V4::connect(broker.port(), "maxqos4");
    assert_eq!(
        v4.subscribe("q", QoS4::ExactlyOnce),
        vec![Sub4::Success(QoS4::AtLeastOnce)]
    );
}

#[test]
fn v5_publish_above_maximum_qos_gets_0x9b() {
    let broker = Broker::with_config("maximum_qos = 1\n");
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "qos2-sender"));
    raw.send(&frames::publish(Version::V5, "q", 2, 1, b"x"));
    raw.expect_disconnect_and_close(0x9B);
}

#[test]
fn retain_unavailable_is_advertised_and_a_retained_publish_gets_0x9a() {
    let broker = Broker::with_config("retain_available = false\n");
    assert_eq!(
        connack_property(broker.port(), prop::RETAIN_AVAILABLE),
        Some(vec![0]),
        "CONNACK Retain Available"
    );
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "retainer"));
    raw.send(&frames::publish_with(
        Version::V5,
        "r",
        0,
        true,
        0,
        &[],
        b"x",
    ));
    raw.expect_disconnect_and_close(0x9A);
}
