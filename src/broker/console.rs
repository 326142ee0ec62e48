//! What the web console may ask the loop, and the loop's answers. The web thread sends a
//! [`ConsoleRequest`] through the inbox and waits (with a timeout) on its own reply
//! channel; the loop answers from its state in one place and never waits on the web thread.
//! Answers are snapshots: the console computes rates from successive ones, so nothing runs
//! on the loop while nobody looks. Long lists are cut at [`MAX_ROWS`]. The console's
//! publish and retained-message commands are carried out in `console_topics.rs`, the
//! client detail and offline sessions in `console_clients.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use super::bridge::{BridgeInfo, LinkState};
use super::close::Ending;
pub use super::console_clients::{ClientDetail, SessionInfo, SubscriptionDetail, WillInfo};
use super::inbox::{Inbound, InboxSender, SendError};
use super::listeners::{ListenerId, ListenerKind};
use super::watch::Seen;
pub use super::watch::{SeenProperties, PREVIEW_BYTES};
use super::{Broker, Violation};
use crate::auth::bans;
use crate::auth::throttle::Attempt;
use crate::clock;
use crate::core::keys::ConnKey;
use crate::protocol::{ProtocolVersion, ReasonCode};

/// Rows in one list answer, so a broker with many clients answers in bounded time and size.
pub const MAX_ROWS: usize = 500;

/// A question or command for the loop.
#[derive(Debug)]
pub enum ConsoleAsk {
    /// Every listener with its state.
    Listeners,
    /// Stop a listener: close its socket and disconnect its clients (MQTT 5: 0x8B).
    StopListener(ListenerId),
    /// Bind a stopped listener again.
    StartListener(ListenerId),
    /// Counters since start and current sizes.
    Stats,
    /// Connected clients with their subscriptions and messages in transit.
    Clients,
    /// Every subscribed filter with its subscribers (offline sessions included).
    Subscribers,
    /// The topics seen since start (bounded), busiest first.
    Topics,
    /// The last messages of one topic.
    TopicMessages(String),
    /// One connected client in detail.
    Client(String),
    /// The persistent sessions of clients that are not connected.
    OfflineSessions,
    /// End the offline session of this client id (as its expiry would).
    DeleteSession(String),
    /// Disconnect the client with this id (MQTT 5: DISCONNECT 0x98, Administrative action).
    Disconnect(String),
    /// Every bridge with its link state and queue.
    Bridges,
    /// Publish a message as a console user, under that user's ACL rules.
    Publish(ConsolePublish),
    /// The retained messages whose topics start with this prefix (previews only).
    Retained(String),
    /// One retained message with its payload up to [`PAYLOAD_CAP`].
    RetainedMessage(String),
    /// Clear the retained messages matching a filter (a topic, or a subtree with `#`),
    /// as a console user who must be allowed to publish to the filter.
    ClearRetained { user: String, filter: String },
    /// Read the ACL rules again and forget cached logins (after the console changed users
    /// or rules).
    RefreshAccess,
    /// Read the bans again (after the console changed them) and disconnect the connected
    /// clients they name (MQTT 5: DISCONNECT 0x98).
    RefreshBans,
    /// Reset a forgotten password with the security question's answer (the web reset
    /// page), under the same attempt windows as the chat service's `reset`.
    ResetPassword {
        name: String,
        answer: String,
        password: String,
        addr: IpAddr,
    },
    /// An auth worker finished a [`ConsoleAsk::ResetPassword`]: the loop forgets the
    /// user's cached login after a success and hands `outcome` to the web thread.
    ResetDone {
        name: String,
        outcome: ConsoleAnswer,
        /// The attempt's slot in the reset throttle, finished with the verdict.
        attempt: Attempt,
    },
}

/// A message published from the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsolePublish {
    /// The logged-in admin it is published as (its ACL rules apply).
    pub user: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// MQTT 5 Content Type.
    pub content_type: Option<String>,
    /// MQTT 5 Message Expiry Interval, seconds.
    pub message_expiry: Option<u32>,
    pub user_properties: Vec<(String, String)>,
    /// Sent with Payload Format Indicator 1 (the payload is UTF-8 text).
    pub utf8: bool,
}

