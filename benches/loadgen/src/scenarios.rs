//! The load scenarios of issue #4. Each runs against one started broker and
//! returns its figures; `main` runs it once per broker with the same load.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::mqtt::{self, Conn, ConnectOptions, Version};
use crate::report::{Metric, Outcome};
use crate::stats::{self, age_ns, now_ns, proc_sample, stamp, Latencies, STAMP_LEN};

/// How to reach the broker under test and log in to it.
#[derive(Clone)]
pub struct Target {
    /// Which broker it is: the chat-service case speaks the chat wire format to Outpost
    /// and carries the same messages as plain MQTT on Mosquitto.
    pub kind: crate::broker::Kind,
    pub addr: SocketAddr,
    pub pid: u32,
    pub version: Version,
    pub auth: Option<(String, String)>,
    /// Distinct accounts (username, password) the broker knows besides `auth`.
    pub accounts: Vec<(String, String)>,
    /// `addr` is a WebSocket listener.
    pub websocket: bool,
    /// Where the fsync shim counts the broker's flushes (the flash group).
    pub flush_count: std::path::PathBuf,
}

impl Target {
    pub fn options(&self, client_id: String) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.version, client_id);
        if let Some((u, p)) = &self.auth {
            o.username = Some(u.clone());
            o.password = Some(p.clone());
        }
        o
    }

    fn connect(&self, client_id: String) -> io::Result<Conn> {
        self.connect_with(&self.options(client_id))
    }

    /// Connects with `o` over the target's transport.
    pub fn connect_with(&self, o: &ConnectOptions) -> io::Result<Conn> {
        if self.websocket {
            Conn::connect_ws(self.addr, o)
        } else {
            Conn::connect(self.addr, o)
        }
    }
}

/// Threads of many-client scenarios need little stack.
pub fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<thread::JoinHandle<T>> {
    thread::Builder::new()
        .name(name)
        .stack_size(256 * 1024)
        .spawn(f)
}

/// N publishers and M subscribers, every subscriber seeing every publisher.
#[derive(Clone, Debug)]
pub struct PubSub {
    pub tag: String,
    pub pubs: usize,
    pub subs: usize,
    pub qos: u8,
    pub payload: usize,
    pub window: usize,
    pub duration: Duration,
    /// Fan-in: each publisher has its own topic and subscribers use `#`.
    pub wildcard: bool,
    /// End-to-end credit: how far a publisher may run ahead of what its
    /// subscribers have received, so broker queues stay below their limit and
    /// the figure is the sustainable rate, not the rate of dropping.
    pub ahead: u64,
    /// Subscribers keep a persistent session (see
    /// `ConnectOptions::persistent`), so Outpost stages every message to them
    /// in its store and acknowledges the publish only after the commit.
    pub durable: bool,
}

/// How long a durable subscriber's session outlives its connection.
pub const SESSION_EXPIRY: u32 = 3600;

/// Deliveries per publisher, counted by the subscribers, read by the
/// publishers to keep within their end-to-end credit.
struct Flow {
    delivered: Vec<AtomicU64>,
    subs: u64,
    ahead: u64,
}

impl Flow {
    fn room(&self, publisher: u32, sent: u64) -> bool {
        let got = self.delivered[publisher as usize].load(Ordering::Relaxed);
        (sent * self.subs).saturating_sub(got) < self.ahead * self.subs
    }

