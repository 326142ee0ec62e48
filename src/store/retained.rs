//! Retained messages (`retained`), one per topic: set by a retained publish,
//! cleared by an empty one.

use rusqlite::{params, Transaction};

use super::{StoreError, StoredMessage};

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
