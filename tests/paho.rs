//! Interoperability with Python paho-mqtt 2.x in MQTTv311 and MQTTv5 modes: runs the scripts in
//! tests/python/ against a real broker. Missing python3 or paho is a failure, not a skip.

mod common;

use common::scripts::run_until_ok_within;
use common::Broker;
use std::process::Command;
use std::time::Duration;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");

/// Fails with instructions when python3 or paho-mqtt 2.x is not installed.
fn require_paho() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt, sys; sys.exit(0 if int(paho.mqtt.__version__.split('.')[0]) >= 2 else 3)",
        ])
        .output();
    match probe {
        Err(e) => panic!(
            "python3 is required for the paho tests ({e}); run `make test` or install python3"
        ),
        Ok(out) if !out.status.success() => panic!(
            "paho-mqtt 2.x is required for the paho tests; run `make test` or \
             `pip install 'paho-mqtt>=2,<3'` ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => {}
    }
}

/// Runs `tests/python/<script> PORT args...` against a fresh broker; the script must print OK
/// and exit 0 (see `common::scripts::run_until_ok`).
fn run_script(script: &str, args: &[&str]) {
    require_paho();
    run_script_on(&Broker::start(), script, args);
}

/// [`run_script`] against `broker`.
fn run_script_on(broker: &Broker, script: &str, args: &[&str]) {
    run_script_within(broker, script, args, Duration::from_secs(30));
}

/// [`run_script_on`] with another time limit than 30 s.
fn run_script_within(broker: &Broker, script: &str, args: &[&str], limit: Duration) {
    let mut argv = vec![broker.port().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    run_until_ok_within(
        "python3",
        SCRIPTS,
        &[vec![script.to_string()], argv].concat(),
        limit,
    );
}

/// 20 000 messages through paho's Python loop, with a window of 100, on a busy machine.
const WINDOW_SCRIPT_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn paho_v311_pubsub_qos_0_1_2() {
    run_script("pubsub.py", &["311", "311"]);
}

#[test]
fn paho_v5_pubsub_qos_0_1_2() {
    run_script("pubsub.py", &["5", "5"]);
}

#[test]
fn paho_v311_publisher_to_v5_subscriber() {
    run_script("pubsub.py", &["5", "311"]);
}

#[test]
fn paho_v5_publisher_to_v311_subscriber() {
    run_script("pubsub.py", &["311", "5"]);
}

#[test]
fn paho_v311_retained() {
    run_script("retained.py", &["311"]);
}

#[test]
fn paho_v5_retained() {
    run_script("retained.py", &["5"]);
}

#[test]
fn paho_v311_will() {
    run_script("will.py", &["311"]);
}

#[test]
fn paho_v5_will() {
    run_script("will.py", &["5"]);
}

#[test]
fn paho_v5_assigned_id_connack_limits_and_publish_properties() {
    run_script("v5_properties.py", &[]);
}

/// paho-mqtt 2.x ignores the broker's Receive Maximum; `max_inflight_messages_set(100)` is a
/// common setting, which the default window (128) fits.
#[test]
fn paho_v5_publisher_with_a_window_of_100_is_never_disconnected() {
    require_paho();
    let broker = Broker::start();
    run_script_within(&broker, "window.py", &["20000", "100"], WINDOW_SCRIPT_LIMIT);
}

/// The same publisher against a broker whose window is smaller than its own: slowed (read as
/// its acknowledgements go out), never disconnected, nothing lost.
#[test]
fn paho_v5_publisher_beyond_receive_maximum_is_slowed_not_disconnected() {
    require_paho();
    let broker = Broker::with_config("receive_maximum = 16\n");
    run_script_within(&broker, "window.py", &["20000", "100"], WINDOW_SCRIPT_LIMIT);
    // The window was really overrun (the script itself checks nobody was disconnected).
    broker
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("paho-window-pub") && l.contains("Receive Maximum")
        })
        .expect("the publisher was slowed for its window");
}
