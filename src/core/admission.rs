//! Admission: what a client's message meets at the queues of the sessions it is for
//! (`queue_full`), decided for all of them before any is touched, so a publisher held
//! back or refused has changed nothing and its frame can simply be handled again.

use crate::config::QueueFull;
use crate::protocol::Qos;

use super::keys::{ConnKey, SessionKey, Slab};
use super::queue::{self, Budget, Full, QueueLimits};
use super::session::{Outbound, Session};

/// What one delivery of an admitted message does at its session's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send or queue it.
    Deliver,
    /// Drop the session's oldest queued message first (`drop_oldest`).
    MakeRoom(Full),
    /// Drop it for this session (`drop_new`, or a session that kept its publishers
    /// waiting too long).
    Drop(Full),
}

/// Who a held publisher waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// This session's queue.
    Session(SessionKey),
    /// A broker-wide budget (memory or disk), which any queue's draining relieves.
    Budget,
}

/// The answer for the message as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it: each delivery's step says how.
    Accepted,
    /// Hold the publisher back (`backpressure`, or `refuse` toward a 3.1.1 client):
    /// withhold its acknowledgement and stop reading it until the queue has room.
    Held(Holder),
    /// Refuse it (`refuse`, MQTT 5): PUBACK/PUBREC 0x97, delivered to nobody.
    Refused,
}

/// What a message's deliveries may do under the queue limits.
pub struct Rules {
    pub limits: QueueLimits,
    pub policy: QueueFull,
    /// The publisher speaks MQTT 5, so it can be told 0x97.
    pub v5: bool,
}

