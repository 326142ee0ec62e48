//! The chat service over real sockets: a scripted conversation between paho-mqtt 3.1.1
//! (tests/python/chat.py), rumqttc MQTT 5 and a `mosquitto_sub` watching a room — accounts,
//! rooms, likes, history, every bad request, private reply topics — then a kill -9, a restart
//! and a history catch-up; a flood that is rate-limited while others are served.

mod common;

use common::clients::{QoS5, V5, WAIT};
use common::frames::{self, Bytes, Version};
use common::proxy::{self, Link, Proxy};
use common::raw::{Next, Raw};
use common::{wait_until, Broker};
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties, SubscribeReasonCode};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
/// The python side waits up to 20 s for each step.
const CONVERSATION: Duration = Duration::from_secs(60);

/// Fast bcrypt, and a burst large enough for the scripted conversation.
const CONFIG: &str = "bcrypt_cost = 4\nchat_request_burst = 1000\n";

/// A child process whose output lines are collected as they come.
struct Watched {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watched {
    fn spawn(cmd: &mut Command) -> Watched {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e} (run `make test` to install it)"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        common::upstream::collect_output(&mut child, &lines);
        Watched { child, lines }
    }

    fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        wait_until(timeout, || {
            self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned()
        })
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

fn topic(p: &Publish) -> String {
    String::from_utf8_lossy(&p.topic).into_owned()
}

/// The next PUBLISH on `topic` whose payload satisfies `pred`.
fn expect_on(client: &V5, on: &str, pred: impl Fn(&str) -> bool, what: &str) -> Publish {
    let found = client.take(CONVERSATION, |p| match p {
        Packet::Publish(p) => topic(p) == on && pred(&text(p)),
        _ => false,
    });
    match found {
        Some(Packet::Publish(p)) => p,
        _ => panic!("{}: no {what} on {on}", client.id),
    }
}

/// Publishes a request with a Response Topic and Correlation Data; returns the reply.
fn request_v5(client: &V5, op: &str, payload: &str, response: &str, correlation: &str) -> Publish {
    let properties = PublishProperties {
        response_topic: Some(response.to_owned()),
        correlation_data: Some(correlation.as_bytes().to_vec().into()),
        ..PublishProperties::default()
    };
    client
        .client
        .publish_with_properties(
            format!("chat/x/{op}"),
            QoS5::AtLeastOnce,
            false,
            payload.as_bytes().to_vec(),
            properties,
        )
        .unwrap();
    let reply = client.take(WAIT, |p| match p {
        Packet::Publish(p) => p
            .properties
            .as_ref()
            .and_then(|pp| pp.correlation_data.as_ref())
            .is_some_and(|c| c.as_ref() == correlation.as_bytes()),
        _ => false,
    });
    let reply = match reply {
        Some(Packet::Publish(p)) => p,
        _ => panic!("{}: no reply to {op} ({correlation})", client.id),
    };
    client.expect(|p| matches!(p, Packet::PubAck(_)), "PUBACK of the request");
    reply
}

/// Publishes a request at QoS 1 and waits for its PUBACK.
fn send(client: &V5, topic: &str, payload: String) {
    client.publish(topic, QoS5::AtLeastOnce, false, payload);
}

fn user(port: u16, id: &str, name: &str, password: &str) -> V5 {
    let mut opts = V5::options(port, id);
    opts.set_credentials(name, password);
    V5::connect_with(opts)
}

/// A raw MQTT 5 login (rumqttc ends its connection on a refused SUBACK; this one stays up).
fn raw_user(port: u16, id: &str, name: &str, password: &str) -> Raw {
    let connect = Bytes::new()
        .str("MQTT")
        .u8(5)
        .u8(0xC2) // user name, password, clean start
        .u16(60)
        .varint(0)
        .str(id)
        .str(name)
        .str(password)
        .packet(frames::CONNECT);
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&connect);
    let (_, code) = raw.expect_frame(frames::CONNACK, WAIT).connack();
    assert_eq!(code, 0, "{name} login");
    raw
}

/// SUBACK codes for `filters`, one SUBSCRIBE each.
fn suback_codes(raw: &mut Raw, filters: &[&str]) -> Vec<u8> {
    filters
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            raw.send(&frames::subscribe_with(
                Version::V5,
                i as u16 + 1,
                &[],
                &[(f, 1)],
            ));
            raw.expect_frame(frames::SUBACK, WAIT)
                .suback_reasons(Version::V5)
        })
        .collect()
}

