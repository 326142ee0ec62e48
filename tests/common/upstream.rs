//! An upstream Mosquitto for the bridge tests: Debian's `mosquitto` started on a free
//! loopback port with a generated config (plain and, when asked, a TLS listener or sessions
//! kept on disk across a stop), `mosquitto_pub` against it, and the one `mosquitto_sub`
//! wrapper every test uses, against it or against Outpost. Missing mosquitto is a failure,
//! not a skip (scripts/install-test-deps.sh installs it).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait_until;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// How long a mosquitto_sub may take to subscribe, to print a line, or to exit by itself.
const WAIT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// TLS files for a Mosquitto listener.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by `ca`.
    pub require_client_cert: bool,
}

/// A running Mosquitto, killed when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    pub tls_port: Option<u16>,
    log: Arc<Mutex<Vec<String>>>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Mosquitto::spawn(None, false, "")
    }

    /// With `settings` (global mosquitto.conf lines: `max_packet_size 200`, an `acl_file`)
    /// added to the usual config.
    pub fn with_settings(settings: &str) -> Mosquitto {
        Mosquitto::spawn(None, false, settings)
    }

    /// With a second listener speaking TLS with `tls`'s certificate.
    pub fn with_tls(tls: &TlsFiles) -> Mosquitto {
        Mosquitto::spawn(Some(tls), false, "")
    }

    /// Keeps its sessions (the bridge's, and a `mosquitto_sub -c`'s with its queued
    /// messages) on disk across [`Mosquitto::stop`] and [`Mosquitto::resume`].
    pub fn persistent() -> Mosquitto {
        Mosquitto::spawn(None, true, "")
    }

    fn spawn(tls: Option<&TlsFiles>, persistent: bool, settings: &str) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: run scripts/install-test-deps.sh (apt-get install -y mosquitto)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            )
        } else {
            "persistence false\n".to_string()
        };
        // Receive Maximum and the queue are generous so the broker under test, not
        // Mosquitto's limits, decides how the link is used.
        // `user root`: started as root, Mosquitto would switch to its own user, which cannot
        // read the certificates in our temporary directory (ignored when not root).
        let mut conf = format!(
            "user root\nper_listener_settings false\nallow_anonymous true\n{persistence}\
             max_inflight_messages 1000\nmax_queued_messages 100000\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
             {settings}\nlistener {port} 127.0.0.1\n"
        );
        let tls_port = tls.map(|t| {
            let p = free_port();
            conf.push_str(&format!(
                "listener {p} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
                 require_certificate {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display(),
                t.require_client_cert
            ));
            p
        });
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let child = launch(&conf_path, port, &log);
        Mosquitto {
            child,
            port,
            tls_port,
            log,
            conf: conf_path,
            _dir: dir,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Stops it with SIGTERM (a [`Mosquitto::persistent`] one saves its sessions) and
    /// waits for it to exit. Its port stays ours for [`Mosquitto::resume`].
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let exited = wait_until(Duration::from_secs(10), || self.child.try_wait().unwrap());
        assert!(exited.is_some(), "mosquitto did not stop: {:?}", self.log());
    }

    /// Freezes it (SIGSTOP): its sockets stay open, nothing is read or answered until
    /// [`Mosquitto::unpause`], as a busy or slow cluster node.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a [`Mosquitto::pause`]d broker run again (SIGCONT).
    pub fn unpause(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill -{signal} {pid}"
        );
    }

    /// Starts it again on the same ports with the same config (after [`Mosquitto::stop`]).
    pub fn resume(&mut self) {
        self.child = launch(&self.conf, self.port, &self.log);
    }

    /// `mosquitto_pub` to this broker; panics if it fails.
    pub fn publish(&self, topic: &str, payload: &str, qos: u8) {
        let out = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-m", payload, "-q", &qos.to_string()])
            .output()
            .expect("run mosquitto_pub");
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- mosquitto log ---\n{}", self.log().join("\n"));
        }
    }
}

/// Runs mosquitto on `conf`, its output joining `log`, and waits until it listens on `port`.
fn launch(conf: &Path, port: u16, log: &Arc<Mutex<Vec<String>>>) -> Child {
    let mut child = Command::new(MOSQUITTO)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto");
    collect_output(&mut child, log);
    let up = wait_until(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(
        up.is_some(),
        "mosquitto did not listen on {port}: {:?}",
        log.lock().unwrap()
    );
    child
}

/// Appends every line `child` writes to stdout or stderr to `lines`, from two threads.
pub fn collect_output(child: &mut Child, lines: &Arc<Mutex<Vec<String>>>) {
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }
}

/// A `mosquitto_sub -d` (debug lines: CONNACK, SUBACK, each PUBLISH's flags) with its
/// output collected line by line, against Outpost or an upstream Mosquitto.
pub struct Sub {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sub {
    /// `mosquitto_sub -v` on `filter` at `qos` on `port` (plus `extra` arguments); waits
    /// for the SUBACK.
    pub fn start(port: u16, filter: &str, qos: u8, extra: &[&str]) -> Sub {
        let qos = qos.to_string();
        let mut args = vec!["-t", filter, "-q", &qos, "-v"];
        args.extend_from_slice(extra);
        Sub::spawn(port, &args)
    }

    /// `mosquitto_sub -d` on `port` with `args` as they are; waits for the SUBACK.
    pub fn spawn(port: u16, args: &[&str]) -> Sub {
        // stdbuf: mosquitto_sub's stdout is block-buffered on a pipe; we need each line now.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-d"])
            .args(["-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let lines = Arc::new(Mutex::new(Vec::new()));
        collect_output(&mut child, &lines);
        let sub = Sub { child, lines };
        sub.wait_line(|l| l.contains("received SUBACK"), "SUBACK");
        sub
    }

    /// Waits for a line that satisfies `pred` (`what` names it in the panic if none comes).
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        wait_until(WAIT, || {
            self.lines.lock().unwrap().iter().find(|l| pred(l)).cloned()
        })
        .unwrap_or_else(|| panic!("mosquitto_sub: no {what}; output:\n{}", self.output()))
    }

    /// The debug line of the n-th (0-based) PUBLISH received, e.g.
    /// `Client x received PUBLISH (d0, q2, r0, m1, 'a/b', ... (2 bytes))`.
    pub fn publish_line(&self, n: usize) -> String {
        let nth = |l: &[String]| {
            l.iter()
                .filter(|l| l.contains("received PUBLISH"))
                .nth(n)
                .cloned()
        };
        wait_until(WAIT, || nth(&self.lines.lock().unwrap()))
            .unwrap_or_else(|| panic!("mosquitto_sub: no PUBLISH #{n}; output:\n{}", self.output()))
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for it to exit by itself (`-C`, `-W`) and returns how.
    pub fn wait_exit(mut self) -> ExitStatus {
        wait_until(WAIT, || self.child.try_wait().unwrap()).expect("mosquitto_sub did not exit")
    }

    /// SIGKILL: it goes without a DISCONNECT.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
    }

    /// The messages received so far as (topic, payload), in order (debug lines left out).
    pub fn messages(&self) -> Vec<(String, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
            .filter_map(|l| l.split_once(' '))
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .collect()
    }

    /// Waits until `pred` holds for the messages; returns them either way.
    pub fn wait(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        wait_until(timeout, || {
            let m = self.messages();
            pred(&m).then_some(m)
        })
        .unwrap_or_else(|| self.messages())
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
