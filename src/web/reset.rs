//! `/reset`: a forgotten password reset on the web with the security question a user set
//! on `/account` (or over the chat). Step one asks the user name and shows the question;
//! step two takes the answer and a new password. The answer is checked, and the new
//! password hashed, by the chat service's own reset on an auth worker, under its attempt
//! windows per user and per address (shared with `reset` over MQTT), so the web adds no
//! second way to guess. Both steps are plain forms with the pre-login CSRF token.

use std::time::Duration;

use super::csrf;
use super::form;
use super::html::{self, escape, Value};
use super::pages::{self, entry_fields, form_token, EntryRefusal, EXPIRED_FORM};
use super::server::{Context, Reply, Req};
use super::session;
use crate::accounts::{self, rules};
use crate::broker::console::{self, ConsoleAnswer, ConsoleAsk};
use crate::store::Store;

const RESET: &str = include_str!("../../assets/reset.html");
/// How long the page waits for the worker's verdict: two bcrypt runs, maybe behind others.
const RESET_TIMEOUT: Duration = Duration::from_secs(15);

/// The first step: the user name.
fn name_step(token: &str, name: &str) -> String {
    format!(
        r#"<form method="post" action="/reset"><input type="hidden" name="csrf" value="{token}"><label for="username">User name</label><input id="username" name="username" autocomplete="username" required autofocus value="{name}"><button type="submit">Show my question</button></form>"#,
        token = escape(token),
        name = escape(name),
    )
}

/// The second step: the question, the answer and the new password.
fn answer_step(token: &str, name: &str, question: &str) -> String {
    format!(
        r#"<form method="post" action="/reset"><input type="hidden" name="csrf" value="{token}"><input type="hidden" name="username" value="{name}"><p>Security question for <strong>{name}</strong>:</p><p class="question" id="question">{question}</p><label for="answer">Answer</label><input id="answer" name="answer" autocomplete="off" required autofocus><label for="password">New password</label><input id="password" type="password" name="password" autocomplete="new-password" required><p class="hint">At least 8 characters.</p><label for="repeat">New password again</label><input id="repeat" type="password" name="repeat" autocomplete="new-password" required><button type="submit">Set the new password</button></form>"#,
        token = escape(token),
        name = escape(name),
        question = escape(question),
    )
}

fn reset_page(req: &Req, status: u16, error: Option<&str>, step: impl Fn(&str) -> String) -> Reply {
    let (token, new) = form_token(req);
    let error = error.map_or_else(String::new, |e| {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))
    });
    let main = html::render(
        RESET,
        &[
            ("error", Value::Html(&error)),
            ("step", Value::Html(&step(&token))),
        ],
    );
    let reply = pages::page(status, "Reset password", None, &main, "");
    if new {
        reply.with("Set-Cookie", session::set_cookie(csrf::FORM_COOKIE, &token))
    } else {
        reply
    }
}

pub fn form_page(req: &Req) -> Reply {
    reset_page(req, 200, None, |token| name_step(token, ""))
}

pub fn post(context: &Context, store: &Store, req: &Req) -> Reply {
    let fields = match entry_fields(req) {
        Ok(fields) => fields,
        Err(EntryRefusal::NotForm) => {
            return pages::message(415, "Unsupported form", "expected a form post")
        }
        Err(EntryRefusal::BadToken) => {
            return reset_page(req, 403, Some(EXPIRED_FORM), |token| name_step(token, ""))
        }
    };
    let get = |name| form::get(&fields, name).unwrap_or("");
    let name = get("username").trim();
    let question = match accounts::question(store, name) {
        Ok(question) => question,
        Err(e) => {
            log::info!("web console: reset for {name:?}: {e}");
            return reset_page(req, 404, Some(&e.to_string()), |token| {
                name_step(token, name)
            });
        }
    };
    if form::get(&fields, "answer").is_none() {
        return reset_page(req, 200, None, |token| answer_step(token, name, &question));
    }
    let again = |status, why: &str| {
        reset_page(req, status, Some(why), |token| {
            answer_step(token, name, &question)
        })
    };
    if let Err(e) = rules::check_password(get("password")) {
        return again(400, &e.to_string());
    }
    if get("password") != get("repeat") {
        return again(400, "the two new passwords differ");
    }
    let ask = ConsoleAsk::ResetPassword {
        name: name.to_owned(),
        answer: get("answer").to_owned(),
        password: get("password").to_owned(),
        addr: req.peer,
    };
    match console::ask(&context.inbox, ask, RESET_TIMEOUT) {
        Ok(ConsoleAnswer::Done) => {
            // Sessions opened with the old password end.
            context
                .sessions
                .lock()
                .expect("sessions")
                .end_user(name, None);
            pages::message(
                200,
                "Password changed",
                "Your password is changed. Log in with the new one.",
            )
        }
        Ok(ConsoleAnswer::TooManyAttempts(wait)) => again(
            429,
            &format!(
                "too many failed reset attempts for this user or from your address; try again in {wait} s"
            ),
        ),
        Ok(ConsoleAnswer::NotAuthorized(why)) => again(403, &why),
        Ok(ConsoleAnswer::Invalid(why)) => again(400, &why),
        Ok(ConsoleAnswer::Failed(why)) => again(503, &why),
        other => {
            log::warn!("web console: password reset for {name}: {other:?}");
            again(503, "the broker did not answer in time; try again")
        }
    }
}
