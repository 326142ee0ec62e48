//! The web console over real HTTP against the real binary: every route's status, login
//! required, admins only, CSRF and cross-origin posts refused, bad and oversized input
//! answered with a clear 4xx, and broker text (topics, client ids, user names, payloads)
//! shown escaped. Live state comes from real MQTT clients (rumqttc v5).

mod common;

use std::time::Duration;

use common::clients::{server_disconnect_reason, V4, V5};
use common::console::{self, logged_in, login};
use common::http::{self, Client};
use common::wait_until;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use rumqttc::v5::mqttbytes::QoS;

const ADMIN: (&str, &str, bool) = ("admin", "admin-password", true);
const ALICE: (&str, &str, bool) = ("alice", "alice-password", false);
const WAIT: Duration = Duration::from_secs(10);

/// Every page carries the security headers, is small, and sets only safe cookies.
#[test]
fn pages_are_small_and_carry_the_security_headers() {
    let broker = console::start(&[]);
    let mut client = Client::new(broker.web_port());
    for path in [
        "/login",
        "/register",
        "/assets/style.css",
        "/assets/admin.js",
    ] {
        let page = client.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.body.len() < 100 * 1024,
            "{path}: {} bytes",
            page.body.len()
        );
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    }
    let page = client.get("/login");
    assert!(page.body.contains(r#"href="/register""#));
    assert!(!page.body.contains("<script>"), "no inline script");
    let register = Client::new(broker.web_port()).get("/register");
    assert!(register.body.contains(r#"href="/login""#));
    let cookie = register.set_cookies()[0].to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(client
        .get("/assets/admin.js")
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
}

#[test]
fn register_logs_in_and_explains_each_refusal() {
    let broker = console::start(&[ALICE]);
    let port = broker.web_port();
    let register = |name: &str, password: &str, repeat: &str| {
        let mut client = Client::new(port);
        let csrf = client.get("/register").csrf_field();
        let answer = client.post_form(
            "/register",
            &[
                ("csrf", &csrf),
                ("username", name),
                ("password", password),
                ("repeat", repeat),
            ],
        );
        (client, answer)
    };
    let (_, taken) = register("alice", "long-enough-1", "long-enough-1");
    assert_eq!(taken.status, 409);
    assert!(
        taken.body.contains("that user name is taken"),
        "{}",
        taken.body
    );
    assert!(
        taken.body.contains(r#"value="alice""#),
        "the name is kept in the form"
    );
    let (_, short) = register("bob", "short", "short");
    assert_eq!(short.status, 400);
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    let (_, differ) = register("bob", "long-enough-1", "long-enough-2");
    assert_eq!(differ.status, 400);
    assert!(differ.body.contains("differ"));
    let (_, bad) = register("<b>bob</b>", "long-enough-1", "long-enough-1");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("&lt;b&gt;bob&lt;/b&gt;"),
        "escaped back into the form"
    );
    assert!(!bad.body.contains("<b>bob"));

    let (mut client, ok) = register("bob", "long-enough-1", "long-enough-1");
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/account?notice=registered"));
    let session = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("outpost_session="))
        .expect("a session cookie")
        .to_owned();
    let id = session
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap();
    assert_eq!(id.len(), 32, "128 random bits in hex");
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    let account = client.get("/account?notice=registered");
    assert_eq!(account.status, 200);
    assert!(account.body.contains("<strong>bob</strong>"));
    assert!(account.body.contains("Welcome"));
    // The new account logs in to MQTT too.
    let mut opts = V5::options(broker.port(), "bob-device");
    opts.set_credentials("bob", "long-enough-1");
    V5::connect_with(opts).disconnect();
}

#[test]
fn login_refuses_wrong_credentials_then_rate_limits_the_address() {
    let broker = console::start(&[ALICE]);
    let port = broker.web_port();
    let mut client = Client::new(port);
    let wrong = login(&mut client, "alice", "not-her-password");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("wrong user name or password"),
        "{}",
        wrong.body
    );
    let unknown = login(&mut client, "nobody", "whatever-it-is");
    assert_eq!(unknown.status, 401, "an unknown name reads the same");
    assert!(unknown.body.contains("wrong user name or password"));

    let limited = (0..10).find_map(|_| {
        let answer = login(&mut client, "alice", "still-not-it");
        (answer.status == 429).then_some(answer)
    });
    let limited = limited.expect("429 after repeated failures");
    assert!(
        limited.body.contains("too many failed logins"),
        "{}",
        limited.body
    );
    // The JSON twin answers 429 too while the address waits.
    let api = client.post_json(
        "/api/login",
        r#"{"username":"alice","password":"alice-password"}"#,
        None,
    );
    assert!(matches!(api.status, 429 | 200), "{}", api.body);
    if api.status == 429 {
        assert_eq!(api.json()["error"], "too_many_attempts");
    }
    // Once the wait is over, the right password gets in.
    let ok = wait_until(Duration::from_secs(40), || {
        let answer = login(&mut Client::new(port), "alice", "alice-password");
        (answer.status == 303).then_some(answer)
    });
    assert!(ok.is_some(), "the address may log in again after its wait");
}

#[test]
fn pages_and_api_require_login_and_admin() {
    let broker = console::start(&[ADMIN, ALICE]);
    let port = broker.web_port();
    let mut anonymous = Client::new(port);
    for path in ["/account", "/admin", "/"] {
        let answer = anonymous.get(path);
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(answer.header("location"), Some("/login"), "{path}");
    }
    for path in [
        "/api/me",
        "/api/stats",
        "/api/clients",
        "/api/users",
        "/api/topics",
    ] {
        let answer = anonymous.get(path);
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.json()["error"], "not_logged_in");
    }
    let (mut alice, alice_csrf) = logged_in(port, "alice", "alice-password");
    assert_eq!(alice.get("/").header("location"), Some("/chat"));
    let admin_page = alice.get("/admin");
    assert_eq!(admin_page.status, 403);
    assert!(admin_page.body.contains("administrators"));
    for path in [
        "/api/stats",
        "/api/clients",
        "/api/subscribers",
        "/api/users",
        "/api/listeners",
    ] {
        assert_eq!(alice.get(path).status, 403, "{path}");
    }
    let stop = alice.post_json("/api/listeners/0/stop", "{}", Some(&alice_csrf));
    assert_eq!(stop.status, 403);
    assert_eq!(stop.json()["error"], "not_admin");
    let form = alice.post_form(
        "/admin/listener",
        &[("csrf", &alice_csrf), ("id", "0"), ("action", "stop")],
    );
    assert_eq!(form.status, 403);

    let (mut admin, _) = logged_in(port, "admin", "admin-password");
    assert_eq!(admin.get("/").header("location"), Some("/admin"));
    assert_eq!(admin.get("/admin").status, 200);
    let users = admin.get("/api/users").json();
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["admin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("admin".to_owned(), true), ("alice".to_owned(), false)]
    );

    // Logout ends the session for good.
    let me = alice.get("/api/me").json();
    assert_eq!(me["name"], "alice");
    let csrf = me["csrf"].as_str().unwrap().to_owned();
    let cookie = alice.cookies.clone();
    let out = alice.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(alice.get("/account").status, 303);
    let mut replay = Client::new(port);
    replay.cookies = cookie;
    assert_eq!(replay.get("/api/me").status, 401, "the old cookie is dead");
}

#[test]
fn posts_without_the_right_token_or_origin_are_refused() {
    let broker = console::start(&[ADMIN]);
    let port = broker.web_port();
    // Login: no form cookie, a wrong token, then a forged origin.
    let mut client = Client::new(port);
    let no_cookie = client.post_form(
        "/login",
        &[
            ("csrf", "00000000000000000000000000000000"),
            ("username", "admin"),
            ("password", "admin-password"),
        ],
    );
    assert_eq!(no_cookie.status, 403);
    assert!(no_cookie.body.contains("the form expired"));
    client.get("/login");
    let wrong = client.post_form(
        "/login",
        &[
            ("csrf", "00000000000000000000000000000000"),
            ("username", "admin"),
            ("password", "admin-password"),
        ],
    );
    assert_eq!(wrong.status, 403);
    let csrf = client.get("/login").csrf_field();
    let body = format!("csrf={csrf}&username=admin&password=admin-password");
    let forged = client.send(
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        body.as_bytes(),
    );
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("cross-origin"));

    // Logged in: commands need the session's token.
    let (mut admin, _) = logged_in(port, "admin", "admin-password");
    for fields in [vec![], vec![("csrf", "ffffffffffffffffffffffffffffffff")]] {
        let mut all = fields.clone();
        all.extend([("id", "0"), ("action", "stop")]);
        let answer = admin.post_form("/admin/listener", &all);
        assert_eq!(answer.status, 403, "{fields:?}");
    }
    let answer = admin.post_json("/api/listeners/0/stop", "{}", None);
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["error"], "csrf");
    let answer = admin.post_json(
        "/api/listeners/0/stop",
        "{}",
        Some("ffffffffffffffffffffffffffffffff"),
    );
    assert_eq!(answer.status, 403);
    let answer = admin.post_form(
        "/account/password",
        &[
            ("csrf", "nope"),
            ("current", "admin-password"),
            ("password", "x-new-password"),
            ("repeat", "x-new-password"),
        ],
    );
    assert_eq!(answer.status, 403);
    // Nothing happened: the listener still takes clients, the password is unchanged.
    V5::connect(broker.port(), "still-up").disconnect();
    logged_in(port, "admin", "admin-password");
}

