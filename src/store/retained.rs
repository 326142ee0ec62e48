//! Retained messages (`retained`), one per topic: set by a retained publish,
//! cleared by an empty one.

use rusqlite::{params, Transaction};

use super::{Store, StoreError, StoredMessage};

impl Store {
    /// Every retained message, by topic.
    pub fn load_retained(&self) -> Result<Vec<StoredMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT topic, payload, qos, properties, expires_at FROM retained ORDER BY topic",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredMessage {
                topic: r.get(0)?,
                payload: r.get(1)?,
                qos: r.get(2)?,
                retain: true,
                properties: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// [`super::Write::RetainSet`]: `msg` becomes the retained message of its topic.
pub(super) fn set(tx: &Transaction<'_>, msg: &StoredMessage) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO retained (topic, payload, qos, properties, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload,
             qos = excluded.qos, properties = excluded.properties,
             expires_at = excluded.expires_at",
    )?
    .execute(params![
        msg.topic,
        msg.payload,
        msg.qos,
        msg.properties,
        msg.expires_at
    ])?;
    Ok(())
}

/// [`super::Write::RetainClear`]: `topic` keeps no retained message.
pub(super) fn clear(tx: &Transaction<'_>, topic: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM retained WHERE topic = ?1")?
        .execute(params![topic])?;
    Ok(())
}

/// Deletes the retained messages that expired before `now`; returns how many.
pub(super) fn purge_expired(tx: &Transaction<'_>, now: i64) -> Result<usize, StoreError> {
    Ok(tx
        .prepare_cached("DELETE FROM retained WHERE expires_at < ?1")?
        .execute(params![now])?)
}
