//! One client in detail and the offline persistent sessions, over real HTTP against the
//! real binary with real rumqttc clients: `/api/clients/detail` and `/admin/client` show
//! the will, session expiry, clean start, subscription options and per-client counters;
//! `/api/sessions` lists the sessions of clients that are away (expiry, queue,
//! subscriptions) and deleting one ends it (its queue gone, its will published, durable
//! across a restart). Admins only; commands need their CSRF token.

mod common;

use std::time::Duration;

use common::clients::{V5, WAIT};
use common::console::{self, logged_in};
use common::http::{Client, Response};
use rumqttc::v5::mqttbytes::v5::{
    Filter, LastWill, LastWillProperties, RetainForwardRule, SubscribeProperties,
};
use rumqttc::v5::mqttbytes::QoS;

const ADMIN: (&str, &str, bool) = ("admin", "admin-password", true);
const ALICE: (&str, &str, bool) = ("alice", "alice-password", false);

fn delete(client: &mut Client, path: &str, csrf: &str) -> Response {
    client.send("DELETE", path, &[("X-CSRF-Token", csrf)], b"")
}

/// A persistent MQTT 5 client with a delayed will and subscriptions with every option.
fn detailed_client(port: u16, id: &str) -> V5 {
    let mut opts = V5::persistent_options(port, id, 600);
    opts.set_last_will(LastWill::new(
        "status/<dev>",
        "gone",
        QoS::AtLeastOnce,
        true,
        Some(LastWillProperties {
            delay_interval: Some(30),
            payload_format_indicator: None,
            message_expiry_interval: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: Vec::new(),
        }),
    ));
    let client = V5::connect_with(opts);
    let mut filter = Filter::new("site/+/temp", QoS::ExactlyOnce);
    filter.nolocal = true;
    filter.preserve_retain = true;
    filter.retain_forward_rule = RetainForwardRule::Never;
    client
        .client
        .subscribe_many_with_properties(
            [filter, Filter::new("cmd/#", QoS::AtMostOnce)],
            SubscribeProperties {
                id: Some(7),
                user_properties: Vec::new(),
            },
        )
        .unwrap();
    client.expect(|p| matches!(p, rumqttc::v5::Incoming::SubAck(_)), "SUBACK");
    client
}

