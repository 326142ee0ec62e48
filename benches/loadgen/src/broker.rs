//! Starting and stopping the brokers under test, each on a free loopback port
//! with a generated config, fresh for every scenario.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Outpost,
    Mosquitto,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Outpost => "outpost",
            Kind::Mosquitto => "mosquitto",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything needed to start either broker the same way each time.
#[derive(Debug, Clone)]
pub struct Setup {
    pub outpost_bin: PathBuf,
    pub mosquitto_bin: PathBuf,
    pub mosquitto_passwd_bin: PathBuf,
    /// Scratch directory for configs, databases and logs.
    pub work: PathBuf,
    /// Outpost's `sync` option.
    pub sync: String,
    /// Username and password every client logs in with; `None` = anonymous.
    pub auth: Option<(String, String)>,
    /// Further accounts (username, password) created before the broker
    /// starts, each with its own password hash; only with `auth`.
    pub accounts: Vec<(String, String)>,
    /// Outpost's listener at `addr` speaks MQTT over WebSocket (its TCP one moves to
    /// another free port).
    pub websocket: bool,
    /// Run both brokers at their own in-flight and queue defaults instead of
    /// the raised limits the closed-loop cases use (the overload group).
    pub defaults: bool,
    /// The CPU list the broker is pinned to (`taskset -c`), so it does not
    /// compete with the load generator pinned elsewhere.
    pub broker_cpus: Option<String>,
    /// Run the broker inside the Raspberry-Pi-class budget of `cgroup.rs`.
    pub constrained: bool,
    /// The fsync shim (`shim/flushdelay.c`, built by `scripts/bench.sh`), preloaded into
    /// the broker when set: the flash group's flush delay and flush count.
    pub flush_shim: Option<PathBuf>,
    /// Milliseconds the shim adds to every fsync and fdatasync.
    pub flush_delay_ms: u32,
    /// Mosquitto keeps its state on disk, saved every this many seconds
    /// (`autosave_interval`); `None` = `persistence false`.
    pub mosquitto_autosave: Option<u32>,
    /// Outpost bridges `site/#` up at QoS 1 to this broker (the flash group's bridge case).
    pub bridge_to: Option<SocketAddr>,
}