    fn delivered(&self, payload: &[u8]) {
        let id = payload
            .get(8..12)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
        if let Some(counter) = id.and_then(|i| self.delivered.get(i)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct SubResult {
    msgs: u64,
    bytes: u64,
    last_ns: u64,
    lat: Latencies,
    error: Option<String>,
}

#[derive(Default)]
struct PubResult {
    sent: u64,
    unacked: u64,
    /// Publish → PUBACK times (QoS 1).
    ack_lat: Latencies,
    error: Option<String>,
}

pub fn pubsub(t: &Target, s: &PubSub) -> Result<Outcome, String> {
    let filter = if s.wildcard {
        format!("bench/{}/#", s.tag)
    } else {
        format!("bench/{}/t", s.tag)
    };
    let done = Arc::new(AtomicBool::new(false));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let flow = Arc::new(Flow {
        delivered: (0..s.pubs).map(|_| AtomicU64::new(0)).collect(),
        subs: s.subs as u64,
        ahead: s.ahead,
    });
    let mut sub_threads = Vec::new();
    for i in 0..s.subs {
        let mut o = t.options(format!("{}-sub{i}", s.tag));
        if s.durable {
            o = o.persistent(SESSION_EXPIRY);
        }
        let mut c =
            Conn::connect(t.addr, &o).map_err(|e| format!("subscriber {i} connect: {e}"))?;
        c.subscribe(&filter, s.qos)
            .map_err(|e| format!("subscriber {i} subscribe: {e}"))?;
        let (done, expected, flow) = (done.clone(), expected.clone(), flow.clone());
        let h = spawn(format!("sub{i}"), move || {
            subscriber(c, done, expected, &flow)
        })
        .map_err(|e| e.to_string())?;
        sub_threads.push(h);
    }
    let barrier = Arc::new(Barrier::new(s.pubs + 1));
    let mut pub_threads = Vec::new();
    for i in 0..s.pubs {
        let c = t
            .connect(format!("{}-pub{i}", s.tag))
            .map_err(|e| format!("publisher {i} connect: {e}"))?;
        let topic = if s.wildcard {
            format!("bench/{}/p{i}", s.tag)
        } else {
            format!("bench/{}/t", s.tag)
        };
        let (s2, b, flow) = (s.clone(), barrier.clone(), flow.clone());
        let h = spawn(format!("pub{i}"), move || {
            publisher(c, i as u32, topic, &s2, &b, &flow)
        })
        .map_err(|e| e.to_string())?;
        pub_threads.push(h);
    }
    // Subscriptions are in place (SUBACK seen); go.
    let before = proc_sample(t.pid);
    let t0 = now_ns();
    barrier.wait();
    let mut sent = 0;
    let mut unacked = 0;
    let mut notes = Vec::new();
    let mut per_pub = Vec::new();
    let mut ack_lat = Latencies::default();
    for h in pub_threads {
        let r = h.join().map_err(|_| "publisher panicked".to_string())?;
        per_pub.push(r.sent);
        sent += r.sent;
        unacked += r.unacked;
        ack_lat.merge(r.ack_lat);
        if let Some(e) = r.error {
            notes.push(format!("publisher: {e}"));
        }
    }
    // Every subscriber should see every publish.
    expected.store(sent, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let mut msgs = 0;
    let mut bytes = 0;
    let mut last = t0;
    let mut lat = Latencies::default();
    for h in sub_threads {
        let r = h.join().map_err(|_| "subscriber panicked".to_string())?;
        msgs += r.msgs;
        bytes += r.bytes;
        last = last.max(r.last_ns);
        lat.merge(r.lat);
        if let Some(e) = r.error {
            notes.push(format!("subscriber: {e}"));
        }
    }
    let after = proc_sample(t.pid);
    if std::env::var("LOADGEN_DEBUG").is_ok() {
        let d: Vec<u64> = flow
            .delivered
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .collect();
        eprintln!("debug: sent {per_pub:?} delivered {d:?}");
    }
    let secs = (last.saturating_sub(t0)) as f64 / 1e9;
    let want = sent * s.subs as u64;
    let lost = want.saturating_sub(msgs);
    if unacked > 0 {
        notes.push(format!("{unacked} QoS 1 publishes never acknowledged"));
    }
    if lost > 0 {
        notes.push(format!(
            "{lost} of {want} deliveries missing ({:.2}%)",
            100.0 * lost as f64 / want.max(1) as f64
        ));
    }
    if msgs > want {
        notes.push(format!("{} duplicate deliveries", msgs - want));
    }
    let mut m = vec![
        Metric::new("msgs_s", rate(msgs, secs)),
        Metric::new("mb_s", rate(bytes, secs) / 1e6),
    ];
    m.extend(latency_metrics(&mut lat, "p50_us", "p99_us"));
    if s.qos > 0 {
        m.extend(latency_metrics(&mut ack_lat, "ack_p50_us", "ack_p99_us"));
    }
    m.push(Metric::new("peak_rss_kb", after.hwm_kb as f64));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    if s.durable {
        let written = after.write_bytes.saturating_sub(before.write_bytes);
        m.push(Metric::new(
            "disk_b_msg",
            written as f64 / msgs.max(1) as f64,
        ));
    }
    m.push(Metric::new("sent", sent as f64));
    m.push(Metric::new(
        "lost_pct",
        100.0 * lost as f64 / want.max(1) as f64,
    ));
    Ok(Outcome::new(m, notes))
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

pub fn latency_metrics(lat: &mut Latencies, p50: &'static str, p99: &'static str) -> Vec<Metric> {
    let mut m = Vec::new();
    if let Some(v) = lat.percentile(50.0) {
        m.push(Metric::new(p50, v));
    }
    if let Some(v) = lat.percentile(99.0) {
        m.push(Metric::new(p99, v));
    }
    m
}

fn publisher(
    mut c: Conn,
    id: u32,
    topic: String,
    s: &PubSub,
    go: &Barrier,
    flow: &Flow,
) -> PubResult {
    let mut r = PubResult::default();
    let mut payload = vec![0u8; s.payload.max(STAMP_LEN)];
    go.wait();
    let until = Instant::now() + s.duration;
    let res = if s.qos == 0 {
        publish_qos0(&mut c, id, &topic, &mut payload, until, flow, &mut r)
    } else {
        publish_qos1(
            &mut c,
            id,
            &topic,
            &mut payload,
            until,
            s.window,
            flow,
            &mut r,
        )
    };
    if let Err(e) = res {
        r.error = Some(e.to_string());
    }
    c.disconnect();
    r
}

fn publish_qos0(
    c: &mut Conn,
    id: u32,
    topic: &str,
    payload: &mut [u8],
    until: Instant,
    flow: &Flow,
    r: &mut PubResult,
) -> io::Result<()> {
    let batch = if payload.len() > 1024 { 2 } else { 16 };
    while Instant::now() < until {
        let mut n = 0;
        while n < batch && flow.room(id, r.sent) {
            stamp(payload, id, r.sent as u32);
            c.queue_publish(topic, 0, 0, payload);
            r.sent += 1;
            n += 1;
        }
        c.flush()?;
        if n == 0 {
            thread::sleep(CREDIT_WAIT);
        }
    }
    Ok(())
}

/// How long a publisher out of end-to-end credit sleeps before looking again.
const CREDIT_WAIT: Duration = Duration::from_micros(50);

#[allow(clippy::too_many_arguments)] // a publisher's state, passed flat
fn publish_qos1(
    c: &mut Conn,
    id: u32,
    topic: &str,
    payload: &mut [u8],
    until: Instant,
    window: usize,
    flow: &Flow,
    r: &mut PubResult,
) -> io::Result<()> {
    let mut inflight = 0usize;
    // When each packet id was published, for the ack latency.
    let mut sent_at = vec![0u64; 65_536];
    c.set_timeout(Some(Duration::from_millis(50)))?;
    while Instant::now() < until {
        while inflight < window && flow.room(id, r.sent) {
            stamp(payload, id, r.sent as u32);
            let pid = c.next_packet_id();
            c.queue_publish(topic, 1, pid, payload);
            sent_at[usize::from(pid)] = now_ns();
            r.sent += 1;
            inflight += 1;
        }
        if inflight == 0 {
            c.flush()?;
            thread::sleep(CREDIT_WAIT);
            continue;
        }
        // `read_frame` flushes the staged publishes before it waits.
        if let Some(f) = c.read_frame()? {
            inflight -= acked(c, &f, &sent_at, &mut r.ack_lat)?;
            while let Some(f) = c.try_frame()? {
                inflight -= acked(c, &f, &sent_at, &mut r.ack_lat)?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while inflight > 0 && Instant::now() < deadline {
        if let Some(f) = c.read_frame()? {
            inflight -= acked(c, &f, &sent_at, &mut r.ack_lat)?;
        }
    }
    r.unacked = inflight as u64;
    Ok(())
}

/// 1 for a PUBACK (recording how long its publish waited for it), 0 for anything else.
fn acked(c: &Conn, f: &mqtt::Frame, sent_at: &[u64], lat: &mut Latencies) -> io::Result<usize> {
    if f.kind != mqtt::PUBACK {
        return Ok(0);
    }
    let pid = c.view(f).packet_id()?;
    lat.record_ns(now_ns().saturating_sub(sent_at[usize::from(pid)]));
    Ok(1)
}

/// Reads until the publishers are done and either everything expected has
/// arrived or nothing has come for a while.
fn subscriber(
    mut c: Conn,
    done: Arc<AtomicBool>,
    expected: Arc<AtomicU64>,
    flow: &Flow,
) -> SubResult {
    let mut r = SubResult::default();
    let version = c.version;
    let quiet = Duration::from_millis(500).as_nanos() as u64;
    let mut hard_deadline = None;
    if let Err(e) = c.set_timeout(Some(Duration::from_millis(100))) {
        r.error = Some(e.to_string());
        return r;
    }
    let mut last_activity = now_ns();
    loop {
        match c.read_frame() {
            Ok(Some(f)) if f.kind == mqtt::PUBLISH => {
                let (qos, pid, len, age) = match c.view(&f).publish(version) {
                    Ok(p) => {
                        flow.delivered(p.payload);
                        (p.qos, p.packet_id, p.payload.len(), age_ns(p.payload))
                    }
                    Err(e) => {
                        r.error = Some(e.to_string());
                        break;
                    }
                };
                if qos > 0 {
                    c.queue_puback(pid);
                }
                r.msgs += 1;
                r.bytes += len as u64;
                if let Some(a) = age {
                    r.lat.record_ns(a);
                }
                last_activity = now_ns();
                r.last_ns = last_activity;
            }
            Ok(_) => {}
            Err(e) => {
                r.error = Some(e.to_string());
                break;
            }
        }
        if done.load(Ordering::Relaxed) {
            let now = now_ns();
            let hd = *hard_deadline.get_or_insert(now + 15_000_000_000);
            if r.msgs >= expected.load(Ordering::Relaxed) || now - last_activity > quiet {
                break;
            }
            if now > hd {
                r.error = Some("still receiving 15 s after the publishers stopped".into());
                break;
            }
        }
    }
    let _ = c.flush();
    c.disconnect();
    r
}

/// Many connected, silent clients: memory per connection and idle CPU.
pub fn idle(t: &Target, clients: usize, idle_for: Duration) -> Result<Outcome, String> {
    thread::sleep(Duration::from_millis(500));
    let before = proc_sample(t.pid);
    let threads = 4;
    let started = Instant::now();
    let mut handles = Vec::new();
    for k in 0..threads {
        let t = t.clone();
        let n = clients / threads + usize::from(k < clients % threads);
        handles.push(
            spawn(format!("idle{k}"), move || {
                let mut conns = Vec::with_capacity(n);
                for i in 0..n {
                    let mut o = t.options(format!("idle-{k}-{i}"));
                    o.keep_alive = 60;
                    match t.connect_with(&o) {
                        Ok(c) => conns.push(c),
                        Err(e) => {
                            let msg = format!("client {}: {e}", conns.len());
                            return (conns, Some(msg));
                        }
                    }
                }
                (conns, None)
            })
            .map_err(|e| e.to_string())?,
        );
    }
    let mut conns = Vec::with_capacity(clients);
    let mut notes = Vec::new();
    for h in handles {
        let (c, err) = h
            .join()
            .map_err(|_| "connect thread panicked".to_string())?;
        conns.extend(c);
        if let Some(e) = err {
            notes.push(format!("connect stopped early: {e}"));
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let n = conns.len();
    if n < clients {
        notes.push(format!("only {n} of {clients} clients connected"));
    }
    thread::sleep(Duration::from_secs(2));
    let settled = proc_sample(t.pid);
    thread::sleep(idle_for);
    let after = proc_sample(t.pid);
    let idle_secs = idle_for.as_secs_f64();
    // The broker must still serve its idle clients: ping a sample of them.
    let mut unanswered = 0;
    for c in conns.iter_mut().step_by((n / 100).max(1)) {
        if ping(c).is_err() {
            unanswered += 1;
        }
    }
    if unanswered > 0 {
        notes.push(format!("{unanswered} sampled idle clients got no PINGRESP"));
    }
    let per_conn = (settled.rss_kb.saturating_sub(before.rss_kb) * 1024) as f64 / n.max(1) as f64;
    let m = vec![
        Metric::new("clients", n as f64),
        Metric::new("connects_s", rate(n as u64, connect_secs)),
        Metric::new("rss_per_conn_b", per_conn),
        Metric::new("peak_rss_kb", after.hwm_kb as f64),
        Metric::new("idle_cpu_ms", (after.cpu_s - settled.cpu_s) * 1000.0),
        Metric::new("cpu_pct", stats::cpu_pct(&settled, &after)),
        Metric::new(
            "wakeups_s",
            after.ctx_switches.saturating_sub(settled.ctx_switches) as f64 / idle_secs,
        ),
    ];
    // The clients stay connected until the broker has been stopped.
    let mut o = Outcome::new(m, notes);
    o.hold = conns;
    Ok(o)
}

/// PINGREQ, then wait for PINGRESP.
fn ping(c: &mut Conn) -> io::Result<()> {
    c.set_timeout(Some(Duration::from_secs(2)))?;
    c.queue_pingreq();
    loop {
        match c.read_frame()? {
            Some(f) if f.kind == mqtt::PINGRESP => return Ok(()),
            Some(_) => {}
            None => return Err(io::Error::new(io::ErrorKind::TimedOut, "no PINGRESP")),
        }
    }
}

/// What the chat load speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatWire {
    /// Plain MQTT: each room is a topic clients publish and subscribe to.
    Plain,
    /// Outpost's chat service (docs/chat.md): clients publish text to `chat/r/<room>` and
    /// get `<id> <time> <sender> <text>` back, after the service stored it. On Mosquitto,
    /// which has no chat service, the same text payloads go over the plain topics.
    Service,
}

impl ChatWire {
    /// The wire used against `t`'s broker.
    pub fn on(self, t: &Target) -> ChatWire {
        if t.kind == crate::broker::Kind::Outpost {
            self
        } else {
            ChatWire::Plain
        }
    }

    fn topic(self, room: usize) -> String {
        match self {
            ChatWire::Plain => format!("talk/room/{room}"),
            ChatWire::Service => format!("chat/r/room{room}"),
        }
    }
}

/// Chat-like load: every client publishes once a second to its room and
/// receives everything said there. The clients are driven by two mio event
/// loops rather than a thread each, so the load generator stays cheap.
/// `text` stamps payloads as text (what the chat service accepts) instead of bytes.
pub fn chat(
    t: &Target,
    clients: usize,
    rooms: usize,
    run_for: Duration,
    wire: ChatWire,
    text: bool,
) -> Result<Outcome, String> {
    let wire = wire.on(t);
    // Connect and subscribe everyone first, from a few threads.
    let mut handles = Vec::new();
    let connectors = 4;
    for k in 0..connectors {
        let t = t.clone();
        handles.push(
            spawn(format!("chat-connect{k}"), move || {
                let mut conns = Vec::new();
                for i in (k..clients).step_by(connectors) {
                    let topic = wire.topic(i % rooms);
                    let c = t
                        .connect(format!("chat-{i}"))
                        .and_then(|mut c| c.subscribe(&topic, 1).map(|_| c))
                        .map_err(|e| format!("client {i}: {e}"))?;
                    conns.push((i, c));
                }
                Ok::<_, String>(conns)
            })
            .map_err(|e| e.to_string())?,
        );
    }
    let mut all = Vec::with_capacity(clients);
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| "connect thread panicked".to_string())??,
        );
    }
    let before = proc_sample(t.pid);
    let t0 = now_ns() + 50_000_000;
    let workers = 2;
    let mut parts: Vec<Vec<(usize, Conn)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, c) in all {
        parts[i % workers].push((i, c));
    }
    let mut worker_handles = Vec::new();
    for (w, part) in parts.into_iter().enumerate() {
        let plan = ChatPlan {
            clients,
            rooms,
            t0,
            run_for,
            wire,
            text,
        };
        worker_handles.push(
            spawn(format!("chat-loop{w}"), move || chat_loop(part, &plan))
                .map_err(|e| e.to_string())?,
        );
    }
    let mut sent_per_room = vec![0u64; rooms];
    let mut received = 0;
    let mut lat = Latencies::default();
    let mut errors = Vec::new();
    for h in worker_handles {
        let r = h.join().map_err(|_| "chat loop panicked".to_string())?;
        for (room, n) in r.sent_per_room.iter().enumerate() {
            sent_per_room[room] += n;
        }
        received += r.received;
        lat.merge(r.lat);
        errors.extend(r.errors);
    }
    let after = proc_sample(t.pid);
    let mut per_room = vec![0u64; rooms];
    for i in 0..clients {
        per_room[i % rooms] += 1;
    }
    let want: u64 = (0..rooms).map(|r| sent_per_room[r] * per_room[r]).sum();
    let sent: u64 = sent_per_room.iter().sum();
    let mut notes = Vec::new();
    if !errors.is_empty() {
        notes.push(format!(
            "{} client errors, first: {}",
            errors.len(),
            errors[0]
        ));
    }
    let lost = want.saturating_sub(received);
    if lost > 0 {
        notes.push(format!("{lost} of {want} deliveries missing"));
    }
    let secs = run_for.as_secs_f64();
    let mut m = vec![
        Metric::new("msgs_s", received as f64 / secs),
        Metric::new("mb_s", received as f64 * CHAT_PAYLOAD as f64 / secs / 1e6),
    ];
    m.extend(latency_metrics(&mut lat, "p50_us", "p99_us"));
    m.push(Metric::new("peak_rss_kb", after.hwm_kb as f64));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    m.push(Metric::new("sent", sent as f64));
    m.push(Metric::new(
        "lost_pct",
        100.0 * lost as f64 / want.max(1) as f64,
    ));
    Ok(Outcome::new(m, notes))
}

const CHAT_PAYLOAD: usize = 100;

struct ChatPlan {
    clients: usize,
    rooms: usize,
    /// When the first second starts (`now_ns` clock).
    t0: u64,
    run_for: Duration,
    wire: ChatWire,
    /// Stamp payloads as text (hex), as the chat service needs.
    text: bool,
}

#[derive(Default)]
struct ChatResult {
    sent_per_room: Vec<u64>,
    received: u64,
    lat: Latencies,
    errors: Vec<String>,
}

/// One event loop driving some of the chat clients: sends on schedule,
/// reads and acknowledges whatever is readable, and stops once every client
/// has been quiet for a second after the sending time (at most 10 s later).
fn chat_loop(mut conns: Vec<(usize, Conn)>, p: &ChatPlan) -> ChatResult {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let mut r = ChatResult {
        sent_per_room: vec![0; p.rooms],
        ..ChatResult::default()
    };
    let setup = (|| -> io::Result<Poll> {
        let poll = Poll::new()?;
        for (k, (_, c)) in conns.iter_mut().enumerate() {
            c.set_nonblocking()?;
            poll.registry()
                .register(&mut SourceFd(&c.raw_fd()), Token(k), Interest::READABLE)?;
        }
        Ok(poll)
    })();
    let mut poll = match setup {
        Ok(p) => p,
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    let mut events = Events::with_capacity(1024);
    let second = 1_000_000_000u64;
    let stop_sending = p.t0 + p.run_for.as_nanos() as u64;
    let hard_stop = stop_sending + 10 * second;
    let mut due: BinaryHeap<Reverse<(u64, usize)>> = conns
        .iter()
        .enumerate()
        .map(|(k, (i, _))| Reverse((p.t0 + *i as u64 * second / p.clients as u64, k)))
        .collect();
    let mut dead = vec![false; conns.len()];
    let mut payload = vec![b'x'; CHAT_PAYLOAD];
    let mut last_rx = now_ns();
    loop {
        let now = now_ns();
        while let Some(&Reverse((at, k))) = due.peek() {
            if at > now || at >= stop_sending {
                break;
            }
            due.pop();
            let (i, c) = &mut conns[k];
            if dead[k] {
                continue;
            }
            let room = *i % p.rooms;
            if p.text {
                stats::stamp_text(&mut payload);
            } else {
                stamp(&mut payload, *i as u32, 0);
            }
            let pid = c.next_packet_id();
            c.queue_publish(&p.wire.topic(room), 1, pid, &payload);
            if let Err(e) = c.flush() {
                dead[k] = true;
                r.errors.push(format!("client {i}: {e}"));
                continue;
            }
            r.sent_per_room[room] += 1;
            due.push(Reverse((at + second, k)));
        }
        let now = now_ns();
        if now >= stop_sending && (now - last_rx > second || now >= hard_stop) {
            break;
        }
        let next = match due.peek() {
            Some(&Reverse((at, _))) if at < stop_sending => at,
            _ => now + 100_000_000,
        };
        let wait = Duration::from_nanos(next.saturating_sub(now).clamp(100_000, 100_000_000));
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                r.errors.push(format!("poll: {e}"));
                break;
            }
        }
        for ev in events.iter() {
            let k = ev.token().0;
            if dead[k] {
                continue;
            }
            let (i, c) = &mut conns[k];
            if let Err(e) = chat_drain(c, p, &mut r) {
                dead[k] = true;
                r.errors.push(format!("client {i}: {e}"));
            }
            last_rx = now_ns();
        }
    }
    for (_, c) in conns {
        c.disconnect();
    }
    r
}

/// Reads everything a client has waiting, acknowledging QoS 1 publishes.
fn chat_drain(c: &mut Conn, plan: &ChatPlan, r: &mut ChatResult) -> io::Result<()> {
    let version = c.version;
    while let Some(f) = c.read_frame()? {
        if f.kind == mqtt::PUBLISH {
            let p = c.view(&f).publish(version)?;
            let age = match (plan.text, plan.wire) {
                (false, _) => age_ns(p.payload),
                (true, ChatWire::Plain) => stats::age_text(p.payload),
                // `<id> <time> <sender> <text>`: the stamp starts the text.
                (true, ChatWire::Service) => p
                    .payload
                    .splitn(4, |&b| b == b' ')
                    .nth(3)
                    .and_then(stats::age_text),
            };
            let (qos, pid) = (p.qos, p.packet_id);
            if qos > 0 {
                c.queue_puback(pid);
            }
            r.received += 1;
            if let Some(a) = age {
                r.lat.record_ns(a);
            }
        }
    }
    c.flush()
}

/// Reconnect storm: many clients drop their links at once and come back,
/// while a few established clients keep measuring their round trips.
pub fn reconnect(t: &Target, clients: usize, rounds: usize) -> Result<Outcome, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let observers = start_observers(t, 4, &stop)?;
    // Establish the crowd.
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut c = t
            .connect(format!("storm-{i}"))
            .map_err(|e| format!("storm client {i}: {e}"))?;
        c.subscribe(&format!("bench/storm/{i}"), 1)
            .map_err(|e| format!("storm client {i}: {e}"))?;
        conns.push(c);
    }
    thread::sleep(Duration::from_millis(500));
    let before = proc_sample(t.pid);
    let mut storm_ms = Vec::new();
    let mut client_ms = Latencies::default();
    let mut windows = Vec::new();
    let mut notes = Vec::new();
    for round in 0..rounds {
        let go = Arc::new(Barrier::new(clients + 1));
        let mut handles = Vec::with_capacity(clients);
        for (i, c) in conns.drain(..).enumerate() {
            let (t, go) = (t.clone(), go.clone());
            handles.push(
                spawn(
                    format!("storm{i}"),
                    move || -> Result<(Conn, u64), String> {
                        go.wait();
                        c.drop_link();
                        let mut c = t.connect(format!("storm-{i}")).map_err(|e| e.to_string())?;
                        c.subscribe(&format!("bench/storm/{i}"), 1)
                            .map_err(|e| e.to_string())?;
                        Ok((c, now_ns()))
                    },
                )
                .map_err(|e| e.to_string())?,
            );
        }
        let start = now_ns();
        go.wait();
        let mut end = start;
        let mut failures = 0;
        for h in handles {
            match h.join().map_err(|_| "storm client panicked".to_string())? {
                Ok((c, at)) => {
                    end = end.max(at);
                    client_ms.record_ns(at - start);
                    conns.push(c);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        notes.push(format!("round {round}: reconnect failed: {e}"));
                    }
                }
            }
        }
        if failures > 0 {
            notes.push(format!(
                "round {round}: {failures} clients did not come back"
            ));
        }
        storm_ms.push((end - start) as f64 / 1e6);
        windows.push((start, end + 50_000_000));
        thread::sleep(Duration::from_millis(700));
    }
    let after = proc_sample(t.pid);
    stop.store(true, Ordering::SeqCst);
    let mut during = Latencies::default();
    let mut calm = Latencies::default();
    for h in observers {
        let samples = h.join().map_err(|_| "observer panicked".to_string())??;
        for (sent_at, rtt) in samples {
            if windows.iter().any(|&(a, b)| sent_at >= a && sent_at <= b) {
                during.record_ns(rtt);
            } else {
                calm.record_ns(rtt);
            }
        }
    }
    for c in conns {
        c.disconnect();
    }
    storm_ms.sort_by(|a, b| a.total_cmp(b));
    let mut m = vec![
        Metric::new("storm_ms", storm_ms[storm_ms.len() / 2]),
        Metric::new("storm_max_ms", *storm_ms.last().unwrap()),
    ];
    if let Some(us) = client_ms.percentile(50.0) {
        m.push(Metric::new("client_back_ms", us / 1000.0));
    }
    m.extend(latency_metrics(&mut during, "p50_us", "p99_us"));
    m.extend(latency_metrics(&mut calm, "calm_p50_us", "calm_p99_us"));
    m.push(Metric::new("peak_rss_kb", after.hwm_kb as f64));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    if during.0.is_empty() {
        notes.push("no observer round trip fell inside a storm".into());
    }
    Ok(Outcome::new(m, notes))
}

/// Round trips of one observer: (sent at, `now_ns` clock; round trip, ns).
type Samples = Result<Vec<(u64, u64)>, String>;

/// Connects `n` established clients, each subscribed to its own topic and
/// timing QoS 1 round trips through the broker until `stop`.
fn start_observers(
    t: &Target,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<thread::JoinHandle<Samples>>, String> {
    let mut observers = Vec::new();
    for k in 0..n {
        let mut c = t
            .connect(format!("observer-{k}"))
            .map_err(|e| format!("observer {k}: {e}"))?;
        let topic = format!("bench/observer/{k}");
        c.subscribe(&topic, 1)
            .map_err(|e| format!("observer {k}: {e}"))?;
        let stop = stop.clone();
        observers.push(
            spawn(format!("observer{k}"), move || observer(c, topic, stop))
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(observers)
}

/// Login burst (issue #3): a few established clients time QoS 1 round trips
/// through the broker; after a calm period, one client per account in
/// `t.accounts` logs in at the same moment with its own password, so every
/// CONNECT costs a full password check (no credential cache hit). The TCP
/// connections are opened beforehand, so the burst is of CONNECTs, not SYNs.
pub fn login_burst(t: &Target, observers: usize, calm: Duration) -> Result<Outcome, String> {
    let n = t.accounts.len();
    if n == 0 {
        return Err("no accounts to log in with".into());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let handles = start_observers(t, observers, &stop)?;
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        socks.push(Conn::open(t.addr, t.version).map_err(|e| format!("login {i}: open: {e}"))?);
    }
    // Let the observers settle, then measure the calm.
    thread::sleep(Duration::from_millis(200));
    let calm_from = now_ns();
    thread::sleep(calm);
    let go = Arc::new(Barrier::new(n + 1));
    let mut logins = Vec::with_capacity(n);
    for (i, mut c) in socks.into_iter().enumerate() {
        let (user, pass) = t.accounts[i].clone();
        let mut o = ConnectOptions::new(t.version, format!("login-{i}"));
        o.username = Some(user);
        o.password = Some(pass);
        let go = go.clone();
        logins.push(
            spawn(
                format!("login{i}"),
                move || -> Result<(Conn, u64), String> {
                    go.wait();
                    c.login(&o).map_err(|e| e.to_string())?;
                    Ok((c, now_ns()))
                },
            )
            .map_err(|e| e.to_string())?,
        );
    }
    let before = proc_sample(t.pid);
    let start = now_ns();
    go.wait();
    let mut end = start;
    let mut per_login = Latencies::default();
    let mut conns = Vec::with_capacity(n);
    let mut notes = Vec::new();
    let mut failures = 0;
    for h in logins {
        match h.join().map_err(|_| "login thread panicked".to_string())? {
            Ok((c, at)) => {
                end = end.max(at);
                per_login.record_ns(at - start);
                conns.push(c);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    notes.push(format!("login failed: {e}"));
                }
            }
        }
    }
    // CPU over at least a second from the start, so that a burst shorter
    // than the 10 ms clock tick still gets a meaningful percentage.
    let min_end = start + CPU_WINDOW.as_nanos() as u64;
    thread::sleep(Duration::from_nanos(min_end.saturating_sub(now_ns())));
    let after = proc_sample(t.pid);
    stop.store(true, Ordering::SeqCst);
    if failures > 0 {
        notes.push(format!("{failures} of {n} logins failed"));
    }
    let mut during = Latencies::default();
    let mut calm_lat = Latencies::default();
    for h in handles {
        let samples = h.join().map_err(|_| "observer panicked".to_string())??;
        // A round trip counts for the burst if it overlaps it at all.
        for (sent_at, rtt) in samples {
            if sent_at <= end && sent_at + rtt >= start {
                during.record_ns(rtt);
            } else if sent_at >= calm_from && sent_at + rtt < start {
                calm_lat.record_ns(rtt);
            }
        }
    }
    for c in conns {
        c.disconnect();
    }
    let mut m = vec![Metric::new("burst_ms", (end - start) as f64 / 1e6)];
    if let Some(us) = per_login.percentile(50.0) {
        m.push(Metric::new("login_p50_ms", us / 1000.0));
    }
    m.extend(latency_metrics(&mut during, "p50_us", "p99_us"));
    if let Some(v) = during.percentile(100.0) {
        m.push(Metric::new("max_us", v));
    }
    m.extend(latency_metrics(&mut calm_lat, "calm_p50_us", "calm_p99_us"));
    if let Some(v) = calm_lat.percentile(100.0) {
        m.push(Metric::new("calm_max_us", v));
    }
    m.push(Metric::new("during_n", during.0.len() as f64));
    m.push(Metric::new(
        "burst_cpu_ms",
        (after.cpu_s - before.cpu_s) * 1000.0,
    ));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    m.push(Metric::new("peak_rss_kb", after.hwm_kb as f64));
    if during.0.len() < 20 {
        notes.push(format!(
            "only {} observer round trips fell inside the burst",
            during.0.len()
        ));
    }
    Ok(Outcome::new(m, notes))
}

/// The shortest window the login burst's CPU figures cover.
const CPU_WINDOW: Duration = Duration::from_secs(1);

/// Publishes to its own topic every 2 ms and times the round trip.
fn observer(mut c: Conn, topic: String, stop: Arc<AtomicBool>) -> Samples {
    let mut samples = Vec::new();
    let mut payload = vec![0u8; 64];
    let version = c.version;
    let run = (|| -> io::Result<()> {
        c.set_timeout(Some(Duration::from_secs(5)))?;
        let mut seq = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let sent = now_ns();
            stamp(&mut payload, 0, seq);
            let pid = c.next_packet_id();
            c.queue_publish(&topic, 1, pid, &payload);
            c.flush()?;
            loop {
                let Some(f) = c.read_frame()? else {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "observer: no echo for 5 s (broker stalled?)",
                    ));
                };
                if f.kind == mqtt::PUBLISH {
                    let p = c.view(&f).publish(version)?;
                    let (qos, id) = (p.qos, p.packet_id);
                    if qos > 0 {
                        c.queue_puback(id);
                    }
                    samples.push((sent, now_ns() - sent));
                    break;
                }
            }
            seq += 1;
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })();
    c.disconnect();
    run.map_err(|e| e.to_string())?;
    Ok(samples)
}

/// Connect rate: `clients` clean-session clients connect one after another, each waiting
/// for its CONNACK before the next starts, and drop their links.
pub fn connect_rate(t: &Target, clients: usize) -> Result<Outcome, String> {
    let before = proc_sample(t.pid);
    let started = Instant::now();
    let mut lat = Latencies::default();
    for i in 0..clients {
        let t0 = now_ns();
        let c = t
            .connect(format!("rate-{i}"))
            .map_err(|e| format!("client {i}: {e}"))?;
        lat.record_ns(now_ns() - t0);
        c.drop_link();
    }
    let secs = started.elapsed().as_secs_f64();
    let after = proc_sample(t.pid);
    let mut m = vec![
        Metric::new("connects_s", rate(clients as u64, secs)),
        Metric::new("total_ms", secs * 1000.0),
    ];
    m.extend(latency_metrics(
        &mut lat,
        "connack_p50_us",
        "connack_p99_us",
    ));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    Ok(Outcome::new(m, Vec::new()))
}

/// A persistent session that a reconnect resumes (MQTT 5: clean start 0 as well as an
/// expiry; `persistent` alone keeps clean start 1 in MQTT 5, which discards the session).
fn resumable(o: ConnectOptions) -> ConnectOptions {
    let mut o = o.persistent(SESSION_EXPIRY);
    o.clean_start = false;
    o
}

/// Deep offline queues: `sessions` persistent subscribers go offline, one publisher sends
/// `messages` QoS 1 messages (every one queued for every session), and the broker's memory
/// growth is measured; then one subscriber comes back and counts what it gets.
pub fn deep(t: &Target, sessions: usize, messages: u64) -> Result<Outcome, String> {
    for i in 0..sessions {
        let o = resumable(t.options(format!("deep-{i}")));
        let mut c = Conn::connect(t.addr, &o).map_err(|e| format!("subscriber {i}: {e}"))?;
        c.subscribe("bench/deep/t", 1)
            .map_err(|e| format!("subscriber {i}: {e}"))?;
        c.disconnect();
    }
    thread::sleep(Duration::from_millis(500));
    let before = proc_sample(t.pid);
    let started = Instant::now();
    let mut c = t
        .connect("deep-pub".into())
        .map_err(|e| format!("publisher: {e}"))?;
    c.set_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let payload = [0x5Au8; 64];
    let (mut sent, mut acked, window) = (0u64, 0u64, 64u64);
    while acked < messages {
        while sent < messages && sent - acked < window {
            let pid = c.next_packet_id();
            c.queue_publish("bench/deep/t", 1, pid, &payload);
            sent += 1;
        }
        match c.read_frame().map_err(|e| format!("publisher: {e}"))? {
            Some(f) if f.kind == mqtt::PUBACK => acked += 1,
            Some(_) => {}
            None => return Err(format!("publisher: no PUBACK after {acked} of {messages}")),
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    c.disconnect();
    let queued = proc_sample(t.pid);
    // One session comes back and takes its whole queue.
    let o = resumable(t.options("deep-0".into()));
    let mut back = Conn::connect(t.addr, &o).map_err(|e| format!("returning: {e}"))?;
    back.set_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let drain_started = Instant::now();
    let mut drained_at = drain_started;
    let mut got = 0u64;
    while let Some(f) = back.read_frame().map_err(|e| format!("returning: {e}"))? {
        if f.kind == mqtt::PUBLISH {
            drained_at = Instant::now();
            let pid = back
                .view(&f)
                .publish(back.version)
                .map_err(|e| e.to_string())?
                .packet_id;
            back.queue_puback(pid);
            got += 1;
        }
    }
    // Up to the last message, not the quiet wait that ends the loop.
    let drain_secs = drained_at
        .duration_since(drain_started)
        .as_secs_f64()
        .max(0.001);
    back.disconnect();
    let after = proc_sample(t.pid);
    let mut notes = Vec::new();
    if got < messages {
        notes.push(format!(
            "the returning session got {got} of {messages} acknowledged messages"
        ));
    }
    let m = vec![
        Metric::new(
            "rss_growth_kb",
            queued.rss_kb.saturating_sub(before.rss_kb) as f64,
        ),
        Metric::new("peak_rss_kb", after.hwm_kb as f64),
        Metric::new("msgs_s", rate(acked, publish_secs)),
        Metric::new("drain_msgs_s", rate(got, drain_secs)),
        Metric::new(
            "lost_pct",
            100.0 * messages.saturating_sub(got) as f64 / messages as f64,
        ),
    ];
    Ok(Outcome::new(m, notes))
}
