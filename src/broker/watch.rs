//! What the web console shows of recent traffic: the topics seen since start (at most
//! [`MAX_TOPICS`]), each with its message count, last time and last [`LAST_MESSAGES`]
//! messages, each with up to [`KEEP_BYTES`] of its payload while the table's
//! [`KEEP_BUDGET`] lasts and [`PREVIEW_BYTES`] once it is spent. Recording a message costs
//! O(1) and allocates nothing once a topic's ring is full (its buffers are reused); when the
//! table is full a topic not published to since the clock hand last passed it is forgotten
//! (the CLOCK approximation of least recently used).

use std::collections::{HashMap, VecDeque};

use crate::protocol::Qos;

/// Topics remembered at once.
pub const MAX_TOPICS: usize = 1024;
/// Messages remembered per topic.
pub const LAST_MESSAGES: usize = 10;
/// Payload bytes always kept of each remembered message: 10 × 1024 of them are about 1.3 MB.
pub const PREVIEW_BYTES: usize = 128;
/// Payload bytes kept of a message while the budget lasts, for the console's viewer.
pub const KEEP_BYTES: usize = 4 * 1024;
/// Buffer bytes the table may hold beyond the previews (the sum of their capacities),
/// so sensors with small payloads are seen whole while a few large ones cannot grow it.
pub const KEEP_BUDGET: usize = 2 * 1024 * 1024;

/// One remembered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Unix milliseconds when the broker took it.
    pub at_ms: u64,
    pub qos: Qos,
    pub retain: bool,
    /// The whole payload's size; `preview` holds its first bytes: up to [`KEEP_BYTES`]
    /// while the budget lasts, else [`PREVIEW_BYTES`].
    pub size: usize,
    pub preview: Vec<u8>,
}

/// One topic's history.
#[derive(Debug)]
pub struct TopicEntry {
    pub topic: Box<str>,
    /// Messages published to it since start (or since it was last forgotten).
    pub messages: u64,
    /// Unix milliseconds of the last message.
    pub last_ms: u64,
    /// Oldest first.
    pub recent: VecDeque<Seen>,
    /// Set by each message, cleared by the clock hand: a topic is forgotten only after a
    /// full turn of the hand without a message.
    referenced: bool,
}

/// The bounded topic table.
#[derive(Debug, Default)]
pub struct TopicWatch {
    index: HashMap<Box<str>, usize>,
    slots: Vec<TopicEntry>,
    /// Next slot the clock looks at when one must be reused.
    hand: usize,
    /// Topics dropped to make room, so the page can say the list is not complete.
    pub forgotten: u64,
    /// Buffer capacity held beyond [`PREVIEW_BYTES`] per message, at most [`KEEP_BUDGET`].
    kept: usize,
}

/// A buffer's capacity beyond what every message may keep.
fn extra(buf: &Vec<u8>) -> usize {
    buf.capacity().saturating_sub(PREVIEW_BYTES)
}

impl TopicWatch {
    /// Notes one message published to `topic`.
    pub fn record(&mut self, topic: &str, payload: &[u8], qos: Qos, retain: bool, at_ms: u64) {
        let slot = match self.index.get(topic) {
            Some(&slot) => slot,
            None => self.make_room(topic, at_ms),
        };
        let entry = &mut self.slots[slot];
        entry.messages += 1;
        entry.last_ms = at_ms;
        entry.referenced = true;
        let mut seen = if entry.recent.len() == LAST_MESSAGES {
            entry.recent.pop_front().expect("a full ring")
        } else {
            Seen {
                at_ms,
                qos,
                retain,
                size: 0,
                preview: Vec::with_capacity(PREVIEW_BYTES),
            }
        };
        seen.at_ms = at_ms;
        seen.qos = qos;
        seen.retain = retain;
        seen.size = payload.len();
        // This buffer's share of the budget is given back, then taken again for what it keeps.
        self.kept -= extra(&seen.preview);
        let room = PREVIEW_BYTES + KEEP_BUDGET.saturating_sub(self.kept);
        let keep = payload.len().min(KEEP_BYTES).min(room);
        seen.preview.clear();
        if extra(&seen.preview) > KEEP_BUDGET.saturating_sub(self.kept) {
            seen.preview.shrink_to(keep.max(PREVIEW_BYTES));
        }
        seen.preview.reserve_exact(keep);
        seen.preview.extend_from_slice(&payload[..keep]);
        self.kept += extra(&seen.preview);
        entry.recent.push_back(seen);
    }

