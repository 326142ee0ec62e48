//! Offline persistent sessions on the console: the sessions kept for clients that are
//! away (client id, user, when each expires, queued messages, subscriptions), as page
//! rows and JSON, and deleting one (as its expiry would: a pending will is published).

use std::fmt::Write;

use serde_json::json;

use super::admin::topic_html;
use super::admin_manage::button_form;
use super::commands::{busy, loop_refusal, Outcome, Refusal};
use super::html::escape;
use super::routes::Auth;
use super::server::Context;
use crate::broker::console::{ConsoleAnswer, ConsoleAsk, Rows, SessionInfo};
use crate::clock;
use crate::store::Store;

/// The offline sessions, or why they could not be read.
pub fn list(context: &Context) -> Result<Rows<SessionInfo>, Refusal> {
    match context.ask(ConsoleAsk::OfflineSessions).map_err(busy)? {
        ConsoleAnswer::Sessions(rows) => Ok(rows),
        other => Err(loop_refusal(other)),
    }
}

/// Unix seconds when the session of `s` expires: its client's last disconnect (from the
/// client records) plus its expiry interval. `None` when it never expires or the
/// disconnect was not recorded.
fn expires_at(store: &Store, s: &SessionInfo) -> Option<i64> {
    let interval = s.expiry_interval?;
    let gone = store.disconnected_at(&s.client_id).unwrap_or_else(|e| {
        log::warn!("web console: cannot read the client records: {e}");
        None
    })?;
    Some(gone + i64::from(interval))
}

pub fn json_rows(store: &Store, rows: &Rows<SessionInfo>) -> serde_json::Value {
    let list: Vec<_> = rows
        .rows
        .iter()
        .map(|s| {
            let mut row = serde_json::to_value(s).expect("session rows serialise");
            row["expires_at"] = json!(expires_at(store, s));
            row
        })
        .collect();
    json!({ "total": rows.total, "rows": list })
}

pub fn rows_html(store: &Store, rows: &[SessionInfo], csrf: &str) -> String {
    if rows.is_empty() {
        return r#"<tr><td colspan="6" class="empty">no offline sessions</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for s in rows {
        let id = s.client_id.as_str();
        let expires = match (s.expiry_interval, expires_at(store, s)) {
            (None, _) => "never".to_owned(),
            (Some(_), Some(at)) => format!(r#"<time datetime="{at}">{}</time>"#, clock::utc(at)),
            (Some(secs), None) => format!("{secs} s after its disconnect"),
        };
        let subs: Vec<String> = s
            .subscriptions
            .iter()
            .map(|f| format!("<code>{}</code> q{}", topic_html(&f.filter), f.qos))
            .collect();
        let _ = write!(
            out,
            r#"<tr data-session="{client}"><td data-label="client"><code>{client}</code></td><td data-label="user">{user}</td><td data-label="expires">{expires}</td><td data-label="queued">{queued}</td><td data-label="subscriptions">{subs}</td><td>{delete}</td></tr>"#,
            client = escape(id),
            user = escape(s.username.as_deref().unwrap_or("—")),
            queued = s.queued,
            subs = if subs.is_empty() {
                "—".to_owned()
            } else {
                subs.join("<br>")
            },
            delete = button_form(
                "/admin/sessions/delete",
                csrf,
                &[("client_id", id)],
                "Delete",
                "stop",
                Some(&format!(
                    "Delete the session of {id} with its {} queued messages?",
                    s.queued
                )),
            ),
        );
    }
    out
}

/// Deletes the offline session of `client_id`.
pub fn delete(context: &Context, auth: &Auth, client_id: &str) -> Outcome {
    if client_id.is_empty() {
        return Err(Refusal::new(400, "missing_id", "give the client id"));
    }
    match context
        .ask(ConsoleAsk::DeleteSession(client_id.to_owned()))
        .map_err(busy)?
    {
        ConsoleAnswer::Done => {
            log::info!(
                "web console: {} deleted the offline session of {client_id}",
                auth.user.name
            );
            Ok(format!("Deleted the session of {client_id}."))
        }
        ConsoleAnswer::NotFound => Err(Refusal::new(
            404,
            "not_found",
            format!("there is no session {client_id}"),
        )),
        other => Err(loop_refusal(other)),
    }
}
