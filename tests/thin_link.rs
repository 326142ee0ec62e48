//! Persistent sessions over a thin, flapping link: a publisher and a subscriber both talk to the
//! broker through `common::proxy` (300 ms one way, 64 kbit/s, a cut every 2–4 s) and reconnect
//! after every cut with clean start off. Every QoS 1 message must arrive at least once, every
//! QoS 2 message exactly once, and every reconnect must resume its session.
//!
//! The clients are hand-written over `common::raw` because the QoS 2 receiver has to keep its
//! "PUBREC sent, PUBREL not yet seen" packet ids across reconnects to deliver exactly once, and
//! rumqttc forgets them on reconnect (`MqttState::clean` clears `incoming_pub`) and delivers a
//! QoS 2 PUBLISH on arrival, so a resent PUBLISH would look like a broker duplicate.

mod common;

use common::frames::{self, prop, Bytes, Connect, Frame, Version};
use common::proxy::{Link, Proxy};
use common::raw::{Next, Raw};
use common::{unique, Broker};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

const QOS1_MESSAGES: usize = 30;
const QOS2_MESSAGES: usize = 30;
/// Unacknowledged publishes the publisher keeps in flight; well under the broker's default
/// Receive Maximum (128) so the window never decides the outcome.
const WINDOW: usize = 8;
/// The whole exchange must finish within this, cuts included.
const BUDGET: Duration = Duration::from_secs(25);
/// PUBREL's first byte carries flags 0010; `Frame::kind` masks them off.
const PUBREL_KIND: u8 = frames::PUBREL & 0xF0;
const SESSION_EXPIRY_SECS: u32 = 600;
/// Pause before reconnecting after a cut, like a real client's back-off (kept short).
const BACKOFF: Duration = Duration::from_millis(100);
/// A CONNACK takes one round trip (600 ms here); longer than this means the attempt was cut.
const CONNACK_WAIT: Duration = Duration::from_secs(3);

fn thin_link() -> Link {
    Link {
        latency: Duration::from_millis(300),
        rate_bps: Some(64_000),
        cut_every: Some((Duration::from_secs(2), Duration::from_secs(4))),
        seed: std::env::var("THIN_LINK_SEED")
            .ok()
            .and_then(|s| s.parse().ok()),
    }
}

/// The CONNECT every connection of the test uses: clean start off and, in MQTT 5, a session
/// expiry so the session outlives each cut.
fn connect_packet(version: Version, id: &str) -> Vec<u8> {
    let properties = match version {
        Version::V5 => {
            Bytes::new()
                .u8(prop::SESSION_EXPIRY_INTERVAL)
                .u32(SESSION_EXPIRY_SECS)
                .0
        }
        Version::V311 => Vec::new(),
    };
    Connect::new(version, id)
        .keep_alive(60)
        .clean(false)
        .properties(properties)
        .encode()
}

/// Opens a connection and waits for CONNACK; None when the link was cut first.
fn try_connect(port: u16, version: Version, id: &str) -> Option<(Raw, bool)> {
    let mut raw = Raw::open(port, version);
    raw.send(&connect_packet(version, id));
    match raw.next(CONNACK_WAIT) {
        Next::Frame(f) if f.kind() == frames::CONNACK => {
            let (session_present, code) = f.connack();
            assert_eq!(code, 0, "{id}: CONNACK refused: {f:?}");
            Some((raw, session_present))
        }
        Next::Frame(f) => panic!("{id}: {f:?} before CONNACK"),
        Next::Closed | Next::Timeout => None,
    }
}

/// The MQTT 5 reason code of an ack (0 when absent, as in MQTT 3.1.1).
fn ack_reason(f: &Frame) -> u8 {
    f.body.get(2).copied().unwrap_or(0)
}

fn ack_id(f: &Frame) -> u16 {
    u16::from_be_bytes([f.body[0], f.body[1]])
}

/// What one client saw over all its connections.
#[derive(Debug, Default)]
struct Connections {
    /// Session Present of every CONNACK received through the proxy, in order.
    session_present: Vec<bool>,
    /// Connection attempts cut before their CONNACK arrived.
    lost_attempts: usize,
}

/// A publish the publisher has sent and not yet seen completed.
#[derive(Debug)]
struct Outgoing {
    qos: u8,
    payload: String,
    /// False once PUBREC has arrived: what to resend is then PUBREL, not PUBLISH.
    await_rec: bool,
}

