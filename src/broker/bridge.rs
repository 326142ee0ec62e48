//! The bridges on the loop: each one's outbound socket, its [`Session`], and what its
//! packets do to the broker (local delivery, forward-queue rows in the turn's commit),
//! the reconnect timer and `$SYS`. The decisions are in `crate::bridge`; this file only
//! carries them out. The socket is read and written by `socket_io`, through the same TLS
//! layer, as a client's connection.
//!
//! Each bridge has a [`BridgeKey`], which is also its poll token's. Output a turn makes
//! while writes are pending waits (in order, off the loop) until they are durable: a PUBACK
//! to the upstream leaves only once the message is in the local queues on disk, and a
//! QoS 2 PUBLISH only once its packet id is recorded.

mod reload;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::client::READ_CHUNK;
use super::event_loop::RunError;
use super::held::HeldBytes;
use super::inbox::{Inbound, InboxSender};
use super::keys::{BridgeKey, Slab};
use super::message::Message;
use super::socket_io::{self, Received};
use super::timers::Timer;
use super::Broker;
use crate::bridge::backoff::Backoff;
use crate::bridge::lazy::Lazy;
use crate::bridge::queue::{Entry, ForwardQueue, Outgoing, Stage, Totals, MEMORY_ENTRIES};
use crate::bridge::session::{Effect, LinkError, Session};
use crate::bridge::{BridgeConfig, QueueFull};
use crate::config::Config;
use crate::protocol::{self, PacketId, Properties, Qos, QosPid};
use crate::store::{BridgeWrite, ForwardRow, StoredMessage, Write};
use crate::tls;

/// A connection that stayed up this long starts the reconnect delays over, as does one
/// with a good exchange (`crate::bridge::backoff`). One that drops sooner without one (an
/// upstream that takes our CONNECT and then closes, another gateway with our client id)
/// keeps backing off instead of reconnecting every second.
const STABLE: Duration = Duration::from_secs(30);

/// A host name resolved off the loop, for the attempt `serial` of bridge `key`; or,
/// with `probe`, whether the primary address took a TCP connection (`Ok`) while the bridge
/// is on another one.
pub struct Resolved {
    pub key: BridgeKey,
    pub serial: u64,
    pub result: Result<Vec<SocketAddr>, String>,
    pub probe: bool,
}

/// How long a graceful stop waits for the upstreams to close after our DISCONNECT.
const STOP_DRAIN: Duration = Duration::from_secs(2);

/// How long the primary check waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a bridge's link is, as `$SYS`, `/metrics` and the console show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    /// An attempt under way (resolving, TCP, TLS, waiting for CONNACK).
    Connecting,
    /// Wanted but not up: waiting for the next attempt after a failure.
    Down,
    /// A lazy bridge at rest: no link, on purpose, until enough is queued.
    Idle,
}

impl LinkState {
    pub const ALL: [LinkState; 4] = [
        LinkState::Up,
        LinkState::Connecting,
        LinkState::Down,
        LinkState::Idle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Connecting => "connecting",
            LinkState::Down => "down",
            LinkState::Idle => "idle",
        }
    }
}

/// One bridge as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    pub name: String,
    pub address: String,
    /// The MQTT version spoken to the upstream.
    pub protocol: protocol::ProtocolVersion,
    pub connected: bool,
    pub state: LinkState,
    /// How long the link has been up, while it is.
    pub up_for: Option<Duration>,
    /// Messages waiting for the upstream's acknowledgement, and their bytes.
    pub queued: u64,
    pub queued_bytes: u64,
    /// The disk budget and what happens when it is reached.
    pub max_queue_bytes: u64,
    pub queue_full: QueueFull,
    pub forwarded: u64,
    pub received: u64,
    pub dropped: u64,
    /// Links made (CONNACK received) since start.
    pub connects: u64,
    pub last_error: Option<String>,
}

/// One open (or opening) connection to the upstream.
struct Link {
    socket: TcpStream,
    /// False until the non-blocking connect has completed.
    connected: bool,
    /// The same TLS layer as a TLS listener's connections have, client side.
    tls: Option<tls::Layer>,
    /// Bytes of an unfinished packet.
    read_buf: Vec<u8>,
    /// MQTT bytes waiting for the socket (with TLS: waiting to be encrypted, which
    /// starts once the handshake is done).
    out: Vec<u8>,
    /// Output waiting for the store batch it follows to be durable.
    held: HeldBytes,
    wants_write: bool,
}

pub struct Bridge {
    config: BridgeConfig,
    session: Session,
    link: Option<Link>,
    backoff: Backoff,
    /// With `start = "lazy"`: when the link is wanted and when it is let go.
    lazy: Option<Lazy>,
    /// Counts connection attempts; a resolver reply for an older attempt is ignored.
    serial: u64,
    /// When a `Timer::Bridge` is due, so the heap holds one per bridge at most (or a
    /// stale one that finds nothing to do).
    timer_at: Option<Instant>,
    /// When the next connection attempt is due, while down.
    retry_at: Option<Instant>,
    /// Resolved addresses not tried yet in this attempt (tried in order before backing off).
    addrs: Vec<SocketAddr>,
    /// Which of the configured addresses the link uses (or the attempt tries).
    current: usize,
    /// The address this round of attempts started with: when the next one would be it
    /// again, every address has failed and the bridge backs off.
    round_start: usize,
    /// When to check whether the primary address is back, while up on another one
    /// (`round_robin = false`).
    primary_check_at: Option<Instant>,
    /// Since when the link has been up (CONNACK).
    up_since: Option<Instant>,
    /// True while the queue is at its budget, so the drops are logged once per episode.
    full: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Link {
    /// Bytes waiting for the socket: MQTT bytes, and ciphertext not yet written.
    fn pending(&self) -> usize {
        self.out.len() + self.tls.as_ref().map_or(0, tls::Layer::pending)
    }
}

impl Bridge {
    /// The address in use (or being tried).
    fn address(&self) -> &str {
        &self.config.address.list()[self.current]
    }

