//! Session queues: where a waiting message is kept (in memory, or in a persistent session's
//! tail on disk), what it counts against the budgets, and paging a disk tail back into
//! memory as the client takes it. The limits and what they decide are `core/queue.rs`.
//!
//! A persistent session's queued QoS 1/2 messages are always in the store. Memory holds
//! only a page of them, and only while the client is online: an offline session costs the
//! same memory however deep its queue. A clean session's queue lives in memory only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::persist::loaded_message;
use super::Broker;
use crate::core::keys::SessionKey;
use crate::core::message::Message;
use crate::core::queue::{backed, queued_size, Full, QueueLimits};
use crate::core::session::{InflightState, Outbound, Session};
use crate::protocol::Qos;
use crate::topic::{self, parse_shared};

/// Messages of a persistent session's queue kept in memory while its client is online:
/// enough to keep a full in-flight window going between page reads.
const PAGE: usize = 1024;
/// A page read only to drop the oldest message of an offline session.
const DROP_PAGE: usize = 64;

impl Broker {
    /// The queue limits of the config now.
    pub(super) fn queue_limits(&self) -> QueueLimits {
        QueueLimits::of(&self.config)
    }

    /// Queues a message whatever the limits (they were checked before, if they apply): in
    /// memory, or only on disk for a persistent session whose client is offline, whose
    /// memory page is full or whose disk tail is not empty (order is kept).
    pub(super) fn push_queue(&mut self, session: SessionKey, outbound: Outbound, now: Instant) {
        let size = queued_size(&outbound);
        let backed = backed(&self.sessions[session], outbound.qos) && outbound.seq.is_some();
        let memory_spent = self.config.limits.max_queued_memory > 0
            && self.budget.memory_bytes + size > self.config.limits.max_queued_memory;
        let s = &self.sessions[session];
        let flight = s.flight();
        let to_disk = backed
            && (s.connection().is_none()
                || flight.disk.count > 0
                || flight.queue.len() >= PAGE
                || memory_spent);
        self.stage_queue(
            session,
            &outbound,
            None,
            InflightState::Published,
            true,
            now,
        );
        self.budget.messages += 1;
        if backed {
            self.budget.disk_bytes += size;
        }
        let flight = self.sessions[session].flight_mut();
        flight.queued_bytes += size;
        if to_disk {
            flight.disk.count += 1;
            flight.disk.bytes += size;
        } else {
            flight.queue.push_back(outbound);
            self.budget.memory_bytes += size;
        }
    }

    /// Takes the oldest queued message, reading the next page from disk when memory holds
    /// none of the queue.
    pub(super) fn pop_queue(&mut self, session: SessionKey, now: Instant) -> Option<Outbound> {
        let s = &self.sessions[session];
        if s.flight().queue.is_empty() && s.flight().disk.count > 0 {
            let page = if s.connection().is_some() {
                PAGE
            } else {
                DROP_PAGE
            };
            self.page_in(session, page, now);
        }
        let stored = self.sessions[session].stored;
        let s = &mut self.sessions[session];
        let flight = s.flight_mut();
        let outbound = flight.queue.pop_front();
        if let Some(outbound) = &outbound {
            let size = queued_size(outbound);
            take(&mut flight.queued_bytes, size);
            take(&mut self.budget.memory_bytes, size);
            take(&mut self.budget.messages, 1);
            if stored && outbound.seq.is_some() {
                take(&mut self.budget.disk_bytes, size);
            }
        }
        s.settle();
        outbound
    }

    /// Brings up to `limit` messages of the session's disk tail into memory, in order.
    fn page_in(&mut self, session: SessionKey, limit: usize, now: Instant) {
        // The rows to read may still be staged, or with the writer.
        if self.writes_pending() {
            self.sync_store();
        }
        let s = &self.sessions[session];
        let after = s.flight().disk.after_seq;
        let rows = match self.db.store.load_queue_page(&s.client_id, after, limit) {
            Ok(rows) => rows,
            Err(e) => {
                self.stats.store_failures += 1;
                log::error!("client {}: cannot read its queue: {e}", s.client_id);
                return;
            }
        };
        let mut bodies: HashMap<u64, Arc<Message>> = HashMap::new();
        let mut page = VecDeque::with_capacity(rows.len());
        for row in &rows {
            let message = bodies
                .entry(row.message_id)
                .or_insert_with(|| {
                    let message = loaded_message(&row.message, now);
                    let _ = message.store_id.set(row.message_id);
                    message
                })
                .clone();
            let (retain, subscription_ids) = delivery_flags(s, &message);
            page.push_back(Outbound {
                message,
                qos: Qos::from_u8(row.qos).unwrap_or(Qos::AtLeastOnce),
                retain,
                subscription_ids,
                seq: Some(row.seq),
            });
        }
        let bytes: usize = page.iter().map(queued_size).sum();
        let s = &mut self.sessions[session];
        let client_id = s.client_id.clone();
        let flight = s.flight_mut();
        if let Some(last) = page.back().and_then(|o| o.seq) {
            flight.disk.after_seq = last;
        }
        flight.disk.count = flight.disk.count.saturating_sub(page.len());
        flight.disk.bytes = flight.disk.bytes.saturating_sub(bytes);
        self.budget.memory_bytes += bytes;
        flight.queue.append(&mut page);
        if rows.len() < limit && flight.disk.count > 0 {
            // Fewer rows than counted (they expired at start-up, say): forget the rest.
            log::warn!(
                "client {client_id}: {} queued messages counted on disk were not found",
                flight.disk.count
            );
            let (count, bytes) = (flight.disk.count, flight.disk.bytes);
            flight.disk.count = 0;
            flight.disk.bytes = 0;
            take(&mut flight.queued_bytes, bytes);
            take(&mut self.budget.messages, count);
            take(&mut self.budget.disk_bytes, bytes);
        }
    }

