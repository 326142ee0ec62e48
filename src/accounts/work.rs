//! Account work as a value: what the chat service hands to an auth worker (bcrypt is slow
//! on purpose, so it never runs on the loop), and what came of it.

use std::fmt;

use super::{question, register, reset, set_question, AccountError, Hasher};
use crate::store::Store;

/// Account work the chat service hands to an auth worker.
#[derive(Clone, PartialEq, Eq)]
pub enum AccountOp {
    Register {
        name: String,
        password: String,
    },
    SetQuestion {
        user: String,
        question: String,
        answer: String,
    },
    Question {
        name: String,
    },
    Reset {
        name: String,
        password: String,
        answer: String,
    },
}

impl fmt::Debug for AccountOp {
    /// Names and questions only: passwords and answers never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountOp::Register { name, .. } => write!(f, "Register({name})"),
            AccountOp::SetQuestion { user, .. } => write!(f, "SetQuestion({user})"),
            AccountOp::Question { name } => write!(f, "Question({name})"),
            AccountOp::Reset { name, .. } => write!(f, "Reset({name})"),
        }
    }
}

/// What a successful [`AccountOp`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDone {
    Registered,
    QuestionSet,
    Question(String),
    PasswordReset,
}

/// Runs one [`AccountOp`] (on an auth worker); `dummy` is a hash of the same cost that
/// unknown users are checked against.
pub fn run(
    store: &Store,
    hasher: &dyn Hasher,
    op: &AccountOp,
    dummy: &str,
) -> Result<AccountDone, AccountError> {
    match op {
        AccountOp::Register { name, password } => {
            register(store, hasher, name, password).map(|_| AccountDone::Registered)
        }
        AccountOp::SetQuestion {
            user,
            question,
            answer,
        } => set_question(store, hasher, user, question, answer).map(|()| AccountDone::QuestionSet),
        AccountOp::Question { name } => question(store, name).map(AccountDone::Question),
        AccountOp::Reset {
            name,
            password,
            answer,
        } => {
            reset(store, hasher, name, answer, password, dummy).map(|()| AccountDone::PasswordReset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_never_show_secrets_in_logs() {
        let op = AccountOp::Reset {
            name: "ana".into(),
            password: "hunter22".into(),
            answer: "rex".into(),
        };
        let shown = format!("{op:?}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("rex"),
            "{shown}"
        );
    }
}
