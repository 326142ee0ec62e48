//! Kick and ban from the console over real HTTP against the real binary, seen by real
//! rumqttc clients: a ban disconnects the clients it names at once (MQTT 5: DISCONNECT
//! 0x98 Administrative action) and refuses their next CONNECT (0x8A Banned; MQTT 3.1.1:
//! return code 5), by client id, user name (any spelling) or address; bans expire, are
//! lifted, survive a restart, are logged, and are listed on `/admin`, escaped. Every route
//! needs an admin, and commands their CSRF token.

mod common;

use std::time::Duration;

use common::clients::{server_disconnect_reason, V4, V5, WAIT};
use common::console::{self, logged_in};
use common::http::{Client, Response};
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;

const ADMIN: (&str, &str, bool) = ("admin", "admin-password", true);
const MALLORY: (&str, &str, bool) = ("Mallory", "mallory-password", false);

fn delete(client: &mut Client, path: &str, csrf: &str) -> Response {
    client.send("DELETE", path, &[("X-CSRF-Token", csrf)], b"")
}

fn ban(admin: &mut Client, csrf: &str, body: &str) -> Response {
    admin.post_json("/api/bans", body, Some(csrf))
}

fn as_user(port: u16, id: &str, user: &str, password: &str) -> Result<V5, String> {
    let mut opts = V5::options(port, id);
    opts.set_credentials(user, password);
    V5::try_connect_with(opts)
}

fn refused_as_banned(result: Result<V5, String>) {
    match result {
        Err(e) => assert!(e.contains("Banned"), "{e}"),
        Ok(c) => panic!("{} connected although banned", c.id),
    }
}

#[test]
fn ban_routes_need_an_admin_and_commands_their_token() {
    let broker = console::start(&[ADMIN, MALLORY]);
    let port = broker.web_port();
    let (mut mallory, mallory_csrf) = logged_in(port, "Mallory", "mallory-password");
    let (mut admin, _) = logged_in(port, "admin", "admin-password");
    let json = [("Content-Type", "application/json")];
    let body = r#"{"kind":"client_id","value":"x"}"#;
    for (method, path) in [
        ("GET", "/api/bans"),
        ("POST", "/api/bans"),
        ("DELETE", "/api/bans/1"),
    ] {
        let answer = Client::new(port).send(method, path, &json, body.as_bytes());
        assert_eq!(answer.status, 401, "{method} {path}");
        let mut headers = json.to_vec();
        headers.push(("X-CSRF-Token", &mallory_csrf));
        let answer = mallory.send(method, path, &headers, body.as_bytes());
        assert_eq!(answer.status, 403, "{method} {path} as a user");
        assert_eq!(answer.json()["error"], "not_admin");
        if method != "GET" {
            let answer = admin.send(method, path, &json, body.as_bytes());
            assert_eq!(answer.status, 403, "{method} {path} without a token");
            assert_eq!(answer.json()["error"], "csrf");
        }
    }
    let form = admin.post_form(
        "/admin/bans",
        &[("csrf", "wrong"), ("kind", "client_id"), ("value", "x")],
    );
    assert_eq!(form.status, 403, "a form with a wrong token");
    assert_eq!(admin.get("/api/bans").json(), serde_json::json!([]));
}

