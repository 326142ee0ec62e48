//! Method and path → handler, and who may call what: pages need a session (else a
//! redirect to `/login`), `/admin` and the admin API an admin, every POST the right
//! origin and CSRF token.

use std::time::Instant;

use super::http::Method;

use super::server::{Context, Reply, Req};
use super::session::{self, Session};
use super::{admin_forms, api, chat, client_page, csrf, metrics, pages, reset};
use crate::store::{Store, UserRecord};

/// A request's logged-in session and its (freshly read) user.
pub struct Auth {
    pub id: String,
    pub session: Session,
    pub user: UserRecord,
}

/// The session named by the request's cookie, if it is live and its user still exists
/// (an account deleted with `outpost user del` ends its sessions here).
pub fn auth(context: &Context, store: &Store, req: &Req) -> Option<Auth> {
    let id = session::cookie(req.cookie.as_deref()?, session::COOKIE)?.to_owned();
    let session = context
        .sessions
        .lock()
        .expect("sessions")
        .touch(&id, Instant::now())?;
    match store.find_user(&session.user) {
        Ok(Some(user)) => Some(Auth { id, session, user }),
        Ok(None) => {
            context
                .sessions
                .lock()
                .expect("sessions")
                .end_user(&session.user, None);
            None
        }
        Err(e) => {
            log::warn!("web console: cannot read user {}: {e}", session.user);
            None
        }
    }
}

/// The methods a page path takes, for the `Allow` header of a 405.
fn allowed(path: &str) -> &'static str {
    match path {
        "/login" | "/register" | "/reset" => "GET, POST",
        "/logout" | "/account/password" | "/account/question" => "POST",
        "/admin/client" => "GET",
        p if p.starts_with("/admin/") => "POST",
        _ => "GET",
    }
}

pub fn handle(context: &Context, store: &Store, req: &Req) -> Reply {
    let is_api = req.path.starts_with("/api/");
    let command = matches!(req.method, Method::Post | Method::Delete);
    if command && !csrf::same_origin(req.origin.as_deref(), req.host.as_deref()) {
        let text = "cross-origin request refused";
        return if is_api {
            Reply::json_error(403, "cross_origin", text)
        } else {
            pages::message(403, "Refused", text)
        };
    }
    if is_api {
        return api::handle(context, store, req);
    }
    let get = req.method == Method::Get;
    let post = req.method == Method::Post;
    match req.path.as_str() {
        "/" if get => match auth(context, store, req) {
            Some(a) if a.user.is_admin => Reply::redirect("/admin"),
            Some(_) => Reply::redirect("/chat"),
            None => Reply::redirect("/login"),
        },
        "/login" if get => pages::login_form(context, store, req),
        "/login" if post => pages::login(context, store, req),
        "/register" if get => pages::register_form(context, store, req),
        "/register" if post => pages::register(context, store, req),
        "/reset" if get => reset::form_page(req),
        "/reset" if post => reset::post(context, store, req),
        "/logout" if post => pages::logout(context, store, req),
        "/account" if get => pages::account(context, store, req),
        "/account/password" if post => pages::change_password(context, store, req),
        "/account/question" if post => pages::set_question(context, store, req),
        "/chat" if get => match auth(context, store, req) {
            Some(a) => chat::page(context, req, &a),
            None => Reply::redirect("/login"),
        },
        "/admin" if get => pages::admin(context, store, req),
        "/admin/client" if get => client_page::html_page(context, store, req),
        "/admin/sessions/delete" if post => admin_forms::delete_session(context, store, req),
        "/admin/listener" if post => pages::listener_command(context, store, req),
        "/admin/disconnect" if post => pages::disconnect(context, store, req),
        "/admin/publish" if post => admin_forms::publish(context, store, req),
        "/admin/retained/delete" if post => admin_forms::delete_retained(context, store, req),
        "/admin/users" if post => admin_forms::add_user(context, store, req),
        "/admin/users/delete" if post => admin_forms::delete_user(context, store, req),
        "/admin/users/role" if post => admin_forms::set_role(context, store, req),
        "/admin/users/password" if post => admin_forms::set_password(context, store, req),
        "/admin/acl" if post => admin_forms::add_rule(context, store, req),
        "/admin/acl/delete" if post => admin_forms::delete_rule(context, store, req),
        "/admin/bans" if post => admin_forms::ban(context, store, req),
        "/admin/bans/delete" if post => admin_forms::unban(context, store, req),
        "/assets/style.css" if get => Reply::new(
            200,
            "text/css; charset=utf-8",
            include_str!("../../assets/style.css"),
        ),
        "/assets/admin.js" if get => Reply::new(
            200,
            "text/javascript; charset=utf-8",
            include_str!("../../assets/admin.js"),
        ),
        "/assets/topic-tree.js" if get => Reply::new(
            200,
            "text/javascript; charset=utf-8",
            include_str!("../../assets/topic-tree.js"),
        ),
        "/assets/client.js" if get => Reply::new(
            200,
            "text/javascript; charset=utf-8",
            include_str!("../../assets/client.js"),
        ),
        "/assets/chat.js" if get => Reply::new(
            200,
            "text/javascript; charset=utf-8",
            include_str!("../../assets/chat.js"),
        ),
        "/assets/mqtt-ws.js" if get => Reply::new(
            200,
            "text/javascript; charset=utf-8",
            include_str!("../../assets/mqtt-ws.js"),
        ),
        "/metrics" if get => metrics::handle(context, req),
        // Browsers ask for it on every page; there is none, and a 404 would be logged.
        "/favicon.ico" if get => Reply::new(204, "image/x-icon", ""),
        "/"
        | "/login"
        | "/register"
        | "/reset"
        | "/logout"
        | "/account"
        | "/account/password"
        | "/account/question"
        | "/chat"
        | "/admin"
        | "/admin/client"
        | "/admin/sessions/delete"
        | "/admin/listener"
        | "/admin/disconnect"
        | "/admin/publish"
        | "/admin/retained/delete"
        | "/admin/users"
        | "/admin/users/delete"
        | "/admin/users/role"
        | "/admin/users/password"
        | "/admin/acl"
        | "/admin/acl/delete"
        | "/admin/bans"
        | "/admin/bans/delete"
        | "/assets/style.css"
        | "/assets/admin.js"
        | "/assets/chat.js"
        | "/assets/client.js"
        | "/assets/topic-tree.js"
        | "/assets/mqtt-ws.js"
        | "/metrics" => pages::message(
            405,
            "Method not allowed",
            "this page does not take that method",
        )
        .with("Allow", allowed(&req.path).to_owned()),
        _ => pages::message(404, "Not found", "there is no such page"),
    }
}