/// The id of a room message `<id> <time> <sender> <text>`.
fn message_id(payload: &str) -> u64 {
    payload.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn three_clients_converse_then_history_survives_kill_9() {
    let mut broker = Broker::with_config(CONFIG);
    let port = broker.port();

    // A room watcher: plain mosquitto_sub, anonymous, MQTT 3.1.1.
    let watcher = Watched::spawn(
        Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-V", "mqttv311", "-q", "1", "-v", "-t", "chat/r/general"]),
    );

    // bob registers over MQTT 5: the reply comes on his Response Topic with his Correlation Data.
    let kiosk = V5::connect(port, "bob-kiosk");
    kiosk.subscribe("kiosk/bob", QoS5::AtLeastOnce);
    let reply = request_v5(&kiosk, "register", "bob bobsecret1", "kiosk/bob", "c1");
    assert_eq!(
        (topic(&reply), text(&reply)),
        ("kiosk/bob".into(), "ok registered bob".into())
    );
    kiosk.disconnect();

    let bob = user(port, "bob-laptop", "bob", "bobsecret1");
    assert_eq!(
        bob.subscribe("chat/#", QoS5::AtLeastOnce),
        [SubscribeReasonCode::Success(QoS5::AtLeastOnce)]
    );
    bob.subscribe("bob/inbox", QoS5::AtLeastOnce);
    // Reply topics are private: 0x87 for anyone else's, granted for one's own.
    let mut probe = raw_user(port, "bob-probe", "bob", "bobsecret1");
    let filters = [
        "chat/u/pat",
        "chat/u/+",
        "chat/+/#",
        "chat/a/paho-kiosk",
        "chat/u/bob/#",
        "chat/a/bob-probe",
    ];
    assert_eq!(
        suback_codes(&mut probe, &filters),
        [0x87, 0x87, 0x87, 0x87, 1, 1],
        "{filters:?}"
    );
    assert!(
        probe.is_quiet(Duration::from_millis(100)),
        "the connection stays up"
    );

    let paho = Watched::spawn(
        Command::new("python3")
            .arg(format!("{SCRIPTS}/chat.py"))
            .arg(port.to_string()),
    );

    // pat (paho, 3.1.1) says hello; bob answers; pat likes the answer.
    let hello = expect_on(
        &bob,
        "chat/r/general",
        |t| t.ends_with(" pat hello from paho"),
        "pat's hello",
    );
    let hello_id = message_id(&text(&hello));
    bob.publish("chat/r/general", QoS5::AtLeastOnce, false, "hi pat");
    let mine = expect_on(
        &bob,
        "chat/r/general",
        |t| t.ends_with(" bob hi pat"),
        "bob's own message",
    );
    let hi_id = message_id(&text(&mine));
    assert!(hi_id > hello_id);
    expect_on(
        &bob,
        "chat/r/general",
        |t| t == format!("l {hi_id} 1 +pat"),
        "pat's like",
    );
    expect_on(
        &bob,
        "chat/r/camp",
        |t| t.ends_with(" pat camp fire at 8"),
        "pat in camp",
    );
    let ready = paho.wait_line(CONVERSATION, |l| {
        l == "bad requests ok" || l.starts_with("FAIL")
    });
    assert_eq!(
        ready.as_deref(),
        Some("bad requests ok"),
        "{}",
        paho.output()
    );

    // The rooms, from MQTT 5 with Correlation Data: general has pat, bob and the watcher.
    let rooms = request_v5(&bob, "rooms", "", "bob/inbox", "r1");
    assert_eq!(text(&rooms), "ok 2 rooms\ncamp 2 1\ngeneral 3 2");
    // A Response Topic in a room or in someone's replies is refused, to bob's own topic.
    for (i, bad) in ["chat/r/general", "chat/u/pat"].iter().enumerate() {
        let reply = request_v5(&bob, "rooms", "", bad, &format!("bad{i}"));
        assert_eq!(topic(&reply), "chat/u/bob");
        assert!(
            text(&reply).starts_with("bad_response_topic "),
            "{}",
            text(&reply)
        );
    }
    let reply = request_v5(&bob, "like", "1 2", "bob/inbox", "wrong-type");
    assert!(text(&reply).starts_with("bad_request "), "{}", text(&reply));
    bob.publish("chat/r/general", QoS5::AtLeastOnce, false, "go on pat");

    let done = paho.wait_line(CONVERSATION, |l| l == "OK" || l.starts_with("FAIL"));
    assert_eq!(done.as_deref(), Some("OK"), "paho side:\n{}", paho.output());

    // bob, subscribed to chat/#, never saw pat's or the kiosk's replies.
    while let Some(p) = bob.recv_publish(Duration::from_millis(200)) {
        let t = topic(&p);
        assert!(
            !t.starts_with("chat/u/pat") && !t.starts_with("chat/a/"),
            "leaked {t}: {}",
            text(&p)
        );
    }
    // The watcher saw the room as it happened, senders as authenticated.
    for line in [
        format!("chat/r/general {hello_id} "),
        format!("chat/r/general {hi_id} "),
        format!("chat/r/general l {hi_id} 1"),
    ] {
        assert!(
            watcher.wait_line(WAIT, |l| l.starts_with(&line)).is_some(),
            "watcher lacks {line:?}:\n{}",
            watcher.output()
        );
    }
    assert!(watcher.output().contains(" pat hello from paho"));
    assert!(!watcher.output().contains("anonymous words"));

    // A like and its second press, which takes it back; the room hears both counts.
    let liked = request_v5(&bob, "like", &hello_id.to_string(), "bob/inbox", "like1");
    assert_eq!(text(&liked), format!("ok liked\n{hello_id} 1"));
    let unliked = request_v5(&bob, "like", &hello_id.to_string(), "bob/inbox", "like2");
    assert_eq!(text(&unliked), format!("ok unliked\n{hello_id} 0"));
    for (count, who) in [(1, "+bob"), (0, "-bob")] {
        let line = format!("chat/r/general l {hello_id} {count} {who}");
        assert!(
            watcher.wait_line(WAIT, |l| l == line).is_some(),
            "watcher lacks {line:?}:\n{}",
            watcher.output()
        );
    }
    // An MQTT 5 send that asks for a reply learns its id.
    let properties = PublishProperties {
        response_topic: Some("bob/inbox".into()),
        correlation_data: Some(b"send1".to_vec().into()),
        ..PublishProperties::default()
    };
    bob.client
        .publish_with_properties(
            "chat/r/camp",
            QoS5::AtLeastOnce,
            false,
            "with a receipt",
            properties,
        )
        .unwrap();
    let receipt = expect_on(
        &bob,
        "bob/inbox",
        |t| t.starts_with("ok sent\n"),
        "send receipt",
    );
    let delivered = expect_on(
        &bob,
        "chat/r/camp",
        |t| t.ends_with(" bob with a receipt"),
        "the message",
    );
    assert_eq!(
        text(&receipt),
        format!("ok sent\n{}", message_id(&text(&delivered)))
    );
    bob.expect(
        |p| matches!(p, Packet::PubAck(_)),
        "PUBACK of the receipted send",
    );

    // Five more messages, each acknowledged, then kill -9 at once.
    for i in 1..=5 {
        bob.publish(
            "chat/r/camp",
            QoS5::AtLeastOnce,
            false,
            format!("durable {i}"),
        );
    }
    broker.restart();
    let port = broker.port();

    // bob comes back after the "link drop" and catches up from the last id he saw.
    let bob = user(port, "bob-laptop", "bob", "bobsecret1");
    bob.subscribe("chat/u/bob/#", QoS5::AtLeastOnce);
    send(&bob, "chat/x/history/c1", format!("camp after {hi_id} 3"));
    let page1 = expect_on(&bob, "chat/u/bob/c1", |_| true, "first catch-up page");
    let lines: Vec<String> = text(&page1).lines().map(String::from).collect();
    assert_eq!(lines[0], "ok 3 messages");
    assert!(lines[1].ends_with(" pat 0 camp fire at 8"), "{lines:?}");
    assert!(lines[2].ends_with(" bob 0 with a receipt"), "{lines:?}");
    assert!(lines[3].ends_with(" bob 0 durable 1"), "{lines:?}");
    assert_eq!(lines[4], "more");
    let last: u64 = lines[3].split(' ').next().unwrap().parse().unwrap();
    send(&bob, "chat/x/history/c2", format!("camp after {last} 4"));
    let page2 = expect_on(&bob, "chat/u/bob/c2", |_| true, "second catch-up page");
    let page2 = text(&page2);
    let rows: Vec<&str> = page2
        .lines()
        .skip(1)
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(rows, ["2", "3", "4", "5"], "{page2}");
    assert!(!page2.ends_with("more"));
    // The like survived too, and new ids go on from the old ones.
    send(
        &bob,
        "chat/x/history/c3",
        format!("general after {hello_id} 1"),
    );
    let liked = expect_on(&bob, "chat/u/bob/c3", |_| true, "liked message");
    assert!(
        text(&liked).contains(&format!("\n{hi_id} ")) && text(&liked).contains(" bob pat hi pat")
    );
    bob.subscribe("chat/r/camp", QoS5::AtLeastOnce);
    bob.publish("chat/r/camp", QoS5::AtLeastOnce, false, "after restart");
    let next = expect_on(
        &bob,
        "chat/r/camp",
        |t| t.ends_with(" after restart"),
        "new message",
    );
    assert!(message_id(&text(&next)) > last + 4);
}

#[test]
fn a_flood_is_rate_limited_while_others_are_served() {
    let broker = Broker::with_config(
        "bcrypt_cost = 4\nchat_requests_per_second = 2\nchat_request_burst = 5\n",
    );
    let port = broker.port();
    let flooder = V5::connect(port, "flooder");
    flooder.subscribe("chat/a/flooder", QoS5::AtMostOnce);
    for _ in 0..30 {
        flooder
            .client
            .publish("chat/x/question", QoS5::AtMostOnce, false, "nobody")
            .unwrap();
    }
    let mut limited = 0;
    let mut answered = 0;
    while let Some(p) = flooder.recv_publish(Duration::from_millis(500)) {
        let t = text(&p);
        if t.starts_with("rate_limited ") {
            limited += 1;
        } else {
            assert!(t.starts_with("no_question "), "{t}");
            answered += 1;
        }
    }
    assert_eq!(limited + answered, 30);
    assert!(
        limited >= 20 && answered >= 5,
        "{limited} limited, {answered} answered"
    );
    // Someone else is served at once.
    let other = V5::connect(port, "calm");
    other.subscribe("chat/a/calm", QoS5::AtMostOnce);
    other
        .client
        .publish("chat/x/question", QoS5::AtMostOnce, false, "nobody")
        .unwrap();
    let reply = other.expect_publish();
    assert!(text(&reply).starts_with("no_question "));
}

// ---------------------------------------------------------------------------------------------
// Bytes on the socket: the chat wire format against naive JSON over MQTT.

/// A raw MQTT 3.1.1 client whose every byte goes through its own counting proxy.
struct Metered {
    raw: Raw,
    proxy: Proxy,
    /// Bytes written; the proxy's upstream count must reach it before a reading.
    sent: u64,
    next_id: u16,
    /// Frames read while waiting for another kind (a reply can overtake its PUBACK).
    stash: std::collections::VecDeque<frames::Frame>,
}

impl Metered {
    fn open(port: u16) -> Metered {
        let proxy = Proxy::start(port, Link::default());
        Metered {
            raw: Raw::open(proxy.port(), Version::V311),
            proxy,
            sent: 0,
            next_id: 1,
            stash: Default::default(),
        }
    }

    /// The next frame of `kind`, keeping the others for later.
    fn expect(&mut self, kind: u8) -> frames::Frame {
        if let Some(i) = self.stash.iter().position(|f| f.kind() == kind) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            match self.raw.next(WAIT) {
                Next::Frame(f) if f.kind() == kind => return f,
                Next::Frame(f) => self.stash.push_back(f),
                other => panic!("expected packet type {kind:#04x}, got {other:?}"),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.sent += bytes.len() as u64;
        self.raw.send(bytes);
    }

    fn bytes(&self) -> proxy::Bytes {
        wait_until(WAIT, || {
            let b = self.proxy.bytes();
            (b.up >= self.sent).then_some(b)
        })
        .expect("the proxy never saw all the bytes written")
    }

    fn login(&mut self, id: &str, user: Option<(&str, &str)>) {
        let flags = if user.is_some() { 0xC2 } else { 0x02 };
        let mut b = Bytes::new().str("MQTT").u8(4).u8(flags).u16(60).str(id);
        if let Some((name, password)) = user {
            b = b.str(name).str(password);
        }
        self.send(&b.packet(frames::CONNECT));
        let (_, code) = self.expect(frames::CONNACK).connack();
        assert_eq!(code, 0, "{id} login");
    }

    fn subscribe(&mut self, filter: &str) {
        self.subscribe_all(&[filter]);
    }

    /// One SUBSCRIBE for every filter, at QoS 1.
    fn subscribe_all(&mut self, filters: &[&str]) {
        let id = self.packet_id();
        let pairs: Vec<(&str, u8)> = filters.iter().map(|f| (*f, 1)).collect();
        self.send(&frames::subscribe_with(Version::V311, id, &[], &pairs));
        let codes = self.expect(frames::SUBACK).suback_reasons(Version::V311);
        assert_eq!(codes, vec![1; filters.len()], "{filters:?}");
    }

    /// PUBLISH at QoS 1 and its PUBACK.
    fn publish(&mut self, topic: &str, payload: &[u8]) {
        let id = self.packet_id();
        self.send(&frames::publish(Version::V311, topic, 1, id, payload));
        self.expect(frames::PUBACK);
    }

    /// Waits out the presence window and takes the announcements it brought (room members
    /// hear a subscription a second later), so a measurement after it holds none.
    fn settle_presence(&mut self) -> Vec<String> {
        std::thread::sleep(presence_window());
        let mut announcements = Vec::new();
        while let Next::Frame(f) = self.raw.next(Duration::from_millis(100)) {
            let (_, _, payload) = f.publish(Version::V311);
            announcements.push(String::from_utf8(payload).unwrap());
        }
        announcements
    }

    /// The next delivery (acknowledged): its topic and payload.
    fn receive(&mut self) -> (String, String) {
        let frame = self.expect(frames::PUBLISH);
        let (topic, id, payload) = frame.publish(Version::V311);
        if let Some(id) = id {
            self.send(&frames::ack(frames::PUBACK, id));
        }
        (
            String::from_utf8(topic).unwrap(),
            String::from_utf8(payload).unwrap(),
        )
    }

    fn packet_id(&mut self) -> u16 {
        self.next_id += 1;
        self.next_id
    }
}

/// How long presence changes gather, and a margin.
fn presence_window() -> Duration {
    Duration::from_millis(1300)
}

/// Bytes of `f` on all the given clients, both directions.
fn measured(clients: &mut [&mut Metered], f: impl FnOnce(&mut [&mut Metered])) -> u64 {
    let before: u64 = clients.iter().map(|c| c.bytes().total()).sum();
    f(clients);
    let after: u64 = clients.iter().map(|c| c.bytes().total()).sum();
    after - before
}

/// Twenty lines of a day at a field station: the history the pages carry.
const LINES: [&str; 20] = [
    "morning all",
    "generator is back on",
    "who has the truck keys?",
    "me, by the door",
    "thanks",
    "rain expected after 3pm",
    "I'll bring the nets in",
    "water filter needs a new cartridge",
    "there are two in the store room",
    "found them",
    "lunch at 12:30",
    "can someone check the north gate",
    "on my way",
    "gate was open, closed it now",
    "good catch",
    "radio check at 5",
    "battery bank at 78%",
    "fine for tonight",
    "see you at the well at noon",
    "ok",
];

/// The naive design: one JSON dict per call with action, user and room, the sender named in
/// the payload, and a reply topic invented (and subscribed to) for each request. A raw client
/// plays its server; only the users' sockets are counted, as for Outpost.
struct Naive {
    server: Raw,
    next_id: u16,
}

impl Naive {
    fn start(port: u16) -> Naive {
        let mut server = Raw::open(port, Version::V311);
        server.send(
            &Bytes::new()
                .str("MQTT")
                .u8(4)
                .u8(2)
                .u16(60)
                .str("naive-server")
                .packet(frames::CONNECT),
        );
        server.expect_frame(frames::CONNACK, WAIT);
        server.send(&frames::subscribe(Version::V311, 1, "talk/requests", 1));
        server.expect_frame(frames::SUBACK, WAIT);
        Naive { server, next_id: 1 }
    }

    /// Takes the next request off the wire and publishes `reply` to `topic`.
    fn answer(&mut self, topic: &str, reply: &str) {
        let frame = self.server.expect_frame(frames::PUBLISH, WAIT);
        if let (_, Some(id), _) = frame.publish(Version::V311) {
            self.server.send(&frames::ack(frames::PUBACK, id));
        }
        self.next_id += 1;
        self.server.send(&frames::publish(
            Version::V311,
            topic,
            1,
            self.next_id,
            reply.as_bytes(),
        ));
        self.server.expect_frame(frames::PUBACK, WAIT);
    }

    /// A message as delivered live.
    fn message_json(id: usize, user: &str, text: &str) -> String {
        format!(
            r#"{{"action":"message","id":{id},"user":"{user}","room":"general","text":"{text}","ts":1764633600}}"#
        )
    }

    /// A message in a history page.
    fn row_json(id: usize, user: &str, text: &str) -> String {
        format!(r#"{{"id":{id},"user":"{user}","text":"{text}","ts":1764633600,"likes":0}}"#)
    }

    fn page_json(first: usize, lines: &[&str]) -> String {
        let messages: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, t)| Naive::row_json(first + i, "ana", t))
            .collect();
        format!(
            r#"{{"action":"history","room":"general","messages":[{}]}}"#,
            messages.join(",")
        )
    }
}

/// What each exchange costs, Outpost against naive JSON, in bytes on the users' sockets.
struct Figures {
    message: (u64, u64),
    page: (u64, u64),
    catch_up: (u64, u64),
}

fn measure_outpost(port: u16) -> (u64, u64, u64) {
    let mut ana = Metered::open(port);
    ana.login("ana-1", Some(("ana", "anasecret1")));
    let mut bob = Metered::open(port);
    bob.login("bob-1", Some(("bob", "bobsecret1")));
    bob.subscribe("chat/r/general");
    bob.subscribe("chat/u/bob/#");
    // The history: twenty messages from ana.
    for line in LINES {
        ana.publish("chat/r/general", line.as_bytes());
        let (_, got) = loop {
            let (topic, got) = bob.receive();
            if got.starts_with(|c: char| c.is_ascii_digit()) {
                break (topic, got);
            }
        };
        assert!(got.ends_with(line), "{got}");
    }
    bob.settle_presence();
    let message = measured(&mut [&mut ana, &mut bob], |c| {
        c[0].publish("chat/r/general", LINES[18].as_bytes());
        let (topic, payload) = c[1].receive();
        assert_eq!(topic, "chat/r/general");
        assert!(
            payload.ends_with(" ana see you at the well at noon"),
            "{payload}"
        );
    });
    let page = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/history", b"general 20");
        let (topic, payload) = c[0].receive();
        assert_eq!(topic, "chat/u/bob");
        assert!(payload.starts_with("ok 20 messages\n"), "{payload}");
    });
    // bob's link drops after message 16; he logs in again, rejoins and catches up on 5.
    let mut again = Metered::open(port);
    let catch_up = measured(&mut [&mut again], |c| {
        c[0].login("bob-1", Some(("bob", "bobsecret1")));
        c[0].subscribe_all(&["chat/r/general", "chat/u/bob"]);
        c[0].publish("chat/x/history", b"general after 16");
        let (_, payload) = c[0].receive();
        assert!(payload.starts_with("ok 5 messages\n"), "{payload}");
    });
    (message, page, catch_up)
}

