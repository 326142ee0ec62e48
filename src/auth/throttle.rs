//! Bounds password guessing, per address and per account, for every front that checks a
//! secret (web login, MQTT CONNECT, the chat service's password reset).
//!
//! A check takes its slot with [`LoginThrottle::begin`] *before* bcrypt runs, and counts as
//! a failure until [`LoginThrottle::finish`] says it succeeded, so parallel tries count
//! like sequential ones: eight parallel guesses from one address get five checks, not eight.
//!
//! - **Per address** (an IPv4 address, or an IPv6 /64, which one host usually holds whole):
//!   [`ADDRESS_FREE`] failures, then each further try waits 1 s, 2 s, 4 s … up to
//!   [`ADDRESS_MAX_WAIT`] after the previous failure, whatever account it names.
//! - **Per account** (by the name's [`name_key`], whether or not the account exists, so
//!   the throttle reveals nothing): the failures against it from all addresses together
//!   set a wait — after [`ACCOUNT_FREE`], 1 s, 2 s … up to [`ACCOUNT_MAX_WAIT`] — that an
//!   address must leave after *its own* failed try on that account before the next one. An
//!   address that has not failed against the account is never held back by it, so a
//!   stranger hammering an account cannot lock its owner out: the owner, from their own
//!   address, waits at most [`ACCOUNT_MAX_WAIT`] even after mistyping, and nothing at all
//!   otherwise. A second attacking address gets one try at once, then the account's wait.
//!
//! Everything fades after [`FORGET_AFTER`] without a failure. A success removes only its
//! own count: logging in to one's own account does not wipe an address's failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::store::name_key;

/// Failures an address may have before its tries are spaced out.
pub const ADDRESS_FREE: u32 = 5;
/// The longest wait between an address's tries.
pub const ADDRESS_MAX_WAIT: Duration = Duration::from_secs(60);
/// Failures an account may have (from all addresses together) before each address that
/// failed against it must space out its next try.
pub const ACCOUNT_FREE: u32 = 5;
/// The longest an address waits between tries on one account: also the longest the owner
/// of an account under attack ever waits, after a mistyped password of their own.
pub const ACCOUNT_MAX_WAIT: Duration = Duration::from_secs(30);
/// A quiet spell after which failures are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Entries kept before stale ones are dropped, so a stream of new names or addresses
/// cannot grow memory without bound.
const PRUNE_AT: usize = 4096;

/// Who a limit counts: an IPv4 address, or the /64 an IPv6 address is in (an IPv4-mapped
/// IPv6 address counts as its IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.into()),
                None => AddressKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Failures and when the last one was counted.
#[derive(Debug, Clone, Copy)]
struct Tally {
    failures: u32,
    last: Instant,
}

impl Tally {
    /// How long until another try is allowed, after `free` failures and then a wait that
    /// doubles from 1 s up to `max`, counted from `since`.
    fn wait(&self, free: u32, max: Duration, since: Instant, now: Instant) -> Duration {
        let Some(extra) = self.failures.checked_sub(free) else {
            return Duration::ZERO;
        };
        let wait = Duration::from_secs(1u64 << extra.min(16)).min(max);
        (since + wait).saturating_duration_since(now)
    }
}

/// A slot taken by [`LoginThrottle::begin`]; hand it back to [`LoginThrottle::finish`].
#[derive(Debug)]
#[must_use = "an attempt counts as a failure until it is finished"]
pub struct Attempt {
    address: AddressKey,
    account: String,
}

#[derive(Default)]
pub struct LoginThrottle {
    addresses: HashMap<AddressKey, Tally>,
    accounts: HashMap<String, Tally>,
    /// When each address last failed against each account (or began a try still running).
    failed_pairs: HashMap<(String, AddressKey), Instant>,
}

