//! CONNECT: the first packet of every connection.
use super::header::{binary_len, put_binary, put_str, put_u16, Reader};
use super::properties::{self, write_properties, Context};
use super::publish::{check_payload_format, check_topic_name};
use super::{DecodeError, Properties, ProtocolVersion, Qos};

#[derive(Debug, Clone, PartialEq)]
pub struct Connect<'a> {
    pub version: ProtocolVersion,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties<'a>,
    /// May be empty; the broker then assigns one (MQTT 5) or requires clean start (3.1.1).
    pub client_id: &'a str,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: Qos,
    pub retain: bool,
    /// Will properties (MQTT 5): will delay, expiry, content type, response topic …
    pub properties: Properties<'a>,
}

const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

impl<'a> Connect<'a> {
    /// Reads a CONNECT of either version: the protocol level inside decides.
    pub(super) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let name = r.string()?;
        let level = r.u8()?;
        let version = match (name, level) {
            ("MQTT", 4) => ProtocolVersion::V311,
            ("MQTT", 5) => ProtocolVersion::V5,
            // A newer protocol: its client reads the MQTT 5 CONNACK 0x84 [MQTT-3.1.2-2].
            ("MQTT", level) if level > 5 => {
                return Err(DecodeError::unsupported_version(
                    ProtocolVersion::V5,
                    "protocol level newer than 5",
                ))
            }
            // MQTT 3.1 (MQIsdp) and older levels read only the 3.1.1 form (return code 1).
            _ => {
                return Err(DecodeError::unsupported_version(
                    ProtocolVersion::V311,
                    "unsupported protocol name or level",
                ))
            }
        };
        let flags = r.u8()?;
        // MQTT-3.1.2-3: the reserved flag must be 0.
        if flags & 0x01 != 0 {
            return Err(DecodeError::malformed("reserved CONNECT flag set"));
        }
        let will_flag = flags & WILL != 0;
        let will_retain = flags & WILL_RETAIN != 0;
        let will_qos = flags >> WILL_QOS_SHIFT & 0b11;
        // MQTT-3.1.2-11, -13, -15.
        if !will_flag && (will_qos != 0 || will_retain) {
            return Err(DecodeError::malformed("will QoS or retain without a will"));
        }
        let will_qos = Qos::from_u8(will_qos).ok_or(DecodeError::malformed("will QoS 3"))?;
        let has_username = flags & USERNAME != 0;
        let has_password = flags & PASSWORD != 0;
        // 3.1.1 MQTT-3.1.2-22; MQTT 5 allows a password alone.
        if has_password && !has_username && version == ProtocolVersion::V311 {
            return Err(DecodeError::malformed("password without user name"));
        }
        let keep_alive = r.u16()?;
        let properties = read_properties(&mut r, version, Context::Connect)?;
        let client_id = r.string()?;
        let will = if will_flag {
            let properties = read_properties(&mut r, version, Context::Will)?;
            let topic = r.string()?;
            if topic.is_empty() {
                return Err(DecodeError::topic_name(version, "empty will topic"));
            }
            check_topic_name(topic, version)?;
            let payload = r.binary()?;
            check_payload_format(&properties, payload)?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Connect {
            version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | (will.qos as u8) << WILL_QOS_SHIFT;
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }

    fn properties_len(&self, properties: &Properties<'_>) -> usize {
        match self.version {
            ProtocolVersion::V5 => properties.encoded_len(),
            ProtocolVersion::V311 => 0,
        }
    }

    /// The body for `self.version`.
    pub(super) fn body_len(&self) -> usize {
        // Protocol name "MQTT", level, flags, keep alive.
        let mut n = 6 + 1 + 1 + 2;
        n += self.properties_len(&self.properties);
        n += binary_len(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            n += self.properties_len(&will.properties);
            n += binary_len(will.topic.as_bytes()) + binary_len(will.payload);
        }
        n += self.username.map_or(0, |u| binary_len(u.as_bytes()));
        n += self.password.map_or(0, binary_len);
        n
    }

    pub(super) fn write_body(&self, out: &mut Vec<u8>) {
        let v5 = self.version == ProtocolVersion::V5;
        put_str(out, "MQTT");
        out.push(if v5 { 5 } else { 4 });
        out.push(self.flags());
        put_u16(out, self.keep_alive);
        if v5 {
            write_properties(&self.properties, out);
        }
        put_str(out, self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                write_properties(&will.properties, out);
            }
            put_str(out, will.topic);
            put_binary(out, will.payload);
        }
        if let Some(username) = self.username {
            put_str(out, username);
        }
        if let Some(password) = self.password {
            put_binary(out, password);
        }
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::Packet;
    use super::*;
    use crate::protocol::ReasonCode;

    fn minimal(version: ProtocolVersion) -> Connect<'static> {
        Connect {
            version,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id: "c1",
            will: None,
            username: None,
            password: None,
        }
    }

    #[test]
    fn golden_v311() {
        let frame = [
            0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x02,
            b'c', b'1',
        ];
        let p = Packet::Connect(minimal(V3));
        assert_eq!(decode_ok(&frame, V5), p);
        assert_eq!(round_trip(&p, V3), frame);
    }

