//! `loadgen`: runs the issue #4 load scenarios against Outpost and
//! Mosquitto, one broker after the other with the same load, and writes the
//! figures as markdown tables, JSON and an SVG plot of the ratios.
//!
//! Modules: `mqtt` (the minimal client), `ws` (its WebSocket framing),
//! `broker` (start/stop the brokers), `cgroup` (the constrained, Pi-class budget),
//! `scenarios` (the loads), `room` (one room of a thousand members), `stats` (clocks, percentiles, `/proc`),
//! `report` (tables, JSON, SVG).
//!
//! ```text
//! loadgen [--quick] [--outpost BIN] [--mosquitto BIN] [--out DIR]
//!                 [--only GROUP,...] [--brokers outpost,mosquitto]
//!                 [--mqtt 5|3] [--auth USER:PASS] [--sync full|normal]
//!                 [--broker-cpus LIST]
//! ```

mod broker;
mod cgroup;
mod flash;
mod mqtt;
mod report;
mod room;
mod scenarios;
mod stats;
mod ws;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use broker::{Broker, Kind, Setup};
use report::{BrokerRun, Case, Outcome};
use scenarios::{PubSub, Target};

struct Args {
    quick: bool,
    out: PathBuf,
    only: Option<Vec<String>>,
    brokers: Vec<Kind>,
    version: mqtt::Version,
    setup: Setup,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--quick] [--outpost BIN] [--mosquitto BIN] [--out DIR]\n\
         \x20                      [--only fan-in,fan-out,durable,overload,deep,idle,chat,room,connect,reconnect,login,constrained,flash]\n\
         \x20                      [--brokers outpost,mosquitto] [--mqtt 5|3]\n\
         \x20                      [--auth USER:PASS] [--sync full|normal] [--broker-cpus LIST]\n\
         \x20                      [--flush-shim flushdelay.so]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        quick: std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0"),
        out: PathBuf::from("target/bench"),
        only: None,
        brokers: vec![Kind::Outpost, Kind::Mosquitto],
        version: mqtt::Version::V5,
        setup: Setup {
            outpost_bin: PathBuf::from("target/release/outpost"),
            mosquitto_bin: PathBuf::from("mosquitto"),
            mosquitto_passwd_bin: PathBuf::from("mosquitto_passwd"),
            work: PathBuf::new(),
            sync: "normal".into(),
            auth: None,
            accounts: Vec::new(),
            websocket: false,
            defaults: false,
            broker_cpus: None,
            constrained: false,
            flush_shim: None,
            flush_delay_ms: 0,
            mosquitto_autosave: None,
            bridge_to: None,
        },
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--outpost" => a.setup.outpost_bin = val().into(),
            "--mosquitto" => a.setup.mosquitto_bin = val().into(),
            "--mosquitto-passwd" => a.setup.mosquitto_passwd_bin = val().into(),
            "--out" => a.out = val().into(),
            "--only" => a.only = Some(val().split(',').map(str::to_string).collect()),
            "--sync" => a.setup.sync = val(),
            "--broker-cpus" => a.setup.broker_cpus = Some(val()),
            "--flush-shim" => a.setup.flush_shim = Some(val().into()),
            "--brokers" => {
                a.brokers = val()
                    .split(',')
                    .map(|b| match b {
                        "outpost" => Kind::Outpost,
                        "mosquitto" => Kind::Mosquitto,
                        _ => usage(),
                    })
                    .collect()
            }
            "--mqtt" => {
                a.version = match val().as_str() {
                    "5" => mqtt::Version::V5,
                    "3" | "3.1.1" | "4" => mqtt::Version::V311,
                    _ => usage(),
                }
            }
            "--auth" => {
                let v = val();
                let (u, p) = v.split_once(':').unwrap_or_else(|| usage());
                a.setup.auth = Some((u.into(), p.into()));
            }
            _ => usage(),
        }
    }
    a.setup.work = a.out.join("work");
    a
}

