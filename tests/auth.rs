//! Authentication and authorisation: the `user`/`acl` CLI, password checks on CONNECT (codes,
//! the bcrypt worker, the login throttle, password changes), the anonymous policy, and ACL
//! rules from the database and the config file applied to SUBSCRIBE, PUBLISH and delivery.
//!
//! Not covered: the default refusal of anonymous clients on non-loopback listeners, because the
//! tests only have loopback addresses to listen and connect on.

mod common;

use common::clients::{QoS5, V4, V5, WAIT};
use common::frames::{self, sub_options, Bytes, Version};
use common::raw::{Next, Raw};
use common::{Broker, BIN};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a message that is not coming to have arrived on loopback.
const QUIET: Duration = Duration::from_millis(400);

/// A cheap work factor so that creating users and checking passwords stay fast in debug builds.
const FAST: &str = "bcrypt_cost = 4\n";

// ---------------------------------------------------------------------------------------------
// The CLI

/// Runs `outpost [--config dir/outpost.toml] --db dir/outpost.db ARGS` with `stdin` as input;
/// the config file is passed when it exists.
fn outpost(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    let config = dir.join("outpost.toml");
    if config.exists() {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .arg("--db")
        .arg(dir.join("outpost.db"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outpost");
    // A command that never reads its input may already be gone: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Runs a CLI command that must succeed; returns its standard output.
fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = outpost(dir, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "outpost {args:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs a CLI command that must fail with `code` and one line on stderr; returns that line.
fn fails(dir: &Path, args: &[&str], stdin: &str, code: i32) -> String {
    let out = outpost(dir, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "outpost {args:?}: {:?}, stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "outpost {args:?}: one line, got:\n{stderr}");
    assert!(out.stdout.is_empty(), "outpost {args:?}: output on stdout");
    lines[0].to_string()
}

fn add_user(dir: &Path, name: &str, password: &str) {
    ok(
        dir,
        &["user", "add", name, "--password-stdin"],
        &format!("{password}\n"),
    );
}

/// A temporary directory with `config` written as `outpost.toml` and the given users.
fn prepare(config: &str, users: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outpost.toml"), config).unwrap();
    for (name, password) in users {
        add_user(dir.path(), name, password);
    }
    dir
}

#[test]
fn user_commands_print_what_they_did_and_exit_0_1_or_2() {
    let dir = prepare(FAST, &[]);
    let dir = dir.path();
    assert_eq!(
        ok(dir, &["user", "add", "alice", "--password-stdin"], "pw1\n"),
        "added user alice\n"
    );
    assert_eq!(
        ok(
            dir,
            &["user", "add", "bob", "--admin", "--password-stdin"],
            "pw\n"
        ),
        "added admin bob\n"
    );
    let line = fails(dir, &["user", "add", "alice", "--password-stdin"], "x\n", 1);
    assert!(line.contains("already exists"), "{line}");
    let line = fails(dir, &["user", "add", "carol", "--password-stdin"], "\n", 1);
    assert!(line.contains("empty"), "{line}");

    let list = ok(dir, &["user", "list"], "");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        rows,
        [vec!["alice", "no"], vec!["bob", "yes"]],
        "user list:\n{list}"
    );
    assert!(list.starts_with("NAME"), "header first:\n{list}");

    assert_eq!(
        ok(
            dir,
            &["user", "passwd", "alice", "--password-stdin"],
            "pw2\n"
        ),
        "changed the password of alice\n"
    );
    let line = fails(
        dir,
        &["user", "passwd", "ghost", "--password-stdin"],
        "x\n",
        1,
    );
    assert!(line.contains("ghost"), "{line}");

    assert_eq!(ok(dir, &["user", "del", "bob"], ""), "deleted user bob\n");
    fails(dir, &["user", "del", "bob"], "", 1);
    let list = ok(dir, &["user", "list"], "");
    assert!(!list.contains("bob"), "bob still listed:\n{list}");

    for bad in [
        &["user"][..],
        &["user", "add"],
        &["user", "add", "a", "b"],
        &["user", "add", "a", "--root"],
        &["user", "del"],
        &["user", "list", "extra"],
        &["user", "frob"],
    ] {
        let line = fails(dir, bad, "", 2);
        assert!(line.contains("usage:"), "{bad:?}: {line}");
    }
}

#[test]
fn acl_commands_print_what_they_did_and_exit_0_1_or_2() {
    let dir = prepare(FAST, &[("alice", "pw")]);
    let dir = dir.path();
    assert_eq!(
        ok(
            dir,
            &["acl", "add", "--user", "alice", "a/#", "readwrite"],
            ""
        ),
        "added ACL rule 1\n"
    );
    assert_eq!(
        ok(dir, &["acl", "add", "--pattern", "users/%u/#", "read"], ""),
        "added ACL rule 2\n"
    );
    assert_eq!(
        ok(dir, &["acl", "add", "--pattern", "clients/%c", "write"], ""),
        "added ACL rule 3\n"
    );
    assert_eq!(
        ok(
            dir,
            &["acl", "add", "--user", "alice", "secret/#", "deny"],
            ""
        ),
        "added ACL rule 4\n"
    );
    fails(dir, &["acl", "add", "--user", "nobody", "x", "read"], "", 1);

    let list = ok(dir, &["acl", "list"], "");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["1", "alice", "readwrite", "a/#"],
            vec!["2", "(pattern)", "read", "users/%u/#"],
            vec!["3", "(pattern)", "write", "clients/%c"],
            vec!["4", "alice", "deny", "secret/#"],
        ],
        "acl list:\n{list}"
    );

    assert_eq!(ok(dir, &["acl", "del", "1"], ""), "deleted ACL rule 1\n");
    let line = fails(dir, &["acl", "del", "1"], "", 1);
    assert!(line.contains("no ACL rule with id 1"), "{line}");
    assert!(!ok(dir, &["acl", "list"], "").contains("a/#"));

    for bad in [
        &["acl"][..],
        &["acl", "add", "--user", "alice", "a/#"],
        &["acl", "add", "--pattern", "a/#", "all"],
        &["acl", "add", "a/#", "read"],
        &["acl", "del", "x"],
        &["acl", "del"],
        &["acl", "list", "extra"],
    ] {
        let line = fails(dir, bad, "", 2);
        assert!(line.contains("usage:"), "{bad:?}: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Raw logins

/// A CONNECT (clean start) with an optional user name and password.
fn connect_frame(
    version: Version,
    client_id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Vec<u8> {
    let level = if version == Version::V5 { 5 } else { 4 };
    let flags = 0x02 | user.map_or(0, |_| 0x80) | password.map_or(0, |_| 0x40);
    let mut b = Bytes::new().str("MQTT").u8(level).u8(flags).u16(60);
    if version == Version::V5 {
        b = b.varint(0);
    }
    b = b.str(client_id);
    if let Some(user) = user {
        b = b.str(user);
    }
    if let Some(password) = password {
        b = b.str(password);
    }
    b.packet(frames::CONNECT)
}

/// What a CONNECT got back.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A CONNACK with this return/reason code.
    Code(u8),
    /// The broker closed the connection without a CONNACK.
    Closed,
}

/// Sends a CONNECT; returns the answer, how long it took, and the connection.
fn login(
    port: u16,
    version: Version,
    id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> (Answer, Duration, Raw) {
    let mut raw = Raw::open(port, version);
    let start = Instant::now();
    raw.send(&connect_frame(version, id, user, password));
    let answer = match raw.next(Duration::from_secs(10)) {
        Next::Frame(f) if f.kind() == frames::CONNACK => Answer::Code(f.connack().1),
        Next::Closed => Answer::Closed,
        other => panic!("{id}: expected CONNACK, got {other:?}"),
    };
    (answer, start.elapsed(), raw)
}

/// A login that must be accepted; returns the connection.
fn logged_in(port: u16, version: Version, id: &str, user: &str, password: &str) -> Raw {
    let (answer, _, raw) = login(port, version, id, Some(user), Some(password));
    assert_eq!(answer, Answer::Code(0), "{user} with the right password");
    raw
}

/// A login that must be refused with `code` and then closed.
fn refused(
    port: u16,
    version: Version,
    id: &str,
    user: Option<&str>,
    password: Option<&str>,
    code: u8,
) {
    let (answer, _, mut raw) = login(port, version, id, user, password);
    assert_eq!(
        answer,
        Answer::Code(code),
        "{id}: user {user:?}, password {password:?}"
    );
    let after = raw.expect_closed(WAIT);
    assert!(
        after.is_empty(),
        "{id}: frames after the refusal: {after:?}"
    );
}

#[test]
fn v5_right_password_connects_wrong_or_unknown_gets_0x86() {
    let dir = prepare(FAST, &[("alice", "secret")]);
    let broker = Broker::start_in(dir, Some(FAST));
    let port = broker.port();
    let raw = logged_in(port, Version::V5, "v5-right", "alice", "secret");
    drop(raw);
    let mut opts = V5::options(port, "v5-rumqttc");
    opts.set_credentials("alice", "secret");
    V5::connect_with(opts).disconnect();

    let v5 = Version::V5;
    refused(port, v5, "v5-wrong", Some("alice"), Some("nope"), 0x86);
    refused(port, v5, "v5-no-password", Some("alice"), None, 0x86);
    refused(port, v5, "v5-no-user", None, Some("secret"), 0x86);
}

#[test]
fn v311_right_password_connects_wrong_or_unknown_gets_return_code_4() {
    let dir = prepare(FAST, &[("alice", "secret")]);
    let broker = Broker::start_in(dir, Some(FAST));
    let port = broker.port();
    drop(logged_in(
        port,
        Version::V311,
        "v4-right",
        "alice",
        "secret",
    ));
    let mut opts = V4::options(port, "v4-rumqttc");
    opts.set_credentials("alice", "secret");
    V4::connect_with(opts).disconnect();

    let v4 = Version::V311;
    refused(port, v4, "v4-wrong", Some("alice"), Some("nope"), 4);
    refused(port, v4, "v4-no-password", Some("alice"), None, 4);
    // A password without a user name is a malformed CONNECT in 3.1.1 (MQTT-3.1.2-22):
    // the connection closes without a CONNACK (MQTT-3.1.4-1).
    let (answer, _, _) = login(port, v4, "v4-no-user", None, Some("secret"));
    assert_eq!(answer, Answer::Closed);
}

#[test]
fn bcrypt_check_does_not_hold_up_connected_clients() {
    // A check takes ~0.25 s at cost 12 in a release build; a debug build (the binary is built
    // like this test) is ~6x slower, so cost 11 there keeps it ~0.7 s.
    let cost = if cfg!(debug_assertions) { 11 } else { 12 };
    let config = format!("bcrypt_cost = {cost}\n");
    let dir = prepare(&config, &[("slow", "slow-pw")]);
    let broker = Broker::start_in(dir, Some(&config));
    let port = broker.port();
    let (mut busy, _) = Raw::connect(port, &frames::Connect::new(Version::V5, "busy"));
    busy.send(&frames::subscribe(Version::V5, 1, "busy/echo", 1));
    busy.expect_frame(frames::SUBACK, WAIT);

    let login = std::thread::spawn(move || {
        let (answer, _, _) = login(
            port,
            Version::V5,
            "slow-login",
            Some("slow"),
            Some("slow-pw"),
        );
        (answer, Instant::now())
    });
    broker
        .wait_for_log(WAIT, |l| l.contains("checking the password of slow"))
        .expect("the broker starts checking the slow login");
    busy.send(&frames::pingreq());
    busy.expect_frame(frames::PINGRESP, WAIT);
    busy.send(&frames::publish(
        Version::V5,
        "busy/echo",
        1,
        7,
        b"still here",
    ));
    let (mut puback, mut echo) = (false, false);
    while !(puback && echo) {
        match busy.next(WAIT) {
            Next::Frame(f) if f.kind() == frames::PUBACK => puback = true,
            Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (_, id, payload) = f.publish(Version::V5);
                assert_eq!(payload, b"still here");
                busy.send(&frames::ack(frames::PUBACK, id.unwrap()));
                echo = true;
            }
            other => panic!("expected PUBACK and the echo, got {other:?}"),
        }
    }
    let served = Instant::now();

    let (answer, logged_in_at) = login.join().unwrap();
    assert_eq!(answer, Answer::Code(0), "the slow login must succeed");
    assert!(
        served < logged_in_at,
        "the connected client's PINGREQ and publish were answered only after the login check \
         finished ({:?} later): bcrypt runs on the event loop",
        served - logged_in_at
    );
}

#[test]
fn repeated_login_failures_from_one_address_are_slowed_down() {
    let dir = prepare(FAST, &[("alice", "secret")]);
    let broker = Broker::start_in(dir, Some(FAST));
    let mut answers = Vec::new();
    for i in 1..=7 {
        let id = format!("guess-{i}");
        let (answer, _, _) = login(
            broker.port(),
            Version::V5,
            &id,
            Some("alice"),
            Some("guess"),
        );
        answers.push(answer);
    }
    // Five failures are checked; then each try must wait (1 s after the 5th failure, and
    // longer after each further one), and one made too early is refused without bcrypt:
    // 0x9F, Connection rate exceeded (docs/config.md, Authentication).
    let codes: Vec<_> = answers
        .iter()
        .map(|a| match a {
            Answer::Code(c) => *c,
            Answer::Closed => 0xFF,
        })
        .collect();
    assert_eq!(codes, [0x86, 0x86, 0x86, 0x86, 0x86, 0x9F, 0x9F]);
}

#[test]
fn changed_password_takes_effect_while_running_and_after_restart() {
    let dir = prepare(FAST, &[("alice", "old-pw")]);
    let mut broker = Broker::start_in(dir, Some(FAST));
    let v5 = Version::V5;
    drop(logged_in(broker.port(), v5, "pw-1", "alice", "old-pw"));
    ok(
        broker.dir(),
        &["user", "passwd", "alice", "--password-stdin"],
        "new-pw\n",
    );
    // The old password is cached as verified; the new one is not, so it goes to bcrypt.
    drop(logged_in(broker.port(), v5, "pw-2", "alice", "new-pw"));
    refused(
        broker.port(),
        v5,
        "pw-3",
        Some("alice"),
        Some("old-pw"),
        0x86,
    );

    broker.restart();
    refused(
        broker.port(),
        v5,
        "pw-4",
        Some("alice"),
        Some("old-pw"),
        0x86,
    );
    drop(logged_in(broker.port(), v5, "pw-5", "alice", "new-pw"));
}

// ---------------------------------------------------------------------------------------------
// Anonymous clients

#[test]
fn allow_anonymous_false_refuses_clients_without_user_name() {
    let config = "bcrypt_cost = 4\nallow_anonymous = false\n";
    let dir = prepare(config, &[("alice", "secret")]);
    let broker = Broker::start_in(dir, Some(config));
    let port = broker.port();
    refused(port, Version::V5, "anon-5", None, None, 0x87);
    refused(port, Version::V311, "anon-4", None, None, 5);
    drop(logged_in(port, Version::V5, "named-5", "alice", "secret"));
    drop(logged_in(port, Version::V311, "named-4", "alice", "secret"));
}

/// Where anonymous clients are allowed (loopback, by default), a user name without an
/// account connects as anonymous, as Mosquitto does without a password file; one with an
/// account still needs its password.
#[test]
fn unknown_user_connects_as_anonymous_where_anonymous_clients_are_allowed() {
    let dir = prepare(FAST, &[("alice", "secret")]);
    let broker = Broker::start_in(dir, Some(FAST));
    let port = broker.port();
    for version in [Version::V5, Version::V311] {
        let (answer, _, _) = login(port, version, "unknown", Some("mallory"), Some("x"));
        assert_eq!(answer, Answer::Code(0), "{version:?}: unknown user");
        let (answer, _, _) = login(port, version, "no-password", Some("mallory"), None);
        assert_eq!(
            answer,
            Answer::Code(0),
            "{version:?}: unknown user, no password"
        );
    }
    refused(
        port,
        Version::V5,
        "wrong",
        Some("alice"),
        Some("nope"),
        0x86,
    );
    refused(
        port,
        Version::V311,
        "wrong-4",
        Some("alice"),
        Some("nope"),
        4,
    );
    let logged = broker.wait_for_log(WAIT, |l| {
        l.contains("user \"mallory\" has no account, connecting as anonymous")
    });
    assert!(logged.is_some(), "the anonymous fallback is logged");
}

#[test]
fn unknown_user_is_refused_with_anonymous_unknown_users_false_or_no_anonymous() {
    for config in [
        "bcrypt_cost = 4\nanonymous_unknown_users = false\n",
        "bcrypt_cost = 4\nallow_anonymous = false\n",
    ] {
        let dir = prepare(config, &[("alice", "secret")]);
        let broker = Broker::start_in(dir, Some(config));
        let port = broker.port();
        let (v5, v4) = (Version::V5, Version::V311);
        refused(
            port,
            v5,
            "v5-unknown",
            Some("mallory"),
            Some("secret"),
            0x86,
        );
        refused(port, v4, "v4-unknown", Some("mallory"), Some("secret"), 4);
        drop(logged_in(port, v5, "v5-alice", "alice", "secret"));
    }
}

#[test]
fn anonymous_clients_are_allowed_on_a_loopback_listener_by_default() {
    let broker = Broker::start();
    let (answer, _, _) = login(broker.port(), Version::V5, "anon-5", None, None);
    assert_eq!(answer, Answer::Code(0));
    let (answer, _, _) = login(broker.port(), Version::V311, "anon-4", None, None);
    assert_eq!(answer, Answer::Code(0));
}

// ---------------------------------------------------------------------------------------------
// ACL rules

/// A broker whose database holds users alice, bob and dave and these rules:
/// alice `a/#` readwrite and `secret/#` deny, everyone `users/%u/#` and `clients/%c/#`
/// readwrite, bob `#` read.
fn acl_broker() -> Broker {
    let dir = prepare(FAST, &[("alice", "pw"), ("bob", "pw")]);
    for rule in [
        &["acl", "add", "--user", "alice", "a/#", "readwrite"][..],
        &["acl", "add", "--user", "alice", "secret/#", "deny"],
        &["acl", "add", "--pattern", "users/%u/#", "readwrite"],
        &["acl", "add", "--pattern", "clients/%c/#", "readwrite"],
        &["acl", "add", "--user", "bob", "#", "read"],
    ] {
        ok(dir.path(), rule, "");
    }
    Broker::start_in(dir, Some(FAST))
}

fn subscribe_many(raw: &mut Raw, filters: &[&str]) -> Vec<u8> {
    let pairs: Vec<(&str, u8)> = filters
        .iter()
        .map(|f| (*f, sub_options(1, false, false, 0)))
        .collect();
    raw.send(&frames::subscribe_with(raw.version, 9, &[], &pairs));
    let suback = raw.expect_frame(frames::SUBACK, WAIT);
    assert_eq!(suback.packet_id(), 9);
    suback.suback_reasons(raw.version)
}

fn acl_subscribe(version: Version, refused_code: u8) {
    let broker = acl_broker();
    let id = format!("acl-sub-{refused_code}");
    let mut alice = logged_in(broker.port(), version, &id, "alice", "pw");
    let own = format!("clients/{id}/#");
    let filters = [
        "a/x",
        "b/x",
        "users/alice/in",
        "users/bob/in",
        own.as_str(),
        "clients/someone-else/#",
        "secret/x",
        "#",
    ];
    let codes = subscribe_many(&mut alice, &filters);
    let r = refused_code;
    assert_eq!(
        codes,
        [1, r, 1, r, 1, r, r, r],
        "SUBACK for {filters:?} (alice may read a/#, users/alice/#, clients/{id}/#)"
    );
    assert!(alice.is_quiet(QUIET), "the connection stays up");
}

#[test]
fn v5_acl_refuses_denied_filters_with_0x87_and_grants_the_others() {
    acl_subscribe(Version::V5, 0x87);
}

#[test]
fn v311_acl_refuses_denied_filters_with_0x80_and_grants_the_others() {
    acl_subscribe(Version::V311, 0x80);
}

/// Bob (`#` read) watches everything; returns the topics he receives until quiet.
fn watched_topics(watcher: &V5) -> Vec<String> {
    let mut topics = Vec::new();
    while let Some(p) = watcher.recv_publish(QUIET) {
        topics.push(String::from_utf8_lossy(&p.topic).into_owned());
    }
    topics
}

fn bob(port: u16) -> V5 {
    let mut opts = V5::options(port, "acl-bob");
    opts.set_credentials("bob", "pw");
    let bob = V5::connect_with(opts);
    bob.subscribe("#", QoS5::AtLeastOnce);
    bob
}

#[test]
fn v5_denied_publish_gets_0x87_and_is_not_delivered() {
    let broker = acl_broker();
    let watcher = bob(broker.port());
    let mut alice = logged_in(broker.port(), Version::V5, "acl-pub-5", "alice", "pw");
    alice.send(&frames::publish(Version::V5, "b/x", 1, 1, b"denied"));
    let ack = alice.expect_frame(frames::PUBACK, WAIT);
    assert_eq!((ack.packet_id(), ack.ack_reason()), (1, 0x87), "PUBACK");
    alice.send(&frames::publish(Version::V5, "secret/x", 2, 2, b"denied"));
    let rec = alice.expect_frame(frames::PUBREC, WAIT);
    assert_eq!((rec.packet_id(), rec.ack_reason()), (2, 0x87), "PUBREC");
    alice.send(&frames::publish(Version::V5, "a/x", 1, 3, b"allowed"));
    let ack = alice.expect_frame(frames::PUBACK, WAIT);
    assert_eq!((ack.packet_id(), ack.ack_reason()), (3, 0), "PUBACK");
    assert_eq!(watched_topics(&watcher), ["a/x"]);
}

#[test]
fn v311_denied_publish_is_acknowledged_but_dropped() {
    let broker = acl_broker();
    let watcher = bob(broker.port());
    let mut alice = logged_in(broker.port(), Version::V311, "acl-pub-4", "alice", "pw");
    alice.send(&frames::publish(Version::V311, "b/x", 1, 1, b"denied"));
    assert_eq!(alice.expect_frame(frames::PUBACK, WAIT).packet_id(), 1);
    alice.send(&frames::publish(Version::V311, "secret/x", 2, 2, b"denied"));
    assert_eq!(alice.expect_frame(frames::PUBREC, WAIT).packet_id(), 2);
    alice.send(&frames::ack(frames::PUBREL, 2));
    assert_eq!(alice.expect_frame(frames::PUBCOMP, WAIT).packet_id(), 2);
    alice.send(&frames::publish(
        Version::V311,
        "users/bob/x",
        0,
        0,
        b"denied",
    ));
    alice.send(&frames::publish(
        Version::V311,
        "users/alice/x",
        1,
        3,
        b"ok",
    ));
    assert_eq!(alice.expect_frame(frames::PUBACK, WAIT).packet_id(), 3);
    assert!(alice.is_quiet(QUIET), "the connection stays up");
    assert_eq!(watched_topics(&watcher), ["users/alice/x"]);
}

#[test]
fn subscriber_to_everything_receives_only_what_it_may_read() {
    // Carol subscribes to `#` while there are no rules, then gets read access to `a/#` only.
    let dir = prepare(FAST, &[("carol", "pw"), ("dave", "pw")]);
    let mut broker = Broker::start_in(dir, Some(FAST));
    let carol_opts = |port| {
        let mut opts = V5::persistent_options(port, "acl-carol", 300);
        opts.set_credentials("carol", "pw");
        opts
    };
    let carol = V5::connect_with(carol_opts(broker.port()));
    carol.subscribe("#", QoS5::AtLeastOnce);
    carol.disconnect();
    ok(
        broker.dir(),
        &["acl", "add", "--user", "carol", "a/#", "read"],
        "",
    );
    ok(
        broker.dir(),
        &["acl", "add", "--user", "dave", "#", "write"],
        "",
    );
    // Rules are read at start-up.
    broker.restart();
    let carol = V5::connect_with(carol_opts(broker.port()));
    assert!(
        carol.connack.session_present,
        "carol's `#` subscription kept"
    );
    let mut opts = V5::options(broker.port(), "acl-dave");
    opts.set_credentials("dave", "pw");
    let dave = V5::connect_with(opts);
    dave.publish("b/x", QoS5::AtLeastOnce, false, "not for carol");
    dave.publish("a/x", QoS5::AtLeastOnce, false, "for carol");
    assert_eq!(watched_topics(&carol), ["a/x"]);
}

#[test]
fn rules_added_while_running_apply_from_the_next_password_check() {
    let dir = prepare(FAST, &[("erin", "pw")]);
    let broker = Broker::start_in(dir, Some(FAST));
    ok(
        broker.dir(),
        &["acl", "add", "--user", "erin", "a/#", "read"],
        "",
    );
    // Erin's first login is checked by the worker, which hands the loop the current rules.
    let mut erin = logged_in(broker.port(), Version::V5, "acl-erin", "erin", "pw");
    assert_eq!(subscribe_many(&mut erin, &["a/x", "b/x"]), [1, 0x87]);
}

/// `deny_subscribe` and `deny_publish` from the config apply with no rule in the database.
fn config_denials(version: Version, refused_code: u8) {
    let broker = Broker::with_config(
        "deny_subscribe = [\"test/nosubscribe\"]\ndeny_publish = [\"test/nopublish\"]\n",
    );
    let connect = frames::Connect::new(version, "deny-sub");
    let (mut sub, _) = Raw::connect(broker.port(), &connect);
    let codes = subscribe_many(&mut sub, &["test/nosubscribe", "test/other", "test/#"]);
    assert_eq!(codes, [refused_code, 1, 1], "SUBACK");

    let (mut publisher, _) =
        Raw::connect(broker.port(), &frames::Connect::new(version, "deny-pub"));
    publisher.send(&frames::publish(version, "test/nopublish", 1, 1, b"denied"));
    let ack = publisher.expect_frame(frames::PUBACK, WAIT);
    let expected = if version == Version::V5 { 0x87 } else { 0 };
    assert_eq!((ack.packet_id(), ack.ack_reason()), (1, expected), "PUBACK");
    for (id, topic) in [(2, "test/nosubscribe"), (3, "test/other")] {
        publisher.send(&frames::publish(version, topic, 1, id, topic.as_bytes()));
        let ack = publisher.expect_frame(frames::PUBACK, WAIT);
        // 0x10 No matching subscribers is a success code too (nobody may receive it).
        assert_eq!(ack.packet_id(), id, "{topic}");
        assert!(ack.ack_reason() <= 0x10, "{topic}: PUBACK {ack:?}");
    }
    // Only test/other reaches the `test/#` subscriber: nobody may publish to test/nopublish
    // or receive from test/nosubscribe.
    let mut topics = Vec::new();
    while let Next::Frame(f) = sub.next(QUIET) {
        if f.kind() == frames::PUBLISH {
            let (topic, id, _) = f.publish(version);
            sub.send(&frames::ack(frames::PUBACK, id.unwrap()));
            topics.push(String::from_utf8_lossy(&topic).into_owned());
        }
    }
    assert_eq!(topics, ["test/other"]);
}

#[test]
fn v5_config_deny_subscribe_and_deny_publish() {
    config_denials(Version::V5, 0x87);
}

#[test]
fn v311_config_deny_subscribe_and_deny_publish() {
    config_denials(Version::V311, 0x80);
}

// ---------------------------------------------------------------------------------------------
// paho-mqtt

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// Runs tests/python/auth.py for `protocol` against a broker that refuses anonymous clients;
/// the script must print OK within 20 s. Missing python3 or paho is a failure, not a skip.
fn paho_auth(protocol: &str) {
    let config = "bcrypt_cost = 4\nallow_anonymous = false\n";
    let dir = prepare(config, &[("paho", "paho-pw")]);
    let broker = Broker::start_in(dir, Some(config));
    let mut child = Command::new("python3")
        .arg(format!("{SCRIPTS}/auth.py"))
        .args([&broker.port().to_string(), protocol, "paho", "paho-pw"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for the paho tests; run `make test` or install python3");
    let status = common::wait_until(Duration::from_secs(20), || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.is_some_and(|s| s.success()) && stdout.trim_end().ends_with("OK"),
        "auth.py {protocol} failed ({status:?}); paho-mqtt 2.x is required \
         (`pip install 'paho-mqtt>=2,<3'`)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn paho_v311_login_with_password() {
    paho_auth("311");
}

#[test]
fn paho_v5_login_with_password() {
    paho_auth("5");
}