    fn state(&self) -> LinkState {
        if self.session.is_up() {
            LinkState::Up
        } else if self.lazy.as_ref().is_some_and(|l| !l.wanted()) {
            LinkState::Idle
        } else if self.session.is_down() {
            LinkState::Down
        } else {
            LinkState::Connecting
        }
    }
}

/// The bridges and what they need from outside the loop.
#[derive(Default)]
pub struct Bridges {
    /// In the order of the `[[bridge]]` sections; set up at start, never removed.
    list: Slab<BridgeKey, Bridge>,
    /// For the resolver threads' answers.
    inbox: Option<InboxSender>,
    /// The broker's count of failed commits when the links were last flushed.
    failures_seen: u64,
}

impl Bridges {
    /// The bridge a poll token belongs to.
    pub fn key_of(&self, token: Token) -> Option<BridgeKey> {
        BridgeKey::from_token(token).filter(|&key| self.list.contains(key))
    }

    fn all(&self) -> impl Iterator<Item = &Bridge> {
        self.list.iter().map(|(_, bridge)| bridge)
    }
}

/// Every bridge's TLS client settings (its CA, certificate and key files read), in the
/// order of the `[[bridge]]` sections; a file that cannot be loaded names the bridge.
pub fn load_tls(config: &Config) -> Result<Vec<Option<Arc<rustls::ClientConfig>>>, RunError> {
    config
        .bridge
        .links
        .iter()
        .map(|b| tls::bridge_config(b).map_err(|e| RunError::Bridge(b.name.clone(), e)))
        .collect()
}

impl Broker {
    /// Sets up every configured bridge from its queue in the store and schedules its first
    /// connection attempt now; `tls` is [`load_tls`]'s answer, read before anything opened.
    pub(super) fn start_bridges(
        &mut self,
        tls: Vec<Option<Arc<rustls::ClientConfig>>>,
        inbox: InboxSender,
        now: Instant,
    ) -> Result<(), RunError> {
        self.bridges.inbox = Some(inbox);
        for (config, tls) in self.config.bridge.links.clone().into_iter().zip(tls) {
            let totals = self
                .db
                .store
                .forward_totals(&config.name)
                .map_err(RunError::Store)?;
            let queue = ForwardQueue::resume(Totals {
                count: totals.count,
                bytes: totals.bytes,
                last_seq: totals.last_seq,
            });
            // Jitter differs between gateways (clock, pid) and between bridges.
            let clock = crate::clock::unix_nanos() as u64;
            let seed = clock ^ u64::from(std::process::id()) << 32;
            let backoff = Backoff::new(
                Duration::from_secs(config.reconnect_delay),
                Duration::from_secs(config.reconnect_delay_max),
                seed ^ self.bridges.list.len() as u64,
            );
            log::info!(
                "bridge {} to {}: {} messages ({} bytes) queued",
                config.name,
                config.address,
                totals.count,
                totals.bytes
            );
            let mut lazy = Lazy::new(&config, now);
            if lazy.is_some() {
                log::info!(
                    "bridge {}: start = lazy: the link comes up at {} queued messages{}",
                    config.name,
                    config.lazy_threshold(),
                    config.lazy_interval.map_or_else(String::new, |i| format!(
                        " or {i} s after the last one with any queued"
                    ))
                );
            }
            let wanted = lazy
                .as_mut()
                .is_none_or(|l| l.wants_link(totals.count, now));
            let mut session =
                Session::new(&config, queue, self.config.features.max_packet_size, now);
            let inbound = self
                .db
                .store
                .load_bridge_inbound(&config.name)
                .map_err(RunError::Store)?;
            session.hold_inbound(inbound);
            let key = self.bridges.list.insert(Bridge {
                config,
                session,
                link: None,
                backoff,
                lazy,
                serial: 0,
                timer_at: None,
                retry_at: wanted.then_some(now),
                addrs: Vec::new(),
                current: 0,
                round_start: 0,
                primary_check_at: None,
                up_since: None,
                full: false,
                tls,
            });
            self.notify_locally(key, false, now);
            let _ = self.refill_bridge(key);
            self.schedule_bridge(key, now);
        }
        Ok(())
    }

    /// True when some bridge's `out` rules take a local message on `topic`.
    pub(super) fn bridges_take(&self, topic: &str) -> bool {
        self.bridges
            .all()
            .any(|bridge| bridge.session.rules.sends(topic))
    }

