//! One big room (issue #11): a thousand members subscribed to one room, a few of them
//! sending at a fixed rate, and every member checked to get every message exactly once
//! and in order — through Outpost's chat service, or as plain MQTT on either broker.
//!
//! Each text is `<send time, 16 hex digits> <sender> <seq>` padded to 100 bytes, so a
//! member tells a gap, a duplicate or a reordering per sender. Through the chat service a
//! delivery is `<id> <time> <name> <text>`: the member also checks that `<name>` is the
//! sender's account, that ids increase, and the run checks that every member saw the same
//! id for the same message. Afterwards one sender asks the service for the room list,
//! which must count every member.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::mqtt::{self, Conn};
use crate::report::{Metric, Outcome};
use crate::scenarios::{latency_metrics, spawn, ChatWire, Target};
use crate::stats::{self, now_ns, proc_sample, Latencies};

/// The load: who is in the room, who talks, how fast, for how long.
#[derive(Debug, Clone)]
pub struct BigRoom {
    pub members: usize,
    /// Members 0..senders also send; each logs in with its own account.
    pub senders: usize,
    /// Messages a second, all senders together.
    pub rate: u64,
    pub run_for: Duration,
    pub wire: ChatWire,
}

const PAYLOAD: usize = 100;
const ROOM: &str = "big";
/// Event loops driving the members (as in the chat scenario).
const WORKERS: usize = 2;

fn topic(wire: ChatWire) -> &'static str {
    match wire {
        ChatWire::Plain => "talk/room/big",
        ChatWire::Service => "chat/r/big",
    }
}

/// One member of the room.
struct Member {
    index: usize,
    conn: Conn,
    seen: Seen,
}

/// What a member has received so far.
struct Seen {
    /// Per sender, the next sequence number expected.
    next_seq: Vec<u32>,
    /// The last message id seen (chat service).
    last_id: u64,
}

/// What one event loop counted.
#[derive(Default)]
struct Tally {
    sent: u64,
    received: u64,
    /// Deliveries out of order, duplicated, after a gap, with the wrong sender name or a
    /// non-increasing id.
    misordered: u64,
    lat: Latencies,
    /// The id each message got, by (sender, seq), as the first member saw it.
    ids: HashMap<(u32, u32), u64>,
    id_conflicts: u64,
    errors: Vec<String>,
}

/// Shared between the event loops: how much was sent, and who has stopped sending.
struct Progress {
    sent: AtomicU64,
    done_sending: AtomicUsize,
}

