//! One network connection: its socket, its transport (plain or WebSocket), read and write
//! buffers, and the MQTT state negotiated at CONNECT.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::listeners::ListenerId;
use super::socket_io::{self, Received};
use super::transport::Transport;
use crate::core::alias::{InboundAliases, OutboundAliases};
use crate::core::keys::SessionKey;
use crate::protocol::{self, Packet, ProtocolVersion, ReasonCode};
use crate::tls;

/// Bytes read from the socket per `read` call, into the loop's shared scratch buffer.
pub const READ_CHUNK: usize = 16 * 1024;

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
    /// Accepted; no CONNECT yet. Closed when its CONNECT deadline fires.
    AwaitingConnect,
    /// CONNECT received; its password is being checked off the loop. Input waits.
    /// The CONNECT deadline still applies.
    Authenticating,
    /// CONNECT accepted; bound to this session.
    Connected { session: SessionKey },
}

/// Whether the loop reads a connection (see `backpressure.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Reading,
    /// A PUBLISH of it waits, unhandled at the front of its buffer, for a full queue: its
    /// socket is not read meanwhile.
    Held,
    /// Released: handle the kept frames before reading the socket again.
    Released,
}

/// Why a connection is being closed, decided by whoever closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub reason: ReasonCode,
    /// Publish the will (every close but a normal DISCONNECT).
    pub publish_will: bool,
    /// Text for the disconnect log line.
    pub detail: &'static str,
    /// The broker told the client why (a reason code, a WebSocket Close): the socket
    /// lingers after the close so the answer arrives instead of a reset (`linger.rs`).
    pub linger: bool,
}

/// Output waiting for the socket. Made by the first packet sent and dropped once all of
/// it is written, so an idle connection holds no buffer.
#[derive(Debug, Default)]
struct Output {
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken already.
    pos: usize,
    /// How much of `buf` the transport has framed for the wire (the rest is MQTT bytes
    /// queued since the last flush; plain TCP frames nothing).
    sealed: usize,
    /// Since when the client has left more than `max_output_buffer` unread.
    backlog_since: Option<Instant>,
}

/// What held output waits for before it may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Store batch N is durable.
    Batch(u64),
    /// Message `message` (staged in batch `batch`) is delivered to and acknowledged by
    /// every session it was queued for, or batch `batch` is durable, whichever comes first.
    Delivered { message: u64, batch: u64 },
}

impl Wait {
    /// The batch that, once durable, releases it in any case.
    pub fn batch(self) -> u64 {
        match self {
            Wait::Batch(batch) | Wait::Delivered { batch, .. } => batch,
        }
    }
}

/// MQTT bytes kept back, each part until what it waits for has happened; the parts leave
/// in order (see `commit.rs`).
type HeldOutput = std::collections::VecDeque<(Wait, Vec<u8>)>;