fn measure_naive(port: u16) -> (u64, u64, u64) {
    let mut server = Naive::start(port);
    let mut ana = Metered::open(port);
    ana.login("ana-1", None);
    let mut bob = Metered::open(port);
    bob.login("bob-1", None);
    bob.subscribe("talk/rooms/general");
    let text = LINES[18];
    let message = measured(&mut [&mut ana, &mut bob], |c| {
        let request =
            format!(r#"{{"action":"send","user":"ana","room":"general","text":"{text}"}}"#);
        c[0].publish("talk/requests", request.as_bytes());
        server.answer("talk/rooms/general", &Naive::message_json(21, "ana", text));
        let (topic, _) = c[1].receive();
        assert_eq!(topic, "talk/rooms/general");
    });
    let page = measured(&mut [&mut bob], |c| {
        c[0].subscribe("talk/replies/bob-4f1c");
        let request = r#"{"action":"history","user":"bob","room":"general","count":20,"reply_to":"talk/replies/bob-4f1c"}"#;
        c[0].publish("talk/requests", request.as_bytes());
        server.answer("talk/replies/bob-4f1c", &Naive::page_json(2, &LINES));
        c[0].receive();
    });
    let mut again = Metered::open(port);
    let catch_up = measured(&mut [&mut again], |c| {
        c[0].login("bob-1", None);
        c[0].subscribe_all(&["talk/rooms/general", "talk/replies/bob-9a07"]);
        let request = r#"{"action":"history","user":"bob","room":"general","after":16,"reply_to":"talk/replies/bob-9a07"}"#;
        c[0].publish("talk/requests", request.as_bytes());
        server.answer("talk/replies/bob-9a07", &Naive::page_json(17, &LINES[15..]));
        c[0].receive();
    });
    (message, page, catch_up)
}

/// The figures in docs/chat.md: each must stay at most half of naive JSON, and none may grow.
#[test]
fn chat_bytes_on_the_socket_are_at_most_half_of_naive_json() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_in(dir, Some("bcrypt_cost = 4\nchat_request_burst = 1000\n"));
    let port = broker.port();
    let kiosk = V5::connect(port, "kiosk");
    kiosk.subscribe("kiosk/replies", QoS5::AtLeastOnce);
    for (name, password) in [("ana", "anasecret1"), ("bob", "bobsecret1")] {
        let reply = request_v5(
            &kiosk,
            "register",
            &format!("{name} {password}"),
            "kiosk/replies",
            name,
        );
        assert_eq!(text(&reply), format!("ok registered {name}"));
    }
    let ours = measure_outpost(port);
    let naive = measure_naive(port);
    let f = Figures {
        message: (ours.0, naive.0),
        page: (ours.1, naive.1),
        catch_up: (ours.2, naive.2),
    };
    println!("| Exchange (MQTT 3.1.1, QoS 1) | Outpost chat | naive JSON | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, (o, n)) in [
        ("one message, sender to one member", f.message),
        ("history page of 20 messages", f.page),
        ("login + join + catch-up of 5", f.catch_up),
    ] {
        println!("| {name} | {o} | {n} | {:.2} |", o as f64 / n as f64);
        assert!(
            o * 2 <= n,
            "{name}: {o} bytes is more than half of naive {n}"
        );
    }
    // The figures documented in docs/chat.md; a change that grows one fails here.
    assert!(f.message.0 <= 120, "one message: {} bytes", f.message.0);
    assert!(f.page.0 <= 718, "history page: {} bytes", f.page.0);
    assert!(f.catch_up.0 <= 318, "catch-up: {} bytes", f.catch_up.0);
}

