//! Login sessions and their cookies. A session id is 128 random bits, sent as an
//! HttpOnly, SameSite=Strict cookie with a lifetime; the session itself lives only in this
//! process (a restart logs everyone out), ends at logout, after [`IDLE`] without a
//! request or [`LIFETIME`] after login, and a password change ends the user's other
//! sessions. Each session carries its own CSRF token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "outpost_session";
/// Longest a session lives, whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(3600);
/// Sessions kept at once; the oldest goes first when a new one needs room.
const MAX_SESSIONS: usize = 10_000;

/// 128 random bits as 32 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a command did (or why it was refused), for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    /// Shown as a refusal rather than a success.
    pub error: bool,
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Sent back with every form and API command of this session.
    pub csrf: String,
    /// What the last command did, shown once on the next page (then forgotten, so a
    /// reload does not show it again).
    notice: Option<Notice>,
    created: Instant,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id: HashMap<String, Session>,
}

impl Sessions {
    /// Starts a session for `user`; returns its id.
    pub fn create(&mut self, user: &str, now: Instant) -> String {
        self.by_id.retain(|_, s| alive(s, now));
        if self.by_id.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
            {
                self.by_id.remove(&oldest);
            }
        }
        let id = random_token();
        self.by_id.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf: random_token(),
                notice: None,
                created: now,
                last_used: now,
            },
        );
        id
    }

    /// The live session with this id, marked as used now.
    pub fn touch(&mut self, id: &str, now: Instant) -> Option<Session> {
        let session = self.by_id.get_mut(id)?;
        if !alive(session, now) {
            self.by_id.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Keeps `text` to show once on the session's next page.
    pub fn set_notice(&mut self, id: &str, notice: Notice) {
        if let Some(session) = self.by_id.get_mut(id) {
            session.notice = Some(notice);
        }
    }

    /// The notice kept for the session, forgotten as it is taken.
    pub fn take_notice(&mut self, id: &str) -> Option<Notice> {
        self.by_id.get_mut(id)?.notice.take()
    }

    pub fn end(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Ends every session of `user` but `keep` (after a password change, or all when the
    /// account is gone).
    pub fn end_user(&mut self, user: &str, keep: Option<&str>) {
        self.by_id
            .retain(|id, s| s.user != user || Some(id.as_str()) == keep);
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.created) < LIFETIME
        && now.saturating_duration_since(s.last_used) < IDLE
}

/// The `Set-Cookie` value that stores `id` for [`LIFETIME`]. `Secure` is added where the
/// answer is encoded, when the request came over HTTPS (plain HTTP on loopback has none).
pub fn set_cookie(name: &str, id: &str) -> String {
    format!(
        "{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.trim().split_once('=')?;
        (n == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_end_and_are_per_user() {
        let now = Instant::now();
        let mut sessions = Sessions::default();
        let a1 = sessions.create("alice", now);
        let a2 = sessions.create("alice", now);
        let b = sessions.create("bob", now);
        assert_eq!(a1.len(), 32);
        assert_ne!(a1, a2);
        let s = sessions.touch(&a1, now).unwrap();
        assert_eq!(s.user, "alice");
        assert_eq!(s.csrf.len(), 32);
        sessions.end_user("alice", Some(&a2));
        assert!(sessions.touch(&a1, now).is_none());
        assert!(sessions.touch(&a2, now).is_some());
        assert!(sessions.touch(&b, now + IDLE).is_none(), "idle too long");
        let later = now + IDLE - Duration::from_secs(1);
        assert!(sessions.touch(&a2, later).is_some());
        let notice = Notice {
            text: "Deleted user bob.".into(),
            error: false,
        };
        sessions.set_notice(&a2, notice.clone());
        assert_eq!(sessions.take_notice(&a2), Some(notice));
        assert_eq!(sessions.take_notice(&a2), None, "shown once");
        sessions.end(&a2);
        assert!(sessions.touch(&a2, later).is_none());
    }

    #[test]
    fn reads_cookies() {
        let header = "theme=dark; outpost_session=abc123 ;x=y";
        assert_eq!(cookie(header, COOKIE), Some("abc123"));
        assert_eq!(cookie(header, "none"), None);
        assert!(set_cookie(COOKIE, "abc").contains("HttpOnly; SameSite=Strict"));
    }
}
