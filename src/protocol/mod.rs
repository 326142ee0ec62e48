//! The MQTT codec: borrowed packet views, `decode` and `encode`. Knows nothing of the broker.
//!
//! `decode` works in two steps, like mini-redis: first check that a whole frame is in the
//! buffer (`Ok(None)` when it is not), then parse it into a [`Packet`] whose strings and
//! payload borrow from the buffer. `encode` appends one packet to an output buffer.

mod acks;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod header;
mod ping;
mod properties;
mod publish;
mod reason;
mod subscribe;
mod unsubscribe;

use std::num::NonZeroU16;

pub use acks::Ack;
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use properties::{read_publish_properties, write_properties, Properties};
pub use publish::Publish;
pub use reason::ReasonCode;
pub use subscribe::{RetainHandling, SubAck, Subscribe, SubscriptionOptions};
pub use unsubscribe::{UnsubAck, Unsubscribe};

/// The largest packet MQTT can frame: a 5-byte fixed header and the largest remaining
/// length. A client that announces no Maximum Packet Size accepts up to this.
pub const MAX_PACKET_SIZE: u32 = 268_435_455 + 5;

/// A packet identifier; zero is not a valid id in MQTT, so the type forbids it.
pub type PacketId = NonZeroU16;

/// The protocol level byte of CONNECT: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    V311,
    V5,
}

/// Quality of service level of a message or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Qos {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

/// A PUBLISH's QoS together with its packet id: a QoS 0 publish cannot carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosPid {
    AtMostOnce,
    AtLeastOnce(PacketId),
    ExactlyOnce(PacketId),
}

