//! The admin page's content, rendered on the server from the loop's answers and the
//! users table, so the console works without JavaScript; `assets/admin.js` then keeps the
//! same tables (same ids) and the rate charts live through the JSON API.

use std::fmt::Write;

use super::admin_manage as manage;
use super::bans;
use super::form;
use super::html::{self, escape, Value};
use super::routes::Auth;
use super::server::Context;
use crate::broker::console::{
    AskError, BridgeInfo, ClientInfo, ConsoleAnswer, ConsoleAsk, FilterInfo, LinkState,
    ListenerInfo, MessageInfo, Rows, SeenProperties, StatsSnapshot, TopicInfo, PREVIEW_BYTES,
};
use crate::clock::utc;
use crate::protocol::ProtocolVersion;
use crate::store::Store;

const ADMIN: &str = include_str!("../../assets/admin.html");

/// Why the page could not be filled.
#[derive(Debug)]
pub enum AdminError {
    Ask(AskError),
    /// The loop answered something else than asked (a bug).
    Unexpected,
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Ask(AskError::Timeout) => f.write_str("no answer in time"),
            AdminError::Ask(AskError::Send(e)) => write!(f, "{e}"),
            AdminError::Unexpected => f.write_str("an unexpected answer"),
        }
    }
}

fn ask(context: &Context, what: ConsoleAsk) -> Result<ConsoleAnswer, AdminError> {
    context.ask(what).map_err(AdminError::Ask)
}

/// The `<main>` of `/admin`. The query picks what is shown in detail: `topic` the topic
/// whose last messages are shown, `prefix` the retained messages listed, `retained` the
/// retained message shown in full.
pub fn render(
    context: &Context,
    store: &Store,
    auth: &Auth,
    query: &[(String, String)],
    notice: &str,
) -> Result<String, AdminError> {
    let given = |name| form::get(query, name).filter(|t| !t.is_empty());
    let (topic, prefix, retained_topic) = (given("topic"), given("prefix"), given("retained"));
    let ConsoleAnswer::Stats(stats) = ask(context, ConsoleAsk::Stats)? else {
        return Err(AdminError::Unexpected);
    };
    let ConsoleAnswer::Listeners(listeners) = ask(context, ConsoleAsk::Listeners)? else {
        return Err(AdminError::Unexpected);
    };
    let ConsoleAnswer::Bridges(bridges) = ask(context, ConsoleAsk::Bridges)? else {
        return Err(AdminError::Unexpected);
    };
    let ConsoleAnswer::Clients(clients) = ask(context, ConsoleAsk::Clients)? else {
        return Err(AdminError::Unexpected);
    };
    let ConsoleAnswer::Subscribers(filters) = ask(context, ConsoleAsk::Subscribers)? else {
        return Err(AdminError::Unexpected);
    };
    let ConsoleAnswer::Topics(topics) = ask(context, ConsoleAsk::Topics)? else {
        return Err(AdminError::Unexpected);
    };
    let messages = match topic {
        Some(t) => match ask(context, ConsoleAsk::TopicMessages(t.to_owned()))? {
            ConsoleAnswer::Messages(m) => Some(m),
            _ => None,
        },
        None => None,
    };
    let ConsoleAnswer::Retained(retained) = ask(
        context,
        ConsoleAsk::Retained(prefix.unwrap_or("").to_owned()),
    )?
    else {
        return Err(AdminError::Unexpected);
    };
    let retained_one = match retained_topic {
        Some(t) => match ask(context, ConsoleAsk::RetainedMessage(t.to_owned()))? {
            ConsoleAnswer::RetainedMessage(m) => Some(m),
            _ => None,
        },
        None => None,
    };
    let users = store.list_users().unwrap_or_else(|e| {
        log::warn!("web console: cannot list users: {e}");
        Vec::new()
    });
    let rules = store.list_acl_rules().unwrap_or_else(|e| {
        log::warn!("web console: cannot list the ACL rules: {e}");
        Vec::new()
    });
    let offline = super::sessions::list(context).map_err(|_| AdminError::Unexpected)?;
    let bans = store.list_bans().unwrap_or_else(|e| {
        log::warn!("web console: cannot list the bans: {e}");
        Vec::new()
    });
    let csrf = &auth.session.csrf;
    Ok(html::render(
        ADMIN,
        &[
            ("notice", Value::Html(notice)),
            ("stats", Value::Html(&stats_html(&stats))),
            ("listeners", Value::Html(&listener_rows(&listeners, csrf))),
            ("certificate", Value::Html(&certificate_html(context))),
            ("bridges", Value::Html(&bridge_table(&bridges))),
            ("clients_total", Value::Text(&count_text(&clients))),
            (
                "clients",
                Value::Html(&client_rows(store, &clients.rows, csrf)),
            ),
            ("filters_total", Value::Text(&count_text(&filters))),
            ("filters", Value::Html(&filter_rows(&filters.rows))),
            ("topics_total", Value::Text(&count_text(&topics))),
            ("topics", Value::Html(&topic_rows(&topics.rows))),
            ("topic", Value::Text(topic.unwrap_or(""))),
            (
                "messages",
                Value::Html(&message_rows(topic, messages.as_deref())),
            ),
            ("csrf", Value::Text(csrf)),
            ("retained_total", Value::Text(&count_text(&retained))),
            ("prefix", Value::Text(prefix.unwrap_or(""))),
            (
                "retained",
                Value::Html(&manage::retained_rows(&retained, csrf)),
            ),
            (
                "retained_detail",
                Value::Html(&manage::retained_detail(
                    retained_one.as_ref(),
                    retained_topic,
                )),
            ),
            ("users", Value::Html(&manage::user_rows(&users, csrf))),
            ("user_options", Value::Html(&manage::user_options(&users))),
            ("rules", Value::Html(&manage::acl_rows(&rules, csrf))),
            ("bans", Value::Html(&bans::ban_rows(&bans, csrf))),
            ("sessions_total", Value::Text(&count_text(&offline))),
            (
                "sessions",
                Value::Html(&super::sessions::rows_html(store, &offline.rows, csrf)),
            ),
        ],
    ))
}