#[test]
fn a_banned_client_is_disconnected_then_refused_until_the_ban_is_lifted() {
    let mut broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let victim = V5::connect(broker.port(), "victim");
    let bystander = V5::connect(broker.port(), "bystander");

    let banned = ban(
        &mut admin,
        &csrf,
        r#"{"kind":"client_id","value":"victim","reason":"floods <b>site/#</b>"}"#,
    );
    assert_eq!(banned.status, 200, "{}", banned.body);
    assert_eq!(
        banned.json()["done"],
        "Banned client id victim until lifted (1 client disconnected)."
    );
    let e = victim.expect_closed(WAIT);
    assert_eq!(
        server_disconnect_reason(&e),
        Some(DisconnectReasonCode::AdministrativeAction)
    );
    refused_as_banned(V5::try_connect_with(V5::options(broker.port(), "victim")));
    let v4 = V4::try_connect_with(V4::options(broker.port(), "victim"));
    match v4 {
        Err(e) => assert!(e.contains("NotAuthorized"), "3.1.1 return code 5: {e}"),
        Ok(_) => panic!("a banned 3.1.1 client connected"),
    }
    // Everyone else is served as before.
    bystander.publish(
        "still/here",
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        false,
        "ok",
    );
    assert!(V5::try_connect_with(V5::options(broker.port(), "Victim")).is_ok());

    let list = admin.get("/api/bans").json();
    assert_eq!(list[0]["kind"], "client_id");
    assert_eq!(list[0]["value"], "victim");
    assert_eq!(list[0]["created_by"], "admin");
    assert_eq!(list[0]["expires_at"], serde_json::Value::Null);
    assert_eq!(list[0]["in_force"], true);
    let page = admin.get("/admin").body;
    assert!(
        page.contains("floods &lt;b&gt;site/#&lt;/b&gt;"),
        "the reason, escaped"
    );
    assert!(!page.contains("<b>site/#</b>"));
    assert!(page.contains(r#"data-confirm="Lift the ban on client id victim?""#));
    // The log lines reach the test through a pipe: wait for each.
    for line in [
        "web console: admin banned client id victim until lifted",
        "client victim from 127.0.0.1",
        "refused, client id victim is banned",
    ] {
        assert!(
            broker.wait_for_log(WAIT, |l| l.contains(line)).is_some(),
            "no log line {line:?}"
        );
    }

    // Stored: a restart keeps the ban.
    broker.restart();
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    refused_as_banned(V5::try_connect_with(V5::options(broker.port(), "victim")));

    let id = list[0]["id"].to_string();
    let lifted = delete(&mut admin, &format!("/api/bans/{id}"), &csrf);
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(lifted.json()["done"], "Lifted the ban on client id victim.");
    assert!(V5::try_connect_with(V5::options(broker.port(), "victim")).is_ok());
    assert_eq!(
        delete(&mut admin, &format!("/api/bans/{id}"), &csrf).status,
        404
    );
    assert!(broker
        .wait_for_log(WAIT, |l| l.contains("web console: admin lifted ban"))
        .is_some());
}

#[test]
fn bans_by_user_name_and_address_and_with_an_expiry() {
    let broker = console::start(&[ADMIN, MALLORY]);
    let port = broker.port();
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");

    let online = as_user(port, "m1", "Mallory", "mallory-password").unwrap();
    // Any spelling of the account.
    let banned = ban(
        &mut admin,
        &csrf,
        r#"{"kind":"username","value":"MALLORY"}"#,
    );
    assert_eq!(banned.status, 200, "{}", banned.body);
    assert_eq!(
        server_disconnect_reason(&online.expect_closed(WAIT)),
        Some(DisconnectReasonCode::AdministrativeAction)
    );
    refused_as_banned(as_user(port, "m2", "mallory", "mallory-password"));
    // Refused before the password is looked at: a wrong one gets the same answer.
    refused_as_banned(as_user(port, "m3", "Mallory", "wrong-password"));
    assert!(V5::try_connect_with(V5::options(port, "anonymous")).is_ok());

    // An address, written as IPv4-mapped IPv6; it names every client from there.
    let from_here = V5::connect(port, "here");
    let by_address = ban(
        &mut admin,
        &csrf,
        r#"{"kind":"address","value":"::ffff:127.0.0.1","expires_in":3}"#,
    );
    assert_eq!(by_address.status, 200, "{}", by_address.body);
    let done = by_address.json()["done"].as_str().unwrap().to_owned();
    assert!(
        done.starts_with("Banned address 127.0.0.1 until "),
        "{done}"
    );
    assert!(done.ends_with("(1 client disconnected)."), "{done}");
    from_here.expect_closed(WAIT);
    refused_as_banned(V5::try_connect_with(V5::options(port, "other")));
    // The expiry passes without anyone lifting it.
    std::thread::sleep(Duration::from_millis(3200));
    assert!(V5::try_connect_with(V5::options(port, "other")).is_ok());
    let list = admin.get("/api/bans").json();
    assert_eq!(list[1]["value"], "127.0.0.1");
    assert_eq!(list[1]["in_force"], false);
    assert!(admin.get("/admin").body.contains("expired"));

    // Banning the same thing again replaces the ban (no second row).
    ban(
        &mut admin,
        &csrf,
        r#"{"kind":"address","value":"127.0.0.1","expires_in":1}"#,
    );
    assert_eq!(admin.get("/api/bans").json().as_array().unwrap().len(), 2);

    for (body, code) in [
        (r#"{"kind":"ip","value":"1.2.3.4"}"#, "bad_kind"),
        (r#"{"kind":"address","value":"10.0.0.0/33"}"#, "bad_value"),
        (r#"{"kind":"client_id","value":"  "}"#, "bad_value"),
        (
            r#"{"kind":"client_id","value":"x","expires_in":0}"#,
            "bad_expiry",
        ),
        (
            r#"{"kind":"client_id","value":"x","reason":"a\nb"}"#,
            "bad_reason",
        ),
        (r#"{"kind":"client_id"}"#, "bad_json"),
    ] {
        let answer = ban(&mut admin, &csrf, body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(answer.json()["error"], code, "{body}");
    }
    assert_eq!(admin.get("/api/bans").json().as_array().unwrap().len(), 2);
}

#[test]
fn the_ban_form_works_without_javascript() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let victim = V5::connect(broker.port(), "<victim>");
    let posted = admin.post_form(
        "/admin/bans",
        &[
            ("csrf", &csrf),
            ("kind", "client_id"),
            ("value", "<victim>"),
            ("reason", "test"),
            ("expires_in", "3600"),
        ],
    );
    assert_eq!(posted.status, 303);
    assert_eq!(posted.header("location"), Some("/admin"));
    victim.expect_closed(WAIT);
    let page = admin.get("/admin").body;
    assert!(
        page.contains("Banned client id &lt;victim&gt; until "),
        "the notice"
    );
    assert!(page.contains("<code>&lt;victim&gt;</code>"), "the list");
    assert!(!page.contains("<victim>"));
    let id = admin.get("/api/bans").json()[0]["id"].to_string();
    let lifted = admin.post_form("/admin/bans/delete", &[("csrf", &csrf), ("id", &id)]);
    assert_eq!(lifted.status, 303);
    assert!(admin
        .get("/admin")
        .body
        .contains("Lifted the ban on client id &lt;victim&gt;."));
    assert!(V5::try_connect_with(V5::options(broker.port(), "<victim>")).is_ok());
}

/// `outpost ban …` on the database of a running broker, with its exit status, stdout and
/// stderr.
fn ban_cli(broker: &common::Broker, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(common::BIN)
        .arg("--config")
        .arg(broker.dir().join("outpost.toml"))
        .arg("--db")
        .arg(broker.db_path())
        .arg("ban")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends SIGHUP and waits for the reload to be logged (the `nth` reload of this broker).
fn reload(broker: &common::Broker, nth: usize) {
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(broker.pid() as i32, libc::SIGHUP) }, 0);
    common::wait_until(WAIT, || {
        (broker
            .log()
            .iter()
            .filter(|l| l.contains("reload done"))
            .count()
            >= nth)
            .then_some(())
    })
    .expect("the reload is logged");
}

/// Address bans take CIDR prefixes (IPv4, and IPv4-mapped IPv6 as IPv4), from the API and
/// from `outpost ban add/list/remove`, which a running broker applies on SIGHUP: the
/// connected client a new ban names is disconnected, and refused until the ban goes.
#[test]
fn networks_are_banned_from_the_api_and_the_command_line() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");

    // From the API: a mapped IPv6 prefix is stored as the IPv4 network it covers.
    let victim = V5::connect(broker.port(), "victim");
    let banned = ban(
        &mut admin,
        &csrf,
        r#"{"kind":"address","value":"::ffff:127.9.9.9/104"}"#,
    );
    assert_eq!(banned.status, 200, "{}", banned.body);
    assert_eq!(
        banned.json()["done"],
        "Banned address 127.0.0.0/8 until lifted (1 client disconnected)."
    );
    victim.expect_closed(WAIT);
    refused_as_banned(V5::try_connect_with(V5::options(broker.port(), "other")));
    let id = admin.get("/api/bans").json()[0]["id"].as_i64().unwrap();
    assert_eq!(
        delete(&mut admin, &format!("/api/bans/{id}"), &csrf).status,
        200
    );
    for value in ["10.0.0.0/", "2001:db8::/129", "example.org/8"] {
        let body = format!(r#"{{"kind":"address","value":"{value}"}}"#);
        let refused = ban(&mut admin, &csrf, &body);
        assert_eq!(refused.status, 400, "{value}");
        assert_eq!(refused.json()["error"], "bad_value", "{value}");
    }

    // From the command line: nothing changes until SIGHUP.
    let victim = V5::connect(broker.port(), "victim");
    let (status, out, err) = ban_cli(
        &broker,
        &[
            "add",
            "address",
            "127.1.2.3/8",
            "--reason",
            "lab <net>",
            "--for",
            "1h",
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(
        out.starts_with("added ban ") && out.contains(": address 127.0.0.0/8 until "),
        "{out}"
    );
    let (_, list, _) = ban_cli(&broker, &["list"]);
    assert!(
        list.contains("127.0.0.0/8") && list.contains("lab <net>"),
        "{list}"
    );
    reload(&broker, 1);
    let e = victim.expect_closed(WAIT);
    assert_eq!(
        server_disconnect_reason(&e),
        Some(DisconnectReasonCode::AdministrativeAction)
    );
    refused_as_banned(V5::try_connect_with(V5::options(broker.port(), "other")));
    let listed = admin.get("/api/bans").json();
    assert_eq!(listed[0]["value"], "127.0.0.0/8");
    assert_eq!(listed[0]["created_by"], "(command line)");
    assert!(broker
        .wait_for_log(WAIT, |l| l.contains("is banned")
            && l.contains("127.0.0.0/8"))
        .is_some());

    let id = listed[0]["id"].as_i64().unwrap().to_string();
    let (status, out, err) = ban_cli(&broker, &["remove", &id]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.starts_with(&format!("removed ban {id} on address 127.0.0.0/8")),
        "{out}"
    );
    reload(&broker, 2);
    V5::connect(broker.port(), "back").disconnect();

    // Bad input is a usage error (exit status 2) that says what is wrong.
    for args in [
        &["add", "address", "10.0.0.0/33"][..],
        &["add", "host", "x"],
        &["add", "client_id", "x", "--for", "0"],
        &["add", "client_id", "x", "--for"],
        &["remove", "one"],
    ] {
        let (status, _, err) = ban_cli(&broker, args);
        assert_eq!(status, 2, "{args:?}: {err}");
        assert!(err.contains("usage: "), "{args:?}: {err}");
    }
    let (status, _, err) = ban_cli(&broker, &["remove", "999"]);
    assert_eq!(status, 1, "{err}");
}
