//! Slows down addresses that keep failing to log in: after a few failures each refusal
//! is held back longer (doubling, capped), and the count fades after a quiet spell.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures allowed before refusals are delayed.
const FREE_FAILURES: u32 = 3;
/// The longest a refusal is held back.
const MAX_PENALTY: Duration = Duration::from_secs(30);
/// A quiet spell after which an address starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct LoginThrottle {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl LoginThrottle {
    /// Records a failure and returns how long to hold back its refusal.
    pub fn fail(&mut self, addr: IpAddr, now: Instant) -> Duration {
        self.failures
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < FORGET_AFTER);
        let entry = self.failures.entry(addr).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
        match entry.0.checked_sub(FREE_FAILURES + 1) {
            None => Duration::ZERO,
            Some(extra) => Duration::from_secs(1u64 << extra.min(5)).min(MAX_PENALTY),
        }
    }

    pub fn succeed(&mut self, addr: IpAddr) {
        self.failures.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_grows_after_free_failures_and_fades() {
        let now = Instant::now();
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        let mut t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.fail(addr, now), Duration::ZERO);
        }
        assert_eq!(t.fail(addr, now), Duration::from_secs(1));
        assert_eq!(t.fail(addr, now), Duration::from_secs(2));
        for _ in 0..10 {
            t.fail(addr, now);
        }
        assert_eq!(t.fail(addr, now), MAX_PENALTY);
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.fail(other, now), Duration::ZERO);
        assert_eq!(t.fail(addr, now + FORGET_AFTER), Duration::ZERO);
        t.succeed(other);
    }
}
