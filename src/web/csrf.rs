//! Cross-site request forgery checks. Forms of a logged-in session carry the session's
//! token; the login and register forms, before any session exists, carry a token that
//! must match a cookie set with the form (double submit). API commands send the session
//! token in the `X-CSRF-Token` header. A request whose `Origin` names another host is
//! refused as well, whatever it carries.

/// The cookie holding the pre-login form token.
pub const FORM_COOKIE: &str = "outpost_form";
/// The form field every form posts its token in.
pub const FIELD: &str = "csrf";
/// The header API commands send the session token in.
pub const HEADER: &str = "X-CSRF-Token";

/// True when `given` matches `expected` (compared in constant time; both are hex).
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else {
        return false;
    };
    if expected.is_empty() || expected.len() != given.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// True unless the request's `Origin` header names a host other than the one asked.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(matches("abcd", Some("abcd")));
        assert!(!matches("abcd", Some("abce")));
        assert!(!matches("abcd", Some("abc")));
        assert!(!matches("abcd", None));
        assert!(!matches("", Some("")));
    }

    #[test]
    fn origins() {
        assert!(same_origin(None, Some("127.0.0.1:8080")));
        assert!(same_origin(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin(
            Some("http://evil.example"),
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin(Some("null"), Some("127.0.0.1:8080")));
    }
}
