//! The group commit, off the loop: writes are staged into the open batch, which is handed
//! to the store writer thread once its commit window (`commit_interval`) has passed or it
//! is full; the writer reports "durable up to batch N" through the inbox, and only then do
//! the acknowledgements that waited for it leave.
//!
//! An acknowledgement waits for the batch open when it was sent (and everything its
//! connection sends after it waits with it, so order is kept); a connection that waits for
//! nothing is never held up, whatever the disk does. When everything staged in the open
//! batch was undone before its window passed (a message delivered and acknowledged by
//! every subscriber), there is nothing to write, and what waited for it goes at once.
//! Reads the loop needs from the store (queue pages, bridge queues, chat) first wait until
//! everything staged is durable ([`Broker::sync_store`]), so they see it.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::client::Wait;
use super::close::Ending;
use super::Broker;
use crate::core::keys::ConnKey;
use crate::core::timers::Timer;

/// Staged writes that make a batch full: it is handed over without waiting for its window
/// (a burst commits at once, in batches of this size).
const MAX_BATCH: usize = 4096;
/// Acknowledgements waiting for the open batch that make it full as well: a publisher
/// that keeps many messages in flight gets a commit at once, while a trickle of sensors
/// shares one commit per window.
const MAX_WAITING_ACKS: usize = 32;

/// The window while a bridge link's output waits for the batch: the link's round trips
/// to the upstream are paced by our commits, so they get the short window that suits a
/// publisher waiting for its PUBACK.
const BRIDGE_WINDOW: Duration = Duration::from_millis(20);

/// Where the batches are: the one being staged, the one with the writer, what is durable.
#[derive(Debug)]
pub struct Batches {
    /// The id of the batch being staged; ids increase by one.
    open: u64,
    /// The last batch handed to the writer.
    handed: u64,
    /// Every batch up to this one is durable, or failed and its waiters were closed.
    done: u64,
    /// When the open batch must be handed over; set by its first write.
    due: Option<Instant>,
    /// Connections whose output waits for a batch (a key may be stale or listed twice).
    held: Vec<ConnKey>,
    /// Acknowledgements held for the open batch so far.
    waiting_acks: usize,
    /// Connections whose held output a commit released (by key, with the connection's
    /// serial: keys are reused): when, and how many acknowledgements were out then (at
    /// least 1). One that has as many out again within
    /// the window is paced by its acknowledgements (a publisher that sends its next
    /// messages once the last are acknowledged, one at a time or a window at a time): it
    /// is not made to wait a commit window per round. Entries older than the window are
    /// dropped at each release.
    released: HashMap<ConnKey, (u64, Instant, u16)>,
    /// The latest such release among the connections waiting for the open batch.
    paced_since: Option<Instant>,
    /// An MQTT 5 publisher is held beyond its Receive Maximum (its acknowledgements
    /// wait for a batch): it can send nothing more until they go, so the batch goes now.
    blocked: bool,
}

impl Default for Batches {
    fn default() -> Self {
        Batches {
            open: 1,
            handed: 0,
            done: 0,
            due: None,
            held: Vec::new(),
            waiting_acks: 0,
            released: HashMap::new(),
            paced_since: None,
            blocked: false,
        }
    }
}

impl Broker {
    /// Makes what `token` is sent from now on wait until what is staged so far (or is
    /// with the writer) is durable; nothing waits when nothing is. Called before an
    /// acknowledgement is queued.
    pub(super) fn await_durable(&mut self, token: ConnKey) {
        if let Some(batch) = self.pending_batch() {
            self.hold_output(token, Wait::Batch(batch));
        }
    }

    /// The batch that, once durable, makes everything staged so far durable: the open
    /// one if it has writes, else the one with the writer; `None` when nothing is pending.
    pub(super) fn pending_batch(&self) -> Option<u64> {
        let b = &self.db.batches;
        if self.db.store.has_staged() {
            Some(b.open)
        } else if self.db.writer.progress().settled() < b.handed {
            Some(b.handed)
        } else {
            None
        }
    }

    /// [`Self::await_durable`] when anything was staged since the store's count of
    /// staged writes was `before`: an acknowledgement whose handler wrote nothing (a
    /// clean session's CONNACK or SUBACK) is not held up by other clients' writes.
    pub(super) fn await_own(&mut self, token: ConnKey, before: u64) {
        if self.db.store.staged_total() != before {
            self.await_durable(token);
        }
    }