/// A running broker.
pub struct Broker {
    pub kind: Kind,
    pub addr: SocketAddr,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

/// How a broker ended.
pub struct Stopped {
    /// Set when the broker had exited before we asked it to.
    pub died: Option<String>,
}

/// The most connections any scenario opens, plus room.
const MAX_CONNECTIONS: usize = 20_000;
/// Outpost's largest window, matching Mosquitto's "no limit" (see
/// `mosquitto_command`); the load keeps fewer than 1000 in flight.
const INFLIGHT: usize = 65535;
const QUEUED: usize = 1000;

impl Broker {
    pub fn start(kind: Kind, setup: &Setup, tag: &str) -> Result<Broker, String> {
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = setup.work.join(format!("{}-{tag}", kind.name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let log = dir.join("broker.log");
        let logf = fs::File::create(&log).map_err(|e| e.to_string())?;
        let plain = match kind {
            Kind::Outpost => outpost_command(setup, &dir, addr)?,
            Kind::Mosquitto => mosquitto_command(setup, &dir, port)?,
        };
        let mut cmd = match &setup.broker_cpus {
            Some(cpus) => {
                let mut pinned = Command::new("taskset");
                pinned
                    .args(["-c", cpus])
                    .arg(plain.get_program())
                    .args(plain.get_args());
                pinned
            }
            None => plain,
        };
        cmd.stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf)
            .env("RUST_LOG", "warn");
        if let Some(shim) = &setup.flush_shim {
            cmd.env("LD_PRELOAD", shim)
                .env("FLUSH_DELAY_MS", setup.flush_delay_ms.to_string())
                .env("FLUSH_COUNT_FILE", flush_count(&setup.work, kind, tag));
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", kind.name()))?;
        let mut b = Broker {
            kind,
            addr,
            pid: child.id(),
            log,
            child,
        };
        if setup.constrained {
            // taskset execs the broker in place, so the pid is the broker's.
            if let Err(e) = crate::cgroup::confine(b.pid) {
                b.stop();
                return Err(e);
            }
        }
        b.wait_ready()?;
        Ok(b)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(msg) = self.exited() {
                return Err(msg);
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {} in 15 s",
                    self.kind, self.addr
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `Some(reason)` if the process is gone.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!(
                "{} exited unexpectedly ({}); log tail:\n{}",
                self.kind,
                describe(st),
                tail(&self.log, 15)
            )),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for {}: {e}", self.kind)),
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) -> Stopped {
        let died = self.exited();
        if died.is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return Stopped { died };
                }
                thread::sleep(Duration::from_millis(20));
            }
            eprintln!("  {} ignored SIGTERM for 5 s; killing it", self.kind);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        Stopped { died }
    }
}

fn outpost_command(setup: &Setup, dir: &Path, addr: SocketAddr) -> Result<Command, String> {
    let db = dir.join("outpost.db");
    let anon = setup.auth.is_none();
    let (listen, ws_listen) = if setup.websocket {
        (format!("127.0.0.1:{}", free_port()?), format!("\"{addr}\""))
    } else {
        (addr.to_string(), String::new())
    };
    let conf = format!(
        "# generated by the load generator\n\
         listen = [\"{listen}\"]\n\
         ws_listen = [{ws_listen}]\n\
         # the web console on, as deployed (on a free port: runs must not clash)\n\
         http = \"127.0.0.1:0\"\n\
         db = \"{}\"\n\
         sync = \"{}\"\n\
         allow_anonymous = {anon}\n\
         max_connections = {MAX_CONNECTIONS}\n\
         # every bench client comes from 127.0.0.1\n\
         max_connections_per_address = 0\n{}",
        db.display(),
        setup.sync,
        if setup.defaults {
            String::new()
        } else {
            format!("max_inflight = {INFLIGHT}\nmax_queued_messages = {QUEUED}\n")
        }
    );
    let bridge = setup.bridge_to.map_or_else(String::new, |up| {
        format!(
            "[[bridge]]\nname = \"up\"\naddress = \"{up}\"\nprotocol = \"v5\"\n\
             client_id = \"bench-gw\"\n\
             [[bridge.topic]]\nfilter = \"site/#\"\ndirection = \"out\"\nqos = 1\n"
        )
    });
    let conf_path = dir.join("outpost.toml");
    fs::write(&conf_path, conf + &bridge).map_err(|e| e.to_string())?;
    // The same path as an operator's `outpost user add`, one process per
    // account, hashing at the configured (default) bcrypt cost.
    for (user, pass) in setup.auth.iter().chain(&setup.accounts) {
        outpost_user_add(setup, &conf_path, &db, user, pass)?;
    }
    let mut cmd = Command::new(&setup.outpost_bin);
    cmd.arg("--config")
        .arg(&conf_path)
        .arg("--listen")
        .arg(listen)
        .arg("--db")
        .arg(&db);
    Ok(cmd)
}

fn outpost_user_add(
    setup: &Setup,
    conf_path: &Path,
    db: &Path,
    user: &str,
    pass: &str,
) -> Result<(), String> {
    let mut child = Command::new(&setup.outpost_bin)
        .arg("--config")
        .arg(conf_path)
        .arg("--db")
        .arg(db)
        .args(["user", "add", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("outpost user add: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pass}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "outpost user add {user} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn mosquitto_command(setup: &Setup, dir: &Path, port: u16) -> Result<Command, String> {
    let limits = if setup.defaults {
        String::new()
    } else {
        format!(
            "max_queued_messages {QUEUED}\n\
             # 0 = no limit: 2.0.11's inflight quota strands queued QoS 1\n\
             # messages (fixed upstream in 2.0.13); the load bounds in-flight\n\
             # messages end to end instead\n\
             max_inflight_messages 0\n"
        )
    };
    let persistence = match setup.mosquitto_autosave {
        None => "persistence false\n".to_string(),
        Some(secs) => format!(
            "persistence true\npersistence_location {}/\nautosave_interval {secs}\n",
            dir.display()
        ),
    };
    let mut conf = format!(
        "# generated by the load generator\n\
         listener {port} 127.0.0.1\n\
         {persistence}\
         {limits}\
         set_tcp_nodelay true\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         # stay root so the scratch files stay readable (no effect otherwise)\n\
         user root\n"
    );
    match &setup.auth {
        None => conf.push_str("allow_anonymous true\n"),
        Some(first) => {
            let pwfile = dir.join("passwd");
            for (i, (user, pass)) in std::iter::once(first).chain(&setup.accounts).enumerate() {
                let st = Command::new(&setup.mosquitto_passwd_bin)
                    .arg("-b")
                    // The first creates the file, the others add to it.
                    .args((i == 0).then_some("-c"))
                    .arg(&pwfile)
                    .args([user, pass])
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("mosquitto_passwd: {e}"))?;
                if !st.success() {
                    return Err(format!("mosquitto_passwd failed for {user}"));
                }
            }
            conf.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                pwfile.display()
            ));
        }
    }
    let conf_path = dir.join("mosquitto.conf");
    fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&setup.mosquitto_bin);
    cmd.arg("-c").arg(conf_path);
    Ok(cmd)
}

/// Where the fsync shim counts the flushes of `kind`'s run `tag`.
pub fn flush_count(work: &Path, kind: Kind, tag: &str) -> PathBuf {
    work.join(format!("{}-{tag}", kind.name())).join("flushes")
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn describe(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
