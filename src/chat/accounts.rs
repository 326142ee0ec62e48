//! Accounts: register, set a security question, read a user's question, reset a password
//! with the right answer. These run off the loop (an auth worker, the web thread, the CLI)
//! on the caller's own store connection, because bcrypt is slow on purpose; each change is
//! committed before the function returns, so a reply sent after it never runs ahead of
//! the disk. [`register`] is the one way any front end creates a user.

use std::fmt;

use crate::auth::password::{hash_password, verify_password, MAX_PASSWORD_BYTES};
use crate::auth::rules::{self, RuleError};
use crate::store::{Store, StoreError};

/// Longest security question, in characters.
pub const QUESTION_MAX: usize = 200;

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
    /// The database failed; logged where it happened.
    Unavailable,
}

impl AccountError {
    /// The machine-readable code, as in chat replies (`docs/chat.md`).
    pub fn code(self) -> &'static str {
        super::ChatError::from(self).code()
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::ChatError::from(*self).fmt(f)
    }
}

impl std::error::Error for AccountError {}

fn unavailable(e: StoreError) -> AccountError {
    log::error!("account store: {e}");
    AccountError::Unavailable
}

/// Creates a user after checking the account rules; the password is hashed at `cost`
/// before the name is looked at, so learning that a name is taken costs what registering
/// a fresh one does. Names are unique without regard to case (`Store::add_user`).
pub fn register(store: &Store, name: &str, password: &str, cost: u32) -> Result<(), AccountError> {
    rules::check_username(name).map_err(AccountError::Rule)?;
    rules::check_password(password).map_err(AccountError::Rule)?;
    let hash = hash_password(password, cost).map_err(|e| {
        log::error!("cannot hash a password: {e}");
        AccountError::Unavailable
    })?;
    match store.add_user(name, &hash, false) {
        Ok(_) => Ok(()),
        Err(StoreError::DuplicateUser(_)) => Err(AccountError::NameTaken),
        Err(e) => Err(unavailable(e)),
    }
}

/// Answers compare without regard to case or surrounding spaces.
fn normalize_answer(answer: &str) -> String {
    answer.trim().to_lowercase()
}

/// The checks on a new question and answer, cheap enough for the loop to make first.
pub fn check_question(question: &str, answer: &str) -> Result<(), AccountError> {
    let q = question.trim();
    if q.is_empty()
        || q.chars().count() > QUESTION_MAX
        || q.chars()
            .any(|c| c.is_control() || super::codec::breaks_lines(c))
    {
        return Err(AccountError::QuestionInvalid);
    }
    let a = normalize_answer(answer);
    if a.is_empty() || a.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::AnswerInvalid);
    }
    Ok(())
}

/// Sets `user`'s security question, its answer hashed at `cost`.
pub fn set_question(
    store: &mut Store,
    user: &str,
    question: &str,
    answer: &str,
    cost: u32,
) -> Result<(), AccountError> {
    check_question(question, answer)?;
    let hash = hash_password(&normalize_answer(answer), cost).map_err(|e| {
        log::error!("cannot hash an answer: {e}");
        AccountError::Unavailable
    })?;
    store
        .set_security_question(user, question.trim(), &hash)
        .map_err(unavailable)
}

/// The stored name of the account `name` finds (any case), or `name` itself when none.
fn account_name(store: &Store, name: &str) -> Result<String, AccountError> {
    let user = store.find_login(name).map_err(unavailable)?;
    Ok(user.map_or_else(|| name.to_owned(), |u| u.name))
}

/// `name`'s security question.
pub fn question(store: &Store, name: &str) -> Result<String, AccountError> {
    match store
        .security_question(&account_name(store, name)?)
        .map_err(unavailable)?
    {
        Some((question, _)) => Ok(question),
        None => Err(AccountError::NoQuestion),
    }
}

