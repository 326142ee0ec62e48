//! The bridge to an upstream broker: a real Mosquitto upstream, reached through the thin-link
//! proxy (300 ms one way, 64 kbit/s, cuts every few seconds), with mosquitto_sub/pub on the
//! upstream side and rumqttc clients on the local side.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::bridging::{
    bridge_config, check_all_arrived, check_arrived, distinct, missing_in, publish_many,
    publish_one, publish_range,
};
use common::clients::{QoS5, V5};
use common::proxy::{Link, Proxy};
use common::sys::{number, sys_client, wait_sys};
use common::upstream::{Mosquitto, Sub};
use common::{unique, Broker};

fn thin_link(cuts: bool) -> Link {
    Link {
        latency: Duration::from_millis(300),
        rate_bps: Some(64_000),
        cut_every: cuts.then_some((Duration::from_secs(2), Duration::from_secs(4))),
        seed: std::env::var("THIN_LINK_SEED")
            .ok()
            .and_then(|s| s.parse().ok()),
    }
}

/// 1000 QoS 1 messages published locally while the link is cut every few seconds all
/// reach the upstream subscriber, exactly as sent and in order; a command published
/// upstream arrives locally.
#[test]
fn thousand_messages_cross_a_flapping_thin_link() {
    const N: usize = 1000;
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, thin_link(true));
    let broker = Broker::with_config(&bridge_config(proxy.port(), "v5", 64, ""));
    let started = Instant::now();
    publish_many(&broker, N, QoS5::AtLeastOnce);
    // Everything is on disk and acknowledged locally; the link keeps flapping for a while.
    let during = sub.wait(Duration::from_secs(20), |m| distinct(m) >= N);
    proxy.stop_cutting();
    let got = sub.wait(Duration::from_secs(60), |m| distinct(m) >= N);
    let dups = check_all_arrived(&got, N);
    eprintln!(
        "{N} messages in {:.1} s, {} cuts, {} connections, {dups} QoS 1 resends delivered twice, \
         {} arrived while cutting (seed {})",
        started.elapsed().as_secs_f64(),
        proxy.cuts(),
        proxy.connections(),
        distinct(&during),
        proxy.seed()
    );
    assert!(proxy.cuts() > 0, "the link was never cut");

    // Commands come down once the link is steady.
    let local = V5::connect(broker.port(), &unique("cmd"));
    local.subscribe("cmd/#", QoS5::AtLeastOnce);
    upstream.publish("site1/cmd/reboot", "now", 2);
    let p = local
        .recv_publish(Duration::from_secs(15))
        .expect("the command reached the local subscriber");
    assert_eq!(
        (&p.topic[..], &p.payload[..]),
        (&b"cmd/reboot"[..], &b"now"[..])
    );

    let sys = sys_client(broker.port(), &unique("sys"));
    let forwarded = wait_sys(&sys, "bridge/up/forwarded", Duration::from_secs(10), |v| {
        number(v) >= N as u64
    });
    assert!(forwarded.is_ok(), "$SYS forwarded: {forwarded:?}");
    let queued = wait_sys(&sys, "bridge/up/queued", Duration::from_secs(10), |v| {
        v == "0"
    });
    assert!(queued.is_ok(), "$SYS queued: {queued:?}");
}

/// The same over MQTT 3.1.1 (no Receive Maximum, no aliases, clean session 0), with
/// fewer messages to keep the run short.
#[test]
fn mqtt311_messages_cross_a_flapping_thin_link() {
    const N: usize = 300;
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, thin_link(true));
    let broker = Broker::with_config(&bridge_config(proxy.port(), "v311", 32, ""));
    publish_many(&broker, N, QoS5::AtLeastOnce);
    sub.wait(Duration::from_secs(15), |m| distinct(m) >= N);
    proxy.stop_cutting();
    let got = sub.wait(Duration::from_secs(60), |m| distinct(m) >= N);
    let dups = check_all_arrived(&got, N);
    eprintln!(
        "3.1.1: {N} messages, {} cuts, {dups} delivered twice (seed {})",
        proxy.cuts(),
        proxy.seed()
    );
}

/// kill -9 of Outpost in the middle of forwarding QoS 2 messages: after a restart on the
/// same database every message reaches the upstream exactly once.
#[test]
fn kill_9_mid_forwarding_loses_and_duplicates_nothing() {
    const N: usize = 300;
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 2, &[]);
    let proxy = Proxy::start(upstream.port, thin_link(false));
    let mut broker = Broker::with_config(&bridge_config(proxy.port(), "v5", 16, ""));
    publish_many(&broker, N, QoS5::ExactlyOnce);
    let before = sub.wait(Duration::from_secs(30), |m| m.len() >= N / 5);
    assert!(
        before.len() < N,
        "forwarding finished before the kill; make N larger"
    );
    broker.restart(); // SIGKILL, then the same database and config again
    let got = sub.wait(Duration::from_secs(60), |m| distinct(m) >= N);
    // A duplicate would come after the last new message: give it time to show.
    std::thread::sleep(Duration::from_secs(2));
    let got = if got.len() >= N { sub.messages() } else { got };
    let dups = check_all_arrived(&got, N);
    assert_eq!(dups, 0, "QoS 2 messages delivered twice upstream");
    assert!(
        broker
            .wait_for_log(Duration::from_secs(1), |l| l.contains("bridge up to")
                && l.contains("queued"))
            .is_some(),
        "the restart loaded the forward queue"
    );
}

