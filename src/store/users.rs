//! User accounts: names, password hashes (made by `auth::password`), the
//! admin flag. Read and written directly, not through the group commit.

use rusqlite::{params, OptionalExtension};
use unicode_normalization::UnicodeNormalization;

use super::error::is_unique_violation;
use super::{Store, StoreError};

/// The longest user name accepted, in characters.
pub const MAX_USER_NAME_CHARS: usize = 64;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable key, for references that must survive a rename.
    pub id: i64,
    /// What the user logs in with (MQTT username, web login).
    pub name: String,
    /// bcrypt hash of the password; never the password.
    pub password_hash: String,
    /// Whether the user may administer the broker from the web pages.
    pub is_admin: bool,
    /// Unix seconds of creation, shown in listings.
    pub created_at: i64,
}

/// The form in which two user names are the same account: NFC, lower case (Unicode's
/// full mapping), NFC again (lower-casing can leave a decomposed sequence). `Ana`, `ANA`
/// and `ana` share one key, and so do the composed and decomposed spellings of `Zoë`.
pub fn name_key(name: &str) -> String {
    let lower: String = name.nfc().flat_map(char::to_lowercase).collect();
    lower.nfc().collect()
}

/// Checks that `name` may be stored: 1 to 64 characters, no control
/// characters, none of `/`, `+`, `#` (names are substituted into ACL topics
/// for `%u`, where those would change the filter's meaning).
pub fn validate_user_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > MAX_USER_NAME_CHARS {
        Some("longer than 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.contains(['/', '+', '#']) {
        Some("contains '/', '+' or '#'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidUserName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

impl Store {
    /// Creates a user under the NFC form of `name` and returns its id. A name whose
    /// [`name_key`] is taken (`ROOT` beside `root`) is [`StoreError::DuplicateUser`]: the
    /// check and the insert run in one write transaction, so two connections cannot both
    /// pass it. (Older databases may hold names that differ only in case; they keep
    /// working, and `outpost check-config` lists them.)
    pub fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<i64, StoreError> {
        let name: String = name.nfc().collect();
        validate_user_name(&name)?;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        if self.user_by_key(&name_key(&name))?.is_some() {
            return Err(StoreError::DuplicateUser(name));
        }
        let id = tx
            .prepare_cached(
                "INSERT INTO users (name, password_hash, is_admin) VALUES (?1, ?2, ?3) RETURNING id",
            )?
            .query_row(params![name, password_hash, is_admin], |r| r.get(0))
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::DuplicateUser(name.clone())
                } else {
                    e.into()
                }
            })?;
        tx.commit()?;
        Ok(id)
    }

    /// The account someone logging in as `name` means: the user of exactly that name, or
    /// else the one whose [`name_key`] matches (`Ana` finds `ana`; of names that differ
    /// only in case in an older database, the oldest).
    pub fn find_login(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        match self.find_user(name)? {
            Some(user) => Ok(Some(user)),
            None => self.user_by_key(&name_key(name)),
        }
    }

    /// The oldest user whose name has `key` as its [`name_key`]. Names are folded here,
    /// in Rust (SQLite's `lower` knows only ASCII): a scan of the names, cheap for the
    /// accounts of one gateway and done only when no name matches exactly.
    fn user_by_key(&self, key: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name FROM users ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(1)?;
            if name_key(&name) == key {
                return self.find_user(&name);
            }
        }
        Ok(None)
    }
}

impl Store {
    /// Replaces a user's password hash.
    pub fn set_password(&self, name: &str, password_hash: &str) -> Result<(), StoreError> {
        let changed = self
            .conn
            .prepare_cached("UPDATE users SET password_hash = ?2 WHERE name = ?1")?
            .execute(params![name, password_hash])?;
        expect_one(changed, name)
    }

    /// Deletes a user with its security questions and ACL rules.
    pub fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let changed = self
            .conn
            .prepare_cached("DELETE FROM users WHERE name = ?1")?
            .execute(params![name])?;
        expect_one(changed, name)
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, password_hash, is_admin, created_at FROM users ORDER BY name",
        )?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// True when at least one user may administer the broker.
    pub fn has_admin(&self) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE is_admin)")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    /// The user called `name`, if any.
    pub fn find_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, password_hash, is_admin, created_at FROM users WHERE name = ?1",
        )?;
        Ok(stmt.query_row(params![name], user_from_row).optional()?)
    }
}

