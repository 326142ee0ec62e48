//! Routing: who gets a message, and how. The subscriptions its topic matches (one member
//! picked per shared group), then one delivery per session that may read it, that
//! session's overlapping subscriptions merged into one copy: the highest QoS any of them
//! grants (never above the message's), Retain As Published, every Subscription Identifier,
//! No Local. Nothing here is changed but a shared group's round-robin position; what the
//! deliveries meet at the queues is `admission`'s decision, and the shell carries them out.

use std::sync::Arc;

use crate::auth::acl::{is_reply_topic, reply_topic_allows, Action};
use crate::protocol::Qos;
use crate::topic::{SharedGroup, TopicTrie};

use super::admission::Step;
use super::keys::{SessionKey, Slab};
use super::message::Message;
use super::session::{Outbound, Session, SubEntry};
use super::shared::SharedCursors;

/// The deliveries of one message and what each does at its session's queue.
pub type Plan = Vec<(SessionKey, Outbound, Step)>;

/// The subscriptions one topic matched. Its buffers are reused from message to message,
/// so routing allocates nothing per message.
#[derive(Default)]
pub struct Matches {
    /// One entry per matching subscription: plain ones, then the picked shared members.
    found: Vec<(SessionKey, SubEntry)>,
    /// The picked shared-group members, gathered apart while the trie is walked.
    shared: Vec<(SessionKey, SubEntry)>,
}

