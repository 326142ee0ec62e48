//! The loop's one inbox: every other thread (the auth workers, the web console, the bridges'
//! resolvers, the store writer) sends the loop an [`Inbound`] through one bounded channel and wakes it with the
//! poll's single `Waker`. The loop drains it once per wake-up and handles each kind in one
//! place (`Broker::handle_inbound`); answers go back on a channel the message carries.

use std::fmt;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use super::bridge::Resolved;
use super::connect::AuthReply;
use super::console::ConsoleRequest;
use crate::auth::login_token::{self, Grant};

/// Messages the loop may hold before a sender has to wait: far more than a turn drains
/// in practice, small enough that a stuck loop cannot grow memory without bound.
const CAPACITY: usize = 4096;
/// How long a sender waits for room before giving up (the loop is stuck or gone).
const SEND_WAIT: Duration = Duration::from_secs(5);

/// Everything another thread can tell or ask the loop.
pub enum Inbound {
    /// The bcrypt worker's verdict on a CONNECT.
    Auth(AuthReply),
    /// The chat service's account work is done.
    Chat(crate::chat::AccountReply),
    /// The web console asks for live state or gives a command; the answer goes back on
    /// the request's own channel.
    Console(ConsoleRequest),
    /// A bridge's upstream host name, resolved off the loop.
    BridgeResolved(Resolved),
    /// The web console gave a logged-in browser a login token (see `auth::login_token`).
    LoginToken(Grant),
    /// The store writer settled another batch (see `commit.rs`).
    Durable,
}

/// The inbox could not take a message: the loop has stopped, or stayed full for
/// longer than a sender waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    Stopped,
    Busy,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Stopped => f.write_str("the broker loop has stopped"),
            SendError::Busy => f.write_str("the broker loop is not answering"),
        }
    }
}

impl std::error::Error for SendError {}

/// A handle other threads keep to reach the loop; cheap to clone.
#[derive(Clone)]
pub struct InboxSender {
    tx: SyncSender<Inbound>,
    waker: Arc<Waker>,
}

impl InboxSender {
    /// Queues `message` and wakes the loop, waiting at most [`SEND_WAIT`] for room.
    pub fn send(&self, message: Inbound) -> Result<(), SendError> {
        let deadline = Instant::now() + SEND_WAIT;
        let mut message = message;
        loop {
            match self.tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Err(SendError::Stopped),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(SendError::Busy);
                    }
                    message = back;
                    // Full means the loop is behind: back off rather than spin.
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        // A failed wake means the poll is gone, and with it the loop.
        self.waker.wake().map_err(|_| SendError::Stopped)
    }

    /// Lets `token` log `user` in once as an MQTT password, for `login_token::TTL`. Only
    /// its SHA-256 reaches the loop. Returns once the loop has it queued, and the loop
    /// reads its inbox before the sockets of the same turn, so a CONNECT sent after this
    /// returns finds the token.
    pub fn grant_login_token(&self, user: &str, token: &str) -> Result<(), SendError> {
        self.send(Inbound::LoginToken(Grant {
            user: user.to_string(),
            hash: login_token::hash(token.as_bytes()),
            expires: Instant::now() + login_token::TTL,
        }))
    }
}

/// The loop's end of the channel.
pub struct Inbox {
    rx: Receiver<Inbound>,
}

impl Inbox {
    /// A new inbox and the first sender to it, waking the poll through `waker`.
    pub fn new(waker: Arc<Waker>) -> (Inbox, InboxSender) {
        let (tx, rx) = mpsc::sync_channel(CAPACITY);
        (Inbox { rx }, InboxSender { tx, waker })
    }

    /// The next waiting message, if any.
    pub fn try_recv(&self) -> Option<Inbound> {
        self.rx.try_recv().ok()
    }
}
