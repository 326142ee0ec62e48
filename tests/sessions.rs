//! MQTT 5 sessions and wills: Session Expiry Interval (0, seconds, never), subscriptions and the
//! offline queue across reconnects, the `max_queued_messages` bound, in-flight resends, and the
//! Will Delay Interval with its properties.

mod common;

use common::clients::{QoS5, V5, WAIT};
use common::frames::{self, prop, Connect, Version};
use common::raw::Raw;
use common::sys::{number, sys_client, wait_sys};
use common::Broker;
use rumqttc::v5::mqttbytes::v5::{LastWill, LastWillProperties, Publish};
use rumqttc::v5::MqttOptions;
use std::time::{Duration, Instant};

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

#[test]
fn session_expiry_0_ends_the_session_and_its_subscriptions_at_disconnect() {
    let broker = Broker::start();
    let opts = V5::persistent_options(broker.port(), "expiry-zero", 0);
    let first = V5::connect_with(opts.clone());
    first.subscribe("zero/t", QoS5::AtLeastOnce);
    first.disconnect();
    broker.wait_disconnected("expiry-zero");

    let again = V5::connect_with(opts);
    assert!(
        !again.connack.session_present,
        "Session Expiry Interval 0: clean start 0 must find no session"
    );
    let publisher = V5::connect(broker.port(), "expiry-zero-pub");
    publisher.publish("zero/t", QoS5::AtLeastOnce, false, "lost");
    assert!(
        again.recv_publish(QUIET).is_none(),
        "the subscription of an ended session must be gone"
    );
}

#[test]
fn session_expiry_1s_keeps_the_session_within_and_ends_it_after() {
    let broker = Broker::start();
    let (within, opts, topic) = resumed_within_1s(&broker);
    let publisher = V5::connect(broker.port(), "expiry-one-pub");
    publisher.publish(&topic, QoS5::AtLeastOnce, false, "kept");
    assert_eq!(
        &within.expect_publish().payload[..],
        b"kept",
        "the subscription survives the reconnect"
    );
    let id = within.id.clone();
    let closed = Instant::now();
    within.disconnect();
    let expired = broker.wait_for_log(EXPIRY_WAIT, |l| {
        l.ends_with(&format!("session {id} expired"))
    });
    assert!(
        expired.is_some(),
        "session did not expire within {EXPIRY_WAIT:?}"
    );
    let took = closed.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "session expired after {took:?}, before its 1 s interval"
    );

    let after = V5::connect_with(opts);
    assert!(
        !after.connack.session_present,
        "the session must be gone after its expiry interval"
    );
}

/// How long a 1 s session may take to be reported expired: generous, because a loaded machine
/// can hold up the broker's turn and the log line; that it did not expire early is checked
/// against the client's clock.
const EXPIRY_WAIT: Duration = Duration::from_secs(20);

/// Drops the connection of a session with a 1 s expiry, reconnects at once and returns the
/// resumed client, its options and the topic it subscribed to.
///
/// The broker counts the second from when it saw the close, after `dropped`, and handled the
/// CONNECT before its CONNACK arrived; so a CONNACK within 1 s of `dropped` proves the
/// reconnect came within the interval, and then Session Present must be 1. A stalled machine
/// can miss that second; such an attempt proves nothing and is repeated with a new client id.
fn resumed_within_1s(broker: &Broker) -> (V5, MqttOptions, String) {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let id = format!("expiry-one-{attempt}");
        let topic = format!("one/{attempt}");
        let opts = V5::persistent_options(broker.port(), &id, 1);
        let first = V5::connect_with(opts.clone());
        first.subscribe(&topic, QoS5::AtLeastOnce);
        let dropped = Instant::now();
        first.drop_connection();
        broker.wait_disconnected(&id);
        let within = V5::connect_with(opts.clone());
        if dropped.elapsed() < Duration::from_secs(1) {
            assert!(
                within.connack.session_present,
                "a reconnect within the expiry interval resumes the session"
            );
            return (within, opts, topic);
        }
    }
    panic!("no reconnect came within 1 s of its close in {ATTEMPTS} attempts");
}

