//! Queue limits and budgets as decisions on plain values: whether a message would wait
//! in a session's queue, whether one more fits (and which limit it meets if not), when a
//! drained queue has room enough to let held publishers go, and in which order. Where a
//! queued message is kept (memory page, disk tail) is the shell's (`broker/queue.rs`).

use crate::config::Config;
use crate::protocol::Qos;

use super::keys::ConnKey;
use super::session::{Outbound, Session};

/// The queue limits of the config; 0 is "no limit" for each. Read from the config at
/// each decision (a few words), so a reload applies at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLimits {
    /// `max_queued_messages`: messages per session.
    pub messages: usize,
    /// `max_queued_bytes`: topic and payload bytes per session.
    pub bytes: usize,
    /// `max_queued_memory`: bytes of all queues held in memory.
    pub memory: usize,
    /// `max_queued_disk`: bytes of all persistent sessions' queues.
    pub disk: usize,
}

impl QueueLimits {
    pub fn of(c: &Config) -> QueueLimits {
        QueueLimits {
            messages: c.limits.max_queued_messages,
            bytes: c.limits.max_queued_bytes,
            memory: c.limits.max_queued_memory,
            disk: c.limits.max_queued_disk,
        }
    }
}

/// The broker-wide queue budgets: what every session's queue counts against together,
/// and the publishers held back until there is room.
#[derive(Debug, Default)]
pub struct Budget {
    /// Messages waiting in session queues, in memory and on disk (for `$SYS`, the console
    /// and the start-up log).
    pub messages: usize,
    /// Topic and payload bytes of queued messages held in memory, against
    /// `max_queued_memory`.
    pub memory_bytes: usize,
    /// Topic and payload bytes of persistent sessions' queued messages (all in the store),
    /// against `max_queued_disk`.
    pub disk_bytes: usize,
    /// Publishers held back until a budget has room, as (connection, serial), in the order
    /// they came.
    pub waiters: Vec<(ConnKey, u64)>,
}

impl Budget {
    /// True when both budgets have slack again (an eighth), so held publishers run for a
    /// while rather than wake for one message at a time.
    pub fn has_slack(&self, limits: &QueueLimits) -> bool {
        (limits.memory == 0 || self.memory_bytes <= limits.memory / 8 * 7)
            && (limits.disk == 0 || self.disk_bytes <= limits.disk / 8 * 7)
    }

    /// The publishers held for the budgets, in the order they came, once both have slack;
    /// none before.
    pub fn take_released(&mut self, limits: &QueueLimits) -> Vec<(ConnKey, u64)> {
        if self.waiters.is_empty() || !self.has_slack(limits) {
            return Vec::new();
        }
        std::mem::take(&mut self.waiters)
    }
}

/// The limit a queue is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `max_queued_messages` of the session.
    Count,
    /// `max_queued_bytes` of the session.
    Bytes,
    /// The broker-wide `max_queued_memory`.
    Memory,
    /// The broker-wide `max_queued_disk`.
    Disk,
}

impl Full {
    /// For the log line.
    pub fn why(self) -> &'static str {
        match self {
            Full::Count => "its queue is full (max_queued_messages)",
            Full::Bytes => "its queue is full (max_queued_bytes)",
            Full::Memory => "the broker's queue memory budget is spent (max_queued_memory)",
            Full::Disk => "the broker's queue disk budget is spent (max_queued_disk)",
        }
    }

    /// True for the broker-wide budgets, which any session's draining relieves.
    pub fn broker_wide(self) -> bool {
        matches!(self, Full::Memory | Full::Disk)
    }
}

/// What a queued message counts against the byte limits: its topic and payload.
pub fn queued_size(outbound: &Outbound) -> usize {
    outbound.message.payload.len() + outbound.message.topic.len()
}

/// True when a delivery of `qos` to this session is kept in the store while it waits.
pub fn backed(session: &Session, qos: Qos) -> bool {
    session.stored && qos != Qos::AtMostOnce
}

/// True when a delivery of `qos` would wait in the session's queue rather than go out now:
/// its client is offline, or (QoS 1/2) others wait before it or its in-flight `window` is full.
pub fn must_queue(session: &Session, qos: Qos, window: usize) -> bool {
    let flight = session.flight();
    match session.connection() {
        None => true,
        Some(_) if qos == Qos::AtMostOnce => false,
        Some(_) => flight.queued() > 0 || flight.inflight.len() >= window,
    }
}

/// Whether one more message fits in the session's queue, and which limit it meets if not.
pub fn room(
    session: &Session,
    outbound: &Outbound,
    budget: &Budget,
    limits: &QueueLimits,
) -> Result<(), Full> {
    let flight = session.flight();
    let size = queued_size(outbound);
    if limits.messages > 0 && flight.queued() >= limits.messages {
        return Err(Full::Count);
    }
    if limits.bytes > 0 && flight.queued_bytes + size > limits.bytes {
        return Err(Full::Bytes);
    }
    if backed(session, outbound.qos) {
        if limits.disk > 0 && budget.disk_bytes + size > limits.disk {
            return Err(Full::Disk);
        }
    } else if limits.memory > 0 && budget.memory_bytes + size > limits.memory {
        return Err(Full::Memory);
    }
    Ok(())
}

