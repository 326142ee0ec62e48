//! `$SYS` statistics: every value under `$SYS/broker/`, published each `sys_interval` while
//! someone subscribes, changing as the broker works, and never matched by `#`.

mod common;

use common::clients::{QoS5, V5Packet, V5, WAIT};
use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::sys::{number, sys_client, wait_sys};
use common::upstream::{Mosquitto, Sub};
use common::Broker;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const ONE_SECOND: &str = "sys_interval = 1\n";

/// Every statistic the issue asks for, by its name under `$SYS/broker/`.
const NAMES: [&str; 30] = [
    "version",
    "uptime",
    "clients/connected",
    "clients/disconnected",
    "clients/total",
    "messages/received",
    "messages/sent",
    "messages/dropped",
    "bytes/received",
    "bytes/sent",
    "bytes/saved by topic aliases",
    "subscriptions/count",
    "retained messages/count",
    "store/messages/queued",
    "load/messages/received/1min",
    "load/messages/sent/1min",
    "load/bytes/received/1min",
    "load/bytes/sent/1min",
    "load/connections/1min",
    "store/failures",
    "messages/dropped/queue full",
    "messages/dropped/expired",
    "messages/dropped/too large",
    "messages/dropped/slow consumer",
    "messages/refused",
    "publishers/held",
    "publishers/held/total",
    "clients/slow consumers",
    "store/messages/queued bytes in memory",
    "store/messages/queued bytes on disk",
];

/// Collects `$SYS/broker/*` values until every name in `NAMES` has been seen or `timeout` ends.
fn collect(client: &V5, timeout: Duration) -> BTreeMap<String, String> {
    let deadline = Instant::now() + timeout;
    let mut seen = BTreeMap::new();
    while !NAMES.iter().all(|n| seen.contains_key(*n)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(p) = client.recv_publish(left) else {
            break;
        };
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        let name = topic
            .strip_prefix("$SYS/broker/")
            .unwrap_or_else(|| panic!("$SYS/# delivered {topic}"))
            .to_string();
        seen.insert(name, String::from_utf8_lossy(&p.payload).into_owned());
    }
    seen
}

#[test]
fn sys_subscriber_receives_every_statistic() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = sys_client(broker.port(), "sys-all");
    let seen = collect(&sys, Duration::from_secs(3));
    let missing: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| !seen.contains_key(*n))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}; got {seen:?}");
    assert!(seen["version"].starts_with("outpost "), "{seen:?}");
    assert!(seen["uptime"].ends_with(" seconds"), "{seen:?}");
    assert!(number(&seen["clients/connected"]) >= 1);
    assert!(number(&seen["clients/total"]) >= number(&seen["clients/connected"]));
    assert!(number(&seen["subscriptions/count"]) >= 1);
    for load in NAMES.iter().filter(|n| n.starts_with("load/")) {
        seen[*load]
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{load} is not a decimal: {:?}", seen[*load]));
    }
}

#[test]
fn sys_values_are_published_every_interval_and_change() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = sys_client(broker.port(), "sys-tick");
    let first = wait_sys(&sys, "uptime", WAIT, |_| true).expect("no uptime");
    let start = Instant::now();
    let later = wait_sys(&sys, "uptime", Duration::from_secs(3), |v| {
        number(v) > number(&first)
    });
    assert!(later.is_ok(), "uptime never changed after {first:?}");
    assert!(start.elapsed() < Duration::from_millis(2500));

    let base = wait_sys(&sys, "messages/received", WAIT, |_| true).unwrap();
    let sent_base = wait_sys(&sys, "bytes/received", WAIT, |_| true).unwrap();
    let publisher = V5::connect(broker.port(), "sys-tick-pub");
    for _ in 0..3 {
        publisher.publish("sys/work", QoS5::AtLeastOnce, false, "x");
    }
    let grown = wait_sys(&sys, "messages/received", Duration::from_secs(3), |v| {
        number(v) >= number(&base) + 3
    });
    assert!(grown.is_ok(), "messages/received stayed at {grown:?}");
    let bytes = wait_sys(&sys, "bytes/received", Duration::from_secs(3), |v| {
        number(v) > number(&sent_base)
    });
    assert!(bytes.is_ok(), "bytes/received stayed at {bytes:?}");
    let sent = wait_sys(&sys, "messages/sent", Duration::from_secs(3), |v| {
        number(v) > 0
    });
    assert!(sent.is_ok(), "messages/sent stayed at {sent:?}");
}

