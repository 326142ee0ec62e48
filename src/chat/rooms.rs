//! Rooms: created on first use, sending a message, the room list, history pages.

use std::collections::HashMap;

use super::codec::{self, Reply};
use super::reply::ReplyTo;
use super::{ChatError, ChatService, Context, RoomCreation};
use crate::service::{Effect, Outgoing, Request};
use crate::store::{ChatRoomRecord, ChatWrite, HistoryRange, StoreError, Write};

/// One room as the loop keeps it (the messages themselves stay in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: i64,
    pub messages: u64,
    /// Its newest message id (0 when empty): unread counts need no query when a reader's
    /// marker is there.
    pub newest: i64,
}

/// Every room, by name; room ids by number for likes.
#[derive(Debug, Default)]
pub struct Rooms {
    by_name: HashMap<Box<str>, Room>,
    names: HashMap<i64, Box<str>>,
    last_id: i64,
    /// User → the users they have a direct conversation with (who hears their presence).
    peers: HashMap<Box<str>, Vec<Box<str>>>,
}

impl Rooms {
    pub fn load(records: Vec<ChatRoomRecord>) -> Rooms {
        let mut rooms = Rooms::default();
        for r in records {
            rooms.last_id = rooms.last_id.max(r.id);
            rooms.names.insert(r.id, r.name.as_str().into());
            rooms.add_peers(&r.name);
            rooms.by_name.insert(
                r.name.into_boxed_str(),
                Room {
                    id: r.id,
                    messages: r.messages,
                    newest: r.newest,
                },
            );
        }
        rooms
    }

    pub fn get(&self, name: &str) -> Option<&Room> {
        self.by_name.get(name)
    }

    pub fn name(&self, id: i64) -> Option<&str> {
        self.names.get(&id).map(|n| &**n)
    }

    /// Message `message_id` is the newest of room `id`.
    pub fn count_message(&mut self, id: i64, message_id: i64) {
        if let Some(r) = self.names.get(&id).and_then(|n| self.by_name.get_mut(n)) {
            r.messages += 1;
            r.newest = message_id;
        }
    }

    /// The newest message id of room `id`, 0 when it has none.
    pub fn newest(&self, id: i64) -> i64 {
        self.name(id)
            .and_then(|n| self.by_name.get(n))
            .map_or(0, |r| r.newest)
    }

    /// The users `user` has a direct conversation with.
    pub fn peers(&self, user: &str) -> &[Box<str>] {
        self.peers.get(user).map_or(&[], |p| p.as_slice())
    }

    pub(super) fn create(&mut self, name: &str) -> i64 {
        self.last_id += 1;
        let id = self.last_id;
        self.names.insert(id, name.into());
        self.add_peers(name);
        self.by_name.insert(
            name.into(),
            Room {
                id,
                messages: 0,
                newest: 0,
            },
        );
        id
    }

    fn add_peers(&mut self, name: &str) {
        if let Some((a, b)) = codec::pair(name) {
            self.peers.entry(a.into()).or_default().push(b.into());
            self.peers.entry(b.into()).or_default().push(a.into());
        }
    }
}

impl ChatService {
    /// A text published to `chat/r/<room>`: stored, then sent to the room by the service.
    pub(super) fn send(
        &mut self,
        req: &Request<'_>,
        room: &str,
        ctx: &Context<'_>,
        out: &mut Vec<Effect>,
    ) -> Result<(), ChatError> {
        let Some(sender) = req.from.username else {
            return Err(ChatError::NotLoggedIn);
        };
        if !codec::valid_room_name(room) {
            return Err(ChatError::BadRoomName);
        }
        let text = codec::check_text(req.payload, self.config.max_text)?;
        let created = self.rooms.get(room).is_none();
        let room_id = match self.rooms.get(room) {
            Some(r) => r.id,
            None => {
                if self.config.room_creation == RoomCreation::Admins && !is_admin(ctx, sender)? {
                    return Err(ChatError::RoomCreationDenied);
                }
                let id = self.rooms.create(room);
                log::info!("chat: room {room} created by {sender}");
                out.push(Effect::Stage(Write::Chat(ChatWrite::Room {
                    id,
                    name: room.to_owned(),
                    created_by: sender.to_owned(),
                    at: req.unix,
                })));
                id
            }
        };
        let id = self.store_message(room_id, sender, text, req.unix, out);
        if created {
            self.first_members(room, req.now, req.unix, out);
        }
        out.push(Effect::Publish(Outgoing {
            topic: codec::room_topic(room),
            payload: codec::room_message(id, req.unix, sender, text),
            correlation_data: None,
            publisher: req.from.session,
        }));
        confirm_sent(req, id, out);
        Ok(())
    }

