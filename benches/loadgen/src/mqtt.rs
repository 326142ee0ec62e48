//! A minimal blocking MQTT 5 / 3.1.1 client: just the packets the load needs.
//!
//! CONNECT/CONNACK, PUBLISH at QoS 0 and 1 with PUBACK, SUBSCRIBE/SUBACK,
//! PINGREQ/PINGRESP and DISCONNECT over a `std::net::TcpStream`. Outgoing
//! packets are staged in a buffer and leave on `flush`, so a publisher can put
//! several PUBLISHes into one `write`. Incoming packets are read into a
//! growable buffer and handed out as borrowed views.
//!
//! Written here rather than taken from the broker crate so the load generator
//! measures Outpost and Mosquitto through the same, independent code.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::ws;

pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBACK: u8 = 9;
pub const PINGRESP: u8 = 13;

/// Which protocol level the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

impl Version {
    fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }
}

/// What a CONNECT carries.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub version: Version,
    pub client_id: String,
    pub keep_alive: u16,
    pub clean_start: bool,
    /// MQTT 5 Session Expiry Interval in seconds; 0 = the session ends with
    /// the connection (the property is then left out).
    pub session_expiry: u32,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ConnectOptions {
    pub fn new(version: Version, client_id: impl Into<String>) -> Self {
        ConnectOptions {
            version,
            client_id: client_id.into(),
            keep_alive: 60,
            clean_start: true,
            session_expiry: 0,
            username: None,
            password: None,
        }
    }

    /// Asks for a session that outlives the connection, so the broker keeps
    /// (and Outpost stores) its subscriptions and QoS 1 messages: MQTT 5
    /// Session Expiry `secs`, or MQTT 3.1.1 clean session = 0.
    pub fn persistent(mut self, secs: u32) -> Self {
        match self.version {
            Version::V5 => self.session_expiry = secs,
            Version::V311 => self.clean_start = false,
        }
        self
    }
}

/// One received packet, borrowed from the connection's read buffer.
pub struct Incoming<'a> {
    /// The low nibble of the first byte (QoS and flags for PUBLISH).
    pub flags: u8,
    pub body: &'a [u8],
}

/// The parts of a received PUBLISH the load generator looks at.
pub struct PublishView<'a> {
    pub qos: u8,
    pub packet_id: u16,
    pub payload: &'a [u8],
}

impl<'a> Incoming<'a> {
    pub fn publish(&self, version: Version) -> io::Result<PublishView<'a>> {
        let b = self.body;
        let qos = (self.flags >> 1) & 3;
        let tlen = u16_at(b, 0)? as usize;
        let mut at = 2 + tlen;
        if b.len() < at {
            return Err(bad("short PUBLISH topic"));
        }
        let mut packet_id = 0;
        if qos > 0 {
            packet_id = u16_at(b, at)?;
            at += 2;
        }
        if version == Version::V5 {
            let (plen, n) = varint_at(b, at)?;
            at += n + plen;
        }
        let payload = b.get(at..).ok_or_else(|| bad("short PUBLISH"))?;
        Ok(PublishView {
            qos,
            packet_id,
            payload,
        })
    }

    /// The packet id at the start of the body (PUBACK, SUBACK).
    pub fn packet_id(&self) -> io::Result<u16> {
        u16_at(self.body, 0)
    }

    /// The reason codes of a SUBACK (MQTT 3.1.1 return codes are the same
    /// numbers for success: 0, 1, 2).
    pub fn suback_codes(&self, version: Version) -> io::Result<&'a [u8]> {
        let mut at = 2;
        if version == Version::V5 {
            let (plen, n) = varint_at(self.body, at)?;
            at += n + plen;
        }
        self.body.get(at..).ok_or_else(|| bad("short SUBACK"))
    }
}

/// Where a received packet lies in the read buffer.
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    start: usize,
    len: usize,
}

