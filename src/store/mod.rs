//! The durable store: the SQLite connection and the group commit. All SQL in
//! Outpost lives under this module, one file per table group, each holding
//! that group's writes and reads together.
//!
//! The event loop stages [`Write`]s while it handles one turn's packets and
//! calls [`Store::commit`] once at the end of the turn, before any
//! acknowledgement is flushed (redis `beforeSleep`): one transaction, one
//! fsync, however many clients were served. Start-up reads
//! ([`Store::load_sessions`], [`Store::load_retained`],
//! [`Store::load_inflight_messages`]) bring sessions and retained messages
//! into memory; users and ACL rules ([`users`], [`acl`]) are read and written
//! directly, usually from another connection (the web thread, the user CLI).
//!
//! - `error.rs`: [`StoreError`].
//! - `backup.rs`: [`backup()`], a consistent copy of the live database.
//! - `helper.rs`: [`HelperStore`], the connections of the web and auth threads, and
//!   the clean stop that leaves the database in one file.
//! - `migrate.rs`: `schema.sql` and the version steps.
//! - `write.rs`: [`Write`], the turn's transaction and the one match that
//!   hands each write to its table group; the start-up purge of what expired.
//! - `retained.rs`: retained messages.
//! - `sessions.rs`: sessions, their subscriptions, inbound QoS 2 ids and wills.
//! - `queues.rs`: message bodies and session queues, with the orphan cleanup
//!   and the pages of a queue that lives on disk.
//! - `clients.rs`: the client records shown on the web pages.
//! - `users.rs`, `acl.rs`: accounts and topic access rules.
//! - `bans.rs`: client ids, user names and addresses that may not connect.
//! - `bridge.rs`: the bridges' forward queues.
//! - `questions.rs`: security questions for password resets.
//! - `chat.rs`: the chat service's rooms, messages and likes.

pub mod acl;
pub mod admins;
pub mod backup;
pub mod bans;
mod batch;
pub mod bridge;
pub mod chat;
pub mod clients;
pub mod error;
mod helper;
mod migrate;
mod questions;
mod queues;
mod retained;
mod sessions;
#[cfg(test)]
pub(crate) mod testing;
pub mod users;
pub mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use batch::Batch;

pub use crate::config::SyncMode;
pub use acl::{Access, AclRule};
pub use admins::AdminChange;
pub use backup::{backup, BackupSummary};
pub use bans::{Ban, BanKind, NewBan};
pub use bridge::{BridgeWrite, ForwardRow, ForwardTotals};
pub use chat::{ChatMessageRecord, ChatRoomRecord, ChatWrite, HistoryRange};
pub use clients::ClientRecord;
pub use error::StoreError;
pub use helper::{close_helpers, close_last, HelperStore};
pub use migrate::SCHEMA_VERSION;
pub use queues::{QueuedPageRow, StoredQueued};
pub use sessions::{StoredSession, StoredSubscription};
pub use users::{name_key, UserRecord};
pub use write::{StoredMessage, Write};
pub use writer::{Progress, Writer};

/// How long a statement waits for another connection's lock before failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page size of a new database file, in bytes (`PRAGMA page_size`).
const PAGE_SIZE: i64 = 1024;

/// Page cache per database connection, in KiB (`PRAGMA cache_size`).
const PAGE_CACHE_KIB: i64 = 256;

/// Writes the staged lists keep room for after a commit (about 35 KB): a busy turn's
/// batch reuses it without reallocating, while a larger one (a burst of connects stages
/// a record per client) gives its room back instead of keeping it for the broker's life.
const KEPT_CAPACITY: usize = 256;