pub fn big_room(t: &Target, r: &BigRoom) -> Result<Outcome, String> {
    let wire = r.wire.on(t);
    if t.accounts.len() < r.senders {
        return Err(format!(
            "{} sender accounts needed, {} given",
            r.senders,
            t.accounts.len()
        ));
    }
    let names: Arc<Vec<String>> = Arc::new(
        t.accounts[..r.senders]
            .iter()
            .map(|(u, _)| u.clone())
            .collect(),
    );
    let members = connect_members(t, r, wire)?;
    let before = proc_sample(t.pid);
    let t0 = now_ns() + 50_000_000;
    let progress = Arc::new(Progress {
        sent: AtomicU64::new(0),
        done_sending: AtomicUsize::new(0),
    });
    let mut parts: Vec<Vec<Member>> = (0..WORKERS).map(|_| Vec::new()).collect();
    for m in members {
        parts[m.index % WORKERS].push(m);
    }
    let mut handles = Vec::new();
    for (w, part) in parts.into_iter().enumerate() {
        let (r, progress, names) = (r.clone(), progress.clone(), names.clone());
        handles.push(
            spawn(format!("room-loop{w}"), move || {
                room_loop(part, &r, wire, t0, &progress, &names)
            })
            .map_err(|e| e.to_string())?,
        );
    }
    let mut all = Tally::default();
    let mut conns = Vec::new();
    for h in handles {
        let (tally, members) = h.join().map_err(|_| "room loop panicked".to_string())?;
        merge(&mut all, tally);
        conns.extend(members);
    }
    let after = proc_sample(t.pid);
    let want = all.sent * r.members as u64;
    let lost = want.saturating_sub(all.received);
    let mut notes = Vec::new();
    if !all.errors.is_empty() {
        notes.push(format!(
            "{} client errors, first: {}",
            all.errors.len(),
            all.errors[0]
        ));
    }
    if lost > 0 {
        notes.push(format!("{lost} of {want} deliveries missing"));
    }
    if all.misordered > 0 {
        notes.push(format!(
            "{} deliveries out of order, duplicated or misattributed",
            all.misordered
        ));
    }
    if all.id_conflicts > 0 {
        notes.push(format!(
            "{} deliveries carried another id than other members saw",
            all.id_conflicts
        ));
    }
    let secs = r.run_for.as_secs_f64();
    let mut m = vec![
        Metric::new("sent_s", all.sent as f64 / secs),
        Metric::new("deliveries_s", all.received as f64 / secs),
    ];
    m.extend(latency_metrics(&mut all.lat, "p50_us", "p99_us"));
    m.push(Metric::new("peak_rss_kb", after.hwm_kb as f64));
    m.push(Metric::new("cpu_pct", stats::cpu_pct(&before, &after)));
    m.push(Metric::new("sent", all.sent as f64));
    m.push(Metric::new(
        "lost_pct",
        100.0 * lost as f64 / want.max(1) as f64,
    ));
    m.push(Metric::new("misordered", all.misordered as f64));
    if wire == ChatWire::Service {
        let first = conns.iter_mut().find(|m| m.index == 0);
        match first.map(|m| room_list(&mut m.conn, &names[0], r.members, all.sent)) {
            Some(Ok(us)) => m.push(Metric::new("rooms_us", us)),
            Some(Err(e)) => notes.push(format!("room list: {e}")),
            None => notes.push("room list: the first sender is gone".into()),
        }
    }
    for member in conns {
        member.conn.disconnect();
    }
    Ok(Outcome::new(m, notes))
}

fn merge(all: &mut Tally, t: Tally) {
    all.sent += t.sent;
    all.received += t.received;
    all.misordered += t.misordered;
    all.id_conflicts += t.id_conflicts;
    all.lat.merge(t.lat);
    all.errors.extend(t.errors);
    for (key, id) in t.ids {
        match all.ids.get(&key) {
            Some(&seen) if seen != id => all.id_conflicts += 1,
            Some(_) => {}
            None => {
                all.ids.insert(key, id);
            }
        }
    }
}

/// Logs every member in and subscribes it to the room, from a few threads. Senders log in
/// with their own accounts, everyone else with the `--auth` one; through the chat service
/// the first sender also reads its replies.
fn connect_members(t: &Target, r: &BigRoom, wire: ChatWire) -> Result<Vec<Member>, String> {
    let connectors = 4;
    let mut handles = Vec::new();
    for k in 0..connectors {
        let (t, r) = (t.clone(), r.clone());
        handles.push(
            spawn(format!("room-connect{k}"), move || {
                let mut members = Vec::new();
                for i in (k..r.members).step_by(connectors) {
                    let mut o = t.options(format!("room-{i}"));
                    if let Some((u, p)) = t.accounts.get(i).filter(|_| i < r.senders) {
                        o.username = Some(u.clone());
                        o.password = Some(p.clone());
                    }
                    let mut conn = t
                        .connect_with(&o)
                        .and_then(|mut c| c.subscribe(topic(wire), 1).map(|_| c))
                        .map_err(|e| format!("member {i}: {e}"))?;
                    if i == 0 && wire == ChatWire::Service {
                        let replies = format!("chat/u/{}/#", t.accounts[0].0);
                        conn.subscribe(&replies, 1)
                            .map_err(|e| format!("member 0, {replies}: {e}"))?;
                    }
                    members.push(Member {
                        index: i,
                        conn,
                        seen: Seen {
                            next_seq: vec![0; r.senders],
                            last_id: 0,
                        },
                    });
                }
                Ok::<_, String>(members)
            })
            .map_err(|e| e.to_string())?,
        );
    }
    let mut all = Vec::with_capacity(r.members);
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| "connect thread panicked".to_string())??,
        );
    }
    Ok(all)
}

