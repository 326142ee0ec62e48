//! The MQTT client side of one bridge, without sockets: what to send on connect, what each
//! packet from the upstream means, when to ping, and which queued messages go out next.
//! Bytes to send are appended to an output buffer; what the broker must do (deliver a
//! message locally, forget or record a queue row) comes back as [`Effect`]s.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::config::{BridgeConfig, BridgeProtocol};
use super::queue::{Acked, ForwardQueue, InFlight, Outgoing, Stage};
use super::rules::Rules;
use crate::protocol::{
    self, Ack, Connect, DecodeError, Packet, PacketId, Properties, ProtocolVersion, Publish, Qos,
    QosPid, ReasonCode, RetainHandling, Subscribe, SubscriptionOptions, Will,
};

/// How long a CONNECT (TCP, TLS and CONNACK together) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a PINGREQ may wait for its answer before the link counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(30);
/// Topic aliases we set up toward the upstream at most (it may allow fewer).
const MAX_ALIASES: u16 = 64;
/// Topics shorter than this are not worth an alias (the property takes 3 bytes).
const MIN_ALIASED_TOPIC: usize = 4;

/// Why the link went down (or never came up); its text is the bridge's `last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    Resolve(String),
    Io(String),
    Tls(String),
    Closed,
    Timeout(&'static str),
    Refused(ReasonCode),
    Decode(DecodeError),
    Protocol(&'static str),
    Disconnected(ReasonCode),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Resolve(e) => write!(f, "cannot resolve the address: {e}"),
            LinkError::Io(e) => write!(f, "connection failed: {e}"),
            LinkError::Tls(e) => write!(f, "TLS: {e}"),
            LinkError::Closed => f.write_str("connection closed by the upstream"),
            LinkError::Timeout(what) => write!(f, "timed out: {what}"),
            LinkError::Refused(r) => write!(f, "CONNECT refused: {r:?}"),
            LinkError::Decode(e) => write!(
                f,
                "bad packet from the upstream: {} ({:?})",
                e.detail, e.reason
            ),
            LinkError::Protocol(e) => write!(f, "protocol error from the upstream: {e}"),
            LinkError::Disconnected(r) => write!(f, "upstream sent DISCONNECT: {r:?}"),
        }
    }
}

impl std::error::Error for LinkError {}

/// What the broker must do after a packet from the upstream.
#[derive(Debug, PartialEq)]
pub enum Effect<'p> {
    /// Publish this locally (under `topic`, at most at `qos`) as a message from the bridge.
    Deliver {
        topic: String,
        qos: Qos,
        /// Boxed: the other effects are a few words.
        publish: Box<Publish<'p>>,
    },
    /// Queue row `seq` is done with: delete it.
    Forget { seq: u64, refused: bool },
    /// Queue row `seq` (QoS 2) was sent with this id and is at this stage: record it, so a
    /// restart sends the same id again and the upstream can tell a resend from a new one.
    Record {
        seq: u64,
        packet_id: PacketId,
        stage: Stage,
    },
    /// An inbound QoS 2 id was delivered (`held`) or released: record it, so a resend
    /// after a restart is recognised and not delivered twice.
    Inbound { packet_id: u16, held: bool },
}

/// Counters for `$SYS` and the console.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub forwarded: u64,
    /// Messages from the upstream delivered locally (counted by the broker, which may
    /// still drop one: an invalid local topic, a service's topic).
    pub received: u64,
    /// Messages bound upstream that were dropped: budget, refused, expired, QoS 0 while down.
    pub dropped: u64,
    pub connects: u64,
    pub last_error: Option<String>,
}

/// What was agreed at CONNACK.
#[derive(Debug)]
struct Up {
    window: usize,
    alias_max: u16,
    aliases: HashMap<Box<str>, u16>,
    max_packet_size: u32,
    maximum_qos: Qos,
    retain_available: bool,
    /// Packet id of our SUBSCRIBE until its SUBACK.
    subscribing: Option<u16>,
    /// Packet id of our state notification until its PUBACK.
    notifying: Option<u16>,
    keep_alive: Duration,
    ping_sent: Option<Instant>,
}

#[derive(Debug)]
enum State {
    /// Not connected; the broker schedules the next attempt.
    Down,
    /// TCP (and TLS) under way, then CONNECT sent: waiting for CONNACK.
    Connecting {
        since: Instant,
    },
    Up(Up),
}

pub struct Session {
    pub name: Box<str>,
    version: ProtocolVersion,
    client_id: String,
    username: Option<String>,
    password: Option<String>,
    keep_alive: u16,
    session_expiry: u32,
    inflight: u16,
    /// The largest packet we take from the upstream (our `max_packet_size`), announced in
    /// CONNECT so that an MQTT 5 upstream drops a larger message instead of sending it,
    /// failing the link, and sending it again after every reconnect.
    max_packet_size: u32,
    /// The largest packet we send (the bridge's `max_packet_size`); the upstream's
    /// announced Maximum Packet Size lowers it for the connection.
    send_limit: u32,
    /// Where the link's state is published upstream (`notifications`), if anywhere.
    notification_topic: Option<String>,
    pub rules: Rules,
    pub queue: ForwardQueue,
    state: State,
    /// Inbound QoS 2 packet ids delivered whose PUBREL has not come yet.
    incoming_qos2: Vec<u16>,
    last_sent: Instant,
    last_received: Instant,
    pub counters: Counters,
    /// True from a message the upstream refused until the next one it takes, so that a
    /// run of refusals is logged once.
    refusing: bool,
    /// True from a message too large to send until the next one sent, so that a run of
    /// them is logged once.
    oversize: bool,
    /// The upstream answered something we sent on this link (see `backoff`: a good
    /// exchange starts the reconnect delays over).
    exchanged: bool,
    /// The largest message (in [`Outgoing::size`] bytes) the upstream has acknowledged
    /// since start: only a larger one can be what a 3.1.1 upstream closes the link for.
    largest_acked: u64,
    /// MQTT 3.1.1: the queue row that was the oldest unacknowledged when the upstream last
    /// closed the link; closed for it a second time in a row, it is set aside.
    suspect: Option<u64>,
}

