//! Creating an account and giving it a new password, after the account rules.

use super::rules;
use super::{AccountError, Hasher};
use crate::store::{Store, StoreError};

/// Logs a store failure where it happened; the caller only learns it is unavailable.
pub(super) fn unavailable(e: StoreError) -> AccountError {
    log::error!("account store: {e}");
    AccountError::Unavailable
}

/// `hasher`'s hash of `secret`, a failure logged as `what`.
pub(super) fn hashed(
    hasher: &dyn Hasher,
    secret: &str,
    what: &str,
) -> Result<String, AccountError> {
    hasher.hash(secret).map_err(|e| {
        log::error!("cannot hash {what}: {e}");
        AccountError::Unavailable
    })
}

/// Creates a (non-admin) user after checking the account rules and returns its id. The
/// password is hashed before the name is looked at, so learning that a name is taken
/// costs what registering a fresh one does. Names are unique without regard to case
/// (`Store::add_user`). This is the one way a user makes their own account.
pub fn register(
    store: &Store,
    hasher: &dyn Hasher,
    name: &str,
    password: &str,
) -> Result<i64, AccountError> {
    rules::check_username(name).map_err(AccountError::Rule)?;
    rules::check_password(password).map_err(AccountError::Rule)?;
    let hash = hashed(hasher, password, "a password")?;
    match store.add_user(name, &hash, false) {
        Ok(id) => Ok(id),
        Err(StoreError::DuplicateUser(_)) => Err(AccountError::NameTaken),
        Err(e) => Err(unavailable(e)),
    }
}

/// Gives the user `name` the new `password`, after the password rule. Whoever calls it has
/// already established the right to (the current password, an administrator, the answer).
pub fn set_password(
    store: &Store,
    hasher: &dyn Hasher,
    name: &str,
    password: &str,
) -> Result<(), AccountError> {
    rules::check_password(password).map_err(AccountError::Rule)?;
    let hash = hashed(hasher, password, "a password")?;
    store.set_password(name, &hash).map_err(|e| match e {
        StoreError::UnknownUser(_) => AccountError::UnknownUser,
        e => unavailable(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::rules::RuleError;
    use crate::accounts::Bcrypt;
    use crate::auth::password::verify_password;
    use crate::store::testing::store as temp_store;

    /// bcrypt's lowest cost: these tests check logic, not hardness.
    const FAST: Bcrypt = Bcrypt(4);

    #[test]
    fn register_follows_the_rules_and_refuses_taken_names() {
        let (_dir, store) = temp_store();
        register(&store, &FAST, "ana", "long enough").unwrap();
        let ana = store.find_user("ana").unwrap().unwrap();
        assert!(verify_password(b"long enough", &ana.password_hash));
        assert!(!ana.is_admin);
        for taken in ["ana", "ANA"] {
            assert_eq!(
                register(&store, &FAST, taken, "long enough"),
                Err(AccountError::NameTaken)
            );
        }
        assert_eq!(
            register(&store, &FAST, "a/b", "long enough"),
            Err(AccountError::Rule(RuleError::NameBadCharacters))
        );
        assert_eq!(
            register(&store, &FAST, "bob", "short"),
            Err(AccountError::Rule(RuleError::PasswordTooShort))
        );
        assert_eq!(store.list_users().unwrap().len(), 1);
    }

    #[test]
    fn a_new_password_follows_the_rule_and_needs_the_user() {
        let (_dir, store) = temp_store();
        register(&store, &FAST, "ana", "first password").unwrap();
        assert_eq!(
            set_password(&store, &FAST, "ana", "short"),
            Err(AccountError::Rule(RuleError::PasswordTooShort))
        );
        assert_eq!(
            set_password(&store, &FAST, "zed", "new password"),
            Err(AccountError::UnknownUser)
        );
        set_password(&store, &FAST, "ana", "new password").unwrap();
        let ana = store.find_user("ana").unwrap().unwrap();
        assert!(verify_password(b"new password", &ana.password_hash));
    }
}
