//! Publish/subscribe: QoS 0/1/2 in both directions for MQTT 5 and 3.1.1, wildcards, the
//! `$`-rule, overlapping subscriptions, unsubscribe, ordering and large payloads.

mod common;

use common::clients::{QoS4, QoS5, V4Packet, V5Packet, V4, V5, WAIT};
use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::Broker;
use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as Sub5;
use rumqttc::SubscribeReasonCode as Sub4;
use std::time::Duration;

const QOS5: [QoS5; 3] = [QoS5::AtMostOnce, QoS5::AtLeastOnce, QoS5::ExactlyOnce];
const QOS4: [QoS4; 3] = [QoS4::AtMostOnce, QoS4::AtLeastOnce, QoS4::ExactlyOnce];

/// Receives publishes on a v5 client until one arrives on `marker`; returns (topic, payload,
/// qos) of everything before it.
fn v5_until_marker(c: &V5, marker: &str) -> Vec<(String, Vec<u8>, QoS5)> {
    let mut seen = Vec::new();
    loop {
        let p = c
            .recv_publish(WAIT)
            .unwrap_or_else(|| panic!("marker {marker:?} never arrived; before it: {seen:?}"));
        let topic = String::from_utf8(p.topic.to_vec()).unwrap();
        if topic == marker {
            return seen;
        }
        seen.push((topic, p.payload.to_vec(), p.qos));
    }
}

fn v4_until_marker(c: &V4, marker: &str) -> Vec<(String, Vec<u8>, QoS4)> {
    let mut seen = Vec::new();
    loop {
        let p = c
            .recv_publish(WAIT)
            .unwrap_or_else(|| panic!("marker {marker:?} never arrived; before it: {seen:?}"));
        if p.topic == marker {
            return seen;
        }
        seen.push((p.topic.clone(), p.payload.to_vec(), p.qos));
    }
}

/// The topics of what `v5_until_marker` or `v4_until_marker` returned.
fn topics_before<Q>(seen: Vec<(String, Vec<u8>, Q)>) -> Vec<String> {
    seen.into_iter().map(|m| m.0).collect()
}

#[test]
fn v5_qos_0_1_2_round_trip() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "v5-sub");
    let publisher = V5::connect(broker.port(), "v5-pub");
    assert_eq!(
        sub.subscribe("rt/+", QoS5::ExactlyOnce),
        vec![Sub5::Success(QoS5::ExactlyOnce)]
    );

    for qos in QOS5 {
        let topic = format!("rt/q{}", qos as u8);
        publisher.publish(&topic, qos, false, format!("payload {}", qos as u8));
        let got = sub.expect_publish();
        assert_eq!(&got.topic[..], topic.as_bytes());
        assert_eq!(
            &got.payload[..],
            format!("payload {}", qos as u8).as_bytes()
        );
        assert_eq!(
            got.qos, qos,
            "delivered QoS for a QoS {} publish",
            qos as u8
        );
        assert!(!got.retain, "a live message must not carry the retain flag");
        if qos == QoS5::ExactlyOnce {
            // The broker must complete its half of the QoS 2 flow: PUBREC from us -> PUBREL.
            sub.expect(
                |p| matches!(p, V5Packet::PubRel(_)),
                "PUBREL from the broker",
            );
        }
    }
}

#[test]
fn v311_qos_0_1_2_round_trip() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "v4-sub");
    let publisher = V4::connect(broker.port(), "v4-pub");
    assert_eq!(
        sub.subscribe("rt/+", QoS4::ExactlyOnce),
        vec![Sub4::Success(QoS4::ExactlyOnce)]
    );

    for qos in QOS4 {
        let topic = format!("rt/q{}", qos as u8);
        publisher.publish(&topic, qos, false, format!("payload {}", qos as u8));
        let got = sub.expect_publish();
        assert_eq!(got.topic, topic);
        assert_eq!(
            &got.payload[..],
            format!("payload {}", qos as u8).as_bytes()
        );
        assert_eq!(
            got.qos, qos,
            "delivered QoS for a QoS {} publish",
            qos as u8
        );
        assert!(!got.retain, "a live message must not carry the retain flag");
        if qos == QoS4::ExactlyOnce {
            sub.expect(
                |p| matches!(p, V4Packet::PubRel(_)),
                "PUBREL from the broker",
            );
        }
    }
}