/// One MQTT control packet, borrowing its strings and payload from the decoded buffer.
// Boxing CONNECT (two property sets) would cost an allocation per decoded packet; packets
// are short-lived values on the stack, so the size difference is accepted.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    ConnAck(ConnAck<'a>),
    Publish(Publish<'a>),
    PubAck(Ack<'a>),
    PubRec(Ack<'a>),
    PubRel(Ack<'a>),
    PubComp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    SubAck(SubAck<'a>),
    Unsubscribe(Unsubscribe<'a>),
    UnsubAck(UnsubAck<'a>),
    PingReq,
    PingResp,
    Disconnect(Disconnect<'a>),
    Auth(Auth<'a>),
}

/// Why a frame could not be decoded: the reason code the spec asks for, and a detail for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// MalformedPacket, ProtocolError, PacketTooLarge, TopicNameInvalid,
    /// UnsupportedProtocolVersion, PayloadFormatInvalid, ClientIdentifierNotValid …
    pub reason: ReasonCode,
    /// A short human explanation, e.g. "remaining length exceeds 4 bytes".
    pub detail: &'static str,
    /// For a CONNECT refused for its protocol level: the CONNACK form its client can read
    /// (MQTT 5 for a level above 5, 3.1.1 for older ones). `None` for every other error.
    pub connack_version: Option<ProtocolVersion>,
}

/// Decodes one frame from the front of `buf`.
///
/// * `Ok(None)`: the buffer does not yet hold a whole frame (read more bytes).
/// * `Ok(Some((packet, len)))`: a packet and the number of bytes it used.
/// * `Err(e)`: the frame is invalid; `e.reason` is the reason code to send.
///
/// `version` is the connection's negotiated version (CONNECT ignores it and carries its own).
/// A frame whose total length exceeds `max_packet_size` is rejected with PacketTooLarge
/// as soon as its fixed header is readable, before the rest arrives.
pub fn decode(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<(Packet<'_>, usize)>, DecodeError> {
    let Some(frame) = header::check_frame(buf, version, max_packet_size)? else {
        return Ok(None);
    };
    let body = frame.body;
    let packet = match frame.kind {
        header::CONNECT => Packet::Connect(Connect::decode(body)?),
        header::CONNACK => Packet::ConnAck(ConnAck::decode(body, version)?),
        header::PUBLISH => Packet::Publish(Publish::decode(frame.flags, body, version)?),
        header::PUBACK => Packet::PubAck(Ack::decode(body, version, reason::PUBACK_PUBREC)?),
        header::PUBREC => Packet::PubRec(Ack::decode(body, version, reason::PUBACK_PUBREC)?),
        header::PUBREL => Packet::PubRel(Ack::decode(body, version, reason::PUBREL_PUBCOMP)?),
        header::PUBCOMP => Packet::PubComp(Ack::decode(body, version, reason::PUBREL_PUBCOMP)?),
        header::SUBSCRIBE => Packet::Subscribe(Subscribe::decode(body, version)?),
        header::SUBACK => Packet::SubAck(SubAck::decode(body, version)?),
        header::UNSUBSCRIBE => Packet::Unsubscribe(Unsubscribe::decode(body, version)?),
        header::UNSUBACK => Packet::UnsubAck(UnsubAck::decode(body, version)?),
        header::PINGREQ => {
            ping::decode(body)?;
            Packet::PingReq
        }
        header::PINGRESP => {
            ping::decode(body)?;
            Packet::PingResp
        }
        header::DISCONNECT => Packet::Disconnect(Disconnect::decode(body, version)?),
        header::AUTH => Packet::Auth(Auth::decode(body)?),
        _ => return Err(DecodeError::malformed("reserved packet type")),
    };
    Ok(Some((packet, frame.len)))
}

/// Appends the encoding of `packet` for `version` to `out` and returns the number of bytes
/// written. MQTT 5 only fields (properties, reason codes other than the 3.1.1 forms) are
/// left out or mapped when `version` is 3.1.1.
///
/// CONNECT is written for its own `version` field. AUTH has no 3.1.1 form: for 3.1.1
/// nothing is written and 0 is returned. Strings and binary fields longer than 65 535 bytes
/// are cut to that length; a body longer than 268 435 455 bytes cannot be framed (the
/// caller checks sizes, see [`encoded_len`]).
pub fn encode(packet: &Packet<'_>, version: ProtocolVersion, out: &mut Vec<u8>) -> usize {
    encode_within(packet, version, usize::MAX, out).unwrap_or(0)
}

/// Like [`encode`], but only when the frame is at most `limit` bytes (a peer's Maximum
/// Packet Size): `None` and nothing written otherwise. Sizes the frame once, where
/// [`encoded_len`] then [`encode`] would size it twice.
pub fn encode_within(
    packet: &Packet<'_>,
    version: ProtocolVersion,
    limit: usize,
    out: &mut Vec<u8>,
) -> Option<usize> {
    let Some((first, body_len)) = frame_parts(packet, version) else {
        return Some(0);
    };
    if 1 + header::vbi_len(body_len) + body_len > limit {
        return None;
    }
    let start = out.len();
    out.reserve(1 + header::vbi_len(body_len) + body_len);
    out.push(first);
    header::put_vbi(out, body_len);
    match packet {
        Packet::Connect(p) => p.write_body(out),
        Packet::ConnAck(p) => p.write_body(version, out),
        Packet::Publish(p) => p.write_body(version, out),
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            p.write_body(version, out)
        }
        Packet::Subscribe(p) => p.write_body(version, out),
        Packet::SubAck(p) => p.write_body(version, out),
        Packet::Unsubscribe(p) => p.write_body(version, out),
        Packet::UnsubAck(p) => p.write_body(version, out),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(p) => p.write_body(version, out),
        Packet::Auth(p) => p.write_body(out),
    }
    Some(out.len() - start)
}

/// The number of bytes [`encode`] would write for `packet`, computed without encoding
/// (compare it with the peer's Maximum Packet Size before sending).
pub fn encoded_len(packet: &Packet<'_>, version: ProtocolVersion) -> usize {
    frame_parts(packet, version).map_or(0, |(_, n)| 1 + header::vbi_len(n) + n)
}

/// The first byte and the remaining length of `packet`'s frame, or `None` if it has no
/// encoding for `version`.
fn frame_parts(packet: &Packet<'_>, version: ProtocolVersion) -> Option<(u8, usize)> {
    let kind = |t: u8, flags: u8| t << 4 | flags;
    Some(match packet {
        Packet::Connect(p) => (kind(header::CONNECT, 0), p.body_len()),
        Packet::ConnAck(p) => (kind(header::CONNACK, 0), p.body_len(version)),
        Packet::Publish(p) => (kind(header::PUBLISH, p.flags()), p.body_len(version)),
        Packet::PubAck(p) => (kind(header::PUBACK, 0), p.body_len(version)),
        Packet::PubRec(p) => (kind(header::PUBREC, 0), p.body_len(version)),
        Packet::PubRel(p) => (kind(header::PUBREL, 0b0010), p.body_len(version)),
        Packet::PubComp(p) => (kind(header::PUBCOMP, 0), p.body_len(version)),
        Packet::Subscribe(p) => (kind(header::SUBSCRIBE, 0b0010), p.body_len(version)),
        Packet::SubAck(p) => (kind(header::SUBACK, 0), p.body_len(version)),
        Packet::Unsubscribe(p) => (kind(header::UNSUBSCRIBE, 0b0010), p.body_len(version)),
        Packet::UnsubAck(p) => (kind(header::UNSUBACK, 0), p.body_len(version)),
        Packet::PingReq => (kind(header::PINGREQ, 0), 0),
        Packet::PingResp => (kind(header::PINGRESP, 0), 0),
        Packet::Disconnect(p) => (kind(header::DISCONNECT, 0), p.body_len(version)),
        Packet::Auth(_) if version == ProtocolVersion::V311 => return None,
        Packet::Auth(p) => (kind(header::AUTH, 0), p.body_len()),
    })
}

impl Qos {
    /// 0, 1 or 2; `None` for anything else.
    pub fn from_u8(b: u8) -> Option<Qos> {
        match b {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
}

impl QosPid {
    pub fn qos(&self) -> Qos {
        match self {
            QosPid::AtMostOnce => Qos::AtMostOnce,
            QosPid::AtLeastOnce(_) => Qos::AtLeastOnce,
            QosPid::ExactlyOnce(_) => Qos::ExactlyOnce,
        }
    }

    pub fn packet_id(&self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(*id),
        }
    }
}

impl DecodeError {
    pub(crate) const fn new(reason: ReasonCode, detail: &'static str) -> Self {
        DecodeError {
            reason,
            detail,
            connack_version: None,
        }
    }

    /// A CONNECT of a protocol this broker does not speak, to be answered in `form`.
    pub(crate) const fn unsupported_version(form: ProtocolVersion, detail: &'static str) -> Self {
        DecodeError {
            connack_version: Some(form),
            ..DecodeError::new(ReasonCode::UnsupportedProtocolVersion, detail)
        }
    }

    pub(crate) const fn malformed(detail: &'static str) -> Self {
        DecodeError::new(ReasonCode::MalformedPacket, detail)
    }

    pub(crate) const fn protocol(detail: &'static str) -> Self {
        DecodeError::new(ReasonCode::ProtocolError, detail)
    }

    /// A rule MQTT 5 calls a protocol error; 3.1.1 has no such distinction and just closes.
    pub(crate) const fn violation(version: ProtocolVersion, detail: &'static str) -> Self {
        match version {
            ProtocolVersion::V5 => DecodeError::protocol(detail),
            ProtocolVersion::V311 => DecodeError::malformed(detail),
        }
    }

    /// An invalid topic name: TopicNameInvalid in MQTT 5, malformed in 3.1.1.
    pub(crate) const fn topic_name(version: ProtocolVersion, detail: &'static str) -> Self {
        match version {
            ProtocolVersion::V5 => DecodeError::new(ReasonCode::TopicNameInvalid, detail),
            ProtocolVersion::V311 => DecodeError::malformed(detail),
        }
    }
}

/// Helpers shared by the per-packet tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) const V3: ProtocolVersion = ProtocolVersion::V311;
    pub(crate) const V5: ProtocolVersion = ProtocolVersion::V5;

    pub(crate) fn pid(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    /// Encodes `packet`, checks the length bookkeeping, decodes it back (also with trailing
    /// bytes and from every prefix), and returns the frame.
    pub(crate) fn round_trip(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
        let mut out = vec![0xAA];
        let n = encode(packet, version, &mut out);
        let frame = out.split_off(1);
        assert_eq!(n, frame.len());
        assert_eq!(encoded_len(packet, version), n);
        let (decoded, used) = decode(&frame, version, n as u32).unwrap().unwrap();
        assert_eq!(&decoded, packet);
        assert_eq!(used, n);
        for i in 0..frame.len() {
            assert_eq!(
                decode(&frame[..i], version, u32::MAX),
                Ok(None),
                "prefix {i}"
            );
        }
        let mut longer = frame.clone();
        longer.extend_from_slice(&[0xC0, 0x00]);
        assert_eq!(decode(&longer, version, u32::MAX).unwrap().unwrap().1, n);
        if n > 1 {
            let err = decode(&frame, version, n as u32 - 1).unwrap_err();
            assert_eq!(err.reason, ReasonCode::PacketTooLarge);
        }
        frame
    }

    /// Decodes a whole frame that must be valid and use every byte.
    pub(crate) fn decode_ok(frame: &[u8], version: ProtocolVersion) -> Packet<'_> {
        let (packet, used) = decode(frame, version, u32::MAX).unwrap().unwrap();
        assert_eq!(used, frame.len());
        packet
    }

    /// Decodes a frame that must be rejected, and returns the reason.
    pub(crate) fn decode_err(frame: &[u8], version: ProtocolVersion) -> ReasonCode {
        decode(frame, version, u32::MAX).unwrap_err().reason
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn encode_within_writes_only_what_fits() {
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: QosPid::AtLeastOnce(pid(7)),
            retain: false,
            topic: "a/b",
            properties: Properties::default(),
            payload: b"hello",
        });
        for version in [V3, V5] {
            let size = encoded_len(&publish, version);
            let mut out = vec![0xAA];
            assert_eq!(encode_within(&publish, version, size - 1, &mut out), None);
            assert_eq!(out, [0xAA], "nothing written when it does not fit");
            assert_eq!(encode_within(&publish, version, size, &mut out), Some(size));
            let mut plain = vec![0xAA];
            encode(&publish, version, &mut plain);
            assert_eq!(out, plain);
        }
    }

    fn samples() -> Vec<Vec<u8>> {
        let props = Properties {
            payload_format_indicator: Some(1),
            content_type: Some("text/plain"),
            subscription_identifiers: vec![1, 300],
            user_properties: vec![("k", "v")],
            ..Properties::default()
        };
        let packets = [
            Packet::Connect(Connect {
                version: V5,
                clean_start: true,
                keep_alive: 30,
                properties: Properties {
                    receive_maximum: Some(10),
                    ..Properties::default()
                },
                client_id: "c",
                will: Some(Will {
                    topic: "w",
                    payload: b"bye",
                    qos: Qos::AtLeastOnce,
                    retain: true,
                    properties: Properties {
                        will_delay_interval: Some(5),
                        ..Properties::default()
                    },
                }),
                username: Some("u"),
                password: Some(b"p"),
            }),
            Packet::Publish(Publish {
                dup: true,
                qos: QosPid::ExactlyOnce(pid(7)),
                retain: false,
                topic: "a/b",
                properties: props,
                payload: b"hello",
            }),
            Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: Properties::default(),
                filters: vec![(
                    "a/#",
                    SubscriptionOptions {
                        qos: Qos::AtLeastOnce,
                        no_local: true,
                        retain_as_published: false,
                        retain_handling: RetainHandling::Never,
                    },
                )],
            }),
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::default(),
                reasons: vec![ReasonCode::GrantedQos1, ReasonCode::NotAuthorized],
            }),
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::ServerBusy,
                properties: Properties {
                    reason_string: Some("busy"),
                    ..Properties::default()
                },
            }),
            Packet::PubRel(Ack {
                packet_id: pid(9),
                reason: ReasonCode::PacketIdentifierNotFound,
                properties: Properties::default(),
            }),
        ];
        let mut frames = Vec::new();
        for p in &packets {
            for v in [V3, V5] {
                let mut out = Vec::new();
                encode(p, v, &mut out);
                frames.push(out);
            }
        }
        frames
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let samples = samples();
        let mut accepted = 0;
        for i in 0..200_000 {
            let buf: Vec<u8> = if i % 2 == 0 {
                let len = rng.below(48);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut buf = samples[rng.below(samples.len())].clone();
                for _ in 0..=rng.below(3) {
                    match rng.below(4) {
                        0 if !buf.is_empty() => {
                            let at = rng.below(buf.len());
                            buf[at] = rng.next() as u8;
                        }
                        1 if !buf.is_empty() => {
                            let at = rng.below(buf.len());
                            buf[at] ^= 1 << rng.below(8);
                        }
                        2 => buf.truncate(rng.below(buf.len() + 1)),
                        _ => buf.push(rng.next() as u8),
                    }
                }
                buf
            };
            for version in [V3, V5] {
                let max = if rng.below(4) == 0 {
                    1 << rng.below(8)
                } else {
                    u32::MAX
                };
                if let Ok(Some((packet, len))) = decode(&buf, version, max) {
                    assert!(len <= buf.len());
                    // Whatever decodes re-encodes to something that decodes the same.
                    let mut out = Vec::new();
                    let n = encode(&packet, version, &mut out);
                    assert_eq!(n, encoded_len(&packet, version));
                    assert_eq!(decode(&out, version, u32::MAX), Ok(Some((packet, n))));
                    accepted += 1;
                }
            }
        }
        assert!(accepted > 0);
    }

    #[test]
    fn qos_helpers() {
        assert_eq!(Qos::from_u8(2), Some(Qos::ExactlyOnce));
        assert_eq!(Qos::from_u8(3), None);
        assert_eq!(QosPid::AtLeastOnce(pid(3)).qos(), Qos::AtLeastOnce);
        assert_eq!(QosPid::ExactlyOnce(pid(3)).packet_id(), Some(pid(3)));
        assert_eq!(QosPid::AtMostOnce.packet_id(), None);
    }

    #[test]
    fn auth_has_no_v311_form() {
        let auth = Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        let mut out = Vec::new();
        assert_eq!(encode(&auth, V3, &mut out), 0);
        assert!(out.is_empty());
        assert_eq!(encoded_len(&auth, V3), 0);
    }
}
