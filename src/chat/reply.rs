//! Where a reply goes: the MQTT 5 Response Topic when the broker permits it (see `service`), otherwise
//! the user's own `chat/u/<user>[/<tag>]` (an anonymous client's `chat/a/<client
//! id>[/<tag>]`), with the Correlation Data echoed.

use super::codec::{self, PREFIX};
use super::ChatError;
use crate::auth::acl::{is_reply_topic, reply_topic_allows};
use crate::service::{Effect, Outgoing, Requester};

/// A reply's topic and correlation data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub topic: String,
    pub correlation_data: Option<Vec<u8>>,
}

impl ReplyTo {
    /// Where replies to `from` go. Err carries the refusal of its Response Topic and the
    /// default place to say so, if there is one.
    pub fn of(from: &Requester<'_>, tag: Option<&str>) -> Result<ReplyTo, Option<ReplyTo>> {
        let correlation_data = from.correlation_data.map(<[u8]>::to_vec);
        let default = codec::reply_topic(from.username, from.client_id, tag).map(|topic| ReplyTo {
            topic,
            correlation_data: correlation_data.clone(),
        });
        let Some((topic, permitted)) = from.response_topic else {
            return default.ok_or(None);
        };
        // Under chat/ only its own reply topic: never a room or someone else's replies.
        let own = !topic.starts_with(PREFIX)
            || (is_reply_topic(topic) && reply_topic_allows(topic, from.username, from.client_id));
        if permitted && own {
            Ok(ReplyTo {
                topic: topic.to_owned(),
                correlation_data,
            })
        } else {
            Err(default)
        }
    }

    /// True when the requester asked for a reply even to a success (a Response Topic or
    /// Correlation Data).
    pub fn asked(from: &Requester<'_>) -> bool {
        from.response_topic.is_some() || from.correlation_data.is_some()
    }

    pub fn publish(&self, payload: Vec<u8>) -> Effect {
        Effect::Publish(Outgoing {
            topic: self.topic.clone(),
            payload,
            correlation_data: self.correlation_data.clone(),
            // Not the client's own message: No Local must not hide a reply from it.
            publisher: None,
        })
    }
}

/// The effect that tells `from` its request was refused, if it can be told at all.
pub fn refusal(from: &Requester<'_>, tag: Option<&str>, e: ChatError) -> Option<Effect> {
    log::debug!(
        "chat: client {} ({}): {}: {e}",
        from.client_id,
        from.username.unwrap_or("anonymous"),
        e.code()
    );
    let (to, e) = match ReplyTo::of(from, tag) {
        Ok(to) => (to, e),
        Err(Some(to)) => (to, ChatError::BadResponseTopic),
        Err(None) => return None,
    };
    Some(to.publish(codec::Reply::error(e).into_bytes()))
}
