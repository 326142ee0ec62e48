//! Connections that helper threads (the web console's workers, the auth workers) keep
//! between uses, and the clean stop: [`close_helpers`] closes them all, whatever the threads
//! are doing, so that [`close_last`] is the process's last connection. SQLite folds the WAL
//! back into the database file on that last close and removes `-wal` and `-shm`: a stopped
//! broker leaves one file that holds everything and can be copied alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use rusqlite::Connection;

use super::{Store, StoreError, SyncMode};

/// A helper's connection: `None` before its first use and after [`close_helpers`].
type Slot = Mutex<Option<Store>>;

/// Every helper connection of the process, for [`close_helpers`].
static HELPERS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());
/// Set by [`close_helpers`]: no helper opens its database again.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// A helper thread's connection, opened on first use and closed by [`close_helpers`].
pub struct HelperStore {
    slot: Arc<Slot>,
    db: PathBuf,
    sync: SyncMode,
}

impl HelperStore {
    /// A handle that opens the database at `db` when it is first used: an unused helper
    /// costs no SQLite memory.
    pub fn lazy(db: &Path, sync: SyncMode) -> HelperStore {
        let slot = Arc::new(Mutex::new(None));
        let mut helpers = lock(&HELPERS);
        helpers.retain(|h| h.strong_count() > 0);
        helpers.push(Arc::downgrade(&slot));
        HelperStore {
            slot,
            db: db.to_owned(),
            sync,
        }
    }

    /// A handle whose database is opened now, so that a bad database fails at start.
    pub fn open(db: &Path, sync: SyncMode) -> Result<HelperStore, StoreError> {
        let helper = HelperStore::lazy(db, sync);
        *lock(&helper.slot) = Some(Store::open(db, sync)?);
        Ok(helper)
    }

    /// Runs `f` on the connection, opening it first when needed. Fails when the database
    /// cannot be opened (the next call tries again) or the broker is stopping.
    pub fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> Result<R, StoreError> {
        let mut slot = lock(&self.slot);
        if CLOSED.load(Ordering::Acquire) {
            return Err(StoreError::Stopping);
        }
        if slot.is_none() {
            *slot = Some(Store::open(&self.db, self.sync)?);
        }
        Ok(f(slot.as_mut().expect("opened above")))
    }
}

/// Closes every helper's connection, each after the use it is in finishes; from now on
/// [`HelperStore::with`] answers [`StoreError::Stopping`].
pub fn close_helpers() {
    CLOSED.store(true, Ordering::Release);
    let helpers = std::mem::take(&mut *lock(&HELPERS));
    for slot in helpers.iter().filter_map(Weak::upgrade) {
        drop(lock(&slot).take());
    }
}

/// The clean stop's last step, once every other connection of the process is closed:
/// opens the database, checkpoints the whole WAL into it and closes, which removes `-wal`
/// and `-shm`. Returns whether they are gone (not when another process has the
/// database open, or a connection here was left open).
pub fn close_last(db: &Path) -> Result<bool, StoreError> {
    let open_error = |source| StoreError::Open {
        path: db.to_owned(),
        source,
    };
    let conn = Connection::open(db).map_err(open_error)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(open_error)?;
    conn.close().map_err(|(_, e)| open_error(e))?;
    let beside = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name).exists()
    };
    Ok(!beside("-wal") && !beside("-shm"))
}

/// Locks `m` even when a thread panicked holding it: the data it guards stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    // close_helpers is for the whole process; tests/clean_stop.rs drives it in the binary.
    #[test]
    fn the_last_close_leaves_the_database_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("one.db");
        let broker = Store::open(&db, SyncMode::Normal).unwrap();
        let helper = HelperStore::lazy(&db, SyncMode::Normal);
        helper
            .with(|s| s.add_user("alice", "hash", true).unwrap())
            .unwrap();
        drop(broker);
        assert!(
            dir.path().join("one.db-wal").exists(),
            "the helper holds it"
        );
        drop(helper);
        assert!(close_last(&db).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["one.db"]);
        let reopened = Store::open(&db, SyncMode::Normal).unwrap();
        assert!(reopened.has_admin().unwrap());
    }
}