    /// A slot for a topic not in the table: a new one while there is room, else the first
    /// one the clock hand finds unreferenced.
    fn make_room(&mut self, topic: &str, at_ms: u64) -> usize {
        let fresh = TopicEntry {
            topic: topic.into(),
            messages: 0,
            last_ms: at_ms,
            recent: VecDeque::with_capacity(LAST_MESSAGES),
            referenced: false,
        };
        let slot = if self.slots.len() < MAX_TOPICS {
            self.slots.push(fresh);
            self.slots.len() - 1
        } else {
            // Each step clears a bit, so this ends within one turn of the hand.
            while self.slots[self.hand].referenced {
                self.slots[self.hand].referenced = false;
                self.hand = (self.hand + 1) % MAX_TOPICS;
            }
            let slot = self.hand;
            self.hand = (self.hand + 1) % MAX_TOPICS;
            let old = std::mem::replace(&mut self.slots[slot], fresh);
            self.kept -= old.recent.iter().map(|s| extra(&s.preview)).sum::<usize>();
            self.index.remove(&old.topic);
            self.forgotten += 1;
            slot
        };
        self.index.insert(topic.into(), slot);
        slot
    }

    /// Every remembered topic, in no particular order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicEntry> {
        self.slots.iter()
    }

    /// The history of one topic, if remembered.
    pub fn get(&self, topic: &str) -> Option<&TopicEntry> {
        self.index.get(topic).map(|&slot| &self.slots[slot])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_ten_messages_whole_while_small() {
        let mut watch = TopicWatch::default();
        for i in 0..25u64 {
            let payload = format!("m{i}").repeat(if i == 24 { 100 } else { 1 });
            watch.record("a/b", payload.as_bytes(), Qos::AtLeastOnce, i % 2 == 0, i);
        }
        let entry = watch.get("a/b").unwrap();
        assert_eq!((entry.messages, entry.last_ms), (25, 24));
        let previews: Vec<_> = entry.recent.iter().map(|s| s.at_ms).collect();
        assert_eq!(previews, (15..25).collect::<Vec<_>>());
        let last = entry.recent.back().unwrap();
        assert_eq!((last.size, last.preview.len()), (300, 300), "kept whole");
        assert!(last.retain);
        assert_eq!(entry.recent[0].preview, b"m15");
        assert!(watch.get("a/c").is_none());
    }

    #[test]
    fn a_full_table_forgets_a_quiet_topic_not_a_busy_one() {
        let mut watch = TopicWatch::default();
        for i in 0..MAX_TOPICS {
            watch.record(&format!("t/{i}"), b"x", Qos::AtMostOnce, false, 1);
        }
        // Every bit is set: the first newcomer sweeps them all and takes slot 0.
        watch.record("new/1", b"x", Qos::AtMostOnce, false, 2);
        assert!(watch.get("t/0").is_none());
        // t/1 is busy again; the next newcomer passes it by and takes t/2's slot.
        watch.record("t/1", b"x", Qos::AtMostOnce, false, 3);
        watch.record("new/2", b"x", Qos::AtMostOnce, false, 4);
        assert!(watch.get("t/1").is_some());
        assert!(watch.get("t/2").is_none());
        assert_eq!(watch.forgotten, 2);
        assert_eq!(watch.topics().count(), MAX_TOPICS);
        assert_eq!(watch.get("new/2").unwrap().messages, 1);
    }

    #[test]
    fn large_payloads_are_cut_and_the_budget_bounds_the_table() {
        let mut watch = TopicWatch::default();
        let big = vec![7u8; 100_000];
        watch.record("big", &big, Qos::AtMostOnce, false, 1);
        let seen = watch.get("big").unwrap().recent.back().unwrap();
        assert_eq!((seen.size, seen.preview.len()), (100_000, KEEP_BYTES));
        // Far more large messages than the budget holds: later ones keep previews only,
        // and the buffers never hold more than the budget beyond the previews.
        for i in 0..2000 {
            watch.record(&format!("t/{i}"), &big, Qos::AtMostOnce, false, 2);
            assert!(watch.kept <= KEEP_BUDGET, "{} after {i}", watch.kept);
        }
        let last = watch.get("t/1999").unwrap().recent.back().unwrap();
        assert_eq!(last.preview.len(), PREVIEW_BYTES);
        // Rings that turn over give their buffers back: small messages fit again.
        for _ in 0..LAST_MESSAGES {
            watch.record("t/0", b"small", Qos::AtMostOnce, false, 3);
        }
        let total: usize = watch
            .topics()
            .flat_map(|t| t.recent.iter())
            .map(|s| extra(&s.preview))
            .sum();
        assert_eq!(total, watch.kept, "the account matches the buffers");
    }
}