/// One connection to the database plus the writes staged for the next commit.
pub struct Store {
    /// The connection every statement of this store runs on; prepared
    /// statements are cached on it.
    conn: Connection,
    /// Writes staged for the next commit ([`Store::commit`], or a batch handed to the
    /// [`Writer`] by [`Store::take_batch`]).
    staged: Batch,
    /// Client records (last connect and disconnect): nobody waits for them, so they
    /// ride along with the next commit or go in a batch of their own
    /// ([`Store::commit_records`]), and a CONNACK never waits for an fsync of them.
    records: Vec<Write>,
    /// The file, kept to name it in error messages.
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings it to
    /// [`SCHEMA_VERSION`], waiting up to [`DEFAULT_BUSY_TIMEOUT`] for locks.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, StoreError> {
        Self::open_with_busy_timeout(path, sync, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`Store::open`] with another lock timeout.
    pub fn open_with_busy_timeout(
        path: &Path,
        sync: SyncMode,
        busy_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(busy_timeout).map_err(open_error)?;
        // A new database gets small pages: a commit appends whole pages to the WAL, and
        // most commits change a few small rows (issue #26). No effect on an existing file.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(open_error)?;
        // The first statement that reads the file: a corrupt file fails here.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", sync.pragma())
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        // SQLite's default page cache is 2 MiB per connection; on a small gateway the
        // working set (sessions, queues, recent client records) fits in far less.
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)
            .map_err(open_error)?;
        migrate::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            staged: Batch::default(),
            records: Vec::new(),
            path: path.to_owned(),
        })
    }

    /// The file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `w` for the next [`Store::commit`].
    pub fn stage(&mut self, w: Write) {
        self.staged.push(w, false);
    }

    /// Queues a `QueuePut` that creates its row: if the row is deleted again before the
    /// batch is committed (delivered and acknowledged), neither is written.
    pub fn stage_new_row(&mut self, w: Write) {
        self.staged.push(w, true);
    }

    /// How many writes wait for the next commit (client records not counted).
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// How many writes other than message bodies and the queue rows that create them were
    /// ever staged: unchanged across a publish means it staged only its message's delivery.
    pub fn staged_others(&self) -> u64 {
        self.staged.others()
    }

    /// How many writes were ever staged: unchanged across a handler means it staged none.
    pub fn staged_total(&self) -> u64 {
        self.staged.pushed()
    }

    /// True when the staged batch holds a write outside the publish flow (a session,
    /// subscription, will or chat change): it is committed without waiting for its window.
    pub fn stages_prompt(&self) -> bool {
        self.staged.is_prompt()
    }

    /// True when the staged batch puts body `id`.
    pub fn stages_body(&self, id: u64) -> bool {
        self.staged.has_body(id)
    }

    /// Takes the staged writes, with any waiting client records, for a commit on
    /// another connection (the [`Writer`]); empty while nothing but records wait, unless
    /// `records` asks for those too.
    pub fn take_batch(&mut self, records: bool) -> Vec<Write> {
        let mut writes = Vec::new();
        let records_wait = records && !self.records.is_empty();
        if self.staged.is_empty() && !records_wait {
            return writes;
        }
        self.staged.drain_into(&mut writes);
        writes.append(&mut self.records);
        self.staged.shrink_to(KEPT_CAPACITY);
        self.records.shrink_to(KEPT_CAPACITY);
        writes
    }

    /// True when client records wait for a commit.
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// Sets how this connection's commits wait for the disk (`PRAGMA synchronous`).
    pub fn set_sync(&self, sync: SyncMode) -> Result<(), StoreError> {
        Ok(self
            .conn
            .pragma_update(None, "synchronous", sync.pragma())?)
    }

    /// Flushes the WAL and copies what it can into the database file without waiting for
    /// readers (`PRAGMA wal_checkpoint(PASSIVE)`): at `sync = "normal"`, what makes the
    /// commits since the last flush durable.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Writes `writes` in one transaction now (the [`Writer`]'s commit).
    pub fn write_now(&mut self, writes: Vec<Write>) -> Result<usize, StoreError> {
        let count = writes.len();
        if count == 0 {
            return Ok(0);
        }
        write::apply_all(&mut self.conn, writes.into_iter()).inspect_err(|e| {
            log::warn!("commit of {count} staged writes rolled back: {e}");
        })?;
        Ok(count)
    }

    /// Queues a client record for the next commit, which need not come this turn.
    /// Returns true when it is the first one waiting (the caller then arranges a
    /// [`Store::commit_records`] soon).
    pub fn stage_record(&mut self, w: Write) -> bool {
        self.records.push(w);
        self.records.len() == 1
    }

    /// True when a commit is due at the end of this turn (client records alone
    /// do not make one due).
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Writes every staged write, and any waiting client records, in one
    /// transaction and returns how many there were. Does nothing while only
    /// client records wait. On error nothing of the batch is kept, the staged
    /// writes are dropped, and the caller must answer the affected clients
    /// with failure reason codes instead of acknowledgements.
    pub fn commit(&mut self) -> Result<usize, StoreError> {
        let writes = self.take_batch(false);
        self.write_now(writes)
    }

    /// Writes the waiting client records now, with whatever else is staged.
    pub fn commit_records(&mut self) -> Result<usize, StoreError> {
        let writes = self.take_batch(true);
        self.write_now(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_twice_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.db");
        let store = Store::open(&path, SyncMode::Full).unwrap();
        store.add_user("alice", "hash", false).unwrap();
        drop(store);
        let store = Store::open(&path, SyncMode::Normal).unwrap();
        assert_eq!(store.list_users().unwrap().len(), 1);
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn corrupt_file_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0xA5u8; 8192]).unwrap();
        let err = Store::open(&path, SyncMode::Full).err().unwrap();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Open { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("not an SQLite database"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn missing_directory_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/outpost.db");
        let text = Store::open(&path, SyncMode::Full)
            .err()
            .unwrap()
            .to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("cannot open the file"), "{text}");
    }

    #[test]
    fn locked_database_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        let err = Store::open_with_busy_timeout(&path, SyncMode::Full, Duration::from_millis(50))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("locked by another process"), "{text}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Store::open(&path, SyncMode::Full).err().unwrap();
        assert!(matches!(err, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 1));
        assert!(err.to_string().contains("newer than this build knows"));
    }

    #[test]
    fn client_records_wait_for_a_commit_with_other_writes_or_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        let record = |id: &str| Write::ClientConnected {
            client_id: id.into(),
            username: None,
            address: "127.0.0.1:1".parse().unwrap(),
            protocol: 5,
            at: 1,
        };
        assert!(store.stage_record(record("a")));
        assert!(!store.stage_record(record("b")));
        assert!(!store.has_staged(), "records alone make no commit due");
        assert_eq!(store.commit().unwrap(), 0);
        assert!(store.client_records().unwrap().is_empty());
        store.stage(Write::RetainClear { topic: "t".into() });
        assert_eq!(store.commit().unwrap(), 3, "records ride along");
        assert_eq!(store.client_records().unwrap().len(), 2);
        assert!(
            store.stage_record(record("c")),
            "the first one waiting again"
        );
        assert_eq!(store.commit_records().unwrap(), 1);
        assert_eq!(store.client_records().unwrap().len(), 3);
        assert_eq!(store.commit_records().unwrap(), 0);
    }

    #[test]
    fn a_burst_of_records_gives_its_room_back_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        for i in 0..10_000 {
            store.stage_record(Write::ClientConnected {
                client_id: format!("c{i}").into(),
                username: None,
                address: "127.0.0.1:1".parse().unwrap(),
                protocol: 5,
                at: 1,
            });
        }
        assert_eq!(store.commit_records().unwrap(), 10_000);
        assert_eq!(store.client_records().unwrap().len(), 10_000);
        assert!(store.staged.capacity() <= KEPT_CAPACITY);
        assert!(store.records.capacity() <= KEPT_CAPACITY);
    }

    #[test]
    fn commit_of_nothing_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db"), SyncMode::Normal).unwrap();
        assert!(!store.has_staged());
        assert_eq!(store.commit().unwrap(), 0);
    }
}
