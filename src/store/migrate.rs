//! Schema versions: creating a new database from `schema.sql` and stepping an
//! older one up to [`SCHEMA_VERSION`].

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes; `schema.sql` ends by setting it.
pub const SCHEMA_VERSION: i64 = 7;

/// The newest schema in full, applied to a new (version 0) database.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Step migrations: `MIGRATIONS[i]` takes a database from version `i + 1` to
/// `i + 2` and ends with `PRAGMA user_version = i + 2`. Add a step here (and
/// an old-database fixture test) whenever `schema.sql` changes.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/v2-chat.sql"),
    include_str!("migrations/v3-wills.sql"),
    include_str!("migrations/v4-bridge.sql"),
    include_str!("migrations/v5-chat-members.sql"),
    include_str!("migrations/v6-bans.sql"),
    include_str!("migrations/v7-chat-read.sql"),
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
    use crate::store::{Store, SyncMode};

    /// Makes a database from an old version's fixture in `dir`, opens it (which upgrades
    /// it) and checks it reached the current version.
    fn upgraded(dir: &tempfile::TempDir, name: &str, fixture: &str) -> Store {
        let path = dir.path().join(name);
        Connection::open(&path)
            .unwrap()
            .execute_batch(fixture)
            .unwrap();
        let store = Store::open(&path, SyncMode::Normal).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        store
    }

    /// Each `fixtures/vN.sql` is an old database; opening it must bring it to the current
    /// version with its rows intact.
    #[test]
    fn version_1_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v1.db", include_str!("fixtures/v1.sql"));
        let alice = store.find_user("alice").unwrap().unwrap();
        assert!(alice.is_admin);
        assert_eq!(store.list_acl_rules().unwrap().len(), 1);
        assert_eq!(store.load_retained().unwrap().len(), 1);
        assert_eq!(store.load_sessions().unwrap()[0].subscriptions.len(), 1);
        // The new tables are there and empty.
        assert!(store.load_chat_rooms().unwrap().is_empty());
        assert_eq!(store.max_chat_message_id().unwrap(), 0);
    }

    /// The steps and `schema.sql` describe the same tables: a migrated database and a new
    /// one have the same schema.
    #[test]
    fn migrated_and_new_schemas_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let olds: Vec<_> = [
            include_str!("fixtures/v1.sql"),
            include_str!("fixtures/v2.sql"),
            include_str!("fixtures/v3.sql"),
            include_str!("fixtures/v4.sql"),
            include_str!("fixtures/v5.sql"),
            include_str!("fixtures/v6.sql"),
        ]
        .iter()
        .enumerate()
        .map(|(i, fixture)| {
            let old = dir.path().join(format!("v{}.db", i + 1));
            Connection::open(&old)
                .unwrap()
                .execute_batch(fixture)
                .unwrap();
            old
        })
        .collect();
        let new = dir.path().join("new.db");
        let schema = |path: &Path| {
            let store = Store::open(path, SyncMode::Normal).unwrap();
            let mut stmt = store
                .conn
                .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>()
        };
        let new = schema(&new);
        for old in &olds {
            assert_eq!(schema(old), new, "{}", old.display());
        }
    }

    /// A version-2 database (chat, no wills) upgrades with its rows, its queued message
    /// among them.
    #[test]
    fn version_2_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v2.db", include_str!("fixtures/v2.sql"));
        let sessions = store.load_sessions().unwrap();
        assert_eq!((sessions[0].queued, sessions[0].will.is_none()), (1, true));
        assert_eq!(
            store.load_queue_page("c1", 0, 10).unwrap()[0]
                .message
                .payload,
            b"queued"
        );
        assert_eq!(store.load_chat_rooms().unwrap().len(), 1);
        assert_eq!(store.max_chat_message_id().unwrap(), 1);
    }

    /// A version-3 database (chat and wills, no bridges) upgrades with its rows; the
    /// bridge tables come empty.
    #[test]
    fn version_3_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v3.db", include_str!("fixtures/v3.sql"));
        assert!(store.find_user("alice").unwrap().is_some());
        assert_eq!(store.load_sessions().unwrap()[0].subscriptions.len(), 1);
        assert_eq!(store.load_chat_rooms().unwrap().len(), 1);
        assert_eq!(store.forward_totals("any").unwrap().count, 0);
        assert!(store.load_bridge_inbound("any").unwrap().is_empty());
    }

    /// A version-4 database (no chat members or blocks) upgrades with its rows; the room
    /// has no members until someone subscribes to it.
    #[test]
    fn version_4_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v4.db", include_str!("fixtures/v4.sql"));
        assert!(store.find_user("alice").unwrap().is_some());
        assert_eq!(store.load_chat_rooms().unwrap().len(), 1);
        assert_eq!(store.max_chat_message_id().unwrap(), 1);
        assert!(store.load_chat_members().unwrap().is_empty());
        assert!(store.load_chat_blocks().unwrap().is_empty());
    }

    /// A version-5 database (no bans) upgrades with its rows; nobody is banned.
    #[test]
    fn version_5_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v5.db", include_str!("fixtures/v5.sql"));
        assert!(store.find_user("alice").unwrap().is_some());
        assert_eq!(store.load_chat_members().unwrap().len(), 1);
        assert_eq!(store.load_sessions().unwrap()[0].subscriptions.len(), 1);
        assert!(store.list_bans().unwrap().is_empty());
    }

    /// A version-6 database (no read markers) upgrades with its rows: members, blocks and
    /// bans kept, no markers yet.
    #[test]
    fn version_6_database_upgrades_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(&dir, "v6.db", include_str!("fixtures/v6.sql"));
        assert_eq!(store.load_chat_members().unwrap().len(), 1);
        assert_eq!(
            store.load_chat_blocks().unwrap(),
            [("alice".into(), "mallory".into())]
        );
        assert_eq!(store.list_bans().unwrap().len(), 1);
        assert!(store.load_chat_read().unwrap().is_empty());
    }
}
