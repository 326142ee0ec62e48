//! Persistent sessions (`sessions`) and what belongs to each: its
//! subscriptions (`subscriptions`), the inbound QoS 2 ids not yet released
//! (`qos2_received`) and its will (`wills`). Deleting a session cascades to
//! all of them and to its queue (`store::queues`).

use rusqlite::{params, Transaction};

use super::{StoreError, StoredMessage};

/// [`super::Write::SessionPut`]: creates the session or updates its fields.
pub(super) fn put(
    tx: &Transaction<'_>,
    client_id: &str,
    expiry_interval: u32,
    username: Option<&str>,
    disconnected_at: Option<i64>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO sessions (client_id, expiry_interval, username, disconnected_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id) DO UPDATE SET
             expiry_interval = excluded.expiry_interval,
             username = excluded.username, disconnected_at = excluded.disconnected_at",
    )?
    .execute(params![
        client_id,
        expiry_interval,
        username,
        disconnected_at
    ])?;
    Ok(())
}

/// [`super::Write::SessionDelete`]: the session row; the foreign keys delete
/// the rest.
pub(super) fn delete(tx: &Transaction<'_>, client_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM sessions WHERE client_id = ?1")?
        .execute(params![client_id])?;
    Ok(())
}

/// [`super::Write::SubscriptionPut`]: creates or replaces one subscription.
pub(super) fn subscribe(
    tx: &Transaction<'_>,
    client_id: &str,
    filter: &str,
    options: u8,
    identifier: Option<u32>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO subscriptions (client_id, filter, options, identifier)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id, filter) DO UPDATE SET
             options = excluded.options, identifier = excluded.identifier",
    )?
    .execute(params![client_id, filter, options, identifier])?;
    Ok(())
}

/// [`super::Write::SubscriptionDelete`].
pub(super) fn unsubscribe(
    tx: &Transaction<'_>,
    client_id: &str,
    filter: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2")?
        .execute(params![client_id, filter])?;
    Ok(())
}

/// [`super::Write::Qos2Received`]; receiving the same id again changes nothing.
pub(super) fn qos2_received(
    tx: &Transaction<'_>,
    client_id: &str,
    packet_id: u16,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO qos2_received (client_id, packet_id) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![client_id, packet_id])?;
    Ok(())
}

/// [`super::Write::Qos2Released`].
pub(super) fn qos2_released(
    tx: &Transaction<'_>,
    client_id: &str,
    packet_id: u16,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM qos2_received WHERE client_id = ?1 AND packet_id = ?2")?
        .execute(params![client_id, packet_id])?;
    Ok(())
}

/// [`super::Write::WillPut`]: sets or replaces the session's will.
pub(super) fn put_will(
    tx: &Transaction<'_>,
    client_id: &str,
    msg: &StoredMessage,
    delay: u32,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO wills (client_id, topic, payload, qos, retain, properties,
             expires_at, delay)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (client_id) DO UPDATE SET topic = excluded.topic,
             payload = excluded.payload, qos = excluded.qos, retain = excluded.retain,
             properties = excluded.properties, expires_at = excluded.expires_at,
             delay = excluded.delay",
    )?
    .execute(params![
        client_id,
        msg.topic,
        msg.payload,
        msg.qos,
        msg.retain,
        msg.properties,
        msg.expires_at,
        delay
    ])?;
    Ok(())
}

/// [`super::Write::WillDelete`].
pub(super) fn delete_will(tx: &Transaction<'_>, client_id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM wills WHERE client_id = ?1")?
        .execute(params![client_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{commit, msg, queued, session, store};
    use crate::store::Write;

    #[test]
    fn session_delete_cascades() {
        let (_dir, mut store) = store();
        commit(
            &mut store,
            vec![
                session("c1"),
                Write::SubscriptionPut {
                    client_id: "c1".into(),
                    filter: "#".into(),
                    options: 1,
                    identifier: None,
                },
                Write::Qos2Received {
                    client_id: "c1".into(),
                    packet_id: 1,
                },
                Write::MessagePut {
                    id: 1,
                    msg: msg("m", None),
                },
                queued("c1", 1, 1),
                Write::WillPut {
                    client_id: "c1".into(),
                    msg: msg("will", None),
                    delay: 5,
                },
            ],
        )
        .unwrap();
        commit(
            &mut store,
            vec![Write::SessionDelete {
                client_id: "c1".into(),
            }],
        )
        .unwrap();
        assert!(store.load_sessions().unwrap().is_empty());
        let rows: i64 = store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM subscriptions) + (SELECT count(*) FROM session_queue)
                      + (SELECT count(*) FROM qos2_received) + (SELECT count(*) FROM messages)
                      + (SELECT count(*) FROM wills)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 0);
    }
}
