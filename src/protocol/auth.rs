//! AUTH: extended authentication exchange (MQTT 5 only).
use super::header::Reader;
use super::properties::{self, write_properties, Context};
use super::{reason, DecodeError, Properties, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Auth<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Auth<'a> {
    /// Only reached for MQTT 5: the fixed header check refuses type 15 in 3.1.1.
    pub(super) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let mut auth = Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        // MQTT 5 section 3.15.2.1: remaining length 0 means Success and no properties.
        if !r.is_empty() {
            auth.reason = ReasonCode::decode_in(r.u8()?, reason::AUTH)?;
            if !r.is_empty() {
                auth.properties = properties::read(&mut r, Context::Auth)?;
            }
        }
        r.finish()?;
        Ok(auth)
    }

    pub(super) fn body_len(&self) -> usize {
        if self.properties.is_empty() {
            usize::from(self.reason != ReasonCode::Success)
        } else {
            1 + self.properties.encoded_len()
        }
    }

    pub(super) fn write_body(&self, out: &mut Vec<u8>) {
        let props = !self.properties.is_empty();
        if props || self.reason != ReasonCode::Success {
            out.push(self.reason as u8);
        }
        if props {
            write_properties(&self.properties, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;

    #[test]
    fn golden() {
        let ok = Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        assert_eq!(round_trip(&ok, V5), [0xF0, 0x00]);
        let cont = Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("S"),
                authentication_data: Some(&[1, 2]),
                ..Properties::default()
            },
        });
        assert_eq!(
            round_trip(&cont, V5),
            [0xF0, 0x0B, 0x18, 0x09, 0x15, 0x00, 0x01, b'S', 0x16, 0x00, 0x02, 0x01, 0x02]
        );
        assert_eq!(
            decode_ok(&[0xF0, 0x01, 0x19], V5),
            Packet::Auth(Auth {
                reason: ReasonCode::ReAuthenticate,
                properties: Properties::default(),
            })
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(decode_err(&[0xF0, 0x00], V3), ReasonCode::MalformedPacket);
        assert_eq!(
            decode_err(&[0xF0, 0x01, 0x87], V5),
            ReasonCode::MalformedPacket
        );
        // Authentication data without a method.
        let data_only = [0xF0, 0x06, 0x18, 0x04, 0x16, 0x00, 0x01, 0x01];
        assert_eq!(decode_err(&data_only, V5), ReasonCode::ProtocolError);
        // Duplicate method.
        let dup = [
            0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x01, b'a', 0x15, 0x00, 0x01, b'a',
        ];
        assert_eq!(decode_err(&dup, V5), ReasonCode::ProtocolError);
    }
}
