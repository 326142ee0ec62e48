//! At most so many attempts per key in a fixed window, with the time passed in: used for
//! registrations per address (web and chat), where each attempt costs bcrypt work and
//! could learn whether a name is taken.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are dropped, so a stream of new keys cannot grow memory.
const PRUNE_AT: usize = 4096;

/// At most `max` attempts per key in a window of `window`; `max` 0 means no limit.
#[derive(Debug)]
pub struct Attempts<K> {
    max: u32,
    window: Duration,
    /// When each key's window began and how many attempts it holds.
    keys: HashMap<K, (Instant, u32)>,
}

impl<K: Eq + Hash> Attempts<K> {
    pub fn new(max: u32, window: Duration) -> Attempts<K> {
        Attempts {
            max,
            window,
            keys: HashMap::new(),
        }
    }

    /// True when `key` may make another attempt (which is then counted).
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        if self.keys.len() >= PRUNE_AT {
            let window = self.window;
            self.keys
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
        }
        let entry = self.keys.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_reset_with_the_window() {
        let t0 = Instant::now();
        let mut a = Attempts::new(2, Duration::from_secs(60));
        assert!(a.allow("ana", t0) && a.allow("ana", t0));
        assert!(!a.allow("ana", t0 + Duration::from_secs(59)));
        assert!(a.allow("bob", t0));
        assert!(a.allow("ana", t0 + Duration::from_secs(60)));
        let mut unlimited = Attempts::new(0, Duration::from_secs(60));
        assert!((0..1000).all(|_| unlimited.allow("ana", t0)));
    }
}