impl Matches {
    /// Finds the subscriptions matching `topic`, one member picked per shared group
    /// (which moves that group's round robin on); true if there are any. Matching comes
    /// before the message is built, so one that nobody subscribes to is never copied.
    pub fn find(
        &mut self,
        topic: &str,
        trie: &TopicTrie<SubEntry, SessionKey>,
        sessions: &Slab<SessionKey, Session>,
        cursors: &mut SharedCursors,
    ) -> bool {
        let Matches { found, shared } = self;
        found.clear();
        shared.clear();
        trie.for_each_match(
            topic,
            |session, entry| found.push((session, *entry)),
            |group| shared.extend(pick_member(group, sessions, cursors)),
        );
        found.append(shared);
        !found.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// True when `session` may read `topic_or_filter`: its ACL and, while the chat service
/// runs (`private_replies`), reply topics only for their owner.
pub fn may_read(session: &Session, topic_or_filter: &str, private_replies: bool) -> bool {
    let private_ok = !private_replies
        || reply_topic_allows(
            topic_or_filter,
            session.username.as_deref(),
            &session.client_id,
        );
    private_ok && session.acl.allows(Action::Read, topic_or_filter)
}

/// Every delivery of `message` from the `matches` found for its topic, into `out`
/// (cleared first), each with `Step::Deliver`: one per matching session that may read it
/// (see [`may_read`]), its overlapping subscriptions merged into one copy.
pub fn deliveries(
    message: &Arc<Message>,
    matches: &mut Matches,
    sessions: &Slab<SessionKey, Session>,
    private_replies: bool,
    out: &mut Plan,
) {
    out.clear();
    let found = &mut matches.found;
    found.sort_unstable_by_key(|(session, _)| *session);
    let private = private_replies && is_reply_topic(&message.topic);
    for subs in found.chunk_by(|a, b| a.0 == b.0) {
        let session = subs[0].0;
        let s = &sessions[session];
        // Most clients have no rules at all: no per-message check for them.
        let readable = if private {
            may_read(s, &message.topic, true)
        } else {
            s.acl.allows_everything() || s.acl.allows(Action::Read, &message.topic)
        };
        if let Some(outbound) = merge(message, session, subs).filter(|_| readable) {
            out.push((session, outbound, Step::Deliver));
        }
    }
}

/// One delivery for `session` from its matching subscriptions, or `None` when every one of
/// them is No Local and the session published the message itself.
fn merge(
    message: &Arc<Message>,
    session: SessionKey,
    subs: &[(SessionKey, SubEntry)],
) -> Option<Outbound> {
    let mut best: Option<Qos> = None;
    let mut retain = false;
    let mut subscription_ids = Vec::new();
    for (_, entry) in subs {
        if entry.options.no_local && message.publisher == Some(session) {
            continue;
        }
        best = best.max(Some(entry.options.qos));
        retain |= entry.options.retain_as_published && message.retain;
        subscription_ids.extend(entry.identifier);
    }
    Some(Outbound {
        message: message.clone(),
        qos: best?.min(message.qos),
        retain,
        subscription_ids,
        seq: None,
    })
}

/// Round robin over a shared group's members, preferring online ones; an offline
/// persistent member gets the message queued when nobody is online.
fn pick_member(
    group: &SharedGroup<SubEntry, SessionKey>,
    sessions: &Slab<SessionKey, Session>,
    cursors: &mut SharedCursors,
) -> Option<(SessionKey, SubEntry)> {
    let n = group.members.len();
    if n == 0 {
        return None;
    }
    let cursor = cursors.get_mut(&group.group, &group.filter);
    let start = *cursor % n;
    let online = (0..n).map(|k| (start + k) % n).find(|&i| {
        sessions
            .get(group.members[i].0)
            .is_some_and(|s| s.connection().is_some())
    });
    let chosen = online.unwrap_or(start);
    *cursor = chosen + 1;
    Some(group.members[chosen])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::ClientAcl;
    use crate::core::testing::{message, session};
    use crate::protocol::{RetainHandling, SubscriptionOptions};

    /// A subscription's options as a test writes them.
    #[derive(Clone, Copy)]
    struct Sub {
        qos: Qos,
        no_local: bool,
        rap: bool,
        id: Option<u32>,
    }

    const SUB: Sub = Sub {
        qos: Qos::AtLeastOnce,
        no_local: false,
        rap: false,
        id: None,
    };

    fn entry(sub: Sub) -> SubEntry {
        SubEntry {
            options: SubscriptionOptions {
                qos: sub.qos,
                no_local: sub.no_local,
                retain_as_published: sub.rap,
                retain_handling: RetainHandling::OnSubscribe,
            },
            identifier: sub.id,
        }
    }

    /// Sessions, their subscriptions and the shared groups' positions.
    #[derive(Default)]
    struct World {
        sessions: Slab<SessionKey, Session>,
        trie: TopicTrie<SubEntry, SessionKey>,
        cursors: SharedCursors,
        matches: Matches,
    }

    impl World {
        /// A session of client `id`, online on a connection of its own or offline.
        fn client(&mut self, id: &str, online: bool) -> SessionKey {
            let conn = online.then_some(self.sessions.len() as u32);
            self.sessions.insert(session(id, conn))
        }

        /// Subscribes `session` to `filter`, `$share/group/filter` for a shared one.
        fn subscribe(&mut self, session: SessionKey, filter: &str, sub: Sub) {
            let (group, plain) = match filter.strip_prefix("$share/") {
                Some(rest) => {
                    let (group, plain) = rest.split_once('/').expect("group/filter");
                    (Some(group), plain)
                }
                None => (None, filter),
            };
            self.trie.subscribe(plain, group, session, entry(sub));
        }

        /// The deliveries of a message on `topic`, published by `publisher`.
        fn route(
            &mut self,
            topic: &str,
            qos: Qos,
            retain: bool,
            publisher: Option<SessionKey>,
        ) -> Plan {
            let mut m = message(topic, 4, qos, retain);
            Arc::get_mut(&mut m).expect("fresh").publisher = publisher;
            let World {
                sessions,
                trie,
                cursors,
                matches,
            } = self;
            matches.find(topic, trie, sessions, cursors);
            let mut plan = Vec::new();
            deliveries(&m, matches, sessions, true, &mut plan);
            plan
        }

        /// Which sessions get a message on `topic`, by client id.
        fn receivers(&mut self, topic: &str) -> Vec<String> {
            let plan = self.route(topic, Qos::AtLeastOnce, false, None);
            plan.iter()
                .map(|(s, _, _)| self.sessions[*s].client_id.to_string())
                .collect()
        }
    }

    #[test]
    fn overlapping_subscriptions_of_a_session_merge_into_one_delivery() {
        struct Case {
            name: &'static str,
            subs: &'static [(&'static str, Sub)],
            /// The message's QoS and RETAIN flag, and whether the subscriber published it.
            qos: Qos,
            retain: bool,
            own: bool,
            /// The one delivery: QoS, RETAIN, subscription identifiers; or none.
            expect: Option<(Qos, bool, &'static [u32])>,
        }
        const Q0: Sub = Sub {
            qos: Qos::AtMostOnce,
            ..SUB
        };
        const Q2: Sub = Sub {
            qos: Qos::ExactlyOnce,
            ..SUB
        };
        let cases = [
            Case {
                name: "one subscription, QoS capped at the message's",
                subs: &[("a/b", Q2)],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: false,
                expect: Some((Qos::AtLeastOnce, false, &[])),
            },
            Case {
                name: "one subscription, QoS capped at the subscription's",
                subs: &[("a/b", Q0)],
                qos: Qos::ExactlyOnce,
                retain: false,
                own: false,
                expect: Some((Qos::AtMostOnce, false, &[])),
            },
            Case {
                name: "overlapping: the highest QoS wins",
                subs: &[("a/b", Q0), ("a/+", Q2), ("#", SUB)],
                qos: Qos::ExactlyOnce,
                retain: false,
                own: false,
                expect: Some((Qos::ExactlyOnce, false, &[])),
            },
            Case {
                name: "every matching subscription identifier, once each",
                subs: &[
                    ("a/b", Sub { id: Some(7), ..SUB }),
                    ("a/#", Sub { id: Some(9), ..SUB }),
                    ("+/b", SUB),
                ],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: false,
                expect: Some((Qos::AtLeastOnce, false, &[7, 9])),
            },
            Case {
                name: "RETAIN is cleared without Retain As Published",
                subs: &[("a/b", SUB)],
                qos: Qos::AtLeastOnce,
                retain: true,
                own: false,
                expect: Some((Qos::AtLeastOnce, false, &[])),
            },
            Case {
                name: "Retain As Published keeps RETAIN",
                subs: &[("a/b", Sub { rap: true, ..SUB })],
                qos: Qos::AtLeastOnce,
                retain: true,
                own: false,
                expect: Some((Qos::AtLeastOnce, true, &[])),
            },
            Case {
                name: "Retain As Published on one overlapping subscription is enough",
                subs: &[("a/b", SUB), ("a/#", Sub { rap: true, ..SUB })],
                qos: Qos::AtLeastOnce,
                retain: true,
                own: false,
                expect: Some((Qos::AtLeastOnce, true, &[])),
            },
            Case {
                name: "Retain As Published does not invent RETAIN",
                subs: &[("a/b", Sub { rap: true, ..SUB })],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: false,
                expect: Some((Qos::AtLeastOnce, false, &[])),
            },
            Case {
                name: "No Local: its own message is not sent back",
                subs: &[(
                    "a/b",
                    Sub {
                        no_local: true,
                        ..SUB
                    },
                )],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: true,
                expect: None,
            },
            Case {
                name: "No Local: someone else's message is sent",
                subs: &[(
                    "a/b",
                    Sub {
                        no_local: true,
                        ..SUB
                    },
                )],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: false,
                expect: Some((Qos::AtLeastOnce, false, &[])),
            },
            Case {
                name:
                    "No Local on one subscription: the others still deliver, at their QoS and ids",
                subs: &[
                    (
                        "a/b",
                        Sub {
                            no_local: true,
                            qos: Qos::ExactlyOnce,
                            id: Some(1),
                            ..SUB
                        },
                    ),
                    (
                        "a/#",
                        Sub {
                            qos: Qos::AtMostOnce,
                            id: Some(2),
                            ..SUB
                        },
                    ),
                ],
                qos: Qos::ExactlyOnce,
                retain: false,
                own: true,
                expect: Some((Qos::AtMostOnce, false, &[2])),
            },
            Case {
                name: "a shared subscription merges with the session's plain one",
                subs: &[
                    ("a/b", Sub { id: Some(3), ..Q0 }),
                    ("$share/g/a/b", Sub { id: Some(4), ..Q2 }),
                ],
                qos: Qos::ExactlyOnce,
                retain: false,
                own: false,
                expect: Some((Qos::ExactlyOnce, false, &[3, 4])),
            },
            Case {
                name: "No Local applies to a shared subscription too",
                subs: &[(
                    "$share/g/a/b",
                    Sub {
                        no_local: true,
                        ..SUB
                    },
                )],
                qos: Qos::AtLeastOnce,
                retain: false,
                own: true,
                expect: None,
            },
        ];
        for case in cases {
            let mut world = World::default();
            let other = world.client("other", true);
            let me = world.client("me", true);
            for (filter, sub) in case.subs {
                world.subscribe(me, filter, *sub);
            }
            let publisher = if case.own { me } else { other };
            let plan = world.route("a/b", case.qos, case.retain, Some(publisher));
            let got: Option<(Qos, bool, Vec<u32>)> = match plan.as_slice() {
                [] => None,
                [(session, outbound, step)] => {
                    assert_eq!(*session, me, "{}", case.name);
                    assert_eq!(*step, Step::Deliver, "{}", case.name);
                    let mut ids = outbound.subscription_ids.clone();
                    ids.sort_unstable();
                    Some((outbound.qos, outbound.retain, ids))
                }
                more => panic!(
                    "{}: {} deliveries, expected at most one",
                    case.name,
                    more.len()
                ),
            };
            let expect = case.expect.map(|(q, r, ids)| (q, r, ids.to_vec()));
            assert_eq!(got, expect, "{}", case.name);
        }
    }

    #[test]
    fn each_session_gets_one_copy_and_nobody_else_does() {
        let mut world = World::default();
        let a = world.client("a", true);
        let b = world.client("b", false);
        let c = world.client("c", true);
        world.subscribe(a, "x/#", SUB);
        world.subscribe(a, "x/y", SUB);
        world.subscribe(b, "x/+", SUB);
        world.subscribe(c, "z/#", SUB);
        assert_eq!(world.receivers("x/y"), ["a", "b"]);
        assert_eq!(world.receivers("z"), ["c"]);
        assert!(world.receivers("q").is_empty());
        assert!(!world
            .matches
            .find("q", &world.trie, &world.sessions, &mut world.cursors));
        // Wildcards at the root do not match `$` topics.
        world.subscribe(c, "#", SUB);
        assert!(world.receivers("$SYS/x").is_empty());
    }

    #[test]
    fn a_shared_group_takes_turns_among_online_members() {
        struct Case {
            name: &'static str,
            /// Members in subscription order, and whether each is online.
            members: &'static [(&'static str, bool)],
            /// Who gets each of the messages sent in a row.
            expect: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "round robin in subscription order",
                members: &[("a", true), ("b", true), ("c", true)],
                expect: &["a", "b", "c", "a", "b"],
            },
            Case {
                name: "offline members are skipped while someone is online",
                members: &[("a", true), ("b", false), ("c", true)],
                expect: &["a", "c", "a", "c"],
            },
            Case {
                name: "the only online member gets everything",
                members: &[("a", false), ("b", true), ("c", false)],
                expect: &["b", "b", "b"],
            },
            Case {
                name: "nobody online: the offline members take turns, to be queued",
                members: &[("a", false), ("b", false)],
                expect: &["a", "b", "a"],
            },
        ];
        for case in cases {
            let mut world = World::default();
            for (id, online) in case.members {
                let s = world.client(id, *online);
                world.subscribe(s, "$share/g/jobs/+", SUB);
            }
            let got: Vec<String> = case
                .expect
                .iter()
                .flat_map(|_| world.receivers("jobs/1"))
                .collect();
            assert_eq!(got, case.expect, "{}", case.name);
        }
    }

    #[test]
    fn each_shared_group_picks_its_own_member_beside_plain_subscribers() {
        let mut world = World::default();
        let a = world.client("a", true);
        let b = world.client("b", true);
        let c = world.client("c", true);
        let d = world.client("d", true);
        world.subscribe(a, "$share/g/t", SUB);
        world.subscribe(b, "$share/g/t", SUB);
        world.subscribe(c, "$share/h/t", SUB);
        world.subscribe(d, "t", SUB);
        assert_eq!(world.receivers("t"), ["a", "c", "d"]);
        assert_eq!(world.receivers("t"), ["b", "c", "d"]);
        // The same group name on another filter keeps its own position.
        world.subscribe(b, "$share/g/u", SUB);
        world.subscribe(a, "$share/g/u", SUB);
        assert_eq!(world.receivers("u"), ["b"]);
        assert_eq!(world.receivers("t"), ["a", "c", "d"]);
    }

    #[test]
    fn nobody_gets_what_their_rules_forbid_to_read() {
        let mut world = World::default();
        let open = world.client("open", true);
        let barred = world.client("barred", true);
        let alice = world.client("alice-phone", true);
        world.sessions[barred].acl = Arc::new(ClientAcl::for_client(
            &[],
            &["secret/#".into()],
            &[],
            None,
            "barred",
        ));
        world.sessions[alice].username = Some("alice".into());
        for s in [open, barred, alice] {
            world.subscribe(s, "#", SUB);
        }
        assert_eq!(world.receivers("secret/x"), ["open", "alice-phone"]);
        assert_eq!(world.receivers("public"), ["open", "barred", "alice-phone"]);
        // Reply topics reach only their owner while the chat service runs.
        assert_eq!(world.receivers("chat/u/alice/inbox"), ["alice-phone"]);
        assert_eq!(world.receivers("chat/a/open/inbox"), ["open"]);
        // Without it they are plain topics.
        let m = message("chat/u/alice/inbox", 1, Qos::AtLeastOnce, false);
        let World {
            sessions,
            trie,
            cursors,
            matches,
        } = &mut world;
        matches.find(&m.topic, trie, sessions, cursors);
        let mut plan = Vec::new();
        deliveries(&m, matches, sessions, false, &mut plan);
        assert_eq!(plan.len(), 3);
    }
}
