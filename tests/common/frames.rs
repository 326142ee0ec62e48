//! A tiny hand-rolled MQTT byte builder for raw-socket tests; deliberately independent of the
//! broker's codec so that a codec bug cannot hide itself in the tests.

/// Packet type nibbles (already shifted into the high half of the first byte).
pub const CONNECT: u8 = 0x10;
pub const CONNACK: u8 = 0x20;
pub const PUBLISH: u8 = 0x30;
pub const PUBACK: u8 = 0x40;
pub const PUBREC: u8 = 0x50;
pub const PUBREL: u8 = 0x62;
pub const PUBCOMP: u8 = 0x70;
pub const SUBSCRIBE: u8 = 0x82;
pub const SUBACK: u8 = 0x90;
pub const PINGREQ: u8 = 0xC0;
pub const PINGRESP: u8 = 0xD0;
pub const DISCONNECT: u8 = 0xE0;

/// MQTT 5 property identifiers used by the tests.
pub mod prop {
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
}

/// Which protocol a raw client speaks; decides the CONNECT layout and whether packets carry
/// a property block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V311,
    V5,
}

/// Appends MQTT primitive types to a byte vector.
#[derive(Default, Clone, Debug)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn new() -> Bytes {
        Bytes(Vec::new())
    }

    pub fn u8(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A two-byte length followed by the raw bytes (UTF-8 string or binary data).
    pub fn str(self, s: impl AsRef<[u8]>) -> Self {
        let s = s.as_ref();
        let len = u16::try_from(s.len()).expect("string too long for MQTT");
        self.u16(len).raw(s)
    }

    pub fn raw(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.0.extend_from_slice(bytes.as_ref());
        self
    }

    pub fn varint(mut self, n: usize) -> Self {
        self.0.extend_from_slice(&varint(n));
        self
    }

    /// Wraps the accumulated bytes as the body of a packet with the given first byte.
    pub fn packet(self, first_byte: u8) -> Vec<u8> {
        packet(first_byte, &self.0)
    }
}

pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// First byte, remaining length, body.
pub fn packet(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A will message for a raw CONNECT.
#[derive(Clone, Debug)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
}

/// Everything a raw CONNECT can vary in these tests.
#[derive(Clone, Debug)]
pub struct Connect<'a> {
    pub version: Version,
    pub client_id: &'a str,
    pub keep_alive: u16,
    pub clean: bool,
    pub will: Option<Will<'a>>,
    /// MQTT 5 only: the encoded property block content (without its length).
    pub properties: Vec<u8>,
    /// User name and password, when set.
    pub credentials: Option<(&'a str, &'a [u8])>,
    /// MQTT 5 only: the will's property block content (Will Delay Interval …).
    pub will_properties: Vec<u8>,
}

impl<'a> Connect<'a> {
    pub fn new(version: Version, client_id: &'a str) -> Self {
        Connect {
            version,
            client_id,
            keep_alive: 60,
            clean: true,
            will: None,
            properties: Vec::new(),
            credentials: None,
            will_properties: Vec::new(),
        }
    }

    pub fn credentials(mut self, user: &'a str, password: &'a [u8]) -> Self {
        self.credentials = Some((user, password));
        self
    }

    pub fn keep_alive(mut self, secs: u16) -> Self {
        self.keep_alive = secs;
        self
    }