impl Session {
    pub fn new(
        config: &BridgeConfig,
        queue: ForwardQueue,
        max_packet_size: u32,
        now: Instant,
    ) -> Session {
        Session {
            name: config.name.as_str().into(),
            version: match config.protocol {
                BridgeProtocol::V5 => ProtocolVersion::V5,
                BridgeProtocol::V311 => ProtocolVersion::V311,
            },
            client_id: config.client_id(),
            username: config.username.clone(),
            password: config.password.clone(),
            keep_alive: config.keep_alive,
            session_expiry: config.session_expiry,
            inflight: config.inflight,
            max_packet_size,
            send_limit: config.max_packet_size.unwrap_or(protocol::MAX_PACKET_SIZE),
            notification_topic: config.notification_topic(),
            rules: Rules::new(config.topic.clone()),
            queue,
            state: State::Down,
            incoming_qos2: Vec::new(),
            last_sent: now,
            last_received: now,
            counters: Counters::default(),
            refusing: false,
            oversize: false,
            exchanged: false,
            largest_acked: 0,
            suspect: None,
        }
    }

    /// Inbound QoS 2 ids delivered before a restart and not released yet.
    pub fn hold_inbound(&mut self, ids: Vec<u16>) {
        self.incoming_qos2 = ids;
    }

    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    pub fn is_down(&self) -> bool {
        matches!(self.state, State::Down)
    }

    /// A connection attempt begins (the socket is being opened).
    pub fn connecting(&mut self, now: Instant) {
        self.state = State::Connecting { since: now };
        self.exchanged = false;
    }

    /// Whether the upstream acknowledged a forwarded message, delivered one, or answered a
    /// ping on the current (or last) link: a good exchange, for the backoff.
    pub fn had_good_exchange(&self) -> bool {
        self.exchanged
    }

    /// The socket is open (and TLS, if any, set up): send CONNECT.
    pub fn send_connect(&mut self, out: &mut Vec<u8>, now: Instant) {
        let properties = match self.version {
            ProtocolVersion::V5 => Properties {
                session_expiry_interval: Some(self.session_expiry),
                maximum_packet_size: Some(self.max_packet_size),
                ..Properties::default()
            },
            ProtocolVersion::V311 => Properties::default(),
        };
        // The upstream says `0` for us when the link dies without a DISCONNECT.
        let will = self.notification_topic.as_deref().map(|topic| Will {
            topic,
            payload: b"0",
            qos: Qos::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        });
        let connect = Connect {
            version: self.version,
            clean_start: false,
            keep_alive: self.keep_alive,
            properties,
            client_id: &self.client_id,
            will,
            username: self.username.as_deref(),
            password: self.password.as_deref().map(str::as_bytes),
        };
        protocol::encode(&Packet::Connect(connect), self.version, out);
        self.last_sent = now;
    }

    /// A graceful stop: the state `0` if `say_down` (with `notifications`; a normal
    /// DISCONNECT discards the will), then DISCONNECT (normal; the upstream keeps our
    /// session), if up. Leaving one cluster node for another does not say `0`.
    pub fn send_disconnect(&mut self, out: &mut Vec<u8>, say_down: bool) {
        if let State::Up(up) = &mut self.state {
            let reserved: Vec<u16> = up.subscribing.into_iter().chain(up.notifying).collect();
            let topic = self.notification_topic.as_deref().filter(|_| say_down);
            if let Some(id) = topic.and_then(|_| self.queue.free_id(&reserved)) {
                notify(self.version, topic, up, id, b"0", out);
            }
            let disconnect = protocol::Disconnect {
                reason: ReasonCode::Success,
                properties: Properties::default(),
            };
            protocol::encode(&Packet::Disconnect(disconnect), self.version, out);
            self.state = State::Down;
        }
    }

    /// The link is gone; in-flight messages wait for the next connection. On MQTT 3.1.1
    /// (no Maximum Packet Size in CONNACK), a message the upstream closed the link for twice
    /// in a row is set aside: dropped, counted and logged; its queue row is returned for
    /// the store delete.
    pub fn link_lost(&mut self, error: &LinkError) -> Option<u64> {
        if !self.is_down() {
            self.counters.last_error = Some(error.to_string());
        }
        let was_up = self.is_up();
        self.state = State::Down;
        let closed_by_upstream = matches!(error, LinkError::Closed | LinkError::Io(_));
        if !was_up || !closed_by_upstream || self.version != ProtocolVersion::V311 {
            return None;
        }
        let front = self
            .queue
            .inflight()
            .next()
            .filter(|i| i.stage == Stage::Published && i.entry.msg.size() > self.largest_acked);
        let Some(front) = front else {
            self.suspect = None;
            return None;
        };
        let (seq, packet_id) = (front.entry.seq, front.packet_id);
        if self.suspect != Some(seq) {
            self.suspect = Some(seq);
            return None;
        }
        self.suspect = None;
        let topic = front.entry.msg.topic.clone();
        let size = front.entry.msg.size();
        let Some(Acked::Done { seq, .. }) = self.queue.puback(packet_id, true) else {
            return None;
        };
        self.counters.dropped += 1;
        log::warn!(
            "bridge {}: the upstream closed the link twice in a row with the message on \
             {topic} ({size} bytes) unacknowledged; set aside (dropped) as too large for it \
             (MQTT 3.1.1 cannot announce a Maximum Packet Size; set max_packet_size)",
            self.name
        );
        Some(seq)
    }

