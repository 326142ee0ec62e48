//! Checking a CONNECT's user name and password against the store (bcrypt: on an auth
//! worker, never on the loop), and the verdict the loop gets back.

use std::sync::Arc;

use super::password::verify_password;
use crate::store::{AclRule, Store};

/// The verdict on one login.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    Accepted,
    /// Wrong password for an account that exists.
    Rejected,
    /// No account has this user name (found after the same work as a wrong password):
    /// the loop may connect the client as anonymous where anonymous clients are allowed.
    UnknownUser,
    /// The database could not be read.
    Unavailable,
}

/// What a login check found.
pub struct Verdict {
    pub outcome: AuthOutcome,
    /// The account's stored name when accepted: a CONNECT may name it in another case
    /// (`Ana` for `ana`), and the session must carry the account's own name.
    pub account: Option<String>,
    /// Every ACL rule as of this check, so rule changes reach the loop without a restart.
    pub rules: Option<Arc<Vec<AclRule>>>,
}

/// Checks `password` for `username`; an unknown user is checked against `dummy` (a hash
/// of the configured cost) so it costs what a wrong password costs.
pub fn check_login(store: &Store, username: &str, password: &[u8], dummy: &str) -> Verdict {
    let (outcome, account) = match store.find_login(username) {
        Ok(Some(user)) if verify_password(password, &user.password_hash) => {
            (AuthOutcome::Accepted, Some(user.name))
        }
        Ok(Some(_)) => (AuthOutcome::Rejected, None),
        Ok(None) => {
            std::hint::black_box(verify_password(password, dummy));
            (AuthOutcome::UnknownUser, None)
        }
        Err(e) => {
            log::error!("cannot check user {username}: {e}");
            (AuthOutcome::Unavailable, None)
        }
    };
    Verdict {
        outcome,
        account,
        rules: store.list_acl_rules().ok().map(Arc::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash_password;
    use crate::store::testing::store as temp_store;

    #[test]
    fn a_login_is_accepted_under_the_stored_name_and_refused_alike_otherwise() {
        let (_dir, store) = temp_store();
        store
            .add_user("ana", &hash_password("right one", 4).unwrap(), false)
            .unwrap();
        let dummy = hash_password("dummy", 4).unwrap();
        let ana = check_login(&store, "ANA", b"right one", &dummy);
        assert_eq!(ana.outcome, AuthOutcome::Accepted);
        assert_eq!(ana.account.as_deref(), Some("ana"));
        assert!(ana.rules.is_some());
        let wrong = check_login(&store, "ana", b"wrong one", &dummy);
        assert_eq!(
            (wrong.outcome, wrong.account),
            (AuthOutcome::Rejected, None)
        );
        let nobody = check_login(&store, "zed", b"right one", &dummy);
        assert_eq!(nobody.outcome, AuthOutcome::UnknownUser);
    }
}
