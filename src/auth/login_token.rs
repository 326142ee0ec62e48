//! Short-lived, single-use login tokens for the browser chat page. The web thread gives a
//! logged-in browser a random token and hands the loop only its SHA-256 (through the
//! inbox); a CONNECT with that user name and the token as its password is accepted once,
//! within [`TTL`], without bcrypt. The token works for that user only.
//!
//! Bounded: at most [`PER_USER`] open tokens a user (a new one pushes out the oldest) and
//! [`TOTAL`] in all (a grant beyond that is dropped); expired ones are dropped whenever
//! the store is touched, so no timer is needed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a token may wait for its CONNECT.
pub const TTL: Duration = Duration::from_secs(60);
/// Open tokens one user may have (tabs, reconnects).
pub const PER_USER: usize = 8;
/// Open tokens in all, so a busy web thread cannot grow the loop's memory.
pub const TOTAL: usize = 4096;

/// The digest a token is kept and compared as.
pub type TokenHash = [u8; 32];

/// SHA-256 of a token.
pub fn hash(token: &[u8]) -> TokenHash {
    Sha256::digest(token).into()
}

/// A token granted to `user`, as the web thread sends it to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub hash: TokenHash,
    pub expires: Instant,
}

/// The loop's open tokens.
#[derive(Debug, Default)]
pub struct LoginTokens {
    by_user: HashMap<String, Vec<(TokenHash, Instant)>>,
    count: usize,
}

impl LoginTokens {
    /// Keeps a granted token; false if the store is full.
    pub fn grant(&mut self, grant: Grant, now: Instant) -> bool {
        self.prune(now);
        if self.count >= TOTAL {
            return false;
        }
        let open = self.by_user.entry(grant.user).or_default();
        if open.len() >= PER_USER {
            open.remove(0);
            self.count -= 1;
        }
        open.push((grant.hash, grant.expires));
        self.count += 1;
        true
    }

    /// Whether `password` is an open token of `user`; if so it is used up.
    pub fn redeem(&mut self, user: &str, password: &[u8], now: Instant) -> bool {
        let Some(open) = self.by_user.get_mut(user) else {
            return false;
        };
        let digest = hash(password);
        let before = open.len();
        let mut found = false;
        open.retain(|&(h, expires)| {
            let matches = !found && h == digest && expires > now;
            found |= matches;
            !matches && expires > now
        });
        self.count -= before - open.len();
        if open.is_empty() {
            self.by_user.remove(user);
        }
        found
    }

    /// Open tokens in all.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn prune(&mut self, now: Instant) {
        let mut dropped = 0;
        self.by_user.retain(|_, open| {
            let before = open.len();
            open.retain(|&(_, expires)| expires > now);
            dropped += before - open.len();
            !open.is_empty()
        });
        self.count -= dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(user: &str, token: &str, expires: Instant) -> Grant {
        Grant {
            user: user.to_string(),
            hash: hash(token.as_bytes()),
            expires,
        }
    }

    #[test]
    fn a_token_logs_its_user_in_once() {
        let now = Instant::now();
        let mut tokens = LoginTokens::default();
        assert!(tokens.grant(grant("alice", "t1", now + TTL), now));
        assert!(!tokens.redeem("bob", b"t1", now), "another user's token");
        assert!(!tokens.redeem("alice", b"t2", now), "a token never granted");
        assert!(tokens.redeem("alice", b"t1", now));
        assert!(!tokens.redeem("alice", b"t1", now), "single use");
        assert!(tokens.is_empty());
    }

    #[test]
    fn an_expired_token_is_refused_and_dropped() {
        let now = Instant::now();
        let mut tokens = LoginTokens::default();
        tokens.grant(grant("alice", "old", now + Duration::from_secs(1)), now);
        tokens.grant(grant("alice", "new", now + TTL), now);
        let later = now + Duration::from_secs(2);
        assert!(!tokens.redeem("alice", b"old", later));
        assert_eq!(tokens.len(), 1, "the expired one is gone");
        assert!(tokens.redeem("alice", b"new", later));
        tokens.grant(grant("bob", "b", now + Duration::from_secs(1)), now);
        tokens.grant(grant("carol", "c", later + TTL), later);
        assert_eq!(tokens.len(), 1, "granting drops expired tokens of everyone");
    }

    #[test]
    fn open_tokens_are_bounded_per_user_and_in_all() {
        let now = Instant::now();
        let mut tokens = LoginTokens::default();
        for i in 0..PER_USER + 2 {
            tokens.grant(grant("alice", &format!("t{i}"), now + TTL), now);
        }
        assert_eq!(tokens.len(), PER_USER);
        assert!(
            !tokens.redeem("alice", b"t0", now),
            "the oldest was pushed out"
        );
        assert!(tokens.redeem("alice", format!("t{}", PER_USER + 1).as_bytes(), now));

        let mut full = LoginTokens::default();
        for i in 0..TOTAL {
            assert!(full.grant(grant(&format!("u{i}"), "t", now + TTL), now));
        }
        assert!(!full.grant(grant("late", "t", now + TTL), now));
        assert!(!full.redeem("late", b"t", now));
        assert!(full.redeem("u0", b"t", now));
        assert!(full.grant(grant("late", "t", now + TTL), now), "room again");
    }
}
