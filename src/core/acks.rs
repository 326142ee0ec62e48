//! The QoS 1/2 handshakes as decisions on a session, both ways. Toward the client: a
//! PUBACK, PUBREC or PUBCOMP settles or advances a message in flight, whatever comes twice
//! or never; on reconnect what was in flight is sent again. From the client: a QoS 2
//! packet id is known from its PUBLISH to its PUBREL, so a resend is answered but not
//! delivered twice, and a client that runs ahead of our Receive Maximum waits (or, with a
//! flood of open QoS 2 exchanges, is refused). The shell stages the store writes, sends
//! the answers and refills the window as each outcome says.

use crate::protocol::{PacketId, Qos};

use super::session::{Inflight, InflightState, Outbound, Session};

/// How many times the Receive Maximum of open QoS 2 exchanges a client may have before it
/// is disconnected with 0x93: a small overrun is a client ignoring the window, this much
/// is a flood.
pub const QOS2_FLOOD_FACTOR: usize = 2;

/// What a PUBACK from the client does.
#[derive(Debug)]
pub enum PubAck {
    /// Its QoS 1 message is delivered: forget its queue entry, refill the window.
    Settled(Inflight),
    /// The id is a QoS 2 message's: a protocol error.
    NotQos1,
    /// Nothing in flight has that id (an ack repeated after a resend): ignored.
    Unknown,
}

/// What a PUBREC from the client does.
#[derive(Debug)]
pub enum PubRec {
    /// Received: the message is now released (stage that) and PUBREL 0x00 goes out. A
    /// repeated PUBREC gets the PUBREL again.
    Release(Outbound),
    /// The client refused the message (an error reason): the exchange ends here.
    Refused(Inflight),
    /// No QoS 2 message in flight has that id: PUBREL 0x92 (Packet Identifier not found).
    Unknown,
}

/// One packet to send again when a session is resumed.
#[derive(Debug)]
pub enum Resend {
    /// The PUBLISH, with DUP set: its PUBACK or PUBREC never came.
    Publish(PacketId, Outbound),
    /// The PUBREL: its PUBCOMP never came.
    Release(PacketId),
}

/// What an inbound QoS 1/2 PUBLISH meets at our Receive Maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Handle it now.
    Open,
    /// Hold the client until the acknowledgements already given are written, then read
    /// the PUBLISH again.
    Wait,
    /// More open QoS 2 exchanges than waiting can bring back under the window: 0x93.
    Flood,
}

/// Settles the QoS 1 message `id` on its PUBACK.
pub fn puback(session: &mut Session, id: PacketId) -> PubAck {
    let found = session
        .flight()
        .inflight
        .iter()
        .position(|i| i.packet_id == id && i.state == InflightState::Published);
    match found {
        None => PubAck::Unknown,
        Some(pos) if session.flight().inflight[pos].outbound.qos != Qos::AtLeastOnce => {
            PubAck::NotQos1
        }
        Some(pos) => session
            .remove_inflight(pos)
            .map_or(PubAck::Unknown, PubAck::Settled),
    }
}

/// Advances the QoS 2 message `id` on its PUBREC; `refused` when its reason is an error.
pub fn pubrec(session: &mut Session, id: PacketId, refused: bool) -> PubRec {
    let found = session
        .flight()
        .inflight
        .iter()
        .position(|i| i.packet_id == id && i.outbound.qos == Qos::ExactlyOnce);
    let Some(pos) = found else {
        return PubRec::Unknown;
    };
    if refused {
        return session
            .remove_inflight(pos)
            .map_or(PubRec::Unknown, PubRec::Refused);
    }
    let entry = &mut session.flight_mut().inflight[pos];
    entry.state = InflightState::Released;
    PubRec::Release(entry.outbound.clone())
}

/// Settles the QoS 2 message `id` on its PUBCOMP; `None` when no PUBREL for it is out
/// (a repeated or early PUBCOMP), which is ignored.
pub fn pubcomp(session: &mut Session, id: PacketId) -> Option<Inflight> {
    session.take_inflight(id, InflightState::Released)
}

