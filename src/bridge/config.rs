//! The `[[bridge]]` sections of the config file: where the upstream broker is, how to log
//! in, which topics cross the link in which direction, and how much may wait on disk.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One upstream broker and the rules for what crosses to and from it.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Names the bridge in logs, `$SYS` and its queue in the store; renaming a bridge
    /// starts a new, empty queue.
    pub name: String,
    /// The upstream's `host:port`, or a list of them (the nodes of a cluster), tried in
    /// order; a host name is resolved off the loop at each connect.
    pub address: Addresses,
    /// With several addresses: `false` returns to the first (the primary) when it is back,
    /// checked every `primary_retry` seconds; `true` stays on whichever works and moves on
    /// to the next one when it fails.
    #[serde(default)]
    pub round_robin: bool,
    /// Seconds between checks that the primary is back while on another address.
    #[serde(default = "default_primary_retry")]
    pub primary_retry: u64,
    /// MQTT version spoken to the upstream.
    #[serde(default)]
    pub protocol: BridgeProtocol,
    /// The client id the upstream knows us by; it keeps our session under it.
    /// Default: `outpost-` and the bridge name.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Login at the upstream, when it asks for one.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Seconds of silence after which we send PINGREQ; long on a thin link, since
    /// every forwarded message already proves the link is up.
    #[serde(default = "default_keep_alive")]
    pub keep_alive: u16,
    /// Seconds the upstream keeps our session (subscriptions, in-flight QoS 2 state)
    /// across an outage; clean start is always off.
    #[serde(default = "default_session_expiry")]
    pub session_expiry: u32,
    /// Unacknowledged QoS 1/2 messages in flight toward the upstream (also capped by
    /// its Receive Maximum); sized for a link's bandwidth × round trip.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Bytes (topic + payload + properties) the forward queue may hold on disk while
    /// the link is down; the default holds about a day of a typical site.
    #[serde(default = "default_max_queue_bytes")]
    pub max_queue_bytes: u64,
    /// What happens to a message bound upstream when the queue is at `max_queue_bytes`.
    #[serde(default)]
    pub queue_full: QueueFull,
    /// First wait (seconds) before reconnecting; doubled after each failure.
    #[serde(default = "default_reconnect_delay")]
    pub reconnect_delay: u64,
    /// Longest wait (seconds) between attempts.
    #[serde(default = "default_reconnect_delay_max")]
    pub reconnect_delay_max: u64,
    /// Speak TLS to the upstream.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA(s) the upstream's certificate must chain to; without it, the
    /// system's roots (the Mozilla set built in).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and key for a client certificate, if the upstream asks.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name the upstream's certificate must carry; default: the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The largest packet (bytes) we send to the upstream; a larger message is dropped
    /// instead of sent. MQTT 3.1.1 upstreams cannot announce their limit: set theirs here.
    #[serde(default)]
    pub max_packet_size: Option<u32>,
    /// Publish the link's state upstream (retained `1` on connect, `0` by will or on a
    /// clean stop) and locally, so the cloud can watch which gateways are up.
    #[serde(default)]
    pub notifications: bool,
    /// Where the state goes; default `$SYS/broker/connection/<client id>/state`, as
    /// Mosquitto's bridges have it.
    #[serde(default)]
    pub notification_topic: Option<String>,
    /// When the link comes up: `always` (at start, and again whenever it is lost) or
    /// `lazy` (a metered link: only when enough is queued; see `crate::bridge::lazy`).
    #[serde(default)]
    pub start: Start,
    /// Lazy: messages queued that bring the link up (default 10, as Mosquitto's
    /// `threshold`).
    #[serde(default)]
    pub lazy_threshold: Option<u64>,
    /// Lazy: seconds after the link was let go (or start) when anything queued brings it
    /// up, so a message waits at most this long however few are queued. Unset: only the
    /// threshold does.
    #[serde(default)]
    pub lazy_interval: Option<u64>,
    /// Lazy: seconds with nothing queued and no message across the link after which the
    /// link is let go (default 60, as Mosquitto's).
    #[serde(default)]
    pub idle_timeout: Option<u64>,
    /// Which topics cross, in which direction.
    #[serde(default)]
    pub topic: Vec<TopicRule>,
}

