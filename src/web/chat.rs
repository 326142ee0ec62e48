//! The `/chat` page and its login: the page (assets/chat.html, chat.js, mqtt-ws.js) talks
//! MQTT over WebSocket straight to the broker's `ws_listen` listener, so it gets its own
//! Content-Security-Policy naming that listener, and logs in there with a single-use
//! token from `POST /api/chat/token` (session and CSRF header required), which the
//! broker accepts once within 60 s for the session's user only.

use serde_json::json;

use super::pages;
use super::routes::Auth;
use super::server::{Context, Reply, Req};
use super::session;
use crate::broker::console::{ConsoleAnswer, ConsoleAsk};
use crate::broker::ListenerKind;

const CHAT: &str = include_str!("../../assets/chat.html");
const SCRIPTS: &str = r#"<script src="/assets/mqtt-ws.js" defer></script><script src="/assets/chat.js" defer></script>"#;
/// The path the WebSocket listener serves MQTT on.
const WS_PATH: &str = "/mqtt";

/// The ports of the running WebSocket listeners a page loaded as `req` may use (wss ones
/// for a page loaded over HTTPS, which browsers forbid to open ws), or None when the loop
/// did not answer.
fn ws_ports(context: &Context, req: &Req) -> Option<Vec<u16>> {
    let kind = if req.https {
        ListenerKind::SecureWebSocket
    } else {
        ListenerKind::WebSocket
    };
    match context.ask(ConsoleAsk::Listeners) {
        Ok(ConsoleAnswer::Listeners(list)) => Some(
            list.iter()
                .filter(|l| l.kind == kind && l.running)
                .map(|l| l.addr.port())
                .collect(),
        ),
        other => {
            log::warn!("web console: no listener list for the chat page: {other:?}");
            None
        }
    }
}

/// The host name the browser used for the console (the `Host` header without its port).
fn host_name(req: &Req) -> String {
    let host = req.host.as_deref().unwrap_or("127.0.0.1");
    let name = match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host,
    };
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        .collect()
}

/// The console's policy with `connect-src` widened to the WebSocket listeners.
fn policy(req: &Req, ports: &[u16]) -> String {
    let host = host_name(req);
    let sockets: String = ports
        .iter()
        .map(|p| format!(" ws://{host}:{p} wss://{host}:{p}"))
        .collect();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'{sockets}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The console's policy naming the running WebSocket listeners, for a page that talks
/// MQTT over WebSocket (the chat page, the admin page's watch panel).
pub fn socket_policy(context: &Context, req: &Req) -> String {
    policy(req, &ws_ports(context, req).unwrap_or_default())
}

/// GET /chat for a logged-in user.
pub fn page(context: &Context, req: &Req, auth: &Auth) -> Reply {
    pages::page(200, "Chat", Some(auth), CHAT, SCRIPTS)
        .with("Content-Security-Policy", socket_policy(context, req))
}

/// POST /api/chat/token: a fresh single-use token for the session's user, granted
/// through the inbox before the answer leaves.
pub fn token(context: &Context, req: &Req, auth: &Auth) -> Reply {
    let Some(ports) = ws_ports(context, req) else {
        return Reply::json_error(503, "busy", "the broker did not answer in time");
    };
    let Some(&port) = ports.first() else {
        return Reply::json_error(
            503,
            "no_websocket",
            "no WebSocket listener this page may use is running (ws_listen; wss for a page \
             loaded over HTTPS)",
        );
    };
    let token = session::random_token();
    if let Err(e) = context.inbox.grant_login_token(&auth.user.name, &token) {
        log::warn!("web console: cannot grant a chat token: {e:?}");
        return Reply::json_error(503, "busy", "the broker is not taking commands");
    }
    Reply::json(
        200,
        &json!({ "user": auth.user.name, "token": token, "ws_port": port, "ws_path": WS_PATH }),
    )
}
