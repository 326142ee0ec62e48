//! QoS 1/2 under overload: with `queue_full = "backpressure"` (the default) a publisher whose
//! messages go to a full queue is held back instead of being acknowledged and dropped; the
//! other `queue_full` policies (`refuse` with 0x97, `drop_oldest`, `drop_new`) do what they say
//! and count what they drop.

mod common;

use common::clients::WAIT;
use common::frames::{self, prop, Connect, Frame, Version};
use common::raw::{Next, Raw};
use common::sys::{number, sys_client, wait_sys};
use common::Broker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const QUOTA_EXCEEDED: u8 = 0x97;

/// A raw MQTT 5 CONNECT for a session with a one-hour expiry.
fn persistent(id: &str) -> Connect<'_> {
    let mut expiry = vec![prop::SESSION_EXPIRY_INTERVAL];
    expiry.extend_from_slice(&3600u32.to_be_bytes());
    Connect::new(Version::V5, id)
        .clean(false)
        .properties(expiry)
}

/// Connects a raw client and subscribes it to `filter` at QoS 1.
fn subscriber(port: u16, connect: &Connect<'_>, filter: &str) -> Raw {
    let (mut raw, _) = Raw::connect(port, connect);
    raw.send(&frames::subscribe(connect.version, 1, filter, 1));
    raw.expect_frame(frames::SUBACK, WAIT);
    raw
}

/// Waits for the next frame, which must be of `kind`; `None` on close or timeout.
fn next_of(raw: &mut Raw, kind: u8, timeout: Duration) -> Option<Frame> {
    match raw.next(timeout) {
        Next::Frame(f) if f.kind() == kind => Some(f),
        Next::Frame(f) => panic!("expected {kind:#04x}, got {f:?}"),
        Next::Closed | Next::Timeout => None,
    }
}

/// Reads and acknowledges the next `n` QoS 1 PUBLISHes (each awaited for up to `WAIT`), then any
/// more that come within 500 ms; returns their payloads in order, so that comparing them with
/// an exact list shows a missing and an extra message alike.
fn acknowledged_payloads(sub: &mut Raw, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let wait = if got.len() < n {
            WAIT
        } else {
            Duration::from_millis(500)
        };
        let Some(f) = next_of(sub, frames::PUBLISH, wait) else {
            return got;
        };
        let (_, packet_id, body) = f.publish(Version::V5);
        sub.send(&frames::ack(frames::PUBACK, packet_id.unwrap()));
        got.push(String::from_utf8(body).unwrap());
    }
}

/// Publishes `n` QoS 1 messages `pub-{k}-{i}` to `topic` with up to `window` unacknowledged,
/// as fast as the acknowledgements allow; returns how many were acknowledged (all of them,
/// or fewer if the broker closed the connection).
fn flood(port: u16, version: Version, k: usize, topic: &str, n: usize, window: usize) -> usize {
    let id = format!("flood-{k}");
    let (mut raw, _) = Raw::connect(port, &Connect::new(version, &id).keep_alive(1));
    let (mut sent, mut acked) = (0, 0);
    while acked < n {
        while sent < n && sent - acked < window {
            let packet_id = u16::try_from(sent % 60_000 + 1).unwrap();
            let payload = format!("pub-{k}-{sent:05}");
            raw.send(&frames::publish(
                version,
                topic,
                1,
                packet_id,
                payload.as_bytes(),
            ));
            sent += 1;
        }
        match next_of(&mut raw, frames::PUBACK, Duration::from_secs(20)) {
            Some(f) => {
                assert_eq!(f.ack_reason(), 0, "publisher {k}: PUBACK {f:?}");
                acked += 1;
            }
            None => break,
        }
    }
    acked
}

