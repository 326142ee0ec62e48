//! Schema versions: creating a new database from `schema.sql` and stepping an
//! older one up to [`SCHEMA_VERSION`].

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes; `schema.sql` ends by setting it.
pub const SCHEMA_VERSION: i64 = 2;

/// The newest schema in full, applied to a new (version 0) database.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Step migrations: `MIGRATIONS[i]` takes a database from version `i + 1` to
/// `i + 2` and ends with `PRAGMA user_version = i + 2`. Add a step here (and
/// an old-database fixture test) whenever `schema.sql` changes.
const MIGRATIONS: &[&str] = &[
    // 1 → 2: the bridges' forward queues.
    "CREATE TABLE bridge_queue (
        bridge     TEXT    NOT NULL,
        seq        INTEGER NOT NULL CHECK (seq >= 0),
        topic      TEXT    NOT NULL,
        payload    BLOB    NOT NULL,
        qos        INTEGER NOT NULL CHECK (qos BETWEEN 1 AND 2),
        retain     INTEGER NOT NULL CHECK (retain IN (0, 1)),
        properties BLOB    NOT NULL,
        expires_at INTEGER,
        packet_id  INTEGER CHECK (packet_id BETWEEN 1 AND 65535),
        state      INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
        PRIMARY KEY (bridge, seq)
    ) WITHOUT ROWID;
    CREATE TABLE bridge_qos2_in (
        bridge    TEXT    NOT NULL,
        packet_id INTEGER NOT NULL CHECK (packet_id BETWEEN 1 AND 65535),
        PRIMARY KEY (bridge, packet_id)
    ) WITHOUT ROWID;
    PRAGMA user_version = 2;",
];

/// Brings the database behind `conn` to [`SCHEMA_VERSION`] in one transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_error)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found < 0 {
        return Err(StoreError::SchemaVersion {
            expected: SCHEMA_VERSION,
            found,
        });
    }
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        log::info!(
            "creating schema version {SCHEMA_VERSION} in {}",
            path.display()
        );
        tx.execute_batch(SCHEMA).map_err(open_error)?;
    } else {
        log::info!(
            "migrating {} from schema version {found} to {SCHEMA_VERSION}",
            path.display()
        );
        for step in MIGRATIONS
            .iter()
            .skip(usize::try_from(found - 1).unwrap_or(0))
        {
            tx.execute_batch(step).map_err(open_error)?;
        }
    }
    let reached: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_error)?;
    if reached != SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            expected: SCHEMA_VERSION,
            found: reached,
        });
    }
    tx.commit().map_err(open_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_upgraded_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        conn.execute(
            "INSERT INTO sessions (client_id, expiry_interval) VALUES ('kept', 60)",
            [],
        )
        .unwrap();
        drop(conn);
        let store = super::super::Store::open(&path, crate::store::SyncMode::Normal).unwrap();
        assert_eq!(store.load_sessions().unwrap()[0].client_id, "kept");
        assert_eq!(store.forward_totals("any").unwrap().count, 0);
    }
}
