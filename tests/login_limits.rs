//! Password guessing is bounded per address and per account, atomically, on the web
//! console (curl) and MQTT CONNECT (raw MQTT 5 frames): parallel guesses count before bcrypt
//! runs, the wait grows, and the account's owner still gets in from another address
//! (127.0.0.2, which Linux routes over loopback like 127.0.0.1; the source address is
//! chosen with `curl --interface` and tests/python/from_address.py). Registration is
//! limited per address, a taken name costs the same as a fresh one, names are unique
//! without regard to case, and a stranger cannot lock a user out of password reset.

mod common;

use common::clients::WAIT;
use common::frames::{self, Version};
use common::raw::Raw;
use common::{add_user, Broker};
use std::process::Command;

const CONFIG: &str = "bcrypt_cost = 4\nregistrations_per_hour = 3\n";
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// CONNACK reason codes.
const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;

/// A broker with the console on, and `ana` (password `ana-password-1`) made beforehand.
fn broker_with_ana() -> Broker {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outpost.toml"), CONFIG).unwrap();
    add_user(dir.path(), "ana", "ana-password-1");
    Broker::start_web_in(dir, Some(CONFIG))
}

/// POSTs `body` as JSON to `path` from `source`; returns the status and `Retry-After`.
fn post_from(port: u16, source: &str, path: &str, body: &str) -> (u16, Option<u64>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "20"])
        .args(["--interface", source])
        .args(["-H", "Content-Type: application/json", "--data", body])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status from {path}: {head:?}"));
    let retry_after = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(str::to_owned)
        })
        .map(|v| v.trim().parse().unwrap());
    (status, retry_after)
}

fn login_from(port: u16, source: &str, user: &str, password: &str) -> (u16, Option<u64>) {
    let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
    post_from(port, source, "/api/login", &body)
}

fn register_from(port: u16, source: &str, user: &str) -> u16 {
    let body = format!(r#"{{"username":"{user}","password":"long-enough-1"}}"#);
    post_from(port, source, "/api/register", &body).0
}

/// Runs tests/python/from_address.py; returns its output lines.
fn from_address(args: &[&str]) -> Vec<String> {
    let out = Command::new("python3")
        .arg(format!("{SCRIPTS}/from_address.py"))
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "from_address.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Opens `n` MQTT 5 connections from 127.0.0.1 and sends each a CONNECT as `user` before
/// reading any CONNACK; returns the CONNACK codes.
fn parallel_connects(port: u16, user: &str, password: &str, n: usize) -> Vec<u8> {
    let mut raws: Vec<Raw> = (0..n)
        .map(|i| {
            let mut raw = Raw::open(port, Version::V5);
            let id = format!("guess-{i}");
            raw.send(
                &frames::Connect::new(Version::V5, &id)
                    .credentials(user, password.as_bytes())
                    .encode(),
            );
            raw
        })
        .collect();
    raws.iter_mut()
        .map(|raw| raw.expect_frame(frames::CONNACK, WAIT).connack().1)
        .collect()
}

fn count(codes: &[u8], code: u8) -> usize {
    codes.iter().filter(|c| **c == code).count()
}

#[test]
fn parallel_web_logins_are_counted_and_the_owner_still_gets_in() {
    let broker = broker_with_ana();
    let port = broker.web_port();
    // Eight guesses at once: five are checked, three refused before any bcrypt.
    let guesses: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || login_from(port, "127.0.0.1", "ana", &format!("guess-{i}")))
        })
        .collect();
    let answers: Vec<_> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{answers:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{answers:?}"
    );
    assert!(answers
        .iter()
        .filter(|a| a.0 == 429)
        .all(|a| a.1.is_some_and(|s| (1..=60).contains(&s))));
    // Even the right password waits its turn from the guessing address…
    assert_eq!(
        login_from(port, "127.0.0.1", "ana", "ana-password-1").0,
        429
    );
    // …but the owner, from another address, logs in at once, in any case.
    assert_eq!(
        login_from(port, "127.0.0.2", "ANA", "ana-password-1").0,
        200
    );
    assert!(broker
        .log()
        .iter()
        .any(|l| l.contains("failed login for \"ana\" from 127.0.0.1: too many failed logins")));
}

