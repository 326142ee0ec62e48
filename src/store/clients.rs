//! Client records (`client_records`): the last connect and disconnect of
//! every client id, for the web pages. Written through
//! [`super::Write::ClientConnected`] and [`super::Write::ClientDisconnected`],
//! usually as records that wait for a commit ([`Store::stage_record`]).

use std::net::SocketAddr;

use rusqlite::{params, OptionalExtension, Transaction};

use super::{Store, StoreError};

/// What is known of one client id's last connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id the record is kept under.
    pub client_id: String,
    /// As authenticated on the last connect, if any.
    pub username: Option<String>,
    /// The peer address of the last connect.
    pub address: String,
    /// The MQTT protocol level of the last connect (4 or 5).
    pub protocol: u8,
    /// Unix seconds of the last connect.
    pub connected_at: i64,
    /// Unix seconds of the disconnect; `None` while connected (or if the
    /// broker stopped before it could record one).
    pub disconnected_at: Option<i64>,
    /// Why it disconnected, in words.
    pub disconnect_reason: Option<String>,
}

impl Store {
    /// Unix seconds of `client_id`'s last recorded connect.
    pub fn connected_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT connected_at FROM client_records WHERE client_id = ?1")?;
        Ok(stmt.query_row([client_id], |r| r.get(0)).optional()?)
    }

    /// Unix seconds of `client_id`'s last recorded disconnect (`None` while connected or
    /// never recorded).
    pub fn disconnected_at(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT disconnected_at FROM client_records WHERE client_id = ?1")?;
        Ok(stmt
            .query_row([client_id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten())
    }

    /// Every client record, most recent connect first.
    pub fn client_records(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT client_id, username, address, protocol, connected_at,
                    disconnected_at, disconnect_reason
             FROM client_records ORDER BY connected_at DESC, client_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ClientRecord {
                client_id: r.get(0)?,
                username: r.get(1)?,
                address: r.get(2)?,
                protocol: r.get(3)?,
                connected_at: r.get(4)?,
                disconnected_at: r.get(5)?,
                disconnect_reason: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// [`super::Write::ClientConnected`]: a new record, or a reconnect that clears
/// the last disconnect.
pub(super) fn connected(
    tx: &Transaction<'_>,
    client_id: &str,
    username: Option<&str>,
    address: SocketAddr,
    protocol: u8,
    at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO client_records (client_id, username, address, protocol, connected_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (client_id) DO UPDATE SET username = excluded.username,
             address = excluded.address, protocol = excluded.protocol,
             connected_at = excluded.connected_at,
             disconnected_at = NULL, disconnect_reason = NULL",
    )?
    .execute(params![
        client_id,
        username,
        address.to_string(),
        protocol,
        at
    ])?;
    Ok(())
}

/// [`super::Write::ClientDisconnected`].
pub(super) fn disconnected(
    tx: &Transaction<'_>,
    client_id: &str,
    at: i64,
    reason: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE client_records SET disconnected_at = ?2, disconnect_reason = ?3
         WHERE client_id = ?1",
    )?
    .execute(params![client_id, at, reason])?;
    Ok(())
}
