//! Clocks, payload stamps, latency percentiles and what `/proc` says about a broker.

use std::fs;
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the first call; every thread of the process shares it,
/// so a stamp written by a publisher can be read by a subscriber.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Bytes at the start of every payload: send time, publisher, sequence.
pub const STAMP_LEN: usize = 16;

/// Writes the send time, publisher and sequence number into a payload.
pub fn stamp(payload: &mut [u8], publisher: u32, seq: u32) {
    payload[..8].copy_from_slice(&now_ns().to_le_bytes());
    payload[8..12].copy_from_slice(&publisher.to_le_bytes());
    payload[12..16].copy_from_slice(&seq.to_le_bytes());
}

/// Stamps the send time as 16 hex digits, for payloads that must be text.
pub fn stamp_text(payload: &mut [u8]) {
    let hex = format!("{:016x}", now_ns());
    payload[..16].copy_from_slice(hex.as_bytes());
}

/// Nanoseconds since a [`stamp_text`] payload was stamped.
pub fn age_text(payload: &[u8]) -> Option<u64> {
    let hex = std::str::from_utf8(payload.get(..16)?).ok()?;
    let sent = u64::from_str_radix(hex, 16).ok()?;
    Some(now_ns().saturating_sub(sent))
}

/// Nanoseconds since the payload was stamped, or `None` if it carries no stamp.
pub fn age_ns(payload: &[u8]) -> Option<u64> {
    let sent = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    Some(now_ns().saturating_sub(sent))
}

/// Latencies in microseconds, kept whole so percentiles are exact.
#[derive(Default, Clone)]
pub struct Latencies(pub Vec<u32>);

impl Latencies {
    pub fn record_ns(&mut self, ns: u64) {
        self.0.push((ns / 1000).min(u32::MAX as u64) as u32);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `p`-th percentile (0..=100) in microseconds.
    pub fn percentile(&mut self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        Some(self.0[rank.min(self.0.len() - 1)] as f64)
    }
}

/// What `/proc/PID` tells about a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// Resident set, KiB (VmRSS).
    pub rss_kb: u64,
    /// Peak resident set so far, KiB (VmHWM).
    pub hwm_kb: u64,
    /// User + system CPU time, seconds.
    pub cpu_s: f64,
    /// Voluntary + involuntary context switches of all threads: a proxy for
    /// wake-ups.
    pub ctx_switches: u64,
    /// Bytes the process caused to be written to storage (`/proc/PID/io`
    /// `write_bytes`, counted when pages are dirtied): what persistence costs.
    pub write_bytes: u64,
    pub at: Option<Instant>,
}

pub fn proc_sample(pid: u32) -> ProcSample {
    let mut s = ProcSample {
        at: Some(Instant::now()),
        ..ProcSample::default()
    };
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        s.rss_kb = status_kb(&status, "VmRSS:");
        s.hwm_kb = status_kb(&status, "VmHWM:");
    }
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 of the whole line.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            s.cpu_s = ticks / clock_ticks() as f64;
        }
    }
    if let Ok(io) = fs::read_to_string(format!("/proc/{pid}/io")) {
        s.write_bytes = status_num(&io, "write_bytes:");
    }
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(st) = fs::read_to_string(t.path().join("status")) {
                s.ctx_switches += status_num(&st, "voluntary_ctxt_switches:")
                    + status_num(&st, "nonvoluntary_ctxt_switches:");
            }
        }
    }
    s
}

fn status_kb(status: &str, key: &str) -> u64 {
    status_num(status, key)
}

fn status_num(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// USER_HZ; 100 on every Linux this runs on (no libc to ask `sysconf`).
fn clock_ticks() -> u64 {
    100
}

/// CPU used between two samples, as a percentage of one core.
pub fn cpu_pct(a: &ProcSample, b: &ProcSample) -> f64 {
    let wall = match (a.at, b.at) {
        (Some(x), Some(y)) => y.duration_since(x).as_secs_f64(),
        _ => 0.0,
    };
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (b.cpu_s - a.cpu_s) / wall
}
