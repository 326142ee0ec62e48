//! Likes: one per user per message; a second like takes it back. The new count goes to
//! the room and to the liker.

use super::codec::{self, Reply};
use super::rooms::unavailable;
use super::{ChatError, ChatService, Context};
use crate::service::{Effect, Outgoing};
use crate::store::{ChatWrite, Write};

impl ChatService {
    pub(super) fn like(
        &mut self,
        user: &str,
        id: i64,
        ctx: &Context<'_>,
        out: &mut Vec<Effect>,
    ) -> Result<Reply, ChatError> {
        let Some((room_id, likes)) = ctx.store.chat_message_room(id).map_err(unavailable)? else {
            return Err(ChatError::UnknownMessage);
        };
        let Some(room) = self.rooms.name(room_id) else {
            return Err(ChatError::UnknownMessage);
        };
        // A direct message exists only for its two users.
        let Some(topics) = self.like_topics(room, user) else {
            return Err(ChatError::UnknownMessage);
        };
        let liked = !ctx.store.chat_liked(id, user).map_err(unavailable)?;
        let likes = if liked {
            likes + 1
        } else {
            likes.saturating_sub(1)
        };
        out.push(Effect::Stage(Write::Chat(ChatWrite::Like {
            message_id: id,
            username: user.to_owned(),
            liked,
        })));
        for topic in topics {
            out.push(Effect::Publish(Outgoing {
                topic,
                payload: codec::room_likes(id, likes, user, liked),
                correlation_data: None,
                publisher: None,
            }));
        }
        let word = if liked { "liked" } else { "unliked" };
        Ok(Reply::ok(word).line(&format!("{id} {likes}")))
    }
}
