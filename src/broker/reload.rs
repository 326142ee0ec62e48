//! SIGHUP: read the config file, the ACL rules and the bans again (what `outpost acl` and
//! `outpost ban` changed), dropping only the clients a new ban names.
//!
//! What changes at once is decided per section of `Config` (each declares its
//! `config::Reload`): the access section (anonymous clients, deny lists, checked again on
//! every publish and delivery, for connected clients too), the runtime section (log level,
//! commit window) and the limits that are only ever compared with new work. Besides the
//! file, the ACL rules and the bans are read again from the store and cached logins
//! forgotten (so a changed password or a deleted user takes effect at the next connect,
//! and a client a new ban names is disconnected). What was bound or
//! announced at start (listeners, the web console, the database, accounts, CONNACK
//! features, chat, bridges) stays until a restart, and the log names each changed option;
//! of a bridge, only when its link comes up and is let go changes at once
//! (`broker::bridge::reload`). A file that does not load keeps every running setting.

use std::sync::Arc;
use std::time::Instant;

use super::console::ConsoleAnswer;
use super::Broker;
use crate::auth::cache::CredentialCache;
use crate::cli::ConfigSource;
use crate::config::Config;
use crate::logging;

impl Broker {
    /// Reads `source` again (when the broker has one) and applies what can change while
    /// clients stay connected; reloads the ACL rules from the store and forgets cached
    /// logins. Logs each step.
    pub(super) fn reload(&mut self, source: Option<&ConfigSource>, now: Instant) {
        match source.and_then(ConfigSource::file) {
            Some(file) => log::info!(
                "SIGHUP: reloading {}, the ACL rules and the bans",
                file.display()
            ),
            None => log::info!("SIGHUP: no config file; reloading the ACL rules and the bans"),
        }
        match source.map(ConfigSource::load) {
            Some(Ok(new)) => self.apply_config(new, now),
            Some(Err(e)) => log::error!("reload: {e}; keeping every running setting"),
            None => {}
        }
        let sessions = self.refresh_access();
        let kicked = match self.refresh_bans() {
            ConsoleAnswer::Disconnected(n) => n,
            _ => 0,
        };
        log::info!(
            "reload done: {} ACL rules applied to {sessions} sessions; {} bans, {kicked} clients disconnected",
            self.access.acl_rules.len(),
            self.access.bans.len(),
        );
    }

    /// Reads the ACL rules again, applies them to every session and forgets cached logins
    /// (on SIGHUP, and after the web console changed users or rules). Returns how many
    /// sessions it applied them to.
    pub(super) fn refresh_access(&mut self) -> usize {
        self.access.credentials = CredentialCache::default();
        match self.db.store.list_acl_rules() {
            Ok(rules) => self.access.acl_rules = Arc::new(rules),
            Err(e) => log::error!("cannot read the ACL rules ({e}); keeping those in use"),
        }
        let keys = self.sessions.keys();
        for &key in &keys {
            let session = &self.sessions[key];
            let (username, client_id) = (session.username.clone(), session.client_id.clone());
            self.sessions[key].acl =
                self.access
                    .acl_for(&self.config, username.as_deref(), &client_id);
        }
        keys.len()
    }

    fn apply_config(&mut self, new: Config, now: Instant) {
        // The bridges take what they can first; what is left of their section's changes
        // is named option by option instead of as the whole `bridge` section.
        let bridges = self.reload_bridges(&new.bridge.links, now);
        let changes = self.config.reload(new);
        let mut restart: Vec<String> = changes
            .restart
            .iter()
            .filter(|name| **name != "bridge")
            .map(|name| name.to_string())
            .collect();
        restart.extend(bridges.restart);
        let mut applied: Vec<String> = changes.applied.iter().map(|n| n.to_string()).collect();
        applied.extend(bridges.applied);
        if !restart.is_empty() {
            log::warn!(
                "reload: {} changed but need a restart; still using the running values",
                restart.join(", ")
            );
        }
        // Logged before a new log level applies, so a quieter level still shows it.
        if applied.is_empty() {
            log::info!("reload: no reloadable option changed");
        } else {
            log::info!("reload: applied {}", applied.join(", "));
        }
        if changes.applied.contains(&"log_level")
            && !logging::set_level(self.config.runtime.log_level)
        {
            log::warn!("reload: log_level not applied: RUST_LOG is set and takes precedence");
        }
    }
}