/// The loop's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAnswer {
    Listeners(Vec<ListenerInfo>),
    Stats(StatsSnapshot),
    Clients(Rows<ClientInfo>),
    Client(Box<ClientDetail>),
    Sessions(Rows<SessionInfo>),
    Subscribers(Rows<FilterInfo>),
    Topics(Rows<TopicInfo>),
    Messages(Vec<MessageInfo>),
    Bridges(Vec<BridgeInfo>),
    /// The command was carried out (or there was nothing to do).
    Done,
    /// The request names something that does not exist.
    NotFound,
    /// The command could not be carried out; the text says why.
    Failed(String),
    /// The request is malformed (a topic the broker does not take, a QoS above its maximum).
    Invalid(String),
    /// The user's ACL rules do not allow it.
    NotAuthorized(String),
    Retained(Rows<RetainedInfo>),
    RetainedMessage(RetainedInfo),
    /// How many retained messages a clear removed.
    Cleared(usize),
    /// Too many failed attempts (password resets): wait this many seconds.
    TooManyAttempts(u64),
    /// How many clients a command disconnected.
    Disconnected(usize),
}

/// Bytes of a payload the console shows at most (the viewer's cap).
pub const PAYLOAD_CAP: usize = 64 * 1024;

/// One retained message as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainedInfo {
    pub topic: String,
    pub qos: u8,
    pub size: usize,
    /// The payload's first bytes: 128 in a list, up to [`PAYLOAD_CAP`] for one message.
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub content_type: Option<String>,
    pub payload_format_utf8: bool,
    /// Seconds left of its Message Expiry Interval, if it has one.
    pub expires_in: Option<u32>,
    pub user_properties: Vec<(String, String)>,
}

/// One listener as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub id: ListenerId,
    pub kind: ListenerKind,
    pub addr: SocketAddr,
    pub running: bool,
    /// Connections accepted on it that are still open.
    pub connections: usize,
}

/// A list cut at [`MAX_ROWS`], with how many there were in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rows<T> {
    pub total: usize,
    pub rows: Vec<T>,
}

impl<T> Rows<T> {
    pub(super) fn cut(mut rows: Vec<T>) -> Rows<T> {
        let total = rows.len();
        rows.truncate(MAX_ROWS);
        Rows { total, rows }
    }
}

/// Counters since start (for rates) and the sizes of things now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub uptime_seconds: u64,
    pub clients_connected: usize,
    pub sessions: usize,
    pub connections_total: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub subscriptions: usize,
    pub retained_messages: usize,
    pub queued_messages: usize,
    pub store_failures: u64,
    pub alias_bytes_saved: u64,
    pub topics_seen: usize,
    pub topics_forgotten: u64,
}

/// One connected client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    pub client_id: String,
    pub username: Option<String>,
    pub address: String,
    /// "5" or "3.1.1".
    pub protocol: &'static str,
    pub keep_alive: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Outbound QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages waiting for room in its window.
    pub queued: usize,
    /// Inbound QoS 2 messages received and not yet released.
    pub incoming_qos2: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    pub filter: String,
    pub qos: u8,
}

/// One filter and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterInfo {
    pub filter: String,
    pub subscribers: Vec<Subscriber>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscriber {
    pub client_id: String,
    pub qos: u8,
    pub online: bool,
}

/// One topic seen since start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    pub topic: String,
    pub messages: u64,
    /// Unix milliseconds of its last message.
    pub last_ms: u64,
}

/// One of a topic's last messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    pub at_ms: u64,
    pub qos: u8,
    pub retain: bool,
    pub size: usize,
    /// The first bytes of the payload: up to `watch::KEEP_BYTES` while the topic history's
    /// budget lasts, else [`PREVIEW_BYTES`].
    pub preview: Vec<u8>,
    /// Its MQTT 5 properties, when it had any and the topic history kept them.
    pub properties: Option<SeenProperties>,
    /// It had properties the topic history did not keep.
    pub properties_dropped: bool,
}

impl From<&Seen> for MessageInfo {
    fn from(seen: &Seen) -> Self {
        MessageInfo {
            at_ms: seen.at_ms,
            qos: seen.qos as u8,
            retain: seen.retain,
            size: seen.size,
            preview: seen.preview.clone(),
            properties: seen.properties.as_deref().cloned(),
            properties_dropped: seen.properties_dropped,
        }
    }
}

/// A request with the channel its answer goes back on.
pub struct ConsoleRequest {
    pub ask: ConsoleAsk,
    pub reply: mpsc::Sender<ConsoleAnswer>,
}

/// Why the web thread got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    Send(SendError),
    /// No answer within the timeout.
    Timeout,
}

/// Asks the loop and waits up to `timeout` for its answer (called from the web thread).
pub fn ask(
    inbox: &InboxSender,
    ask: ConsoleAsk,
    timeout: Duration,
) -> Result<ConsoleAnswer, AskError> {
    let (reply, answer) = mpsc::channel();
    inbox
        .send(Inbound::Console(ConsoleRequest { ask, reply }))
        .map_err(AskError::Send)?;
    answer.recv_timeout(timeout).map_err(|_| AskError::Timeout)
}

