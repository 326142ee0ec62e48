//! The event loop: one mio `Poll` owns the listeners and every client socket.
//!
//! One turn: poll (timeout = nearest deadline) → accept / read and handle every whole
//! frame / drain the inbox → run due timers → detach closed connections → commit →
//! flush write buffers → drop closed sockets. Write interest is registered only while
//! output is pending.

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::client::{Connection, Hold, Phase, ReadOutcome, READ_CHUNK};
use super::close::{send_disconnect, Ending};
use super::inbox::{Inbound, Inbox, InboxSender};
use super::listeners::{ListenerId, ListenerKind, Listeners};
use super::transport::Transport;
use super::{Broker, Violation};
use crate::auth::worker::AuthWorker;
use crate::cli::ConfigSource;
use crate::config::Config;
use crate::core::keys::ConnKey;
use crate::core::timers::Timer;
use crate::protocol::ReasonCode;
use crate::store::{Store, StoreError, Writer};

/// The signal pipe's token and the waker's (the inbox); listeners count down below them.
const SIGNAL: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Reads from one connection in one turn (of up to 16 KiB each) before the others, the
/// flush and the timers get their turn; the rest is read in the next turn.
const READS_PER_TURN: usize = 16;
/// How long a graceful stop waits for pending output to drain.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// Why the broker could not start or had to stop.
#[derive(Debug)]
pub enum RunError {
    Bind(SocketAddr, io::Error),
    Store(StoreError),
    Tls(crate::tls::TlsError),
    /// A bridge's TLS files could not be loaded.
    Bridge(String, crate::tls::TlsError),
    Io(&'static str, io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            RunError::Store(e) => write!(f, "{e}"),
            RunError::Tls(e) => write!(f, "TLS listener: {e}"),
            RunError::Bridge(name, e) => write!(f, "bridge {name}: {e}"),
            RunError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// A broker whose listeners are bound and whose store is loaded, ready to run. Between
/// [`Server::bind`] and [`Server::run`] other threads (the web console) can be given
/// [`Server::inbox`] to reach the loop.
pub struct Server {
    poll: Poll,
    broker: Broker,
    signals: mio::net::UnixStream,
    /// Which signal arrived last.
    received: Arc<AtomicUsize>,
    /// Set by SIGHUP, cleared when the reload runs.
    hangup: Arc<AtomicBool>,
    /// Where SIGHUP reads the configuration again; without it, only the ACL rules.
    source: Option<ConfigSource>,
    inbox: InboxSender,
    /// The certificate of the console and the wss listeners, when one of them serves TLS.
    web_tls: Option<crate::tls::web::WebTls>,
}

/// Binds the listeners and runs the loop until SIGINT or SIGTERM; SIGHUP reloads from
/// `source`.
pub fn run(config: Config, source: ConfigSource) -> Result<(), RunError> {
    Server::bind(config)?.reload_from(source).run()
}

impl Server {
    /// Binds every configured listener, opens and loads the store, starts the auth workers.
    pub fn bind(config: Config) -> Result<Server, RunError> {
        // Files first: a bad one stops the start before a port is bound or the store opened.
        let bridge_tls = super::bridge::load_tls(&config)?;
        let poll = Poll::new().map_err(|e| RunError::Io("cannot create poll", e))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| RunError::Io("cannot create poll", e))?;
        let mut listeners = Listeners::default();
        let mqtt = config
            .network
            .listen
            .iter()
            .map(|a| (ListenerKind::Mqtt, a));
        let web_tls = crate::tls::web::prepare(&config.web_tls()).map_err(RunError::Tls)?;
        let ws = config.network.ws_listen.iter().map(|a| {
            if crate::tls::web::serves_tls(&config.web_tls(), *a) {
                (ListenerKind::SecureWebSocket, a)
            } else {
                (ListenerKind::WebSocket, a)
            }
        });
        for (kind, addr) in mqtt.chain(ws) {
            listeners
                .add(&registry, kind, *addr)
                .map_err(|e| RunError::Bind(*addr, e))?;
        }
        let tls_server = config.network.tls_server().map_err(RunError::Tls)?;
        for addr in &config.network.tls_listen {
            listeners
                .add(&registry, ListenerKind::Tls, *addr)
                .map_err(|e| RunError::Bind(*addr, e))?;
        }
        let store =
            Store::open(&config.storage.db, config.storage.sync).map_err(RunError::Store)?;
        for (_, listener) in listeners.iter() {
            log::info!("{}", listener.announcement());
        }
        let (signals, received, hangup) = register_signals(&poll)?;
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), WAKER)
                .map_err(|e| RunError::Io("cannot create waker", e))?,
        );
        let (inbox_rx, inbox) = Inbox::new(waker);
        // One core stays free for the loop: a login burst must not starve established clients.
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() - 1).clamp(1, 3));
        let auth = AuthWorker::spawn(
            &config.storage.db,
            config.storage.sync,
            config.accounts.bcrypt_cost,
            threads,
            {
                let inbox = inbox.clone();
                move |answer| inbox.send(answer).is_ok()
            },
        )
        .map_err(|e| RunError::Io("cannot start the auth workers", e))?;
        let durable = inbox.clone();
        let writer = Writer::spawn(
            &config.storage.db,
            config.storage.sync,
            Box::new(move || {
                // A stopped loop needs no word.
                let _ = durable.send(Inbound::Durable);
            }),
        )
        .map_err(RunError::Store)?;
        let mut broker = Broker::new(config, store, writer, auth, registry, listeners, inbox_rx);
        broker.tls_server = tls_server;
        broker.web_tls_server = web_tls.as_ref().map(|t| t.config.clone());
        broker.load(Instant::now()).map_err(RunError::Store)?;
        broker.load_services().map_err(RunError::Store)?;
        broker.start_bridges(bridge_tls, inbox.clone(), Instant::now())?;
        Ok(Server {
            poll,
            broker,
            signals,
            received,
            hangup,
            source: None,
            inbox,
            web_tls,
        })
    }

    /// Makes SIGHUP read the configuration again from `source` (see `reload.rs`).
    pub fn reload_from(mut self, source: ConfigSource) -> Server {
        self.source = Some(source);
        self
    }

    /// A handle for another thread to send the loop requests.
    pub fn inbox(&self) -> InboxSender {
        self.inbox.clone()
    }

    /// The certificate the web console presents when it serves HTTPS (loaded or generated
    /// once, with the wss listeners').
    pub fn web_tls(&self) -> Option<crate::tls::web::WebTls> {
        self.web_tls.clone()
    }

    /// The addresses the listeners are bound to (the real port where 0 was asked for).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.broker.listeners.iter().map(|(_, l)| l.addr).collect()
    }

    /// Runs the loop until SIGINT or SIGTERM.
    pub fn run(self) -> Result<(), RunError> {
        let Server {
            mut poll,
            mut broker,
            mut signals,
            received,
            hangup,
            source,
            inbox,
            web_tls: _,
        } = self;
        // The loop keeps no sender of its own: dropping it lets `send` see a stopped loop.
        drop(inbox);
        let mut events = Events::with_capacity(256);
        loop {
            broker.prune_connect_deadlines();
            let timeout = if broker.turn.read_again.is_empty() {
                broker.timers.timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(RunError::Io("poll failed", e));
            }
            let now = Instant::now();
            let mut stop = false;
            // The inbox first: a login token granted before its CONNECT was sent must be
            // known when that CONNECT is read, even in the same batch of events.
            if events.iter().any(|e| e.token() == WAKER) {
                broker.drain_inbox(now);
            }
            for token in std::mem::take(&mut broker.turn.read_again) {
                broker.read(token, now);
            }
            for event in events.iter() {
                match event.token() {
                    SIGNAL => {
                        drain(&mut signals);
                        stop = received.load(Ordering::Relaxed) != 0;
                        if hangup.swap(false, Ordering::Relaxed) {
                            broker.reload(source.as_ref(), now);
                        }
                    }
                    WAKER => {}
                    token if broker.bridges.key_of(token).is_some() => {
                        if let Some(key) = broker.bridges.key_of(token) {
                            broker.bridge_event(key, event, now);
                        }
                    }
                    token if broker.lingering.key_of(token).is_some() => {
                        if let Some(key) = broker.lingering.key_of(token) {
                            broker.linger_ready(key);
                        }
                    }
                    token => match broker.listeners.id_of(token) {
                        Some(listener) => broker.accept(listener, now),
                        None => {
                            let Some(conn) = ConnKey::from_token(token) else {
                                continue;
                            };
                            if event.is_readable() || event.is_read_closed() {
                                broker.read(conn, now);
                            }
                            if event.is_writable() {
                                broker.mark_flush(conn);
                            }
                        }
                    },
                }
            }
            broker.run_timers(now);
            broker.end_turn(now);
            if stop {
                let name = match received.load(Ordering::Relaxed) {
                    n if n == signal_hook::consts::SIGINT as usize => "SIGINT",
                    _ => "SIGTERM",
                };
                log::info!("received {name}, stopping");
                broker.stop(&mut poll, &mut events);
                return Ok(());
            }
        }
    }
}

