//! What the web console shows of recent traffic: the topics seen since start (at most
//! [`MAX_TOPICS`]), each with its message count, last time and last [`LAST_MESSAGES`]
//! messages, each with up to [`KEEP_BYTES`] of its payload while the table's
//! [`KEEP_BUDGET`] lasts and [`PREVIEW_BYTES`] once it is spent. Recording a message costs
//! O(1) and allocates nothing once a topic's ring is full (its buffers are reused); when the
//! table is full a topic not published to since the clock hand last passed it is forgotten
//! (the CLOCK approximation of least recently used). A message's MQTT 5 properties are
//! kept with it when it has any, within the same budget.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde::Serialize;

use crate::core::message::Message;
use crate::protocol::{Properties, Qos};

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
/// Bytes of properties kept with one message at most (user properties can be long).
pub const PROPERTIES_CAP: usize = 1024;

/// The MQTT 5 properties of a remembered message, as the console shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeenProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Box<str>>,
    /// Seconds of its Message Expiry Interval left when the broker took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<Box<[u8]>>,
    pub user_properties: Vec<(Box<str>, Box<str>)>,
}

impl SeenProperties {
    /// The properties of an inbound PUBLISH, or `None` when it has none to show.
    pub fn of_publish(p: &Properties<'_>) -> Option<SeenProperties> {
        SeenProperties {
            payload_format: p.payload_format_indicator,
            content_type: p.content_type.map(Into::into),
            message_expiry: p.message_expiry_interval,
            response_topic: p.response_topic.map(Into::into),
            correlation_data: p.correlation_data.map(Into::into),
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
        .some()
    }

    /// The properties of a routed message at `now`, or `None` when it has none to show.
    pub fn of_message(m: &Message, now: Instant) -> Option<SeenProperties> {
        let p = &m.properties;
        SeenProperties {
            payload_format: p.payload_format_indicator,
            content_type: p.content_type.clone(),
            message_expiry: m.expires_at.map(|at| {
                let left = at.saturating_duration_since(now);
                u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                    .unwrap_or(u32::MAX)
            }),
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
        }
        .some()
    }

    fn some(self) -> Option<SeenProperties> {
        (self != SeenProperties::default()).then_some(self)
    }

    /// Heap and box bytes these take in the table.
    fn bytes(&self) -> usize {
        std::mem::size_of::<SeenProperties>()
            + self.content_type.as_ref().map_or(0, |t| t.len())
            + self.response_topic.as_ref().map_or(0, |t| t.len())
            + self.correlation_data.as_ref().map_or(0, |d| d.len())
            + self
                .user_properties
                .iter()
                .map(|(k, v)| std::mem::size_of::<(Box<str>, Box<str>)>() + k.len() + v.len())
                .sum::<usize>()
    }
}

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
    /// Its MQTT 5 properties, when it had any and they fit [`PROPERTIES_CAP`] and the budget.
    pub properties: Option<Box<SeenProperties>>,
    /// It had properties that were not kept (too long, or the budget was spent).
    pub properties_dropped: bool,
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

/// What a remembered message holds of the budget: its buffer beyond the preview and its
/// properties.
fn held(seen: &Seen) -> usize {
    extra(&seen.preview) + seen.properties.as_ref().map_or(0, |p| p.bytes())
}

impl TopicWatch {
    /// Notes one message published to `topic`, with its properties if it has any.
    pub fn record(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: Qos,
        retain: bool,
        at_ms: u64,
        properties: Option<SeenProperties>,
    ) {
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
                properties: None,
                properties_dropped: false,
            }
        };
        seen.at_ms = at_ms;
        seen.qos = qos;
        seen.retain = retain;
        seen.size = payload.len();
        // This message's share of the budget is given back, then taken again for what it keeps.
        self.kept -= held(&seen);
        seen.properties = None;
        seen.properties_dropped = false;
        if let Some(p) = properties {
            let bytes = p.bytes();
            if bytes <= PROPERTIES_CAP && self.kept + bytes <= KEEP_BUDGET {
                self.kept += bytes;
                seen.properties = Some(Box::new(p));
            } else {
                seen.properties_dropped = true;
            }
        }
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
            self.kept -= old.recent.iter().map(held).sum::<usize>();
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
            watch.record(
                "a/b",
                payload.as_bytes(),
                Qos::AtLeastOnce,
                i % 2 == 0,
                i,
                None,
            );
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
            watch.record(&format!("t/{i}"), b"x", Qos::AtMostOnce, false, 1, None);
        }
        // Every bit is set: the first newcomer sweeps them all and takes slot 0.
        watch.record("new/1", b"x", Qos::AtMostOnce, false, 2, None);
        assert!(watch.get("t/0").is_none());
        // t/1 is busy again; the next newcomer passes it by and takes t/2's slot.
        watch.record("t/1", b"x", Qos::AtMostOnce, false, 3, None);
        watch.record("new/2", b"x", Qos::AtMostOnce, false, 4, None);
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
        watch.record("big", &big, Qos::AtMostOnce, false, 1, None);
        let seen = watch.get("big").unwrap().recent.back().unwrap();
        assert_eq!((seen.size, seen.preview.len()), (100_000, KEEP_BYTES));
        // Far more large messages than the budget holds: later ones keep previews only,
        // and the buffers never hold more than the budget beyond the previews.
        for i in 0..2000 {
            watch.record(&format!("t/{i}"), &big, Qos::AtMostOnce, false, 2, None);
            assert!(watch.kept <= KEEP_BUDGET, "{} after {i}", watch.kept);
        }
        let last = watch.get("t/1999").unwrap().recent.back().unwrap();
        assert_eq!(last.preview.len(), PREVIEW_BYTES);
        // Rings that turn over give their buffers back: small messages fit again.
        for _ in 0..LAST_MESSAGES {
            watch.record("t/0", b"small", Qos::AtMostOnce, false, 3, None);
        }
        let total: usize = watch.topics().flat_map(|t| t.recent.iter()).map(held).sum();
        assert_eq!(total, watch.kept, "the account matches the buffers");
    }

    #[test]
    fn properties_are_kept_with_their_message_within_the_cap_and_the_budget() {
        let mut watch = TopicWatch::default();
        let props = SeenProperties {
            content_type: Some("application/json".into()),
            message_expiry: Some(60),
            correlation_data: Some(vec![1, 2].into()),
            user_properties: vec![("unit".into(), "C".into())],
            ..SeenProperties::default()
        };
        watch.record("p", b"1", Qos::AtMostOnce, false, 1, Some(props.clone()));
        watch.record("p", b"2", Qos::AtMostOnce, false, 2, None);
        let long = SeenProperties {
            user_properties: vec![("k".into(), "v".repeat(PROPERTIES_CAP).into())],
            ..SeenProperties::default()
        };
        watch.record("p", b"3", Qos::AtMostOnce, false, 3, Some(long));
        let recent = &watch.get("p").unwrap().recent;
        assert_eq!(recent[0].properties.as_deref(), Some(&props));
        assert!(recent[1].properties.is_none() && !recent[1].properties_dropped);
        assert!(recent[2].properties.is_none() && recent[2].properties_dropped);
        assert_eq!(watch.kept, props.bytes(), "only the kept properties count");
        // A slot that turns over gives its properties' share back.
        for i in 0..LAST_MESSAGES as u64 {
            watch.record("p", b"x", Qos::AtMostOnce, false, 4 + i, None);
        }
        assert_eq!(watch.kept, 0);
        let empty = Properties::default();
        assert!(SeenProperties::of_publish(&empty).is_none(), "none to show");
    }
}