    /// Makes the acknowledgement of a publish about to be sent to `token` wait. When the
    /// publish staged nothing but its message `message` and the queue entries that deliver
    /// it (nothing else was staged since `others` was read), it waits only until every one
    /// of those entries is acknowledged or durable; otherwise for the batch.
    pub(super) fn await_delivery(&mut self, token: ConnKey, message: Option<u64>, others: u64) {
        if self.db.store.staged_others() != others {
            return self.await_durable(token);
        }
        let Some(message) = message.filter(|&id| self.db.store.stages_body(id)) else {
            // Nothing of it needs the disk.
            return;
        };
        let batch = self.db.batches.open;
        self.hold_output(token, Wait::Delivered { message, batch });
    }

    /// A publisher on `token` is held beyond its Receive Maximum: when acknowledgements
    /// of it wait for a batch, that batch is handed over without waiting for its window.
    pub(super) fn publisher_blocked(&mut self, token: ConnKey) {
        if self
            .conns
            .get(token)
            .is_some_and(|c| c.held_until().is_some())
        {
            self.db.batches.blocked = true;
        }
    }

    /// Holds what `token` is sent from now on until `wait` has happened.
    fn hold_output(&mut self, token: ConnKey, wait: Wait) {
        if let Some(conn) = self.conns.get_mut(token) {
            let b = &mut self.db.batches;
            if wait.batch() == b.open {
                b.waiting_acks += 1;
                let out = conn.unflushed_qos1_acks.max(1);
                let paced = b.released.get(&token);
                if let Some(&(_, at, _)) =
                    paced.filter(|&&(serial, _, n)| serial == conn.serial && out >= n)
                {
                    b.paced_since = b.paced_since.max(Some(at));
                }
            }
            if conn.hold(wait) {
                self.db.batches.held.push(token);
            }
        }
    }

    /// The end of a turn: start the open batch's window, hand it over when due, and let go
    /// of what became durable (or needs no write any more). The window is cut short when
    /// the batch is full, when it holds a write outside the publish flow (someone waits on
    /// it at a person's pace), or when a connection paced by its acknowledgements waits
    /// for it (see [`Batches::released`]) or is held beyond its Receive Maximum; while bridge output waits for it, it is
    /// [`BRIDGE_WINDOW`] at most.
    pub(super) fn commit_window(&mut self, now: Instant) {
        if self.db.store.has_staged() {
            let window = Duration::from_millis(self.config.runtime.commit_interval);
            let batches = &mut self.db.batches;
            if batches.due.is_none() {
                let due = now + window;
                batches.due = Some(due);
                self.timers.schedule(due, Timer::Commit);
            }
            let paced = batches
                .paced_since
                .is_some_and(|at| now.saturating_duration_since(at) <= window);
            if paced
                || batches.blocked
                || self.db.store.stages_prompt()
                || self.db.store.staged_len() >= MAX_BATCH
                || batches.waiting_acks >= MAX_WAITING_ACKS
            {
                batches.due = Some(now);
            } else if self.bridges_holding() {
                let soon = now + BRIDGE_WINDOW.min(window);
                let batches = &mut self.db.batches;
                if batches.due.is_some_and(|due| soon < due) {
                    batches.due = Some(soon);
                    self.timers.schedule(soon, Timer::Commit);
                }
            }
        }
        self.hand_over_if_due(now);
        self.settle();
    }

    /// The commit timer fired, or the writer reported: hand over what is due, release
    /// what is durable.
    pub(super) fn commit_progress(&mut self, now: Instant) {
        self.settle();
        self.hand_over_if_due(now);
        self.refill_bridges(now);
    }

    /// Hands the open batch to the writer when its window has passed and the writer is
    /// idle (while it flushes, the batch keeps gathering: one flush for all of it).
    fn hand_over_if_due(&mut self, now: Instant) {
        let b = &self.db.batches;
        let idle = self.db.writer.progress().settled() >= b.handed;
        if idle && b.due.is_some_and(|due| due <= now) {
            self.hand_over(false);
        }
    }

    /// Hands what is staged (and, with `records`, the waiting client records) to the writer.
    fn hand_over(&mut self, records: bool) {
        let writes = self.db.store.take_batch(records);
        let b = &mut self.db.batches;
        b.due = None;
        if writes.is_empty() {
            return;
        }
        self.db.writer.send(b.open, writes);
        b.handed = b.open;
        b.open += 1;
        b.waiting_acks = 0;
        b.paced_since = None;
        b.blocked = false;
    }