/// The signal pipe, which stop signal arrived, and whether a SIGHUP did.
type Signals = (mio::net::UnixStream, Arc<AtomicUsize>, Arc<AtomicBool>);

/// SIGINT, SIGTERM and SIGHUP write to a socket pair the poll watches; `received` says
/// which stop signal came, the flag says a SIGHUP did.
fn register_signals(poll: &Poll) -> Result<Signals, RunError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let err = |e| RunError::Io("cannot install signal handlers", e);
    let (reader, writer) = UnixStream::pair().map_err(err)?;
    reader.set_nonblocking(true).map_err(err)?;
    writer.set_nonblocking(true).map_err(err)?;
    let received = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_usize(signal, received.clone(), signal as usize)
            .map_err(err)?;
        signal_hook::low_level::pipe::register(signal, writer.try_clone().map_err(err)?)
            .map_err(err)?;
    }
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGHUP, hangup.clone()).map_err(err)?;
    signal_hook::low_level::pipe::register(SIGHUP, writer).map_err(err)?;
    let mut reader = mio::net::UnixStream::from_std(reader);
    poll.registry()
        .register(&mut reader, SIGNAL, Interest::READABLE)
        .map_err(err)?;
    Ok((reader, received, hangup))
}

/// Empties the signal pipe; true if a signal arrived.
fn drain(pipe: &mut mio::net::UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut got = false;
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        got = true;
    }
    got
}

