//! The deadline heap. The nearest deadline sets the poll timeout; nothing ticks.
//!
//! Timers are never cancelled: each names what it is for (a connection by its serial,
//! a session by its generation), and a timer that fires for something that has moved on
//! is ignored. That keeps cancellation free and the heap small.
//!
//! CONNECT timeouts have their own queue: they all last `connect_timeout`, so they come
//! due in accept order, and entries for sockets that have connected since are dropped
//! from its front without waking the loop (`prune_connect_deadlines`).
//!
//! Deadlines are kept as nanoseconds from when the `Timers` were made: 8 bytes, where an
//! `Instant` takes 16, in an entry every connection with a keep alive has.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::keys::{BridgeKey, ConnKey, LingerKey, SessionKey};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// CONNECT timeout of the socket in slot `token` with `serial`.
    ConnectDeadline { token: ConnKey, serial: u64 },
    /// Keep alive of the connection in slot `token` with `serial`.
    KeepAlive { token: ConnKey, serial: u64 },
    /// Publish the will of session `session` if it is still at `generation` and offline.
    WillDelay {
        session: SessionKey,
        generation: u64,
    },
    /// Publish `$SYS` (only scheduled while someone subscribes to it).
    Sys,
    /// End session `session` if it is still at `generation` and offline.
    SessionExpiry {
        session: SessionKey,
        generation: u64,
    },
    /// Bridge `index` has a deadline: reconnect, CONNACK timeout or keep alive.
    Bridge { key: BridgeKey },
    /// Write the client records waiting for a commit.
    ClientRecords,
    /// The open batch's commit window has passed: hand it to the store writer.
    Commit,
    /// A service asked to be called back (the chat's presence window closes).
    Services,
    /// `slow_consumer_timeout` since session `session` began holding publishers back.
    HeldTooLong { session: SessionKey },
    /// The lingering socket in slot `key` with `serial` has had its time (`linger.rs`).
    Lingered { key: LingerKey, serial: u64 },
}

#[derive(Debug)]
pub struct Timers {
    /// What deadlines are counted from.
    base: Instant,
    heap: BinaryHeap<Reverse<(i64, Timer)>>,
    /// CONNECT deadlines in the order they come due: (deadline, token, serial).
    connects: VecDeque<(i64, ConnKey, u64)>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            base: Instant::now(),
            heap: BinaryHeap::new(),
            connects: VecDeque::new(),
        }
    }
}

impl Timers {
    /// `at` in nanoseconds from `base` (negative before it; ±292 years).
    fn nanos(&self, at: Instant) -> i64 {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match at.checked_duration_since(self.base) {
            Some(after) => nanos(after),
            None => -nanos(self.base - at),
        }
    }

    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        let at = self.nanos(at);
        self.heap.push(Reverse((at, timer)));
    }

    /// Adds a CONNECT deadline; every one lasts the same, so they arrive in order.
    pub fn schedule_connect(&mut self, at: Instant, token: ConnKey, serial: u64) {
        let at = self.nanos(at);
        self.connects.push_back((at, token, serial));
    }

    /// Drops CONNECT deadlines from the front while `settled` says their socket has
    /// connected (or closed) since.
    pub fn prune_connect_deadlines(&mut self, mut settled: impl FnMut(ConnKey, u64) -> bool) {
        while let Some(&(_, token, serial)) = self.connects.front() {
            if !settled(token, serial) {
                break;
            }
            self.connects.pop_front();
        }
    }

    /// Time until the nearest deadline, `None` when there is none (sleep until an event).
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        let heap = self.heap.peek().map(|Reverse((at, _))| *at);
        let connect = self.connects.front().map(|(at, _, _)| *at);
        let next = match (heap, connect) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = self.nanos(now);
        next.map(|at| Duration::from_nanos(u64::try_from(at.saturating_sub(now)).unwrap_or(0)))
    }

    /// Removes and returns the next timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let now = self.nanos(now);
        if let Some(&(at, token, serial)) = self.connects.front() {
            if at <= now {
                self.connects.pop_front();
                return Some(Timer::ConnectDeadline { token, serial });
            }
        }
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::Key;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let late = Timer::SessionExpiry {
            session: SessionKey::from_index(1),
            generation: 0,
        };
        let early = Timer::KeepAlive {
            token: ConnKey::from_index(3),
            serial: 9,
        };
        timers.schedule(now + Duration::from_secs(5), late);
        timers.schedule(now + Duration::from_secs(1), early);
        assert_eq!(timers.timeout(now), Some(Duration::from_secs(1)));
        assert_eq!(timers.pop_due(now), None);
        assert_eq!(timers.pop_due(now + Duration::from_secs(2)), Some(early));
        assert_eq!(timers.pop_due(now + Duration::from_secs(2)), None);
        assert_eq!(timers.pop_due(now + Duration::from_secs(5)), Some(late));
        assert_eq!(timers.timeout(now), None);
    }

    #[test]
    fn connect_deadlines_fire_in_order_unless_pruned() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let (first, second) = (ConnKey::from_index(1), ConnKey::from_index(2));
        timers.schedule_connect(now + Duration::from_secs(1), first, 10);
        timers.schedule_connect(now + Duration::from_secs(2), second, 11);
        timers.schedule(now + Duration::from_secs(3), Timer::Sys);
        timers.prune_connect_deadlines(|token, _| token == first);
        assert_eq!(timers.timeout(now), Some(Duration::from_secs(2)));
        let later = now + Duration::from_secs(5);
        assert_eq!(
            timers.pop_due(later),
            Some(Timer::ConnectDeadline {
                token: second,
                serial: 11
            })
        );
        assert_eq!(timers.pop_due(later), Some(Timer::Sys));
        assert_eq!(timers.pop_due(later), None);
    }
}