/// kill -9 of Outpost while a QoS 1 stream comes down from the upstream, with a long
/// commit window: after the restart a local persistent session gets every message. A
/// PUBACK to the upstream (which then forgets the message) left only once the message was
/// in that session's queue on disk, though the loop never waited for the disk.
#[test]
fn kill_9_mid_inbound_stream_loses_nothing_the_upstream_let_go() {
    const N: usize = 300;
    let upstream = Mosquitto::start();
    let proxy = Proxy::start(upstream.port, thin_link(false));
    let config = format!(
        "commit_interval = 200\n{}",
        bridge_config(proxy.port(), "v5", 16, "")
    );
    let mut broker = Broker::with_config(&config);
    let keeper_id = unique("keeper");
    let keeper = V5::connect_with(V5::persistent_options(broker.port(), &keeper_id, 3600));
    keeper.subscribe("cmd/#", QoS5::AtLeastOnce);
    keeper.disconnect();
    let watcher = V5::connect(broker.port(), &unique("watch"));
    watcher.subscribe("cmd/#", QoS5::AtLeastOnce);
    // The bridge's subscription upstream is in place once a probe comes through.
    let through = (0..30).any(|_| {
        upstream.publish("site1/cmd/valve", "probe", 1);
        watcher.recv_publish(Duration::from_secs(1)).is_some()
    });
    assert!(through, "nothing came down the bridge");
    while watcher.recv_publish(Duration::from_secs(2)).is_some() {}
    let lines: String = (0..N).map(|i| format!("m-{i:05}\n")).collect();
    let mut publisher = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &upstream.port.to_string()])
        .args(["-t", "site1/cmd/valve", "-q", "1", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run mosquitto_pub");
    {
        use std::io::Write as _;
        let mut stdin = publisher.stdin.take().expect("stdin");
        stdin.write_all(lines.as_bytes()).expect("write lines");
    }
    let mut seen_before = 0;
    while seen_before < N / 5 {
        watcher
            .recv_publish(Duration::from_secs(30))
            .expect("messages from the upstream before the kill");
        seen_before += 1;
    }
    broker.restart(); // SIGKILL mid-stream, then the same database and config again
    assert!(publisher.wait().expect("mosquitto_pub").success());
    let keeper = V5::connect_with(V5::persistent_options(broker.port(), &keeper_id, 3600));
    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while got.len() < N && Instant::now() < deadline {
        if let Some(p) = keeper.recv_publish(Duration::from_secs(5)) {
            let payload = String::from_utf8_lossy(&p.payload).into_owned();
            if payload.starts_with("m-") {
                got.insert(payload);
            }
        }
    }
    let missing: Vec<usize> = (0..N)
        .filter(|i| !got.contains(&format!("m-{i:05}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {N} lost across the kill (the watcher had seen {seen_before} before it), first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// MQTT 5 `both` rule: a local message goes up and is not echoed back (No Local); a
/// message from upstream comes down and is not sent back up.
#[test]
fn both_rule_does_not_loop_on_mqtt5() {
    let upstream = Mosquitto::start();
    let up_sub = Sub::start(upstream.port, "site1/talk/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, Link::default());
    let broker = Broker::with_config(&bridge_config(proxy.port(), "v5", 16, ""));
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    let local = V5::connect(broker.port(), &unique("talk"));
    local.subscribe("talk/#", QoS5::AtLeastOnce);
    local.publish("talk/room", QoS5::AtLeastOnce, false, "hello");
    let echo = local
        .recv_publish(Duration::from_secs(5))
        .expect("own message");
    assert_eq!(&echo.payload[..], b"hello");
    up_sub.wait(Duration::from_secs(10), |m| !m.is_empty());
    upstream.publish("site1/talk/room", "from-cloud", 1);
    let down = local
        .recv_publish(Duration::from_secs(10))
        .expect("upstream message");
    assert_eq!(&down.payload[..], b"from-cloud");
    assert!(
        local.recv_publish(Duration::from_secs(2)).is_none(),
        "a message came back twice"
    );
    let up = up_sub.wait(Duration::from_secs(2), |m| m.len() > 2);
    assert_eq!(
        up,
        vec![
            ("site1/talk/room".to_string(), "hello".to_string()),
            ("site1/talk/room".to_string(), "from-cloud".to_string()),
        ],
        "the upstream saw each message once"
    );
}

/// MQTT 3.1.1 bridge to `localhost`: messages go up, commands come down.
#[test]
fn mqtt311_bridge_forwards_both_ways() {
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, thin_link(false));
    // A host name: resolved off the loop, each of its addresses tried in turn.
    let config = bridge_config(proxy.port(), "v311", 16, "")
        .replace("address = \"127.0.0.1:", "address = \"localhost:");
    let broker = Broker::with_config(&config);
    publish_many(&broker, 50, QoS5::AtLeastOnce);
    let got = sub.wait(Duration::from_secs(30), |m| distinct(m) >= 50);
    check_all_arrived(&got, 50);
    let local = V5::connect(broker.port(), &unique("cmd"));
    local.subscribe("cmd/#", QoS5::AtLeastOnce);
    upstream.publish("site1/cmd/x", "go", 1);
    let p = local
        .recv_publish(Duration::from_secs(15))
        .expect("command");
    assert_eq!(&p.payload[..], b"go");
}

/// A link that is down when messages are published: they wait on disk, within the budget;
/// beyond it the oldest are dropped, counted in `$SYS` and logged. When the link comes
/// back (after a kill -9 and restart, for good measure) the newest ones arrive.
#[test]
fn the_disk_budget_drops_the_oldest_and_says_so() {
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    // Nothing listens here: the bridge keeps failing to connect.
    let dead = common::upstream::free_port();
    // 40 messages: topic "site1/sensors/N" (15) + payload (7) + empty property block (1).
    let budget = 40 * 23;
    let extra = format!("max_queue_bytes = {budget}");
    let mut broker = Broker::with_config(&bridge_config(dead, "v5", 16, &extra));
    publish_many(&broker, 100, QoS5::AtLeastOnce);
    broker
        .wait_for_log(Duration::from_secs(5), |l| l.contains("forward queue full"))
        .expect("a log line when the budget is reached");
    let episodes = broker
        .log()
        .iter()
        .filter(|l| l.contains("forward queue full"))
        .count();
    assert_eq!(episodes, 1, "60 drops in one episode, one line");
    let sys = sys_client(broker.port(), &unique("sys"));
    let dropped = wait_sys(&sys, "bridge/up/dropped", Duration::from_secs(5), |v| {
        v == "60"
    });
    assert!(dropped.is_ok(), "$SYS dropped: {dropped:?}");
    let queued = wait_sys(&sys, "bridge/up/queued", Duration::from_secs(5), |v| {
        v == "40"
    });
    assert!(queued.is_ok(), "$SYS queued: {queued:?}");
    let connected = wait_sys(&sys, "bridge/up/connected", Duration::from_secs(5), |v| {
        v == "0"
    });
    assert!(connected.is_ok(), "{connected:?}");
    let error = wait_sys(&sys, "bridge/up/last_error", Duration::from_secs(5), |v| {
        v.contains("refused")
    });
    assert!(error.is_ok(), "$SYS last_error: {error:?}");
    drop(sys);

    let config = bridge_config(upstream.port, "v5", 16, &extra);
    std::fs::write(broker.dir().join("outpost.toml"), config).unwrap();
    broker.restart();
    let got = sub.wait(Duration::from_secs(20), |m| distinct(m) >= 40);
    std::thread::sleep(Duration::from_millis(500));
    let payloads: Vec<String> = sub.messages().into_iter().map(|(_, p)| p).collect();
    let expected: Vec<String> = (60..100).map(|i| format!("m-{i:05}")).collect();
    assert_eq!(
        payloads,
        expected,
        "the 40 newest, in order ({} seen)",
        got.len()
    );
}

/// Over TLS, with a test CA: messages published locally (mosquitto_pub) while the link is
/// down survive a kill -9 and reach an upstream mosquitto_sub once the link is there.
#[test]
fn tls_bridge_delivers_what_was_published_during_an_outage_across_a_kill_9() {
    let certs = common::certs::Certs::make();
    let files = common::upstream::TlsFiles {
        ca: certs.path("ca.pem"),
        cert: certs.path("server.pem"),
        key: certs.path("server.key"),
        require_client_cert: false,
    };
    let upstream = Mosquitto::with_tls(&files);
    let sub = Sub::start(upstream.port, "site1/sensors/#", 2, &[]);
    let tls = format!("tls = true\nca_file = \"{}\"", certs.arg("ca.pem"));
    // The outage: the bridge's address answers nothing.
    let dead = common::upstream::free_port();
    let mut broker = Broker::with_config(&bridge_config(dead, "v5", 16, &tls));
    for (i, qos) in ["1", "2", "1"].iter().enumerate() {
        let out = std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args([
                "-t",
                &format!("sensors/{i}"),
                "-m",
                &format!("m-{i:05}"),
                "-q",
                qos,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    broker.kill9();
    let proxy = Proxy::start(upstream.tls_port.unwrap(), thin_link(false));
    let config = bridge_config(proxy.port(), "v5", 16, &tls);
    std::fs::write(broker.dir().join("outpost.toml"), config).unwrap();
    broker.restart();
    let got = sub.wait(Duration::from_secs(20), |m| distinct(m) >= 3);
    std::thread::sleep(Duration::from_millis(500));
    // Mixed QoS: Mosquitto passes a QoS 2 message on at PUBREL, so a QoS 1 message sent
    // after it may reach the subscriber first. MQTT orders messages of one QoS only.
    assert_eq!(check_arrived(&got, 3, false), 0);
    assert_eq!(sub.messages().len(), 3, "nothing twice");
}

/// A certificate for another name is refused: logged, in `$SYS`, retried with backoff.
#[test]
fn tls_bridge_refuses_a_certificate_for_another_name() {
    let certs = common::certs::Certs::make();
    let files = common::upstream::TlsFiles {
        ca: certs.path("ca.pem"),
        cert: certs.path("server.pem"),
        key: certs.path("server.key"),
        require_client_cert: false,
    };
    let upstream = Mosquitto::with_tls(&files);
    let tls = format!(
        "tls = true\nca_file = \"{}\"\nserver_name = \"broker.example.com\"",
        certs.arg("ca.pem")
    );
    let broker = Broker::with_config(&bridge_config(upstream.tls_port.unwrap(), "v5", 16, &tls));
    let line = broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up to") && l.contains("TLS")
        })
        .expect("a log line for the refused certificate");
    assert!(line.contains("not valid for name"), "{line}");
    let sys = sys_client(broker.port(), &unique("sys"));
    let error = wait_sys(&sys, "bridge/up/last_error", Duration::from_secs(5), |v| {
        v.contains("TLS")
    });
    assert!(error.is_ok(), "{error:?}");
}

/// Bytes on the upstream socket per forwarded message (docs/bandwidth.md#bridge): 100
/// messages `21.50` on `sensors/1/temp` (upstream `site1/sensors/1/temp`), counted by the
/// proxy from the first PUBLISH to the last acknowledgement.
#[test]
fn bytes_per_forwarded_message() {
    let mut rows = Vec::new();
    for (protocol, qos, bound) in [
        ("v5", QoS5::AtLeastOnce, (15, 4)),
        ("v5", QoS5::ExactlyOnce, (19, 8)),
        ("v311", QoS5::AtLeastOnce, (31, 4)),
        ("v311", QoS5::ExactlyOnce, (35, 8)),
    ] {
        const N: u64 = 100;
        let upstream = Mosquitto::start();
        let sub = Sub::start(upstream.port, "site1/sensors/#", 2, &[]);
        let proxy = Proxy::start(upstream.port, Link::default());
        let broker = Broker::with_config(&bridge_config(proxy.port(), protocol, 16, ""));
        broker
            .wait_for_log(Duration::from_secs(10), |l| {
                l.contains("bridge up: connected")
            })
            .expect("bridge connected");
        // Let the SUBACK of the `in` rule come back before counting.
        std::thread::sleep(Duration::from_millis(300));
        let before = proxy.bytes();
        let client = V5::connect(broker.port(), &unique("pub"));
        for _ in 0..N {
            client.publish("sensors/1/temp", qos, false, "21.50");
        }
        let got = sub.wait(Duration::from_secs(20), |m| m.len() as u64 >= N);
        assert_eq!(got.len() as u64, N);
        let sys = sys_client(broker.port(), &unique("sys"));
        let queued = wait_sys(&sys, "bridge/up/queued", Duration::from_secs(10), |v| {
            v == "0"
        });
        assert!(queued.is_ok(), "{queued:?}");
        let used = proxy.bytes().since(before);
        let (up, down) = (used.up as f64 / N as f64, used.down as f64 / N as f64);
        rows.push(format!(
            "{protocol} {qos:?}: {up:.2} up / {down:.2} down per message"
        ));
        assert!(
            up <= f64::from(bound.0) + 0.5 && down <= f64::from(bound.1) + 0.5,
            "{protocol} {qos:?}: {up:.2} / {down:.2} bytes per message, more than {bound:?}"
        );
    }
    eprintln!("{}", rows.join("\n"));
}

/// The console sees each bridge's link state, queue and counters, asked through the
/// loop's inbox as the web thread asks.
#[test]
fn the_console_sees_the_bridge_state() {
    use outpost::broker::console::{ask, ConsoleAnswer, ConsoleAsk};
    let dir = tempfile::tempdir().unwrap();
    let dead = common::upstream::free_port();
    let toml = format!(
        "listen = [\"127.0.0.1:0\"]\nws_listen = []\ndb = \"{}\"\nhttp_enabled = false\n{}",
        dir.path().join("outpost.db").display(),
        bridge_config(dead, "v5", 16, "")
    );
    let server =
        outpost::broker::Server::bind(outpost::config::Config::from_toml_str(&toml).unwrap())
            .unwrap();
    let inbox = server.inbox();
    let port = server.listen_addrs()[0].port();
    std::thread::spawn(move || server.run());
    let client = V5::connect(port, &unique("pub"));
    for i in 0..3 {
        client.publish(&format!("sensors/{i}"), QoS5::AtLeastOnce, false, "x");
    }
    let info = common::wait_until(Duration::from_secs(10), || {
        match ask(&inbox, ConsoleAsk::Bridges, Duration::from_secs(5)).unwrap() {
            ConsoleAnswer::Bridges(b) if b[0].last_error.is_some() => Some(b),
            _ => None,
        }
    })
    .expect("a failed attempt shows");
    let b = &info[0];
    assert_eq!((b.name.as_str(), b.connected, b.queued), ("up", false, 3));
    assert_eq!(b.queued_bytes, 3 * (15 + 1 + 1));
    assert!(
        b.last_error.as_deref().unwrap().contains("refused"),
        "{b:?}"
    );
}

/// A queue longer than the part kept in memory (512 messages) with a window wider than
/// it: after the outage every message is read back from disk and arrives, in order.
#[test]
fn a_long_queue_is_read_back_from_disk_through_a_wide_window() {
    const N: usize = 1500;
    let upstream = Mosquitto::start();
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let dead = common::upstream::free_port();
    let mut broker = Broker::with_config(&bridge_config(dead, "v5", 900, ""));
    publish_many(&broker, N, QoS5::AtLeastOnce);
    let config = bridge_config(upstream.port, "v5", 900, "");
    std::fs::write(broker.dir().join("outpost.toml"), config).unwrap();
    broker.restart();
    let got = sub.wait(Duration::from_secs(30), |m| distinct(m) >= N);
    assert_eq!(check_all_arrived(&got, N), 0, "no cuts, so no resends");
}

/// An upstream that is not there costs one attempt per (growing, jittered) delay: never a
/// tight loop. With delays of 1 s doubling to 2 s, 4 s hold at most 5 attempts.
#[test]
fn a_missing_upstream_is_retried_with_backoff_not_in_a_loop() {
    let dead = common::upstream::free_port();
    let broker = Broker::with_config(&bridge_config(dead, "v5", 16, ""));
    broker
        .wait_for_log(Duration::from_secs(5), |l| l.contains("cannot connect"))
        .expect("a first failed attempt");
    std::thread::sleep(Duration::from_secs(4));
    let attempts = broker
        .log()
        .iter()
        .filter(|l| l.contains("cannot connect"))
        .count();
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} attempts in about 4 s"
    );
}

/// An upstream that asks for client certificates: the bridge's `cert_file`/`key_file`
/// get it through; without them the attempt fails and says so.
#[test]
fn tls_bridge_presents_its_client_certificate() {
    let certs = common::certs::Certs::make();
    let files = common::upstream::TlsFiles {
        ca: certs.path("ca.pem"),
        cert: certs.path("server.pem"),
        key: certs.path("server.key"),
        require_client_cert: true,
    };
    let upstream = Mosquitto::with_tls(&files);
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let port = upstream.tls_port.unwrap();
    let ca = format!("tls = true\nca_file = \"{}\"", certs.arg("ca.pem"));
    let without = Broker::with_config(&bridge_config(port, "v5", 16, &ca));
    without
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up to") && (l.contains("TLS") || l.contains("closed"))
        })
        .expect("a failed attempt without a client certificate");
    drop(without);

    let with = format!(
        "{ca}\ncert_file = \"{}\"\nkey_file = \"{}\"",
        certs.arg("client.pem"),
        certs.arg("client.key")
    );
    let broker = Broker::with_config(&bridge_config(port, "v5", 16, &with));
    publish_many(&broker, 5, QoS5::AtLeastOnce);
    let got = sub.wait(Duration::from_secs(15), |m| distinct(m) >= 5);
    check_all_arrived(&got, 5);
}

/// SIGTERM: the bridge says DISCONNECT (normal) before Outpost exits, so the upstream
/// sees a clean end and keeps our session.
#[test]
fn a_graceful_stop_disconnects_from_the_upstream() {
    let upstream = Mosquitto::start();
    let mut broker = Broker::with_config(&bridge_config(upstream.port, "v5", 16, ""));
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    broker
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("Outpost stops on SIGTERM");
    let clean = common::wait_until(Duration::from_secs(5), || {
        upstream
            .log()
            .iter()
            .find(|l| l.contains("Client gw-") && l.contains("disconnect"))
            .cloned()
    });
    let line = clean.unwrap_or_else(|| panic!("no disconnect line: {:?}", upstream.log()));
    assert!(!line.contains("closed its connection"), "{line}");
}

/// A message from the upstream onto a chat topic would reach the room without the chat
/// service: it is dropped and logged, and `$SYS .../received` counts only the command that
/// was delivered locally.
#[test]
fn upstream_messages_onto_chat_topics_are_dropped() {
    let upstream = Mosquitto::start();
    let rule =
        "[[bridge.topic]]\nfilter = \"chat/#\"\ndirection = \"in\"\nremote_prefix = \"site1/\"";
    let broker = Broker::with_config(&bridge_config(upstream.port, "v5", 16, rule));
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    std::thread::sleep(Duration::from_millis(300)); // the SUBACK
    upstream.publish("site1/chat/general", "sneaky", 1);
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("chat/general from the upstream is a service's topic, dropped")
        })
        .expect("the drop is logged");
    let local = V5::connect(broker.port(), &unique("cmd"));
    local.subscribe("cmd/#", QoS5::AtLeastOnce);
    upstream.publish("site1/cmd/reboot", "now", 1);
    local
        .recv_publish(Duration::from_secs(10))
        .expect("the command is delivered");
    let sys = sys_client(broker.port(), &unique("sys"));
    let received = wait_sys(&sys, "bridge/up/received", Duration::from_secs(5), |v| {
        v == "1"
    });
    assert!(
        received.is_ok(),
        "$SYS received counts the delivered command, not the dropped one: {received:?}"
    );
}

