//! Limits from the config. MQTT 5 limits and flow control: maximum packet size, receive
//! maximum, topic aliases, server keep alive, maximum QoS and retain availability. Resource
//! limits: connections (in total and per address), topic length and depth, subscriptions per
//! client, the outbound in-flight window, and the slow-consumer guard (`max_output_buffer` +
//! `slow_consumer_timeout`).

mod common;

use common::clients::{Observer, QoS4, QoS5, V4, V5, WAIT};
use common::frames::{self, prop, Connect, Frame, Version};
use common::raw::{Next, Raw};
use common::sys::{number, sys_client, wait_sys};
use common::Broker;
use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as Sub5;
use rumqttc::SubscribeReasonCode as Sub4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
fn v5_open_qos2_beyond_twice_receive_maximum_gets_0x93() {
    let broker = Broker::with_config("receive_maximum = 2\n");
    let observer = Observer::connect(broker.port());
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "flooder"));
    // QoS 2 publishes stay open until PUBREL; a small overrun is tolerated (waiting cannot
    // close them: the PUBRELs come after), the fifth is twice the window past it.
    for id in 1..=5 {
        raw.send(&frames::publish(Version::V5, "flood", 2, id, b"x"));
    }
    for _ in 1..=4 {
        raw.expect_frame(frames::PUBREC, WAIT);
    }
    raw.expect_disconnect_and_close(0x93);
    observer.assert_healthy();
}

#[test]
fn v5_qos1_beyond_receive_maximum_is_slowed_not_disconnected() {
    let broker = Broker::with_config("receive_maximum = 2\n");
    let sub = V5::connect(broker.port(), "window-sub");
    sub.subscribe("window/t", QoS5::AtLeastOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "overrunner"));
    // Twenty QoS 1 publishes in one write, ten times the window: read as acks go out.
    let burst: Vec<u8> = (1..=20u16)
        .flat_map(|id| frames::publish(Version::V5, "window/t", 1, id, &id.to_be_bytes()))
        .collect();
    raw.send(&burst);
    for _ in 1..=20 {
        raw.expect_frame(frames::PUBACK, WAIT);
    }
    let got: Vec<Vec<u8>> = (1..=20)
        .map(|_| sub.expect_publish().payload.to_vec())
        .collect();
    let sent: Vec<Vec<u8>> = (1..=20u16).map(|id| id.to_be_bytes().to_vec()).collect();
    assert_eq!(got, sent, "every message, in order");
    broker
        .wait_for_log(WAIT, |l| {
            l.contains("overrunner") && l.contains("Receive Maximum")
        })
        .expect("the slowing is logged");
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

/// Opens a connection and sends CONNECT; the broker must close it without a CONNACK.
fn assert_refused_at_accept(port: u16, id: &str) {
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&Connect::new(Version::V5, id).encode());
    let frames = raw.expect_closed(Duration::from_secs(3));
    assert!(
        frames.is_empty(),
        "{id}: a refused connection got frames {frames:?}"
    );
}

/// Sends DISCONNECT and waits for the broker to close, so its connection slot is free again.
fn disconnect(mut raw: Raw) {
    raw.send(&frames::disconnect());
    raw.expect_closed(Duration::from_secs(3));
}

#[test]
fn connections_beyond_max_connections_are_closed_at_accept() {
    let broker = Broker::with_config("max_connections = 2\n");
    let (first, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "conn-1"));
    let (_second, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "conn-2"));

    assert_refused_at_accept(broker.port(), "conn-3");
    broker
        .wait_for_log(WAIT, |l| {
            l.contains("refused: max_connections") && !l.contains("per_address")
        })
        .expect("no `refused: max_connections` log line");

    // The limit counts open connections: closing one makes room for the next.
    disconnect(first);
    let (_third, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "conn-4"));
    assert_refused_at_accept(broker.port(), "conn-5");
}

#[test]
fn connections_beyond_max_connections_per_address_are_closed_at_accept() {
    // Every test client comes from 127.0.0.1, so the per-address limit is the binding one.
    let broker = Broker::with_config("max_connections = 100\nmax_connections_per_address = 2\n");
    let (first, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "addr-1"));
    let (_second, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "addr-2"));

    assert_refused_at_accept(broker.port(), "addr-3");
    broker
        .wait_for_log(WAIT, |l| {
            l.contains("127.0.0.1") && l.contains("refused: max_connections_per_address")
        })
        .expect("no `refused: max_connections_per_address` log line");

    disconnect(first);
    let (_third, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "addr-4"));
    assert_refused_at_accept(broker.port(), "addr-5");
}

