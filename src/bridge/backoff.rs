//! Reconnect delays: exponential backoff with jitter, so a dead upstream costs one attempt
//! per delay (never a tight loop) and many gateways coming back after one outage do not
//! all knock at the same second. Pure: the random source is a seeded xorshift.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// The delay the next failure draws from (before jitter).
    current: Duration,
    rng: u64,
}

impl Backoff {
    /// Delays start at `first`, double per failure up to `max`; `seed` drives the jitter.
    pub fn new(first: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            first,
            max,
            current: first,
            rng: seed | 1,
        }
    }

    /// The wait before the next attempt: uniformly in [d/2, d] for the current delay d,
    /// which then doubles (up to the maximum).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = d / 2;
        let span = (d - half).as_millis() as u64;
        half + Duration::from_millis(self.random() % (span + 1))
    }

    /// A connection got through: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.current = self.first;
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

    #[test]
    fn doubles_up_to_the_maximum_with_jitter_below_each_step() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 42);
        let steps: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, cap) in steps.iter().zip([1u64, 2, 4, 8, 8, 8]) {
            let cap = Duration::from_secs(cap);
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn never_zero_and_differs_between_seeds() {
        let mut a = Backoff::new(Duration::from_secs(10), Duration::from_secs(10), 1);
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10), 2);
        let xs: Vec<_> = (0..8).map(|_| a.next_delay()).collect();
        let ys: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert!(xs.iter().all(|d| *d >= Duration::from_secs(5)));
        assert_ne!(xs, ys, "jitter spreads gateways apart");
    }
}
