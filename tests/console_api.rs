//! The admin console's command API over real HTTP against the real binary: publish (with
//! MQTT 5 properties, under the admin's ACL rules), retained messages (list, read, delete
//! one or a subtree), users (add, delete, promote, demote, new password, never the last
//! admin) and ACL rules (add, list, delete, enforced on real MQTT clients). Each route is
//! refused without a login (401), to a non-admin (403), without the CSRF token (403) and
//! for bad input (400/404/409/415).

mod common;

use std::time::Duration;

use common::clients::V5;
use common::console::{self, logged_in};
use common::http::{Client, Response};
use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode;
use rumqttc::v5::mqttbytes::QoS;

const ADMIN: (&str, &str, bool) = ("admin", "admin-password", true);
const ALICE: (&str, &str, bool) = ("alice", "alice-password", false);

fn delete(client: &mut Client, path: &str, csrf: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = csrf.map(|t| ("X-CSRF-Token", t)).into_iter().collect();
    client.send("DELETE", path, &headers, b"")
}

/// Every new route: 401 without a session, 403 for a user who is not an admin, 403 for an
/// admin command without its CSRF token.
#[test]
fn every_new_route_needs_an_admin_and_commands_their_token() {
    let broker = console::start(&[ADMIN, ALICE]);
    let port = broker.web_port();
    let routes: [(&str, &str, &str); 9] = [
        ("POST", "/api/publish", r#"{"topic":"a","payload":"x"}"#),
        ("GET", "/api/retained?prefix=", ""),
        ("DELETE", "/api/retained?topic=a", ""),
        (
            "POST",
            "/api/users",
            r#"{"name":"bob","password":"bob-password"}"#,
        ),
        ("POST", "/api/users/alice", r#"{"admin":true}"#),
        ("DELETE", "/api/users/alice", ""),
        ("GET", "/api/acl", ""),
        (
            "POST",
            "/api/acl",
            r#"{"pattern":true,"topic":"a/#","access":"read"}"#,
        ),
        ("DELETE", "/api/acl/1", ""),
    ];
    let json = [("Content-Type", "application/json")];
    let (mut alice, alice_csrf) = logged_in(port, "alice", "alice-password");
    let (mut admin, _) = logged_in(port, "admin", "admin-password");
    for (method, path, body) in routes {
        let answer = Client::new(port).send(method, path, &json, body.as_bytes());
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        assert_eq!(answer.json()["error"], "not_logged_in");
        let mut headers = json.to_vec();
        headers.push(("X-CSRF-Token", &alice_csrf));
        let answer = alice.send(method, path, &headers, body.as_bytes());
        assert_eq!(answer.status, 403, "{method} {path} as alice");
        assert_eq!(answer.json()["error"], "not_admin");
        if method != "GET" {
            let answer = admin.send(method, path, &json, body.as_bytes());
            assert_eq!(answer.status, 403, "{method} {path} without a token");
            assert_eq!(answer.json()["error"], "csrf");
            let mut cross = json.to_vec();
            cross.push(("Origin", "http://evil.example"));
            let answer = admin.send(method, path, &cross, body.as_bytes());
            assert_eq!(answer.status, 403, "{method} {path} from another site");
        }
    }
    assert!(
        broker.log().iter().all(|l| !l.contains("published to")),
        "nothing was done"
    );
}

#[test]
fn publish_delivers_with_its_properties_and_refuses_bad_input() {
    let broker = console::start(&[ADMIN]);
    let port = broker.web_port();
    let subscriber = V5::connect(broker.port(), "watcher");
    subscriber.subscribe("site/+/temp", QoS::AtLeastOnce);
    let (mut admin, csrf) = logged_in(port, "admin", "admin-password");
    let body = r#"{"topic":"site/2/temp","payload":"{\"c\": 20.5}","format":"json","qos":1,
        "retain":true,"message_expiry":600,"user_properties":[["unit","C"],["<b>","&"]]}"#;
    let answer = admin.post_json("/api/publish", body, Some(&csrf));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json()["done"],
        "Published to site/2/temp (QoS 1, retained)."
    );
    let publish = subscriber.expect_publish();
    assert_eq!(&publish.topic[..], b"site/2/temp");
    assert_eq!(&publish.payload[..], br#"{"c": 20.5}"#);
    assert_eq!(publish.qos, QoS::AtLeastOnce);
    let props = publish.properties.expect("MQTT 5 properties");
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(props.payload_format_indicator, Some(1));
    assert!(matches!(props.message_expiry_interval, Some(599..=600)));
    assert_eq!(
        props.user_properties,
        vec![
            ("unit".to_owned(), "C".to_owned()),
            ("<b>".to_owned(), "&".to_owned())
        ]
    );

    for (body, status, code) in [
        (r#"{"topic":"a/#","payload":"x"}"#, 400, "invalid"),
        (r#"{"topic":"","payload":"x"}"#, 400, "missing_topic"),
        (r#"{"topic":"a","payload":"x","qos":3}"#, 400, "invalid"),
        (
            r#"{"topic":"a","payload":"{oops","format":"json"}"#,
            400,
            "bad_payload",
        ),
        (
            r#"{"topic":"a","payload":"x","format":"xml"}"#,
            400,
            "bad_format",
        ),
        (r#"{"topic":"a","surprise":1}"#, 400, "bad_json"),
        (r#"{"topic":"$SYS/x","payload":"x"}"#, 403, "not_authorized"),
    ] {
        let answer = admin.post_json("/api/publish", body, Some(&csrf));
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.json()["error"], code, "{body}");
    }
    let form = admin.send(
        "POST",
        "/api/publish",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-CSRF-Token", &csrf),
        ],
        b"topic=a&payload=x",
    );
    assert_eq!(form.status, 415);
    assert!(
        subscriber
            .recv_publish(Duration::from_millis(300))
            .is_none(),
        "nothing refused was delivered"
    );
}

#[test]
fn publish_obeys_the_admins_acl_rules() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let rule = admin.post_json(
        "/api/acl",
        r#"{"user":"admin","topic":"site/#","access":"readwrite"}"#,
        Some(&csrf),
    );
    assert_eq!(rule.status, 200, "{}", rule.body);
    let ok = admin.post_json(
        "/api/publish",
        r#"{"topic":"site/1","payload":"x"}"#,
        Some(&csrf),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let refused = admin.post_json(
        "/api/publish",
        r#"{"topic":"other/1","payload":"x"}"#,
        Some(&csrf),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["error"], "not_authorized");
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .contains("do not let admin publish to other/1"));
}

#[test]
fn retained_messages_are_listed_read_and_deleted_one_or_a_subtree() {
    let mut broker = console::start(&[ADMIN]);
    let publisher = V5::connect(broker.port(), "sensor");
    publisher.publish("site/1/status", QoS::AtLeastOnce, true, r#"{"up":true}"#);
    publisher.publish("site/2/status", QoS::AtLeastOnce, true, "down");
    publisher.publish("site/2/raw", QoS::AtLeastOnce, true, vec![0xffu8, 0, 1]);
    publisher.publish("<i>/x", QoS::AtLeastOnce, true, "<script>");
    publisher.publish("home/door", QoS::AtLeastOnce, true, "open");
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");

    let all = admin.get("/api/retained").json();
    assert_eq!(all["total"], 5);
    let site = admin.get("/api/retained?prefix=site%2F").json();
    let topics: Vec<&str> = site["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["site/1/status", "site/2/raw", "site/2/status"]);
    let one = admin.get("/api/retained?topic=site%2F1%2Fstatus").json();
    assert_eq!(one["size"], 11);
    assert_eq!(one["qos"], 1);
    assert_eq!(one["payload"]["json"], "{\n  \"up\": true\n}");
    let raw = admin.get("/api/retained?topic=site%2F2%2Fraw").json();
    assert_eq!(raw["payload"]["hex"], "ff 00 01");
    assert!(raw["payload"]["text"].is_null());
    assert_eq!(
        admin.get("/api/retained?topic=nope").status,
        404,
        "no such retained message"
    );

    let bad = delete(
        &mut admin,
        "/api/retained?topic=site%2F%23%2Fx",
        Some(&csrf),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let none = delete(&mut admin, "/api/retained?topic=none%2F%23", Some(&csrf));
    assert_eq!(none.status, 404);
    let one = delete(&mut admin, "/api/retained?topic=home%2Fdoor", Some(&csrf));
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(
        one.json()["done"],
        "Deleted the retained message of home/door."
    );
    let subtree = delete(&mut admin, "/api/retained?topic=site%2F%23", Some(&csrf));
    assert_eq!(subtree.status, 200, "{}", subtree.body);
    assert_eq!(
        subtree.json()["done"],
        "Deleted 3 retained messages under site/#."
    );
    assert_eq!(admin.get("/api/retained").json()["total"], 1);

    // Gone from the store too: a restart brings back only what is left.
    broker.restart();
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    let left = admin.get("/api/retained").json();
    assert_eq!(left["total"], 1, "{left}");
    assert_eq!(left["rows"][0]["topic"], "<i>/x");
    let late = V5::connect(broker.port(), "late");
    late.subscribe("#", QoS::AtLeastOnce);
    let got = late.expect_publish();
    assert_eq!(&got.topic[..], b"<i>/x");
    assert!(late.recv_publish(Duration::from_millis(300)).is_none());
}

fn mqtt_login(port: u16, id: &str, user: &str, password: &str) -> Result<V5, String> {
    let mut opts = V5::options(port, id);
    opts.set_credentials(user, password);
    V5::try_connect_with(opts)
}

#[test]
fn users_are_added_promoted_reset_and_deleted_but_never_the_last_admin() {
    let broker = console::start(&[ADMIN]);
    let port = broker.web_port();
    let (mut admin, csrf) = logged_in(port, "admin", "admin-password");
    let add = |admin: &mut Client, body: &str| admin.post_json("/api/users", body, Some(&csrf));

    let ok = add(&mut admin, r#"{"name":"bob","password":"bob-password"}"#);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["done"], "Added user bob.");
    assert_eq!(
        add(&mut admin, r#"{"name":"bob","password":"bob-password"}"#).status,
        409
    );
    let bad = add(&mut admin, r#"{"name":"<b>","password":"bob-password"}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "name_bad_characters");
    let short = add(&mut admin, r#"{"name":"carol","password":"short"}"#);
    assert_eq!(short.json()["error"], "password_too_short");
    let users = admin.get("/api/users").json();
    assert_eq!(users[1]["name"], "bob");
    assert_eq!(users[1]["admin"], false);
    mqtt_login(broker.port(), "bob-1", "bob", "bob-password").expect("bob logs in over MQTT");

    // The last admin can be neither demoted nor deleted.
    let demote = admin.post_json("/api/users/admin", r#"{"admin":false}"#, Some(&csrf));
    assert_eq!(demote.status, 409);
    assert_eq!(demote.json()["error"], "last_admin");
    let gone = delete(&mut admin, "/api/users/admin", Some(&csrf));
    assert_eq!(gone.status, 409);
    let promote = admin.post_json("/api/users/bob", r#"{"admin":true}"#, Some(&csrf));
    assert_eq!(promote.status, 200);
    assert_eq!(promote.json()["done"], "bob is now an administrator.");
    let (mut bob, bob_csrf) = logged_in(port, "bob", "bob-password");
    assert_eq!(bob.get("/api/stats").status, 200, "bob is an admin now");

    // A new password: the old one stops working at once, over MQTT and on the web.
    let reset = admin.post_json(
        "/api/users/bob",
        r#"{"password":"bob-new-password"}"#,
        Some(&csrf),
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(bob.get("/api/me").status, 401, "bob's sessions ended");
    assert!(mqtt_login(broker.port(), "bob-2", "bob", "bob-password").is_err());
    mqtt_login(broker.port(), "bob-3", "bob", "bob-new-password").expect("the new password");
    let (mut bob, _) = logged_in(port, "bob", "bob-new-password");
    drop(bob_csrf);
    assert_eq!(
        admin
            .post_json("/api/users/nobody", r#"{"admin":true}"#, Some(&csrf))
            .status,
        404
    );
    assert_eq!(
        admin.post_json("/api/users/bob", "{}", Some(&csrf)).status,
        400
    );

    // With bob an admin, the first admin may go; then bob is the last one.
    let bob_csrf = bob.get("/api/me").json()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = delete(&mut bob, "/api/users/admin", Some(&bob_csrf));
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(
        admin.get("/api/me").status,
        401,
        "the deleted admin is logged out"
    );
    let users = bob.get("/api/users").json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    let demote = bob.post_json("/api/users/bob", r#"{"admin":false}"#, Some(&bob_csrf));
    assert_eq!(demote.status, 409);
    assert_eq!(
        delete(&mut bob, "/api/users/nobody", Some(&bob_csrf)).status,
        404
    );
}

#[test]
fn acl_rules_are_validated_like_the_cli_and_enforced_at_once() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let ok = admin.post_json(
        "/api/users",
        r#"{"name":"bob","password":"bob-password"}"#,
        Some(&csrf),
    );
    assert_eq!(ok.status, 200);
    let bob = mqtt_login(broker.port(), "bob", "bob", "bob-password").unwrap();
    let rule = admin.post_json(
        "/api/acl",
        r#"{"user":"bob","topic":"site/#","access":"read"}"#,
        Some(&csrf),
    );
    assert_eq!(rule.status, 200, "{}", rule.body);
    assert_eq!(rule.json()["done"], "Added ACL rule 1: bob read site/#.");
    for (body, status, code) in [
        (
            r#"{"user":"bob","topic":"a","access":"rw"}"#,
            400,
            "invalid",
        ),
        (
            r#"{"user":"bob","topic":"","access":"read"}"#,
            400,
            "invalid",
        ),
        (
            r#"{"user":"nobody","topic":"a","access":"read"}"#,
            404,
            "unknown_user",
        ),
        (r#"{"topic":"a","access":"read"}"#, 400, "bad_json"),
        (
            r#"{"user":"bob","pattern":true,"topic":"a","access":"read"}"#,
            400,
            "bad_json",
        ),
    ] {
        let answer = admin.post_json("/api/acl", body, Some(&csrf));
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.json()["error"], code, "{body}");
    }
    let pattern = admin.post_json(
        "/api/acl",
        r#"{"pattern":true,"topic":"<b>/%u/#","access":"readwrite"}"#,
        Some(&csrf),
    );
    assert_eq!(pattern.status, 200);
    let rules = admin.get("/api/acl").json();
    assert_eq!(rules.as_array().unwrap().len(), 2);
    assert_eq!(rules[0]["user"], "bob");
    assert_eq!(rules[1]["user"], serde_json::Value::Null);
    assert_eq!(rules[1]["topic"], "<b>/%u/#");

    // Already-connected bob is held to the new rules: it may read site/# but not write
    // it, and read and write its own <b>/bob/# through the pattern.
    assert_eq!(
        bob.subscribe("site/#", QoS::AtLeastOnce),
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    assert_eq!(
        bob.subscribe("<b>/bob/#", QoS::AtLeastOnce),
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    bob.client
        .publish("site/1", QoS::AtMostOnce, false, "refused")
        .unwrap();
    bob.client
        .publish("<b>/bob/x", QoS::AtMostOnce, false, "allowed")
        .unwrap();
    let got = bob.expect_publish();
    assert_eq!(&got.payload[..], b"allowed");
    assert!(bob.recv_publish(Duration::from_millis(300)).is_none());

    assert_eq!(delete(&mut admin, "/api/acl/99", Some(&csrf)).status, 404);
    assert_eq!(delete(&mut admin, "/api/acl/x", Some(&csrf)).status, 404);
    let del = delete(&mut admin, "/api/acl/2", Some(&csrf));
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["done"], "Deleted ACL rule 2.");
    assert_eq!(admin.get("/api/acl").json().as_array().unwrap().len(), 1);
}

/// The same commands as forms on /admin, without JavaScript: each redirects back to
/// /admin with a notice naming what was done (or why not) that a reload does not repeat,
/// every broker and user text is escaped, and destructive forms ask first.
#[test]
fn admin_page_forms_work_without_javascript_and_escape_everything() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let watcher = V5::connect(broker.port(), "watcher");
    watcher.subscribe("x/#", QoS::AtLeastOnce);
    let post = |admin: &mut Client, path: &str, fields: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let answer = admin.post_form(path, &all);
        assert_eq!(answer.status, 303, "{path}: {}", answer.body);
        assert_eq!(answer.header("location"), Some("/admin"));
        let page = admin.get("/admin");
        assert_eq!(page.status, 200);
        assert!(page.body.len() < 100 * 1024, "{} bytes", page.body.len());
        page.body
    };

    let page = post(
        &mut admin,
        "/admin/publish",
        &[
            ("topic", "x/<b>"),
            ("payload", "{\"a\": [1, 2]}"),
            ("format", "json"),
            ("qos", "1"),
            ("retain", "on"),
            ("expiry", "60"),
            ("user_properties", "k=<v>\r\nunit=C"),
        ],
    );
    assert!(
        page.contains(
            r#"<p class="notice" role="status">Published to x/&lt;b&gt; (QoS 1, retained).</p>"#
        ),
        "{page}"
    );
    let got = watcher.expect_publish();
    assert_eq!(&got.payload[..], b"{\"a\": [1, 2]}");
    let props = got.properties.unwrap();
    assert_eq!(props.user_properties[0], ("k".to_owned(), "<v>".to_owned()));
    assert!(
        !admin.get("/admin").body.contains("Published to"),
        "shown once"
    );
    assert!(!page.contains("<b>"), "no markup from the topic");
    assert!(
        page.contains("x/<wbr>&lt;b&gt;"),
        "the retained row, escaped"
    );

    let page = post(
        &mut admin,
        "/admin/publish",
        &[
            ("topic", "x/y"),
            ("payload", "{oops"),
            ("format", "json"),
            ("qos", "0"),
        ],
    );
    assert!(
        page.contains(r#"<p class="error" role="alert">the payload is not valid JSON"#),
        "{page}"
    );

    let detail = admin.get("/admin?retained=x%2F%3Cb%3E").body;
    assert!(
        detail.contains("{\n  &quot;a&quot;: [\n    1,\n    2\n  ]\n}"),
        "{detail}"
    );
    assert!(detail.contains("<code>k</code> = <code>&lt;v&gt;</code>"));

    let page = post(&mut admin, "/admin/retained/delete", &[("topic", "x/#")]);
    assert!(
        page.contains("Deleted the retained message of x/#."),
        "{page}"
    );
    assert!(page.contains("no retained messages"));

    let page = post(
        &mut admin,
        "/admin/users",
        &[("name", "bob"), ("password", "bob-password")],
    );
    assert!(page.contains("Added user bob."));
    assert!(page.contains(r#"data-confirm="Delete user bob, with their ACL rules?""#));
    let page = post(
        &mut admin,
        "/admin/users",
        &[("name", "<i>x"), ("password", "bob-password")],
    );
    assert!(page.contains(r#"<p class="error" role="alert">the user name may hold only"#));
    let page = post(
        &mut admin,
        "/admin/users/role",
        &[("name", "admin"), ("admin", "no")],
    );
    assert!(page.contains("admin is the last administrator"), "{page}");
    let page = post(
        &mut admin,
        "/admin/users/password",
        &[("name", "bob"), ("password", "bob-new-password")],
    );
    assert!(page.contains("Set a new password for bob."));
    let page = post(
        &mut admin,
        "/admin/acl",
        &[("user", "bob"), ("topic", "x/<b>/#"), ("access", "read")],
    );
    assert!(
        page.contains("Added ACL rule 1: bob read x/&lt;b&gt;/#."),
        "{page}"
    );
    assert!(page.contains("<code class=\"topic\">x/<wbr>&lt;b&gt;/<wbr>#</code>"));
    let page = post(
        &mut admin,
        "/admin/acl",
        &[("user", ""), ("topic", "t/%u/#"), ("access", "rw")],
    );
    assert!(page.contains("<p class=\"error\""), "{page}");
    let page = post(&mut admin, "/admin/acl/delete", &[("id", "1")]);
    assert!(page.contains("Deleted ACL rule 1."));
    let page = post(&mut admin, "/admin/users/delete", &[("name", "bob")]);
    assert!(page.contains("Deleted user bob."));
    assert!(page.contains(r#"data-confirm="Disconnect client watcher?""#));

    // Forms without the session's token are refused and change nothing.
    let refused = admin.post_form(
        "/admin/users",
        &[("name", "eve"), ("password", "eve-password")],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(admin.get("/api/users").json().as_array().unwrap().len(), 1);
}

fn reset_post(port: u16, fields: &[(&str, &str)]) -> Response {
    let mut client = Client::new(port);
    let form = client.get("/reset");
    assert_eq!(form.status, 200);
    let csrf = form.csrf_field();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    client.post_form("/reset", &all)
}

/// A forgotten password is reset on the web with the security question: /login links
/// to /reset, which shows the question (escaped) and checks the answer with the chat's
/// own reset, under its attempt windows; the old password stops working at once.
#[test]
fn a_forgotten_password_is_reset_on_the_web_with_the_security_question() {
    reset_on_the_web("");
}

/// The same with the chat service off: the reset belongs to accounts, not to the chat.
#[test]
fn a_forgotten_password_is_reset_on_the_web_with_the_chat_service_off() {
    reset_on_the_web("chat = false\n");
}

fn reset_on_the_web(config: &str) {
    let broker = console::start_with(&[ALICE, ("bob", "bob-password", false)], config);
    let port = broker.web_port();
    let (mut alice, csrf) = logged_in(port, "alice", "alice-password");
    let set = alice.post_form(
        "/account/question",
        &[
            ("csrf", &csrf),
            ("question", "<b>First</b> pet?"),
            ("answer", " Rex "),
        ],
    );
    assert_eq!(set.status, 303);
    // A login over MQTT that the broker caches; the reset must end it.
    mqtt_login(broker.port(), "alice-1", "alice", "alice-password").unwrap();

    assert!(Client::new(port)
        .get("/login")
        .body
        .contains(r#"href="/reset""#));
    let question = reset_post(port, &[("username", "alice")]);
    assert_eq!(question.status, 200, "{}", question.body);
    assert!(question.body.contains("&lt;b&gt;First&lt;/b&gt; pet?"));
    assert!(!question.body.contains("<b>First"));
    let unknown = reset_post(port, &[("username", "nobody")]);
    assert_eq!(unknown.status, 404);
    let no_question = reset_post(port, &[("username", "bob")]);
    assert_eq!(no_question.status, 404);

    let answer = |answer: &str, password: &str, repeat: &str| {
        reset_post(
            port,
            &[
                ("username", "alice"),
                ("answer", answer),
                ("password", password),
                ("repeat", repeat),
            ],
        )
    };
    let short = answer("rex", "short", "short");
    assert_eq!(short.status, 400);
    let differ = answer("rex", "alice-new-password", "alice-other-password");
    assert_eq!(differ.status, 400);
    let wrong = answer("fido", "alice-new-password", "alice-new-password");
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(wrong.body.contains("wrong user name or answer"));
    let right = answer("  REX", "alice-new-password", "alice-new-password");
    assert_eq!(right.status, 200, "{}", right.body);
    assert!(right.body.contains("Your password is changed"));
    assert_eq!(alice.get("/api/me").status, 401, "the old session ended");
    assert!(mqtt_login(broker.port(), "alice-2", "alice", "alice-password").is_err());
    let mut web = Client::new(port);
    let login = console::login(&mut web, "alice", "alice-new-password");
    assert_eq!(login.status, 303);
    assert_eq!(
        login.header("location"),
        Some("/chat"),
        "a user lands on the chat"
    );

    // The reset throttle, as over MQTT: after 5 failures from one address the next try
    // waits (one failure so far; the success took back its own count).
    for _ in 0..4 {
        assert_eq!(
            answer("fido", "alice-x-password", "alice-x-password").status,
            403
        );
    }
    let limited = answer("rex", "alice-x-password", "alice-x-password");
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("too many failed reset attempts"));

    // Without the form's token nothing is checked.
    let forged = Client::new(port).post_form(
        "/reset",
        &[
            ("username", "alice"),
            ("answer", "rex"),
            ("password", "p-password"),
            ("repeat", "p-password"),
        ],
    );
    assert_eq!(forged.status, 403);
}
