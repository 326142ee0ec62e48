//! A forgotten password reset with the answer to the user's security question, over the
//! chat (`reset`) or the web console's `/reset` page; both run it on an auth worker under
//! the same attempt windows.

use super::question::{account_name, normalize_answer};
use super::register::{set_password, unavailable};
use super::rules;
use super::{AccountError, Hasher};
use crate::store::Store;

/// Sets a new password for `name` when `answer` is right. An unknown user or a user
/// without a question is checked against `dummy` (a hash of the same cost), so every
/// failure takes the same time and gives the same answer.
pub fn reset(
    store: &Store,
    hasher: &dyn Hasher,
    name: &str,
    answer: &str,
    password: &str,
    dummy: &str,
) -> Result<(), AccountError> {
    rules::check_password(password).map_err(AccountError::Rule)?;
    let answer = normalize_answer(answer);
    let name = account_name(store, name)?;
    let stored = store.security_question(&name).map_err(unavailable)?;
    let right = match &stored {
        Some((_, hash)) => hasher.verify(answer.as_bytes(), hash),
        None => {
            std::hint::black_box(hasher.verify(answer.as_bytes(), dummy));
            false
        }
    };
    if !right {
        return Err(AccountError::ResetFailed);
    }
    set_password(store, hasher, &name, password).map_err(|e| match e {
        AccountError::UnknownUser => AccountError::ResetFailed,
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::rules::RuleError;
    use crate::accounts::{register, set_question, Bcrypt};
    use crate::auth::password::verify_password;
    use crate::store::testing::store as temp_store;

    const FAST: Bcrypt = Bcrypt(4);

    #[test]
    fn reset_needs_the_right_answer_and_fails_alike_otherwise() {
        let (_dir, store) = temp_store();
        let dummy = FAST.hash("dummy").unwrap();
        register(&store, &FAST, "ana", "first password").unwrap();
        register(&store, &FAST, "bob", "first password").unwrap();
        set_question(&store, &FAST, "ana", "First pet?", "Rex").unwrap();
        for (name, answer) in [("ana", "Max"), ("zed", "rex"), ("bob", "rex")] {
            assert_eq!(
                reset(&store, &FAST, name, answer, "new password", &dummy),
                Err(AccountError::ResetFailed),
                "{name}"
            );
        }
        reset(&store, &FAST, "ANA", " REX ", "new password", &dummy).unwrap();
        let ana = store.find_user("ana").unwrap().unwrap();
        assert!(verify_password(b"new password", &ana.password_hash));
        assert_eq!(
            reset(&store, &FAST, "ana", "rex", "short", &dummy),
            Err(AccountError::Rule(RuleError::PasswordTooShort))
        );
    }
}
