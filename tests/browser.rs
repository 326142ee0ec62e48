//! The web console in headless Chromium: starts the real broker with an admin made by
//! `outpost user add --admin` and runs `tests/browser/console.test.mjs` (playwright-core
//! driving Debian's chromium, with mosquitto_sub/mosquitto_pub as MQTT clients). Needs
//! node, chromium and `npm ci` in tests/browser/, which scripts/install-test-deps.sh puts
//! in place for `make test`. Screenshots land in target/browser/. The second test runs
//! tests/browser/chat.test.mjs: two people chatting on the `/chat` page with a paho-mqtt
//! peer (tests/python/chat_peer.py, so it needs python3 with paho-mqtt 2.x too) and a
//! mosquitto one. The third runs tests/browser/admin-bridges.test.mjs: the admin page's
//! bridge panel against a real upstream Mosquitto; the fourth tests/browser/console-walk.test.mjs,
//! the console's publish, watch, retained, user and ACL panels; the fifth
//! tests/browser/console-clients.test.mjs, client detail, ban and offline sessions; the
//! sixth tests/browser/chat-presence.test.mjs, presence, blocks and unread counts on `/chat`.

mod common;

use std::path::Path;
use std::process::Command;

use common::console;
use common::scripts::require_paho;

/// Runs one page test under tests/browser/ with node against `broker`, with BASE,
/// MQTT_PORT and OUT set besides `env`, and checks it passed and left its screenshots in
/// target/browser/.
fn run_page_test(script: &str, broker: &common::Broker, env: &[(&str, String)], shots: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh (npm ci in tests/browser)"
    );
    let out = root.join("target/browser");
    let run = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .env("BASE", format!("http://127.0.0.1:{}", broker.web_port()))
        .env("MQTT_PORT", broker.port().to_string())
        .env("OUT", &out)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{script} failed:\n{text}");
    for shot in shots {
        assert!(out.join(shot).exists(), "no screenshot {shot}");
    }
}

#[test]
fn register_login_and_watch_the_broker_from_chromium() {
    let broker = console::start(&[("admin", "admin-password", true)]);
    run_page_test(
        "console.test.mjs",
        &broker,
        &[
            ("ADMIN_USER", "admin".into()),
            ("ADMIN_PASSWORD", "admin-password".into()),
        ],
        &["admin-desktop.png", "admin-phone.png", "admin-stopped.png"],
    );
}

/// tests/browser/console-walk.test.mjs: publish → watch a wildcard → retained list →
/// delete → user add → ACL add → the new user refused, at desktop and phone sizes.
#[test]
fn an_admin_publishes_watches_cleans_up_and_manages_users_from_chromium() {
    let broker = console::start(&[("admin", "admin-password", true)]);
    run_page_test(
        "console-walk.test.mjs",
        &broker,
        &[
            ("ADMIN_USER", "admin".into()),
            ("ADMIN_PASSWORD", "admin-password".into()),
        ],
        &[
            "walk-desktop-watch.png",
            "walk-desktop-retained.png",
            "walk-desktop-users.png",
            "walk-phone-watch.png",
            "walk-phone-retained.png",
            "walk-phone-users.png",
        ],
    );
}

/// tests/browser/console-clients.test.mjs: a client's detail page from the clients list,
/// ban from it (a real mosquitto_sub refused), its offline session deleted, the ban
/// lifted, at desktop and phone sizes.
#[test]
fn an_admin_inspects_bans_and_cleans_up_a_client_from_chromium() {
    let broker = console::start(&[("admin", "admin-password", true)]);
    run_page_test(
        "console-clients.test.mjs",
        &broker,
        &[
            ("ADMIN_USER", "admin".into()),
            ("ADMIN_PASSWORD", "admin-password".into()),
        ],
        &[
            "clients-desktop-detail.png",
            "clients-desktop-sessions.png",
            "clients-desktop-bans.png",
            "clients-desktop-tree.png",
            "clients-phone-detail.png",
            "clients-phone-sessions.png",
            "clients-phone-bans.png",
            "clients-phone-tree.png",
        ],
    );
}

