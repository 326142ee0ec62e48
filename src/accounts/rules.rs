//! The rules every account made by its own user follows, wherever it is made: the chat
//! service's register request and the web console's register and admin forms (an
//! administrator's `outpost user add` keeps the store's looser floor, so devices can have
//! short names). Each refusal has a machine-readable code (for chat replies and the JSON
//! API) and a sentence for people. Security questions and answers are bounded here too.

use std::fmt;

use crate::auth::password::MAX_PASSWORD_BYTES;

/// Shortest and longest user name, in characters.
pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
/// Shortest password, in bytes (the longest is bcrypt's [`MAX_PASSWORD_BYTES`]).
pub const PASSWORD_MIN: usize = 8;
/// Longest security question, in characters.
pub const QUESTION_MAX: usize = 200;

/// Why a user name or password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    NameTooShort,
    NameTooLong,
    /// Only ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit: a
    /// name appears in topics (`%u` in ACLs) and pages, so it must hold no `/`, `+`, `#`,
    /// spaces, control or look-alike characters.
    NameBadCharacters,
    PasswordTooShort,
    PasswordTooLong,
}

impl RuleError {
    /// A stable code for machines (chat replies, the JSON API).
    pub fn code(self) -> &'static str {
        match self {
            RuleError::NameTooShort => "name_too_short",
            RuleError::NameTooLong => "name_too_long",
            RuleError::NameBadCharacters => "name_bad_characters",
            RuleError::PasswordTooShort => "password_too_short",
            RuleError::PasswordTooLong => "password_too_long",
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::NameTooShort => {
                write!(
                    f,
                    "the user name must have at least {USERNAME_MIN} characters"
                )
            }
            RuleError::NameTooLong => {
                write!(
                    f,
                    "the user name must have at most {USERNAME_MAX} characters"
                )
            }
            RuleError::NameBadCharacters => f.write_str(
                "the user name may hold only letters, digits, '_', '-' and '.', \
                 and must start with a letter or digit",
            ),
            RuleError::PasswordTooShort => {
                write!(
                    f,
                    "the password must have at least {PASSWORD_MIN} characters"
                )
            }
            RuleError::PasswordTooLong => {
                write!(
                    f,
                    "the password must have at most {MAX_PASSWORD_BYTES} bytes"
                )
            }
        }
    }
}

impl std::error::Error for RuleError {}

/// Checks a new user name.
pub fn check_username(name: &str) -> Result<(), RuleError> {
    let len = name.chars().count();
    if len < USERNAME_MIN {
        return Err(RuleError::NameTooShort);
    }
    if len > USERNAME_MAX {
        return Err(RuleError::NameTooLong);
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(RuleError::NameBadCharacters)
    }
}

/// Checks a new password (any characters; bcrypt's byte limit).
pub fn check_password(password: &str) -> Result<(), RuleError> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(RuleError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RuleError::PasswordTooLong);
    }
    Ok(())
}

/// True for the characters a reader may take as the end of a line besides the control
/// characters: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (Python's
/// `splitlines()`, JavaScript's line terminators). A text holding one could forge a row
/// of a chat history page or of a reply.
pub fn breaks_lines(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ana", "Bob_2", "a.b-c", "x12", &"n".repeat(USERNAME_MAX)] {
            assert_eq!(check_username(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_username("ab"), Err(RuleError::NameTooShort));
        assert_eq!(check_username(""), Err(RuleError::NameTooShort));
        assert_eq!(
            check_username(&"n".repeat(USERNAME_MAX + 1)),
            Err(RuleError::NameTooLong)
        );
        for bad in [
            "a/b", "ab+", "ab#", "a b", "_abc", ".abc", "abc\n", "çava", "ab\u{0}c",
        ] {
            assert_eq!(
                check_username(bad),
                Err(RuleError::NameBadCharacters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords() {
        assert_eq!(check_password("12345678"), Ok(()));
        assert_eq!(check_password("sécurité"), Ok(()), "characters, not bytes");
        assert_eq!(check_password("1234567"), Err(RuleError::PasswordTooShort));
        assert_eq!(
            check_password(&"p".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(RuleError::PasswordTooLong)
        );
    }

    #[test]
    fn every_error_has_a_distinct_code_and_a_sentence() {
        let all = [
            RuleError::NameTooShort,
            RuleError::NameTooLong,
            RuleError::NameBadCharacters,
            RuleError::PasswordTooShort,
            RuleError::PasswordTooLong,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| e.to_string().len() > 10));
    }
}
