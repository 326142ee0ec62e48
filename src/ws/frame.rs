//! WebSocket frames (RFC 6455 §5.2): the header of a frame a client sends, checked as soon
//! as it is whole and before its payload arrives, and the unmasked frames the server sends.
//! Close codes (§7.4.1) live here too.

/// Longest header a client frame can have: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;
/// Longest header a server frame can have (no mask).
pub const MAX_SERVER_HEADER: usize = 10;
/// Largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A close status code (§7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// The server is going down or the listener was stopped.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// A frame broke RFC 6455.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// A text frame: MQTT travels in binary frames only.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// A close reason that is not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// The MQTT session broke a rule (the MQTT 5 DISCONNECT before it says which).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// A message larger than the broker accepts.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);

    /// Whether a peer may send this code in a Close frame (§7.4.1 and §7.4.2): 1004, 1005,
    /// 1006 and 1015 are reserved, 1016–2999 are unassigned, 3000–4999 are for applications.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// The header of a client frame, whole and checked on its own (the checks that need the
/// frames before it, such as continuation order and message size, are the deframer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Last frame of its message.
    pub fin: bool,
    pub opcode: Opcode,
    /// Payload length.
    pub len: u64,
    /// The client's masking key (every client frame is masked).
    pub mask: [u8; 4],
}

/// A frame the connection cannot go on after: the close code to answer with, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError {
    pub code: CloseCode,
    pub detail: &'static str,
}

impl FrameError {
    pub fn protocol(detail: &'static str) -> FrameError {
        FrameError {
            code: CloseCode::PROTOCOL_ERROR,
            detail,
        }
    }
}

/// Decodes a client frame header from the front of `buf`: `Ok(None)` while it is
/// incomplete, else the header and its length in bytes.
pub fn decode_header(buf: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
    let [first, second, rest @ ..] = buf else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(FrameError::protocol(
            "reserved bits set without an extension",
        ));
    }
    let opcode =
        Opcode::from_bits(first & 0x0F).ok_or(FrameError::protocol("unknown websocket opcode"))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(FrameError::protocol("unmasked frame from a client"));
    }
    let (len, extended) = match second & 0x7F {
        126 => {
            let Some(bytes) = rest.get(..2) else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes([bytes[0], bytes[1]]));
            if len < 126 {
                return Err(FrameError::protocol("frame length not minimally encoded"));
            }
            (len, 2)
        }
        127 => {
            let Some(bytes) = rest.get(..8) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
            if len >> 63 != 0 {
                return Err(FrameError::protocol("frame length has its top bit set"));
            }
            if len <= u64::from(u16::MAX) {
                return Err(FrameError::protocol("frame length not minimally encoded"));
            }
            (len, 8)
        }
        short => (u64::from(short), 0),
    };
    if opcode.is_control() && (!fin || len > MAX_CONTROL_PAYLOAD) {
        return Err(FrameError::protocol(
            "control frame fragmented or longer than 125 bytes",
        ));
    }
    let Some(mask) = rest.get(extended..extended + 4) else {
        return Ok(None);
    };
    let header = Header {
        fin,
        opcode,
        len,
        mask: mask.try_into().expect("4 bytes"),
    };
    Ok(Some((header, 2 + extended + 4)))
}

/// XORs `data` with the mask, starting `offset` bytes into the masking key's cycle.
pub fn unmask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= mask[(offset + i) % 4];
    }
}

/// The header of an unmasked, final server frame: the bytes and how many of them are used.
pub fn server_header(opcode: Opcode, len: usize) -> ([u8; MAX_SERVER_HEADER], usize) {
    let mut out = [0u8; MAX_SERVER_HEADER];
    out[0] = 0x80 | opcode.bits();
    let used = if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (out, used)
}

/// Appends a whole server frame.
pub fn encode(opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
    let (header, used) = server_header(opcode, payload.len());
    out.extend_from_slice(&header[..used]);
    out.extend_from_slice(payload);
}

