//! Interoperability with the mosquitto_pub / mosquitto_sub command-line clients in MQTT 3.1.1
//! and 5 modes. Missing mosquitto-clients is a failure, not a skip.

mod common;

use common::clients::{QoS4, V4};
use common::upstream::Sub;
use common::Broker;
use std::process::{Command, Output, Stdio};

fn require_mosquitto_clients() {
    for tool in ["mosquitto_pub", "mosquitto_sub"] {
        if let Err(e) = Command::new(tool).arg("--help").output() {
            panic!(
                "{tool} is required for these tests ({e}); run `make test` or \
                 `apt-get install -y mosquitto-clients`"
            );
        }
    }
}

/// `mosquitto_sub` on the broker at `port` with `args`, giving up after 5 s of silence
/// (`-W 5`) so a missed message fails the test instead of hanging it; waits for its SUBACK.
fn start_sub(port: u16, args: &[&str]) -> Sub {
    require_mosquitto_clients();
    let mut all = vec!["-W", "5"];
    all.extend_from_slice(args);
    Sub::spawn(port, &all)
}

fn mosquitto_pub(port: u16, args: &[&str]) -> Output {
    require_mosquitto_clients();
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `mosquitto_sub -t 'a/#' -v -C 1` (protocol `sub_v`) sees what `mosquitto_pub -t a/b -m hi`
/// (protocol `pub_v`) sends, at QoS 0, 1 and 2.
fn round_trip(sub_v: &str, pub_v: &str) {
    let broker = Broker::start();
    for qos in ["0", "1", "2"] {
        let id = format!("msub-{sub_v}-{qos}");
        let sub = start_sub(
            broker.port(),
            &[
                "-V", sub_v, "-i", &id, "-t", "a/#", "-q", "2", "-v", "-C", "1",
            ],
        );
        let payload = format!("hi-{qos}");
        mosquitto_pub(
            broker.port(),
            &["-V", pub_v, "-t", "a/b", "-m", &payload, "-q", qos],
        );
        sub.wait_line(|l| l == format!("a/b {payload}"), "message line");
        let debug = sub.publish_line(0);
        assert!(
            debug.contains(&format!("(d0, q{qos}, r0,")),
            "sub {sub_v} / pub {pub_v}: delivered as {debug}"
        );
        let status = sub.wait_exit();
        assert!(status.success(), "mosquitto_sub exit status {status:?}");
    }
}

#[test]
fn mosquitto_v311_to_v311() {
    round_trip("mqttv311", "mqttv311");
}

#[test]
fn mosquitto_v5_to_v5() {
    round_trip("mqttv5", "mqttv5");
}

#[test]
fn mosquitto_v311_publisher_to_v5_subscriber() {
    round_trip("mqttv5", "mqttv311");
}

#[test]
fn mosquitto_v5_publisher_to_v311_subscriber() {
    round_trip("mqttv311", "mqttv5");
}

#[test]
fn mosquitto_retained_set_delivered_and_cleared() {
    let broker = Broker::start();
    mosquitto_pub(
        broker.port(),
        &[
            "-V", "mqttv5", "-t", "keep/it", "-m", "kept", "-q", "1", "-r",
        ],
    );
    let sub = start_sub(
        broker.port(),
        &["-V", "mqttv311", "-t", "keep/#", "-q", "1", "-v", "-C", "1"],
    );
    sub.wait_line(|l| l == "keep/it kept", "retained message");
    assert!(
        sub.publish_line(0).contains(", r1,"),
        "retain flag not set on subscribe"
    );
    assert!(sub.wait_exit().success());

    // An empty retained payload (-n) clears it: the next subscriber's first message is live.
    mosquitto_pub(
        broker.port(),
        &["-V", "mqttv311", "-t", "keep/it", "-n", "-q", "1", "-r"],
    );
    let sub = start_sub(
        broker.port(),
        &["-V", "mqttv5", "-t", "keep/#", "-q", "1", "-v", "-C", "1"],
    );
    mosquitto_pub(broker.port(), &["-t", "keep/it", "-m", "live", "-q", "1"]);
    sub.wait_line(|l| l.starts_with("keep/it"), "live message");
    let first = sub.publish_line(0);
    assert!(
        first.contains(", r0,"),
        "first message after clearing was retained: {first}"
    );
    assert!(sub.wait_exit().success());
}

#[test]
fn mosquitto_sub_killed_publishes_its_will() {
    let broker = Broker::start();
    let observer = V4::connect(broker.port(), "m-obs");
    observer.subscribe("mwill/#", QoS4::AtLeastOnce);
    let mut sub = start_sub(
        broker.port(),
        &[
            "-V",
            "mqttv5",
            "-t",
            "unused",
            "--will-topic",
            "mwill/t",
            "--will-payload",
            "mosquitto gone",
            "--will-qos",
            "1",
        ],
    );
    sub.kill(); // SIGKILL: no DISCONNECT
    let got = observer.expect_publish();
    assert_eq!(got.topic, "mwill/t");
    assert_eq!(&got.payload[..], b"mosquitto gone");
}
