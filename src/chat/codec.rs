//! The chat wire format (`docs/chat.md`): which topic is what, how request payloads
//! parse, how room events and replies are written. Pure text in, text out.

use super::ChatError;
use crate::accounts::rules::breaks_lines;
use crate::accounts::AccountError;
use crate::auth::acl::{CLIENT_REPLIES, USER_REPLIES};
use crate::store::{ChatMessageRecord, HistoryRange};

/// Every topic under this prefix belongs to the chat service.
pub const PREFIX: &str = "chat/";
/// `chat/r/<room>`: a room.
pub const ROOM_PREFIX: &str = "chat/r/";
/// `chat/x/<request>[/<tag>]`: a request.
pub const REQUEST_PREFIX: &str = "chat/x/";
/// Longest room name, in characters.
pub const ROOM_MAX: usize = 32;
/// Longest 3.1.1 correlation tag, in characters.
pub const TAG_MAX: usize = 32;
/// Messages in a history page when the request names no count.
pub const DEFAULT_PAGE: usize = 20;

/// `chat/d/<peer>`: a direct message to `<peer>`.
pub const DIRECT_PREFIX: &str = "chat/d/";

/// The stored name of the conversation between `a` and `b`.
pub fn conversation(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}/{b}")
    } else {
        format!("{b}/{a}")
    }
}

/// The two users of a conversation's stored name, or `None` for a room.
pub fn pair(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
}

/// Where `owner` reads the conversation with `peer`: `chat/u/<owner>/d/<peer>`.
pub fn inbox(owner: &str, peer: &str) -> String {
    format!("{USER_REPLIES}{owner}/d/{peer}")
}

/// What a topic under [`PREFIX`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTopic<'a> {
    Room(&'a str),
    /// `chat/d/<peer>`: a direct message.
    Direct(&'a str),
    Request {
        op: &'a str,
        tag: Option<&'a str>,
    },
    /// Anything else under `chat/`, a bad tag included: refused.
    Other,
}

pub fn parse_topic(topic: &str) -> ChatTopic<'_> {
    if let Some(room) = topic.strip_prefix(ROOM_PREFIX) {
        return ChatTopic::Room(room);
    }
    if let Some(peer) = topic.strip_prefix(DIRECT_PREFIX) {
        return ChatTopic::Direct(peer);
    }
    let Some(rest) = topic.strip_prefix(REQUEST_PREFIX) else {
        return ChatTopic::Other;
    };
    match rest.split_once('/') {
        None => ChatTopic::Request {
            op: rest,
            tag: None,
        },
        Some((op, tag))
            if !tag.is_empty() && !tag.contains('/') && tag.chars().count() <= TAG_MAX =>
        {
            ChatTopic::Request { op, tag: Some(tag) }
        }
        Some(_) => ChatTopic::Other,
    }
}

/// The topic of a room.
pub fn room_topic(room: &str) -> String {
    format!("{ROOM_PREFIX}{room}")
}

/// The reply topic of a user (`chat/u/<user>`) or else of an anonymous client
/// (`chat/a/<client id>`), with the tag if any; `None` for an anonymous client whose id
/// cannot be one topic level.
pub fn reply_topic(username: Option<&str>, client_id: &str, tag: Option<&str>) -> Option<String> {
    let (prefix, owner) = match username {
        Some(user) => (USER_REPLIES, user),
        None => (CLIENT_REPLIES, client_id),
    };
    if owner.is_empty() || owner.contains(['/', '+', '#']) {
        return None;
    }
    Some(match tag {
        Some(tag) => format!("{prefix}{owner}/{tag}"),
        None => format!("{prefix}{owner}"),
    })
}

/// 1 to 32 ASCII letters, digits, `_`, `-`, `.`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=ROOM_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a message text against the limit and the character rule.
pub fn check_text(text: &[u8], max: usize) -> Result<&str, ChatError> {
    if text.is_empty() {
        return Err(ChatError::EmptyText);
    }
    if text.len() > max {
        return Err(ChatError::TextTooLong(max));
    }
    let text = std::str::from_utf8(text).map_err(|_| ChatError::BadRequest("not UTF-8"))?;
    if text
        .chars()
        .any(|c| breaks_lines(c) || (c.is_control() && c != '\t'))
    {
        return Err(ChatError::TextInvalid);
    }
    Ok(text)
}