    /// Takes in what the writer settled: closes the connections whose acknowledgements a
    /// failed batch held, and releases those whose batch is durable. When the open batch
    /// has nothing left to write and the writer has nothing either, what waits for it goes.
    fn settle(&mut self) {
        let settled = self.db.writer.progress().settled();
        for (first, error) in self.db.writer.progress().take_failures() {
            self.commit_failed(first, &error);
        }
        let bridges_holding = self.bridges_holding();
        let b = &mut self.db.batches;
        b.done = b.done.max(settled);
        if b.held.is_empty() && !bridges_holding {
            return;
        }
        if !self.db.store.has_staged() && b.handed <= b.done {
            // Everything the open batch had was undone: nothing is left to make durable.
            b.done = b.open;
            b.open += 1;
            b.due = None;
            b.waiting_acks = 0;
            b.paced_since = None;
            b.blocked = false;
        }
        let (done, open) = (b.done, b.open);
        self.release_bridge_output(done);
        let store = &self.db.store;
        // Set when a wait ends because its batch is durable (not because of a delivery).
        let by_commit = Cell::new(false);
        let ready = |wait: Wait| match wait {
            Wait::Batch(batch) => {
                by_commit.set(by_commit.get() || batch <= done);
                batch <= done
            }
            Wait::Delivered { message, batch } => {
                by_commit.set(by_commit.get() || batch <= done);
                batch <= done || (batch == open && !store.stages_body(message))
            }
        };
        let now = Instant::now();
        let window = Duration::from_millis(self.config.runtime.commit_interval);
        let released = &mut self.db.batches.released;
        released.retain(|_, (_, at, _)| now.saturating_duration_since(*at) <= window);
        let mut held = std::mem::take(&mut self.db.batches.held);
        held.retain(|&token| {
            let Some(conn) = self.conns.get_mut(token) else {
                return false;
            };
            by_commit.set(false);
            let out = conn.unflushed_qos1_acks.max(1);
            if conn.release_held(ready) {
                if by_commit.get() {
                    released.insert(token, (conn.serial, now, out));
                }
                if !conn.in_flush_list {
                    conn.in_flush_list = true;
                    self.turn.flush.push(token);
                }
            }
            // Parts behind the released ones may still wait.
            conn.held_until().is_some()
        });
        held.append(&mut self.db.batches.held);
        self.db.batches.held = held;
    }

    /// A batch (and those committed with it, from `first` on) was rolled back: nothing
    /// that waited for it may be acknowledged. Those connections close without their held
    /// output, so their clients send again.
    fn commit_failed(&mut self, first: u64, error: &str) {
        self.stats.store_failures += 1;
        log::error!(
            "store commit failed, closing the connections whose acknowledgements waited for it: {error}"
        );
        self.services_commit_failed();
        self.bridge_commit_failed(first);
        for token in std::mem::take(&mut self.db.batches.held) {
            let waits = self
                .conns
                .get(token)
                .and_then(|c| c.held_until())
                .is_some_and(|until| until >= first);
            if waits {
                self.end_connection(token, Ending::StoreFailure);
            } else if self.conns.contains(token) {
                self.db.batches.held.push(token);
            }
        }
    }

    /// Blocks until everything staged so far is durable, and releases what waited for it:
    /// for reads that must see the staged writes, for output that cannot be held (a
    /// bridge's, a closing connection's), and for the stop.
    pub(super) fn sync_store(&mut self) {
        if self.db.store.has_staged() {
            self.hand_over(false);
        }
        self.db.writer.wait_for(self.db.batches.handed);
        self.settle();
    }

    /// True while some write is staged or with the writer.
    pub(super) fn writes_pending(&self) -> bool {
        self.db.store.has_staged() || self.db.writer.progress().settled() < self.db.batches.handed
    }

    /// The client records' delay ran out: hand them over, with whatever else is staged.
    pub(super) fn commit_records(&mut self) {
        if self.db.store.has_records() {
            self.hand_over(true);
        }
    }

    /// The stop: everything staged and every client record is committed and released,
    /// then the writer closes its connection (flush, then close).
    pub(super) fn close_store(&mut self) {
        self.sync_store();
        self.commit_records();
        self.sync_store();
        self.db.writer.close();
    }
}
