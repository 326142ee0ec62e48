//! PUBACK, PUBREC, PUBREL and PUBCOMP: the same shape, a packet id and a reason.
use super::header::{put_u16, Reader};
use super::properties::{self, write_properties, Context};
use super::{DecodeError, PacketId, Properties, ProtocolVersion, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Ack<'a> {
    pub packet_id: PacketId,
    /// Success when absent on the wire (and always in 3.1.1).
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Ack<'a> {
    /// `allowed` is the reason code table of the packet type (MQTT 5 only).
    pub(super) fn decode(
        body: &'a [u8],
        version: ProtocolVersion,
        allowed: &[ReasonCode],
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = r.packet_id(version)?;
        let mut ack = Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        // MQTT 5 section 3.4.2.1: remaining length 2 means Success and no properties,
        // 3 means a reason code and no properties.
        if version == ProtocolVersion::V5 && !r.is_empty() {
            ack.reason = ReasonCode::decode_in(r.u8()?, allowed)?;
            if !r.is_empty() {
                ack.properties = properties::read(&mut r, Context::Ack)?;
            }
        }
        r.finish()?;
        Ok(ack)
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        match version {
            ProtocolVersion::V311 => 2,
            ProtocolVersion::V5 if self.properties.is_empty() => {
                if self.reason == ReasonCode::Success {
                    2
                } else {
                    3
                }
            }
            ProtocolVersion::V5 => 3 + self.properties.encoded_len(),
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id.get());
        if version == ProtocolVersion::V311 {
            return;
        }
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

    fn ack(id: u16, reason: ReasonCode, properties: Properties<'_>) -> Ack<'_> {
        Ack {
            packet_id: pid(id),
            reason,
            properties,
        }
    }

    #[test]
    fn golden() {
        let plain = ack(0x1234, ReasonCode::Success, Properties::default());
        assert_eq!(
            round_trip(&Packet::PubAck(plain.clone()), V3),
            [0x40, 0x02, 0x12, 0x34]
        );
        assert_eq!(
            round_trip(&Packet::PubAck(plain.clone()), V5),
            [0x40, 0x02, 0x12, 0x34]
        );
        assert_eq!(
            round_trip(&Packet::PubRec(plain.clone()), V5),
            [0x50, 0x02, 0x12, 0x34]
        );
        assert_eq!(
            round_trip(&Packet::PubRel(plain.clone()), V3),
            [0x62, 0x02, 0x12, 0x34]
        );
        assert_eq!(
            round_trip(&Packet::PubComp(plain), V5),
            [0x70, 0x02, 0x12, 0x34]
        );

        let reason_only = ack(1, ReasonCode::NoMatchingSubscribers, Properties::default());
        assert_eq!(
            round_trip(&Packet::PubAck(reason_only), V5),
            [0x40, 0x03, 0x00, 0x01, 0x10]
        );

        let with_props = ack(
            1,
            ReasonCode::PacketIdentifierNotFound,
            Properties {
                reason_string: Some("x"),
                ..Properties::default()
            },
        );
        assert_eq!(
            round_trip(&Packet::PubComp(with_props), V5),
            [0x70, 0x08, 0x00, 0x01, 0x92, 0x04, 0x1F, 0x00, 0x01, b'x']
        );
        // Success with a zero property length is accepted too.
        assert_eq!(
            decode_ok(&[0x40, 0x04, 0x00, 0x01, 0x00, 0x00], V5),
            Packet::PubAck(ack(1, ReasonCode::Success, Properties::default()))
        );
    }

    #[test]
    fn v311_drops_reason_and_properties() {
        let p = Packet::PubRec(ack(
            2,
            ReasonCode::QuotaExceeded,
            Properties {
                reason_string: Some("x"),
                ..Properties::default()
            },
        ));
        let mut out = Vec::new();
        assert_eq!(super::super::encode(&p, V3, &mut out), 4);
        assert_eq!(out, [0x50, 0x02, 0x00, 0x02]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            decode_err(&[0x40, 0x02, 0x00, 0x00], V5),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            decode_err(&[0x40, 0x02, 0x00, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x40, 0x01, 0x00], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x40, 0x03, 0x00, 0x01, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        // Reason code unknown, or not valid for the packet.
        assert_eq!(
            decode_err(&[0x40, 0x03, 0x00, 0x01, 0x03], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x62, 0x03, 0x00, 0x01, 0x10], V5),
            ReasonCode::MalformedPacket
        );
        // Leftover bytes after the properties.
        let extra = [0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00];
        assert_eq!(decode_err(&extra, V5), ReasonCode::MalformedPacket);
        // Property not allowed in an ack.
        let bad = [0x40, 0x06, 0x00, 0x01, 0x00, 0x02, 0x01, 0x01];
        assert_eq!(decode_err(&bad, V5), ReasonCode::ProtocolError);
        // Duplicate reason string.
        let dup = [
            0x40, 0x0C, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, b'a', 0x1F, 0x00, 0x01, b'b',
        ];
        assert_eq!(decode_err(&dup, V5), ReasonCode::ProtocolError);
    }
}
