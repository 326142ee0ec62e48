//! HTTPS for the console and wss for the WebSocket listener, with real TLS clients: curl
//! with `--cacert` and `openssl s_client` against the certificate Outpost generates on
//! first start (kept beside the database, key mode 0600, fingerprint in the log and in
//! `check-config`) and against an operator's certificate signed by a CA of the test's.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::certs::Certs;
use common::{console, BIN};

/// `curl --cacert ca URL` with the response headers: (status, headers and body).
fn curl(ca: &Path, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "10"])
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The fingerprint the console announced in the log.
fn announced_fingerprint(broker: &common::Broker) -> String {
    broker
        .log()
        .iter()
        .find_map(|l| {
            l.split_once("console on https://")
                .and_then(|(_, rest)| rest.split_once("fingerprint "))
                .map(|(_, print)| print.trim_end_matches(')').to_owned())
        })
        .expect("the console announces https and its fingerprint")
}

/// What `openssl x509 -fingerprint -sha256` says of a certificate file.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit('=').next().unwrap().to_owned()
}

/// Opens a TLS connection with `openssl s_client`, verifying the server against `ca`, sends
/// a WebSocket upgrade for `/mqtt` and returns what came back within a few seconds.
fn wss_upgrade(port: u16, ca: &Path) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
        )
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut chunk = [0u8; 1024];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
            }
            if text.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let answer = reader.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    answer
}

#[test]
fn a_generated_certificate_serves_https_and_wss_and_is_printed_for_checking() {
    let broker = console::start_with(&[], "web_tls = \"on\"\n");
    let cert = broker.dir().join("outpost-web-cert.pem");
    let key = broker.dir().join("outpost-web-key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");

    let fingerprint = announced_fingerprint(&broker);
    assert_eq!(fingerprint, openssl_fingerprint(&cert));

    let url = format!("https://127.0.0.1:{}/login", broker.web_port());
    let (status, text) = curl(&cert, &url);
    assert_eq!(status, 200, "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("the login form sets its cookie");
    assert!(cookie.trim_end().ends_with("; Secure"), "{cookie}");
    let localhost = format!("https://localhost:{}/login", broker.web_port());
    assert_eq!(
        curl(&cert, &localhost).0,
        200,
        "the certificate names localhost"
    );

    let answer = wss_upgrade(broker.ws_port(), &cert);
    assert!(
        answer.starts_with("HTTP/1.1 101 Switching Protocols"),
        "wss upgrade: {answer:?}"
    );

    // check-config prints the same fingerprint, and the next start reuses the pair.
    let printed = check_config(broker.dir(), "check.toml", "web_tls = \"on\"");
    assert!(
        printed.contains(&format!("SHA-256 fingerprint {fingerprint}")),
        "{printed}"
    );
}

#[test]
fn check_config_says_a_certificate_will_be_generated() {
    let dir = tempfile::tempdir().unwrap();
    let printed = check_config(dir.path(), "outpost.toml", "http = \"0.0.0.0:8080\"");
    assert!(
        printed.contains("a self-signed certificate will be generated on first start"),
        "{printed}"
    );
    assert!(!dir.path().join("outpost-web-cert.pem").exists());
}

#[test]
fn an_operator_certificate_makes_loopback_https_too() {
    let certs = Certs::make();
    certs.server("console", "DNS:localhost,IP:127.0.0.1");
    let broker = console::start_with(
        &[],
        &format!(
            "web_tls_cert = \"{}\"\nweb_tls_key = \"{}\"\n",
            certs.arg("console.pem"),
            certs.arg("console.key")
        ),
    );
    let url = format!("https://127.0.0.1:{}/login", broker.web_port());
    assert_eq!(curl(&certs.path("ca.pem"), &url).0, 200);
    let answer = wss_upgrade(broker.ws_port(), &certs.path("ca.pem"));
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer:?}");
    assert!(!broker.dir().join("outpost-web-cert.pem").exists());
    // Plain HTTP to the HTTPS port gets no page.
    let plain = Command::new("curl")
        .args(["--silent", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{}/login", broker.web_port()))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("<form"));
}

#[test]
fn loopback_stays_plain_by_default() {
    let broker = console::start(&[]);
    assert!(broker
        .log()
        .iter()
        .any(|l| l.contains("console on http://127.0.0.1:")));
    assert!(!broker.dir().join("outpost-web-cert.pem").exists());
    assert_eq!(
        common::http::Client::new(broker.web_port())
            .get("/login")
            .status,
        200
    );
}

/// Writes a config file `name` in `dir` (its database `dir/outpost.db`, then `setting`),
/// runs `outpost check-config` on it, asserts it passed and returns what it printed.
fn check_config(dir: &std::path::Path, name: &str, setting: &str) -> String {
    let toml = dir.join(name);
    let db = dir.join("outpost.db");
    std::fs::write(&toml, format!("db = \"{}\"\n{setting}\n", db.display())).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&toml)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{printed}");
    printed
}
