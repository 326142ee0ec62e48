//! One console connection on the poll loop: its non-blocking socket (under TLS when the
//! console serves HTTPS), the bytes read and not yet parsed, the answer not yet written,
//! and the phase it is in with that phase's deadline. It hands out complete requests, one
//! at a time, and never waits: a slow client only ever costs its own deadlines.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::http::{self, Request};
use crate::http_head::{refuse, Refusal};
use crate::tls;

/// How long a client has for a whole request head, from its first byte (or from the
/// connection's start).
pub const HEAD_TIME: Duration = Duration::from_secs(10);
/// How long a client has for a body once its head has come.
pub const BODY_TIME: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit with no request before it is closed.
pub const IDLE_TIME: Duration = Duration::from_secs(15);
/// How long a client has to take an answer.
pub const SEND_TIME: Duration = Duration::from_secs(10);
/// After a refusal, how long its remaining input is read and dropped before the close,
/// so the answer is not destroyed by a reset.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// Input kept unparsed at most: one head and one body (pipelined requests beyond wait in
/// the kernel).
const MAX_INPUT: usize = http::MAX_HEAD + http::MAX_BODY;
/// Answers queued and unread at most before no further pipelined request is parsed.
const MAX_OUTPUT: usize = 256 * 1024;
/// Bytes read and dropped while lingering at most.
const MAX_LINGER_INPUT: usize = 256 * 1024;

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head; `since` is when the wait began.
    Head { since: Instant, started: bool },
    /// Head read; waiting for `body_len` bytes of body until `until`.
    Body { until: Instant },
    /// A worker has the request; nothing is parsed until its answer comes.
    Busy,
    /// The last answer is queued: send it, then read and drop input for a moment, close.
    Closing { until: Option<Instant> },
}

/// What the poll loop should do with a connection after driving it.
pub enum Step {
    /// Nothing to do until the socket, a worker or the deadline says so.
    Wait,
    /// A complete request for the workers.
    Dispatch(Request),
    /// Drop the connection.
    Close,
}

pub struct Conn {
    socket: TcpStream,
    pub peer: SocketAddr,
    /// The address the client reached us on (a `Host` naming it is ours).
    pub local: IpAddr,
    /// Tells an answer for this connection from one for the connection that had its slot
    /// before.
    pub serial: u64,
    tls: Option<Box<tls::Layer>>,
    input: Vec<u8>,
    output: Vec<u8>,
    /// When the oldest unsent answer byte was queued: the client has [`SEND_TIME`].
    sending_since: Option<Instant>,
    phase: Phase,
    /// The head being waited on for its body.
    pending: Option<Request>,
    /// The client has closed its side.
    eof: bool,
    lingered: usize,
}