#[test]
fn the_wait_between_web_guesses_grows() {
    let broker = broker_with_ana();
    let port = broker.web_port();
    for i in 0..5 {
        assert_eq!(
            login_from(port, "127.0.0.1", "ana", &format!("no-{i}")).0,
            401
        );
    }
    let mut waits = Vec::new();
    for i in 0..3 {
        let (status, wait) = login_from(port, "127.0.0.1", "ana", "too-soon");
        assert_eq!(status, 429);
        let wait = wait.expect("Retry-After");
        waits.push(wait);
        std::thread::sleep(std::time::Duration::from_millis(wait * 1000 + 100));
        assert_eq!(
            login_from(port, "127.0.0.1", "ana", &format!("late-{i}")).0,
            401
        );
    }
    assert_eq!(waits, [1, 2, 4]);
}

#[test]
fn parallel_mqtt_connects_are_counted_and_the_owner_still_gets_in() {
    let broker = broker_with_ana();
    let port = broker.port();
    let codes = parallel_connects(port, "ana", "wrong-password", 8);
    assert_eq!(count(&codes, BAD_USER_NAME_OR_PASSWORD), 5, "{codes:?}");
    assert_eq!(count(&codes, CONNECTION_RATE_EXCEEDED), 3, "{codes:?}");
    // Other accounts from the guessing address wait too (per address).
    let codes = parallel_connects(port, "bob", "whatever", 1);
    assert_eq!(codes, [CONNECTION_RATE_EXCEEDED]);
    // The owner, from 127.0.0.2, gets in at once, under any case of the name.
    let out = from_address(&[
        "127.0.0.2",
        &port.to_string(),
        "owner",
        "Ana",
        "ana-password-1",
    ]);
    assert_eq!(out, ["connack 0"]);
    // Two more failures, each after its wait, make the next wait 4 s: time enough for an
    // MQTT 3.1.1 try, which hears "server unavailable" (3) for a try made too early.
    for wait_ms in [1100, 2100] {
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let codes = parallel_connects(port, "ana", "wrong-password", 1);
        assert_eq!(codes, [BAD_USER_NAME_OR_PASSWORD]);
    }
    let out = from_address(&[
        "127.0.0.1",
        &port.to_string(),
        "again",
        "ana",
        "ana-password-1",
    ]);
    assert_eq!(out, ["connack 3"]);
}

#[test]
fn registration_is_limited_per_address_and_taken_names_cost_the_same() {
    let broker = broker_with_ana();
    let port = broker.web_port();
    // A taken name, in another case, is refused after the same work and counts the same.
    assert_eq!(register_from(port, "127.0.0.1", "ANA"), 409);
    assert_eq!(register_from(port, "127.0.0.1", "bob"), 201);
    assert_eq!(register_from(port, "127.0.0.1", "Bob"), 409);
    // Three tries an hour from this address: the fourth is refused, fresh name or not.
    let (status, retry) = post_from(
        port,
        "127.0.0.1",
        "/api/register",
        r#"{"username":"carol","password":"long-enough-1"}"#,
    );
    assert_eq!((status, retry), (429, Some(3600)));
    assert_eq!(register_from(port, "127.0.0.1", "dave"), 429);
    // Another address registers.
    assert_eq!(register_from(port, "127.0.0.2", "carol"), 201);
    // The MQTT chat service shares the rule (its own count): ROOT beside root is refused.
    let mqtt = broker.port().to_string();
    let register = |id: &str, payload: &str| {
        from_address(&["127.0.0.3", &mqtt, id, "-", "-", "chat/x/register", payload])
    };
    assert_eq!(
        register("k1", "CAROL long-enough-2")[1],
        "reply name_taken the user name is taken"
    );
    assert_eq!(
        register("k2", "erin long-enough-2")[1],
        "reply ok registered erin"
    );
    assert_eq!(
        register("k3", "ERIN long-enough-2")[1],
        "reply name_taken the user name is taken"
    );
    assert!(register("k4", "fred long-enough-2")[1].starts_with("reply rate_limited "));
}