#[derive(Debug, Default)]
struct PublisherReport {
    connections: Connections,
    completed: usize,
    resent: usize,
    rejected: Vec<String>,
}

/// Publishes `messages` through the proxy, resuming the session after every cut and resending
/// what was in flight (PUBLISH with DUP, or PUBREL) as MQTT requires.
fn run_publisher(
    port: u16,
    version: Version,
    id: &str,
    topic: &str,
    messages: Vec<(u8, String)>,
    deadline: Instant,
) -> PublisherReport {
    let mut report = PublisherReport::default();
    let mut queue: VecDeque<(u8, String)> = messages.into();
    let mut inflight: BTreeMap<u16, Outgoing> = BTreeMap::new();
    let mut next_id: u16 = 0;
    while (!queue.is_empty() || !inflight.is_empty()) && Instant::now() < deadline {
        let Some((mut raw, session_present)) = try_connect(port, version, id) else {
            report.connections.lost_attempts += 1;
            std::thread::sleep(BACKOFF);
            continue;
        };
        report.connections.session_present.push(session_present);
        for (&packet_id, out) in &inflight {
            report.resent += 1;
            if out.await_rec {
                let mut publish =
                    frames::publish(version, topic, out.qos, packet_id, out.payload.as_bytes());
                publish[0] |= 0x08; // DUP
                raw.send(&publish);
            } else {
                raw.send(&frames::ack(frames::PUBREL, packet_id));
            }
        }
        loop {
            while inflight.len() < WINDOW {
                let Some((qos, payload)) = queue.pop_front() else {
                    break;
                };
                next_id = next_id % u16::MAX + 1;
                raw.send(&frames::publish(
                    version,
                    topic,
                    qos,
                    next_id,
                    payload.as_bytes(),
                ));
                let await_rec = true;
                inflight.insert(
                    next_id,
                    Outgoing {
                        qos,
                        payload,
                        await_rec,
                    },
                );
            }
            if (queue.is_empty() && inflight.is_empty()) || Instant::now() >= deadline {
                raw.send(&frames::disconnect());
                return report;
            }
            let f = match raw.next(Duration::from_millis(50)) {
                Next::Frame(f) => f,
                Next::Timeout => continue,
                Next::Closed => break,
            };
            match f.kind() {
                frames::PUBACK | frames::PUBCOMP => {
                    if inflight.remove(&ack_id(&f)).is_some() {
                        report.completed += 1;
                    }
                }
                frames::PUBREC => {
                    let packet_id = ack_id(&f);
                    if ack_reason(&f) >= 0x80 {
                        let out = inflight.remove(&packet_id);
                        report.rejected.push(format!("{out:?}: {f:?}"));
                        continue;
                    }
                    if let Some(out) = inflight.get_mut(&packet_id) {
                        out.await_rec = false;
                    }
                    raw.send(&frames::ack(frames::PUBREL, packet_id));
                }
                frames::PINGRESP => {}
                _ => panic!("{id}: unexpected {f:?}"),
            }
        }
        std::thread::sleep(BACKOFF);
    }
    report
}

#[derive(Debug, Default)]
struct SubscriberReport {
    connections: Connections,
    qos1: Vec<String>,
    qos2: Vec<String>,
    /// PUBLISH packets that arrived with DUP set (resends after a cut).
    dup_flagged: usize,
    /// QoS 2 resends the receiver recognised by packet id and did not deliver again.
    qos2_resends_absorbed: usize,
    other_qos: Vec<String>,
}

