//! Metered links (`start = "lazy"`, docs/bridge.md): a real Mosquitto upstream behind a
//! counting proxy, so a test knows how many times the bridge connected; mosquitto_sub in
//! the cloud, rumqttc publishers on the gateway.

mod common;

use std::time::{Duration, Instant};

use common::bridging::{bridge_config, check_all_arrived, check_arrived, distinct, publish_range};
use common::clients::QoS5;
use common::proxy::{Link, Proxy};
use common::sys::{sys_client, wait_sys};
use common::upstream::{Mosquitto, Sub};
use common::Broker;

/// Where the bridge's state goes upstream and locally.
const STATE_TOPIC: &str = "gateways/site1/state";

/// [`bridge_config`] with `start = "lazy"`, notifications on [`STATE_TOPIC`], and `extra`.
fn lazy_config(port: u16, extra: &str) -> String {
    bridge_config(
        port,
        "v5",
        16,
        &format!(
            "start = \"lazy\"\nnotifications = true\nnotification_topic = \"{STATE_TOPIC}\"\n{extra}"
        ),
    )
}

/// The bridge's client id in a [`bridge_config`].
fn client_id(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.strip_prefix("client_id = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("client_id in the config")
        .to_string()
}

/// The gateway states the cloud saw on [`STATE_TOPIC`], in order.
fn states(cloud: &Sub) -> Vec<String> {
    cloud
        .messages()
        .into_iter()
        .filter(|(t, _)| t == STATE_TOPIC)
        .map(|(_, p)| p)
        .collect()
}

/// Waits until the cloud has seen `want` on [`STATE_TOPIC`], and exactly that.
fn wait_states(cloud: &Sub, want: &[&str]) {
    cloud.wait(Duration::from_secs(20), |m| {
        m.iter().filter(|(t, _)| t == STATE_TOPIC).count() >= want.len()
    });
    assert_eq!(states(cloud), want);
}

/// Waits for the log line saying bridge `up` let its idle link go, the `n`-th time.
fn wait_let_go(broker: &Broker, n: usize) {
    let gone = common::wait_until(Duration::from_secs(20), || {
        let lines = broker.log();
        let count = lines
            .iter()
            .filter(|l| l.contains("letting the link"))
            .count();
        (count >= n).then_some(())
    });
    assert!(
        gone.is_some(),
        "the idle link was not let go: {:?}",
        broker.log()
    );
}

/// How many times Mosquitto logged `id` disconnecting.
fn upstream_disconnects(upstream: &Mosquitto, id: &str) -> usize {
    let needle = format!("Client {id} disconnected");
    upstream
        .log()
        .iter()
        .filter(|l| l.contains(&needle))
        .count()
}

/// `lazy_threshold = 5`: four messages queued cause no connection at all; the fifth brings
/// the link up and all five arrive in order; after `idle_timeout` the link is let go with
/// the state `0` published first (a normal DISCONNECT discards the will), `/metrics` says
/// `idle`, and the next round needs the threshold again. Nothing is lost across the rest.
#[test]
fn nothing_crosses_before_the_threshold_everything_after_and_the_idle_link_is_let_go() {
    let upstream = Mosquitto::start();
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let watch = Sub::start(upstream.port, "gateways/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, Link::default());
    let config = lazy_config(proxy.port(), "lazy_threshold = 5\nidle_timeout = 2");
    let id = client_id(&config);
    let section = &config[config.find("[[bridge]]").unwrap()..];
    let broker = common::console::start_with(&[], &format!("\n{section}"));
    let mut web = common::http::Client::new(broker.web_port());
    let wait_metric = |web: &mut common::http::Client, state: &str| {
        let line = format!("outpost_bridge_state{{bridge=\"up\",state=\"{state}\"}} 1");
        let seen = common::wait_until(Duration::from_secs(15), || {
            web.get("/metrics").body.contains(&line).then_some(())
        });
        assert!(seen.is_some(), "{line} not in /metrics");
    };
    wait_metric(&mut web, "idle");

    publish_range(&broker, 0..4, QoS5::AtLeastOnce);
    // Longer than idle_timeout: a link made by mistake would have had time to show.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(proxy.connections(), 0, "connected below the threshold");
    assert!(cloud.messages().is_empty(), "{:?}", cloud.messages());
    wait_metric(&mut web, "idle");

    publish_range(&broker, 4..5, QoS5::AtLeastOnce);
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 5);
    check_all_arrived(&got, 5);
    wait_states(&watch, &["1"]);
    assert!(broker
        .wait_for_log(Duration::from_secs(1), |l| l
            .contains("5 messages queued; bringing the link up"))
        .is_some());

    // Idle: the state says 0 before the link goes, the upstream sees a DISCONNECT.
    wait_let_go(&broker, 1);
    wait_states(&watch, &["1", "0"]);
    wait_metric(&mut web, "idle");
    let gone = common::wait_until(Duration::from_secs(10), || {
        (upstream_disconnects(&upstream, &id) == 1).then_some(())
    });
    assert!(
        gone.is_some(),
        "no DISCONNECT upstream: {:?}",
        upstream.log()
    );
    assert_eq!(proxy.connections(), 1);

    // The next round: below the threshold nothing moves, at it everything does.
    let before = proxy.bytes();
    publish_range(&broker, 5..9, QoS5::AtLeastOnce);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(proxy.connections(), 1, "reconnected below the threshold");
    assert_eq!(distinct(&cloud.messages()), 5);
    publish_range(&broker, 9..10, QoS5::AtLeastOnce);
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 10);
    check_all_arrived(&got, 10);
    assert_eq!(proxy.connections(), 2);
    wait_let_go(&broker, 2);
    wait_states(&watch, &["1", "0", "1", "0"]);
    let round = proxy.bytes().since(before);
    eprintln!(
        "one lazy round (connect, 5 QoS 1 messages, let go): {} bytes up, {} down",
        round.up, round.down
    );
    // A newcomer in the cloud reads the retained state: idle gateway, link down.
    let late = Sub::start(upstream.port, "gateways/#", 1, &[]);
    wait_states(&late, &["0"]);
}

