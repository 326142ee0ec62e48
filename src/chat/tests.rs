//! The service's logic driven without sockets: requests in, effects out, on a real
//! temporary store.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::accounts::{AccountDone, AccountError, AccountOp};
use crate::protocol::ProtocolVersion;
use crate::service::{Effect, Outgoing, Requester};
use crate::store::{ChatWrite, SyncMode, Write};

const UNIX: i64 = 1_700_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    chat: ChatService,
    now: Instant,
}

fn config() -> ChatConfig {
    ChatConfig {
        max_text: 20,
        page_max: 3,
        room_creation: RoomCreation::Anyone,
        requests_per_second: 1,
        request_burst: 1000,
        registrations_per_hour: 3,
    }
}

fn fixture_with(config: ChatConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chat.db"), SyncMode::Normal).unwrap();
    let chat = ChatService::load(config, &store).unwrap();
    Fixture {
        _dir: dir,
        store,
        chat,
        now: Instant::now(),
    }
}

fn fixture() -> Fixture {
    fixture_with(config())
}

fn from<'a>(user: Option<&'a str>, client_id: &'a str) -> Requester<'a> {
    Requester {
        username: user,
        client_id,
        version: ProtocolVersion::V311,
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        response_topic: None,
        correlation_data: None,
        session: Some(7),
    }
}

impl Fixture {
    /// Handles one request, stages its writes and commits them, as the broker's turn does.
    fn call(&mut self, from: Requester<'_>, topic: &str, payload: &str) -> Vec<Effect> {
        let members = |_: &str| 2;
        let request = Request {
            topic,
            payload: payload.as_bytes(),
            from,
            now: self.now,
            unix: UNIX,
        };
        let ctx = Context {
            store: &self.store,
            members: &members,
        };
        let effects = self.chat.handle(&request, &ctx);
        self.commit(&effects);
        effects
    }

    /// Stages the writes in `effects` and commits them, as the broker's turn does.
    fn commit(&mut self, effects: &[Effect]) {
        for e in effects {
            if let Effect::Stage(w) = e {
                self.store.stage(w.clone());
            }
        }
        self.store.commit().unwrap();
    }

    fn ana(&mut self, topic: &str, payload: &str) -> Vec<Effect> {
        self.call(from(Some("ana"), "ana-phone"), topic, payload)
    }
}

fn publishes(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(Outgoing { topic, payload, .. }) => {
                Some((topic.clone(), String::from_utf8(payload.clone()).unwrap()))
            }
            _ => None,
        })
        .collect()
}

fn writes(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Stage(_)))
        .count()
}

/// The one reply in `effects`, as (topic, first word).
fn status(effects: &[Effect]) -> (String, String) {
    let all = publishes(effects);
    assert_eq!(all.len(), 1, "{all:?}");
    let (topic, payload) = all.into_iter().next().unwrap();
    (topic, payload.split(' ').next().unwrap().to_owned())
}

#[test]
fn a_message_is_stored_then_sent_with_id_time_and_the_authenticated_sender() {
    let mut f = fixture();
    let effects = f.ana("chat/r/general", "mallory says hi");
    assert!(matches!(
        &effects[0],
        Effect::Stage(Write::Chat(ChatWrite::Room { id: 1, name, .. })) if name == "general"
    ));
    assert!(matches!(
        &effects[1],
        Effect::Stage(Write::Chat(ChatWrite::Message { id: 1, room_id: 1, sender, .. })) if sender == "ana"
    ));
    assert_eq!(
        publishes(&effects),
        [(
            "chat/r/general".to_owned(),
            format!("1 {UNIX} ana mallory says hi")
        )]
    );
    match &effects[2] {
        Effect::Publish(out) => assert_eq!(out.publisher, Some(7), "No Local applies to it"),
        other => panic!("{other:?}"),
    }
    // The second message reuses the room; ids go on after a restart.
    assert_eq!(writes(&f.ana("chat/r/general", "again")), 1);
    let chat = ChatService::load(config(), &f.store).unwrap();
    assert_eq!(chat.last_message_id, 2);
    assert_eq!(chat.rooms.get("general").unwrap().messages, 2);
}

