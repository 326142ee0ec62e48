//! Room members and their presence on the wire: joining by subscribing to a room's own
//! topic, the `leave` and `members` requests, and the coalesced announcements
//! (`j`/`q`/`o`/`f` lines) that `presence` decides — to a room, or for a user's direct
//! presence to each peer's conversation topic.

use std::time::Instant;

use super::codec::inbox;
use super::codec::{self, Reply};
use super::presence::{Change, Changes};
use super::{ChatError, ChatService};
use crate::accounts::rules;
use crate::auth::acl::USER_REPLIES;
use crate::service::{Effect, Outgoing, SessionEvent};
use crate::store::{ChatWrite, Write};

impl ChatService {
    /// The broker's word on a connected session: presence and joins follow from it.
    pub fn session_event(
        &mut self,
        event: SessionEvent<'_>,
        now: Instant,
        unix: i64,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        let room_of = |filter: &str| {
            filter
                .strip_prefix(codec::ROOM_PREFIX)
                .filter(|r| codec::valid_room_name(r))
                .map(str::to_owned)
        };
        match event {
            SessionEvent::Subscribed {
                session,
                username: Some(user),
                filter,
            } => {
                if let Some(room) = room_of(filter) {
                    self.presence.subscribed(session, user, &room, now);
                    self.join(&room, user, now, unix, &mut out);
                } else if direct_inbox_owner(filter) == Some(user) {
                    self.presence
                        .subscribed(session, user, &format!("@{user}"), now);
                }
            }
            SessionEvent::Subscribed { username: None, .. } => {}
            SessionEvent::Unsubscribed { session, filter } => {
                if let Some(room) = room_of(filter) {
                    self.presence.unsubscribed(session, &room, now);
                } else if let Some(owner) = direct_inbox_owner(filter) {
                    self.presence
                        .unsubscribed(session, &format!("@{owner}"), now);
                }
            }
            SessionEvent::Offline { session } => self.presence.offline(session, now),
        }
        out
    }

    /// When the broker should call [`Self::due`]: the nearest of the presence window and
    /// the read markers' write, when earlier than the callback already asked for.
    pub fn wake_at(&mut self) -> Option<Instant> {
        let next = [self.presence.due(), self.markers.due()]
            .into_iter()
            .flatten()
            .min()?;
        if self.scheduled.is_some_and(|at| at <= next) {
            return None;
        }
        self.scheduled = Some(next);
        Some(next)
    }

    /// What is due at `now`: the read markers moved in a window that is over (staged in
    /// one commit), and the presence announcements of a window that is over — one QoS 0
    /// PUBLISH per room with changes, a line per kind, `j`oined, `q`uit (left),
    /// `o`nline, of`f`line, each with its names; a user's direct presence goes to the
    /// topic of each conversation they have, as `o <user>` or `f <user>`.
    pub fn due(&mut self, now: Instant) -> Vec<Effect> {
        if self.scheduled.is_some_and(|at| at <= now) {
            self.scheduled = None;
        }
        let mut out: Vec<Effect> = self
            .markers
            .take_due(now)
            .into_iter()
            .map(Effect::Stage)
            .collect();
        for (room, changes) in self.presence.take_due(now) {
            let payload = presence_lines(&changes).into_bytes();
            log::debug!(
                "chat presence in {room}: {}",
                String::from_utf8_lossy(&payload).replace('\n', " / ")
            );
            let topics = match room.strip_prefix('@') {
                Some(user) => self
                    .rooms
                    .peers(user)
                    .iter()
                    .map(|peer| inbox(peer, user))
                    .collect(),
                None => vec![codec::room_topic(&room)],
            };
            for topic in topics {
                out.push(Effect::Announce(Outgoing {
                    topic,
                    payload: payload.clone(),
                    correlation_data: None,
                    publisher: None,
                }));
            }
        }
        out
    }

    /// Makes `user` a member of `room` if it exists and they are not one yet.
    pub(super) fn join(
        &mut self,
        room: &str,
        user: &str,
        now: Instant,
        unix: i64,
        out: &mut Vec<Effect>,
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let room_id = r.id;
        if self.members.entry(room_id).or_default().insert(user.into()) {
            out.push(Effect::Stage(Write::Chat(ChatWrite::Member {
                room_id,
                username: user.to_owned(),
                at: unix,
                joined: true,
            })));
            self.presence.membership(room, user, Change::Joined, now);
        }
    }

