//! Who may connect and what they may do, as the loop keeps it: the bcrypt workers and the
//! CONNECTs waiting for them, the caches that spare them work, and the ACL rules clients'
//! topic rules are built from. `connect.rs` decides with it; `reload.rs` refreshes it.

use std::collections::HashMap;
use std::sync::Arc;

use super::connect::PendingConnect;
use super::Inbound;
use crate::auth::acl::ClientAcl;
use crate::auth::cache::CredentialCache;
use crate::auth::login_token::LoginTokens;
use crate::auth::throttle::LoginThrottle;
use crate::auth::worker::AuthWorker;
use crate::config::Config;
use crate::core::keys::ConnKey;
use crate::store::{AclRule, Ban};

pub struct Access {
    /// Where passwords are checked (bcrypt is too slow for the loop), and other slow
    /// work such as the chat service's account requests.
    pub worker: AuthWorker<Inbound>,
    /// CONNECTs waiting for the worker's verdict, by connection.
    pub pending: HashMap<ConnKey, PendingConnect>,
    /// Recently verified credentials (salted digests), so a reconnect skips bcrypt.
    pub credentials: CredentialCache,
    /// Password guessing bounded per address and per account (slot taken before bcrypt).
    pub throttle: LoginThrottle,
    /// Password resets by security question from the web, bounded per address and per
    /// account, while no chat service keeps them (with chat on, the web and `reset` over
    /// MQTT share the chat's).
    pub resets: LoginThrottle,
    /// Single-use passwords the web console granted to logged-in browsers.
    pub login_tokens: LoginTokens,
    /// Every ACL rule in the store, refreshed with each auth reply and on SIGHUP.
    pub acl_rules: Arc<Vec<AclRule>>,
    /// Every ban in the store, read at start and again when the console changes them.
    pub bans: Vec<Ban>,
    /// The last client ACL built, handed out again to clients whose rules are the same
    /// (all anonymous clients, usually), so they share one allocation.
    last_acl: Arc<ClientAcl>,
}

impl Access {
    pub fn new(worker: AuthWorker<Inbound>) -> Access {
        Access {
            worker,
            pending: HashMap::new(),
            credentials: CredentialCache::default(),
            throttle: LoginThrottle::default(),
            resets: LoginThrottle::default(),
            login_tokens: LoginTokens::default(),
            acl_rules: Arc::new(Vec::new()),
            bans: Vec::new(),
            last_acl: Arc::default(),
        }
    }

    /// The rules for one client, shared with the previous client when they are the same.
    pub fn acl_for(
        &mut self,
        config: &Config,
        username: Option<&str>,
        client_id: &str,
    ) -> Arc<ClientAcl> {
        let acl = ClientAcl::for_client(
            &self.acl_rules,
            &config.access.deny_subscribe,
            &config.access.deny_publish,
            username,
            client_id,
        );
        if *self.last_acl != acl {
            self.last_acl = Arc::new(acl);
        }
        self.last_acl.clone()
    }
}
