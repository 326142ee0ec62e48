//! PINGREQ and PINGRESP: two bytes each, no body.
use super::DecodeError;

/// Both have a remaining length of 0; `encode` writes just their fixed header.
pub(super) fn decode(body: &[u8]) -> Result<(), DecodeError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::malformed("PINGREQ or PINGRESP with a body"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{Packet, ReasonCode};

    #[test]
    fn golden() {
        for v in [V3, V5] {
            assert_eq!(round_trip(&Packet::PingReq, v), [0xC0, 0x00]);
            assert_eq!(round_trip(&Packet::PingResp, v), [0xD0, 0x00]);
            assert_eq!(
                decode_err(&[0xC0, 0x01, 0x00], v),
                ReasonCode::MalformedPacket
            );
            assert_eq!(decode_err(&[0xD1, 0x00], v), ReasonCode::MalformedPacket);
        }
    }
}