/// How a case runs against one broker.
type Runner = Box<dyn Fn(&Target) -> Result<Outcome, String>>;

/// One case of a scenario: its name, parameters and how to run it.
struct Plan {
    group: &'static str,
    name: String,
    params: Vec<(&'static str, String)>,
    /// Log in with `--auth` credentials (otherwise anonymous).
    auth: bool,
    /// Outpost's `sync` for this case, overriding `--sync`.
    sync: Option<&'static str>,
    /// Both brokers at their default in-flight and queue limits.
    defaults: bool,
    /// Distinct accounts to create besides the `--auth` one (with `auth`).
    accounts: usize,
    /// Clients connect over WebSocket (Outpost only: the Debian build of Mosquitto has no
    /// WebSocket listener).
    websocket: bool,
    /// Run the broker in the Pi-class budget (`cgroup.rs`).
    constrained: bool,
    /// The flash group's settings; `None` for every other case.
    flash: Option<FlashPlan>,
    run: Runner,
}

/// How a flash case runs its brokers.
#[derive(Clone, Copy)]
struct FlashPlan {
    /// Milliseconds added to every flush.
    delay_ms: u32,
    /// Mosquitto's `autosave_interval`.
    autosave: u32,
    /// Outpost runs in this case (once per load and delay, beside the first Mosquitto).
    outpost: bool,
    /// Outpost alone, with a bridge forwarding the readings to an upstream Mosquitto.
    bridge: bool,
}

fn plans(quick: bool, with_auth: bool) -> Vec<Plan> {
    let mut v = Vec::new();
    let secs = if quick { 1.0 } else { 5.0 };
    // `sync`: only for the durable group, whose subscriber has a persistent
    // session; it names Outpost's `sync` setting for the case.
    // `open`: publishers run as fast as their windows allow, with no end-to-end credit
    // (the overload group); otherwise within `ahead`, below the brokers' queue limits.
    let pubsub_case = |group: &'static str,
                       pubs,
                       subs,
                       qos: u8,
                       payload: usize,
                       sync: Option<&'static str>,
                       open: bool| {
        let size = if payload >= 1024 {
            format!("{}KiB", payload / 1024)
        } else {
            format!("{payload}B")
        };
        let mut name = if open {
            format!("{group} {pubs}x{subs} q{qos} {size}")
        } else {
            format!("{group} q{qos} {size}")
        };
        if let Some(sync) = sync {
            name.push_str(&format!(" sync={sync}"));
        }
        let tag = name.replace(' ', "-");
        let s = PubSub {
            tag,
            pubs,
            subs,
            qos,
            payload,
            window: 64,
            duration: Duration::from_secs_f64(secs),
            wildcard: pubs > 1,
            // Below the brokers' max_queued_messages (1000) in total, unless open.
            ahead: if open {
                u64::MAX / 1024
            } else {
                800 / pubs as u64
            },
            durable: sync.is_some(),
        };
        let ahead = if open {
            "unbounded (open loop)".to_string()
        } else {
            (800 / pubs).to_string()
        };
        Plan {
            group,
            name,
            params: vec![
                ("publishers", pubs.to_string()),
                ("subscribers", subs.to_string()),
                ("qos", qos.to_string()),
                ("payload_bytes", payload.to_string()),
                ("window", if qos > 0 { "64".into() } else { "-".into() }),
                ("ahead_per_publisher", ahead),
                ("seconds", secs.to_string()),
                (
                    "subscriber_session",
                    if sync.is_some() {
                        format!(
                            "persistent (expiry {}s / clean_session=0)",
                            scenarios::SESSION_EXPIRY
                        )
                    } else {
                        "clean".into()
                    },
                ),
                ("outpost_sync", sync.unwrap_or("(--sync)").into()),
                (
                    "limits",
                    if open {
                        "each broker's defaults".into()
                    } else {
                        "max_inflight 65535, max_queued_messages 1000".into()
                    },
                ),
            ],
            auth: false,
            sync,
            defaults: open,
            accounts: 0,
            constrained: false,
            flash: None,
            websocket: false,
            run: Box::new(move |t: &Target| scenarios::pubsub(t, &s)),
        }
    };
    for qos in [0, 1] {
        for payload in [64, 4096] {
            v.push(pubsub_case("fan-in", 8, 1, qos, payload, None, false));
        }
    }
    for qos in [0, 1] {
        v.push(pubsub_case("fan-out", 1, 16, qos, 64, None, false));
    }
    // Issue #4: QoS 1 to a persistent session with every commit fsynced, and
    // the same with Outpost's cheaper sync for reference; Mosquitto keeps
    // its sessions in memory (`persistence false`) in both.
    for sync in ["full", "normal"] {
        v.push(pubsub_case("durable", 8, 1, 1, 64, Some(sync), false));
    }
    // Issue #16: QoS 1 publishers as fast as their windows allow, nothing holding them
    // back but the broker: what is delivered, and what is lost after being acknowledged.
    v.push(pubsub_case("overload", 4, 1, 1, 64, None, true));
    v.push(pubsub_case("overload", 1, 16, 1, 64, None, true));
    let (idle_clients, idle_secs) = (10_000, if quick { 10 } else { 60 });
    // Issue #13: idle WebSocket connections should cost about what TCP ones do.
    for websocket in [false, true] {
        v.push(Plan {
            group: "idle",
            name: format!(
                "idle {}k{}",
                idle_clients / 1000,
                if websocket { " websocket" } else { "" }
            ),
            params: vec![
                ("clients", idle_clients.to_string()),
                ("keep_alive", "60".into()),
                ("idle_seconds", idle_secs.to_string()),
                (
                    "transport",
                    if websocket { "websocket" } else { "tcp" }.into(),
                ),
            ],
            auth: false,
            sync: None,
            accounts: 0,
            websocket,
            constrained: false,
            flash: None,
            defaults: false,
            run: Box::new(move |t: &Target| {
                scenarios::idle(t, idle_clients, Duration::from_secs(idle_secs))
            }),
        });
    }
    // Issue #10: 100 persistent sessions offline while 10 000 QoS 1 messages are queued for
    // each (a million queued deliveries), at each broker's defaults.
    let (deep_sessions, deep_messages) = (100, if quick { 2_000 } else { 10_000 });
    v.push(Plan {
        group: "deep",
        name: format!("deep {deep_sessions}x{}k", deep_messages / 1000),
        params: vec![
            ("sessions", format!("{deep_sessions} persistent, offline")),
            (
                "messages",
                format!("{deep_messages} QoS 1, 64 B, each to every session"),
            ),
            ("publisher_window", "64".into()),
            ("limits", "each broker's defaults".into()),
        ],
        auth: false,
        sync: None,
        defaults: true,
        accounts: 0,
        constrained: false,
        flash: None,
        websocket: false,
        run: Box::new(move |t: &Target| scenarios::deep(t, deep_sessions, deep_messages)),
    });
    // Issue #10: clean-session clients connecting one after another, at Outpost's default
    // sync = full (a CONNACK that promises nothing stored must not wait for an fsync).
    let rate_clients = if quick { 2000 } else { 10_000 };
    v.push(Plan {
        group: "connect",
        name: format!("connect {}k sync=full", rate_clients / 1000),
        params: vec![
            ("clients", rate_clients.to_string()),
            (
                "order",
                "one after another, each waits for its CONNACK".into(),
            ),
            ("session", "clean".into()),
            ("outpost_sync", "full".into()),
        ],
        auth: false,
        sync: Some("full"),
        defaults: false,
        accounts: 0,
        constrained: false,
        flash: None,
        websocket: false,
        run: Box::new(move |t: &Target| scenarios::connect_rate(t, rate_clients)),
    });
    let (chat_clients, chat_secs) = (1000, if quick { 5 } else { 20 });
    let chat_case = |group: &'static str, constrained: bool| Plan {
        group,
        name: format!("{group} 1k/10 rooms"),
        params: vec![
            ("clients", chat_clients.to_string()),
            ("rooms", "10".into()),
            ("rate_per_client", "1/s".into()),
            ("qos", "1".into()),
            ("seconds", chat_secs.to_string()),
        ],
        auth: false,
        sync: None,
        defaults: false,
        accounts: 0,
        websocket: false,
        constrained,
        flash: None,
        run: Box::new(move |t: &Target| {
            scenarios::chat(
                t,
                chat_clients,
                10,
                Duration::from_secs(chat_secs),
                scenarios::ChatWire::Plain,
                false,
            )
        }),
    };
    v.push(chat_case("chat", false));
    // Issue #11: the same load through Outpost's chat service (logged in, stored, sender
    // and id added) against Mosquitto carrying it as plain MQTT with the same payloads.
    if with_auth {
        v.push(Plan {
            group: "chat",
            name: "chat service 1k/10 rooms".into(),
            params: vec![
                ("clients", chat_clients.to_string()),
                ("rooms", "10".into()),
                ("rate_per_client", "1/s".into()),
                ("qos", "1".into()),
                ("seconds", chat_secs.to_string()),
                ("outpost", "chat service (chat/r/<room>)".into()),
                ("mosquitto", "plain topics, same text payloads".into()),
            ],
            auth: true,
            sync: None,
            accounts: 0,
            constrained: false,
            flash: None,
            defaults: false,
            websocket: false,
            run: Box::new(move |t: &Target| {
                scenarios::chat(
                    t,
                    chat_clients,
                    10,
                    Duration::from_secs(chat_secs),
                    scenarios::ChatWire::Service,
                    true,
                )
            }),
        });
    }
    // Issue #11: one room of 1000 members, 20 of them talking, as plain MQTT on both
    // brokers and through Outpost's chat service (Mosquitto: plain again, same texts).
    if with_auth {
        let (members, senders, rate) = (1000, 20, 100);
        let room_secs = if quick { 2 } else { 5 };
        for wire in [scenarios::ChatWire::Plain, scenarios::ChatWire::Service] {
            let service = wire == scenarios::ChatWire::Service;
            let room = room::BigRoom {
                members,
                senders,
                rate,
                run_for: Duration::from_secs(room_secs),
                wire,
            };
            v.push(Plan {
                group: "room",
                name: format!("room 1000{}", if service { " chat service" } else { "" }),
                params: vec![
                    ("members", members.to_string()),
                    (
                        "senders",
                        format!("{senders} of the members, each with its own account"),
                    ),
                    ("members_login", "one shared account (--auth)".into()),
                    (
                        "rate",
                        format!("{rate} msgs/s in all, {} per sender", rate / senders as u64),
                    ),
                    ("qos", "1".into()),
                    ("payload_bytes", "100".into()),
                    ("seconds", room_secs.to_string()),
                    (
                        "outpost",
                        if service {
                            "chat service (chat/r/big)"
                        } else {
                            "plain topic talk/room/big"
                        }
                        .into(),
                    ),
                    ("mosquitto", "plain topic talk/room/big, same texts".into()),
                ],
                auth: true,
                sync: None,
                defaults: false,
                accounts: senders,
                websocket: false,
                constrained: false,
                flash: None,
                run: Box::new(move |t: &Target| room::big_room(t, &room)),
            });
        }
    }
    // A Raspberry-Pi-class budget for the broker (cgroup.rs): fan-in and chat again.
    for qos in [0, 1] {
        let mut plan = pubsub_case("constrained fan-in", 8, 1, qos, 64, None, false);
        plan.constrained = true;
        plan.params.push(("broker_budget", cgroup::describe()));
        v.push(plan);
    }
    let mut plan = chat_case("constrained chat", true);
    plan.params.push(("broker_budget", cgroup::describe()));
    v.push(plan);
    let rounds = if quick { 2 } else { 5 };
    for auth in [false, true] {
        if auth && !with_auth {
            continue;
        }
        v.push(Plan {
            group: "reconnect",
            name: format!("reconnect 200{}", if auth { " password" } else { "" }),
            params: vec![
                ("clients", "200".into()),
                ("rounds", rounds.to_string()),
                ("observers", "4".into()),
                ("auth", if auth { "password" } else { "anonymous" }.into()),
            ],
            auth,
            sync: None,
            defaults: false,
            accounts: 0,
            websocket: false,
            constrained: false,
            flash: None,
            run: Box::new(move |t: &Target| scenarios::reconnect(t, 200, rounds)),
        });
    }
    // Issue #3: established clients' round trips while 50 password logins,
    // each with its own account, are checked (bcrypt, no cache hit).
    if with_auth {
        let (logins, observers, calm) = (50, 4, Duration::from_secs(2));
        v.push(Plan {
            group: "login",
            name: format!("login burst {logins}"),
            params: vec![
                ("logins", logins.to_string()),
                ("accounts", format!("{logins} distinct")),
                ("observers", observers.to_string()),
                ("calm_seconds", calm.as_secs().to_string()),
                ("outpost_bcrypt_cost", "10 (default)".into()),
            ],
            auth: true,
            sync: None,
            defaults: false,
            accounts: logins,
            websocket: false,
            constrained: false,
            flash: None,
            run: Box::new(move |t: &Target| scenarios::login_burst(t, observers, calm)),
        });
    }
    v.extend(flash_plans(quick));
    v
}