    /// Sends a local message to every bridge whose `out` rules take it, except the bridge
    /// it came from. QoS 1/2 copies are staged in this turn's commit.
    pub(super) fn forward_to_bridges(
        &mut self,
        message: &Message,
        from: Option<BridgeKey>,
        now: Instant,
    ) {
        for key in self.bridges.list.keys() {
            if Some(key) == from {
                continue;
            }
            let bridge = &mut self.bridges.list[key];
            let Some(mapped) = bridge.session.rules.outbound(&message.topic, message.qos) else {
                continue;
            };
            let outgoing = outgoing(message, mapped.topic, mapped.qos, now);
            if mapped.qos == Qos::AtMostOnce {
                // QoS 0 promises nothing: on a link that cannot keep up it is dropped
                // rather than piling up in memory.
                let limit = self.config.limits.max_output_buffer;
                let sent = match bridge.link.as_mut() {
                    Some(link) if link.pending() <= limit => {
                        bridge.session.send_now(&outgoing, &mut link.out, now)
                    }
                    _ => false,
                };
                match bridge.lazy.as_mut() {
                    _ if !sent => bridge.session.counters.dropped += 1,
                    Some(lazy) => lazy.busy(now),
                    None => {}
                }
                continue;
            }
            if !self.make_room(key, outgoing.size()) {
                continue;
            }
            let bridge = &mut self.bridges.list[key];
            let stored = stored(&outgoing);
            let pushed = bridge.session.queue.push(outgoing);
            let name = bridge.config.name.clone();
            self.db.store.stage(Write::Bridge(BridgeWrite::Put {
                bridge: name,
                seq: pushed.seq,
                msg: stored,
            }));
            self.pump_bridge(key, now);
            self.wake_if_wanted(key, now);
        }
    }

    /// A lazy bridge at rest: brings the link up if what is queued now wants it, or keeps
    /// a timer for when `lazy_interval` will.
    fn wake_if_wanted(&mut self, key: BridgeKey, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        let queued = bridge.session.queue.len();
        let Some(lazy) = bridge.lazy.as_mut() else {
            return;
        };
        if !lazy.wanted() && lazy.wants_link(queued, now) {
            log::info!(
                "bridge {}: {queued} messages queued; bringing the link up (start = lazy)",
                bridge.config.name
            );
            bridge.retry_at = Some(now);
        }
        self.schedule_bridge(key, now);
    }

    /// A lazy bridge's link had nothing to do for `idle_timeout`: the state `0` (with
    /// `notifications`; a normal DISCONNECT discards the will), DISCONNECT, and rest until
    /// enough is queued again.
    fn let_go(&mut self, key: BridgeKey, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        let Some(idle) = bridge.lazy.as_ref().map(Lazy::idle_timeout) else {
            return;
        };
        log::info!(
            "bridge {}: nothing to send for {} s; letting the link to {} go (start = lazy)",
            bridge.config.name,
            idle.as_secs(),
            bridge.address()
        );
        if let Some(lazy) = bridge.lazy.as_mut() {
            lazy.rest(now);
        }
        self.leave_link(key, true, now);
        let bridge = &mut self.bridges.list[key];
        bridge.retry_at = None;
        bridge.backoff.reset();
        if !bridge.config.round_robin {
            bridge.current = 0;
        }
        bridge.round_start = bridge.current;
    }

    /// Leaves a link that is up, on purpose: DISCONNECT (normal; after the state `0` if
    /// `say_down`); locally the state is `0`. What the turn made so far waits for its
    /// batch, which this link will not see: it is not sent. The socket lingers (as a
    /// client's after a reason code) until the upstream closes it: closed at once, a late
    /// PUBACK would meet a reset, which can cost the upstream our DISCONNECT (then it
    /// publishes the will, a second `0`).
    fn leave_link(&mut self, key: BridgeKey, say_down: bool, now: Instant) {
        let pending = self.pending_batch();
        let serial = self.next_generation();
        let bridge = &mut self.bridges.list[key];
        if let Some(mut link) = bridge.link.take() {
            link.held.hold(pending, &mut link.out);
            link.held.take_ready(&mut link.out);
            bridge.session.send_disconnect(&mut link.out, say_down);
            let unsent = match link.tls {
                Some(tls) => tls.finish(&mut link.out),
                None => link.out,
            };
            self.linger_socket(link.socket, None, serial, unsent, now);
        }
        let bridge = &mut self.bridges.list[key];
        bridge.up_since = None;
        bridge.primary_check_at = None;
        self.notify_locally(key, false, now);
    }

    /// Applies the queue budget before a message of `size` bytes joins bridge `key`'s
    /// queue; false when the new message must be dropped.
    /// An episode of drops starts with the first message the budget turns away and ends
    /// with the first one that fits without a drop: one log line each, not one per drop.
    fn make_room(&mut self, key: BridgeKey, size: u64) -> bool {
        let mut dropped_now = false;
        loop {
            let bridge = &mut self.bridges.list[key];
            let budget = bridge.config.max_queue_bytes;
            if !bridge.session.queue.over_budget(size, budget) {
                if !dropped_now && bridge.full {
                    bridge.full = false;
                    log::info!(
                        "bridge {}: forward queue below max_queue_bytes again",
                        bridge.config.name
                    );
                }
                return true;
            }
            dropped_now = true;
            if !bridge.full {
                bridge.full = true;
                log::warn!(
                    "bridge {}: forward queue full ({} messages, {} bytes of max_queue_bytes \
                     {budget}); queue_full = {}",
                    bridge.config.name,
                    bridge.session.queue.len(),
                    bridge.session.queue.bytes(),
                    bridge.config.queue_full
                );
            }
            bridge.session.counters.dropped += 1;
            if bridge.config.queue_full == QueueFull::DropNew {
                return false;
            }
            match bridge.session.queue.drop_oldest() {
                Some(seq) => {
                    let name = bridge.config.name.clone();
                    self.db
                        .store
                        .stage(Write::Bridge(BridgeWrite::Delete { bridge: name, seq }));
                }
                None if bridge.session.queue.wants_refill().is_some()
                    && bridge.session.queue.refill_room() > 0 =>
                {
                    // The oldest rows may still be on their way to the disk: this corner
                    // (a full queue with nothing in memory to drop) waits for them.
                    if self.writes_pending() {
                        self.sync_store();
                    }
                    if !self.refill_bridge(key) {
                        return false;
                    }
                    // The drop counted above happens from the refilled front, next round.
                    self.bridges.list[key].session.counters.dropped -= 1;
                }
                // Everything queued is in flight: the new message is the one to go.
                None => return false,
            }
        }
    }

