//! The forward queue of one bridge: QoS 1/2 messages bound upstream, in order, each with a
//! sequence number that is also its row in the store. The oldest part of the queue is in
//! memory (at most [`MEMORY_ENTRIES`]); the rest lives only on disk and is read back in
//! batches as the front drains, so a long outage costs disk, not memory. Pure: the caller
//! does the store writes and reads each method asks for.
//!
//! A message is *waiting* until it is sent, then *in flight* with a packet id until the
//! upstream acknowledges it (PUBACK, or PUBREC then PUBCOMP for QoS 2); only then is it
//! forgotten. After a reconnect everything in flight is sent again first, in order.

use std::collections::VecDeque;

use crate::protocol::{PacketId, Qos};

/// Queued messages kept in memory; more wait on disk only.
pub const MEMORY_ENTRIES: usize = 512;

/// A message as it crosses the link: already mapped to its upstream topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: Box<str>,
    pub payload: Box<[u8]>,
    pub qos: Qos,
    pub retain: bool,
    /// The forwardable MQTT 5 properties as an encoded property block (the store's form).
    pub properties: Box<[u8]>,
    /// Unix seconds after which it is not worth sending (Message Expiry).
    pub expires_at: Option<i64>,
}

impl Outgoing {
    /// What it counts against the disk budget.
    pub fn size(&self) -> u64 {
        (self.topic.len() + self.payload.len() + self.properties.len()) as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub msg: Outgoing,
}

/// Where an in-flight message is in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREC came, PUBREL sent; waiting for PUBCOMP.
    Released,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub entry: Entry,
    pub packet_id: PacketId,
    pub stage: Stage,
}

/// What `push` did with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub seq: u64,
    /// Kept in memory too (false: on disk only until the front drains).
    pub in_memory: bool,
}

/// The upstream's answer to an in-flight message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// Done: forget message `seq` (PUBACK, PUBCOMP, or a PUBREC with an error code).
    Done { seq: u64, refused: bool },
    /// PUBREC: send PUBREL with this id and record the stage of `seq`.
    Release { seq: u64, packet_id: PacketId },
}

#[derive(Debug, Default)]
pub struct ForwardQueue {
    /// In memory, not sent (or to be sent again as new after the upstream lost our
    /// session), oldest first.
    waiting: VecDeque<Entry>,
    /// Sent and not yet acknowledged, in send order.
    inflight: VecDeque<InFlight>,
    /// Sequence numbers from here up are on disk only; `None` when all is in memory.
    on_disk_from: Option<u64>,
    next_seq: u64,
    /// Every queued message (memory and disk), and their sizes.
    count: u64,
    bytes: u64,
    /// The last packet id handed out.
    last_id: u16,
}

/// What the store holds for a bridge at start-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub bytes: u64,
    /// The highest seq in the store, if any.
    pub last_seq: Option<u64>,
}