/// Groups of two or more users whose names differ only in case or normalisation (possible
/// in databases made before names were compared that way), oldest first, in the database
/// at `path`, opened read-only and left as it is (no migration), for `outpost check-config`.
pub fn colliding_user_names_in(path: &std::path::Path) -> Result<Vec<Vec<String>>, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    colliding_names(&conn)
}

fn colliding_names(conn: &rusqlite::Connection) -> Result<Vec<Vec<String>>, StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM users ORDER BY id")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for name in names {
        let name = name?;
        let key = name_key(&name);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(name),
            None => groups.push((key, vec![name])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(_, group)| group)
        .filter(|group| group.len() > 1)
        .collect())
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        is_admin: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// Maps "no row changed" to [`StoreError::UnknownUser`].
fn expect_one(changed: usize, name: &str) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::UnknownUser(name.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("users.db"), SyncMode::Normal).unwrap();
        (dir, store)
    }

    #[test]
    fn crud() {
        let (_dir, store) = store();
        let id = store.add_user("alice", "h1", true).unwrap();
        store.add_user("bob", "h2", false).unwrap();
        let alice = store.find_user("alice").unwrap().unwrap();
        assert_eq!(
            (alice.id, alice.password_hash.as_str(), alice.is_admin),
            (id, "h1", true)
        );
        assert!(alice.created_at > 1_600_000_000);

        store.set_password("alice", "h3").unwrap();
        assert_eq!(
            store.find_user("alice").unwrap().unwrap().password_hash,
            "h3"
        );

        let names: Vec<_> = store
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["alice", "bob"]);

        store.delete_user("alice").unwrap();
        assert_eq!(store.find_user("alice").unwrap(), None);
        assert!(matches!(
            store.delete_user("alice"),
            Err(StoreError::UnknownUser(_))
        ));
        assert!(matches!(
            store.set_password("zed", "h"),
            Err(StoreError::UnknownUser(_))
        ));
    }

    #[test]
    fn duplicate_name_is_typed() {
        let (_dir, store) = store();
        store.add_user("alice", "h", false).unwrap();
        let err = store.add_user("alice", "h", true).unwrap_err();
        assert!(matches!(&err, StoreError::DuplicateUser(n) if n == "alice"));
        assert_eq!(err.to_string(), "user \"alice\" already exists");
    }

    #[test]
    fn names_are_unique_without_regard_to_case_or_normalisation() {
        assert_eq!(name_key("ROOT"), "root");
        assert_eq!(name_key("Zo\u{eb}"), name_key("ZO\u{45}\u{308}"));
        let (_dir, store) = store();
        store.add_user("root", "h", true).unwrap();
        let err = store.add_user("ROOT", "h", false).unwrap_err();
        assert!(matches!(&err, StoreError::DuplicateUser(n) if n == "ROOT"));
        // Stored in NFC: the decomposed spelling is found by either.
        store.add_user("Zoe\u{308}", "h", false).unwrap();
        assert!(store.find_user("Zo\u{eb}").unwrap().is_some());
        assert!(store.add_user("zo\u{eb}", "h", false).is_err());
        assert_eq!(store.find_login("Root").unwrap().unwrap().name, "root");
        assert_eq!(store.find_login("nobody").unwrap(), None);
        // An older database's names that differ only in case: exact names win, another
        // spelling finds the oldest, and the collision is reported.
        store
            .conn
            .execute(
                "INSERT INTO users (name, password_hash) VALUES ('Root', 'h2')",
                [],
            )
            .unwrap();
        assert_eq!(
            store.find_login("Root").unwrap().unwrap().password_hash,
            "h2"
        );
        assert_eq!(store.find_login("rOOT").unwrap().unwrap().name, "root");
        let path = store.conn.path().unwrap().to_owned();
        assert_eq!(
            colliding_user_names_in(std::path::Path::new(&path)).unwrap(),
            [["root", "Root"]]
        );
    }

    #[test]
    fn names_are_validated() {
        for bad in ["", "a/b", "a+", "#", "tab\there", &"x".repeat(65)] {
            assert!(
                matches!(
                    validate_user_name(bad),
                    Err(StoreError::InvalidUserName { .. })
                ),
                "{bad:?}"
            );
        }
        for good in ["a", "Zoë", "user.name@example", &"é".repeat(64)] {
            validate_user_name(good).unwrap();
        }
        let (_dir, store) = store();
        assert!(store.add_user("a/b", "h", false).is_err());
    }
}
