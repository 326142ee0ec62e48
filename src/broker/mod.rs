//! The broker: all state owned by the event loop, and the handlers that change it. The
//! pure parts it is built from (keys, sessions, messages, aliases, timers) are in `core/`.
//!
//! - `event_loop` — mio `Poll`, tokens, accept, the turn (read → handle → flush → close).
//! - `client`     — one connection: socket, buffers, negotiated state.
//! - `transport`  — the framing between socket and MQTT bytes: plain TCP or WebSocket.
//! - `listeners`  — the listener table: kinds, addresses, stop and start at run time.
//! - `inbox`      — the one channel other threads (auth, web console) reach the loop by.
//! - `turn`       — what a turn collects for its end (flush, close, read again), reused buffers.
//! - `console`    — what the web console may ask the loop, and the answers.
//! - `dispatch`   — packet → handler.
//! - `access`     — auth workers and waiting CONNECTs, credential cache, throttle, ACL rules.
//! - `close`      — why connections end: the one place that turns it into reason codes.
//! - `linger`     — a closed connection's socket finishing its answer, draining input.
//! - `connect` `publish` `acks` `subscribe` `disconnect` — one handler file per inbound packet.
//! - `bridge`     — the bridges' outbound connections, forward queues and local delivery.
//! - `delivery`   — carrying out the core's routing and `queue_full` verdicts: send or queue.
//! - `queue`      — session queues: memory or disk tail, limits and budgets, paging.
//! - `backpressure` — holding publishers back while a queue is full, and letting them go.
//! - `tokens`     — the poll tokens of connections and bridges, from their slab keys.
//! - `stats`      — counters for logs and `$SYS`.
//! - `sys`        — the `$SYS` topics, published only while someone listens.
//! - `persist`    — what is staged in the store each turn, and loaded back at start.
//! - `commit`     — the commit window, the store writer's batches, acks held until durable.
//! - `held`       — a bridge link's output kept back until the batch it follows is durable.
//! - `reload`     — SIGHUP: the config file and ACL rules read again, clients kept.
//! - `services`   — the internal services beside the broker (chat): claimed topics, effects.
//! - `watch`      — recent topics and their last messages, for the web console (bounded).

mod access;
mod acks;
mod backpressure;
mod bridge;
mod client;
mod close;
mod commit;
mod connect;
pub mod console;
mod console_clients;
mod console_reset;
mod console_topics;
mod delivery;
mod disconnect;
mod dispatch;
mod event_loop;
mod held;
mod inbox;
mod linger;
mod listeners;
mod persist;
mod publish;
mod queue;
mod reload;
mod services;
mod socket_io;
mod stats;
mod subscribe;
mod sys;
mod tokens;
mod transport;
mod turn;
mod watch;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::worker::AuthWorker;
use crate::config::Config;
use crate::core::keys::{SessionKey, Slab};
use crate::core::message::Message;
use crate::protocol::ReasonCode;
use crate::store::{Store, Writer};
use crate::topic::{self, RetainedTree, TopicTrie};
use client::Connection;
use inbox::Inbox;
use listeners::Listeners;
// `bridge.rs` names these as `super::…` (it is being rewritten as a client connection).
use crate::core::session::{Session, SubEntry};
use crate::core::timers::Timers;
use crate::core::{keys, message, timers};
use stats::Stats;

pub use crate::core::keys::ConnKey;
pub use bridge::load_tls as load_bridge_tls;
pub use event_loop::{run, RunError, Server};
pub use inbox::{Inbound, InboxSender, SendError};
pub use listeners::{ListenerId, ListenerKind};

/// A rule broken by a client: the reason code to answer with and a detail for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub reason: ReasonCode,
    pub detail: &'static str,
}

impl Violation {
    pub fn new(reason: ReasonCode, detail: &'static str) -> Self {
        Violation { reason, detail }
    }

    pub fn protocol(detail: &'static str) -> Self {
        Violation::new(ReasonCode::ProtocolError, detail)
    }
}