/// Reads PUBLISHes, acknowledging each after `pause`, until `stop` is set and it has been
/// quiet; returns the payloads in arrival order.
fn slow_reader(mut raw: Raw, pause: Duration, stop: &AtomicBool, got: &AtomicUsize) -> Vec<String> {
    let mut payloads = Vec::new();
    loop {
        match raw.next(Duration::from_millis(500)) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (_, packet_id, body) = f.publish(raw.version);
                thread::sleep(pause);
                raw.send(&frames::ack(frames::PUBACK, packet_id.unwrap()));
                payloads.push(String::from_utf8(body).unwrap());
                got.fetch_add(1, Ordering::SeqCst);
            }
            Next::Frame(f) => panic!("slow reader: unexpected {f:?}"),
            Next::Timeout if stop.load(Ordering::SeqCst) => return payloads,
            Next::Timeout => {}
            Next::Closed => panic!("slow reader was disconnected"),
        }
    }
}

#[test]
fn slow_subscriber_holds_qos1_publishers_back_and_every_acknowledged_message_arrives_in_order() {
    const PER_PUBLISHER: usize = 300;
    let broker = Broker::with_config("max_queued_messages = 50\nmax_inflight = 8\n");
    let port = broker.port();
    let slow = subscriber(port, &Connect::new(Version::V5, "slow-sub"), "over/#");
    let mut fast = subscriber(port, &Connect::new(Version::V311, "fast-sub"), "other/t");
    let stop = Arc::new(AtomicBool::new(false));
    let slow_got = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, got) = (stop.clone(), slow_got.clone());
        thread::spawn(move || slow_reader(slow, Duration::from_millis(2), &stop, &got))
    };
    // MQTT 5 publishers stay within our Receive Maximum (128); 3.1.1 ones only within TCP.
    let publishers: Vec<_> = (0..4)
        .map(|k| {
            let (version, window) = if k % 2 == 0 {
                (Version::V5, 32)
            } else {
                (Version::V311, 200)
            };
            thread::spawn(move || flood(port, version, k, "over/t", PER_PUBLISHER, window))
        })
        .collect();

    // Meanwhile another topic is served: every message reaches the fast subscriber while
    // the slow one is still working through its backlog.
    let (mut other, _) = Raw::connect(port, &Connect::new(Version::V311, "other-pub"));
    for i in 0..20u16 {
        raw_publish_qos0(&mut other, i);
        let f = next_of(&mut fast, frames::PUBLISH, WAIT)
            .unwrap_or_else(|| panic!("the fast subscriber did not get message {i}"));
        assert_eq!(
            f.publish(Version::V311).2,
            format!("other-{i}").into_bytes()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let slow_then = slow_got.load(Ordering::SeqCst);
    assert!(
        slow_then < 4 * PER_PUBLISHER,
        "the slow subscriber was done before the other topic's 20 messages: no overload"
    );

    for (k, p) in publishers.into_iter().enumerate() {
        assert_eq!(
            p.join().unwrap(),
            PER_PUBLISHER,
            "publisher {k}: not every message acknowledged"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let payloads = reader.join().unwrap();
    let mut per_publisher: HashMap<usize, Vec<usize>> = HashMap::new();
    for p in &payloads {
        let mut parts = p.split('-').skip(1);
        let k: usize = parts.next().unwrap().parse().unwrap();
        let i: usize = parts.next().unwrap().parse().unwrap();
        per_publisher.entry(k).or_default().push(i);
    }
    for k in 0..4 {
        let got = per_publisher.remove(&k).unwrap_or_default();
        assert_eq!(
            got,
            (0..PER_PUBLISHER).collect::<Vec<_>>(),
            "publisher {k}: every acknowledged message, once, in order"
        );
    }
    assert!(
        broker
            .log()
            .iter()
            .any(|l| l.contains("slow-sub") && l.contains("holding publishers back")),
        "the broker never had to hold a publisher back: the test proves nothing"
    );
    assert!(
        !broker.log().iter().any(|l| l.contains("dropped")),
        "nothing may be dropped"
    );
}

fn raw_publish_qos0(raw: &mut Raw, i: u16) {
    let payload = format!("other-{i}");
    raw.send(&frames::publish(
        Version::V311,
        "other/t",
        0,
        0,
        payload.as_bytes(),
    ));
}

/// A subscriber that never reads holds its publishers back for `slow_consumer_timeout`, then
/// is disconnected, which releases them; a held publisher is not timed out for keep alive
/// (its keep alive here is 1 s, it is held for 3 s).
#[test]
fn slow_consumer_timeout_disconnects_the_subscriber_and_releases_its_publishers() {
    let broker = Broker::with_config(
        "max_queued_messages = 20\nmax_inflight = 5\nslow_consumer_timeout = 3\n",
    );
    let port = broker.port();
    let mut stuck = subscriber(port, &Connect::new(Version::V5, "stuck-sub"), "stuck/#");
    let publisher = thread::spawn(move || {
        let v4 = thread::spawn(move || flood(port, Version::V311, 1, "stuck/t", 30, 100));
        (
            flood(port, Version::V5, 0, "stuck/t", 30, 30),
            v4.join().unwrap(),
        )
    });
    let (v5, v4) = publisher.join().unwrap();
    assert_eq!(
        (v5, v4),
        (30, 30),
        "both publishers released and acknowledged"
    );
    // The subscriber never read: it is gone, unread PUBLISHes and all.
    let mut closed = false;
    while let Next::Frame(_) = stuck.next(Duration::from_secs(1)) {}
    if let Next::Closed = stuck.next(Duration::from_secs(1)) {
        closed = true;
    }
    assert!(closed, "the stuck subscriber must be disconnected");
    let log = broker.log();
    assert!(
        log.iter()
            .any(|l| l.contains("stuck-sub") && l.contains("publishers back for 3s")),
        "the subscriber is disconnected for holding its publishers back"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("flood-") && l.contains("keep alive timeout")),
        "a held publisher must not be timed out for keep alive"
    );
}

/// `queue_full = "refuse"`: an MQTT 5 publisher is told 0x97 and nobody gets the message; a
/// 3.1.1 publisher, which cannot be told, is held back until the queue has room.
#[test]
fn refuse_answers_0x97_to_mqtt5_and_holds_3_1_1_publishers() {
    let broker = Broker::with_config("queue_full = \"refuse\"\nmax_queued_messages = 3\n");
    let port = broker.port();
    let mut sub = subscriber(port, &persistent("refuse-sub"), "refuse/#");
    sub.send(&frames::disconnect());
    broker.wait_disconnected("refuse-sub");

    let (mut v5, _) = Raw::connect(port, &Connect::new(Version::V5, "refuse-v5"));
    let mut reasons = Vec::new();
    for id in 1..=5u16 {
        let payload = format!("m{id}");
        v5.send(&frames::publish(
            Version::V5,
            "refuse/t",
            1,
            id,
            payload.as_bytes(),
        ));
        reasons.push(next_of(&mut v5, frames::PUBACK, WAIT).unwrap().ack_reason());
    }
    assert_eq!(reasons, [0, 0, 0, QUOTA_EXCEEDED, QUOTA_EXCEEDED]);
    v5.send(&frames::publish(Version::V5, "refuse/t", 2, 6, b"q2"));
    let pubrec = next_of(&mut v5, frames::PUBREC, WAIT).unwrap();
    assert_eq!(pubrec.ack_reason(), QUOTA_EXCEEDED, "QoS 2 refused too");

    let (mut v4, _) = Raw::connect(port, &Connect::new(Version::V311, "refuse-v4"));
    v4.send(&frames::publish(Version::V311, "refuse/t", 1, 1, b"held"));
    assert!(
        next_of(&mut v4, frames::PUBACK, Duration::from_millis(500)).is_none(),
        "a 3.1.1 publisher cannot be told 0x97: it is held, not acknowledged"
    );

    let (mut sub, present) = Raw::connect(port, &persistent("refuse-sub"));
    assert!(present);
    let got = acknowledged_payloads(&mut sub, 4);
    assert_eq!(
        got,
        ["m1", "m2", "m3", "held"],
        "refused messages reach nobody"
    );
    assert!(
        next_of(&mut v4, frames::PUBACK, WAIT).is_some(),
        "the held 3.1.1 publisher is acknowledged once its message could be queued"
    );
}

/// `drop_oldest` keeps the newest messages; every drop is counted in `$SYS` by reason.
#[test]
fn drop_oldest_keeps_the_newest_and_counts_the_drops() {
    let broker = Broker::with_config(
        "queue_full = \"drop_oldest\"\nmax_queued_messages = 5\nsys_interval = 1\n",
    );
    let port = broker.port();
    let sys = sys_client(port, "drop-sys");
    let mut sub = subscriber(port, &persistent("drop-sub"), "drop/#");
    sub.send(&frames::disconnect());
    broker.wait_disconnected("drop-sub");
    let (mut publisher, _) = Raw::connect(port, &Connect::new(Version::V5, "drop-pub"));
    for id in 0..8u16 {
        let payload = format!("m{id}");
        publisher.send(&frames::publish(
            Version::V5,
            "drop/t",
            1,
            id + 1,
            payload.as_bytes(),
        ));
        let ack = next_of(&mut publisher, frames::PUBACK, WAIT).unwrap();
        assert_eq!(ack.ack_reason(), 0, "drop_oldest accepts every message");
    }
    let dropped = wait_sys(&sys, "messages/dropped/queue full", WAIT, |v| {
        number(v) >= 3
    });
    assert_eq!(dropped, Ok("3".to_string()));
    let (mut sub, _) = Raw::connect(port, &persistent("drop-sub"));
    let got = acknowledged_payloads(&mut sub, 5);
    assert_eq!(got, ["m3", "m4", "m5", "m6", "m7"]);
}

/// The broker-wide budgets hold publishers back too: with `max_queued_memory` spent by a slow
/// clean subscriber's queue the publisher waits, and it is released as the queue drains.
/// With `max_queued_disk` spent and `refuse`, an MQTT 5 publisher is told 0x97.
#[test]
fn spent_queue_budgets_hold_or_refuse_publishers() {
    let broker = Broker::with_config("max_queued_memory = 4000\nmax_inflight = 4\n");
    let port = broker.port();
    let slow = subscriber(port, &Connect::new(Version::V5, "budget-sub"), "budget/#");
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, got) = (stop.clone(), got.clone());
        thread::spawn(move || slow_reader(slow, Duration::from_millis(3), &stop, &got))
    };
    // 300 messages of 19 bytes (topic and payload): 4 000 bytes hold about 210 of them.
    let acked = flood(port, Version::V311, 9, "budget/t", 300, 300);
    assert_eq!(
        acked, 300,
        "every message acknowledged once the budget had room"
    );
    stop.store(true, Ordering::SeqCst);
    let payloads = reader.join().unwrap();
    let expected: Vec<String> = (0..300).map(|i| format!("pub-9-{i:05}")).collect();
    assert_eq!(payloads, expected, "nothing lost, in order");
    assert!(
        broker
            .log()
            .iter()
            .any(|l| l.contains("queue budget spent: holding publishers back")),
        "the memory budget never held the publisher: the test proves nothing"
    );

    let broker = Broker::with_config("max_queued_disk = 100\nqueue_full = \"refuse\"\n");
    let port = broker.port();
    let mut sub = subscriber(port, &persistent("disk-sub"), "disk/#");
    sub.send(&frames::disconnect());
    broker.wait_disconnected("disk-sub");
    let (mut v5, _) = Raw::connect(port, &Connect::new(Version::V5, "disk-pub"));
    let mut reasons = Vec::new();
    for id in 1..=4u16 {
        // 6 + 40 bytes each: the third would pass 100.
        v5.send(&frames::publish(Version::V5, "disk/t", 1, id, &[b'x'; 40]));
        reasons.push(next_of(&mut v5, frames::PUBACK, WAIT).unwrap().ack_reason());
    }
    assert_eq!(reasons, [0, 0, QUOTA_EXCEEDED, QUOTA_EXCEEDED]);
}
