//! Support code for the Outpost fuzz targets.
//!
//! - `codec`      — the property `decode_v5` and `decode_v311` check.
//! - `connection` — the property `connection` checks, one TCP client per input.
//! - `ws`         — the property `ws_frames` checks: the WebSocket layer, chunking-blind.
//! - [`broker`]   — the real broker, started once per fuzz process in a background thread.
//!
//! `codec`, `connection` and `ws` use only `outpost` and `std`: `tests/fuzz_regressions.rs`
//! includes them to replay the corpus under `cargo test`.

pub mod codec;
pub mod connection;
pub mod ws;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use outpost::config::{Config, SyncMode};

/// The address of this process's broker, started on first use with a fresh database.
///
/// `outpost::broker::run` does not report the port it bound, so a free port is found by
/// binding port 0 and letting it go; another process could take it in between, which start
/// up then reports as a bind error.
pub fn broker() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(start_broker)
}

fn start_broker() -> SocketAddr {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = env_logger::try_init();
    }
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port");
    let db = scratch_db();
    let config = Config {
        listen: vec![addr],
        ws_listen: Vec::new(),
        http: None,
        http_enabled: false,
        db,
        // No fsync per group commit: the database is thrown away, speed is what counts.
        sync: SyncMode::Normal,
        // Loopback clients are anonymous by default; the cheapest cost keeps
        // fuzz-made CONNECTs with a password from stalling the run.
        bcrypt_cost: 4,
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("outpost-broker".into())
        .spawn(move || {
            if let Err(e) = outpost::broker::run(config, outpost::cli::ConfigSource::default()) {
                panic!("the broker stopped: {e}");
            }
        })
        .expect("spawn the broker thread");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    addr
}

/// A database path of our own, emptied first (a previous run with the same pid may have
/// left one behind).
fn scratch_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("outpost-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch database directory");
    dir.join("outpost.db")
}
