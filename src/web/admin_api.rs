//! The admin API's commands (see `docs/http-api.md`): publish, retained messages, users,
//! ACL rules, bans, offline sessions and one client in detail. Reads need an admin session; commands also the session's token in
//! `X-CSRF-Token` and a JSON body. The work itself is in `commands`.

use serde::Deserialize;
use serde_json::json;

use super::api::{answer, with_admin, with_command};
use super::bans::{self, BanInput};
use super::client_page;
use super::commands::{self, Outcome, PublishInput, Refusal};
use super::form;
use super::http::Method;
use super::payload;
use super::server::{Context, Reply, Req};
use super::sessions;
use crate::broker::console::{ConsoleAnswer, ConsoleAsk, RetainedInfo};
use crate::store::Store;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    payload: String,
    /// "text" (the default) or "json".
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    content_type: Option<String>,
    message_expiry: Option<u32>,
    #[serde(default)]
    user_properties: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    admin: Option<bool>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBanBody {
    /// client_id, username or address.
    kind: String,
    value: String,
    #[serde(default)]
    reason: String,
    /// Seconds from now; absent for a ban until lifted.
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    /// The user it applies to; give this or `pattern`, as on the command line.
    user: Option<String>,
    /// A pattern rule for everyone (with `%u` and `%c`).
    #[serde(default)]
    pattern: bool,
    topic: String,
    access: String,
}

/// The admin command routes; `None` when `path` is none of them.
pub fn handle(context: &Context, store: &Store, req: &Req, path: &str) -> Option<Reply> {
    let (get, post, delete) = (
        req.method == Method::Get,
        req.method == Method::Post,
        req.method == Method::Delete,
    );
    let reply = match path {
        "/publish" if post => command(context, store, req, |auth, body: PublishBody| {
            let json = match body.format.as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(_) => {
                    return Err(Refusal::new(400, "bad_format", "format is text or json"));
                }
            };
            commands::publish(
                context,
                auth,
                PublishInput {
                    topic: body.topic,
                    payload: body.payload,
                    json,
                    qos: body.qos,
                    retain: body.retain,
                    content_type: body.content_type,
                    message_expiry: body.message_expiry,
                    user_properties: body.user_properties,
                },
            )
        }),
        "/retained" if get => with_admin(context, store, req, |_| retained(context, req)),
        "/retained" if delete => with_command(context, store, req, true, |auth| {
            match form::get(&req.query, "topic") {
                Some(filter) => done(commands::clear_retained(context, auth, filter)),
                None => Reply::json_error(400, "missing_topic", "give the topic as ?topic=…"),
            }
        }),
        "/users" if post => command(context, store, req, |auth, u: NewUser| {
            commands::add_user(context, store, auth, &u.name, &u.password, u.admin)
        }),
        "/acl" if get => with_admin(context, store, req, |_| acl_rules(store)),
        "/acl" if post => command(context, store, req, |auth, r: NewRule| {
            if r.user.is_some() == r.pattern {
                return Err(Refusal::new(
                    400,
                    "bad_json",
                    "give either \"user\": NAME or \"pattern\": true",
                ));
            }
            commands::add_acl(context, store, auth, r.user.as_deref(), &r.topic, &r.access)
        }),
        "/sessions" if get => with_admin(context, store, req, |_| match sessions::list(context) {
            Ok(rows) => Reply::json(200, &sessions::json_rows(store, &rows)),
            Err(r) => Reply::json_error(r.status, r.code, &r.message),
        }),
        _ if path.starts_with("/sessions/") => {
            let client_id = form::decode(&path["/sessions/".len()..]);
            if delete {
                with_command(context, store, req, true, |auth| {
                    done(sessions::delete(context, auth, &client_id))
                })
            } else {
                not_allowed()
            }
        }
        "/clients/detail" if get => client_page::json(context, store, req),
        "/bans" if get => with_admin(context, store, req, |_| ban_list(store)),
        "/bans" if post => command(context, store, req, |auth, b: NewBanBody| {
            bans::ban(
                context,
                store,
                auth,
                BanInput {
                    kind: b.kind,
                    value: b.value,
                    reason: b.reason,
                    expires_in: b.expires_in,
                },
            )
        }),
        _ if path.starts_with("/bans/") => delete_by_id(context, store, req, path, |auth, id| {
            bans::unban(context, store, auth, id)
        }),
        _ if path.starts_with("/users/") => {
            let name = form::decode(&path["/users/".len()..]);
            if delete {
                with_command(context, store, req, true, |auth| {
                    done(commands::delete_user(context, store, auth, &name))
                })
            } else if post {
                command(context, store, req, |auth, change: UserChange| {
                    change_user(context, store, auth, &name, change)
                })
            } else {
                not_allowed()
            }
        }
        _ if path.starts_with("/acl/") => delete_by_id(context, store, req, path, |auth, id| {
            commands::delete_acl(context, store, auth, id)
        }),
        "/publish" | "/retained" | "/users" | "/acl" | "/bans" | "/sessions"
        | "/clients/detail" => not_allowed(),
        _ => return None,
    };
    Some(reply)
}

