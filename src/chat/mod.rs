//! The chat service, beside the broker on the topics under `chat/` (wire format in
//! `docs/chat.md`). It is pure logic over its own state: the broker hands it each client
//! PUBLISH under `chat/` as a [`Request`] and applies the [`Effect`]s it returns in the
//! same turn (see `service`), so every message, like and room joins the group commit
//! before anything is acknowledged or delivered. Account work (bcrypt) runs on an auth
//! worker and comes back through [`ChatService::account_done`].
//!
//! - `codec`     — topics, request payloads, room events and replies on the wire.
//! - `error`     — [`ChatError`]: each refusal's code and sentence.
//! - `reply`     — where a reply goes (Response Topic, `chat/u/<user>` or `chat/a/<client id>`).
//! - `rooms`     — rooms, sending, the room list, history pages.
//! - `likes`     — one like per user per message.
//! - `presence`  — who is online in each room, announced in coalesced windows.
//! - `members`   — room members, joins and leaves, presence on the wire.
//! - `direct`    — direct messages between two users, and blocking.
//! - `read_markers` — how far each user has read each room; unread counts; the block list.
//! - `account_requests` — account requests on the loop: checks, limits, the hand-off to an
//!   auth worker (the work itself is `crate::accounts`), replies.
//! - `ratelimit` — per-client request buckets.

mod account_requests;
pub mod codec;
mod direct;
mod error;
mod likes;
mod members;
mod presence;
mod ratelimit;
mod read_markers;
mod reply;
mod rooms;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::auth::attempts::Attempts;
use crate::auth::throttle::{AddressKey, LoginThrottle};
use crate::service::{Effect, Request};
use crate::store::{Store, StoreError};
use codec::{ChatTopic, Op};
use presence::Presence;
use ratelimit::Buckets;
use read_markers::ReadMarkers;
use reply::ReplyTo;
use rooms::Rooms;

pub use account_requests::AccountReply;
use account_requests::Pending;
pub use error::ChatError;

/// The window `registrations_per_hour` counts in.
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);
/// Security questions one address may look up per [`QUESTION_WINDOW`]: an answer tells
/// whether a user exists, so names are not listed faster than this.
const QUESTIONS_PER_ADDRESS: u32 = 30;
const QUESTION_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Who may create a room by sending to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomCreation {
    #[default]
    Anyone,
    Admins,
}

/// The service's settings (from `Config`'s `chat_*` options).
#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub max_text: usize,
    pub page_max: usize,
    pub room_creation: RoomCreation,
    pub requests_per_second: u32,
    pub request_burst: u32,
    /// Registrations per client address per hour (`registrations_per_hour`); 0 = no limit.
    pub registrations_per_hour: u32,
}

/// What the service may look at besides its own state during a request.
pub struct Context<'a> {
    /// The loop's store, for history pages and likes (the broker commits the turn's
    /// staged writes before a request that reads, so reads see them).
    pub store: &'a Store,
    /// How many sessions receive a topic (room member counts).
    pub members: &'a dyn Fn(&str) -> usize,
}

pub struct ChatService {
    config: ChatConfig,
    rooms: Rooms,
    /// The last message id handed out (ids increase across rooms).
    last_message_id: i64,
    requests: Buckets,
    /// Password-reset answers are guessed like passwords: bounded per address and per
    /// account-and-address, never per account alone (which would let anyone lock the owner
    /// out of resetting).
    resets: LoginThrottle,
    registrations: Attempts<AddressKey>,
    questions: Attempts<AddressKey>,
    pending: HashMap<u64, Pending>,
    last_ticket: u64,
    /// Room id → its members' names (from the store, kept up to date).
    members: HashMap<i64, HashSet<Box<str>>>,
    /// Who is online where, and the announcements waiting for their window.
    presence: Presence,
    /// (blocker, blocked): direct messages refused.
    blocks: Blocks,
    /// How far each user has read each room, and the moves not yet written.
    markers: ReadMarkers,
    /// The callback the broker has been asked for (presence window or marker write).
    scheduled: Option<Instant>,
}

impl ChatService {
    /// The service with the rooms and last message id in `store`.
    pub fn load(config: ChatConfig, store: &Store) -> Result<ChatService, StoreError> {
        let rooms = Rooms::load(store.load_chat_rooms()?);
        Ok(ChatService {
            requests: Buckets::new(config.requests_per_second, config.request_burst),
            registrations: Attempts::new(config.registrations_per_hour, REGISTRATION_WINDOW),
            questions: Attempts::new(QUESTIONS_PER_ADDRESS, QUESTION_WINDOW),
            config,
            rooms,
            last_message_id: store.max_chat_message_id()?,
            resets: LoginThrottle::default(),
            pending: HashMap::new(),
            last_ticket: 0,
            members: members_by_room(store)?,
            presence: Presence::default(),
            blocks: blocks(store)?,
            markers: ReadMarkers::load(store.load_chat_read()?),
            scheduled: None,
        })
    }

