//! Rate limits on the loop, with the time passed in: a token bucket per client for every
//! chat request. (Account requests are bounded per address as well: `auth::throttle`,
//! `auth::attempts`.)

use std::collections::HashMap;
use std::time::Instant;

/// Entries kept before idle ones are dropped, so a stream of new keys cannot grow memory.
const PRUNE_AT: usize = 4096;

/// Requests per client: `burst` at once, then `rate` per second.
#[derive(Debug)]
pub struct Buckets {
    rate: f64,
    burst: f64,
    /// Tokens left and when they were counted, per client id.
    clients: HashMap<Box<str>, (f64, Instant)>,
}

impl Buckets {
    /// `rate` 0 means no limit.
    pub fn new(rate: u32, burst: u32) -> Buckets {
        Buckets {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            clients: HashMap::new(),
        }
    }

    /// Takes one token for `client`; false when there is none left.
    pub fn allow(&mut self, client: &str, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        if self.clients.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            self.clients.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (rate, burst) = (self.rate, self.burst);
        let entry = self.clients.entry(client.into()).or_insert((burst, now));
        let refilled = entry.0 + now.saturating_duration_since(entry.1).as_secs_f64() * rate;
        let tokens = refilled.min(burst);
        if tokens < 1.0 {
            *entry = (tokens, now);
            return false;
        }
        *entry = (tokens - 1.0, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Buckets::new(2, 3);
        assert!((0..3).all(|_| b.allow("c", t0)));
        assert!(!b.allow("c", t0));
        assert!(b.allow("other", t0), "per client");
        assert!(b.allow("c", t0 + Duration::from_millis(500)));
        assert!(!b.allow("c", t0 + Duration::from_millis(600)));
        let later = t0 + Duration::from_secs(60);
        assert!(
            (0..3).all(|_| b.allow("c", later)),
            "refills to the burst only"
        );
        assert!(!b.allow("c", later));
        let mut unlimited = Buckets::new(0, 1);
        assert!((0..1000).all(|_| unlimited.allow("c", t0)));
    }

    #[test]
    fn idle_entries_are_pruned() {
        let t0 = Instant::now();
        let mut b = Buckets::new(10, 10);
        for i in 0..PRUNE_AT {
            b.allow(&i.to_string(), t0);
        }
        b.allow("new", t0 + Duration::from_secs(10));
        assert!(b.clients.len() < 10);
    }
}