/// A parsed request payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    Register {
        name: &'a str,
        password: &'a str,
    },
    SetQuestion {
        question: &'a str,
        answer: &'a str,
    },
    Question {
        name: &'a str,
    },
    Reset {
        name: &'a str,
        password: &'a str,
        answer: &'a str,
    },
    Rooms,
    History {
        room: &'a str,
        range: HistoryRange,
        count: Option<usize>,
    },
    Like {
        id: i64,
    },
    Members {
        room: &'a str,
    },
    Leave {
        room: &'a str,
    },
    Block {
        user: &'a str,
        blocks: bool,
    },
    /// `blocks`: whom the user blocked.
    Blocks,
    /// `read <room|@peer> <id>`: the user has seen the room up to message `id`.
    Read {
        room: &'a str,
        id: i64,
    },
}

impl Op<'_> {
    /// True for what an anonymous client may ask.
    pub fn anonymous_allowed(&self) -> bool {
        matches!(
            self,
            Op::Register { .. } | Op::Question { .. } | Op::Reset { .. }
        )
    }
}

/// Parses the payload of request `op`. A trailing line end (`mosquitto_pub -l`) is ignored.
pub fn parse_request<'a>(op: &str, payload: &'a [u8]) -> Result<Op<'a>, ChatError> {
    let untrimmed = std::str::from_utf8(payload).map_err(|_| ChatError::BadRequest("not UTF-8"))?;
    let text = untrimmed.trim_end_matches(['\r', '\n']);
    let two = |sep: char, what: &'static str| {
        text.split_once(sep)
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .ok_or(ChatError::BadRequest(what))
    };
    match op {
        "register" => {
            let (name, password) = two(' ', "register needs a name and a password")?;
            Ok(Op::Register { name, password })
        }
        "setq" => {
            // The two parts are there but empty: the rule's own codes, as documented.
            // Split before trimming, so "question\n" is a question with an empty answer.
            let (question, answer) = untrimmed.split_once('\n').ok_or(ChatError::BadRequest(
                "setq needs a question, a newline, an answer",
            ))?;
            let answer = answer.trim_end_matches(['\r', '\n']);
            if question.trim().is_empty() {
                return Err(AccountError::QuestionInvalid.into());
            }
            if answer.trim().is_empty() {
                return Err(AccountError::AnswerInvalid.into());
            }
            Ok(Op::SetQuestion { question, answer })
        }
        "question" => match text {
            "" => Err(ChatError::BadRequest("question needs a user name")),
            name => Ok(Op::Question { name }),
        },
        "reset" => {
            let (line, answer) = two(
                '\n',
                "reset needs a name, a new password, a newline, an answer",
            )?;
            let (name, password) = line
                .split_once(' ')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or(ChatError::BadRequest(
                    "reset needs a name and a new password",
                ))?;
            Ok(Op::Reset {
                name,
                password,
                answer,
            })
        }
        "rooms" => Ok(Op::Rooms),
        "history" => parse_history(text),
        "like" => Ok(Op::Like {
            id: number(text, "like needs a message id")?,
        }),
        "members" | "leave" if text.is_empty() => Err(ChatError::BadRequest("name a room")),
        "members" => Ok(Op::Members { room: text }),
        "leave" => Ok(Op::Leave { room: text }),
        "block" | "unblock" if text.is_empty() => Err(ChatError::BadRequest("name a user")),
        "block" => Ok(Op::Block {
            user: text,
            blocks: true,
        }),
        "unblock" => Ok(Op::Block {
            user: text,
            blocks: false,
        }),
        "blocks" => Ok(Op::Blocks),
        "read" => {
            let (room, id) = two(' ', "read needs a room and a message id")?;
            Ok(Op::Read {
                room,
                id: number(id, "read needs a room and a message id")?,
            })
        }
        _ => Err(ChatError::BadRequest("unknown request")),
    }
}

fn number<T: std::str::FromStr>(field: &str, what: &'static str) -> Result<T, ChatError> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChatError::BadRequest(what));
    }
    field.parse().map_err(|_| ChatError::BadRequest(what))
}