/// A raw client subscribes to `filters` (options byte = QoS) in one SUBSCRIBE; returns the
/// SUBACK reason codes and the still-open connection.
fn subscribe_raw(port: u16, version: Version, id: &str, filters: &[(&str, u8)]) -> (Raw, Vec<u8>) {
    let (mut raw, _) = Raw::connect(port, &Connect::new(version, id));
    raw.send(&frames::subscribe_with(version, 1, &[], filters));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.packet_id(), 1);
    (raw, suback.suback_reasons(version))
}

/// `len` bytes of topic: `t/` followed by `x`s.
fn topic_of_length(len: usize) -> String {
    format!("t/{}", "x".repeat(len - 2))
}

#[test]
fn v5_filter_longer_than_max_topic_length_gets_0x8f() {
    let broker = Broker::with_config("max_topic_length = 16\n");
    let fits = topic_of_length(16);
    let too_long = topic_of_length(17);
    let (mut raw, reasons) = subscribe_raw(
        broker.port(),
        Version::V5,
        "long-filter",
        &[(&fits, 1), (&too_long, 1)],
    );
    assert_eq!(reasons, [0x01, 0x8F]);

    // A refused filter is a SUBACK code, not a reason to close the connection.
    raw.send(&frames::pingreq());
    raw.expect_frame(frames::PINGRESP, WAIT);
}

#[test]
fn v311_filter_longer_than_max_topic_length_gets_0x80() {
    let broker = Broker::with_config("max_topic_length = 16\n");
    let (_raw, reasons) = subscribe_raw(
        broker.port(),
        Version::V311,
        "long-filter-311",
        &[(&topic_of_length(16), 0), (&topic_of_length(17), 0)],
    );
    assert_eq!(reasons, [0x00, 0x80]);
}

#[test]
fn v5_publish_longer_than_max_topic_length_gets_0x90() {
    let broker = Broker::with_config("max_topic_length = 16\n");
    let watcher = V5::connect(broker.port(), "long-watcher");
    watcher.subscribe("t/#", QoS5::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "long-pub"));

    raw.send(&frames::publish(
        Version::V5,
        topic_of_length(16),
        0,
        0,
        b"fits",
    ));
    let got = watcher.expect_publish();
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        (topic_of_length(16).as_bytes(), &b"fits"[..])
    );

    raw.send(&frames::publish(
        Version::V5,
        topic_of_length(17),
        0,
        0,
        b"too long",
    ));
    raw.expect_disconnect_and_close(0x90);
    assert!(
        watcher.recv_publish(Duration::from_millis(300)).is_none(),
        "the refused publish was delivered"
    );
}

#[test]
fn v311_publish_longer_than_max_topic_length_closes() {
    let broker = Broker::with_config("max_topic_length = 16\n");
    let watcher = V5::connect(broker.port(), "long-watcher-311");
    watcher.subscribe("t/#", QoS5::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "long-pub-311"));
    raw.send(&frames::publish(
        Version::V311,
        topic_of_length(17),
        0,
        0,
        b"too long",
    ));
    let frames = raw.expect_closed(Duration::from_secs(3));
    assert!(frames.is_empty(), "unexpected frames {frames:?}");
    assert!(
        watcher.recv_publish(Duration::from_millis(300)).is_none(),
        "the refused publish was delivered"
    );
}

#[test]
fn v5_filter_deeper_than_max_topic_levels_gets_0x8f() {
    let broker = Broker::with_config("max_topic_levels = 3\n");
    let (mut raw, reasons) = subscribe_raw(
        broker.port(),
        Version::V5,
        "deep-filter",
        &[("a/b/c", 0), ("a/+/#", 0), ("a/b/c/d", 0), ("a/b/c/#", 0)],
    );
    assert_eq!(reasons, [0x00, 0x00, 0x8F, 0x8F]);
    raw.send(&frames::pingreq());
    raw.expect_frame(frames::PINGRESP, WAIT);
}

