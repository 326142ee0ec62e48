//! Reason codes (MQTT 5) and their 3.1.1 return-code mapping.

/// Every MQTT 5 reason code. Some share a byte (0x00 is Success, NormalDisconnection and
/// GrantedQos0); this enum keeps one variant per byte and names it `Success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReasonCode {
    Success = 0x00,
    GrantedQos1 = 0x01,
    GrantedQos2 = 0x02,
    DisconnectWithWill = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QosNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

use super::DecodeError;
use ReasonCode::*;

impl ReasonCode {
    /// The reason code for a byte, or `None` if the byte is no MQTT 5 reason code.
    pub fn from_u8(b: u8) -> Option<ReasonCode> {
        Some(match b {
            0x00 => Success,
            0x01 => GrantedQos1,
            0x02 => GrantedQos2,
            0x04 => DisconnectWithWill,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QosNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// Codes 0x80 and above report a failure.
    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The 3.1.1 CONNACK return code standing for this reason code.
    /// True when a DISCONNECT may carry this code (CONNACK-only codes such as 0x84 may not).
    pub fn is_disconnect_reason(self) -> bool {
        DISCONNECT.contains(&self)
    }

    pub fn to_v311_connack(self) -> u8 {
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            BadUserNameOrPassword => 4,
            NotAuthorized | Banned => 5,
            _ => 3,
        }
    }

    /// Reads a 3.1.1 CONNACK return code (0 to 5).
    pub(super) fn from_v311_connack(b: u8) -> Result<ReasonCode, DecodeError> {
        Ok(match b {
            0 => Success,
            1 => UnsupportedProtocolVersion,
            2 => ClientIdentifierNotValid,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return Err(DecodeError::malformed("invalid CONNACK return code")),
        })
    }

    /// The 3.1.1 SUBACK return code: 0, 1, 2 for granted QoS, 0x80 for any failure.
    pub(super) fn to_v311_suback(self) -> u8 {
        match self {
            Success => 0,
            GrantedQos1 => 1,
            GrantedQos2 => 2,
            _ => 0x80,
        }
    }

    /// Reads a 3.1.1 SUBACK return code; 0x80 becomes UnspecifiedError.
    pub(super) fn from_v311_suback(b: u8) -> Result<ReasonCode, DecodeError> {
        match b {
            0 => Ok(Success),
            1 => Ok(GrantedQos1),
            2 => Ok(GrantedQos2),
            0x80 => Ok(UnspecifiedError),
            _ => Err(DecodeError::malformed("invalid SUBACK return code")),
        }
    }

    /// Reads an MQTT 5 reason code that must be one of `allowed` (the table of its packet).
    pub(super) fn decode_in(b: u8, allowed: &[ReasonCode]) -> Result<ReasonCode, DecodeError> {
        match ReasonCode::from_u8(b) {
            Some(code) if allowed.contains(&code) => Ok(code),
            _ => Err(DecodeError::malformed(
                "reason code not valid for this packet",
            )),
        }
    }
}

/// MQTT 5 section 3.2.2.2.
pub(super) const CONNACK: &[ReasonCode] = &[
    Success,
    UnspecifiedError,
    MalformedPacket,
    ProtocolError,
    ImplementationSpecificError,
    UnsupportedProtocolVersion,
    ClientIdentifierNotValid,
    BadUserNameOrPassword,
    NotAuthorized,
    ServerUnavailable,
    ServerBusy,
    Banned,
    BadAuthenticationMethod,
    TopicNameInvalid,
    PacketTooLarge,
    QuotaExceeded,
    PayloadFormatInvalid,
    RetainNotSupported,
    QosNotSupported,
    UseAnotherServer,
    ServerMoved,
    ConnectionRateExceeded,
];

/// MQTT 5 sections 3.4.2.1 and 3.5.2.1.
pub(super) const PUBACK_PUBREC: &[ReasonCode] = &[
    Success,
    NoMatchingSubscribers,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicNameInvalid,
    PacketIdentifierInUse,
    QuotaExceeded,
    PayloadFormatInvalid,
];

/// MQTT 5 sections 3.6.2.1 and 3.7.2.1.
pub(super) const PUBREL_PUBCOMP: &[ReasonCode] = &[Success, PacketIdentifierNotFound];

/// MQTT 5 section 3.9.3.
pub(super) const SUBACK: &[ReasonCode] = &[
    Success,
    GrantedQos1,
    GrantedQos2,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicFilterInvalid,
    PacketIdentifierInUse,
    QuotaExceeded,
    SharedSubscriptionsNotSupported,
    SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported,
];

/// MQTT 5 section 3.11.3.
pub(super) const UNSUBACK: &[ReasonCode] = &[
    Success,
    NoSubscriptionExisted,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicFilterInvalid,
    PacketIdentifierInUse,
];

/// MQTT 5 section 3.14.2.1.
pub(super) const DISCONNECT: &[ReasonCode] = &[
    Success,
    DisconnectWithWill,
    UnspecifiedError,
    MalformedPacket,
    ProtocolError,
    ImplementationSpecificError,
    NotAuthorized,
    ServerBusy,
    ServerShuttingDown,
    KeepAliveTimeout,
    SessionTakenOver,
    TopicFilterInvalid,
    TopicNameInvalid,
    ReceiveMaximumExceeded,
    TopicAliasInvalid,
    PacketTooLarge,
    MessageRateTooHigh,
    QuotaExceeded,
    AdministrativeAction,
    PayloadFormatInvalid,
    RetainNotSupported,
    QosNotSupported,
    UseAnotherServer,
    ServerMoved,
    SharedSubscriptionsNotSupported,
    ConnectionRateExceeded,
    MaximumConnectTime,
    SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported,
];

/// MQTT 5 section 3.15.2.1.
pub(super) const AUTH: &[ReasonCode] = &[Success, ContinueAuthentication, ReAuthenticate];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let mut known = 0;
        for b in 0..=255u8 {
            if let Some(code) = ReasonCode::from_u8(b) {
                assert_eq!(code as u8, b);
                assert_eq!(code.is_error(), b >= 0x80);
                known += 1;
            }
        }
        assert_eq!(known, 43);
    }

