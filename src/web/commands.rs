//! The admin console's commands — publish, clear retained messages, manage users and ACL
//! rules — as plain functions: checked input in, a sentence naming what was done (or a
//! refusal with its status) out. `api.rs` answers them as JSON, `admin_forms.rs` as a
//! redirect to `/admin` with a one-time notice. Accounts go through the account functions
//! (`crate::accounts`, with the web's wording in `web::accounts`); ACL rules through the store's checks,
//! as `outpost acl add` does.

use std::str::FromStr;

use super::accounts::{self, AccountError};
use super::routes::Auth;
use super::server::Context;
use crate::broker::console::{AskError, ConsoleAnswer, ConsoleAsk, ConsolePublish};
use crate::store::{Access, AdminChange, Store, StoreError};

/// Why a command was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

/// What was done, as a sentence for the page, or why not.
pub type Outcome = Result<String, Refusal>;

/// A message to publish as it comes from the form or the API.
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    pub topic: String,
    pub payload: String,
    /// The payload must parse as JSON (and gets `application/json` unless a content type
    /// is given).
    pub json: bool,
    pub qos: u8,
    pub retain: bool,
    pub content_type: Option<String>,
    pub message_expiry: Option<u32>,
    pub user_properties: Vec<(String, String)>,
}

pub(super) fn busy(e: AskError) -> Refusal {
    log::warn!("web console: the broker loop did not answer: {e:?}");
    Refusal::new(503, "busy", "the broker did not answer in time")
}

/// The loop's answer to a command that only succeeds or is refused.
pub(super) fn loop_refusal(answer: ConsoleAnswer) -> Refusal {
    match answer {
        ConsoleAnswer::Invalid(why) => Refusal::new(400, "invalid", why),
        ConsoleAnswer::NotAuthorized(why) => Refusal::new(403, "not_authorized", why),
        ConsoleAnswer::NotFound => Refusal::new(404, "not_found", "nothing matches"),
        ConsoleAnswer::Failed(why) => Refusal::new(409, "failed", why),
        other => {
            log::warn!("web console: unexpected answer {other:?}");
            Refusal::new(500, "internal", "unexpected answer from the broker")
        }
    }
}

pub fn publish(context: &Context, auth: &Auth, input: PublishInput) -> Outcome {
    if input.topic.is_empty() {
        return Err(Refusal::new(400, "missing_topic", "give a topic"));
    }
    let mut content_type = input.content_type.filter(|t| !t.is_empty());
    if input.json {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&input.payload) {
            return Err(Refusal::new(
                400,
                "bad_payload",
                format!("the payload is not valid JSON: {e}"),
            ));
        }
        content_type.get_or_insert_with(|| "application/json".to_owned());
    }
    let topic = input.topic.clone();
    let ask = ConsoleAsk::Publish(ConsolePublish {
        user: auth.user.name.clone(),
        topic: input.topic,
        payload: input.payload.into_bytes(),
        qos: input.qos,
        retain: input.retain,
        content_type,
        message_expiry: input.message_expiry,
        user_properties: input.user_properties,
        utf8: true,
    });
    match context.ask(ask).map_err(busy)? {
        ConsoleAnswer::Done => Ok(format!(
            "Published to {topic} (QoS {}{}).",
            input.qos,
            if input.retain { ", retained" } else { "" }
        )),
        other => Err(loop_refusal(other)),
    }
}

/// Clears the retained messages under `filter` (a topic, or a subtree ending in `#`).
pub fn clear_retained(context: &Context, auth: &Auth, filter: &str) -> Outcome {
    if filter.is_empty() {
        return Err(Refusal::new(
            400,
            "missing_topic",
            "give a topic or a filter",
        ));
    }
    let ask = ConsoleAsk::ClearRetained {
        user: auth.user.name.clone(),
        filter: filter.to_owned(),
    };
    match context.ask(ask).map_err(busy)? {
        ConsoleAnswer::Cleared(1) => Ok(format!("Deleted the retained message of {filter}.")),
        ConsoleAnswer::Cleared(n) => Ok(format!("Deleted {n} retained messages under {filter}.")),
        ConsoleAnswer::NotFound => Err(Refusal::new(
            404,
            "not_found",
            format!("no retained message matches {filter}"),
        )),
        other => Err(loop_refusal(other)),
    }
}

fn account_refusal(e: AccountError) -> Refusal {
    Refusal::new(e.status(), e.code(), e.to_string())
}

