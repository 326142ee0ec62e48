//! Reconnect delays: exponential backoff with jitter, so a dead upstream costs one attempt
//! per delay (never a tight loop) and many gateways coming back after one outage do not
//! all knock at the same second. Pure: the random source is a seeded xorshift.
//!
//! The delay grows with *consecutive failures*: an attempt that never got up, or a link
//! that went down before a good exchange. A **good exchange** is the upstream doing real
//! work for us on that link: acknowledging a message we forwarded, delivering one to us,
//! or answering a PINGREQ (CONNACK and SUBACK alone are not enough: an upstream that
//! takes our CONNECT and then closes, or a second gateway with our client id, gives
//! those). A link with one, or one that stayed up 30 s, starts the delays over.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// Attempts in a row that ended without a good exchange.
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// Delays start at `first`, double per failure up to `max`; `seed` drives the jitter.
    pub fn new(first: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            first,
            max,
            failures: 0,
            rng: seed | 1,
        }
    }

    /// An attempt ended: the wait before the next one. `good` says the link had a good
    /// exchange (or stayed up long enough), which starts the delays over; otherwise this
    /// is one more failure in a row. The wait is uniformly in [d/2, d] for the delay
    /// d = `first` × 2^(failures before this one), at most `max`.
    pub fn after(&mut self, good: bool) -> Duration {
        if good {
            self.failures = 0;
        }
        let d = self.current();
        self.failures = self.failures.saturating_add(1);
        let half = d / 2;
        let span = (d - half).as_millis() as u64;
        half + Duration::from_millis(self.random() % (span + 1))
    }

    /// The link was let go on purpose (a lazy bridge, idle): the next attempt starts the
    /// delays over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Attempts in a row that ended without a good exchange.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn current(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }

    fn random(&mut self) -> u64 {
        let x = &mut self.rng;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, cap_secs: u64) -> bool {
        let cap = Duration::from_secs(cap_secs);
        d >= cap / 2 && d <= cap
    }

    #[test]
    fn doubles_per_failure_up_to_the_maximum_with_jitter_below_each_step() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 42);
        let steps: Vec<Duration> = (0..6).map(|_| b.after(false)).collect();
        for (d, cap) in steps.iter().zip([1u64, 2, 4, 8, 8, 8]) {
            assert!(within(*d, cap), "{d:?} not in [{cap}/2, {cap}] s");
        }
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn a_good_exchange_starts_the_delays_over() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(120), 7);
        for _ in 0..10 {
            b.after(false);
        }
        assert!(within(b.after(false), 120), "pinned at the maximum");
        assert!(
            within(b.after(true), 1),
            "one good exchange: the first delay again"
        );
        assert!(within(b.after(false), 2), "then it grows again from there");
    }

    /// An upstream that accepts, moves a few messages, and drops the link every few
    /// seconds: every link had a good exchange, so attempts stay at the first delay
    /// instead of climbing to the maximum.
    #[test]
    fn a_flapping_link_with_traffic_is_not_pinned_at_the_maximum() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(120), 3);
        for _ in 0..50 {
            assert!(within(b.after(true), 1));
        }
        // Flapping where every other link gets nothing done: never past the second step.
        for _ in 0..50 {
            assert!(within(b.after(false), 2));
            assert!(within(b.after(true), 1));
        }
    }

    #[test]
    fn a_huge_failure_count_stays_at_the_maximum() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(86_400), 5);
        for _ in 0..200 {
            assert!(b.after(false) <= Duration::from_secs(86_400));
        }
        assert!(within(b.after(false), 86_400));
    }

    #[test]
    fn never_zero_and_differs_between_seeds() {
        let mut a = Backoff::new(Duration::from_secs(10), Duration::from_secs(10), 1);
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10), 2);
        let xs: Vec<_> = (0..8).map(|_| a.after(false)).collect();
        let ys: Vec<_> = (0..8).map(|_| b.after(false)).collect();
        assert!(xs.iter().all(|d| *d >= Duration::from_secs(5)));
        assert_ne!(xs, ys, "jitter spreads gateways apart");
    }
}
