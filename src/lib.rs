//! Outpost: an MQTT 5 and 3.1.1 broker for small gateways on thin, flaky links.
//!
//! Module map:
//! - `config`   — `Config` in sections (network, web, storage, runtime, access, accounts,
//!   limits, features, chat, bridge), defaults, TOML loading, what a reload may change.
//! - `cli`      — command-line parsing into a `Command`.
//! - `http_head` — the one HTTP/1.1 request-head parser (httparse), for the console and WebSocket.
//! - `protocol` — the codec: borrowed packet views, `decode` and `encode`; knows nothing of the broker.
//! - `topic`    — topic validation, the subscription trie and the retained-message tree (pure data).
//! - `core`     — the broker's state and decisions with no I/O: sessions, keys, messages, timers.
//! - `broker`   — the I/O shell: the single-threaded mio event loop, sockets, the store's commits.
//! - `store`    — all SQL: the SQLite database, group commit, start-up loads, users, ACLs.
//! - `auth`     — password hashing and checking (bcrypt, off the loop), ACLs, bans, throttles.
//! - `accounts` — user accounts for every front end: rules, register, new passwords, questions, reset.
//! - `bridge`   — the uplink to an upstream broker: topic rules, forward queue, client session.
//! - `tls`      — TLS (rustls) as a framing layer: ciphertext in, plaintext out; PEM loading.
//! - `service`  — the seam between the broker and the services beside it: requests in, effects out.
//! - `chat`     — the chat service on `chat/` topics: rooms, history, likes, account requests.
//! - `user_cli` — the `outpost user …` / `outpost acl …` commands.
//! - `ws`       — MQTT over WebSocket as bytes: handshake, frames in and out, close codes.
//! - `check_config` — `outpost check-config FILE`: validate and print the effective settings.
//! - `clock`    — the wall clock (Unix time now) and the one UTC date formatter.
//! - `logging`  — stderr/journal logging at a level SIGHUP can change.
//! - `origin`   — the Host names the console answers to and the Origins the WebSocket listeners admit.
//! - `web`      — the web console: pages, JSON API and metrics on threads of its own.

pub mod accounts;
pub mod auth;
pub mod bridge;
pub mod broker;
pub mod chat;
pub mod check_config;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod core;
pub mod http_head;
pub mod logging;
pub mod origin;
pub mod protocol;
pub mod service;
pub mod store;
pub mod tls;
pub mod topic;
pub mod user_cli;
pub mod web;
pub mod ws;