/// One event loop over some of the members: sends its senders' messages on schedule,
/// reads and checks every delivery, and stops once every loop has stopped sending and
/// its members have everything sent (or 2 s after the last delivery, at most 10 s late).
fn room_loop(
    mut members: Vec<Member>,
    r: &BigRoom,
    wire: ChatWire,
    t0: u64,
    progress: &Progress,
    names: &[String],
) -> (Tally, Vec<Member>) {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    let mut tally = Tally::default();
    let setup = (|| -> io::Result<Poll> {
        let poll = Poll::new()?;
        for (k, m) in members.iter_mut().enumerate() {
            m.conn.set_nonblocking()?;
            poll.registry().register(
                &mut SourceFd(&m.conn.raw_fd()),
                Token(k),
                Interest::READABLE,
            )?;
        }
        Ok(poll)
    })();
    let mut poll = match setup {
        Ok(p) => p,
        Err(e) => {
            tally.errors.push(e.to_string());
            progress.done_sending.fetch_add(1, Ordering::SeqCst);
            return (tally, members);
        }
    };
    let second = 1_000_000_000u64;
    let gap = second / r.rate.max(1);
    let stop_sending = t0 + r.run_for.as_nanos() as u64;
    let hard_stop = stop_sending + 10 * second;
    // (member slot, sender index, next seq); message number seq * senders + sender.
    let mut senders: Vec<(usize, u32, u32)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.index < r.senders)
        .map(|(k, m)| (k, m.index as u32, 0))
        .collect();
    let due = |sender: u32, seq: u32| t0 + (seq as u64 * r.senders as u64 + sender as u64) * gap;
    let mut events = Events::with_capacity(1024);
    let mut dead = vec![false; members.len()];
    let mut payload = vec![b'x'; PAYLOAD];
    let mut sending = true;
    let mut last_rx = now_ns();
    loop {
        let now = now_ns();
        if sending {
            for (k, sender, seq) in senders.iter_mut() {
                while due(*sender, *seq) <= now && due(*sender, *seq) < stop_sending {
                    if dead[*k] {
                        break;
                    }
                    let c = &mut members[*k].conn;
                    text(&mut payload, *sender, *seq);
                    let pid = c.next_packet_id();
                    c.queue_publish(topic(wire), 1, pid, &payload);
                    if let Err(e) = c.flush() {
                        dead[*k] = true;
                        tally.errors.push(format!("sender {sender}: {e}"));
                        break;
                    }
                    *seq += 1;
                    tally.sent += 1;
                    progress.sent.fetch_add(1, Ordering::SeqCst);
                }
            }
            if now >= stop_sending {
                sending = false;
                progress.done_sending.fetch_add(1, Ordering::SeqCst);
            }
        }
        let now = now_ns();
        if !sending {
            let all_sent = progress.done_sending.load(Ordering::SeqCst) == WORKERS;
            let want = progress.sent.load(Ordering::SeqCst) * members.len() as u64;
            if (all_sent && tally.received >= want)
                || now - last_rx > 2 * second
                || now >= hard_stop
            {
                break;
            }
        }
        let next = if sending {
            senders
                .iter()
                .map(|&(_, s, q)| due(s, q))
                .min()
                .unwrap_or(stop_sending)
                .min(stop_sending)
        } else {
            now + 100_000_000
        };
        let wait = Duration::from_nanos(next.saturating_sub(now).clamp(100_000, 100_000_000));
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                tally.errors.push(format!("poll: {e}"));
                break;
            }
        }
        for ev in events.iter() {
            let k = ev.token().0;
            if dead[k] {
                continue;
            }
            if let Err(e) = drain(&mut members[k], wire, names, &mut tally) {
                dead[k] = true;
                tally
                    .errors
                    .push(format!("member {}: {e}", members[k].index));
            }
            last_rx = now_ns();
        }
    }
    (tally, members)
}

