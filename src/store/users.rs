//! User accounts: names, password hashes (made by `auth::password`), the
//! admin flag. Read and written directly, not through the group commit.

use rusqlite::{params, OptionalExtension};

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
    /// Creates a user and returns its id; a taken name is
    /// [`StoreError::DuplicateUser`].
    pub fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<i64, StoreError> {
        validate_user_name(name)?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO users (name, password_hash, is_admin) VALUES (?1, ?2, ?3) RETURNING id",
        )?;
        stmt.query_row(params![name, password_hash, is_admin], |r| r.get(0))
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::DuplicateUser(name.to_owned())
                } else {
                    e.into()
                }
            })
    }

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
