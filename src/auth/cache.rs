//! Recently verified credentials, so a reconnect storm after a link drop costs one
//! SHA-256 per client instead of one bcrypt. Only a salted digest of the password is
//! kept (the salt is random per process), never the password itself.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::store::name_key;

/// How long a verified password is trusted without bcrypt. A password changed or a user
/// deleted elsewhere takes effect for cached clients after at most this long.
pub const CACHE_TTL: Duration = Duration::from_secs(120);

/// A salted digest of one user name and password.
pub type Credential = [u8; 32];

struct Entry {
    credential: Credential,
    expires: Instant,
}

pub struct CredentialCache {
    salt: [u8; 32],
    entries: HashMap<String, Entry>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        let mut salt = [0u8; 32];
        let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut salt));
        if random.is_err() {
            // Without randomness, fall back on the clock: still not the plaintext.
            let nanos = crate::clock::unix_nanos();
            salt[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        CredentialCache {
            salt,
            entries: HashMap::new(),
        }
    }
}

impl CredentialCache {
    pub fn credential(&self, username: &str, password: &[u8]) -> Credential {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update((username.len() as u64).to_le_bytes());
        h.update(username.as_bytes());
        h.update(password);
        h.finalize().into()
    }

    /// True when this credential was verified less than [`CACHE_TTL`] ago.
    pub fn check(&self, username: &str, credential: &Credential, now: Instant) -> bool {
        self.entries
            .get(username)
            .is_some_and(|e| e.expires > now && e.credential == *credential)
    }

    pub fn remember(&mut self, username: &str, credential: Credential, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
        self.entries.insert(
            username.to_string(),
            Entry {
                credential,
                expires: now + CACHE_TTL,
            },
        );
    }

    /// Forgets a user whose password was just refused or reset (it may have changed),
    /// under any spelling of the name.
    pub fn forget(&mut self, username: &str) {
        let key = name_key(username);
        self.entries.retain(|name, _| name_key(name) != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_the_right_password_until_it_expires() {
        let now = Instant::now();
        let mut cache = CredentialCache::default();
        let good = cache.credential("alice", b"pw");
        assert!(!cache.check("alice", &good, now));
        cache.remember("alice", good, now);
        assert!(cache.check("alice", &good, now));
        assert!(!cache.check("alice", &cache.credential("alice", b"pX"), now));
        assert!(!cache.check("bob", &good, now));
        assert!(!cache.check("alice", &good, now + CACHE_TTL));
        cache.forget("alice");
        assert!(!cache.check("alice", &good, now));
    }

    #[test]
    fn digests_are_salted_per_cache() {
        let a = CredentialCache::default();
        let b = CredentialCache::default();
        assert_ne!(a.credential("u", b"p"), b.credential("u", b"p"));
        assert_ne!(a.credential("u", b"p"), a.credential("up", b""));
    }
}