#[test]
fn a_stranger_cannot_lock_the_owner_out_of_password_reset() {
    let broker = broker_with_ana();
    let mqtt = broker.port().to_string();
    // ana sets her question, logged in over MQTT.
    let setq = from_address(&[
        "127.0.0.1",
        &mqtt,
        "ana-phone",
        "ana",
        "ana-password-1",
        "chat/x/setq",
        "Pet?\nrex",
    ]);
    assert_eq!(setq, ["connack 0", "reply ok question set"]);
    // A stranger sends six guesses at her answer at once from 127.0.0.4: five are checked,
    // the sixth refused (tries still running count).
    let guesses: Vec<String> = (0..6)
        .map(|i| format!("ana stolen-password\nguess{i}"))
        .collect();
    let mut args = vec!["127.0.0.4", &mqtt, "stranger", "-", "-", "chat/x/reset"];
    args.extend(guesses.iter().map(String::as_str));
    let out = from_address(&args);
    let answers: Vec<&str> = out[1..]
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            "reset_failed",
            "reset_failed",
            "reset_failed",
            "reset_failed",
            "reset_failed",
            "rate_limited"
        ]
    );
    // ana, from her own address, resets at once and logs in with the new password.
    let reset = from_address(&[
        "127.0.0.5",
        &mqtt,
        "ana-laptop",
        "-",
        "-",
        "chat/x/reset",
        "ANA new-password-1\nRex",
    ]);
    assert_eq!(reset[1], "reply ok password changed");
    let login = from_address(&["127.0.0.5", &mqtt, "ana-laptop", "ana", "new-password-1"]);
    assert_eq!(login, ["connack 0"]);
}

#[test]
fn user_add_refuses_a_name_that_differs_only_in_case() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outpost.toml"), CONFIG).unwrap();
    add_user(dir.path(), "root", "root-password-1");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("--config")
        .arg(dir.path().join("outpost.toml"))
        .arg("--db")
        .arg(dir.path().join("outpost.db"))
        .args(["user", "add", "ROOT", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"root\" already exists"), "{err}");
}

#[test]
fn an_older_database_with_names_differing_in_case_keeps_working_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("outpost.db");
    let config = format!("{CONFIG}db = {:?}\n", db.display().to_string());
    std::fs::write(dir.path().join("outpost.toml"), &config).unwrap();
    add_user(dir.path(), "ana", "ana-password-1");
    add_user(dir.path(), "zed", "zed-password-1");
    // As a database made before names were compared without case could hold them.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE users SET name = 'Ana' WHERE name = 'zed'", [])
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("check-config")
        .arg(dir.path().join("outpost.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("user names that differ only in case") && report.contains("#   ana, Ana"),
        "{report}"
    );

    let broker = Broker::start_web_in(dir, Some(&config));
    let mqtt = broker.port().to_string();
    // Each logs in under its exact name; another spelling finds the oldest.
    for (user, password) in [
        ("ana", "ana-password-1"),
        ("Ana", "zed-password-1"),
        ("ANA", "ana-password-1"),
    ] {
        let out = from_address(&["127.0.0.1", &mqtt, &format!("c-{user}"), user, password]);
        assert_eq!(out, ["connack 0"], "{user}");
    }
    // A logged-in session carries the stored name: ANA's replies come on chat/u/ana,
    // which only a session of "ana" may read.
    let rooms = from_address(&[
        "127.0.0.1",
        &mqtt,
        "c-rooms",
        "ANA=ana",
        "ana-password-1",
        "chat/x/rooms",
        "",
    ]);
    assert!(rooms[1].starts_with("reply ok "), "{rooms:?}");
    // No third spelling can be added.
    assert_eq!(register_from(broker.web_port(), "127.0.0.1", "aNA"), 409);
}
