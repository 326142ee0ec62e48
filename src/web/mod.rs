//! The web console: a small HTTP/1.1 server on a poll loop and worker threads of its own with the login, register,
//! account, chat and admin pages, the JSON API behind them and a Prometheus endpoint. It never
//! touches broker state: users come from its own SQLite connection, live state and
//! commands go to the loop through the inbox ([`crate::broker::console`]) and come back
//! within a timeout.
//!
//! - `server`   — start-up, the request and reply types, security headers.
//! - `front`    — the mio poll loop: accept, connection caps, deadlines, answers back.
//! - `conn`     — one connection's request cycle: head, body, keep-alive, pipelining.
//! - `workers`  — the threads that run handlers on complete requests.
//! - `http`     — the console's HTTP/1.1 rules over the shared head parser; responses.
//! - `routes`   — method and path → handler; who may call what.
//! - `session`  — login sessions and their cookies.
//! - `csrf`     — the form and API token checks.
//! - `limit`    — login rate limiting per address.
//! - `accounts` — register, log in, change password, set the security question.
//! - `reset`    — `/reset`: a forgotten password reset with the security question.
//! - `pages`    — the HTML pages, filled from `assets/` templates.
//! - `admin`    — the admin page's tables, rendered on the server so it works without JS;
//!   `admin_manage` its retained, user and ACL panels, `admin_forms` their form posts.
//! - `api`      — the JSON API; `admin_api` its admin commands.
//! - `commands` — what the console's commands do (publish, retained, users, ACL rules);
//!   `bans` bans and lifting them.
//! - `client_page` — `/admin/client`: one client in detail; `sessions` the offline sessions.
//! - `payload`  — a payload as text, pretty JSON or hex.
//! - `chat`     — the `/chat` page's policy and its single-use MQTT login tokens.
//! - `metrics`  — `/metrics` in the Prometheus text format (loopback only).
//! - `html` `form` — escaping and templates; form and query decoding.

mod accounts;
mod admin;
mod admin_api;
mod admin_forms;
mod admin_manage;
mod api;
mod bans;
mod chat;
mod client_page;
mod commands;
mod conn;
mod csrf;
mod form;
mod front;
mod html;
mod http;
mod limit;
mod metrics;
mod pages;
mod payload;
mod reset;
mod routes;
mod server;
mod session;
mod sessions;
mod workers;

pub use server::{spawn, WebError};
