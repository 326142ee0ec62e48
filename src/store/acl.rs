//! Topic access rules: per user, or pattern rules for everyone with `%u`
//! (user name) and `%c` (client id) in the topic. Evaluating them is
//! `auth`'s job; this file only stores them.

use std::fmt;
use std::str::FromStr;

use rusqlite::params;

use super::error::is_foreign_key_violation;
use super::{Store, StoreError};

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Subscribe and receive.
    Read,
    /// Publish.
    Write,
    /// Both.
    ReadWrite,
    /// Neither, overriding grants.
    Deny,
}

impl Access {
    /// The text stored in the database and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::ReadWrite => "readwrite",
            Access::Deny => "deny",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Access {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            "readwrite" => Ok(Access::ReadWrite),
            "deny" => Ok(Access::Deny),
            other => Err(StoreError::InvalidAccess(other.to_owned())),
        }
    }
}

/// One stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Key for deleting it.
    pub id: i64,
    /// The user it applies to; `None` for a pattern rule that applies to all.
    pub username: Option<String>,
    /// The topic filter, possibly with `%u` and `%c`.
    pub topic: String,
    /// What it grants.
    pub access: Access,
}

impl Store {
    /// Adds a rule and returns its id. A rule for a user that does not exist
    /// is [`StoreError::UnknownUser`]; the rule goes when its user does.
    pub fn add_acl_rule(
        &self,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> Result<i64, StoreError> {
        if topic.is_empty() {
            return Err(StoreError::EmptyAclTopic);
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO acl_rules (username, topic, access) VALUES (?1, ?2, ?3) RETURNING id",
        )?;
        stmt.query_row(params![username, topic, access.as_str()], |r| r.get(0))
            .map_err(|e| match username {
                Some(name) if is_foreign_key_violation(&e) => {
                    StoreError::UnknownUser(name.to_owned())
                }
                _ => e.into(),
            })
    }

    /// Every rule, by id.
    pub fn list_acl_rules(&self) -> Result<Vec<AclRule>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, username, topic, access FROM acl_rules ORDER BY id")?;
        let mut rows = stmt.query([])?;
        let mut rules = Vec::new();
        while let Some(r) = rows.next()? {
            rules.push(AclRule {
                id: r.get(0)?,
                username: r.get(1)?,
                topic: r.get(2)?,
                access: r.get::<_, String>(3)?.parse()?,
            });
        }
        Ok(rules)
    }

    /// Deletes the rule with `id`.
    pub fn delete_acl_rule(&self, id: i64) -> Result<(), StoreError> {
        let changed = self
            .conn
            .prepare_cached("DELETE FROM acl_rules WHERE id = ?1")?
            .execute(params![id])?;
        if changed == 0 {
            return Err(StoreError::UnknownAclRule(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    #[test]
    fn crud() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("acl.db"), SyncMode::Normal).unwrap();
        store.add_user("alice", "h", false).unwrap();
        let a = store
            .add_acl_rule(Some("alice"), "home/#", Access::ReadWrite)
            .unwrap();
        let p = store
            .add_acl_rule(None, "users/%u/%c/#", Access::Read)
            .unwrap();
        let rules = store.list_acl_rules().unwrap();
        assert_eq!(
            rules,
            [
                AclRule {
                    id: a,
                    username: Some("alice".into()),
                    topic: "home/#".into(),
                    access: Access::ReadWrite
                },
                AclRule {
                    id: p,
                    username: None,
                    topic: "users/%u/%c/#".into(),
                    access: Access::Read
                },
            ]
        );

        store.delete_acl_rule(p).unwrap();
        assert!(matches!(store.delete_acl_rule(p), Err(StoreError::UnknownAclRule(id)) if id == p));
        assert!(matches!(
            store.add_acl_rule(Some("nobody"), "x", Access::Deny),
            Err(StoreError::UnknownUser(_))
        ));
        assert!(matches!(
            store.add_acl_rule(None, "", Access::Deny),
            Err(StoreError::EmptyAclTopic)
        ));

        // A user's rules go with the user.
        store.delete_user("alice").unwrap();
        assert!(store.list_acl_rules().unwrap().is_empty());
    }

    #[test]
    fn access_text_round_trips() {
        for a in [Access::Read, Access::Write, Access::ReadWrite, Access::Deny] {
            assert_eq!(a.as_str().parse::<Access>().unwrap(), a);
        }
        assert!(matches!(
            "all".parse::<Access>(),
            Err(StoreError::InvalidAccess(_))
        ));
    }

    /// A write that waits out the lock timeout behind another connection's transaction
    /// fails as busy (the console answers 503 "try again" to that, not 500), and leaves
    /// nothing behind.
    #[test]
    fn a_write_behind_a_long_transaction_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = Store::open(&path, SyncMode::Normal).unwrap();
        let web = Store::open_with_busy_timeout(
            &path,
            SyncMode::Normal,
            std::time::Duration::from_millis(50),
        )
        .unwrap();
        holder.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = web.add_acl_rule(None, "a/#", Access::Read).unwrap_err();
        assert!(err.is_busy(), "{err}");
        holder.conn.execute_batch("COMMIT").unwrap();
        assert!(web.list_acl_rules().unwrap().is_empty());
        assert!(!StoreError::EmptyAclTopic.is_busy());
    }
}
