//! The seam between the broker and the internal services beside it (the chat service now,
//! the bridge later).
//!
//! A service claims a topic prefix. The broker hands it every client PUBLISH under that
//! prefix as a [`Request`] — topic, payload and who sent it, as authenticated: user name,
//! client id, protocol version, address, MQTT 5 Response Topic and Correlation Data — and
//! never routes that PUBLISH itself. The service decides from its own state alone and
//! answers with [`Effect`]s, which the broker applies inside the same loop turn:
//!
//! - [`Effect::Publish`]: route a message through `distribute`, like any client's, so
//!   ACLs, queues, QoS and persistent sessions apply unchanged;
//! - [`Effect::Stage`]: stage a store write, committed with the turn's group commit,
//!   before any acknowledgement or delivery of the turn leaves;
//! - [`Effect::Account`]: run slow account work (bcrypt) on an auth worker; the result
//!   comes back through the loop's inbox and is handed to the service, which answers with
//!   more effects;
//! - [`Effect::Announce`]: route a message at QoS 0 (presence: worth nothing once stale,
//!   so never queued for an offline session nor acknowledged);
//! - [`Effect::ForgetCredentials`]: drop a user's cached login after a password change.
//!
//! The broker also tells a service, as [`SessionEvent`]s, when a connected session starts
//! or stops receiving a filter and when its connection ends, so the service knows who is
//! present where; a service that wants to act later (coalescing presence) says when, and
//! the broker calls it back then.
//!
//! A client-chosen Response Topic is the one place a client names where a service
//! publishes, so the broker checks it before the service runs: it must be a topic the
//! client could publish to itself and read (no `$` topic, nothing `deny_publish` or the
//! ACL forbids). When it is not, the service sees only that it was refused (an empty
//! topic, `false`) and must answer elsewhere or not at all.
//!
//! Nothing here touches a socket, so a service's logic is tested by calling it with
//! requests and looking at the effects (see `chat`'s unit tests).

use std::net::IpAddr;
use std::time::Instant;

use crate::accounts::AccountOp;
use crate::protocol::ProtocolVersion;
use crate::store::Write;

/// A client's PUBLISH on a topic a service claims.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub from: Requester<'a>,
    /// The loop's clock, for rate limits.
    pub now: Instant,
    /// Unix seconds, for timestamps that are stored and shown.
    pub unix: i64,
}

/// Who sent a request, as the broker knows them (never as the payload claims).
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The authenticated user name; `None` for an anonymous client.
    pub username: Option<&'a str>,
    pub client_id: &'a str,
    pub version: ProtocolVersion,
    pub addr: IpAddr,
    /// The MQTT 5 Response Topic, with whether the client may have replies there: false
    /// when the client could not publish there itself or not read it (the broker's rule
    /// for every service; the topic is then withheld as `""` and the request must be
    /// refused, never answered there).
    pub response_topic: Option<(&'a str, bool)>,
    /// The MQTT 5 Correlation Data, echoed in the reply.
    pub correlation_data: Option<&'a [u8]>,
    /// The publisher's session, so its own No Local subscriptions skip what it caused: the
    /// broker's session key as a plain number, which a service only hands back.
    pub session: Option<usize>,
}

/// A message a service publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Correlation Data for MQTT 5 receivers of a reply.
    pub correlation_data: Option<Vec<u8>>,
    /// The session whose request caused it (for No Local), if any.
    pub publisher: Option<usize>,
}

/// What the broker tells a service about connected sessions. `session` is the broker's
/// session key as a plain number, as in [`Requester::session`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent<'a> {
    /// A connected session receives `filter`: a SUBSCRIBE, or a stored subscription of a
    /// session that reconnected.
    Subscribed {
        session: usize,
        username: Option<&'a str>,
        filter: &'a str,
    },
    /// A connected session stopped receiving `filter` (UNSUBSCRIBE).
    Unsubscribed { session: usize, filter: &'a str },
    /// The session's connection ended (closed, lost or taken over); its stored
    /// subscriptions, if any, no longer make it present.
    Offline { session: usize },
}

/// What a service asks the broker to do.
#[derive(Debug)]
pub enum Effect {
    Publish(Outgoing),
    Announce(Outgoing),
    Stage(Write),
    /// Run `op` off the loop; its result comes back with `ticket`.
    Account {
        ticket: u64,
        op: AccountOp,
    },
    ForgetCredentials(String),
}
