//! Host and Origin checks over real sockets: the console answers only to its own host
//! names (a DNS-rebinding page's `Host` gets 421 before any handler runs), and the
//! WebSocket listener admits a browser handshake only from the console's hosts or
//! `ws_allowed_origins` (403 otherwise), while clients that send no `Origin` connect as
//! before.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{console, http};

/// Sends a WebSocket upgrade for `/mqtt` with `origin` (if any) and returns the status.
fn handshake(port: u16, origin: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\
         {origin}\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_websocket_listener_admits_browsers_only_from_the_console_or_the_list() {
    let broker = console::start_with(
        &[],
        "ws_allowed_origins = [\"https://dashboard.example\"]\n",
    );
    let port = broker.ws_port();
    let console = format!("http://127.0.0.1:{}", broker.web_port());
    assert_eq!(handshake(port, None), 101, "no Origin: not a browser page");
    assert_eq!(
        handshake(port, Some(&console)),
        101,
        "the console's own page"
    );
    assert_eq!(handshake(port, Some("http://localhost:8080")), 101);
    assert_eq!(handshake(port, Some("https://dashboard.example")), 101);
    for foreign in [
        "http://evil.example",
        "null",
        "https://dashboard.example.evil",
    ] {
        assert_eq!(handshake(port, Some(foreign)), 403, "{foreign}");
    }
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l.contains("may not connect"))
        .is_some());
}

#[test]
fn the_console_refuses_a_host_it_is_not_configured_for() {
    let broker = console::start_with(&[], "web_hosts = [\"gateway.lan\"]\n");
    let port = broker.web_port();
    let request = |host: &str, path: &str, body: &str| {
        let method = if body.is_empty() { "GET" } else { "POST" };
        http::raw(
            port,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    // A DNS-rebinding page: its own name, resolved to the gateway.
    let rebound = request(
        &format!("evil.example:{port}"),
        "/api/register",
        r#"{"username":"mallory","password":"long-enough-1"}"#,
    );
    assert_eq!(rebound.status, 421, "{rebound:?}");
    assert!(broker
        .wait_for_log(Duration::from_secs(2), |l| l.contains("refused: 421"))
        .is_some());
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "GATEWAY.lan".to_owned(),
    ] {
        assert_eq!(request(&host, "/login", "").status, 200, "{host}");
    }
    // Nothing was registered by the refused request.
    let login = request(
        &format!("127.0.0.1:{port}"),
        "/api/login",
        r#"{"username":"mallory","password":"long-enough-1"}"#,
    );
    assert_eq!(login.status, 401, "{login:?}");
}
