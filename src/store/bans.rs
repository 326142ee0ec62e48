//! Bans set from the web console: a client id, a user name or an address that may not
//! connect, until it is lifted or its expiry passes. Matching a CONNECT against them is
//! `auth::bans`' job; this file only stores them.

use std::fmt;
use std::str::FromStr;

use rusqlite::params;

use super::{Store, StoreError};

/// What a ban names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanKind {
    ClientId,
    /// Compared by the name's key (`name_key`), so every spelling of an account is banned.
    Username,
    /// An IP address (IPv4-mapped IPv6 addresses count as their IPv4 address).
    Address,
}

impl BanKind {
    /// The text stored in the database and used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BanKind::ClientId => "client_id",
            BanKind::Username => "username",
            BanKind::Address => "address",
        }
    }
}

impl fmt::Display for BanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BanKind::ClientId => "client id",
            BanKind::Username => "user",
            BanKind::Address => "address",
        })
    }
}

impl FromStr for BanKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_id" => Ok(BanKind::ClientId),
            "username" => Ok(BanKind::Username),
            "address" => Ok(BanKind::Address),
            other => Err(format!(
                "unknown ban kind {other:?}: expected client_id, username or address"
            )),
        }
    }
}

/// One stored ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Key for lifting it.
    pub id: i64,
    pub kind: BanKind,
    /// The client id, the user name's key or the address, as `auth::bans` normalised it.
    pub value: String,
    /// Why, as the administrator wrote it (may be empty).
    pub reason: String,
    /// The administrator who set it, for the list and the log.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it no longer applies; `None` until lifted.
    pub expires_at: Option<i64>,
}

/// A ban to store (its id and time are the store's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBan<'a> {
    pub kind: BanKind,
    pub value: &'a str,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl Store {
    /// Stores a ban and returns its id. Banning what is banned already replaces that ban
    /// (its reason, expiry and author), keeping its id.
    pub fn add_ban(&self, ban: &NewBan<'_>) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO bans (kind, value, reason, created_by, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason, \
             created_by = excluded.created_by, created_at = excluded.created_at, \
             expires_at = excluded.expires_at RETURNING id",
        )?;
        Ok(stmt.query_row(
            params![
                ban.kind.as_str(),
                ban.value,
                ban.reason,
                ban.created_by,
                ban.created_at,
                ban.expires_at
            ],
            |r| r.get(0),
        )?)
    }

    /// Every ban, expired ones included (the list shows them until lifted), by id.
    pub fn list_bans(&self) -> Result<Vec<Ban>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, value, reason, created_by, created_at, expires_at \
             FROM bans ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut bans = Vec::new();
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            bans.push(Ban {
                id: r.get(0)?,
                kind: kind.parse().map_err(|e: String| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
                value: r.get(2)?,
                reason: r.get(3)?,
                created_by: r.get(4)?,
                created_at: r.get(5)?,
                expires_at: r.get(6)?,
            });
        }
        Ok(bans)
    }

    /// Lifts the ban with `id` and returns it.
    pub fn delete_ban(&self, id: i64) -> Result<Ban, StoreError> {
        let ban = self
            .list_bans()?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or(StoreError::UnknownBan(id))?;
        self.conn
            .prepare_cached("DELETE FROM bans WHERE id = ?1")?
            .execute(params![id])?;
        Ok(ban)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    fn new(kind: BanKind, value: &str, expires_at: Option<i64>) -> NewBan<'_> {
        NewBan {
            kind,
            value,
            reason: "noisy",
            created_by: "admin",
            created_at: 1_700_000_000,
            expires_at,
        }
    }

    #[test]
    fn add_list_replace_and_lift() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bans.db"), SyncMode::Normal).unwrap();
        let a = store.add_ban(&new(BanKind::ClientId, "c1", None)).unwrap();
        let b = store
            .add_ban(&new(BanKind::Address, "10.0.0.7", Some(1_700_003_600)))
            .unwrap();
        let bans = store.list_bans().unwrap();
        assert_eq!(bans.len(), 2);
        assert_eq!(
            (bans[0].id, bans[0].kind, &*bans[0].value),
            (a, BanKind::ClientId, "c1")
        );
        assert_eq!(bans[1].expires_at, Some(1_700_003_600));

        // Banning again replaces the expiry, keeping the id.
        let again = store
            .add_ban(&new(BanKind::Address, "10.0.0.7", None))
            .unwrap();
        assert_eq!(again, b);
        assert_eq!(store.list_bans().unwrap()[1].expires_at, None);
        // The same value under another kind is another ban.
        assert_ne!(
            store.add_ban(&new(BanKind::Username, "c1", None)).unwrap(),
            a
        );

        assert_eq!(store.delete_ban(a).unwrap().value, "c1");
        assert!(matches!(store.delete_ban(a), Err(StoreError::UnknownBan(id)) if id == a));
        assert_eq!(store.list_bans().unwrap().len(), 2);
    }

    #[test]
    fn kind_text_round_trips() {
        for k in [BanKind::ClientId, BanKind::Username, BanKind::Address] {
            assert_eq!(k.as_str().parse::<BanKind>().unwrap(), k);
        }
        assert!("ip".parse::<BanKind>().is_err());
    }
}
