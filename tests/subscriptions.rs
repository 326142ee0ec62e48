//! MQTT 5 subscription options (No Local, Retain As Published, Retain Handling 0/1/2),
//! Subscription Identifiers, and the wildcard / shared / identifier switches of the config.

mod common;

use common::clients::{QoS5, V5Packet, V5, WAIT};
use common::frames::{self, prop5, sub_options, Connect, Frame, Version};
use common::raw::Raw;
use common::Broker;
use rumqttc::v5::mqttbytes::v5::{Filter, RetainForwardRule};
use std::time::Duration;

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

/// Subscribes with full options through rumqttc and waits for the SUBACK.
fn subscribe_filter(client: &V5, filter: Filter) {
    client.client.subscribe_many(vec![filter]).unwrap();
    client.expect(|p| matches!(p, V5Packet::SubAck(_)), "SUBACK");
}

fn filter(path: &str, nolocal: bool, preserve_retain: bool, rule: RetainForwardRule) -> Filter {
    Filter {
        path: path.to_string(),
        qos: QoS5::AtLeastOnce,
        nolocal,
        preserve_retain,
        retain_forward_rule: rule,
    }
}

/// A raw MQTT 5 client that has sent CONNECT and read the CONNACK; returns both.
fn raw_v5(port: u16, id: &str) -> (Raw, Frame) {
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&Connect::new(Version::V5, id).encode());
    let connack = raw.expect_frame(frames::CONNACK, WAIT);
    assert_eq!(connack.connack().1, 0, "CONNACK refused: {connack:?}");
    (raw, connack)
}

/// A Subscription Identifier property.
fn sub_id(id: usize) -> Vec<u8> {
    let mut p = vec![prop5::SUBSCRIPTION_IDENTIFIER];
    p.extend(frames::varint(id));
    p
}

/// Every Subscription Identifier on a PUBLISH frame.
fn ids_of(publish: &Frame) -> Vec<usize> {
    publish
        .publish_properties()
        .into_iter()
        .filter(|(id, _)| *id == prop5::SUBSCRIPTION_IDENTIFIER)
        .map(|(_, v)| frames::read_varint(&v).unwrap().0)
        .collect()
}

/// Sends one SUBSCRIBE and returns its SUBACK reason codes.
fn raw_subscribe(raw: &mut Raw, packet_id: u16, props: &[u8], filters: &[(&str, u8)]) -> Vec<u8> {
    raw.send(&frames::subscribe_with(
        Version::V5,
        packet_id,
        props,
        filters,
    ));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.packet_id(), packet_id);
    suback.suback_reasons(Version::V5)
}

fn property(connack: &Frame, id: u8) -> Option<Vec<u8>> {
    connack
        .connack_properties()
        .into_iter()
        .find(|(i, _)| *i == id)
        .map(|(_, v)| v)
}

#[test]
fn no_local_suppresses_the_clients_own_messages_only() {
    let broker = Broker::start();
    let client = V5::connect(broker.port(), "nolocal");
    subscribe_filter(
        &client,
        filter("nl/t", true, false, RetainForwardRule::OnEverySubscribe),
    );
    client.publish("nl/t", QoS5::AtLeastOnce, false, "own");
    let other = V5::connect(broker.port(), "nolocal-other");
    other.publish("nl/t", QoS5::AtLeastOnce, false, "other");
    let got = client.expect_publish();
    assert_eq!(
        &got.payload[..],
        b"other",
        "No Local: the client's own message must not come back"
    );
    assert!(client.recv_publish(QUIET).is_none());
}

#[test]
fn retain_as_published_keeps_the_retain_flag_on_live_delivery() {
    let broker = Broker::start();
    let rap = V5::connect(broker.port(), "rap-on");
    subscribe_filter(
        &rap,
        filter("rap/t", false, true, RetainForwardRule::OnEverySubscribe),
    );
    let plain = V5::connect(broker.port(), "rap-off");
    subscribe_filter(
        &plain,
        filter("rap/t", false, false, RetainForwardRule::OnEverySubscribe),
    );
    let publisher = V5::connect(broker.port(), "rap-pub");
    publisher.publish("rap/t", QoS5::AtLeastOnce, true, "kept");
    publisher.publish("rap/t", QoS5::AtLeastOnce, false, "plain");
    let (first, second) = (rap.expect_publish(), rap.expect_publish());
    assert!(first.retain, "Retain As Published: RETAIN stays set");
    assert!(!second.retain, "a non-retained publish stays unretained");
    assert!(
        !plain.expect_publish().retain,
        "without Retain As Published a live delivery clears RETAIN"
    );
}

/// Sets a retained message on `topic`, then subscribes twice with `rule`; returns how many
/// retained messages each SUBSCRIBE brought.
fn retained_per_subscribe(rule: RetainForwardRule, topic: &str) -> (usize, usize) {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "rh-pub");
    publisher.publish(topic, QoS5::AtLeastOnce, true, "retained");
    let client = V5::connect(broker.port(), "rh-sub");
    let mut counts = [0; 2];
    for count in &mut counts {
        subscribe_filter(&client, filter(topic, false, false, rule.clone()));
        while let Some(p) = client.recv_publish(QUIET) {
            assert!(
                p.retain,
                "a retained message sent on subscribe has RETAIN set"
            );
            *count += 1;
        }
    }
    // Live messages still arrive whatever the Retain Handling.
    publisher.publish(topic, QoS5::AtLeastOnce, false, "live");
    assert_eq!(&client.expect_publish().payload[..], b"live");
    (counts[0], counts[1])
}

