//! A user-space TCP proxy on loopback that makes a link thin and flaky: one-way latency per chunk,
//! a token-bucket bandwidth cap per direction, and cuts that close every open connection at
//! random intervals. It also counts the bytes that cross it, which is how the bandwidth figures
//! in docs/bandwidth.md are measured. `tc netem` is not available to the tests, hence threads.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the emulated link behaves. `Link::default()` is a plain counting proxy.
#[derive(Clone, Debug, Default)]
pub struct Link {
    /// Added to every chunk in each direction, measured from the moment the proxy read it.
    pub latency: Duration,
    /// Bits per second per direction; None means unlimited.
    pub rate_bps: Option<u64>,
    /// Close every open connection after a random pause drawn from this range, again and again.
    pub cut_every: Option<(Duration, Duration)>,
    /// Seed for the cut timing, so a failing run can be repeated; None picks one from the clock.
    pub seed: Option<u64>,
}

/// Bytes and events seen by a proxy, totalled over all its connections.
#[derive(Debug, Default)]
pub struct Counters {
    /// Client → server bytes, counted when the proxy reads them from the client.
    pub up: AtomicU64,
    /// Server → client bytes, counted when the proxy reads them from the server.
    pub down: AtomicU64,
    pub connections: AtomicU64,
    pub cuts: AtomicU64,
}

/// A snapshot of `Counters`, so a test can subtract "before" from "after".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub up: u64,
    pub down: u64,
}

impl Bytes {
    pub fn since(self, before: Bytes) -> Bytes {
        Bytes {
            up: self.up - before.up,
            down: self.down - before.down,
        }
    }

    pub fn total(self) -> u64 {
        self.up + self.down
    }
}

/// The sockets of one proxied connection, kept so a cut (or the drop) can shut them down.
type Pair = (TcpStream, TcpStream);

/// A running proxy in front of `127.0.0.1:upstream`; stops and closes everything when dropped.
pub struct Proxy {
    port: u16,
    seed: u64,
    counters: Arc<Counters>,
    live: Arc<Mutex<Vec<Pair>>>,
    stop: Arc<AtomicBool>,
    cutting: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// The smallest pause between polls of the stop flag in the accept and cut threads.
const TICK: Duration = Duration::from_millis(5);

impl Proxy {
    pub fn start(upstream: u16, link: Link) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seed = link.seed.unwrap_or_else(clock_seed);
        let counters = Arc::new(Counters::default());
        let live = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cutting = Arc::new(AtomicBool::new(link.cut_every.is_some()));
        let mut threads = Vec::new();
        {
            let (counters, live, stop) = (counters.clone(), live.clone(), stop.clone());
            let link = link.clone();
            threads.push(std::thread::spawn(move || {
                accept_loop(listener, upstream, &link, &counters, &live, &stop)
            }));
        }
        if let Some(range) = link.cut_every {
            let (counters, live, stop) = (counters.clone(), live.clone(), stop.clone());
            let cutting = cutting.clone();
            threads.push(std::thread::spawn(move || {
                cut_loop(range, seed, &counters, &live, &stop, &cutting)
            }));
        }
        Proxy {
            port,
            seed,
            counters,
            live,
            stop,
            cutting,
            threads,
        }
    }

    /// The port clients connect to instead of the server's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The seed of the cut timing (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn bytes(&self) -> Bytes {
        Bytes {
            up: self.counters.up.load(Ordering::SeqCst),
            down: self.counters.down.load(Ordering::SeqCst),
        }
    }

    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }

    pub fn cuts(&self) -> u64 {
        self.counters.cuts.load(Ordering::SeqCst)
    }

    /// No more random cuts from now on; connections already open stay open.
    pub fn stop_cutting(&self) {
        self.cutting.store(false, Ordering::SeqCst);
    }

    /// Closes both sides of every open connection now.
    pub fn cut(&self) {
        cut_all(&self.live, &self.counters);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (a, b) in self.live.lock().unwrap().drain(..) {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos as u64) | 1
}