#[test]
fn bad_requests_get_their_code_and_change_nothing() {
    let mut f = fixture();
    f.ana("chat/r/general", "first");
    let long = "x".repeat(21);
    for (topic, payload, code) in [
        ("chat/r/general", "", "empty_text"),
        ("chat/r/general", long.as_str(), "text_too_long"),
        ("chat/r/general", "two\nlines", "text_invalid"),
        ("chat/r/bad+room", "hi", "bad_room_name"),
        ("chat/r/", "hi", "bad_room_name"),
        ("chat/x/history", "nowhere", "unknown_room"),
        ("chat/x/history", "general after", "bad_request"),
        ("chat/x/history", "general 1 2 3", "bad_request"),
        ("chat/x/like", "abc", "bad_request"),
        ("chat/x/like", "99", "unknown_message"),
        ("chat/x/dance", "", "bad_request"),
        ("chat/zzz", "", "bad_request"),
        ("chat/x/register", "ab secretpass", "name_too_short"),
        ("chat/x/register", "ana short", "password_too_short"),
        ("chat/x/register", "ana", "bad_request"),
        ("chat/x/setq", "no answer", "bad_request"),
        ("chat/x/setq", "q?\n ", "answer_invalid"),
    ] {
        let effects = f.ana(topic, payload);
        assert_eq!(writes(&effects), 0, "{topic} {payload:?}");
        assert_eq!(
            status(&effects),
            ("chat/u/ana".to_owned(), code.to_owned()),
            "{topic} {payload:?}"
        );
    }
    let bytes = Request {
        topic: "chat/r/general",
        payload: b"\xff\xfe",
        from: from(Some("ana"), "c"),
        now: f.now,
        unix: UNIX,
    };
    let members = |_: &str| 0;
    let ctx = Context {
        store: &f.store,
        members: &members,
    };
    assert_eq!(status(&f.chat.handle(&bytes, &ctx)).1, "bad_request");
    assert_eq!(f.chat.last_message_id, 1);
}

#[test]
fn anonymous_clients_may_only_register_ask_a_question_and_reset() {
    let mut f = fixture();
    let anon = from(None, "kiosk");
    for (topic, payload) in [
        ("chat/r/general", "hi"),
        ("chat/x/rooms", ""),
        ("chat/x/history", "general"),
        ("chat/x/like", "1"),
        ("chat/x/setq", "q\na"),
    ] {
        let effects = f.call(anon, topic, payload);
        assert_eq!(
            status(&effects),
            ("chat/a/kiosk".to_owned(), "not_logged_in".to_owned()),
            "{topic}"
        );
    }
    for (topic, payload) in [
        ("chat/x/register", "newbie secretpass"),
        ("chat/x/question", "newbie"),
        ("chat/x/reset", "newbie another pass\nanswer"),
    ] {
        let effects = f.call(anon, topic, payload);
        assert!(
            matches!(effects.as_slice(), [Effect::Account { .. }]),
            "{topic}: {effects:?}"
        );
    }
}

#[test]
fn history_pages_are_bounded_and_say_when_more_remain() {
    let mut f = fixture();
    for i in 1..=5 {
        f.ana("chat/r/general", &format!("m{i}"));
    }
    f.ana("chat/r/other", "elsewhere");
    let page =
        |f: &mut Fixture, payload: &str| publishes(&f.ana("chat/x/history", payload))[0].1.clone();
    assert_eq!(
        page(&mut f, "general 2"),
        format!("ok 2 messages\n4 {UNIX} ana 0 m4\n5 +0 ana 0 m5\nmore")
    );
    // Capped at page_max (3), whatever is asked.
    assert_eq!(page(&mut f, "general 50").lines().count(), 5);
    assert_eq!(
        page(&mut f, "general after 2"),
        format!("ok 3 messages\n3 {UNIX} ana 0 m3\n4 +0 ana 0 m4\n5 +0 ana 0 m5")
    );
    assert_eq!(
        page(&mut f, "general before 3"),
        format!("ok 2 messages\n1 {UNIX} ana 0 m1\n2 +0 ana 0 m2")
    );
    assert_eq!(page(&mut f, "general after 5"), "ok 0 messages");
    assert_eq!(
        page(&mut f, "general after 1 1"),
        format!("ok 1 message\n2 {UNIX} ana 0 m2\nmore")
    );
}