/// `start = "always" | "lazy"`.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Connect at start and reconnect whenever the link is lost.
    #[default]
    Always,
    /// Connect when `lazy_threshold` messages are queued or `lazy_interval` has passed
    /// with something queued; let the link go after `idle_timeout`.
    Lazy,
}

/// `address = "host:port"` or `address = ["host1:port", "host2:port"]`.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

impl Addresses {
    /// The addresses in the order they are tried.
    pub fn list(&self) -> &[String] {
        match self {
            Addresses::One(one) => std::slice::from_ref(one),
            Addresses::Many(many) => many,
        }
    }
}

impl fmt::Display for Addresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.list().join(", "))
    }
}

/// The host part of a `host:port` address (brackets of an IPv6 literal removed).
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One topic rule: `[[bridge.topic]]`.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// The filter, as seen locally (without `local_prefix`) and upstream (without
    /// `remote_prefix`).
    pub filter: String,
    /// `out` (local → upstream), `in` (upstream → local) or `both`.
    pub direction: Direction,
    /// Highest QoS used across the link for this rule (a message keeps a lower QoS).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Prepended to the local topic: local `{local_prefix}{topic}` ↔ remote
    /// `{remote_prefix}{topic}`.
    #[serde(default)]
    pub local_prefix: String,
    #[serde(default)]
    pub remote_prefix: String,
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BridgeProtocol {
    #[default]
    V5,
    V311,
}

#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Out,
    In,
    Both,
}

impl Direction {
    pub fn outbound(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    pub fn inbound(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// The policy when the forward queue is full.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueFull {
    /// Drop the oldest queued messages to make room: the upstream gets the latest data.
    #[default]
    DropOldest,
    /// Keep what is queued and drop the new message.
    DropNew,
}

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueFull::DropOldest => "drop_oldest",
            QueueFull::DropNew => "drop_new",
        })
    }
}

impl BridgeConfig {
    /// What is wrong with the lazy-start options, if anything: they need `start = "lazy"`
    /// (set with `always`, they would silently do nothing) and sane values.
    fn lazy_problem(&self) -> Option<(&'static str, String)> {
        let set = [
            ("bridge.lazy_threshold", self.lazy_threshold),
            ("bridge.lazy_interval", self.lazy_interval),
            ("bridge.idle_timeout", self.idle_timeout),
        ];
        for (option, value) in set {
            if self.start == Start::Always && value.is_some() {
                return Some((option, "only applies with start = \"lazy\"".into()));
            }
        }
        let sends = self.topic.iter().any(|rule| rule.direction.outbound());
        if self.start == Start::Lazy && !sends {
            return Some((
                "bridge.start",
                "\"lazy\" needs an `out` or `both` rule (only queued messages bring the link up)"
                    .into(),
            ));
        }
        if self.lazy_threshold == Some(0) {
            return Some(("bridge.lazy_threshold", "must be at least 1".into()));
        }
        for (option, value) in &set[1..] {
            if value.is_some_and(|v| v == 0 || v > 86_400) {
                return Some((option, "must be between 1 and 86400 seconds".into()));
            }
        }
        None
    }
}

fn default_keep_alive() -> u16 {
    300
}
fn default_session_expiry() -> u32 {
    7 * 24 * 3600
}
fn default_inflight() -> u16 {
    32
}
fn default_max_queue_bytes() -> u64 {
    512 * 1024 * 1024
}
fn default_reconnect_delay() -> u64 {
    1
}
fn default_reconnect_delay_max() -> u64 {
    120
}
fn default_primary_retry() -> u64 {
    60
}
fn default_qos() -> u8 {
    1
}

impl BridgeConfig {
    /// The options a running bridge takes on SIGHUP: when its link comes up and when it
    /// is let go. Every other option is part of the link or the queue set up at start.
    pub const RELOADABLE: [&'static str; 4] =
        ["start", "lazy_threshold", "lazy_interval", "idle_timeout"];

    /// The names (as in the file) of the options whose value differs in `new`.
    pub fn changed_options(&self, new: &BridgeConfig) -> Vec<String> {
        let table = |config: &BridgeConfig| match toml::Value::try_from(config) {
            Ok(toml::Value::Table(table)) => table,
            _ => toml::Table::new(),
        };
        let (old, new) = (table(self), table(new));
        let mut names: Vec<String> = old
            .keys()
            .chain(new.keys().filter(|k| !old.contains_key(*k)))
            .filter(|k| old.get(*k) != new.get(*k))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Takes the [`Self::RELOADABLE`] options' values from `new`.
    pub fn take_reloadable(&mut self, new: &BridgeConfig) {
        self.start = new.start;
        self.lazy_threshold = new.lazy_threshold;
        self.lazy_interval = new.lazy_interval;
        self.idle_timeout = new.idle_timeout;
    }

    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("outpost-{}", self.name))
    }

