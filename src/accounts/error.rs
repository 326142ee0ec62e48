//! Why account work was refused: one machine-readable code and one sentence per refusal,
//! the same for every front end that shows them as they are (the chat replies,
//! `docs/chat.md`); the web console words its pages on top of the codes.

use std::fmt;

use super::rules::{RuleError, QUESTION_MAX};
use crate::auth::password::MAX_PASSWORD_BYTES;

/// Why account work was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountError {
    Rule(RuleError),
    NameTaken,
    QuestionInvalid,
    AnswerInvalid,
    /// The user does not exist or has no question (the same answer for both).
    NoQuestion,
    /// Unknown user, no question or a wrong answer: one answer, after the same work.
    ResetFailed,
    /// The user whose password is to change does not exist.
    UnknownUser,
    /// The database or bcrypt failed; logged where it happened.
    Unavailable,
}

impl AccountError {
    /// A stable code for machines (chat replies, the JSON API).
    pub fn code(self) -> &'static str {
        match self {
            AccountError::Rule(rule) => rule.code(),
            AccountError::NameTaken => "name_taken",
            AccountError::QuestionInvalid => "question_invalid",
            AccountError::AnswerInvalid => "answer_invalid",
            AccountError::NoQuestion => "no_question",
            AccountError::ResetFailed => "reset_failed",
            AccountError::UnknownUser => "unknown_user",
            AccountError::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::Rule(rule) => rule.fmt(f),
            AccountError::NameTaken => f.write_str("the user name is taken"),
            AccountError::QuestionInvalid => {
                write!(f, "a question has 1 to {QUESTION_MAX} characters")
            }
            AccountError::AnswerInvalid => {
                write!(f, "an answer has 1 to {MAX_PASSWORD_BYTES} bytes")
            }
            AccountError::NoQuestion => f.write_str("no security question for that user"),
            AccountError::ResetFailed => f.write_str("wrong user name or answer"),
            AccountError::UnknownUser => f.write_str("no such user"),
            AccountError::Unavailable => f.write_str("the accounts are unavailable, try again"),
        }
    }
}

impl std::error::Error for AccountError {}