#[test]
fn v311_publisher_reaches_v5_subscriber_at_every_qos() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "x-sub5");
    let publisher = V4::connect(broker.port(), "x-pub4");
    sub.subscribe("x/#", QoS5::ExactlyOnce);
    for (q4, q5) in QOS4.into_iter().zip(QOS5) {
        publisher.publish("x/from4", q4, false, vec![q4 as u8; 3]);
        let got = sub.expect_publish();
        assert_eq!(&got.topic[..], b"x/from4");
        assert_eq!(&got.payload[..], &[q4 as u8; 3]);
        assert_eq!(got.qos, q5);
    }
}

#[test]
fn v5_publisher_reaches_v311_subscriber_at_every_qos() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "x-sub4");
    let publisher = V5::connect(broker.port(), "x-pub5");
    sub.subscribe("x/#", QoS4::ExactlyOnce);
    for (q4, q5) in QOS4.into_iter().zip(QOS5) {
        publisher.publish("x/from5", q5, false, vec![q5 as u8; 3]);
        let got = sub.expect_publish();
        assert_eq!(got.topic, "x/from5");
        assert_eq!(&got.payload[..], &[q5 as u8; 3]);
        assert_eq!(got.qos, q4);
    }
}

#[test]
fn delivery_qos_is_the_lower_of_published_and_granted() {
    let broker = Broker::start();
    let sub0 = V5::connect(broker.port(), "down-0");
    let sub1 = V4::connect(broker.port(), "down-1");
    let publisher = V5::connect(broker.port(), "down-pub");
    assert_eq!(
        sub0.subscribe("down", QoS5::AtMostOnce),
        vec![Sub5::Success(QoS5::AtMostOnce)]
    );
    assert_eq!(
        sub1.subscribe("down", QoS4::AtLeastOnce),
        vec![Sub4::Success(QoS4::AtLeastOnce)]
    );

    publisher.publish("down", QoS5::ExactlyOnce, false, "two");
    assert_eq!(sub0.expect_publish().qos, QoS5::AtMostOnce);
    assert_eq!(sub1.expect_publish().qos, QoS4::AtLeastOnce);

    publisher.publish("down", QoS5::AtMostOnce, false, "zero");
    assert_eq!(sub0.expect_publish().qos, QoS5::AtMostOnce);
    assert_eq!(sub1.expect_publish().qos, QoS4::AtMostOnce);
}

#[test]
fn single_level_wildcard_matches_exactly_one_level() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "plus-sub");
    let publisher = V5::connect(broker.port(), "plus-pub");
    sub.subscribe("s/+/c", QoS5::AtLeastOnce);
    sub.subscribe("end", QoS5::AtLeastOnce);

    for topic in ["s/c", "s/b/c/d", "s/b/x", "t/b/c", "s/b/c", "s//c", "end"] {
        publisher.publish(topic, QoS5::AtLeastOnce, false, topic);
    }
    let topics = topics_before(v5_until_marker(&sub, "end"));
    assert_eq!(topics, ["s/b/c", "s//c"]);
}

#[test]
fn multi_level_wildcard_matches_parent_and_descendants() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "hash-sub");
    let publisher = V4::connect(broker.port(), "hash-pub");
    sub.subscribe("m/#", QoS4::AtLeastOnce);
    sub.subscribe("end", QoS4::AtLeastOnce);

    for topic in ["mx/a", "n/m", "m", "m/a", "m/a/b/c", "m/", "end"] {
        publisher.publish(topic, QoS4::AtLeastOnce, false, topic);
    }
    let topics = topics_before(v4_until_marker(&sub, "end"));
    assert_eq!(topics, ["m", "m/a", "m/a/b/c", "m/"]);
}

#[test]
fn hash_alone_matches_every_normal_topic() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "all-sub");
    let publisher = V4::connect(broker.port(), "all-pub");
    sub.subscribe("#", QoS5::AtLeastOnce);
    for topic in ["a", "a/b", "/leading", "trailing/", "x/y/z", "end"] {
        publisher.publish(topic, QoS4::AtLeastOnce, false, topic);
    }
    let topics = topics_before(v5_until_marker(&sub, "end"));
    assert_eq!(topics, ["a", "a/b", "/leading", "trailing/", "x/y/z"]);
}