#[test]
fn two_phones_chat_on_the_chat_page_with_paho_and_mosquitto_peers() {
    require_paho();
    // The test seeds 60 messages at once: no request rate limit.
    let broker = console::start_with(
        &[
            ("alice", "alice-password", false),
            ("bob", "bob-password", false),
            ("carol", "carol-password", false),
            ("dave", "dave-password", false),
            ("root", "root-password", true),
        ],
        "chat_requests_per_second = 0\n",
    );
    run_page_test(
        "chat.test.mjs",
        &broker,
        &[],
        &[
            "chat-alice-desktop.png",
            "chat-bob-phone.png",
            "chat-alice-offline.png",
            "chat-bob-porch.png",
            "chat-alice-refused.png",
        ],
    );
}

/// tests/browser/chat-presence.test.mjs: a peer's online and offline shown once each in a
/// direct conversation and in a room as the peer's page opens and closes, the block list
/// after a reload, and unread counts that agree across one user's pages and devices.
#[test]
fn presence_blocks_and_unread_counts_on_the_chat_page_across_pages() {
    let broker = console::start(&[
        ("alice", "alice-password", false),
        ("bob", "bob-password", false),
        ("dave", "dave-password", false),
    ]);
    run_page_test(
        "chat-presence.test.mjs",
        &broker,
        &[],
        &[
            "chat-presence-direct-online.png",
            "chat-presence-fresh-unread.png",
        ],
    );
}

/// The admin page's bridge panel (tests/browser/admin-bridges.test.mjs): Outpost with a
/// bridge `up` to a real Mosquitto and a bridge `hostile` to the same Mosquitto's TLS
/// listener, whose certificate is for a name made of markup.
#[test]
fn the_admin_page_shows_each_bridge_live_with_a_hostile_error_as_text() {
    const MARKUP: &str = "<img src=x onerror=alert(1)>";
    let certs = common::certs::Certs::make();
    certs.server("hostile", &format!("DNS:{MARKUP}"));
    let upstream = common::upstream::Mosquitto::with_tls(&common::upstream::TlsFiles {
        ca: certs.path("ca.pem"),
        cert: certs.path("hostile.pem"),
        key: certs.path("hostile.key"),
        require_client_cert: false,
    });
    let bridges = format!(
        "[[bridge]]\nname = \"up\"\naddress = \"127.0.0.1:{plain}\"\n\
         [[bridge.topic]]\nfilter = \"sensors/#\"\ndirection = \"out\"\nqos = 1\nremote_prefix = \"site1/\"\n\
         [[bridge]]\nname = \"hostile\"\naddress = \"127.0.0.1:{tls}\"\ntls = true\n\
         ca_file = \"{ca}\"\nserver_name = \"localhost\"\n\
         [[bridge.topic]]\nfilter = \"sensors/#\"\ndirection = \"out\"\nqos = 1\n",
        plain = upstream.port,
        tls = upstream.tls_port.unwrap(),
        ca = certs.arg("ca.pem"),
    );
    let broker = console::start_with(&[("admin", "admin-password", true)], &bridges);
    run_page_test(
        "admin-bridges.test.mjs",
        &broker,
        &[
            ("UPSTREAM_PORT", upstream.port.to_string()),
            ("ADMIN_USER", "admin".into()),
            ("ADMIN_PASSWORD", "admin-password".into()),
            ("MARKUP", MARKUP.into()),
        ],
        &["admin-bridges.png", "admin-bridges-phone.png"],
    );
}

/// The console over HTTPS and the chat page over wss (tests/browser/https.test.mjs), with
/// the certificate Outpost generated on first start.
#[test]
fn the_console_over_https_and_the_chat_over_wss_in_chromium() {
    let broker = console::start_with(&[("root", "root-password", true)], "web_tls = \"on\"\n");
    let fingerprint = broker
        .log()
        .iter()
        .find_map(|l| {
            l.split_once("console on https://")
                .and_then(|(_, rest)| rest.split_once("fingerprint "))
                .map(|(_, print)| print.trim_end_matches(')').to_owned())
        })
        .expect("the console announces https and its fingerprint");
    run_page_test(
        "https.test.mjs",
        &broker,
        &[
            ("BASE", format!("https://127.0.0.1:{}", broker.web_port())),
            ("FINGERPRINT", fingerprint),
            ("ADMIN_USER", "root".into()),
            ("ADMIN_PASSWORD", "root-password".into()),
        ],
        &["https-admin.png", "https-chat.png"],
    );
}