impl Broker {
    /// Handles everything other threads sent since the last wake-up, each kind in one place.
    fn drain_inbox(&mut self, now: Instant) {
        while let Some(message) = self.inbox.try_recv() {
            match message {
                Inbound::Auth(reply) => self.auth_replied(reply, now),
                Inbound::Chat(reply) => self.chat_account_done(reply, now),
                Inbound::Console(request) => self.answer_console(request, now),
                Inbound::BridgeResolved(resolved) => self.bridge_resolved(resolved, now),
                Inbound::Durable => self.commit_progress(now),
                Inbound::LoginToken(grant) => {
                    if !self.access.login_tokens.grant(grant, now) {
                        log::warn!("login token dropped: too many open tokens");
                    }
                }
            }
        }
    }

    fn accept(&mut self, listener: ListenerId, now: Instant) {
        let Some(kind) = self.listeners.get(listener).map(|l| l.kind) else {
            return;
        };
        loop {
            let Some(socket) = self.listeners.socket(listener) else {
                return;
            };
            let (mut socket, addr) = match socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let limit = self.config.limits.max_connections;
            if limit > 0 && self.conns.len() + self.lingering.len() >= limit {
                log::warn!("connection from {addr} refused: max_connections ({limit}) reached");
                continue;
            }
            let per_address = self.config.limits.max_connections_per_address;
            let from_here = self.per_address.get(&addr.ip()).copied().unwrap_or(0);
            if per_address > 0 && from_here >= per_address {
                log::warn!(
                    "connection from {addr} refused: max_connections_per_address ({per_address}) reached"
                );
                continue;
            }
            let _ = socket.set_nodelay(true);
            let serial = self.next_generation();
            let local_is_loopback = socket.local_addr().is_ok_and(|a| a.ip().is_loopback());
            let token = self.conns.vacant_key();
            if let Err(e) = self
                .registry
                .register(&mut socket, token.token(), Interest::READABLE)
            {
                log::warn!("cannot register connection from {addr}: {e}");
                continue;
            }
            let deadline = now + Duration::from_secs(self.config.limits.connect_timeout);
            let transport = Transport::for_listener(kind);
            let server_config = match kind {
                ListenerKind::Tls => self.tls_server.as_ref(),
                ListenerKind::SecureWebSocket => self.web_tls_server.as_ref(),
                ListenerKind::Mqtt | ListenerKind::WebSocket => None,
            };
            let tls = match server_config {
                Some(config) => match crate::tls::server(config.clone()) {
                    Ok(session) => Some(Box::new(crate::tls::Layer::new(session))),
                    Err(e) => {
                        log::warn!("TLS connection from {addr} refused: {e}");
                        let _ = self.registry.deregister(&mut socket);
                        continue;
                    }
                },
                _ => None,
            };
            let mut conn = Connection::new(socket, addr, listener, transport, serial, now);
            conn.local_is_loopback = local_is_loopback;
            conn.tls = tls;
            let inserted = self.conns.insert(conn);
            debug_assert_eq!(inserted, token, "registered under the key it got");
            *self.per_address.entry(addr.ip()).or_insert(0) += 1;
            self.timers.schedule_connect(deadline, token, serial);
        }
    }

