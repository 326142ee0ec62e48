//! CONNACK: the broker's answer to CONNECT.
use super::header::Reader;
use super::properties::{self, write_properties, Context};
use super::{reason, DecodeError, Properties, ProtocolVersion, ReasonCode};

#[derive(Debug, Clone, PartialEq)]
pub struct ConnAck<'a> {
    pub session_present: bool,
    /// Encoded for 3.1.1 through `ReasonCode::to_v311_connack`.
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> ConnAck<'a> {
    pub(super) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let flags = r.u8()?;
        // MQTT-3.2.2-1: bits 7-1 are reserved.
        if flags & 0xFE != 0 {
            return Err(DecodeError::malformed("reserved CONNACK flags set"));
        }
        let session_present = flags & 1 != 0;
        let code = r.u8()?;
        let (reason, properties) = match version {
            ProtocolVersion::V311 => (ReasonCode::from_v311_connack(code)?, Properties::default()),
            ProtocolVersion::V5 => (
                ReasonCode::decode_in(code, reason::CONNACK)?,
                properties::read(&mut r, Context::ConnAck)?,
            ),
        };
        // MQTT-3.2.2-6 / 3.1.1 MQTT-3.2.2-4: a refusal never has a session.
        if session_present && reason.is_error() {
            return Err(DecodeError::violation(
                version,
                "session present with a failure reason code",
            ));
        }
        r.finish()?;
        Ok(ConnAck {
            session_present,
            reason,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        match version {
            ProtocolVersion::V311 => 2,
            ProtocolVersion::V5 => 2 + self.properties.encoded_len(),
        }
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, out: &mut Vec<u8>) {
        out.push(u8::from(self.session_present));
        match version {
            ProtocolVersion::V311 => out.push(self.reason.to_v311_connack()),
            ProtocolVersion::V5 => {
                out.push(self.reason as u8);
                write_properties(&self.properties, out);
            }
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
        let ok = ConnAck {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        };
        assert_eq!(
            round_trip(&Packet::ConnAck(ok.clone()), V3),
            [0x20, 0x02, 0x01, 0x00]
        );
        assert_eq!(
            round_trip(&Packet::ConnAck(ok), V5),
            [0x20, 0x03, 0x01, 0x00, 0x00]
        );

        let full = ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                assigned_client_identifier: Some("id"),
                server_keep_alive: Some(60),
                receive_maximum: Some(100),
                maximum_qos: Some(1),
                retain_available: Some(0),
                maximum_packet_size: Some(1024),
                topic_alias_maximum: Some(10),
                wildcard_subscription_available: Some(1),
                subscription_identifier_available: Some(1),
                shared_subscription_available: Some(0),
                ..Properties::default()
            },
        };
        let frame = round_trip(&Packet::ConnAck(full), V5);
        assert_eq!(
            frame,
            [
                0x20, 0x20, 0x00, 0x00, 0x1D, // header, flags, reason, property length
                0x12, 0x00, 0x02, b'i', b'd', // assigned client id
                0x13, 0x00, 0x3C, // server keep alive
                0x21, 0x00, 0x64, // receive maximum
                0x22, 0x00, 0x0A, // topic alias maximum
                0x24, 0x01, // maximum qos
                0x25, 0x00, // retain available
                0x27, 0x00, 0x00, 0x04, 0x00, // maximum packet size
                0x28, 0x01, 0x29, 0x01, 0x2A, 0x00,
            ]
        );
    }

    #[test]
    fn v311_return_codes() {
        for (reason, byte) in [
            (ReasonCode::UnsupportedProtocolVersion, 1),
            (ReasonCode::ClientIdentifierNotValid, 2),
            (ReasonCode::ServerUnavailable, 3),
            (ReasonCode::BadUserNameOrPassword, 4),
            (ReasonCode::NotAuthorized, 5),
        ] {
            let p = Packet::ConnAck(ConnAck {
                session_present: false,
                reason,
                properties: Properties::default(),
            });
            assert_eq!(round_trip(&p, V3), [0x20, 0x02, 0x00, byte]);
        }
        let busy = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::ServerBusy,
            properties: Properties::default(),
        });
        let mut out = Vec::new();
        super::super::encode(&busy, V3, &mut out);
        assert_eq!(out, [0x20, 0x02, 0x00, 0x03]);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            decode_err(&[0x20, 0x02, 0x02, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x20, 0x02, 0x00, 0x06], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x20, 0x02, 0x01, 0x05], V3),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x20, 0x03, 0x01, 0x87, 0x00], V5),
            ReasonCode::ProtocolError
        );
        // Missing property length in MQTT 5, extra byte in 3.1.1.
        assert_eq!(
            decode_err(&[0x20, 0x02, 0x00, 0x00], V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&[0x20, 0x03, 0x00, 0x00, 0x00], V3),
            ReasonCode::MalformedPacket
        );
        // Not a CONNACK reason code.
        assert_eq!(
            decode_err(&[0x20, 0x03, 0x00, 0x10, 0x00], V5),
            ReasonCode::MalformedPacket
        );
        // Maximum QoS 2, receive maximum 0, maximum packet size 0.
        let max_qos = [0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02];
        assert_eq!(decode_err(&max_qos, V5), ReasonCode::ProtocolError);
        let recv0 = [0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00];
        assert_eq!(decode_err(&recv0, V5), ReasonCode::ProtocolError);
        let size0 = [0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(decode_err(&size0, V5), ReasonCode::ProtocolError);
    }
}