    /// The client of a persistent session went offline: its queue's memory page is in the
    /// store already, so memory lets go of it.
    pub(super) fn spill_queue(&mut self, session: SessionKey) {
        let s = &mut self.sessions[session];
        if !s.stored || s.flight().queue.is_empty() {
            return;
        }
        let flight = s.flight_mut();
        let mut kept = VecDeque::new();
        let mut first = None;
        for outbound in flight.queue.drain(..) {
            let Some(seq) = outbound.seq else {
                // QoS 0 (queue_qos0): it has no row, so it stays in memory.
                kept.push_back(outbound);
                continue;
            };
            first.get_or_insert(seq);
            let size = queued_size(&outbound);
            flight.disk.count += 1;
            flight.disk.bytes += size;
            take(&mut self.budget.memory_bytes, size);
        }
        if let Some(seq) = first {
            flight.disk.after_seq = seq - 1;
        }
        flight.queue = kept;
    }

    /// Brings a persistent session's whole disk tail into memory before the session stops
    /// being persistent (its rows are about to be deleted).
    pub(super) fn unspill_queue(&mut self, session: SessionKey, now: Instant) {
        let count = self.sessions[session].flight().disk.count;
        if count > 0 {
            self.page_in(session, count, now);
        }
        let bytes: usize = self.sessions[session]
            .flight()
            .queue
            .iter()
            .filter(|o| o.seq.is_some())
            .map(queued_size)
            .sum();
        take(&mut self.budget.disk_bytes, bytes);
    }

    /// A session became persistent with messages already queued in memory: they are now
    /// in the store too, and count against the disk budget.
    pub(super) fn back_queue(&mut self, session: SessionKey) {
        let bytes: usize = self.sessions[session]
            .flight()
            .queue
            .iter()
            .filter(|o| o.seq.is_some())
            .map(queued_size)
            .sum();
        self.budget.disk_bytes += bytes;
    }

    /// Makes room by dropping the session's oldest queued message; false if it has none.
    pub(super) fn drop_oldest(&mut self, session: SessionKey, full: Full, now: Instant) -> bool {
        let Some(oldest) = self.pop_queue(session, now) else {
            return false;
        };
        self.stage_dequeue(session, &oldest);
        self.count_drop(session, &oldest, full);
        true
    }

    /// Counts and (the first and every thousandth time per session) logs a message dropped
    /// for a full queue.
    pub(super) fn count_drop(&mut self, session: SessionKey, outbound: &Outbound, full: Full) {
        self.stats.messages_dropped += 1;
        self.stats.dropped_queue_full += 1;
        let s = &mut self.sessions[session];
        s.dropped += 1;
        if s.dropped % 1000 == 1 {
            log::warn!(
                "client {}: message on {} dropped because {} ({} dropped so far)",
                s.client_id,
                outbound.message.topic,
                full.why(),
                s.dropped
            );
        }
    }

    /// What a session's queue counted against the budgets, given back when it ends.
    pub(super) fn forget_queue(&mut self, session: SessionKey) {
        let s = &self.sessions[session];
        let flight = s.flight();
        let memory: usize = flight.queue.iter().map(queued_size).sum();
        let backed: usize = flight
            .queue
            .iter()
            .filter(|o| s.stored && o.seq.is_some())
            .map(queued_size)
            .sum::<usize>()
            + flight.disk.bytes;
        take(&mut self.budget.messages, flight.queued());
        take(&mut self.budget.memory_bytes, memory);
        take(&mut self.budget.disk_bytes, backed);
    }
}

/// The RETAIN flag and Subscription Identifiers of a delivery read back from disk (the
/// store keeps neither per row), from the session's subscriptions that match it.
fn delivery_flags(session: &Session, message: &Message) -> (bool, Vec<u32>) {
    let mut retain = false;
    let mut ids = Vec::new();
    for (filter, entry) in session.subscriptions() {
        let plain = match parse_shared(filter) {
            Some(Ok(shared)) => shared.filter,
            _ => filter,
        };
        if topic::matches(plain, &message.topic) {
            retain |= entry.options.retain_as_published && message.retain;
            ids.extend(entry.identifier);
        }
    }
    (retain, ids)
}

/// Takes `n` off a queue counter. The counters balance exactly (debug builds check it); a
/// release build saturates rather than wrap, so a slip could never make a budget look spent.
fn take(counter: &mut usize, n: usize) {
    debug_assert!(*counter >= n, "queue counter {counter} below {n}");
    *counter = counter.saturating_sub(n);
}