/// `lazy_interval`: far below the threshold, one queued message brings the link up once
/// the interval has passed since start (and, the second time, since the link was let go).
#[test]
fn the_interval_brings_the_link_up_for_a_single_message() {
    const INTERVAL: Duration = Duration::from_secs(4);
    let upstream = Mosquitto::start();
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, Link::default());
    let config = lazy_config(
        proxy.port(),
        "lazy_threshold = 1000\nlazy_interval = 4\nidle_timeout = 1",
    );
    let started = Instant::now();
    let broker = Broker::with_config(&config);
    publish_range(&broker, 0..1, QoS5::AtLeastOnce);
    if started.elapsed() < INTERVAL {
        assert_eq!(proxy.connections(), 0, "connected before the interval");
    }
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 1);
    check_all_arrived(&got, 1);
    assert!(
        started.elapsed() >= INTERVAL,
        "arrived before the interval passed"
    );
    assert!(broker
        .wait_for_log(Duration::from_secs(1), |l| l
            .contains("1 messages queued; bringing the link up"))
        .is_some());

    wait_let_go(&broker, 1);
    let rested = Instant::now();
    publish_range(&broker, 1..2, QoS5::AtLeastOnce);
    if rested.elapsed() < INTERVAL - Duration::from_secs(1) {
        assert_eq!(proxy.connections(), 1, "reconnected before the interval");
    }
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 2);
    check_all_arrived(&got, 2);
    assert_eq!(proxy.connections(), 2);
}