/// What to send again, in order, when the session's client reconnects.
pub fn resends(session: &Session) -> Vec<Resend> {
    session
        .flight()
        .inflight
        .iter()
        .map(|entry| match entry.state {
            InflightState::Published => Resend::Publish(entry.packet_id, entry.outbound.clone()),
            InflightState::Released => Resend::Release(entry.packet_id),
        })
        .collect()
}

/// True when an inbound QoS 2 PUBLISH `id` was taken already and its PUBREL has not come:
/// a resend after a lost PUBREC, answered with PUBREC again and delivered to nobody.
pub fn is_qos2_resend(session: &Session, id: PacketId) -> bool {
    session.flight().incoming_qos2.contains(&id.get())
}

/// Notes an inbound QoS 2 `id` whose PUBREC goes out, until its PUBREL.
pub fn take_qos2(session: &mut Session, id: PacketId) {
    session.flight_mut().incoming_qos2.push(id.get());
}

/// The client's PUBREL for inbound QoS 2 `id`: true when it was known (PUBCOMP 0x00, the
/// id is free again), false for an unknown or repeated one (PUBCOMP 0x92).
pub fn pubrel(session: &mut Session, id: PacketId) -> bool {
    session.remove_incoming_qos2(id.get())
}

/// Whether an inbound QoS 1/2 PUBLISH (not a QoS 2 resend) fits our `receive_maximum`,
/// given the session's `open_qos2` exchanges and the connection's `unwritten_acks` (QoS 1
/// acknowledgements given but not yet written). Open QoS 2 exchanges end only with a PUBREL
/// further on in the stream, so waiting cannot help them: up to [`QOS2_FLOOD_FACTOR`] times
/// the window they are tolerated, beyond it refused.
pub fn inbound_window(receive_maximum: u16, open_qos2: usize, unwritten_acks: u16) -> Window {
    let window = usize::from(receive_maximum);
    let unwritten = usize::from(unwritten_acks);
    if open_qos2 + unwritten < window {
        Window::Open
    } else if unwritten > 0 {
        Window::Wait
    } else if open_qos2 >= window * QOS2_FLOOD_FACTOR {
        Window::Flood
    } else {
        Window::Open
    }
}

