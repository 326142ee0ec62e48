//! Why a chat request is refused: one code for machines (the first word of the reply) and
//! one sentence for people, per refusal. `docs/chat.md` lists them all.

use std::fmt;

use crate::accounts::AccountError;

/// A refused chat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatError {
    /// Not UTF-8, truncated, a missing or non-numeric field, an unknown request.
    BadRequest(&'static str),
    NotLoggedIn,
    RateLimited,
    BadRoomName,
    UnknownRoom,
    RoomCreationDenied,
    EmptyText,
    TextTooLong(usize),
    TextInvalid,
    UnknownMessage,
    /// A direct message or block naming no user.
    UnknownUser,
    /// A direct message to someone who blocked the sender.
    Blocked,
    /// Account work refused: a rule, a taken name, a wrong answer (its own code and
    /// sentence, `crate::accounts`).
    Account(AccountError),
    BadResponseTopic,
    Unavailable,
}

impl ChatError {
    /// The code that starts the reply.
    pub fn code(self) -> &'static str {
        match self {
            ChatError::BadRequest(_) => "bad_request",
            ChatError::NotLoggedIn => "not_logged_in",
            ChatError::RateLimited => "rate_limited",
            ChatError::BadRoomName => "bad_room_name",
            ChatError::UnknownRoom => "unknown_room",
            ChatError::RoomCreationDenied => "room_creation_denied",
            ChatError::EmptyText => "empty_text",
            ChatError::TextTooLong(_) => "text_too_long",
            ChatError::TextInvalid => "text_invalid",
            ChatError::UnknownMessage => "unknown_message",
            ChatError::UnknownUser => "unknown_user",
            ChatError::Blocked => "blocked",
            ChatError::Account(e) => e.code(),
            ChatError::BadResponseTopic => "bad_response_topic",
            ChatError::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::BadRequest(what) => write!(f, "malformed request: {what}"),
            ChatError::NotLoggedIn => {
                f.write_str("log in first (user name and password in CONNECT)")
            }
            ChatError::RateLimited => f.write_str("too many requests, try again later"),
            ChatError::BadRoomName => {
                f.write_str("a room name has 1 to 32 letters, digits, '_', '-' or '.'")
            }
            ChatError::UnknownRoom => f.write_str("no such room"),
            ChatError::RoomCreationDenied => f.write_str("only administrators may create rooms"),
            ChatError::EmptyText => f.write_str("the message is empty"),
            ChatError::TextTooLong(max) => write!(f, "the message is longer than {max} bytes"),
            ChatError::TextInvalid => f.write_str("the message holds control characters"),
            ChatError::UnknownMessage => f.write_str("no such message"),
            ChatError::UnknownUser => f.write_str("no such user"),
            ChatError::Blocked => f.write_str("this user does not take your direct messages"),
            ChatError::Account(e) => e.fmt(f),
            ChatError::BadResponseTopic => {
                f.write_str("the response topic is not one this client may read")
            }
            ChatError::Unavailable => f.write_str("the chat store is unavailable, try again"),
        }
    }
}

impl std::error::Error for ChatError {}

impl From<AccountError> for ChatError {
    fn from(e: AccountError) -> Self {
        match e {
            // The chat's own sentence for a store that failed.
            AccountError::Unavailable => ChatError::Unavailable,
            e => ChatError::Account(e),
        }
    }
}