#[test]
fn v5_publish_deeper_than_max_topic_levels_gets_0x90() {
    let broker = Broker::with_config("max_topic_levels = 3\n");
    let watcher = V5::connect(broker.port(), "deep-watcher");
    watcher.subscribe("a/#", QoS5::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "deep-pub"));

    raw.send(&frames::publish(Version::V5, "a/b/c", 0, 0, b"three"));
    assert_eq!(&watcher.expect_publish().payload[..], b"three");

    raw.send(&frames::publish(Version::V5, "a/b/c/d", 0, 0, b"four"));
    raw.expect_disconnect_and_close(0x90);
    assert!(
        watcher.recv_publish(Duration::from_millis(300)).is_none(),
        "the refused publish was delivered"
    );
}

#[test]
fn v5_subscription_beyond_max_subscriptions_per_client_gets_0x97() {
    let broker = Broker::with_config("max_subscriptions_per_client = 2\n");
    let (mut raw, reasons) = subscribe_raw(
        broker.port(),
        Version::V5,
        "many-subs",
        &[("s/1", 0), ("s/2", 0), ("s/3", 0)],
    );
    assert_eq!(reasons, [0x00, 0x00, 0x97]);

    // Subscribing again to a filter it holds replaces it and needs no new slot.
    raw.send(&frames::subscribe(Version::V5, 2, "s/2", 1));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.suback_reasons(Version::V5), [0x01]);

    // Unsubscribing frees a slot.
    raw.send(&frames::unsubscribe(Version::V5, 3, "s/1"));
    raw.expect_frame(frames::UNSUBACK, WAIT);
    raw.send(&frames::subscribe(Version::V5, 4, "s/3", 0));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.suback_reasons(Version::V5), [0x00]);
    raw.send(&frames::subscribe(Version::V5, 5, "s/4", 0));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.suback_reasons(Version::V5), [0x97]);
}

#[test]
fn v311_subscription_beyond_max_subscriptions_per_client_gets_0x80() {
    let broker = Broker::with_config("max_subscriptions_per_client = 2\n");
    let (_raw, reasons) = subscribe_raw(
        broker.port(),
        Version::V311,
        "many-subs-311",
        &[("s/1", 0), ("s/2", 1), ("s/3", 0)],
    );
    assert_eq!(reasons, [0x00, 0x01, 0x80]);
}

/// The PUBLISH frames that arrive within `wait`; stops early on close.
fn publishes_within(raw: &mut Raw, wait: Duration) -> Vec<Frame> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        match raw.next(deadline.saturating_duration_since(Instant::now())) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => got.push(f),
            Next::Frame(_) => {}
            Next::Closed | Next::Timeout => return got,
        }
    }
}

#[test]
fn v5_unacknowledged_publishes_to_a_client_stop_at_max_inflight() {
    let broker = Broker::with_config("max_inflight = 3\n");
    // The client would accept 100; the broker's own limit is the smaller one.
    let receive_maximum = frames::Bytes::new().u8(prop::RECEIVE_MAXIMUM).u16(100).0;
    let (mut raw, _) = Raw::connect(
        broker.port(),
        &Connect::new(Version::V5, "no-acks").properties(receive_maximum),
    );
    raw.send(&frames::subscribe(Version::V5, 1, "inflight", 1));
    assert_eq!(
        raw.expect_frame(frames::SUBACK, WAIT)
            .suback_reasons(Version::V5),
        [0x01]
    );

    let publisher = V5::connect(broker.port(), "inflight-pub");
    for n in 0..10u8 {
        publisher.publish("inflight", QoS5::AtLeastOnce, false, vec![n]);
    }

    let first = publishes_within(&mut raw, Duration::from_millis(700));
    let payloads: Vec<Vec<u8>> = first.iter().map(|f| f.publish(Version::V5).2).collect();
    assert_eq!(
        payloads,
        [[0], [1], [2]],
        "expected exactly max_inflight publishes"
    );

    // Each PUBACK opens the window by exactly one, in order, until all ten are through.
    let mut unacked: std::collections::VecDeque<Frame> = first.into();
    for expected in 3..10u8 {
        let oldest = unacked.pop_front().unwrap();
        let packet_id = oldest.publish(Version::V5).1.expect("QoS 1 packet id");
        raw.send(&frames::ack(frames::PUBACK, packet_id));
        let more = publishes_within(&mut raw, Duration::from_millis(300));
        let payloads: Vec<Vec<u8>> = more.iter().map(|f| f.publish(Version::V5).2).collect();
        assert_eq!(
            payloads,
            [[expected]],
            "one PUBACK must release exactly one publish"
        );
        unacked.extend(more);
    }
}