    #[test]
    fn golden_v5_full() {
        let frame = [
            0x10, 0x29, // fixed header
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // protocol
            0xEE, // user, password, will retain, will QoS 1, will, clean start
            0x00, 0x0A, // keep alive
            0x05, 0x11, 0x00, 0x00, 0x00, 0x78, // session expiry 120
            0x00, 0x01, b'c', // client id
            0x05, 0x18, 0x00, 0x00, 0x00, 0x05, // will delay 5
            0x00, 0x03, b'w', b'/', b't', // will topic
            0x00, 0x02, b'b', b'y', // will payload
            0x00, 0x01, b'u', // user name
            0x00, 0x02, 0x01, 0x02, // password
        ];
        let p = Packet::Connect(Connect {
            version: V5,
            clean_start: true,
            keep_alive: 10,
            properties: Properties {
                session_expiry_interval: Some(120),
                ..Properties::default()
            },
            client_id: "c",
            will: Some(Will {
                topic: "w/t",
                payload: b"by",
                qos: Qos::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: Some(5),
                    ..Properties::default()
                },
            }),
            username: Some("u"),
            password: Some(&[1, 2]),
        });
        assert_eq!(decode_ok(&frame, V3), p);
        assert_eq!(round_trip(&p, V5), frame);
    }

    #[test]
    fn round_trips() {
        let mut c = minimal(V3);
        c.will = Some(Will {
            topic: "t",
            payload: &[],
            qos: Qos::ExactlyOnce,
            retain: false,
            properties: Properties::default(),
        });
        c.username = Some("user");
        c.password = Some(b"secret");
        c.client_id = "";
        c.clean_start = false;
        round_trip(&Packet::Connect(c.clone()), V3);
        c.version = V5;
        c.password = Some(b"only");
        c.username = None;
        c.properties = Properties {
            receive_maximum: Some(5),
            maximum_packet_size: Some(10_000),
            topic_alias_maximum: Some(0),
            request_problem_information: Some(0),
            request_response_information: Some(1),
            authentication_method: Some("SCRAM"),
            authentication_data: Some(b"d"),
            user_properties: vec![("k", "v")],
            ..Properties::default()
        };
        round_trip(&Packet::Connect(c), V5);
    }

    /// A 3.1.1 or 5 CONNECT with the given flags byte and `tail` after the client id.
    fn with_flags(level: u8, flags: u8, tail: &[u8]) -> Vec<u8> {
        let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x00];
        if level == 5 {
            body.push(0x00);
        }
        body.extend_from_slice(&[0x00, 0x01, b'c']);
        body.extend_from_slice(tail);
        let mut frame = vec![0x10, body.len() as u8];
        frame.extend_from_slice(&body);
        frame
    }

    #[test]
    fn rejects() {
        let v31 = [
            0x10, 0x0F, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C,
            0x00, 0x01, b'c',
        ];
        assert_eq!(decode_err(&v31, V5), ReasonCode::UnsupportedProtocolVersion);
        assert_eq!(
            decode_err(&with_flags(6, 0, &[]), V5),
            ReasonCode::UnsupportedProtocolVersion
        );
        // The CONNACK form each refused level is answered in.
        let form = |frame: &[u8]| crate::protocol::decode(frame, V5, 1024).err().unwrap();
        assert_eq!(form(&with_flags(6, 0, &[])).connack_version, Some(V5));
        assert_eq!(
            form(&with_flags(3, 0, &[])).connack_version,
            Some(ProtocolVersion::V311)
        );
        assert_eq!(form(&v31).connack_version, Some(ProtocolVersion::V311));
        assert_eq!(form(&with_flags(4, 0x01, &[])).connack_version, None);
        assert_eq!(
            decode_err(&with_flags(3, 0, &[]), V5),
            ReasonCode::UnsupportedProtocolVersion
        );
        // Reserved flag; will QoS/retain without will; will QoS 3.
        for level in [4, 5] {
            for flags in [0x01, 0x08, 0x20, 0x1C] {
                let frame = with_flags(level, flags, &[]);
                assert_eq!(decode_err(&frame, V5), ReasonCode::MalformedPacket);
            }
        }
        // Password without user name: only 3.1.1 refuses it.
        let pw = [0x00, 0x01, b'p'];
        assert_eq!(
            decode_err(&with_flags(4, 0x40, &pw), V5),
            ReasonCode::MalformedPacket
        );
        assert!(matches!(
            decode_ok(&with_flags(5, 0x40, &pw), V5),
            Packet::Connect(Connect {
                password: Some(b"p"),
                username: None,
                ..
            })
        ));
        // Extra bytes after the payload; missing user name.
        assert_eq!(
            decode_err(&with_flags(4, 0, &[0]), V5),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            decode_err(&with_flags(4, 0x80, &[]), V5),
            ReasonCode::MalformedPacket
        );
        // Topic alias is not a CONNECT property.
        let mut alias = with_flags(5, 0, &[]);
        alias[1] += 3;
        alias[12] = 3;
        alias.splice(13..13, [0x23, 0x00, 0x01]);
        assert_eq!(decode_err(&alias, V5), ReasonCode::ProtocolError);
        // Will topic with a wildcard; will payload not UTF-8 with format indicator 1.
        let will = [0x02, 0x01, 0x01, 0x00, 0x01, b'#', 0x00, 0x00];
        assert_eq!(
            decode_err(&with_flags(5, 0x04, &will), V5),
            ReasonCode::TopicNameInvalid
        );
        let will = [0x02, 0x01, 0x01, 0x00, 0x01, b'a', 0x00, 0x01, 0xFF];
        assert_eq!(
            decode_err(&with_flags(5, 0x04, &will), V5),
            ReasonCode::PayloadFormatInvalid
        );
        // Will property not allowed in a will.
        let will = [0x03, 0x23, 0x00, 0x01, 0x00, 0x01, b'a', 0x00, 0x00];
        assert_eq!(
            decode_err(&with_flags(5, 0x04, &will), V5),
            ReasonCode::ProtocolError
        );
        // Client id not UTF-8.
        let mut bad_id = with_flags(4, 0, &[]);
        let last = bad_id.len() - 1;
        bad_id[last] = 0xC0;
        assert_eq!(decode_err(&bad_id, V5), ReasonCode::MalformedPacket);
    }
}
