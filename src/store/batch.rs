//! The writes staged for the next commit, kept so that what the batch itself undoes is
//! never written: a queue row the batch created and deleted (a message delivered and
//! acknowledged before its commit was due) leaves no write behind, nor does a body no
//! remaining write of the batch refers to; a retained message replaced within the batch
//! is written once, as its last value.

use std::collections::HashMap;

use super::Write;

/// A queue row the batch has writes for.
struct Row {
    /// The broker created the row in this batch (it was on no disk before).
    created: bool,
    /// The body it delivers.
    message_id: u64,
    /// Positions of its live writes in `Batch::writes`.
    writes: Vec<usize>,
}

/// A body the batch puts.
struct Body {
    /// Position of its `MessagePut`.
    put: usize,
    /// Rows of this batch with live writes that deliver it.
    rows: usize,
}

/// Staged writes in order, with what the batch knows about the rows and bodies in them.
#[derive(Default)]
pub struct Batch {
    /// The writes; a cancelled one is `None`, so positions stay valid.
    writes: Vec<Option<Write>>,
    /// How many of `writes` are not cancelled.
    live: usize,
    /// Queue rows with writes in this batch, by client id and seq.
    rows: HashMap<(String, u64), Row>,
    /// Bodies put in this batch, by id.
    bodies: HashMap<u64, Body>,
    /// The position of the last retained write per topic.
    retained: HashMap<String, usize>,
    /// Writes pushed other than message bodies and the queue rows that create them; never
    /// reset, so a caller can tell whether a span of its work staged any.
    others: u64,
    /// Writes pushed, never reset (for the same purpose).
    pushed: u64,
    /// The batch holds a write outside the publish flow ([`Write::is_publish_flow`]):
    /// someone waits on it at a person's pace, so it is not kept for a window.
    prompt: bool,
}

impl Batch {
    /// Writes that will be committed (cancelled ones not counted).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when nothing is left to commit.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds `w`; `created` says that a `QueuePut` creates its row (the broker assigned
    /// its seq just now), so a delete of it in this batch cancels the row entirely.
    pub fn push(&mut self, w: Write, created: bool) {
        let at = self.writes.len();
        let delivery = matches!(w, Write::MessagePut { .. })
            || (created && matches!(w, Write::QueuePut { .. }));
        if !delivery {
            self.others += 1;
        }
        self.pushed += 1;
        self.prompt |= !w.is_publish_flow();
        match &w {
            Write::QueuePut {
                client_id,
                seq,
                message_id,
                ..
            } => {
                let row = self
                    .rows
                    .entry((client_id.clone(), *seq))
                    .or_insert_with(|| Row {
                        created,
                        message_id: *message_id,
                        writes: Vec::new(),
                    });
                if row.writes.is_empty() {
                    if let Some(body) = self.bodies.get_mut(message_id) {
                        body.rows += 1;
                    }
                }
                row.writes.push(at);
            }
            Write::QueueDelete { client_id, seq } => {
                if let Some(row) = self.rows.remove(&(client_id.clone(), *seq)) {
                    let created = row.created;
                    self.forget_row(row);
                    if created {
                        return;
                    }
                }
            }
            Write::MessagePut { id, .. } => {
                // Rows of the batch staged before their body (none today) count too.
                let rows = self
                    .rows
                    .values()
                    .filter(|r| r.message_id == *id && !r.writes.is_empty())
                    .count();
                if let Some(old) = self.bodies.insert(*id, Body { put: at, rows }) {
                    self.cancel(old.put);
                }
            }
            Write::RetainSet(msg) => self.replace_retained(&msg.topic, at),
            Write::RetainClear { topic } => self.replace_retained(topic, at),
            _ => {}
        }
        self.writes.push(Some(w));
        self.live += 1;
    }

    /// Cancels a row's writes and, when no other row of the batch needs it, its body.
    fn forget_row(&mut self, row: Row) {
        for at in row.writes {
            self.cancel(at);
        }
        if let Some(body) = self.bodies.get_mut(&row.message_id) {
            body.rows = body.rows.saturating_sub(1);
            if body.rows == 0 {
                let put = body.put;
                self.bodies.remove(&row.message_id);
                self.cancel(put);
            }
        }
    }

    /// A later retained write for `topic` makes the earlier one of this batch moot.
    fn replace_retained(&mut self, topic: &str, at: usize) {
        if let Some(old) = self.retained.insert(topic.to_owned(), at) {
            self.cancel(old);
        }
    }

