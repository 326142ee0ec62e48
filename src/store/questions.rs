//! Security questions for password resets: one question per user, its answer
//! hashed like a password (by `auth::password`, off the loop). Read and written
//! directly by the auth workers and the web console, not through the group commit.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{Store, StoreError};

impl Store {
    /// Sets `user`'s question and answer hash, replacing any earlier one.
    pub fn set_security_question(
        &self,
        user: &str,
        question: &str,
        answer_hash: &str,
    ) -> Result<(), StoreError> {
        // IMMEDIATE: a deferred transaction that reads first cannot wait for the write
        // lock when another connection (the loop's group commit) wrote in between. Unchecked
        // (no `&mut`): the web console's workers share their connection by reference.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let user_id: Option<i64> = tx
            .prepare_cached("SELECT id FROM users WHERE name = ?1")?
            .query_row(params![user], |r| r.get(0))
            .optional()?;
        let Some(user_id) = user_id else {
            return Err(StoreError::UnknownUser(user.to_owned()));
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

    /// `user`'s question and answer hash, if the user exists and has set one.
    pub fn security_question(&self, user: &str) -> Result<Option<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT q.question, q.answer_hash FROM security_questions q
             JOIN users u ON u.id = q.user_id WHERE u.name = ?1 LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError, SyncMode};

    #[test]
    fn one_question_per_user_replaced_and_removed_with_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db"), SyncMode::Normal).unwrap();
        store.add_user("ana", "h", false).unwrap();
        assert_eq!(store.security_question("ana").unwrap(), None);
        store.set_security_question("ana", "pet?", "a1").unwrap();
        store.set_security_question("ana", "town?", "a2").unwrap();
        assert_eq!(
            store.security_question("ana").unwrap(),
            Some(("town?".into(), "a2".into()))
        );
        assert!(matches!(
            store.set_security_question("zed", "q", "a"),
            Err(StoreError::UnknownUser(_))
        ));
        store.delete_user("ana").unwrap();
        assert_eq!(store.security_question("ana").unwrap(), None);
    }
}