impl LoginThrottle {
    /// Takes a slot for one check of `account`'s secret from `addr`, or says how long to
    /// wait first (then nothing is counted: a refusal costs the gateway nothing).
    pub fn begin(
        &mut self,
        addr: IpAddr,
        account: &str,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let pair = (name_key(account), AddressKey::from(addr));
        self.forget_stale(&pair, now);
        let address = pair.1;
        let address_wait = self.addresses.get(&address).map_or(Duration::ZERO, |t| {
            t.wait(ADDRESS_FREE, ADDRESS_MAX_WAIT, t.last, now)
        });
        let account_wait = match (self.accounts.get(&pair.0), self.failed_pairs.get(&pair)) {
            (Some(t), Some(&since)) => t.wait(ACCOUNT_FREE, ACCOUNT_MAX_WAIT, since, now),
            _ => Duration::ZERO,
        };
        let wait = address_wait.max(account_wait);
        if !wait.is_zero() {
            return Err(wait);
        }
        for tally in [
            self.addresses.entry(address).or_insert(Tally {
                failures: 0,
                last: now,
            }),
            self.accounts.entry(pair.0.clone()).or_insert(Tally {
                failures: 0,
                last: now,
            }),
        ] {
            tally.failures += 1;
            tally.last = now;
        }
        self.failed_pairs.insert(pair.clone(), now);
        let (account, address) = pair;
        Ok(Attempt { address, account })
    }

    /// The check behind `attempt` is done: a success takes back its own count, a failure
    /// keeps it and starts the waits from now.
    pub fn finish(&mut self, attempt: Attempt, succeeded: bool, now: Instant) {
        let Attempt { address, account } = attempt;
        for tally in [
            self.addresses.get_mut(&address),
            self.accounts.get_mut(&account),
        ]
        .into_iter()
        .flatten()
        {
            if succeeded {
                tally.failures = tally.failures.saturating_sub(1);
            } else {
                tally.last = now;
            }
        }
        if succeeded {
            self.failed_pairs.remove(&(account, address));
        } else {
            self.failed_pairs.insert((account, address), now);
        }
    }

