//! PUBLISH: a message in either direction.
use super::header::{binary_len, put_str, put_u16, Reader};
use super::properties::{self, write_properties, Context};
use super::{DecodeError, Properties, ProtocolVersion, Qos, QosPid, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct Publish<'a> {
    pub dup: bool,
    pub qos: QosPid,
    pub retain: bool,
    /// Empty only in MQTT 5 when a Topic Alias property stands for it.
    pub topic: &'a str,
    pub properties: Properties<'a>,
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    pub(super) fn decode(
        flags: u8,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0b1000 != 0;
        let retain = flags & 0b0001 != 0;
        let qos =
            Qos::from_u8(flags >> 1 & 0b11).ok_or(DecodeError::malformed("PUBLISH with QoS 3"))?;
        // MQTT-3.3.1-2: DUP must be 0 for QoS 0.
        if dup && qos == Qos::AtMostOnce {
            return Err(DecodeError::malformed("PUBLISH with DUP set and QoS 0"));
        }
        let mut r = Reader::new(body);
        let topic = r.string()?;
        let qos = match qos {
            Qos::AtMostOnce => QosPid::AtMostOnce,
            Qos::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id(version)?),
            Qos::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id(version)?),
        };
        let properties = match version {
            ProtocolVersion::V5 => properties::read(&mut r, Context::Publish)?,
            ProtocolVersion::V311 => Properties::default(),
        };
        if topic.is_empty() {
            // MQTT 5 section 3.3.2.3.4: an empty topic needs a Topic Alias.
            if version == ProtocolVersion::V311 || properties.topic_alias.is_none() {
                return Err(DecodeError::violation(version, "empty topic name"));
            }
        } else {
            check_topic_name(topic, version)?;
        }
        let payload = r.rest();
        check_payload_format(&properties, payload)?;
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            properties,
            payload,
        })
    }

    /// The low nibble of the fixed header.
    pub(super) fn flags(&self) -> u8 {
        u8::from(self.dup) << 3 | (self.qos.qos() as u8) << 1 | u8::from(self.retain)
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let pid = if self.qos.packet_id().is_some() { 2 } else { 0 };
        let props = match version {
            ProtocolVersion::V5 => self.properties.encoded_len(),
            ProtocolVersion::V311 => 0,
        };
        binary_len(self.topic.as_bytes()) + pid + props + self.payload.len()
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        put_str(out, self.topic);
        if let Some(id) = self.qos.packet_id() {
            put_u16(out, id.get());
        }
        if version == ProtocolVersion::V5 {
            write_properties(&self.properties, out);
        }
        out.extend_from_slice(self.payload);
    }
}

/// A non-empty topic name must not hold wildcards (MQTT-3.3.2-2, MQTT-3.1.3-11 for wills).
pub(super) fn check_topic_name(topic: &str, version: ProtocolVersion) -> Result<(), DecodeError> {
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(DecodeError::topic_name(version, "wildcard in topic name"));
    }
    Ok(())
}