    /// Reads the next part of bridge `key`'s queue from the store when the part in
    /// memory runs low; true if it read any. Rows still staged or with the writer are not
    /// waited for: the read takes the committed ones (the oldest: rows commit in seq
    /// order), and the rest on a later read, after the commit ([`Self::refill_bridges`]).
    fn refill_bridge(&mut self, key: BridgeKey) -> bool {
        let queue = &self.bridges.list[key].session.queue;
        let Some(from) = queue.wants_refill() else {
            return false;
        };
        let room = queue.refill_room().min(MEMORY_ENTRIES);
        if room == 0 {
            return false;
        }
        let newest = queue.newest_seq();
        let name = self.bridges.list[key].config.name.clone();
        match self.db.store.load_forward(&name, from, room) {
            Ok(rows) => {
                let last = rows.last().map(|r| r.seq);
                let complete = rows.len() < room && last.or(from.checked_sub(1)) >= newest;
                let any = !rows.is_empty();
                let rows = rows.into_iter().map(loaded_row).collect();
                self.bridges.list[key].session.queue.loaded(rows, complete);
                any
            }
            Err(e) => {
                log::error!("bridge {name}: cannot read the forward queue: {e}");
                false
            }
        }
    }

    /// A commit became durable: bridges whose queue waits for rows from the disk read
    /// them now, and send.
    pub(super) fn refill_bridges(&mut self, now: Instant) {
        for key in self.bridges.list.keys() {
            if self.bridges.list[key]
                .session
                .queue
                .wants_refill()
                .is_some()
            {
                self.pump_bridge(key, now);
            }
        }
    }

    /// Sends what the window allows and records the QoS 2 sends, reading more of the
    /// queue from the store as the part in memory drains.
    fn pump_bridge(&mut self, key: BridgeKey, now: Instant) {
        loop {
            let bridge = &mut self.bridges.list[key];
            let Some(link) = bridge.link.as_mut() else {
                return;
            };
            let mut effects = Vec::new();
            bridge.session.pump(&mut link.out, &mut effects, now);
            self.bridge_effects(key, effects, now);
            if !self.refill_bridge(key) {
                return;
            }
        }
    }

    /// Carries out what the session decided.
    fn bridge_effects(&mut self, key: BridgeKey, effects: Vec<Effect<'_>>, now: Instant) {
        for effect in effects {
            let name = self.bridges.list[key].config.name.clone();
            let bridge = &mut self.bridges.list[key];
            if let (Some(lazy), Effect::Forget { .. } | Effect::Deliver { .. }) =
                (bridge.lazy.as_mut(), &effect)
            {
                lazy.busy(now);
            }
            match effect {
                Effect::Forget { seq, .. } => self
                    .db
                    .store
                    .stage(Write::Bridge(BridgeWrite::Delete { bridge: name, seq })),
                Effect::Record {
                    seq,
                    packet_id,
                    stage,
                } => self.db.store.stage(Write::Bridge(BridgeWrite::Sent {
                    bridge: name,
                    seq,
                    packet_id: packet_id.get(),
                    state: match stage {
                        Stage::Published => 1,
                        Stage::Released => 2,
                    },
                })),
                Effect::Inbound { packet_id, held } => {
                    self.db.store.stage(Write::Bridge(BridgeWrite::Inbound {
                        bridge: name,
                        packet_id,
                        held,
                    }))
                }
                Effect::Deliver {
                    topic,
                    qos,
                    publish,
                } => {
                    if !self.valid_topic(&topic) || topic.starts_with('$') {
                        log::warn!("bridge {name}: {topic} from the upstream is not a valid local topic, dropped");
                        continue;
                    }
                    if self.claimed(&topic) {
                        // It would reach the service's subscribers without the service.
                        log::warn!(
                            "bridge {name}: {topic} from the upstream is a service's topic, dropped"
                        );
                        continue;
                    }
                    let mut publish = *publish;
                    publish.qos = match qos {
                        Qos::AtMostOnce => QosPid::AtMostOnce,
                        Qos::AtLeastOnce => QosPid::AtLeastOnce(PacketId::MIN),
                        Qos::ExactlyOnce => QosPid::ExactlyOnce(PacketId::MIN),
                    };
                    publish.properties.topic_alias = None;
                    self.bridges.list[key].session.counters.received += 1;
                    self.stats.messages_received += 1;
                    let message = Message::from_publish(&topic, &publish, None, now);
                    self.distribute_from(message, Some(key), now);
                }
            }
        }
    }

