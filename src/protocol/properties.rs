//! MQTT 5 properties: a borrowed reader that checks which ones each packet may carry, and a writer.
use super::header::{binary_len, put_binary, put_str, put_u16, put_u32, put_vbi, vbi_len, Reader};
use super::{DecodeError, ReasonCode};

/// Every MQTT 5 property; absent ones are `None` or empty. Borrowed from the frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties<'a> {
    pub payload_format_indicator: Option<u8>,          // 0x01
    pub message_expiry_interval: Option<u32>,          // 0x02
    pub content_type: Option<&'a str>,                 // 0x03
    pub response_topic: Option<&'a str>,               // 0x08
    pub correlation_data: Option<&'a [u8]>,            // 0x09
    pub subscription_identifiers: Vec<u32>,            // 0x0B, several in an outbound PUBLISH
    pub session_expiry_interval: Option<u32>,          // 0x11
    pub assigned_client_identifier: Option<&'a str>,   // 0x12
    pub server_keep_alive: Option<u16>,                // 0x13
    pub authentication_method: Option<&'a str>,        // 0x15
    pub authentication_data: Option<&'a [u8]>,         // 0x16
    pub request_problem_information: Option<u8>,       // 0x17
    pub will_delay_interval: Option<u32>,              // 0x18
    pub request_response_information: Option<u8>,      // 0x19
    pub response_information: Option<&'a str>,         // 0x1A
    pub server_reference: Option<&'a str>,             // 0x1C
    pub reason_string: Option<&'a str>,                // 0x1F
    pub receive_maximum: Option<u16>,                  // 0x21
    pub topic_alias_maximum: Option<u16>,              // 0x22
    pub topic_alias: Option<u16>,                      // 0x23
    pub maximum_qos: Option<u8>,                       // 0x24
    pub retain_available: Option<u8>,                  // 0x25
    pub user_properties: Vec<(&'a str, &'a str)>,      // 0x26, order kept
    pub maximum_packet_size: Option<u32>,              // 0x27
    pub wildcard_subscription_available: Option<u8>,   // 0x28
    pub subscription_identifier_available: Option<u8>, // 0x29
    pub shared_subscription_available: Option<u8>,     // 0x2A
}

/// Which packet (or CONNECT's will) a property section belongs to: decides the allowed ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// A bit set of property identifiers (all below 64), built at compile time.
const fn mask(mut ids: &[u8]) -> u64 {
    let mut m = 0u64;
    while let [id, rest @ ..] = ids {
        m |= 1 << *id;
        ids = rest;
    }
    m
}

/// Every property identifier MQTT 5 defines (section 2.2.2.2).
const KNOWN: u64 = mask(&[
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C,
    0x1F, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
]);

impl Context {
    /// The table of MQTT 5 section 2.2.2.2, one row per packet.
    fn allowed(self) -> u64 {
        match self {
            Context::Connect => {
                const { mask(&[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27]) }
            }
            Context::Will => const { mask(&[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26]) },
            Context::ConnAck => {
                const {
                    mask(&[
                        0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25,
                        0x26, 0x27, 0x28, 0x29, 0x2A,
                    ])
                }
            }
            Context::Publish => const { mask(&[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26]) },
            Context::Ack | Context::SubAck | Context::UnsubAck => const { mask(&[0x1F, 0x26]) },
            Context::Subscribe => const { mask(&[0x0B, 0x26]) },
            Context::Unsubscribe => const { mask(&[0x26]) },
            Context::Disconnect => const { mask(&[0x11, 0x1C, 0x1F, 0x26]) },
            Context::Auth => const { mask(&[0x15, 0x16, 0x1F, 0x26]) },
        }
    }
}