    #[test]
    fn v311_connack_mapping() {
        assert_eq!(Success.to_v311_connack(), 0);
        assert_eq!(UnsupportedProtocolVersion.to_v311_connack(), 1);
        assert_eq!(ClientIdentifierNotValid.to_v311_connack(), 2);
        assert_eq!(ServerBusy.to_v311_connack(), 3);
        assert_eq!(ServerShuttingDown.to_v311_connack(), 3);
        assert_eq!(BadUserNameOrPassword.to_v311_connack(), 4);
        assert_eq!(NotAuthorized.to_v311_connack(), 5);
        assert_eq!(Banned.to_v311_connack(), 5);
        for b in 0..=5 {
            assert_eq!(
                ReasonCode::from_v311_connack(b).unwrap().to_v311_connack(),
                b
            );
        }
        assert!(ReasonCode::from_v311_connack(6).is_err());
    }

    #[test]
    fn v311_suback_mapping() {
        for b in [0, 1, 2, 0x80] {
            assert_eq!(ReasonCode::from_v311_suback(b).unwrap().to_v311_suback(), b);
        }
        assert_eq!(NotAuthorized.to_v311_suback(), 0x80);
        assert!(ReasonCode::from_v311_suback(3).is_err());
    }

    #[test]
    fn tables_are_enforced() {
        assert_eq!(
            ReasonCode::decode_in(0x92, PUBREL_PUBCOMP),
            Ok(PacketIdentifierNotFound)
        );
        assert!(ReasonCode::decode_in(0x10, PUBREL_PUBCOMP).is_err());
        assert!(ReasonCode::decode_in(0x03, DISCONNECT).is_err());
        assert!(ReasonCode::decode_in(0x00, AUTH).is_ok());
    }
}