/// `<room> [<n>]`, `<room> after <id> [<n>]`, `<room> before <id> [<n>]`.
fn parse_history(text: &str) -> Result<Op<'_>, ChatError> {
    const WHAT: &str = "history is: <room> [after|before <id>] [<count>]";
    let fields: Vec<&str> = text.split(' ').collect();
    let (room, range, rest) = match fields.as_slice() {
        [room, "after", id, rest @ ..] => (*room, HistoryRange::After(number(id, WHAT)?), rest),
        [room, "before", id, rest @ ..] => (*room, HistoryRange::Before(number(id, WHAT)?), rest),
        [room, rest @ ..] => (*room, HistoryRange::Last, rest),
        [] => return Err(ChatError::BadRequest(WHAT)),
    };
    let count = match rest {
        [] => None,
        [n] => Some(number::<usize>(n, WHAT)?).filter(|&n| n > 0),
        _ => return Err(ChatError::BadRequest(WHAT)),
    };
    if rest.len() == 1 && count.is_none() {
        return Err(ChatError::BadRequest("the count must be at least 1"));
    }
    Ok(Op::History { room, range, count })
}

/// `<id> <time> <sender> <text>`: a message in a room (it starts with a digit; every other
/// room event starts with a letter).
pub fn room_message(id: i64, at: i64, sender: &str, text: &str) -> Vec<u8> {
    format!("{id} {at} {sender} {text}").into_bytes()
}

/// `l <id> <likes> +<user>` (a like) or `l <id> <likes> -<user>` (taken back): a message's
/// new like count and who changed it.
pub fn room_likes(id: i64, likes: u32, user: &str, liked: bool) -> Vec<u8> {
    let sign = if liked { '+' } else { '-' };
    format!("l {id} {likes} {sign}{user}").into_bytes()
}

/// `1 message`, `2 messages`: the human part of a status line that counts.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A reply: a status line, then data lines.
pub struct Reply(String);

impl Reply {
    pub fn ok(message: &str) -> Reply {
        Reply(format!("ok {message}"))
    }

    pub fn error(e: ChatError) -> Reply {
        Reply(format!("{} {e}", e.code()))
    }

    pub fn line(mut self, line: &str) -> Reply {
        self.0.push('\n');
        self.0.push_str(line);
        self
    }

    /// A page of history rows, `<id> <time> <sender> <likers> <text>`, oldest first. The
    /// first row's time is Unix seconds; each later row's is `+<seconds>` after the row
    /// before it (ten digits a row is most of a short message). `<likers>` is `0` when
    /// nobody likes the message, else the names joined by `,` (no name is `0`).
    pub fn messages(mut self, page: &[ChatMessageRecord]) -> Reply {
        let mut previous: Option<i64> = None;
        for m in page {
            let likers = if m.likers.is_empty() { "0" } else { &m.likers };
            let line = match previous {
                None => format!("{} {} {} {likers} {}", m.id, m.sent_at, m.sender, m.body),
                Some(before) => format!(
                    "{} +{} {} {likers} {}",
                    m.id,
                    (m.sent_at - before).max(0),
                    m.sender,
                    m.body
                ),
            };
            previous = Some(m.sent_at);
            self = self.line(&line);
        }
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(parse_topic("chat/r/general"), ChatTopic::Room("general"));
        assert_eq!(
            parse_topic("chat/x/history"),
            ChatTopic::Request {
                op: "history",
                tag: None
            }
        );
        assert_eq!(
            parse_topic("chat/x/like/q7"),
            ChatTopic::Request {
                op: "like",
                tag: Some("q7")
            }
        );
        for other in [
            "chat/u/me",
            "chat/a/me",
            "chat/x/like/a/b",
            "chat/x/like/",
            "chat/zz",
        ] {
            assert_eq!(parse_topic(other), ChatTopic::Other, "{other}");
        }
        assert_eq!(
            parse_topic(&format!("chat/x/a/{}", "t".repeat(TAG_MAX + 1))),
            ChatTopic::Other
        );
        assert_eq!(reply_topic(None, "c1", None).as_deref(), Some("chat/a/c1"));
        assert_eq!(
            reply_topic(Some("ana"), "c1", Some("7")).as_deref(),
            Some("chat/u/ana/7")
        );
        assert_eq!(reply_topic(None, "a/b", None), None);
        assert_eq!(
            reply_topic(Some("ana"), "a/b", None).as_deref(),
            Some("chat/u/ana")
        );
        assert_eq!(reply_topic(None, "", None), None);
    }