/// Everything the loop owns besides the poll itself. Each concern with more than one
/// field is a part with its own type, in the module that owns the concern, so a handler
/// can borrow one part while it changes another.
pub struct Broker {
    config: Config,
    /// The poll's registry, to register sockets from any handler.
    registry: mio::Registry,
    listeners: Listeners,
    /// Certificate and key of the TLS listeners, when there are any.
    tls_server: Option<Arc<rustls::ServerConfig>>,
    /// The wss listeners' TLS configuration (`web_tls`).
    web_tls_server: Option<Arc<rustls::ServerConfig>>,
    /// The Origins a browser may open a WebSocket from (`ws_allowed_origins` and the
    /// console's host names).
    web_sites: Arc<crate::origin::Sites>,
    /// What other threads send the loop.
    inbox: Inbox,

    conns: Slab<ConnKey, Connection>,
    /// Open connections per client IP address, for `max_connections_per_address`
    /// (lingering sockets included).
    per_address: HashMap<IpAddr, usize>,
    /// Sockets of closed connections finishing their answer (see `linger.rs`).
    lingering: linger::Lingerers,
    sessions: Slab<SessionKey, Session>,
    /// Client id → key in `sessions`.
    session_ids: crate::core::index::SessionIndex,
    /// Last serial handed out (connection serials, session generations); timers name
    /// what they are for by it, since slab keys are reused.
    next_serial: u64,

    trie: TopicTrie<SubEntry, SessionKey>,
    /// Round-robin position per shared group.
    shared_cursors: crate::core::shared::SharedCursors,
    retained: RetainedTree<Arc<Message>>,
    /// Topics seen and their last messages, for the web console.
    watch: watch::TopicWatch,

    /// The chat service, unless `chat = false`.
    chat: Option<crate::chat::ChatService>,
    /// The uplinks to upstream brokers.
    bridges: bridge::Bridges,

    /// Who may connect and what they may do: auth workers, caches, ACL rules.
    access: access::Access,
    /// The store and this turn's staged writes.
    db: persist::Db,
    /// The broker-wide queue budgets and the publishers waiting for them.
    budget: crate::core::queue::Budget,
    /// What the turn does at its end, and the buffers it reuses.
    turn: turn::Turn,
    timers: Timers,
    stats: Stats,
    /// `$SYS`: whether it runs, its rates, the uptime.
    sys: sys::Sys,
}

impl Broker {
    fn new(
        config: Config,
        store: Store,
        writer: Writer,
        auth: AuthWorker<Inbound>,
        registry: mio::Registry,
        listeners: Listeners,
        inbox: Inbox,
    ) -> Broker {
        let web_sites = Arc::new(crate::origin::Sites::from_config(&config.web));
        Broker {
            web_sites,
            config,
            registry,
            listeners,
            tls_server: None,
            web_tls_server: None,
            inbox,
            conns: Slab::default(),
            per_address: HashMap::new(),
            lingering: linger::Lingerers::default(),
            sessions: Slab::default(),
            session_ids: crate::core::index::SessionIndex::default(),
            next_serial: 0,
            trie: TopicTrie::new(),
            shared_cursors: crate::core::shared::SharedCursors::default(),
            retained: RetainedTree::new(),
            watch: watch::TopicWatch::default(),
            chat: None,
            bridges: bridge::Bridges::default(),
            access: access::Access::new(auth),
            db: persist::Db::new(store, writer),
            budget: crate::core::queue::Budget::default(),
            turn: turn::Turn::default(),
            timers: Timers::default(),
            stats: Stats::default(),
            sys: sys::Sys::default(),
        }
    }

    /// A number never handed out before: connection serials and session generations.
    fn next_generation(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// A topic name a client may publish to (or name in a will), within the limits.
    fn valid_topic(&self, topic: &str) -> bool {
        self.within_length(topic)
            && topic::valid_topic_name(topic, self.config.limits.max_topic_levels)
    }

    /// A filter a client may subscribe to, within the limits.
    fn valid_filter(&self, filter: &str) -> bool {
        self.within_length(filter)
            && topic::valid_filter(filter, self.config.limits.max_topic_levels)
    }

    fn within_length(&self, topic: &str) -> bool {
        self.config.limits.max_topic_length == 0
            || topic.len() <= self.config.limits.max_topic_length
    }

    /// Lists a connection for the end-of-turn flush.
    fn mark_flush(&mut self, token: ConnKey) {
        if let Some(conn) = self.conns.get_mut(token) {
            if !conn.in_flush_list {
                conn.in_flush_list = true;
                self.turn.flush.push(token);
            }
        }
    }
}