// ---------------------------------------------------------------------------------------------
// Slow consumers

#[test]
fn retained_burst_larger_than_max_output_buffer_reaches_a_reading_client() {
    // 200 retained messages of 1 KiB are queued in the one turn that handles SUBSCRIBE; the
    // client has left nothing unread, so none of them may be dropped.
    let broker = Broker::with_config("max_output_buffer = 65536\n");
    let (mut publisher, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "retainer"));
    let mut burst = Vec::new();
    for n in 0..200 {
        let topic = format!("r/{n}");
        burst.extend(frames::publish_with(
            Version::V5,
            topic,
            0,
            true,
            0,
            &[],
            &[1u8; 1024],
        ));
    }
    publisher.send(&burst);
    // PINGREQ is handled after the publishes before it: once answered, all are retained.
    publisher.send(&frames::pingreq());
    publisher.expect_frame(frames::PINGRESP, WAIT);

    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "retained-reader"));
    raw.send(&frames::subscribe(Version::V5, 1, "r/#", 0));
    let got = publishes_within(&mut raw, Duration::from_secs(2));
    assert_eq!(
        got.len(),
        200,
        "retained messages lost to a client that reads"
    );
}

const FLOOD_TOPIC: &str = "flood";
const FLOOD_PAYLOAD: usize = 1024;

/// A raw v5 publisher that sends 1 KiB QoS 0 messages, numbered in their first 8 bytes, in
/// paced batches until told to stop (or a safety cap), so the flood lasts for as long as the
/// test needs it, not a guessed count.
struct Flood {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    const BATCH: u64 = 16;
    const CAP: u64 = 200_000;