#[test]
fn session_expiry_max_never_expires_and_keeps_queued_messages() {
    let broker = Broker::start();
    let opts = V5::persistent_options(broker.port(), "expiry-max", u32::MAX);
    let first = V5::connect_with(opts.clone());
    first.subscribe("max/t", QoS5::ExactlyOnce);
    first.drop_connection();
    broker.wait_disconnected("expiry-max");

    let publisher = V5::connect(broker.port(), "expiry-max-pub");
    publisher.publish("max/t", QoS5::AtLeastOnce, false, "q1");
    publisher.publish("max/t", QoS5::ExactlyOnce, false, "q2");
    let again = V5::connect_with(opts);
    assert!(again.connack.session_present);
    assert_eq!(again.expect_payloads(2, QUIET), ["q1", "q2"]);
    assert!(
        !broker.log().iter().any(|l| l.contains("expired")),
        "a 0xFFFFFFFF session must never expire"
    );
}

#[test]
fn offline_queue_keeps_qos1_and_qos2_but_not_qos0_by_default() {
    let broker = Broker::start();
    let opts = V5::persistent_options(broker.port(), "offline-default", 60);
    let first = V5::connect_with(opts.clone());
    first.subscribe("offline/t", QoS5::ExactlyOnce);
    first.disconnect();
    broker.wait_disconnected("offline-default");

    let publisher = V5::connect(broker.port(), "offline-default-pub");
    publisher.publish("offline/t", QoS5::AtMostOnce, false, "zero");
    publisher.publish("offline/t", QoS5::AtLeastOnce, false, "one");
    publisher.publish("offline/t", QoS5::ExactlyOnce, false, "two");
    let again = V5::connect_with(opts);
    assert!(again.connack.session_present);
    assert_eq!(
        again.expect_payloads(2, QUIET),
        ["one", "two"],
        "QoS 1/2 queued in order, QoS 0 not queued unless queue_qos0 = true"
    );
}

#[test]
fn queue_qos0_config_queues_qos0_for_offline_sessions() {
    let broker = Broker::with_config("queue_qos0 = true\n");
    let opts = V5::persistent_options(broker.port(), "offline-qos0", 60);
    let first = V5::connect_with(opts.clone());
    first.subscribe("offline0/t", QoS5::AtLeastOnce);
    first.disconnect();
    broker.wait_disconnected("offline-qos0");

    let publisher = V5::connect(broker.port(), "offline-qos0-pub");
    publisher.publish("offline0/t", QoS5::AtMostOnce, false, "zero");
    publisher.publish("offline0/t", QoS5::AtLeastOnce, false, "one");
    let again = V5::connect_with(opts);
    assert_eq!(again.expect_payloads(2, QUIET), ["zero", "one"]);
}

#[test]
fn max_queued_messages_drops_extras_and_counts_them_in_sys_and_the_log() {
    let broker = Broker::with_config(
        "max_queued_messages = 5\nqueue_full = \"drop_new\"\nsys_interval = 1\n",
    );
    let sys = sys_client(broker.port(), "queue-sys");
    let before = wait_sys(&sys, "messages/dropped", WAIT, |_| true)
        .expect("no $SYS/broker/messages/dropped");
    assert_eq!(before, "0");

    let opts = V5::persistent_options(broker.port(), "queue-small", 60);
    let first = V5::connect_with(opts.clone());
    first.subscribe("small/t", QoS5::AtLeastOnce);
    first.disconnect();
    broker.wait_disconnected("queue-small");

    let publisher = V5::connect(broker.port(), "queue-small-pub");
    for i in 0..8 {
        publisher.publish("small/t", QoS5::AtLeastOnce, false, format!("m{i}"));
    }
    let dropped = wait_sys(&sys, "messages/dropped", Duration::from_secs(4), |v| {
        number(v) >= 3
    });
    assert_eq!(
        dropped.map_err(|last| format!("last value {last:?}")),
        Ok("3".to_string()),
        "3 of 8 messages exceed a queue of 5"
    );
    let warn = broker.wait_for_log(WAIT, |l| {
        l.contains("queue-small") && l.contains("dropped because its queue is full")
    });
    assert!(warn.is_some(), "the drop must be logged");

    let again = V5::connect_with(opts);
    assert_eq!(
        again.expect_payloads(5, QUIET),
        ["m0", "m1", "m2", "m3", "m4"],
        "the oldest 5 are kept, later ones dropped"
    );
}