impl Broker {
    /// Answers one console request from the loop's state.
    pub(super) fn answer_console(&mut self, request: ConsoleRequest, now: Instant) {
        let answer = match request.ask {
            ConsoleAsk::ResetPassword {
                name,
                answer,
                password,
                addr,
            } => return self.start_reset(name, answer, password, addr, request.reply, now),
            ConsoleAsk::ResetDone {
                name,
                outcome,
                attempt,
            } => self.reset_done(&name, outcome, attempt, now),
            ConsoleAsk::Listeners => ConsoleAnswer::Listeners(self.listener_infos()),
            ConsoleAsk::StopListener(id) => self.stop_listener(id),
            ConsoleAsk::StartListener(id) => self.start_listener(id),
            ConsoleAsk::Stats => ConsoleAnswer::Stats(self.stats_snapshot()),
            ConsoleAsk::Clients => ConsoleAnswer::Clients(self.client_infos()),
            ConsoleAsk::Subscribers => ConsoleAnswer::Subscribers(self.filter_infos()),
            ConsoleAsk::Topics => ConsoleAnswer::Topics(self.topic_infos()),
            ConsoleAsk::TopicMessages(topic) => match self.watch.get(&topic) {
                Some(entry) => {
                    ConsoleAnswer::Messages(entry.recent.iter().rev().map(Into::into).collect())
                }
                None => ConsoleAnswer::NotFound,
            },
            ConsoleAsk::Client(client_id) => self.client_detail(&client_id),
            ConsoleAsk::OfflineSessions => ConsoleAnswer::Sessions(self.offline_sessions()),
            ConsoleAsk::DeleteSession(client_id) => self.delete_session(&client_id, now),
            ConsoleAsk::Disconnect(client_id) => self.disconnect_client(&client_id),
            ConsoleAsk::Bridges => ConsoleAnswer::Bridges(self.bridge_infos()),
            ConsoleAsk::Publish(publish) => self.console_publish(publish, now),
            ConsoleAsk::Retained(prefix) => {
                ConsoleAnswer::Retained(self.retained_infos(&prefix, now))
            }
            ConsoleAsk::RetainedMessage(topic) => self.retained_message(&topic, now),
            ConsoleAsk::ClearRetained { user, filter } => self.clear_retained(&user, &filter),
            ConsoleAsk::RefreshBans => self.refresh_bans(),
            ConsoleAsk::RefreshAccess => {
                self.refresh_access();
                ConsoleAnswer::Done
            }
        };
        // The web thread may have timed out and gone; nothing to do then.
        let _ = request.reply.send(answer);
    }

    fn listener_infos(&self) -> Vec<ListenerInfo> {
        self.listeners
            .iter()
            .map(|(id, l)| ListenerInfo {
                id,
                kind: l.kind,
                addr: l.addr,
                running: l.is_running(),
                connections: self.conns.iter().filter(|(_, c)| c.listener == id).count(),
            })
            .collect()
    }