impl ForwardQueue {
    /// A queue over what the store holds; rows come in with [`Self::loaded`].
    pub fn resume(totals: Totals) -> ForwardQueue {
        ForwardQueue {
            next_seq: totals.last_seq.map_or(0, |s| s + 1),
            on_disk_from: (totals.count > 0).then_some(0),
            count: totals.count,
            bytes: totals.bytes,
            ..ForwardQueue::default()
        }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends a message; the caller stages its row with the returned seq.
    pub fn push(&mut self, msg: Outgoing) -> Pushed {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.count += 1;
        self.bytes += msg.size();
        let in_memory = self.on_disk_from.is_none()
            && self.waiting.len() + self.inflight.len() < MEMORY_ENTRIES;
        if in_memory {
            self.waiting.push_back(Entry { seq, msg });
        } else {
            self.on_disk_from.get_or_insert(seq);
        }
        Pushed { seq, in_memory }
    }

    /// True when adding `size` bytes would pass `budget`.
    pub fn over_budget(&self, size: u64, budget: u64) -> bool {
        self.bytes + size > budget
    }

    /// Drops the oldest message not yet sent, to make room; returns its seq for the store
    /// delete. `None` when nothing in memory can go (refill first, or all is in flight).
    pub fn drop_oldest(&mut self) -> Option<u64> {
        let entry = self.waiting.pop_front()?;
        self.count -= 1;
        self.bytes -= entry.msg.size();
        Some(entry.seq)
    }

    /// The first seq to read from the store when the front runs low, if any.
    pub fn wants_refill(&self) -> Option<u64> {
        let start = self.on_disk_from?;
        (self.waiting.len() < MEMORY_ENTRIES / 2).then_some(start)
    }

    /// The seq of the newest message ever queued (a read that reaches it has read all).
    pub fn newest_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1)
    }

    /// How many rows a refill may read.
    pub fn refill_room(&self) -> usize {
        MEMORY_ENTRIES.saturating_sub(self.waiting.len() + self.inflight.len())
    }

    /// Rows read from the store, in seq order from [`Self::wants_refill`]'s seq.
    /// `complete` says the read reached the end of the stored queue. Rows that were sent
    /// before a restart (`packet_id` set) go in flight, to be sent again on connect.
    pub fn loaded(&mut self, rows: Vec<(Entry, Option<(PacketId, Stage)>)>, complete: bool) {
        let mut last = None;
        for (entry, sent) in rows {
            last = Some(entry.seq);
            if self.inflight.iter().any(|i| i.entry.seq == entry.seq)
                || self.waiting.iter().any(|e| e.seq == entry.seq)
            {
                continue;
            }
            match sent {
                Some((packet_id, stage)) => self.inflight.push_back(InFlight {
                    entry,
                    packet_id,
                    stage,
                }),
                None => self.waiting.push_back(entry),
            }
        }
        self.on_disk_from = match (complete, last) {
            (true, _) => None,
            (false, Some(seq)) => Some(seq + 1),
            (false, None) => self.on_disk_from,
        };
        if let Some(max) = self.inflight.iter().map(|i| i.packet_id.get()).max() {
            self.last_id = self.last_id.max(max);
        }
    }

    /// A new connection: `session_present` says whether the upstream kept our session.
    /// Without it, a QoS 2 message whose PUBREC came is forgotten (the upstream had it);
    /// returns those seqs. Everything still in flight is then sent again, in order
    /// ([`Self::inflight`]).
    pub fn reconnected(&mut self, session_present: bool) -> Vec<u64> {
        let mut done = Vec::new();
        if !session_present {
            let mut kept = VecDeque::with_capacity(self.inflight.len());
            for item in self.inflight.drain(..) {
                if item.stage == Stage::Released {
                    self.count -= 1;
                    self.bytes -= item.entry.msg.size();
                    done.push(item.entry.seq);
                } else {
                    kept.push_back(item);
                }
            }
            self.inflight = kept;
        }
        done
    }

    /// What is in flight, in send order.
    pub fn inflight(&self) -> impl Iterator<Item = &InFlight> {
        self.inflight.iter()
    }

    /// Moves the next waiting message in flight with a fresh packet id, if the window
    /// (`window` unacknowledged at once) has room. `reserved` ids (a SUBSCRIBE in flight)
    /// are skipped.
    pub fn next_to_send(&mut self, window: usize, reserved: &[u16]) -> Option<&InFlight> {
        if self.inflight.len() >= window {
            return None;
        }
        let entry = self.waiting.pop_front()?;
        let packet_id = self.free_id(reserved)?;
        self.inflight.push_back(InFlight {
            entry,
            packet_id,
            stage: Stage::Published,
        });
        self.inflight.back()
    }

    /// Forgets an expired message that was about to be sent (it stays out of flight).
    pub fn expire_front(&mut self, now_unix: i64) -> Option<u64> {
        let expired = self
            .waiting
            .front()
            .is_some_and(|e| e.msg.expires_at.is_some_and(|at| at <= now_unix));
        expired.then(|| self.drop_oldest()).flatten()
    }

    /// PUBACK for `packet_id`.
    pub fn puback(&mut self, packet_id: PacketId, refused: bool) -> Option<Acked> {
        let i = self.position(packet_id, Stage::Published)?;
        Some(self.finish(i, refused))
    }

    /// PUBREC for `packet_id`: on success the message moves to Released.
    pub fn pubrec(&mut self, packet_id: PacketId, refused: bool) -> Option<Acked> {
        let i = self.position(packet_id, Stage::Published)?;
        if refused {
            return Some(self.finish(i, true));
        }
        let item = &mut self.inflight[i];
        item.stage = Stage::Released;
        Some(Acked::Release {
            seq: item.entry.seq,
            packet_id,
        })
    }

    /// PUBCOMP for `packet_id`.
    pub fn pubcomp(&mut self, packet_id: PacketId) -> Option<Acked> {
        let i = self.position(packet_id, Stage::Released)?;
        Some(self.finish(i, false))
    }

    /// A packet id free for a SUBSCRIBE (not in flight, not in `reserved`).
    pub fn free_id(&mut self, reserved: &[u16]) -> Option<PacketId> {
        for _ in 0..=u16::MAX {
            self.last_id = self.last_id.wrapping_add(1).max(1);
            let id = self.last_id;
            if !reserved.contains(&id) && !self.inflight.iter().any(|i| i.packet_id.get() == id) {
                return PacketId::new(id);
            }
        }
        None
    }

    /// An in-flight message by id and stage. The QoS is not checked: an upstream with a
    /// lower Maximum QoS acknowledges a QoS 2 message with PUBACK.
    fn position(&self, packet_id: PacketId, stage: Stage) -> Option<usize> {
        self.inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.stage == stage)
    }

    fn finish(&mut self, i: usize, refused: bool) -> Acked {
        let item = self.inflight.remove(i).expect("position is in range");
        self.count -= 1;
        self.bytes -= item.entry.msg.size();
        Acked::Done {
            seq: item.entry.seq,
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize, qos: Qos) -> Outgoing {
        Outgoing {
            topic: format!("t/{n}").into(),
            payload: vec![b'x'; 10].into(),
            qos,
            retain: false,
            properties: Box::default(),
            expires_at: None,
        }
    }

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn send_all(q: &mut ForwardQueue, window: usize) -> Vec<(u64, u16)> {
        let mut sent = Vec::new();
        while let Some(i) = q.next_to_send(window, &[]) {
            sent.push((i.entry.seq, i.packet_id.get()));
        }
        sent
    }

    #[test]
    fn sends_in_order_within_the_window_and_forgets_only_on_ack() {
        let mut q = ForwardQueue::default();
        for n in 0..5 {
            assert_eq!(q.push(msg(n, Qos::AtLeastOnce)).seq, n as u64);
        }
        assert_eq!(send_all(&mut q, 3), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(q.len(), 5);
        assert_eq!(
            q.puback(id(2), false),
            Some(Acked::Done {
                seq: 1,
                refused: false
            })
        );
        assert_eq!(q.puback(id(2), false), None, "an ack is used once");
        assert_eq!(q.pubcomp(id(1)), None, "PUBCOMP needs a PUBREC first");
        assert_eq!(send_all(&mut q, 3), vec![(3, 4)]);
        assert_eq!(q.len(), 4);
        assert_eq!(q.bytes(), 4 * (3 + 10));
    }

    #[test]
    fn qos2_goes_through_pubrec_then_pubcomp() {
        let mut q = ForwardQueue::default();
        q.push(msg(0, Qos::ExactlyOnce));
        assert_eq!(send_all(&mut q, 10), vec![(0, 1)]);
        assert_eq!(q.pubcomp(id(1)), None, "PUBCOMP before PUBREC is ignored");
        assert_eq!(
            q.pubrec(id(1), false),
            Some(Acked::Release {
                seq: 0,
                packet_id: id(1)
            })
        );
        assert_eq!(q.pubrec(id(1), false), None);
        assert_eq!(q.len(), 1, "kept until PUBCOMP");
        assert_eq!(
            q.pubcomp(id(1)),
            Some(Acked::Done {
                seq: 0,
                refused: false
            })
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_refusing_pubrec_ends_the_message() {
        let mut q = ForwardQueue::default();
        q.push(msg(0, Qos::ExactlyOnce));
        send_all(&mut q, 1);
        assert_eq!(
            q.pubrec(id(1), true),
            Some(Acked::Done {
                seq: 0,
                refused: true
            })
        );
        assert!(q.is_empty());
    }

    #[test]
    fn reconnecting_resends_in_flight_and_drops_released_without_a_session() {
        let mut q = ForwardQueue::default();
        q.push(msg(0, Qos::ExactlyOnce));
        q.push(msg(1, Qos::AtLeastOnce));
        q.push(msg(2, Qos::AtLeastOnce));
        send_all(&mut q, 2);
        q.pubrec(id(1), false);
        assert!(q.reconnected(true).is_empty());
        let resend: Vec<_> = q.inflight().map(|i| (i.entry.seq, i.stage)).collect();
        assert_eq!(resend, vec![(0, Stage::Released), (1, Stage::Published)]);
        assert_eq!(q.reconnected(false), vec![0]);
        let resend: Vec<_> = q.inflight().map(|i| i.entry.seq).collect();
        assert_eq!(resend, vec![1]);
        assert_eq!(q.len(), 2);
        assert_eq!(send_all(&mut q, 2), vec![(2, 3)]);
    }

    #[test]
    fn packet_ids_skip_those_in_use_and_reserved() {
        let mut q = ForwardQueue::default();
        for n in 0..3 {
            q.push(msg(n, Qos::AtLeastOnce));
        }
        q.next_to_send(10, &[]);
        assert_eq!(q.free_id(&[3]).map(|p| p.get()), Some(2));
        assert_eq!(q.next_to_send(10, &[2]).map(|i| i.packet_id.get()), Some(3));
        q.last_id = u16::MAX - 1;
        assert_eq!(q.free_id(&[]).map(|p| p.get()), Some(u16::MAX));
        assert_eq!(
            q.free_id(&[]).map(|p| p.get()),
            Some(2),
            "wraps, skipping 1 and 3"
        );
    }

    #[test]
    fn a_long_queue_spills_to_disk_and_refills_in_order() {
        let mut q = ForwardQueue::default();
        let total = MEMORY_ENTRIES + 100;
        let mut spilled = 0;
        for n in 0..total {
            if !q.push(msg(n, Qos::AtLeastOnce)).in_memory {
                spilled += 1;
            }
        }
        assert_eq!(spilled, 100);
        assert_eq!(q.len(), total as u64);
        assert_eq!(q.wants_refill(), None, "the front is still full");
        let sent = send_all(&mut q, MEMORY_ENTRIES);
        assert_eq!(sent.len(), MEMORY_ENTRIES);
        assert_eq!(q.wants_refill(), Some(MEMORY_ENTRIES as u64));
        assert_eq!(q.refill_room(), 0, "everything in memory is in flight");
        for (_, pid) in &sent[..200] {
            q.puback(id(*pid), false);
        }
        assert_eq!(q.refill_room(), 200);
        let rows = (MEMORY_ENTRIES..total)
            .map(|n| {
                (
                    Entry {
                        seq: n as u64,
                        msg: msg(n, Qos::AtLeastOnce),
                    },
                    None,
                )
            })
            .collect();
        q.loaded(rows, true);
        assert_eq!(q.wants_refill(), None);
        let rest = send_all(&mut q, usize::MAX);
        assert_eq!(rest.first().map(|r| r.0), Some(MEMORY_ENTRIES as u64));
        assert_eq!(rest.len(), 100);
        let new = q.push(msg(0, Qos::AtLeastOnce));
        assert!(new.in_memory, "memory has room again");
        assert_eq!(new.seq, total as u64);
    }

    #[test]
    fn resume_loads_rows_sent_before_a_restart_as_in_flight() {
        let mut q = ForwardQueue::resume(Totals {
            count: 3,
            bytes: 3 * 13,
            last_seq: Some(9),
        });
        assert_eq!(q.wants_refill(), Some(0));
        let row = |seq: u64, sent| {
            (
                Entry {
                    seq,
                    msg: msg(seq as usize, Qos::ExactlyOnce),
                },
                sent,
            )
        };
        q.loaded(
            vec![
                row(7, Some((id(40), Stage::Released))),
                row(8, Some((id(41), Stage::Published))),
                row(9, None),
            ],
            true,
        );
        assert_eq!(q.push(msg(10, Qos::AtLeastOnce)).seq, 10);
        let resend: Vec<_> = q
            .inflight()
            .map(|i| (i.entry.seq, i.packet_id.get(), i.stage))
            .collect();
        assert_eq!(
            resend,
            vec![(7, 40, Stage::Released), (8, 41, Stage::Published)]
        );
        assert_eq!(send_all(&mut q, 10), vec![(9, 42), (10, 43)]);
    }

    #[test]
    fn the_budget_drops_the_oldest_waiting_message() {
        let mut q = ForwardQueue::default();
        for n in 0..3 {
            q.push(msg(n, Qos::AtLeastOnce));
        }
        send_all(&mut q, 1);
        assert!(q.over_budget(13, 3 * 13));
        assert!(!q.over_budget(13, 4 * 13));
        assert_eq!(q.drop_oldest(), Some(1), "the in-flight one stays");
        assert_eq!(q.len(), 2);
        assert_eq!(q.drop_oldest(), Some(2));
        assert_eq!(q.drop_oldest(), None);
    }

    #[test]
    fn expired_messages_are_not_sent() {
        let mut q = ForwardQueue::default();
        let mut old = msg(0, Qos::AtLeastOnce);
        old.expires_at = Some(100);
        q.push(old);
        q.push(msg(1, Qos::AtLeastOnce));
        assert_eq!(q.expire_front(99), None);
        assert_eq!(q.expire_front(100), Some(0));
        assert_eq!(q.expire_front(100), None);
        assert_eq!(send_all(&mut q, 5), vec![(1, 1)]);
    }
}
