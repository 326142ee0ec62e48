//! The listener table at run time: the console's stop and start, asked through the loop's
//! inbox exactly as the web thread asks. The broker runs in this process (so the test can
//! hold its inbox) on a real socket, with raw MQTT 5 and 3.1.1 clients.

mod common;

use std::time::Duration;

use common::frames::{self, Connect, Version};
use common::raw::Raw;
use outpost::broker::console::{ask, ConsoleAnswer, ConsoleAsk};
use outpost::broker::{InboxSender, ListenerId, ListenerKind, Server};
use outpost::config::Config;

const WAIT: Duration = Duration::from_secs(5);

fn start(dir: &tempfile::TempDir) -> (InboxSender, u16) {
    let toml = format!(
        "listen = [\"127.0.0.1:0\"]\nws_listen = [\"127.0.0.1:0\"]\ndb = \"{}\"\n",
        dir.path().join("outpost.db").display()
    );
    let server = Server::bind(Config::from_toml_str(&toml).unwrap()).unwrap();
    let inbox = server.inbox();
    let port = server.listen_addrs()[0].port();
    std::thread::spawn(move || server.run());
    (inbox, port)
}

fn answer(inbox: &InboxSender, what: ConsoleAsk) -> ConsoleAnswer {
    ask(inbox, what, WAIT).expect("the loop answers")
}

#[test]
fn stopping_a_listener_disconnects_its_clients_and_refuses_new_ones_until_started() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, port) = start(&dir);
    let (mut v5, _) = Raw::connect(port, &Connect::new(Version::V5, "stop-v5"));
    let (mut v311, _) = Raw::connect(port, &Connect::new(Version::V311, "stop-v311"));

    let ConsoleAnswer::Listeners(before) = answer(&inbox, ConsoleAsk::Listeners) else {
        panic!("expected the listener list");
    };
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[0].kind, ListenerKind::Mqtt);
    assert_eq!(before[1].kind, ListenerKind::WebSocket);
    assert!(before[0].running);
    assert_eq!(before[0].addr.port(), port);
    assert_eq!(before[0].connections, 2);

    let id = before[0].id;
    assert_eq!(
        answer(&inbox, ConsoleAsk::StopListener(id)),
        ConsoleAnswer::Done
    );
    v5.expect_disconnect_and_close(0x8B);
    let frames = v311.expect_closed(WAIT);
    assert!(
        frames.is_empty(),
        "3.1.1 has no server DISCONNECT: {frames:?}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    let ConsoleAnswer::Listeners(stopped) = answer(&inbox, ConsoleAsk::Listeners) else {
        panic!("expected the listener list");
    };
    assert!(!stopped[0].running);
    assert_eq!(stopped[0].connections, 0);
    assert_eq!(
        answer(&inbox, ConsoleAsk::StopListener(id)),
        ConsoleAnswer::Done,
        "stopping a stopped listener is not an error"
    );

    assert_eq!(
        answer(&inbox, ConsoleAsk::StartListener(id)),
        ConsoleAnswer::Done
    );
    let (mut again, _) = Raw::connect(port, &Connect::new(Version::V5, "stop-v5"));
    again.send(&frames::pingreq());
    again.expect_frame(frames::PINGRESP, WAIT);
}

#[test]
fn unknown_listeners_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, _) = start(&dir);
    for what in [
        ConsoleAsk::StopListener(ListenerId(7)),
        ConsoleAsk::StartListener(ListenerId(7)),
    ] {
        assert_eq!(answer(&inbox, what), ConsoleAnswer::NotFound);
    }
}

#[test]
fn a_listener_whose_port_was_taken_meanwhile_fails_to_start_and_the_broker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, port) = start(&dir);
    let id = ListenerId(0);
    assert_eq!(
        answer(&inbox, ConsoleAsk::StopListener(id)),
        ConsoleAnswer::Done
    );
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let ConsoleAnswer::Failed(why) = answer(&inbox, ConsoleAsk::StartListener(id)) else {
        panic!("expected a failure while the port is taken");
    };
    assert!(why.contains(&port.to_string()), "{why}");
    drop(squatter);
    assert_eq!(
        answer(&inbox, ConsoleAsk::StartListener(id)),
        ConsoleAnswer::Done
    );
    let (mut client, _) = Raw::connect(port, &Connect::new(Version::V311, "after"));
    client.send(&frames::pingreq());
    client.expect_frame(frames::PINGRESP, WAIT);
}