/// What presence and a direct message cost on the socket (docs/bandwidth.md): a member going
/// offline as the other members hear it, the `members` request, a like with its liker, and
/// a direct message from sender to receiver. MQTT 3.1.1 raw clients through counting
/// proxies; fails if a figure grows.
#[test]
fn presence_and_direct_message_bytes_on_the_socket() {
    let broker = Broker::with_config(CONFIG);
    let port = broker.port();
    common::add_user(broker.dir(), "ana", "anasecret1");
    common::add_user(broker.dir(), "bob", "bobsecret1");
    let mut ana = Metered::open(port);
    ana.login("ana-1", Some(("ana", "anasecret1")));
    ana.publish("chat/r/general", b"morning all");
    let mut bob = Metered::open(port);
    bob.login("bob-1", Some(("bob", "bobsecret1")));
    bob.subscribe_all(&["chat/r/general", "chat/u/bob/#"]);
    assert_eq!(bob.settle_presence(), ["j bob\no bob"]);
    let mut cy_link = Metered::open(port);
    common::add_user(broker.dir(), "cyd", "cydsecret1");
    cy_link.login("cyd-1", Some(("cyd", "cydsecret1")));
    cy_link.subscribe("chat/r/general");
    assert_eq!(bob.settle_presence(), ["j cyd\no cyd"]);

    let offline = measured(&mut [&mut bob], |c| {
        cy_link.raw.drop_socket();
        let (topic, payload) = c[0].receive();
        assert_eq!(
            (topic.as_str(), payload.as_str()),
            ("chat/r/general", "f cyd")
        );
    });
    let members = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/members", b"general");
        let (_, payload) = c[0].receive();
        assert_eq!(payload, "ok 2 members\no bob\nf cyd");
    });
    let like = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/like", b"1");
        let (mut a, mut b) = (c[0].receive(), c[0].receive());
        if a.0 != "chat/r/general" {
            std::mem::swap(&mut a, &mut b);
        }
        assert_eq!(a.1, "l 1 1 +bob");
        assert_eq!(b.1, "ok liked\n1 1");
    });
    let direct = measured(&mut [&mut ana, &mut bob], |c| {
        c[0].publish("chat/d/bob", LINES[18].as_bytes());
        let (topic, payload) = c[1].receive();
        assert_eq!(topic, "chat/u/bob/d/ana");
        assert!(
            payload.ends_with(" ana see you at the well at noon"),
            "{payload}"
        );
    });
    // ana's page comes: bob, her peer, hears she is online for direct messages.
    ana.subscribe("chat/u/ana/#");
    assert_eq!(bob.settle_presence(), ["o ana"]);
    bob.publish("chat/x/block", b"cyd");
    assert_eq!(bob.receive().1, "ok blocked cyd");
    let blocks = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/blocks", b"");
        assert_eq!(c[0].receive().1, "ok 1 blocked\ncyd");
    });
    let read = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/read", b"@ana 2");
        assert_eq!(c[0].receive().1, "ok read @ana 2");
    });
    let rooms = measured(&mut [&mut bob], |c| {
        c[0].publish("chat/x/rooms", b"");
        assert_eq!(c[0].receive().1, "ok 2 rooms\n@ana 2 1 u0\ngeneral 1 1 m");
    });
    let direct_offline = measured(&mut [&mut bob], |c| {
        ana.raw.drop_socket();
        let (topic, payload) = c[0].receive();
        assert_eq!(
            (topic.as_str(), payload.as_str()),
            ("chat/u/bob/d/ana", "f ana")
        );
    });
    println!("| exchange | bytes |");
    println!("|---|---:|");
    for (name, bytes) in [
        (
            "a member goes offline: the announcement to one member (QoS 0)",
            offline,
        ),
        ("members request and reply (2 members)", members),
        (
            "like: request, PUBACK, the room's l event and the reply",
            like,
        ),
        ("direct message, sender to receiver (27-byte text)", direct),
        (
            "a direct peer goes offline: the announcement to the other (QoS 0)",
            direct_offline,
        ),
        ("blocks request and reply (1 blocked)", blocks),
        ("read request and reply", read),
        ("rooms request and reply (a room, a conversation)", rooms),
    ] {
        println!("| {name} | {bytes} |");
    }
    assert!(offline <= 23, "offline: {offline}");
    assert!(members <= 75, "members: {members}");
    assert!(like <= 88, "like: {like}");
    assert!(direct <= 117, "direct: {direct}");
    assert!(direct_offline <= 25, "direct offline: {direct_offline}");
    assert!(blocks <= 59, "blocks: {blocks}");
    assert!(read <= 61, "read: {read}");
    assert!(rooms <= 78, "rooms: {rooms}");
}

// ---------------------------------------------------------------------------------------------
// docs/chat.md's walkthrough, run as written.

