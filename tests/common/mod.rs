//! Shared harness for the integration tests: starts the real `outpost` binary on port 0 with a
//! temporary database, captures its log, and hands out real and raw clients.
#![allow(dead_code)] // every test binary uses a different part of the harness

pub mod bridging;
pub mod certs;
pub mod clients;
pub mod console;
pub mod frames;
pub mod http;
pub mod proxy;
pub mod raw;
pub mod scripts;
pub mod sys;
pub mod upstream;
pub mod ws;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_outpost");

/// Log text that announces a listener; the port follows the address's colon.
const LISTENER_MARK: &str = "mqtt listener on 127.0.0.1:";
/// The same for the MQTT-over-WebSocket listener (ws or wss).
const WS_LISTENER_MARKS: [&str; 2] = [
    "MQTT over WebSocket on ws://127.0.0.1:",
    "MQTT over WebSocket on wss://127.0.0.1:",
];
/// Log text that announces the web console (started only by [`Broker::start_web_in`]),
/// over HTTP or HTTPS.
const WEB_MARKS: [&str; 2] = [
    "console on http://127.0.0.1:",
    "console on https://127.0.0.1:",
];

/// A running broker, killed when dropped. Its stderr and stdout are drained by threads into
/// `log` so the pipes never fill up and tests can assert on log lines.
pub struct Broker {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
    /// Whether `dir` holds an `outpost.toml` to pass with `--config` (again on restart).
    configured: bool,
    /// The web console's port; 0 when it is off (the default in tests).
    web_port: u16,
    /// The logs of earlier runs on the same database (see `restart`), printed on failure.
    earlier_logs: Vec<String>,
}

impl Broker {
    /// Starts the broker with the default configuration.
    pub fn start() -> Broker {
        Broker::spawn(None)
    }

    /// Starts the broker with `toml` written to a config file and passed with `--config`.
    pub fn with_config(toml: &str) -> Broker {
        Broker::spawn(Some(toml))
    }

    /// Starts the broker on a database prepared beforehand as `outpost.db` in `dir` (users and
    /// ACL rules created with the CLI, say), with `toml` as its config file if given.
    pub fn start_in(dir: tempfile::TempDir, config: Option<&str>) -> Broker {
        if let Some(toml) = config {
            std::fs::write(dir.path().join("outpost.toml"), toml).unwrap();
        }
        let (child, port, log) = launch(dir.path(), config.is_some(), false);
        Broker {
            child,
            port,
            log,
            dir,
            configured: config.is_some(),
            web_port: 0,
            earlier_logs: Vec::new(),
        }
    }

    /// [`Broker::start_in`] with `env` set for the broker process (an `LD_PRELOAD` shim,
    /// say); a [`Broker::restart`] runs without it.
    pub fn start_in_with_env(
        dir: tempfile::TempDir,
        config: Option<&str>,
        env: &[(&str, &Path)],
    ) -> Broker {
        if let Some(toml) = config {
            std::fs::write(dir.path().join("outpost.toml"), toml).unwrap();
        }
        let (child, port, log) = launch_with(dir.path(), config.is_some(), false, env);
        Broker {
            child,
            port,
            log,
            dir,
            configured: config.is_some(),
            web_port: 0,
            earlier_logs: Vec::new(),
        }
    }

