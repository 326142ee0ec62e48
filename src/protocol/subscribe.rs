//! SUBSCRIBE and SUBACK.
use super::header::{binary_len, put_str, put_u16, Reader};
use super::properties::{self, write_properties, Context};
use super::{reason, DecodeError, PacketId, Properties, ProtocolVersion, Qos, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    /// At least one (an empty list is a protocol error).
    pub filters: Vec<(&'a str, SubscriptionOptions)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    pub qos: Qos,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe time.
    OnSubscribe,
    /// 1: send them only if the subscription did not already exist.
    OnNewSubscribe,
    /// 2: never send them at subscribe time.
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubAck<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    /// One per filter: GrantedQos0/1/2 or a failure (3.1.1 encodes failures as 0x80).
    pub reasons: Vec<ReasonCode>,
}

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;

impl SubscriptionOptions {
    /// The MQTT 5 options byte, as the store keeps it.
    pub fn to_byte(self) -> u8 {
        self.encode(ProtocolVersion::V5)
    }

    /// Reads an options byte written by [`SubscriptionOptions::to_byte`].
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::decode(b, ProtocolVersion::V5).ok()
    }

    /// MQTT 5 section 3.8.3.1; in 3.1.1 only the QoS bits exist (MQTT-3.8.3-4).
    fn decode(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = match version {
            ProtocolVersion::V5 => 0xC0,
            ProtocolVersion::V311 => 0xFC,
        };
        if b & reserved != 0 {
            return Err(DecodeError::malformed(
                "reserved subscription option bits set",
            ));
        }
        let qos = Qos::from_u8(b & 0b11).ok_or(DecodeError::malformed("subscription QoS 3"))?;
        let retain_handling = match b >> RETAIN_HANDLING_SHIFT & 0b11 {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscribe,
            2 => RetainHandling::Never,
            _ => return Err(DecodeError::protocol("retain handling 3")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & NO_LOCAL != 0,
            retain_as_published: b & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }

    fn encode(self, version: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if version == ProtocolVersion::V5 {
            if self.no_local {
                b |= NO_LOCAL;
            }
            if self.retain_as_published {
                b |= RETAIN_AS_PUBLISHED;
            }
            b |= (self.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
        }
        b
    }
}

fn read_properties<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    ctx: Context,
) -> Result<Properties<'a>, DecodeError> {
    match version {
        ProtocolVersion::V5 => properties::read(r, ctx),
        ProtocolVersion::V311 => Ok(Properties::default()),
    }
}

fn properties_len(properties: &Properties<'_>, version: ProtocolVersion) -> usize {
    match version {
        ProtocolVersion::V5 => properties.encoded_len(),
        ProtocolVersion::V311 => 0,
    }
}

impl<'a> Subscribe<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = r.packet_id(version)?;
        let properties = read_properties(&mut r, version, Context::Subscribe)?;
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = r.string()?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            filters.push((filter, options));
        }
        // MQTT-3.8.3-3.
        if filters.is_empty() {
            return Err(DecodeError::violation(
                version,
                "SUBSCRIBE without topic filters",
            ));
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let filters: usize = self
            .filters
            .iter()
            .map(|(f, _)| binary_len(f.as_bytes()) + 1)
            .sum();
        2 + properties_len(&self.properties, version) + filters
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id.get());
        if version == ProtocolVersion::V5 {
            write_properties(&self.properties, out);
        }
        for (filter, options) in &self.filters {
            put_str(out, filter);
            out.push(options.encode(version));
        }
    }
}