    fn stats_snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            uptime_seconds: Instant::now()
                .saturating_duration_since(self.sys.started)
                .as_secs(),
            clients_connected: self
                .conns
                .iter()
                .filter(|(_, c)| c.session().is_some())
                .count(),
            sessions: self.sessions.len(),
            connections_total: s.connections_total,
            messages_received: s.messages_received,
            messages_sent: s.messages_sent,
            messages_dropped: s.messages_dropped,
            bytes_received: s.bytes_received,
            bytes_sent: s.bytes_sent,
            subscriptions: self.trie.len(),
            retained_messages: self.retained.len(),
            queued_messages: self.budget.messages,
            store_failures: s.store_failures,
            alias_bytes_saved: s.alias_bytes_saved,
            topics_seen: self.watch.topics().count(),
            topics_forgotten: self.watch.forgotten,
        }
    }

    fn client_infos(&self) -> Rows<ClientInfo> {
        let mut rows: Vec<ClientInfo> = self
            .conns
            .iter()
            .filter_map(|(_, conn)| {
                let session = &self.sessions[conn.session()?];
                let flight = session.flight();
                let mut subscriptions: Vec<SubscriptionInfo> = session
                    .subscriptions()
                    .map(|(filter, entry)| SubscriptionInfo {
                        filter: filter.to_owned(),
                        qos: entry.options.qos as u8,
                    })
                    .collect();
                subscriptions.sort_by(|a, b| a.filter.cmp(&b.filter));
                Some(ClientInfo {
                    client_id: conn.client_id.to_string(),
                    username: session.username.as_deref().map(str::to_owned),
                    address: conn.addr.to_string(),
                    protocol: match conn.version {
                        ProtocolVersion::V5 => "5",
                        ProtocolVersion::V311 => "3.1.1",
                    },
                    keep_alive: conn.keep_alive,
                    bytes_in: conn.bytes_in,
                    bytes_out: conn.bytes_out,
                    subscriptions,
                    inflight: flight.inflight.len(),
                    queued: flight.queue.len(),
                    incoming_qos2: flight.incoming_qos2.len(),
                })
            })
            .collect();
        rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Rows::cut(rows)
    }

    fn filter_infos(&self) -> Rows<FilterInfo> {
        let mut filters: BTreeMap<&str, Vec<Subscriber>> = BTreeMap::new();
        for (_, session) in self.sessions.iter() {
            for (filter, entry) in session.subscriptions() {
                filters.entry(filter).or_default().push(Subscriber {
                    client_id: session.client_id.to_string(),
                    qos: entry.options.qos as u8,
                    online: session.connection().is_some(),
                });
            }
        }
        let rows = filters
            .into_iter()
            .map(|(filter, mut subscribers)| {
                subscribers.sort_by(|a, b| a.client_id.cmp(&b.client_id));
                FilterInfo {
                    filter: filter.to_owned(),
                    subscribers,
                }
            })
            .collect();
        Rows::cut(rows)
    }

    fn topic_infos(&self) -> Rows<TopicInfo> {
        let mut rows: Vec<TopicInfo> = self
            .watch
            .topics()
            .map(|t| TopicInfo {
                topic: t.topic.to_string(),
                messages: t.messages,
                last_ms: t.last_ms,
            })
            .collect();
        rows.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(a.topic.cmp(&b.topic)));
        Rows::cut(rows)
    }

    fn disconnect_client(&mut self, client_id: &str) -> ConsoleAnswer {
        let Some(token) = self
            .session_ids
            .find(client_id, &self.sessions)
            .and_then(|session| self.sessions[session].connection())
        else {
            return ConsoleAnswer::NotFound;
        };
        log::info!("client {client_id}: disconnected from the web console");
        self.end_connection(
            token,
            Ending::Violation(Violation::new(
                ReasonCode::AdministrativeAction,
                "disconnected by an administrator",
            )),
        );
        ConsoleAnswer::Done
    }

    /// Reads the bans again and disconnects the connected clients they name (after a
    /// change in the console, and on SIGHUP).
    pub(super) fn refresh_bans(&mut self) -> ConsoleAnswer {
        match self.db.store.list_bans() {
            Ok(bans) => self.access.bans = bans,
            Err(e) => {
                log::error!("cannot read the bans ({e}); keeping those in use");
                return ConsoleAnswer::Failed(format!("cannot read the bans: {e}"));
            }
        }
        let now = clock::unix_seconds();
        let banned: Vec<(ConnKey, String)> = self
            .conns
            .iter()
            .filter_map(|(token, conn)| {
                let session = &self.sessions[conn.session()?];
                let user = session.username.as_deref();
                let ban = bans::find(
                    &self.access.bans,
                    &conn.client_id,
                    user,
                    conn.addr.ip(),
                    now,
                )?;
                Some((token, format!("{} {}", ban.kind, ban.value)))
            })
            .collect();
        for (token, why) in &banned {
            log::info!(
                "client {}: disconnected, {why} is banned",
                self.conns[*token].client_id
            );
            self.end_connection(
                *token,
                Ending::Violation(Violation::new(
                    ReasonCode::AdministrativeAction,
                    "banned by an administrator",
                )),
            );
        }
        ConsoleAnswer::Disconnected(banned.len())
    }

    fn stop_listener(&mut self, id: ListenerId) -> ConsoleAnswer {
        let Some(listener) = self.listeners.get(id) else {
            return ConsoleAnswer::NotFound;
        };
        let (kind, addr) = (listener.kind, listener.addr);
        if !self.listeners.stop(&self.registry, id) {
            return ConsoleAnswer::Done;
        }
        let clients: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| c.listener == id)
            .map(|(token, _)| token)
            .collect();
        log::info!(
            "{kind} listener on {addr} stopped, disconnecting {} clients",
            clients.len()
        );
        for token in clients {
            self.end_connection(token, Ending::ListenerStopped);
        }
        ConsoleAnswer::Done
    }

    fn start_listener(&mut self, id: ListenerId) -> ConsoleAnswer {
        let Some(listener) = self.listeners.get(id) else {
            return ConsoleAnswer::NotFound;
        };
        let (kind, addr) = (listener.kind, listener.addr);
        match self.listeners.start(&self.registry, id) {
            Ok(true) => {
                log::info!("{kind} listener on {addr} started");
                ConsoleAnswer::Done
            }
            Ok(false) => ConsoleAnswer::Done,
            Err(e) => {
                log::warn!("cannot start the {kind} listener on {addr}: {e}");
                ConsoleAnswer::Failed(format!("cannot listen on {addr}: {e}"))
            }
        }
    }
}