    /// Forgets what a failed commit dropped: rooms and message ids come from the store
    /// again, so later writes never name a room that is not on disk.
    pub fn reload(&mut self, store: &Store) -> Result<(), StoreError> {
        self.rooms = Rooms::load(store.load_chat_rooms()?);
        self.last_message_id = store.max_chat_message_id()?;
        self.members = members_by_room(store)?;
        self.blocks = blocks(store)?;
        self.markers = ReadMarkers::load(store.load_chat_read()?);
        Ok(())
    }

    /// True for the topics this service takes instead of routing.
    pub fn claims(topic: &str) -> bool {
        topic.starts_with(codec::PREFIX)
    }

    /// True when handling a request on `topic` reads chat state from the store, so the
    /// turn's staged writes must be committed first.
    pub fn reads_store(topic: &str) -> bool {
        matches!(
            codec::parse_topic(topic),
            ChatTopic::Request {
                op: "history" | "like" | "rooms",
                ..
            }
        )
    }

    /// False for a client no reply can reach: anonymous, without a Response Topic it may
    /// read, and with a client id that cannot be one topic level (or that it does not know:
    /// the broker assigned it, and MQTT 3.1.1 cannot tell it). The broker disconnects it.
    pub fn answerable(from: &crate::service::Requester<'_>) -> bool {
        !matches!(ReplyTo::of(from, None), Err(None))
    }

    /// Handles one client PUBLISH under `chat/`.
    pub fn handle(&mut self, req: &Request<'_>, ctx: &Context<'_>) -> Vec<Effect> {
        let mut out = Vec::new();
        let (tag, result) = match codec::parse_topic(req.topic) {
            ChatTopic::Room(room) => (
                None,
                self.limited(req)
                    .and_then(|()| self.send(req, room, ctx, &mut out)),
            ),
            ChatTopic::Direct(peer) => (
                None,
                self.limited(req)
                    .and_then(|()| self.send_direct(req, peer, ctx, &mut out)),
            ),
            ChatTopic::Request { op, tag } => (tag, self.request(req, op, tag, ctx, &mut out)),
            ChatTopic::Other => (None, Err(ChatError::BadRequest("not a chat topic"))),
        };
        if let Err(e) = result {
            out.extend(reply::refusal(&req.from, tag, e));
        }
        out
    }

    fn limited(&mut self, req: &Request<'_>) -> Result<(), ChatError> {
        if self.requests.allow(req.from.client_id, req.now) {
            Ok(())
        } else {
            Err(ChatError::RateLimited)
        }
    }

    /// A request on `chat/x/<op>[/<tag>]`: answered now, or once its account work is done.
    fn request(
        &mut self,
        req: &Request<'_>,
        op: &str,
        tag: Option<&str>,
        ctx: &Context<'_>,
        out: &mut Vec<Effect>,
    ) -> Result<(), ChatError> {
        let to = match ReplyTo::of(&req.from, tag) {
            Ok(to) => to,
            Err(Some(_)) => return Err(ChatError::BadResponseTopic),
            Err(None) => {
                log::debug!(
                    "chat: client {}: no way to reply (client id is not one topic level)",
                    req.from.client_id
                );
                return Ok(());
            }
        };
        self.limited(req)?;
        let op = codec::parse_request(op, req.payload)?;
        let user = req.from.username;
        if user.is_none() && !op.anonymous_allowed() {
            return Err(ChatError::NotLoggedIn);
        }
        let user = user.unwrap_or_default();
        let reply = match op {
            Op::Rooms => self.list_rooms(user, ctx)?,
            Op::History { room, range, count } => self.history(user, room, range, count, ctx)?,
            Op::Like { id } => self.like(user, id, ctx, out)?,
            Op::Members { room } => self.list_members(user, room)?,
            Op::Leave { room } => self.leave(user, room, req.now, req.unix, out)?,
            Op::Block {
                user: other,
                blocks,
            } => self.block(user, other, blocks, out)?,
            Op::Blocks => self.list_blocks(user),
            Op::Read { room, id } => self.read(user, room, id, req.now)?,
            account => return self.account_request(req, account, to, out),
        };
        out.push(to.publish(reply.into_bytes()));
        Ok(())
    }
}

fn members_by_room(store: &Store) -> Result<HashMap<i64, HashSet<Box<str>>>, StoreError> {
    let mut members: HashMap<i64, HashSet<Box<str>>> = HashMap::new();
    for (room_id, user) in store.load_chat_members()? {
        members.entry(room_id).or_default().insert(user.into());
    }
    Ok(members)
}

/// (blocker, blocked) pairs.
type Blocks = HashSet<(Box<str>, Box<str>)>;

fn blocks(store: &Store) -> Result<Blocks, StoreError> {
    Ok(store
        .load_chat_blocks()?
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect())
}

#[cfg(test)]
mod tests;