/// kill -9 at rest, while sending, and again at rest: every acknowledged message arrives.
/// A restart finds the queue on disk and counts it toward the threshold.
#[test]
fn kill_9_while_lazy_loses_nothing() {
    let upstream = Mosquitto::start();
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    // Slow enough that a kill lands mid-stream: 64 kbit/s, 100 ms each way.
    let proxy = Proxy::start(
        upstream.port,
        Link {
            latency: Duration::from_millis(100),
            rate_bps: Some(64_000),
            ..Link::default()
        },
    );
    let mut broker = Broker::with_config(&lazy_config(
        proxy.port(),
        "lazy_threshold = 10\nidle_timeout = 2",
    ));
    let sys = sys_client(broker.port(), "sys-1");
    wait_sys(&sys, "bridge/up/state", Duration::from_secs(10), |v| {
        v == "idle"
    })
    .expect("$SYS says idle, not down");
    drop(sys);

    // At rest, 6 queued: killed, restarted, still at rest; 4 more bring the link up.
    publish_range(&broker, 0..6, QoS5::AtLeastOnce);
    broker.kill9();
    broker.restart();
    assert!(broker
        .wait_for_log(Duration::from_secs(10), |l| l.contains("6 messages"))
        .is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(proxy.connections(), 0, "connected below the threshold");
    publish_range(&broker, 6..10, QoS5::AtLeastOnce);
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 10);
    check_all_arrived(&got, 10);

    // While sending: killed once some have arrived; the restart finds enough queued.
    wait_let_go(&broker, 1);
    publish_range(&broker, 10..210, QoS5::AtLeastOnce);
    cloud.wait(Duration::from_secs(30), |m| distinct(m) >= 40);
    broker.kill9();
    let arrived = distinct(&cloud.messages());
    assert!(
        arrived < 210,
        "everything arrived before the kill ({arrived})"
    );
    broker.restart();
    let got = cloud.wait(Duration::from_secs(60), |m| distinct(m) >= 210);
    check_arrived(&got, 210, true);

    // At rest again, 5 queued: killed, restarted, 5 more go with them.
    wait_let_go(&broker, 1);
    publish_range(&broker, 210..215, QoS5::AtLeastOnce);
    broker.kill9();
    broker.restart();
    publish_range(&broker, 215..220, QoS5::AtLeastOnce);
    let got = cloud.wait(Duration::from_secs(30), |m| distinct(m) >= 220);
    let dups = check_arrived(&got, 220, true);
    eprintln!(
        "220 messages, {} connections, {dups} delivered twice (QoS 1 resends after kill -9)",
        proxy.connections()
    );
}

/// A link cut while messages are still queued is retried (as with `start = "always"`)
/// until they are delivered; then it goes back to rest.
#[test]
fn a_lazy_link_cut_mid_stream_retries_until_the_queue_is_empty() {
    let upstream = Mosquitto::start();
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let proxy = Proxy::start(
        upstream.port,
        Link {
            latency: Duration::from_millis(100),
            rate_bps: Some(64_000),
            ..Link::default()
        },
    );
    let broker = Broker::with_config(&lazy_config(
        proxy.port(),
        "lazy_threshold = 50\nidle_timeout = 2",
    ));
    publish_range(&broker, 0..300, QoS5::AtLeastOnce);
    cloud.wait(Duration::from_secs(30), |m| distinct(m) >= 30);
    proxy.cut();
    let got = cloud.wait(Duration::from_secs(60), |m| distinct(m) >= 300);
    check_all_arrived(&got, 300);
    assert!(proxy.connections() >= 2, "the cut link was not retried");
    wait_let_go(&broker, 1);
    let connections = proxy.connections();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        proxy.connections(),
        connections,
        "reconnected with nothing queued"
    );
}

/// The idle let-go while the upstream is slow to read (paused): the bridge's `0` and
/// DISCONNECT wait in the socket, which stays open until the upstream has read them and
/// closed. Closed at once, the upstream's PUBACK of the `0` would meet a reset and the
/// upstream could drop the connection before reading the DISCONNECT: it would then publish
/// the will, a second `0`. Each state change is published once: 1, 0, then 1 again.
#[test]
fn a_slow_upstream_sees_one_state_change_per_let_go() {
    let upstream = Mosquitto::start();
    let watch = Sub::start(upstream.port, "gateways/#", 1, &[]);
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let config = lazy_config(upstream.port, "lazy_threshold = 1\nidle_timeout = 1");
    let id = client_id(&config);
    let broker = Broker::with_config(&config);
    publish_range(&broker, 0..1, QoS5::AtLeastOnce);
    check_all_arrived(
        &cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 1),
        1,
    );
    wait_states(&watch, &["1"]);

    upstream.pause();
    wait_let_go(&broker, 1);
    upstream.unpause();
    let gone = common::wait_until(Duration::from_secs(10), || {
        (upstream_disconnects(&upstream, &id) == 1).then_some(())
    });
    assert!(
        gone.is_some(),
        "no DISCONNECT upstream: {:?}",
        upstream.log()
    );
    wait_states(&watch, &["1", "0"]);

    // The next round: had a will followed the `0`, it would be here before the `1`.
    publish_range(&broker, 1..2, QoS5::AtLeastOnce);
    check_all_arrived(
        &cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 2),
        2,
    );
    wait_states(&watch, &["1", "0", "1"]);
    let lost = ["closed its connection", "due to", "Socket error"];
    let log = upstream.log();
    assert!(
        !log.iter()
            .any(|l| l.contains(&id) && lost.iter().any(|w| l.contains(w))),
        "the upstream lost our DISCONNECT: {log:?}"
    );
}

