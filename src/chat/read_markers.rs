//! Read markers: how far each user has read each room and direct conversation, so unread
//! counts agree on every browser and device. A page sets its marker with `read`; the
//! `rooms` reply gives each room's unread count from it. The store is on an SD card, so a
//! marker move is kept in memory and written with the others of its [`FLUSH`] window in
//! one commit — a marker moved a hundred times in the window is written once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::codec::Reply;
use super::rooms::unavailable;
use super::{ChatError, ChatService, Context};
use crate::store::{ChatWrite, Write};

/// How long marker moves gather before they are written.
pub const FLUSH: Duration = Duration::from_secs(30);
/// Unread messages are counted up to this many (`u999` means 999 or more).
pub const UNREAD_MAX: u32 = 999;

/// Every user's markers, and the moves not yet written.
#[derive(Debug, Default)]
pub struct ReadMarkers {
    /// User → room id → the newest message id they have read there.
    marks: HashMap<Box<str>, HashMap<i64, i64>>,
    /// (user, room id) of the markers moved since the last write.
    moved: HashSet<(Box<str>, i64)>,
    /// When the moves are written.
    due: Option<Instant>,
}

impl ReadMarkers {
    /// The markers as stored: (user, room id, message id).
    pub fn load(rows: Vec<(String, i64, i64)>) -> ReadMarkers {
        let mut markers = ReadMarkers::default();
        for (user, room_id, id) in rows {
            markers
                .marks
                .entry(user.into())
                .or_default()
                .insert(room_id, id);
        }
        markers
    }

    pub fn get(&self, user: &str, room_id: i64) -> Option<i64> {
        self.marks.get(user)?.get(&room_id).copied()
    }

    /// Moves `user`'s marker in `room_id` forward to `id` (never back); the marker now.
    pub fn advance(&mut self, user: &str, room_id: i64, id: i64, now: Instant) -> i64 {
        let mark = self
            .marks
            .entry(user.into())
            .or_default()
            .entry(room_id)
            .or_insert(0);
        if id > *mark {
            *mark = id;
            self.moved.insert((user.into(), room_id));
            self.due.get_or_insert(now + FLUSH);
        }
        *mark
    }

    /// When the moved markers are to be written, if any moved.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Once the window is over, the writes of every marker that moved in it.
    pub fn take_due(&mut self, now: Instant) -> Vec<Write> {
        if self.due.is_none_or(|due| due > now) {
            return Vec::new();
        }
        self.due = None;
        std::mem::take(&mut self.moved)
            .into_iter()
            .filter_map(|(user, room_id)| {
                let message_id = self.get(&user, room_id)?;
                Some(Write::Chat(ChatWrite::Read {
                    username: user.into(),
                    room_id,
                    message_id,
                }))
            })
            .collect()
    }
}

impl ChatService {
    /// `read <room|@peer> <id>`: `user` has seen the room up to message `id`. The reply,
    /// `ok read <room> <marker>`, reaches all of the user's pages (they read
    /// `chat/u/<user>/#`), so the others clear their unread marks too.
    pub(super) fn read(
        &mut self,
        user: &str,
        room: &str,
        id: i64,
        now: Instant,
    ) -> Result<Reply, ChatError> {
        let room_id = match room.strip_prefix('@') {
            Some(peer) => self.direct_room(user, peer)?,
            None => self.room_id(room)?,
        };
        let newest = self.rooms.newest(room_id);
        let mark = self.markers.advance(user, room_id, id.min(newest), now);
        Ok(Reply::ok(&format!("read {room} {mark}")))
    }

    /// How many messages of room `room_id` (whose newest id is `newest`) `user` has not
    /// read: those after the marker, by others, up to [`UNREAD_MAX`]. `None` for a room
    /// never marked; a conversation never marked counts all the peer's messages. No query
    /// when nothing came after the marker.
    pub(super) fn unread(
        &self,
        user: &str,
        room_id: i64,
        newest: i64,
        direct: bool,
        ctx: &Context<'_>,
    ) -> Result<Option<u32>, ChatError> {
        let after = match self.markers.get(user, room_id) {
            Some(mark) => mark,
            None if direct => 0,
            None => return Ok(None),
        };
        if after >= newest {
            return Ok(Some(0));
        }
        ctx.store
            .chat_unread(room_id, after, user, UNREAD_MAX)
            .map(Some)
            .map_err(unavailable)
    }

    /// `blocks`: the users whose direct messages `user` refuses, `ok 2 blocked` then
    /// their names on one line.
    pub(super) fn list_blocks(&self, user: &str) -> Reply {
        let mut names: Vec<&str> = self
            .blocks
            .iter()
            .filter(|(blocker, _)| &**blocker == user)
            .map(|(_, blocked)| &**blocked)
            .collect();
        names.sort_unstable();
        let reply = Reply::ok(&format!("{} blocked", names.len()));
        if names.is_empty() {
            reply
        } else {
            reply.line(&names.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_move_forward_and_are_written_once_per_window() {
        let mut m = ReadMarkers::default();
        let t0 = Instant::now();
        for id in 1..=100 {
            assert_eq!(m.advance("ana", 1, id, t0), id);
        }
        assert_eq!(m.advance("ana", 1, 50, t0), 100, "never back");
        m.advance("bob", 1, 7, t0);
        assert_eq!(m.due(), Some(t0 + FLUSH));
        assert!(m.take_due(t0).is_empty(), "not before the window ends");
        let mut writes = m.take_due(t0 + FLUSH);
        writes.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(writes.len(), 2, "one write per moved marker: {writes:?}");
        assert!(matches!(
            &writes[0],
            Write::Chat(ChatWrite::Read { username, room_id: 1, message_id: 100 }) if username == "ana"
        ));
        assert_eq!(m.due(), None);
        m.advance("ana", 1, 100, t0);
        assert_eq!(m.due(), None, "no move, no write");
    }
}