/// True when the session's queue is far enough below its limits that each publisher
/// waiting for it can add a message, with slack (a sixteenth of the limit) so held
/// publishers run for a while rather than wake for one message at a time.
pub fn has_slack(session: &Session, limits: &QueueLimits) -> bool {
    let flight = session.flight();
    let count_ok = limits.messages == 0
        || flight.queued() + flight.waiting.len() + limits.messages / 16 < limits.messages;
    let bytes_ok = limits.bytes == 0 || flight.queued_bytes <= limits.bytes / 8 * 7;
    count_ok && bytes_ok
}

/// The session's queue may have shrunk: the publishers it held back, in the order they
/// came, once it has slack (and the end of an overflow episode); none before.
pub fn take_released(session: &mut Session, limits: &QueueLimits) -> Vec<(ConnKey, u64)> {
    let flight = session.flight();
    if (flight.waiting.is_empty() && !flight.overflowing) || !has_slack(session, limits) {
        return Vec::new();
    }
    let flight = session.flight_mut();
    let waiting = std::mem::take(&mut flight.waiting);
    flight.holding_since = None;
    flight.overflowing = false;
    session.settle();
    waiting
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::Key;
    use crate::core::testing::{fill, in_flight, session};
    use std::time::Instant;

    fn waiters(n: u32) -> Vec<(ConnKey, u64)> {
        (0..n)
            .map(|i| (ConnKey::from_index(i as usize), u64::from(i) + 100))
            .collect()
    }

    #[test]
    fn held_publishers_go_in_the_order_they_came_once_the_queue_has_slack() {
        let limits = QueueLimits {
            messages: 32,
            ..QueueLimits::default()
        };
        // (queued, waiting) → released? Slack is a sixteenth (2): queued + waiting + 2 < 32.
        let table = [(29, 3, false), (26, 3, true), (27, 3, false), (0, 3, true)];
        for (queued, waiting, released) in table {
            let mut s = session("s", Some(1));
            fill(&mut s, queued, 10);
            s.flight_mut().waiting = waiters(waiting);
            s.flight_mut().holding_since = Some(Instant::now());
            let got = take_released(&mut s, &limits);
            let expected = if released {
                waiters(waiting)
            } else {
                Vec::new()
            };
            assert_eq!(got, expected, "queued {queued}, waiting {waiting}");
            assert_eq!(s.flight().holding_since.is_none(), released);
        }
    }

    #[test]
    fn a_byte_limit_releases_at_seven_eighths() {
        let limits = QueueLimits {
            bytes: 800,
            ..QueueLimits::default()
        };
        for (queued, released) in [(71, false), (70, true)] {
            let mut s = session("s", Some(1));
            fill(&mut s, queued, 10);
            s.flight_mut().waiting = waiters(2);
            assert_eq!(!take_released(&mut s, &limits).is_empty(), released);
        }
    }

    #[test]
    fn an_overflow_episode_ends_once_there_is_room_even_with_nobody_waiting() {
        let limits = QueueLimits {
            messages: 32,
            ..QueueLimits::default()
        };
        let mut s = session("s", None);
        fill(&mut s, 31, 10);
        s.flight_mut().overflowing = true;
        assert!(take_released(&mut s, &limits).is_empty());
        assert!(s.flight().overflowing);
        let mut s = session("s", None);
        fill(&mut s, 1, 10);
        s.flight_mut().overflowing = true;
        assert!(take_released(&mut s, &limits).is_empty());
        assert!(!s.flight().overflowing);
    }

    #[test]
    fn budget_waiters_go_in_order_once_both_budgets_have_an_eighth_free() {
        let limits = QueueLimits {
            memory: 800,
            disk: 1600,
            ..QueueLimits::default()
        };
        // (memory, disk) spent → released?
        let table = [
            ((701, 0), false),
            ((700, 1401), false),
            ((700, 1400), true),
            ((0, 0), true),
        ];
        for ((memory, disk), released) in table {
            let mut budget = Budget {
                memory_bytes: memory,
                disk_bytes: disk,
                waiters: waiters(3),
                ..Budget::default()
            };
            let expected = if released { waiters(3) } else { Vec::new() };
            assert_eq!(budget.take_released(&limits), expected, "{memory} {disk}");
            assert_eq!(budget.waiters.is_empty(), released);
        }
    }

    #[test]
    fn whether_a_delivery_waits_in_the_queue() {
        // (online, queued, in flight, qos) → queued?
        let table = [
            (false, 0, 0, Qos::AtMostOnce, true),
            (true, 5, 4, Qos::AtMostOnce, false),
            (true, 0, 3, Qos::AtLeastOnce, false),
            (true, 0, 4, Qos::ExactlyOnce, true),
            (true, 1, 0, Qos::AtLeastOnce, true),
        ];
        for (online, queued, inflight, qos, waits) in table {
            let mut s = session("s", online.then_some(1));
            fill(&mut s, queued, 10);
            in_flight(&mut s, inflight, qos);
            assert_eq!(
                must_queue(&s, qos, 4),
                waits,
                "{online} {queued} {inflight} {qos:?}"
            );
        }
    }
}
