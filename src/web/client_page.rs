//! `/admin/client?id=…`: one connected client in detail — connection, traffic with
//! per-client rates, will, subscriptions with their options — with disconnect and ban
//! buttons; and `GET /api/clients/detail?id=…`, the same as JSON, which
//! `assets/client.js` polls to measure the rates while the page is open.

use std::fmt::Write;

use serde_json::json;

use super::admin::{connected_since, duration, size, topic_html};
use super::admin_manage::button_form;
use super::api::{answer, with_admin};
use super::form;
use super::html::{self, Value};
use super::pages::{message, page, require_admin};
use super::server::{Context, Reply, Req};
use crate::broker::console::{ClientDetail, ConsoleAnswer, ConsoleAsk};
use crate::clock;
use crate::store::Store;

const CLIENT: &str = include_str!("../../assets/client.html");
const SCRIPTS: &str = r#"<script src="/assets/client.js" defer></script>"#;

fn asked_id(req: &Req) -> Option<&str> {
    form::get(&req.query, "id").filter(|id| !id.is_empty())
}

/// `GET /api/clients/detail?id=…`.
pub fn json(context: &Context, store: &Store, req: &Req) -> Reply {
    with_admin(context, store, req, |_| {
        let Some(id) = asked_id(req) else {
            return Reply::json_error(400, "missing_id", "give the client id as ?id=…");
        };
        match context.ask(ConsoleAsk::Client(id.to_owned())) {
            Ok(ConsoleAnswer::Client(detail)) => {
                let mut value = serde_json::to_value(&*detail).expect("client detail serialises");
                value["connected_since"] = json!(connected_since(store, id));
                Reply::json(200, &value)
            }
            Ok(ConsoleAnswer::NotFound) => {
                Reply::json_error(404, "not_found", "no client with that id is connected")
            }
            other => answer(other),
        }
    })
}