    #[test]
    fn room_names_and_texts() {
        for ok in ["general", "a", "camp-2.b_c", &"r".repeat(ROOM_MAX)] {
            assert!(valid_room_name(ok), "{ok}");
        }
        for bad in ["", "a b", "é", "a+", &"r".repeat(ROOM_MAX + 1)] {
            assert!(!valid_room_name(bad), "{bad}");
        }
        assert_eq!(check_text(b"hi\tthere", 10), Ok("hi\tthere"));
        assert_eq!(check_text(b"", 10), Err(ChatError::EmptyText));
        assert_eq!(
            check_text(b"12345678901", 10),
            Err(ChatError::TextTooLong(10))
        );
        for bad in [
            "a\nb",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{85}b",
            "a\u{b}b",
            "a\u{1e}b",
        ] {
            assert_eq!(
                check_text(bad.as_bytes(), 10),
                Err(ChatError::TextInvalid),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_text(b"\xff", 10),
            Err(ChatError::BadRequest("not UTF-8"))
        );
    }

    #[test]
    fn requests() {
        assert_eq!(
            parse_request("register", b"ana my pass word\n"),
            Ok(Op::Register {
                name: "ana",
                password: "my pass word"
            })
        );
        assert_eq!(
            parse_request("reset", b"ana new pass\nmy dog"),
            Ok(Op::Reset {
                name: "ana",
                password: "new pass",
                answer: "my dog"
            })
        );
        assert_eq!(
            parse_request("setq", b"first pet?\nRex"),
            Ok(Op::SetQuestion {
                question: "first pet?",
                answer: "Rex"
            })
        );
        assert_eq!(
            parse_request("history", b"general after 41 5"),
            Ok(Op::History {
                room: "general",
                range: HistoryRange::After(41),
                count: Some(5)
            })
        );
        assert_eq!(
            parse_request("history", b"general"),
            Ok(Op::History {
                room: "general",
                range: HistoryRange::Last,
                count: None
            })
        );
        assert_eq!(parse_request("like", b"42"), Ok(Op::Like { id: 42 }));
        assert_eq!(
            parse_request("setq", b"\nRex"),
            Err(AccountError::QuestionInvalid.into())
        );
        assert_eq!(
            parse_request("setq", b"First pet?\n  "),
            Err(AccountError::AnswerInvalid.into())
        );
        assert_eq!(parse_request("rooms", b""), Ok(Op::Rooms));
        for (op, bad) in [
            ("register", &b"ana"[..]),
            ("register", b" pass"),
            ("reset", b"ana pass"),
            ("setq", b"no answer"),
            ("setq", b""),
            ("question", b""),
            ("history", b"general after x"),
            ("history", b"general after"),
            ("history", b"general 0"),
            ("history", b"general 5 6"),
            ("history", b"general -1"),
            ("like", b"x"),
            ("like", b""),
            ("like", b"99999999999999999999999"),
            ("like", b"\xff"),
            ("nope", b""),
        ] {
            assert!(
                matches!(parse_request(op, bad), Err(ChatError::BadRequest(_))),
                "{op} {bad:?}"
            );
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(
            room_message(7, 1_700_000_000, "ana", "hi"),
            b"7 1700000000 ana hi"
        );
        assert_eq!(room_likes(7, 2, "bob", true), b"l 7 2 +bob");
        assert_eq!(room_likes(7, 1, "bob", false), b"l 7 1 -bob");
        let row = |id, sent_at, body: &str| ChatMessageRecord {
            id,
            sender: "ana".into(),
            sent_at,
            body: body.into(),
            likes: 1,
            likers: if id == 7 { "bob".into() } else { String::new() },
        };
        let reply = Reply::ok("2 messages")
            .messages(&[
                row(7, 1_700_000_000, "hi there"),
                row(9, 1_700_000_042, "bye"),
            ])
            .line("more");
        assert_eq!(
            reply.into_bytes(),
            b"ok 2 messages\n7 1700000000 ana bob hi there\n9 +42 ana 0 bye\nmore"
        );
        assert_eq!(
            Reply::error(ChatError::UnknownRoom).into_bytes(),
            b"unknown_room no such room"
        );
    }
}