    /// `rooms`: every room with the sessions subscribed to it and its message count, `m`
    /// after the rooms `user` is a member of, `u<n>` after those `user` marked read (`n`
    /// messages came since); then `user`'s direct conversations as
    /// `@<peer> 2 <messages> u<n>`.
    pub(super) fn list_rooms(&self, user: &str, ctx: &Context<'_>) -> Result<Reply, ChatError> {
        let mut names: Vec<(String, &Room)> = Vec::new();
        for (name, room) in &self.rooms.by_name {
            match codec::pair(name) {
                None => names.push((name.to_string(), room)),
                Some((a, b)) if a == user => names.push((format!("@{b}"), room)),
                Some((a, b)) if b == user => names.push((format!("@{a}"), room)),
                Some(_) => {}
            }
        }
        names.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let mut reply = Reply::ok(&codec::count(names.len(), "room"));
        for (name, room) in names {
            let direct = name.starts_with('@');
            let unread = self.unread(user, room.id, room.newest, direct, ctx)?;
            reply = reply.line(&if direct {
                room_line(&name, 2, room.messages, false, unread)
            } else {
                let members = (ctx.members)(&codec::room_topic(&name));
                let member = self.is_member(room.id, user);
                room_line(&name, members, room.messages, member, unread)
            });
        }
        Ok(reply)
    }

    /// `history`: one page, read from the room's index; `more` ends a full page when more
    /// messages remain in the direction asked.
    pub(super) fn history(
        &self,
        user: &str,
        room: &str,
        range: HistoryRange,
        count: Option<usize>,
        ctx: &Context<'_>,
    ) -> Result<Reply, ChatError> {
        let room_id = match room.strip_prefix('@') {
            Some(peer) => self.direct_room(user, peer)?,
            None if !codec::valid_room_name(room) => return Err(ChatError::BadRoomName),
            None => self.rooms.get(room).ok_or(ChatError::UnknownRoom)?.id,
        };
        let n = count
            .unwrap_or(codec::DEFAULT_PAGE)
            .min(self.config.page_max);
        let mut page = ctx
            .store
            .chat_history(room_id, range, n + 1)
            .map_err(unavailable)?;
        let more = page.len() > n;
        if more {
            match range {
                HistoryRange::After(_) => {
                    page.pop();
                }
                HistoryRange::Last | HistoryRange::Before(_) => {
                    page.remove(0);
                }
            }
        }
        let reply = Reply::ok(&codec::count(page.len(), "message")).messages(&page);
        Ok(if more { reply.line("more") } else { reply })
    }
}

/// `<name> <members> <messages>` then the flags: ` m` (a member), ` u<n>` (unread since
/// the user's read marker, when there is one).
fn room_line(
    name: &str,
    members: usize,
    messages: u64,
    member: bool,
    unread: Option<u32>,
) -> String {
    let mut line = format!("{name} {members} {messages}");
    if member {
        line.push_str(" m");
    }
    if let Some(n) = unread {
        line.push_str(&format!(" u{n}"));
    }
    line
}

fn is_admin(ctx: &Context<'_>, user: &str) -> Result<bool, ChatError> {
    Ok(ctx
        .store
        .find_user(user)
        .map_err(unavailable)?
        .is_some_and(|u| u.is_admin))
}

pub(super) fn unavailable(e: StoreError) -> ChatError {
    log::error!("chat store: {e}");
    ChatError::Unavailable
}

impl ChatService {
    /// Numbers a new message of a room or conversation, counts it and stages its row.
    pub(super) fn store_message(
        &mut self,
        room_id: i64,
        sender: &str,
        text: &str,
        at: i64,
        out: &mut Vec<Effect>,
    ) -> i64 {
        self.last_message_id += 1;
        let id = self.last_message_id;
        self.rooms.count_message(room_id, id);
        out.push(Effect::Stage(Write::Chat(ChatWrite::Message {
            id,
            room_id,
            sender: sender.to_owned(),
            at,
            body: text.to_owned(),
        })));
        id
    }
}

/// Tells a sender who asked for replies that its message `id` was taken.
pub(super) fn confirm_sent(req: &Request<'_>, id: i64, out: &mut Vec<Effect>) {
    if ReplyTo::asked(&req.from) {
        if let Ok(to) = ReplyTo::of(&req.from, None) {
            out.push(to.publish(Reply::ok("sent").line(&id.to_string()).into_bytes()));
        }
    }
}
