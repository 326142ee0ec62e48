//! Password hashing and verification with bcrypt. Every call here is slow on
//! purpose (cost 12 ≈ 250 ms): run it on the auth worker, never on the loop.

use std::fmt;

/// The bcrypt cost used when the configuration names none.
pub const DEFAULT_COST: u32 = bcrypt::DEFAULT_COST;

/// bcrypt reads at most 72 bytes, the terminating NUL included; longer
/// passwords are refused rather than silently cut.
pub const MAX_PASSWORD_BYTES: usize = 71;

/// Why a password could not be hashed.
#[derive(Debug)]
pub enum PasswordError {
    /// Empty passwords are refused.
    Empty,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    TooLong,
    /// bcrypt refused (for example a cost outside 4..=31).
    Bcrypt(bcrypt::BcryptError),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::Empty => write!(f, "the password must not be empty"),
            PasswordError::TooLong => {
                write!(f, "the password is longer than {MAX_PASSWORD_BYTES} bytes")
            }
            PasswordError::Bcrypt(e) => write!(f, "cannot hash the password: {e}"),
        }
    }
}

impl std::error::Error for PasswordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PasswordError::Bcrypt(e) => Some(e),
            _ => None,
        }
    }
}

/// Hashes `plain` with a fresh salt at `cost` (4..=31; [`DEFAULT_COST`] in
/// production, 4 in tests).
pub fn hash_password(plain: &str, cost: u32) -> Result<String, PasswordError> {
    if plain.is_empty() {
        return Err(PasswordError::Empty);
    }
    if plain.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    bcrypt::non_truncating_hash(plain, cost).map_err(PasswordError::Bcrypt)
}

/// True when `plain` matches `hash`. A malformed hash or an over-long
/// password never matches. MQTT passwords are binary, hence bytes.
pub fn verify_password(plain: &[u8], hash: &str) -> bool {
    bcrypt::non_truncating_verify(plain, hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let hash = hash_password("s3cret", 4).unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(verify_password(b"s3cret", &hash));
        assert!(!verify_password(b"s3creT", &hash));
        assert!(!verify_password(b"", &hash));
        assert_ne!(hash, hash_password("s3cret", 4).unwrap(), "salted");
    }

    #[test]
    fn refuses_empty_long_and_bad_cost() {
        assert!(matches!(hash_password("", 4), Err(PasswordError::Empty)));
        assert!(matches!(
            hash_password(&"x".repeat(72), 4),
            Err(PasswordError::TooLong)
        ));
        assert!(matches!(
            hash_password("x", 3),
            Err(PasswordError::Bcrypt(_))
        ));
    }

    #[test]
    fn long_password_never_matches_its_prefix() {
        let hash = hash_password(&"x".repeat(71), 4).unwrap();
        assert!(verify_password("x".repeat(71).as_bytes(), &hash));
        assert!(!verify_password("x".repeat(72).as_bytes(), &hash));
        assert!(!verify_password("x".repeat(80).as_bytes(), &hash));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify_password(b"x", "not a hash"));
    }
}
