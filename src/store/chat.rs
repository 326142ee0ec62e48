//! The chat service's tables: rooms, messages, likes, members, blocks and read markers. Writes go through the
//! group commit as [`ChatWrite`]s; the reads are the start-up load of rooms and
//! the history and like lookups, each one index search.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{Store, StoreError};

/// One change to chat state, staged inside [`super::Write::Chat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatWrite {
    /// A room created on first use.
    Room {
        /// The broker's id for it, referenced by its messages.
        id: i64,
        /// What its topic names.
        name: String,
        /// The user who sent its first message.
        created_by: String,
        /// Unix seconds.
        at: i64,
    },
    /// A message sent to a room.
    Message {
        /// The broker's id, increasing across rooms.
        id: i64,
        /// Its room.
        room_id: i64,
        /// The authenticated user name of the sender.
        sender: String,
        /// Unix seconds.
        at: i64,
        /// The text as sent.
        body: String,
    },
    /// A user liked (or, with `liked` false, stopped liking) a message.
    Like {
        /// Which message.
        message_id: i64,
        /// Who.
        username: String,
        /// True to add the like, false to remove it.
        liked: bool,
    },
    /// A user joined (or, with `joined` false, left) a room.
    Member {
        room_id: i64,
        username: String,
        /// Unix seconds.
        at: i64,
        joined: bool,
    },
    /// `blocker` stopped (or, with `blocks` false, resumed) taking direct messages from
    /// `blocked`.
    Block {
        blocker: String,
        blocked: String,
        blocks: bool,
    },
    /// `username` has read room `room_id` up to message `message_id` (a marker only moves
    /// forward; the service stages the newest of a flush window, not every move).
    Read {
        username: String,
        room_id: i64,
        message_id: i64,
    },
}

/// A room as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRoomRecord {
    pub id: i64,
    pub name: String,
    /// How many messages it holds.
    pub messages: u64,
    /// Its newest message id, 0 when it has none.
    pub newest: i64,
}

/// One message of a history page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessageRecord {
    pub id: i64,
    pub sender: String,
    /// Unix seconds.
    pub sent_at: i64,
    pub body: String,
    pub likes: u32,
    /// Who likes it, names joined by `,` (empty when nobody does).
    pub likers: String,
}

/// Which part of a room's history a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRange {
    /// The newest messages.
    Last,
    /// Messages with a greater id (catching up).
    After(i64),
    /// Messages with a smaller id (paging back).
    Before(i64),
}