    /// `leave <room>`: no longer a member (still online while a session subscribes).
    pub(super) fn leave(
        &mut self,
        user: &str,
        room: &str,
        now: Instant,
        unix: i64,
        out: &mut Vec<Effect>,
    ) -> Result<Reply, ChatError> {
        let room_id = self.room_id(room)?;
        let removed = self
            .members
            .get_mut(&room_id)
            .is_some_and(|m| m.remove(user));
        if removed {
            out.push(Effect::Stage(Write::Chat(ChatWrite::Member {
                room_id,
                username: user.to_owned(),
                at: unix,
                joined: false,
            })));
            self.presence.membership(room, user, Change::Left, now);
        }
        Ok(Reply::ok(&format!("left {room}")))
    }

    /// `members <room>`: `o` and the members online, `f` and the others. `members @peer`:
    /// the two of a direct conversation, online when receiving their direct messages.
    pub(super) fn list_members(&self, me: &str, room: &str) -> Result<Reply, ChatError> {
        let mut online = Vec::new();
        let mut offline = Vec::new();
        let mut sort = |user: &str, online_in: &str| {
            if self.presence.is_online(online_in, user) {
                online.push(user.to_owned());
            } else {
                offline.push(user.to_owned());
            }
        };
        if let Some(peer) = room.strip_prefix('@') {
            if rules::check_username(peer).is_err() || peer == me {
                return Err(ChatError::UnknownUser);
            }
            for user in [me, peer] {
                sort(user, &format!("@{user}"));
            }
        } else {
            let room_id = self.room_id(room)?;
            for user in self.members.get(&room_id).into_iter().flatten() {
                sort(user, room);
            }
        }
        online.sort_unstable();
        offline.sort_unstable();
        let mut reply = Reply::ok(&codec::count(online.len() + offline.len(), "member"));
        if !online.is_empty() {
            reply = reply.line(&format!("o {}", online.join(" ")));
        }
        if !offline.is_empty() {
            reply = reply.line(&format!("f {}", offline.join(" ")));
        }
        Ok(reply)
    }

    /// True when `user` is a member of room `room_id`.
    pub(super) fn is_member(&self, room_id: i64, user: &str) -> bool {
        self.members.get(&room_id).is_some_and(|m| m.contains(user))
    }

    /// A new room's first members: whoever already subscribes to it (its creator only if
    /// subscribed: sending is not joining).
    pub(super) fn first_members(
        &mut self,
        room: &str,
        now: Instant,
        unix: i64,
        out: &mut Vec<Effect>,
    ) {
        let users: Vec<String> = self.presence.online_in(room).map(str::to_owned).collect();
        for user in users {
            self.join(room, &user, now, unix, out);
        }
    }

    pub(super) fn room_id(&self, room: &str) -> Result<i64, ChatError> {
        if !codec::valid_room_name(room) {
            return Err(ChatError::BadRoomName);
        }
        self.rooms
            .get(room)
            .map(|r| r.id)
            .ok_or(ChatError::UnknownRoom)
    }
}

/// The user whose direct messages `filter` receives in full (`chat/u/<user>/#`,
/// `chat/u/<user>/d/+` or `chat/u/<user>/d/#`): a session subscribed to it is online for
/// direct messages.
fn direct_inbox_owner(filter: &str) -> Option<&str> {
    let rest = filter.strip_prefix(USER_REPLIES)?;
    let (user, tail) = rest.split_once('/')?;
    matches!(tail, "#" | "d/+" | "d/#").then_some(user)
}

/// `j ana bob\no ana bob\nf cy`: one line per kind of change, in that order.
fn presence_lines(changes: &Changes) -> String {
    let mut text = String::new();
    let mut last = None;
    for (change, user) in changes {
        if last != Some(*change) {
            if last.is_some() {
                text.push('\n');
            }
            text.push(change.letter());
            last = Some(*change);
        }
        text.push(' ');
        text.push_str(user);
    }
    text
}