/// Appends a Close frame with `code` and no reason text.
pub fn encode_close(code: CloseCode, out: &mut Vec<u8>) {
    encode(Opcode::Close, &code.0.to_be_bytes(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<Option<(Header, usize)>, FrameError> {
        decode_header(bytes)
    }

    #[test]
    fn a_masked_binary_frame_header_decodes_from_golden_bytes() {
        // RFC 6455 §5.7's masked "Hello", as a binary frame.
        let bytes = [
            0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, len) = header(&bytes).unwrap().unwrap();
        assert_eq!(len, 6);
        assert_eq!(
            h,
            Header {
                fin: true,
                opcode: Opcode::Binary,
                len: 5,
                mask: [0x37, 0xfa, 0x21, 0x3d],
            }
        );
        let mut payload = bytes[6..].to_vec();
        unmask(&mut payload, h.mask, 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn unmasking_can_resume_mid_key() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut whole = *b"Hello, websocket";
        unmask(&mut whole, mask, 0);
        let mut split = whole;
        let (a, b) = split.split_at_mut(5);
        unmask(a, mask, 0);
        unmask(b, mask, 5);
        assert_eq!(&split, b"Hello, websocket");
    }

    #[test]
    fn extended_lengths_decode() {
        let mut two = vec![0x02, 0xFE, 0x01, 0x00];
        two.extend([1, 2, 3, 4]);
        let (h, len) = header(&two).unwrap().unwrap();
        assert_eq!(
            (h.len, h.fin, h.opcode, len),
            (256, false, Opcode::Binary, 8)
        );
        // Truncated anywhere before the end of the mask: not yet a header.
        for cut in 0..two.len() {
            assert_eq!(header(&two[..cut]), Ok(None), "cut at {cut}");
        }

        let mut eight = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0];
        eight.extend([9, 9, 9, 9]);
        let (h, len) = header(&eight).unwrap().unwrap();
        assert_eq!((h.len, len, h.mask), (65_536, 14, [9; 4]));
    }

    #[test]
    fn broken_headers_are_protocol_errors() {
        let cases: [(&[u8], &str); 8] = [
            (&[0xC2, 0x80, 0, 0, 0, 0], "reserved bits"),
            (&[0x83, 0x80, 0, 0, 0, 0], "unknown websocket opcode"),
            (&[0x82, 0x05, b'H', b'e'], "unmasked"),
            (&[0x09, 0x80, 0, 0, 0, 0], "control frame fragmented"),
            (&[0x89, 0xFE, 0, 126, 0, 0, 0, 0], "control frame"),
            (&[0x82, 0xFE, 0, 125, 0, 0, 0, 0], "minimally"),
            (&[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], "minimally"),
            (&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], "top bit"),
        ];
        for (bytes, detail) in cases {
            let e = header(bytes).unwrap_err();
            assert_eq!(e.code, CloseCode::PROTOCOL_ERROR, "{bytes:02x?}");
            assert!(e.detail.contains(detail), "{bytes:02x?}: {}", e.detail);
        }
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        let mut out = Vec::new();
        encode(Opcode::Binary, b"Hello", &mut out);
        assert_eq!(out, [0x82, 0x05, b'H', b'e', b'l', b'l', b'o']);

        let (h, used) = server_header(Opcode::Binary, 125);
        assert_eq!(&h[..used], [0x82, 125]);
        let (h, used) = server_header(Opcode::Binary, 126);
        assert_eq!(&h[..used], [0x82, 126, 0, 126]);
        let (h, used) = server_header(Opcode::Binary, 65_535);
        assert_eq!(&h[..used], [0x82, 126, 0xFF, 0xFF]);
        let (h, used) = server_header(Opcode::Binary, 65_536);
        assert_eq!(&h[..used], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);

        out.clear();
        encode_close(CloseCode::MESSAGE_TOO_BIG, &mut out);
        assert_eq!(out, [0x88, 0x02, 0x03, 0xF1]);
        out.clear();
        encode(Opcode::Pong, b"hi", &mut out);
        assert_eq!(out, [0x8A, 0x02, b'h', b'i']);
    }

    #[test]
    fn reserved_close_codes_are_not_valid_on_the_wire() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 3000, 4999] {
            assert!(CloseCode(ok).is_valid_on_wire(), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            assert!(!CloseCode(bad).is_valid_on_wire(), "{bad}");
        }
    }
}