impl<'a> SubAck<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let packet_id = r.packet_id(version)?;
        let properties = read_properties(&mut r, version, Context::SubAck)?;
        let reasons = r
            .rest()
            .iter()
            .map(|&b| match version {
                ProtocolVersion::V5 => ReasonCode::decode_in(b, reason::SUBACK),
                ProtocolVersion::V311 => ReasonCode::from_v311_suback(b),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One per filter of a SUBSCRIBE, which has at least one.
        if reasons.is_empty() {
            return Err(DecodeError::violation(
                version,
                "SUBACK without reason codes",
            ));
        }
        Ok(SubAck {
            packet_id,
            properties,
            reasons,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        2 + properties_len(&self.properties, version) + self.reasons.len()
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_u16(out, self.packet_id.get());
        match version {
            ProtocolVersion::V5 => {
                write_properties(&self.properties, out);
                out.extend(self.reasons.iter().map(|&r| r as u8));
            }
            ProtocolVersion::V311 => out.extend(self.reasons.iter().map(|r| r.to_v311_suback())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;

    fn opts(qos: Qos) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::OnSubscribe,
        }
    }

    #[test]
    fn golden_subscribe() {
        let p = Packet::Subscribe(Subscribe {
            packet_id: pid(10),
            properties: Properties::default(),
            filters: vec![
                ("a/+", opts(Qos::AtLeastOnce)),
                ("#", opts(Qos::ExactlyOnce)),
            ],
        });
        let v3 = [
            0x82, 0x0C, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#', 0x02,
        ];
        assert_eq!(round_trip(&p, V3), v3);
        let v5 = [
            0x82, 0x0D, 0x00, 0x0A, 0x00, 0x00, 0x03, b'a', b'/', b'+', 0x01, 0x00, 0x01, b'#',
            0x02,
        ];
        assert_eq!(round_trip(&p, V5), v5);

        let full = Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Properties {
                subscription_identifiers: vec![200],
                user_properties: vec![("k", "")],
                ..Properties::default()
            },
            filters: vec![(
                "$share/g/t",
                SubscriptionOptions {
                    qos: Qos::AtMostOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::Never,
                },
            )],
        });
        let frame = round_trip(&full, V5);
        assert_eq!(
            &frame[2..14],
            [0x00, 0x01, 0x09, 0x0B, 0xC8, 0x01, 0x26, 0x00, 0x01, b'k', 0x00, 0x00]
        );
        assert_eq!(frame.last(), Some(&0x2C));
    }

    #[test]
    fn golden_suback() {
        let p = Packet::SubAck(SubAck {
            packet_id: pid(10),
            properties: Properties::default(),
            reasons: vec![
                ReasonCode::Success,
                ReasonCode::GrantedQos2,
                ReasonCode::UnspecifiedError,
            ],
        });
        assert_eq!(
            round_trip(&p, V3),
            [0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80]
        );
        assert_eq!(
            round_trip(&p, V5),
            [0x90, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x02, 0x80]
        );
        let refused = Packet::SubAck(SubAck {
            packet_id: pid(10),
            properties: Properties {
                reason_string: Some("no"),
                ..Properties::default()
            },
            reasons: vec![ReasonCode::NotAuthorized, ReasonCode::GrantedQos1],
        });
        round_trip(&refused, V5);
        let mut out = Vec::new();
        super::super::encode(&refused, V3, &mut out);
        assert_eq!(out, [0x90, 0x04, 0x00, 0x0A, 0x80, 0x01]);
    }

    #[test]
    fn rejects() {
        // No filters.
        assert_eq!(
            decode_err(&[0x82, 0x02, 0x00, 0x01], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x82, 0x03, 0x00, 0x01, 0x00], V5),
            ReasonCode::ProtocolError
        );
        // Option bits: reserved (3.1.1 bits 2-7, MQTT 5 bits 6-7), QoS 3, retain handling 3.
        let with_options = |version: ProtocolVersion, o: u8| {
            let frame: Vec<u8> = match version {
                ProtocolVersion::V311 => vec![0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', o],
                ProtocolVersion::V5 => vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', o],
            };
            super::super::decode(&frame, version, u32::MAX).map(|p| p.map(|(_, n)| n))
        };
        assert_eq!(
            with_options(V3, 0x04).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            with_options(V3, 0x03).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            with_options(V5, 0x40).unwrap_err().reason,
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            with_options(V5, 0x30).unwrap_err().reason,
            ReasonCode::ProtocolError
        );
        assert_eq!(with_options(V5, 0x2E), Ok(Some(9)));
        // Filter without its options byte.
        assert_eq!(
            decode_err(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], V3),
            ReasonCode::MalformedPacket
        );
        // Two subscription identifiers, or identifier 0.
        let two = [
            0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00,
        ];
        assert_eq!(decode_err(&two, V5), ReasonCode::ProtocolError);
        let zero = [
            0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00,
        ];
        assert_eq!(decode_err(&zero, V5), ReasonCode::ProtocolError);
        // SUBACK: empty, invalid codes.
        assert_eq!(
            decode_err(&[0x90, 0x02, 0x00, 0x01], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x90, 0x03, 0x00, 0x01, 0x00], V5),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            decode_err(&[0x90, 0x03, 0x00, 0x01, 0x87], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x11], V5),
            ReasonCode::MalformedPacket
        );
    }
}
