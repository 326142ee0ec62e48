//! Login tokens for the browser chat page: the web thread grants a token through the
//! loop's inbox (here the test holds the inbox, in process, as the web thread does) and a
//! CONNECT with that user name and the token as password is accepted once, over WebSocket
//! or TCP, without bcrypt; for no other user, and never twice.

mod common;

use std::time::Duration;

use common::frames::{self, Connect, Version};
use common::raw::Raw;
use common::ws::{WsRaw, WAIT};
use outpost::broker::{InboxSender, Server};
use outpost::config::Config;

const CONFIG: &str = "bcrypt_cost = 4\nallow_anonymous = false\n";

/// A broker in this process with users alice and bob; its inbox and (TCP, WS) ports.
fn start(dir: &tempfile::TempDir) -> (InboxSender, u16, u16) {
    let toml = format!(
        "{CONFIG}listen = [\"127.0.0.1:0\"]\nws_listen = [\"127.0.0.1:0\"]\ndb = \"{}\"\n",
        dir.path().join("outpost.db").display()
    );
    std::fs::write(dir.path().join("outpost.toml"), &toml).unwrap();
    common::add_user(dir.path(), "alice", "alice-password");
    common::add_user(dir.path(), "bob", "bob-password");
    let server = Server::bind(Config::from_toml_str(&toml).unwrap()).unwrap();
    let inbox = server.inbox();
    let addrs = server.listen_addrs();
    std::thread::spawn(move || server.run());
    (inbox, addrs[0].port(), addrs[1].port())
}

/// CONNECT over WebSocket with credentials; the CONNACK's reason code.
fn ws_login(port: u16, id: &str, user: &str, password: &str) -> u8 {
    let mut ws = WsRaw::upgraded(port);
    let connect = Connect::new(Version::V5, id).credentials(user, password.as_bytes());
    ws.send(&common::ws::binary(&connect.encode()));
    ws.expect_packet(frames::CONNACK, Duration::from_secs(10))
        .connack()
        .1
}

#[test]
fn a_granted_token_logs_its_user_in_once() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, tcp_port, ws_port) = start(&dir);
    inbox.grant_login_token("alice", "tok-1").unwrap();
    assert_eq!(
        ws_login(ws_port, "page-1", "bob", "tok-1"),
        0x86,
        "not bob's token"
    );
    assert_eq!(ws_login(ws_port, "page-1", "alice", "tok-1"), 0x00);
    assert_eq!(
        ws_login(ws_port, "page-2", "alice", "tok-1"),
        0x86,
        "single use"
    );

    // Over TCP too, and several open tokens at once.
    inbox.grant_login_token("alice", "tok-2").unwrap();
    inbox.grant_login_token("alice", "tok-3").unwrap();
    let connect = Connect::new(Version::V311, "tcp-page").credentials("alice", b"tok-3");
    let mut tcp = Raw::connect(tcp_port, &connect).0;
    tcp.send(&frames::pingreq());
    tcp.expect_frame(frames::PINGRESP, WAIT);
    assert_eq!(ws_login(ws_port, "page-3", "alice", "tok-2"), 0x00);

    // The real password still works.
    assert_eq!(ws_login(ws_port, "page-4", "alice", "alice-password"), 0x00);
}

#[test]
fn a_token_granted_just_before_its_connect_is_always_known() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, _, ws_port) = start(&dir);
    // Grant and connect back to back, many times: the CONNECT never overtakes its grant.
    for i in 0..50 {
        let token = format!("quick-{i}");
        inbox.grant_login_token("bob", &token).unwrap();
        assert_eq!(
            ws_login(ws_port, &format!("quick-{i}"), "bob", &token),
            0x00,
            "{i}"
        );
    }
}