/// Writes `config` as the broker's config file, sends SIGHUP and waits for the reload's
/// `n`-th "reload done" line.
fn reload(broker: &Broker, config: &str, n: usize) {
    std::fs::write(broker.dir().join("outpost.toml"), config).unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(broker.pid() as i32, libc::SIGHUP) }, 0);
    let done = common::wait_until(Duration::from_secs(10), || {
        let lines = broker.log();
        (lines.iter().filter(|l| l.contains("reload done")).count() >= n).then_some(())
    });
    assert!(done.is_some(), "no reload: {:?}", broker.log());
}

/// Whether the broker logged a line containing `text`.
fn logged(broker: &Broker, text: &str) -> bool {
    broker.log().iter().any(|l| l.contains(text))
}

/// SIGHUP applies `start`, `lazy_threshold`, `lazy_interval` and `idle_timeout` to the
/// running bridge: a lower threshold brings the link up for what is already queued, a
/// shorter idle timeout lets it go, `always` connects with nothing queued, and `lazy` again
/// lets that link go once idle. Other bridge options wait for a restart, named in the log.
#[test]
fn sighup_applies_the_lazy_options_to_the_running_bridge() {
    let upstream = Mosquitto::start();
    let cloud = Sub::start(upstream.port, "site1/sensors/#", 1, &[]);
    let watch = Sub::start(upstream.port, "gateways/#", 1, &[]);
    let proxy = Proxy::start(upstream.port, Link::default());
    let lazy = "lazy_threshold = 1000\nidle_timeout = 3600";
    let config = lazy_config(proxy.port(), lazy);
    let broker = Broker::with_config(&config);
    publish_range(&broker, 0..3, QoS5::AtLeastOnce);
    assert_eq!(proxy.connections(), 0, "connected below the threshold");

    // The threshold lowered to what is queued: the link comes up for the three.
    reload(
        &broker,
        &config.replace(lazy, "lazy_threshold = 3\nidle_timeout = 3600"),
        1,
    );
    assert!(logged(&broker, "reload: applied bridge.up.lazy_threshold"));
    let got = cloud.wait(Duration::from_secs(20), |m| distinct(m) >= 3);
    check_all_arrived(&got, 3);
    wait_states(&watch, &["1"]);

    // A shorter idle timeout: the link, idle already, is let go.
    reload(
        &broker,
        &config.replace(lazy, "lazy_threshold = 3\nidle_timeout = 1"),
        2,
    );
    assert!(logged(&broker, "reload: applied bridge.up.idle_timeout"));
    wait_let_go(&broker, 1);
    wait_states(&watch, &["1", "0"]);
    assert_eq!(proxy.connections(), 1);

    // `always`: the link comes up with nothing queued; keep_alive needs a restart.
    let always = config
        .replace(lazy, "")
        .replace("start = \"lazy\"", "start = \"always\"")
        .replace("keep_alive = 20", "keep_alive = 30");
    reload(&broker, &always, 3);
    assert!(
        logged(
            &broker,
            "reload: bridge.up.keep_alive changed but need a restart"
        ),
        "{:?}",
        broker.log()
    );
    assert!(logged(
        &broker,
        "applied bridge.up.idle_timeout, bridge.up.lazy_threshold, bridge.up.start"
    ));
    wait_states(&watch, &["1", "0", "1"]);
    assert_eq!(proxy.connections(), 2);

    // Lazy again: the link that is up is let go once idle.
    reload(&broker, &config.replace(lazy, "idle_timeout = 1"), 4);
    wait_let_go(&broker, 2);
    wait_states(&watch, &["1", "0", "1", "0"]);
    publish_range(&broker, 3..4, QoS5::AtLeastOnce);
    assert_eq!(
        proxy.connections(),
        2,
        "one message is below the default threshold"
    );
}
