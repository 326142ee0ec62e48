//! The HTML pages: login, register, account and admin, each a template from `assets/`
//! inside the common layout. Every form posts without JavaScript and redirects after a
//! success (so a reload does not post again); a refusal shows the form again with the
//! reason and a fitting status.

use std::time::Instant;

use super::accounts;
use super::admin;
use super::chat;
use super::csrf;
use super::form;
use super::html::{self, escape, Value};
use super::routes::{auth, Auth};
use super::server::{Context, Reply, Req};
use super::session::{self, Notice};
use crate::broker::console::{ConsoleAnswer, ConsoleAsk};
use crate::broker::ListenerId;
use crate::store::{Store, UserRecord};

const LAYOUT: &str = include_str!("../../assets/layout.html");
const LOGIN: &str = include_str!("../../assets/login.html");
const REGISTER: &str = include_str!("../../assets/register.html");
const ACCOUNT: &str = include_str!("../../assets/account.html");
const MESSAGE: &str = include_str!("../../assets/message.html");
const ADMIN_SCRIPTS: &str = r#"<script src="/assets/mqtt-ws.js" defer></script><script src="/assets/topic-tree.js" defer></script><script src="/assets/admin.js" defer></script>"#;

/// A page inside the layout; `auth` decides the navigation links, `scripts` goes in the
/// head (`<script>` tags for files under /assets/).
pub fn page(status: u16, title: &str, auth: Option<&Auth>, main: &str, scripts: &str) -> Reply {
    let nav = match auth {
        Some(a) => {
            let admin = if a.user.is_admin {
                r#"<a href="/admin">Admin</a>"#
            } else {
                ""
            };
            format!(
                r#"<a href="/chat">Chat</a>{admin}<a href="/account">{}</a><form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{}"><button type="submit" class="link">Log out</button></form>"#,
                escape(&a.user.name),
                escape(&a.session.csrf)
            )
        }
        None => r#"<a href="/login">Log in</a><a href="/register">Register</a>"#.to_owned(),
    };
    let csrf = auth.map_or("", |a| a.session.csrf.as_str());
    Reply::html(
        status,
        html::render(
            LAYOUT,
            &[
                ("title", Value::Text(title)),
                ("csrf", Value::Text(csrf)),
                ("scripts", Value::Html(scripts)),
                ("nav", Value::Html(&nav)),
                ("main", Value::Html(main)),
            ],
        ),
    )
}

/// A page that only says something (errors, refusals).
pub fn message(status: u16, title: &str, text: &str) -> Reply {
    let main = html::render(
        MESSAGE,
        &[("title", Value::Text(title)), ("text", Value::Text(text))],
    );
    page(status, title, None, &main, "")
}

fn error_html(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))
    })
}

