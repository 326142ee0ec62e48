//! MQTT over WebSocket for the load client: the upgrade request, masked binary frames out,
//! and the broker's frames unwrapped in place in the read buffer. Written apart from the
//! broker crate, like `mqtt`, so the load measures Outpost through independent code.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::mqtt::bad;

/// Every frame uses this mask; the bench measures the broker, not the mask's randomness.
const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// Sends the upgrade request for `/mqtt` and waits for the 101 answer.
pub fn handshake(stream: &mut TcpStream) -> io::Result<()> {
    let host = stream.peer_addr()?;
    write!(
        stream,
        "GET /mqtt HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: the broker sends nothing after the answer until CONNECT, and this way
    // nothing after it is read by accident.
    while !answer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(bad("closed during the websocket handshake"));
        }
        answer.push(byte[0]);
    }
    if !answer.starts_with(b"HTTP/1.1 101 ") {
        return Err(bad(&format!(
            "websocket handshake refused: {}",
            String::from_utf8_lossy(&answer)
                .lines()
                .next()
                .unwrap_or("")
        )));
    }
    Ok(())
}

/// `payload` as one masked binary frame.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x82);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Where the broker's frames are between reads.
#[derive(Default)]
pub struct Deframer {
    /// A frame header split across reads.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
}

impl Deframer {
    /// Moves the payloads of the frames in `buf` (fresh bytes) to its front; returns how
    /// many bytes of MQTT that made. Only binary frames are expected from the broker.
    pub fn deframe(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (mut read, mut write) = (0, 0);
        while read < buf.len() {
            if self.remaining == 0 {
                self.header.push(buf[read]);
                read += 1;
                if let Some(len) = payload_len(&self.header)? {
                    self.remaining = len;
                    self.header.clear();
                }
                continue;
            }
            let take = self.remaining.min((buf.len() - read) as u64) as usize;
            buf.copy_within(read..read + take, write);
            read += take;
            write += take;
            self.remaining -= take as u64;
        }
        Ok(write)
    }
}

/// The payload length once `header` is a whole server frame header.
fn payload_len(header: &[u8]) -> io::Result<Option<u64>> {
    let [first, second, rest @ ..] = header else {
        return Ok(None);
    };
    if first & 0x0F != 0x2 || second & 0x80 != 0 {
        return Err(bad(&format!(
            "unexpected websocket frame {first:#04x} {second:#04x}"
        )));
    }
    Ok(match second & 0x7F {
        126 => (rest.len() == 2).then(|| u64::from(u16::from_be_bytes([rest[0], rest[1]]))),
        127 => (rest.len() == 8).then(|| u64::from_be_bytes(rest.try_into().unwrap())),
        n => Some(u64::from(n)),
    })
}