#[test]
fn a_second_like_takes_the_first_back_and_the_room_hears_the_count() {
    let mut f = fixture();
    f.ana("chat/r/general", "like me");
    let liked = f.ana("chat/x/like", "1");
    assert_eq!(writes(&liked), 1);
    assert_eq!(
        publishes(&liked),
        [
            ("chat/r/general".to_owned(), "l 1 1 +ana".to_owned()),
            ("chat/u/ana".to_owned(), "ok liked\n1 1".to_owned())
        ]
    );
    let bob = f.call(from(Some("bob"), "b"), "chat/x/like", "1");
    assert_eq!(publishes(&bob)[0].1, "l 1 2 +bob");
    let page = f.ana("chat/x/history", "general");
    assert_eq!(
        publishes(&page)[0].1,
        format!("ok 1 message\n1 {UNIX} ana ana,bob like me")
    );
    let unliked = f.ana("chat/x/like", "1");
    assert_eq!(publishes(&unliked)[0].1, "l 1 1 -ana");
    assert_eq!(publishes(&unliked)[1].1, "ok unliked\n1 1");
    assert_eq!(f.store.chat_message_room(1).unwrap(), Some((1, 1)));
    let page = f.ana("chat/x/history", "general");
    assert_eq!(
        publishes(&page)[0].1,
        format!("ok 1 message\n1 {UNIX} ana bob like me")
    );
}

#[test]
fn rooms_are_listed_with_members_and_messages() {
    let mut f = fixture();
    f.ana("chat/r/b-room", "1");
    f.ana("chat/r/a-room", "1");
    f.ana("chat/r/a-room", "2");
    assert_eq!(
        publishes(&f.ana("chat/x/rooms", ""))[0].1,
        "ok 2 rooms\na-room 2 2\nb-room 2 1"
    );
}

#[test]
fn only_admins_create_rooms_when_configured() {
    let mut f = fixture_with(ChatConfig {
        room_creation: RoomCreation::Admins,
        ..config()
    });
    f.store.add_user("root", "h", true).unwrap();
    f.store.add_user("ana", "h", false).unwrap();
    assert_eq!(status(&f.ana("chat/r/new", "hi")).1, "room_creation_denied");
    assert_eq!(
        writes(&f.call(from(Some("root"), "r"), "chat/r/new", "hi")),
        2
    );
    assert_eq!(writes(&f.ana("chat/r/new", "now I may")), 1);
}

#[test]
fn replies_follow_the_response_topic_tag_and_correlation_data() {
    let mut f = fixture();
    let mut v5 = from(Some("ana"), "c5");
    v5.version = ProtocolVersion::V5;
    v5.response_topic = Some(("my/inbox", true));
    v5.correlation_data = Some(b"42");
    let effects = f.call(v5, "chat/x/rooms", "");
    match effects.as_slice() {
        [Effect::Publish(out)] => {
            assert_eq!(out.topic, "my/inbox");
            assert_eq!(out.correlation_data.as_deref(), Some(&b"42"[..]));
            assert_eq!(
                out.publisher, None,
                "a reply is not the client's own message"
            );
        }
        other => panic!("{other:?}"),
    }
    // Sending with a Response Topic gets the id back.
    let sent = f.call(v5, "chat/r/general", "hi");
    assert_eq!(
        publishes(&sent)[1],
        ("my/inbox".to_owned(), "ok sent\n1".to_owned())
    );
    for (topic, readable) in [
        ("my/inbox", false),
        ("chat/r/general", true),
        ("chat/u/bob", true),
    ] {
        v5.response_topic = Some((topic, readable));
        assert_eq!(
            status(&f.call(v5, "chat/x/rooms", "")),
            ("chat/u/ana".to_owned(), "bad_response_topic".to_owned()),
            "{topic}"
        );
    }
    v5.response_topic = Some(("chat/u/ana/web", true));
    assert_eq!(status(&f.call(v5, "chat/x/rooms", "")).0, "chat/u/ana/web");
    // 3.1.1: the tag names the reply topic; a plain send gets no reply.
    assert_eq!(status(&f.ana("chat/x/rooms/q1", "")).0, "chat/u/ana/q1");
    assert!(publishes(&f.ana("chat/r/general", "quiet"))
        .iter()
        .all(|(t, _)| t == "chat/r/general"));
    // An anonymous client whose id cannot be a topic level is not answered.
    assert!(f.call(from(None, "a/b"), "chat/x/rooms", "").is_empty());
}

