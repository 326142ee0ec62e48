//! `outpost backup`: a consistent copy of the database while the broker runs, through
//! SQLite's online backup API.
//!
//! The whole database is copied in one backup step, inside one read transaction on the
//! source: in WAL mode that transaction sees one committed state and does not block the
//! broker's writers, so the copy is consistent however busy the broker is (a step-wise
//! copy would restart each time the broker commits). The copy is written next to the
//! destination as `NAME.partial`, checked with `PRAGMA quick_check`, switched to a
//! rollback journal so it is one self-contained file, synced and renamed into place: a
//! file at the destination is always a whole backup.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::error::BackupFailure;
use super::{StoreError, DEFAULT_BUSY_TIMEOUT};

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Size of the copy.
    pub bytes: u64,
    /// The copy's `user_version`, which the broker that restores it must know.
    pub schema_version: i64,
}

/// Copies the database at `source` to `dest`, replacing `dest` if it exists. The copy is
/// readable by its owner only: it holds password hashes.
pub fn backup(source: &Path, dest: &Path) -> Result<BackupSummary, StoreError> {
    if same_file(source, dest) {
        return Err(StoreError::BackupOntoSource(dest.to_owned()));
    }
    let src = open_source(source)?;
    let partial = partial_path(dest);
    let result = copy(&src, &partial).and_then(|summary| {
        finish(&partial, dest).map_err(BackupFailure::Io)?;
        Ok(summary)
    });
    result.map_err(|source| {
        let _ = fs::remove_file(&partial);
        StoreError::Backup {
            path: dest.to_owned(),
            source,
        }
    })
}

/// Opens the live database read-only; a missing file is an error, not a new database.
fn open_source(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)
        .map_err(open_error)?;
    // Touch the file now so that "not a database" is reported as such.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(open_error)?;
    Ok(conn)
}

/// Copies every page of `src` into a new file at `partial` and checks the result.
fn copy(src: &Connection, partial: &Path) -> Result<BackupSummary, BackupFailure> {
    let _ = fs::remove_file(partial);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(BackupFailure::Io)?;
    let sqlite = BackupFailure::Sqlite;
    let mut dst = Connection::open(partial).map_err(sqlite)?;
    {
        let backup = Backup::new(src, &mut dst).map_err(sqlite)?;
        let deadline = Instant::now() + DEFAULT_BUSY_TIMEOUT;
        loop {
            match backup.step(-1).map_err(sqlite)? {
                StepResult::Done => break,
                // Only a lock held elsewhere makes a whole-database step stop early.
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    return Err(BackupFailure::Sqlite(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the database stayed locked".into()),
                    )))
                }
            }
        }
    }
    // The copy carries the source's WAL flag; a rollback journal keeps it one file.
    dst.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))
        .map_err(sqlite)?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sqlite)?;
    if check != "ok" {
        return Err(BackupFailure::Check(check));
    }
    let schema_version = dst
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite)?;
    dst.close().map_err(|(_, e)| BackupFailure::Sqlite(e))?;
    let bytes = fs::metadata(partial).map_err(BackupFailure::Io)?.len();
    Ok(BackupSummary {
        bytes,
        schema_version,
    })
}

/// Syncs the finished copy and renames it over `dest`, then syncs the directory so the
/// rename survives a power cut.
fn finish(partial: &Path, dest: &Path) -> io::Result<()> {
    File::open(partial)?.sync_all()?;
    fs::rename(partial, dest)?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// `dest` with `.partial` appended to its file name.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// True when both paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Access, Store, SyncMode, SCHEMA_VERSION};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copy_holds_the_data_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = Store::open(&live, SyncMode::Full).unwrap();
        store.add_user("alice", "hash", true).unwrap();
        store
            .add_acl_rule(Some("alice"), "a/#", Access::ReadWrite)
            .unwrap();

        let copy = dir.path().join("copy.db");
        let summary = backup(&live, &copy).unwrap();
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        assert_eq!(summary.bytes, fs::metadata(&copy).unwrap().len());
        let mode = fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!partial_path(&copy).exists());
        // One self-contained file: no WAL beside it, rollback journal in the header.
        assert!(!dir.path().join("copy.db-wal").exists());

        let restored = Store::open(&copy, SyncMode::Full).unwrap();
        let users = restored.list_users().unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "alice");
        assert_eq!(restored.list_acl_rules().unwrap().len(), 1);
        drop(store);
    }

    #[test]
    fn an_existing_copy_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = Store::open(&live, SyncMode::Full).unwrap();
        let copy = dir.path().join("copy.db");
        backup(&live, &copy).unwrap();
        store.add_user("bob", "hash", false).unwrap();
        backup(&live, &copy).unwrap();
        let restored = Store::open(&copy, SyncMode::Full).unwrap();
        assert_eq!(restored.list_users().unwrap().len(), 1);
    }

    #[test]
    fn refuses_to_copy_onto_itself() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        Store::open(&live, SyncMode::Full).unwrap();
        let err = backup(&live, &dir.path().join(".").join("live.db")).unwrap_err();
        assert!(matches!(err, StoreError::BackupOntoSource(_)), "{err}");
        assert!(err.to_string().contains("onto itself"), "{err}");
    }

    #[test]
    fn missing_source_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("none.db");
        let err = backup(&live, &dir.path().join("copy.db")).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("none.db"), "{err}");
        assert!(!live.exists());
        assert!(!dir.path().join("copy.db").exists());
    }

    #[test]
    fn unwritable_destination_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        Store::open(&live, SyncMode::Full).unwrap();
        let dest = dir.path().join("no/such/dir/copy.db");
        let err = backup(&live, &dest).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cannot write backup "), "{text}");
        assert!(text.contains("no/such/dir/copy.db"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}
