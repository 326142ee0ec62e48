//! An upstream Mosquitto for the bridge tests: Debian's `mosquitto` started on a free
//! loopback port with a generated config (plain and, when asked, a TLS listener), and
//! `mosquitto_sub` / `mosquitto_pub` against it. Missing mosquitto is a failure, not a skip
//! (scripts/install-test-deps.sh installs it).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait_until;

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

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
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Mosquitto::spawn(None)
    }

    /// With a second listener speaking TLS with `tls`'s certificate.
    pub fn with_tls(tls: &TlsFiles) -> Mosquitto {
        Mosquitto::spawn(Some(tls))
    }

    fn spawn(tls: Option<&TlsFiles>) -> Mosquitto {
        assert!(
            Path::new(MOSQUITTO).exists(),
            "{MOSQUITTO} is missing: run scripts/install-test-deps.sh (apt-get install -y mosquitto)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // Receive Maximum and the queue are generous so the broker under test, not
        // Mosquitto's limits, decides how the link is used.
        // `user root`: started as root, Mosquitto would switch to its own user, which cannot
        // read the certificates in our temporary directory (ignored when not root).
        let mut conf = format!(
            "user root\nper_listener_settings false\nallow_anonymous true\npersistence false\n\
             max_inflight_messages 1000\nmax_queued_messages 100000\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
             listener {port} 127.0.0.1\n"
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
        let mut child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto");
        let log = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        assert!(
            up.is_some(),
            "mosquitto did not listen on {port}: {:?}",
            log.lock().unwrap()
        );
        Mosquitto {
            child,
            port,
            tls_port,
            log,
            _dir: dir,
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
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

/// A `mosquitto_sub -v` collecting `topic payload` lines.
pub struct Sub {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sub {
    /// Subscribes to `filter` at `qos` on `port` (plus `extra` arguments) and waits for
    /// the SUBACK.
    pub fn start(port: u16, filter: &str, qos: u8, extra: &[&str]) -> Sub {
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-t", filter, "-q", &qos.to_string(), "-v", "-d"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let lines = Arc::new(Mutex::new(Vec::new()));
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
        let sub = Sub { child, lines };
        let subscribed = wait_until(Duration::from_secs(10), || {
            sub.lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("received SUBACK"))
                .then_some(())
        });
        assert!(
            subscribed.is_some(),
            "mosquitto_sub: no SUBACK: {:?}",
            sub.all()
        );
        sub
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The messages received so far as (topic, payload), in order (debug lines left out).
    pub fn messages(&self) -> Vec<(String, String)> {
        self.all()
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