#[test]
fn requests_are_rate_limited_per_client() {
    let mut f = fixture_with(ChatConfig {
        requests_per_second: 1,
        request_burst: 2,
        ..config()
    });
    assert_eq!(writes(&f.ana("chat/r/general", "1")), 2);
    assert_eq!(writes(&f.ana("chat/r/general", "2")), 1);
    let third = f.ana("chat/r/general", "3");
    assert_eq!(writes(&third), 0);
    assert_eq!(status(&third).1, "rate_limited");
    assert_eq!(
        writes(&f.call(from(Some("bob"), "other"), "chat/r/general", "b")),
        1
    );
    f.now += Duration::from_secs(1);
    assert_eq!(writes(&f.ana("chat/r/general", "4")), 1);
}

#[test]
fn reset_attempts_are_limited_per_address_never_per_user_alone() {
    use crate::auth::throttle::{ACCOUNT_FREE, ADDRESS_FREE};
    let mut f = fixture();
    // Tries still running count: a stranger's parallel guesses at ana's answer.
    let stranger = from(None, "k");
    for _ in 0..ADDRESS_FREE.min(ACCOUNT_FREE) {
        let effects = f.call(stranger, "chat/x/reset", "ana new password\nwrong");
        assert!(matches!(effects.as_slice(), [Effect::Account { .. }]));
    }
    let refused = f.call(stranger, "chat/x/reset", "ana new password\nright");
    assert_eq!(status(&refused).1, "rate_limited");
    let other_user = f.call(stranger, "chat/x/reset", "bob new password\nx");
    assert_eq!(status(&other_user).1, "rate_limited", "per address");
    // ana herself, from her own address, is not locked out of resetting.
    let mut owner = from(None, "phone");
    owner.addr = "192.0.2.7".parse().unwrap();
    let effects = f.call(owner, "chat/x/reset", "ANA new password\nrex");
    assert!(matches!(effects.as_slice(), [Effect::Account { .. }]));
}

#[test]
fn registrations_are_limited_per_address() {
    let mut f = fixture();
    let kiosk = from(None, "kiosk");
    for name in ["ann", "ben", "cat"] {
        let effects = f.call(kiosk, "chat/x/register", &format!("{name} long enough"));
        assert!(matches!(effects.as_slice(), [Effect::Account { .. }]));
    }
    let refused = f.call(kiosk, "chat/x/register", "dan long enough");
    assert_eq!(status(&refused).1, "rate_limited");
    // A broken rule is answered without counting (it costs nothing and learns nothing).
    let mut elsewhere = from(None, "laptop");
    elsewhere.addr = "192.0.2.8".parse().unwrap();
    let bad = f.call(elsewhere, "chat/x/register", "a/b long enough");
    assert_eq!(status(&bad).1, "name_bad_characters");
    let effects = f.call(elsewhere, "chat/x/register", "dan long enough");
    assert!(matches!(effects.as_slice(), [Effect::Account { .. }]));
}

