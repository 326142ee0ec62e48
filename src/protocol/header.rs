//! Fixed header, variable byte integers, the whole-frame check, and the primitive field reader/writers.
use super::{DecodeError, PacketId, ProtocolVersion, ReasonCode};

pub(super) const CONNECT: u8 = 1;
pub(super) const CONNACK: u8 = 2;
pub(super) const PUBLISH: u8 = 3;
pub(super) const PUBACK: u8 = 4;
pub(super) const PUBREC: u8 = 5;
pub(super) const PUBREL: u8 = 6;
pub(super) const PUBCOMP: u8 = 7;
pub(super) const SUBSCRIBE: u8 = 8;
pub(super) const SUBACK: u8 = 9;
pub(super) const UNSUBSCRIBE: u8 = 10;
pub(super) const UNSUBACK: u8 = 11;
pub(super) const PINGREQ: u8 = 12;
pub(super) const PINGRESP: u8 = 13;
pub(super) const DISCONNECT: u8 = 14;
pub(super) const AUTH: u8 = 15;

/// Largest string or binary field a two-byte length can describe.
const MAX_FIELD: usize = u16::MAX as usize;

/// One whole frame at the front of the input buffer.
pub(super) struct Frame<'a> {
    /// Packet type, the high nibble of the first byte.
    pub kind: u8,
    /// The low nibble of the first byte (already checked, except PUBLISH's).
    pub flags: u8,
    /// The variable header and payload: exactly `remaining length` bytes.
    pub body: &'a [u8],
    /// Fixed header plus body.
    pub len: usize,
}

/// Finds one whole frame: `Ok(None)` while bytes are missing, an error as soon as the
/// fixed header shows the frame is invalid or larger than `max_packet_size`.
pub(super) fn check_frame(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Frame<'_>>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let kind = first >> 4;
    let flags = first & 0x0F;
    check_type_and_flags(kind, flags, version)?;
    let Some((remaining, vbi_len)) = parse_vbi(rest)? else {
        return Ok(None);
    };
    // At most 1 + 4 + 268_435_455: no overflow, even on 32-bit targets.
    let len = 1 + vbi_len + remaining as usize;
    if len as u64 > u64::from(max_packet_size) {
        return Err(DecodeError::new(
            ReasonCode::PacketTooLarge,
            "packet exceeds the maximum packet size",
        ));
    }
    let Some(body) = rest.get(vbi_len..vbi_len + remaining as usize) else {
        return Ok(None);
    };
    Ok(Some(Frame {
        kind,
        flags,
        body,
        len,
    }))
}

/// MQTT-2.1.3-1 / 3.1.1 section 2.2.2: reserved flag bits must hold their fixed values.
fn check_type_and_flags(kind: u8, flags: u8, version: ProtocolVersion) -> Result<(), DecodeError> {
    let expected = match kind {
        0 => return Err(DecodeError::malformed("reserved packet type 0")),
        AUTH if version == ProtocolVersion::V311 => {
            return Err(DecodeError::malformed(
                "packet type 15 is reserved in MQTT 3.1.1",
            ))
        }
        PUBLISH => return Ok(()),
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags == expected {
        Ok(())
    } else {
        Err(DecodeError::malformed("invalid fixed header flags"))
    }
}

/// Reads a variable byte integer: `Ok(None)` if `buf` ends before its last byte.
/// More than four bytes, or a non-minimal encoding (MQTT-1.5.5-1), is malformed.
pub(super) fn parse_vbi(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value = 0u32;
    for (i, &b) in buf.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(DecodeError::malformed(
                    "variable byte integer not minimally encoded",
                ));
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::malformed(
            "variable byte integer exceeds 4 bytes",
        ))
    } else {
        Ok(None)
    }
}

/// Bytes `put_vbi` writes for `value`.
pub(super) fn vbi_len(mut value: usize) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

/// Writes a variable byte integer. Values above 268 435 455 cannot be represented in
/// four bytes; they are the caller's error and come out as a longer, invalid integer.
pub(super) fn put_vbi(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(super) fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub(super) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// A field longer than 65 535 bytes cannot be encoded; it is cut there, consistently in
/// `binary_len` and `put_binary`, so that the frame stays well formed.
fn clamp(bytes: &[u8]) -> &[u8] {
    bytes.get(..MAX_FIELD).unwrap_or(bytes)
}

/// Bytes `put_binary` (or `put_str`) writes.
pub(super) fn binary_len(bytes: &[u8]) -> usize {
    2 + clamp(bytes).len()
}

/// Writes two-byte-length-prefixed binary data.
pub(super) fn put_binary(out: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = clamp(bytes);
    put_u16(out, bytes.len() as u16);
    out.extend_from_slice(bytes);
}

/// Writes a UTF-8 encoded string.
pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_binary(out, s.as_bytes());
}