    fn cancel(&mut self, at: usize) {
        if let Some(slot) = self.writes.get_mut(at) {
            if slot.take().is_some() {
                self.live -= 1;
            }
        }
    }

    /// Moves the live writes into `out`, in order, and empties the batch.
    pub fn drain_into(&mut self, out: &mut Vec<Write>) {
        out.extend(self.writes.drain(..).flatten());
        self.live = 0;
        self.prompt = false;
        self.rows.clear();
        self.bodies.clear();
        self.retained.clear();
    }

    /// How many writes other than bodies and the rows that create them were ever pushed.
    pub fn others(&self) -> u64 {
        self.others
    }

    /// How many writes were ever pushed.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// True when the batch holds a write outside the publish flow.
    pub fn is_prompt(&self) -> bool {
        self.prompt
    }

    /// True when the batch puts body `id`.
    pub fn has_body(&self, id: u64) -> bool {
        self.bodies.contains_key(&id)
    }

    /// Room kept for writes.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.writes.capacity()
    }

    /// Gives back the room of a batch much larger than `keep` writes.
    pub fn shrink_to(&mut self, keep: usize) {
        self.writes.shrink_to(keep);
        self.rows.shrink_to(keep);
        self.bodies.shrink_to(keep);
        self.retained.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::msg;

    fn put(seq: u64, message_id: u64, state: u8) -> Write {
        Write::QueuePut {
            client_id: "c".into(),
            seq,
            message_id,
            qos: 1,
            packet_id: (state > 0).then_some(seq as u16),
            state,
        }
    }

    fn delete(seq: u64) -> Write {
        Write::QueueDelete {
            client_id: "c".into(),
            seq,
        }
    }

    fn body(id: u64) -> Write {
        Write::MessagePut {
            id,
            msg: msg("t", None),
        }
    }

    fn drained(mut batch: Batch) -> Vec<Write> {
        let mut out = Vec::new();
        batch.drain_into(&mut out);
        out
    }

    #[test]
    fn a_row_created_and_acknowledged_in_the_batch_leaves_nothing() {
        let mut batch = Batch::default();
        batch.push(body(1), false);
        batch.push(put(1, 1, 1), true);
        assert_eq!(batch.len(), 2);
        batch.push(delete(1), false);
        assert!(batch.is_empty());
        assert!(drained(batch).is_empty());
    }

    #[test]
    fn a_body_shared_with_a_row_still_owed_is_kept() {
        let mut batch = Batch::default();
        batch.push(body(1), false);
        batch.push(put(1, 1, 1), true);
        batch.push(put(2, 1, 0), true);
        batch.push(delete(1), false);
        assert_eq!(drained(batch), [body(1), put(2, 1, 0)]);
    }

    #[test]
    fn a_row_from_an_earlier_commit_is_still_deleted() {
        let mut batch = Batch::default();
        // Paged in from disk and sent: an update, then the acknowledgement.
        batch.push(put(7, 3, 1), false);
        batch.push(delete(7), false);
        assert_eq!(drained(batch), [delete(7)]);
    }

    #[test]
    fn retained_updates_to_one_topic_coalesce() {
        let mut batch = Batch::default();
        batch.push(Write::RetainSet(msg("a", None)), false);
        batch.push(Write::RetainSet(msg("b", None)), false);
        let mut last = msg("a", None);
        last.payload = b"last".to_vec();
        batch.push(Write::RetainSet(last.clone()), false);
        batch.push(Write::RetainClear { topic: "b".into() }, false);
        assert_eq!(
            drained(batch),
            [
                Write::RetainSet(last),
                Write::RetainClear { topic: "b".into() }
            ]
        );
    }

    #[test]
    fn a_write_outside_the_publish_flow_makes_the_batch_prompt_until_drained() {
        let mut batch = Batch::default();
        batch.push(body(1), false);
        batch.push(put(1, 1, 0), true);
        batch.push(Write::RetainSet(msg("a", None)), false);
        assert!(!batch.is_prompt());
        batch.push(
            Write::SubscriptionPut {
                client_id: "c".into(),
                filter: "a/#".into(),
                options: 1,
                identifier: None,
            },
            false,
        );
        assert!(batch.is_prompt());
        batch.drain_into(&mut Vec::new());
        assert!(!batch.is_prompt());
    }
}
