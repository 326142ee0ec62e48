//! One network connection: its socket, read and write buffers, and the MQTT state
//! negotiated at CONNECT.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::alias::{InboundAliases, OutboundAliases};
use crate::protocol::{self, Packet, ProtocolVersion, ReasonCode};

/// Bytes read from the socket per `read` call, into the loop's shared scratch buffer.
pub const READ_CHUNK: usize = 16 * 1024;
/// A connection's buffer larger than this is freed once empty.
const IDLE_BUFFER: usize = 4 * 1024;

/// What one read from a socket gave.
pub enum ReadOutcome {
    Data(usize),
    /// Nothing more for now (`WouldBlock`).
    Drained,
    /// End of stream or an error: the peer is gone.
    Closed,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; no CONNECT yet. Closed if nothing arrives by `deadline`.
    AwaitingConnect { deadline: Instant },
    /// CONNECT received; its password is being checked off the loop. Input waits.
    Authenticating { deadline: Instant },
    /// CONNECT accepted; bound to a session.
    Connected { session: usize },
}

/// Why a connection is being closed, decided by whoever closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub reason: ReasonCode,
    /// Publish the will (every close but a normal DISCONNECT).
    pub publish_will: bool,
    /// Text for the disconnect log line.
    pub detail: &'static str,
}

pub struct Connection {
    pub socket: TcpStream,
    pub addr: SocketAddr,
    /// Unique for the life of the process, unlike the slab key, which is reused.
    pub serial: u64,
    /// True when accepted on a loopback address (anonymous clients allowed by default).
    pub local_is_loopback: bool,
    pub phase: Phase,
    pub version: ProtocolVersion,
    pub client_id: Arc<str>,
    /// Keep alive agreed at CONNECT (seconds, 0 = none).
    pub keep_alive: u16,
    /// When the last whole packet arrived, for the keep-alive check (bytes of an unfinished
    /// packet do not count, so a trickle cannot hold a connection open).
    pub last_read: Instant,
    /// Bytes of an incomplete frame (or of frames waiting for authentication); empty
    /// most of the time, since whole frames are decoded straight from the scratch buffer.
    pub read_buf: Vec<u8>,
    write_buf: Vec<u8>,
    /// How much of `write_buf` the socket has taken already.
    write_pos: usize,
    /// Largest packet the client accepts (MQTT 5 Maximum Packet Size).
    pub max_packet_size: u32,
    /// How many unacknowledged QoS 1/2 messages the client accepts from us.
    pub receive_maximum: u16,
    /// Topic aliases the client set up toward us (alias → topic).
    /// Boxed and made on first use: most clients never use aliases, and an idle
    /// connection should stay small.
    pub inbound_aliases: Option<Box<InboundAliases>>,
    /// Largest alias the client may use (our Topic Alias Maximum).
    pub topic_alias_maximum: u16,
    /// Aliases we set up toward the client (up to its Topic Alias Maximum).
    /// `None` when the client accepts no aliases.
    pub outbound_aliases: Option<Box<OutboundAliases>>,
    /// Inbound QoS 1 publishes whose PUBACK has not been flushed yet, for Receive Maximum
    /// (MQTT 5 only: a 3.1.1 client never agreed to a limit).
    pub unflushed_qos1_acks: usize,
    /// Since when the client has left more than `max_output_buffer` unread.
    pub backlog_since: Option<Instant>,
    /// Set once the connection must close after its pending output is flushed.
    pub closing: Option<CloseReason>,
    /// True while WRITABLE interest is registered (only while output is pending).
    pub wants_write: bool,
    /// True while the connection is listed for a flush at the end of this turn.
    pub in_flush_list: bool,
    /// Counts of the bytes moved, for $SYS.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Connection {
    pub fn new(
        socket: TcpStream,
        addr: SocketAddr,
        serial: u64,
        connect_deadline: Instant,
        now: Instant,
    ) -> Self {
        Connection {
            socket,
            addr,
            serial,
            local_is_loopback: false,
            phase: Phase::AwaitingConnect {
                deadline: connect_deadline,
            },
            version: ProtocolVersion::V5,
            client_id: Arc::from(""),
            keep_alive: 0,
            last_read: now,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            write_pos: 0,
            max_packet_size: protocol::MAX_PACKET_SIZE,
            receive_maximum: u16::MAX,
            inbound_aliases: None,
            topic_alias_maximum: 0,
            outbound_aliases: None,
            unflushed_qos1_acks: 0,
            closing: None,
            backlog_since: None,
            wants_write: false,
            in_flush_list: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    pub fn session(&self) -> Option<usize> {
        match self.phase {
            Phase::Connected { session } => Some(session),
            Phase::AwaitingConnect { .. } | Phase::Authenticating { .. } => None,
        }
    }

    /// When silence means the client is gone: 1.5 × keep alive after the last read.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingConnect { deadline } | Phase::Authenticating { deadline } => {
                Some(deadline)
            }
            Phase::Connected { .. } if self.keep_alive > 0 => {
                Some(self.last_read + Duration::from_millis(u64::from(self.keep_alive) * 1500))
            }
            Phase::Connected { .. } => None,
        }
    }

    /// One `read` from the socket into the loop's scratch buffer.
    pub fn read_into(&mut self, scratch: &mut [u8]) -> ReadOutcome {
        loop {
            return match self.socket.read(scratch) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    self.bytes_in += n as u64;
                    ReadOutcome::Data(n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => ReadOutcome::Closed,
            };
        }
    }

    /// Writes pending output until done or `WouldBlock`. Err means the peer is gone.
    pub fn flush(&mut self) -> io::Result<()> {
        let result = loop {
            let Some(pending) = self
                .write_buf
                .get(self.write_pos..)
                .filter(|p| !p.is_empty())
            else {
                break Ok(());
            };
            match self.socket.write(pending) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.write_pos += n;
                    self.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if self.write_pos == self.write_buf.len() {
            self.discard_output();
        } else if self.write_pos > self.write_buf.len() / 2 {
            // Compact only once most of the buffer is sent: a slow reader costs O(n), not
            // a memmove of the whole backlog on every partial write.
            self.write_buf.drain(..self.write_pos);
            self.write_pos = 0;
        }
        // Lenient on purpose: acks still in the buffer are on their way.
        self.unflushed_qos1_acks = 0;
        result
    }

    /// Bytes queued for the socket and not yet written.
    pub fn pending_output(&self) -> usize {
        self.write_buf.len() - self.write_pos
    }

    /// Forgets unsent output (the peer is gone, or it must not be acknowledged).
    pub fn discard_output(&mut self) {
        self.write_buf.clear();
        self.write_pos = 0;
        if self.write_buf.capacity() > IDLE_BUFFER {
            // An idle connection keeps no big buffer around.
            self.write_buf = Vec::new();
        }
    }

    /// Appends one packet to the write buffer; returns its size.
    pub fn send(&mut self, packet: &Packet<'_>) -> usize {
        protocol::encode(packet, self.version, &mut self.write_buf)
    }
}
