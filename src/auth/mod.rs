//! Authentication and authorisation.
//!
//! - `password` — bcrypt hashing and checking (slow: never on the loop).
//! - `worker`   — the threads where bcrypt runs (logins, account work), answering the loop.
//! - `login`    — checking a CONNECT's user name and password: the verdict.
//! - `cache`    — recently verified credentials, kept as salted digests, never plaintext.
//! - `login_token` — single-use tokens the web console grants the browser chat page.
//! - `attempts` — at most so many attempts per key in a window (registrations per address).
//! - `throttle` — bounds password guessing per address and per account.
//! - `acl`      — topic access rules, evaluated on the loop.
//! - `bans`     — client ids, user names and addresses that may not connect.

pub mod acl;
pub mod attempts;
pub mod bans;
pub mod cache;
pub mod login;
pub mod login_token;
pub mod password;
pub mod throttle;
pub mod worker;
