//! The binary's contract: --help, --version, start-up errors (exit 2, one line, no panic),
//! connect/disconnect log lines, and graceful shutdown on SIGTERM/SIGINT.

mod common;

use common::clients::{QoS5, V4, V5, WAIT};
use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::{Broker, BIN};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs the binary to completion with a clean environment for logging.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run outpost")
}

/// A start-up failure: exit code 2, exactly one non-empty line on stderr, no panic.
fn assert_startup_error(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit status {:?}, stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what}: panicked:\n{stderr}"
    );
    stderr
}

#[test]
fn help_prints_usage_and_exits_0() {
    let out = run(&["--help"]);
    assert!(out.status.success(), "--help exit status {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.to_lowercase().contains("usage"),
        "no usage in:\n{stdout}"
    );
    for flag in ["--listen", "--db", "--config"] {
        assert!(
            stdout.contains(flag),
            "--help does not mention {flag}:\n{stdout}"
        );
    }
}

#[test]
fn version_prints_name_and_version_and_exits_0() {
    let out = run(&["--version"]);
    assert!(
        out.status.success(),
        "--version exit status {:?}",
        out.status
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("outpost {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_option_exits_2_with_one_line() {
    let out = run(&["--no-such-option"]);
    let stderr = assert_startup_error(&out, "unknown option");
    assert!(
        stderr.contains("--no-such-option"),
        "the message should name the option: {stderr}"
    );
}

/// Starts the binary listening on `listen` (HTTP off) with a fresh database and, if given,
/// `--config config`; runs it to completion.
fn run_listener(listen: &str, config: Option<&Path>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outpost.db");
    let mut args = vec![
        "--listen",
        listen,
        "--ws-listen",
        "off",
        "--http",
        "off",
        "--db",
        db.to_str().unwrap(),
    ];
    if let Some(config) = config {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    run(&args)
}

/// Writes `toml` to a config file and runs the binary with it on a free port.
fn run_with_config(toml: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, toml).unwrap();
    run_listener("127.0.0.1:0", Some(&config))
}

#[test]
fn malformed_config_file_exits_2_with_one_line() {
    let out = run_with_config("max_keepalive = [not toml\n");
    assert_startup_error(&out, "malformed config");
}

#[test]
fn config_with_wrong_type_exits_2_with_one_line() {
    let out = run_with_config("connect_timeout = \"soon\"\n");
    let stderr = assert_startup_error(&out, "wrong type in config");
    assert!(
        stderr.contains("connect_timeout"),
        "should name the option: {stderr}"
    );
}

#[test]
fn missing_config_file_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = run_listener("127.0.0.1:0", Some(&missing));
    assert_startup_error(&out, "missing config file");
}

#[test]
fn busy_port_exits_2_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_listener(&addr, None);
    let stderr = assert_startup_error(&out, "busy port");
    assert!(stderr.contains(&addr), "should name the address: {stderr}");
}

#[test]
fn startup_logs_the_listener_with_its_real_port() {
    let broker = Broker::start();
    let line = broker
        .wait_for_log(WAIT, |l| l.contains("mqtt listener on 127.0.0.1:"))
        .unwrap();
    assert!(line.contains(&format!("127.0.0.1:{}", broker.port())));
    assert!(
        !line.contains("127.0.0.1:0 "),
        "port 0 must be resolved: {line}"
    );
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "port-check"));
    raw.send(&frames::pingreq());
    raw.expect_frame(frames::PINGRESP, WAIT);
}

#[test]
fn startup_creates_the_database_file() {
    let broker = Broker::start();
    assert!(
        common::wait_until(Duration::from_secs(2), || broker
            .db_path()
            .exists()
            .then_some(()))
        .is_some(),
        "no database at {:?} after start-up",
        broker.db_path()
    );
}

#[test]
fn connect_and_disconnect_are_logged_with_client_id_address_and_reason() {
    let broker = Broker::start();
    let (mut raw, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "log-me"));
    let connected = broker
        .wait_for_log(WAIT, |l| l.contains("log-me") && l.contains("127.0.0.1:"))
        .expect("a connect log line with client id and address");
    assert!(
        !connected.to_lowercase().contains("disconnect"),
        "{connected}"
    );

    raw.send(&frames::disconnect());
    let _ = raw.frames_until_closed(Duration::from_millis(500));
    let disconnected = broker
        .wait_for_log(WAIT, |l| {
            l.contains("log-me") && l.to_lowercase().contains("disconnect")
        })
        .expect("a disconnect log line with the client id");

    let (lost, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "lose-me"));
    lost.drop_socket();
    let dropped = broker
        .wait_for_log(WAIT, |l| {
            l.contains("lose-me") && l.to_lowercase().contains("disconnect")
        })
        .expect("a disconnect log line for a dropped connection");

    // The reason is given: a DISCONNECT and a dropped socket are told apart.
    let reason = |line: &str| {
        let lower = line.to_lowercase();
        lower[lower.find("disconnect").unwrap()..].to_string()
    };
    assert_ne!(
        reason(&disconnected),
        reason(&dropped),
        "the disconnect lines should state the reason:\n{disconnected}\n{dropped}"
    );
}

/// Sends `signal`: MQTT 5 clients get DISCONNECT 0x8B, 3.1.1 clients are closed, the process
/// exits 0 within about a second and logs why.
fn graceful_stop(signal: i32, name: &str) {
    let mut broker = Broker::start();
    let (mut raw5, _) = Raw::connect(broker.port(), &Connect::new(Version::V5, "stop-raw5"));
    let (mut raw4, _) = Raw::connect(broker.port(), &Connect::new(Version::V311, "stop-raw4"));
    let real5 = V5::connect(broker.port(), "stop-rumqttc5");
    let real4 = V4::connect(broker.port(), "stop-rumqttc4");
    real5.subscribe("stop/t", QoS5::AtLeastOnce);

    let (status, took) = broker
        .signal_and_wait(signal, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("outpost still running 3 s after {name}"));
    assert!(status.success(), "exit status after {name}: {status:?}");
    assert!(
        took <= Duration::from_millis(1500),
        "exit took {took:?} after {name}"
    );

    raw5.expect_disconnect_and_close(0x8B);
    let frames = raw4.expect_closed(Duration::from_secs(1));
    assert!(
        frames.is_empty(),
        "3.1.1 has no server DISCONNECT, got {frames:?}"
    );
    real5.expect_closed(Duration::from_secs(1));
    real4.expect_closed(Duration::from_secs(1));

    let log = broker.log();
    assert!(
        log.iter().any(|l| l.contains(name)),
        "the log should say the broker stops because of {name}:\n{}",
        log.join("\n")
    );
}

#[test]
fn sigterm_stops_gracefully() {
    graceful_stop(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_gracefully() {
    graceful_stop(libc::SIGINT, "SIGINT");
}