    /// A timer of bridge `key` is due: connect, time out, or ping.
    pub(super) fn bridge_timer(&mut self, key: BridgeKey, now: Instant) {
        let Some(bridge) = self.bridges.list.get_mut(key) else {
            return;
        };
        bridge.timer_at = None;
        let queued = bridge.session.queue.len();
        if bridge.session.is_up() && bridge.lazy.as_ref().is_some_and(|l| l.is_idle(queued, now)) {
            self.let_go(key, now);
            return self.schedule_bridge(key, now);
        }
        if bridge.session.is_down() {
            self.wake_if_wanted(key, now);
        }
        let bridge = &mut self.bridges.list[key];
        if bridge.link.is_none() && bridge.retry_at.is_some_and(|at| at <= now) {
            bridge.retry_at = None;
            self.connect_bridge(key, now);
        }
        let bridge = &mut self.bridges.list[key];
        if bridge.primary_check_at.is_some_and(|at| at <= now) {
            bridge.primary_check_at = None;
            self.probe_primary(key);
        }
        let bridge = &mut self.bridges.list[key];
        // Without a link (a resolver still at work) a ping has nowhere to go.
        let mut nowhere = Vec::new();
        let out = bridge.link.as_mut().map_or(&mut nowhere, |l| &mut l.out);
        if let Err(e) = bridge.session.check(out, now) {
            let handshaking = bridge
                .link
                .as_ref()
                .and_then(|l| l.tls.as_ref())
                .is_some_and(|t| t.is_handshaking());
            let e = match e {
                LinkError::Timeout(_) if handshaking => {
                    LinkError::Tls("handshake did not finish in time".into())
                }
                e => e,
            };
            self.bridge_down(key, e, now);
        }
        self.schedule_bridge(key, now);
    }

    /// Keeps one timer in the heap for the bridge's nearest deadline.
    fn schedule_bridge(&mut self, key: BridgeKey, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        let queued = bridge.session.queue.len();
        let lazy = bridge.lazy.as_ref();
        let lazy_at = match lazy {
            Some(lazy) if bridge.session.is_up() => lazy.idle_at(queued),
            Some(lazy) => lazy.wake_at(queued),
            None => None,
        };
        let next = [
            bridge.retry_at,
            bridge.session.deadline(),
            bridge.primary_check_at,
            lazy_at,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return;
        };
        if bridge.timer_at.is_some_and(|at| at <= next) {
            return;
        }
        bridge.timer_at = Some(next);
        self.timers.schedule(next.max(now), Timer::Bridge { key });
    }

    /// Starts a connection attempt: straight to the address, or through a resolver thread.
    fn connect_bridge(&mut self, key: BridgeKey, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        bridge.serial += 1;
        bridge.session.connecting(now);
        let address = bridge.address().to_string();
        if let Ok(addr) = address.parse::<SocketAddr>() {
            self.open_bridge(key, addr, now);
            return;
        }
        let serial = bridge.serial;
        let Some(inbox) = self.bridges.inbox.clone() else {
            return;
        };
        std::thread::spawn(move || {
            let result = address
                .to_socket_addrs()
                .map(Iterator::collect)
                .map_err(|e| e.to_string());
            let _ = inbox.send(Inbound::BridgeResolved(Resolved {
                key,
                serial,
                result,
                probe: false,
            }));
        });
    }

    /// While up on another address: checks off the loop whether the primary takes a TCP
    /// connection again.
    fn probe_primary(&mut self, key: BridgeKey) {
        let bridge = &self.bridges.list[key];
        let (address, serial) = (bridge.config.address.list()[0].clone(), bridge.serial);
        let Some(inbox) = self.bridges.inbox.clone() else {
            return;
        };
        std::thread::spawn(move || {
            let result = address
                .to_socket_addrs()
                .map_err(|e| e.to_string())
                .and_then(|addrs| {
                    addrs
                        .into_iter()
                        .find(|a| std::net::TcpStream::connect_timeout(a, PROBE_TIMEOUT).is_ok())
                        .map(|a| vec![a])
                        .ok_or_else(|| "no answer".to_string())
                });
            let _ = inbox.send(Inbound::BridgeResolved(Resolved {
                key,
                serial,
                result,
                probe: true,
            }));
        });
    }

    /// The primary check's answer: if the primary is back and the bridge is still up on
    /// another address, it leaves that one (DISCONNECT, normal) and connects to the
    /// primary now; what is in flight is sent again there.
    fn primary_probed(&mut self, resolved: Resolved, now: Instant) {
        let key = resolved.key;
        let bridge = &mut self.bridges.list[key];
        if bridge.serial != resolved.serial || !bridge.session.is_up() || bridge.current == 0 {
            return;
        }
        if resolved.result.is_err() {
            bridge.primary_check_at = Some(now + Duration::from_secs(bridge.config.primary_retry));
            return self.schedule_bridge(key, now);
        }
        log::info!(
            "bridge {}: the primary {} is back; leaving {} for it",
            bridge.config.name,
            bridge.config.address.list()[0],
            bridge.address()
        );
        self.leave_link(key, false, now);
        let bridge = &mut self.bridges.list[key];
        bridge.current = 0;
        bridge.round_start = 0;
        bridge.retry_at = Some(now);
        self.schedule_bridge(key, now);
    }

    /// The resolver thread's answer.
    pub(super) fn bridge_resolved(&mut self, resolved: Resolved, now: Instant) {
        let Some(bridge) = self.bridges.list.get(resolved.key) else {
            return;
        };
        if resolved.probe {
            return self.primary_probed(resolved, now);
        }
        if bridge.serial != resolved.serial || bridge.link.is_some() {
            return;
        }
        match resolved.result {
            Ok(mut addrs) if !addrs.is_empty() => {
                let first = addrs.remove(0);
                self.bridges.list[resolved.key].addrs = addrs;
                self.open_bridge(resolved.key, first, now);
            }
            Ok(_) => self.bridge_down(resolved.key, LinkError::Resolve("no addresses".into()), now),
            Err(e) => self.bridge_down(resolved.key, LinkError::Resolve(e), now),
        }
        self.schedule_bridge(resolved.key, now);
    }

