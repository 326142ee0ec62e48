//! Retained messages: set, replace, clear with an empty payload, delivery on subscribe with the
//! retain flag set, wildcard matching, and the retain flag on live delivery.

mod common;

use common::clients::{QoS4, QoS5, V4, V5, WAIT};
use common::Broker;

#[test]
fn v5_retained_message_is_delivered_on_subscribe_with_retain_flag() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "ret-pub");
    publisher.publish("ret/a", QoS5::AtLeastOnce, true, "kept");

    let sub = V5::connect(broker.port(), "ret-sub");
    sub.subscribe("ret/#", QoS5::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(&got.topic[..], b"ret/a");
    assert_eq!(&got.payload[..], b"kept");
    assert!(
        got.retain,
        "a retained message sent on subscribe must have the retain flag"
    );
    assert_eq!(got.qos, QoS5::AtLeastOnce);
}

#[test]
fn v311_retained_message_is_delivered_on_subscribe_with_retain_flag() {
    let broker = Broker::start();
    let publisher = V4::connect(broker.port(), "ret-pub");
    publisher.publish("ret/a", QoS4::ExactlyOnce, true, "kept");

    let sub = V4::connect(broker.port(), "ret-sub");
    sub.subscribe("ret/a", QoS4::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(got.topic, "ret/a");
    assert_eq!(&got.payload[..], b"kept");
    assert!(
        got.retain,
        "a retained message sent on subscribe must have the retain flag"
    );
    assert_eq!(got.qos, QoS4::AtLeastOnce, "min(published 2, granted 1)");
}

#[test]
fn live_delivery_of_a_retained_publish_clears_the_retain_flag() {
    let broker = Broker::start();
    let sub4 = V4::connect(broker.port(), "live-sub4");
    let sub5 = V5::connect(broker.port(), "live-sub5");
    sub4.subscribe("live", QoS4::AtLeastOnce);
    sub5.subscribe("live", QoS5::AtLeastOnce);
    let publisher = V5::connect(broker.port(), "live-pub");
    publisher.publish("live", QoS5::AtLeastOnce, true, "now");

    let got4 = sub4.expect_publish();
    assert_eq!(&got4.payload[..], b"now");
    assert!(
        !got4.retain,
        "3.1.1: retain must be 0 for an established subscription"
    );
    let got5 = sub5.expect_publish();
    assert_eq!(&got5.payload[..], b"now");
    assert!(
        !got5.retain,
        "5: retain must be 0 unless Retain As Published was requested"
    );
}

#[test]
fn retained_message_is_replaced_by_the_next_one() {
    let broker = Broker::start();
    let publisher = V4::connect(broker.port(), "rep-pub");
    publisher.publish("rep", QoS4::AtLeastOnce, true, "first");
    publisher.publish("rep", QoS4::AtLeastOnce, true, "second");

    let sub = V5::connect(broker.port(), "rep-sub");
    sub.subscribe("rep", QoS5::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(&got.payload[..], b"second");
    assert!(got.retain);

    // A live message now must be the next thing: the old retained one is gone.
    publisher.publish("rep", QoS4::AtLeastOnce, false, "live");
    let next = sub.expect_publish();
    assert_eq!(
        &next.payload[..],
        b"live",
        "only one retained message per topic"
    );
    assert!(!next.retain);
}

#[test]
fn empty_retained_payload_clears_the_retained_message() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "clr-pub");
    publisher.publish("clr", QoS5::AtLeastOnce, true, "doomed");
    publisher.publish("clr", QoS5::AtLeastOnce, true, Vec::new());

    let sub = V4::connect(broker.port(), "clr-sub");
    sub.subscribe("clr", QoS4::AtLeastOnce);
    publisher.publish("clr", QoS5::AtLeastOnce, false, "live");
    let first = sub.expect_publish();
    assert_eq!(
        (&first.payload[..], first.retain),
        (&b"live"[..], false),
        "nothing may be delivered on subscribe after the retained message was cleared"
    );
}

#[test]
fn retained_messages_match_wildcard_subscriptions() {
    let broker = Broker::start();
    let publisher = V5::connect(broker.port(), "wret-pub");
    for topic in ["w/1", "w/2", "w/x/y", "other"] {
        publisher.publish(topic, QoS5::AtLeastOnce, true, topic);
    }

    let sub = V5::connect(broker.port(), "wret-sub");
    sub.subscribe("w/+", QoS5::AtLeastOnce);
    let mut topics: Vec<String> = (0..2)
        .map(|_| {
            let p = sub.expect_publish();
            assert!(p.retain);
            String::from_utf8(p.topic.to_vec()).unwrap()
        })
        .collect();
    topics.sort();
    assert_eq!(topics, ["w/1", "w/2"]);

    publisher.publish("w/1", QoS5::AtLeastOnce, false, "live");
    let next = sub.expect_publish();
    assert_eq!(
        (&next.topic[..], next.retain),
        (&b"w/1"[..], false),
        "'w/+' must not receive retained w/x/y or other"
    );

    let all = V4::connect(broker.port(), "wret-all");
    all.subscribe("#", QoS4::AtMostOnce);
    let mut every: Vec<String> = (0..4).map(|_| all.expect_publish().topic).collect();
    every.sort();
    assert_eq!(every, ["other", "w/1", "w/2", "w/x/y"]);
}

#[test]
fn retained_message_is_sent_again_on_resubscribe() {
    let broker = Broker::start();
    let publisher = V4::connect(broker.port(), "again-pub");
    publisher.publish("again", QoS4::AtMostOnce, true, "sticky");
    let sub = V5::connect(broker.port(), "again-sub");
    sub.subscribe("again", QoS5::AtMostOnce);
    assert_eq!(&sub.expect_publish().payload[..], b"sticky");
    sub.subscribe("again", QoS5::AtMostOnce);
    let again = sub
        .recv_publish(WAIT)
        .expect("default Retain Handling 0: retained messages are sent on every subscribe");
    assert!(again.retain);
    assert_eq!(&again.payload[..], b"sticky");
}