/// `<stamp> <sender> <seq>` padded with `x` to the payload's length.
fn text(payload: &mut [u8], sender: u32, seq: u32) {
    stats::stamp_text(payload);
    let tail = format!(" {sender} {seq} ");
    payload[16..16 + tail.len()].copy_from_slice(tail.as_bytes());
}

/// Reads everything a member has waiting, acknowledging and checking each delivery.
fn drain(m: &mut Member, wire: ChatWire, names: &[String], tally: &mut Tally) -> io::Result<()> {
    let version = m.conn.version;
    while let Some(f) = m.conn.read_frame()? {
        if f.kind != mqtt::PUBLISH {
            continue;
        }
        let p = m.conn.view(&f).publish(version)?;
        let (qos, pid) = (p.qos, p.packet_id);
        let checked = check(&mut m.seen, wire, names, p.payload, tally);
        if qos > 0 {
            m.conn.queue_puback(pid);
        }
        tally.received += 1;
        if !checked {
            tally.misordered += 1;
        }
    }
    m.conn.flush()
}

/// Records one delivery's latency and id; false when it is not the next one expected.
fn check(m: &mut Seen, wire: ChatWire, names: &[String], payload: &[u8], t: &mut Tally) -> bool {
    let (id, name, text) = match wire {
        ChatWire::Plain => (None, None, payload),
        ChatWire::Service => {
            let mut f = payload.splitn(4, |&b| b == b' ');
            let id = f
                .next()
                .and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok());
            let name = f.nth(1);
            match (id, name, f.next()) {
                (Some(id), Some(name), Some(text)) => (Some(id), Some(name), text),
                _ => return false,
            }
        }
    };
    if let Some(age) = stats::age_text(text) {
        t.lat.record_ns(age);
    }
    let mut fields = text
        .get(17..)
        .unwrap_or_default()
        .split(|&b| b == b' ')
        .map(|b| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
        });
    let (Some(Some(sender)), Some(Some(seq))) = (fields.next(), fields.next()) else {
        return false;
    };
    let Some(next) = m.next_seq.get_mut(sender as usize) else {
        return false;
    };
    let mut ok = seq == *next;
    *next = (*next).max(seq + 1);
    if let (Some(id), Some(name)) = (id, name) {
        ok &= id > m.last_id && name == names[sender as usize].as_bytes();
        m.last_id = m.last_id.max(id);
        match t.ids.get(&(sender, seq)) {
            Some(&seen) if seen != id => t.id_conflicts += 1,
            Some(_) => {}
            None => {
                t.ids.insert((sender, seq), id);
            }
        }
    }
    ok
}

/// Asks the chat service for the room list ten times (tag convention, reply on
/// `chat/u/<user>/<tag>`): the room must count `members` members and `messages`
/// messages. Returns the median request-to-reply time in µs.
fn room_list(c: &mut Conn, user: &str, members: usize, messages: u64) -> Result<f64, String> {
    let want = format!("{ROOM} {members} {messages}");
    let mut lat = Latencies::default();
    c.set_blocking().map_err(|e| e.to_string())?;
    c.set_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    for n in 0..10 {
        let tag = format!("rooms{n}");
        let pid = c.next_packet_id();
        let sent = now_ns();
        c.queue_publish(&format!("chat/x/rooms/{tag}"), 1, pid, b"");
        c.flush().map_err(|e| e.to_string())?;
        let reply = loop {
            let f = c
                .read_frame()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no reply to rooms/{tag} on chat/u/{user}/{tag}"))?;
            if f.kind != mqtt::PUBLISH {
                continue;
            }
            let p = c.view(&f).publish(c.version).map_err(|e| e.to_string())?;
            let (qos, pid) = (p.qos, p.packet_id);
            let text = String::from_utf8_lossy(p.payload).into_owned();
            if qos > 0 {
                c.queue_puback(pid);
            }
            if text.starts_with("ok ") {
                break text;
            }
        };
        lat.record_ns(now_ns() - sent);
        if !reply.lines().any(|l| l == want) {
            return Err(format!("wanted `{want}`, got {reply:?}"));
        }
    }
    lat.percentile(50.0).ok_or_else(|| "no replies".into())
}
