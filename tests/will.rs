//! Will messages and keep alive: the will is published when a connection ends abnormally (socket
//! dropped, keep alive expired) and not after a normal DISCONNECT; keep alive is enforced at 1.5×.

mod common;

use common::clients::{QoS4, QoS5, V4, V5, WAIT};
use common::frames::{self, Connect, Version, Will};
use common::raw::{Next, Raw};
use common::Broker;
use rumqttc::v5::mqttbytes::v5::LastWill;
use std::time::{Duration, Instant};

fn will<'a>(topic: &'a str, qos: u8) -> Will<'a> {
    Will {
        topic,
        payload: b"gone",
        qos,
        retain: false,
    }
}

/// Waits for the broker's disconnect log line for `id`, so that everything the broker does on
/// that disconnect (publishing or discarding the will) has happened.
fn wait_for_disconnect_log(broker: &Broker, id: &str) {
    broker
        .wait_for_log(WAIT, |l| {
            l.contains(id) && l.to_ascii_lowercase().contains("disconnect")
        })
        .unwrap_or_else(|| panic!("no disconnect log line for client {id:?}"));
}

#[test]
fn v311_will_is_published_when_the_socket_drops() {
    let broker = Broker::start();
    let observer = V4::connect(broker.port(), "w-obs");
    observer.subscribe("will/#", QoS4::ExactlyOnce);
    let connect = Connect::new(Version::V311, "w-dying").will(will("will/v311", 1));
    let (raw, _) = Raw::connect(broker.port(), &connect);
    raw.drop_socket();

    let got = observer.expect_publish();
    assert_eq!(got.topic, "will/v311");
    assert_eq!(&got.payload[..], b"gone");
    assert_eq!(got.qos, QoS4::AtLeastOnce, "the will keeps its QoS");
    assert!(!got.retain);
}

#[test]
fn v5_will_is_published_when_the_socket_drops() {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "w-obs");
    observer.subscribe("will/#", QoS5::ExactlyOnce);
    let connect = Connect::new(Version::V5, "w-dying").will(will("will/v5", 2));
    let (raw, _) = Raw::connect(broker.port(), &connect);
    raw.drop_socket();

    let got = observer.expect_publish();
    assert_eq!(&got.topic[..], b"will/v5");
    assert_eq!(&got.payload[..], b"gone");
    assert_eq!(got.qos, QoS5::ExactlyOnce, "the will keeps its QoS");
}

#[test]
fn rumqttc_v5_will_is_published_when_the_connection_is_lost() {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "w-obs");
    observer.subscribe("will/real", QoS5::AtLeastOnce);
    let mut opts = V5::options(broker.port(), "w-real");
    opts.set_last_will(LastWill::new(
        "will/real",
        "rumqttc gone",
        QoS5::AtLeastOnce,
        false,
        None,
    ));
    let dying = V5::connect_with(opts);
    dying.drop_connection();

    let got = observer.expect_publish();
    assert_eq!(&got.payload[..], b"rumqttc gone");
}

#[test]
fn will_with_retain_flag_becomes_the_retained_message() {
    let broker = Broker::start();
    let connect = Connect::new(Version::V311, "w-retain").will(Will {
        topic: "will/kept",
        payload: b"last words",
        qos: 1,
        retain: true,
    });
    let (raw, _) = Raw::connect(broker.port(), &connect);
    raw.drop_socket();
    wait_for_disconnect_log(&broker, "w-retain");

    let late = V5::connect(broker.port(), "w-late");
    late.subscribe("will/kept", QoS5::AtLeastOnce);
    let got = late
        .recv_publish(WAIT)
        .expect("a will with retain=1 must be stored as the retained message of its topic");
    assert_eq!(&got.payload[..], b"last words");
    assert!(got.retain);
}

/// The client sends DISCONNECT and closes; the will must not be published.
fn no_will_after_normal_disconnect(version: Version) {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "w-obs");
    observer.subscribe("will/#", QoS5::AtLeastOnce);
    let connect = Connect::new(version, "w-polite").will(will("will/polite", 1));
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    raw.send(&frames::disconnect());
    let _ = raw.frames_until_closed(Duration::from_millis(500));
    raw.drop_socket();
    wait_for_disconnect_log(&broker, "w-polite");

    let marker = V4::connect(broker.port(), "w-marker");
    marker.publish("will/polite", QoS4::AtLeastOnce, false, "marker");
    let first = observer.expect_publish();
    assert_eq!(
        &first.payload[..],
        b"marker",
        "the will was published after a normal DISCONNECT"
    );
}