/// MQTT 5 section 3.3.2.3.2: Payload Format Indicator 1 promises UTF-8 character data.
pub(super) fn check_payload_format(
    properties: &Properties<'_>,
    payload: &[u8],
) -> Result<(), DecodeError> {
    if properties.payload_format_indicator == Some(1) && std::str::from_utf8(payload).is_err() {
        return Err(DecodeError::new(
            ReasonCode::PayloadFormatInvalid,
            "payload is not valid UTF-8",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;

    #[test]
    fn golden_v311_qos1() {
        let frame = [
            0x32, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x05, b'h', b'e', b'y',
        ];
        let expected = Packet::Publish(Publish {
            dup: false,
            qos: QosPid::AtLeastOnce(pid(5)),
            retain: false,
            topic: "a/b",
            properties: Properties::default(),
            payload: b"hey",
        });
        assert_eq!(decode_ok(&frame, V3), expected);
        assert_eq!(round_trip(&expected, V3), frame);
    }

    #[test]
    fn golden_v5_qos0_with_alias() {
        // Empty topic, properties: topic alias 3, payload format 1.
        let frame = [
            0x31, 0x0A, 0x00, 0x00, 0x05, 0x01, 0x01, 0x23, 0x00, 0x03, b'h', b'i',
        ];
        let expected = Packet::Publish(Publish {
            dup: false,
            qos: QosPid::AtMostOnce,
            retain: true,
            topic: "",
            properties: Properties {
                payload_format_indicator: Some(1),
                topic_alias: Some(3),
                ..Properties::default()
            },
            payload: b"hi",
        });
        assert_eq!(decode_ok(&frame, V5), expected);
        assert_eq!(round_trip(&expected, V5), frame);
    }

    #[test]
    fn round_trips() {
        let full = Publish {
            dup: true,
            qos: QosPid::ExactlyOnce(pid(65_535)),
            retain: true,
            topic: "sensors/é/temp",
            properties: Properties {
                payload_format_indicator: Some(0),
                message_expiry_interval: Some(60),
                content_type: Some("application/json"),
                response_topic: Some("reply/here"),
                correlation_data: Some(b"\x00\x01"),
                subscription_identifiers: vec![1, 268_435_455],
                user_properties: vec![("a", "1"), ("a", "2")],
                ..Properties::default()
            },
            payload: &[0xFF; 300],
        };
        round_trip(&Packet::Publish(full.clone()), V5);
        let plain = Publish {
            properties: Properties::default(),
            ..full
        };
        round_trip(&Packet::Publish(plain.clone()), V3);
        round_trip(&Packet::Publish(plain), V5);
    }

    #[test]
    fn rejects() {
        // QoS 3.
        assert_eq!(
            decode_err(&[0x36, 0x03, 0x00, 0x01, b'a'], V3),
            ReasonCode::MalformedPacket
        );
        // DUP with QoS 0.
        assert_eq!(
            decode_err(&[0x38, 0x03, 0x00, 0x01, b'a'], V5),
            ReasonCode::MalformedPacket
        );
        // Packet id 0.
        let zero_pid = [0x32, 0x06, 0x00, 0x01, b'a', 0x00, 0x00, 0x00];
        assert_eq!(decode_err(&zero_pid, V5), ReasonCode::ProtocolError);
        let zero_pid = [0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x00];
        assert_eq!(decode_err(&zero_pid, V3), ReasonCode::MalformedPacket);
        // Wildcards.
        let wild = [0x30, 0x04, 0x00, 0x01, b'+', 0x00];
        assert_eq!(decode_err(&wild, V5), ReasonCode::TopicNameInvalid);
        assert_eq!(
            decode_err(&[0x30, 0x03, 0x00, 0x01, b'#'], V3),
            ReasonCode::MalformedPacket
        );
        // Empty topic.
        assert_eq!(
            decode_err(&[0x30, 0x03, 0x00, 0x00, 0x00], V5),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            decode_err(&[0x30, 0x02, 0x00, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        // Topic alias 0.
        let alias0 = [0x30, 0x07, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00];
        assert_eq!(decode_err(&alias0, V5), ReasonCode::TopicAliasInvalid);
        // Payload format 1 with invalid UTF-8.
        let pfi = [0x30, 0x07, 0x00, 0x01, b'a', 0x02, 0x01, 0x01, 0xFF];
        assert_eq!(decode_err(&pfi, V5), ReasonCode::PayloadFormatInvalid);
        // Property not allowed in PUBLISH.
        let bad_prop = [
            0x30, 0x09, 0x00, 0x01, b'a', 0x05, 0x11, 0x00, 0x00, 0x00, 0x01,
        ];
        assert_eq!(decode_err(&bad_prop, V5), ReasonCode::ProtocolError);
        // Unknown property.
        let unknown = [0x30, 0x06, 0x00, 0x01, b'a', 0x02, 0x05, 0x00];
        assert_eq!(decode_err(&unknown, V5), ReasonCode::MalformedPacket);
        // Property length past the end.
        let long = [0x30, 0x05, 0x00, 0x01, b'a', 0x05, 0x01];
        assert_eq!(decode_err(&long, V5), ReasonCode::MalformedPacket);
        // Topic length past the end; topic with U+0000.
        assert_eq!(
            decode_err(&[0x30, 0x03, 0x00, 0x05, b'a'], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x30, 0x03, 0x00, 0x01, 0x00], V3),
            ReasonCode::MalformedPacket
        );
    }
}