/// A `GET /api/me` whose head (request line, headers and the blank line) is `len` bytes.
fn head_of(len: usize) -> Vec<u8> {
    let start = "GET /api/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: ";
    let fill = len - start.len() - "\r\n\r\n".len();
    format!("{start}{}\r\n\r\n", "x".repeat(fill)).into_bytes()
}

/// The head limit is 16 KiB exactly, wherever the reads split the head: up to 16384 bytes
/// the request is served (401: not logged in), one byte more gets 431.
#[test]
fn a_request_head_over_16_kib_gets_431() {
    let broker = console::start(&[]);
    let port = broker.web_port();
    let at_limit = head_of(16 * 1024);
    assert_eq!(at_limit.len(), 16384);
    let answer = http::raw(port, &at_limit);
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.json()["error"], "not_logged_in");
    for len in [16 * 1024 + 1, 17000, 20400] {
        let answer = http::raw(port, &head_of(len));
        assert_eq!(answer.status, 431, "a {len}-byte head: {answer:?}");
    }
    // Refused as soon as 16385 bytes came without the blank line.
    let unfinished = &head_of(17000)[..16 * 1024 + 1];
    assert_eq!(http::raw(port, unfinished).status, 431);
}

#[test]
fn bad_oversized_and_malformed_requests_get_clear_4xx_answers() {
    let broker = console::start(&[ADMIN]);
    let port = broker.web_port();
    let (mut admin, csrf) = logged_in(port, "admin", "admin-password");

    let big = vec![b'a'; 20 * 1024];
    let answer = admin.send(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &big,
    );
    assert_eq!(answer.status, 413);
    let declared = http::raw(
        port,
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n{}",
    );
    assert_eq!(declared.status, 413);
    let long = format!("/admin?topic={}", "a".repeat(5000));
    assert_eq!(admin.get(&long).status, 414);
    let garbage = http::raw(port, b"\x16\x03\x01 nonsense\r\n\r\n");
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let huge_head = format!(
        "GET / HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "x".repeat(20 * 1024)
    );
    assert_eq!(http::raw(port, huge_head.as_bytes()).status, 431);
    assert_eq!(http::raw(port, b"GET / HTTP/2.0\r\n\r\n").status, 505);
    let chunked = b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(http::raw(port, chunked).status, 411);
    let head = admin.send("HEAD", "/assets/style.css", &[], b"");
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    assert_eq!(admin.get("/nope").status, 404);
    let api_404 = admin.get("/api/nope");
    assert_eq!(api_404.status, 404);
    assert_eq!(api_404.json()["error"], "not_found");
    let wrong_method = admin.get("/logout");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(admin.send("DELETE", "/api/stats", &[], b"").status, 405);

    let not_json = admin.send(
        "POST",
        "/api/login",
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(not_json.status, 415);
    let bad_json = admin.post_json("/api/login", "{\"username\": 3", None);
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.json()["error"], "bad_json");
    let taken = admin.post_json(
        "/api/register",
        r#"{"username":"admin","password":"long-enough-1"}"#,
        None,
    );
    assert_eq!(taken.status, 409);
    assert_eq!(taken.json()["error"], "name_taken");
    let short = admin.post_json(
        "/api/register",
        r#"{"username":"carol","password":"short"}"#,
        None,
    );
    assert_eq!(short.status, 400);
    assert_eq!(short.json()["error"], "password_too_short");
    let created = Client::new(port).post_json(
        "/api/register",
        r#"{"username":"carol","password":"long-enough-1"}"#,
        None,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["name"], "carol");

    assert_eq!(admin.get("/api/topics/messages").status, 400);
    assert_eq!(
        admin.get("/api/topics/messages?topic=never/seen").status,
        404
    );
    let bad_id = admin.post_form(
        "/admin/listener",
        &[("csrf", &csrf), ("id", "x"), ("action", "stop")],
    );
    assert_eq!(bad_id.status, 400);
    let bad_action = admin.post_form(
        "/admin/listener",
        &[("csrf", &csrf), ("id", "0"), ("action", "explode")],
    );
    assert_eq!(bad_action.status, 400);
    let no_listener = admin.post_json("/api/listeners/9/stop", "{}", Some(&csrf));
    assert_eq!(no_listener.status, 404);
    let no_client = admin.post_json(
        "/api/clients/disconnect",
        r#"{"client_id":"ghost"}"#,
        Some(&csrf),
    );
    assert_eq!(no_client.status, 404);
    let bad_body = admin.post_json("/api/clients/disconnect", r#"{"id":1}"#, Some(&csrf));
    assert_eq!(bad_body.status, 400);
    // The broker kept serving throughout.
    V5::connect(broker.port(), "after-bad-input").disconnect();
    assert_eq!(admin.get("/api/stats").status, 200);
}

/// Client ids, topics, payloads and user names are broker input: the page escapes them all.
#[test]
fn admin_shows_live_state_with_every_broker_text_escaped() {
    let xss_user = "<img src=x onerror=alert(1)>";
    let broker = console::start(&[ADMIN, (xss_user, "xss-password", false)]);
    let port = broker.web_port();
    let topic = "xss/<script>alert('t')</script>";
    let mut opts = V5::options(broker.port(), "<b>client</b>");
    opts.set_credentials(xss_user, "xss-password");
    let subscriber = V5::connect_with(opts);
    subscriber.subscribe("xss/#", QoS::AtLeastOnce);
    let publisher = V5::connect(broker.port(), "publisher");
    publisher.publish(topic, QoS::AtLeastOnce, true, "<script>alert('p')</script>");
    subscriber.expect_publish();

    let (mut admin, _) = logged_in(port, "admin", "admin-password");
    let page = admin.get(&format!("/admin?topic={}", http::encode(topic)));
    assert_eq!(page.status, 200);
    for raw in ["<script>alert", "<img src=x", "<b>client</b>"] {
        assert!(!page.body.contains(raw), "unescaped {raw:?} in the page");
    }
    for escaped in [
        // Topics break only after a `/` (<wbr>), between levels.
        "&lt;script&gt;alert(&#39;t&#39;)&lt;/<wbr>script&gt;",
        "&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;b&gt;client&lt;/b&gt;",
        "<code>xss/<wbr>#</code> q1",
    ] {
        assert!(
            page.body.contains(escaped),
            "{escaped:?} missing from the page"
        );
    }
    assert!(page.body.len() < 100 * 1024);

    // Connected-since comes from the client records, written within about a second.
    let sub = wait_until(WAIT, || {
        let clients = admin.get("/api/clients").json();
        clients["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == "<b>client</b>" && !c["connected_since"].is_null())
            .cloned()
    })
    .expect("the subscriber, with when it connected");
    assert_eq!(sub["username"], xss_user);
    assert_eq!(sub["protocol"], "5");
    assert_eq!(sub["keep_alive"], 30);
    assert_eq!(sub["subscriptions"][0]["filter"], "xss/#");
    assert!(sub["bytes_in"].as_u64().unwrap() > 0 && sub["bytes_out"].as_u64().unwrap() > 0);
    assert!(sub["connected_since"].as_i64().unwrap() > 1_600_000_000);
    assert!(sub["address"].as_str().unwrap().starts_with("127.0.0.1:"));

    let filters = admin.get("/api/subscribers").json();
    assert_eq!(filters["rows"][0]["filter"], "xss/#");
    assert_eq!(
        filters["rows"][0]["subscribers"][0]["client_id"],
        "<b>client</b>"
    );
    let topics = admin.get("/api/topics").json();
    assert_eq!(topics["rows"][0]["topic"], topic);
    assert_eq!(topics["rows"][0]["messages"], 1);
    let messages = admin
        .get(&format!(
            "/api/topics/messages?topic={}",
            http::encode(topic)
        ))
        .json();
    assert_eq!(messages[0]["preview"], "<script>alert('p')</script>");
    assert_eq!(messages[0]["qos"], 1);
    assert_eq!(messages[0]["retain"], true);
    let stats = admin.get("/api/stats").json();
    assert_eq!(stats["clients_connected"], 2);
    assert!(stats["messages_received"].as_u64().unwrap() >= 1);
    assert_eq!(
        admin.get("/api/clients").header("content-type"),
        Some("application/json")
    );
}

#[test]
fn admin_stops_and_starts_the_listener_and_disconnects_a_client() {
    let broker = console::start(&[ADMIN]);
    let port = broker.web_port();
    let (mut admin, csrf) = logged_in(port, "admin", "admin-password");
    let listeners = admin.get("/api/listeners").json();
    assert_eq!(listeners[0]["running"], true);
    let id = listeners[0]["id"].to_string();

    let victim = V5::connect(broker.port(), "victim");
    let kicked = admin.post_form(
        "/admin/disconnect",
        &[("csrf", &csrf), ("client_id", "victim")],
    );
    assert_eq!(kicked.status, 303);
    assert_eq!(kicked.header("location"), Some("/admin"));
    assert!(admin
        .get("/admin")
        .body
        .contains("Disconnected client victim."));
    let e = victim.expect_closed(WAIT);
    assert_eq!(
        server_disconnect_reason(&e),
        Some(DisconnectReasonCode::AdministrativeAction)
    );

    let held = V5::connect(broker.port(), "held");
    let stopped = admin.post_form(
        "/admin/listener",
        &[("csrf", &csrf), ("id", &id), ("action", "stop")],
    );
    assert_eq!(stopped.status, 303);
    let e = held.expect_closed(WAIT);
    assert_eq!(
        server_disconnect_reason(&e),
        Some(DisconnectReasonCode::ServerShuttingDown)
    );
    assert!(V5::try_connect_with(V5::options(broker.port(), "refused")).is_err());
    let page = admin.get("/admin");
    assert!(
        page.body
            .contains("Stopped the mqtt listener on 127.0.0.1:"),
        "the notice names what was done"
    );
    assert!(
        page.body.contains("(1 client disconnected)."),
        "{}",
        page.body
    );
    assert!(
        !admin.get("/admin").body.contains("client disconnected"),
        "a reload does not show the notice again"
    );
    assert!(page.body.contains(r#"class="state-stopped">stopped"#));
    assert_eq!(admin.get("/api/listeners").json()[0]["running"], false);

    let started = admin.post_json(&format!("/api/listeners/{id}/start"), "{}", Some(&csrf));
    assert_eq!(started.status, 200, "{}", started.body);
    V5::connect(broker.port(), "back").disconnect();
    assert_eq!(admin.get("/api/listeners").json()[0]["running"], true);
}

#[test]
fn account_changes_password_and_sets_an_escaped_security_question() {
    let broker = console::start(&[ALICE]);
    let port = broker.web_port();
    let (mut alice, csrf) = logged_in(port, "alice", "alice-password");
    let (mut other, _) = logged_in(port, "alice", "alice-password");

    let wrong = alice.post_form(
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", "nope-nope"),
            ("password", "new-password-1"),
            ("repeat", "new-password-1"),
        ],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong user name or password"));
    let short = alice.post_form(
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", "alice-password"),
            ("password", "short"),
            ("repeat", "short"),
        ],
    );
    assert_eq!(short.status, 400);
    let changed = alice.post_form(
        "/account/password",
        &[
            ("csrf", &csrf),
            ("current", "alice-password"),
            ("password", "new-password-1"),
            ("repeat", "new-password-1"),
        ],
    );
    assert_eq!(changed.status, 303);
    assert_eq!(alice.get("/api/me").status, 200, "this session stays");
    assert_eq!(other.get("/api/me").status, 401, "the other session ended");
    assert_eq!(
        login(&mut Client::new(port), "alice", "alice-password").status,
        401
    );
    logged_in(port, "alice", "new-password-1");
    let mut opts = V5::options(broker.port(), "alice-device");
    opts.set_credentials("alice", "new-password-1");
    V5::connect_with(opts).disconnect();

    let question = "<i>first pet?</i>";
    let empty = alice.post_form(
        "/account/question",
        &[("csrf", &csrf), ("question", question), ("answer", "  ")],
    );
    assert_eq!(empty.status, 400);
    let set = alice.post_form(
        "/account/question",
        &[("csrf", &csrf), ("question", question), ("answer", " Rex ")],
    );
    assert_eq!(set.status, 303);
    let page = alice.get("/account?notice=question");
    assert!(
        page.body.contains("&lt;i&gt;first pet?&lt;/i&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<i>first pet"));
    assert!(page.body.contains("security question was saved"));
}

#[test]
fn metrics_serve_the_counters_to_loopback() {
    let broker = console::start(&[]);
    let publisher = V5::connect(broker.port(), "metered");
    publisher.publish("m/1", QoS::AtLeastOnce, false, "x");
    let mut client = Client::new(broker.web_port());
    let metrics = wait_until(WAIT, || {
        let m = client.get("/metrics");
        (m.status == 200 && m.body.contains("outpost_messages_received_total 1")).then_some(m)
    })
    .expect("the published message counted");
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(metrics
        .body
        .contains("# TYPE outpost_clients_connected gauge\noutpost_clients_connected 1"));
}

/// Nothing periodic runs while nobody looks: after the console has served pages, an idle
/// broker's threads, the console's included, do not wake up at all.
#[test]
fn an_idle_broker_with_the_console_on_does_not_wake_up() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    assert_eq!(admin.get("/admin").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let before = broker.context_switches();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(broker.context_switches(), before);
}

/// A security question set on the web is the one the chat service resets passwords with.
#[test]
fn a_question_set_on_the_web_resets_the_password_through_the_chat() {
    let broker = console::start(&[ALICE]);
    let port = broker.web_port();
    let (mut alice, csrf) = logged_in(port, "alice", "alice-password");
    let set = alice.post_form(
        "/account/question",
        &[
            ("csrf", &csrf),
            ("question", "First pet?"),
            ("answer", " Rex "),
        ],
    );
    assert_eq!(set.status, 303);
    let reset = std::process::Command::new("mosquitto_rr")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
            "-V",
            "mqttv5",
        ])
        .args(["-t", "chat/x/reset", "-e", "inbox/web-test", "-W", "10"])
        .args(["-m", "alice reset-by-chat\nrex"])
        .output()
        .expect("run mosquitto_rr");
    let answer = String::from_utf8_lossy(&reset.stdout);
    assert!(answer.starts_with("ok"), "chat reset answered {answer:?}");
    assert_eq!(
        login(&mut Client::new(port), "alice", "alice-password").status,
        401
    );
    logged_in(port, "alice", "reset-by-chat");
}

#[test]
fn the_chat_token_needs_a_session_and_its_csrf_and_logs_in_once() {
    let broker = console::start(&[
        ("alice", "alice-password", false),
        ("bob", "bob-password", false),
    ]);
    let mut anonymous = Client::new(broker.web_port());
    let answer = anonymous.post_json("/api/chat/token", "{}", None);
    assert_eq!(answer.status, 401, "{}", answer.body);

    let page = anonymous.get("/chat");
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/login"));

    let (mut alice, csrf) = logged_in(broker.web_port(), "alice", "alice-password");
    // The page's one policy lets it reach the WebSocket listener and nothing else.
    let page = alice.get("/chat");
    assert_eq!(page.status, 200, "{}", page.body);
    let policies: Vec<_> = page
        .headers
        .iter()
        .filter(|(n, _)| n == "content-security-policy")
        .collect();
    assert_eq!(policies.len(), 1, "{policies:?}");
    let ws = format!("ws://127.0.0.1:{} ", broker.ws_port());
    assert!(
        policies[0].1.contains(&format!("connect-src 'self' {ws}")),
        "{policies:?}"
    );
    assert!(
        page.body.contains(r#"src="/assets/chat.js""#),
        "{}",
        page.body
    );
    let script = alice.get("/assets/mqtt-ws.js");
    assert_eq!(script.status, 200);

    let answer = alice.post_json("/api/chat/token", "{}", None);
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.json()["error"], "csrf");
    let answer = alice.post_json("/api/chat/token", "{}", Some("not-the-token"));
    assert_eq!(answer.status, 403, "{}", answer.body);

    let answer = alice.post_json("/api/chat/token", "{}", Some(&csrf));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let grant = answer.json();
    assert_eq!(grant["user"], "alice");
    assert_eq!(grant["ws_port"], broker.ws_port());
    assert_eq!(grant["ws_path"], "/mqtt");
    let token = grant["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32, "{token}");

    // The token is alice's password once, and for nobody else.
    let with = |user: &str, id: &str| {
        let mut opts = V4::options(broker.port(), id);
        opts.set_credentials(user, token.as_str());
        V4::try_connect_with(opts)
    };
    assert!(with("bob", "token-bob").is_err(), "the token logged in bob");
    let first = with("alice", "token-1").expect("the token logs alice in");
    drop(first);
    assert!(with("alice", "token-2").is_err(), "the token worked twice");

    let other = alice.post_json("/api/chat/token", "{}", Some(&csrf)).json();
    assert_ne!(other["token"], grant["token"], "tokens repeat");
}

/// Without a `[[bridge]]` the admin page says so in one line (and has no table for
/// `assets/admin.js` to poll), and `GET /api/bridges` is an empty list, for admins only.
#[test]
fn admin_says_in_one_line_that_no_bridge_is_configured() {
    let broker = console::start(&[ADMIN, ALICE]);
    let port = broker.web_port();
    assert_eq!(Client::new(port).get("/api/bridges").status, 401);
    let (mut alice, _) = logged_in(port, "alice", "alice-password");
    assert_eq!(alice.get("/api/bridges").status, 403);
    let (mut admin, csrf) = logged_in(port, "admin", "admin-password");
    let page = admin.get("/admin");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<p class="empty" id="bridges-none">No bridge configured"#),
        "no one-line notice in /admin"
    );
    assert!(
        !page.body.contains("bridge-rows"),
        "a bridge table without bridges"
    );
    let bridges = admin.get("/api/bridges");
    assert_eq!(bridges.status, 200);
    assert_eq!(bridges.json(), serde_json::json!([]));
    let post = admin.post_json("/api/bridges", "{}", Some(&csrf));
    assert_eq!(post.status, 405, "{}", post.body);
}

/// A message nobody subscribes to is never copied into the broker's shared message (the
/// hot path in docs/performance.md), yet the topic history still shows it, QoS 0 and 1.
#[test]
fn topics_nobody_subscribes_to_still_show_in_the_history() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    let publisher = V5::connect(broker.port(), "nobody-listens");
    publisher.publish("lonely/topic", QoS::AtMostOnce, false, "first");
    // Its PUBACK comes after the QoS 0 message before it was handled.
    publisher.publish("lonely/topic", QoS::AtLeastOnce, false, "second");
    let messages = admin.get("/api/topics/messages?topic=lonely/topic").json();
    assert_eq!(messages[0]["preview"], "second");
    assert_eq!(messages[0]["qos"], 1);
    assert_eq!(messages[1]["preview"], "first");
    assert_eq!(messages[1]["qos"], 0);
    assert_eq!(messages[1]["retain"], false);
    let topics = admin.get("/api/topics").json();
    assert_eq!(topics["rows"][0]["topic"], "lonely/topic");
    assert_eq!(topics["rows"][0]["messages"], 2);
    let stats = admin.get("/api/stats").json();
    assert_eq!(stats["messages_received"], 2);
}