    /// [`Broker::start_in`] with the web console on a free loopback port.
    pub fn start_web_in(dir: tempfile::TempDir, config: Option<&str>) -> Broker {
        if let Some(toml) = config {
            std::fs::write(dir.path().join("outpost.toml"), toml).unwrap();
        }
        let (child, port, log) = launch(dir.path(), config.is_some(), true);
        let web_port = log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| port_after_any(l, &WEB_MARKS))
            .expect("the web console's port");
        Broker {
            child,
            port,
            log,
            dir,
            configured: config.is_some(),
            web_port,
            earlier_logs: Vec::new(),
        }
    }

    /// The web console's port (only for [`Broker::start_web_in`]).
    pub fn web_port(&self) -> u16 {
        assert_ne!(self.web_port, 0, "the web console is off in this broker");
        self.web_port
    }

    fn spawn(config: Option<&str>) -> Broker {
        Broker::start_in(tempfile::tempdir().expect("temp dir"), config)
    }

    /// Kills the broker with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill9(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            let _ = self.child.kill(); // Child::kill sends SIGKILL on Unix
        }
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50)); // let the drain threads finish
    }

    /// Starts the broker again on the same database and config, killing it with SIGKILL first
    /// if it still runs. The new process listens on a new port; `log` starts afresh.
    pub fn restart(&mut self) {
        self.kill9();
        self.earlier_logs.push(format!(
            "--- outpost log of an earlier run (port {}) ---\n{}",
            self.port,
            self.log.lock().unwrap().join("\n")
        ));
        let web = self.web_port != 0;
        let (child, port, log) = launch(self.dir.path(), self.configured, web);
        if web {
            self.web_port = log
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| port_after_any(l, &WEB_MARKS))
                .expect("the web console's port");
        }
        self.child = child;
        self.port = port;
        self.log = log;
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the MQTT-over-WebSocket listener (every test broker has one on port 0).
    pub fn ws_port(&self) -> u16 {
        self.wait_for_log(Duration::from_secs(10), |l| {
            port_after_any(l, &WS_LISTENER_MARKS).is_some()
        })
        .and_then(|l| port_after_any(&l, &WS_LISTENER_MARKS))
        .expect("a websocket listener log line")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The broker's resident set size in bytes (`VmRSS` in `/proc/<pid>/status`), for tests
    /// that bound its memory under load. Linux only.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no VmRSS line in {path}:\n{status}"));
        kib * 1024
    }

    /// Context switches of each of the broker's threads, by thread: equal readings some
    /// time apart mean nothing woke the broker up in between. Linux only.
    pub fn context_switches(&self) -> Vec<(String, u64)> {
        let tasks = format!("/proc/{}/task", self.child.id());
        let mut threads: Vec<(String, u64)> = std::fs::read_dir(&tasks)
            .unwrap_or_else(|e| panic!("{tasks}: {e}"))
            .map(|task| {
                let dir = task.unwrap().path();
                let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                let status = std::fs::read_to_string(dir.join("status")).unwrap();
                let switches = status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum();
                (format!("{} {}", dir.display(), name.trim()), switches)
            })
            .collect();
        threads.sort();
        threads
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("outpost.db")
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the broker has logged the end of `id`'s connection.
    pub fn wait_disconnected(&self, id: &str) {
        let mark = format!("client {id} from");
        self.wait_for_log(clients::WAIT, |l| {
            l.contains(&mark) && l.contains("disconnected")
        })
        .unwrap_or_else(|| panic!("no disconnect log line for {id}"));
    }

    /// Waits until the broker has logged the end of `n` connections of `id` in all, for a test
    /// that reconnects under the same id and must not start the next connection before the
    /// broker has closed the previous one.
    pub fn wait_disconnects(&self, id: &str, n: usize) {
        let mark = format!("client {id} from");
        let ended = || {
            let log = self.log.lock().unwrap();
            let count = log
                .iter()
                .filter(|l| l.contains(&mark) && l.contains("disconnected"))
                .count();
            (count >= n).then_some(())
        };
        wait_until(clients::WAIT, ended)
            .unwrap_or_else(|| panic!("fewer than {n} disconnect log lines for {id}"));
    }

    /// Waits until a log line satisfies `pred`; returns it.
    pub fn wait_for_log(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_until(timeout, || {
            self.log.lock().unwrap().iter().find(|l| pred(l)).cloned()
        })
    }

    /// Sends `signal` and waits up to `timeout` for the process to exit; returns its status and
    /// how long the exit took, or None if it was still running.
    pub fn signal_and_wait(
        &mut self,
        signal: i32,
        timeout: Duration,
    ) -> Option<(ExitStatus, Duration)> {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
        let start = Instant::now();
        let status = wait_until(timeout, || self.child.try_wait().unwrap())?;
        std::thread::sleep(Duration::from_millis(50)); // let the drain threads finish
        Some((status, start.elapsed()))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for earlier in &self.earlier_logs {
                eprintln!("{earlier}");
            }
            eprintln!(
                "--- outpost log (port {}) ---\n{}\n--- end of log ---",
                self.port,
                self.log.lock().unwrap().join("\n")
            );
        }
    }
}

/// Runs the binary on `dir/outpost.db` (and `dir/outpost.toml` when `configured`) and waits
/// for its listener's port (and the web console's, when `web`).
fn launch(dir: &Path, configured: bool, web: bool) -> (Child, u16, Arc<Mutex<Vec<String>>>) {
    launch_with(dir, configured, web, &[])
}

/// [`launch`] with `env` added to the broker's environment.
fn launch_with(
    dir: &Path,
    configured: bool,
    web: bool,
    env: &[(&str, &Path)],
) -> (Child, u16, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(BIN);
    cmd.envs(env.iter().copied());
    cmd.arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--ws-listen")
        .arg("127.0.0.1:0")
        .arg("--db")
        .arg(dir.join("outpost.db"))
        // Parallel tests each run a broker; the web console's fixed default port would clash.
        .arg("--http")
        .arg(if web { "127.0.0.1:0" } else { "off" });
    if configured {
        cmd.arg("--config").arg(dir.join("outpost.toml"));
    }
    // Debug for CONNECT handling: tests wait for "checking the password" instead of sleeping.
    cmd.env("RUST_LOG", "info,outpost::broker::connect=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the outpost binary");
    let log = Arc::new(Mutex::new(Vec::new()));
    drain(child.stderr.take().unwrap(), log.clone());
    drain(child.stdout.take().unwrap(), log.clone());

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let port = log.lock().unwrap().iter().find_map(|l| parse_port(l));
        let web_ready = !web
            || log
                .lock()
                .unwrap()
                .iter()
                .any(|l| port_after_any(l, &WEB_MARKS).is_some());
        if let (Some(port), true) = (port, web_ready) {
            return (child, port, log);
        }
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(50)); // let the drain threads finish
            panic!(
                "outpost exited ({status}) before announcing a listener; log:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "no `{LISTENER_MARK}PORT` log line within 10 s; log:\n{}",
                log.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn drain(pipe: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => log.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
}

fn parse_port(line: &str) -> Option<u16> {
    port_after(line, LISTENER_MARK)
}

/// [`port_after`] the first of `marks` the line has.
fn port_after_any(line: &str, marks: &[&str]) -> Option<u16> {
    marks.iter().find_map(|mark| port_after(line, mark))
}

fn port_after(line: &str, mark: &str) -> Option<u16> {
    let rest = &line[line.find(mark)? + mark.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Creates a user in `dir/outpost.db` with `outpost user add` (reading `dir/outpost.toml`
/// when there is one, for its `bcrypt_cost`).
pub fn add_user(dir: &Path, name: &str, password: &str) {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    let config = dir.join("outpost.toml");
    if config.exists() {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .arg("--db")
        .arg(dir.join("outpost.db"))
        .args(["user", "add", name, "--password-stdin"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outpost user add");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "outpost user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` every 10 ms until it returns Some or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A unique-enough suffix so client ids and topics of parallel tests never collide in logs.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