/// `GET /admin/client?id=…`.
pub fn html_page(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_admin(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let Some(id) = asked_id(req) else {
        return message(400, "No client", "give the client id as ?id=…");
    };
    let detail = match context.ask(ConsoleAsk::Client(id.to_owned())) {
        Ok(ConsoleAnswer::Client(detail)) => detail,
        Ok(ConsoleAnswer::NotFound) => {
            return message(
                404,
                "Not connected",
                &format!(
                "no client {id} is connected (an offline session is listed under Offline sessions)"
            ),
            )
        }
        _ => return message(503, "Busy", "the broker did not answer in time; try again"),
    };
    let since = connected_since(store, id);
    let main = render(&detail, since, &auth.session.csrf);
    page(200, &format!("Client {id}"), Some(&auth), &main, SCRIPTS)
}

fn render(c: &ClientDetail, since: Option<i64>, csrf: &str) -> String {
    // Without JavaScript the rates are averages since the connect.
    let up = since.map(|s| (clock::unix_seconds() - s).max(1) as f64);
    let rate = |a: u64, b: u64, unit: fn(f64) -> String| match up {
        Some(secs) => format!("{} / {}", unit(a as f64 / secs), unit(b as f64 / secs)),
        None => "—".to_owned(),
    };
    let subs = &c.subscriptions;
    html::render(
        CLIENT,
        &[
            ("client_id", Value::Text(&c.client_id)),
            ("user", Value::Text(c.username.as_deref().unwrap_or("—"))),
            ("address", Value::Text(&c.address)),
            ("protocol", Value::Text(c.protocol)),
            (
                "since",
                Value::Html(&since.map_or_else(|| "—".to_owned(), time_html)),
            ),
            ("keep_alive", Value::Text(&keep_alive(c.keep_alive))),
            (
                "clean_start",
                Value::Text(if c.clean_start { "yes" } else { "no" }),
            ),
            (
                "session_expiry",
                Value::Text(&session_expiry(c.session_expiry)),
            ),
            (
                "receive_maximum",
                Value::Text(&c.receive_maximum.to_string()),
            ),
            (
                "max_packet_size",
                Value::Text(&size(u64::from(c.max_packet_size))),
            ),
            ("messages_in", Value::Text(&c.messages_in.to_string())),
            ("messages_out", Value::Text(&c.messages_out.to_string())),
            ("bytes_in", Value::Text(&size(c.bytes_in))),
            ("bytes_out", Value::Text(&size(c.bytes_out))),
            (
                "message_rates",
                Value::Text(&rate(c.messages_in, c.messages_out, |r| format!("{r:.1}"))),
            ),
            (
                "byte_rates",
                Value::Text(&rate(c.bytes_in, c.bytes_out, |r| {
                    format!("{}/s", size(r as u64))
                })),
            ),
            ("inflight", Value::Text(&c.inflight.to_string())),
            ("queued", Value::Text(&c.queued.to_string())),
            ("incoming_qos2", Value::Text(&c.incoming_qos2.to_string())),
            ("will", Value::Html(&will_html(c))),
            ("subscription_count", Value::Text(&subs.len().to_string())),
            ("subscriptions", Value::Html(&subscription_rows(c))),
            ("actions", Value::Html(&actions(c, csrf))),
        ],
    )
}

fn time_html(unix: i64) -> String {
    format!(r#"<time datetime="{unix}">{}</time>"#, clock::utc(unix))
}

fn keep_alive(secs: u16) -> String {
    if secs == 0 {
        "off".to_owned()
    } else {
        format!("{secs} s")
    }
}

/// A Session Expiry Interval as people read it.
pub fn session_expiry(secs: Option<u32>) -> String {
    match secs {
        None => "never (kept until deleted)".to_owned(),
        Some(0) => "0 (ends with the connection)".to_owned(),
        Some(s) => duration(u64::from(s)),
    }
}

fn will_html(c: &ClientDetail) -> String {
    let Some(w) = &c.will else {
        return r#"<p class="empty">no will</p>"#.to_owned();
    };
    format!(
        r#"<dl class="facts"><dt>topic</dt><dd><code class="topic">{topic}</code></dd><dt>QoS</dt><dd>{qos}</dd><dt>retain</dt><dd>{retain}</dd><dt>delay</dt><dd>{delay}</dd><dt>payload</dt><dd>{size}</dd></dl>"#,
        topic = topic_html(&w.topic),
        qos = w.qos,
        retain = if w.retain { "yes" } else { "no" },
        delay = if w.delay == 0 {
            "none".to_owned()
        } else {
            duration(u64::from(w.delay))
        },
        size = size(w.size as u64),
    )
}

fn subscription_rows(c: &ClientDetail) -> String {
    if c.subscriptions.is_empty() {
        return r#"<tr><td colspan="6" class="empty">no subscriptions</td></tr>"#.to_owned();
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut out = String::new();
    for s in &c.subscriptions {
        let _ = write!(
            out,
            r#"<tr><td data-label="filter"><code class="topic">{filter}</code></td><td data-label="QoS">{qos}</td><td data-label="no local">{nl}</td><td data-label="retain as published">{rap}</td><td data-label="retain handling">{rh}</td><td data-label="identifier">{id}</td></tr>"#,
            filter = topic_html(&s.filter),
            qos = s.qos,
            nl = yes_no(s.no_local),
            rap = yes_no(s.retain_as_published),
            rh = match s.retain_handling {
                0 => "send on subscribe",
                1 => "send if new",
                _ => "never send",
            },
            id = s
                .identifier
                .map_or_else(|| "—".to_owned(), |i| i.to_string()),
        );
    }
    out
}

fn actions(c: &ClientDetail, csrf: &str) -> String {
    let id = c.client_id.as_str();
    let mut out = button_form(
        "/admin/disconnect",
        csrf,
        &[("client_id", id)],
        "Disconnect",
        "stop",
        Some(&format!("Disconnect client {id}?")),
    );
    let ip = c
        .address
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_default();
    let mut bans = vec![("client_id", "client id", id)];
    if let Some(user) = c.username.as_deref() {
        bans.push(("username", "user", user));
    }
    if !ip.is_empty() {
        bans.push(("address", "address", ip.as_str()));
    }
    for (kind, label, value) in bans {
        out.push_str(&button_form(
            "/admin/bans",
            csrf,
            &[("kind", kind), ("value", value)],
            &format!("Ban {label} {value}"),
            "stop",
            Some(&format!(
                "Ban {label} {value}? Every client it names is disconnected now and refused until the ban is lifted."
            )),
        ));
    }
    out
}