/// A raw MQTT 5 CONNECT that resumes a session with a 60 s expiry.
fn raw_persistent(id: &str) -> Connect<'_> {
    Connect::new(Version::V5, id).clean(false).properties(vec![
        prop::SESSION_EXPIRY_INTERVAL,
        0,
        0,
        0,
        60,
    ])
}

#[test]
fn v5_unacknowledged_qos1_is_resent_with_dup_on_resume() {
    let broker = Broker::start();
    let connect = raw_persistent("resend-v5");
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    raw.send(&frames::subscribe(Version::V5, 1, "resend5/t", 1));
    raw.expect_frame(frames::SUBACK, WAIT);
    let publisher = V5::connect(broker.port(), "resend-v5-pub");
    publisher.publish("resend5/t", QoS5::AtLeastOnce, false, "ack me");
    let first = raw.expect_frame(frames::PUBLISH, WAIT);
    assert_eq!(first.first_byte & 0x08, 0, "first delivery without DUP");
    let (_, id, _) = first.publish(Version::V5);
    raw.drop_socket();
    broker.wait_disconnected("resend-v5");

    let (mut raw, present) = Raw::connect(broker.port(), &connect);
    assert!(present);
    let again = raw.expect_frame(frames::PUBLISH, WAIT);
    let (topic, again_id, payload) = again.publish(Version::V5);
    assert_eq!(
        (&topic[..], &payload[..]),
        (&b"resend5/t"[..], &b"ack me"[..])
    );
    assert_eq!(again_id, id, "the resend keeps its packet identifier");
    assert_eq!(again.first_byte & 0x08, 0x08, "the resend has DUP set");
    raw.send(&frames::ack(frames::PUBACK, id.unwrap()));
    assert!(raw.is_quiet(QUIET), "nothing more after the PUBACK");
}

#[test]
fn v5_qos2_deliveries_resume_with_pubrel_or_dup_publish_as_they_stood() {
    let broker = Broker::start();
    let connect = raw_persistent("resend-qos2");
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    raw.send(&frames::subscribe(Version::V5, 1, "resend2/t", 2));
    raw.expect_frame(frames::SUBACK, WAIT);
    let publisher = V5::connect(broker.port(), "resend-qos2-pub");
    publisher.publish("resend2/t", QoS5::ExactlyOnce, false, "released");
    publisher.publish("resend2/t", QoS5::ExactlyOnce, false, "published");
    let a = raw.expect_frame(frames::PUBLISH, WAIT);
    let b = raw.expect_frame(frames::PUBLISH, WAIT);
    let (_, a_id, _) = a.publish(Version::V5);
    let (_, b_id, b_payload) = b.publish(Version::V5);
    assert_eq!(b_payload, b"published");
    raw.send(&frames::ack(frames::PUBREC, a_id.unwrap()));
    let rel = raw.expect_frame(frames::PUBREL, WAIT);
    assert_eq!(rel.packet_id(), a_id.unwrap());
    raw.drop_socket(); // neither PUBCOMP for a nor PUBREC for b
    broker.wait_disconnected("resend-qos2");

    let (mut raw, present) = Raw::connect(broker.port(), &connect);
    assert!(present);
    let mut pubrel = None;
    let mut publish = None;
    for _ in 0..2 {
        match raw.next(WAIT) {
            common::raw::Next::Frame(f) if f.kind() == frames::PUBREL & 0xF0 => pubrel = Some(f),
            common::raw::Next::Frame(f) if f.kind() == frames::PUBLISH => publish = Some(f),
            other => panic!("expected PUBREL and PUBLISH on resume, got {other:?}"),
        }
    }
    assert_eq!(
        pubrel.expect("PUBREL resent").packet_id(),
        a_id.unwrap(),
        "the released message gets its PUBREL again, not the PUBLISH"
    );
    let publish = publish.expect("unacknowledged PUBLISH resent");
    assert_eq!(publish.first_byte & 0x08, 0x08, "DUP on the resent PUBLISH");
    assert_eq!(publish.publish(Version::V5).1, b_id);
    raw.send(&frames::ack(frames::PUBCOMP, a_id.unwrap()));
    raw.send(&frames::ack(frames::PUBREC, b_id.unwrap()));
    assert_eq!(
        raw.expect_frame(frames::PUBREL, WAIT).packet_id(),
        b_id.unwrap()
    );
    raw.send(&frames::ack(frames::PUBCOMP, b_id.unwrap()));
    assert!(raw.is_quiet(QUIET));
}