/// `DELETE /KIND/ID` (an ACL rule, a ban): 404 when the id is not a number.
fn delete_by_id(
    context: &Context,
    store: &Store,
    req: &Req,
    path: &str,
    f: impl FnOnce(&super::routes::Auth, i64) -> Outcome,
) -> Reply {
    let Some(Ok(id)) = path.rsplit_once('/').map(|(_, id)| id.parse::<i64>()) else {
        return Reply::json_error(404, "not_found", "no such id");
    };
    if req.method != Method::Delete {
        return not_allowed();
    }
    with_command(context, store, req, true, |auth| done(f(auth, id)))
}

fn not_allowed() -> Reply {
    Reply::json_error(
        405,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// An admin command with a JSON body of type `T`.
fn command<T: serde::de::DeserializeOwned>(
    context: &Context,
    store: &Store,
    req: &Req,
    f: impl FnOnce(&super::routes::Auth, T) -> Outcome,
) -> Reply {
    with_command(context, store, req, true, |auth| {
        if !req.body_is("application/json") {
            return Reply::json_error(
                415,
                "unsupported_media_type",
                "send a JSON body with Content-Type: application/json",
            );
        }
        match serde_json::from_slice::<T>(&req.body) {
            Ok(body) => done(f(auth, body)),
            Err(e) => Reply::json_error(400, "bad_json", &e.to_string()),
        }
    })
}

/// 200 `{"done": sentence}`, or the refusal as an error.
fn done(outcome: Outcome) -> Reply {
    match outcome {
        Ok(done) => Reply::json(200, &json!({ "done": done })),
        Err(r) => Reply::json_error(r.status, r.code, &r.message),
    }
}

fn change_user(
    context: &Context,
    store: &Store,
    auth: &super::routes::Auth,
    name: &str,
    change: UserChange,
) -> Outcome {
    let mut said = Vec::new();
    if let Some(password) = change.password {
        said.push(commands::set_password(
            context, store, auth, name, &password,
        )?);
    }
    if let Some(admin) = change.admin {
        said.push(commands::set_admin(store, auth, name, admin)?);
    }
    if said.is_empty() {
        return Err(Refusal::new(
            400,
            "bad_json",
            "expected {\"admin\": true|false} and/or {\"password\": \"…\"}",
        ));
    }
    Ok(said.join(" "))
}

/// `?topic=T`: one retained message with its payload; else the list under `?prefix=`.
fn retained(context: &Context, req: &Req) -> Reply {
    let ask = match form::get(&req.query, "topic") {
        Some(topic) => ConsoleAsk::RetainedMessage(topic.to_owned()),
        None => ConsoleAsk::Retained(form::get(&req.query, "prefix").unwrap_or("").to_owned()),
    };
    match context.ask(ask) {
        Ok(ConsoleAnswer::Retained(rows)) => {
            let list: Vec<_> = rows.rows.iter().map(retained_json).collect();
            Reply::json(200, &json!({ "total": rows.total, "rows": list }))
        }
        Ok(ConsoleAnswer::RetainedMessage(m)) => Reply::json(200, &retained_json(&m)),
        Ok(ConsoleAnswer::NotFound) => {
            Reply::json_error(404, "not_found", "no retained message on that topic")
        }
        other => answer(other),
    }
}

fn retained_json(m: &RetainedInfo) -> serde_json::Value {
    let mut row = serde_json::to_value(m).expect("retained rows serialise");
    row["payload"] = json!(payload::view(&m.payload, m.size));
    row
}

fn acl_rules(store: &Store) -> Reply {
    match store.list_acl_rules() {
        Ok(rules) => {
            let list: Vec<_> = rules
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "user": r.username,
                        "topic": r.topic,
                        "access": r.access.as_str(),
                    })
                })
                .collect();
            Reply::json(200, &list)
        }
        Err(e) => {
            log::warn!("web console: cannot list the ACL rules: {e}");
            Reply::json_error(500, "internal", "cannot read the ACL rules")
        }
    }
}

fn ban_list(store: &Store) -> Reply {
    match store.list_bans() {
        Ok(list) => Reply::json(200, &list.iter().map(bans::ban_json).collect::<Vec<_>>()),
        Err(e) => {
            log::warn!("web console: cannot list the bans: {e}");
            Reply::json_error(500, "internal", "cannot read the bans")
        }
    }
}