#[test]
fn retain_handling_0_sends_retained_messages_on_every_subscribe() {
    assert_eq!(
        retained_per_subscribe(RetainForwardRule::OnEverySubscribe, "rh0/t"),
        (1, 1)
    );
}

#[test]
fn retain_handling_1_sends_retained_messages_only_for_a_new_subscription() {
    assert_eq!(
        retained_per_subscribe(RetainForwardRule::OnNewSubscribe, "rh1/t"),
        (1, 0)
    );
}

#[test]
fn retain_handling_2_never_sends_retained_messages() {
    assert_eq!(
        retained_per_subscribe(RetainForwardRule::Never, "rh2/t"),
        (0, 0)
    );
}

#[test]
fn subscription_identifier_is_attached_to_matching_publishes_only() {
    let broker = Broker::start();
    let (mut raw, _) = raw_v5(broker.port(), "sid-sub");
    let options = sub_options(1, false, false, 0);
    assert_eq!(
        raw_subscribe(&mut raw, 1, &sub_id(300), &[("sid/+", options)]),
        [1]
    );
    assert_eq!(
        raw_subscribe(&mut raw, 2, &[], &[("plain/t", options)]),
        [1]
    );
    let publisher = V5::connect(broker.port(), "sid-pub");
    publisher.publish("sid/a", QoS5::AtMostOnce, false, "with id");
    publisher.publish("plain/t", QoS5::AtMostOnce, false, "without");
    let with = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(with.publish(Version::V5).2, b"with id");
    assert_eq!(ids_of(&with), [300], "the subscription's identifier");
    let without = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(without.publish(Version::V5).2, b"without");
    assert_eq!(ids_of(&without), Vec::<usize>::new());
}

#[test]
fn overlapping_subscriptions_give_one_publish_carrying_both_identifiers() {
    let broker = Broker::start();
    let (mut raw, _) = raw_v5(broker.port(), "sid-overlap");
    let options = sub_options(1, false, false, 0);
    raw_subscribe(&mut raw, 1, &sub_id(1), &[("ov/#", options)]);
    raw_subscribe(&mut raw, 2, &sub_id(2), &[("ov/+", options)]);
    let publisher = V5::connect(broker.port(), "sid-overlap-pub");
    publisher.publish("ov/x", QoS5::AtLeastOnce, false, "once");
    let publish = raw.expect_frame(frames::PUBLISH, WAIT);
    let mut ids = ids_of(&publish);
    ids.sort_unstable();
    assert_eq!(
        ids,
        [1, 2],
        "one PUBLISH with both subscription identifiers"
    );
    let (_, id, _) = publish.publish(Version::V5);
    raw.send(&frames::ack(frames::PUBACK, id.unwrap()));
    assert!(
        raw.is_quiet(QUIET),
        "overlapping subscriptions must not duplicate the message"
    );
}

#[test]
fn subscription_identifier_is_attached_to_retained_messages_sent_on_subscribe() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "sid-ret-pub");
    publisher.publish("sidret/t", QoS5::AtLeastOnce, true, "retained");
    let (mut raw, _) = raw_v5(broker.port(), "sid-ret");
    raw_subscribe(&mut raw, 1, &sub_id(42), &[("sidret/#", 0)]);
    let publish = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(publish.first_byte & 1, 1, "RETAIN set");
    assert_eq!(ids_of(&publish), [42]);
}

#[test]
fn default_connack_omits_the_availability_flags() {
    let broker = Broker::start();
    let (_raw, connack) = raw_v5(broker.port(), "avail-default");
    for id in [
        prop5::WILDCARD_SUBSCRIPTION_AVAILABLE,
        prop5::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        prop5::SHARED_SUBSCRIPTION_AVAILABLE,
    ] {
        let value = property(&connack, id);
        assert!(
            value.is_none() || value == Some(vec![1]),
            "property {id:#04x} must be absent or 1 when available: {value:?}"
        );
    }
}

#[test]
fn wildcard_subscriptions_off_is_advertised_and_refused_with_0xa2() {
    let broker = Broker::with_config("wildcard_subscriptions = false\n");
    let (mut raw, connack) = raw_v5(broker.port(), "nowild");
    assert_eq!(
        property(&connack, prop5::WILDCARD_SUBSCRIPTION_AVAILABLE),
        Some(vec![0])
    );
    let reasons = raw_subscribe(&mut raw, 1, &[], &[("w/+", 1), ("w/#", 1), ("w/exact", 1)]);
    assert_eq!(reasons, [0xA2, 0xA2, 0x01]);
}

#[test]
fn shared_subscriptions_off_is_advertised_and_refused_with_0x9e() {
    let broker = Broker::with_config("shared_subscriptions = false\n");
    let (mut raw, connack) = raw_v5(broker.port(), "noshare");
    assert_eq!(
        property(&connack, prop5::SHARED_SUBSCRIPTION_AVAILABLE),
        Some(vec![0])
    );
    let reasons = raw_subscribe(&mut raw, 1, &[], &[("$share/g/s/t", 1), ("s/t", 1)]);
    assert_eq!(reasons, [0x9E, 0x01]);
}

#[test]
fn subscription_identifiers_off_is_advertised_and_a_subscribe_with_one_gets_0xa1() {
    let broker = Broker::with_config("subscription_identifiers = false\n");
    let (mut raw, connack) = raw_v5(broker.port(), "nosid");
    assert_eq!(
        property(&connack, prop5::SUBSCRIPTION_IDENTIFIER_AVAILABLE),
        Some(vec![0])
    );
    raw.send(&frames::subscribe_with(
        Version::V5,
        1,
        &sub_id(5),
        &[("nosid/t", 1)],
    ));
    raw.expect_disconnect_and_close(0xA1);
}
