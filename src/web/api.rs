//! The JSON API behind the pages (see `docs/http-api.md`). Errors are
//! `{"error": code, "message": text}` with a fitting status; the admin part needs an admin
//! session, and every command the session's token in `X-CSRF-Token`. Login and register
//! take JSON bodies only, which another site's form cannot send. The console's commands
//! (publish, retained, users, ACL rules) are in `admin_api`.

use std::time::Instant;

use super::http::Method;
use serde::Deserialize;
use serde_json::json;

use super::accounts::{self, AccountError};
use super::admin::{bridge_since, connected_since, preview_text, protocol_name};
use super::admin_api;
use super::chat;
use super::csrf;
use super::form;
use super::payload;
use super::routes::{auth, Auth};
use super::server::{Context, Reply, Req};
use super::session;
use crate::broker::console::{ClientInfo, ConsoleAnswer, ConsoleAsk, Rows};
use crate::broker::ListenerId;
use crate::store::{Store, UserRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRef {
    client_id: String,
}

pub fn handle(context: &Context, store: &Store, req: &Req) -> Reply {
    let path = &req.path["/api".len()..];
    let get = req.method == Method::Get;
    let post = req.method == Method::Post;
    match path {
        "/login" if post => login(context, store, req),
        "/register" if post => register(context, store, req),
        "/me" if get => with_user(context, store, req, |auth| Reply::json(200, &me(auth))),
        "/logout" if post => with_command(context, store, req, false, |auth| {
            context.sessions.lock().expect("sessions").end(&auth.id);
            Reply::json(200, &json!({})).with("Set-Cookie", session::clear_cookie(session::COOKIE))
        }),
        "/chat/token" if post => with_command(context, store, req, false, |auth| {
            chat::token(context, req, auth)
        }),
        "/stats" if get => admin_ask(context, store, req, ConsoleAsk::Stats),
        "/listeners" if get => admin_ask(context, store, req, ConsoleAsk::Listeners),
        "/bridges" if get => admin_ask(context, store, req, ConsoleAsk::Bridges),
        "/clients" if get => with_admin(context, store, req, |_| {
            match context.ask(ConsoleAsk::Clients) {
                Ok(ConsoleAnswer::Clients(rows)) => clients(store, rows),
                other => answer(other),
            }
        }),
        "/subscribers" if get => admin_ask(context, store, req, ConsoleAsk::Subscribers),
        "/topics" if get => admin_ask(context, store, req, ConsoleAsk::Topics),
        "/topics/messages" if get => match form::get(&req.query, "topic") {
            Some(t) if !t.is_empty() => {
                admin_ask(context, store, req, ConsoleAsk::TopicMessages(t.to_owned()))
            }
            _ => Reply::json_error(400, "missing_topic", "give the topic as ?topic=…"),
        },
        "/users" if get => with_admin(context, store, req, |_| users(store)),
        "/clients/disconnect" if post => {
            with_command(
                context,
                store,
                req,
                true,
                |_| match serde_json::from_slice::<ClientRef>(&req.body) {
                    Ok(c) if !c.client_id.is_empty() => {
                        answer(context.ask(ConsoleAsk::Disconnect(c.client_id)))
                    }
                    _ => Reply::json_error(400, "bad_json", "expected {\"client_id\": \"…\"}"),
                },
            )
        }
        _ if path.starts_with("/listeners/") && post => {
            with_command(context, store, req, true, |_| {
                listener_command(context, path)
            })
        }
        "/login"
        | "/register"
        | "/me"
        | "/logout"
        | "/chat/token"
        | "/stats"
        | "/listeners"
        | "/bridges"
        | "/clients"
        | "/subscribers"
        | "/topics"
        | "/topics/messages"
        | "/clients/disconnect" => Reply::json_error(
            405,
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        _ => admin_api::handle(context, store, req, path)
            .unwrap_or_else(|| Reply::json_error(404, "not_found", "no such endpoint")),
    }
}

fn me(auth: &Auth) -> serde_json::Value {
    json!({ "name": auth.user.name, "admin": auth.user.is_admin, "csrf": auth.session.csrf })
}

fn account_error(e: &AccountError) -> Reply {
    e.with_retry_after(Reply::json_error(e.status(), e.code(), &e.to_string()))
}

fn credentials(req: &Req) -> Result<Credentials, Reply> {
    if !req.body_is("application/json") {
        return Err(Reply::json_error(
            415,
            "unsupported_media_type",
            "send a JSON body with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&req.body).map_err(|_| {
        Reply::json_error(
            400,
            "bad_json",
            "expected {\"username\": \"…\", \"password\": \"…\"}",
        )
    })
}

/// A new session for `user` (never the id the client brought, which ends), with its cookie.
fn start_session(context: &Context, req: &Req, status: u16, user: &UserRecord) -> Reply {
    let now = Instant::now();
    let mut sessions = context.sessions.lock().expect("sessions");
    if let Some(old) = req
        .cookie
        .as_deref()
        .and_then(|c| session::cookie(c, session::COOKIE))
    {
        sessions.end(old);
    }
    let id = sessions.create(&user.name, now);
    let csrf = sessions.touch(&id, now).map(|s| s.csrf).unwrap_or_default();
    Reply::json(
        status,
        &json!({ "name": user.name, "admin": user.is_admin, "csrf": csrf }),
    )
    .with("Set-Cookie", session::set_cookie(session::COOKIE, &id))
}

fn login(context: &Context, store: &Store, req: &Req) -> Reply {
    let c = match credentials(req) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    match accounts::login(context, store, req.peer, &c.username, &c.password) {
        Ok(user) => start_session(context, req, 200, &user),
        Err(e) => account_error(&e),
    }
}

fn register(context: &Context, store: &Store, req: &Req) -> Reply {
    let c = match credentials(req) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    match accounts::register(
        context,
        store,
        req.peer,
        &c.username,
        &c.password,
        &c.password,
    ) {
        Ok(user) => start_session(context, req, 201, &user),
        Err(e) => account_error(&e),
    }
}

fn with_user(context: &Context, store: &Store, req: &Req, f: impl FnOnce(&Auth) -> Reply) -> Reply {
    match auth(context, store, req) {
        Some(auth) => f(&auth),
        None => Reply::json_error(401, "not_logged_in", "log in first"),
    }
}

pub(super) fn with_admin(
    context: &Context,
    store: &Store,
    req: &Req,
    f: impl FnOnce(&Auth) -> Reply,
) -> Reply {
    with_user(context, store, req, |auth| {
        if auth.user.is_admin {
            f(auth)
        } else {
            Reply::json_error(403, "not_admin", "administrators only")
        }
    })
}

/// A command: logged in (as an admin when `admin`), with the session's CSRF header.
pub(super) fn with_command(
    context: &Context,
    store: &Store,
    req: &Req,
    admin: bool,
    f: impl FnOnce(&Auth) -> Reply,
) -> Reply {
    let check = |auth: &Auth| {
        if !csrf::matches(&auth.session.csrf, req.csrf_header.as_deref()) {
            return Reply::json_error(403, "csrf", "missing or wrong X-CSRF-Token header");
        }
        f(auth)
    };
    if admin {
        with_admin(context, store, req, check)
    } else {
        with_user(context, store, req, check)
    }
}

fn admin_ask(context: &Context, store: &Store, req: &Req, what: ConsoleAsk) -> Reply {
    with_admin(context, store, req, |_| answer(context.ask(what)))
}

/// The loop's answer as JSON.
pub(super) fn answer(answer: Result<ConsoleAnswer, crate::broker::console::AskError>) -> Reply {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            log::warn!("web console: the broker loop did not answer: {e:?}");
            return Reply::json_error(503, "busy", "the broker did not answer in time");
        }
    };
    match answer {
        ConsoleAnswer::Listeners(listeners) => {
            let list: Vec<_> = listeners
                .iter()
                .map(|l| {
                    json!({
                        "id": l.id.0,
                        "kind": l.kind.to_string(),
                        "address": l.addr.to_string(),
                        "running": l.running,
                        "connections": l.connections,
                    })
                })
                .collect();
            Reply::json(200, &list)
        }
        ConsoleAnswer::Bridges(bridges) => {
            let list: Vec<_> = bridges
                .iter()
                .map(|b| {
                    json!({
                        "name": b.name,
                        "address": b.address,
                        "protocol": protocol_name(b.protocol),
                        "connected": b.connected,
                        "state": b.state.as_str(),
                        "connected_since": bridge_since(b),
                        "queued": b.queued,
                        "queued_bytes": b.queued_bytes,
                        "max_queue_bytes": b.max_queue_bytes,
                        "queue_full": b.queue_full.to_string(),
                        "forwarded": b.forwarded,
                        "received": b.received,
                        "dropped": b.dropped,
                        "connects": b.connects,
                        "last_error": b.last_error,
                    })
                })
                .collect();
            Reply::json(200, &list)
        }
        ConsoleAnswer::Stats(stats) => Reply::json(200, &stats),
        ConsoleAnswer::Clients(rows) => Reply::json(200, &rows),
        ConsoleAnswer::Client(detail) => Reply::json(200, &detail),
        ConsoleAnswer::Sessions(rows) => Reply::json(200, &rows),
        ConsoleAnswer::Subscribers(rows) => Reply::json(200, &rows),
        ConsoleAnswer::Topics(rows) => Reply::json(200, &rows),
        ConsoleAnswer::Messages(messages) => {
            let list: Vec<_> = messages
                .iter()
                .map(|m| {
                    json!({
                        "at_ms": m.at_ms,
                        "qos": m.qos,
                        "retain": m.retain,
                        "size": m.size,
                        "preview": preview_text(m),
                        "payload": payload::view(&m.preview, m.size),
                        "kept": m.preview.len(),
                        "properties": m.properties,
                        "properties_dropped": m.properties_dropped,
                    })
                })
                .collect();
            Reply::json(200, &list)
        }
        ConsoleAnswer::Done => Reply::json(200, &json!({})),
        ConsoleAnswer::NotFound => {
            Reply::json_error(404, "not_found", "no such topic, listener or client")
        }
        ConsoleAnswer::Failed(why) => Reply::json_error(409, "failed", &why),
        ConsoleAnswer::Invalid(why) => Reply::json_error(400, "invalid", &why),
        ConsoleAnswer::NotAuthorized(why) => Reply::json_error(403, "not_authorized", &why),
        ConsoleAnswer::TooManyAttempts(_) => Reply::json_error(
            429,
            "too_many_attempts",
            "too many attempts; try again later",
        ),
        ConsoleAnswer::Retained(_)
        | ConsoleAnswer::RetainedMessage(_)
        | ConsoleAnswer::Cleared(_)
        | ConsoleAnswer::Disconnected(_) => {
            log::warn!("web console: an answer this endpoint did not ask for");
            Reply::json_error(500, "internal", "unexpected answer from the broker")
        }
    }
}

/// The clients with when each connected (from the client records) added.
fn clients(store: &Store, rows: Rows<ClientInfo>) -> Reply {
    let list: Vec<_> = rows
        .rows
        .iter()
        .map(|c| {
            let mut row = serde_json::to_value(c).expect("client rows serialise");
            row["connected_since"] = json!(connected_since(store, &c.client_id));
            row
        })
        .collect();
    Reply::json(200, &json!({ "total": rows.total, "rows": list }))
}

fn users(store: &Store) -> Reply {
    match store.list_users() {
        Ok(users) => {
            let list: Vec<_> = users
                .iter()
                .map(|u| json!({ "name": u.name, "admin": u.is_admin, "created_at": u.created_at }))
                .collect();
            Reply::json(200, &list)
        }
        Err(e) => {
            log::warn!("web console: cannot list users: {e}");
            Reply::json_error(500, "internal", "cannot read the users")
        }
    }
}

/// `/listeners/{id}/stop` or `/listeners/{id}/start`.
fn listener_command(context: &Context, path: &str) -> Reply {
    let rest = &path["/listeners/".len()..];
    let Some((id, action)) = rest.split_once('/') else {
        return Reply::json_error(404, "not_found", "no such endpoint");
    };
    let Ok(id) = id.parse::<u8>() else {
        return Reply::json_error(404, "not_found", "no such listener");
    };
    let ask = match action {
        "stop" => ConsoleAsk::StopListener(ListenerId(id)),
        "start" => ConsoleAsk::StartListener(ListenerId(id)),
        _ => return Reply::json_error(404, "not_found", "no such endpoint"),
    };
    answer(context.ask(ask))
}