    fn open_bridge(&mut self, key: BridgeKey, addr: SocketAddr, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        let mut socket = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.bridge_down(key, LinkError::Io(e.to_string()), now),
        };
        let token = key.token();
        if let Err(e) =
            self.registry
                .register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
        {
            return self.bridge_down(key, LinkError::Io(e.to_string()), now);
        }
        let tls = match &bridge.tls {
            Some(config) => match tls::client(config.clone(), &bridge.config, bridge.address()) {
                Ok(session) => Some(tls::Layer::new(session)),
                Err(e) => return self.bridge_down(key, LinkError::Tls(e.to_string()), now),
            },
            None => None,
        };
        bridge.link = Some(Link {
            socket,
            connected: false,
            tls,
            read_buf: Vec::new(),
            out: Vec::new(),
            held: HeldBytes::default(),
            wants_write: true,
        });
    }

    /// A poll event for bridge `key`.
    pub(super) fn bridge_event(&mut self, key: BridgeKey, event: &mio::event::Event, now: Instant) {
        let Some(link) = self.bridges.list[key].link.as_mut() else {
            return;
        };
        if !link.connected {
            if event.is_error() || event.is_write_closed() {
                let e = link.socket.take_error().ok().flatten();
                let why = e.map_or_else(|| "connection refused".to_string(), |e| e.to_string());
                return self.bridge_down(key, LinkError::Io(why), now);
            }
            if !event.is_writable() {
                return;
            }
            match link.socket.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.bridge_down(key, LinkError::Io(e.to_string()), now),
            }
            let _ = link.socket.set_nodelay(true);
            link.connected = true;
            let bridge = &mut self.bridges.list[key];
            let link = bridge.link.as_mut().expect("checked above");
            // With TLS the CONNECT waits in `out` until the handshake is done.
            bridge.session.send_connect(&mut link.out, now);
        }
        if event.is_readable() || event.is_read_closed() {
            self.read_bridge(key, now);
        }
        // Output (and what is left of the last write, on a writable event) goes at the end
        // of the turn, after the commit.
    }

    fn read_bridge(&mut self, key: BridgeKey, now: Instant) {
        let mut scratch = std::mem::take(&mut self.turn.read_scratch);
        scratch.resize(READ_CHUNK, 0);
        let result = loop {
            let Some(link) = self.bridges.list[key].link.as_mut() else {
                break Ok(());
            };
            let n = match socket_io::read(&mut link.socket, link.tls.as_mut(), &mut scratch) {
                Received::Data(n) => n,
                Received::Drained => break Ok(()),
                Received::Closed => break Err(LinkError::Closed),
                Received::Failed(e) => break Err(LinkError::Io(e.to_string())),
                Received::Tls(e) => break Err(LinkError::Tls(e.to_string())),
            };
            self.stats.bytes_received += n as u64;
            let mut input = std::mem::take(&mut link.read_buf);
            input.extend_from_slice(&scratch[..n]);
            if let Err(e) = self.bridge_input(key, &mut input, now) {
                break Err(e);
            }
            if let Some(link) = self.bridges.list[key].link.as_mut() {
                link.read_buf = input;
            }
        };
        self.turn.read_scratch = scratch;
        if let Err(e) = result {
            self.bridge_down(key, e, now);
        }
    }

    /// Decodes and handles every whole packet in `input`, keeping the rest there.
    fn bridge_input(
        &mut self,
        key: BridgeKey,
        input: &mut Vec<u8>,
        now: Instant,
    ) -> Result<(), LinkError> {
        let mut used = 0;
        let result = loop {
            let bridge = &mut self.bridges.list[key];
            let version = bridge.session.version();
            let max = self.config.features.max_packet_size;
            let (packet, len) = match protocol::decode(&input[used..], version, max) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break Ok(()),
                Err(e) => break Err(LinkError::Decode(e)),
            };
            used += len;
            let was_up = bridge.session.is_up();
            let Some(link) = bridge.link.as_mut() else {
                break Ok(());
            };
            let mut effects = Vec::new();
            if let Err(e) = bridge
                .session
                .on_packet(packet, &mut link.out, &mut effects, now)
            {
                break Err(e);
            }
            let came_up = !was_up && bridge.session.is_up();
            if came_up {
                bridge.up_since = Some(now);
                bridge.addrs.clear();
                let config = &bridge.config;
                if bridge.current != 0 && !config.round_robin {
                    bridge.primary_check_at = Some(now + Duration::from_secs(config.primary_retry));
                }
                log::info!("bridge {}: up on {}", config.name, bridge.address());
            }
            self.bridge_effects(key, effects, now);
            if came_up {
                self.notify_locally(key, true, now);
            }
        };
        input.drain(..used);
        if result.is_ok() {
            self.pump_bridge(key, now);
            self.schedule_bridge(key, now);
        }
        result
    }

    /// Writes what bridge `key` has for the socket; called at the end of the turn
    /// (after the commit) and when the socket becomes writable.
    fn flush_bridge(&mut self, key: BridgeKey, now: Instant) {
        let Some(link) = self.bridges.list[key].link.as_mut() else {
            return;
        };
        if !link.connected {
            return;
        }
        link.held.take_ready(&mut link.out);
        let (written, result) = match link.tls.as_mut() {
            Some(tls) => socket_io::write_tls(&mut link.socket, tls, &mut link.out),
            None => {
                let (written, result) = socket_io::write(&mut link.socket, &link.out);
                link.out.drain(..written);
                (written, result)
            }
        };
        self.stats.bytes_sent += written as u64;
        if let Err(e) = result {
            let tls_failed = e.get_ref().is_some_and(|inner| inner.is::<tls::TlsError>());
            let error = match e.kind() {
                _ if tls_failed => LinkError::Tls(e.to_string()),
                io::ErrorKind::WriteZero => LinkError::Closed,
                _ => LinkError::Io(e.to_string()),
            };
            return self.bridge_down(key, error, now);
        }
        // With TLS, plaintext waiting for the handshake is not for the socket yet.
        let pending = match &link.tls {
            Some(tls) => tls.pending() > 0,
            None => !link.out.is_empty(),
        };
        if pending != link.wants_write {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = key.token();
            if self
                .registry
                .reregister(&mut link.socket, token, interest)
                .is_ok()
            {
                link.wants_write = pending;
            }
        }
    }

    /// The end of a turn, before the commit window: output the turn made waits for
    /// `batch` (what is staged or with the writer), behind anything held before it.
    pub(super) fn hold_bridge_output(&mut self, batch: Option<u64>) {
        for link in self
            .bridges
            .list
            .iter_mut()
            .filter_map(|(_, b)| b.link.as_mut())
        {
            link.held.hold(batch, &mut link.out);
        }
    }

    /// True while some bridge's output waits for a batch.
    pub(super) fn bridges_holding(&self) -> bool {
        self.bridges
            .all()
            .any(|b| b.link.as_ref().is_some_and(|l| l.held.until().is_some()))
    }

    /// Batches up to `done` are durable: the output that waited for them goes at the
    /// end of the turn.
    pub(super) fn release_bridge_output(&mut self, done: u64) {
        for link in self
            .bridges
            .list
            .iter_mut()
            .filter_map(|(_, b)| b.link.as_mut())
        {
            link.held.release(done);
        }
    }

    /// Batches from `first` on failed: what waited for them (and all behind it) never
    /// leaves; the links are dropped at the end of the turn (see [`Self::flush_bridges`]).
    pub(super) fn bridge_commit_failed(&mut self, first: u64) {
        for link in self
            .bridges
            .list
            .iter_mut()
            .filter_map(|(_, b)| b.link.as_mut())
        {
            if link.held.until().is_some_and(|until| until >= first) {
                link.held.clear();
                link.out.clear();
            }
        }
    }

    /// The end of a turn, after the commit: every bridge's output goes out. If a commit
    /// failed since the last time, that output may acknowledge what is not on disk: the
    /// links are dropped instead, and the next connection sends again what is
    /// unacknowledged.
    pub(super) fn flush_bridges(&mut self, now: Instant) {
        let commit_failed = self.bridges.failures_seen != self.stats.store_failures;
        self.bridges.failures_seen = self.stats.store_failures;
        for key in self.bridges.list.keys() {
            let has_link = self.bridges.list[key].link.is_some();
            if commit_failed && has_link {
                self.bridge_down(key, LinkError::Io("local store failure".into()), now);
            } else {
                self.flush_bridge(key, now);
            }
        }
    }

    /// A graceful stop: each connected bridge says DISCONNECT, best effort, after the
    /// final commit.
    /// Then each socket's write side is shut and its input drained until the upstream
    /// closes (it does after a DISCONNECT), at most [`STOP_DRAIN`] for all: closing with
    /// unread input (a late PUBACK of the `0`) would send a reset, which can cost the
    /// upstream our DISCONNECT and make it publish the will as well.
    pub(super) fn stop_bridges(&mut self, now: Instant) {
        for key in self.bridges.list.keys() {
            let bridge = &mut self.bridges.list[key];
            if let Some(link) = bridge.link.as_mut() {
                bridge.session.send_disconnect(&mut link.out, true);
                self.flush_bridge(key, now);
            }
        }
        let deadline = Instant::now() + STOP_DRAIN;
        for key in self.bridges.list.keys() {
            if let Some(link) = self.bridges.list[key].link.as_mut() {
                socket_io::close_gracefully(&mut link.socket, deadline);
            }
        }
    }

    /// The link is gone or could not be made: log it and schedule the next attempt.
    fn bridge_down(&mut self, key: BridgeKey, error: LinkError, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        if let Some(mut link) = bridge.link.take() {
            let _ = self.registry.deregister(&mut link.socket);
        }
        let was_up = bridge.session.is_up();
        if !was_up && !bridge.addrs.is_empty() {
            // The name has more addresses (IPv6 and IPv4, say): try the next one now.
            let next = bridge.addrs.remove(0);
            log::info!("bridge {}: {error}; trying {next}", bridge.config.name);
            return self.open_bridge(key, next, now);
        }
        let count = bridge.config.address.list().len();
        if !was_up && (bridge.current + 1) % count != bridge.round_start {
            // The cluster has more nodes: try the next one now.
            let failed = bridge.address().to_string();
            bridge.current = (bridge.current + 1) % count;
            log::warn!(
                "bridge {} to {failed}: cannot connect: {error}; trying {}",
                bridge.config.name,
                bridge.address()
            );
            return self.connect_bridge(key, now);
        }
        bridge.primary_check_at = None;
        let lost_on = bridge.current;
        let failed_address = bridge.address().to_string();
        // The next round: from the primary again, or (round robin) from the next address
        // after the one that was up.
        bridge.round_start = match (was_up, bridge.config.round_robin) {
            (true, true) => (lost_on + 1) % count,
            (true, false) => 0,
            (false, _) => bridge.round_start,
        };
        bridge.current = bridge.round_start;
        if let Some(seq) = bridge.session.link_lost(&error) {
            let name = bridge.config.name.clone();
            self.db
                .store
                .stage(Write::Bridge(BridgeWrite::Delete { bridge: name, seq }));
        }
        if was_up {
            self.notify_locally(key, false, now);
        }
        let bridge = &mut self.bridges.list[key];
        let stable = bridge
            .up_since
            .take()
            .is_some_and(|since| now.saturating_duration_since(since) >= STABLE);
        let good = was_up && (stable || bridge.session.had_good_exchange());
        let delay = bridge.backoff.after(good);
        let what = if was_up {
            "link lost"
        } else {
            "cannot connect"
        };
        let queued = bridge.session.queue.len();
        if let Some(lazy) = bridge.lazy.as_mut().filter(|_| queued == 0) {
            // Nothing is waiting: a lazy link rests instead of trying again.
            lazy.rest(now);
            bridge.retry_at = None;
            log::warn!(
                "bridge {} to {failed_address}: {what}: {error}; nothing queued, so no new \
                 attempt until enough is (start = lazy)",
                bridge.config.name
            );
            return self.schedule_bridge(key, now);
        }
        bridge.retry_at = Some(now + delay);
        log::warn!(
            "bridge {} to {failed_address}: {what}: {error}; next attempt in {:.1} s ({} queued)",
            bridge.config.name,
            delay.as_secs_f64(),
            bridge.session.queue.len()
        );
        self.schedule_bridge(key, now);
    }

    /// With `notifications`, the link's state (`1` up, `0` down) as a retained message on
    /// the notification topic for local subscribers too; kept in memory like `$SYS`.
    fn notify_locally(&mut self, key: BridgeKey, up: bool, now: Instant) {
        let Some(topic) = self.bridges.list[key].config.notification_topic() else {
            return;
        };
        let state: &[u8] = if up { b"1" } else { b"0" };
        self.publish_retained_in_memory(topic.into(), state.into(), now);
    }

    /// What the console shows of each bridge.
    pub(super) fn bridge_infos(&self) -> Vec<BridgeInfo> {
        let now = Instant::now();
        self.bridges
            .all()
            .map(|b| {
                let (s, c) = (&b.session, &b.session.counters);
                BridgeInfo {
                    name: b.config.name.clone(),
                    address: b.address().to_string(),
                    protocol: s.version(),
                    connected: s.is_up(),
                    state: b.state(),
                    up_for: b
                        .up_since
                        .filter(|_| s.is_up())
                        .map(|since| now.saturating_duration_since(since)),
                    queued: s.queue.len(),
                    queued_bytes: s.queue.bytes(),
                    max_queue_bytes: b.config.max_queue_bytes,
                    queue_full: b.config.queue_full,
                    forwarded: c.forwarded,
                    received: c.received,
                    dropped: c.dropped,
                    connects: c.connects,
                    last_error: c.last_error.clone(),
                }
            })
            .collect()
    }

    /// `$SYS/broker/bridge/NAME/...` for every bridge, as (topic, value) pairs.
    pub(super) fn bridge_sys_values(&self) -> Vec<(String, String)> {
        let mut values = Vec::new();
        for bridge in self.bridges.all() {
            let s = &bridge.session;
            let c = &s.counters;
            let name = &bridge.config.name;
            for (key, value) in [
                ("connected", u8::from(s.is_up()).to_string()),
                ("state", bridge.state().as_str().to_string()),
                ("queued", s.queue.len().to_string()),
                ("queued/bytes", s.queue.bytes().to_string()),
                ("forwarded", c.forwarded.to_string()),
                ("received", c.received.to_string()),
                ("dropped", c.dropped.to_string()),
                ("connects", c.connects.to_string()),
            ] {
                values.push((format!("$SYS/broker/bridge/{name}/{key}"), value));
            }
            // Not published before there is one: an empty retained payload means "none
            // retained" in MQTT, and tools print it as `(null)`.
            if let Some(error) = &c.last_error {
                values.push((
                    format!("$SYS/broker/bridge/{name}/last_error"),
                    error.clone(),
                ));
            }
        }
        values
    }
}

