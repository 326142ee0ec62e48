//! Security questions: one question per user with its answer hashed like a password
//! (by `auth::password`, off the loop). Read and written directly, not through the group
//! commit.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{Store, StoreError};

impl Store {
    /// Sets `name`'s security question, replacing any earlier one.
    pub fn set_security_question(
        &self,
        name: &str,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), StoreError> {
        // IMMEDIATE: a deferred transaction that reads first cannot wait for the write
        // lock when another connection (the loop's group commit) wrote in between.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let user_id: Option<i64> = tx
            .prepare_cached("SELECT id FROM users WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?;
        let Some(user_id) = user_id else {
            return Err(StoreError::UnknownUser(name.to_owned()));
        };
        tx.prepare_cached("DELETE FROM security_questions WHERE user_id = ?1")?
            .execute(params![user_id])?;
        tx.prepare_cached(
            "INSERT INTO security_questions (user_id, question, answer_hash) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![user_id, question, answer_hash])?;
        tx.commit()?;
        Ok(())
    }

    /// `name`'s security question, if one is set.
    pub fn security_question(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT q.question FROM security_questions q JOIN users u ON u.id = q.user_id \
             WHERE u.name = ?1 ORDER BY q.question LIMIT 1",
        )?;
        Ok(stmt.query_row(params![name], |r| r.get(0)).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError, SyncMode};

    #[test]
    fn one_question_per_user_replaced_on_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db"), SyncMode::Normal).unwrap();
        store.add_user("alice", "h", false).unwrap();
        assert_eq!(store.security_question("alice").unwrap(), None);
        store
            .set_security_question("alice", "First pet?", "a1")
            .unwrap();
        store
            .set_security_question("alice", "Home town?", "a2")
            .unwrap();
        assert_eq!(
            store.security_question("alice").unwrap().as_deref(),
            Some("Home town?")
        );
        assert!(matches!(
            store.set_security_question("bob", "q", "a"),
            Err(StoreError::UnknownUser(_))
        ));
        store.delete_user("alice").unwrap();
        assert_eq!(store.security_question("alice").unwrap(), None);
    }
}
