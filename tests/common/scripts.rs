//! Runs an external client script (python3 + paho, node + MQTT.js) to completion: it must
//! print OK last and exit 0 in time. A missing interpreter or library is a failure with
//! instructions, not a skip.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
pub const JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");

/// Fails with instructions when python3 or paho-mqtt 2.x is missing.
pub fn require_paho() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt, sys; sys.exit(0 if int(paho.mqtt.__version__.split('.')[0]) >= 2 else 3)",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        other => panic!(
            "python3 with paho-mqtt 2.x is required; run `make test` or \
             `pip install 'paho-mqtt>=2,<3'` ({other:?})"
        ),
    }
}

/// Fails with instructions when node or MQTT.js (tests/js/node_modules) is missing.
pub fn require_mqtt_js() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is required for the MQTT.js tests; run `make test` (scripts/install-test-deps.sh)"
    );
    assert!(
        Path::new(JS)
            .join("node_modules/mqtt/package.json")
            .exists(),
        "MQTT.js is not installed; run `make test` or `cd tests/js && npm ci`"
    );
}

/// Fails with instructions when Chromium or puppeteer-core is missing.
pub fn require_chromium() {
    require_mqtt_js();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is required for the browser tests; run `make test` (apt-get install chromium)"
    );
    assert!(
        Path::new(JS)
            .join("node_modules/puppeteer-core/package.json")
            .exists(),
        "puppeteer-core is not installed; run `make test` or `cd tests/js && npm ci`"
    );
}

/// Runs `program args...` in `dir`; it must exit 0 with OK as its last line within 30 s.
pub fn run_until_ok(program: &str, dir: &str, args: &[String]) {
    run_until_ok_within(program, dir, args, Duration::from_secs(30));
}

/// [`run_until_ok`] with another time limit, for a script that moves many messages.
pub fn run_until_ok_within(program: &str, dir: &str, args: &[String], limit: Duration) {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| {
        panic!("{program} {args:?} timed out\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    assert!(
        status.success() && stdout.trim_end().ends_with("OK"),
        "{program} {args:?} failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