/// A local message as it goes upstream under `topic` at `qos`.
fn outgoing(message: &Message, topic: String, qos: Qos, now: Instant) -> Outgoing {
    let p = &message.properties;
    let props = Properties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.as_deref(),
        response_topic: p.response_topic.as_deref(),
        correlation_data: p.correlation_data.as_deref(),
        user_properties: p
            .user_properties
            .iter()
            .map(|(k, v)| (&**k, &**v))
            .collect(),
        ..Properties::default()
    };
    let mut properties = Vec::new();
    protocol::write_properties(&props, &mut properties);
    Outgoing {
        topic: topic.into(),
        payload: message.payload.clone(),
        qos,
        retain: message.retain,
        properties: properties.into(),
        expires_at: message.expires_at.map(|at| {
            crate::clock::unix_seconds() + at.saturating_duration_since(now).as_secs() as i64
        }),
    }
}

fn stored(o: &Outgoing) -> StoredMessage {
    StoredMessage {
        topic: o.topic.to_string(),
        payload: o.payload.to_vec(),
        qos: o.qos as u8,
        retain: o.retain,
        properties: o.properties.to_vec(),
        expires_at: o.expires_at,
    }
}

fn loaded_row(row: ForwardRow) -> (Entry, Option<(PacketId, Stage)>) {
    let sent = match (row.packet_id.and_then(PacketId::new), row.state) {
        (Some(id), 1) => Some((id, Stage::Published)),
        (Some(id), 2) => Some((id, Stage::Released)),
        _ => None,
    };
    let entry = Entry {
        seq: row.seq,
        msg: Outgoing {
            topic: row.msg.topic.into(),
            payload: row.msg.payload.into(),
            qos: Qos::from_u8(row.msg.qos).unwrap_or(Qos::AtLeastOnce),
            retain: row.msg.retain,
            properties: row.msg.properties.into(),
            expires_at: row.msg.expires_at,
        },
    };
    (entry, sent)
}