/// Reads fields from a frame body; running out of bytes is a malformed packet.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(DecodeError::malformed(
            "field runs past the end of the packet",
        ))?;
        self.buf = tail;
        Ok(head)
    }

    /// Everything left.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = *self.array::<1>()?;
        Ok(b)
    }

    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(*self.array::<2>()?))
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(*self.array::<4>()?))
    }

    fn array<const N: usize>(&mut self) -> Result<&'a [u8; N], DecodeError> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(DecodeError::malformed(
                "field runs past the end of the packet",
            ))?;
        self.buf = tail;
        Ok(head)
    }

    /// A variable byte integer inside a body: it must end inside the body.
    pub(super) fn vbi(&mut self) -> Result<u32, DecodeError> {
        let (value, n) = parse_vbi(self.buf)?.ok_or(DecodeError::malformed(
            "variable byte integer runs past the end of the packet",
        ))?;
        self.take(n)?;
        Ok(value)
    }

    /// Two-byte length followed by that many bytes.
    pub(super) fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A UTF-8 encoded string: valid UTF-8 (so no surrogates, MQTT-1.5.4-1) without
    /// U+0000 (MQTT-1.5.4-2).
    pub(super) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.binary()?;
        if bytes.contains(&0) {
            return Err(DecodeError::malformed("string contains U+0000"));
        }
        std::str::from_utf8(bytes).map_err(|_| DecodeError::malformed("string is not valid UTF-8"))
    }

    /// A packet identifier; zero is invalid (MQTT-2.2.1-3 / 3.1.1 section 2.3.1).
    pub(super) fn packet_id(&mut self, version: ProtocolVersion) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::violation(version, "packet identifier 0"))
    }

    /// Leftover bytes after the last field are a malformed packet.
    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::malformed(
                "unexpected bytes after the last field",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode;

    #[test]
    fn vbi_golden() {
        for (value, bytes) in [
            (0usize, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut out = Vec::new();
            put_vbi(&mut out, value);
            assert_eq!(out, bytes);
            assert_eq!(vbi_len(value), bytes.len());
            assert_eq!(parse_vbi(bytes), Ok(Some((value as u32, bytes.len()))));
        }
    }

    #[test]
    fn vbi_incomplete_and_too_long() {
        assert_eq!(parse_vbi(&[]), Ok(None));
        assert_eq!(parse_vbi(&[0x80]), Ok(None));
        assert_eq!(parse_vbi(&[0x80, 0x80, 0x80]), Ok(None));
        assert_eq!(
            parse_vbi(&[0x80, 0x80, 0x80, 0x80]).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            parse_vbi(&[0x80, 0x00]).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
    }

    #[test]
    fn frame_checks() {
        let v5 = ProtocolVersion::V5;
        let v3 = ProtocolVersion::V311;
        // Incomplete remaining length of up to 4 bytes: need more.
        assert_eq!(decode(&[0x30, 0xFF, 0xFF, 0xFF], v5, u32::MAX), Ok(None));
        // Five-byte remaining length.
        let err = decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], v5, u32::MAX).unwrap_err();
        assert_eq!(err.reason, ReasonCode::MalformedPacket);
        // Too large, detected from the fixed header alone.
        let err = decode(&[0x30, 0xFF, 0x01], v5, 100).unwrap_err();
        assert_eq!(err.reason, ReasonCode::PacketTooLarge);
        // Exactly the limit is fine (body still missing).
        assert_eq!(decode(&[0x30, 0x7F], v5, 129), Ok(None));
        assert_eq!(
            decode(&[0x30, 0x7F], v5, 128).unwrap_err().reason,
            ReasonCode::PacketTooLarge
        );
        // Reserved types and flags.
        for bad in [
            [0x00, 0x00],
            [0xC1, 0x00],
            [0x60, 0x02],
            [0x82, 0x00],
            [0xA0, 0x00],
            [0xE8, 0x00],
        ] {
            assert_eq!(
                decode(&bad, v5, u32::MAX).unwrap_err().reason,
                ReasonCode::MalformedPacket
            );
            assert_eq!(
                decode(&bad, v3, u32::MAX).unwrap_err().reason,
                ReasonCode::MalformedPacket
            );
        }
        assert_eq!(
            decode(&[0xF0], v3, u32::MAX).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
        assert_eq!(decode(&[0xF0], v5, u32::MAX), Ok(None));
    }

    #[test]
    fn reader_primitives() {
        let mut r = Reader::new(&[0x00, 0x02, b'a', b'b', 0x00, 0x01, 0x00, 0x00, 0x03]);
        assert_eq!(r.string(), Ok("ab"));
        assert_eq!(r.string().unwrap_err().reason, ReasonCode::MalformedPacket);
        let mut r = Reader::new(&[0x00, 0x02, 0xC3, 0x28]);
        assert_eq!(r.string().unwrap_err().reason, ReasonCode::MalformedPacket);
        let mut r = Reader::new(&[0x00, 0x05, b'a']);
        assert_eq!(r.binary().unwrap_err().reason, ReasonCode::MalformedPacket);
        let mut r = Reader::new(&[0x00, 0x00]);
        assert_eq!(
            r.packet_id(ProtocolVersion::V5).unwrap_err().reason,
            ReasonCode::ProtocolError
        );
        let mut r = Reader::new(&[0x00, 0x00]);
        assert_eq!(
            r.packet_id(ProtocolVersion::V311).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
    }

    #[test]
    fn oversized_fields_are_clamped() {
        let big = vec![b'x'; 70_000];
        let mut out = Vec::new();
        put_binary(&mut out, &big);
        assert_eq!(out.len(), binary_len(&big));
        assert_eq!(out.len(), 2 + 65_535);
    }
}
