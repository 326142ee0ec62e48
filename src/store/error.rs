//! The store's one error type, and how SQLite failures read to an operator.

use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Everything that can go wrong in `store`.
#[derive(Debug)]
pub enum StoreError {
    /// The database could not be opened or brought to the current schema.
    Open {
        /// Named in the message so the operator knows which file to look at.
        path: PathBuf,
        /// The underlying failure; its kind picks the explanation shown.
        source: rusqlite::Error,
    },
    /// The file was written by a newer Outpost; opening it could damage it.
    TooNew {
        /// Named in the message so the operator knows which file to look at.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
        /// The newest version this build understands.
        known: i64,
    },
    /// A migration left `user_version` at an unexpected value: a bug in a
    /// migration step, caught before it is committed.
    SchemaVersion {
        /// The version the migration should have reached.
        expected: i64,
        /// The version it reached.
        found: i64,
    },
    /// A queue row was re-put with a different message id; queue rows keep
    /// their message for life, so this is a broker bug.
    QueueMessageChanged {
        /// The session whose queue row was re-put.
        client_id: String,
        /// The queue position that was re-put.
        seq: u64,
    },
    /// `add_user` for a name that is taken.
    DuplicateUser(String),
    /// A user name that does not exist.
    UnknownUser(String),
    /// A user name that may not be stored.
    InvalidUserName {
        /// The rejected name, shown back to the operator.
        name: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// An ACL rule id that does not exist.
    UnknownAclRule(i64),
    /// A ban id that does not exist.
    UnknownBan(i64),
    /// An ACL access text that is none of read, write, readwrite, deny.
    InvalidAccess(String),
    /// An empty ACL topic.
    EmptyAclTopic,
    /// `outpost backup` was pointed at the live database itself.
    BackupOntoSource(PathBuf),
    /// The backup copy could not be written, checked or put in place.
    Backup {
        /// The destination, named so the operator knows which file failed.
        path: PathBuf,
        /// What went wrong.
        source: BackupFailure,
    },
    /// The store writer thread could not be started.
    Thread(String),
    /// The broker is stopping and has closed the helper threads' connections.
    Stopping,
    /// Any other SQLite failure.
    Sqlite(rusqlite::Error),
}

/// How writing a backup copy failed.
#[derive(Debug)]
pub enum BackupFailure {
    /// SQLite refused (disk full, read-only directory, ...).
    Sqlite(rusqlite::Error),
    /// Creating, syncing or renaming the file failed.
    Io(std::io::Error),
    /// `PRAGMA quick_check` on the copy did not answer `ok`.
    Check(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, source } => {
                write!(
                    f,
                    "cannot open database {}: {}",
                    path.display(),
                    explain(source)
                )
            }
            StoreError::TooNew { path, found, known } => write!(
                f,
                "cannot open database {}: schema version {found} is newer than this build knows ({known}); upgrade Outpost",
                path.display()
            ),
            StoreError::SchemaVersion { expected, found } => write!(
                f,
                "schema migration ended at version {found}, expected {expected}"
            ),
            StoreError::QueueMessageChanged { client_id, seq } => write!(
                f,
                "queue row {seq} of client {client_id:?} was re-put with another message"
            ),
            StoreError::DuplicateUser(name) => write!(f, "user {name:?} already exists"),
            StoreError::UnknownUser(name) => write!(f, "no user named {name:?}"),
            StoreError::InvalidUserName { name, reason } => {
                write!(f, "invalid user name {name:?}: {reason}")
            }
            StoreError::UnknownAclRule(id) => write!(f, "no ACL rule with id {id}"),
            StoreError::UnknownBan(id) => write!(f, "no ban with id {id}"),
            StoreError::InvalidAccess(text) => write!(
                f,
                "invalid access {text:?}: expected read, write, readwrite or deny"
            ),
            StoreError::EmptyAclTopic => write!(f, "ACL topic must not be empty"),
            StoreError::Stopping => write!(f, "the broker is stopping"),
            StoreError::BackupOntoSource(path) => write!(
                f,
                "refusing to back up {} onto itself; name another file",
                path.display()
            ),
            StoreError::Backup { path, source } => {
                write!(f, "cannot write backup {}: ", path.display())?;
                match source {
                    BackupFailure::Sqlite(e) => f.write_str(&explain(e)),
                    BackupFailure::Io(e) => write!(f, "{e}"),
                    BackupFailure::Check(result) => {
                        write!(f, "the copy failed its integrity check: {result}")
                    }
                }
            }
            StoreError::Thread(e) => write!(f, "cannot start the store writer: {e}"),
            StoreError::Sqlite(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Open { source, .. } => Some(source),
            StoreError::Backup {
                source: BackupFailure::Sqlite(e),
                ..
            } => Some(e),
            StoreError::Backup {
                source: BackupFailure::Io(e),
                ..
            } => Some(e),
            StoreError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

/// Turns an open failure into words an operator can act on.
fn explain(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            "not an SQLite database (corrupt, or another kind of file)".into()
        }
        Some(ErrorCode::DatabaseCorrupt) => "the database file is corrupt".into(),
        Some(ErrorCode::CannotOpen) => {
            "cannot open the file (does the directory exist, and is it writable?)".into()
        }
        Some(ErrorCode::ReadOnly) => "the file or its directory is read-only".into(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "the database is locked by another process".into()
        }
        Some(ErrorCode::PermissionDenied) => "permission denied".into(),
        Some(ErrorCode::DiskFull) => "the disk is full".into(),
        _ => e.to_string(),
    }
}

/// True when `e` is a violated UNIQUE or PRIMARY KEY constraint.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// True when `e` is a violated FOREIGN KEY constraint.
impl StoreError {
    /// True when another connection held the database longer than the lock timeout
    /// (SQLITE_BUSY or SQLITE_LOCKED): nothing was changed, and trying again may work.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }
}

pub(crate) fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
    )
}