/// The bridges as an admin sees them through `GET /api/bridges`.
fn api_bridges(admin: &mut common::http::Client) -> Vec<serde_json::Value> {
    let answer = admin.get("/api/bridges");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    answer.json().as_array().expect("a list").clone()
}

/// Waits until the only bridge's row satisfies `pred`; panics with the last row if not.
fn wait_bridge(
    admin: &mut common::http::Client,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = None;
    common::wait_until(Duration::from_secs(20), || {
        let list = api_bridges(admin);
        assert_eq!(list.len(), 1, "{list:?}");
        let row = list.into_iter().next().unwrap();
        let done = pred(&row);
        last = Some(row.clone());
        done.then_some(row)
    })
    .unwrap_or_else(|| panic!("bridge never {what}: last {last:?}"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `GET /api/bridges` over real HTTP follows the bridge through an outage of a real
/// upstream Mosquitto: up with counts that move as QoS 1 messages are forwarded (and
/// reach an upstream mosquitto_sub); down with the error and a queue that grows with each
/// local publish; up again with the queue drained into the upstream. Admins only.
#[test]
fn the_bridge_api_follows_an_upstream_outage() {
    let mut upstream = Mosquitto::persistent();
    // A persistent session (3.1.1, clean session off) that the upstream keeps, with the
    // messages for it, while this subscriber and later the upstream itself are gone.
    let sub_id = unique("up-sub");
    let sub_args = ["-c", "-i", sub_id.as_str()];
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &sub_args);
    let broker = common::console::start_with(
        &[
            ("admin", "admin-password", true),
            ("alice", "alice-password", false),
        ],
        &bridge_config(upstream.port, "v5", 16, ""),
    );
    let web = broker.web_port();
    let anonymous = common::http::Client::new(web).get("/api/bridges");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(anonymous.json()["error"], "not_logged_in");
    let (mut alice, _) = common::console::logged_in(web, "alice", "alice-password");
    let refused = alice.get("/api/bridges");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["error"], "not_admin");
    let (mut admin, _) = common::console::logged_in(web, "admin", "admin-password");

    let up = wait_bridge(&mut admin, "connected", |b| b["connected"] == true);
    assert_eq!(up["name"], "up");
    assert_eq!(up["address"], format!("127.0.0.1:{}", upstream.port));
    assert_eq!(up["protocol"], "5");
    let since = up["connected_since"].as_i64().expect("connected_since");
    assert!((unix_now() - 60..=unix_now()).contains(&since), "{since}");
    for (key, value) in [
        ("connects", 1),
        ("queued", 0),
        ("queued_bytes", 0),
        ("forwarded", 0),
        ("received", 0),
        ("dropped", 0),
        ("max_queue_bytes", 512 * 1024 * 1024),
    ] {
        assert_eq!(up[key], value, "{key}: {up}");
    }
    assert_eq!(up["queue_full"], "drop_oldest");
    assert!(up["last_error"].is_null(), "{up}");

    // Five QoS 1 messages go up: forwarded counts the upstream's PUBACKs.
    publish_range(&broker, 0..5, QoS5::AtLeastOnce);
    let got = sub.wait(Duration::from_secs(20), |m| m.len() >= 5);
    assert_eq!(check_all_arrived(&got, 5), 0, "no duplicates: {got:?}");
    let b = wait_bridge(&mut admin, "forwarded 5", |b| b["forwarded"] == 5);
    assert_eq!(
        (b["queued"].as_u64(), b["dropped"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(b["connected"], true);

    // The upstream goes away (its subscriber first, so only its session waits).
    drop(sub);
    upstream.stop();
    let down = wait_bridge(&mut admin, "down and refused", |b| {
        b["connected"] == false
            && b["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refused"))
    });
    assert!(down["connected_since"].is_null(), "{down}");
    assert_eq!(
        (down["forwarded"].as_u64(), down["queued"].as_u64()),
        (Some(5), Some(0))
    );
    let page = admin.get("/admin");
    assert_eq!(page.status, 200);
    for part in [
        r#"<tr data-bridge="up">"#,
        r#"<span class="state-down">down</span>"#,
        "connection failed: Connection refused",
    ] {
        assert!(page.body.contains(part), "{part:?} missing from /admin");
    }

    // Each local publish joins the queue: topic "site1/sensors/N" (15) + payload (7) +
    // empty property block (1) bytes per message.
    publish_range(&broker, 5..8, QoS5::AtLeastOnce);
    let b = wait_bridge(&mut admin, "queued 3", |b| b["queued"] == 3);
    assert_eq!(b["queued_bytes"], 3 * 23);
    publish_range(&broker, 8..12, QoS5::AtLeastOnce);
    let b = wait_bridge(&mut admin, "queued 7", |b| b["queued"] == 7);
    assert_eq!(b["queued_bytes"], 7 * 23);
    assert_eq!(
        (b["forwarded"].as_u64(), b["dropped"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(b["connected"], false);

    // The upstream is back: the queue drains into it, in order, exactly once.
    upstream.resume();
    let b = wait_bridge(&mut admin, "drained", |b| {
        b["connected"] == true && b["queued"] == 0
    });
    assert_eq!(b["forwarded"], 12, "{b}");
    assert_eq!(b["connects"], 2, "{b}");
    assert_eq!(b["dropped"], 0, "{b}");
    assert!(b["connected_since"].as_i64().unwrap() >= since, "{b}");
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &sub_args);
    let got = sub.wait(Duration::from_secs(20), |m| m.len() >= 7);
    let payloads: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    let expected: Vec<String> = (5..12).map(|i| format!("m-{i:05}")).collect();
    assert_eq!(payloads, expected, "{got:?}");
    for (topic, payload) in &got {
        let i: usize = payload[2..].parse().unwrap();
        assert_eq!(topic, &format!("site1/sensors/{}", i % 10));
    }
}

/// An upstream whose certificate carries markup in its names: the TLS error that quotes
/// them shows on `/admin` as text, escaped, and whole in `GET /api/bridges`.
#[test]
fn a_hostile_upstreams_certificate_names_show_escaped_on_admin() {
    const MARKUP: &str = "<img src=x onerror=alert(1)>";
    let certs = common::certs::Certs::make();
    certs.server("hostile", &format!("DNS:{MARKUP}"));
    let upstream = Mosquitto::with_tls(&common::upstream::TlsFiles {
        ca: certs.path("ca.pem"),
        cert: certs.path("hostile.pem"),
        key: certs.path("hostile.key"),
        require_client_cert: false,
    });
    let tls = format!(
        "tls = true\nca_file = \"{}\"\nserver_name = \"localhost\"",
        certs.arg("ca.pem")
    );
    let broker = common::console::start_with(
        &[("admin", "admin-password", true)],
        &bridge_config(upstream.tls_port.unwrap(), "v5", 16, &tls),
    );
    let (mut admin, _) = common::console::logged_in(broker.web_port(), "admin", "admin-password");
    let b = wait_bridge(&mut admin, "refused the certificate", |b| {
        b["last_error"].as_str().is_some_and(|e| e.contains(MARKUP))
    });
    assert_eq!(b["connected"], false);
    let error = b["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("TLS: ") && error.contains("not valid for name"),
        "{error}"
    );
    let page = admin.get("/admin");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<img"), "unescaped markup in /admin");
    assert!(
        page.body
            .contains("DnsName(&quot;&lt;img src=x onerror=alert(1)&gt;&quot;)"),
        "the escaped error is missing from /admin"
    );
}

/// A bridge file that cannot be read (a missing `ca_file`, a missing `key_file`) stops
/// Outpost before it opens anything: exit 2 with one line naming the bridge and the file,
/// no database created, no listener bound; `check-config` reports the same.
#[test]
fn a_missing_bridge_file_stops_outpost_before_it_opens_anything() {
    let certs = common::certs::Certs::make();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let section = |files: &str| {
        format!(
            "[[bridge]]\nname = \"up\"\naddress = \"127.0.0.1:1\"\ntls = true\n{files}\n\
             [[bridge.topic]]\nfilter = \"#\"\ndirection = \"out\"\n"
        )
    };
    let missing_ca = section(&format!("ca_file = \"{}\"", missing.display()));
    let missing_key = section(&format!(
        "cert_file = \"{}\"\nkey_file = \"{}\"",
        certs.arg("client.pem"),
        missing.display()
    ));
    for config in [missing_ca, missing_key] {
        std::fs::write(dir.path().join("outpost.toml"), &config).unwrap();
        let port = common::upstream::free_port();
        let out = std::process::Command::new(common::BIN)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--http", "off"])
            .args(["--ws-listen", "off", "--config"])
            .arg(dir.path().join("outpost.toml"))
            .arg("--db")
            .arg(dir.path().join("db"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("bridge up: ") && stderr.contains("missing.pem"),
            "{stderr}"
        );
        assert!(!stderr.contains("listener on"), "{stderr}");
        assert!(!dir.path().join("db").exists(), "the database was created");

        let check = std::process::Command::new(common::BIN)
            .arg("check-config")
            .arg(dir.path().join("outpost.toml"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&check.stderr);
        assert_eq!(check.status.code(), Some(2), "{said}");
        assert!(
            said.contains("bridge up: ") && said.contains("missing.pem"),
            "{said}"
        );
    }
}

/// An upstream whose ACL refuses most of what we send (PUBACK 0x87): each refused message
/// is dropped and counted, the queue moves on, and each run of refusals is logged once.
#[test]
fn upstream_acl_refusals_are_logged_once_per_episode() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "topic read site1/sensors/#\ntopic readwrite site1/sensors/9\n",
    )
    .unwrap();
    let upstream = Mosquitto::with_settings(&format!("acl_file {}", acl.display()));
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let broker = Broker::with_config(&bridge_config(upstream.port, "v5", 1, ""));
    let refusals = || {
        broker
            .log()
            .iter()
            .filter(|l| l.contains("the upstream refused a message (NotAuthorized)"))
            .count()
    };
    for (round, range) in [0..10, 10..20].into_iter().enumerate() {
        publish_range(&broker, range, QoS5::AtLeastOnce);
        let got = sub.wait(Duration::from_secs(10), |m| m.len() > round);
        let expected: Vec<String> = (0..=round)
            .map(|r| format!("m-{:05}", r * 10 + 9))
            .collect();
        let payloads: Vec<String> = got.into_iter().map(|(_, p)| p).collect();
        assert_eq!(payloads, expected, "only the allowed topic arrives");
        let sys = sys_client(broker.port(), &unique("sys"));
        let want = (9 * (round + 1)).to_string();
        let dropped = wait_sys(&sys, "bridge/up/dropped", Duration::from_secs(5), |v| {
            v == want
        });
        assert!(dropped.is_ok(), "$SYS dropped: {dropped:?}");
        assert_eq!(refusals(), round + 1, "one line per run of refusals");
    }
}

/// A Mosquitto upstream with `max_packet_size 200` behind a 3.1.1 bridge, which cannot
/// learn the limit: the upstream closes the link for the 600-byte message, twice, then the
/// bridge sets it aside and everything queued behind it arrives.
#[test]
fn mqtt311_an_oversize_message_is_set_aside_after_two_disconnects() {
    let upstream = Mosquitto::with_settings("max_packet_size 200");
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let broker = Broker::with_config(&bridge_config(upstream.port, "v311", 4, ""));
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    publish_one(&broker, "a", "before");
    sub.wait(Duration::from_secs(10), |m| !m.is_empty());
    publish_one(&broker, "big", &"x".repeat(600));
    for i in 0..5 {
        publish_one(&broker, "a", &format!("after-{i}"));
    }
    let got = sub.wait(Duration::from_secs(20), |m| m.len() >= 6);
    let payloads: Vec<String> = got.into_iter().map(|(_, p)| p).collect();
    let expected: Vec<String> = std::iter::once("before".to_string())
        .chain((0..5).map(|i| format!("after-{i}")))
        .collect();
    assert_eq!(payloads, expected, "the queue moved on past the big one");
    broker
        .wait_for_log(Duration::from_secs(5), |l| {
            l.contains("set aside (dropped) as too large")
        })
        .expect("the set-aside is logged");
    let sys = sys_client(broker.port(), &unique("sys"));
    let dropped = wait_sys(&sys, "bridge/up/dropped", Duration::from_secs(5), |v| {
        v == "1"
    });
    assert!(dropped.is_ok(), "$SYS dropped: {dropped:?}");
    let forwarded = wait_sys(&sys, "bridge/up/forwarded", Duration::from_secs(5), |v| {
        v == "6"
    });
    assert!(forwarded.is_ok(), "$SYS forwarded: {forwarded:?}");
}

/// With the bridge's own `max_packet_size` set, the 3.1.1 bridge drops the oversize
/// message before sending it: no disconnect, the rest goes on, one log line.
#[test]
fn mqtt311_max_packet_size_drops_before_sending() {
    let upstream = Mosquitto::with_settings("max_packet_size 200");
    let sub = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let config = bridge_config(upstream.port, "v311", 4, "max_packet_size = 200");
    let broker = Broker::with_config(&config);
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    // 200 bytes on the wire: 1 + 2 fixed header, 2 + 15 topic, 2 packet id, 178 payload.
    publish_one(&broker, "a", &"f".repeat(178));
    publish_one(&broker, "a", &"x".repeat(179));
    publish_one(&broker, "big", &"x".repeat(600));
    publish_one(&broker, "a", "after");
    let got = sub.wait(Duration::from_secs(10), |m| m.len() >= 2);
    let payloads: Vec<String> = got.into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, vec!["f".repeat(178), "after".to_string()]);
    let lines = broker.log();
    let drops = lines
        .iter()
        .filter(|l| l.contains("is larger than the 200 bytes"))
        .count();
    assert_eq!(drops, 1, "one line for the run of two: {lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("link lost")),
        "no disconnect: {lines:?}"
    );
    let sys = sys_client(broker.port(), &unique("sys"));
    let dropped = wait_sys(&sys, "bridge/up/dropped", Duration::from_secs(5), |v| {
        v == "2"
    });
    assert!(dropped.is_ok(), "$SYS dropped: {dropped:?}");
}

/// `notifications = true`: the upstream sees a retained `1` on
/// `$SYS/broker/connection/<client id>/state` when the bridge connects, `0` through the
/// will when Outpost is killed with -9, `1` again after the restart, and `0` after a clean
/// stop; a local subscriber sees the same state.
#[test]
fn notifications_show_the_gateway_state_upstream_and_locally() {
    let upstream = Mosquitto::start();
    let config = bridge_config(upstream.port, "v5", 16, "notifications = true");
    let id = config
        .lines()
        .find_map(|l| l.strip_prefix("client_id = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    let topic = format!("$SYS/broker/connection/{id}/state");
    let cloud = Sub::start(upstream.port, "$SYS/broker/connection/#", 1, &[]);
    let mut broker = Broker::with_config(&config);
    let states = |sub: &Sub| -> Vec<String> {
        sub.messages()
            .into_iter()
            .filter(|(t, _)| *t == topic)
            .map(|(_, p)| p)
            .collect()
    };
    let wait_states = |sub: &Sub, want: &[&str]| {
        let got = sub.wait(Duration::from_secs(15), |m| {
            m.iter().filter(|(t, _)| *t == topic).count() >= want.len()
        });
        assert_eq!(states(sub), want, "{got:?}");
    };
    wait_states(&cloud, &["1"]);
    let local = Sub::start(broker.port(), "$SYS/broker/connection/#", 1, &[]);
    wait_states(&local, &["1"]);
    drop(local);

    broker.kill9();
    wait_states(&cloud, &["1", "0"]);
    broker.restart();
    wait_states(&cloud, &["1", "0", "1"]);
    // Subscribed early, it may read the `0` kept from the start before the `1`.
    let local = Sub::start(broker.port(), "$SYS/broker/connection/#", 1, &[]);
    local.wait(Duration::from_secs(15), |m| {
        m.last().is_some_and(|(t, p)| *t == topic && p == "1")
    });
    assert_eq!(states(&local).last().map(String::as_str), Some("1"));

    broker
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .expect("Outpost stops on SIGTERM");
    wait_states(&cloud, &["1", "0", "1", "0"]);
    // Retained: a newcomer in the cloud reads the last state.
    let late = Sub::start(upstream.port, "$SYS/broker/connection/#", 1, &[]);
    wait_states(&late, &["0"]);
}

/// Two Mosquitto nodes, `address = [A, B]`: the first is stopped while messages stream,
/// the bridge moves to the second and nothing is lost; when the first is back the bridge
/// returns to it (checked every `primary_retry` = 2 s). Then a failover with a kill -9 of
/// Outpost in the middle: after the restart every acknowledged message arrives. Node A keeps
/// its subscriber's session on disk, so what A acknowledged just before it stopped reaches
/// the subscriber when A is back (Mosquitto's side of "nothing lost").
#[test]
fn failover_between_two_upstream_nodes_loses_nothing_and_returns_to_the_primary() {
    let mut a = Mosquitto::persistent();
    let b = Mosquitto::start();
    let sub_id = unique("sub-a");
    let sub_args = ["-c", "-i", sub_id.as_str()];
    let mut subs_a = vec![Sub::start(a.port, "site1/sensors/#", 1, &sub_args)];
    let sub_b = Sub::start(b.port, "site1/sensors/#", 1, &[]);
    let config = bridge_config(a.port, "v5", 16, "primary_retry = 2").replace(
        &format!("address = \"127.0.0.1:{}\"", a.port),
        &format!(
            "address = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]",
            a.port, b.port
        ),
    );
    let mut broker = Broker::with_config(&config);
    let on = |port: u16| format!("bridge up: up on 127.0.0.1:{port}");
    let ups = |broker: &Broker, port: u16| {
        broker
            .log()
            .iter()
            .filter(|l| l.contains(&on(port)))
            .count()
    };
    let all = |subs_a: &[Sub]| {
        let mut got = sub_b.messages();
        for sub in subs_a {
            got.extend(sub.messages());
        }
        got
    };
    let wait_all = |subs_a: &[Sub], range: std::ops::Range<usize>, what: &str| {
        let got = common::wait_until(Duration::from_secs(30), || {
            let got = all(subs_a);
            missing_in(&got, range.clone()).is_empty().then_some(got)
        });
        got.unwrap_or_else(|| {
            let missing = missing_in(&all(subs_a), range.clone());
            panic!("missing {what}: {missing:?}")
        })
    };

    // Mid-stream: A stops after it has some of 300 messages; the rest go to B.
    std::thread::scope(|scope| {
        let publisher = scope.spawn(|| publish_range(&broker, 0..300, QoS5::AtLeastOnce));
        subs_a[0].wait(Duration::from_secs(20), |m| m.len() >= 50);
        a.stop();
        publisher.join().unwrap();
    });
    // The log line and B's first message come through different pipes: wait for both.
    let moved = common::wait_until(Duration::from_secs(30), || {
        (ups(&broker, b.port) >= 1 && !sub_b.messages().is_empty()).then_some(())
    });
    assert!(
        moved.is_some(),
        "the bridge did not move to B: {:?}",
        broker.log()
    );

    // A comes back: what it had taken reaches its subscriber, the bridge returns to it,
    // and new messages go there.
    a.resume();
    subs_a.push(Sub::start(a.port, "site1/sensors/#", 1, &sub_args));
    let got = wait_all(&subs_a, 0..300, "after the failover");
    eprintln!(
        "failover: 300 messages, {} via A, {} via B, {} delivered twice",
        subs_a.iter().map(|s| s.messages().len()).sum::<usize>(),
        sub_b.messages().len(),
        got.len() - 300
    );
    common::wait_until(Duration::from_secs(15), || {
        (ups(&broker, a.port) >= 2).then_some(())
    })
    .unwrap_or_else(|| panic!("the bridge did not return to A: {:?}", broker.log()));
    let before_b = sub_b.messages().len();
    publish_range(&broker, 300..320, QoS5::AtLeastOnce);
    wait_all(&subs_a, 300..320, "back on A");
    assert_eq!(sub_b.messages().len(), before_b, "nothing more went to B");

    // A fails again, and Outpost is killed -9 while the bridge fails over.
    a.stop();
    publish_range(&broker, 320..420, QoS5::AtLeastOnce);
    broker.kill9();
    broker.restart();
    a.resume();
    subs_a.push(Sub::start(a.port, "site1/sensors/#", 1, &sub_args));
    wait_all(&subs_a, 320..420, "after a kill -9 during the failover");
}

/// What `notifications` costs on the wire, counted by the proxy: the CONNECT's will and
/// the retained `1` with its PUBACK, per connection (with and without, MQTT 5 and 3.1.1,
/// the default topic for a 10-character client id), and the `0` before a clean stop.
#[test]
fn bytes_per_notification() {
    let mut rows = Vec::new();
    for protocol in ["v5", "v311"] {
        let mut per_connect = Vec::new();
        for extra in ["", "notifications = true"] {
            let upstream = Mosquitto::start();
            let proxy = Proxy::start(upstream.port, Link::default());
            let config = bridge_config(proxy.port(), protocol, 16, extra)
                .replace("client_id = \"gw-", "client_id = \"g");
            let mut broker = Broker::with_config(&config);
            broker
                .wait_for_log(Duration::from_secs(10), |l| {
                    l.contains("bridge up: connected")
                })
                .expect("bridge connected");
            std::thread::sleep(Duration::from_millis(500));
            let connected = proxy.bytes();
            broker
                .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
                .expect("Outpost stops on SIGTERM");
            std::thread::sleep(Duration::from_millis(300));
            let stop = proxy.bytes().since(connected);
            per_connect.push((connected.up, connected.down, stop.up));
        }
        let [(up0, down0, stop0), (up1, down1, stop1)] = per_connect[..] else {
            unreachable!()
        };
        rows.push(format!(
            "{protocol}: connect {} up / {} down more with notifications, clean stop {} up more",
            up1 - up0,
            down1 - down0,
            stop1 - stop0
        ));
        // Will (topic, payload, flags) + PUBLISH of `1` on the same topic; its PUBACK down
        // (Mosquitto sends the reason code: 5 bytes on MQTT 5).
        assert!(up1 - up0 <= 120, "{rows:?}");
        assert!(down1 - down0 <= 5, "{rows:?}");
        assert!(stop1 - stop0 <= 60, "{rows:?}");
    }
    eprintln!("{}", rows.join("\n"));
}

/// `/metrics` carries each bridge's state and counters, labelled with its name, for a
/// Prometheus scraper on the gateway.
#[test]
fn metrics_carry_the_bridge_state() {
    let upstream = Mosquitto::start();
    let config = bridge_config(upstream.port, "v5", 16, "");
    let section = &config[config.find("[[bridge]]").unwrap()..];
    let broker = common::console::start_with(&[], &format!("\n{section}"));
    broker
        .wait_for_log(Duration::from_secs(10), |l| {
            l.contains("bridge up: connected")
        })
        .expect("bridge connected");
    publish_many(&broker, 3, QoS5::AtLeastOnce);
    let mut client = common::http::Client::new(broker.web_port());
    let metrics = common::wait_until(Duration::from_secs(10), || {
        let m = client.get("/metrics");
        (m.status == 200
            && m.body
                .contains("outpost_bridge_forwarded_total{bridge=\"up\"} 3"))
        .then_some(m.body)
    })
    .expect("the bridge's forwarded messages in /metrics");
    for line in [
        "# TYPE outpost_bridge_connected gauge\noutpost_bridge_connected{bridge=\"up\"} 1",
        "outpost_bridge_queued{bridge=\"up\"} 0",
        "# TYPE outpost_bridge_dropped_total counter\noutpost_bridge_dropped_total{bridge=\"up\"} 0",
        "outpost_bridge_connects_total{bridge=\"up\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
}