#[test]
fn clients_connected_follows_connections() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = sys_client(broker.port(), "sys-clients");
    let one = wait_sys(&sys, "clients/connected", WAIT, |v| v == "1");
    assert!(one.is_ok(), "only the $SYS client is connected: {one:?}");
    let a = V5::connect(broker.port(), "sys-clients-a");
    let b = V5::connect(broker.port(), "sys-clients-b");
    let three = wait_sys(&sys, "clients/connected", Duration::from_secs(3), |v| {
        v == "3"
    });
    assert!(three.is_ok(), "{three:?}");
    a.disconnect();
    let two = wait_sys(&sys, "clients/connected", Duration::from_secs(3), |v| {
        v == "2"
    });
    assert!(two.is_ok(), "{two:?}");
    drop(b);
}

#[test]
fn subscription_and_retained_counts_follow_the_broker() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = sys_client(broker.port(), "sys-counts");
    let subs = wait_sys(&sys, "subscriptions/count", WAIT, |_| true).unwrap();
    // The count includes the $SYS values themselves, which appear after the first round:
    // take the count once two rounds agree.
    let mut retained = wait_sys(&sys, "retained messages/count", WAIT, |_| true).unwrap();
    loop {
        let next = wait_sys(&sys, "retained messages/count", WAIT, |_| true).unwrap();
        if next == retained {
            break;
        }
        retained = next;
    }
    let client = V5::connect(broker.port(), "sys-counts-sub");
    client.subscribe("counts/a", QoS5::AtMostOnce);
    client.subscribe("counts/b/#", QoS5::AtMostOnce);
    client.publish("counts/a", QoS5::AtLeastOnce, true, "kept");
    let more_subs = wait_sys(&sys, "subscriptions/count", Duration::from_secs(3), |v| {
        number(v) == number(&subs) + 2
    });
    assert!(more_subs.is_ok(), "from {subs}: {more_subs:?}");
    let more_retained = wait_sys(
        &sys,
        "retained messages/count",
        Duration::from_secs(3),
        |v| number(v) == number(&retained) + 1,
    );
    assert!(more_retained.is_ok(), "from {retained}: {more_retained:?}");
}

#[test]
fn hash_subscriber_never_receives_sys_messages() {
    let broker = Broker::with_config(ONE_SECOND);
    let hash = V5::connect(broker.port(), "sys-hash");
    hash.subscribe("#", QoS5::AtMostOnce);
    hash.subscribe("+/broker/#", QoS5::AtMostOnce);
    let sys = sys_client(broker.port(), "sys-hash-watch");
    // Two $SYS rounds go out while `#` listens.
    let first = wait_sys(&sys, "uptime", WAIT, |_| true).unwrap();
    let later = wait_sys(&sys, "uptime", Duration::from_secs(3), |v| {
        number(v) > number(&first)
    });
    assert!(later.is_ok());
    let leaked = hash.take(
        Duration::from_millis(100),
        |p| matches!(p, V5Packet::Publish(p) if p.topic.starts_with(b"$")),
    );
    assert!(
        leaked.is_none(),
        "'#' and '+/…' must not match $SYS topics: {leaked:?}"
    );
}

#[test]
fn sys_interval_0_publishes_nothing() {
    let broker = Broker::with_config("sys_interval = 0\n");
    let sys = sys_client(broker.port(), "sys-off");
    assert!(
        sys.recv_publish(Duration::from_millis(1500)).is_none(),
        "sys_interval = 0 disables $SYS"
    );
}

#[test]
fn clients_cannot_publish_to_sys() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = V5::connect(broker.port(), "sys-forge-watch");
    sys.subscribe("$SYS/broker/forged", QoS5::AtMostOnce);
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "sys-forger"));
    raw.send(&frames::publish(
        Version::V5,
        "$SYS/broker/forged",
        1,
        1,
        b"x",
    ));
    let ack = raw.expect_frame(frames::PUBACK, WAIT);
    assert_eq!(ack.ack_reason(), 0x87, "Not authorized");
    assert!(sys.recv_publish(Duration::from_millis(400)).is_none());
}