/// Issue #26: the flash group. The steady loads run with no added flush time and, the
/// online one, with 10 and 30 ms; Mosquitto at `autosave_interval 1` beside Outpost
/// (`sync = "full"`), and at its default (1800 s) on its own.
fn flash_plans(quick: bool) -> Vec<Plan> {
    let secs = if quick { 5 } else { 20 };
    let mut v = Vec::new();
    let loads = [
        (flash::Load::Online, &[0, 10, 30][..]),
        (flash::Load::Retained, &[0][..]),
        (flash::Load::Offline, &[0][..]),
        (flash::Load::Burst, &[0, 30][..]),
    ];
    // The online load again with a bridge forwarding every reading upstream: its link's
    // output must not make the loop wait for the flush.
    let bridged = [(flash::Load::Online, &[0, 30][..], true)];
    let loads = loads.iter().map(|&(l, d)| (l, d, false)).chain(bridged);
    for (load, delays, bridge) in loads {
        for &delay_ms in delays {
            for autosave in [1, 1800] {
                if bridge && autosave != 1 {
                    continue;
                }
                let name = if bridge {
                    format!("flash {}+bridge {delay_ms}ms", load.name())
                } else {
                    format!("flash {} {delay_ms}ms autosave={autosave}", load.name())
                };
                let duration = Duration::from_secs(secs);
                v.push(Plan {
                    group: "flash",
                    name,
                    params: vec![
                        (
                            "sensors",
                            format!("{} MQTT 3.1.1, QoS 1, 1/s each", flash::SENSORS),
                        ),
                        ("subscriber", "MQTT 5, expiry 3600, QoS 1 on site/#".into()),
                        ("load", load.name().into()),
                        ("flush_delay_ms", delay_ms.to_string()),
                        ("seconds", secs.to_string()),
                        ("outpost_sync", "full".into()),
                        ("mosquitto_autosave_interval", autosave.to_string()),
                    ],
                    auth: false,
                    sync: Some("full"),
                    defaults: false,
                    accounts: 0,
                    websocket: false,
                    constrained: false,
                    flash: Some(FlashPlan {
                        delay_ms,
                        autosave,
                        outpost: autosave == 1,
                        bridge,
                    }),
                    run: Box::new(move |t: &Target| {
                        flash::run(
                            t,
                            &flash::Flash {
                                load,
                                duration,
                                flush_count: t.flush_count.clone(),
                            },
                        )
                    }),
                });
            }
        }
    }
    v
}