pub struct Connection {
    pub socket: TcpStream,
    pub addr: SocketAddr,
    /// Unique for the life of the process, unlike the slab key, which is reused.
    pub serial: u64,
    /// True when accepted on a loopback address (anonymous clients allowed by default).
    pub local_is_loopback: bool,
    /// True when the broker assigned the client id of an MQTT 3.1.1 client, which has no
    /// way to learn it (so nothing addressed by it can reach the client).
    pub client_id_untold: bool,
    /// The listener it came in on, so stopping that listener can disconnect it.
    pub listener: ListenerId,
    /// The framing between the socket and the MQTT bytes.
    pub transport: Transport,
    pub phase: Phase,
    pub version: ProtocolVersion,
    pub client_id: Arc<str>,
    /// Keep alive agreed at CONNECT (seconds, 0 = none).
    pub keep_alive: u16,
    /// When the last whole packet arrived, for the keep-alive check (bytes of an unfinished
    /// packet do not count, so a trickle cannot hold a connection open).
    pub last_read: Instant,
    /// Bytes of an incomplete frame (or of frames waiting for authentication). Boxed, and
    /// only while there are some: whole frames are decoded straight from the scratch buffer.
    // The box is the point: 8 bytes in every connection instead of a `Vec`'s 24.
    #[allow(clippy::box_collection)]
    read_buf: Option<Box<Vec<u8>>>,
    /// Boxed, and only while output is pending: most connections are idle most of the time.
    output: Option<Box<Output>>,
    /// Output that waits for a store commit to become durable, or for a message to be
    /// delivered (an acknowledgement and everything queued after it). Boxed, and only
    /// while something waits.
    held: Option<Box<HeldOutput>>,
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
    pub unflushed_qos1_acks: u16,
    /// Set once the connection must close after its pending output is flushed.
    /// Boxed: only a closing connection needs it.
    pub closing: Option<Box<CloseReason>>,
    /// True while WRITABLE interest is registered (only while output is pending).
    pub wants_write: bool,
    /// True while the connection is listed for a flush at the end of this turn.
    pub in_flush_list: bool,
    /// True once it was held for sending beyond our Receive Maximum: logged once.
    pub over_window: bool,
    /// The TLS layer between the socket and the MQTT buffers, on a TLS listener's
    /// connections. Boxed: plain connections pay one pointer.
    pub tls: Option<Box<tls::Layer>>,
    /// Held back by backpressure, or just released from it.
    pub hold: Hold,
    /// Bytes read from and written to the socket, shown by the web console. (When it
    /// connected is not kept here: the web console reads it from the client records, so
    /// idle connections stay 8 bytes smaller.)
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// PUBLISH packets taken from and sent to it, for the console's per-client rates.
    pub messages_in: u64,
    pub messages_out: u64,
    /// Its CONNECT's Clean Start (3.1.1: Clean Session) flag, shown by the web console.
    pub clean_start: bool,
}

impl Connection {
    pub fn new(
        socket: TcpStream,
        addr: SocketAddr,
        listener: ListenerId,
        transport: Transport,
        serial: u64,
        now: Instant,
    ) -> Self {
        Connection {
            socket,
            addr,
            serial,
            local_is_loopback: false,
            client_id_untold: false,
            listener,
            transport,
            phase: Phase::AwaitingConnect,
            version: ProtocolVersion::V5,
            client_id: Arc::from(""),
            keep_alive: 0,
            last_read: now,
            read_buf: None,
            output: None,
            held: None,
            max_packet_size: protocol::MAX_PACKET_SIZE,
            receive_maximum: u16::MAX,
            inbound_aliases: None,
            topic_alias_maximum: 0,
            outbound_aliases: None,
            unflushed_qos1_acks: 0,
            over_window: false,
            closing: None,
            wants_write: false,
            in_flush_list: false,
            tls: None,
            hold: Hold::Reading,
            bytes_in: 0,
            bytes_out: 0,
            messages_in: 0,
            messages_out: 0,
            clean_start: false,
        }
    }

    pub fn session(&self) -> Option<SessionKey> {
        match self.phase {
            Phase::Connected { session } => Some(session),
            Phase::AwaitingConnect | Phase::Authenticating => None,
        }
    }