impl Conn {
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        local: IpAddr,
        serial: u64,
        tls: Option<tls::TlsSession>,
        now: Instant,
    ) -> Conn {
        Conn {
            socket,
            peer,
            local,
            serial,
            tls: tls.map(|t| Box::new(tls::Layer::new(t))),
            input: Vec::new(),
            output: Vec::new(),
            sending_since: None,
            phase: Phase::Head {
                since: now,
                started: true,
            },
            pending: None,
            eof: false,
            lingered: 0,
        }
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// When this connection must next be looked at, if nothing happens before.
    pub fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Head { since, started } if started || !self.input.is_empty() => {
                Some(since + HEAD_TIME)
            }
            Phase::Head { since, .. } => Some(since + IDLE_TIME),
            Phase::Body { until } => Some(until),
            Phase::Busy => None,
            Phase::Closing { until } => until,
        };
        let sending = self.sending_since.map(|t| t + SEND_TIME);
        match (phase, sending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reads what has come, sends what is queued and moves the request cycle on.
    pub fn drive(&mut self, now: Instant) -> Step {
        if self.read().is_err() || self.write(now).is_err() {
            return Step::Close;
        }
        let step = self.advance(now);
        if self.write(now).is_err() {
            return Step::Close;
        }
        match step {
            Step::Wait if self.finished(now) => Step::Close,
            step => step,
        }
    }

    /// The deadline has passed: answer 408 if a request was under way, else close.
    pub fn expire(&mut self, now: Instant) -> Step {
        if self.sending_since.is_some_and(|t| now >= t + SEND_TIME) {
            log::info!("http client {} did not take its answer in time", self.peer);
            return Step::Close;
        }
        match self.phase {
            Phase::Head { .. } if self.input.is_empty() => Step::Close,
            Phase::Head { .. } => self.refuse(refuse(408, "request head not sent in time"), now),
            Phase::Body { .. } => self.refuse(refuse(408, "request body not sent in time"), now),
            Phase::Closing { .. } => Step::Close,
            Phase::Busy => Step::Wait,
        }
    }

    /// A worker's answer to the request this connection dispatched.
    pub fn answer(&mut self, bytes: Vec<u8>, close: bool, now: Instant) -> Step {
        self.queue(&bytes, now);
        self.phase = if close || self.eof {
            Phase::Closing { until: None }
        } else {
            Phase::Head {
                since: now,
                started: false,
            }
        };
        self.drive(now)
    }

    /// A refusal before any handler ran: logged, answered, and the connection closes.
    pub fn refuse(&mut self, refusal: Refusal, now: Instant) -> Step {
        log::info!(
            "http request from {} refused: {} ({})",
            self.peer,
            refusal.status,
            refusal.reason
        );
        self.pending = None;
        self.queue(&http::refusal_response(refusal), now);
        self.phase = Phase::Closing { until: None };
        match self.write(now) {
            Ok(()) if self.finished(now) => Step::Close,
            Ok(()) => Step::Wait,
            Err(_) => Step::Close,
        }
    }

    /// Parses what the input holds, as far as the phase allows.
    fn advance(&mut self, now: Instant) -> Step {
        if self.output.len() > MAX_OUTPUT {
            return Step::Wait;
        }
        if matches!(self.phase, Phase::Head { started: false, .. }) && !self.input.is_empty() {
            // The first byte of a kept-alive connection's next request starts its clock.
            self.phase = Phase::Head {
                since: now,
                started: true,
            };
        }
        if let Phase::Head { .. } = self.phase {
            match http::parse_head(&self.input) {
                Ok(None) if self.eof && self.input.is_empty() => return Step::Close,
                Ok(None) if self.eof => {
                    return self.refuse(refuse(400, "connection closed inside the head"), now)
                }
                Ok(None) => return Step::Wait,
                Err(refusal) => return self.refuse(refusal, now),
                Ok(Some(request)) => {
                    if request.expects_continue()
                        && self.input.len() < request.head_len + request.body_len
                    {
                        self.queue(b"HTTP/1.1 100 Continue\r\n\r\n", now);
                    }
                    self.pending = Some(request);
                    self.phase = Phase::Body {
                        until: now + BODY_TIME,
                    };
                }
            }
        }
        if let (Phase::Body { .. }, Some(request)) = (self.phase, self.pending.as_ref()) {
            let end = request.head_len + request.body_len;
            if self.input.len() >= end {
                let mut request = self.pending.take().expect("a pending request");
                request.body = self.input[request.head_len..end].to_vec();
                self.input.drain(..end);
                self.phase = Phase::Busy;
                return Step::Dispatch(request);
            }
            if self.eof {
                return self.refuse(refuse(400, "connection closed inside the body"), now);
            }
        }
        Step::Wait
    }

    /// True once a closing connection has sent its answer and its client has gone (or
    /// lingering ended).
    fn finished(&mut self, now: Instant) -> bool {
        let Phase::Closing { until } = self.phase else {
            return false;
        };
        if !self.output.is_empty() || self.tls.as_ref().is_some_and(|t| t.pending() > 0) {
            return false;
        }
        if until.is_none() {
            let _ = self.socket.shutdown(Shutdown::Write);
            self.phase = Phase::Closing {
                until: Some(now + LINGER_TIME),
            };
        }
        self.eof || self.lingered > MAX_LINGER_INPUT
    }

    fn queue(&mut self, bytes: &[u8], now: Instant) {
        if self.output.is_empty() {
            self.sending_since = Some(now);
        }
        self.output.extend_from_slice(bytes);
    }

    /// Reads until the socket has no more (or the input is full); Err when the connection
    /// is broken.
    fn read(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        while !self.eof {
            let closing = matches!(self.phase, Phase::Closing { .. });
            if !closing && self.input.len() >= MAX_INPUT {
                return Ok(());
            }
            match self.socket.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) if closing => self.lingered += n,
                Ok(n) => match self.tls.as_mut() {
                    None => self.input.extend_from_slice(&chunk[..n]),
                    Some(tls) => {
                        if let Err(e) = tls.feed(&chunk[..n]) {
                            log::info!("https connection from {}: {e}", self.peer);
                            return Err(io::Error::other(e.to_string()));
                        }
                        let mut plain = [0u8; 4096];
                        loop {
                            let k = tls.take_plaintext(&mut plain);
                            if k == 0 {
                                break;
                            }
                            self.input.extend_from_slice(&plain[..k]);
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes queued output until done or the socket is full.
    fn write(&mut self, now: Instant) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            tls.encrypt(&mut self.output)
                .map_err(|e| io::Error::other(e.to_string()))?;
            while tls.pending() > 0 {
                match self.socket.write(tls.wire()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => tls.written(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let drained = self.output.is_empty() && tls.pending() == 0;
            self.note_sent(drained, now);
            return Ok(());
        }
        let mut sent = 0;
        while sent < self.output.len() {
            match self.socket.write(&self.output[sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.drain(..sent);
        self.note_sent(self.output.is_empty(), now);
        Ok(())
    }

    fn note_sent(&mut self, drained: bool, now: Instant) {
        if drained {
            self.sending_since = None;
        } else if self.sending_since.is_none() {
            self.sending_since = Some(now);
        }
    }
}