fn notice_html(text: Option<&str>) -> String {
    text.map_or_else(String::new, |t| {
        format!(r#"<p class="notice" role="status">{}</p>"#, escape(t))
    })
}

/// The pre-login form token: the one in the cookie, or a new one to set.
pub fn form_token(req: &Req) -> (String, bool) {
    let existing = req
        .cookie
        .as_deref()
        .and_then(|c| session::cookie(c, csrf::FORM_COOKIE))
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    match existing {
        Some(token) => (token.to_owned(), false),
        None => (session::random_token(), true),
    }
}

/// The login or register form, with an error and the name typed so far.
fn entry_form(req: &Req, status: u16, register: bool, error: Option<&str>, name: &str) -> Reply {
    let (token, new) = form_token(req);
    let (template, title) = if register {
        (REGISTER, "Register")
    } else {
        (LOGIN, "Log in")
    };
    let main = html::render(
        template,
        &[
            ("csrf", Value::Text(&token)),
            ("error", Value::Html(&error_html(error))),
            ("username", Value::Text(name)),
        ],
    );
    let reply = page(status, title, None, &main, "");
    if new {
        reply.with("Set-Cookie", session::set_cookie(csrf::FORM_COOKIE, &token))
    } else {
        reply
    }
}

pub fn login_form(context: &Context, store: &Store, req: &Req) -> Reply {
    match auth(context, store, req) {
        Some(_) => Reply::redirect("/"),
        None => entry_form(req, 200, false, None, ""),
    }
}

pub fn register_form(context: &Context, store: &Store, req: &Req) -> Reply {
    match auth(context, store, req) {
        Some(_) => Reply::redirect("/account"),
        None => entry_form(req, 200, true, None, ""),
    }
}

/// Why a pre-login form post was refused.
pub enum EntryRefusal {
    NotForm,
    BadToken,
}

/// The fields of a pre-login form post (login, register, reset), once it is a form body
/// and carries the double-submit token of its cookie.
pub fn entry_fields(req: &Req) -> Result<Vec<(String, String)>, EntryRefusal> {
    if !req.body_is("application/x-www-form-urlencoded") {
        return Err(EntryRefusal::NotForm);
    }
    let fields = req.form();
    let cookie = req
        .cookie
        .as_deref()
        .and_then(|c| session::cookie(c, csrf::FORM_COOKIE));
    if cookie.is_none_or(|token| !csrf::matches(token, form::get(&fields, csrf::FIELD))) {
        return Err(EntryRefusal::BadToken);
    }
    Ok(fields)
}

/// The refusal of a pre-login form whose token expired or came from another site.
pub const EXPIRED_FORM: &str = "the form expired or came from another site; please try again";

/// The checks every pre-login form post passes: a form body and the double-submit token.
fn entry_post(req: &Req, register: bool) -> Result<Vec<(String, String)>, Reply> {
    match entry_fields(req) {
        Ok(fields) => Ok(fields),
        Err(EntryRefusal::NotForm) => Err(message(415, "Unsupported form", "expected a form post")),
        Err(EntryRefusal::BadToken) => {
            let fields = req.form();
            let name = form::get(&fields, "username").unwrap_or("");
            Err(entry_form(req, 403, register, Some(EXPIRED_FORM), name))
        }
    }
}

/// Starts a session for `user` (a new id, never one the browser brought) and redirects.
fn logged_in(context: &Context, req: &Req, user: &UserRecord, to: &str) -> Reply {
    let mut sessions = context.sessions.lock().expect("sessions");
    if let Some(old) = req
        .cookie
        .as_deref()
        .and_then(|c| session::cookie(c, session::COOKIE))
    {
        sessions.end(old);
    }
    let id = sessions.create(&user.name, Instant::now());
    Reply::redirect(to).with("Set-Cookie", session::set_cookie(session::COOKIE, &id))
}

pub fn login(context: &Context, store: &Store, req: &Req) -> Reply {
    let fields = match entry_post(req, false) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let name = form::get(&fields, "username").unwrap_or("");
    let password = form::get(&fields, "password").unwrap_or("");
    match accounts::login(context, store, req.peer, name, password) {
        Ok(user) => {
            let to = if user.is_admin { "/admin" } else { "/chat" };
            logged_in(context, req, &user, to)
        }
        Err(e) => e.with_retry_after(entry_form(
            req,
            e.status(),
            false,
            Some(&e.to_string()),
            name,
        )),
    }
}

pub fn register(context: &Context, store: &Store, req: &Req) -> Reply {
    let fields = match entry_post(req, true) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let name = form::get(&fields, "username").unwrap_or("");
    let password = form::get(&fields, "password").unwrap_or("");
    let repeat = form::get(&fields, "repeat").unwrap_or("");
    match accounts::register(context, store, req.peer, name, password, repeat) {
        Ok(user) => logged_in(context, req, &user, "/account?notice=registered"),
        Err(e) => e.with_retry_after(entry_form(
            req,
            e.status(),
            true,
            Some(&e.to_string()),
            name,
        )),
    }
}

/// The session of a logged-in user, or a redirect to the login page.
fn require_user(context: &Context, store: &Store, req: &Req) -> Result<Auth, Reply> {
    auth(context, store, req).ok_or_else(|| Reply::redirect("/login"))
}

/// The session of an admin: a redirect for nobody, 403 for a user who is not one.
pub fn require_admin(context: &Context, store: &Store, req: &Req) -> Result<Auth, Reply> {
    let auth = require_user(context, store, req)?;
    if !auth.user.is_admin {
        let main = html::render(
            MESSAGE,
            &[
                ("title", Value::Text("Admins only")),
                ("text", Value::Text("this page is for administrators")),
            ],
        );
        return Err(page(403, "Admins only", Some(&auth), &main, ""));
    }
    Ok(auth)
}

/// A logged-in form post's fields, once its body type and CSRF token are right.
pub fn session_post(auth: &Auth, req: &Req) -> Result<Vec<(String, String)>, Reply> {
    if !req.body_is("application/x-www-form-urlencoded") {
        return Err(message(415, "Unsupported form", "expected a form post"));
    }
    let fields = req.form();
    if !csrf::matches(&auth.session.csrf, form::get(&fields, csrf::FIELD)) {
        return Err(message(
            403,
            "Refused",
            "the form expired or came from another site; reload the page and try again",
        ));
    }
    Ok(fields)
}

pub fn logout(context: &Context, store: &Store, req: &Req) -> Reply {
    let Some(auth) = auth(context, store, req) else {
        return Reply::redirect("/login");
    };
    if let Err(reply) = session_post(&auth, req) {
        return reply;
    }
    context.sessions.lock().expect("sessions").end(&auth.id);
    log::info!("web console: {} logged out", auth.user.name);
    Reply::redirect("/login").with("Set-Cookie", session::clear_cookie(session::COOKIE))
}

/// The account page with an optional notice or error.
fn account_page(
    store: &Store,
    auth: &Auth,
    status: u16,
    error: Option<&str>,
    notice: Option<&str>,
) -> Reply {
    let question = match store.security_question(&auth.user.name) {
        Ok(Some((q, _))) => format!("Your question: {q}"),
        Ok(None) => "No security question is set.".to_owned(),
        Err(e) => {
            log::warn!("web console: {e}");
            "The security question cannot be read now.".to_owned()
        }
    };
    let badge = if auth.user.is_admin {
        r#" <span class="badge">admin</span>"#
    } else {
        ""
    };
    let main = html::render(
        ACCOUNT,
        &[
            ("csrf", Value::Text(&auth.session.csrf)),
            ("username", Value::Text(&auth.user.name)),
            ("admin_badge", Value::Html(badge)),
            ("question_state", Value::Text(&question)),
            ("error", Value::Html(&error_html(error))),
            ("notice", Value::Html(&notice_html(notice))),
        ],
    );
    page(status, "Account", Some(auth), &main, "")
}

pub fn account(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_user(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let notice = match form::get(&req.query, "notice") {
        Some("registered") => Some("Welcome! Your account is ready."),
        Some("password") => Some("Your password was changed; your other sessions were logged out."),
        Some("question") => Some("Your security question was saved."),
        _ => None,
    };
    account_page(store, &auth, 200, None, notice)
}

pub fn change_password(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_user(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let fields = match session_post(&auth, req) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let get = |name| form::get(&fields, name).unwrap_or("");
    match accounts::change_password(
        context,
        store,
        req.peer,
        &auth.user.name,
        get("current"),
        get("password"),
        get("repeat"),
    ) {
        Ok(()) => {
            context
                .sessions
                .lock()
                .expect("sessions")
                .end_user(&auth.user.name, Some(&auth.id));
            Reply::redirect("/account?notice=password")
        }
        Err(e) => account_page(store, &auth, e.status(), Some(&e.to_string()), None),
    }
}

pub fn set_question(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_user(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let fields = match session_post(&auth, req) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let get = |name| form::get(&fields, name).unwrap_or("");
    match accounts::set_question(
        context,
        store,
        &auth.user.name,
        get("question"),
        get("answer"),
    ) {
        Ok(()) => Reply::redirect("/account?notice=question"),
        Err(e) => account_page(store, &auth, e.status(), Some(&e.to_string()), None),
    }
}

pub fn admin(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_admin(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let notice = context
        .sessions
        .lock()
        .expect("sessions")
        .take_notice(&auth.id);
    let notice = match notice {
        Some(Notice { text, error: true }) => error_html(Some(&text)),
        Some(Notice { text, error: false }) => notice_html(Some(&text)),
        None => String::new(),
    };
    match admin::render(context, store, &auth, &req.query, &notice) {
        // The watch panel subscribes over the WebSocket listener, as the chat page does.
        Ok(main) => page(200, "Admin", Some(&auth), &main, ADMIN_SCRIPTS)
            .with("Content-Security-Policy", chat::socket_policy(context, req)),
        Err(e) => {
            log::warn!("web console: asking the broker loop: {e}");
            message(503, "Busy", "the broker did not answer in time; try again")
        }
    }
}

/// Keeps `notice` for the session's next page and sends the browser back to `/admin`
/// (post/redirect/get: a reload shows neither the notice nor posts again).
pub fn back_to_admin(context: &Context, auth: &Auth, text: String, error: bool) -> Reply {
    context
        .sessions
        .lock()
        .expect("sessions")
        .set_notice(&auth.id, Notice { text, error });
    Reply::redirect("/admin")
}

/// A console command's answer as a redirect back to the admin page, or a refusal.
fn command_reply(
    context: &Context,
    auth: &Auth,
    answer: Result<ConsoleAnswer, crate::broker::console::AskError>,
    done: String,
) -> Reply {
    match answer {
        Ok(ConsoleAnswer::Done) => back_to_admin(context, auth, done, false),
        Ok(ConsoleAnswer::NotFound) => message(404, "Not found", "no such listener or client"),
        Ok(ConsoleAnswer::Failed(why)) => message(409, "Cannot do that", &why),
        Ok(_) | Err(_) => message(503, "Busy", "the broker did not answer in time; try again"),
    }
}

pub fn listener_command(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_admin(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let fields = match session_post(&auth, req) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let Some(id) = form::get(&fields, "id").and_then(|id| id.parse::<u8>().ok()) else {
        return message(400, "Bad request", "the listener id must be a number");
    };
    let (ask, action) = match form::get(&fields, "action") {
        Some("stop") => (ConsoleAsk::StopListener(ListenerId(id)), "Stopped"),
        Some("start") => (ConsoleAsk::StartListener(ListenerId(id)), "Started"),
        _ => return message(400, "Bad request", "the action must be stop or start"),
    };
    // Named in the notice: which listener, and how many clients a stop disconnected.
    let listener = match context.ask(ConsoleAsk::Listeners) {
        Ok(ConsoleAnswer::Listeners(all)) => all.into_iter().find(|l| l.id == ListenerId(id)),
        _ => None,
    };
    let done = match (&listener, action) {
        (Some(l), "Stopped") => format!(
            "Stopped the {} listener on {} ({} disconnected).",
            l.kind,
            l.addr,
            match l.connections {
                1 => "1 client".to_owned(),
                n => format!("{n} clients"),
            }
        ),
        (Some(l), _) => format!("Started the {} listener on {}.", l.kind, l.addr),
        (None, _) => format!("{action} listener {id}."),
    };
    log::info!("web console: {}: {done}", auth.user.name);
    command_reply(context, &auth, context.ask(ask), done)
}

pub fn disconnect(context: &Context, store: &Store, req: &Req) -> Reply {
    let auth = match require_admin(context, store, req) {
        Ok(auth) => auth,
        Err(reply) => return reply,
    };
    let fields = match session_post(&auth, req) {
        Ok(fields) => fields,
        Err(reply) => return reply,
    };
    let Some(client_id) = form::get(&fields, "client_id").filter(|c| !c.is_empty()) else {
        return message(400, "Bad request", "no client id given");
    };
    log::info!(
        "web console: {} disconnects client {client_id:?}",
        auth.user.name
    );
    command_reply(
        context,
        &auth,
        context.ask(ConsoleAsk::Disconnect(client_id.to_owned())),
        format!("Disconnected client {client_id}."),
    )
}
