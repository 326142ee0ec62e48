//! Running Outpost as a service, day two: `check-config` (effective settings, or exit 2 with
//! the offending line), `backup` of a live database while a client keeps writing (consistent,
//! and a broker started on the copy has the data), SIGHUP (config and ACL rules read
//! again, clients kept, what needs a restart logged, a broken file changes nothing), and
//! log lines with syslog priorities when standard error is the journal.

mod common;

use common::clients::{QoS5, V5, WAIT};
use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::{Broker, BIN};
use outpost::store::{Store, SyncMode};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

fn outpost(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run outpost")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hangup(pid: u32) {
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP {pid}");
}

// ---------------------------------------------------------------------------------------------
// check-config

#[test]
fn check_config_prints_the_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outpost.toml");
    std::fs::write(&file, "listen = [\"0.0.0.0:1883\"]\nmax_inflight = 8\n").unwrap();
    let out = outpost(&["check-config", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.contains("\nlisten = [\"0.0.0.0:1883\"]\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\nmax_inflight = 8\n"), "{stdout}");
    assert!(stdout.contains("\nmax_connections = 10000\n"), "{stdout}");
    // What it prints is itself a config file that checks out.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &stdout).unwrap();
    let again = outpost(&["check-config", printed.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
}

#[test]
fn check_config_exits_2_with_the_offending_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outpost.toml");
    std::fs::write(&file, "max_inflight = 8\nmax_keepalive = 0\n").unwrap();
    let out = outpost(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        format!(
            "outpost: config {}: `max_keepalive` = 0 is out of range (1..=65535) at line 2\n  2 | max_keepalive = 0\n",
            file.display()
        )
    );
    let missing = dir.path().join("missing.toml");
    let out = outpost(&["check-config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("No such file or directory"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `outpost check-config` on `toml` written to a file in `dir`.
fn check_config(dir: &Path, toml: &str) -> Output {
    let file = dir.join("outpost.toml");
    std::fs::write(&file, toml).unwrap();
    outpost(&["check-config", file.to_str().unwrap()])
}

/// The TLS files are loaded as start-up loads them: a missing listener certificate or
/// bridge CA fails here, naming the file and its line, as it would stop the broker.
#[test]
fn check_config_loads_the_tls_files() {
    let certs = common::certs::Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let listener = |cert: &str| {
        format!(
            "tls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{cert}\"\ntls_key = \"{}\"\n",
            certs.arg("server.key")
        )
    };
    let bridge = |ca: &str| {
        format!(
            "[[bridge]]\nname = \"cloud\"\naddress = \"127.0.0.1:8883\"\ntls = true\n\
             ca_file = \"{ca}\"\n[[bridge.topic]]\nfilter = \"s/#\"\ndirection = \"out\"\n"
        )
    };

    let good = check_config(
        dir.path(),
        &format!(
            "{}{}",
            listener(&certs.arg("server.pem")),
            bridge(&certs.arg("ca.pem"))
        ),
    );
    assert!(good.status.success(), "{}", text(&good.stderr));

    let out = check_config(dir.path(), &listener(&missing.display().to_string()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    let first = format!(
        "outpost: config {}: TLS listener: {}: ",
        dir.path().join("outpost.toml").display(),
        missing.display()
    );
    assert!(stderr.starts_with(&first), "{stderr}");
    assert!(
        stderr.ends_with(&format!("\n  2 | tls_cert = \"{}\"\n", missing.display())),
        "{stderr}"
    );

    let out = check_config(dir.path(), &bridge(&missing.display().to_string()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(": bridge cloud: {}: ", missing.display())),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!("\n  5 | ca_file = \"{}\"\n", missing.display())),
        "{stderr}"
    );
}

/// Two listeners on the same address and port are refused by check-config (with the
/// line) and by start-up from the flags, rather than failing at bind.
#[test]
fn duplicate_listeners_are_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(
        dir.path(),
        "ws_listen = []\nlisten = [\"0.0.0.0:1883\", \"0.0.0.0:1883\"]\n",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        format!(
            "outpost: config {}: `listen` has 0.0.0.0:1883 twice: an address and port can be \
             listened on only once at line 2\n  2 | listen = [\"0.0.0.0:1883\", \"0.0.0.0:1883\"]\n",
            dir.path().join("outpost.toml").display()
        )
    );

    let port = common::upstream::free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let db = dir.path().join("outpost.db");
    let out = outpost(&[
        "--listen",
        &addr,
        "--ws-listen",
        &addr,
        "--http",
        "off",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "outpost: config: `ws_listen` has {addr}, which `listen` has too: an address and \
             port can be listened on only once\n"
        )
    );
}

/// A bridge password is set but never printed.
#[test]
fn check_config_does_not_print_the_bridge_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(
        dir.path(),
        "[[bridge]]\nname = \"cloud\"\naddress = \"127.0.0.1:1883\"\nusername = \"site1\"\n\
         password = \"s3cret-upstream\"\n[[bridge.topic]]\nfilter = \"s/#\"\ndirection = \"out\"\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cret"), "{stdout}");
    assert!(stdout.contains("\npassword = \"********\"\n"), "{stdout}");
    assert!(stdout.contains("\nusername = \"site1\"\n"), "{stdout}");
    assert!(
        stdout.contains("# Bridge passwords are set but shown as \"********\".\n"),
        "{stdout}"
    );
}

/// `connect_timeout` is 1 to 3600 seconds, and says so; a huge value is refused rather
/// than accepted (its deadline would overflow on the first connection).
#[test]
fn check_config_gives_connect_timeout_a_human_range() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["0", "9223372036854775807"] {
        let out = check_config(dir.path(), &format!("connect_timeout = {value}\n"));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        assert_eq!(
            text(&out.stderr),
            format!(
                "outpost: config {}: `connect_timeout` = {value} is out of range (1..=3600) at \
                 line 1\n  1 | connect_timeout = {value}\n",
                dir.path().join("outpost.toml").display()
            )
        );
    }
    let out = check_config(dir.path(), "connect_timeout = 3600\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// backup

/// The indexes `i` of the retained topics `bk/i` in the database at `path`.
fn retained_indexes(path: &Path) -> BTreeSet<usize> {
    let store = Store::open(path, SyncMode::Full).unwrap();
    store
        .load_retained()
        .unwrap()
        .iter()
        .filter_map(|m| m.topic.strip_prefix("bk/")?.parse().ok())
        .collect()
}

#[test]
fn backup_while_a_client_writes_is_consistent_and_restores() {
    let broker = Broker::start();
    let port = broker.port();
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = V5::connect(port, "backup-writer");
            // Bounded: the test stops it long before, this is only a backstop.
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                client.publish(&format!("bk/{i}"), QoS5::AtLeastOnce, true, i.to_string());
                acked.store(i + 1, Ordering::Relaxed);
            }
            client.disconnect();
        })
    };
    common::wait_until(WAIT, || (acked.load(Ordering::Relaxed) >= 50).then_some(()))
        .expect("the writer got 50 PUBACKs");

    let dir = tempfile::tempdir().unwrap();
    let db = broker.db_path();
    let mut copies = Vec::new();
    for n in 0..3 {
        let copy = dir.path().join(format!("copy-{n}.db"));
        let before = acked.load(Ordering::Relaxed);
        let out = outpost(&[
            "--db",
            db.to_str().unwrap(),
            "backup",
            copy.to_str().unwrap(),
        ]);
        let after = acked.load(Ordering::Relaxed);
        assert!(out.status.success(), "backup: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with(&format!(
                "backed up {} to {}",
                db.display(),
                copy.display()
            )),
            "{}",
            text(&out.stdout)
        );
        // One committed state: retained topics bk/0..k with nothing missing, holding at
        // least every message acknowledged before the copy began, and at most the one
        // in flight after it ended (the writer waits for each PUBACK).
        let indexes = retained_indexes(&copy);
        let k = indexes.len();
        assert_eq!(indexes, (0..k).collect(), "copy {n} is not a prefix");
        assert!(
            before <= k && k <= after + 1,
            "copy {n}: {before} <= {k} <= {after} + 1"
        );
        copies.push((copy, k));
    }
    assert!(
        acked.load(Ordering::Relaxed) > copies[0].1,
        "the writer kept going"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    drop(broker);

    // Restore: a broker started on the copy serves its retained messages.
    let (copy, k) = copies.pop().unwrap();
    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored_dir.path().join("outpost.db")).unwrap();
    let restored = Broker::start_in(restored_dir, None);
    let reader = V5::connect(restored.port(), "backup-reader");
    reader.subscribe("bk/#", QoS5::AtLeastOnce);
    let mut got = 0;
    while reader.recv_publish(QUIET).is_some() {
        got += 1;
    }
    assert_eq!(got, k, "retained messages served from the restored copy");
}

