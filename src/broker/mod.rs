//! The broker: all state owned by the event loop, and the handlers that change it.
//!
//! - `event_loop` — mio `Poll`, tokens, accept, the turn (read → handle → flush → close).
//! - `client`     — one connection: socket, buffers, negotiated state.
//! - `transport`  — the framing between socket and MQTT bytes: plain TCP or WebSocket.
//! - `listeners`  — the listener table: kinds, addresses, stop and start at run time.
//! - `inbox`      — the one channel other threads (auth, web console) reach the loop by.
//! - `console`    — what the web console may ask the loop, and the answers.
//! - `dispatch`   — packet → handler.
//! - `close`      — why connections end: the one place that turns it into reason codes.
//! - `connect` `publish` `acks` `subscribe` `disconnect` — one handler file per inbound packet.
//! - `bridge`     — the bridges' outbound connections, forward queues and local delivery.
//! - `alias`      — topic aliases the broker sets up toward a client (LRU remapping).
//! - `delivery`   — routing a message to sessions: matching, QoS, `queue_full`, in-flight windows.
//! - `queue`      — session queues: memory or disk tail, limits and budgets, paging.
//! - `backpressure` — holding publishers back while a queue is full, and letting them go.
//! - `index`      — sessions by client id (slab keys only; the id lives in the session).
//! - `keys`       — typed slab keys (`ConnKey`, `SessionKey`) and the slab they index.
//! - `session`    — what survives a connection: subscriptions, queue, in-flight, will.
//! - `shared`     — round-robin positions of shared-subscription groups.
//! - `message`    — the shared, reference-counted copy of a published message.
//! - `timers`     — the deadline heap that sets the poll timeout.
//! - `stats`      — counters for logs and `$SYS`.
//! - `sys`        — the `$SYS` topics, published only while someone listens.
//! - `persist`    — what is staged in the store each turn, and loaded back at start.
//! - `reload`     — SIGHUP: the config file and ACL rules read again, clients kept.
//! - `services`   — the internal services beside the broker (chat): claimed topics, effects.
//! - `watch`      — recent topics and their last messages, for the web console (bounded).

mod acks;
mod alias;
mod backpressure;
mod bridge;
mod client;
mod close;
mod connect;
pub mod console;
mod delivery;
mod disconnect;
mod dispatch;
mod event_loop;
mod inbox;
mod index;
mod keys;
mod listeners;
mod message;
mod persist;
mod publish;
mod queue;
mod reload;
mod services;
mod session;
mod shared;
mod stats;
mod subscribe;
mod sys;
mod timers;
mod transport;
mod watch;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::acl::ClientAcl;
use crate::auth::cache::CredentialCache;
use crate::auth::login_token::LoginTokens;
use crate::auth::throttle::LoginThrottle;
use crate::auth::worker::AuthWorker;
use crate::config::Config;
use crate::protocol::ReasonCode;
use crate::store::{AclRule, Store};
use crate::topic::{self, RetainedTree, TopicTrie};
use client::Connection;
use inbox::Inbox;
use keys::{SessionKey, Slab};
use listeners::Listeners;
use message::Message;
use session::{Outbound, Session, SubEntry};
use stats::Stats;
use timers::Timers;

pub use event_loop::{run, RunError, Server};
pub use inbox::{Inbound, InboxSender, SendError};
pub use keys::ConnKey;
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