/// Receives through the proxy until it holds `want` distinct QoS 1 and QoS 2 payloads with no
/// QoS 2 flow left open (or the deadline passes), resuming the session after every cut. QoS 2 uses the
/// spec's receiver rule: a packet id stays "received" from PUBLISH until PUBREL, across
/// reconnects, and a PUBLISH with such an id is acknowledged but not delivered again.
fn run_subscriber(
    port: u16,
    version: Version,
    id: &str,
    want: (usize, usize),
    deadline: Instant,
) -> SubscriberReport {
    let mut report = SubscriberReport::default();
    let mut awaiting_rel: HashSet<u16> = HashSet::new();
    let mut distinct_q1: HashSet<String> = HashSet::new();
    let done = |q1: &HashSet<String>, r: &SubscriberReport, open: &HashSet<u16>| {
        q1.len() >= want.0 && r.qos2.len() >= want.1 && open.is_empty()
    };
    while !done(&distinct_q1, &report, &awaiting_rel) && Instant::now() < deadline {
        let Some((mut raw, session_present)) = try_connect(port, version, id) else {
            report.connections.lost_attempts += 1;
            std::thread::sleep(BACKOFF);
            continue;
        };
        report.connections.session_present.push(session_present);
        loop {
            if done(&distinct_q1, &report, &awaiting_rel) || Instant::now() >= deadline {
                raw.send(&frames::disconnect());
                return report;
            }
            let f = match raw.next(Duration::from_millis(50)) {
                Next::Frame(f) => f,
                Next::Timeout => continue,
                Next::Closed => break,
            };
            match f.kind() {
                frames::PUBLISH => {
                    let qos = (f.first_byte >> 1) & 3;
                    if f.first_byte & 0x08 != 0 {
                        report.dup_flagged += 1;
                    }
                    let (_, packet_id, payload) = f.publish(version);
                    let payload = String::from_utf8(payload).unwrap();
                    match (qos, packet_id) {
                        (1, Some(packet_id)) => {
                            distinct_q1.insert(payload.clone());
                            report.qos1.push(payload);
                            raw.send(&frames::ack(frames::PUBACK, packet_id));
                        }
                        (2, Some(packet_id)) => {
                            if awaiting_rel.insert(packet_id) {
                                report.qos2.push(payload);
                            } else {
                                report.qos2_resends_absorbed += 1;
                            }
                            raw.send(&frames::ack(frames::PUBREC, packet_id));
                        }
                        _ => report.other_qos.push(format!("QoS {qos}: {payload}")),
                    }
                }
                PUBREL_KIND => {
                    let packet_id = ack_id(&f);
                    awaiting_rel.remove(&packet_id);
                    raw.send(&frames::ack(frames::PUBCOMP, packet_id));
                }
                frames::PINGRESP => {}
                _ => panic!("{id}: unexpected {f:?}"),
            }
        }
        std::thread::sleep(BACKOFF);
    }
    report
}

/// Creates the persistent session directly (no proxy): clean start off on a fresh broker, so
/// Session Present must be 0; the subscriber also subscribes. Ends with a normal DISCONNECT.
fn create_session(port: u16, version: Version, id: &str, subscribe_to: Option<&str>) {
    let mut raw = Raw::open(port, version);
    raw.send(&connect_packet(version, id));
    let connack = raw.expect_frame(frames::CONNACK, Duration::from_secs(5));
    assert_eq!(connack.connack(), (false, 0), "{id}: fresh session");
    if let Some(filter) = subscribe_to {
        raw.send(&frames::subscribe(version, 1, filter, 2));
        let suback = raw.expect_frame(frames::SUBACK, Duration::from_secs(5));
        let granted = suback.body.last().copied();
        assert_eq!(granted, Some(2), "{id}: SUBACK {suback:?}");
    }
    raw.send(&frames::disconnect());
}

fn messages(tag: &str) -> Vec<(u8, String)> {
    // Interleaved so both flows are in flight when the cuts come.
    (0..QOS1_MESSAGES.max(QOS2_MESSAGES))
        .flat_map(|i| {
            let q1 = (i < QOS1_MESSAGES).then(|| (1, format!("{tag} q1 #{i}")));
            let q2 = (i < QOS2_MESSAGES).then(|| (2, format!("{tag} q2 #{i}")));
            q1.into_iter().chain(q2)
        })
        .collect()
}

