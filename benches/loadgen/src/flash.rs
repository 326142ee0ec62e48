//! The "flash" group (issue #26): what persistence costs the SD card. Fifty MQTT 3.1.1
//! sensors each publish a 17-byte JSON reading once a second at QoS 1 to `site/<i>/temp`;
//! one MQTT 5 persistent subscriber (session expiry 3600, QoS 1 on `site/#`) is online,
//! offline, or the readings are retained; or the sensors send a burst as fast as their
//! windows allow. An unrelated QoS 0 stream (200 messages/s) runs beside them. Reported:
//! bytes the broker wrote per message (its `/proc/PID/io` `write_bytes`), flushes per
//! message (counted by the fsync shim, `shim/flushdelay.c`, which also adds the simulated
//! flush time), GB a day at that rate, and the QoS 0 and PUBACK latencies.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::mqtt::{self, ConnectOptions, Version};
use crate::report::{Metric, Outcome};
use crate::scenarios::{spawn, Target};
use crate::stats::{age_ns, now_ns, proc_sample, stamp, Latencies, STAMP_LEN};

/// Sensors, and their rate in the steady loads: 50 messages a second in all.
pub const SENSORS: usize = 50;
/// Messages each sensor sends in the burst load.
const BURST: usize = 200;
/// Unacknowledged messages a sensor may have in the burst load.
const BURST_WINDOW: usize = 20;
/// The unrelated QoS 0 stream's rate.
const PROBE_RATE: u64 = 200;
/// Time after the load for the last commits (and Mosquitto's autosave) to land before
/// the bytes are counted.
const SETTLE: Duration = Duration::from_millis(2500);

/// What the subscriber and the sensors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// The subscriber is online and acknowledges at once.
    Online,
    /// As `Online`, with every reading retained.
    Retained,
    /// The subscriber is offline: every reading is queued for it.
    Offline,
    /// Every sensor sends `BURST` readings as fast as its window allows, subscriber online.
    Burst,
}

impl Load {
    pub fn name(self) -> &'static str {
        match self {
            Load::Online => "online",
            Load::Retained => "retained",
            Load::Offline => "offline",
            Load::Burst => "burst",
        }
    }
}

/// One flash case.
#[derive(Debug, Clone)]
pub struct Flash {
    pub load: Load,
    /// Length of the steady loads.
    pub duration: Duration,
    /// Where the fsync shim writes its count (see `broker::Setup::flush_count`).
    pub flush_count: std::path::PathBuf,
}