/// A line of the docs with the normalised times: Unix seconds become `T`, deltas `+N`.
fn normalise(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            if w.len() == 10 && w.bytes().all(|b| b.is_ascii_digit()) {
                "T".to_owned()
            } else if w.len() > 1
                && w.starts_with('+')
                && w[1..].bytes().all(|b| b.is_ascii_digit())
            {
                "+N".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs one documented command line against `port`; returns its standard output.
fn run_documented(line: &str, port: u16) -> String {
    let (program, rest) = line.split_once(' ').unwrap();
    let script = format!("{program} -h 127.0.0.1 -p {port} {rest}");
    let out = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_walkthrough_in_docs_chat_md_works_as_written() {
    let docs = include_str!("../docs/chat.md");
    let start = docs.find("## Walkthrough").expect("a walkthrough section");
    let section = &docs[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    // Fenced blocks: ```sh blocks hold commands (and `# ` expected outputs), plain ones output.
    let mut blocks: Vec<(bool, Vec<&str>)> = Vec::new();
    let mut open: Option<(bool, Vec<&str>)> = None;
    for line in section.lines() {
        match (line.starts_with("```"), open.take()) {
            (true, None) => open = Some((line == "```sh", Vec::new())),
            (true, Some(block)) => blocks.push(block),
            (false, Some(mut block)) => {
                block.1.push(line);
                open = Some(block);
            }
            (false, None) => {}
        }
    }
    let broker = Broker::start();
    let port = broker.port();
    let mut watcher: Option<Watched> = None;
    let mut checked = 0;
    for (commands, lines) in blocks {
        if !commands {
            // The watcher's output so far, debug lines aside, is this block.
            let watcher = watcher.as_ref().expect("a watcher before its output");
            let expected: Vec<String> = lines.iter().map(|l| normalise(l)).collect();
            let got = wait_until(WAIT, || {
                let got: Vec<String> = watcher
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed ("))
                    .map(|l| normalise(l))
                    .collect();
                (got.len() >= expected.len()).then_some(got)
            })
            .unwrap_or_else(|| panic!("watcher output:\n{}", watcher.output()));
            assert_eq!(got[..expected.len()], expected[..]);
            checked += expected.len();
            continue;
        }
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            i += 1;
            if line.starts_with("mosquitto_sub ") {
                let (_, rest) = line.split_once(' ').unwrap();
                let script = format!("stdbuf -oL mosquitto_sub -d -h 127.0.0.1 -p {port} {rest}");
                let w = Watched::spawn(Command::new("bash").args(["-c", &script]));
                w.wait_line(WAIT, |l| l.contains("received SUBACK"))
                    .unwrap_or_else(|| panic!("no SUBACK for {line}:\n{}", w.output()));
                watcher = Some(w);
                continue;
            }
            if !line.starts_with("mosquitto_") {
                continue;
            }
            let out = run_documented(line, port);
            let mut expected = Vec::new();
            while i < lines.len() && lines[i].starts_with("# ") && !lines[i].contains("prints:") {
                expected.push(&lines[i][2..]);
                i += 1;
            }
            if !expected.is_empty() {
                assert_eq!(
                    out.trim_end().lines().collect::<Vec<_>>(),
                    expected,
                    "{line}"
                );
                checked += expected.len();
            }
        }
    }
    assert!(checked >= 21, "only {checked} documented lines checked");
}

/// `chat_room_creation = "admins"`: an administrator made with `outpost user add --admin`
/// opens a room; another user may talk there but not open one.
#[test]
fn only_administrators_open_rooms_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = "bcrypt_cost = 4\nchat_room_creation = \"admins\"\n";
    std::fs::write(dir.path().join("outpost.toml"), config).unwrap();
    for (name, admin) in [("root", true), ("ana", false)] {
        let mut cmd = Command::new(common::BIN);
        cmd.arg("--config")
            .arg(dir.path().join("outpost.toml"))
            .arg("--db")
            .arg(dir.path().join("outpost.db"))
            .args(["user", "add", name, "--password-stdin"]);
        if admin {
            cmd.arg("--admin");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"long password\n")
            .unwrap();
        assert!(child.wait().unwrap().success(), "user add {name}");
    }
    let broker = Broker::start_in(dir, Some(config));
    let ana = user(broker.port(), "ana-1", "ana", "long password");
    ana.subscribe("chat/u/ana", QoS5::AtLeastOnce);
    ana.subscribe("chat/r/ops", QoS5::AtLeastOnce);
    ana.publish("chat/r/ops", QoS5::AtLeastOnce, false, "may I open it?");
    let refusal = expect_on(&ana, "chat/u/ana", |_| true, "refusal");
    assert_eq!(
        text(&refusal),
        "room_creation_denied only administrators may create rooms"
    );
    let root = user(broker.port(), "root-1", "root", "long password");
    root.publish("chat/r/ops", QoS5::AtLeastOnce, false, "ops room open");
    expect_on(
        &ana,
        "chat/r/ops",
        |t| t.ends_with(" root ops room open"),
        "root's message",
    );
    ana.publish("chat/r/ops", QoS5::AtLeastOnce, false, "thanks");
    expect_on(
        &ana,
        "chat/r/ops",
        |t| t.ends_with(" ana thanks"),
        "ana's message",
    );
}

/// A will on a chat topic would reach the room without the service (and with any sender
/// the payload claims): the CONNECT is refused.
#[test]
fn a_will_on_a_chat_topic_is_refused() {
    let broker = Broker::start();
    for (version, refused) in [(Version::V5, 0x87), (Version::V311, 0x05)] {
        let connect = frames::Connect::new(version, "willful")
            .will(frames::Will {
                topic: "chat/r/general",
                payload: b"1 1700000000 root fake",
                qos: 1,
                retain: false,
            })
            .encode();
        let mut raw = Raw::open(broker.port(), version);
        raw.send(&connect);
        let (_, code) = raw.expect_frame(frames::CONNACK, WAIT).connack();
        assert_eq!(code, refused, "{version:?}");
    }
}

/// A room of 200 members, each its own rumqttc MQTT 5 connection, logged in as one of 20
/// accounts (ten connections each, as a user with several devices; bcrypt in a debug build
/// makes 200 distinct logins slow), three of them talking: every member gets every message
/// exactly once, in the order sent, with the sender it was sent by and the one id the
/// service gave it (the id history shows); the room list counts each member once, also the
/// member subscribed twice (to the room and to `chat/r/+`), and every member sees that count.
#[test]
fn a_room_of_200_members_gets_each_message_once_with_its_id_and_sender() {
    const MEMBERS: usize = 200;
    const ACCOUNTS: usize = 20;
    // Every member comes from 127.0.0.1, and so do the 20 registrations.
    let broker = Broker::with_config(&format!(
        "{CONFIG}max_connections_per_address = 0\nregistrations_per_hour = 0\n"
    ));
    let port = broker.port();
    let kiosk = V5::connect(port, "room-kiosk");
    kiosk.subscribe("kiosk/room", QoS5::AtLeastOnce);
    for i in 0..ACCOUNTS {
        let credentials = format!("member{i} password-{i}");
        let reply = request_v5(
            &kiosk,
            "register",
            &credentials,
            "kiosk/room",
            &i.to_string(),
        );
        assert_eq!(text(&reply), format!("ok registered member{i}"));
    }
    kiosk.disconnect();
    let members: Vec<V5> = (0..MEMBERS)
        .map(|i| {
            let (name, password) = (
                format!("member{}", i % ACCOUNTS),
                format!("password-{}", i % ACCOUNTS),
            );
            let m = user(port, &format!("room-{i}"), &name, &password);
            m.subscribe("chat/r/big", QoS5::AtLeastOnce);
            m.subscribe(&format!("chat/u/{name}"), QoS5::AtLeastOnce);
            m
        })
        .collect();
    members[0].subscribe("chat/r/+", QoS5::AtLeastOnce);

    // Members 0, 1 and 2 take turns; each send is acknowledged before the next, so the
    // service numbers them in this order.
    let mut said = Vec::new();
    for round in 0..4 {
        for sender in 0..3 {
            said.push((
                format!("member{sender}"),
                format!("round {round} from {sender}"),
            ));
        }
    }
    said.push(("member0".to_string(), "that is all".to_string()));
    for (sender, line) in &said {
        let i: usize = sender["member".len()..].parse().unwrap();
        send(&members[i], "chat/r/big", line.clone());
    }

    let mut ids: Option<Vec<u64>> = None;
    for (i, m) in members.iter().enumerate() {
        let got: Vec<(u64, String, String)> = said
            .iter()
            .map(|_| {
                let p = expect_on(m, "chat/r/big", is_message, "room message");
                let t = text(&p);
                let mut f = t.splitn(4, ' ');
                let id = f.next().unwrap().parse().unwrap();
                let (sender, line) = (f.nth(1).unwrap(), f.next().unwrap());
                (id, sender.to_owned(), line.to_owned())
            })
            .collect();
        let heard: Vec<(String, String)> =
            got.iter().map(|(_, s, l)| (s.clone(), l.clone())).collect();
        assert_eq!(
            heard, said,
            "member {i}: senders and texts in the order sent"
        );
        let these: Vec<u64> = got.iter().map(|(id, _, _)| *id).collect();
        assert!(
            these.windows(2).all(|w| w[0] < w[1]),
            "member {i}: ids {these:?}"
        );
        match &ids {
            None => ids = Some(these),
            Some(first) => assert_eq!(&these, first, "member {i}: the same ids as member 0"),
        }
        // The reply leaves after anything routed to this member before it: a second copy
        // of a room message would be in the inbox by now.
        let me = format!("chat/u/member{}", i % ACCOUNTS);
        let rooms = request_v5(m, "rooms", "", &me, &format!("rooms-{i}"));
        assert_eq!(
            text(&rooms),
            format!("ok 1 room\nbig {MEMBERS} {} m", said.len()),
            "member {i}: the room list"
        );
        let extra = m.take(
            Duration::ZERO,
            |p| matches!(p, Packet::Publish(p) if topic(p) == "chat/r/big" && is_message(&text(p))),
        );
        assert!(extra.is_none(), "member {i}: a second copy: {extra:?}");
    }

    // History carries the same ids, senders and texts.
    let page = request_v5(&members[7], "history", "big 20", "chat/u/member7", "h");
    let page = text(&page);
    let mut lines = page.lines();
    assert_eq!(
        lines.next(),
        Some(format!("ok {} messages", said.len()).as_str())
    );
    let stored: Vec<(u64, String, String)> = lines
        .map(|l| {
            let mut f = l.splitn(5, ' ');
            let id = f.next().unwrap().parse().unwrap();
            let sender = f.nth(1).unwrap().to_owned();
            assert_eq!(f.next(), Some("0"), "no likes: {l}");
            (id, sender, f.next().unwrap().to_owned())
        })
        .collect();
    let sent: Vec<(u64, String, String)> = ids
        .unwrap()
        .into_iter()
        .zip(said)
        .map(|(id, (s, l))| (id, s, l))
        .collect();
    assert_eq!(stored, sent);

    // Presence: every member heard each of the 20 users join exactly once, in a handful of
    // coalesced announcements (not one per join), and member 0, there from the start, heard
    // each come online once.
    // The last window closes a second after the last change.
    std::thread::sleep(Duration::from_millis(1500));
    for (i, m) in members.iter().enumerate() {
        let mut announcements = Vec::new();
        while let Some(p) = m.take(Duration::ZERO, |p| {
            matches!(p, Packet::Publish(p) if topic(p) == "chat/r/big" && !is_message(&text(p)))
        }) {
            if let Packet::Publish(p) = p {
                announcements.push(text(&p));
            }
        }
        let named = |kind: &str| {
            let mut names: Vec<String> = announcements
                .iter()
                .flat_map(|a| a.lines())
                .filter_map(|l| l.strip_prefix(kind))
                .flat_map(|names| names.split(' ').map(str::to_owned))
                .collect();
            names.sort();
            names
        };
        let mut accounts: Vec<String> = (0..ACCOUNTS).map(|a| format!("member{a}")).collect();
        accounts.sort();
        assert_eq!(
            named("j "),
            accounts,
            "member {i}: joins in {announcements:?}"
        );
        if i == 0 {
            assert_eq!(
                named("o "),
                accounts,
                "member 0: online in {announcements:?}"
            );
        }
        assert!(
            announcements.len() <= 10,
            "member {i}: {} announcements",
            announcements.len()
        );
    }
    // Messages cost no presence: one more, and nothing else comes.
    send(&members[1], "chat/r/big", "one more".into());
    for m in &members[..5] {
        expect_on(
            m,
            "chat/r/big",
            |t| t.ends_with(" member1 one more"),
            "one more",
        );
        no_presence(m, "big", Duration::from_millis(1200));
    }
    // A DISCONNECT each ends the clients' threads at once (a dropped client's thread waits
    // out its poll interval).
    for m in members {
        m.disconnect();
    }
}

/// An anonymous MQTT 3.1.1 client with an empty client id never learns the id the broker
/// gave it, so no reply could reach it: its chat request closes the connection (the one
/// refusal 3.1.1 has) instead of leaving it waiting. With a client id, the same request is
/// answered on `chat/a/<client id>`.
#[test]
fn an_anonymous_3_1_1_client_without_a_client_id_is_refused_clearly() {
    let broker = Broker::with_config(CONFIG);
    let (mut nameless, _) = Raw::connect(
        broker.port(),
        &frames::Connect::new(Version::V311, "").clean(true),
    );
    nameless.send(&frames::publish(
        Version::V311,
        "chat/x/question",
        1,
        1,
        b"nobody",
    ));
    let seen = nameless.expect_closed(WAIT);
    assert!(
        seen.iter().all(|f| f.kind() != frames::PUBACK),
        "no acknowledgement for a request nobody can answer: {seen:?}"
    );

    let (mut kiosk, _) = Raw::connect(broker.port(), &frames::Connect::new(Version::V311, "kiosk"));
    kiosk.send(&frames::subscribe(Version::V311, 1, "chat/a/kiosk/#", 1));
    kiosk.expect_frame(frames::SUBACK, WAIT);
    kiosk.send(&frames::publish(
        Version::V311,
        "chat/x/question/q1",
        1,
        2,
        b"nobody",
    ));
    let reply = loop {
        let f = kiosk.expect_frame(frames::PUBLISH, WAIT);
        let (topic, _, payload) = f.publish(Version::V311);
        if topic == b"chat/a/kiosk/q1" {
            break String::from_utf8(payload).unwrap();
        }
    };
    assert!(reply.starts_with("no_question "), "{reply}");
}

/// A line separator in a text would split a history row for a reader that takes U+2028
/// as a line end (Python's `splitlines()`): refused like a newline. `setq` with an empty
/// question or answer gets the documented codes.
#[test]
fn line_separators_are_refused_and_setq_codes_are_as_documented() {
    let broker = Broker::with_config(CONFIG);
    let port = broker.port();
    common::add_user(broker.dir(), "ana", "s3cret-pass");
    let mut ana = raw_user(port, "ana-1", "ana", "s3cret-pass");
    suback_codes(&mut ana, &["chat/u/ana/#"]);
    let mut ask = |topic: &str, payload: &str| -> String {
        ana.send(&frames::publish(
            Version::V5,
            topic,
            0,
            0,
            payload.as_bytes(),
        ));
        loop {
            let f = ana.expect_frame(frames::PUBLISH, WAIT);
            let (t, _, p) = f.publish(Version::V5);
            if t.starts_with(b"chat/u/ana") {
                return String::from_utf8(p).unwrap();
            }
        }
    };
    for text in [
        "forged\u{2028}1 1700000000 bob 0 hi",
        "a\u{2029}b",
        "a\u{85}b",
    ] {
        let reply = ask("chat/r/general", text);
        assert!(reply.starts_with("text_invalid "), "{text:?}: {reply}");
    }
    for (payload, code) in [
        ("\nRex", "question_invalid "),
        ("First pet?\n", "answer_invalid "),
        ("First\u{2028}pet?\nRex", "question_invalid "),
    ] {
        let reply = ask("chat/x/setq", payload);
        assert!(reply.starts_with(code), "{payload:?}: {reply}");
    }
}

/// True for a room message (`<id> …`), false for the other room events.
fn is_message(payload: &str) -> bool {
    payload.starts_with(|c: char| c.is_ascii_digit())
}

/// The next presence announcement on `chat/r/<room>` (`j`/`q`/`o`/`f` lines).
fn presence(client: &V5, room: &str) -> String {
    let is_presence = |t: &str| matches!(t.as_bytes().first(), Some(b'j' | b'q' | b'o' | b'f'));
    text(&expect_on(
        client,
        &format!("chat/r/{room}"),
        is_presence,
        "presence",
    ))
}

/// No presence announcement on `chat/r/<room>` for `quiet`.
fn no_presence(client: &V5, room: &str, quiet: Duration) {
    let on = format!("chat/r/{room}");
    let extra = client.take(quiet, |p| {
        matches!(p, Packet::Publish(p) if topic(p) == on
            && matches!(p.payload.first(), Some(b'j' | b'q' | b'o' | b'f')))
    });
    assert!(
        extra.is_none(),
        "{}: unexpected presence {extra:?}",
        client.id
    );
}

/// A MQTT 5 login over WebSocket that subscribes to `filter`.
fn ws_user(port: u16, id: &str, name: &str, password: &str, filter: &str) -> common::ws::WsRaw {
    use common::ws::{binary, WsRaw};
    let connect = frames::Connect::new(Version::V5, id).credentials(name, password.as_bytes());
    let mut ws = WsRaw::connect(port, &connect);
    ws.send(&binary(&frames::subscribe(Version::V5, 1, filter, 1)));
    ws.expect_packet(frames::SUBACK, WAIT);
    ws
}

/// Presence as a room member sees it: a user who joins over WebSocket shows as joined and
/// online, a dropped WebSocket as offline, the reconnect as online — each once, even though
/// the broker learns of them as separate subscribe and disconnect events. Members survive
/// a kill -9; presence starts afresh (everyone offline until they come back), and each
/// comeback is announced once.
#[test]
fn presence_shows_offline_then_online_once_across_a_websocket_drop_and_kill_9() {
    let mut broker = Broker::with_config(CONFIG);
    common::add_user(broker.dir(), "ana", "s3cret-pass");
    common::add_user(broker.dir(), "bob", "an0ther-pass");
    let bob = user(broker.port(), "bob-1", "bob", "an0ther-pass");
    bob.subscribe("chat/r/camp", QoS5::AtLeastOnce);
    bob.subscribe("chat/u/bob/#", QoS5::AtLeastOnce);
    send(&bob, "chat/r/camp", "who is here?".into());
    assert_eq!(presence(&bob, "camp"), "j bob\no bob");

    let ana = ws_user(
        broker.ws_port(),
        "ana-ws",
        "ana",
        "s3cret-pass",
        "chat/r/camp",
    );
    assert_eq!(presence(&bob, "camp"), "j ana\no ana");
    let members = request_v5(&bob, "members", "camp", "chat/u/bob", "m1");
    assert_eq!(text(&members), "ok 2 members\no ana bob");

    drop(ana); // the WebSocket goes without DISCONNECT
    assert_eq!(presence(&bob, "camp"), "f ana");
    let ana = ws_user(
        broker.ws_port(),
        "ana-ws",
        "ana",
        "s3cret-pass",
        "chat/r/camp",
    );
    assert_eq!(presence(&bob, "camp"), "o ana");
    no_presence(&bob, "camp", Duration::from_millis(1500));
    drop(ana);
    assert_eq!(presence(&bob, "camp"), "f ana");

    broker.kill9();
    broker.restart();
    let bob = user(broker.port(), "bob-2", "bob", "an0ther-pass");
    bob.subscribe("chat/r/camp", QoS5::AtLeastOnce);
    bob.subscribe("chat/u/bob/#", QoS5::AtLeastOnce);
    assert_eq!(presence(&bob, "camp"), "o bob", "bob is still a member");
    let members = request_v5(&bob, "members", "camp", "chat/u/bob", "m2");
    assert_eq!(text(&members), "ok 2 members\no bob\nf ana");
    let _ana = ws_user(
        broker.ws_port(),
        "ana-ws",
        "ana",
        "s3cret-pass",
        "chat/r/camp",
    );
    assert_eq!(presence(&bob, "camp"), "o ana");
    no_presence(&bob, "camp", Duration::from_millis(1500));
}

/// A direct message reaches its two users and nobody else: a third user subscribing to
/// every filter that could cover it (wildcards, shared subscriptions, the inbox itself)
/// gets refusals or nothing, cannot read the conversation's history or like its message,
/// and cannot plant a retained message in the inbox. Blocking stops the sender.
#[test]
fn a_direct_message_is_seen_by_its_two_users_only() {
    let broker = Broker::with_config(CONFIG);
    let port = broker.port();
    for (name, password) in [
        ("ana", "s3cret-pass"),
        ("bob", "an0ther-pass"),
        ("mal", "m4llory-pass"),
    ] {
        common::add_user(broker.dir(), name, password);
    }
    let mut mal = raw_user(port, "mal-1", "mal", "m4llory-pass");
    let filters = [
        "#",
        "chat/#",
        "chat/+/+/#",
        "chat/u/#",
        "chat/u/+/d/#",
        "+/+/+/+",
        "chat/u/bob/#",
        "chat/u/bob/d/ana",
        "+/u/ana/d/+",
        "$share/g/#",
        "$share/g/chat/#",
        "$share/g/chat/u/bob/d/+",
        "chat/u/mal/#",
    ];
    let codes = suback_codes(&mut mal, &filters);
    let granted: Vec<&str> = filters
        .iter()
        .zip(&codes)
        .filter(|(_, c)| **c < 0x80)
        .map(|(f, _)| *f)
        .collect();
    assert_eq!(
        granted,
        [
            "#",
            "chat/#",
            "$share/g/#",
            "$share/g/chat/#",
            "chat/u/mal/#"
        ],
        "codes {codes:?}"
    );
    // A retained message planted on bob's inbox is the service's topic: never stored.
    mal.send(&frames::publish_with(
        Version::V5,
        "chat/u/bob/d/ana",
        1,
        true,
        9,
        &[],
        b"1 1700000000 ana send me your password",
    ));
    loop {
        let f = mal.expect_frame(frames::PUBLISH, WAIT);
        let (t, _, p) = f.publish(Version::V5);
        if t == b"chat/u/mal" {
            let p = String::from_utf8(p).unwrap();
            assert!(p.starts_with("bad_request "), "{p}");
            break;
        }
    }

    let ana = user(port, "ana-1", "ana", "s3cret-pass");
    ana.subscribe("chat/u/ana/#", QoS5::AtLeastOnce);
    let bob = user(port, "bob-1", "bob", "an0ther-pass");
    bob.subscribe("chat/u/bob/#", QoS5::AtLeastOnce);
    no_presence(&bob, "x", Duration::ZERO);
    let got = bob.take(Duration::from_millis(300), |p| {
        matches!(p, Packet::Publish(_))
    });
    assert!(got.is_none(), "nothing retained in bob's inbox: {got:?}");
    send(&ana, "chat/d/bob", "meet at the well".into());
    // (ana's and bob's direct presence, `o ana` / `o bob`, may come on the same topics.)
    let at_bob = expect_on(&bob, "chat/u/bob/d/ana", is_message, "ana's direct message");
    assert!(
        text(&at_bob).ends_with(" ana meet at the well"),
        "{}",
        text(&at_bob)
    );
    let id = message_id(&text(&at_bob));
    let at_ana = expect_on(&ana, "chat/u/ana/d/bob", is_message, "her own copy");
    assert_eq!(text(&at_ana), text(&at_bob));

    // Unread for bob until he marks it read, on any device.
    let rooms = request_v5(&bob, "rooms", "", "chat/u/bob", "r1");
    assert_eq!(text(&rooms), "ok 1 room\n@ana 2 1 u1");
    let read = request_v5(&bob, "read", &format!("@ana {id}"), "chat/u/bob", "m1");
    assert_eq!(text(&read), format!("ok read @ana {id}"));
    let rooms = request_v5(&bob, "rooms", "", "chat/u/bob", "r2");
    assert_eq!(text(&rooms), "ok 1 room\n@ana 2 1 u0");
    let page = request_v5(&bob, "history", "@ana", "chat/u/bob", "h1");
    assert!(
        text(&page).ends_with(" ana 0 meet at the well"),
        "{}",
        text(&page)
    );

    let mut ask = |op: &str, payload: &str| -> String {
        mal.send(&frames::publish(
            Version::V5,
            format!("chat/x/{op}"),
            0,
            0,
            payload.as_bytes(),
        ));
        loop {
            let f = mal.expect_frame(frames::PUBLISH, WAIT);
            let (t, _, p) = f.publish(Version::V5);
            let p = String::from_utf8(p).unwrap();
            assert!(
                !p.contains("meet at the well"),
                "leaked on {:?}: {p}",
                String::from_utf8_lossy(&t)
            );
            if t == b"chat/u/mal" {
                return p;
            }
        }
    };
    assert!(ask("history", "@ana").starts_with("unknown_room "));
    assert!(ask("history", "@bob").starts_with("unknown_room "));
    assert!(ask("like", &id.to_string()).starts_with("unknown_message "));
    assert_eq!(ask("rooms", ""), "ok 0 rooms");
    // Everything mal received, in full, held nothing of the conversation.
    match mal.frames_until_closed(Duration::from_millis(1500)) {
        Ok(frames) | Err(frames) => {
            for f in frames.iter().filter(|f| f.kind() == frames::PUBLISH) {
                let (t, _, p) = f.publish(Version::V5);
                assert!(
                    !String::from_utf8_lossy(&p).contains("meet at the well"),
                    "leaked on {}",
                    String::from_utf8_lossy(&t)
                );
            }
        }
    }

    // bob blocks ana: her next direct message is refused and reaches nobody.
    let blocked = request_v5(&bob, "block", "ana", "chat/u/bob", "b1");
    assert_eq!(text(&blocked), "ok blocked ana");
    let list = request_v5(&bob, "blocks", "", "chat/u/bob", "b2");
    assert_eq!(text(&list), "ok 1 blocked\nana");
    send(&ana, "chat/d/bob", "are you there?".into());
    let refused = expect_on(&ana, "chat/u/ana", |_| true, "the refusal");
    assert!(text(&refused).starts_with("blocked "), "{}", text(&refused));
    let got = bob.take(
        Duration::from_millis(500),
        |p| matches!(p, Packet::Publish(p) if is_message(&text(p))),
    );
    assert!(got.is_none(), "bob got {got:?}");
}

// ---------------------------------------------------------------------------------------------
// A room of 1000 members reconnecting after a gateway restart (docs/bandwidth.md).

/// One member of the big room on a plain non-blocking socket: MQTT 3.1.1 frames written
/// by hand, every byte it receives counted and every PUBLISH's payload kept.
struct Member {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
    bytes_in: u64,
    bytes_out: u64,
    publishes: Vec<String>,
    /// The CONNACK's return code, once it came.
    connack: Option<u8>,
    /// The broker closed the connection.
    closed: bool,
}

impl Member {
    /// Connects from loopback address `from` as `name` and subscribes to `chat/r/big`,
    /// without waiting for an answer.
    fn connect(port: u16, from: std::net::Ipv4Addr, name: &str) -> Member {
        use std::io::Write;
        use std::net::SocketAddr;
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
        socket
            .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .unwrap();
        let mut stream: std::net::TcpStream = socket.into();
        let mut out = Bytes::new()
            .str("MQTT")
            .u8(4)
            .u8(0xC2)
            .u16(300)
            .str(name)
            .str(name)
            .str(format!("{name}-password"))
            .packet(frames::CONNECT);
        out.extend(frames::subscribe(Version::V311, 1, "chat/r/big", 0));
        stream.write_all(&out).unwrap();
        stream.set_nonblocking(true).unwrap();
        Member {
            stream,
            buf: Vec::new(),
            bytes_in: 0,
            bytes_out: out.len() as u64,
            publishes: Vec::new(),
            connack: None,
            closed: false,
        }
    }

    /// Reads what has arrived; true if anything did.
    fn read(&mut self) -> bool {
        use std::io::Read;
        let mut chunk = [0u8; 16384];
        let mut any = false;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return any;
                }
                Ok(n) => {
                    any = true;
                    self.bytes_in += n as u64;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return any,
            }
        }
        // Whole frames: the QoS 0 PUBLISHes' payloads are kept.
        loop {
            let mut len = 0usize;
            let mut shift = 0;
            let mut i = 1;
            let complete = loop {
                let Some(&b) = self.buf.get(i) else {
                    break false;
                };
                len |= usize::from(b & 0x7F) << shift;
                shift += 7;
                i += 1;
                if b & 0x80 == 0 {
                    break true;
                }
            };
            if !complete || self.buf.len() < i + len {
                return any;
            }
            let frame: Vec<u8> = self.buf.drain(..i + len).collect();
            if frame[0] >> 4 == 2 && len >= 2 {
                self.connack = Some(frame[i + 1]);
            }
            if frame[0] >> 4 == 3 {
                let topic_len = usize::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
                let payload = &frame[i + 2 + topic_len..];
                self.publishes
                    .push(String::from_utf8_lossy(payload).into_owned());
            }
        }
    }
}

/// Connects the members in waves of [`WAVE`], each wave once the one before has its
/// CONNACKs, as clients backing off with jitter spread their reconnects.
fn connect_in_waves(
    port: u16,
    n: usize,
    from: impl Fn(usize) -> (std::net::Ipv4Addr, String),
) -> Vec<Member> {
    let mut members: Vec<Member> = Vec::with_capacity(n);
    for i in 0..n {
        let (address, name) = from(i);
        members.push(Member::connect(port, address, &name));
        if members.len() % WAVE == 0 || i + 1 == n {
            let wave = members.len().saturating_sub(WAVE)..members.len();
            let answered = wait_until(Duration::from_secs(60), || {
                for m in &mut members[wave.clone()] {
                    m.read();
                }
                members[wave.clone()]
                    .iter()
                    .all(|m| m.bytes_in > 0)
                    .then_some(())
            });
            assert!(answered.is_some(), "members {wave:?}: no CONNACK");
        }
    }
    members
}

/// Members connecting at once in [`connect_in_waves`].
const WAVE: usize = 50;

/// Connects all the members in the same instant and waits (up to two minutes) until each
/// has its CONNACK or was closed.
fn connect_all_at_once(
    port: u16,
    n: usize,
    from: impl Fn(usize) -> (std::net::Ipv4Addr, String),
) -> Vec<Member> {
    let mut members: Vec<Member> = (0..n)
        .map(|i| {
            let (address, name) = from(i);
            Member::connect(port, address, &name)
        })
        .collect();
    wait_until(Duration::from_secs(120), || {
        for m in members.iter_mut() {
            m.read();
        }
        members
            .iter()
            .all(|m| m.connack.is_some() || m.closed)
            .then_some(())
    });
    members
}

/// Reads every member until nothing has come for `quiet` (at most `limit`).
fn drain(members: &mut [Member], quiet: Duration, limit: Duration) {
    let start = std::time::Instant::now();
    let mut last = std::time::Instant::now();
    while last.elapsed() < quiet && start.elapsed() < limit {
        let mut any = false;
        for m in members.iter_mut() {
            any |= m.read();
        }
        if any {
            last = std::time::Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A room of 1000 members, each its own user, comes back after the gateway is killed
/// (`kill -9`) and restarted: every member reconnects at once and subscribes to the room
/// again. What each member receives is counted on its socket: the presence of the other
/// 999 must reach it coalesced — a few announcements of many names, each member named
/// online exactly once, nobody offline — not a thousand PUBLISHes. Heavy (1000 sockets),
/// so run by hand:
/// `cargo test --test chat a_room_of_1000 -- --ignored --nocapture`.
#[test]
#[ignore]
fn a_room_of_1000_members_reconnecting_after_a_restart_hears_presence_coalesced() {
    const MEMBERS: usize = 1000;
    let mut broker = Broker::with_config(&format!(
        "{CONFIG}max_connections_per_address = 0\nregistrations_per_hour = 0\n\
         chat_requests_per_second = 0\n"
    ));
    let name = |i: usize| format!("m{i:04}");
    // Each member from its own address, as each device on the village's Wi-Fi (one
    // address for all would meet the per-address login throttle, rightly).
    let address = |i: usize| std::net::Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
    let kiosk = V5::connect(broker.port(), "room-kiosk");
    kiosk.subscribe("kiosk/big", QoS5::AtLeastOnce);
    for i in 0..MEMBERS {
        let reply = request_v5(
            &kiosk,
            "register",
            &format!("{} {}-password", name(i), name(i)),
            "kiosk/big",
            &i.to_string(),
        );
        assert_eq!(text(&reply), format!("ok registered {}", name(i)));
    }
    kiosk.disconnect();
    // Everyone subscribes, then the room is made: all 1000 are its members.
    let mut members = connect_in_waves(broker.port(), MEMBERS, |i| (address(i), name(i)));
    drain(
        &mut members,
        Duration::from_secs(2),
        Duration::from_secs(60),
    );
    let opener = user(
        broker.port(),
        "opener",
        &name(0),
        &format!("{}-password", name(0)),
    );
    send(&opener, "chat/r/big", "the big room".into());
    drain(
        &mut members,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    for (i, m) in members.iter().enumerate() {
        assert!(
            m.publishes.iter().any(|p| p.starts_with("j ")),
            "member {i} never heard the joins: {:?}",
            m.publishes
        );
    }

    broker.restart();
    let start = std::time::Instant::now();
    let mut members = connect_all_at_once(broker.port(), MEMBERS, |i| (address(i), name(i)));
    let connected_in = start.elapsed();
    // After a restart the login cache is empty: every CONNECT waits for its password
    // check, one after the other on the auth workers. That is the broker's own work: the
    // CONNECT came in time, and no client may be closed for it.
    let accepted = members.iter().filter(|m| m.connack == Some(0)).count();
    let refused = members
        .iter()
        .filter(|m| m.connack.is_some_and(|c| c != 0))
        .count();
    let dropped = members.iter().filter(|m| m.connack.is_none()).count();
    println!(
        "{MEMBERS} members reconnecting in the same instant: {accepted} accepted, {refused} refused, \
         {dropped} closed or unanswered, all answered in {connected_in:?}"
    );
    assert_eq!(accepted, MEMBERS, "members not let back in");
    drain(
        &mut members,
        Duration::from_secs(3),
        Duration::from_secs(120),
    );
    let storm = start.elapsed().saturating_sub(Duration::from_secs(3));

    let mut announcements = Vec::new();
    let mut bytes = Vec::new();
    let mut everyone_heard = std::collections::BTreeSet::new();
    for (i, m) in members.iter().enumerate() {
        let mut online = Vec::new();
        for p in &m.publishes {
            for line in p.lines() {
                let mut words = line.split(' ');
                let kind = words.next();
                assert_eq!(kind, Some("o"), "member {i}: {line:.80}");
                online.extend(words.map(str::to_owned));
            }
        }
        // Presence is for those listening: a member hears who came online after it
        // subscribed (the others, `members` lists), each once.
        online.sort();
        let heard = online.len();
        online.dedup();
        assert_eq!(online.len(), heard, "member {i}: someone announced twice");
        everyone_heard.extend(online);
        announcements.push(m.publishes.len());
        bytes.push(m.bytes_in);
    }
    assert_eq!(
        everyone_heard.len(),
        MEMBERS,
        "someone's return was never announced"
    );
    announcements.sort_unstable();
    bytes.sort_unstable();
    let (fewest, most) = (announcements[0], announcements[MEMBERS - 1]);
    println!("presence settled within {storm:?} of the restart");
    println!(
        "per member: sent {} bytes (CONNECT + SUBSCRIBE); received {}..{} bytes (median {}), \
         {fewest}..{most} presence PUBLISHes (QoS 0, no PUBACKs)",
        members[0].bytes_out,
        bytes[0],
        bytes[MEMBERS - 1],
        bytes[MEMBERS / 2]
    );
    // One announcement per room per second of changes, whatever the number of members.
    let windows = storm.as_secs() as usize + 2;
    assert!(
        most <= windows,
        "{most} announcements to one member in a storm of {storm:?}"
    );
}
