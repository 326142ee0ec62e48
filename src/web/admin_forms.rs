//! The admin page's command forms (publish, delete retained messages, manage users and
//! ACL rules, ban and lift bans): each checks the admin session and the form's CSRF token, runs the command
//! of `commands`, and redirects back to `/admin` with a one-time notice naming what was
//! done or why not (post/redirect/get: a reload neither repeats it nor shows the notice).

use super::bans::{self, BanInput};
use super::commands::{self, Outcome, PublishInput, Refusal};
use super::form;
use super::pages::{back_to_admin, require_admin, session_post};
use super::routes::Auth;
use super::server::{Context, Reply, Req};
use super::sessions;
use crate::store::Store;

type Fields = Vec<(String, String)>;

/// Runs `command` with the posted fields of an admin session.
fn admin_form(
    context: &Context,
    store: &Store,
    req: &Req,
    command: impl FnOnce(&Auth, &Fields) -> Outcome,
) -> Reply {
    let auth = match require_admin(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let fields = match session_post(&auth, req) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    match command(&auth, &fields) {
        Ok(done) => back_to_admin(context, &auth, done, false),
        Err(refusal) => back_to_admin(context, &auth, refusal.message, true),
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    form::get(fields, name).unwrap_or("")
}

/// `name=value` lines as MQTT 5 user properties.
fn user_properties(text: &str) -> Result<Vec<(String, String)>, Refusal> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once('=') {
            Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
            None => Err(Refusal::new(
                400,
                "bad_property",
                format!("user property {line:?} is not name=value"),
            )),
        })
        .collect()
}

fn publish_input(fields: &Fields) -> Result<PublishInput, Refusal> {
    let qos = field(fields, "qos")
        .parse()
        .map_err(|_| Refusal::new(400, "bad_qos", "QoS is 0, 1 or 2"))?;
    let message_expiry =
        match field(fields, "expiry").trim() {
            "" => None,
            s => Some(s.parse().map_err(|_| {
                Refusal::new(400, "bad_expiry", "the expiry is a number of seconds")
            })?),
        };
    Ok(PublishInput {
        topic: field(fields, "topic").to_owned(),
        // Browsers send text areas with CRLF line ends; publish what was typed.
        payload: field(fields, "payload").replace("\r\n", "\n"),
        json: field(fields, "format") == "json",
        qos,
        retain: form::get(fields, "retain").is_some(),
        content_type: Some(field(fields, "content_type").trim().to_owned()),
        message_expiry,
        user_properties: user_properties(field(fields, "user_properties"))?,
    })
}

pub fn publish(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        commands::publish(context, auth, publish_input(fields)?)
    })
}

pub fn delete_retained(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        commands::clear_retained(context, auth, field(fields, "topic").trim())
    })
}

pub fn add_user(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        commands::add_user(
            context,
            store,
            auth,
            field(fields, "name"),
            field(fields, "password"),
            form::get(fields, "admin").is_some(),
        )
    })
}

pub fn delete_user(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        commands::delete_user(context, store, auth, field(fields, "name"))
    })
}

pub fn set_role(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        let admin = field(fields, "admin") == "yes";
        commands::set_admin(store, auth, field(fields, "name"), admin)
    })
}

pub fn set_password(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        commands::set_password(
            context,
            store,
            auth,
            field(fields, "name"),
            field(fields, "password"),
        )
    })
}

pub fn add_rule(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        // The user list's first entry is the pattern rule for everyone.
        let user = Some(field(fields, "user")).filter(|u| !u.is_empty());
        commands::add_acl(
            context,
            store,
            auth,
            user,
            field(fields, "topic").trim(),
            field(fields, "access"),
        )
    })
}

pub fn delete_rule(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        let id = field(fields, "id")
            .parse()
            .map_err(|_| Refusal::new(400, "bad_id", "the rule id must be a number"))?;
        commands::delete_acl(context, store, auth, id)
    })
}

pub fn ban(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        let expires_in = match field(fields, "expires_in").trim() {
            "" => None,
            s => Some(s.parse().map_err(|_| {
                Refusal::new(400, "bad_expiry", "the ban's length is a number of seconds")
            })?),
        };
        bans::ban(
            context,
            store,
            auth,
            BanInput {
                kind: field(fields, "kind").to_owned(),
                value: field(fields, "value").to_owned(),
                reason: field(fields, "reason").to_owned(),
                expires_in,
            },
        )
    })
}

pub fn unban(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        let id = field(fields, "id")
            .parse()
            .map_err(|_| Refusal::new(400, "bad_id", "the ban id must be a number"))?;
        bans::unban(context, store, auth, id)
    })
}

pub fn delete_session(context: &Context, store: &Store, req: &Req) -> Reply {
    admin_form(context, store, req, |auth, fields| {
        sessions::delete(context, auth, field(fields, "client_id"))
    })
}
