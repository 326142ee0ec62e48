//! Changes to accounts that must never leave the broker without an administrator:
//! promoting, demoting and deleting users. Each is one statement that also checks that
//! another administrator remains, so two consoles acting at once cannot both remove one.

use rusqlite::params;

use super::{Store, StoreError};

/// What an account change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Done,
    /// Refused: it would have removed the last administrator.
    LastAdmin,
}

impl Store {
    /// Makes `name` an administrator or takes that away, but never from the last one.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<AdminChange, StoreError> {
        let id = self.user_id(name)?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE users SET is_admin = ?2 WHERE id = ?1 \
                 AND (?2 OR EXISTS (SELECT 1 FROM users WHERE is_admin AND id <> ?1))",
            )?
            .execute(params![id, admin])?;
        Ok(if changed == 0 {
            AdminChange::LastAdmin
        } else {
            AdminChange::Done
        })
    }

    /// Deletes `name` with its questions and rules, unless it is the last administrator.
    pub fn delete_user_keeping_an_admin(&self, name: &str) -> Result<AdminChange, StoreError> {
        let id = self.user_id(name)?;
        let changed = self
            .conn
            .prepare_cached(
                "DELETE FROM users WHERE id = ?1 \
                 AND (NOT is_admin OR EXISTS (SELECT 1 FROM users WHERE is_admin AND id <> ?1))",
            )?
            .execute(params![id])?;
        Ok(if changed == 0 {
            AdminChange::LastAdmin
        } else {
            AdminChange::Done
        })
    }

    /// The id of the user `find_user` finds under `name` (with its rules for names).
    fn user_id(&self, name: &str) -> Result<i64, StoreError> {
        self.find_user(name)?
            .map(|u| u.id)
            .ok_or_else(|| StoreError::UnknownUser(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    #[test]
    fn the_last_admin_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("admins.db"), SyncMode::Normal).unwrap();
        store.add_user("root", "h", true).unwrap();
        store.add_user("ana", "h", false).unwrap();
        assert_eq!(
            store.set_admin("root", false).unwrap(),
            AdminChange::LastAdmin
        );
        assert_eq!(
            store.delete_user_keeping_an_admin("root").unwrap(),
            AdminChange::LastAdmin
        );
        assert_eq!(store.set_admin("ana", true).unwrap(), AdminChange::Done);
        assert_eq!(store.set_admin("root", false).unwrap(), AdminChange::Done);
        assert!(!store.find_user("root").unwrap().unwrap().is_admin);
        assert_eq!(
            store.delete_user_keeping_an_admin("ana").unwrap(),
            AdminChange::LastAdmin
        );
        assert_eq!(
            store.delete_user_keeping_an_admin("root").unwrap(),
            AdminChange::Done
        );
        assert!(store.find_user("root").unwrap().is_none());
        assert!(matches!(
            store.set_admin("nobody", true),
            Err(StoreError::UnknownUser(_))
        ));
    }
}
