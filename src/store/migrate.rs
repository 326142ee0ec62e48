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
    // 1 → 2: durable wills.
    "CREATE TABLE wills (
         client_id  TEXT    PRIMARY KEY REFERENCES sessions (client_id)
                            ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
         topic      TEXT    NOT NULL,
         payload    BLOB    NOT NULL,
         qos        INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
         retain     INTEGER NOT NULL CHECK (retain IN (0, 1)),
         properties BLOB    NOT NULL,
         expires_at INTEGER,
         delay      INTEGER NOT NULL CHECK (delay BETWEEN 0 AND 4294967295)
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

    /// Every table with its columns (name, type, not null, default, primary key) and every
    /// index, in a form that does not depend on how the SQL was laid out.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut tables = conn
            .prepare(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let names: Vec<(String, String)> = tables
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (kind, name) in names {
            out.push(format!("{kind} {name}"));
            if kind == "table" {
                let mut cols = conn
                    .prepare(&format!("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{name}')"))
                    .unwrap();
                let rows = cols
                    .query_map([], |r| {
                        Ok(format!(
                            "  {} {} {} {:?} {}",
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?
                        ))
                    })
                    .unwrap();
                out.extend(rows.map(Result::unwrap));
            }
        }
        out
    }

    #[test]
    fn the_version_1_fixture_migrates_to_the_shape_of_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("v1.db");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
            &old,
        )
        .unwrap();
        let mut migrated = Connection::open(&old).unwrap();
        let found: i64 = migrated
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(found, 1, "the fixture is a version-1 database");
        migrate(&mut migrated, &old).unwrap();
        let mut fresh = Connection::open(dir.path().join("new.db")).unwrap();
        migrate(&mut fresh, &dir.path().join("new.db")).unwrap();
        assert_eq!(shape(&migrated), shape(&fresh));
        let version: i64 = migrated
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