    /// When [`Self::check`] must run next (connect timeout, keep alive), if at all.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Down => None,
            State::Connecting { since } => Some(*since + CONNECT_TIMEOUT),
            State::Up(up) => Some(match up.ping_sent {
                Some(at) => at + PING_TIMEOUT.min(up.keep_alive.max(Duration::from_secs(1))),
                None => self.last_sent.min(self.last_received) + up.keep_alive,
            }),
        }
    }

    /// Time-based duties: gives up on a slow connect or an unanswered ping, or pings
    /// when the link has been quiet for the keep alive.
    pub fn check(&mut self, out: &mut Vec<u8>, now: Instant) -> Result<(), LinkError> {
        let Some(deadline) = self.deadline() else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        match &mut self.state {
            State::Down => Ok(()),
            State::Connecting { .. } => Err(LinkError::Timeout("no CONNACK")),
            State::Up(up) if up.ping_sent.is_some() => Err(LinkError::Timeout("no PINGRESP")),
            State::Up(up) if up.keep_alive.is_zero() => Ok(()),
            State::Up(up) => {
                up.ping_sent = Some(now);
                protocol::encode(&Packet::PingReq, self.version, out);
                self.last_sent = now;
                Ok(())
            }
        }
    }

    /// Handles one packet from the upstream.
    pub fn on_packet<'p>(
        &mut self,
        packet: Packet<'p>,
        out: &mut Vec<u8>,
        effects: &mut Vec<Effect<'p>>,
        now: Instant,
    ) -> Result<(), LinkError> {
        self.last_received = now;
        if let State::Up(up) = &mut self.state {
            up.ping_sent = None;
        }
        match (&self.state, packet) {
            (State::Connecting { .. }, Packet::ConnAck(ack)) => {
                if ack.reason.is_error() {
                    return Err(LinkError::Refused(ack.reason));
                }
                self.connected(&ack, out, effects, now);
                Ok(())
            }
            (State::Connecting { .. }, _) => Err(LinkError::Protocol("packet before CONNACK")),
            (State::Up(_), Packet::Publish(p)) => {
                self.exchanged = true;
                self.incoming(p, out, effects)
            }
            (State::Up(_), Packet::PubRel(ack)) => {
                let id = ack.packet_id.get();
                if self.incoming_qos2.contains(&id) {
                    self.incoming_qos2.retain(|held| *held != id);
                    effects.push(Effect::Inbound {
                        packet_id: id,
                        held: false,
                    });
                }
                self.send_ack(Packet::PubComp, ack.packet_id, out);
                Ok(())
            }
            (State::Up(up), Packet::PubAck(ack)) if up.notifying == Some(ack.packet_id.get()) => {
                if let State::Up(up) = &mut self.state {
                    up.notifying = None;
                }
                if ack.reason.is_error() {
                    log::warn!(
                        "bridge {}: the upstream refused our state notification: {:?}",
                        self.name,
                        ack.reason
                    );
                }
                Ok(())
            }
            (State::Up(_), Packet::PubAck(ack)) => {
                self.note_acked(ack.packet_id, ack.reason);
                let done = self.queue.puback(ack.packet_id, ack.reason.is_error());
                self.acked(done, ack.reason, out, effects);
                Ok(())
            }
            (State::Up(_), Packet::PubRec(ack)) => {
                self.note_acked(ack.packet_id, ack.reason);
                let done = self.queue.pubrec(ack.packet_id, ack.reason.is_error());
                if done.is_none() {
                    // Not ours (a resend after we forgot it): release it so the upstream
                    // can free the id.
                    self.send_ack(Packet::PubRel, ack.packet_id, out);
                }
                self.acked(done, ack.reason, out, effects);
                Ok(())
            }
            (State::Up(_), Packet::PubComp(ack)) => {
                let done = self.queue.pubcomp(ack.packet_id);
                self.acked(done, ack.reason, out, effects);
                Ok(())
            }
            (State::Up(up), Packet::SubAck(ack)) if up.subscribing == Some(ack.packet_id.get()) => {
                let filters = self.rules.subscriptions();
                for ((filter, _), reason) in filters.iter().zip(&ack.reasons) {
                    if reason.is_error() {
                        log::warn!(
                            "bridge {}: upstream refused the subscription to {filter}: {reason:?}",
                            self.name
                        );
                        self.counters.last_error =
                            Some(format!("subscription to {filter} refused: {reason:?}"));
                    }
                }
                if let State::Up(up) = &mut self.state {
                    up.subscribing = None;
                }
                self.pump(out, effects, now);
                Ok(())
            }
            (State::Up(_), Packet::PingResp) => {
                self.exchanged = true;
                Ok(())
            }
            (State::Up(_), Packet::Disconnect(d)) => Err(LinkError::Disconnected(d.reason)),
            (_, _) => Err(LinkError::Protocol("unexpected packet")),
        }
    }

    /// Sends what the window allows; QoS 2 sends are recorded.
    pub fn pump<'p>(&mut self, out: &mut Vec<u8>, effects: &mut Vec<Effect<'p>>, now: Instant) {
        let State::Up(up) = &mut self.state else {
            return;
        };
        let reserved: Vec<u16> = up.subscribing.into_iter().chain(up.notifying).collect();
        let unix = crate::clock::unix_seconds();
        loop {
            if let Some(seq) = self.queue.expire_front(unix) {
                self.counters.dropped += 1;
                effects.push(Effect::Forget { seq, refused: true });
                continue;
            }
            let Some(item) = self.queue.next_to_send(up.window, &reserved) else {
                break;
            };
            let (seq, packet_id, qos) = (item.entry.seq, item.packet_id, item.entry.msg.qos);
            if !write_within_limit(self.version, up, item, false, out) {
                if !self.oversize {
                    self.oversize = true;
                    log::warn!(
                        "bridge {}: a message on {} ({} bytes) is larger than the {} bytes \
                         a packet may have toward the upstream, dropped; further ones are \
                         counted in dropped until one fits",
                        self.name,
                        item.entry.msg.topic,
                        item.entry.msg.size(),
                        up.max_packet_size
                    );
                }
                if let Some(Acked::Done { seq, .. }) = self.queue.puback(packet_id, true) {
                    self.counters.dropped += 1;
                    effects.push(Effect::Forget { seq, refused: true });
                }
                continue;
            }
            self.oversize = false;
            self.last_sent = now;
            if qos == Qos::ExactlyOnce {
                effects.push(Effect::Record {
                    seq,
                    packet_id,
                    stage: Stage::Published,
                });
            }
        }
    }

    /// Sends a QoS 0 message now if the link is up (and takes it); false if it was dropped.
    pub fn send_now(&mut self, msg: &Outgoing, out: &mut Vec<u8>, now: Instant) -> bool {
        let State::Up(up) = &mut self.state else {
            return false;
        };
        let item = InFlight {
            entry: super::queue::Entry {
                seq: 0,
                msg: msg.clone(),
            },
            packet_id: PacketId::MIN,
            stage: Stage::Published,
        };
        if !write_within_limit(self.version, up, &item, false, out) {
            if !self.oversize {
                self.oversize = true;
                log::warn!(
                    "bridge {}: a QoS 0 message on {} is larger than the {} bytes a packet \
                     may have toward the upstream, dropped",
                    self.name,
                    msg.topic,
                    up.max_packet_size
                );
            }
            return false;
        }
        self.oversize = false;
        self.last_sent = now;
        self.counters.forwarded += 1;
        true
    }

    /// A PUBACK or PUBREC for `packet_id`: a good exchange, and (if it took the message)
    /// a size the upstream is known to accept.
    fn note_acked(&mut self, packet_id: PacketId, reason: ReasonCode) {
        self.exchanged = true;
        if reason.is_error() {
            return;
        }
        let size = self.queue.inflight().find(|i| i.packet_id == packet_id);
        if let Some(item) = size {
            self.largest_acked = self.largest_acked.max(item.entry.msg.size());
            if self.suspect == Some(item.entry.seq) {
                self.suspect = None;
            }
        }
    }

    fn connected<'p>(
        &mut self,
        ack: &protocol::ConnAck<'_>,
        out: &mut Vec<u8>,
        effects: &mut Vec<Effect<'p>>,
        now: Instant,
    ) {
        let p = &ack.properties;
        let receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
        let keep_alive = p.server_keep_alive.unwrap_or(self.keep_alive);
        let mut up = Up {
            window: usize::from(self.inflight.min(receive_maximum)),
            alias_max: p.topic_alias_maximum.unwrap_or(0).min(MAX_ALIASES),
            aliases: HashMap::new(),
            max_packet_size: p
                .maximum_packet_size
                .unwrap_or(protocol::MAX_PACKET_SIZE)
                .min(self.send_limit),
            maximum_qos: p
                .maximum_qos
                .and_then(Qos::from_u8)
                .unwrap_or(Qos::ExactlyOnce),
            retain_available: p.retain_available != Some(0),
            subscribing: None,
            notifying: None,
            keep_alive: Duration::from_secs(u64::from(keep_alive)),
            ping_sent: None,
        };
        if !ack.session_present {
            for packet_id in self.incoming_qos2.drain(..) {
                effects.push(Effect::Inbound {
                    packet_id,
                    held: false,
                });
            }
        }
        for seq in self.queue.reconnected(ack.session_present) {
            effects.push(Effect::Forget {
                seq,
                refused: false,
            });
            self.counters.forwarded += 1;
        }
        let mut too_large = Vec::new();
        for item in self.queue.inflight() {
            match item.stage {
                Stage::Published => {
                    if !write_within_limit(self.version, &mut up, item, true, out) {
                        too_large.push(item.packet_id);
                    }
                }
                Stage::Released => {
                    let rel = Packet::PubRel(Ack {
                        packet_id: item.packet_id,
                        reason: ReasonCode::Success,
                        properties: Properties::default(),
                    });
                    protocol::encode(&rel, self.version, out);
                }
            };
        }
        // Sent on a link that allowed larger packets (another upstream address).
        for packet_id in too_large {
            if let Some(Acked::Done { seq, .. }) = self.queue.puback(packet_id, true) {
                log::warn!(
                    "bridge {}: an unacknowledged message is larger than the {} bytes a \
                     packet may have toward this upstream, dropped",
                    self.name,
                    up.max_packet_size
                );
                self.counters.dropped += 1;
                effects.push(Effect::Forget { seq, refused: true });
            }
        }
        let filters = self.rules.subscriptions();
        if !filters.is_empty() {
            if let Some(packet_id) = self.queue.free_id(&[]) {
                let subscribe = Subscribe {
                    packet_id,
                    properties: Properties::default(),
                    filters: filters
                        .iter()
                        .map(|(f, qos)| {
                            let options = SubscriptionOptions {
                                qos: (*qos).min(up.maximum_qos),
                                // Loop prevention: what we forward must not come back.
                                no_local: true,
                                retain_as_published: true,
                                // A reconnect on a thin link should not fetch every
                                // retained message again.
                                retain_handling: RetainHandling::OnNewSubscribe,
                            };
                            (f.as_str(), options)
                        })
                        .collect(),
                };
                protocol::encode(&Packet::Subscribe(subscribe), self.version, out);
                up.subscribing = Some(packet_id.get());
            }
        }
        if self.notification_topic.is_some() {
            let reserved: Vec<u16> = up.subscribing.into_iter().collect();
            if let Some(id) = self.queue.free_id(&reserved) {
                let topic = self.notification_topic.as_deref();
                if notify(self.version, topic, &up, id, b"1", out) {
                    up.notifying = Some(id.get());
                }
            }
        }
        self.last_sent = now;
        self.counters.connects += 1;
        log::info!(
            "bridge {}: connected (session {}, window {}, {} queued)",
            self.name,
            if ack.session_present {
                "resumed"
            } else {
                "new"
            },
            up.window,
            self.queue.len()
        );
        self.state = State::Up(up);
        self.pump(out, effects, now);
    }

    fn incoming<'p>(
        &mut self,
        publish: Publish<'p>,
        out: &mut Vec<u8>,
        effects: &mut Vec<Effect<'p>>,
    ) -> Result<(), LinkError> {
        if publish.topic.is_empty() {
            return Err(LinkError::Protocol("topic alias we did not allow"));
        }
        let fresh = match publish.qos {
            QosPid::AtMostOnce => true,
            QosPid::AtLeastOnce(id) => {
                self.send_ack(Packet::PubAck, id, out);
                true
            }
            QosPid::ExactlyOnce(id) => {
                let fresh = !self.incoming_qos2.contains(&id.get());
                if fresh {
                    self.incoming_qos2.push(id.get());
                    effects.push(Effect::Inbound {
                        packet_id: id.get(),
                        held: true,
                    });
                }
                self.send_ack(Packet::PubRec, id, out);
                fresh
            }
        };
        if !fresh {
            return Ok(());
        }
        match self.rules.inbound(publish.topic, publish.qos.qos()) {
            Some(mapped) => {
                effects.push(Effect::Deliver {
                    topic: mapped.topic,
                    qos: mapped.qos,
                    publish: Box::new(publish),
                });
            }
            None => log::debug!(
                "bridge {}: {} from the upstream matches no in rule, dropped",
                self.name,
                publish.topic
            ),
        }
        Ok(())
    }

    /// The upstream answered an in-flight message with `reason`. A refusal (an ACL's 0x87,
    /// a quota) drops the message; the first of an episode is logged, and the episode ends
    /// with the next message the upstream takes.
    fn acked<'p>(
        &mut self,
        done: Option<Acked>,
        reason: ReasonCode,
        out: &mut Vec<u8>,
        effects: &mut Vec<Effect<'p>>,
    ) {
        match done {
            None => {}
            Some(Acked::Done { seq, refused }) => {
                if refused {
                    self.counters.dropped += 1;
                    if !self.refusing {
                        self.refusing = true;
                        log::warn!(
                            "bridge {}: the upstream refused a message ({reason:?}), dropped; \
                             further refusals are counted in dropped until it takes one again",
                            self.name
                        );
                        self.counters.last_error = Some(format!("message refused: {reason:?}"));
                    }
                } else {
                    self.counters.forwarded += 1;
                    if self.refusing {
                        self.refusing = false;
                        log::info!("bridge {}: the upstream takes messages again", self.name);
                    }
                }
                effects.push(Effect::Forget { seq, refused });
            }
            Some(Acked::Release { seq, packet_id }) => {
                effects.push(Effect::Record {
                    seq,
                    packet_id,
                    stage: Stage::Released,
                });
                self.send_ack(Packet::PubRel, packet_id, out);
            }
        }
    }

    fn send_ack(
        &mut self,
        kind: fn(Ack<'static>) -> Packet<'static>,
        packet_id: PacketId,
        out: &mut Vec<u8>,
    ) {
        let ack = kind(Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        protocol::encode(&ack, self.version, out);
    }
}

/// Publishes the link's state upstream (retained, QoS 1 with packet id `id` unless the
/// upstream's Maximum QoS is 0) when `topic` is set; true if it took the id.
fn notify(
    version: ProtocolVersion,
    topic: Option<&str>,
    up: &Up,
    id: PacketId,
    state: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let Some(topic) = topic else {
        return false;
    };
    let qos = match up.maximum_qos {
        Qos::AtMostOnce => QosPid::AtMostOnce,
        _ => QosPid::AtLeastOnce(id),
    };
    let publish = Publish {
        dup: false,
        qos,
        retain: up.retain_available,
        topic,
        properties: Properties::default(),
        payload: state,
    };
    protocol::encode(&Packet::Publish(publish), version, out);
    qos != QosPid::AtMostOnce
}

/// [`write_publish`], unless the packet would be larger than the link allows: then
/// nothing is written (and no topic alias set up) and the answer is false.
fn write_within_limit(
    version: ProtocolVersion,
    up: &mut Up,
    item: &InFlight,
    dup: bool,
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let aliases = up.aliases.len();
    write_publish(version, up, item, dup, out);
    if out.len() - start <= up.max_packet_size as usize {
        return true;
    }
    out.truncate(start);
    if up.aliases.len() > aliases {
        up.aliases.remove(&*item.entry.msg.topic);
    }
    false
}

/// Encodes one forwarded PUBLISH, using (and setting up) a topic alias when allowed.
fn write_publish(
    version: ProtocolVersion,
    up: &mut Up,
    item: &InFlight,
    dup: bool,
    out: &mut Vec<u8>,
) {
    let msg = &item.entry.msg;
    let qos = msg.qos.min(up.maximum_qos);
    let qos = match qos {
        Qos::AtMostOnce => QosPid::AtMostOnce,
        Qos::AtLeastOnce => QosPid::AtLeastOnce(item.packet_id),
        Qos::ExactlyOnce => QosPid::ExactlyOnce(item.packet_id),
    };
    let mut properties = match version {
        ProtocolVersion::V5 => {
            protocol::read_publish_properties(&msg.properties).unwrap_or_default()
        }
        ProtocolVersion::V311 => Properties::default(),
    };
    if let Some(at) = msg.expires_at {
        properties.message_expiry_interval =
            Some(u32::try_from((at - crate::clock::unix_seconds()).max(1)).unwrap_or(u32::MAX));
    }
    let mut topic: &str = &msg.topic;
    if version == ProtocolVersion::V5 && topic.len() >= MIN_ALIASED_TOPIC {
        if let Some(&alias) = up.aliases.get(topic) {
            properties.topic_alias = Some(alias);
            topic = "";
        } else if up.aliases.len() < usize::from(up.alias_max) {
            let alias = up.aliases.len() as u16 + 1;
            up.aliases.insert(topic.into(), alias);
            properties.topic_alias = Some(alias);
        }
    }
    let publish = Publish {
        dup: dup && qos != QosPid::AtMostOnce,
        qos,
        retain: msg.retain && up.retain_available,
        topic,
        properties,
        payload: &msg.payload,
    };
    protocol::encode(&Packet::Publish(publish), version, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::config::{Direction, TopicRule};
    use crate::bridge::queue::ForwardQueue;
    use crate::protocol::ConnAck;

    fn config(version: BridgeProtocol) -> BridgeConfig {
        let rule = |filter: &str, direction| TopicRule {
            filter: filter.into(),
            direction,
            qos: 2,
            local_prefix: String::new(),
            remote_prefix: "site1/".into(),
        };
        let text = "name = \"up\"\naddress = \"127.0.0.1:1883\"\nkeep_alive = 60\n";
        let mut c: BridgeConfig = toml::from_str(text).unwrap();
        c.protocol = version;
        c.inflight = 2;
        c.topic = vec![
            rule("sensors/#", Direction::Out),
            rule("cmd/#", Direction::In),
        ];
        c
    }

    fn outgoing(n: u8, qos: Qos) -> Outgoing {
        Outgoing {
            topic: format!("site1/sensors/{n}").into(),
            payload: vec![n].into(),
            qos,
            retain: false,
            properties: vec![0].into(),
            expires_at: None,
        }
    }

    fn session(version: BridgeProtocol, queued: &[Qos], now: Instant) -> Session {
        let mut queue = ForwardQueue::default();
        for (n, qos) in queued.iter().enumerate() {
            queue.push(outgoing(n as u8, *qos));
        }
        Session::new(&config(version), queue, 65_536, now)
    }

    fn packets(out: &[u8], version: ProtocolVersion) -> Vec<Packet<'_>> {
        let mut all = Vec::new();
        let mut pos = 0;
        while let Some((p, len)) = protocol::decode(&out[pos..], version, u32::MAX).unwrap() {
            all.push(p);
            pos += len;
        }
        assert_eq!(pos, out.len(), "whole packets only");
        all
    }

    fn connack(session_present: bool, receive_maximum: Option<u16>) -> Packet<'static> {
        Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties: Properties {
                receive_maximum,
                topic_alias_maximum: Some(10),
                ..Properties::default()
            },
        })
    }

    fn ack(kind: fn(Ack<'static>) -> Packet<'static>, id: u16) -> Packet<'static> {
        kind(Ack {
            packet_id: PacketId::new(id).unwrap(),
            reason: ReasonCode::Success,
            properties: Properties::default(),
        })
    }

    /// Connects `s` with the given CONNACK; returns what it sent after CONNECT.
    fn connect(
        s: &mut Session,
        ack: Packet<'static>,
        now: Instant,
    ) -> (Vec<u8>, Vec<Effect<'static>>) {
        let mut out = Vec::new();
        s.connecting(now);
        s.send_connect(&mut out, now);
        match packets(&out, s.version()).as_slice() {
            [Packet::Connect(c)] => {
                assert!(!c.clean_start, "the upstream must keep our session");
                assert_eq!(c.client_id, "outpost-up");
                if s.version() == ProtocolVersion::V5 {
                    assert_eq!(c.properties.session_expiry_interval, Some(604_800));
                    assert_eq!(c.properties.maximum_packet_size, Some(65_536));
                }
            }
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        let mut effects = Vec::new();
        s.on_packet(ack, &mut out, &mut effects, now).unwrap();
        assert!(s.is_up());
        (out, effects)
    }

    #[test]
    fn connack_subscribes_with_no_local_and_fills_the_window_in_order() {
        let now = Instant::now();
        let mut s = session(
            BridgeProtocol::V5,
            &[Qos::AtLeastOnce, Qos::ExactlyOnce, Qos::AtLeastOnce],
            now,
        );
        let (out, effects) = connect(&mut s, connack(false, Some(5)), now);
        let sent = packets(&out, ProtocolVersion::V5);
        let Packet::Subscribe(sub) = &sent[0] else {
            panic!("{sent:?}")
        };
        assert_eq!(sub.filters[0].0, "site1/cmd/#");
        assert!(sub.filters[0].1.no_local);
        assert_eq!(
            sub.filters[0].1.retain_handling,
            RetainHandling::OnNewSubscribe
        );
        let publishes: Vec<_> = sent[1..]
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (p.topic, p.qos, p.properties.topic_alias),
                other => panic!("{other:?}"),
            })
            .collect();
        let id = |n| PacketId::new(n).unwrap();
        assert_eq!(
            publishes,
            vec![
                ("site1/sensors/0", QosPid::AtLeastOnce(id(2)), Some(1)),
                ("site1/sensors/1", QosPid::ExactlyOnce(id(3)), Some(2)),
            ],
            "window = min(inflight 2, Receive Maximum 5); each new topic sets up an alias"
        );
        assert_eq!(
            effects,
            vec![Effect::Record {
                seq: 1,
                packet_id: id(3),
                stage: Stage::Published
            }],
            "a QoS 2 send is recorded before it leaves"
        );

        // PUBACK frees the window: forget row 0, send row 2.
        let mut out = Vec::new();
        let mut effects = Vec::new();
        s.on_packet(ack(Packet::PubAck, 2), &mut out, &mut effects, now)
            .unwrap();
        s.pump(&mut out, &mut effects, now);
        assert_eq!(
            effects,
            vec![Effect::Forget {
                seq: 0,
                refused: false
            }]
        );
        assert!(
            matches!(&packets(&out, ProtocolVersion::V5)[..], [Packet::Publish(p)] if p.topic == "site1/sensors/2")
        );

        // PUBREC → record Released, send PUBREL; PUBCOMP → forget.
        let mut out = Vec::new();
        let mut effects = Vec::new();
        s.on_packet(ack(Packet::PubRec, 3), &mut out, &mut effects, now)
            .unwrap();
        s.on_packet(ack(Packet::PubComp, 3), &mut out, &mut effects, now)
            .unwrap();
        assert_eq!(
            effects,
            vec![
                Effect::Record {
                    seq: 1,
                    packet_id: id(3),
                    stage: Stage::Released
                },
                Effect::Forget {
                    seq: 1,
                    refused: false
                },
            ]
        );
        assert!(
            matches!(&packets(&out, ProtocolVersion::V5)[..], [Packet::PubRel(a)] if a.packet_id == id(3))
        );
        assert_eq!(s.counters.forwarded, 2);
    }

    #[test]
    fn a_reconnect_resends_what_is_in_flight_with_dup_and_the_same_ids() {
        let now = Instant::now();
        let mut s = session(
            BridgeProtocol::V311,
            &[Qos::ExactlyOnce, Qos::AtLeastOnce],
            now,
        );
        connect(&mut s, connack(false, None), now);
        let mut sink = (Vec::new(), Vec::new());
        s.on_packet(ack(Packet::PubRec, 2), &mut sink.0, &mut sink.1, now)
            .unwrap();
        s.link_lost(&LinkError::Closed);
        assert_eq!(
            s.counters.last_error.as_deref(),
            Some("connection closed by the upstream")
        );
        let (out, _) = connect(&mut s, connack(true, None), now);
        let sent = packets(&out, ProtocolVersion::V311);
        assert!(
            matches!(&sent[0], Packet::PubRel(a) if a.packet_id.get() == 2),
            "{sent:?}"
        );
        assert!(
            matches!(&sent[1], Packet::Publish(p) if p.dup && p.qos == QosPid::AtLeastOnce(PacketId::new(3).unwrap()) && p.topic == "site1/sensors/1"),
            "{sent:?}"
        );
        assert!(matches!(&sent[2], Packet::Subscribe(_)), "{sent:?}");
    }

    #[test]
    fn messages_from_upstream_are_mapped_acknowledged_and_delivered_once() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V5, &[], now);
        connect(&mut s, connack(false, None), now);
        let publish = |qos| {
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain: false,
                topic: "site1/cmd/reboot",
                properties: Properties::default(),
                payload: b"now",
            })
        };
        let id = PacketId::new(7).unwrap();
        let mut out = Vec::new();
        let mut effects = Vec::new();
        for _ in 0..2 {
            s.on_packet(
                publish(QosPid::ExactlyOnce(id)),
                &mut out,
                &mut effects,
                now,
            )
            .unwrap();
        }
        s.on_packet(ack(Packet::PubRel, 7), &mut out, &mut effects, now)
            .unwrap();
        s.on_packet(
            publish(QosPid::AtLeastOnce(id)),
            &mut out,
            &mut effects,
            now,
        )
        .unwrap();
        let delivered: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver { topic, qos, .. } => Some((topic.as_str(), *qos)),
                _ => None,
            })
            .collect();
        let held: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Inbound { packet_id, held } => Some((*packet_id, *held)),
                _ => None,
            })
            .collect();
        assert_eq!(
            held,
            vec![(7, true), (7, false)],
            "the id is recorded, then released"
        );
        assert_eq!(
            delivered,
            vec![
                ("cmd/reboot", Qos::ExactlyOnce),
                ("cmd/reboot", Qos::AtLeastOnce)
            ],
            "the QoS 2 resend is not delivered twice"
        );
        let kinds: Vec<_> = packets(&out, ProtocolVersion::V5)
            .iter()
            .map(|p| match p {
                Packet::PubRec(_) => "PUBREC",
                Packet::PubComp(_) => "PUBCOMP",
                Packet::PubAck(_) => "PUBACK",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["PUBREC", "PUBREC", "PUBCOMP", "PUBACK"]);
        assert_eq!(s.counters.received, 0, "the broker counts what it delivers");
    }

    #[test]
    fn keep_alive_pings_only_when_quiet_and_gives_up_without_an_answer() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V5, &[], now);
        connect(&mut s, connack(false, None), now);
        let ka = Duration::from_secs(60);
        assert_eq!(s.deadline(), Some(now + ka));
        let mut out = Vec::new();
        s.check(&mut out, now + ka / 2).unwrap();
        assert!(out.is_empty(), "no ping before the keep alive");
        s.check(&mut out, now + ka).unwrap();
        assert_eq!(packets(&out, ProtocolVersion::V5), vec![Packet::PingReq]);
        let mut sink = (Vec::new(), Vec::new());
        s.on_packet(Packet::PingResp, &mut sink.0, &mut sink.1, now + ka)
            .unwrap();
        assert_eq!(
            s.deadline(),
            Some(now + ka + ka),
            "the answer resets the wait"
        );
        s.check(&mut out, now + 2 * ka).unwrap();
        assert_eq!(
            s.check(&mut out, now + 2 * ka + PING_TIMEOUT),
            Err(LinkError::Timeout("no PINGRESP"))
        );
    }

    #[test]
    fn a_refusal_or_silence_ends_the_attempt() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V5, &[], now);
        s.connecting(now);
        let refused = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::NotAuthorized,
            properties: Properties::default(),
        });
        let mut sink = (Vec::new(), Vec::new());
        assert_eq!(
            s.on_packet(refused, &mut sink.0, &mut sink.1, now),
            Err(LinkError::Refused(ReasonCode::NotAuthorized))
        );
        s.connecting(now);
        assert_eq!(s.deadline(), Some(now + CONNECT_TIMEOUT));
        assert_eq!(
            s.check(&mut Vec::new(), now + CONNECT_TIMEOUT),
            Err(LinkError::Timeout("no CONNACK"))
        );
        assert_eq!(
            s.on_packet(Packet::PingResp, &mut sink.0, &mut sink.1, now),
            Err(LinkError::Protocol("packet before CONNACK"))
        );
    }

    #[test]
    fn a_message_over_the_upstreams_maximum_packet_size_is_dropped_not_sent() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V5, &[], now);
        let mut big = outgoing(0, Qos::AtLeastOnce);
        big.payload = vec![0; 200].into();
        s.queue.push(big);
        s.queue.push(outgoing(1, Qos::AtLeastOnce));
        let ack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                maximum_packet_size: Some(100),
                ..Properties::default()
            },
        });
        let (out, effects) = connect(&mut s, ack, now);
        assert_eq!(
            effects,
            vec![Effect::Forget {
                seq: 0,
                refused: true
            }]
        );
        let sent = packets(&out, ProtocolVersion::V5);
        assert!(
            matches!(&sent[1], Packet::Publish(p) if p.topic == "site1/sensors/1"),
            "{sent:?}"
        );
        assert_eq!(sent.len(), 2);
        assert_eq!(s.counters.dropped, 1);
    }

    /// MQTT 3.1.1: the upstream closes the link twice in a row while the same message,
    /// larger than any it took, is the oldest unacknowledged: it is set aside. A cut with
    /// a message no larger than one already taken sets nothing aside.
    #[test]
    fn mqtt311_a_message_closed_for_twice_in_a_row_is_set_aside() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V311, &[Qos::AtLeastOnce], now);
        let mut big = outgoing(1, Qos::AtLeastOnce);
        big.payload = vec![0; 300].into();
        s.queue.push(big);
        s.queue.push(outgoing(2, Qos::AtLeastOnce));
        connect(&mut s, connack(false, None), now);
        let mut sink = (Vec::new(), Vec::new());
        s.on_packet(ack(Packet::PubAck, 2), &mut sink.0, &mut sink.1, now)
            .unwrap();
        assert!(s.had_good_exchange());
        assert_eq!(s.link_lost(&LinkError::Closed), None, "once is not enough");
        let (out, _) = connect(&mut s, connack(true, None), now);
        assert!(!s.had_good_exchange(), "a new link starts without one");
        let resent = packets(&out, ProtocolVersion::V311);
        assert!(matches!(&resent[0], Packet::Publish(p) if p.dup && p.payload.len() == 300));
        assert_eq!(s.link_lost(&LinkError::Closed), Some(1), "twice: set aside");
        assert_eq!(s.counters.dropped, 1);
        let (out, _) = connect(&mut s, connack(true, None), now);
        let resent = packets(&out, ProtocolVersion::V311);
        assert!(
            matches!(&resent[0], Packet::Publish(p) if p.topic == "site1/sensors/2"),
            "{resent:?}"
        );
        // Small messages cut twice in a row stay queued.
        assert_eq!(s.link_lost(&LinkError::Closed), None);
        connect(&mut s, connack(true, None), now);
        assert_eq!(s.link_lost(&LinkError::Closed), None);
        assert_eq!(s.queue.len(), 1);
    }

    #[test]
    fn notifications_say_1_on_connect_0_by_will_and_0_before_a_clean_disconnect() {
        let now = Instant::now();
        let mut c = config(BridgeProtocol::V311);
        c.notifications = true;
        let mut s = Session::new(&c, ForwardQueue::default(), 65_536, now);
        let mut out = Vec::new();
        s.connecting(now);
        s.send_connect(&mut out, now);
        let topic = "$SYS/broker/connection/outpost-up/state";
        match packets(&out, ProtocolVersion::V311).as_slice() {
            [Packet::Connect(c)] => {
                let will = c.will.as_ref().expect("a will");
                assert_eq!((will.topic, will.payload), (topic, &b"0"[..]));
                assert!(will.retain && will.qos == Qos::AtLeastOnce);
            }
            other => panic!("{other:?}"),
        }
        let mut out = Vec::new();
        s.on_packet(connack(false, None), &mut out, &mut Vec::new(), now)
            .unwrap();
        let sent = packets(&out, ProtocolVersion::V311);
        let Some(Packet::Publish(p)) = sent.last() else {
            panic!("{sent:?}")
        };
        assert_eq!((p.topic, p.payload, p.retain), (topic, &b"1"[..], true));
        let QosPid::AtLeastOnce(id) = p.qos else {
            panic!("{p:?}")
        };
        // Its PUBACK is not taken for a queued message's, nor for a good exchange.
        let mut sink = (Vec::new(), Vec::new());
        s.on_packet(ack(Packet::PubAck, id.get()), &mut sink.0, &mut sink.1, now)
            .unwrap();
        assert!(!s.had_good_exchange());
        let mut out = Vec::new();
        s.send_disconnect(&mut out, true);
        let sent = packets(&out, ProtocolVersion::V311);
        assert!(
            matches!(&sent[..], [Packet::Publish(p), Packet::Disconnect(_)] if p.payload == b"0" && p.retain),
            "{sent:?}"
        );
    }

    #[test]
    fn qos0_goes_out_only_while_up() {
        let now = Instant::now();
        let mut s = session(BridgeProtocol::V5, &[], now);
        let mut out = Vec::new();
        assert!(!s.send_now(&outgoing(1, Qos::AtMostOnce), &mut out, now));
        connect(&mut s, connack(false, None), now);
        assert!(s.send_now(&outgoing(1, Qos::AtMostOnce), &mut out, now));
        assert!(
            matches!(&packets(&out, ProtocolVersion::V5)[..], [Packet::Publish(p)] if p.qos == QosPid::AtMostOnce)
        );
    }
}