/// xorshift64: enough randomness for cut timing without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn accept_loop(
    listener: TcpListener,
    upstream: u16,
    link: &Link,
    counters: &Arc<Counters>,
    live: &Arc<Mutex<Vec<Pair>>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(_) => continue,
        };
        client.set_nonblocking(false).unwrap();
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        counters.connections.fetch_add(1, Ordering::SeqCst);
        live.lock()
            .unwrap()
            .push((client.try_clone().unwrap(), server.try_clone().unwrap()));
        let up = Direction {
            link: link.clone(),
            count: Counted::Up,
            counters: counters.clone(),
        };
        let down = Direction {
            count: Counted::Down,
            ..up.clone()
        };
        up.spawn(client.try_clone().unwrap(), server.try_clone().unwrap());
        down.spawn(server, client);
    }
}

/// Sleeps a random pause from `range`, then closes every open connection; until stopped.
fn cut_loop(
    (min, max): (Duration, Duration),
    seed: u64,
    counters: &Counters,
    live: &Mutex<Vec<Pair>>,
    stop: &AtomicBool,
    cutting: &AtomicBool,
) {
    let mut state = seed;
    while !stop.load(Ordering::SeqCst) && cutting.load(Ordering::SeqCst) {
        let span = (max - min).as_millis().max(1) as u64;
        let pause = min + Duration::from_millis(next_random(&mut state) % span);
        let at = Instant::now() + pause;
        while Instant::now() < at {
            if stop.load(Ordering::SeqCst) || !cutting.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(TICK);
        }
        cut_all(live, counters);
    }
}

fn cut_all(live: &Mutex<Vec<Pair>>, counters: &Counters) {
    let pairs: Vec<Pair> = live.lock().unwrap().drain(..).collect();
    if !pairs.is_empty() {
        counters.cuts.fetch_add(1, Ordering::SeqCst);
    }
    for (a, b) in pairs {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

#[derive(Clone, Copy)]
enum Counted {
    Up,
    Down,
}

/// One direction of one connection: a reader thread stamps each chunk with the time it may
/// leave, a writer thread holds it until then and paces it through the token bucket. One FIFO
/// channel per direction keeps the order.
#[derive(Clone)]
struct Direction {
    link: Link,
    count: Counted,
    counters: Arc<Counters>,
}

/// The bucket holds at most this many bytes, so a burst after a quiet spell stays short.
const BUCKET: f64 = 512.0;

impl Direction {
    fn spawn(self, mut from: TcpStream, mut to: TcpStream) {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let latency = self.link.latency;
        let (counters, count) = (self.counters, self.count);
        std::thread::spawn(move || {
            let field = match count {
                Counted::Up => &counters.up,
                Counted::Down => &counters.down,
            };
            let mut buf = [0u8; 4096];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        field.fetch_add(n as u64, Ordering::SeqCst);
                        if tx
                            .send((Instant::now() + latency, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            // The source closed (or was cut): pass the close on once the queued data is out.
        });
        let rate = self.link.rate_bps;
        std::thread::spawn(move || {
            let mut bucket = Bucket::new(rate);
            while let Ok((due, chunk)) = rx.recv() {
                sleep_until(due);
                if bucket.send(&mut to, &chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// A token bucket in bytes; with no rate it passes everything at once.
struct Bucket {
    bytes_per_sec: Option<f64>,
    tokens: f64,
    filled_at: Instant,
}

impl Bucket {
    fn new(rate_bps: Option<u64>) -> Bucket {
        Bucket {
            bytes_per_sec: rate_bps.map(|r| r as f64 / 8.0),
            tokens: BUCKET,
            filled_at: Instant::now(),
        }
    }

    /// Writes `chunk` in pieces no bigger than the bucket, waiting for tokens before each.
    fn send(&mut self, to: &mut TcpStream, chunk: &[u8]) -> std::io::Result<()> {
        let Some(rate) = self.bytes_per_sec else {
            return to.write_all(chunk);
        };
        for piece in chunk.chunks(BUCKET as usize) {
            let need = piece.len() as f64;
            loop {
                let now = Instant::now();
                let earned = now.duration_since(self.filled_at).as_secs_f64() * rate;
                self.tokens = (self.tokens + earned).min(BUCKET);
                self.filled_at = now;
                if self.tokens >= need {
                    break;
                }
                std::thread::sleep(Duration::from_secs_f64((need - self.tokens) / rate));
            }
            self.tokens -= need;
            to.write_all(piece)?;
        }
        Ok(())
    }
}
