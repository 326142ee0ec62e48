//! Interoperability with Python paho-mqtt 2.x in MQTTv311 and MQTTv5 modes: runs the scripts in
//! tests/python/ against a real broker. Missing python3 or paho is a failure, not a skip.

mod common;

use common::scripts::run_until_ok;
use common::Broker;
use std::process::Command;

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
    let broker = Broker::start();
    let mut argv = vec![broker.port().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    run_until_ok(
        "python3",
        SCRIPTS,
        &[vec![script.to_string()], argv].concat(),
    );
}

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
