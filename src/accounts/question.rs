//! The security question a user sets (over the chat or on the web console's account page)
//! to reset a forgotten password later. The answer is kept only as a bcrypt hash of its
//! trimmed, lower-cased form.

use super::register::{hashed, unavailable};
use super::rules::{breaks_lines, QUESTION_MAX};
use super::{AccountError, Hasher};
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::store::Store;

/// Answers compare without regard to case or surrounding spaces.
pub(super) fn normalize_answer(answer: &str) -> String {
    answer.trim().to_lowercase()
}

/// The checks on a new question and answer, cheap enough for the loop to make first.
pub fn check_question(question: &str, answer: &str) -> Result<(), AccountError> {
    let q = question.trim();
    if q.is_empty()
        || q.chars().count() > QUESTION_MAX
        || q.chars().any(|c| c.is_control() || breaks_lines(c))
    {
        return Err(AccountError::QuestionInvalid);
    }
    let a = normalize_answer(answer);
    if a.is_empty() || a.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::AnswerInvalid);
    }
    Ok(())
}

/// Sets `user`'s security question, its answer hashed by `hasher`.
pub fn set_question(
    store: &Store,
    hasher: &dyn Hasher,
    user: &str,
    question: &str,
    answer: &str,
) -> Result<(), AccountError> {
    check_question(question, answer)?;
    let hash = hashed(hasher, &normalize_answer(answer), "an answer")?;
    store
        .set_security_question(user, question.trim(), &hash)
        .map_err(unavailable)
}

/// The stored name of the account `name` finds (any case), or `name` itself when none.
pub(super) fn account_name(store: &Store, name: &str) -> Result<String, AccountError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{register, Bcrypt};
    use crate::auth::password::verify_password;
    use crate::store::testing::store as temp_store;

    #[test]
    fn questions_and_answers_are_bounded() {
        assert_eq!(check_question("", "a"), Err(AccountError::QuestionInvalid));
        assert_eq!(
            check_question(&"q".repeat(QUESTION_MAX + 1), "a"),
            Err(AccountError::QuestionInvalid)
        );
        assert_eq!(
            check_question("q?\u{2028}row", "a"),
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
    fn a_question_is_read_back_trimmed_in_any_case_of_the_name() {
        let (_dir, store) = temp_store();
        register(&store, &Bcrypt(4), "ana", "first password").unwrap();
        assert_eq!(question(&store, "ana"), Err(AccountError::NoQuestion));
        assert_eq!(question(&store, "zed"), Err(AccountError::NoQuestion));
        set_question(&store, &Bcrypt(4), "ana", " First pet? ", "  Rex ").unwrap();
        assert_eq!(question(&store, "ANA").unwrap(), "First pet?");
        let (_, hash) = store.security_question("ana").unwrap().unwrap();
        assert!(verify_password(b"rex", &hash), "trimmed and lower-cased");
    }
}
