//! How account secrets (passwords, security answers) are hashed and checked: bcrypt at the
//! configured cost. The web console runs one at a time (its `Context` implements
//! [`Hasher`] with a lock); an auth worker runs [`Bcrypt`] as it is.

use crate::auth::password::{hash_password, verify_password, PasswordError};

/// Hashes and checks secrets; slow on purpose, so never called on the loop.
pub trait Hasher {
    /// A fresh salted hash of `plain`.
    fn hash(&self, plain: &str) -> Result<String, PasswordError>;
    /// True when `plain` matches `hash`.
    fn verify(&self, plain: &[u8], hash: &str) -> bool;
}

/// bcrypt at this cost, on the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bcrypt(pub u32);

impl Hasher for Bcrypt {
    fn hash(&self, plain: &str) -> Result<String, PasswordError> {
        hash_password(plain, self.0)
    }

    fn verify(&self, plain: &[u8], hash: &str) -> bool {
        verify_password(plain, hash)
    }
}
