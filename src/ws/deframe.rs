//! Turns the bytes a client sends into the MQTT byte stream they carry, in place: each data
//! frame's payload is unmasked and moved to the front of the same buffer, so the MQTT
//! decoder reads it from there as it reads a TCP connection's bytes, whatever the frame
//! boundaries (an MQTT packet split over frames, several packets in one frame).
//!
//! Streaming: a frame's payload is passed on as it arrives, so the state between reads is
//! at most a split header (14 bytes) and a split control frame's payload (125 bytes),
//! never a whole frame.

use super::frame::{self, CloseCode, FrameError, Header, Opcode, MAX_HEADER};

/// Where a connection's inbound frames are, between reads.
#[derive(Debug, Default)]
pub struct Deframer {
    /// Bytes of a frame header split across reads.
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// The frame whose payload is arriving.
    frame: Option<Arriving>,
    /// A data message is in progress (its final frame has not come yet).
    in_message: bool,
    /// Bytes so far of the data message in progress, for the size limit.
    message: u32,
    /// A control frame's payload, collected until whole (made only when one is split).
    // The box keeps an idle connection 16 bytes smaller.
    #[allow(clippy::box_collection)]
    control: Option<Box<Vec<u8>>>,
}

/// A frame whose header is in and whose payload is (partly) still to come; kept small, as
/// every idle WebSocket connection holds one slot for it.
#[derive(Debug, Clone, Copy)]
struct Arriving {
    opcode: Opcode,
    mask: [u8; 4],
    /// Payload bytes still to come (a data frame is at most `max_message`, a control
    /// frame 125 bytes, so this fits).
    remaining: u32,
    /// Payload bytes passed so far, modulo 4: where in the mask the next byte starts.
    offset: u8,
}

/// What one call made of the bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deframed {
    /// MQTT bytes now at the front of the buffer.
    pub data: usize,
    /// The payload of the last Ping seen, to answer with a Pong (§5.5.3 allows answering
    /// only the most recent one).
    pub ping: Option<Vec<u8>>,
    /// The connection cannot go on; bytes after this point were not looked at.
    pub end: Option<PeerEnd>,
}

/// Why the client's side of the stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEnd {
    /// A Close frame with this code (if it had one); the close handshake answers it.
    Closed(Option<CloseCode>),
    /// A frame the connection cannot go on after.
    Broken(FrameError),
}

