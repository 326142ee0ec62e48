//! Deep offline queues: a persistent session's queue lives on disk and is paged into memory as
//! its client takes it, so 100 000 acknowledged messages wait for an offline subscriber, are
//! delivered in order when it comes back, and the broker's memory stays bounded meanwhile.

mod common;

use common::clients::WAIT;
use common::frames::{self, prop, Connect, Version};
use common::raw::{Next, Raw};
use common::Broker;
use std::time::Duration;

const DEEP: usize = 100_000;
/// Publishes sent before their acknowledgements are read.
const BATCH: usize = 1000;
/// What the broker's resident memory may grow by while holding the queue, and while
/// delivering it: far below what 100 000 messages in memory would take.
const RSS_GROWTH: u64 = 16 * 1024 * 1024;

/// A raw MQTT 5 CONNECT for a session with a one-hour expiry.
fn persistent(id: &str) -> Connect<'_> {
    let mut expiry = vec![prop::SESSION_EXPIRY_INTERVAL];
    expiry.extend_from_slice(&3600u32.to_be_bytes());
    Connect::new(Version::V5, id)
        .clean(false)
        .properties(expiry)
}

fn payload(i: usize) -> Vec<u8> {
    format!("deep-{i:06}").into_bytes()
}

/// Publishes `n` QoS 1 messages on a raw 3.1.1 connection, `BATCH` at a time, and waits for
/// every PUBACK.
fn publish_acknowledged(port: u16, topic: &str, n: usize) {
    let (mut raw, _) = Raw::connect(port, &Connect::new(Version::V311, "deep-pub"));
    let mut next = 0;
    while next < n {
        let end = (next + BATCH).min(n);
        let mut bytes = Vec::new();
        for i in next..end {
            let id = u16::try_from(i % 65_535 + 1).unwrap();
            bytes.extend(frames::publish(Version::V311, topic, 1, id, &payload(i)));
        }
        raw.send(&bytes);
        for i in next..end {
            let f = raw.expect_frame(frames::PUBACK, WAIT);
            assert_eq!(usize::from(f.packet_id()), i % 65_535 + 1, "PUBACK order");
        }
        next = end;
    }
}

#[test]
fn a_hundred_thousand_queued_messages_are_delivered_in_order_with_bounded_memory() {
    let broker = Broker::start();
    let (mut sub, _) = Raw::connect(broker.port(), &persistent("deep-sub"));
    sub.send(&frames::subscribe(Version::V5, 1, "deep/t", 1));
    sub.expect_frame(frames::SUBACK, WAIT);
    sub.send(&frames::disconnect());
    broker.wait_disconnected("deep-sub");

    let before = broker.rss_bytes();
    publish_acknowledged(broker.port(), "deep/t", DEEP);
    let queued = broker.rss_bytes();
    assert!(
        queued < before + RSS_GROWTH,
        "holding {DEEP} queued messages grew the broker from {before} to {queued} bytes"
    );

    let (mut sub, present) = Raw::connect(broker.port(), &persistent("deep-sub"));
    assert!(present, "the session was kept");
    let mut peak = queued;
    for i in 0..DEEP {
        let f = match sub.next(WAIT) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => f,
            other => panic!("message {i} of {DEEP}: expected PUBLISH, got {other:?}"),
        };
        let (_, packet_id, body) = f.publish(Version::V5);
        assert_eq!(
            body,
            payload(i),
            "message {i} out of order or missing (expected {:?})",
            String::from_utf8_lossy(&payload(i))
        );
        sub.send(&frames::ack(frames::PUBACK, packet_id.unwrap()));
        if i % 10_000 == 0 {
            peak = peak.max(broker.rss_bytes());
        }
    }
    assert!(
        matches!(sub.next(Duration::from_millis(300)), Next::Timeout),
        "nothing beyond the {DEEP} messages"
    );
    assert!(
        peak < before + RSS_GROWTH,
        "delivering the queue grew the broker from {before} to {peak} bytes"
    );
    eprintln!(
        "RSS: {} KiB before, {} KiB with {DEEP} queued, {} KiB peak while delivering",
        before / 1024,
        queued / 1024,
        peak / 1024
    );
}

/// A message read back from the disk queue carries the Subscription Identifier and the
/// Retain As Published flag of the subscription that matched it, as a message queued in
/// memory does.
#[test]
fn messages_from_the_disk_queue_keep_their_subscription_identifier_and_retain_flag() {
    let broker = Broker::start();
    let (mut sub, _) = Raw::connect(broker.port(), &persistent("deep-sid"));
    // SUBSCRIBE with Subscription Identifier 7; options: QoS 1, Retain As Published.
    let subscribe = frames::Bytes::new()
        .u16(1)
        .varint(2)
        .u8(0x0B)
        .u8(7)
        .str("sid/t")
        .u8(0x01 | 0x08)
        .packet(frames::SUBSCRIBE);
    sub.send(&subscribe);
    sub.expect_frame(frames::SUBACK, WAIT);
    sub.send(&frames::disconnect());
    broker.wait_disconnected("deep-sid");

    let (mut publisher, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "sid-pub"));
    let retained = frames::publish_with(Version::V311, "sid/t", 1, true, 1, &[], b"kept");
    publisher.send(&retained);
    publisher.expect_frame(frames::PUBACK, WAIT);

    let (mut sub, _) = Raw::connect(broker.port(), &persistent("deep-sid"));
    let f = sub.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(f.publish(Version::V5).2, b"kept");
    assert_eq!(
        f.publish_property(0x0B),
        Some(vec![7]),
        "subscription identifier"
    );
    assert_eq!(f.first_byte & 0x01, 1, "retain as published");
}

/// An online persistent subscriber that falls far behind: past the page kept in memory its
/// queue overflows to disk and comes back in order, nothing lost, nobody held back.
#[test]
fn an_online_persistent_subscriber_far_behind_overflows_to_disk_in_order() {
    const N: usize = 5000;
    let broker = Broker::with_config("max_inflight = 16\n");
    let (mut sub, _) = Raw::connect(broker.port(), &persistent("behind-sub"));
    sub.send(&frames::subscribe(Version::V5, 1, "behind/t", 1));
    sub.expect_frame(frames::SUBACK, WAIT);
    // The subscriber does not read while all of it is published.
    publish_acknowledged(broker.port(), "behind/t", N);
    for i in 0..N {
        let f = sub.expect_frame(frames::PUBLISH, WAIT);
        let (_, packet_id, body) = f.publish(Version::V5);
        assert_eq!(body, payload(i), "message {i} out of order or missing");
        sub.send(&frames::ack(frames::PUBACK, packet_id.unwrap()));
    }
    assert!(matches!(
        sub.next(Duration::from_millis(300)),
        Next::Timeout
    ));
    assert!(
        !broker
            .log()
            .iter()
            .any(|l| l.contains("holding publishers back")),
        "a persistent session's overflow goes to disk, not back to the publisher"
    );
}
