//! DISCONNECT, in either direction.
use super::header::Reader;
use super::properties::{self, write_properties, Context};
use super::{reason, DecodeError, Properties, ProtocolVersion, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Disconnect<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let mut disconnect = Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        // MQTT 5 section 3.14.2.1: remaining length 0 means Success; a reason code may
        // come without properties. 3.1.1 has no body at all.
        if version == ProtocolVersion::V5 && !r.is_empty() {
            disconnect.reason = ReasonCode::decode_in(r.u8()?, reason::DISCONNECT)?;
            if !r.is_empty() {
                disconnect.properties = properties::read(&mut r, Context::Disconnect)?;
            }
        }
        r.finish()?;
        Ok(disconnect)
    }

    /// A reason code is always followed by its property length (even 0): the spec lets it
    /// be left out, but some clients (rumqttc 0.24) cannot read the shorter form.
    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        match version {
            ProtocolVersion::V311 => 0,
            ProtocolVersion::V5
                if self.properties.is_empty() && self.reason == ReasonCode::Success =>
            {
                0
            }
            ProtocolVersion::V5 => 1 + self.properties.encoded_len(),
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        if self.body_len(version) == 0 {
            return;
        }
        out.push(self.reason as u8);
        write_properties(&self.properties, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;

    #[test]
    fn golden() {
        let normal = Packet::Disconnect(Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        assert_eq!(round_trip(&normal, V3), [0xE0, 0x00]);
        assert_eq!(round_trip(&normal, V5), [0xE0, 0x00]);
        let with_will = Packet::Disconnect(Disconnect {
            reason: ReasonCode::DisconnectWithWill,
            properties: Properties::default(),
        });
        assert_eq!(round_trip(&with_will, V5), [0xE0, 0x02, 0x04, 0x00]);
        // The short form a client may send still decodes.
        assert_eq!(decode_ok(&[0xE0, 0x01, 0x04], V5), with_will);
        let moved = Packet::Disconnect(Disconnect {
            reason: ReasonCode::ServerMoved,
            properties: Properties {
                session_expiry_interval: Some(0),
                server_reference: Some("b"),
                ..Properties::default()
            },
        });
        assert_eq!(
            round_trip(&moved, V5),
            [0xE0, 0x0B, 0x9D, 0x09, 0x11, 0x00, 0x00, 0x00, 0x00, 0x1C, 0x00, 0x01, b'b']
        );
        // 3.1.1 always writes the two-byte form.
        let mut out = Vec::new();
        super::super::encode(&moved, V3, &mut out);
        assert_eq!(out, [0xE0, 0x00]);
        assert_eq!(decode_ok(&[0xE0, 0x02, 0x00, 0x00], V5), normal);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            decode_err(&[0xE0, 0x01, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xE0, 0x01, 0x03], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xE0, 0x01, 0x18], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xE0, 0x03, 0x00, 0x00, 0x00], V5),
            ReasonCode::MalformedPacket
        );
        // Property length beyond the body.
        assert_eq!(
            decode_err(&[0xE0, 0x02, 0x00, 0x01], V5),
            ReasonCode::MalformedPacket
        );
        // Topic alias is not a DISCONNECT property.
        let bad = [0xE0, 0x05, 0x00, 0x03, 0x23, 0x00, 0x01];
        assert_eq!(decode_err(&bad, V5), ReasonCode::ProtocolError);
    }
}