#[test]
fn a_client_in_detail_with_its_will_options_and_counters() {
    let broker = console::start(&[ADMIN, ALICE]);
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    let dev = detailed_client(broker.port(), "dev<1>");
    for _ in 0..3 {
        dev.publish("site/1/hum", QoS::AtLeastOnce, false, "40");
    }

    let answer = admin.get("/api/clients/detail?id=dev%3C1%3E");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let d = answer.json();
    assert_eq!(d["client_id"], "dev<1>");
    assert_eq!(d["protocol"], "5");
    assert_eq!(d["clean_start"], false);
    assert_eq!(d["session_expiry"], 600);
    assert_eq!(d["keep_alive"], 30);
    assert_eq!(d["will"]["topic"], "status/<dev>");
    assert_eq!(d["will"]["qos"], 1);
    assert_eq!(d["will"]["retain"], true);
    assert_eq!(d["will"]["delay"], 30);
    assert_eq!(d["will"]["size"], 4);
    assert_eq!(d["messages_in"], 3);
    assert!(d["bytes_in"].as_u64().unwrap() > 0);
    let subs = d["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0]["filter"], "cmd/#");
    assert_eq!(subs[1]["filter"], "site/+/temp");
    assert_eq!(subs[1]["qos"], 2);
    assert_eq!(subs[1]["no_local"], true);
    assert_eq!(subs[1]["retain_as_published"], true);
    assert_eq!(subs[1]["retain_handling"], 2);
    assert_eq!(subs[1]["identifier"], 7);

    // The page: escaped, reachable from the clients list, with kick and ban buttons.
    let list = admin.get("/admin").body;
    assert!(list.contains(r#"<a href="/admin/client?id=dev%3C1%3E"><code>dev&lt;1&gt;</code></a>"#));
    let page = admin.get("/admin/client?id=dev%3C1%3E");
    assert_eq!(page.status, 200);
    let body = page.body;
    assert!(
        body.contains("status/<wbr>&lt;dev&gt;"),
        "the will topic, escaped"
    );
    assert!(!body.contains("<dev>"));
    assert!(body.contains("never send"), "retain handling 2");
    assert!(body.contains(r#"data-confirm="Disconnect client dev&lt;1&gt;?""#));
    assert!(body.contains(r#"name="kind" value="address""#));
    assert!(body.contains("Ban client id dev&lt;1&gt;"));
    assert!(body.contains("<script src=\"/assets/client.js\" defer></script>"));
    assert!(body.len() < 100 * 1024);

    assert_eq!(admin.get("/api/clients/detail?id=nobody").status, 404);
    assert_eq!(admin.get("/api/clients/detail").status, 400);
    assert_eq!(admin.get("/admin/client?id=nobody").status, 404);
    let (mut alice, _) = logged_in(broker.web_port(), "alice", "alice-password");
    assert_eq!(alice.get("/api/clients/detail?id=dev%3C1%3E").status, 403);
    assert_eq!(alice.get("/admin/client?id=dev%3C1%3E").status, 403);
    assert_eq!(
        Client::new(broker.web_port())
            .get("/api/clients/detail?id=x")
            .status,
        401
    );
}

#[test]
fn offline_sessions_are_listed_and_deleted_for_good() {
    let mut broker = console::start(&[ADMIN]);
    let (mut admin, csrf) = logged_in(broker.web_port(), "admin", "admin-password");
    let away = detailed_client(broker.port(), "away");
    // Lost, not a normal DISCONNECT: the will waits for its 30 s delay.
    away.drop_connection();
    broker.wait_disconnected("away");
    let never = V5::persistent_options(broker.port(), "kept", u32::MAX);
    V5::connect_with(never).disconnect();
    broker.wait_disconnected("kept");
    let publisher = V5::connect(broker.port(), "pub");
    for i in 0..4 {
        publisher.publish("site/1/temp", QoS::AtLeastOnce, false, format!("{i}"));
    }
    let online = V5::persistent_options(broker.port(), "online", 60);
    let _online = V5::connect_with(online);

    // The expiry time comes from the client records, which the broker writes within about
    // a second of a disconnect: wait for it.
    let deadline = std::time::Instant::now() + WAIT;
    let list = loop {
        let list = admin.get("/api/sessions").json();
        if !list["rows"][0]["expires_at"].is_null() || std::time::Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(list["total"], 2, "{list}");
    let away_row = &list["rows"][0];
    assert_eq!(away_row["client_id"], "away");
    assert_eq!(away_row["expiry_interval"], 600);
    assert_eq!(away_row["queued"], 4);
    assert_eq!(away_row["will_topic"], "status/<dev>");
    assert_eq!(away_row["subscriptions"][1]["filter"], "site/+/temp");
    let expires = away_row["expires_at"].as_i64().expect("an expiry time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 590..=now + 601).contains(&expires),
        "{expires} vs {now}"
    );
    assert_eq!(list["rows"][1]["client_id"], "kept");
    assert_eq!(list["rows"][1]["expiry_interval"], serde_json::Value::Null);
    let page = admin.get("/admin").body;
    assert!(
        page.contains(r#"data-confirm="Delete the session of away with its 4 queued messages?""#)
    );

    // The will it still owes goes out when it is deleted.
    let watcher = V5::connect(broker.port(), "watcher");
    watcher.subscribe("status/#", QoS::AtLeastOnce);
    let deleted = delete(&mut admin, "/api/sessions/away", &csrf);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.json()["done"], "Deleted the session of away.");
    let will = watcher.expect_publish();
    assert_eq!(&will.topic[..], b"status/<dev>");
    assert_eq!(admin.get("/api/sessions").json()["total"], 1);
    assert_eq!(delete(&mut admin, "/api/sessions/away", &csrf).status, 404);
    let busy = delete(&mut admin, "/api/sessions/online", &csrf);
    assert_eq!(
        busy.status, 409,
        "a connected client's session: {}",
        busy.body
    );
    assert_eq!(
        delete(&mut admin, "/api/sessions/kept", "wrong").status,
        403
    );
    // The log line reaches the test through a pipe: wait for it.
    assert!(broker
        .wait_for_log(WAIT, |l| l
            .contains("web console: admin deleted the offline session of away"))
        .is_some());

    // The form, without JavaScript.
    let posted = admin.post_form(
        "/admin/sessions/delete",
        &[("csrf", &csrf), ("client_id", "kept")],
    );
    assert_eq!(posted.status, 303);
    assert!(admin
        .get("/admin")
        .body
        .contains("Deleted the session of kept."));

    // Gone from the store: after a restart the client starts afresh, nothing queued.
    broker.restart();
    let back = V5::connect_with(V5::persistent_options(broker.port(), "away", 600));
    assert!(!back.connack.session_present);
    assert!(back.recv_publish(Duration::from_millis(500)).is_none());
}

/// "Last 10 messages" shows whole payloads (up to 4 KiB each), JSON pretty-printed, not
/// a 128-byte preview; larger ones are cut and say so.
#[test]
fn the_last_messages_show_whole_payloads_pretty_printed() {
    let broker = console::start(&[ADMIN]);
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    let publisher = V5::connect(broker.port(), "sensor");
    let readings: Vec<String> = (0..60).map(|i| format!("\"r{i}\": {i}.5")).collect();
    let json = format!("{{{}}}", readings.join(", "));
    assert!(json.len() > 600);
    publisher.publish("site/<1>/json", QoS::AtLeastOnce, false, json.clone());
    publisher.publish(
        "site/<1>/json",
        QoS::AtLeastOnce,
        false,
        vec![0xffu8; 10_000],
    );

    let list = admin
        .get("/api/topics/messages?topic=site%2F%3C1%3E%2Fjson")
        .json();
    let (big, whole) = (&list[0], &list[1]);
    assert_eq!(whole["size"], json.len());
    assert_eq!(whole["kept"], json.len());
    assert_eq!(whole["payload"]["truncated"], false);
    let pretty = whole["payload"]["json"].as_str().expect("pretty JSON");
    assert!(pretty.starts_with("{\n  \"r0\": 0.5,\n"), "{pretty}");
    assert!(pretty.contains("\"r59\": 59.5"));
    assert!(
        whole["preview"].as_str().unwrap().ends_with('…'),
        "the preview is still short"
    );
    assert_eq!(big["size"], 10_000);
    assert_eq!(big["kept"], 4096);
    assert_eq!(big["payload"]["truncated"], true);
    assert!(big["payload"]["hex"].as_str().unwrap().starts_with("ff ff"));

    let page = admin.get("/admin?topic=site%2F%3C1%3E%2Fjson").body;
    assert!(page.contains(r#"<pre class="payload" data-kind="json">{"#));
    assert!(page.contains("&quot;r59&quot;: 59.5"));
    assert!(page.contains("(first 4096 of 10000 bytes)"));
}

/// "Last 10 messages" shows each message's MQTT 5 properties as the watch does, whether
/// anybody subscribes to the topic (the message is routed) or nobody does (it is only
/// noted), escaped on the page; a message without properties shows none.
#[test]
fn the_last_messages_show_their_mqtt5_properties() {
    use rumqttc::v5::mqttbytes::v5::PublishProperties;
    let broker = console::start(&[ADMIN]);
    let (mut admin, _) = logged_in(broker.web_port(), "admin", "admin-password");
    let publisher = V5::connect(broker.port(), "sensor");
    let subscriber = V5::connect(broker.port(), "listener");
    subscriber.subscribe("routed/#", QoS::AtLeastOnce);
    let properties = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(600),
        content_type: Some("application/<json>".to_owned()),
        response_topic: Some("reply/here".to_owned()),
        correlation_data: Some(vec![0xca, 0xfe].into()),
        user_properties: vec![("unit".to_owned(), "<C>".to_owned())],
        ..PublishProperties::default()
    };
    for topic in ["routed/a", "quiet/a"] {
        publisher
            .client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, "21.5", properties.clone())
            .unwrap();
        publisher.expect(|p| matches!(p, rumqttc::v5::Incoming::PubAck(_)), "PUBACK");
        publisher.publish(topic, QoS::AtLeastOnce, false, "22");
    }
    subscriber.expect_publish();

    for topic in ["routed%2Fa", "quiet%2Fa"] {
        let list = admin
            .get(&format!("/api/topics/messages?topic={topic}"))
            .json();
        let (plain, with) = (&list[0], &list[1]);
        assert!(plain["properties"].is_null(), "{topic}: {plain}");
        let p = &with["properties"];
        assert_eq!(p["payload_format"], 1, "{topic}: {p}");
        assert_eq!(p["content_type"], "application/<json>");
        assert_eq!(p["response_topic"], "reply/here");
        assert_eq!(p["correlation_data"], serde_json::json!([0xca, 0xfe]));
        assert_eq!(p["user_properties"], serde_json::json!([["unit", "<C>"]]));
        let expiry = p["message_expiry"].as_u64().unwrap();
        assert!(expiry > 0 && expiry <= 600, "{topic}: expiry {expiry}");
        assert_eq!(with["properties_dropped"], false);

        let page = admin.get(&format!("/admin?topic={topic}")).body;
        assert!(
            page.contains("<dt>content type</dt><dd>application/&lt;json&gt;</dd>"),
            "{topic}: the page shows the content type, escaped"
        );
        assert!(page.contains("<dt>payload format</dt><dd>UTF-8 text</dd>"));
        assert!(page.contains("<dt>correlation data</dt><dd>ca fe</dd>"));
        assert!(page.contains("<dt>response topic</dt><dd>reply/here</dd>"));
        assert!(page.contains("<dt>unit</dt><dd>&lt;C&gt;</dd>"));
        assert_eq!(page.matches(r#"<dl class="props">"#).count(), 1, "{topic}");
    }
}
