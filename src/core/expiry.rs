//! What a session's end of connection decides, and its timers: the will published at once
//! or after its delay (never later than the session's expiry), the session ended at once,
//! kept for ever, or kept until its expiry; then, when a will delay or an expiry runs out,
//! whether the timer still stands (the client may have come back since: each detach gives
//! the session a new generation, and a timer names the generation it was set for).

use std::sync::Arc;
use std::time::Duration;

use super::message::Message;
use super::session::Session;

/// What becomes of the will when its connection ends.
#[derive(Debug)]
pub enum WillFate {
    /// No will, or one discarded by a normal disconnection.
    None,
    /// Publish it now.
    Publish(Arc<Message>),
    /// It stays in the session: publish it after this delay unless the client comes back.
    Delay(Duration),
}

/// What becomes of the session when its connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Afterlife {
    /// Expiry 0: it ends with the connection.
    Ends,
    /// Kept (on disk) until the client comes back, for ever.
    Kept,
    /// Kept until its expiry runs out, unless the client comes back.
    Expires(Duration),
}

/// A connection's end, for the session it had.
#[derive(Debug)]
pub struct Detached {
    pub will: WillFate,
    pub session: Afterlife,
}

/// What a will-delay or expiry timer finds when it fires.
#[derive(Debug)]
pub enum Due {
    /// The client came back, or the session ended or was detached again since: nothing.
    Stale,
    /// Publish the will (if any); for an expiry, end the session too.
    Fire { will: Option<Arc<Message>> },
}

/// The session's connection ended; `publish_will` unless the client disconnected
/// normally. Detaches it under a new `generation` (for the timers this sets).
pub fn detach(session: &mut Session, publish_will: bool, generation: u64) -> Detached {
    session.set_connection(None);
    session.generation = generation;
    let expiry = session.expiry_interval;
    let will = match session.will.take().filter(|_| publish_will) {
        None => WillFate::None,
        Some(will) if will.delay > 0 && expiry > 0 => {
            let delay = will.delay.min(expiry);
            session.will = Some(will);
            WillFate::Delay(seconds(delay))
        }
        Some(will) => WillFate::Publish(will.message),
    };
    let afterlife = match expiry {
        0 => Afterlife::Ends,
        u32::MAX => Afterlife::Kept,
        secs => Afterlife::Expires(seconds(secs)),
    };
    Detached {
        will,
        session: afterlife,
    }
}

/// A DISCONNECT's Session Expiry Interval, `asked` (capped by `max_session_expiry`).
/// Refused (a protocol error) when it would keep a session that the CONNECT asked to end
/// with its connection [MQTT-3.14.2-2].
pub fn on_disconnect(
    session: &mut Session,
    asked: Option<u32>,
    max_session_expiry: u32,
) -> Result<(), &'static str> {
    let Some(asked) = asked else {
        return Ok(());
    };
    if session.expiry_interval == 0 && asked != 0 {
        return Err("session expiry set on DISCONNECT after 0 at CONNECT");
    }
    session.expiry_interval = asked.min(max_session_expiry);
    Ok(())
}

/// The will delay set for `generation` ran out: the will, if the session is still offline
/// in that generation.
pub fn will_delay_elapsed(session: &mut Session, generation: u64) -> Due {
    if !stands(session, generation) {
        return Due::Stale;
    }
    Due::Fire {
        will: session.will.take().map(|will| will.message),
    }
}

/// The expiry set for `generation` ran out: if the session is still offline in that
/// generation, it ends, and a will still waiting on its delay goes out first.
pub fn session_expired(session: &mut Session, generation: u64) -> Due {
    will_delay_elapsed(session, generation)
}

fn stands(session: &Session, generation: u64) -> bool {
    session.generation == generation && session.connection().is_none()
}