    /// When silence means the client is gone: 1.5 × keep alive after the last read.
    /// `None` before CONNECT (the CONNECT deadline applies) and for keep alive 0.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connected { .. } if self.keep_alive > 0 => {
                Some(self.last_read + Duration::from_millis(u64::from(self.keep_alive) * 1500))
            }
            Phase::Connected { .. } | Phase::AwaitingConnect | Phase::Authenticating => None,
        }
    }

    /// One `read` from the socket into the loop's scratch buffer (through the TLS layer,
    /// if any: then the scratch buffer gets plaintext).
    pub fn read_into(&mut self, scratch: &mut [u8]) -> ReadOutcome {
        match socket_io::read(&mut self.socket, self.tls.as_deref_mut(), scratch) {
            Received::Data(n) => ReadOutcome::Data(n),
            Received::Drained => ReadOutcome::Drained,
            Received::Closed | Received::Failed(_) => ReadOutcome::Closed,
            Received::Tls(e) => {
                log::info!("TLS connection from {}: {e}, closing", self.addr);
                ReadOutcome::Closed
            }
        }
    }

    /// True when the TLS layer has handshake bytes to send (the caller lists a flush).
    pub fn tls_has_output(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.pending() > 0)
    }

    /// Writes pending output until done or `WouldBlock`, adding the bytes written to
    /// `sent`. Err means the peer is gone.
    pub fn flush(&mut self, sent: &mut u64) -> io::Result<()> {
        // Lenient on purpose: acks still in the buffer are on their way. Acks still held
        // for the disk are not: the client keeps counting them.
        if self.held.is_none() {
            self.unflushed_qos1_acks = 0;
        }
        if let Some(why) = self.closing.as_deref().copied() {
            self.close_transport(why.reason);
        }
        if self.tls.is_some() {
            return self.flush_tls(sent);
        }
        let Some(out) = self.output.as_mut() else {
            return Ok(());
        };
        self.transport.seal(&mut out.buf, &mut out.sealed);
        let (n, result) = socket_io::write(&mut self.socket, &out.buf[out.pos..]);
        out.pos += n;
        *sent += n as u64;
        self.bytes_out += n as u64;
        if out.pos == out.buf.len() {
            self.output = None;
        } else if out.pos > out.buf.len() / 2 {
            // Compact only once most of the buffer is sent: a slow reader costs O(n), not
            // a memmove of the whole backlog on every partial write.
            out.buf.drain(..out.pos);
            out.sealed -= out.pos;
            out.pos = 0;
        }
        result
    }

    /// [`Self::flush`] through the TLS layer: the pending plaintext is encrypted (once the
    /// handshake is done), then the ciphertext is written until done or `WouldBlock`.
    fn flush_tls(&mut self, sent: &mut u64) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        // TLS sits under the MQTT or WebSocket bytes: seal them, then encrypt.
        let mut plain = match self.output.as_mut() {
            Some(out) => {
                self.transport.seal(&mut out.buf, &mut out.sealed);
                let plain = out.buf.split_off(out.pos);
                out.buf.clear();
                out.pos = 0;
                plain
            }
            None => Vec::new(),
        };
        let (n, result) = socket_io::write_tls(&mut self.socket, tls, &mut plain);
        *sent += n as u64;
        self.bytes_out += n as u64;
        if let Some(out) = self.output.as_mut() {
            out.buf = plain;
            out.sealed = out.buf.len();
            if out.buf.is_empty() && out.backlog_since.is_none() {
                self.output = None;
            }
        }
        result
    }

    /// True while part of a frame (or frames waiting for authentication) is buffered.
    pub fn has_buffered_input(&self) -> bool {
        self.read_buf.is_some()
    }

    /// Buffers input to decode once more of it has come.
    pub fn buffer_input(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.read_buf
                .get_or_insert_with(Box::default)
                .extend_from_slice(data);
        }
    }

    /// Takes the buffered input, to decode; `keep_input` gives back what is left.
    pub fn take_input(&mut self) -> Vec<u8> {
        self.read_buf.take().map_or_else(Vec::new, |buf| *buf)
    }

    /// Keeps what was left undecoded of `take_input`'s bytes.
    pub fn keep_input(&mut self, buf: Vec<u8>) {
        self.read_buf = (!buf.is_empty()).then(|| Box::new(buf));
    }

    /// Bytes queued for the socket and not yet written.
    pub fn pending_output(&self) -> usize {
        let tls = self.tls.as_ref().map_or(0, |t| t.pending());
        tls + self
            .output
            .as_ref()
            .map_or(0, |out| out.buf.len() - out.pos)
    }

    /// Forgets unsent output, held output too (the peer is gone, or it must not be
    /// acknowledged).
    pub fn discard_output(&mut self) {
        self.output = None;
        self.held = None;
    }

    /// Since when the client has left more than `max_output_buffer` unread, starting
    /// the clock at `now` if it has not started yet (then also true).
    pub fn note_backlog(&mut self, now: Instant) -> (Instant, bool) {
        let out = self.output.get_or_insert_with(Box::default);
        let first = out.backlog_since.is_none();
        (*out.backlog_since.get_or_insert(now), first)
    }

    /// The client has caught up with its backlog (or was never behind).
    pub fn clear_backlog(&mut self) {
        if let Some(out) = self.output.as_mut() {
            out.backlog_since = None;
        }
    }

    /// Ends the transport's own session after the output queued so far (WebSocket: its
    /// Close frame, once), the connection closing for `reason`. Nothing on plain TCP.
    pub fn close_transport(&mut self, reason: ReasonCode) {
        if matches!(self.transport, Transport::Tcp) {
            return;
        }
        let out = self.output.get_or_insert_with(Box::default);
        self.transport.close(reason, &mut out.buf, &mut out.sealed);
    }

    /// Gives up the connection, keeping only its socket and the bytes still owed to it:
    /// the output not yet written (already framed by the transport, whose Close went with
    /// it at the last flush), then, on TLS, the close_notify alert.
    pub fn into_last_bytes(mut self) -> (TcpStream, Vec<u8>) {
        let mut out = Vec::new();
        if let Some(mut pending) = self.output.take() {
            self.transport.seal(&mut pending.buf, &mut pending.sealed);
            out = pending.buf.split_off(pending.pos);
        }
        if let Some(tls) = self.tls.take() {
            out = tls.finish(&mut out);
        }
        (self.socket, out)
    }

    /// True when closing sends the transport's own close message (WebSocket's Close).
    pub fn closes_with_a_frame(&self) -> bool {
        matches!(self.transport, Transport::WebSocket(_))
    }

    /// Appends bytes of the transport's own (a handshake answer, a control frame) after
    /// the output queued so far, which is framed first.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let out = self.output.get_or_insert_with(Box::default);
        self.transport.seal(&mut out.buf, &mut out.sealed);
        out.buf.extend_from_slice(bytes);
        out.sealed = out.buf.len();
    }

    /// Keeps what is sent from now on back until `wait` has happened (and everything held
    /// before it has left). Returns true when nothing was held before (the caller lists
    /// the connection for the release).
    pub fn hold(&mut self, wait: Wait) -> bool {
        let first = self.held.is_none();
        let held = self.held.get_or_insert_with(Box::default);
        if held.back().is_none_or(|(last, _)| *last != wait) {
            held.push_back((wait, Vec::new()));
        }
        first
    }

    /// Moves the held parts whose wait `ready` says is over to the write buffer, in order,
    /// stopping at the first still waiting; true if any moved (the caller lists a flush).
    pub fn release_held(&mut self, ready: impl Fn(Wait) -> bool) -> bool {
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        let mut moved = false;
        while let Some((wait, _)) = held.front() {
            if !ready(*wait) {
                break;
            }
            if let Some((_, bytes)) = held.pop_front() {
                let out = self.output.get_or_insert_with(Box::default);
                out.buf.extend_from_slice(&bytes);
                moved = true;
            }
        }
        if held.is_empty() {
            self.held = None;
        }
        moved
    }

    /// The latest batch the held output waits for, if any is held.
    pub fn held_until(&self) -> Option<u64> {
        self.held
            .as_ref()
            .and_then(|h| h.iter().map(|(wait, _)| wait.batch()).max())
    }

    /// The buffer a packet goes to: behind what is held, if anything is.
    fn packet_buffer(&mut self) -> &mut Vec<u8> {
        match self.held.as_mut().and_then(|h| h.back_mut()) {
            Some((_, bytes)) => bytes,
            None => &mut self.output.get_or_insert_with(Box::default).buf,
        }
    }

    /// Appends one packet to the write buffer (or behind held output); returns its size.
    pub fn send(&mut self, packet: &Packet<'_>) -> usize {
        let version = self.version;
        protocol::encode(packet, version, self.packet_buffer())
    }

    /// Appends one packet if it fits the client's Maximum Packet Size; false if it does not
    /// (nothing is written then).
    pub fn send_within_limit(&mut self, packet: &Packet<'_>) -> bool {
        let limit = self.max_packet_size as usize;
        let version = self.version;
        let written =
            protocol::encode_within(packet, version, limit, self.packet_buffer()).is_some();
        if !written && self.output.as_ref().is_some_and(|out| out.buf.is_empty()) {
            // An idle connection holds no buffer.
            self.output = None;
        }
        written
    }
}