/// How many unacknowledged QoS 1/2 messages we may have out to a client: its Receive
/// Maximum, within our `max_inflight`.
pub fn send_window(client_receive_maximum: u16, max_inflight: u16) -> usize {
    usize::from(client_receive_maximum.min(max_inflight))
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU16;

    use super::*;
    use crate::core::testing::{message, outbound, session};

    fn id(n: u16) -> PacketId {
        NonZeroU16::new(n).expect("non-zero")
    }

    /// A session with messages in flight: (packet id, QoS) each, PUBLISH sent.
    fn sending(flight: &[(u16, Qos)]) -> Session {
        let mut s = session("sub", Some(1));
        for &(n, qos) in flight {
            let m = message(&format!("t/{n}"), 1, qos, false);
            s.flight_mut().inflight.push_back(Inflight {
                packet_id: id(n),
                state: InflightState::Published,
                outbound: outbound(&m, qos),
            });
        }
        s
    }

    /// What is still in flight: (packet id, state), oldest first.
    fn in_flight(s: &Session) -> Vec<(u16, InflightState)> {
        let flight = s.flight().inflight.iter();
        flight.map(|i| (i.packet_id.get(), i.state)).collect()
    }

    /// An acknowledgement from the client, as the table writes it.
    #[derive(Debug, Clone, Copy)]
    enum Ack {
        Puback(u16),
        Pubrec(u16),
        RefusingPubrec(u16),
        Pubcomp(u16),
    }

    /// What the broker should do about it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Then {
        /// Forget the message (its queue entry), refill the window.
        Settle,
        /// Send PUBREL 0x00.
        Release,
        /// Send PUBREL 0x92.
        ReleaseNotFound,
        /// Close with a protocol error.
        ProtocolError,
        Ignore,
    }

    fn apply(s: &mut Session, ack: Ack) -> Then {
        match ack {
            Ack::Puback(n) => match puback(s, id(n)) {
                PubAck::Settled(done) => {
                    assert_eq!(done.packet_id, id(n));
                    Then::Settle
                }
                PubAck::NotQos1 => Then::ProtocolError,
                PubAck::Unknown => Then::Ignore,
            },
            Ack::Pubrec(n) | Ack::RefusingPubrec(n) => {
                match pubrec(s, id(n), matches!(ack, Ack::RefusingPubrec(_))) {
                    PubRec::Release(_) => Then::Release,
                    PubRec::Refused(_) => Then::Settle,
                    PubRec::Unknown => Then::ReleaseNotFound,
                }
            }
            Ack::Pubcomp(n) => match pubcomp(s, id(n)) {
                Some(_) => Then::Settle,
                None => Then::Ignore,
            },
        }
    }

    #[test]
    fn acknowledgements_toward_the_client_with_loss_and_duplicates() {
        use InflightState::{Published, Released};
        use Qos::{AtLeastOnce as Q1, ExactlyOnce as Q2};
        struct Case {
            name: &'static str,
            flight: &'static [(u16, Qos)],
            /// Each acknowledgement and what it should do.
            acks: &'static [(Ack, Then)],
            /// What is left in flight afterwards.
            left: &'static [(u16, InflightState)],
        }
        let cases = [
            Case {
                name: "QoS 1: each PUBACK settles its message once, in any order",
                flight: &[(1, Q1), (2, Q1), (3, Q1)],
                acks: &[
                    (Ack::Puback(2), Then::Settle),
                    (Ack::Puback(2), Then::Ignore),
                    (Ack::Puback(9), Then::Ignore),
                    (Ack::Puback(1), Then::Settle),
                ],
                left: &[(3, Published)],
            },
            Case {
                name: "QoS 1: a PUBREC or PUBCOMP for it changes nothing",
                flight: &[(1, Q1)],
                acks: &[
                    (Ack::Pubrec(1), Then::ReleaseNotFound),
                    (Ack::Pubcomp(1), Then::Ignore),
                ],
                left: &[(1, Published)],
            },
            Case {
                name: "QoS 2: PUBREC releases, PUBCOMP settles",
                flight: &[(1, Q2)],
                acks: &[
                    (Ack::Pubrec(1), Then::Release),
                    (Ack::Pubcomp(1), Then::Settle),
                ],
                left: &[],
            },
            Case {
                name: "QoS 2: a repeated PUBREC gets the PUBREL again",
                flight: &[(1, Q2)],
                acks: &[
                    (Ack::Pubrec(1), Then::Release),
                    (Ack::Pubrec(1), Then::Release),
                ],
                left: &[(1, Released)],
            },
            Case {
                name: "QoS 2: PUBCOMP before its PUBREL went out, then a repeated PUBCOMP",
                flight: &[(1, Q2)],
                acks: &[
                    (Ack::Pubcomp(1), Then::Ignore),
                    (Ack::Pubrec(1), Then::Release),
                    (Ack::Pubcomp(1), Then::Settle),
                    (Ack::Pubcomp(1), Then::Ignore),
                ],
                left: &[],
            },
            Case {
                name: "QoS 2: a PUBACK for it is a protocol error and changes nothing",
                flight: &[(1, Q1), (2, Q2), (3, Q1)],
                acks: &[(Ack::Puback(2), Then::ProtocolError)],
                left: &[(1, Published), (2, Published), (3, Published)],
            },
            Case {
                name: "QoS 2: a refusing PUBREC ends the exchange",
                flight: &[(1, Q2), (2, Q2)],
                acks: &[
                    (Ack::RefusingPubrec(1), Then::Settle),
                    (Ack::Pubcomp(1), Then::Ignore),
                    (Ack::Pubrec(2), Then::Release),
                ],
                left: &[(2, Released)],
            },
            Case {
                name: "QoS 2: PUBREC for an unknown id",
                flight: &[(1, Q2)],
                acks: &[(Ack::Pubrec(7), Then::ReleaseNotFound)],
                left: &[(1, Published)],
            },
        ];
        for case in cases {
            let mut s = sending(case.flight);
            for &(ack, then) in case.acks {
                assert_eq!(apply(&mut s, ack), then, "{}: {ack:?}", case.name);
            }
            assert_eq!(in_flight(&s), case.left, "{}", case.name);
        }
    }

    #[test]
    fn a_resumed_session_resends_what_was_not_acknowledged_in_order() {
        let mut s = sending(&[
            (1, Qos::ExactlyOnce),
            (2, Qos::AtLeastOnce),
            (3, Qos::ExactlyOnce),
            (4, Qos::AtLeastOnce),
        ]);
        // PUBREC of 1 came and its PUBREL went out; the PUBACK of 2 came; the rest was lost.
        assert!(matches!(pubrec(&mut s, id(1), false), PubRec::Release(_)));
        assert!(matches!(puback(&mut s, id(2)), PubAck::Settled(_)));
        let resent: Vec<String> = resends(&s)
            .iter()
            .map(|r| match r {
                Resend::Publish(n, o) => format!("PUBLISH {n} on {}", o.message.topic),
                Resend::Release(n) => format!("PUBREL {n}"),
            })
            .collect();
        assert_eq!(resent, ["PUBREL 1", "PUBLISH 3 on t/3", "PUBLISH 4 on t/4"]);
        assert!(resends(&session("idle", Some(1))).is_empty());
    }

    #[test]
    fn inbound_qos2_is_delivered_once_whatever_the_client_resends() {
        /// (what the client sends, whether a PUBLISH is new / a PUBREL known)
        #[derive(Debug, Clone, Copy)]
        enum From {
            Publish(u16),
            PubRel(u16),
        }
        let table: &[(From, bool)] = &[
            (From::Publish(5), true),
            // Our PUBREC was lost: the same PUBLISH again is answered, not delivered.
            (From::Publish(5), false),
            (From::Publish(6), true),
            (From::PubRel(5), true),
            // Our PUBCOMP was lost: the PUBREL again gets 0x92.
            (From::PubRel(5), false),
            (From::PubRel(9), false),
            // The id is free again: a new message.
            (From::Publish(5), true),
            (From::PubRel(6), true),
            (From::PubRel(5), true),
        ];
        let mut s = session("pub", Some(1));
        for &(packet, expect) in table {
            let got = match packet {
                From::Publish(n) => {
                    let new = !is_qos2_resend(&s, id(n));
                    if new {
                        take_qos2(&mut s, id(n));
                    }
                    new
                }
                From::PubRel(n) => pubrel(&mut s, id(n)),
            };
            assert_eq!(got, expect, "{packet:?}");
        }
        assert!(s.flight().incoming_qos2.is_empty());
    }

    #[test]
    fn an_inbound_publish_beyond_receive_maximum_waits_or_is_refused() {
        // (Receive Maximum, open QoS 2 exchanges, QoS 1 acks not yet written) → verdict.
        let table: &[(u16, usize, u16, Window)] = &[
            (10, 0, 0, Window::Open),
            (10, 4, 5, Window::Open),
            // At the window with acks pending: wait until they are written.
            (10, 0, 10, Window::Wait),
            (10, 5, 5, Window::Wait),
            (10, 19, 1, Window::Wait),
            // At the window with nothing to wait for: a small overrun is tolerated…
            (10, 10, 0, Window::Open),
            (10, 19, 0, Window::Open),
            // …twice the window of open QoS 2 exchanges is a flood.
            (10, 20, 0, Window::Flood),
            (2, 4, 0, Window::Flood),
            (1, 1, 0, Window::Open),
            (1, 0, 1, Window::Wait),
        ];
        for &(window, open_qos2, unwritten, expect) in table {
            assert_eq!(
                inbound_window(window, open_qos2, unwritten),
                expect,
                "receive maximum {window}, {open_qos2} open QoS 2, {unwritten} acks unwritten"
            );
        }
    }

    #[test]
    fn the_send_window_is_the_smaller_of_both_sides() {
        assert_eq!(send_window(65535, 20), 20);
        assert_eq!(send_window(5, 20), 5);
        assert_eq!(send_window(1, 1), 1);
    }
}