fn sessions_survive_a_flapping_link(version: Version) {
    let broker = Broker::start();
    let tag = format!("{version:?}");
    let topic = unique(&format!("thin/{tag}"));
    let publisher = unique(&format!("thin-pub-{tag}"));
    let subscriber = unique(&format!("thin-sub-{tag}"));
    create_session(broker.port(), version, &subscriber, Some(&topic));
    create_session(broker.port(), version, &publisher, None);

    let proxy = Proxy::start(broker.port(), thin_link());
    let started = Instant::now();
    let deadline = started + BUDGET;
    let sub_thread = {
        let (port, subscriber) = (proxy.port(), subscriber.clone());
        let want = (QOS1_MESSAGES, QOS2_MESSAGES);
        std::thread::spawn(move || run_subscriber(port, version, &subscriber, want, deadline))
    };
    let sent = messages(&tag);
    let want_q1: HashSet<String> = sent
        .iter()
        .filter(|m| m.0 == 1)
        .map(|m| m.1.clone())
        .collect();
    let want_q2: HashSet<String> = sent
        .iter()
        .filter(|m| m.0 == 2)
        .map(|m| m.1.clone())
        .collect();
    let pub_report = run_publisher(proxy.port(), version, &publisher, &topic, sent, deadline);

    let sub_report = sub_thread.join().expect("subscriber thread");
    let elapsed = started.elapsed();
    let cuts = proxy.cuts();
    let seed = proxy.seed();
    drop(proxy);

    let summary = format!(
        "{tag}: {elapsed:.1?}, {cuts} cuts (THIN_LINK_SEED={seed}); publisher {pub_report:?}; \
         subscriber connections {:?}, {} QoS 1 / {} QoS 2 deliveries, {} DUP-flagged, {} QoS 2 \
         resends absorbed",
        sub_report.connections,
        sub_report.qos1.len(),
        sub_report.qos2.len(),
        sub_report.dup_flagged,
        sub_report.qos2_resends_absorbed,
    );
    eprintln!("{summary}");

    assert!(
        pub_report.rejected.is_empty() && sub_report.other_qos.is_empty(),
        "{summary}"
    );
    assert_eq!(
        pub_report.completed,
        QOS1_MESSAGES + QOS2_MESSAGES,
        "publisher flows not all completed within {BUDGET:?}: {summary}"
    );
    let got_q1: HashSet<String> = sub_report.qos1.iter().cloned().collect();
    let missing_q1: Vec<&String> = want_q1.difference(&got_q1).collect();
    assert!(
        missing_q1.is_empty(),
        "QoS 1 lost {missing_q1:?}: {summary}"
    );
    let got_q2: HashSet<String> = sub_report.qos2.iter().cloned().collect();
    let missing_q2: Vec<&String> = want_q2.difference(&got_q2).collect();
    assert!(
        missing_q2.is_empty(),
        "QoS 2 lost {missing_q2:?}: {summary}"
    );
    assert_eq!(
        sub_report.qos2.len(),
        got_q2.len(),
        "QoS 2 delivered twice: {:?}; {summary}",
        duplicates(&sub_report.qos2)
    );
    for (who, c) in [
        ("publisher", &pub_report.connections),
        ("subscriber", &sub_report.connections),
    ] {
        assert!(
            c.session_present.len() >= 2,
            "{who} was never cut and reconnected; the test proved nothing: {summary}"
        );
        assert!(
            c.session_present.iter().all(|&p| p),
            "{who} reconnected without Session Present: {:?}; {summary}",
            c.session_present
        );
    }
}

fn duplicates(payloads: &[String]) -> Vec<&String> {
    let mut seen = HashSet::new();
    payloads.iter().filter(|p| !seen.insert(*p)).collect()
}

#[test]
fn v5_sessions_survive_a_flapping_link() {
    sessions_survive_a_flapping_link(Version::V5);
}

#[test]
fn v311_sessions_survive_a_flapping_link() {
    sessions_survive_a_flapping_link(Version::V311);
}

/// An echo server on loopback for the proxy's own tests; serves one connection at a time.
fn echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut back = stream.try_clone().unwrap();
            let _ = std::io::copy(&mut stream, &mut back);
        }
    });
    port
}

#[test]
fn proxy_delays_paces_and_keeps_order() {
    use std::io::{Read, Write};
    let proxy = Proxy::start(
        echo_server(),
        Link {
            latency: Duration::from_millis(300),
            rate_bps: Some(64_000),
            ..Link::default()
        },
    );
    let sent: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    let start = Instant::now();
    stream.write_all(&sent).unwrap();
    let mut echoed = vec![0u8; sent.len()];
    stream.read_exact(&mut echoed).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(echoed, sent, "bytes reordered or changed");
    // Two one-way latencies, plus 4096 bytes at 8000 bytes/s less the 512-byte burst, at least
    // once (the two directions overlap).
    let floor = Duration::from_millis(600) + Duration::from_secs_f64((4096.0 - 512.0) / 8000.0);
    assert!(
        elapsed >= floor && elapsed < floor * 3,
        "round trip took {elapsed:?}, expected about {floor:?}"
    );
    assert_eq!(proxy.bytes().up, 4096);
}

#[test]
fn proxy_cuts_open_connections() {
    use std::io::Read;
    let proxy = Proxy::start(
        echo_server(),
        Link {
            cut_every: Some((Duration::from_millis(200), Duration::from_millis(300))),
            ..Link::default()
        },
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let start = Instant::now();
    let n = stream.read(&mut [0u8; 16]).expect("closed, not timed out");
    assert_eq!(n, 0, "EOF expected");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(proxy.cuts(), 1);
}