    pub fn clean(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    pub fn will(mut self, will: Will<'a>) -> Self {
        self.will = Some(will);
        self
    }

    pub fn properties(mut self, properties: Vec<u8>) -> Self {
        self.properties = properties;
        self
    }

    pub fn will_properties(mut self, properties: Vec<u8>) -> Self {
        self.will_properties = properties;
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let level = match self.version {
            Version::V311 => 4,
            Version::V5 => 5,
        };
        let mut flags = 0u8;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(will) = &self.will {
            flags |= 0x04 | (will.qos << 3);
            if will.retain {
                flags |= 0x20;
            }
        }
        if self.credentials.is_some() {
            flags |= 0xC0;
        }
        let mut b = Bytes::new()
            .str("MQTT")
            .u8(level)
            .u8(flags)
            .u16(self.keep_alive);
        if self.version == Version::V5 {
            b = b.varint(self.properties.len()).raw(&self.properties);
        }
        b = b.str(self.client_id);
        if let Some(will) = &self.will {
            if self.version == Version::V5 {
                b = b
                    .varint(self.will_properties.len())
                    .raw(&self.will_properties);
            }
            b = b.str(will.topic).str(will.payload);
        }
        if let Some((user, password)) = self.credentials {
            b = b.str(user).str(password);
        }
        b.packet(CONNECT)
    }
}

/// A CONNECT with an arbitrary protocol name and level, for protocol-version negotiation tests.
pub fn connect_with_protocol(name: &str, level: u8, client_id: &str) -> Vec<u8> {
    Bytes::new()
        .str(name)
        .u8(level)
        .u8(0x02)
        .u16(60)
        .str(client_id)
        .packet(CONNECT)
}

/// A PUBLISH with an arbitrary (possibly invalid) topic; `packet_id` is required for QoS > 0.
pub fn publish(
    version: Version,
    topic: impl AsRef<[u8]>,
    qos: u8,
    packet_id: u16,
    payload: &[u8],
) -> Vec<u8> {
    publish_with(version, topic, qos, false, packet_id, &[], payload)
}

/// A PUBLISH with every field under the caller's control (MQTT 5 properties included).
pub fn publish_with(
    version: Version,
    topic: impl AsRef<[u8]>,
    qos: u8,
    retain: bool,
    packet_id: u16,
    properties: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Bytes::new().str(topic);
    if qos > 0 {
        b = b.u16(packet_id);
    }
    if version == Version::V5 {
        b = b.varint(properties.len()).raw(properties);
    }
    b = b.raw(payload);
    b.packet(PUBLISH | (qos << 1) | u8::from(retain))
}

pub fn subscribe(version: Version, packet_id: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut b = Bytes::new().u16(packet_id);
    if version == Version::V5 {
        b = b.varint(0);
    }
    b.str(filter).u8(qos).packet(SUBSCRIBE)
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP: the short form (packet id only) is valid in both versions.
pub fn ack(first_byte: u8, packet_id: u16) -> Vec<u8> {
    Bytes::new().u16(packet_id).packet(first_byte)
}

pub fn pingreq() -> Vec<u8> {
    vec![PINGREQ, 0]
}

/// A normal DISCONNECT (reason 0x00 is implied by the empty body in MQTT 5 too).
pub fn disconnect() -> Vec<u8> {
    vec![DISCONNECT, 0]
}

/// One received packet: its first byte and its body (everything after the remaining length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub first_byte: u8,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn kind(&self) -> u8 {
        self.first_byte & 0xF0
    }

    /// The MQTT 5 reason code of a DISCONNECT (0x00 when the body is empty).
    pub fn disconnect_reason(&self) -> u8 {
        assert_eq!(self.kind(), DISCONNECT, "not a DISCONNECT: {self:?}");
        self.body.first().copied().unwrap_or(0)
    }

    /// CONNACK: (session present, return/reason code).
    pub fn connack(&self) -> (bool, u8) {
        assert_eq!(self.kind(), CONNACK, "not a CONNACK: {self:?}");
        assert!(self.body.len() >= 2, "short CONNACK: {self:?}");
        (self.body[0] & 1 == 1, self.body[1])
    }

    /// MQTT 5 CONNACK properties as (identifier, value bytes) pairs.
    pub fn connack_properties(&self) -> Vec<(u8, Vec<u8>)> {
        assert_eq!(self.kind(), CONNACK, "not a CONNACK: {self:?}");
        parse_properties(&self.body[2..])
    }

    /// PUBLISH: (topic, packet id if QoS > 0, payload). `version` decides the property block.
    pub fn publish(&self, version: Version) -> (Vec<u8>, Option<u16>, Vec<u8>) {
        assert_eq!(self.kind(), PUBLISH, "not a PUBLISH: {self:?}");
        let qos = (self.first_byte >> 1) & 3;
        let len = usize::from(u16::from_be_bytes([self.body[0], self.body[1]]));
        let topic = self.body[2..2 + len].to_vec();
        let mut at = 2 + len;
        let packet_id = if qos > 0 {
            at += 2;
            Some(u16::from_be_bytes([self.body[at - 2], self.body[at - 1]]))
        } else {
            None
        };
        if version == Version::V5 {
            let (props_len, used) = read_varint(&self.body[at..]).expect("property length");
            at += used + props_len;
        }
        (topic, packet_id, self.body[at..].to_vec())
    }
}

