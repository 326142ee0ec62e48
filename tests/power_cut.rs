//! A simulated power cut at `sync = "full"`: the broker runs with the fsync shim
//! (`benches/loadgen/shim/flushdelay.c`), which copies the database and its WAL each time a
//! flush of them returns, so the copies hold exactly what a power cut would leave (nothing
//! written since the last flush survives). A broker started on the copies after a kill -9
//! must deliver every message the publisher had a PUBACK for.

mod common;

use common::clients::WAIT;
use common::frames::{self, Connect, Version};
use common::raw::{Next, Raw};
use common::Broker;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Messages the publisher sends, one at a time, each waiting for its PUBACK.
const MESSAGES: u16 = 300;

/// Builds the fsync shim into `dir` with the system C compiler (as `make bench` does).
fn build_shim(dir: &Path) -> PathBuf {
    let so = dir.join("flushdelay.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/loadgen/shim/flushdelay.c");
    let status = Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("run cc to build the fsync shim");
    assert!(status.success(), "cc failed to build {}", source.display());
    so
}

#[test]
fn a_power_cut_at_sync_full_loses_no_acknowledged_message() {
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = build_shim(shim_dir.path());
    let flushed = tempfile::tempdir().unwrap();
    let mut broker = Broker::start_in_with_env(
        tempfile::tempdir().unwrap(),
        Some("sync = \"full\"\n"),
        &[
            ("LD_PRELOAD", &shim),
            ("FLUSH_SNAPSHOT_DIR", flushed.path()),
        ],
    );

    // A persistent subscriber, offline during the traffic: every message is queued for it.
    let away = Connect::new(Version::V311, "cut-away").clean(false);
    let (mut sub, _) = Raw::connect(broker.port(), &away);
    sub.send(&frames::subscribe(Version::V311, 1, "cut/#", 1));
    sub.expect_frame(frames::SUBACK, WAIT);
    sub.send(&frames::disconnect());
    broker.wait_disconnected("cut-away");

    let (mut publisher, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "cut-pub"));
    let mut acked = Vec::new();
    for id in 1..=MESSAGES {
        let payload = format!("m{id:04}");
        publisher.send(&frames::publish(
            Version::V311,
            "cut/t",
            1,
            id,
            payload.as_bytes(),
        ));
        let ack = publisher.expect_frame(frames::PUBACK, WAIT);
        assert_eq!(ack.packet_id(), id);
        acked.push(payload);
    }
    // The power goes: only what was flushed is left.
    broker.kill9();

    let after_cut = tempfile::tempdir().unwrap();
    for name in ["outpost.db", "outpost.db-wal"] {
        let copy = flushed.path().join(name);
        if copy.exists() {
            std::fs::copy(&copy, after_cut.path().join(name)).unwrap();
        }
    }
    assert!(
        after_cut.path().join("outpost.db").exists(),
        "the database file was never flushed"
    );
    let broker = Broker::start_in(after_cut, None);
    let (mut sub, present) = Raw::connect(broker.port(), &away);
    assert!(
        present,
        "the persistent session did not survive the power cut"
    );
    let mut missing: HashSet<String> = acked.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next(left) {
            Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (_, id, payload) = f.publish(Version::V311);
                sub.send(&frames::ack(frames::PUBACK, id.unwrap()));
                missing.remove(&String::from_utf8(payload).unwrap());
            }
            Next::Frame(_) => {}
            Next::Closed | Next::Timeout => break,
        }
    }
    let mut missing: Vec<String> = missing.into_iter().collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost by the power cut, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}
