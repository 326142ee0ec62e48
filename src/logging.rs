//! Logging to standard error at the configured level, changeable while the broker runs.
//!
//! Under systemd, standard error is the journal: lines then carry their syslog priority
//! (`<3>` … `<7>`) and no timestamp of their own, so `journalctl -p warning` works and the
//! journal's timestamps are the only ones. `RUST_LOG`, when set, chooses the filter
//! (per-module filters included) and the config's `log_level` is ignored.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{Level, LevelFilter};

use crate::config::LogLevel;

/// True when `RUST_LOG` chose the filter at start-up, so reloads leave it alone.
static FROM_ENV: AtomicBool = AtomicBool::new(false);

/// Installs the logger; call once, before the broker starts.
pub fn init(level: LogLevel) {
    let mut builder = env_logger::Builder::new();
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => {
            builder.parse_filters(&spec);
            FROM_ENV.store(true, Ordering::Relaxed);
        }
        // Let everything through the logger's own filter; `log::max_level` does the
        // filtering, because that is what `set_level` can change later.
        _ => {
            builder.filter_level(LevelFilter::Trace);
        }
    }
    if stderr_is_journal() {
        builder.format(|buf, record| {
            writeln!(
                buf,
                "<{}>{}: {}",
                priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    builder.init();
    set_level(level);
}

/// Applies `level`, unless `RUST_LOG` chose the filter; returns whether it did.
pub fn set_level(level: LogLevel) -> bool {
    if FROM_ENV.load(Ordering::Relaxed) {
        return false;
    }
    log::set_max_level(level.filter());
    true
}

/// The syslog priority journald reads from a `<N>` prefix.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for the stream it connected; a child whose
/// standard error was redirected elsewhere inherits the variable, hence the comparison.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|m| dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslog_levels() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Trace), 7);
    }
}