    /// Forgets what has been quiet for [`FORGET_AFTER`]: the entries a try looks at, and
    /// every stale entry once there are many.
    fn forget_stale(&mut self, pair: &(String, AddressKey), now: Instant) {
        let fresh = |last: &Instant| now.saturating_duration_since(*last) < FORGET_AFTER;
        if self.addresses.len() >= PRUNE_AT
            || self.accounts.len() >= PRUNE_AT
            || self.failed_pairs.len() >= PRUNE_AT
        {
            self.addresses.retain(|_, t| fresh(&t.last));
            self.accounts.retain(|_, t| fresh(&t.last));
            self.failed_pairs.retain(|_, last| fresh(last));
        }
        if self.addresses.get(&pair.1).is_some_and(|t| !fresh(&t.last)) {
            self.addresses.remove(&pair.1);
        }
        if self.accounts.get(&pair.0).is_some_and(|t| !fresh(&t.last)) {
            self.accounts.remove(&pair.0);
        }
        if self.failed_pairs.get(pair).is_some_and(|last| !fresh(last)) {
            self.failed_pairs.remove(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Fails `n` tries of `account` from `addr` at `now`; panics if one must wait.
    fn fail(t: &mut LoginThrottle, addr: &str, account: &str, n: u32, now: Instant) {
        for i in 0..n {
            let attempt = t
                .begin(ip(addr), account, now)
                .unwrap_or_else(|w| panic!("try {i} of {account} from {addr} waits {w:?}"));
            t.finish(attempt, false, now);
        }
    }

    #[test]
    fn parallel_tries_count_before_any_finishes() {
        let now = Instant::now();
        let mut t = LoginThrottle::default();
        let outcomes: Vec<_> = (0..8)
            .map(|_| t.begin(ip("10.0.0.1"), "ana", now))
            .collect();
        let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(admitted as u32, ADDRESS_FREE.min(ACCOUNT_FREE));
        assert!(outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|w| *w == Duration::from_secs(1)));
    }

    #[test]
    fn address_waits_grow_to_the_maximum_and_fade() {
        let mut now = Instant::now();
        let mut t = LoginThrottle::default();
        // Different accounts each time: only the address limit applies.
        for i in 0..ADDRESS_FREE {
            fail(&mut t, "10.0.0.1", &format!("user{i}"), 1, now);
        }
        let mut waits = Vec::new();
        for i in 0..9 {
            let wait = t.begin(ip("10.0.0.1"), "other", now).unwrap_err();
            waits.push(wait.as_secs());
            now += wait;
            fail(&mut t, "10.0.0.1", &format!("next{i}"), 1, now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(t.begin(ip("10.0.0.2"), "other", now).is_ok(), "per address");
        let later = now + FORGET_AFTER;
        assert!(t.begin(ip("10.0.0.1"), "other", later).is_ok(), "fades");
    }

    #[test]
    fn an_account_under_attack_slows_each_attacker_but_not_its_owner() {
        let mut now = Instant::now();
        let mut t = LoginThrottle::default();
        fail(&mut t, "10.0.0.66", "ana", ACCOUNT_FREE, now);
        // A second attacking address: one try at once, then the account's wait.
        fail(&mut t, "10.0.0.67", "ANA", 1, now);
        assert!(t.begin(ip("10.0.0.67"), "ana", now).is_err());
        // Keep hammering for a long time: the waits reach the address's maximum (the
        // larger of the two) and stay there.
        for _ in 0..20 {
            let wait = t.begin(ip("10.0.0.67"), "ana", now).unwrap_err();
            assert!(wait <= ADDRESS_MAX_WAIT);
            now += wait;
            fail(&mut t, "10.0.0.67", "ana", 1, now);
        }
        assert_eq!(
            t.begin(ip("10.0.0.67"), "ana", now).unwrap_err(),
            ADDRESS_MAX_WAIT
        );
        // The owner, from their own address, is let in at once.
        let owner = t
            .begin(ip("10.0.0.5"), "ana", now)
            .expect("owner not held back");
        t.finish(owner, true, now);
        // Even after a typo the owner waits no more than the maximum.
        fail(&mut t, "10.0.0.5", "ana", 1, now);
        let wait = t.begin(ip("10.0.0.5"), "ana", now).unwrap_err();
        assert!(wait <= ACCOUNT_MAX_WAIT, "{wait:?}");
        assert!(t.begin(ip("10.0.0.5"), "ana", now + wait).is_ok());
    }

    #[test]
    fn a_success_takes_back_only_its_own_count() {
        let now = Instant::now();
        let mut t = LoginThrottle::default();
        fail(&mut t, "10.0.0.1", "victim", ADDRESS_FREE - 1, now);
        // Logging in to one's own account does not wipe the failures.
        let own = t.begin(ip("10.0.0.1"), "me", now).unwrap();
        t.finish(own, true, now);
        fail(&mut t, "10.0.0.1", "victim", 1, now);
        assert!(t.begin(ip("10.0.0.1"), "me", now).is_err());
    }

    #[test]
    fn ipv6_is_counted_by_64_and_mapped_ipv4_as_ipv4() {
        let a = AddressKey::from(ip("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, AddressKey::from(ip("2001:db8:1:2:ffff:1:2:3")));
        assert_ne!(a, AddressKey::from(ip("2001:db8:1:3::1")));
        assert_eq!(
            AddressKey::from(ip("::ffff:192.0.2.7")),
            AddressKey::from(ip("192.0.2.7"))
        );
        assert_ne!(
            AddressKey::from(ip("192.0.2.7")),
            AddressKey::from(ip("192.0.2.8"))
        );
        // One host rotating through its /64 is one address to the limit.
        let now = Instant::now();
        let mut t = LoginThrottle::default();
        for i in 0..ADDRESS_FREE {
            fail(
                &mut t,
                &format!("2001:db8::{i:x}"),
                &format!("u{i}"),
                1,
                now,
            );
        }
        assert!(t.begin(ip("2001:db8::ffff"), "fresh", now).is_err());
        assert!(t.begin(ip("2001:db8:0:1::1"), "fresh", now).is_ok());
    }

    #[test]
    fn stale_entries_are_pruned() {
        let now = Instant::now();
        let mut t = LoginThrottle::default();
        for i in 0..PRUNE_AT as u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(i));
            let attempt = t
                .begin(addr, "x", now)
                .unwrap_or_else(|_| t.begin(addr, &format!("x{i}"), now).unwrap());
            t.finish(attempt, false, now);
        }
        let _ = t.begin(ip("10.9.9.9"), "y", now + FORGET_AFTER);
        assert!(t.addresses.len() < 4);
    }
}
