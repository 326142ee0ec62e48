//! The console's look at one client and at offline sessions: a connected client in
//! detail (will, session expiry, subscription options, what it has in transit, its
//! counters for rates), the persistent sessions whose client is away, and deleting one
//! of those as its expiry would.

use serde::Serialize;

use super::console::{ConsoleAnswer, Rows, SubscriptionInfo};
use super::Broker;
use crate::core::session::Session;
use crate::protocol::{ProtocolVersion, RetainHandling};

/// One connected client in detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientDetail {
    pub client_id: String,
    pub username: Option<String>,
    pub address: String,
    /// "5" or "3.1.1".
    pub protocol: &'static str,
    pub keep_alive: u16,
    pub clean_start: bool,
    /// Seconds the session outlives the connection; `None` when it never expires.
    pub session_expiry: Option<u32>,
    pub will: Option<WillInfo>,
    pub subscriptions: Vec<SubscriptionDetail>,
    /// Outbound QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: usize,
    /// Messages waiting for room in its window (in memory and on disk).
    pub queued: usize,
    /// Inbound QoS 2 messages received and not yet released.
    pub incoming_qos2: usize,
    /// How many QoS 1/2 messages it takes at once (its Receive Maximum).
    pub receive_maximum: u16,
    pub max_packet_size: u32,
    /// Counters since it connected; the console's rates are their differences.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
}

/// A will message waiting for its connection to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WillInfo {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    /// Will Delay Interval, seconds.
    pub delay: u32,
    pub size: usize,
}

/// A subscription with all its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionDetail {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0 send retained messages on subscribe, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
    pub identifier: Option<u32>,
}

/// A persistent session whose client is not connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub client_id: String,
    pub username: Option<String>,
    /// Seconds it outlives its connection; `None` when it never expires.
    pub expiry_interval: Option<u32>,
    /// Messages kept for it (in memory and on disk), in flight ones included.
    pub queued: usize,
    pub subscriptions: Vec<SubscriptionInfo>,
    /// A will still to be published (its delay had not run out).
    pub will_topic: Option<String>,
}

fn expiry(interval: u32) -> Option<u32> {
    (interval != u32::MAX).then_some(interval)
}

fn protocol(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "5",
        ProtocolVersion::V311 => "3.1.1",
    }
}

fn sorted_subscriptions(session: &Session) -> Vec<SubscriptionDetail> {
    let mut subs: Vec<SubscriptionDetail> = session
        .subscriptions()
        .map(|(filter, entry)| SubscriptionDetail {
            filter: filter.to_owned(),
            qos: entry.options.qos as u8,
            no_local: entry.options.no_local,
            retain_as_published: entry.options.retain_as_published,
            retain_handling: match entry.options.retain_handling {
                RetainHandling::OnSubscribe => 0,
                RetainHandling::OnNewSubscribe => 1,
                RetainHandling::Never => 2,
            },
            identifier: entry.identifier,
        })
        .collect();
    subs.sort_by(|a, b| a.filter.cmp(&b.filter));
    subs
}

impl Broker {
    /// The connected client `client_id` in detail.
    pub(super) fn client_detail(&self, client_id: &str) -> ConsoleAnswer {
        let Some(key) = self.session_ids.find(client_id, &self.sessions) else {
            return ConsoleAnswer::NotFound;
        };
        let session = &self.sessions[key];
        let Some(conn) = session.connection().map(|token| &self.conns[token]) else {
            return ConsoleAnswer::NotFound;
        };
        let flight = session.flight();
        ConsoleAnswer::Client(Box::new(ClientDetail {
            client_id: client_id.to_owned(),
            username: session.username.as_deref().map(str::to_owned),
            address: conn.addr.to_string(),
            protocol: protocol(conn.version),
            keep_alive: conn.keep_alive,
            clean_start: conn.clean_start,
            session_expiry: expiry(session.expiry_interval),
            will: session.will.as_ref().map(|will| WillInfo {
                topic: will.message.topic.to_string(),
                qos: will.message.qos as u8,
                retain: will.message.retain,
                delay: will.delay,
                size: will.message.payload.len(),
            }),
            subscriptions: sorted_subscriptions(session),
            inflight: flight.inflight.len(),
            queued: flight.queued(),
            incoming_qos2: flight.incoming_qos2.len(),
            receive_maximum: conn.receive_maximum,
            max_packet_size: conn.max_packet_size,
            bytes_in: conn.bytes_in,
            bytes_out: conn.bytes_out,
            messages_in: conn.messages_in,
            messages_out: conn.messages_out,
        }))
    }

    /// The sessions kept for clients that are not connected, by client id.
    pub(super) fn offline_sessions(&self) -> Rows<SessionInfo> {
        let mut rows: Vec<SessionInfo> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.connection().is_none())
            .map(|(_, s)| {
                let flight = s.flight();
                SessionInfo {
                    client_id: s.client_id.to_string(),
                    username: s.username.as_deref().map(str::to_owned),
                    expiry_interval: expiry(s.expiry_interval),
                    queued: flight.queued() + flight.inflight.len(),
                    subscriptions: sorted_subscriptions(s)
                        .into_iter()
                        .map(|d| SubscriptionInfo {
                            filter: d.filter,
                            qos: d.qos,
                        })
                        .collect(),
                    will_topic: s.will.as_ref().map(|w| w.message.topic.to_string()),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Rows::cut(rows)
    }

    /// Ends the offline session `client_id` as its expiry would (a will still pending is
    /// published), answering once the deletion is durable.
    pub(super) fn delete_session(
        &mut self,
        client_id: &str,
        now: std::time::Instant,
    ) -> ConsoleAnswer {
        let Some(key) = self.session_ids.find(client_id, &self.sessions) else {
            return ConsoleAnswer::NotFound;
        };
        if self.sessions[key].connection().is_some() {
            return ConsoleAnswer::Failed(format!(
                "{client_id} is connected; disconnect it first (a clean start ends its session)"
            ));
        }
        let queued = self.sessions[key].flight().queued();
        if let Some(will) = self.sessions[key].will.take() {
            self.distribute(will.message, now);
        }
        self.end_session(key);
        self.durable_before_answer();
        log::info!(
            "web console: deleted the offline session of {client_id} ({queued} queued messages)"
        );
        ConsoleAnswer::Done
    }
}