/// Decides the message's fate and, when it is accepted, each delivery's step in `plan`.
/// `window` gives a connection's in-flight window (its Receive Maximum within ours).
pub fn admit(
    plan: &mut [(SessionKey, Outbound, Step)],
    sessions: &Slab<SessionKey, Session>,
    budget: &Budget,
    rules: &Rules,
    window: impl Fn(ConnKey) -> usize,
) -> Verdict {
    for (key, outbound, step) in plan.iter_mut() {
        let session = &sessions[*key];
        let window = session.connection().map_or(0, &window);
        *step = if outbound.qos == Qos::AtMostOnce
            || !queue::must_queue(session, outbound.qos, window)
        {
            Step::Deliver
        } else {
            match queue::room(session, outbound, budget, &rules.limits) {
                Ok(()) => Step::Deliver,
                Err(full) if session.flight().overflowing => Step::Drop(full),
                Err(full) => match (rules.policy, rules.v5) {
                    (QueueFull::Backpressure, _) | (QueueFull::Refuse, false) => {
                        return Verdict::Held(if full.broker_wide() {
                            Holder::Budget
                        } else {
                            Holder::Session(*key)
                        });
                    }
                    (QueueFull::Refuse, true) => return Verdict::Refused,
                    (QueueFull::DropNew, _) => Step::Drop(full),
                    (QueueFull::DropOldest, _) => Step::MakeRoom(full),
                },
            }
        };
    }
    Verdict::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{fill, in_flight, message, outbound, session};

    /// The window every online test session has.
    const WINDOW: u16 = 4;

    /// One session's state, the limits, the policy, and what the message should meet.
    struct Case {
        name: &'static str,
        policy: QueueFull,
        v5: bool,
        limits: QueueLimits,
        online: bool,
        /// Messages of 10 bytes already queued.
        queued: usize,
        inflight: u16,
        stored: bool,
        overflowing: bool,
        /// The broker-wide budgets already spent: (memory, disk) bytes.
        spent: (usize, usize),
        qos: Qos,
        expect: Expect,
    }

    /// What the message should meet.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        /// Accepted, its delivery doing this.
        Accepted(Step),
        /// The publisher waits for this session's queue.
        HeldByItsQueue,
        HeldByBudget,
        Refused,
    }

    const NONE: QueueLimits = QueueLimits {
        messages: 0,
        bytes: 0,
        memory: 0,
        disk: 0,
    };
    const TWO: QueueLimits = QueueLimits {
        messages: 2,
        ..NONE
    };
    const BASE: Case = Case {
        name: "",
        policy: QueueFull::Backpressure,
        v5: true,
        limits: TWO,
        online: false,
        queued: 2,
        inflight: 0,
        stored: false,
        overflowing: false,
        spent: (0, 0),
        qos: Qos::AtLeastOnce,
        expect: Expect::Accepted(Step::Deliver),
    };

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "online with room in its window: sent, whatever the queue limits",
                online: true,
                queued: 0,
                limits: QueueLimits { bytes: 1, ..TWO },
                ..BASE
            },
            Case {
                name: "QoS 0 to an online client is never held",
                online: true,
                qos: Qos::AtMostOnce,
                ..BASE
            },
            Case {
                name: "no limits: queued however deep",
                limits: NONE,
                queued: 1000,
                ..BASE
            },
            Case {
                name: "online, window full, queue has room: queued",
                online: true,
                queued: 0,
                inflight: WINDOW,
                ..BASE
            },
            Case {
                name: "backpressure, count full: the publisher waits for this queue",
                expect: Expect::HeldByItsQueue,
                ..BASE
            },
            Case {
                name: "refuse, MQTT 5: 0x97 to the publisher",
                policy: QueueFull::Refuse,
                expect: Expect::Refused,
                ..BASE
            },
            Case {
                name: "refuse, 3.1.1 (cannot be told): held as with backpressure",
                policy: QueueFull::Refuse,
                v5: false,
                expect: Expect::HeldByItsQueue,
                ..BASE
            },
            Case {
                name: "drop_new, count full: dropped for this session",
                policy: QueueFull::DropNew,
                expect: Expect::Accepted(Step::Drop(Full::Count)),
                ..BASE
            },
            Case {
                name: "drop_oldest, count full: the oldest makes room",
                policy: QueueFull::DropOldest,
                expect: Expect::Accepted(Step::MakeRoom(Full::Count)),
                ..BASE
            },
            Case {
                name: "drop_new, bytes full",
                policy: QueueFull::DropNew,
                limits: QueueLimits { bytes: 25, ..NONE },
                expect: Expect::Accepted(Step::Drop(Full::Bytes)),
                ..BASE
            },
            Case {
                name: "bytes exactly at the limit still fit",
                limits: QueueLimits { bytes: 30, ..NONE },
                ..BASE
            },
            Case {
                name: "memory budget spent: held for the budget, not the session",
                online: true,
                queued: 0,
                inflight: WINDOW,
                limits: QueueLimits {
                    memory: 100,
                    ..NONE
                },
                spent: (95, 0),
                expect: Expect::HeldByBudget,
                ..BASE
            },
            Case {
                name: "a persistent session counts QoS 1 against the disk, not memory",
                stored: true,
                limits: QueueLimits {
                    memory: 100,
                    ..NONE
                },
                spent: (95, 0),
                ..BASE
            },
            Case {
                name: "drop_oldest, disk budget spent",
                policy: QueueFull::DropOldest,
                stored: true,
                limits: QueueLimits { disk: 100, ..NONE },
                spent: (0, 95),
                expect: Expect::Accepted(Step::MakeRoom(Full::Disk)),
                ..BASE
            },
            Case {
                name: "a session that held publishers too long drops instead of holding",
                overflowing: true,
                expect: Expect::Accepted(Step::Drop(Full::Count)),
                ..BASE
            },
        ]
    }

    #[test]
    fn each_queue_full_policy_at_each_limit() {
        let m = message("a/b", 7, Qos::ExactlyOnce, false);
        for case in cases() {
            let mut sessions = Slab::default();
            let mut s = session("s", case.online.then_some(1));
            s.stored = case.stored;
            fill(&mut s, case.queued, 10);
            in_flight(&mut s, case.inflight, Qos::AtLeastOnce);
            s.flight_mut().overflowing = case.overflowing;
            let k = sessions.insert(s);
            let budget = Budget {
                memory_bytes: case.spent.0,
                disk_bytes: case.spent.1,
                ..Budget::default()
            };
            let rules = Rules {
                limits: case.limits,
                policy: case.policy,
                v5: case.v5,
            };
            let mut plan = [(k, outbound(&m, case.qos), Step::Deliver)];
            let got = match admit(&mut plan, &sessions, &budget, &rules, |_| {
                usize::from(WINDOW)
            }) {
                Verdict::Accepted => Expect::Accepted(plan[0].2),
                Verdict::Held(Holder::Session(held)) if held == k => Expect::HeldByItsQueue,
                Verdict::Held(Holder::Budget) => Expect::HeldByBudget,
                Verdict::Refused => Expect::Refused,
                other => panic!("{}: held by another session: {other:?}", case.name),
            };
            assert_eq!(got, case.expect, "{}", case.name);
        }
    }

    #[test]
    fn one_full_queue_holds_the_whole_message_back() {
        let m = message("a/b", 7, Qos::AtLeastOnce, false);
        let mut sessions = Slab::default();
        let free = sessions.insert(session("free", None));
        let mut s = session("full", None);
        fill(&mut s, 2, 10);
        let full = sessions.insert(s);
        let rules = Rules {
            limits: TWO,
            policy: QueueFull::Backpressure,
            v5: true,
        };
        let mut plan = [
            (free, outbound(&m, Qos::AtLeastOnce), Step::Deliver),
            (full, outbound(&m, Qos::AtLeastOnce), Step::Deliver),
        ];
        let budget = Budget::default();
        let verdict = admit(&mut plan, &sessions, &budget, &rules, |_| {
            usize::from(WINDOW)
        });
        assert_eq!(verdict, Verdict::Held(Holder::Session(full)));
        // With drop_new the free session still gets it.
        let rules = Rules {
            policy: QueueFull::DropNew,
            ..rules
        };
        let verdict = admit(&mut plan, &sessions, &budget, &rules, |_| {
            usize::from(WINDOW)
        });
        assert_eq!(verdict, Verdict::Accepted);
        assert_eq!(plan[0].2, Step::Deliver);
        assert_eq!(plan[1].2, Step::Drop(Full::Count));
    }
}