/// Everything the loop owns besides the poll itself.
pub struct Broker {
    config: Config,
    /// The poll's registry, to register sockets from any handler.
    registry: mio::Registry,
    listeners: Listeners,
    /// What other threads send the loop.
    inbox: Inbox,
    /// The chat service, unless `chat = false`.
    chat: Option<crate::chat::ChatService>,
    /// The database; writes are staged during a turn and committed at its end.
    store: Store,
    /// Last message id handed out in the store.
    next_message_id: u64,
    /// Message bodies staged in this turn's commit, so each is written once.
    staged_messages: HashSet<u64>,
    conns: Slab<ConnKey, Connection>,
    sessions: Slab<SessionKey, Session>,
    /// Client id → key in `sessions`.
    session_ids: index::SessionIndex,
    trie: TopicTrie<SubEntry, SessionKey>,
    retained: RetainedTree<Arc<Message>>,
    timers: Timers,
    stats: Stats,
    /// The bcrypt worker threads.
    auth: AuthWorker,
    /// CONNECTs waiting for the auth worker, by connection.
    pending_connects: HashMap<ConnKey, connect::PendingConnect>,
    /// Recently verified credentials (salted digests).
    credentials: CredentialCache,
    /// Addresses that keep failing to log in.
    throttle: LoginThrottle,
    /// Single-use passwords the web console granted to logged-in browsers.
    login_tokens: LoginTokens,
    /// Every ACL rule in the store, refreshed with each auth reply.
    acl_rules: Arc<Vec<AclRule>>,
    /// The last client ACL built, handed out again to clients whose rules are the same.
    last_acl: Arc<ClientAcl>,
    /// Connections with output to flush at the end of this turn.
    flush_list: Vec<ConnKey>,
    /// Open connections per client IP address, for `max_connections_per_address`.
    per_address: HashMap<IpAddr, usize>,
    /// Connections that had more to read when their per-turn share ran out.
    read_again: Vec<ConnKey>,
    /// Connections to close at the end of this turn.
    close_list: Vec<ConnKey>,
    /// Round-robin position per shared group.
    shared_cursors: shared::SharedCursors,
    /// The one buffer every socket is read into; whole frames are decoded from it directly.
    read_scratch: Vec<u8>,
    /// Reused buffer of matching subscriptions, so routing does not allocate per message.
    matches: Vec<(SessionKey, SubEntry)>,
    /// Reused buffer of a message's deliveries and what each does (see `delivery.rs`).
    plan: Vec<(SessionKey, Outbound, delivery::Step)>,
    /// True while the `$SYS` timer is scheduled.
    sys_running: bool,
    load: sys::Load,
    started: Instant,
    /// Messages waiting in session queues, in memory and on disk.
    queued_messages: usize,
    /// Topic and payload bytes of queued messages held in memory, against `max_queued_memory`.
    queued_bytes: usize,
    /// The uplinks to upstream brokers.
    bridges: bridge::Bridges,
    /// Certificate and key of the TLS listeners, when there are any.
    tls_server: Option<Arc<rustls::ServerConfig>>,
    /// Topic and payload bytes of persistent sessions' queued messages (all in the store),
    /// against `max_queued_disk`.
    disk_queued_bytes: usize,
    /// Publishers held back until a broker-wide queue budget has room, in the order they came.
    budget_waiters: Vec<(ConnKey, u64)>,
    /// Last serial handed out (connection serials, session generations); timers name
    /// what they are for by it, since slab keys are reused.
    next_serial: u64,
    /// Topics seen and their last messages, for the web console.
    watch: watch::TopicWatch,
}

impl Broker {
    fn new(
        config: Config,
        store: Store,
        auth: AuthWorker,
        registry: mio::Registry,
        listeners: Listeners,
        inbox: Inbox,
    ) -> Broker {
        Broker {
            registry,
            listeners,
            inbox,
            chat: None,
            auth,
            pending_connects: HashMap::new(),
            credentials: CredentialCache::default(),
            throttle: LoginThrottle::default(),
            login_tokens: LoginTokens::default(),
            acl_rules: Arc::new(Vec::new()),
            last_acl: Arc::default(),
            config,
            store,
            next_message_id: 0,
            staged_messages: HashSet::new(),
            conns: Slab::default(),
            sessions: Slab::default(),
            session_ids: index::SessionIndex::default(),
            trie: TopicTrie::new(),
            retained: RetainedTree::new(),
            timers: Timers::default(),
            stats: Stats::default(),
            flush_list: Vec::new(),
            close_list: Vec::new(),
            read_again: Vec::new(),
            per_address: HashMap::new(),
            shared_cursors: shared::SharedCursors::default(),
            matches: Vec::new(),
            plan: Vec::new(),
            read_scratch: Vec::new(),
            next_serial: 0,
            sys_running: false,
            load: sys::Load::default(),
            started: Instant::now(),
            queued_messages: 0,
            queued_bytes: 0,
            bridges: bridge::Bridges::default(),
            tls_server: None,
            disk_queued_bytes: 0,
            budget_waiters: Vec::new(),
            watch: watch::TopicWatch::default(),
        }
    }

    /// A number never handed out before: connection serials and session generations.
    fn next_generation(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// The rules for one client, shared with the previous client when they are the same.
    fn acl_for(&mut self, username: Option<&str>, client_id: &str) -> Arc<ClientAcl> {
        let acl = ClientAcl::for_client(
            &self.acl_rules,
            &self.config.deny_subscribe,
            &self.config.deny_publish,
            username,
            client_id,
        );
        if *self.last_acl != acl {
            self.last_acl = Arc::new(acl);
        }
        self.last_acl.clone()
    }

    /// A topic name a client may publish to (or name in a will), within the limits.
    fn valid_topic(&self, topic: &str) -> bool {
        self.within_length(topic) && topic::valid_topic_name(topic, self.config.max_topic_levels)
    }

    /// A filter a client may subscribe to, within the limits.
    fn valid_filter(&self, filter: &str) -> bool {
        self.within_length(filter) && topic::valid_filter(filter, self.config.max_topic_levels)
    }

    fn within_length(&self, topic: &str) -> bool {
        self.config.max_topic_length == 0 || topic.len() <= self.config.max_topic_length
    }

    /// Lists a connection for the end-of-turn flush.
    fn mark_flush(&mut self, token: ConnKey) {
        if let Some(conn) = self.conns.get_mut(token) {
            if !conn.in_flush_list {
                conn.in_flush_list = true;
                self.flush_list.push(token);
            }
        }
    }
}