#[test]
fn v311_no_will_after_normal_disconnect() {
    no_will_after_normal_disconnect(Version::V311);
}

#[test]
fn v5_no_will_after_normal_disconnect() {
    no_will_after_normal_disconnect(Version::V5);
}

#[test]
fn rumqttc_v5_no_will_after_normal_disconnect() {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "w-obs");
    observer.subscribe("will/real", QoS5::AtLeastOnce);
    let mut opts = V5::options(broker.port(), "w-real-polite");
    opts.set_last_will(LastWill::new(
        "will/real",
        "oops",
        QoS5::AtLeastOnce,
        false,
        None,
    ));
    V5::connect_with(opts).disconnect();
    wait_for_disconnect_log(&broker, "w-real-polite");

    observer.publish("will/real", QoS5::AtLeastOnce, false, "marker");
    assert_eq!(&observer.expect_publish().payload[..], b"marker");
}

#[test]
fn v5_disconnect_with_will_message_reason_publishes_the_will() {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "w-obs");
    observer.subscribe("will/#", QoS5::AtLeastOnce);
    let connect = Connect::new(Version::V5, "w-asks").will(will("will/asked", 1));
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    raw.send(&[frames::DISCONNECT, 1, 0x04]);
    let got = observer.expect_publish();
    assert_eq!(&got.topic[..], b"will/asked");
}

/// A client with keep alive 1 s goes silent: the broker must close it after 1.5 s (not before
/// 1 s, and well within ~2.5 s) and publish its will.
fn keep_alive_expires(version: Version) {
    let broker = Broker::start();
    let observer = V5::connect(broker.port(), "ka-obs");
    observer.subscribe("will/ka", QoS5::AtLeastOnce);
    let connect = Connect::new(version, "ka-silent")
        .keep_alive(1)
        .will(will("will/ka", 1));
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    let start = Instant::now();
    let frames = raw.expect_closed(Duration::from_secs(4));
    let closed_after = start.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1000),
        "closed after {closed_after:?}: keep alive 1 s allows 1.5 s of silence"
    );
    assert!(
        closed_after <= Duration::from_millis(2500),
        "closed only after {closed_after:?}: keep alive 1 s must be enforced at 1.5 s"
    );
    match version {
        Version::V311 => assert!(frames.is_empty(), "unexpected frames {frames:?}"),
        Version::V5 => assert!(
            frames.iter().all(|f| f.disconnect_reason() == 0x8D),
            "a DISCONNECT on keep alive timeout must carry 0x8D, got {frames:?}"
        ),
    }
    let got = observer
        .recv_publish(Duration::from_secs(1))
        .expect("the will must be published when keep alive expires");
    assert_eq!(&got.payload[..], b"gone");
    assert!(
        start.elapsed() <= Duration::from_millis(3000),
        "will published only after {:?}",
        start.elapsed()
    );
}

#[test]
fn v311_keep_alive_timeout_closes_and_publishes_the_will() {
    keep_alive_expires(Version::V311);
}

#[test]
fn v5_keep_alive_timeout_closes_and_publishes_the_will() {
    keep_alive_expires(Version::V5);
}

#[test]
fn pingreq_keeps_a_short_keep_alive_connection_open() {
    let broker = Broker::start();
    let connect = Connect::new(Version::V311, "ka-pinger").keep_alive(1);
    let (mut raw, _) = Raw::connect(broker.port(), &connect);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2600) {
        raw.send(&frames::pingreq());
        match raw.next(Duration::from_millis(600)) {
            Next::Frame(f) if f.kind() == frames::PINGRESP => {}
            other => panic!(
                "expected PINGRESP after {:?}, got {other:?}",
                start.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(400));
    }
}

#[test]
fn rumqttc_v311_client_with_keep_alive_1s_stays_connected() {
    let broker = Broker::start();
    let mut opts = V4::options(broker.port(), "ka-real");
    opts.set_keep_alive(Duration::from_secs(1));
    let c = V4::connect_with(opts);
    c.subscribe("ka/real", QoS4::AtLeastOnce);
    // rumqttc pings every second; after 2.5 s the connection must still carry messages.
    let pings = c.take(Duration::from_millis(2500), |_| false);
    assert!(pings.is_none());
    c.publish("ka/real", QoS4::AtLeastOnce, false, "alive");
    assert_eq!(&c.expect_publish().payload[..], b"alive");
}