// ---------------------------------------------------------------------------------------------
// Will Delay Interval

/// Options for a client with a will on `topic` delayed by `delay` s and a session of `expiry` s.
fn with_will(port: u16, id: &str, topic: &str, delay: u32, expiry: u32) -> MqttOptions {
    let mut opts = V5::persistent_options(port, id, expiry);
    opts.set_last_will(LastWill::new(
        topic,
        "gone",
        QoS5::AtLeastOnce,
        false,
        Some(LastWillProperties {
            delay_interval: Some(delay),
            ..will_properties()
        }),
    ));
    opts
}

/// rumqttc has no constructor for empty will properties.
fn will_properties() -> LastWillProperties {
    LastWillProperties {
        delay_interval: None,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
    }
}

fn watcher(port: u16, id: &str, topic: &str) -> V5 {
    let watcher = V5::connect(port, id);
    watcher.subscribe(topic, QoS5::AtLeastOnce);
    watcher
}

/// Connects with `opts`, drops the connection without DISCONNECT and waits for the will on
/// `watcher` (failing with `missing`); returns it and how long after the drop it came.
fn drop_and_await_will(opts: MqttOptions, watcher: &V5, missing: &str) -> (Publish, Duration) {
    let client = V5::connect_with(opts);
    let dropped = Instant::now();
    client.drop_connection();
    let will = watcher.recv_publish(WAIT).expect(missing);
    (will, dropped.elapsed())
}

#[test]
fn will_delay_is_cancelled_by_a_reconnect_within_the_delay() {
    let broker = Broker::start();
    let watcher = watcher(broker.port(), "wd-watch-1", "wd/cancel");
    let opts = with_will(broker.port(), "wd-cancel", "wd/cancel", 1, 60);
    V5::connect_with(opts.clone()).drop_connection();
    broker.wait_disconnected("wd-cancel");
    let again = V5::connect_with(opts);
    assert!(again.connack.session_present);
    assert!(
        watcher.recv_publish(Duration::from_millis(1800)).is_none(),
        "a reconnect within the Will Delay Interval must cancel the will"
    );
    again.disconnect();
}

#[test]
fn will_is_published_after_the_will_delay() {
    let broker = Broker::start();
    let watcher = watcher(broker.port(), "wd-watch-2", "wd/late");
    let opts = with_will(broker.port(), "wd-late", "wd/late", 1, 60);
    let (will, took) = drop_and_await_will(opts, &watcher, "will not published");
    assert_eq!(&will.payload[..], b"gone");
    assert!(
        took >= Duration::from_millis(900),
        "will published after {took:?}, before its 1 s delay"
    );
}

#[test]
fn will_is_published_when_the_session_expires_before_the_will_delay() {
    let broker = Broker::start();
    let watcher = watcher(broker.port(), "wd-watch-3", "wd/expiry");
    let opts = with_will(broker.port(), "wd-expiry", "wd/expiry", 60, 1);
    let (will, took) = drop_and_await_will(
        opts,
        &watcher,
        "will not published when the session ended before the will delay",
    );
    assert_eq!(&will.payload[..], b"gone");
    assert!(
        took >= Duration::from_millis(900),
        "published after {took:?}: the session had 1 s left"
    );
}