impl Store {
    /// Every room, with its message count (one pass over the room index).
    pub fn load_chat_rooms(&self) -> Result<Vec<ChatRoomRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.name, (SELECT count(*) FROM chat_messages m WHERE m.room_id = r.id),
                    (SELECT coalesce(max(id), 0) FROM chat_messages m WHERE m.room_id = r.id)
             FROM chat_rooms r ORDER BY r.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ChatRoomRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                messages: r.get(2)?,
                newest: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every room membership, as (room id, user name).
    pub fn load_chat_members(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT room_id, username FROM chat_members")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every block, as (blocker, blocked).
    pub fn load_chat_blocks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blocker, blocked FROM chat_blocks")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every read marker, as (user name, room id, message id).
    pub fn load_chat_read(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT username, room_id, message_id FROM chat_read")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many messages of room `room_id` after `after` were sent by others than `user`,
    /// counting at most `max` (one range search of the room's index, stopped at `max`).
    pub fn chat_unread(
        &self,
        room_id: i64,
        after: i64,
        user: &str,
        max: u32,
    ) -> Result<u32, StoreError> {
        let mut stmt = self.conn.prepare_cached(UNREAD_SQL)?;
        Ok(stmt.query_row(params![room_id, after, user, max], |r| r.get(0))?)
    }

    /// The highest chat message id handed out, 0 when there is none.
    pub fn max_chat_message_id(&self) -> Result<i64, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM chat_messages")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    /// Up to `limit` messages of a room in `range`, oldest first.
    pub fn chat_history(
        &self,
        room_id: i64,
        range: HistoryRange,
        limit: usize,
    ) -> Result<Vec<ChatMessageRecord>, StoreError> {
        let bound = match range {
            HistoryRange::Last => i64::MAX,
            HistoryRange::Before(id) | HistoryRange::After(id) => id,
        };
        let sql = history_sql(range);
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![room_id, bound, limit as i64], |r| {
            Ok(ChatMessageRecord {
                id: r.get(0)?,
                sender: r.get(1)?,
                sent_at: r.get(2)?,
                body: r.get(3)?,
                likes: r.get(4)?,
                likers: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            })
        })?;
        let mut page: Vec<ChatMessageRecord> = rows.collect::<Result<_, _>>()?;
        if !matches!(range, HistoryRange::After(_)) {
            page.reverse();
        }
        Ok(page)
    }

    /// The room and like count of a message, if it exists.
    pub fn chat_message_room(&self, id: i64) -> Result<Option<(i64, u32)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT room_id, likes FROM chat_messages WHERE id = ?1")?;
        Ok(stmt
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// True when `username` likes message `id`.
    pub fn chat_liked(&self, id: i64, username: &str) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM chat_likes WHERE message_id = ?1 AND username = ?2")?;
        Ok(stmt
            .query_row(params![id, username], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

/// Unread messages of a room after a marker, by others, at most ?4 of them.
const UNREAD_SQL: &str = "SELECT count(*) FROM (SELECT 1 FROM chat_messages
     WHERE room_id = ?1 AND id > ?2 AND sender <> ?3 LIMIT ?4)";

/// The query of a history page: one range search on `chat_messages_room`, and for each
/// liked message one search of the likes' primary key for the names.
fn history_sql(range: HistoryRange) -> &'static str {
    match range {
        HistoryRange::Last | HistoryRange::Before(_) => {
            "SELECT id, sender, sent_at, body, likes,
                    CASE WHEN likes > 0 THEN (SELECT group_concat(username, ',')
                        FROM chat_likes WHERE message_id = m.id) END
             FROM chat_messages m
             WHERE room_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        }
        HistoryRange::After(_) => {
            "SELECT id, sender, sent_at, body, likes,
                    CASE WHEN likes > 0 THEN (SELECT group_concat(username, ',')
                        FROM chat_likes WHERE message_id = m.id) END
             FROM chat_messages m
             WHERE room_id = ?1 AND id > ?2 ORDER BY id ASC LIMIT ?3"
        }
    }
}

/// Runs the SQL of one chat write inside the turn's transaction. A like that is already
/// there (or a removal of one that is not) changes nothing, so the count stays exact.
pub(super) fn apply(tx: &Transaction<'_>, w: &ChatWrite) -> Result<(), StoreError> {
    match w {
        ChatWrite::Room {
            id,
            name,
            created_by,
            at,
        } => {
            tx.prepare_cached(
                "INSERT INTO chat_rooms (id, name, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, name, created_by, at])?;
        }
        ChatWrite::Message {
            id,
            room_id,
            sender,
            at,
            body,
        } => {
            tx.prepare_cached(
                "INSERT INTO chat_messages (id, room_id, sender, sent_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, room_id, sender, at, body])?;
        }
        ChatWrite::Like {
            message_id,
            username,
            liked,
        } => {
            let sql = if *liked {
                "INSERT OR IGNORE INTO chat_likes (message_id, username) VALUES (?1, ?2)"
            } else {
                "DELETE FROM chat_likes WHERE message_id = ?1 AND username = ?2"
            };
            let changed = tx
                .prepare_cached(sql)?
                .execute(params![message_id, username])?;
            if changed > 0 {
                let delta: i64 = if *liked { 1 } else { -1 };
                tx.prepare_cached("UPDATE chat_messages SET likes = likes + ?2 WHERE id = ?1")?
                    .execute(params![message_id, delta])?;
            }
        }
        ChatWrite::Member {
            room_id,
            username,
            at,
            joined,
        } => {
            if *joined {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO chat_members (room_id, username, joined_at)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![room_id, username, at])?;
            } else {
                tx.prepare_cached("DELETE FROM chat_members WHERE room_id = ?1 AND username = ?2")?
                    .execute(params![room_id, username])?;
            }
        }
        ChatWrite::Block {
            blocker,
            blocked,
            blocks,
        } => {
            let sql = if *blocks {
                "INSERT OR IGNORE INTO chat_blocks (blocker, blocked) VALUES (?1, ?2)"
            } else {
                "DELETE FROM chat_blocks WHERE blocker = ?1 AND blocked = ?2"
            };
            tx.prepare_cached(sql)?.execute(params![blocker, blocked])?;
        }
        ChatWrite::Read {
            username,
            room_id,
            message_id,
        } => {
            tx.prepare_cached(
                "INSERT INTO chat_read (username, room_id, message_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username, room_id) DO UPDATE
                 SET message_id = max(message_id, excluded.message_id)",
            )?
            .execute(params![username, room_id, message_id])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SyncMode, Write};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chat.db"), SyncMode::Normal).unwrap();
        (dir, store)
    }

    fn message(id: i64, room_id: i64, body: &str) -> Write {
        Write::Chat(ChatWrite::Message {
            id,
            room_id,
            sender: "ana".into(),
            at: 1_700_000_000 + id,
            body: body.into(),
        })
    }

    fn room(id: i64, name: &str) -> Write {
        Write::Chat(ChatWrite::Room {
            id,
            name: name.into(),
            created_by: "ana".into(),
            at: 1_700_000_000,
        })
    }

    #[test]
    fn rooms_messages_and_pages() {
        let (_dir, mut store) = store();
        // The message comes before its room in the batch: the key is checked at COMMIT.
        store.stage(message(1, 1, "one"));
        store.stage(room(1, "general"));
        store.stage(room(2, "camp"));
        for id in 2..=10 {
            store.stage(message(id, 1 + id % 2, &format!("m{id}")));
        }
        store.commit().unwrap();
        let rooms = store.load_chat_rooms().unwrap();
        assert_eq!(
            rooms
                .iter()
                .map(|r| (r.name.as_str(), r.messages))
                .collect::<Vec<_>>(),
            [("general", 6), ("camp", 4)]
        );
        assert_eq!(store.max_chat_message_id().unwrap(), 10);
        let ids = |range, limit| {
            store
                .chat_history(1, range, limit)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(HistoryRange::Last, 3), [6, 8, 10]);
        assert_eq!(ids(HistoryRange::After(1), 2), [2, 4]);
        assert_eq!(ids(HistoryRange::Before(5), 10), [1, 2, 4]);
        assert_eq!(ids(HistoryRange::After(10), 10), Vec::<i64>::new());
        let page = store.chat_history(1, HistoryRange::Last, 1).unwrap();
        assert_eq!(
            (page[0].sender.as_str(), page[0].body.as_str()),
            ("ana", "m10")
        );
    }

    /// A page is a range search on the (room, id) index, never a scan or a sort, so it
    /// costs the same in a room of a million messages as in a room of ten.
    #[test]
    fn history_pages_search_the_room_index() {
        let (_dir, store) = store();
        for range in [
            HistoryRange::Last,
            HistoryRange::After(1),
            HistoryRange::Before(9),
        ] {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {}", history_sql(range)))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(params![1, 5, 20], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            // The page's range search, and the likers' search of the likes' key.
            assert_eq!(plan.len(), 3, "{range:?}: {plan:?}");
            assert!(
                plan[0].starts_with("SEARCH m USING INDEX chat_messages_room (room_id=? AND id")
                    && !plan
                        .iter()
                        .any(|p| p.contains("TEMP B-TREE") || p.contains("SCAN")),
                "{range:?}: {plan:?}"
            );
            assert!(
                plan[2].starts_with("SEARCH chat_likes USING PRIMARY KEY (message_id=?)"),
                "{range:?}: {plan:?}"
            );
        }
        let mut stmt = store
            .conn
            .prepare("EXPLAIN QUERY PLAN SELECT room_id, likes FROM chat_messages WHERE id = ?1")
            .unwrap();
        let plan: String = stmt.query_row([1], |r| r.get(3)).unwrap();
        assert!(plan.contains("INTEGER PRIMARY KEY"), "{plan}");
    }

    #[test]
    fn likes_count_once_per_user() {
        let (_dir, mut store) = store();
        store.stage(room(1, "general"));
        store.stage(message(1, 1, "hi"));
        store.commit().unwrap();
        let like = |user: &str, liked| {
            Write::Chat(ChatWrite::Like {
                message_id: 1,
                username: user.into(),
                liked,
            })
        };
        for w in [like("ana", true), like("ana", true), like("bo", true)] {
            store.stage(w);
        }
        store.commit().unwrap();
        assert_eq!(store.chat_message_room(1).unwrap(), Some((1, 2)));
        assert!(store.chat_liked(1, "ana").unwrap());
        store.stage(like("ana", false));
        store.stage(like("zed", false));
        store.commit().unwrap();
        assert_eq!(store.chat_message_room(1).unwrap(), Some((1, 1)));
        assert!(!store.chat_liked(1, "ana").unwrap());
        assert_eq!(store.chat_message_room(2).unwrap(), None);
    }

    /// Unread counts search the room's index from the marker and stop at the cap; markers
    /// only move forward.
    #[test]
    fn unread_counts_and_read_markers() {
        let (_dir, mut store) = store();
        store.stage(room(1, "general"));
        for id in 1..=6 {
            store.stage(message(id, 1, "m"));
        }
        store.stage(Write::Chat(ChatWrite::Message {
            id: 7,
            room_id: 1,
            sender: "bob".into(),
            at: 1_700_000_007,
            body: "hi".into(),
        }));
        let read = |id| {
            Write::Chat(ChatWrite::Read {
                username: "bob".into(),
                room_id: 1,
                message_id: id,
            })
        };
        store.stage(read(3));
        store.commit().unwrap();
        store.stage(read(2));
        store.commit().unwrap();
        assert_eq!(store.load_chat_read().unwrap(), [("bob".into(), 1, 3)]);
        assert_eq!(store.chat_unread(1, 3, "bob", 999).unwrap(), 3);
        assert_eq!(store.chat_unread(1, 3, "bob", 2).unwrap(), 2);
        assert_eq!(store.chat_unread(1, 0, "ana", 999).unwrap(), 1);
        assert_eq!(store.load_chat_rooms().unwrap()[0].newest, 7);
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {UNREAD_SQL}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params![1, 3, "bob", 9], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX chat_messages_room (room_id=? AND id>?)")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_message_for_a_missing_room_fails_the_commit() {
        let (_dir, mut store) = store();
        store.stage(message(1, 9, "lost"));
        assert!(store.commit().is_err());
        assert_eq!(store.max_chat_message_id().unwrap(), 0);
    }
}
