//! Login rate limiting per address: after a few failures an address must wait before it
//! may try again (the wait doubles, capped; see `auth::throttle`), and is answered 429
//! without a password check meanwhile, so guessing costs the gateway no bcrypt time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::auth::throttle::LoginThrottle;

#[derive(Default)]
pub struct LoginLimiter {
    throttle: LoginThrottle,
    blocked_until: HashMap<IpAddr, Instant>,
}

impl LoginLimiter {
    /// How long `addr` must still wait, if it must.
    pub fn wait(&mut self, addr: IpAddr, now: Instant) -> Option<Duration> {
        self.blocked_until.retain(|_, until| *until > now);
        self.blocked_until.get(&addr).map(|until| *until - now)
    }

    pub fn failed(&mut self, addr: IpAddr, now: Instant) {
        let penalty = self.throttle.fail(addr, now);
        if !penalty.is_zero() {
            self.blocked_until.insert(addr, now + penalty);
        }
    }

    pub fn succeeded(&mut self, addr: IpAddr) {
        self.throttle.succeed(addr);
        self.blocked_until.remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_repeated_failures() {
        let now = Instant::now();
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let mut limiter = LoginLimiter::default();
        for _ in 0..3 {
            limiter.failed(addr, now);
            assert_eq!(limiter.wait(addr, now), None);
        }
        limiter.failed(addr, now);
        assert_eq!(limiter.wait(addr, now), Some(Duration::from_secs(1)));
        assert_eq!(limiter.wait(addr, now + Duration::from_secs(1)), None);
        limiter.failed(addr, now);
        limiter.succeeded(addr);
        assert_eq!(limiter.wait(addr, now), None);
    }
}