/// The fingerprint of the console's HTTPS certificate, to compare with the browser's.
fn certificate_html(context: &Context) -> String {
    match &context.tls_fingerprint {
        Some(print) => format!(
            r#"<p class="hint" id="certificate">HTTPS certificate SHA-256 fingerprint: <code>{}</code> (the browser shows it under the certificate's details; they must match).</p>"#,
            html::escape(print)
        ),
        None => String::new(),
    }
}

fn count_text<T>(rows: &Rows<T>) -> String {
    if rows.total > rows.rows.len() {
        format!("{} of {}", rows.rows.len(), rows.total)
    } else {
        rows.total.to_string()
    }
}

fn stats_html(s: &StatsSnapshot) -> String {
    let cells = [
        (
            "clients_connected",
            "clients connected",
            s.clients_connected.to_string(),
        ),
        ("sessions", "sessions", s.sessions.to_string()),
        (
            "subscriptions",
            "subscriptions",
            s.subscriptions.to_string(),
        ),
        (
            "messages_received",
            "messages in",
            s.messages_received.to_string(),
        ),
        ("messages_sent", "messages out", s.messages_sent.to_string()),
        ("bytes_received", "received", size(s.bytes_received)),
        ("bytes_sent", "sent", size(s.bytes_sent)),
        ("queued_messages", "queued", s.queued_messages.to_string()),
        (
            "retained_messages",
            "retained",
            s.retained_messages.to_string(),
        ),
        ("uptime_seconds", "uptime", duration(s.uptime_seconds)),
    ];
    let mut out = String::new();
    for (key, label, value) in cells {
        let _ = write!(
            out,
            r#"<div class="stat"><span class="value" data-stat="{key}">{value}</span><span class="label">{label}</span></div>"#
        );
    }
    out
}

fn hidden_csrf(csrf: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(csrf)
    )
}

fn listener_rows(listeners: &[ListenerInfo], csrf: &str) -> String {
    let mut out = String::new();
    for l in listeners {
        let (state, action, label) = if l.running {
            ("running", "stop", "Stop")
        } else {
            ("stopped", "start", "Start")
        };
        let _ = write!(
            out,
            r#"<tr><td data-label="kind">{kind}</td><td data-label="address">{addr}</td><td data-label="state" class="state-{state}">{state}</td><td data-label="connections">{conns}</td><td><form method="post" action="/admin/listener"{confirm}>{csrf}<input type="hidden" name="id" value="{id}"><input type="hidden" name="action" value="{action}"><button type="submit" class="{action}">{label}</button></form></td></tr>"#,
            kind = l.kind,
            addr = l.addr,
            conns = l.connections,
            csrf = hidden_csrf(csrf),
            id = l.id.0,
            confirm = if l.running {
                format!(
                    r#" data-confirm="Stop the {} listener on {}? Its {} clients are disconnected.""#,
                    l.kind, l.addr, l.connections
                )
            } else {
                String::new()
            },
        );
    }
    out
}