/// Sets a property that may appear once (MQTT 5 section 2.2.2.2: a second one is a
/// protocol error).
fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::protocol("property appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// A byte property whose only values are 0 and 1.
fn flag(b: u8) -> Result<u8, DecodeError> {
    if b <= 1 {
        Ok(b)
    } else {
        Err(DecodeError::protocol("property value must be 0 or 1"))
    }
}

/// Receive Maximum and Maximum Packet Size may not be 0.
fn non_zero<T: Default + PartialEq>(value: T) -> Result<T, DecodeError> {
    if value == T::default() {
        Err(DecodeError::protocol("property value must not be 0"))
    } else {
        Ok(value)
    }
}

/// Reads a property length and the properties it covers, checking them against `ctx`.
pub(super) fn read<'a>(r: &mut Reader<'a>, ctx: Context) -> Result<Properties<'a>, DecodeError> {
    let len = r.vbi()? as usize;
    let mut r = Reader::new(
        r.take(len)
            .map_err(|_| DecodeError::malformed("property length exceeds the packet"))?,
    );
    let mut p = Properties::default();
    while !r.is_empty() {
        let id = r.vbi()?;
        if id >= 64 || KNOWN >> id & 1 == 0 {
            return Err(DecodeError::malformed("unknown property identifier"));
        }
        if ctx.allowed() >> id & 1 == 0 {
            return Err(DecodeError::protocol("property not allowed in this packet"));
        }
        match id {
            0x01 => set(&mut p.payload_format_indicator, flag(r.u8()?)?)?,
            0x02 => set(&mut p.message_expiry_interval, r.u32()?)?,
            0x03 => set(&mut p.content_type, r.string()?)?,
            0x08 => {
                let topic = r.string()?;
                // MQTT-3.3.2-14: the Response Topic is a topic name.
                if topic.bytes().any(|b| b == b'+' || b == b'#') {
                    return Err(DecodeError::protocol("response topic contains wildcards"));
                }
                set(&mut p.response_topic, topic)?;
            }
            0x09 => set(&mut p.correlation_data, r.binary()?)?,
            0x0B => {
                let id = r.vbi()?;
                if id == 0 {
                    return Err(DecodeError::protocol("subscription identifier 0"));
                }
                // Several only in a PUBLISH (MQTT 5 section 3.3.2.3.8).
                if ctx != Context::Publish && !p.subscription_identifiers.is_empty() {
                    return Err(DecodeError::protocol("property appears more than once"));
                }
                p.subscription_identifiers.push(id);
            }
            0x11 => set(&mut p.session_expiry_interval, r.u32()?)?,
            0x12 => set(&mut p.assigned_client_identifier, r.string()?)?,
            0x13 => set(&mut p.server_keep_alive, r.u16()?)?,
            0x15 => set(&mut p.authentication_method, r.string()?)?,
            0x16 => set(&mut p.authentication_data, r.binary()?)?,
            0x17 => set(&mut p.request_problem_information, flag(r.u8()?)?)?,
            0x18 => set(&mut p.will_delay_interval, r.u32()?)?,
            0x19 => set(&mut p.request_response_information, flag(r.u8()?)?)?,
            0x1A => set(&mut p.response_information, r.string()?)?,
            0x1C => set(&mut p.server_reference, r.string()?)?,
            0x1F => set(&mut p.reason_string, r.string()?)?,
            0x21 => set(&mut p.receive_maximum, non_zero(r.u16()?)?)?,
            0x22 => set(&mut p.topic_alias_maximum, r.u16()?)?,
            0x23 => {
                let alias = r.u16()?;
                if alias == 0 {
                    return Err(DecodeError::new(
                        ReasonCode::TopicAliasInvalid,
                        "topic alias 0",
                    ));
                }
                set(&mut p.topic_alias, alias)?;
            }
            0x24 => set(&mut p.maximum_qos, flag(r.u8()?)?)?,
            0x25 => set(&mut p.retain_available, flag(r.u8()?)?)?,
            0x26 => {
                let key = r.string()?;
                let value = r.string()?;
                p.user_properties.push((key, value));
            }
            0x27 => set(&mut p.maximum_packet_size, non_zero(r.u32()?)?)?,
            0x28 => set(&mut p.wildcard_subscription_available, flag(r.u8()?)?)?,
            0x29 => set(&mut p.subscription_identifier_available, flag(r.u8()?)?)?,
            _ => set(&mut p.shared_subscription_available, flag(r.u8()?)?)?,
        }
    }
    // MQTT 5 section 3.1.2.11.10 (and 3.2.2.3.18, 3.15.2.2.3).
    if p.authentication_data.is_some() && p.authentication_method.is_none() {
        return Err(DecodeError::protocol(
            "authentication data without authentication method",
        ));
    }
    Ok(p)
}

