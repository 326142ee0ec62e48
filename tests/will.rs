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
        // The broker's keep alive counts from when it read the PINGREQ, so a slow answer on a
        // loaded machine is no reason to fail; a close still is.
        match raw.next(WAIT) {
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

// ---------------------------------------------------------------------------------------------
// Durable wills: a persistent session's will survives kill -9

/// A raw MQTT 5 CONNECT for a session with a one-hour expiry.
fn persistent(id: &str) -> Connect<'_> {
    let mut expiry = vec![frames::prop::SESSION_EXPIRY_INTERVAL];
    expiry.extend_from_slice(&3600u32.to_be_bytes());
    Connect::new(Version::V5, id)
        .clean(false)
        .properties(expiry)
}

/// A persistent client with a will on `topic` delayed by `delay` seconds.
fn dying<'a>(id: &'a str, topic: &'a str, delay: u32) -> Connect<'a> {
    let mut delay_property = vec![frames::prop::WILL_DELAY_INTERVAL];
    delay_property.extend_from_slice(&delay.to_be_bytes());
    persistent(id)
        .will(will(topic, 1))
        .will_properties(delay_property)
}

/// Connects the persistent observer and (the first time) subscribes it to `will/#` at QoS 1.
fn observer(port: u16, subscribe: bool) -> Raw {
    let (mut raw, _) = Raw::connect(port, &persistent("w-durable-obs"));
    if subscribe {
        raw.send(&frames::subscribe(Version::V5, 1, "will/#", 1));
        raw.expect_frame(frames::SUBACK, WAIT);
    }
    raw
}

/// Waits until the store holds `id`'s session in the state `ready` asks for, so a kill -9
/// comes after the commit.
fn wait_for_stored(
    broker: &Broker,
    id: &str,
    ready: impl Fn(&outpost::store::StoredSession) -> bool,
) {
    let db = broker.db_path();
    common::wait_until(WAIT, || {
        let store = outpost::store::Store::open(&db, outpost::store::SyncMode::Normal).ok()?;
        let sessions = store.load_sessions().ok()?;
        sessions
            .iter()
            .find(|s| s.client_id == id && ready(s))
            .map(|_| ())
    })
    .unwrap_or_else(|| panic!("session {id} never reached the store as expected"));
}

/// Collects the topics of the PUBLISHes `raw` receives until it has been quiet for `quiet`,
/// acknowledging each.
fn will_topics(raw: &mut Raw, quiet: Duration) -> Vec<String> {
    let mut topics = Vec::new();
    while let Next::Frame(f) = raw.next(quiet) {
        if f.kind() == frames::PUBLISH {
            let (topic, packet_id, _) = f.publish(Version::V5);
            if let Some(id) = packet_id {
                raw.send(&frames::ack(frames::PUBACK, id));
            }
            topics.push(String::from_utf8(topic).unwrap());
        }
    }
    topics
}

#[test]
fn will_waiting_on_its_delay_is_published_after_kill_9() {
    let mut broker = Broker::start();
    drop(observer(broker.port(), true));
    let (raw, _) = Raw::connect(broker.port(), &dying("w-delayed", "will/delayed", 2));
    raw.drop_socket();
    wait_for_stored(&broker, "w-delayed", |s| {
        s.disconnected_at.is_some() && s.will.is_some()
    });
    broker.restart();
    let mut obs = observer(broker.port(), false);
    assert_eq!(
        will_topics(&mut obs, Duration::from_secs(4)),
        ["will/delayed"],
        "the pending will goes out once after the restart"
    );
}

#[test]
fn will_of_a_connected_persistent_client_is_published_after_kill_9() {
    let mut broker = Broker::start();
    drop(observer(broker.port(), true));
    let (raw, _) = Raw::connect(broker.port(), &dying("w-connected", "will/connected", 1));
    wait_for_stored(&broker, "w-connected", |s| s.will.is_some());
    broker.restart();
    drop(raw);
    let mut obs = observer(broker.port(), false);
    assert_eq!(
        will_topics(&mut obs, Duration::from_secs(3)),
        ["will/connected"],
        "the client never came back: its will goes out after its delay"
    );
}

#[test]
fn client_back_within_the_will_delay_after_kill_9_cancels_its_will() {
    let mut broker = Broker::start();
    drop(observer(broker.port(), true));
    let (raw, _) = Raw::connect(broker.port(), &dying("w-returning", "will/returning", 3));
    raw.drop_socket();
    wait_for_stored(&broker, "w-returning", |s| {
        s.disconnected_at.is_some() && s.will.is_some()
    });
    broker.restart();
    // Back at once, this time without a will.
    let (back, present) = Raw::connect(broker.port(), &persistent("w-returning"));
    assert!(present, "the session survived the restart");
    let mut obs = observer(broker.port(), false);
    assert!(
        will_topics(&mut obs, Duration::from_secs(4)).is_empty(),
        "a client back within its will delay cancels the will"
    );
    drop(back);
}