impl Deframer {
    /// Unwraps the frames in `buf` (fresh bytes from the socket), moving the data payloads
    /// to the front. A data message larger than `max_message` bytes closes with 1009.
    pub fn deframe(&mut self, buf: &mut [u8], max_message: u32) -> Deframed {
        let mut out = Deframed::default();
        let (mut read, mut write) = (0, 0);
        loop {
            let mut frame = match self.frame {
                Some(frame) => frame,
                None => match self.next_header(&buf[read..]) {
                    Ok((used, header)) => {
                        read += used;
                        let Some(header) = header else {
                            break;
                        };
                        match self.start(&header, max_message) {
                            Ok(frame) => frame,
                            Err(e) => {
                                out.end = Some(PeerEnd::Broken(e));
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        out.end = Some(PeerEnd::Broken(e));
                        break;
                    }
                },
            };
            let take = (frame.remaining as usize).min(buf.len() - read);
            let offset = usize::from(frame.offset);
            if frame.opcode.is_control() {
                let payload = &mut buf[read..read + take];
                frame::unmask(payload, frame.mask, offset);
                self.control
                    .get_or_insert_with(Box::default)
                    .extend_from_slice(payload);
            } else {
                buf.copy_within(read..read + take, write);
                frame::unmask(&mut buf[write..write + take], frame.mask, offset);
                write += take;
            }
            read += take;
            frame.remaining -= take as u32;
            frame.offset = ((offset + take) % 4) as u8;
            if frame.remaining > 0 {
                self.frame = Some(frame);
                break;
            }
            self.frame = None;
            if let Some(end) = self.finish(frame.opcode, &mut out) {
                out.end = Some(end);
                break;
            }
        }
        out.data = write;
        out
    }

    /// Completes the header at the front of `input` with what earlier reads left: the
    /// bytes of `input` it used, and the header once whole.
    fn next_header(&mut self, input: &[u8]) -> Result<(usize, Option<Header>), FrameError> {
        if self.header_len == 0 {
            // The usual case: the whole header is in this read; nothing is copied.
            return Ok(match frame::decode_header(input)? {
                Some((header, len)) => (len, Some(header)),
                None => {
                    self.header[..input.len()].copy_from_slice(input);
                    self.header_len = input.len() as u8;
                    (input.len(), None)
                }
            });
        }
        let mut used = 0;
        while used < input.len() && usize::from(self.header_len) < MAX_HEADER {
            self.header[usize::from(self.header_len)] = input[used];
            self.header_len += 1;
            used += 1;
            if let Some((header, _)) =
                frame::decode_header(&self.header[..usize::from(self.header_len)])?
            {
                self.header_len = 0;
                return Ok((used, Some(header)));
            }
        }
        Ok((used, None))
    }

    /// The checks a header needs the frames before it for; starts the frame (and the
    /// message it may open).
    fn start(&mut self, header: &Header, max_message: u32) -> Result<Arriving, FrameError> {
        let arriving = |remaining: u64| Arriving {
            opcode: header.opcode,
            mask: header.mask,
            remaining: remaining as u32,
            offset: 0,
        };
        match header.opcode {
            Opcode::Text => {
                return Err(FrameError {
                    code: CloseCode::UNSUPPORTED_DATA,
                    detail: "text frame (MQTT needs binary frames)",
                })
            }
            Opcode::Binary if self.in_message => {
                return Err(FrameError::protocol(
                    "new message before the last one's final frame",
                ))
            }
            Opcode::Continuation if !self.in_message => {
                return Err(FrameError::protocol("continuation frame outside a message"))
            }
            Opcode::Binary | Opcode::Continuation => {}
            // At most 125 bytes (checked with the header).
            Opcode::Close | Opcode::Ping | Opcode::Pong => return Ok(arriving(header.len)),
        }
        let so_far = if self.in_message { self.message } else { 0 };
        let size = u64::from(so_far).saturating_add(header.len);
        let size = u32::try_from(size)
            .ok()
            .filter(|&size| size <= max_message)
            .ok_or(FrameError {
                code: CloseCode::MESSAGE_TOO_BIG,
                detail: "websocket message larger than max_packet_size",
            })?;
        self.in_message = !header.fin;
        self.message = size;
        Ok(arriving(header.len))
    }

    /// A frame's payload is all in: answers control frames.
    fn finish(&mut self, opcode: Opcode, out: &mut Deframed) -> Option<PeerEnd> {
        if !opcode.is_control() {
            return None;
        }
        let payload = self.control.take().map(|b| *b).unwrap_or_default();
        match opcode {
            Opcode::Ping => out.ping = Some(payload),
            Opcode::Close => return Some(close_frame(&payload)),
            _ => {}
        }
        None
    }
}

/// What a Close frame's payload says (§5.5.1): nothing, or a code and UTF-8 reason text.
fn close_frame(payload: &[u8]) -> PeerEnd {
    match payload {
        [] => PeerEnd::Closed(None),
        [_] => PeerEnd::Broken(FrameError::protocol("close frame with a 1-byte payload")),
        [high, low, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*high, *low]));
            if !code.is_valid_on_wire() {
                PeerEnd::Broken(FrameError::protocol("close frame with a reserved code"))
            } else if std::str::from_utf8(reason).is_err() {
                PeerEnd::Broken(FrameError {
                    code: CloseCode::INVALID_PAYLOAD,
                    detail: "close reason is not UTF-8",
                })
            } else {
                PeerEnd::Closed(Some(code))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    const LIMIT: u32 = 1024;

    /// A masked client frame.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend(MASK);
        let mut masked = payload.to_vec();
        frame::unmask(&mut masked, MASK, 0);
        out.extend(masked);
        out
    }

    fn binary(payload: &[u8]) -> Vec<u8> {
        client_frame(0x82, payload)
    }

    /// Deframes `bytes` in reads of at most `chunk` bytes; the MQTT bytes and the last result.
    fn run(d: &mut Deframer, bytes: &[u8], chunk: usize) -> (Vec<u8>, Deframed) {
        let mut data = Vec::new();
        let mut last = Deframed::default();
        for piece in bytes.chunks(chunk) {
            let mut buf = piece.to_vec();
            last = d.deframe(&mut buf, LIMIT);
            data.extend_from_slice(&buf[..last.data]);
            if last.end.is_some() {
                break;
            }
        }
        (data, last)
    }

    #[test]
    fn golden_frame_from_rfc_6455() {
        // §5.7: a single-frame masked text message "Hello", here as binary.
        let mut buf = vec![
            0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let out = Deframer::default().deframe(&mut buf, LIMIT);
        assert_eq!(out.data, 5);
        assert_eq!(&buf[..5], b"Hello");
        assert_eq!((out.ping, out.end), (None, None));
    }

    #[test]
    fn frames_packed_in_one_read_and_split_over_many_give_the_same_stream() {
        // An MQTT PINGREQ and a PUBLISH split over three frames, two of them fragments of
        // one message, then a frame holding two packets.
        let publish = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
        let mut bytes = binary(&[0xC0, 0x00]);
        bytes.extend(client_frame(0x02, &publish[..3]));
        bytes.extend(client_frame(0x80, &publish[3..]));
        let mut two = publish.to_vec();
        two.extend([0xC0, 0x00]);
        bytes.extend(binary(&two));
        bytes.extend(binary(&[]));
        let mut expected = vec![0xC0, 0x00];
        expected.extend(publish);
        expected.extend(two);
        for chunk in 1..=bytes.len() {
            let (data, last) = run(&mut Deframer::default(), &bytes, chunk);
            assert_eq!(data, expected, "reads of {chunk} bytes");
            assert_eq!(last.end, None);
        }
    }

    #[test]
    fn large_frames_stream_through_without_being_held() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = binary(&payload);
        let mut d = Deframer::default();
        let mut data = Vec::new();
        for piece in bytes.chunks(16 * 1024) {
            let mut buf = piece.to_vec();
            let out = d.deframe(&mut buf, 1 << 20);
            data.extend_from_slice(&buf[..out.data]);
            assert!(d.control.is_none() && d.header_len == 0);
        }
        assert_eq!(data, payload);
    }

    #[test]
    fn pings_are_answered_and_pongs_ignored_between_data() {
        let mut bytes = binary(b"ab");
        bytes.extend(client_frame(0x8A, b"unsolicited"));
        bytes.extend(client_frame(0x89, b"first"));
        bytes.extend(binary(b"cd"));
        bytes.extend(client_frame(0x89, b"second"));
        let mut buf = bytes.clone();
        let out = Deframer::default().deframe(&mut buf, LIMIT);
        assert_eq!(&buf[..out.data], b"abcd");
        assert_eq!(out.ping.as_deref(), Some(&b"second"[..]));
        for chunk in 1..bytes.len() {
            let (data, _) = run(&mut Deframer::default(), &bytes, chunk);
            assert_eq!(data, b"abcd", "reads of {chunk} bytes");
        }
    }

    #[test]
    fn a_ping_inside_a_fragmented_message_is_allowed() {
        let mut bytes = client_frame(0x02, b"ab");
        bytes.extend(client_frame(0x89, b""));
        bytes.extend(client_frame(0x80, b"cd"));
        let mut buf = bytes;
        let out = Deframer::default().deframe(&mut buf, LIMIT);
        assert_eq!(&buf[..out.data], b"abcd");
        assert_eq!(out.ping, Some(Vec::new()));
        assert_eq!(out.end, None);
    }

    #[test]
    fn a_close_frame_ends_the_stream_after_the_data_before_it() {
        let mut bytes = binary(b"ab");
        bytes.extend(client_frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
        bytes.extend(binary(b"never"));
        let mut buf = bytes.clone();
        let out = Deframer::default().deframe(&mut buf, LIMIT);
        assert_eq!(&buf[..out.data], b"ab");
        assert_eq!(out.end, Some(PeerEnd::Closed(Some(CloseCode::NORMAL))));

        let mut empty = client_frame(0x88, &[]);
        let out = Deframer::default().deframe(&mut empty, LIMIT);
        assert_eq!(out.end, Some(PeerEnd::Closed(None)));
    }

    fn broken(bytes: &[u8]) -> FrameError {
        let (_, last) = run(&mut Deframer::default(), bytes, bytes.len());
        match last.end {
            Some(PeerEnd::Broken(e)) => e,
            other => panic!("{bytes:02x?}: expected a broken frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_out_of_order_or_malformed_close_with_1002() {
        let mut new_inside_old = client_frame(0x02, b"ab");
        new_inside_old.extend(binary(b"cd"));
        let cases = [
            (client_frame(0x80, b"ab"), "continuation frame outside"),
            (new_inside_old, "new message before"),
            (client_frame(0x88, &[0x03]), "1-byte payload"),
            (client_frame(0x88, &[0x03, 0xED]), "reserved code"),
            (vec![0x82, 0x02, 0xC0, 0x00], "unmasked"),
            (vec![0x92, 0x80, 0, 0, 0, 0], "reserved bits"),
        ];
        for (bytes, detail) in cases {
            let e = broken(&bytes);
            assert_eq!(e.code, CloseCode::PROTOCOL_ERROR, "{detail}");
            assert!(e.detail.contains(detail), "{detail}: {}", e.detail);
        }
    }

    #[test]
    fn text_frames_and_bad_close_reasons_get_their_own_codes() {
        assert_eq!(
            broken(&client_frame(0x81, b"{}")).code,
            CloseCode::UNSUPPORTED_DATA
        );
        assert_eq!(
            broken(&client_frame(0x88, &[0x03, 0xE8, 0xFF])).code,
            CloseCode::INVALID_PAYLOAD
        );
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_reads_never_panic() {
        // A fixed xorshift stream: frame-like bytes (masked headers are common) cut at
        // random points, 2 000 times; whatever they are, the deframer must answer.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let mut d = Deframer::default();
            let len = (next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.get_mut(0) {
                *first = [0x82, 0x02, 0x80, 0x89, 0x88, 0x8A][(next() % 6) as usize];
            }
            if let Some(second) = bytes.get_mut(1) {
                *second |= 0x80;
            }
            let mut at = 0;
            while at < bytes.len() {
                let n = 1 + (next() as usize) % (bytes.len() - at);
                let out = d.deframe(&mut bytes[at..at + n], 64);
                assert!(out.data <= n);
                at += n;
                if out.end.is_some() {
                    break;
                }
            }
        }
    }

    #[test]
    fn oversized_messages_close_with_1009_before_their_payload_arrives() {
        let header_only = &binary(&[0u8; LIMIT as usize + 1])[..8];
        assert_eq!(broken(header_only).code, CloseCode::MESSAGE_TOO_BIG);

        // Fragments count together.
        let mut fragments = client_frame(0x02, &[0u8; 600]);
        fragments.extend(&client_frame(0x80, &[0u8; 600])[..8]);
        assert_eq!(broken(&fragments).code, CloseCode::MESSAGE_TOO_BIG);

        // Exactly the limit is fine, and so is the next message of the same size.
        let mut ok = binary(&[7u8; LIMIT as usize]);
        ok.extend(binary(&[7u8; LIMIT as usize]));
        let (data, last) = run(&mut Deframer::default(), &ok, ok.len());
        assert_eq!((data.len(), last.end), (2 * LIMIT as usize, None));
    }
}
