//! User accounts, one API for every front end (the chat service through an auth worker, the
//! web console, the broker's console requests): the rules a new name and password follow,
//! registering, password changes, the security question and the reset it guards. bcrypt
//! runs on the caller's thread (never the loop's), and each change is committed before the
//! function returns, so a reply sent after it never runs ahead of the disk. How a refusal
//! is shown (a chat reply, an HTTP status, a page) is the front end's business.
//!
//! - `rules`    — what a new user name, password, question and answer must look like.
//! - `hasher`   — bcrypt at the configured cost, as the caller runs it.
//! - `error`    — why account work was refused: one code and one sentence per refusal.
//! - `register` — creating an account and setting a new password.
//! - `question` — setting and reading the security question.
//! - `reset`    — a new password for the right answer, every failure alike.
//! - `work`     — account work as a value, run on an auth worker for the chat service.

mod error;
mod hasher;
mod question;
mod register;
mod reset;
pub mod rules;
mod work;

pub use error::AccountError;
pub use hasher::{Bcrypt, Hasher};
pub use question::{check_question, question, set_question};
pub use register::{register, set_password};
pub use reset::reset;
pub use rules::QUESTION_MAX;
pub use work::{run, AccountDone, AccountOp};