/// "5" or "3.1.1", as the client rows say it.
pub fn protocol_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5",
        ProtocolVersion::V311 => "3.1.1",
    }
}

/// Since when (Unix seconds) bridge `b`'s link has been up, if it is.
pub fn bridge_since(b: &BridgeInfo) -> Option<i64> {
    let up = b.up_for?;
    Some(crate::clock::unix_seconds() - up.as_secs() as i64)
}

/// Bytes in the largest unit that keeps a number of at least 1 (`512.0 MiB`).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A topic or filter, escaped, with a line-break opportunity after each `/` so a phone
/// wraps it between levels, never inside one.
pub fn topic_html(topic: &str) -> String {
    escape(topic).replace('/', "/<wbr>")
}

/// Seconds as days, hours and minutes (`3d 4h 12m`, `5m 3s` under an hour).
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

/// The bridges' table, or one line when none is configured (bridges are fixed at start, so
/// `assets/admin.js` keeps the table live only when there is one).
fn bridge_table(bridges: &[BridgeInfo]) -> String {
    if bridges.is_empty() {
        return r#"<p class="empty" id="bridges-none">No bridge configured (see <code>[[bridge]]</code> in docs/bridge.md).</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<div class="scroll"><table class="stack"><thead><tr><th>bridge</th><th>upstream</th><th>MQTT</th><th>link</th><th>queued</th><th>forwarded</th><th>received</th><th>dropped</th><th>connects</th><th>disk budget</th><th>last error</th></tr></thead><tbody id="bridge-rows">"#,
    );
    for b in bridges {
        let (state, link) = match (b.state, bridge_since(b)) {
            (LinkState::Up, Some(since)) => {
                ("connected", format!("connected since {}", utc(since)))
            }
            (LinkState::Up, None) => ("connected", "connected".to_owned()),
            (LinkState::Idle, _) => ("idle", "idle (lazy)".to_owned()),
            // Connecting or waiting to: not up, either way.
            (LinkState::Down | LinkState::Connecting, _) => ("down", "down".to_owned()),
        };
        let _ = write!(
            out,
            r#"<tr data-bridge="{name}"><td data-label="bridge"><code>{name}</code></td><td data-label="upstream"><code>{addr}</code></td><td data-label="MQTT">{proto}</td><td data-label="link"><span class="state-{state}">{link}</span></td><td data-label="queued">{queued} ({queued_size})</td><td data-label="forwarded">{forwarded}</td><td data-label="received">{received}</td><td data-label="dropped">{dropped}</td><td data-label="connects">{connects}</td><td data-label="disk budget">{budget}, {policy}</td><td data-label="last error">{error}</td></tr>"#,
            name = escape(&b.name),
            addr = escape(&b.address),
            proto = protocol_name(b.protocol),
            queued = b.queued,
            queued_size = size(b.queued_bytes),
            forwarded = b.forwarded,
            received = b.received,
            dropped = b.dropped,
            connects = b.connects,
            budget = size(b.max_queue_bytes),
            policy = b.queue_full,
            error = b.last_error.as_deref().map_or_else(
                || "—".to_owned(),
                |e| format!(r#"<span class="bridge-error">{}</span>"#, escape(e))
            ),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// When `client_id` connected, from the client records (the loop does not keep it).
pub fn connected_since(store: &Store, client_id: &str) -> Option<i64> {
    store.connected_at(client_id).unwrap_or_else(|e| {
        log::warn!("web console: cannot read the client records: {e}");
        None
    })
}

fn client_rows(store: &Store, clients: &[ClientInfo], csrf: &str) -> String {
    if clients.is_empty() {
        return r#"<tr><td colspan="10" class="empty">no clients connected</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for c in clients {
        let subs: Vec<String> = c
            .subscriptions
            .iter()
            .map(|s| format!("<code>{}</code> q{}", topic_html(&s.filter), s.qos))
            .collect();
        let _ = write!(
            out,
            r#"<tr><td data-label="client"><a href="/admin/client?id={link}"><code>{id}</code></a></td><td data-label="user">{user}</td><td data-label="address">{addr}</td><td data-label="MQTT">{proto}</td><td data-label="keep alive">{ka} s</td><td data-label="since">{since}</td><td data-label="in/out">{bin} / {bout}</td><td data-label="subscriptions">{subs}</td><td data-label="in flight / queued">{inflight} / {queued}</td><td><form method="post" action="/admin/disconnect" data-confirm="Disconnect client {id}?">{csrf}<input type="hidden" name="client_id" value="{id}"><button type="submit" class="stop">Disconnect</button></form></td></tr>"#,
            id = escape(&c.client_id),
            link = escape(&form::encode(&c.client_id)),
            user = escape(c.username.as_deref().unwrap_or("—")),
            addr = escape(&c.address),
            proto = c.protocol,
            ka = c.keep_alive,
            since = connected_since(store, &c.client_id).map_or_else(|| "—".to_owned(), utc),
            bin = size(c.bytes_in),
            bout = size(c.bytes_out),
            subs = if subs.is_empty() {
                "—".to_owned()
            } else {
                subs.join("<br>")
            },
            inflight = c.inflight,
            queued = c.queued,
            csrf = hidden_csrf(csrf),
        );
    }
    out
}

fn filter_rows(filters: &[FilterInfo]) -> String {
    if filters.is_empty() {
        return r#"<tr><td colspan="2" class="empty">no subscriptions</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for f in filters {
        let subscribers: Vec<String> = f
            .subscribers
            .iter()
            .map(|s| {
                let offline = if s.online { "" } else { " (offline)" };
                format!("<code>{}</code> q{}{offline}", escape(&s.client_id), s.qos)
            })
            .collect();
        let _ = write!(
            out,
            r#"<tr><td><code>{}</code></td><td>{}</td></tr>"#,
            topic_html(&f.filter),
            subscribers.join(", ")
        );
    }
    out
}

fn topic_rows(topics: &[TopicInfo]) -> String {
    if topics.is_empty() {
        return r#"<tr><td colspan="3" class="empty">no messages yet</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for t in topics {
        let _ = write!(
            out,
            r##"<tr><td><a href="/admin?topic={link}#last"><code>{topic}</code></a></td><td>{count}</td><td>{last}</td></tr>"##,
            link = escape(&form::encode(&t.topic)),
            topic = topic_html(&t.topic),
            count = t.messages,
            last = utc((t.last_ms / 1000) as i64),
        );
    }
    out
}

/// The first 128 bytes of a payload as text: UTF-8 (lossy), marked when cut.
pub fn preview_text(m: &MessageInfo) -> String {
    let preview = &m.preview[..m.preview.len().min(PREVIEW_BYTES)];
    let mut text = String::from_utf8_lossy(preview).into_owned();
    if m.size > preview.len() {
        text.push('…');
    }
    text
}

/// A message's MQTT 5 properties as the watch shows them (a `dl.props`), or a note that
/// they were not kept; nothing when it had none.
fn properties_html(p: Option<&SeenProperties>, dropped: bool) -> String {
    let Some(p) = p else {
        return if dropped {
            r#"<p class="hint">(its properties were too long to keep)</p>"#.to_owned()
        } else {
            String::new()
        };
    };
    let mut items: Vec<(&str, String)> = Vec::new();
    if let Some(f) = p.payload_format {
        items.push((
            "payload format",
            if f == 1 { "UTF-8 text" } else { "bytes" }.into(),
        ));
    }
    if let Some(t) = &p.content_type {
        items.push(("content type", t.to_string()));
    }
    if let Some(e) = p.message_expiry {
        items.push(("message expiry", format!("{e} s")));
    }
    if let Some(t) = &p.response_topic {
        items.push(("response topic", t.to_string()));
    }
    if let Some(d) = &p.correlation_data {
        let hex: Vec<String> = d.iter().map(|b| format!("{b:02x}")).collect();
        items.push(("correlation data", hex.join(" ")));
    }
    let mut out = String::from(r#"<dl class="props">"#);
    for (k, v) in items {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", escape(&v));
    }
    for (k, v) in &p.user_properties {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    out.push_str("</dl>");
    out
}

fn message_rows(topic: Option<&str>, messages: Option<&[MessageInfo]>) -> String {
    let empty = |text: &str| format!(r#"<tr><td colspan="5" class="empty">{text}</td></tr>"#);
    match (topic, messages) {
        (None, _) => empty("choose a topic above"),
        (Some(_), None) => empty("no messages seen on this topic"),
        (Some(_), Some(messages)) => {
            let mut out = String::new();
            for m in messages {
                let _ = write!(
                    out,
                    r#"<tr><td data-label="time">{at}</td><td data-label="QoS">{qos}</td><td data-label="retained">{retain}</td><td data-label="bytes">{size}</td><td data-label="payload">{payload}{props}</td></tr>"#,
                    at = utc((m.at_ms / 1000) as i64),
                    qos = m.qos,
                    retain = if m.retain { "yes" } else { "no" },
                    size = m.size,
                    payload = manage::payload_html(&m.preview, m.size),
                    props = properties_html(m.properties.as_ref(), m.properties_dropped),
                );
            }
            out
        }
    }
}
