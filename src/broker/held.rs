//! Bytes kept back until the store batch they follow is durable, released in order: a
//! bridge link's output (a PUBACK to the upstream for a message now in the local queues,
//! a QoS 2 PUBLISH whose packet id is recorded) waits for the batch without the loop
//! waiting for the disk. A client connection keeps its own, with the delivery waits.

use std::collections::VecDeque;

/// Parts of output, each waiting for a batch, oldest first, and what was let go.
#[derive(Debug, Default)]
pub struct HeldBytes {
    parts: VecDeque<(u64, Vec<u8>)>,
    /// Released parts, older than anything made since: they go first.
    ready: Vec<u8>,
}

impl HeldBytes {
    /// Moves all of `out` behind what is held, to wait for `batch` (or, with `None`, for
    /// what the last part waits for). Nothing moves when nothing waits.
    pub fn hold(&mut self, batch: Option<u64>, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        let Some(batch) = batch.or_else(|| self.until()) else {
            return;
        };
        match self.parts.back_mut() {
            Some((last, bytes)) if *last >= batch => bytes.append(out),
            _ => self.parts.push_back((batch, std::mem::take(out))),
        }
    }

    /// Lets the parts whose batch is at most `done` go, in order (see [`Self::take_ready`]).
    pub fn release(&mut self, done: u64) {
        while self.parts.front().is_some_and(|(batch, _)| *batch <= done) {
            if let Some((_, mut bytes)) = self.parts.pop_front() {
                self.ready.append(&mut bytes);
            }
        }
    }

    /// Puts what was let go in front of `out` (which holds only what was made since).
    pub fn take_ready(&mut self, out: &mut Vec<u8>) {
        if !self.ready.is_empty() {
            self.ready.append(out);
            std::mem::swap(&mut self.ready, out);
        }
    }

    /// The latest batch something waits for.
    pub fn until(&self) -> Option<u64> {
        self.parts.back().map(|(batch, _)| *batch)
    }

    /// Forgets what is held (the batch failed: none of it may leave).
    pub fn clear(&mut self) {
        self.parts.clear();
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_leave_in_order_once_their_batch_is_done() {
        let mut held = HeldBytes::default();
        let mut out = b"a".to_vec();
        held.hold(Some(3), &mut out);
        assert!(out.is_empty());
        out.extend_from_slice(b"b");
        held.hold(None, &mut out);
        out.extend_from_slice(b"c");
        held.hold(Some(5), &mut out);
        assert_eq!(held.until(), Some(5));
        held.release(4);
        held.take_ready(&mut out);
        assert_eq!(out, b"ab");
        out.clear(); // written to the socket
        held.release(5);
        held.take_ready(&mut out);
        assert_eq!(out, b"c");
        assert_eq!(held.until(), None);
    }

    #[test]
    fn nothing_waits_when_nothing_is_held_or_pending() {
        let mut held = HeldBytes::default();
        let mut out = b"ping".to_vec();
        held.hold(None, &mut out);
        assert_eq!(out, b"ping");
        assert_eq!(held.until(), None);
    }

    #[test]
    fn an_earlier_batch_after_a_later_one_still_waits_behind_it() {
        let mut held = HeldBytes::default();
        let mut out = b"x".to_vec();
        held.hold(Some(7), &mut out);
        out.extend_from_slice(b"y");
        held.hold(Some(6), &mut out);
        held.release(6);
        held.take_ready(&mut out);
        assert!(out.is_empty());
        held.release(7);
        held.take_ready(&mut out);
        assert_eq!(out, b"xy");
    }

    #[test]
    fn what_was_let_go_leaves_before_what_was_made_since() {
        let mut held = HeldBytes::default();
        let mut out = b"CONNECT".to_vec();
        held.hold(Some(1), &mut out);
        // A later turn makes output, then hears that batch 1 is durable.
        out.extend_from_slice(b"+PING");
        held.release(1);
        held.take_ready(&mut out);
        assert_eq!(out, b"CONNECT+PING");
    }
}