/// One property value on the wire.
enum Value<'a> {
    Byte(u8),
    U16(u16),
    U32(u32),
    Vbi(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Value::Byte(_) => 1,
            Value::U16(_) => 2,
            Value::U32(_) => 4,
            Value::Vbi(v) => vbi_len(*v as usize),
            Value::Str(s) => binary_len(s.as_bytes()),
            Value::Bin(b) => binary_len(b),
            Value::Pair(k, v) => binary_len(k.as_bytes()) + binary_len(v.as_bytes()),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::Byte(b) => out.push(*b),
            Value::U16(v) => put_u16(out, *v),
            Value::U32(v) => put_u32(out, *v),
            Value::Vbi(v) => put_vbi(out, *v as usize),
            Value::Str(s) => put_str(out, s),
            Value::Bin(b) => put_binary(out, b),
            Value::Pair(k, v) => {
                put_str(out, k);
                put_str(out, v);
            }
        }
    }
}

impl<'a> Properties<'a> {
    /// Calls `f` with each present property in identifier order: the single source for
    /// both the length and the bytes.
    fn for_each(&self, mut f: impl FnMut(u8, Value<'a>)) {
        use Value::*;
        if let Some(v) = self.payload_format_indicator {
            f(0x01, Byte(v));
        }
        if let Some(v) = self.message_expiry_interval {
            f(0x02, U32(v));
        }
        if let Some(v) = self.content_type {
            f(0x03, Str(v));
        }
        if let Some(v) = self.response_topic {
            f(0x08, Str(v));
        }
        if let Some(v) = self.correlation_data {
            f(0x09, Bin(v));
        }
        for &v in &self.subscription_identifiers {
            f(0x0B, Vbi(v));
        }
        if let Some(v) = self.session_expiry_interval {
            f(0x11, U32(v));
        }
        if let Some(v) = self.assigned_client_identifier {
            f(0x12, Str(v));
        }
        if let Some(v) = self.server_keep_alive {
            f(0x13, U16(v));
        }
        if let Some(v) = self.authentication_method {
            f(0x15, Str(v));
        }
        if let Some(v) = self.authentication_data {
            f(0x16, Bin(v));
        }
        if let Some(v) = self.request_problem_information {
            f(0x17, Byte(v));
        }
        if let Some(v) = self.will_delay_interval {
            f(0x18, U32(v));
        }
        if let Some(v) = self.request_response_information {
            f(0x19, Byte(v));
        }
        if let Some(v) = self.response_information {
            f(0x1A, Str(v));
        }
        if let Some(v) = self.server_reference {
            f(0x1C, Str(v));
        }
        if let Some(v) = self.reason_string {
            f(0x1F, Str(v));
        }
        if let Some(v) = self.receive_maximum {
            f(0x21, U16(v));
        }
        if let Some(v) = self.topic_alias_maximum {
            f(0x22, U16(v));
        }
        if let Some(v) = self.topic_alias {
            f(0x23, U16(v));
        }
        if let Some(v) = self.maximum_qos {
            f(0x24, Byte(v));
        }
        if let Some(v) = self.retain_available {
            f(0x25, Byte(v));
        }
        for &(k, v) in &self.user_properties {
            f(0x26, Pair(k, v));
        }
        if let Some(v) = self.maximum_packet_size {
            f(0x27, U32(v));
        }
        if let Some(v) = self.wildcard_subscription_available {
            f(0x28, Byte(v));
        }
        if let Some(v) = self.subscription_identifier_available {
            f(0x29, Byte(v));
        }
        if let Some(v) = self.shared_subscription_available {
            f(0x2A, Byte(v));
        }
    }

    /// Length of the properties without their length prefix.
    fn body_len(&self) -> usize {
        let mut n = 0;
        // Every identifier is below 0x80: one byte.
        self.for_each(|_, v| n += 1 + v.len());
        n
    }

    /// True when no property is present.
    pub(super) fn is_empty(&self) -> bool {
        self.body_len() == 0
    }

    /// Bytes [`write_properties`] appends: the property length and the properties.
    pub fn encoded_len(&self) -> usize {
        let n = self.body_len();
        vbi_len(n) + n
    }
}

/// Appends the property length (a variable byte integer) and every present property, in
/// identifier order. Properties are written as given: which ones a packet may carry is the
/// caller's concern when encoding.
/// Reads back a PUBLISH property block written by [`write_properties`] (how the store keeps
/// a message's properties); the whole of `buf` must be the block.
pub fn read_publish_properties(buf: &[u8]) -> Result<Properties<'_>, DecodeError> {
    let mut r = Reader::new(buf);
    let props = read(&mut r, Context::Publish)?;
    r.finish()?;
    Ok(props)
}