#[test]
fn will_with_delay_is_published_at_once_when_the_session_ends_at_close() {
    let broker = Broker::start();
    let watcher = watcher(broker.port(), "wd-watch-4", "wd/now");
    let opts = with_will(broker.port(), "wd-now", "wd/now", 30, 0);
    let (_, took) = drop_and_await_will(
        opts,
        &watcher,
        "session expiry 0 ends the session at close, so the will goes now",
    );
    assert!(took < Duration::from_secs(2));
}

#[test]
fn will_properties_are_forwarded() {
    let broker = Broker::start();
    let watcher = watcher(broker.port(), "wp-watch", "wp/will");
    let mut opts = V5::options(broker.port(), "wp-client");
    let user = vec![
        ("b".to_string(), "2".to_string()),
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "3".to_string()),
    ];
    opts.set_last_will(LastWill::new(
        "wp/will",
        "{\"state\":\"offline\"}",
        QoS5::AtLeastOnce,
        false,
        Some(LastWillProperties {
            payload_format_indicator: Some(1),
            content_type: Some("application/json".into()),
            response_topic: Some("wp/reply".into()),
            correlation_data: Some(b"\x00\xffcorr".to_vec().into()),
            user_properties: user.clone(),
            message_expiry_interval: Some(3600),
            ..will_properties()
        }),
    ));
    V5::connect_with(opts).drop_connection();
    let will = watcher.recv_publish(WAIT).expect("will not published");
    let p = will.properties.expect("will delivered without properties");
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.response_topic.as_deref(), Some("wp/reply"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"\x00\xffcorr"[..]));
    assert_eq!(p.user_properties, user, "user properties in their order");
    let left = p.message_expiry_interval.expect("message expiry forwarded");
    assert!((3590..=3600).contains(&left), "expiry {left}");
}

#[test]
fn sys_dropped_counter_is_only_touched_by_drops() {
    // Guard for the queue test above: a normal offline queue within its limit drops nothing.
    let broker = Broker::with_config("max_queued_messages = 5\nsys_interval = 1\n");
    let sys = sys_client(broker.port(), "queue-sys-ok");
    let opts = V5::persistent_options(broker.port(), "queue-ok", 60);
    let first = V5::connect_with(opts.clone());
    first.subscribe("ok/t", QoS5::AtLeastOnce);
    first.disconnect();
    broker.wait_disconnected("queue-ok");
    let publisher = V5::connect(broker.port(), "queue-ok-pub");
    for i in 0..5 {
        publisher.publish("ok/t", QoS5::AtLeastOnce, false, format!("m{i}"));
    }
    // Wait for one $SYS round after the publishes, then read the counter.
    let received = wait_sys(&sys, "messages/received", Duration::from_secs(3), |v| {
        number(v) >= 5
    });
    assert!(received.is_ok(), "messages/received never reached 5");
    let dropped = wait_sys(&sys, "messages/dropped", Duration::from_secs(3), |_| true);
    assert_eq!(dropped, Ok("0".to_string()));
    let again = V5::connect_with(opts);
    assert_eq!(again.expect_payloads(5, QUIET).len(), 5);
}

#[test]
fn session_expiry_capped_by_max_session_expiry_is_announced_in_connack() {
    let broker = Broker::with_config("max_session_expiry = 10\n");
    let mut raw = Raw::open(broker.port(), Version::V5);
    raw.send(
        &Connect::new(Version::V5, "capped")
            .properties(vec![prop::SESSION_EXPIRY_INTERVAL, 0, 0, 0, 60])
            .encode(),
    );
    let connack = raw.expect_frame(frames::CONNACK, WAIT);
    let expiry = connack
        .connack_properties()
        .into_iter()
        .find(|(id, _)| *id == prop::SESSION_EXPIRY_INTERVAL)
        .map(|(_, v)| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
    assert_eq!(
        expiry,
        Some(10),
        "a server that uses another Session Expiry Interval than asked must say so in CONNACK"
    );
}