    /// The topic of the link's state, when `notifications` is on.
    pub fn notification_topic(&self) -> Option<String> {
        self.notifications.then(|| {
            self.notification_topic
                .clone()
                .unwrap_or_else(|| format!("$SYS/broker/connection/{}/state", self.client_id()))
        })
    }

    /// Messages queued that bring a lazy link up.
    pub fn lazy_threshold(&self) -> u64 {
        self.lazy_threshold.unwrap_or(10)
    }

    /// Seconds of idleness after which a lazy link is let go.
    pub fn idle_timeout(&self) -> u64 {
        self.idle_timeout.unwrap_or(60)
    }

    /// What is wrong with this section, as (option, message), if anything.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let bad = |option, message: &str| Some((option, message.to_string()));
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(
                "bridge.name",
                "must be letters, digits, `-` or `_` (it names $SYS topics)",
            );
        }
        if self.address.list().is_empty() {
            return bad("bridge.address", "must be HOST:PORT or a list of them");
        }
        for address in self.address.list() {
            let port = address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(p)) if p > 0) || host_of(address).is_empty() {
                return bad("bridge.address", "must be HOST:PORT or a list of them");
            }
        }
        if self.primary_retry == 0 || self.primary_retry > 86_400 {
            return bad(
                "bridge.primary_retry",
                "must be between 1 and 86400 seconds",
            );
        }
        if self.inflight == 0 {
            return bad("bridge.inflight", "must be at least 1");
        }
        if self.reconnect_delay == 0 || self.reconnect_delay_max < self.reconnect_delay {
            return bad(
                "bridge.reconnect_delay",
                "must be at least 1 and at most reconnect_delay_max",
            );
        }
        // A day: longer helps nobody, and an unbounded delay would overflow the clock.
        if self.reconnect_delay_max > 86_400 {
            return bad(
                "bridge.reconnect_delay_max",
                "must be at most 86400 (a day)",
            );
        }
        if self.max_packet_size.is_some_and(|m| m < 64) {
            return bad("bridge.max_packet_size", "must be at least 64 bytes");
        }
        if let Some(topic) = &self.notification_topic {
            if !crate::topic::valid_topic_name(topic, 0) {
                return bad(
                    "bridge.notification_topic",
                    "must be a topic name (no wildcards, not empty)",
                );
            }
        }
        if let Some(problem) = self.lazy_problem() {
            return Some(problem);
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return bad("bridge.cert_file", "and key_file go together");
        }
        if self.topic.is_empty() {
            return bad("bridge.topic", "needs at least one [[bridge.topic]] rule");
        }
        for rule in &self.topic {
            if !crate::topic::valid_filter(&rule.filter, 0) {
                return Some((
                    "bridge.topic.filter",
                    format!("`{}` is not a valid filter", rule.filter),
                ));
            }
            if rule.qos > 2 {
                return bad("bridge.topic.qos", "must be 0, 1 or 2");
            }
            for prefix in [&rule.local_prefix, &rule.remote_prefix] {
                if prefix.contains(['+', '#']) {
                    return bad("bridge.topic.local_prefix", "must not contain wildcards");
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> BridgeConfig {
        let text = format!(
            "name = \"c\"\naddress = \"h:1\"\n{extra}\n[[topic]]\nfilter = \"#\"\ndirection = \"out\"\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn changed_options_are_named_as_in_the_file() {
        let old = parse("start = \"lazy\"\nlazy_threshold = 5");
        assert!(old.changed_options(&old.clone()).is_empty());
        let new = parse("start = \"lazy\"\nidle_timeout = 9");
        let new = BridgeConfig {
            address: Addresses::Many(vec!["h:2".into(), "h:3".into()]),
            ..new
        };
        assert_eq!(
            old.changed_options(&new),
            ["address", "idle_timeout", "lazy_threshold"]
        );
        let mut taken = old.clone();
        taken.take_reloadable(&new);
        assert_eq!(taken.changed_options(&new), ["address"]);
    }
}
