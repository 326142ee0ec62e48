//! The web console in tests: a broker with the console on and accounts made with the real
//! `outpost user add`, and logging in through the real login form.

use std::io::Write;
use std::process::{Command, Stdio};

use super::http::{Client, Response};
use super::{Broker, BIN};

/// bcrypt's lowest cost, so logins in tests take milliseconds.
pub const CONFIG: &str = "bcrypt_cost = 4\n";

/// Starts a broker with the console on, after creating `users` (name, password, admin).
pub fn start(users: &[(&str, &str, bool)]) -> Broker {
    start_with(users, "")
}

/// [`start`] with more config lines after [`CONFIG`].
pub fn start_with(users: &[(&str, &str, bool)], extra: &str) -> Broker {
    let config = format!("{CONFIG}{extra}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outpost.toml"), &config).unwrap();
    for (name, password, admin) in users {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(dir.path().join("outpost.toml"))
            .arg("--db")
            .arg(dir.path().join("outpost.db"))
            .args(["user", "add", name, "--password-stdin"]);
        if *admin {
            cmd.arg("--admin");
        }
        let mut child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "user add {name}: {out:?}");
    }
    Broker::start_web_in(dir, Some(&config))
}

/// Fetches the login form and posts it; returns the answer to the post.
pub fn login(client: &mut Client, name: &str, password: &str) -> Response {
    let form = client.get("/login");
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf_field();
    client.post_form(
        "/login",
        &[("csrf", &csrf), ("username", name), ("password", password)],
    )
}

/// A client logged in as `name`; returns it with its session's CSRF token.
pub fn logged_in(port: u16, name: &str, password: &str) -> (Client, String) {
    let mut client = Client::new(port);
    let answer = login(&mut client, name, password);
    assert_eq!(answer.status, 303, "login as {name}: {}", answer.body);
    let me = client.get("/api/me");
    assert_eq!(me.status, 200, "{}", me.body);
    let csrf = me.json()["csrf"].as_str().unwrap().to_owned();
    (client, csrf)
}
