//! A service never publishes where its requester may not: the chat service's replies go to
//! an MQTT 5 Response Topic only when the requester could publish there itself (no `$`
//! topic, nothing `deny_publish` or a write ACL forbids) and read it. Driven with
//! `mosquitto_pub -V 5 -D publish response-topic …` as an attacker would, a
//! `mosquitto_sub` on the target topics, and a raw MQTT 5 client for the PUBACK code.

mod common;

use common::clients::WAIT;
use common::frames::{self, Version};
use common::raw::Raw;
use common::Broker;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CONFIG: &str = "bcrypt_cost = 4\ndeny_publish = [\"locked/#\"]\n";

/// MQTT 5 property ids.
const RESPONSE_TOPIC: u8 = 0x08;
const CORRELATION_DATA: u8 = 0x09;
/// PUBACK: Not authorized.
const NOT_AUTHORIZED: u8 = 0x87;

fn property(id: u8, value: &str) -> Vec<u8> {
    let mut p = vec![id];
    p.extend_from_slice(&(value.len() as u16).to_be_bytes());
    p.extend_from_slice(value.as_bytes());
    p
}

/// A raw anonymous MQTT 5 client subscribed to its own chat reply topic and `inbox/<id>`.
fn requester(port: u16, id: &str) -> Raw {
    let connect = frames::Connect::new(Version::V5, id).encode();
    let mut raw = Raw::open(port, Version::V5);
    raw.send(&connect);
    let (_, code) = raw.expect_frame(frames::CONNACK, WAIT).connack();
    assert_eq!(code, 0);
    raw.send(&frames::subscribe(
        Version::V5,
        1,
        &format!("chat/a/{id}"),
        1,
    ));
    raw.expect_frame(frames::SUBACK, WAIT);
    raw.send(&frames::subscribe(
        Version::V5,
        2,
        &format!("inbox/{id}"),
        1,
    ));
    raw.expect_frame(frames::SUBACK, WAIT);
    raw
}

/// Sends `chat/x/question` (QoS 1, packet id 7) with `response` as its Response Topic and
/// returns the PUBACK's reason code and the reply's topic and payload.
fn ask(raw: &mut Raw, response: &str) -> (u8, String, String) {
    let mut properties = property(RESPONSE_TOPIC, response);
    properties.extend(property(CORRELATION_DATA, "c1"));
    raw.send(&frames::publish_with(
        Version::V5,
        "chat/x/question",
        1,
        false,
        7,
        &properties,
        b"nobody",
    ));
    let mut puback = None;
    let mut reply = None;
    while puback.is_none() || reply.is_none() {
        match raw.next(WAIT) {
            common::raw::Next::Frame(f) if f.kind() == frames::PUBACK => {
                puback = Some(f.ack_reason())
            }
            common::raw::Next::Frame(f) if f.kind() == frames::PUBLISH => {
                let (topic, id, payload) = f.publish(Version::V5);
                if let Some(id) = id {
                    raw.send(&frames::ack(frames::PUBACK, id));
                }
                reply = Some((
                    String::from_utf8_lossy(&topic).into_owned(),
                    String::from_utf8_lossy(&payload).into_owned(),
                ));
            }
            common::raw::Next::Frame(_) => {}
            other => panic!("waiting for the reply to {response}: {other:?}"),
        }
    }
    let (topic, payload) = reply.unwrap();
    (puback.unwrap(), topic, payload)
}

#[test]
fn a_response_topic_the_client_may_not_publish_to_is_refused() {
    let broker = Broker::with_config(CONFIG);
    let port = broker.port();
    // Someone listening where the attacker wants the reply to land.
    let mut sub = Command::new("mosquitto_sub")
        .args(["-V", "5", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "$SYS/broker/version", "-t", "locked/door", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    let (lines_tx, lines) = mpsc::channel();
    let out = sub.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    // The retained version arrives first: the subscription is live.
    let first = lines.recv_timeout(WAIT).expect("the retained $SYS version");
    assert!(first.starts_with("$SYS/broker/version "), "{first}");

    // The attack from the issue, as written: anonymous, mosquitto_pub, MQTT 5.
    for target in ["$SYS/broker/version", "locked/door"] {
        let status = Command::new("mosquitto_pub")
            .args([
                "-V",
                "5",
                "-q",
                "1",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-t", "chat/x/question", "-m", "nobody"])
            .args(["-D", "publish", "response-topic", target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mosquitto_pub");
        // mosquitto_pub reports the PUBACK's Not authorized; what matters is below.
        let _ = status;
        assert!(
            broker
                .wait_for_log(WAIT, |l| l.contains(&format!("Response Topic {target:?}"))
                    && l.contains("refused"))
                .is_some(),
            "no refusal logged for {target}"
        );
    }

    // A raw MQTT 5 client learns it twice: PUBACK Not authorized, and `bad_response_topic`
    // on its own private reply topic (never on the topic it named).
    let mut raw = requester(port, "asker");
    for target in ["$SYS/broker/version", "locked/door", "$share/g/x"] {
        let (reason, topic, payload) = ask(&mut raw, target);
        assert_eq!(reason, NOT_AUTHORIZED, "{target}");
        assert_eq!(topic, "chat/a/asker", "{target}");
        assert!(payload.starts_with("bad_response_topic "), "{payload}");
    }
    // A topic it may publish to and read gets the answer, so the refusals above are the
    // rule and not a broken path.
    let (reason, topic, payload) = ask(&mut raw, "inbox/asker");
    assert_eq!((reason, topic.as_str()), (0, "inbox/asker"));
    assert!(payload.starts_with("no_question "), "{payload}");

    // Nothing reached the listener on $SYS/broker/version or locked/door.
    std::thread::sleep(Duration::from_millis(300));
    let leaked: Vec<String> = lines.try_iter().collect();
    assert!(leaked.is_empty(), "replies leaked: {leaked:?}");
    let _ = sub.kill();
    let _ = sub.wait();
}
