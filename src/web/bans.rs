//! Bans from the console: ban a client id, a user name or an address (optionally for a
//! while), lift a ban, and the rows the page and the API list. Each change is stored
//! first, then the loop reads the bans again and disconnects whom they name (MQTT 5:
//! DISCONNECT 0x98); a banned CONNECT is refused in `broker/connect.rs` (0x8A, or 3.1.1
//! return code 5).

use std::fmt::Write;

use serde_json::json;

use super::admin_manage::button_form;
use super::commands::{busy, loop_refusal, store_refusal, Outcome, Refusal};
use super::html::escape;
use super::routes::Auth;
use super::server::Context;
use crate::auth::bans as auth_bans;
use crate::broker::console::{ConsoleAnswer, ConsoleAsk};
use crate::clock;
use crate::store::{Ban, BanKind, NewBan, Store};

/// A ban as it comes from the form or the API.
#[derive(Debug, Clone, Default)]
pub struct BanInput {
    /// client_id, username or address.
    pub kind: String,
    pub value: String,
    pub reason: String,
    /// Seconds from now; `None` until lifted.
    pub expires_in: Option<u64>,
}

/// Tells the loop the bans changed: it reads them again and disconnects whom they name.
/// Returns how many clients it disconnected.
fn refresh_bans(context: &Context) -> Result<usize, Refusal> {
    match context.ask(ConsoleAsk::RefreshBans).map_err(busy)? {
        ConsoleAnswer::Disconnected(n) => Ok(n),
        other => Err(loop_refusal(other)),
    }
}

/// Stores a ban (or replaces the one on the same value) and disconnects the clients it
/// names at once.
pub fn ban(context: &Context, store: &Store, auth: &Auth, input: BanInput) -> Outcome {
    let kind: BanKind = input
        .kind
        .parse()
        .map_err(|why: String| Refusal::new(400, "bad_kind", why))?;
    let value = auth_bans::normalise(kind, &input.value)
        .map_err(|why| Refusal::new(400, "bad_value", why))?;
    let reason = auth_bans::check_reason(&input.reason)
        .map_err(|why| Refusal::new(400, "bad_reason", why))?;
    let now = clock::unix_seconds();
    let expires_at = match input.expires_in {
        None => None,
        Some(0) => return Err(Refusal::new(400, "bad_expiry", "a ban lasts at least 1 s")),
        Some(secs) => Some(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))),
    };
    let id = store
        .add_ban(&NewBan {
            kind,
            value: &value,
            reason,
            created_by: &auth.user.name,
            created_at: now,
            expires_at,
        })
        .map_err(store_refusal)?;
    let kicked = refresh_bans(context)?;
    let until = expires_at.map_or_else(
        || "until lifted".to_owned(),
        |at| format!("until {}", clock::utc(at)),
    );
    log::info!(
        "web console: {} banned {kind} {value} {until} (ban {id}, reason {reason:?}); {kicked} clients disconnected",
        auth.user.name
    );
    Ok(format!(
        "Banned {kind} {value} {until}{}.",
        match kicked {
            0 => String::new(),
            1 => " (1 client disconnected)".to_owned(),
            n => format!(" ({n} clients disconnected)"),
        }
    ))
}

/// Lifts ban `id`.
pub fn unban(context: &Context, store: &Store, auth: &Auth, id: i64) -> Outcome {
    let ban = store.delete_ban(id).map_err(store_refusal)?;
    refresh_bans(context)?;
    log::info!(
        "web console: {} lifted ban {id} on {} {}",
        auth.user.name,
        ban.kind,
        ban.value
    );
    Ok(format!("Lifted the ban on {} {}.", ban.kind, ban.value))
}

/// The bans as the page lists them, with a Lift button each.
pub fn ban_rows(bans: &[Ban], csrf: &str) -> String {
    if bans.is_empty() {
        return r#"<tr><td colspan="6" class="empty">nobody is banned</td></tr>"#.to_owned();
    }
    let now = clock::unix_seconds();
    let mut out = String::new();
    for b in bans {
        let id = b.id.to_string();
        let expires = match b.expires_at {
            None => "until lifted".to_owned(),
            Some(at) if auth_bans::in_force(b, now) => format!("until {}", time_html(at)),
            Some(at) => format!(r#"<span class="hint">expired {}</span>"#, time_html(at)),
        };
        let _ = write!(
            out,
            r#"<tr data-ban="{id}"><td data-label="kind">{kind}</td><td data-label="banned"><code>{value}</code></td><td data-label="reason">{reason}</td><td data-label="by">{by}, {at}</td><td data-label="expires">{expires}</td><td>{lift}</td></tr>"#,
            kind = b.kind,
            value = escape(&b.value),
            reason = if b.reason.is_empty() {
                "—".to_owned()
            } else {
                escape(&b.reason)
            },
            by = escape(&b.created_by),
            at = time_html(b.created_at),
            lift = button_form(
                "/admin/bans/delete",
                csrf,
                &[("id", &id)],
                "Lift",
                "secondary",
                Some(&format!("Lift the ban on {} {}?", b.kind, b.value)),
            ),
        );
    }
    out
}

/// One ban as the API lists it.
pub fn ban_json(b: &Ban) -> serde_json::Value {
    json!({
        "id": b.id,
        "kind": b.kind.as_str(),
        "value": b.value,
        "reason": b.reason,
        "created_by": b.created_by,
        "created_at": b.created_at,
        "expires_at": b.expires_at,
        "in_force": auth_bans::in_force(b, clock::unix_seconds()),
    })
}

/// Unix seconds as a `<time>` the page's script shows in local time (UTC without it).
fn time_html(unix: i64) -> String {
    format!(r#"<time datetime="{unix}">{}</time>"#, clock::utc(unix))
}
