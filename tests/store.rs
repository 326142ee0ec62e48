//! The durable store: acknowledged messages, in-flight deliveries, retained messages and message
//! expiry survive a `kill -9` and a restart on the same database; a database that cannot be
//! opened stops start-up with exit code 2 and one line on stderr.

mod common;

use common::clients::{QoS4, QoS5, V4, V5, WAIT};
use common::frames::{self, prop, prop5, Connect, Frame, Version};
use common::raw::{Next, Raw};
use common::{Broker, BIN};
use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

/// A raw MQTT 5 CONNECT that starts or resumes a session with a 300 s expiry.
fn raw_persistent(id: &str) -> Connect<'_> {
    Connect::new(Version::V5, id).clean(false).properties(vec![
        prop::SESSION_EXPIRY_INTERVAL,
        0,
        0,
        0x01,
        0x2C,
    ])
}

/// Waits for the next frame, which must be a PUBLISH.
fn expect_publish(raw: &mut Raw, what: &str) -> Frame {
    match raw.next(WAIT) {
        Next::Frame(f) if f.kind() == frames::PUBLISH => f,
        other => panic!("{what}: expected PUBLISH, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Acknowledged messages across kill -9

/// Messages the publisher tries to send: even indexes at QoS 1, odd ones at QoS 2.
const TOTAL: usize = 2000;
/// The broker is killed once this many are acknowledged: more than the 1 000 an offline
/// queue used to hold in memory, all of which the subscribers must get.
const KILL_AT: usize = 1500;

fn qos_of(i: usize) -> u8 {
    1 + (i % 2) as u8
}

fn payload_of(i: usize) -> String {
    format!("m{i:03}-q{}", qos_of(i))
}

/// True when the next frame is `kind` for `packet_id`; false when the broker went away.
fn acked(raw: &mut Raw, kind: u8, packet_id: u16) -> bool {
    match raw.next(WAIT) {
        Next::Frame(f) if f.kind() == kind && f.packet_id() == packet_id => true,
        Next::Frame(f) => panic!("publisher expected {kind:#04x} for {packet_id}, got {f:?}"),
        Next::Closed | Next::Timeout => false,
    }
}

/// Publishes `TOTAL` messages one at a time on a raw 3.1.1 connection until the broker dies;
/// returns the indexes of those the broker acknowledged (PUBACK, or PUBCOMP for QoS 2).
fn publish_until_killed(port: u16, progress: &AtomicUsize) -> Vec<usize> {
    let (mut raw, _) = Raw::connect(port, &Connect::new(Version::V311, "durable-pub"));
    let mut done = Vec::new();
    for i in 0..TOTAL {
        let id = u16::try_from(i + 1).unwrap();
        let qos = qos_of(i);
        let payload = payload_of(i);
        raw.send(&frames::publish(
            Version::V311,
            format!("t/{payload}"),
            qos,
            id,
            payload.as_bytes(),
        ));
        let ok = if qos == 1 {
            acked(&mut raw, frames::PUBACK, id)
        } else {
            acked(&mut raw, frames::PUBREC, id) && {
                raw.send(&frames::ack(frames::PUBREL, id));
                acked(&mut raw, frames::PUBCOMP, id)
            }
        };
        if !ok {
            break;
        }
        done.push(i);
        progress.store(done.len(), Ordering::SeqCst);
    }
    done
}

/// Collects payloads until every one of `expected` has arrived at least once, then until the
/// client is quiet; returns how often each payload arrived.
fn collect(
    what: &str,
    mut next: impl FnMut(Duration) -> Option<String>,
    expected: &[String],
) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while expected.iter().any(|p| !seen.contains_key(p)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(left) {
            Some(p) => *seen.entry(p).or_default() += 1,
            None => {
                let missing: Vec<&String> =
                    expected.iter().filter(|p| !seen.contains_key(*p)).collect();
                panic!(
                    "{what}: {} of {} acknowledged messages never arrived after the restart, \
                     e.g. {:?}",
                    missing.len(),
                    expected.len(),
                    &missing[..missing.len().min(10)]
                );
            }
        }
    }
    while let Some(p) = next(QUIET) {
        *seen.entry(p).or_default() += 1;
    }
    seen
}

#[test]
fn acknowledged_qos1_and_qos2_messages_survive_kill_9_mid_traffic() {
    let mut broker = Broker::start();
    // Two persistent subscribers, offline during the traffic: 3.1.1 at QoS 1, MQTT 5 at QoS 2.
    let mut v4_opts = V4::options(broker.port(), "durable-v4");
    v4_opts.set_clean_session(false);
    let v4 = V4::connect_with(v4_opts);
    v4.subscribe("t/#", QoS4::AtLeastOnce);
    v4.disconnect();
    let v5_opts = |port| V5::persistent_options(port, "durable-v5", 3600);
    let v5 = V5::connect_with(v5_opts(broker.port()));
    v5.subscribe("t/#", QoS5::ExactlyOnce);
    v5.disconnect();

    let progress = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (port, progress) = (broker.port(), progress.clone());
        std::thread::spawn(move || publish_until_killed(port, &progress))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress.load(Ordering::SeqCst) < KILL_AT {
        assert!(
            Instant::now() < deadline,
            "only {} of {KILL_AT} publishes acknowledged within 60 s",
            progress.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    broker.kill9();
    let acked = publisher.join().expect("publisher thread");
    assert!(
        acked.len() < TOTAL,
        "the publisher finished all {TOTAL} messages before the kill; the test proves nothing"
    );
    broker.restart();

    let expected: Vec<String> = acked.iter().map(|&i| payload_of(i)).collect();
    let v4 = V4::connect_with({
        let mut opts = V4::options(broker.port(), "durable-v4");
        opts.set_clean_session(false);
        opts
    });
    assert!(v4.connack.session_present, "3.1.1 session lost by kill -9");
    let got_v4 = collect(
        "3.1.1 QoS 1 subscriber",
        |t| {
            v4.recv_publish(t)
                .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        },
        &expected,
    );

    let v5 = V5::connect_with(v5_opts(broker.port()));
    assert!(v5.connack.session_present, "MQTT 5 session lost by kill -9");
    let got_v5 = collect(
        "MQTT 5 QoS 2 subscriber",
        |t| {
            v5.recv_publish(t)
                .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        },
        &expected,
    );
    let duplicated: Vec<(&String, &usize)> = acked
        .iter()
        .filter(|&&i| qos_of(i) == 2)
        .filter_map(|&i| got_v5.get_key_value(&payload_of(i)))
        .filter(|(_, &n)| n > 1)
        .collect();
    assert!(
        duplicated.is_empty(),
        "acknowledged QoS 2 messages delivered more than once: {duplicated:?}"
    );
    eprintln!(
        "{} of {TOTAL} acknowledged before kill -9; delivered after restart: 3.1.1 {}, MQTT 5 {}",
        acked.len(),
        got_v4.values().sum::<usize>(),
        got_v5.values().sum::<usize>()
    );
}

// ---------------------------------------------------------------------------------------------
// In-flight deliveries across kill -9

#[test]
fn unacknowledged_deliveries_are_resent_with_dup_after_kill_9() {
    let mut broker = Broker::start();
    let v5_connect = raw_persistent("inflight-v5");
    let v4_connect = Connect::new(Version::V311, "inflight-v4").clean(false);
    let (mut v5, _) = Raw::connect(broker.port(), &v5_connect);
    v5.send(&frames::subscribe(Version::V5, 1, "inflight/q1", 1));
    v5.expect_frame(frames::SUBACK, WAIT);
    let (mut v4, _) = Raw::connect(broker.port(), &v4_connect);
    v4.send(&frames::subscribe(Version::V311, 1, "inflight/q2", 2));
    v4.expect_frame(frames::SUBACK, WAIT);

    let publisher = V5::connect(broker.port(), "inflight-pub");
    publisher.publish("inflight/q1", QoS5::AtLeastOnce, false, "one");
    publisher.publish("inflight/q2", QoS5::ExactlyOnce, false, "two");
    // Delivered but never acknowledged by the subscribers.
    let first1 = expect_publish(&mut v5, "first QoS 1 delivery");
    let first2 = expect_publish(&mut v4, "first QoS 2 delivery");
    assert_eq!(first1.first_byte & 0x08, 0, "first delivery without DUP");
    assert_eq!(first2.first_byte & 0x08, 0, "first delivery without DUP");
    let (_, id1, _) = first1.publish(Version::V5);
    let (_, id2, _) = first2.publish(Version::V311);

    broker.restart();
    let (mut v5, present) = Raw::connect(broker.port(), &v5_connect);
    assert!(present, "MQTT 5 session lost by kill -9");
    let again1 = expect_publish(&mut v5, "QoS 1 resend after restart");
    let (topic, again_id, payload) = again1.publish(Version::V5);
    assert_eq!(
        (&topic[..], &payload[..]),
        (&b"inflight/q1"[..], &b"one"[..])
    );
    assert_eq!(again_id, id1, "the resend keeps its packet identifier");
    assert_eq!(again1.first_byte & 0x08, 0x08, "the resend has DUP set");
    assert_eq!((again1.first_byte >> 1) & 3, 1, "still QoS 1");
    v5.send(&frames::ack(frames::PUBACK, id1.unwrap()));
    assert!(v5.is_quiet(QUIET), "nothing more after the PUBACK");

    let (mut v4, present) = Raw::connect(broker.port(), &v4_connect);
    assert!(present, "3.1.1 session lost by kill -9");
    let again2 = expect_publish(&mut v4, "QoS 2 resend after restart");
    let (topic, again_id, payload) = again2.publish(Version::V311);
    assert_eq!(
        (&topic[..], &payload[..]),
        (&b"inflight/q2"[..], &b"two"[..])
    );
    assert_eq!(again_id, id2, "the resend keeps its packet identifier");
    assert_eq!(again2.first_byte & 0x08, 0x08, "the resend has DUP set");
    assert_eq!((again2.first_byte >> 1) & 3, 2, "still QoS 2");
    v4.send(&frames::ack(frames::PUBREC, id2.unwrap()));
    assert_eq!(
        v4.expect_frame(frames::PUBREL, WAIT).packet_id(),
        id2.unwrap()
    );
    v4.send(&frames::ack(frames::PUBCOMP, id2.unwrap()));
    assert!(v4.is_quiet(QUIET), "nothing more after the PUBCOMP");
}

// ---------------------------------------------------------------------------------------------
// Retained messages and message expiry across kill -9

#[test]
fn retained_messages_survive_kill_9() {
    let mut broker = Broker::start();
    let publisher = V5::connect(broker.port(), "keep-pub");
    publisher.publish("keep/a", QoS5::AtLeastOnce, true, "A");
    publisher.publish("keep/b", QoS5::AtLeastOnce, true, "B");
    publisher.publish("keep/b", QoS5::AtLeastOnce, true, ""); // clears keep/b
    publisher.publish("keep/c", QoS5::ExactlyOnce, true, "C");
    drop(publisher);

    broker.restart();
    let subscriber = V5::connect(broker.port(), "keep-sub");
    subscriber.subscribe("keep/#", QoS5::AtLeastOnce);
    let mut got = Vec::new();
    while let Some(p) = subscriber.recv_publish(QUIET) {
        assert!(
            p.retain,
            "a retained message is sent with RETAIN set: {p:?}"
        );
        got.push((
            String::from_utf8_lossy(&p.topic).into_owned(),
            String::from_utf8_lossy(&p.payload).into_owned(),
        ));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("keep/a".to_string(), "A".to_string()),
            ("keep/c".to_string(), "C".to_string())
        ],
        "the retained messages after the restart (keep/b was cleared)"
    );
}

/// A raw MQTT 5 QoS 1 PUBLISH with a Message Expiry Interval, acknowledged by the broker.
fn publish_expiring(raw: &mut Raw, topic: &str, packet_id: u16, expiry: u32) {
    let mut props = vec![prop5::MESSAGE_EXPIRY_INTERVAL];
    props.extend_from_slice(&expiry.to_be_bytes());
    raw.send(&frames::publish_with(
        Version::V5,
        topic,
        1,
        false,
        packet_id,
        &props,
        topic.as_bytes(),
    ));
    let ack = raw.expect_frame(frames::PUBACK, WAIT);
    assert_eq!((ack.packet_id(), ack.ack_reason()), (packet_id, 0));
}

#[test]
fn message_expiry_survives_kill_9() {
    let mut broker = Broker::start();
    let connect = raw_persistent("expiry-sub");
    let (mut sub, _) = Raw::connect(broker.port(), &connect);
    sub.send(&frames::subscribe(Version::V5, 1, "exp/#", 1));
    sub.expect_frame(frames::SUBACK, WAIT);
    sub.send(&frames::disconnect());
    sub.expect_closed(WAIT);

    let (mut publisher, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "exp-pub"));
    publish_expiring(&mut publisher, "exp/short", 1, 2);
    publish_expiring(&mut publisher, "exp/long", 2, 60);
    let published = Instant::now();

    broker.restart();
    // The short message's 2 s run out while the broker is back up.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(published.elapsed()));
    let (mut sub, present) = Raw::connect(broker.port(), &connect);
    assert!(present, "session lost by kill -9");
    let long = expect_publish(&mut sub, "the 60 s message");
    let (topic, id, _) = long.publish(Version::V5);
    assert_eq!(
        String::from_utf8_lossy(&topic),
        "exp/long",
        "the message with a 2 s expiry was delivered after 3 s"
    );
    let left = long
        .publish_property(prop5::MESSAGE_EXPIRY_INTERVAL)
        .expect("Message Expiry Interval forwarded");
    let left = u32::from_be_bytes(left.try_into().unwrap());
    // At least 3 s went by: the interval must count down across the restart, not start over.
    assert!(
        (50..=58).contains(&left),
        "remaining Message Expiry Interval {left}, expected 60 minus the ~3 s waited"
    );
    sub.send(&frames::ack(frames::PUBACK, id.unwrap()));
    match sub.next(QUIET) {
        Next::Timeout => {}
        other => {
            panic!("expected nothing after the 60 s message (exp/short expired), got {other:?}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up errors

/// Runs the broker on `db` and waits (at most 10 s) for it to give up.
fn run_on(db: &std::path::Path) -> Output {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ws-listen",
            "off",
            "--http",
            "off",
        ])
        .arg("--db")
        .arg(db)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outpost");
    let exited = common::wait_until(Duration::from_secs(10), || child.try_wait().unwrap());
    if exited.is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "outpost still runs on {} after 10 s; stderr:\n{}",
            db.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

/// Exit code 2 and exactly one non-empty line on stderr that names `db`, no panic.
fn assert_one_line_naming(out: &Output, db: &std::path::Path, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit status {:?}, stderr:\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: expected one line, got:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
    assert!(
        lines[0].contains(&db.display().to_string()),
        "{what}: the line does not name {}: {}",
        db.display(),
        lines[0]
    );
}

#[test]
fn corrupt_database_exits_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outpost.db");
    let garbage: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, garbage).unwrap();
    let out = run_on(&db);
    assert_one_line_naming(&out, &db, "corrupt database");
}

#[test]
fn database_in_a_missing_directory_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("no-such-dir").join("outpost.db");
    let out = run_on(&db);
    assert_one_line_naming(&out, &db, "unwritable database path");
}

// ---------------------------------------------------------------------------------------------
// Old databases

/// A database left by a version-1 broker (tests/fixtures/v1.db: a persistent session with a
/// subscription and one queued QoS 1 message, a retained message) is upgraded in place at
/// start, and everything in it is still served.
#[test]
fn a_version_1_database_is_upgraded_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db");
    std::fs::copy(fixture, dir.path().join("outpost.db")).unwrap();
    let broker = Broker::start_in(dir, None);
    let (mut sub, present) = Raw::connect(broker.port(), &raw_persistent("v1-sub"));
    assert!(present, "the version-1 session is resumed");
    let queued = expect_publish(&mut sub, "the message queued under version 1");
    let (topic, packet_id, payload) = queued.publish(Version::V5);
    assert_eq!(
        (topic.as_slice(), payload.as_slice()),
        (&b"fixture/queued"[..], &b"from version 1"[..])
    );
    sub.send(&frames::ack(frames::PUBACK, packet_id.unwrap()));
    // Its subscription still routes, and the retained message is still there.
    let publisher = V5::connect(broker.port(), "v1-pub");
    publisher.publish("fixture/new", QoS5::AtLeastOnce, false, "after the upgrade");
    let live = expect_publish(&mut sub, "a message after the upgrade");
    assert_eq!(live.publish(Version::V5).2, b"after the upgrade");
    let reader = V5::connect(broker.port(), "v1-reader");
    reader.subscribe("fixture/retained", QoS5::AtMostOnce);
    assert_eq!(&reader.expect_publish().payload[..], b"kept");
    let to_now = format!(
        "from schema version 1 to {}",
        outpost::store::SCHEMA_VERSION
    );
    assert!(broker
        .log()
        .iter()
        .any(|l| l.contains("migrating") && l.contains(&to_now)));
}

// ---------------------------------------------------------------------------------------------
// kill -9 inside the commit window

/// A wide commit window, so the kill lands inside one.
const WIDE_WINDOW: &str = "commit_interval = 500\n";

/// Frames of `raw` that are already there or come within a millisecond.
fn ready_frames(raw: &mut Raw) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Next::Frame(f) = raw.next(Duration::from_millis(1)) {
        frames.push(f);
    }
    frames
}

