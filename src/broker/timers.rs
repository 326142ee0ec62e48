//! The deadline heap. The nearest deadline sets the poll timeout; nothing ticks.
//!
//! Timers are never cancelled: each names what it is for (a connection by its serial,
//! a session by its generation), and a timer that fires for something that has moved on
//! is ignored. That keeps cancellation free and the heap small.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// CONNECT timeout or keep alive of the connection in slot `token` with `serial`.
    KeepAlive { token: usize, serial: u64 },
    /// Send the CONNACK refusal the login throttle held back.
    DelayedRefusal { token: usize, serial: u64 },
    /// Publish the will of session `session` if it is still at `generation` and offline.
    WillDelay { session: usize, generation: u64 },
    /// Publish `$SYS` (only scheduled while someone subscribes to it).
    Sys,
    /// End session `session` if it is still at `generation` and offline.
    SessionExpiry { session: usize, generation: u64 },
}

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// Time until the nearest deadline, `None` when there is none (sleep until an event).
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns the next timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let late = Timer::SessionExpiry {
            session: 1,
            generation: 0,
        };
        let early = Timer::KeepAlive {
            token: 3,
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
}