#[test]
fn backup_of_a_missing_database_fails_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let copy = dir.path().join("copy.db");
    let out = outpost(&[
        "--db",
        db.to_str().unwrap(),
        "backup",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("outpost: cannot open database"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!db.exists() && !copy.exists());
}

// ---------------------------------------------------------------------------------------------
// SIGHUP

/// Publishes QoS 1 on a raw MQTT 5 connection; returns the PUBACK reason code.
fn puback_reason(raw: &mut Raw, topic: &str, packet_id: u16) -> u8 {
    raw.send(&frames::publish(Version::V5, topic, 1, packet_id, b"x"));
    let ack = raw.expect_frame(frames::PUBACK, WAIT);
    assert_eq!(ack.packet_id(), packet_id);
    ack.ack_reason()
}

fn reload(broker: &Broker, done_before: usize) {
    hangup(broker.pid());
    common::wait_until(WAIT, || {
        let done = broker
            .log()
            .iter()
            .filter(|l| l.contains("reload done"))
            .count();
        (done > done_before).then_some(())
    })
    .unwrap_or_else(|| panic!("no `reload done` line:\n{}", broker.log().join("\n")));
}

#[test]
fn sighup_applies_config_and_acl_changes_to_connected_clients() {
    let broker = Broker::with_config("max_packet_size = 1048576\n");
    let port = broker.port();
    let watcher = V5::connect(port, "hup-watcher");
    watcher.subscribe("r/#", QoS5::AtLeastOnce);
    let (mut publisher, _) = Raw::connect(port, &Connect::new(Version::V5, "hup-publisher"));
    assert_eq!(puback_reason(&mut publisher, "r/secret", 1), 0);
    assert!(watcher.recv_publish(WAIT).is_some());

    // The config file: a deny list (applies at once) and a CONNACK limit (needs a restart).
    std::fs::write(
        broker.dir().join("outpost.toml"),
        "max_packet_size = 2048\ndeny_publish = [\"r/secret\"]\n",
    )
    .unwrap();
    reload(&broker, 0);
    let log = broker.log().join("\n");
    assert!(log.contains("reload: applied deny_publish"), "{log}");
    assert!(
        log.contains("reload: max_packet_size changed but need a restart"),
        "{log}"
    );
    assert_eq!(puback_reason(&mut publisher, "r/secret", 2), 0x87);
    assert_eq!(puback_reason(&mut publisher, "r/open", 3), 0);
    let p = watcher.recv_publish(WAIT).expect("r/open delivered");
    assert_eq!(p.topic, "r/open");
    assert!(
        watcher.recv_publish(QUIET).is_none(),
        "r/secret was not delivered"
    );

    // ACL rules added with the CLI while the broker runs reach connected clients on SIGHUP.
    let db = broker.db_path();
    for rule in [["r/#", "readwrite"], ["r/blocked/#", "deny"]] {
        let out = outpost(&[
            "--db",
            db.to_str().unwrap(),
            "acl",
            "add",
            "--pattern",
            rule[0],
            rule[1],
        ]);
        assert!(out.status.success(), "acl add: {}", text(&out.stderr));
    }
    assert_eq!(
        puback_reason(&mut publisher, "r/blocked/x", 4),
        0,
        "not yet reloaded"
    );
    assert!(watcher.recv_publish(WAIT).is_some());
    reload(&broker, 1);
    assert!(
        broker
            .log()
            .iter()
            .any(|l| l.contains("reload done: 2 ACL rules")),
        "{}",
        broker.log().join("\n")
    );
    assert_eq!(puback_reason(&mut publisher, "r/blocked/x", 5), 0x87);
    assert_eq!(
        puback_reason(&mut publisher, "other/x", 6),
        0x87,
        "not granted"
    );
    assert_eq!(puback_reason(&mut publisher, "r/open", 7), 0);

    // A broken file changes nothing: the deny list stays, clients stay.
    std::fs::write(broker.dir().join("outpost.toml"), "maximum_qos = 9\n").unwrap();
    reload(&broker, 2);
    let log = broker.log().join("\n");
    assert!(
        log.contains("out of range (0..=2); keeping every running setting"),
        "{log}"
    );
    assert_eq!(puback_reason(&mut publisher, "r/secret", 8), 0x87);
    assert!(watcher.recv_publish(WAIT).is_some(), "r/open from before");
    assert!(watcher.recv_publish(QUIET).is_none());
    assert!(
        publisher.is_quiet(QUIET),
        "the publisher is still connected"
    );
}

/// A broker on `dir/outpost.toml` started without `RUST_LOG`, so the config's `log_level`
/// decides what is logged; its log lines are collected from standard error.
struct Unfiltered {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Unfiltered {
    fn start(dir: &Path) -> (Unfiltered, u16) {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(dir.join("outpost.toml"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--ws-listen",
                "off",
                "--http",
                "off",
                "--db",
            ])
            .arg(dir.join("outpost.db"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn outpost");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let broker = Unfiltered { child, log };
        let port = broker
            .wait_for("mqtt listener on 127.0.0.1:")
            .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
            .expect("listener line");
        (broker, port)
    }

    fn wait_for(&self, needle: &str) -> Option<String> {
        common::wait_until(WAIT, || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        })
    }

    fn has(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Unfiltered {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_changes_the_log_level() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("outpost.toml");
    std::fs::write(&config, "log_level = \"info\"\n").unwrap();
    let (broker, port) = Unfiltered::start(dir.path());

    std::fs::write(&config, "log_level = \"warn\"\n").unwrap();
    hangup(broker.child.id());
    // Logged just before the quieter level applies.
    broker
        .wait_for("reload: applied log_level")
        .expect("reloaded to warn");
    V5::connect(port, "quiet-client").disconnect();

    std::fs::write(&config, "log_level = \"info\"\n").unwrap();
    hangup(broker.child.id());
    // Logged once the louder level applies.
    broker.wait_for("reload done").expect("back at info");
    V5::connect(port, "loud-client").disconnect();
    broker
        .wait_for("client loud-client from")
        .expect("info lines are back");
    assert!(
        !broker.has("client quiet-client from"),
        "logged at warn level:\n{}",
        broker.log.lock().unwrap().join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The journal

/// Starts the broker with standard error appended to `file` and `JOURNAL_STREAM` set to
/// `stream`; returns the first line that names the listener.
fn listener_line(dir: &Path, file: &Path, stream: &str) -> String {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ws-listen",
            "off",
            "--http",
            "off",
            "--db",
        ])
        .arg(dir.join("outpost.db"))
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", stream)
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn outpost");
    let line = common::wait_until(WAIT, || {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines()
            .find(|l| l.contains("listener on 127.0.0.1:"))
            .map(str::to_string)
    });
    let _ = child.kill();
    let _ = child.wait();
    line.expect("a listener line")
}

#[test]
fn lines_carry_syslog_priorities_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    // systemd names the stream it connected by device and inode; here that is a file.
    let file = dir.path().join("journal");
    std::fs::File::create(&file).unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let journal = listener_line(dir.path(), &file, &stream);
    assert!(
        journal.starts_with("<6>outpost::broker::event_loop: mqtt listener on 127.0.0.1:"),
        "{journal}"
    );
    // A stream variable inherited by a process whose stderr goes elsewhere is ignored.
    let plain = listener_line(dir.path(), &dir.path().join("elsewhere"), &stream);
    assert!(plain.starts_with('['), "{plain}");
    assert!(plain.contains(" INFO "), "{plain}");
}