pub(super) fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::UnknownUser(name) => {
            Refusal::new(404, "unknown_user", format!("there is no user {name}"))
        }
        StoreError::UnknownAclRule(id) => {
            Refusal::new(404, "unknown_rule", format!("there is no ACL rule {id}"))
        }
        StoreError::UnknownBan(id) => {
            Refusal::new(404, "unknown_ban", format!("there is no ban {id}"))
        }
        e @ (StoreError::InvalidAccess(_)
        | StoreError::EmptyAclTopic
        | StoreError::InvalidUserName { .. }) => Refusal::new(400, "invalid", e.to_string()),
        e if e.is_busy() => {
            log::warn!("web console: the database stayed locked: {e}");
            Refusal::new(
                503,
                "busy",
                "the database is busy (a slow write on the card); nothing was changed, try again",
            )
        }
        e => {
            log::warn!("web console: {e}");
            Refusal::new(500, "internal", "internal error; see the broker log")
        }
    }
}

fn last_admin(name: &str) -> Refusal {
    Refusal::new(
        409,
        "last_admin",
        format!("{name} is the last administrator; make someone else one first"),
    )
}

/// Tells the loop that users or rules changed, so it reads the rules again and forgets
/// cached logins. The change is stored already; a loop that does not answer picks it up
/// at the next login's rule refresh.
fn refresh_access(context: &Context) {
    if let Err(e) = context.ask(ConsoleAsk::RefreshAccess) {
        log::warn!("web console: the broker loop did not refresh its ACL rules: {e:?}");
    }
}

/// Ends the web sessions of `name` (after its deletion or a new password).
fn end_sessions(context: &Context, name: &str) {
    context
        .sessions
        .lock()
        .expect("sessions")
        .end_user(name, None);
}

pub fn add_user(
    context: &Context,
    store: &Store,
    auth: &Auth,
    name: &str,
    password: &str,
    admin: bool,
) -> Outcome {
    let user =
        accounts::create(context, store, name, password, password).map_err(account_refusal)?;
    let name = user.name.as_str();
    if admin {
        store.set_admin(name, true).map_err(store_refusal)?;
    }
    let role = if admin { "administrator" } else { "user" };
    log::info!("web console: {} added {role} {name}", auth.user.name);
    Ok(format!("Added {role} {name}."))
}

pub fn delete_user(context: &Context, store: &Store, auth: &Auth, name: &str) -> Outcome {
    match store
        .delete_user_keeping_an_admin(name)
        .map_err(store_refusal)?
    {
        AdminChange::LastAdmin => Err(last_admin(name)),
        AdminChange::Done => {
            end_sessions(context, name);
            refresh_access(context);
            log::info!("web console: {} deleted user {name}", auth.user.name);
            Ok(format!("Deleted user {name}."))
        }
    }
}

pub fn set_admin(store: &Store, auth: &Auth, name: &str, admin: bool) -> Outcome {
    match store.set_admin(name, admin).map_err(store_refusal)? {
        AdminChange::LastAdmin => Err(last_admin(name)),
        AdminChange::Done => {
            let done = if admin {
                format!("{name} is now an administrator.")
            } else {
                format!("{name} is no longer an administrator.")
            };
            log::info!("web console: {}: {done}", auth.user.name);
            Ok(done)
        }
    }
}

pub fn set_password(
    context: &Context,
    store: &Store,
    auth: &Auth,
    name: &str,
    password: &str,
) -> Outcome {
    if store.find_user(name).map_err(store_refusal)?.is_none() {
        return Err(store_refusal(StoreError::UnknownUser(name.to_owned())));
    }
    crate::accounts::set_password(store, context, name, password)
        .map_err(|e| account_refusal(e.into()))?;
    end_sessions(context, name);
    refresh_access(context);
    log::info!(
        "web console: {} set a new password for {name}",
        auth.user.name
    );
    Ok(format!("Set a new password for {name}."))
}

/// Adds a rule for `user` (or a pattern rule for everyone when `None`); `access` is
/// read, write, readwrite or deny, as on the command line.
pub fn add_acl(
    context: &Context,
    store: &Store,
    auth: &Auth,
    user: Option<&str>,
    topic: &str,
    access: &str,
) -> Outcome {
    let access = Access::from_str(access).map_err(store_refusal)?;
    let id = store
        .add_acl_rule(user, topic, access)
        .map_err(store_refusal)?;
    refresh_access(context);
    let whom = user.map_or_else(|| "everyone (pattern)".to_owned(), str::to_owned);
    log::info!(
        "web console: {} added ACL rule {id}: {whom} {access} {topic}",
        auth.user.name
    );
    Ok(format!("Added ACL rule {id}: {whom} {access} {topic}."))
}

pub fn delete_acl(context: &Context, store: &Store, auth: &Auth, id: i64) -> Outcome {
    store.delete_acl_rule(id).map_err(store_refusal)?;
    refresh_access(context);
    log::info!("web console: {} deleted ACL rule {id}", auth.user.name);
    Ok(format!("Deleted ACL rule {id}."))
}
