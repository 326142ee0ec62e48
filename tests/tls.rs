//! The TLS listener (`tls_listen`): mosquitto_pub/sub with `--cafile` against it, client
//! certificates when `tls_client_ca` is set, and clear refusals of bad peers while everyone
//! else keeps being served.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::certs::Certs;
use common::clients::{QoS5, V5};
use common::upstream::{free_port, Sub};
use common::{unique, Broker};

fn tls_broker(certs: &Certs, client_ca: bool) -> (Broker, u16) {
    let port = free_port();
    let mut config = format!(
        "tls_listen = [\"127.0.0.1:{port}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        certs.arg("server.pem"),
        certs.arg("server.key")
    );
    if client_ca {
        config.push_str(&format!("tls_client_ca = \"{}\"\n", certs.arg("ca.pem")));
    }
    let broker = Broker::with_config(&config);
    broker
        .wait_for_log(Duration::from_secs(5), |l| l.contains("mqtts listener on"))
        .expect("the TLS listener is announced");
    (broker, port)
}

fn mosquitto_pub(port: u16, tls: &[&str], message: &str) -> Output {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "secure/a",
            "-q",
            "1",
        ])
        .args(["-m", message])
        .args(tls)
        .output()
        .expect("run mosquitto_pub")
}

#[test]
fn mosquitto_clients_talk_mqtt_over_tls() {
    let certs = Certs::make();
    let (broker, port) = tls_broker(&certs, false);
    let ca = certs.arg("ca.pem");
    for version in ["mqttv5", "mqttv311"] {
        let sub = Sub::start(port, "secure/#", 1, &["--cafile", &ca, "-V", version]);
        let out = mosquitto_pub(port, &["--cafile", &ca, "-V", version], version);
        assert!(out.status.success(), "mosquitto_pub over TLS: {out:?}");
        let got = sub.wait(Duration::from_secs(10), |m| !m.is_empty());
        assert_eq!(got, vec![("secure/a".to_string(), version.to_string())]);
    }
    // A plain client on the plain listener still works alongside.
    let plain = V5::connect(broker.port(), &unique("plain"));
    plain.publish("x", QoS5::AtLeastOnce, false, "y");
}

#[test]
fn a_client_that_does_not_trust_our_certificate_is_refused_and_logged() {
    let certs = Certs::make();
    let (broker, port) = tls_broker(&certs, false);
    let out = mosquitto_pub(port, &["--cafile", &certs.arg("other-ca.pem")], "no");
    assert!(
        !out.status.success(),
        "a client with the wrong CA got through"
    );
    broker
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("TLS connection from")
        })
        .expect("a log line for the failed handshake");
    // Plain TCP to the TLS port is not MQTT for it either.
    let out = mosquitto_pub(port, &[], "plain");
    assert!(
        !out.status.success(),
        "plain MQTT on the TLS listener got through"
    );
    // Everyone else is still served.
    let ok = mosquitto_pub(port, &["--cafile", &certs.arg("ca.pem")], "yes");
    assert!(ok.status.success(), "{ok:?}");
}

#[test]
fn a_stalled_handshake_is_closed_and_logged() {
    let certs = Certs::make();
    let port = free_port();
    let config = format!(
        "connect_timeout = 1\ntls_listen = [\"127.0.0.1:{port}\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        certs.arg("server.pem"),
        certs.arg("server.key")
    );
    let broker = Broker::with_config(&config);
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    broker
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("TLS handshake not finished in time")
        })
        .expect("a log line for the stalled handshake");
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut silent, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the stalled socket is closed");
    let ok = mosquitto_pub(port, &["--cafile", &certs.arg("ca.pem")], "still served");
    assert!(ok.status.success(), "{ok:?}");
}

#[test]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let certs = Certs::make();
    let (broker, port) = tls_broker(&certs, true);
    let ca = certs.arg("ca.pem");
    let out = mosquitto_pub(port, &["--cafile", &ca], "no cert");
    assert!(
        !out.status.success(),
        "a client without a certificate got through"
    );
    broker
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("TLS connection from")
        })
        .expect("a log line for the refused client");
    let with_cert = [
        "--cafile",
        &ca,
        "--cert",
        &certs.arg("client.pem"),
        "--key",
        &certs.arg("client.key"),
    ];
    let sub = Sub::start(port, "secure/#", 1, &with_cert);
    let out = mosquitto_pub(port, &with_cert, "with cert");
    assert!(out.status.success(), "{out:?}");
    let got = sub.wait(Duration::from_secs(10), |m| !m.is_empty());
    assert_eq!(got, vec![("secure/a".to_string(), "with cert".to_string())]);
}

/// Starts outpost on `config` (only loopback listeners on free ports) and expects it to stop
/// at once with exit status 2, returning what it said on stderr.
fn refused_at_start(dir: &std::path::Path, config: &str) -> String {
    std::fs::write(dir.join("outpost.toml"), config).unwrap();
    let out = Command::new(common::BIN)
        .args(["--listen", "127.0.0.1:0", "--http", "off"])
        .args(["--ws-listen", "off", "--config"])
        .arg(dir.join("outpost.toml"))
        .arg("--db")
        .arg(dir.join("db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_tls_files_stop_outpost_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let config = format!(
        "tls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{0}\"\ntls_key = \"{0}\"\n",
        missing.display()
    );
    let stderr = refused_at_start(dir.path(), &config);
    assert!(stderr.contains("missing.pem"), "{stderr}");

    // The same for a bridge's CA file.
    let config = format!(
        "[[bridge]]\nname = \"up\"\naddress = \"127.0.0.1:1\"\ntls = true\nca_file = \"{}\"\n\
         [[bridge.topic]]\nfilter = \"#\"\ndirection = \"out\"\n",
        missing.display()
    );
    let stderr = refused_at_start(dir.path(), &config);
    assert!(
        stderr.contains("bridge up: ") && stderr.contains("missing.pem"),
        "{stderr}"
    );
}