/// Decodes a variable byte integer: (value, bytes used).
pub fn read_varint(buf: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in buf.iter().enumerate().take(4) {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Parses a length-prefixed MQTT 5 property block into (identifier, raw value) pairs.
pub fn parse_properties(buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let (len, used) = read_varint(buf).expect("property length");
    let mut rest = &buf[used..used + len];
    let mut out = Vec::new();
    while let Some((&id, tail)) = rest.split_first() {
        let size = match id {
            // byte
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            // two byte integer
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            // four byte integer
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            // variable byte integer
            0x0B => read_varint(tail).expect("varint property").1,
            // UTF-8 string or binary data
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                2 + usize::from(u16::from_be_bytes([tail[0], tail[1]]))
            }
            // string pair
            0x26 => {
                let k = 2 + usize::from(u16::from_be_bytes([tail[0], tail[1]]));
                k + 2 + usize::from(u16::from_be_bytes([tail[k], tail[k + 1]]))
            }
            other => panic!("unknown property identifier {other:#04x}"),
        };
        out.push((id, tail[..size].to_vec()));
        rest = &tail[size..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// MQTT 5 extras for the feature tests (sessions, subscriptions, shared, properties, $SYS).

/// More MQTT 5 property identifiers.
pub mod prop5 {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// SUBSCRIBE options byte: QoS, No Local, Retain As Published, Retain Handling.
pub fn sub_options(qos: u8, no_local: bool, retain_as_published: bool, retain_handling: u8) -> u8 {
    qos | (u8::from(no_local) << 2) | (u8::from(retain_as_published) << 3) | (retain_handling << 4)
}

/// A SUBSCRIBE with a property block (MQTT 5) and any number of (filter, options byte) pairs.
pub fn subscribe_with(
    version: Version,
    packet_id: u16,
    properties: &[u8],
    filters: &[(&str, u8)],
) -> Vec<u8> {
    let mut b = Bytes::new().u16(packet_id);
    if version == Version::V5 {
        b = b.varint(properties.len()).raw(properties);
    }
    for (filter, options) in filters {
        b = b.str(filter).u8(*options);
    }
    b.packet(SUBSCRIBE)
}

/// An MQTT 5 DISCONNECT with a reason code and a property block.
pub fn disconnect_with(reason: u8, properties: &[u8]) -> Vec<u8> {
    Bytes::new()
        .u8(reason)
        .varint(properties.len())
        .raw(properties)
        .packet(DISCONNECT)
}

impl Frame {
    /// MQTT 5 PUBLISH properties as (identifier, value bytes) pairs, in wire order.
    pub fn publish_properties(&self) -> Vec<(u8, Vec<u8>)> {
        assert_eq!(self.kind(), PUBLISH, "not a PUBLISH: {self:?}");
        let qos = (self.first_byte >> 1) & 3;
        let len = usize::from(u16::from_be_bytes([self.body[0], self.body[1]]));
        let at = 2 + len + if qos > 0 { 2 } else { 0 };
        parse_properties(&self.body[at..])
    }

    /// The value of the first property `id` of a PUBLISH, if present.
    pub fn publish_property(&self, id: u8) -> Option<Vec<u8>> {
        self.publish_properties()
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v)
    }

    /// SUBACK reason codes (after the property block in MQTT 5).
    pub fn suback_reasons(&self, version: Version) -> Vec<u8> {
        assert_eq!(self.kind(), SUBACK, "not a SUBACK: {self:?}");
        let mut at = 2;
        if version == Version::V5 {
            let (len, used) = read_varint(&self.body[at..]).expect("property length");
            at += used + len;
        }
        self.body[at..].to_vec()
    }

    /// The reason code of a PUBACK/PUBREC/PUBREL/PUBCOMP (0x00 for the short form).
    pub fn ack_reason(&self) -> u8 {
        self.body.get(2).copied().unwrap_or(0)
    }

    /// The packet id of a PUBACK/PUBREC/PUBREL/PUBCOMP/SUBACK.
    pub fn packet_id(&self) -> u16 {
        u16::from_be_bytes([self.body[0], self.body[1]])
    }
}

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE, for the resource-limit tests (a freed subscription slot).

pub const UNSUBSCRIBE: u8 = 0xA2;
pub const UNSUBACK: u8 = 0xB0;

/// An UNSUBSCRIBE for one filter (with an empty property block in MQTT 5).
pub fn unsubscribe(version: Version, packet_id: u16, filter: &str) -> Vec<u8> {
    let mut b = Bytes::new().u16(packet_id);
    if version == Version::V5 {
        b = b.varint(0);
    }
    b.str(filter).packet(UNSUBSCRIBE)
}

// ---------------------------------------------------------------------------------------------
// Byte-level CONNECT and property builders for the malformed-packet tests.

/// A clean-session CONNECT whose client id is raw bytes (possibly invalid UTF-8), with
/// `properties` as the MQTT 5 property block content.
pub fn connect_raw_id(
    version: Version,
    client_id: &[u8],
    keep_alive: u16,
    properties: &[u8],
) -> Vec<u8> {
    let level = match version {
        Version::V311 => 4,
        Version::V5 => 5,
    };
    let mut b = Bytes::new().str("MQTT").u8(level).u8(0x02).u16(keep_alive);
    if version == Version::V5 {
        b = b.varint(properties.len()).raw(properties);
    }
    b.str(client_id).packet(CONNECT)
}

/// One MQTT 5 User Property (0x26) with raw key and value bytes.
pub fn user_property(key: &[u8], value: &[u8]) -> Vec<u8> {
    Bytes::new().u8(prop5::USER_PROPERTY).str(key).str(value).0
}

/// The frames a misbehaving client received before the close: exactly one DISCONNECT with
/// `v5_reason` for MQTT 5, nothing at all for 3.1.1.
pub fn assert_rejected(version: Version, frames: &[Frame], v5_reason: u8) {
    match version {
        Version::V5 => {
            assert_eq!(
                frames.len(),
                1,
                "expected exactly one DISCONNECT ({v5_reason:#04x}) before close, got {frames:?}"
            );
            assert_eq!(
                frames[0].disconnect_reason(),
                v5_reason,
                "DISCONNECT reason code (frames: {frames:?})"
            );
        }
        Version::V311 => assert!(
            frames.is_empty(),
            "a 3.1.1 client must just be closed, got {frames:?}"
        ),
    }
}