fn seconds(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::{ConnKey, Key};
    use crate::core::session::Will;
    use crate::core::testing::{message, session};
    use crate::protocol::Qos;

    /// An online session with this expiry and (optionally) a will with this delay.
    fn online(expiry: u32, will_delay: Option<u32>) -> Session {
        let mut s = session("c", Some(1));
        s.expiry_interval = expiry;
        s.will = will_delay.map(|delay| {
            Box::new(Will {
                message: message("c/gone", 1, Qos::AtLeastOnce, false),
                delay,
            })
        });
        s
    }

    /// The will's fate as the table writes it: "none", "now", or "after N s".
    fn fate(will: &WillFate) -> String {
        match will {
            WillFate::None => "none".into(),
            WillFate::Publish(_) => "now".into(),
            WillFate::Delay(d) => format!("after {} s", d.as_secs()),
        }
    }

    #[test]
    fn a_lost_connection_publishes_or_delays_the_will_and_keeps_or_ends_the_session() {
        struct Case {
            name: &'static str,
            expiry: u32,
            will_delay: Option<u32>,
            publish_will: bool,
            /// The will: "none", "now", or "after N s".
            will: &'static str,
            session: Afterlife,
        }
        let cases = [
            Case {
                name: "no will, session ends",
                expiry: 0,
                will_delay: None,
                publish_will: true,
                will: "none",
                session: Afterlife::Ends,
            },
            Case {
                name: "will now, session ends",
                expiry: 0,
                will_delay: Some(0),
                publish_will: true,
                will: "now",
                session: Afterlife::Ends,
            },
            Case {
                name: "a will delay means nothing when the session ends at once",
                expiry: 0,
                will_delay: Some(30),
                publish_will: true,
                will: "now",
                session: Afterlife::Ends,
            },
            Case {
                name: "will after its delay, session kept until expiry",
                expiry: 60,
                will_delay: Some(30),
                publish_will: true,
                will: "after 30 s",
                session: Afterlife::Expires(Duration::from_secs(60)),
            },
            Case {
                name: "the will delay is cut to the session's expiry",
                expiry: 60,
                will_delay: Some(600),
                publish_will: true,
                will: "after 60 s",
                session: Afterlife::Expires(Duration::from_secs(60)),
            },
            Case {
                name: "a normal disconnection discards the will",
                expiry: 60,
                will_delay: Some(30),
                publish_will: false,
                will: "none",
                session: Afterlife::Expires(Duration::from_secs(60)),
            },
            Case {
                name: "a session that never expires is kept for ever",
                expiry: u32::MAX,
                will_delay: Some(0),
                publish_will: true,
                will: "now",
                session: Afterlife::Kept,
            },
        ];
        for case in cases {
            let mut s = online(case.expiry, case.will_delay);
            let d = detach(&mut s, case.publish_will, 7);
            assert_eq!(fate(&d.will), case.will, "{}", case.name);
            assert_eq!(d.session, case.session, "{}", case.name);
            assert!(s.connection().is_none(), "{}", case.name);
            assert_eq!(s.generation, 7, "{}", case.name);
            // Only a delayed will stays in the session, for its timer.
            let delayed = matches!(d.will, WillFate::Delay(_));
            assert_eq!(s.will.is_some(), delayed, "{}", case.name);
        }
    }

    #[test]
    fn a_disconnect_may_change_the_expiry_but_not_revive_a_session() {
        /// (expiry at CONNECT, asked on DISCONNECT, maximum) → expiry after, or refused.
        type Row = (u32, Option<u32>, u32, Result<u32, ()>);
        let table: &[Row] = &[
            (60, None, 3600, Ok(60)),
            (60, Some(0), 3600, Ok(0)),
            (60, Some(120), 3600, Ok(120)),
            (60, Some(7200), 3600, Ok(3600)),
            (0, Some(0), 3600, Ok(0)),
            (0, Some(10), 3600, Err(())),
        ];
        for &(connect, asked, max, expect) in table {
            let mut s = online(connect, None);
            let got = on_disconnect(&mut s, asked, max)
                .map(|()| s.expiry_interval)
                .map_err(|_| ());
            assert_eq!(got, expect, "{connect} then {asked:?} (max {max})");
        }
    }

    #[test]
    fn a_will_delay_fires_once_and_only_while_the_client_stays_away() {
        // Comes back before the delay: the timer finds it online, then in a new generation.
        let mut s = online(60, Some(30));
        detach(&mut s, true, 1);
        s.set_connection(Some(ConnKey::from_index(2)));
        assert!(matches!(will_delay_elapsed(&mut s, 1), Due::Stale));
        detach(&mut s, true, 2);
        assert!(matches!(will_delay_elapsed(&mut s, 1), Due::Stale));
        // Stays away: the will goes out once.
        assert!(matches!(
            will_delay_elapsed(&mut s, 2),
            Due::Fire { will: Some(_) }
        ));
        assert!(matches!(
            will_delay_elapsed(&mut s, 2),
            Due::Fire { will: None }
        ));
    }

    #[test]
    fn an_expiry_ends_only_the_generation_it_was_set_for() {
        let mut s = online(60, Some(600));
        detach(&mut s, true, 1);
        // Back and gone again: the first expiry is stale, the second stands and carries
        // the will still waiting on its (longer) delay.
        s.set_connection(Some(ConnKey::from_index(2)));
        detach(&mut s, true, 2);
        assert!(matches!(session_expired(&mut s, 1), Due::Stale));
        assert!(matches!(
            session_expired(&mut s, 2),
            Due::Fire { will: Some(_) }
        ));
        // Online sessions never expire.
        let mut s = online(60, None);
        s.generation = 3;
        assert!(matches!(session_expired(&mut s, 3), Due::Stale));
    }
}
