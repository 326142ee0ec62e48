//! A lingering close: once the broker has told a client why it closes the connection (a
//! CONNACK or DISCONNECT reason code, a WebSocket Close), the socket stays open a little
//! longer, detached from MQTT. The rest of the answer is written, TLS's close_notify after
//! it, then the write side is shut (FIN), and whatever the client still sends is read and
//! dropped, until it closes too or a bound of time or bytes is reached. Closing a socket
//! with unread input makes the kernel send a reset, and a client still sending when the
//! reset comes gets "broken pipe" instead of the reason it was sent.
//!
//! A lingering socket costs the others nothing: it keeps no MQTT state, its bytes never
//! reach the decoder, its deadline is one timer, and it still counts toward
//! `max_connections` and `max_connections_per_address` until it is gone.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::client::Connection;
use super::Broker;
use crate::core::keys::{Key, LingerKey, Slab};
use crate::core::timers::Timer;

/// How long a closed connection may linger at most.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much a lingering client may still send before its socket closes anyway.
const LINGER_BYTES: usize = 1024 * 1024;
/// Lingering sockets poll under tokens counting up from here: above every connection's
/// (a `u32` slab key), below the bridges' and the listeners' near `usize::MAX`.
const FIRST: usize = usize::MAX / 2;

/// The socket of a closed connection, finishing its answer and draining its input.
pub struct Lingering {
    socket: TcpStream,
    /// The client's address, counted against `max_connections_per_address` until the
    /// socket is gone; `None` for a bridge's link to its upstream.
    addr: Option<SocketAddr>,
    /// The closed connection's serial, so a timer for an earlier holder of the slot is ignored.
    serial: u64,
    /// The answer's bytes not yet written (framed and encrypted as the transport needs).
    unsent: Vec<u8>,
    /// How much of `unsent` the socket has taken.
    written: usize,
    /// True once the write side is shut.
    shut: bool,
    /// Bytes read and dropped so far.
    drained: usize,
}

impl Lingering {
    /// Writes the rest of the answer, then shuts the write side, and reads and drops
    /// input; false once the socket should close (the client closed, failed, or sent
    /// more than `LINGER_BYTES`).
    fn advance(&mut self, scratch: &mut [u8]) -> bool {
        while self.written < self.unsent.len() {
            match self.socket.write(&self.unsent[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if !self.shut && self.written == self.unsent.len() {
            self.unsent = Vec::new();
            self.written = 0;
            self.shut = true;
            if self.socket.shutdown(Shutdown::Write).is_err() {
                return false;
            }
        }
        loop {
            match self.socket.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    self.drained += n;
                    if self.drained > LINGER_BYTES {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

/// The lingering sockets.
#[derive(Default)]
pub struct Lingerers {
    slab: Slab<LingerKey, Lingering>,
}

impl Lingerers {
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// The lingering socket a poll token belongs to.
    pub fn key_of(&self, token: Token) -> Option<LingerKey> {
        let index = token.0.checked_sub(FIRST)?;
        let key = LingerKey::from_index(u32::try_from(index).ok()? as usize);
        self.slab.contains(key).then_some(key)
    }
}

fn token(key: LingerKey) -> Token {
    Token(FIRST + key.index())
}

impl Broker {
    /// Takes over the socket of a connection closed with an answer, to finish it.
    pub(super) fn linger(&mut self, conn: Connection, now: Instant) {
        let (addr, serial) = (conn.addr, conn.serial);
        let (socket, unsent) = conn.into_last_bytes();
        self.linger_socket(socket, Some(addr), serial, unsent, now);
    }

    /// Takes over a socket (a closed connection's, or a bridge link left on purpose) with
    /// the last bytes it must write; `serial` is never reused by another lingering socket.
    pub(super) fn linger_socket(
        &mut self,
        mut socket: TcpStream,
        addr: Option<SocketAddr>,
        serial: u64,
        unsent: Vec<u8>,
        now: Instant,
    ) {
        let key = self.lingering.slab.vacant_key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .registry
            .reregister(&mut socket, token(key), interest)
            .is_err()
        {
            self.forget_socket(socket, addr);
            return;
        }
        self.lingering.slab.insert(Lingering {
            socket,
            addr,
            serial,
            unsent,
            written: 0,
            shut: false,
            drained: 0,
        });
        self.timers
            .schedule(now + LINGER_TIME, Timer::Lingered { key, serial });
        self.linger_ready(key);
    }

    /// The lingering socket is readable or writable: move it along, close it when done.
    pub(super) fn linger_ready(&mut self, key: LingerKey) {
        let mut scratch = std::mem::take(&mut self.turn.read_scratch);
        scratch.resize(super::client::READ_CHUNK, 0);
        let open = self
            .lingering
            .slab
            .get_mut(key)
            .is_some_and(|l| l.advance(&mut scratch));
        self.turn.read_scratch = scratch;
        if !open {
            self.stop_lingering(key);
        }
    }

    /// Its time is up: the socket closes whatever the client is still sending.
    pub(super) fn lingered(&mut self, key: LingerKey, serial: u64) {
        if self
            .lingering
            .slab
            .get(key)
            .is_some_and(|l| l.serial == serial)
        {
            self.stop_lingering(key);
        }
    }

    fn stop_lingering(&mut self, key: LingerKey) {
        if self.lingering.slab.contains(key) {
            let lingering = self.lingering.slab.remove(key);
            self.forget_socket(lingering.socket, lingering.addr);
        }
    }

    /// Closes a socket for good and, for a client's (`addr`), stops counting it against
    /// its address.
    pub(super) fn forget_socket(&mut self, mut socket: TcpStream, addr: Option<SocketAddr>) {
        let ip = addr.map(|addr| addr.ip());
        if let Some((ip, count)) = ip.and_then(|ip| Some((ip, self.per_address.get_mut(&ip)?))) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&ip);
            }
        }
        let _ = self.registry.deregister(&mut socket);
        let _ = socket.shutdown(Shutdown::Both);
    }
}
