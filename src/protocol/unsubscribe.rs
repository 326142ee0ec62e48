//! UNSUBSCRIBE and UNSUBACK.
use super::header::{binary_len, put_str, put_u16, Reader};
use super::properties::{self, write_properties, Context};
use super::{reason, DecodeError, PacketId, Properties, ProtocolVersion, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    pub filters: Vec<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnsubAck<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    /// One per filter in MQTT 5; empty (and not encoded) in 3.1.1.
    pub reasons: Vec<ReasonCode>,
}

impl<'a> Unsubscribe<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = r.packet_id(version)?;
        let properties = match version {
            ProtocolVersion::V5 => properties::read(&mut r, Context::Unsubscribe)?,
            ProtocolVersion::V311 => Properties::default(),
        };
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(r.string()?);
        }
        // MQTT-3.10.3-2.
        if filters.is_empty() {
            return Err(DecodeError::violation(
                version,
                "UNSUBSCRIBE without topic filters",
            ));
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let props = match version {
            ProtocolVersion::V5 => self.properties.encoded_len(),
            ProtocolVersion::V311 => 0,
        };
        let filters: usize = self.filters.iter().map(|f| binary_len(f.as_bytes())).sum();
        2 + props + filters
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_properties(&self.properties, out);
        }
        for filter in &self.filters {
            put_str(out, filter);
        }
    }
}

impl<'a> UnsubAck<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = r.packet_id(version)?;
        let mut ack = UnsubAck {
            packet_id,
            properties: Properties::default(),
            reasons: Vec::new(),
        };
        if version == ProtocolVersion::V5 {
            ack.properties = properties::read(&mut r, Context::UnsubAck)?;
            ack.reasons = r
                .rest()
                .iter()
                .map(|&b| ReasonCode::decode_in(b, reason::UNSUBACK))
                .collect::<Result<_, _>>()?;
            // One per filter of an UNSUBSCRIBE, which has at least one.
            if ack.reasons.is_empty() {
                return Err(DecodeError::protocol("UNSUBACK without reason codes"));
            }
        }
        r.finish()?;
        Ok(ack)
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        match version {
            ProtocolVersion::V5 => 2 + self.properties.encoded_len() + self.reasons.len(),
            ProtocolVersion::V311 => 2,
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_properties(&self.properties, out);
            out.extend(self.reasons.iter().map(|&r| r as u8));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;

    #[test]
    fn golden_unsubscribe() {
        let p = Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(0x0102),
            properties: Properties::default(),
            filters: vec!["a/b", "#"],
        });
        let v3 = [
            0xA2, 0x0A, 0x01, 0x02, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, b'#',
        ];
        assert_eq!(round_trip(&p, V3), v3);
        let v5 = [
            0xA2, 0x0B, 0x01, 0x02, 0x00, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, b'#',
        ];
        assert_eq!(round_trip(&p, V5), v5);
        let with_props = Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(1),
            properties: Properties {
                user_properties: vec![("a", "b")],
                ..Properties::default()
            },
            filters: vec!["x"],
        });
        round_trip(&with_props, V5);
    }

    #[test]
    fn golden_unsuback() {
        let p = Packet::UnsubAck(UnsubAck {
            packet_id: pid(7),
            properties: Properties::default(),
            reasons: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        });
        assert_eq!(
            round_trip(&p, V5),
            [0xB0, 0x05, 0x00, 0x07, 0x00, 0x00, 0x11]
        );
        let mut out = Vec::new();
        super::super::encode(&p, V3, &mut out);
        assert_eq!(out, [0xB0, 0x02, 0x00, 0x07]);
        let v3 = Packet::UnsubAck(UnsubAck {
            packet_id: pid(7),
            properties: Properties::default(),
            reasons: Vec::new(),
        });
        assert_eq!(round_trip(&v3, V3), [0xB0, 0x02, 0x00, 0x07]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            decode_err(&[0xA2, 0x02, 0x00, 0x01], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xA2, 0x03, 0x00, 0x01, 0x00], V5),
            ReasonCode::ProtocolError
        );
        // Subscription identifier is not an UNSUBSCRIBE property.
        let bad = [0xA2, 0x08, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, b'a'];
        assert_eq!(decode_err(&bad, V5), ReasonCode::ProtocolError);
        // Filter runs past the end.
        assert_eq!(
            decode_err(&[0xA2, 0x05, 0x00, 0x01, 0x00, 0x02, b'a'], V3),
            ReasonCode::MalformedPacket
        );
        // UNSUBACK: 3.1.1 has no reasons, MQTT 5 needs valid ones.
        assert_eq!(
            decode_err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xB0, 0x03, 0x00, 0x01, 0x00], V5),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            decode_err(&[0xB0, 0x04, 0x00, 0x01, 0x00, 0x10], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0xB0, 0x02, 0x00, 0x01], V5),
            ReasonCode::MalformedPacket
        );
    }
}
