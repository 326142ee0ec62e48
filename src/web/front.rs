//! The console's front: one non-blocking mio poll loop in the web thread that owns every
//! console connection, reads requests as they trickle in, hands only complete ones to the
//! worker pool and writes the answers back. Each connection has deadlines (the whole head,
//! the body, an idle keep-alive, taking the answer; see [`conn`](super::conn)), and the
//! connections per client address and in total are capped, so a handful of slow sockets
//! costs a few kilobytes and never a thread. A request whose `Host` does not name the
//! console ([`Sites`]) is refused with 421 before any handler sees it.
//!
//! Why not `tiny_http`, which the design first named: its connection pool (0.12) leaves the
//! fifth of a burst of new keep-alive connections unserved until another one closes (five
//! parallel fetches from Chromium against a fresh server: one hangs until another
//! connection closes), and a response cannot close its connection (it refuses a
//! `Connection` header). The front before this one, a fixed set of threads each reading
//! one connection with a per-read timeout, was stalled for as long as they liked by eight
//! sockets sending a byte every few seconds.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::conn::{Conn, Step};
use super::http;
use super::workers::{Done, Job, Pool};
use crate::http_head::{refuse, Refusal};
use crate::origin::Sites;

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// The connection caps: per client address and in total.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_address: usize,
    pub total: usize,
}

/// The poll loop's state.
pub struct Front {
    poll: Poll,
    listener: TcpListener,
    conns: Slab<Conn>,
    per_address: HashMap<IpAddr, usize>,
    caps: Caps,
    /// Addresses refused for the per-address cap since they last went under it: logged once
    /// per episode.
    refusing: HashSet<IpAddr>,
    /// The total cap has refused someone since the count last went under it.
    refusing_all: bool,
    serial: u64,
    pool: Pool,
    done: Receiver<Done>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The Host names the console answers to.
    sites: Sites,
}

impl Front {
    /// Sets up the poll loop on `listener`; the workers start with `start_pool`, which gets
    /// the channel and waker their answers come back through.
    pub fn new(
        listener: std::net::TcpListener,
        caps: Caps,
        tls: Option<Arc<rustls::ServerConfig>>,
        sites: Sites,
        start_pool: impl FnOnce(mpsc::Sender<Done>, Arc<Waker>) -> io::Result<Pool>,
    ) -> io::Result<Front> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (done_tx, done) = mpsc::channel();
        let pool = start_pool(done_tx, waker)?;
        Ok(Front {
            poll,
            listener,
            conns: Slab::new(),
            per_address: HashMap::new(),
            caps,
            refusing: HashSet::new(),
            refusing_all: false,
            serial: 0,
            pool,
            done,
            tls,
            sites,
        })
    }

    /// Runs until the process ends.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::warn!("web console: poll failed: {e}");
                }
                continue;
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(key) => self.drive(key, now),
                }
            }
            self.take_answers(now);
            self.expire(now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().filter_map(|(_, c)| c.deadline()).min()
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut socket, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of file descriptors, say: the listener stays readable, so the
                    // next turn tries again.
                    log::warn!("web console: accept failed: {e}");
                    return;
                }
            };
            if let Err(refusal) = self.admit(peer) {
                if self.tls.is_none() {
                    // A fresh socket's buffer takes this small answer whole.
                    let _ = socket.write(&http::refusal_response(refusal));
                }
                continue;
            }
            let tls = match &self.tls {
                Some(config) => match crate::tls::server(config.clone()) {
                    Ok(session) => Some(session),
                    Err(e) => {
                        log::warn!("https connection from {peer} refused: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("web console: cannot register {peer}: {e}");
                continue;
            }
            let _ = socket.set_nodelay(true);
            let Ok(local) = socket.local_addr() else {
                continue;
            };
            self.serial += 1;
            entry.insert(Conn::new(socket, peer, local.ip(), self.serial, tls, now));
            *self.per_address.entry(peer.ip()).or_insert(0) += 1;
            self.drive(key, now);
        }
    }

    /// Checks the caps for a new connection from `peer`; a refusal is logged once per
    /// episode.
    fn admit(&mut self, peer: SocketAddr) -> Result<(), Refusal> {
        if self.conns.len() >= self.caps.total {
            if !std::mem::replace(&mut self.refusing_all, true) {
                log::warn!(
                    "web console: refusing connections: {} open, the limit \
                     (web_max_connections); logged once until one closes",
                    self.caps.total
                );
            }
            return Err(refuse(503, "too many connections to the console"));
        }
        let from_here = self.per_address.get(&peer.ip()).copied().unwrap_or(0);
        if from_here >= self.caps.per_address {
            if self.refusing.insert(peer.ip()) {
                log::warn!(
                    "web console: refusing connections from {}: {from_here} open, the limit \
                     (web_max_connections_per_address); logged once until one closes",
                    peer.ip()
                );
            }
            return Err(refuse(429, "too many connections from this address"));
        }
        Ok(())
    }

    fn drive(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let step = conn.drive(now);
        self.follow(key, step, now);
    }

    /// Does what a connection's step asks: a complete request goes to the workers if it
    /// names this console in its `Host`.
    fn follow(&mut self, key: usize, step: Step, now: Instant) {
        match step {
            Step::Wait => {}
            Step::Close => self.close(key),
            Step::Dispatch(request) => {
                let conn = &mut self.conns[key];
                let host = request.header("host").unwrap_or_default();
                if !self.sites.host_allowed(host, conn.local) {
                    let refusal = refuse(421, "this console does not answer to that host name");
                    let step = conn.refuse(refusal, now);
                    return self.follow(key, step, now);
                }
                self.pool.send(Job {
                    key,
                    serial: conn.serial,
                    request,
                    peer: conn.peer.ip(),
                    https: conn.is_tls(),
                });
            }
        }
    }

    fn take_answers(&mut self, now: Instant) {
        while let Ok(done) = self.done.try_recv() {
            let Some(conn) = self
                .conns
                .get_mut(done.key)
                .filter(|c| c.serial == done.serial)
            else {
                continue;
            };
            let step = conn.answer(done.bytes, done.close, now);
            self.follow(done.key, step, now);
        }
    }

    fn expire(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(key, _)| key)
            .collect();
        for key in due {
            let step = self.conns[key].expire(now);
            self.follow(key, step, now);
        }
    }

    fn close(&mut self, key: usize) {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(conn.socket());
        let ip = conn.peer.ip();
        if let Some(count) = self.per_address.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
        self.refusing.remove(&ip);
        self.refusing_all = false;
    }
}