    fn read(&mut self, token: ConnKey, now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if conn.closing.is_some() || !self.resume_input(token, now) {
            return;
        }
        let mut scratch = std::mem::take(&mut self.turn.read_scratch);
        scratch.resize(READ_CHUNK, 0);
        let mut reads = 0;
        let open = loop {
            let reading = |c: &&mut Connection| c.closing.is_none() && c.hold == Hold::Reading;
            let Some(conn) = self.conns.get_mut(token).filter(reading) else {
                break true;
            };
            if reads == READS_PER_TURN {
                // Edge-triggered readiness will not fire again: come back next turn.
                self.turn.read_next_turn(token);
                break true;
            }
            reads += 1;
            match conn.read_into(&mut scratch) {
                ReadOutcome::Data(n) => {
                    self.stats.bytes_received += n as u64;
                    self.receive(token, &mut scratch[..n], now);
                }
                ReadOutcome::Drained => break true,
                ReadOutcome::Closed => break false,
            }
        };
        self.turn.read_scratch = scratch;
        if !open {
            self.end_connection(token, Ending::Lost);
        } else if self.conns.get(token).is_some_and(|c| c.tls_has_output()) {
            // TLS handshake messages to send.
            self.mark_flush(token);
        }
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::KeepAlive { token, serial } => self.keep_alive_check(token, serial, now),
                Timer::ConnectDeadline { token, serial } => {
                    // Connected since: its keep-alive timer is already in the heap.
                    if self.conns.get(token).is_some_and(|c| c.session().is_none()) {
                        self.keep_alive_check(token, serial, now);
                    }
                }
                Timer::Sys => self.sys_tick(now),
                Timer::WillDelay {
                    session,
                    generation,
                } => self.will_delay_elapsed(session, generation, now),
                Timer::SessionExpiry {
                    session,
                    generation,
                } => self.session_expired(session, generation, now),
                Timer::Bridge { key } => self.bridge_timer(key, now),
                Timer::ClientRecords => self.commit_records(),
                Timer::Commit => self.commit_progress(now),
                Timer::Services => self.services_due(now),
                Timer::HeldTooLong { session } => self.held_too_long(session, now),
                Timer::Lingered { key, serial } => self.lingered(key, serial),
            }
        }
    }

    /// Forgets CONNECT deadlines of sockets that have connected or closed since, so an
    /// idle broker does not wake up for them.
    fn prune_connect_deadlines(&mut self) {
        let conns = &self.conns;
        self.timers.prune_connect_deadlines(|token, serial| {
            conns
                .get(token)
                .filter(|c| c.serial == serial)
                .is_none_or(|c| c.session().is_some())
        });
    }

    /// Closes a connection silent past its deadline (CONNECT timeout or 1.5 × keep
    /// alive), or sets the timer again for the new deadline.
    fn keep_alive_check(&mut self, token: ConnKey, serial: u64, now: Instant) {
        let Some(conn) = self.conns.get(token).filter(|c| c.serial == serial) else {
            return;
        };
        let v = match conn.phase {
            // Only the CONNECT deadline fires before CONNECT, and only once it has passed.
            Phase::AwaitingConnect if conn.tls.as_ref().is_some_and(|t| t.is_handshaking()) => {
                Violation::new(
                    ReasonCode::MaximumConnectTime,
                    "TLS handshake not finished in time",
                )
            }
            Phase::AwaitingConnect => {
                Violation::new(ReasonCode::MaximumConnectTime, "no CONNECT in time")
            }
            // The CONNECT came in time; its password check is the broker's own work (queued
            // behind others after a restart empties the login cache) and always answers.
            // Closing here would turn the broker's slowness into a failed login.
            Phase::Authenticating => return,
            Phase::Connected { .. } => {
                let Some(deadline) = conn.keep_alive_deadline() else {
                    return;
                };
                if deadline > now {
                    self.timers
                        .schedule(deadline, Timer::KeepAlive { token, serial });
                    return;
                }
                if conn.hold != Hold::Reading {
                    // Held back by backpressure: it is silent because of us.
                    let later = now + (deadline - conn.last_read);
                    self.timers
                        .schedule(later, Timer::KeepAlive { token, serial });
                    return;
                }
                Violation::new(ReasonCode::KeepAliveTimeout, "keep alive timeout")
            }
        };
        self.reject(token, v);
    }

    /// The end of a turn: detach closed connections (wills), flush output, drop sockets.
    fn end_turn(&mut self, now: Instant) {
        let mut closed = Vec::new();
        // A second pass only runs when a failed commit closed more connections.
        for _ in 0..2 {
            let closing = std::mem::take(&mut self.turn.close);
            for &token in &closing {
                if let Some(why) = self
                    .conns
                    .get(token)
                    .and_then(|c| c.closing.as_deref().copied())
                {
                    self.detach(token, why, now);
                }
            }
            closed.extend(closing);
            // A closing connection's held acknowledgements cannot wait for the writer:
            // that turn waits for the disk, as every turn did before the writer.
            let closing_held = closed
                .iter()
                .any(|&t| self.conns.get(t).is_some_and(|c| c.held_until().is_some()));
            if self.writes_pending() && closing_held {
                self.sync_store();
            }
            self.hold_bridge_output(self.pending_batch());
            self.commit_window(now);
            if self.turn.close.is_empty() {
                break;
            }
        }
        closed.append(&mut self.turn.close);
        let flush = std::mem::take(&mut self.turn.flush);
        for token in flush {
            self.flush(token);
        }
        self.release_window_waiters();
        self.flush_bridges(now);
        for token in closed {
            if self.conns.contains(token) {
                self.access.pending.remove(&token);
                let conn = self.conns.remove(token);
                if conn.closing.as_ref().is_some_and(|why| why.linger) {
                    self.linger(conn, now);
                } else {
                    self.forget_socket(conn.socket, Some(conn.addr));
                }
            }
        }
    }

    fn flush(&mut self, token: ConnKey) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        conn.in_flush_list = false;
        let flushed = conn.flush(&mut self.stats.bytes_sent);
        if let Err(e) = flushed {
            log::debug!("client {}: write failed: {e}", conn.client_id);
            conn.discard_output();
            self.end_connection(token, Ending::Lost);
            return;
        }
        if conn.pending_output() <= self.config.limits.max_output_buffer {
            conn.clear_backlog();
        }
        let pending = conn.pending_output() > 0;
        if pending != conn.wants_write && conn.closing.is_none() {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .registry
                .reregister(&mut conn.socket, token.token(), interest)
                .is_ok()
            {
                conn.wants_write = pending;
            }
        }
    }

    /// Graceful stop: MQTT 5 clients get DISCONNECT 0x8B, pending output gets a short
    /// grace period to drain, then every socket closes.
    fn stop(&mut self, poll: &mut Poll, events: &mut Events) {
        for token in self.conns.keys() {
            let conn = &mut self.conns[token];
            if conn.session().is_some() {
                send_disconnect(conn, ReasonCode::ServerShuttingDown);
            }
            conn.close_transport(ReasonCode::ServerShuttingDown);
        }
        self.close_store();
        self.stop_bridges(Instant::now());
        for (_, conn) in self.conns.iter_mut() {
            let _ = conn.flush(&mut self.stats.bytes_sent);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.conns.iter().any(|(_, c)| c.pending_output() > 0) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            for (token, conn) in self.conns.iter_mut() {
                if conn.pending_output() > 0 && !conn.wants_write {
                    let _ = poll.registry().reregister(
                        &mut conn.socket,
                        token.token(),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    conn.wants_write = true;
                }
            }
            let _ = poll.poll(events, Some(deadline - now));
            for (_, conn) in self.conns.iter_mut() {
                if conn.flush(&mut self.stats.bytes_sent).is_err() {
                    conn.discard_output();
                }
            }
        }
        for (_, conn) in self.conns.iter_mut() {
            let _ = conn.socket.shutdown(std::net::Shutdown::Both);
        }
        log::info!("stopped");
    }
}