#[test]
fn wildcards_at_the_first_level_do_not_match_dollar_topics() {
    let broker = Broker::start();
    let hash = V5::connect(broker.port(), "dollar-hash");
    let plus = V4::connect(broker.port(), "dollar-plus");
    let dollar = V5::connect(broker.port(), "dollar-explicit");
    let publisher = V5::connect(broker.port(), "dollar-pub");
    hash.subscribe("#", QoS5::AtLeastOnce);
    plus.subscribe("+/x", QoS4::AtLeastOnce);
    plus.subscribe("end/x", QoS4::AtLeastOnce);
    dollar.subscribe("$foo/#", QoS5::AtLeastOnce);
    dollar.subscribe("end/x", QoS5::AtLeastOnce);

    // A broker may refuse client publishes under $SYS (even by closing the connection), so send
    // that one from a throw-away raw client and wait until the broker has handled it.
    let (mut sys, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "dollar-sys"));
    sys.send(&frames::publish(Version::V311, "$SYS/x", 0, 0, b"fake"));
    sys.send(&frames::pingreq());
    let _ = sys.next(WAIT); // PINGRESP, or a close if the broker rejects the publish
    for topic in ["$foo/x", "$foo", "end/x"] {
        publisher.publish(topic, QoS5::AtLeastOnce, false, topic);
    }
    let to_hash = topics_before(v5_until_marker(&hash, "end/x"));
    assert_eq!(
        to_hash,
        Vec::<String>::new(),
        "'#' must not match topics starting with '$'"
    );
    let to_plus = topics_before(v4_until_marker(&plus, "end/x"));
    assert_eq!(
        to_plus,
        Vec::<String>::new(),
        "'+/x' must not match topics starting with '$'"
    );
    let to_dollar = topics_before(v5_until_marker(&dollar, "end/x"));
    assert_eq!(
        to_dollar,
        ["$foo/x", "$foo"],
        "an explicit '$foo/#' filter matches"
    );
}

#[test]
fn v5_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "ov5-sub");
    let publisher = V5::connect(broker.port(), "ov5-pub");
    sub.subscribe("ov/a", QoS5::AtMostOnce);
    sub.subscribe("ov/+", QoS5::AtLeastOnce);
    sub.subscribe("ov/#", QoS5::ExactlyOnce);
    sub.subscribe("end", QoS5::AtMostOnce);

    publisher.publish("ov/a", QoS5::ExactlyOnce, false, "once");
    publisher.publish("end", QoS5::AtMostOnce, false, "");
    let before = v5_until_marker(&sub, "end");
    assert_eq!(
        before,
        vec![("ov/a".to_string(), b"once".to_vec(), QoS5::ExactlyOnce)],
        "exactly one copy, at the highest granted QoS"
    );
}

#[test]
fn v311_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "ov4-sub");
    let publisher = V4::connect(broker.port(), "ov4-pub");
    sub.subscribe("ov/#", QoS4::AtLeastOnce);
    sub.subscribe("ov/+/c", QoS4::AtMostOnce);
    sub.subscribe("+/b/c", QoS4::ExactlyOnce);
    sub.subscribe("end", QoS4::AtMostOnce);

    publisher.publish("ov/b/c", QoS4::ExactlyOnce, false, "once");
    publisher.publish("end", QoS4::AtMostOnce, false, "");
    let before = v4_until_marker(&sub, "end");
    assert_eq!(
        before,
        vec![("ov/b/c".to_string(), b"once".to_vec(), QoS4::ExactlyOnce)],
        "exactly one copy, at the highest granted QoS"
    );
}

#[test]
fn resubscribing_replaces_the_subscription_qos() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "resub-sub");
    let publisher = V5::connect(broker.port(), "resub-pub");
    sub.subscribe("re", QoS5::ExactlyOnce);
    sub.subscribe("re", QoS5::AtMostOnce);
    sub.subscribe("end", QoS5::AtMostOnce);
    publisher.publish("re", QoS5::ExactlyOnce, false, "x");
    publisher.publish("end", QoS5::AtMostOnce, false, "");
    let before = v5_until_marker(&sub, "end");
    assert_eq!(
        before,
        vec![("re".to_string(), b"x".to_vec(), QoS5::AtMostOnce)]
    );
}