pub fn write_properties(props: &Properties<'_>, out: &mut Vec<u8>) {
    put_vbi(out, props.body_len());
    props.for_each(|id, v| {
        out.push(id);
        v.write(out);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Properties<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        write_properties(p, &mut out);
        assert_eq!(out.len(), p.encoded_len());
        out
    }

    fn read_all(bytes: &[u8], ctx: Context) -> Result<Properties<'_>, DecodeError> {
        let mut r = Reader::new(bytes);
        let p = read(&mut r, ctx)?;
        r.finish()?;
        Ok(p)
    }

    fn reason(bytes: &[u8], ctx: Context) -> ReasonCode {
        read_all(bytes, ctx).unwrap_err().reason
    }

    #[test]
    fn golden() {
        assert_eq!(write(&Properties::default()), [0x00]);
        let p = Properties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(0x0102_0304),
            subscription_identifiers: vec![128],
            topic_alias: Some(9),
            user_properties: vec![("a", "b")],
            ..Properties::default()
        };
        let bytes = [
            0x14, 0x01, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 0x0B, 0x80, 0x01, 0x23, 0x00, 0x09,
            0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
        ];
        assert_eq!(write(&p), bytes);
        assert_eq!(read_all(&bytes, Context::Publish), Ok(p));
    }

    #[test]
    fn round_trip_per_context() {
        let cases = [
            (
                Context::Connect,
                Properties {
                    session_expiry_interval: Some(1),
                    authentication_method: Some("m"),
                    authentication_data: Some(b"d"),
                    request_problem_information: Some(0),
                    request_response_information: Some(1),
                    receive_maximum: Some(1),
                    topic_alias_maximum: Some(2),
                    user_properties: vec![("k", "v"), ("k", "w")],
                    maximum_packet_size: Some(3),
                    ..Properties::default()
                },
            ),
            (
                Context::Will,
                Properties {
                    payload_format_indicator: Some(0),
                    message_expiry_interval: Some(4),
                    content_type: Some("c"),
                    response_topic: Some("r/t"),
                    correlation_data: Some(b""),
                    will_delay_interval: Some(5),
                    ..Properties::default()
                },
            ),
            (
                Context::ConnAck,
                Properties {
                    session_expiry_interval: Some(1),
                    assigned_client_identifier: Some("id"),
                    server_keep_alive: Some(7),
                    response_information: Some("ri"),
                    server_reference: Some("sr"),
                    reason_string: Some("rs"),
                    maximum_qos: Some(0),
                    retain_available: Some(1),
                    wildcard_subscription_available: Some(0),
                    subscription_identifier_available: Some(0),
                    shared_subscription_available: Some(1),
                    ..Properties::default()
                },
            ),
            (
                Context::Publish,
                Properties {
                    subscription_identifiers: vec![1, 2, 268_435_455],
                    topic_alias: Some(65_535),
                    ..Properties::default()
                },
            ),
        ];
        for (ctx, p) in cases {
            assert_eq!(read_all(&write(&p), ctx), Ok(p));
        }
    }

    #[test]
    fn allowed_table() {
        // Reason string: allowed in acks, not in PUBLISH, CONNECT or UNSUBSCRIBE.
        let rs = [0x04, 0x1F, 0x00, 0x01, b'x'];
        for ctx in [
            Context::Ack,
            Context::SubAck,
            Context::UnsubAck,
            Context::Disconnect,
            Context::Auth,
            Context::ConnAck,
        ] {
            assert!(read_all(&rs, ctx).is_ok());
        }
        for ctx in [
            Context::Publish,
            Context::Connect,
            Context::Will,
            Context::Subscribe,
            Context::Unsubscribe,
        ] {
            assert_eq!(reason(&rs, ctx), ReasonCode::ProtocolError);
        }
        // Will delay only in a will.
        let wd = [0x05, 0x18, 0x00, 0x00, 0x00, 0x01];
        assert!(read_all(&wd, Context::Will).is_ok());
        assert_eq!(reason(&wd, Context::Connect), ReasonCode::ProtocolError);
    }

    #[test]
    fn rejects() {
        use Context::*;
        // Unknown ids, including one written with a non-minimal VBI and one above 63.
        assert_eq!(
            reason(&[0x02, 0x00, 0x00], Publish),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            reason(&[0x02, 0x2B, 0x00], ConnAck),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            reason(&[0x03, 0x81, 0x00, 0x00], Publish),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            reason(&[0x03, 0xC0, 0x01, 0x00], Publish),
            ReasonCode::MalformedPacket
        );
        // Length past the end; value past the property section.
        assert_eq!(
            reason(&[0x05, 0x01, 0x01], Publish),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            reason(&[0x02, 0x02, 0x00, 0x00, 0x00, 0x00], Publish),
            ReasonCode::MalformedPacket
        );
        // Once-only properties twice; user properties may repeat.
        assert_eq!(
            reason(&[0x04, 0x01, 0x00, 0x01, 0x00], Publish),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x04, 0x0B, 0x01, 0x0B, 0x01], Subscribe),
            ReasonCode::ProtocolError
        );
        // Values out of range.
        assert_eq!(
            reason(&[0x02, 0x01, 0x02], Publish),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x02, 0x17, 0x02], Connect),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x02, 0x19, 0x05], Connect),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x02, 0x25, 0x02], ConnAck),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x02, 0x2A, 0xFF], ConnAck),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x03, 0x21, 0x00, 0x00], Connect),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x05, 0x27, 0, 0, 0, 0], Connect),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x02, 0x0B, 0x00], Publish),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x03, 0x23, 0x00, 0x00], Publish),
            ReasonCode::TopicAliasInvalid
        );
        // Response topic with a wildcard; strings with U+0000 or bad UTF-8.
        assert_eq!(
            reason(&[0x04, 0x08, 0x00, 0x01, b'#'], Will),
            ReasonCode::ProtocolError
        );
        assert_eq!(
            reason(&[0x04, 0x03, 0x00, 0x01, 0x00], Will),
            ReasonCode::MalformedPacket
        );
        assert_eq!(
            reason(&[0x04, 0x03, 0x00, 0x01, 0x80], Will),
            ReasonCode::MalformedPacket
        );
        // Authentication data needs a method.
        assert_eq!(
            reason(&[0x04, 0x16, 0x00, 0x01, 0x00], Connect),
            ReasonCode::ProtocolError
        );
    }
}
