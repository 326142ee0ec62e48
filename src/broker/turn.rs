//! What one turn of the loop collects for its end (connections to flush, to close, to read
//! again next turn) and the buffers every turn reuses, so reading and routing do not
//! allocate per socket or per message. The loop (`event_loop.rs`) drains the lists.

use crate::core::keys::ConnKey;
use crate::core::route::{Matches, Plan};

#[derive(Default)]
pub struct Turn {
    /// Connections with output to flush at the end of this turn (each listed once: see
    /// `Connection::in_flush_list`).
    pub flush: Vec<ConnKey>,
    /// Connections that had more to read when their share of the turn ran out, or that a
    /// released hold lets handle their kept frames: read first next turn, which does not
    /// sleep while there are any.
    pub read_again: Vec<ConnKey>,
    /// Publishers held because they sent more than Receive Maximum ahead of their
    /// acknowledgements (with their serials): released once those are written.
    pub window_waiters: Vec<(ConnKey, u64)>,
    /// Connections to close at the end of this turn, after their output is flushed.
    pub close: Vec<ConnKey>,
    /// The one buffer every socket is read into; whole frames are decoded from it directly.
    pub read_scratch: Vec<u8>,
    /// Matching subscriptions of the message being routed (see `core/route.rs`).
    pub matches: Matches,
    /// The deliveries of the message being routed and what each does.
    pub plan: Plan,
}

impl Turn {
    /// Lists a connection to be read again next turn (once).
    pub fn read_next_turn(&mut self, token: ConnKey) {
        if !self.read_again.contains(&token) {
            self.read_again.push(token);
        }
    }
}