#[test]
fn unsubscribe_stops_delivery() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "unsub-sub");
    let publisher = V5::connect(broker.port(), "unsub-pub");
    sub.subscribe("u/#", QoS4::AtLeastOnce);
    sub.subscribe("end", QoS4::AtLeastOnce);
    publisher.publish("u/1", QoS5::AtLeastOnce, false, "before");
    assert_eq!(sub.expect_publish().topic, "u/1");

    sub.client.unsubscribe("u/#").unwrap();
    sub.expect(|p| matches!(p, V4Packet::UnsubAck(_)), "UNSUBACK");
    publisher.publish("u/2", QoS5::AtLeastOnce, false, "after");
    publisher.publish("end", QoS5::AtLeastOnce, false, "");
    assert_eq!(v4_until_marker(&sub, "end"), vec![]);
}

#[test]
fn messages_from_one_publisher_arrive_in_order() {
    let broker = Broker::start();
    let sub = V5::connect(broker.port(), "order-sub");
    let publisher = V4::connect(broker.port(), "order-pub");
    sub.subscribe("order", QoS5::AtLeastOnce);
    for i in 0..200u32 {
        publisher
            .client
            .publish("order", QoS4::AtLeastOnce, false, i.to_be_bytes().to_vec())
            .unwrap();
    }
    for i in 0..200u32 {
        let got = sub
            .recv_publish(WAIT)
            .unwrap_or_else(|| panic!("message {i} of 200 missing"));
        assert_eq!(
            &got.payload[..],
            &i.to_be_bytes(),
            "message {i} out of order"
        );
    }
}

#[test]
fn large_payload_round_trips_intact() {
    let broker = Broker::start();
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();

    let mut opts = V5::options(broker.port(), "big-sub");
    opts.set_max_packet_size(Some(1024 * 1024));
    let sub = V5::connect_with(opts);
    let mut opts = V4::options(broker.port(), "big-pub");
    opts.set_max_packet_size(1024 * 1024, 1024 * 1024);
    let publisher = V4::connect_with(opts);

    sub.subscribe("big", QoS5::AtLeastOnce);
    publisher.publish("big", QoS4::AtLeastOnce, false, payload.clone());
    let got = sub.expect_publish();
    assert_eq!(got.payload.len(), payload.len());
    assert!(got.payload[..] == payload[..], "payload corrupted");
}

#[test]
fn publisher_subscribed_to_its_own_topic_receives_its_message() {
    let broker = Broker::start();
    let c = V5::connect(broker.port(), "self");
    c.subscribe("self/t", QoS5::AtLeastOnce);
    c.publish("self/t", QoS5::AtLeastOnce, false, "echo");
    let got = c
        .recv_publish(Duration::from_secs(3))
        .expect("own message (No Local is off by default)");
    assert_eq!(&got.payload[..], b"echo");
}

#[test]
fn qos2_publish_resent_before_pubrel_is_delivered_once() {
    let broker = Broker::start();
    let sub = V4::connect(broker.port(), "eo-sub");
    sub.subscribe("eo", QoS4::ExactlyOnce);
    sub.subscribe("end", QoS4::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "eo-pub"));

    let publish = frames::publish(Version::V5, "eo", 2, 9, b"exactly once");
    raw.send(&publish);
    raw.expect_frame(frames::PUBREC, WAIT);
    let mut dup = publish.clone();
    dup[0] |= 0x08; // DUP: the sender did not see our PUBREC
    raw.send(&dup);
    raw.expect_frame(frames::PUBREC, WAIT);
    raw.send(&frames::ack(frames::PUBREL, 9));
    raw.expect_frame(frames::PUBCOMP, WAIT);
    raw.send(&frames::publish(Version::V5, "end", 0, 0, b""));

    let before: Vec<Vec<u8>> = v4_until_marker(&sub, "end")
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(
        before,
        [b"exactly once".to_vec()],
        "QoS 2 must not duplicate"
    );
}
