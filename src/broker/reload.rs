//! SIGHUP: read the config file and the ACL rules again, without dropping a client.
//!
//! What changes at once: the ACL rules in the store and the config's deny lists (checked
//! again on every publish and delivery, for connected clients too), the log level, cached
//! logins (forgotten, so a changed password or a deleted user takes effect at the next
//! connect), and the limits that are only ever compared with new work: connection caps,
//! queue and buffer sizes, topic and subscription limits, timeouts given to new
//! connections. What was bound or announced at start stays until a restart, and the log
//! names it: listeners, the web console, the database and its sync mode, the auth workers'
//! bcrypt cost, everything announced in CONNACK that clients were told to rely on, and
//! the `$SYS` timer's interval. A file that does not load keeps every running setting.

use std::sync::Arc;

use super::Broker;
use crate::auth::cache::CredentialCache;
use crate::cli::ConfigSource;
use crate::config::Config;
use crate::logging;

/// A freshly loaded config sorted against the running one.
#[derive(Debug)]
struct Sorted {
    /// The running config with every reloadable option taken from the file.
    config: Config,
    /// Reloadable options whose value changed.
    applied: Vec<&'static str>,
    /// Options that changed in the file but need a restart.
    restart: Vec<&'static str>,
}

/// Sorts every option of `new` into reloadable or restart-only. The destructuring names
/// every field, so a new option does not compile until it is put in one of the lists
/// (and an unsorted binding would fail clippy as unused).
fn sort(old: &Config, new: Config) -> Sorted {
    let Config {
        listen,
        ws_listen,
        http,
        http_enabled,
        web_max_connections,
        web_max_connections_per_address,
        web_tls,
        web_tls_cert,
        web_tls_key,
        web_hosts,
        ws_allowed_origins,
        db,
        sync,
        commit_interval,
        bcrypt_cost,
        max_packet_size,
        receive_maximum,
        retain_available,
        maximum_qos,
        wildcard_subscriptions,
        shared_subscriptions,
        subscription_identifiers,
        sys_interval,
        log_level,
        allow_anonymous,
        anonymous_unknown_users,
        max_connections,
        max_connections_per_address,
        max_output_buffer,
        slow_consumer_timeout,
        max_topic_length,
        connect_timeout,
        max_keepalive,
        max_inflight,
        max_queued_messages,
        max_queued_bytes,
        max_queued_memory,
        max_queued_disk,
        queue_full,
        queue_qos0,
        topic_alias_maximum,
        max_session_expiry,
        max_topic_levels,
        max_subscriptions_per_client,
        deny_subscribe,
        deny_publish,
        chat,
        chat_max_text,
        chat_history_page,
        chat_room_creation,
        chat_requests_per_second,
        chat_request_burst,
        registrations_per_hour,
        tls_listen,
        tls_cert,
        tls_key,
        tls_client_ca,
        bridge,
    } = new;
    let mut sorted = Sorted {
        config: old.clone(),
        applied: Vec::new(),
        restart: Vec::new(),
    };
    macro_rules! restart_only {
        ($($field:ident),* $(,)?) => {$(
            if $field != old.$field {
                sorted.restart.push(stringify!($field));
            }
        )*};
    }
    macro_rules! reloadable {
        ($($field:ident),* $(,)?) => {$(
            if $field != old.$field {
                sorted.applied.push(stringify!($field));
                sorted.config.$field = $field;
            }
        )*};
    }
    // Sockets, files and threads made at start.
    restart_only!(listen, ws_listen, http, http_enabled, db, sync, bcrypt_cost);
    // The web console's poll loop takes its settings at start.
    restart_only!(
        web_max_connections,
        web_max_connections_per_address,
        web_hosts
    );
    restart_only!(ws_allowed_origins);
    restart_only!(web_tls, web_tls_cert, web_tls_key);
    // TLS configs and the bridges' connections and queues are set up at start.
    restart_only!(tls_listen, tls_cert, tls_key, tls_client_ca, bridge);
    // Announced in CONNACK and checked against what each client was told.
    restart_only!(
        max_packet_size,
        receive_maximum,
        retain_available,
        maximum_qos,
        wildcard_subscriptions,
        shared_subscriptions,
        subscription_identifiers,
    );
    // Read by a timer that may be running.
    restart_only!(sys_interval);
    // Given to the chat service when it starts.
    restart_only!(
        chat,
        chat_max_text,
        chat_history_page,
        chat_room_creation,
        chat_requests_per_second,
        chat_request_burst,
        registrations_per_hour,
    );
    reloadable!(
        log_level,
        commit_interval,
        allow_anonymous,
        anonymous_unknown_users,
        max_connections,
        max_connections_per_address,
        max_output_buffer,
        slow_consumer_timeout,
        max_topic_length,
        connect_timeout,
        max_keepalive,
        max_inflight,
        max_queued_messages,
        max_queued_bytes,
        max_queued_memory,
        max_queued_disk,
        queue_full,
        queue_qos0,
        topic_alias_maximum,
        max_session_expiry,
        max_topic_levels,
        max_subscriptions_per_client,
        deny_subscribe,
        deny_publish,
    );
    sorted
}

