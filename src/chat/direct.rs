//! Direct messages between two users: sent to `chat/d/<peer>`, stored and paged like a
//! room's (a conversation is a room named `<a>/<b>`, the two names in order, which no room
//! name can be), and delivered on each one's private reply topics, `chat/u/<peer>/d/<sender>`
//! and `chat/u/<sender>/d/<peer>`, which the broker's ACL lets only that user read —
//! whatever filter anyone else subscribes to. A user can block another's direct messages.

use super::codec::{self, conversation, inbox, pair, Reply};
use super::rooms::{confirm_sent, unavailable};
use super::{ChatError, ChatService, Context};
use crate::accounts::rules;
use crate::service::{Effect, Outgoing, Request};
use crate::store::{ChatWrite, Write};

impl ChatService {
    /// A text published to `chat/d/<peer>`.
    pub(super) fn send_direct(
        &mut self,
        req: &Request<'_>,
        peer: &str,
        ctx: &Context<'_>,
        out: &mut Vec<Effect>,
    ) -> Result<(), ChatError> {
        let Some(sender) = req.from.username else {
            return Err(ChatError::NotLoggedIn);
        };
        let text = codec::check_text(req.payload, self.config.max_text)?;
        let (peer, room_id) = self.conversation_with(sender, peer, ctx, req.unix, out)?;
        if self.blocks.contains(&(peer.as_str().into(), sender.into())) {
            return Err(ChatError::Blocked);
        }
        let id = self.store_message(room_id, sender, text, req.unix, out);
        let payload = codec::room_message(id, req.unix, sender, text);
        for topic in [inbox(&peer, sender), inbox(sender, &peer)] {
            out.push(Effect::Publish(Outgoing {
                topic,
                payload: payload.clone(),
                correlation_data: None,
                publisher: req.from.session,
            }));
        }
        confirm_sent(req, id, out);
        Ok(())
    }

    /// The peer's name as stored and the conversation's room id, the conversation made
    /// on first use (the peer must be a user).
    fn conversation_with(
        &mut self,
        me: &str,
        peer: &str,
        ctx: &Context<'_>,
        unix: i64,
        out: &mut Vec<Effect>,
    ) -> Result<(String, i64), ChatError> {
        if rules::check_username(peer).is_err() {
            return Err(ChatError::UnknownUser);
        }
        if let Some(r) = self.rooms.get(&conversation(me, peer)) {
            return Ok((peer.to_owned(), r.id));
        }
        let Some(user) = ctx.store.find_user(peer).map_err(unavailable)? else {
            return Err(ChatError::UnknownUser);
        };
        if user.name == me {
            return Err(ChatError::UnknownUser);
        }
        let name = conversation(me, &user.name);
        if let Some(r) = self.rooms.get(&name) {
            return Ok((user.name, r.id));
        }
        let id = self.rooms.create(&name);
        out.push(Effect::Stage(Write::Chat(ChatWrite::Room {
            id,
            name,
            created_by: me.to_owned(),
            at: unix,
        })));
        Ok((user.name, id))
    }

    /// `history @<peer> …`: the conversation's room id, for its two users only.
    pub(super) fn direct_room(&self, me: &str, peer: &str) -> Result<i64, ChatError> {
        self.rooms
            .get(&conversation(me, peer))
            .map(|r| r.id)
            .ok_or(ChatError::UnknownRoom)
    }

    /// `block <user>` / `unblock <user>`.
    pub(super) fn block(
        &mut self,
        me: &str,
        other: &str,
        blocks: bool,
        out: &mut Vec<Effect>,
    ) -> Result<Reply, ChatError> {
        if rules::check_username(other).is_err() {
            return Err(ChatError::UnknownUser);
        }
        let key: (Box<str>, Box<str>) = (me.into(), other.into());
        let changed = if blocks {
            self.blocks.insert(key)
        } else {
            self.blocks.remove(&key)
        };
        if changed {
            out.push(Effect::Stage(Write::Chat(ChatWrite::Block {
                blocker: me.to_owned(),
                blocked: other.to_owned(),
                blocks,
            })));
        }
        let word = if blocks { "blocked" } else { "unblocked" };
        Ok(Reply::ok(&format!("{word} {other}")))
    }

    /// Where a message's like count goes: the room, or both ends of a conversation —
    /// `None` when `user` may not see the message (a conversation not theirs).
    pub(super) fn like_topics(&self, room: &str, user: &str) -> Option<Vec<String>> {
        match pair(room) {
            None => Some(vec![codec::room_topic(room)]),
            Some((a, b)) if user == a || user == b => Some(vec![inbox(a, b), inbox(b, a)]),
            Some(_) => None,
        }
    }
}