fn run_case(plan: &Plan, kind: Kind, args: &Args) -> BrokerRun {
    let tag = plan.name.replace([' ', '/'], "-");
    let mut run = BrokerRun {
        broker: kind.name(),
        outcome: None,
        error: None,
    };
    let mut setup = args.setup.clone();
    setup.websocket = plan.websocket;
    setup.constrained = plan.constrained;
    if !plan.auth {
        setup.auth = None;
    }
    if let Some(sync) = plan.sync {
        setup.sync = sync.into();
    }
    setup.defaults = plan.defaults;
    let mut upstream = None;
    if let Some(f) = plan.flash {
        setup.flush_delay_ms = f.delay_ms;
        setup.mosquitto_autosave = Some(f.autosave);
        if f.bridge {
            let mut up = args.setup.clone();
            up.flush_shim = None;
            up.mosquitto_autosave = None;
            up.auth = None;
            match Broker::start(Kind::Mosquitto, &up, &format!("{tag}-upstream")) {
                Ok(b) => {
                    setup.bridge_to = Some(b.addr);
                    upstream = Some(b);
                }
                Err(e) => {
                    run.error = Some(format!("upstream did not start: {e}"));
                    return run;
                }
            }
        }
    } else {
        setup.flush_shim = None;
    }
    if let Some((_, pass)) = &setup.auth {
        setup.accounts = (0..plan.accounts)
            .map(|i| (format!("login{i}"), format!("{pass}-{i}")))
            .collect();
    }
    let mut b = match Broker::start(kind, &setup, &tag) {
        Ok(b) => b,
        Err(e) => {
            if let Some(up) = upstream {
                up.stop();
            }
            run.error = Some(format!("did not start: {e}"));
            return run;
        }
    };
    let target = Target {
        kind,
        addr: b.addr,
        pid: b.pid,
        version: args.version,
        auth: setup.auth.clone(),
        accounts: setup.accounts.clone(),
        websocket: plan.websocket,
        flush_count: broker::flush_count(&setup.work, kind, &tag),
    };
    let result = (plan.run)(&target);
    let died = b.exited();
    let log = b.log.clone();
    let stopped = b.stop();
    if let Some(up) = upstream {
        up.stop();
    }
    match result {
        Ok(mut o) => {
            o.hold.clear();
            run.outcome = Some(o);
        }
        Err(e) => run.error = Some(e),
    }
    if let Some(d) = died.or(stopped.died) {
        let prev = run
            .error
            .take()
            .map(|e| format!("{e}; "))
            .unwrap_or_default();
        run.error = Some(format!("{prev}{d}"));
    }
    // Anything the broker logged (at warn and above) is worth a look,
    // except Mosquitto's complaint about running as root.
    let logged = broker::tail(&log, 50);
    let last = logged
        .lines()
        .rev()
        .find(|l| !l.contains("should not be run as root") && !l.trim().is_empty());
    if let (Some(line), Some(o)) = (last, run.outcome.as_mut()) {
        o.notes.push(format!("broker log: {line}"));
    }
    run
}