impl Broker {
    /// Reads `source` again (when the broker has one) and applies what can change while
    /// clients stay connected; reloads the ACL rules from the store and forgets cached
    /// logins. Logs each step.
    pub(super) fn reload(&mut self, source: Option<&ConfigSource>) {
        match source.and_then(ConfigSource::file) {
            Some(file) => log::info!("SIGHUP: reloading {} and the ACL rules", file.display()),
            None => log::info!("SIGHUP: no config file; reloading the ACL rules"),
        }
        match source.map(ConfigSource::load) {
            Some(Ok(new)) => self.apply_config(new),
            Some(Err(e)) => log::error!("reload: {e}; keeping every running setting"),
            None => {}
        }
        let sessions = self.refresh_access();
        log::info!(
            "reload done: {} ACL rules applied to {sessions} sessions",
            self.access.acl_rules.len(),
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

    fn apply_config(&mut self, new: Config) {
        let sorted = sort(&self.config, new);
        if !sorted.restart.is_empty() {
            log::warn!(
                "reload: {} changed but need a restart; still using the running values",
                sorted.restart.join(", ")
            );
        }
        // Logged before a new log level applies, so a quieter level still shows it.
        if sorted.applied.is_empty() {
            log::info!("reload: no reloadable option changed");
        } else {
            log::info!("reload: applied {}", sorted.applied.join(", "));
        }
        if sorted.applied.contains(&"log_level") && !logging::set_level(sorted.config.log_level) {
            log::warn!("reload: log_level not applied: RUST_LOG is set and takes precedence");
        }
        self.config = sorted.config;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;

    #[test]
    fn nothing_changed_is_nothing_to_do() {
        let sorted = sort(&Config::default(), Config::default());
        assert!(sorted.applied.is_empty() && sorted.restart.is_empty());
        assert_eq!(sorted.config, Config::default());
    }

    #[test]
    fn reloadable_options_are_applied_and_the_rest_kept() {
        let old = Config::default();
        let new = Config {
            log_level: LogLevel::Debug,
            max_connections: 5,
            deny_publish: vec!["secret/#".into()],
            listen: vec!["0.0.0.0:1883".parse().unwrap()],
            maximum_qos: 1,
            sys_interval: 0,
            ..Config::default()
        };
        let sorted = sort(&old, new);
        assert_eq!(
            sorted.applied,
            ["log_level", "max_connections", "deny_publish"]
        );
        assert_eq!(sorted.restart, ["listen", "maximum_qos", "sys_interval"]);
        assert_eq!(sorted.config.log_level, LogLevel::Debug);
        assert_eq!(sorted.config.max_connections, 5);
        assert_eq!(sorted.config.deny_publish, ["secret/#"]);
        assert_eq!(sorted.config.listen, old.listen);
        assert_eq!(sorted.config.maximum_qos, 2);
        assert_eq!(sorted.config.sys_interval, 10);
    }
}