pub fn run(t: &Target, f: &Flash) -> Result<Outcome, String> {
    let err = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
    // The persistent subscriber: its session exists before the load starts.
    let mut sub_opts = ConnectOptions::new(Version::V5, "flash-sub").persistent(3600);
    // Resumed when it comes back after the offline load.
    sub_opts.clean_start = false;
    let mut sub = t.connect_with(&sub_opts).map_err(err("subscriber"))?;
    sub.subscribe("site/#", 1).map_err(err("subscribe"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(0u64));
    let subscriber = if f.load == Load::Offline {
        sub.disconnect();
        None
    } else {
        Some(spawn_acker(sub, stop.clone(), received.clone()).map_err(err("thread"))?)
    };
    let probe = Probe::start(t, stop.clone()).map_err(err("probe"))?;
    // Every sensor connects first; what connecting writes (client records, within a
    // second) is not counted.
    let ready = Arc::new(Barrier::new(SENSORS + 1));
    let go = Arc::new(Barrier::new(SENSORS + 1));
    let sensors: Vec<_> = (0..SENSORS)
        .map(|i| {
            let t = t.clone();
            let load = f.load;
            let duration = f.duration;
            let (ready, go) = (ready.clone(), go.clone());
            spawn(format!("sensor{i}"), move || {
                sensor(&t, i, load, duration, &ready, &go)
            })
        })
        .collect::<Result<_, _>>()
        .map_err(err("thread"))?;
    ready.wait();
    thread::sleep(Duration::from_millis(1500));
    let before = proc_sample(t.pid);
    let flushes_before = read_count(&f.flush_count);
    go.wait();
    let started = Instant::now();
    let mut acks = Latencies::default();
    let mut sent = 0u64;
    for s in sensors {
        let (n, lat) = s
            .join()
            .map_err(|_| "sensor thread panicked".to_string())?
            .map_err(err("sensor"))?;
        sent += n;
        acks.merge(lat);
    }
    let elapsed = started.elapsed().as_secs_f64();
    thread::sleep(SETTLE);
    let after = proc_sample(t.pid);
    let flushes = read_count(&f.flush_count).saturating_sub(flushes_before);
    stop.store(true, Ordering::Relaxed);
    let mut probe_lat = probe.finish();
    if let Some(s) = subscriber {
        let _ = s.join();
    }
    let written = after.write_bytes.saturating_sub(before.write_bytes) as f64;
    let per_msg = written / sent.max(1) as f64;
    let mut metrics = vec![
        Metric::new("sent", sent as f64),
        Metric::new("disk_b_msg", per_msg),
        Metric::new("flushes_msg", flushes as f64 / sent.max(1) as f64),
        // At the steady load's rate (50 a second), whatever this case's rate was.
        Metric::new("gb_day", per_msg * SENSORS as f64 * 86_400.0 / 1e9),
    ];
    if f.load == Load::Burst {
        metrics.push(Metric::new("msgs_s", sent as f64 / elapsed));
    }
    metrics.extend(crate::scenarios::latency_metrics(
        &mut probe_lat,
        "q0_p50_us",
        "q0_p99_us",
    ));
    metrics.extend(crate::scenarios::latency_metrics(
        &mut acks,
        "ack_p50_us",
        "ack_p99_us",
    ));
    let notes = match f.load {
        Load::Offline => drain_offline(t, &sub_opts, sent).into_iter().collect(),
        _ => {
            let got = *received.lock().unwrap_or_else(|e| e.into_inner());
            (got < sent)
                .then(|| format!("subscriber got {got} of {sent}"))
                .into_iter()
                .collect()
        }
    };
    Ok(Outcome::new(metrics, notes))
}

/// Reconnects the offline subscriber and takes its queue, to check it is all there.
fn drain_offline(t: &Target, opts: &ConnectOptions, sent: u64) -> Option<String> {
    let mut sub = t.connect_with(opts).ok()?;
    sub.set_timeout(Some(Duration::from_millis(1500))).ok()?;
    let mut got = 0u64;
    while got < sent {
        let Ok(Some(frame)) = sub.read_frame() else {
            break;
        };
        if frame.kind == mqtt::PUBLISH {
            let id = sub.view(&frame).publish(Version::V5).ok()?.packet_id;
            sub.queue_puback(id);
            got += 1;
        }
    }
    sub.disconnect();
    (got < sent).then(|| format!("offline subscriber got {got} of {sent} after reconnecting"))
}

/// Acknowledges every delivery at once and counts them.
fn spawn_acker(
    mut sub: mqtt::Conn,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<u64>>,
) -> io::Result<thread::JoinHandle<()>> {
    sub.set_timeout(Some(Duration::from_millis(100)))?;
    spawn("flash-sub".into(), move || {
        while !stop.load(Ordering::Relaxed) {
            match sub.read_frame() {
                Ok(Some(frame)) if frame.kind == mqtt::PUBLISH => {
                    if let Ok(p) = sub.view(&frame).publish(Version::V5) {
                        if p.qos > 0 {
                            sub.queue_puback(p.packet_id);
                        }
                    }
                    *received.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        sub.disconnect();
    })
}

/// One sensor: its readings, and how long each PUBACK took. Returns how many were
/// acknowledged.
fn sensor(
    t: &Target,
    i: usize,
    load: Load,
    duration: Duration,
    ready: &Barrier,
    go: &Barrier,
) -> io::Result<(u64, Latencies)> {
    let opts = ConnectOptions::new(Version::V311, format!("sensor-{i}"));
    let connected = t.connect_with(&opts);
    ready.wait();
    go.wait();
    let mut c = connected?;
    c.set_timeout(Some(Duration::from_secs(10)))?;
    let topic = format!("site/{i}/temp");
    let reading = br#"{"t":21.5,"h":40}"#;
    let mut lat = Latencies::default();
    let mut acked = 0u64;
    let mut sent_at = std::collections::HashMap::new();
    let mut take_ack = |c: &mut mqtt::Conn, sent_at: &mut std::collections::HashMap<u16, u64>| {
        let frame = c
            .read_frame()?
            .ok_or_else(|| mqtt::bad("no PUBACK in 10 s"))?;
        if frame.kind == mqtt::PUBACK {
            let id = c.view(&frame).packet_id()?;
            if let Some(at) = sent_at.remove(&id) {
                lat.record_ns(now_ns().saturating_sub(at));
                acked += 1;
            }
        }
        io::Result::Ok(())
    };
    if load == Load::Burst {
        for _ in 0..BURST {
            while sent_at.len() >= BURST_WINDOW {
                take_ack(&mut c, &mut sent_at)?;
            }
            let id = c.next_packet_id();
            c.queue_publish(&topic, 1, id, reading);
            sent_at.insert(id, now_ns());
            c.flush()?;
        }
    } else {
        // Spread over the second: sensor i speaks at i/50 s past each second.
        let start = Instant::now() + Duration::from_millis((i * 1000 / SENSORS) as u64);
        let mut next = start;
        while next < start + duration {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let id = c.next_packet_id();
            if load == Load::Retained {
                c.queue_publish_retained(&topic, 1, id, reading);
            } else {
                c.queue_publish(&topic, 1, id, reading);
            }
            sent_at.insert(id, now_ns());
            c.flush()?;
            take_ack(&mut c, &mut sent_at)?;
            next += Duration::from_secs(1);
        }
    }
    while !sent_at.is_empty() {
        take_ack(&mut c, &mut sent_at)?;
    }
    c.disconnect();
    Ok((acked, lat))
}

/// The unrelated QoS 0 stream: a publisher at `PROBE_RATE` and a subscriber that notes
/// each message's age.
struct Probe {
    publisher: thread::JoinHandle<()>,
    subscriber: thread::JoinHandle<Latencies>,
}

impl Probe {
    fn start(t: &Target, stop: Arc<AtomicBool>) -> io::Result<Probe> {
        let mut sub = t.connect_with(&ConnectOptions::new(Version::V311, "probe-sub"))?;
        sub.subscribe("probe/t", 0)?;
        sub.set_timeout(Some(Duration::from_millis(100)))?;
        let mut publisher = t.connect_with(&ConnectOptions::new(Version::V311, "probe-pub"))?;
        let done = stop.clone();
        let subscriber = spawn("probe-sub".into(), move || {
            let mut lat = Latencies::default();
            while !done.load(Ordering::Relaxed) {
                match sub.read_frame() {
                    Ok(Some(frame)) if frame.kind == mqtt::PUBLISH => {
                        if let Ok(p) = sub.view(&frame).publish(Version::V311) {
                            if let Some(age) = age_ns(p.payload) {
                                lat.record_ns(age);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            lat
        })?;
        let publisher = spawn("probe-pub".into(), move || {
            let gap = Duration::from_nanos(1_000_000_000 / PROBE_RATE);
            let mut next = Instant::now();
            let mut seq = 0u32;
            let mut payload = [0u8; STAMP_LEN];
            while !stop.load(Ordering::Relaxed) {
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                seq += 1;
                stamp(&mut payload, 0, seq);
                publisher.queue_publish("probe/t", 0, 0, &payload);
                if publisher.flush().is_err() {
                    break;
                }
                next += gap;
            }
            publisher.disconnect();
        })?;
        Ok(Probe {
            publisher,
            subscriber,
        })
    }

    /// The QoS 0 latencies (call after `stop` is set).
    fn finish(self) -> Latencies {
        let _ = self.publisher.join();
        self.subscriber.join().unwrap_or_default()
    }
}

/// The shim's flush count so far (0 when there is none yet).
fn read_count(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