/// A connected client.
pub struct Conn {
    stream: TcpStream,
    pub version: Version,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    out: Vec<u8>,
    next_id: u16,
    /// The read timeout currently set on the socket, to skip redundant
    /// `setsockopt` calls.
    timeout: Option<Duration>,
    /// Set for MQTT over WebSocket: output leaves in binary frames, input is unwrapped.
    ws: Option<Box<ws::Deframer>>,
}

impl Conn {
    /// Connects, sends CONNECT and waits for a successful CONNACK.
    pub fn connect(addr: SocketAddr, opts: &ConnectOptions) -> io::Result<Conn> {
        let mut c = Conn::open(addr, opts.version)?;
        c.login(opts)?;
        Ok(c)
    }

    /// Like `connect`, over WebSocket (`addr` is a `ws_listen` listener).
    pub fn connect_ws(addr: SocketAddr, opts: &ConnectOptions) -> io::Result<Conn> {
        let mut c = Conn::open(addr, opts.version)?;
        ws::handshake(&mut c.stream)?;
        c.ws = Some(Box::default());
        c.login(opts)?;
        Ok(c)
    }

    /// Opens the TCP connection only; `login` sends the CONNECT.
    pub fn open(addr: SocketAddr, version: Version) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        // A broker that stops reading must not hang the load generator.
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut c = Conn {
            stream,
            version,
            rbuf: vec![0; 256],
            rstart: 0,
            rend: 0,
            out: Vec::with_capacity(128),
            next_id: 0,
            timeout: None,
            ws: None,
        };
        c.set_timeout(Some(Duration::from_secs(30)))?;
        Ok(c)
    }

    /// Sends CONNECT on an open connection and waits for a successful CONNACK.
    pub fn login(&mut self, opts: &ConnectOptions) -> io::Result<()> {
        self.queue_connect(opts);
        self.flush()?;
        let p = self.expect(CONNACK)?;
        let code = *p.body.get(1).ok_or_else(|| bad("short CONNACK"))?;
        if code != 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("CONNACK refused with code {code:#04x}"),
            ));
        }
        Ok(())
    }

    /// The next packet id, skipping 0.
    pub fn next_packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }

    /// Sets the socket read timeout (`None` blocks forever).
    pub fn set_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        let t = t.map(|d| d.max(Duration::from_micros(100)));
        if t != self.timeout {
            self.stream.set_read_timeout(t)?;
            self.timeout = t;
        }
        Ok(())
    }

    /// Subscribes to one filter and waits for its SUBACK.
    pub fn subscribe(&mut self, filter: &str, qos: u8) -> io::Result<()> {
        let id = self.next_packet_id();
        let mut body = Vec::with_capacity(filter.len() + 8);
        body.extend_from_slice(&id.to_be_bytes());
        if self.version == Version::V5 {
            body.push(0);
        }
        put_str(&mut body, filter.as_bytes());
        body.push(qos);
        self.queue_packet(0x82, &body);
        self.flush()?;
        loop {
            let version = self.version;
            let f = self.expect_frame()?;
            if f.kind != SUBACK {
                // A retained or early message may come first; skip it.
                continue;
            }
            let p = self.view(&f);
            if p.packet_id()? != id {
                return Err(bad("SUBACK for another packet id"));
            }
            let codes = p.suback_codes(version)?;
            return match codes.first() {
                Some(&c) if c <= 2 => Ok(()),
                other => Err(bad(&format!("subscription refused: {other:?}"))),
            };
        }
    }

    fn queue_connect(&mut self, o: &ConnectOptions) {
        let mut body = Vec::with_capacity(64);
        put_str(&mut body, b"MQTT");
        body.push(o.version.level());
        let mut flags = 0u8;
        if o.clean_start {
            flags |= 0x02;
        }
        if o.username.is_some() {
            flags |= 0x80;
        }
        if o.password.is_some() {
            flags |= 0x40;
        }
        body.push(flags);
        body.extend_from_slice(&o.keep_alive.to_be_bytes());
        if o.version == Version::V5 {
            if o.session_expiry > 0 {
                // Properties: 5 bytes, Session Expiry Interval (0x11).
                body.extend_from_slice(&[5, 0x11]);
                body.extend_from_slice(&o.session_expiry.to_be_bytes());
            } else {
                body.push(0); // no properties
            }
        }
        put_str(&mut body, o.client_id.as_bytes());
        if let Some(u) = &o.username {
            put_str(&mut body, u.as_bytes());
        }
        if let Some(p) = &o.password {
            put_str(&mut body, p.as_bytes());
        }
        self.queue_packet(0x10, &body);
    }

    /// Stages a PUBLISH; `packet_id` must be non-zero for QoS 1.
    pub fn queue_publish(&mut self, topic: &str, qos: u8, packet_id: u16, payload: &[u8]) {
        let props = usize::from(self.version == Version::V5);
        let pid = if qos > 0 { 2 } else { 0 };
        let len = 2 + topic.len() + pid + props + payload.len();
        self.out.push(0x30 | (qos << 1));
        put_varint(&mut self.out, len);
        put_str(&mut self.out, topic.as_bytes());
        if qos > 0 {
            self.out.extend_from_slice(&packet_id.to_be_bytes());
        }
        if props == 1 {
            self.out.push(0);
        }
        self.out.extend_from_slice(payload);
    }

    /// Stages a PUBLISH with RETAIN set.
    pub fn queue_publish_retained(&mut self, topic: &str, qos: u8, packet_id: u16, payload: &[u8]) {
        let first = self.out.len();
        self.queue_publish(topic, qos, packet_id, payload);
        self.out[first] |= 1;
    }

    /// Stages a PUBACK (success, short form in both versions).
    pub fn queue_puback(&mut self, packet_id: u16) {
        self.out.push(0x40);
        self.out.push(2);
        self.out.extend_from_slice(&packet_id.to_be_bytes());
    }

    pub fn queue_pingreq(&mut self) {
        self.out.extend_from_slice(&[0xC0, 0]);
    }

    pub fn queue_disconnect(&mut self) {
        self.out.extend_from_slice(&[0xE0, 0]);
    }

    fn queue_packet(&mut self, first: u8, body: &[u8]) {
        self.out.push(first);
        put_varint(&mut self.out, body.len());
        self.out.extend_from_slice(body);
    }

    /// Writes everything staged.
    /// Works on blocking and non-blocking sockets alike: a full socket buffer
    /// is waited out, for at most 10 s.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.ws.is_some() && !self.out.is_empty() {
            self.out = ws::frame(&self.out);
        }
        let mut written = 0;
        let mut stuck_since = None;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    stuck_since = None;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let since = *stuck_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > Duration::from_secs(10) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "broker has not read for 10 s",
                        ));
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        Ok(())
    }

    /// For event-driven use: reads then end with `None` at `WouldBlock`.
    pub fn set_nonblocking(&mut self) -> io::Result<()> {
        self.stream.set_nonblocking(true)
    }

    /// Back to blocking reads (with `set_timeout`) after event-driven use.
    pub fn set_blocking(&mut self) -> io::Result<()> {
        self.stream.set_nonblocking(false)
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.as_raw_fd()
    }

    /// Sends DISCONNECT and closes; errors are ignored (the peer may be gone).
    pub fn disconnect(mut self) {
        self.queue_disconnect();
        let _ = self.flush();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Closes the socket without DISCONNECT, as a dropped link would.
    pub fn drop_link(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The next whole packet, or `None` when the read timeout passes first;
    /// end of stream is an `UnexpectedEof` error. Returns where the packet
    /// lies in the read buffer (see `view`), valid until the next read.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some((kind, flags, hdr, len)) = self.whole_frame()? {
                let start = self.rstart + hdr;
                self.rstart = start + len;
                return Ok(Some(Frame {
                    kind,
                    flags,
                    start,
                    len,
                }));
            }
            // Anything staged (acks, say) leaves before we wait for more.
            self.flush()?;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// A packet already in the read buffer, without touching the socket.
    pub fn try_frame(&mut self) -> io::Result<Option<Frame>> {
        Ok(self.whole_frame()?.map(|(kind, flags, hdr, len)| {
            let start = self.rstart + hdr;
            self.rstart = start + len;
            Frame {
                kind,
                flags,
                start,
                len,
            }
        }))
    }

    /// The packet a `Frame` points at.
    pub fn view(&self, f: &Frame) -> Incoming<'_> {
        Incoming {
            flags: f.flags,
            body: &self.rbuf[f.start..f.start + f.len],
        }
    }

    /// Reads until a packet of `kind` arrives, skipping PUBLISHes and failing
    /// on anything else.
    fn expect(&mut self, kind: u8) -> io::Result<Incoming<'_>> {
        loop {
            let f = self.expect_frame()?;
            if f.kind == kind {
                return Ok(self.view(&f));
            }
            if f.kind != PUBLISH {
                return Err(bad(&format!("expected packet {kind}, got {}", f.kind)));
            }
        }
    }

    fn expect_frame(&mut self) -> io::Result<Frame> {
        match self.read_frame()? {
            Some(f) => Ok(f),
            None => Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time")),
        }
    }

    /// Header info of a whole frame at `rstart`: (kind, flags, header length,
    /// body length).
    fn whole_frame(&mut self) -> io::Result<Option<(u8, u8, usize, usize)>> {
        let avail = &self.rbuf[self.rstart..self.rend];
        if avail.len() < 2 {
            return Ok(None);
        }
        let mut len = 0usize;
        let mut shift = 0;
        let mut i = 1;
        loop {
            let Some(&b) = avail.get(i) else {
                return Ok(None);
            };
            len |= ((b & 0x7F) as usize) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 21 {
                return Err(bad("bad remaining length"));
            }
        }
        if avail.len() < i + len {
            // Make room for the whole frame.
            if self.rstart + i + len > self.rbuf.len() {
                self.compact(i + len);
            }
            return Ok(None);
        }
        Ok(Some((avail[0] >> 4, avail[0] & 0x0F, i, len)))
    }

    fn compact(&mut self, need: usize) {
        self.rbuf.copy_within(self.rstart..self.rend, 0);
        self.rend -= self.rstart;
        self.rstart = 0;
        if self.rbuf.len() < need {
            self.rbuf.resize(need.next_power_of_two(), 0);
        }
    }

    /// One `read` into the buffer; false on timeout.
    fn fill(&mut self) -> io::Result<bool> {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        if self.rend == self.rbuf.len() {
            if self.rstart > 0 {
                self.compact(0);
            } else {
                let n = (self.rbuf.len() * 2)
                    .min(1 << 20)
                    .max(self.rbuf.len() + 256);
                self.rbuf.resize(n, 0);
            }
        }
        // Grow small buffers once traffic flows, so busy readers do few reads.
        if self.rbuf.len() < 65536 && self.rend > self.rbuf.len() / 2 {
            self.rbuf.resize(self.rbuf.len() * 2, 0);
        }
        match self.stream.read(&mut self.rbuf[self.rend..]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "broker closed the connection",
            )),
            Ok(n) => {
                self.rend += match self.ws.as_mut() {
                    Some(ws) => ws.deframe(&mut self.rbuf[self.rend..self.rend + n])?,
                    None => n,
                };
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> io::Result<u16> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(bad("short packet")),
    }
}

fn varint_at(b: &[u8], mut at: usize) -> io::Result<(usize, usize)> {
    let mut n = 0usize;
    let mut shift = 0;
    let start = at;
    loop {
        let byte = *b.get(at).ok_or_else(|| bad("short varint"))?;
        n |= ((byte & 0x7F) as usize) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            return Ok((n, at - start));
        }
        shift += 7;
        if shift > 21 {
            return Err(bad("bad varint"));
        }
    }
}

pub fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}