fn read_first_line(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|e| format!("unavailable: {e}"))
}

/// The commit of the tree the bench runs in, marked `-dirty` if it differs.
fn git_commit() -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match out(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = out(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{c}{}", if dirty { "-dirty" } else { "" })
        }
        None => "unknown".into(),
    }
}

fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo.lines().next().unwrap_or("").to_string();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    vec![
        ("cpus", cpus.to_string()),
        ("cpu_model", model),
        ("memory", mem.replace("MemTotal:", "").trim().to_string()),
        ("kernel", kernel.trim().to_string()),
    ]
}

fn main() -> ExitCode {
    let args = parse_args();
    let started = Instant::now();
    if let Err(e) = fs::create_dir_all(&args.setup.work) {
        eprintln!("cannot create {}: {e}", args.setup.work.display());
        return ExitCode::FAILURE;
    }
    let plans: Vec<Plan> = plans(args.quick, args.setup.auth.is_some())
        .into_iter()
        .filter(|p| {
            args.only.as_ref().is_none_or(|o| {
                // A group, or the start of a case's name ("flash burst").
                o.iter()
                    .any(|g| p.group.split(' ').next() == Some(g) || p.name.starts_with(g))
            })
        })
        .collect();
    let mut cases = Vec::new();
    for plan in &plans {
        let mut runs = Vec::new();
        for &kind in &args.brokers {
            if plan.websocket && kind == Kind::Mosquitto {
                continue;
            }
            if plan.flash.is_some_and(|f| !f.outpost) && kind == Kind::Outpost {
                continue;
            }
            if plan.flash.is_some_and(|f| f.bridge) && kind == Kind::Mosquitto {
                continue;
            }
            eprint!(
                "[{:>5.1}s] {:<22} {:<10} ",
                started.elapsed().as_secs_f64(),
                plan.name,
                kind
            );
            let t = Instant::now();
            let run = run_case(plan, kind, &args);
            match (&run.outcome, &run.error) {
                (Some(o), err) => {
                    let brief: Vec<String> = o
                        .metrics
                        .iter()
                        .take(4)
                        .map(|m| format!("{}={:.1}", m.key, m.value))
                        .collect();
                    eprintln!("{:>5.1}s  {}", t.elapsed().as_secs_f64(), brief.join(" "));
                    for n in &o.notes {
                        eprintln!("          note: {n}");
                    }
                    if let Some(e) = err {
                        eprintln!("          ERROR: {e}");
                    }
                }
                (None, e) => eprintln!("FAILED: {}", e.as_deref().unwrap_or("?")),
            }
            runs.push(run);
        }
        cases.push(Case {
            group: plan.group,
            name: plan.name.clone(),
            params: plan.params.clone(),
            runs,
        });
    }
    let mut meta = vec![
        (
            "mode",
            if args.quick { "quick" } else { "full" }.to_string(),
        ),
        (
            "mqtt",
            match args.version {
                mqtt::Version::V5 => "5".to_string(),
                mqtt::Version::V311 => "3.1.1".to_string(),
            },
        ),
        (
            "auth",
            if args.setup.auth.is_some() {
                "anonymous; password for the reconnect storm's second case and the login burst"
            } else {
                "anonymous"
            }
            .into(),
        ),
        ("outpost_sync", args.setup.sync.clone()),
        (
            "outpost",
            read_first_line(&args.setup.outpost_bin.to_string_lossy(), "--version"),
        ),
        (
            "mosquitto",
            read_first_line(&args.setup.mosquitto_bin.to_string_lossy(), "-h"),
        ),
        ("outpost_commit", git_commit()),
        ("seconds", format!("{:.0}", started.elapsed().as_secs_f64())),
    ];
    meta.extend(machine());
    let tables = report::tables(&cases);
    println!("{tables}");
    let write = |name: &str, text: &str| {
        let path = args.out.join(name);
        match fs::write(&path, text) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
        }
    };
    write("results.md", &tables);
    write("results.json", &report::json(&meta, &cases));
    let title = format!(
        "Outpost vs Mosquitto ({} mode, MQTT {})",
        meta[0].1, meta[1].1
    );
    write("results.svg", &report::svg(&title, &cases));
    let failed = cases
        .iter()
        .flat_map(|c| &c.runs)
        .filter(|r| r.outcome.is_none() && r.broker == "mosquitto")
        .count();
    // A failing Outpost run is a finding, reported above; a failing
    // Mosquitto run means the bench itself is broken.
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