    fn start(port: u16) -> Flood {
        let (mut raw, _) = Raw::connect(port, &Connect::new(Version::V5, "flooder"));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sent, stop) = (sent.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) && seq < Flood::CAP {
                    let mut batch = Vec::new();
                    for _ in 0..Flood::BATCH {
                        let mut payload = vec![0u8; FLOOD_PAYLOAD];
                        payload[..8].copy_from_slice(&seq.to_be_bytes());
                        batch.extend(frames::publish(Version::V5, FLOOD_TOPIC, 0, 0, &payload));
                        seq += 1;
                    }
                    raw.send(&batch);
                    sent.store(seq, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        Flood {
            sent,
            stop,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A raw v5 subscriber that reads everything in a thread and records what it got.
struct Reader {
    /// How many flood messages arrived.
    received: Arc<AtomicU64>,
    /// The highest sequence number seen, plus one (0 = none yet).
    high: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn start(mut raw: Raw) -> Reader {
        let received = Arc::new(AtomicU64::new(0));
        let high = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (received, high, closed, stop) =
                (received.clone(), high.clone(), closed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match raw.next(Duration::from_millis(50)) {
                        Next::Frame(f) if f.kind() == frames::PUBLISH => {
                            let (_, _, payload) = f.publish(Version::V5);
                            let seq = u64::from_be_bytes(payload[..8].try_into().unwrap());
                            received.fetch_add(1, Ordering::SeqCst);
                            high.fetch_max(seq + 1, Ordering::SeqCst);
                        }
                        Next::Frame(_) | Next::Timeout => {}
                        Next::Closed => {
                            closed.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            });
        }
        Reader {
            received,
            high,
            closed,
            stop,
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    fn high(&self) -> u64 {
        self.high.load(Ordering::SeqCst)
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A raw v5 client subscribed to the flood topic at QoS 0.
fn flood_subscriber(port: u16, id: &str) -> Raw {
    let (mut raw, _) = Raw::connect(port, &Connect::new(Version::V5, id));
    raw.send(&frames::subscribe(Version::V5, 1, FLOOD_TOPIC, 0));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.suback_reasons(Version::V5), [0x00]);
    raw
}

#[test]
fn slow_consumer_gets_qos0_dropped_then_disconnected_while_others_are_served() {
    const MIB: u64 = 1024 * 1024;
    let broker = Broker::with_config(
        "max_output_buffer = 65536\nslow_consumer_timeout = 1\nsys_interval = 1\n",
    );
    let sys = sys_client(broker.port(), "sys-watch");
    // Never read until the broker gives up on it. (A shrunken SO_RCVBUF would back up sooner,
    // but below the loopback MSS the kernel barely reopens the window, so the final drain
    // would crawl.)
    let mut slow = flood_subscriber(broker.port(), "slow-consumer");
    let good = Reader::start(flood_subscriber(broker.port(), "good-consumer"));
    let rss_before = broker.rss_bytes();
    let mut rss_peak = rss_before;

    let mut flood = Flood::start(broker.port());
    let dropping = |l: &str| l.contains("slow-consumer") && l.contains("dropping QoS 0");
    let kicked = |l: &str| l.contains("slow-consumer") && l.contains("slow consumer");
    let deadline = Instant::now() + Duration::from_secs(8);
    let (mut first_drop_at, mut kicked_at) = (None, None);
    let mut good_at_kick = 0;
    while kicked_at.is_none() && Instant::now() < deadline {
        rss_peak = rss_peak.max(broker.rss_bytes());
        let log = broker.log();
        if first_drop_at.is_none() && log.iter().any(|l| dropping(l)) {
            first_drop_at = Some(Instant::now());
        }
        if log.iter().any(|l| kicked(l)) {
            kicked_at = Some(Instant::now());
            good_at_kick = good.received();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent_at_kick = flood.sent();
    let first_drop_at = first_drop_at.expect("(c) no log line about dropping QoS 0 messages");
    let kicked_at = kicked_at.unwrap_or_else(|| {
        panic!(
            "(d) slow consumer still connected 8 s into the flood ({} messages sent)",
            flood.sent()
        )
    });
    assert!(
        // Loose: the broker's clock is per turn and the log is polled.
        kicked_at.duration_since(first_drop_at) >= Duration::from_millis(500),
        "(d) disconnected {:?} after the drops began; slow_consumer_timeout is 1 s",
        kicked_at.duration_since(first_drop_at)
    );

    // (a) The drops are counted.
    let dropped = wait_sys(&sys, "messages/dropped", Duration::from_secs(3), |v| {
        number(v) > 0
    });
    assert!(
        dropped.is_ok(),
        "(a) $SYS/broker/messages/dropped never grew: {dropped:?}"
    );

    // (e) The well-behaved subscriber was served while the slow one backed up, and after.
    assert!(
        good_at_kick > 0,
        "(e) nothing reached the good subscriber while the slow one backed up"
    );
    let served = common::wait_until(Duration::from_secs(5), || {
        (good.high() > sent_at_kick + 100).then_some(())
    });
    assert!(
        served.is_some(),
        "(e) the good subscriber saw nothing sent after the kick (high {}, sent at kick {}, now {})",
        good.high(),
        sent_at_kick,
        flood.sent()
    );
    rss_peak = rss_peak.max(broker.rss_bytes());
    flood.finish();
    assert!(!good.closed(), "(e) the good subscriber was disconnected");
    assert!(
        !broker
            .log()
            .iter()
            .any(|l| l.contains("good-consumer") && l.contains("slow consumer")),
        "(e) the good subscriber was treated as slow"
    );

    // (d) The slow socket holds what the kernel buffered, then EOF.
    let frames = slow
        .frames_until_closed(Duration::from_secs(5))
        .unwrap_or_else(|f| panic!("(d) slow socket still open after {} frames", f.len()));
    let publishes = frames
        .iter()
        .filter(|f| f.kind() == frames::PUBLISH)
        .count();
    assert!(
        publishes > 0,
        "(d) the slow consumer got nothing before EOF"
    );

    // (b) The backlog stayed bounded.
    assert!(
        rss_peak.saturating_sub(rss_before) < 32 * MIB,
        "(b) broker RSS grew from {} KiB to {} KiB over the flood",
        rss_before / 1024,
        rss_peak / 1024
    );
    eprintln!(
        "flood: {} messages sent, good subscriber got {}, slow got {publishes} then EOF \
         (last frame {:?}), RSS {} -> {} KiB",
        flood.sent(),
        good.received(),
        frames.last().map(|f| (f.first_byte, f.body.len())),
        rss_before / 1024,
        rss_peak / 1024
    );
}
