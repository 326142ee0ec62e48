//! What a CONNECT decides, once the client is authenticated: the session expiry and keep
//! alive it gets, and what becomes of a session that already has its client id — the live
//! connection taken over, a will still waiting on its delay published or cancelled, the
//! session resumed (Session Present) or ended for a new one. The shell closes the old
//! connection, publishes the will, answers CONNACK and resends what the session is owed.

use std::sync::Arc;

use crate::protocol::ProtocolVersion;

use super::keys::ConnKey;
use super::message::Message;
use super::session::Session;

/// What reconnecting does to the session that has the client's id.
#[derive(Debug)]
pub struct Takeover {
    /// The connection that had the session until now: closed (MQTT 5: DISCONNECT 0x8E).
    pub old: Option<ConnKey>,
    /// A will that must go out now: its connection's, since the session ends, or one with
    /// no delay that was still pending. A delayed will of a resumed session is cancelled.
    pub will: Option<Arc<Message>>,
    /// True when the session carries on (Session Present); false when it ends and the
    /// client gets a new one.
    pub resumed: bool,
}

/// The Session Expiry Interval a client gets, and whether it is less than it asked (CONNACK
/// must then say so). MQTT 5 asks for it (absent: 0); a 3.1.1 client with clean session 0
/// keeps its session for ever. Capped by `max_session_expiry` either way.
pub fn session_expiry(
    version: ProtocolVersion,
    clean_start: bool,
    asked: Option<u32>,
    max_session_expiry: u32,
) -> (u32, bool) {
    let asked = match version {
        ProtocolVersion::V5 => asked.unwrap_or(0),
        ProtocolVersion::V311 if clean_start => 0,
        ProtocolVersion::V311 => u32::MAX,
    };
    let capped = version == ProtocolVersion::V5 && asked > max_session_expiry;
    (asked.min(max_session_expiry), capped)
}

/// The Server Keep Alive to impose when an MQTT 5 client asks more than `max_keepalive`
/// (or none at all while a maximum is configured).
pub fn server_keep_alive(version: ProtocolVersion, asked: u16, max_keepalive: u16) -> Option<u16> {
    let imposed = version == ProtocolVersion::V5
        && max_keepalive < u16::MAX
        && (asked == 0 || asked > max_keepalive);
    imposed.then_some(max_keepalive)
}

/// A client connects with the id of `session`, asking for a `clean_start` or not. Detaches
/// the session from its old connection and takes its will out; the session is resumed
/// unless the client asks for a clean start or the session lasted only as long as its
/// connection (expiry 0), which the takeover closes.
pub fn take_over(session: &mut Session, clean_start: bool) -> Takeover {
    let resumed = !clean_start && session.expiry_interval != 0;
    let old = session.connection();
    session.set_connection(None);
    let will = session
        .will
        .take()
        .filter(|will| !resumed || will.delay == 0)
        .map(|will| will.message);
    Takeover { old, will, resumed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::Key;
    use crate::core::session::Will;
    use crate::core::testing::{message, session};
    use crate::protocol::Qos;

    #[test]
    fn a_reconnect_takes_over_resumes_or_ends_the_session() {
        struct Case {
            name: &'static str,
            online: bool,
            expiry: u32,
            /// The pending will's delay, if the session has one.
            will_delay: Option<u32>,
            clean_start: bool,
            /// Old connection closed, will published now, session resumed.
            expect: (bool, bool, bool),
        }
        let cases = [
            Case {
                name: "offline persistent session, resumed",
                online: false,
                expiry: 60,
                will_delay: None,
                clean_start: false,
                expect: (false, false, true),
            },
            Case {
                name: "online persistent session: taken over and resumed",
                online: true,
                expiry: 60,
                will_delay: None,
                clean_start: false,
                expect: (true, false, true),
            },
            Case {
                name: "clean start ends it",
                online: true,
                expiry: 60,
                will_delay: None,
                clean_start: true,
                expect: (true, false, false),
            },
            Case {
                name: "expiry 0 ends with its connection even when asked to resume",
                online: true,
                expiry: 0,
                will_delay: None,
                clean_start: false,
                expect: (true, false, false),
            },
            Case {
                name: "a delayed will is cancelled by a resume",
                online: false,
                expiry: 60,
                will_delay: Some(30),
                clean_start: false,
                expect: (false, false, true),
            },
            Case {
                name: "a delayed will goes out when the session ends",
                online: false,
                expiry: 60,
                will_delay: Some(30),
                clean_start: true,
                expect: (false, true, false),
            },
            Case {
                name: "the taken-over connection's will goes out when its session ends",
                online: true,
                expiry: 0,
                will_delay: Some(0),
                clean_start: true,
                expect: (true, true, false),
            },
            Case {
                name: "a will without delay goes out even on resume",
                online: true,
                expiry: 60,
                will_delay: Some(0),
                clean_start: false,
                expect: (true, true, true),
            },
        ];
        for case in cases {
            let mut s = session("c", case.online.then_some(3));
            s.expiry_interval = case.expiry;
            s.will = case.will_delay.map(|delay| {
                Box::new(Will {
                    message: message("c/gone", 1, Qos::AtLeastOnce, false),
                    delay,
                })
            });
            let t = take_over(&mut s, case.clean_start);
            let got = (t.old.is_some(), t.will.is_some(), t.resumed);
            assert_eq!(got, case.expect, "{}", case.name);
            if let Some(old) = t.old {
                assert_eq!(old, ConnKey::from_index(3), "{}", case.name);
            }
            assert!(s.connection().is_none(), "{}: detached", case.name);
            assert!(
                s.will.is_none(),
                "{}: the will is gone either way",
                case.name
            );
        }
    }

    #[test]
    fn session_expiry_as_asked_within_the_maximum() {
        use ProtocolVersion::{V311, V5};
        /// (version, clean start, asked, maximum) → (granted, CONNACK says it was capped)
        type Row = (ProtocolVersion, bool, Option<u32>, u32, (u32, bool));
        let table: &[Row] = &[
            (V5, false, None, 3600, (0, false)),
            (V5, true, Some(60), 3600, (60, false)),
            (V5, false, Some(7200), 3600, (3600, true)),
            (V5, false, Some(u32::MAX), u32::MAX, (u32::MAX, false)),
            (V311, true, None, 3600, (0, false)),
            (V311, false, None, u32::MAX, (u32::MAX, false)),
            // A 3.1.1 client cannot be told: capped silently.
            (V311, false, None, 3600, (3600, false)),
        ];
        for &(version, clean, asked, max, expect) in table {
            assert_eq!(
                session_expiry(version, clean, asked, max),
                expect,
                "{version:?} clean {clean} asked {asked:?} max {max}"
            );
        }
    }

    #[test]
    fn server_keep_alive_only_when_an_mqtt5_client_asks_too_much() {
        use ProtocolVersion::{V311, V5};
        let table: &[(ProtocolVersion, u16, u16, Option<u16>)] = &[
            (V5, 60, 300, None),
            (V5, 600, 300, Some(300)),
            (V5, 0, 300, Some(300)),
            (V5, 0, u16::MAX, None),
            (V311, 600, 300, None),
        ];
        for &(version, asked, max, expect) in table {
            assert_eq!(
                server_keep_alive(version, asked, max),
                expect,
                "{version:?} asked {asked} max {max}"
            );
        }
    }
}