#[test]
fn kill_9_inside_the_commit_window_loses_nothing_acknowledged_and_resends_nothing_as_new() {
    let mut broker = Broker::with_config(WIDE_WINDOW);
    // Online: acknowledges every delivery at once. Offline: needs every message on disk.
    let online = raw_persistent("window-online");
    let (mut sub, _) = Raw::connect(broker.port(), &online);
    sub.send(&frames::subscribe(Version::V5, 1, "w/#", 1));
    sub.expect_frame(frames::SUBACK, WAIT);
    let offline = Connect::new(Version::V311, "window-offline").clean(false);
    let (mut away, _) = Raw::connect(broker.port(), &offline);
    away.send(&frames::subscribe(Version::V311, 1, "w/#", 1));
    away.expect_frame(frames::SUBACK, WAIT);
    away.send(&frames::disconnect());
    broker.wait_disconnected("window-offline");

    let (mut publisher, _) =
        Raw::connect(broker.port(), &Connect::new(Version::V311, "window-pub"));
    let mut puback_for = Vec::new();
    let mut sub_acked = Vec::new();
    // Two windows and half of a third, then the kill.
    let started = Instant::now();
    let mut sent = 0u16;
    while started.elapsed() < Duration::from_millis(1250) {
        sent += 1;
        let i = sent;
        publisher.send(&frames::publish(
            Version::V311,
            "w/t",
            1,
            i,
            format!("w{i:03}").as_bytes(),
        ));
        for f in ready_frames(&mut sub) {
            let (_, id, payload) = f.publish(Version::V5);
            sub.send(&frames::ack(frames::PUBACK, id.unwrap()));
            sub_acked.push(String::from_utf8(payload).unwrap());
        }
        for f in ready_frames(&mut publisher) {
            assert_eq!(f.kind(), frames::PUBACK);
            puback_for.push(format!("w{:03}", f.packet_id()));
        }
    }
    broker.kill9();
    assert!(
        !puback_for.is_empty() && puback_for.len() < usize::from(sent),
        "the kill should fall inside a window: {} of {sent} acknowledged",
        puback_for.len()
    );
    broker.restart();

    // The offline session gets every acknowledged message.
    let (mut away, present) = Raw::connect(broker.port(), &offline);
    assert!(present, "the offline session lost by kill -9");
    let got_away = collect(
        "offline subscriber",
        |t| match away.next(t) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (_, id, payload) = f.publish(Version::V311);
                away.send(&frames::ack(frames::PUBACK, id.unwrap()));
                Some(String::from_utf8(payload).unwrap())
            }
            _ => None,
        },
        &puback_for,
    );
    assert!(got_away.len() >= puback_for.len());

    // The online one gets again only what it had not acknowledged, and a message it had
    // acknowledged at most as a resend (DUP), never as a new one.
    let (mut sub, present) = Raw::connect(broker.port(), &online);
    assert!(present, "the online session lost by kill -9");
    let owed: Vec<String> = puback_for
        .iter()
        .filter(|p| !sub_acked.contains(p))
        .cloned()
        .collect();
    let mut resent_as_new = Vec::new();
    let got_sub = collect(
        "online subscriber",
        |t| match sub.next(t) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (_, id, payload) = f.publish(Version::V5);
                sub.send(&frames::ack(frames::PUBACK, id.unwrap()));
                let payload = String::from_utf8(payload).unwrap();
                if f.first_byte & 0x08 == 0 && sub_acked.contains(&payload) {
                    resent_as_new.push(payload.clone());
                }
                Some(payload)
            }
            _ => None,
        },
        &owed,
    );
    assert!(
        resent_as_new.is_empty(),
        "delivered and acknowledged before the kill, sent again as new: {resent_as_new:?}"
    );
    eprintln!(
        "{} of {sent} acknowledged to the publisher before kill -9 ({} acknowledged by the \
         online subscriber); after restart: offline {}, online {}",
        puback_for.len(),
        sub_acked.len(),
        got_away.values().sum::<usize>(),
        got_sub.values().sum::<usize>()
    );
}