#[test]
fn account_results_become_replies_and_a_reset_forgets_the_cached_login() {
    let mut f = fixture();
    let effects = f.call(from(None, "k"), "chat/x/reset/t1", "ana new password\nrex");
    let [Effect::Account { ticket, op }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(
        op,
        &AccountOp::Reset {
            name: "ana".into(),
            password: "new password".into(),
            answer: "rex".into()
        }
    );
    let done = f.chat.account_done(
        AccountReply {
            ticket: *ticket,
            result: Ok(AccountDone::PasswordReset),
        },
        f.now,
    );
    assert!(matches!(&done[0], Effect::ForgetCredentials(n) if n == "ana"));
    assert_eq!(
        publishes(&done),
        [("chat/a/k/t1".to_owned(), "ok password changed".to_owned())]
    );
    assert!(
        f.chat
            .account_done(
                AccountReply {
                    ticket: *ticket,
                    result: Ok(AccountDone::PasswordReset)
                },
                f.now
            )
            .is_empty(),
        "answered once"
    );

    let effects = f.call(from(None, "k"), "chat/x/question", "zed");
    let [Effect::Account { ticket, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    let done = f.chat.account_done(
        AccountReply {
            ticket: *ticket,
            result: Err(AccountError::NoQuestion),
        },
        f.now,
    );
    assert_eq!(
        publishes(&done)[0].1,
        "no_question no security question for that user"
    );
}

#[test]
fn after_a_failed_commit_the_service_forgets_what_was_not_written() {
    let mut f = fixture();
    f.ana("chat/r/general", "kept");
    // A turn whose commit fails: the new room and message never reach the disk.
    let members = |_: &str| 0;
    let request = Request {
        topic: "chat/r/lost",
        payload: b"never written",
        from: from(Some("ana"), "c"),
        now: f.now,
        unix: UNIX,
    };
    let ctx = Context {
        store: &f.store,
        members: &members,
    };
    assert_eq!(writes(&f.chat.handle(&request, &ctx)), 2);
    f.chat.reload(&f.store).unwrap();
    // The room is created again, and the next id follows the last one on disk.
    let effects = f.ana("chat/r/lost", "again");
    assert_eq!(writes(&effects), 2);
    assert!(matches!(
        &effects[1],
        Effect::Stage(Write::Chat(ChatWrite::Message { id: 2, .. }))
    ));
}

#[test]
fn question_lookups_are_limited_per_address() {
    let mut f = fixture_with(ChatConfig {
        requests_per_second: 0,
        ..config()
    });
    let prober = from(None, "prober");
    for i in 0..super::QUESTIONS_PER_ADDRESS {
        let effects = f.call(prober, "chat/x/question", &format!("user{i}"));
        assert!(
            matches!(effects.as_slice(), [Effect::Account { .. }]),
            "{i}"
        );
    }
    let refused = f.call(prober, "chat/x/question", "ana");
    assert_eq!(status(&refused).1, "rate_limited");
}

/// Presence: a subscription to the room's own topic joins and shows the user online, a
/// wildcard does not; the room hears it once the window closes, as one QoS 0 announcement;
/// `members` lists who is online and who is not; `leave` ends membership.
#[test]
fn members_join_by_subscribing_and_presence_is_announced_per_window() {
    use crate::service::SessionEvent;
    let mut f = fixture();
    f.ana("chat/r/general", "hi");
    let t0 = f.now;
    let sub = |session, user, filter| SessionEvent::Subscribed {
        session,
        username: Some(user),
        filter,
    };
    let joined = f
        .chat
        .session_event(sub(1, "bob", "chat/r/general"), t0, UNIX);
    assert_eq!(writes(&joined), 1, "bob joins");
    f.commit(&joined);
    assert!(f
        .chat
        .session_event(sub(2, "cy", "chat/r/+"), t0, UNIX)
        .is_empty());
    let joined = f
        .chat
        .session_event(sub(3, "ana", "chat/r/general"), t0, UNIX);
    assert_eq!(
        writes(&joined),
        1,
        "sending made ana no member, subscribing does"
    );
    f.commit(&joined);
    let wake = f.chat.wake_at().expect("a window opened");
    assert!(f.chat.due(t0).is_empty());
    let announced = f.chat.due(wake);
    match &announced[..] {
        [Effect::Announce(out)] => {
            assert_eq!(out.topic, "chat/r/general");
            assert_eq!(out.payload, b"j ana bob\no ana bob");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        publishes(&f.ana("chat/x/members", "general"))[0].1,
        "ok 2 members\no ana bob"
    );
    let t1 = wake + presence::WINDOW;
    f.chat
        .session_event(SessionEvent::Offline { session: 1 }, t1, UNIX);
    let wake = f.chat.wake_at().unwrap();
    match &f.chat.due(wake)[..] {
        [Effect::Announce(out)] => assert_eq!(out.payload, b"f bob"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        publishes(&f.ana("chat/x/members", "general"))[0].1,
        "ok 2 members\no ana\nf bob"
    );
    let left = f.call(from(Some("bob"), "b"), "chat/x/leave", "general");
    assert_eq!(writes(&left), 1);
    assert_eq!(
        publishes(&f.ana("chat/x/members", "general"))[0].1,
        "ok 1 member\no ana"
    );
    // Members come back from the store.
    let chat = ChatService::load(config(), &f.store).unwrap();
    assert_eq!(chat.members[&1].len(), 1);
}

/// A direct message goes to both users' private topics, is paged like a room for them
/// only, shows in their room lists, and stops once the receiver blocks the sender.
#[test]
fn direct_messages_reach_the_two_users_only_and_blocking_stops_them() {
    let mut f = fixture();
    f.store.add_user("ana", "h", false).unwrap();
    f.store.add_user("bob", "h", false).unwrap();
    assert_eq!(status(&f.ana("chat/d/nobody", "hi")).1, "unknown_user");
    let sent = f.ana("chat/d/bob", "psst");
    assert_eq!(writes(&sent), 2, "the conversation and the message");
    assert_eq!(
        publishes(&sent),
        [
            ("chat/u/bob/d/ana".to_owned(), format!("1 {UNIX} ana psst")),
            ("chat/u/ana/d/bob".to_owned(), format!("1 {UNIX} ana psst")),
        ]
    );
    let bob = from(Some("bob"), "b");
    assert_eq!(
        publishes(&f.call(bob, "chat/x/history", "@ana"))[0].1,
        format!("ok 1 message\n1 {UNIX} ana 0 psst")
    );
    assert_eq!(
        publishes(&f.call(bob, "chat/x/rooms", ""))[0].1,
        "ok 1 room\n@ana 2 1 u1",
        "a conversation never read counts the peer's messages"
    );
    let cy = from(Some("cy"), "c");
    assert_eq!(
        status(&f.call(cy, "chat/x/history", "@ana")).1,
        "unknown_room"
    );
    assert_eq!(status(&f.call(cy, "chat/x/like", "1")).1, "unknown_message");
    assert_eq!(
        publishes(&f.call(cy, "chat/x/rooms", ""))[0].1,
        "ok 0 rooms"
    );
    let liked = f.call(bob, "chat/x/like", "1");
    assert_eq!(publishes(&liked)[0].0, "chat/u/ana/d/bob");
    assert_eq!(publishes(&liked)[1].0, "chat/u/bob/d/ana");
    assert_eq!(writes(&f.call(bob, "chat/x/block", "ana")), 1);
    assert_eq!(status(&f.ana("chat/d/bob", "again")).1, "blocked");
    let chat = ChatService::load(config(), &f.store).unwrap();
    assert!(chat.blocks.contains(&("bob".into(), "ana".into())));
    f.call(bob, "chat/x/unblock", "ana");
    assert_eq!(publishes(&f.ana("chat/d/bob", "again")).len(), 2);
}

/// Read markers: `read` moves a user's marker (forward only, never past the newest
/// message), `rooms` counts what came after it by others, and the markers moved in a
/// flush window are written once each when it ends, not once per `read`.
#[test]
fn read_markers_give_unread_counts_and_are_written_once_per_window() {
    let mut f = fixture();
    f.store.add_user("ana", "h", false).unwrap();
    f.store.add_user("bob", "h", false).unwrap();
    let bob = from(Some("bob"), "b");
    f.ana("chat/r/general", "one");
    let rooms = |f: &mut Fixture| publishes(&f.call(bob, "chat/x/rooms", ""))[0].1.clone();
    assert_eq!(
        rooms(&mut f),
        "ok 1 room\ngeneral 2 1",
        "never read: no count"
    );
    let read = f.call(bob, "chat/x/read", "general 1");
    assert_eq!(
        publishes(&read),
        [("chat/u/bob".to_owned(), "ok read general 1".to_owned())]
    );
    assert_eq!(writes(&read), 0, "written when the window ends");
    f.ana("chat/r/general", "two");
    f.ana("chat/r/general", "three");
    f.call(bob, "chat/r/general", "mine");
    f.ana("chat/d/bob", "psst");
    assert_eq!(rooms(&mut f), "ok 2 rooms\n@ana 2 1 u1\ngeneral 2 4 u2");
    for (payload, marker) in [("general 99", 4), ("general 2", 4), ("@ana 5", 5)] {
        let reply = publishes(&f.call(bob, "chat/x/read", payload));
        let room = payload.split(' ').next().unwrap();
        assert_eq!(reply[0].1, format!("ok read {room} {marker}"));
    }
    assert_eq!(rooms(&mut f), "ok 2 rooms\n@ana 2 1 u0\ngeneral 2 4 u0");
    for (payload, code) in [
        ("general x", "bad_request"),
        ("general", "bad_request"),
        ("nowhere 1", "unknown_room"),
        ("@cyd 1", "unknown_room"),
    ] {
        assert_eq!(
            status(&f.call(bob, "chat/x/read", payload)).1,
            code,
            "{payload}"
        );
    }
    let wake = f.chat.wake_at().expect("a write is due");
    assert_eq!(wake, f.now + read_markers::FLUSH);
    assert_eq!(f.chat.wake_at(), None, "asked once");
    assert!(f.chat.due(f.now).is_empty());
    let due = f.chat.due(wake);
    assert_eq!(writes(&due), 2, "one write per moved marker: {due:?}");
    f.commit(&due);
    let chat = ChatService::load(config(), &f.store).unwrap();
    assert_eq!(chat.markers.get("bob", 1), Some(4));
    assert_eq!(chat.markers.get("ana", 1), None);
}

/// `blocks` lists whom the user blocked, so a page knows after a reload.
#[test]
fn the_block_list_is_listed() {
    let mut f = fixture();
    let blocks = |f: &mut Fixture| publishes(&f.ana("chat/x/blocks", ""))[0].1.clone();
    assert_eq!(blocks(&mut f), "ok 0 blocked");
    f.ana("chat/x/block", "mal");
    f.ana("chat/x/block", "bob");
    f.call(from(Some("bob"), "b"), "chat/x/block", "cyd");
    assert_eq!(blocks(&mut f), "ok 2 blocked\nbob mal");
    f.ana("chat/x/unblock", "mal");
    assert_eq!(blocks(&mut f), "ok 1 blocked\nbob");
}

/// A user is online for direct messages while a session of theirs receives all of them;
/// each peer of a conversation hears it on that conversation's topic, once per window,
/// and `members @peer` says who of the two is online. Another user's subscription to
/// the inbox (refused by the broker anyway) changes nothing.
#[test]
fn a_direct_peer_hears_the_user_come_online_and_go_offline() {
    use crate::service::SessionEvent;
    let mut f = fixture();
    f.store.add_user("ana", "h", false).unwrap();
    f.store.add_user("bob", "h", false).unwrap();
    f.ana("chat/d/bob", "psst");
    let t0 = f.now;
    let sub = |session, user, filter| SessionEvent::Subscribed {
        session,
        username: Some(user),
        filter,
    };
    f.chat
        .session_event(sub(4, "mal", "chat/u/bob/#"), t0, UNIX);
    assert_eq!(f.chat.wake_at(), None);
    f.chat
        .session_event(sub(5, "bob", "chat/u/bob/#"), t0, UNIX);
    f.chat
        .session_event(sub(5, "bob", "chat/u/bob/d/+"), t0, UNIX);
    let wake = f.chat.wake_at().unwrap();
    match &f.chat.due(wake)[..] {
        [Effect::Announce(out)] => {
            assert_eq!(out.topic, "chat/u/ana/d/bob");
            assert_eq!(out.payload, b"o bob");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        publishes(&f.ana("chat/x/members", "@bob"))[0].1,
        "ok 2 members\no bob\nf ana"
    );
    assert_eq!(status(&f.ana("chat/x/members", "@x")).1, "unknown_user");
    let t1 = wake + presence::WINDOW;
    f.chat
        .session_event(SessionEvent::Offline { session: 5 }, t1, UNIX);
    let wake = f.chat.wake_at().unwrap();
    match &f.chat.due(wake)[..] {
        [Effect::Announce(out)] => {
            assert_eq!(out.topic, "chat/u/ana/d/bob");
            assert_eq!(out.payload, b"f bob");
        }
        other => panic!("{other:?}"),
    }
}