/// A filter naming one `$SYS` topic keeps the values coming, not just the retained copy.
#[test]
fn a_single_sys_topic_subscriber_gets_every_update() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = V5::connect(broker.port(), "sys-one-topic");
    sys.subscribe("$SYS/broker/messages/received", QoS5::AtMostOnce);
    let base = wait_sys(&sys, "messages/received", WAIT, |_| true).expect("no first value");
    let publisher = V5::connect(broker.port(), "sys-one-topic-pub");
    for _ in 0..3 {
        publisher.publish("sys/work", QoS5::AtLeastOnce, false, "x");
    }
    let grown = wait_sys(&sys, "messages/received", Duration::from_secs(5), |v| {
        number(v) >= number(&base) + 3
    });
    assert!(grown.is_ok(), "from {base}: {grown:?}");
    let other = sys.take(Duration::ZERO, |p| {
        matches!(p, V5Packet::Publish(p) if p.topic != b"$SYS/broker/messages/received".as_slice())
    });
    assert!(other.is_none(), "delivered outside the filter: {other:?}");
}

/// `mosquitto_sub -t '$SYS/broker/bridge/#'` alone gets every bridge value, updated as the
/// bridge forwards.
#[test]
fn a_bridge_sys_subscriber_gets_the_bridge_values() {
    let upstream = Mosquitto::start();
    let broker = Broker::with_config(&format!(
        "{ONE_SECOND}[[bridge]]\nname = \"up\"\naddress = \"127.0.0.1:{}\"\n\
         [[bridge.topic]]\nfilter = \"s/#\"\ndirection = \"out\"\n",
        upstream.port
    ));
    let sub = Sub::start(broker.port(), "$SYS/broker/bridge/#", 0, &[]);
    let keys = [
        "connected",
        "queued",
        "queued/bytes",
        "forwarded",
        "received",
        "dropped",
        "connects",
    ];
    let value = |m: &[(String, String)], key: &str| {
        m.iter()
            .rev()
            .find(|(t, _)| *t == format!("$SYS/broker/bridge/up/{key}"))
            .map(|(_, v)| v.clone())
    };
    let up = sub.wait(Duration::from_secs(10), |m| {
        value(m, "connected").as_deref() == Some("1") && keys.iter().all(|k| value(m, k).is_some())
    });
    assert_eq!(value(&up, "connected").as_deref(), Some("1"), "{up:?}");
    for key in keys {
        assert!(value(&up, key).is_some(), "no {key}: {up:?}");
    }
    let publisher = V5::connect(broker.port(), "sys-bridge-pub");
    publisher.publish("s/x", QoS5::AtLeastOnce, false, "1");
    let forwarded = sub.wait(Duration::from_secs(10), |m| {
        value(m, "forwarded").is_some_and(|v| number(&v) >= 1)
    });
    assert!(
        value(&forwarded, "forwarded").is_some_and(|v| number(&v) >= 1),
        "{forwarded:?}"
    );
    let stray: Vec<_> = forwarded
        .iter()
        .filter(|(t, _)| !t.starts_with("$SYS/broker/bridge/up/"))
        .collect();
    assert!(stray.is_empty(), "delivered outside the filter: {stray:?}");
    // The link never failed: no last_error yet (not an empty one, which prints "(null)").
    let errors: Vec<_> = forwarded
        .iter()
        .filter(|(t, _)| t.ends_with("/last_error"))
        .collect();
    assert!(errors.is_empty(), "last_error before any error: {errors:?}");
}

/// Once the last `$SYS` subscription goes, a round finds nobody and the timer lapses: the
/// broker goes back to sleeping without waking up.
#[test]
fn sys_stops_when_its_last_subscriber_leaves() {
    let broker = Broker::with_config(ONE_SECOND);
    let sys = V5::connect(broker.port(), "sys-leaves");
    sys.subscribe("$SYS/broker/uptime", QoS5::AtMostOnce);
    wait_sys(&sys, "uptime", WAIT, |_| true).expect("no uptime");
    sys.disconnect();
    broker.wait_disconnected("sys-leaves");
    // With the timer running the broker wakes every second: a quiet 2 s window shows it
    // stopped. Several windows are allowed for the last round and a loaded machine.
    let quiet = (0..10).any(|_| {
        let before = broker.context_switches();
        std::thread::sleep(Duration::from_secs(2));
        broker.context_switches() == before
    });
    assert!(
        quiet,
        "the broker kept waking up after the last $SYS subscriber left"
    );
}