/// Sets a new password for `name` when `answer` is right. An unknown user or a user
/// without a question is checked against `dummy` (a hash of the same cost), so every
/// failure takes the same time and gives the same answer.
pub fn reset(
    store: &Store,
    name: &str,
    answer: &str,
    password: &str,
    cost: u32,
    dummy: &str,
) -> Result<(), AccountError> {
    rules::check_password(password).map_err(AccountError::Rule)?;
    let answer = normalize_answer(answer);
    let name = account_name(store, name)?;
    let stored = store.security_question(&name).map_err(unavailable)?;
    let right = match &stored {
        Some((_, hash)) => verify_password(answer.as_bytes(), hash),
        None => {
            std::hint::black_box(verify_password(answer.as_bytes(), dummy));
            false
        }
    };
    if !right {
        return Err(AccountError::ResetFailed);
    }
    let hash = hash_password(password, cost).map_err(|e| {
        log::error!("cannot hash a password: {e}");
        AccountError::Unavailable
    })?;
    store.set_password(&name, &hash).map_err(|e| match e {
        StoreError::UnknownUser(_) => AccountError::ResetFailed,
        e => unavailable(e),
    })
}

/// Runs one [`AccountOp`] (on an auth worker).
pub fn run(
    store: &mut Store,
    op: &AccountOp,
    cost: u32,
    dummy: &str,
) -> Result<AccountDone, AccountError> {
    match op {
        AccountOp::Register { name, password } => {
            register(store, name, password, cost).map(|()| AccountDone::Registered)
        }
        AccountOp::SetQuestion {
            user,
            question,
            answer,
        } => set_question(store, user, question, answer, cost).map(|()| AccountDone::QuestionSet),
        AccountOp::Question { name } => question(store, name).map(AccountDone::Question),
        AccountOp::Reset {
            name,
            password,
            answer,
        } => reset(store, name, answer, password, cost, dummy).map(|()| AccountDone::PasswordReset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMode;

    /// bcrypt's lowest cost: these tests check logic, not hardness.
    const COST: u32 = 4;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("acc.db"), SyncMode::Normal).unwrap();
        (dir, store)
    }

    #[test]
    fn register_follows_the_rules_and_refuses_taken_names() {
        let (_dir, store) = store();
        register(&store, "ana", "long enough", COST).unwrap();
        let ana = store.find_user("ana").unwrap().unwrap();
        assert!(verify_password(b"long enough", &ana.password_hash));
        assert!(!ana.is_admin);
        assert_eq!(
            register(&store, "ana", "long enough", COST),
            Err(AccountError::NameTaken)
        );
        assert_eq!(
            register(&store, "a/b", "long enough", COST),
            Err(AccountError::Rule(RuleError::NameBadCharacters))
        );
        assert_eq!(
            register(&store, "bob", "short", COST),
            Err(AccountError::Rule(RuleError::PasswordTooShort))
        );
        assert_eq!(store.list_users().unwrap().len(), 1);
    }

    #[test]
    fn reset_needs_the_right_answer_and_fails_alike_otherwise() {
        let (_dir, mut store) = store();
        let dummy = hash_password("dummy", COST).unwrap();
        register(&store, "ana", "first password", COST).unwrap();
        register(&store, "bob", "first password", COST).unwrap();
        assert_eq!(question(&store, "ana"), Err(AccountError::NoQuestion));
        assert_eq!(question(&store, "zed"), Err(AccountError::NoQuestion));
        set_question(&mut store, "ana", " First pet? ", "  Rex ", COST).unwrap();
        assert_eq!(question(&store, "ana").unwrap(), "First pet?");
        for (name, answer) in [("ana", "Max"), ("zed", "rex"), ("bob", "rex")] {
            assert_eq!(
                reset(&store, name, answer, "new password", COST, &dummy),
                Err(AccountError::ResetFailed),
                "{name}"
            );
        }
        reset(&store, "ana", "REX", "new password", COST, &dummy).unwrap();
        let ana = store.find_user("ana").unwrap().unwrap();
        assert!(verify_password(b"new password", &ana.password_hash));
        assert_eq!(
            reset(&store, "ana", "rex", "short", COST, &dummy),
            Err(AccountError::Rule(RuleError::PasswordTooShort))
        );
    }

    #[test]
    fn questions_and_answers_are_bounded() {
        assert_eq!(check_question("", "a"), Err(AccountError::QuestionInvalid));
        assert_eq!(
            check_question(&"q".repeat(QUESTION_MAX + 1), "a"),
            Err(AccountError::QuestionInvalid)
        );
        assert_eq!(check_question("q?", "  "), Err(AccountError::AnswerInvalid));
        assert_eq!(
            check_question("q?", &"a".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(AccountError::AnswerInvalid)
        );
        assert_eq!(check_question("q?", "a"), Ok(()));
    }

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
