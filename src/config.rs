//! Broker settings: every option, its default, TOML loading and validation.
//!
//! Precedence is defaults < config file < command-line flags; the file is
//! read only when `--config` names it, so `outpost` with no arguments runs on
//! the defaults below. `docs/config.md` explains each option and
//! `assets/outpost.toml` lists them all at their defaults (a test keeps the
//! three in step).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bridge::config::{BridgeProtocol, Direction};

mod section;
mod sections;

pub use section::{Changes, Reload, Section};
pub use sections::{
    Access, Accounts, Bridges, Chat, Features, Limits, Network, Runtime, Storage, Web,
};

section::config! {
    /// Everything the broker can be told at start-up, by section. `Serialize` is for
    /// `outpost check-config`, which prints the effective settings as TOML (flat, as the
    /// file is written).
    pub struct Config {
        pub network: Network,
        pub web: Web,
        pub storage: Storage,
        pub runtime: Runtime,
        pub access: Access,
        pub accounts: Accounts,
        pub limits: Limits,
        pub features: Features,
        pub chat: Chat,
        pub bridge: Bridges,
    }
}

/// The `queue_full` policy: what a QoS 1/2 message meets when a matching
/// session's queue is at its limit.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueFull {
    /// Withhold the publisher's acknowledgement and stop reading its socket
    /// until the queue has room: nothing acknowledged is dropped.
    #[default]
    Backpressure,
    /// Make room by dropping the session's oldest queued message.
    DropOldest,
    /// Drop the new message for that session (others still get it).
    DropNew,
    /// Refuse the message: PUBACK/PUBREC 0x97 (Quota exceeded) to an MQTT 5
    /// publisher, delivered to nobody; a 3.1.1 publisher, which cannot be told,
    /// is held back as with `Backpressure`.
    Refuse,
}

/// `web_tls`: where the console and the WebSocket listeners serve TLS.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebTlsMode {
    /// On every address but loopback; everywhere once a certificate is configured.
    #[default]
    Auto,
    /// Everywhere, loopback included.
    On,
    /// Nowhere: plain HTTP and ws, with a warning for a non-loopback address.
    Off,
}

/// SQLite `synchronous` setting used for every group commit.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync on every commit: an acknowledged message survives power loss.
    #[default]
    Full,
    /// fsync only at WAL checkpoints: the last commits may be lost on power
    /// loss, the database is never corrupted.
    Normal,
}

impl SyncMode {
    /// The value for `PRAGMA synchronous`.
    pub fn pragma(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        }
    }
}

/// The most verbose log level written.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// Failures and refused clients or messages.
    Warn,
    /// Also connections, start and stop.
    #[default]
    Info,
    /// Also every packet handled; noisy.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The matching `log` filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Default MQTT listener, also used in help texts.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1883));
/// Default MQTT-over-WebSocket listener.
pub const DEFAULT_WS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8083));
/// Default web console address.
pub const DEFAULT_HTTP: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// Why a configuration could not be used. `Display` is one line.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The TOML is malformed, names an unknown option or has a wrong type.
    Parse {
        path: Option<PathBuf>,
        /// 1-based line of the offending text, when known.
        line: Option<usize>,
        message: String,
    },
    /// An option parsed but its value is not allowed.
    Invalid {
        path: Option<PathBuf>,
        option: &'static str,
        message: String,
    },
}

impl ConfigError {
    fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            ConfigError::Parse { path, .. } | ConfigError::Invalid { path, .. } => {
                *path = Some(file.to_path_buf())
            }
            ConfigError::Read { .. } => {}
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn prefix(f: &mut fmt::Formatter<'_>, path: &Option<PathBuf>) -> fmt::Result {
            match path {
                Some(p) => write!(f, "config {}: ", p.display()),
                None => write!(f, "config: "),
            }
        }
        match self {
            ConfigError::Read { path, source } => {
                write!(
                    f,
                    "cannot read config {}: {}",
                    path.display(),
                    io_reason(source)
                )
            }
            ConfigError::Parse {
                path,
                line,
                message,
            } => {
                prefix(f, path)?;
                write!(f, "{message}")?;
                match line {
                    Some(n) => write!(f, " at line {n}"),
                    None => Ok(()),
                }
            }
            ConfigError::Invalid {
                path,
                option,
                message,
            } => {
                prefix(f, path)?;
                write!(f, "`{option}` {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// "No such file or directory (os error 2)" → "No such file or directory".
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl Config {
    /// Parses a TOML document (options absent from it keep their defaults)
    /// and validates the result.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config = toml::from_str::<Config>(text)
            .map_err(|e| condense(text, &e))?
            .normalize();
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a config file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text).map_err(|e| e.with_path(path))
    }

    /// Checks what serde cannot: value ranges and a non-empty `listen`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn range<T: PartialOrd + fmt::Display>(
            option: &'static str,
            value: T,
            allowed: RangeInclusive<T>,
        ) -> Result<(), ConfigError> {
            if allowed.contains(&value) {
                return Ok(());
            }
            Err(ConfigError::Invalid {
                path: None,
                option,
                message: format!(
                    "= {value} is out of range ({}..={})",
                    allowed.start(),
                    allowed.end()
                ),
            })
        }
        if self.network.listen.is_empty() {
            return Err(ConfigError::Invalid {
                path: None,
                option: "listen",
                message: "must name at least one address".to_string(),
            });
        }
        self.validate_listeners()?;
        for (option, filters) in [
            ("deny_subscribe", &self.access.deny_subscribe),
            ("deny_publish", &self.access.deny_publish),
        ] {
            if let Some(bad) = filters.iter().find(|f| !crate::topic::valid_filter(f, 0)) {
                return Err(ConfigError::Invalid {
                    path: None,
                    option,
                    message: format!("has an invalid topic filter `{bad}`"),
                });
            }
        }
        if let Some(bad) = self
            .web
            .ws_allowed_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(ConfigError::Invalid {
                path: None,
                option: "ws_allowed_origins",
                message: format!("has `{bad}`, which is not an http:// or https:// origin"),
            });
        }
        if self.web.web_tls_cert.is_some() != self.web.web_tls_key.is_some() {
            return Err(ConfigError::Invalid {
                path: None,
                option: "web_tls_cert",
                message: "and `web_tls_key` go together".to_string(),
            });
        }
        if !self.network.tls_listen.is_empty()
            && (self.network.tls_cert.is_none() || self.network.tls_key.is_none())
        {
            return Err(ConfigError::Invalid {
                path: None,
                option: "tls_listen",
                message: "needs `tls_cert` and `tls_key`".to_string(),
            });
        }
        self.validate_bridges()?;
        range("bcrypt_cost", self.accounts.bcrypt_cost, 4..=31)?;
        range(
            "web_max_connections",
            self.web.web_max_connections,
            1..=65_536,
        )?;
        range(
            "web_max_connections_per_address",
            self.web.web_max_connections_per_address,
            1..=65_536,
        )?;
        // An hour is already far longer than any client needs to send CONNECT, and a
        // bound keeps the deadline (now + timeout) from overflowing.
        range("connect_timeout", self.limits.connect_timeout, 1..=3600)?;
        // A day bounds the other durations the same way: a deadline past it helps nobody,
        // and an unbounded one would overflow the clock and stop the broker.
        range(
            "slow_consumer_timeout",
            self.limits.slow_consumer_timeout,
            0..=86_400,
        )?;
        range("sys_interval", self.features.sys_interval, 0..=86_400)?;
        // A second bounds what an acknowledgement may wait for the disk.
        range("commit_interval", self.runtime.commit_interval, 0..=1000)?;
        range("max_keepalive", self.limits.max_keepalive, 1..=u16::MAX)?;
        range(
            "max_packet_size",
            self.features.max_packet_size,
            16..=268_435_455,
        )?;
        range(
            "receive_maximum",
            self.features.receive_maximum,
            1..=u16::MAX,
        )?;
        range("max_inflight", self.limits.max_inflight, 1..=u16::MAX)?;
        range("maximum_qos", self.features.maximum_qos, 0..=2)?;
        range("chat_max_text", self.chat.chat_max_text, 1..=65_536)?;
        range("chat_history_page", self.chat.chat_history_page, 1..=1000)?;
        range(
            "chat_request_burst",
            self.chat.chat_request_burst,
            1..=1_000_000,
        )?;
        Ok(())
    }

    /// Refuses two listeners (MQTT, WebSocket, TLS, console) that cannot both bind: the
    /// same address and port, or a specific address and the wildcard of its family on the
    /// same port. Port 0 (any free port) never clashes.
    pub fn validate_listeners(&self) -> Result<(), ConfigError> {
        let all: Vec<(&'static str, SocketAddr)> = [
            ("listen", &self.network.listen),
            ("ws_listen", &self.network.ws_listen),
            ("tls_listen", &self.network.tls_listen),
        ]
        .into_iter()
        .flat_map(|(option, addrs)| addrs.iter().map(move |a| (option, *a)))
        .chain(self.web.http.map(|a| ("http", a)))
        .collect();
        for (i, &(option, addr)) in all.iter().enumerate() {
            let clash = all[..i].iter().find(|(_, earlier)| {
                addr.port() != 0
                    && earlier.port() == addr.port()
                    && earlier.is_ipv4() == addr.is_ipv4()
                    && (earlier.ip() == addr.ip()
                        || earlier.ip().is_unspecified()
                        || addr.ip().is_unspecified())
            });
            let Some(&(other, earlier)) = clash else {
                continue;
            };
            let what = match (earlier == addr, other == option) {
                (true, true) => format!("has {addr} twice"),
                (true, false) => format!("has {addr}, which `{other}` has too"),
                (false, _) => format!("has {addr}, which overlaps {earlier} in `{other}`"),
            };
            return Err(ConfigError::Invalid {
                path: None,
                option,
                message: format!("{what}: an address and port can be listened on only once"),
            });
        }
        Ok(())
    }

    fn validate_bridges(&self) -> Result<(), ConfigError> {
        let invalid = |option, message| {
            Err(ConfigError::Invalid {
                path: None,
                option,
                message,
            })
        };
        for (i, bridge) in self.bridge.links.iter().enumerate() {
            if let Some((option, message)) = bridge.problem() {
                return invalid(option, format!("{message} (bridge {:?})", bridge.name));
            }
            if self.bridge.links[..i].iter().any(|b| b.name == bridge.name) {
                return invalid("bridge.name", format!("{:?} is used twice", bridge.name));
            }
            // 3.1.1 has no No Local: a `both` rule would echo our own messages back.
            let both = bridge.topic.iter().any(|r| r.direction == Direction::Both);
            if bridge.protocol == BridgeProtocol::V311 && both {
                return invalid(
                    "bridge.topic.direction",
                    format!(
                        "`both` needs protocol v5 (No Local); on v311 use separate out and in \
                         rules with distinct remote prefixes (bridge {:?})",
                        bridge.name
                    ),
                );
            }
        }
        Ok(())
    }

    /// Applies `http_enabled` so the rest of the program only looks at `http`.
    fn normalize(mut self) -> Self {
        if !self.web.http_enabled {
            self.web.http = None;
        }
        self
    }
}

/// Turns toml's multi-line error into one line: the option name, the reason
/// and the line number.
fn condense(text: &str, err: &toml::de::Error) -> ConfigError {
    let raw = err.message().lines().collect::<Vec<_>>().join("; ");
    let span = err.span();
    let line = span
        .as_ref()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = if let Some(rest) = raw.strip_prefix("unknown field ") {
        let name = rest.split(',').next().unwrap_or(rest);
        format!("unknown option {name}")
    } else if let Some(key) = span
        .as_ref()
        .filter(|_| raw == "duplicate key")
        .and_then(|s| text.get(s.clone()))
    {
        // toml points at the second occurrence of the key but does not name it.
        format!("duplicate key `{}`", key.trim())
    } else {
        let reason = if raw == "invalid socket address syntax" {
            "invalid address, expected IP:PORT such as 127.0.0.1:1883".to_string()
        } else {
            raw
        };
        match span.as_ref().and_then(|s| key_before(text, s.start)) {
            Some(key) => format!("`{key}`: {reason}"),
            None => reason,
        }
    };
    ConfigError::Parse {
        path: None,
        line,
        message,
    }
}

/// The `key` of a `key = value` line when `offset` lies inside the value.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let before = &text[start..offset.min(text.len())];
    let (key, _) = before.split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn listeners_that_cannot_both_bind_are_refused() {
        assert_eq!(
            err("listen = [\"0.0.0.0:1883\", \"0.0.0.0:1883\"]\n"),
            "config: `listen` has 0.0.0.0:1883 twice: an address and port can be listened \
             on only once"
        );
        assert_eq!(
            err("ws_listen = [\"127.0.0.1:1883\"]\n"),
            "config: `ws_listen` has 127.0.0.1:1883, which `listen` has too: an address and \
             port can be listened on only once"
        );
        assert!(
            err("listen = [\"0.0.0.0:8080\"]\n").starts_with(
                "config: `http` has 127.0.0.1:8080, which overlaps 0.0.0.0:8080 in `listen`"
            ),
            "{}",
            err("listen = [\"0.0.0.0:8080\"]\n")
        );
        assert!(
            err("tls_listen = [\"127.0.0.1:8083\"]\ntls_cert = \"c\"\ntls_key = \"k\"\n")
                .starts_with("config: `tls_listen` has 127.0.0.1:8083, which `ws_listen` has too")
        );
        for fine in [
            // Port 0 takes a different free port each time; v4 and v6 wildcards are apart.
            "listen = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\nws_listen = [\"127.0.0.1:0\"]\n",
            "listen = [\"0.0.0.0:1883\", \"[::]:1883\"]\n",
            "listen = [\"127.0.0.1:1883\", \"127.0.0.2:1883\"]\n",
            "listen = [\"0.0.0.0:8080\"]\nhttp_enabled = false\n",
        ] {
            assert!(Config::from_toml_str(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.network.listen, vec!["127.0.0.1:1883".parse().unwrap()]);
        assert_eq!(c.network.ws_listen, vec!["127.0.0.1:8083".parse().unwrap()]);
        assert_eq!(c.web.http, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(c.storage.db, PathBuf::from("outpost.db"));
        assert_eq!(c.storage.sync, SyncMode::Full);
        assert_eq!(c.access.allow_anonymous, None);
        assert_eq!(c.limits.max_queued_messages, 100_000);
        assert_eq!(c.limits.max_queued_bytes, 268_435_456);
        assert_eq!(c.limits.max_queued_memory, 67_108_864);
        assert_eq!(c.limits.max_queued_disk, 1_073_741_824);
        assert_eq!(c.limits.queue_full, QueueFull::Backpressure);
        assert_eq!(c.limits.max_inflight, 1024);
        assert_eq!(c.limits.max_session_expiry, 4_294_967_295);
    }

    #[test]
    fn example_file_parses_to_the_defaults() {
        let text = include_str!("../assets/outpost.toml");
        assert_eq!(Config::from_toml_str(text).unwrap(), Config::default());
    }

    #[test]
    fn a_reload_of_the_same_file_changes_nothing() {
        let mut running = Config::default();
        assert_eq!(running.reload(Config::default()), Changes::default());
        assert_eq!(running, Config::default());
    }

    #[test]
    fn a_reload_applies_live_sections_and_names_the_rest() {
        let mut running = Config::default();
        let mut new = Config::default();
        new.runtime.log_level = LogLevel::Debug;
        new.limits.max_connections = 5;
        new.access.deny_publish = vec!["secret/#".into()];
        new.network.listen = vec!["0.0.0.0:1883".parse().unwrap()];
        new.features.maximum_qos = 1;
        new.features.sys_interval = 0;
        new.chat.enabled = false;
        let changes = running.reload(new);
        assert_eq!(
            changes.applied,
            ["log_level", "deny_publish", "max_connections"]
        );
        assert_eq!(
            changes.restart,
            ["listen", "maximum_qos", "sys_interval", "chat"]
        );
        assert_eq!(running.runtime.log_level, LogLevel::Debug);
        assert_eq!(running.limits.max_connections, 5);
        assert_eq!(running.access.deny_publish, ["secret/#"]);
        assert_eq!(running.network, Network::default());
        assert_eq!(running.features, Features::default());
        assert_eq!(running.chat, Chat::default());
    }

    #[test]
    fn every_option_belongs_to_one_section() {
        let mut names: Vec<_> = Config::options().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an option name is used twice");
        assert!(names.contains(&"chat") && names.contains(&"bridge"));
    }

    #[test]
    fn every_option_is_in_the_example_and_the_docs() {
        let example = include_str!("../assets/outpost.toml");
        let docs = include_str!("../docs/config.md");
        for field in Config::options() {
            let set = format!("\n{field} =");
            let commented = format!("\n# {field} =");
            let section = format!("\n# [[{field}]]");
            assert!(
                example.contains(&set)
                    || example.contains(&commented)
                    || example.contains(&section),
                "assets/outpost.toml lacks `{field}`"
            );
            assert!(
                docs.contains(&format!("`{field}`")),
                "docs/config.md lacks `{field}`"
            );
        }
    }

    #[test]
    fn every_bridge_option_is_in_the_example_and_the_bridge_docs() {
        let example = include_str!("../assets/outpost.toml");
        let docs = include_str!("../docs/bridge.md");
        let fields = field_names::<crate::bridge::BridgeConfig>()
            .iter()
            .chain(field_names::<crate::bridge::TopicRule>());
        for field in fields {
            let set = format!("\n# {field} =");
            let section = format!("\n# [[bridge.{field}]]");
            assert!(
                example.contains(&set) || example.contains(&section),
                "assets/outpost.toml lacks `{field}` in its [[bridge]] example"
            );
            assert!(
                docs.contains(&format!("`{field}`")),
                "docs/bridge.md lacks `{field}`"
            );
        }
    }

    #[test]
    fn bridge_sections_parse_and_are_checked() {
        let text = "[[bridge]]\nname = \"cloud\"\naddress = \"broker.example.com:8883\"\n\
                    tls = true\n[[bridge.topic]]\nfilter = \"sensors/#\"\ndirection = \"out\"\n\
                    remote_prefix = \"site1/\"\n";
        let c = Config::from_toml_str(text).unwrap();
        let b = &c.bridge.links[0];
        assert_eq!(
            b.address.list(),
            ["broker.example.com:8883"],
            "a single address is a list of one"
        );
        let two = text.replace(
            "\"broker.example.com:8883\"",
            "[\"a.example.com:8883\", \"[::1]:8883\"]",
        );
        let c2 = Config::from_toml_str(&two).unwrap();
        let hosts: Vec<_> = c2.bridge.links[0]
            .address
            .list()
            .iter()
            .map(|a| crate::bridge::config::host_of(a))
            .collect();
        assert_eq!(hosts, ["a.example.com", "::1"]);
        assert_eq!(b.client_id(), "outpost-cloud");
        assert_eq!(b.inflight, 32);
        assert_eq!(b.topic[0].qos, 1);
        let bad = [
            (text.replace("cloud", "a b"), "`bridge.name`"),
            (
                text.replace(":8883", ""),
                "`bridge.address` must be HOST:PORT",
            ),
            (text.replace("sensors/#", "a/#/b"), "not a valid filter"),
            (
                text.replace("direction = \"out\"", "direction = \"both\"\nqos = 2")
                    .replace("tls = true", "protocol = \"v311\""),
                "`both` needs protocol v5",
            ),
            (
                format!("{text}{}", text.replace("8883", "1883")),
                "\"cloud\" is used twice",
            ),
            (
                text.replace("tls = true", "reconnect_delay_max = 9223372036854775807"),
                "`bridge.reconnect_delay_max` must be at most 86400",
            ),
        ];
        for (text, expected) in bad {
            let e = err(&text);
            assert!(e.contains(expected), "{e}");
        }
        assert!(err("tls_listen = [\"127.0.0.1:8883\"]\n").contains("needs `tls_cert`"));
    }

    #[test]
    fn options_override_defaults() {
        let c = Config::from_toml_str(
            "listen = [\"0.0.0.0:1883\", \"[::1]:1884\"]\n\
             http = \"0.0.0.0:80\"\n\
             db = \"/var/lib/outpost/outpost.db\"\n\
             sync = \"normal\"\n\
             allow_anonymous = false\n\
             bcrypt_cost = 12\n\
             maximum_qos = 1\n\
             queue_full = \"drop_oldest\"\n",
        )
        .unwrap();
        assert_eq!(c.network.listen.len(), 2);
        assert_eq!(c.network.listen[1], "[::1]:1884".parse().unwrap());
        assert_eq!(c.web.http, Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(c.storage.db, PathBuf::from("/var/lib/outpost/outpost.db"));
        assert_eq!(c.storage.sync, SyncMode::Normal);
        assert_eq!(c.storage.sync.pragma(), "NORMAL");
        assert_eq!(SyncMode::Full.pragma(), "FULL");
        assert_eq!(c.access.allow_anonymous, Some(false));
        assert_eq!(c.accounts.bcrypt_cost, 12);
        assert_eq!(c.features.maximum_qos, 1);
        assert_eq!(c.limits.max_inflight, 1024);
        assert_eq!(c.limits.queue_full, QueueFull::DropOldest);
    }

    #[test]
    fn http_enabled_false_turns_the_console_off() {
        let c = Config::from_toml_str("http_enabled = false\n").unwrap();
        assert_eq!(c.web.http, None);
        let c = Config::from_toml_str("http = \"0.0.0.0:80\"\nhttp_enabled = false\n").unwrap();
        assert_eq!(c.web.http, None);
    }

    #[test]
    fn unknown_option_names_key_and_line() {
        assert_eq!(
            err("bcrypt_cost = 10\n\nfoo = 3\n"),
            "config: unknown option `foo` at line 3"
        );
        assert_eq!(
            err("[server]\nport = 1\n"),
            "config: unknown option `server` at line 1"
        );
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        assert_eq!(
            err("\nbcrypt_cost = \"ten\"\n"),
            "config: `bcrypt_cost`: invalid type: string \"ten\", expected u32 at line 2"
        );
        assert_eq!(
            err("sync = \"fast\"\n"),
            "config: `sync`: unknown variant `fast`, expected `full` or `normal` at line 1"
        );
        assert_eq!(
            err("listen = [\"127.0.0.1:1883\", \"localhost\"]\n"),
            "config: `listen`: invalid address, expected IP:PORT such as 127.0.0.1:1883 at line 1"
        );
        assert_eq!(
            err("max_inflight = -1\n"),
            "config: `max_inflight`: invalid value: integer `-1`, expected u16 at line 1"
        );
    }

    #[test]
    fn syntax_errors_are_one_line() {
        let e = err("a = \n");
        assert!(!e.contains('\n'), "{e}");
        assert!(e.ends_with("at line 1"), "{e}");
        let e = err("bcrypt_cost = 10\nbcrypt_cost = 11\n");
        assert_eq!(e, "config: duplicate key `bcrypt_cost` at line 2");
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let cases = [
            (
                "bcrypt_cost = 3",
                "`bcrypt_cost` = 3 is out of range (4..=31)",
            ),
            (
                "bcrypt_cost = 32",
                "`bcrypt_cost` = 32 is out of range (4..=31)",
            ),
            (
                "connect_timeout = 0",
                "`connect_timeout` = 0 is out of range (1..=3600)",
            ),
            (
                "connect_timeout = 9223372036854775807",
                "`connect_timeout` = 9223372036854775807 is out of range (1..=3600)",
            ),
            (
                "slow_consumer_timeout = 9223372036854775807",
                "`slow_consumer_timeout` = 9223372036854775807 is out of range (0..=86400)",
            ),
            (
                "sys_interval = 86401",
                "`sys_interval` = 86401 is out of range (0..=86400)",
            ),
            (
                "chat_request_burst = 0",
                "`chat_request_burst` = 0 is out of range (1..=1000000)",
            ),
            ("max_keepalive = 0", "`max_keepalive` = 0 is out of range"),
            (
                "max_packet_size = 15",
                "`max_packet_size` = 15 is out of range",
            ),
            (
                "max_packet_size = 268435456",
                "`max_packet_size` = 268435456 is out of range",
            ),
            (
                "receive_maximum = 0",
                "`receive_maximum` = 0 is out of range",
            ),
            ("max_inflight = 0", "`max_inflight` = 0 is out of range"),
            (
                "maximum_qos = 3",
                "`maximum_qos` = 3 is out of range (0..=2)",
            ),
            ("listen = []", "`listen` must name at least one address"),
        ];
        for (text, expected) in cases {
            let e = err(text);
            assert!(e.starts_with("config: "), "{e}");
            assert!(e.contains(expected), "{text}: {e}");
        }
        for ok in [
            "bcrypt_cost = 4",
            "bcrypt_cost = 31",
            "max_packet_size = 16",
            "max_packet_size = 268435455",
            "maximum_qos = 0",
        ] {
            assert!(Config::from_toml_str(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = std::env::temp_dir().join(format!("outpost-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(&good, "db = \"x.db\"\n").unwrap();
        assert_eq!(
            Config::load(&good).unwrap().storage.db,
            PathBuf::from("x.db")
        );

        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "db = \"x.db\"\nfoo = 1\n").unwrap();
        assert_eq!(
            Config::load(&bad).unwrap_err().to_string(),
            format!("config {}: unknown option `foo` at line 2", bad.display())
        );

        let invalid = dir.join("invalid.toml");
        std::fs::write(&invalid, "maximum_qos = 7\n").unwrap();
        assert_eq!(
            Config::load(&invalid).unwrap_err().to_string(),
            format!(
                "config {}: `maximum_qos` = 7 is out of range (0..=2)",
                invalid.display()
            )
        );

        let missing = dir.join("missing.toml");
        let e = Config::load(&missing).unwrap_err();
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read config {}: No such file or directory",
                missing.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The field names serde knows, read by a deserializer that stops at
    /// `deserialize_struct`, so new options cannot skip the docs.
    fn field_names<T: Deserialize<'static> + fmt::Debug>() -> &'static [&'static str] {
        use serde::de::{self, Visitor};
        #[derive(Debug)]
        struct Fields(&'static [&'static str]);
        impl fmt::Display for Fields {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "fields")
            }
        }
        impl std::error::Error for Fields {}
        impl de::Error for Fields {
            fn custom<T: fmt::Display>(_: T) -> Self {
                Fields(&[])
            }
        }
        struct Probe;
        impl<'de> de::Deserializer<'de> for Probe {
            type Error = Fields;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
                Err(Fields(&[]))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Fields> {
                Err(Fields(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let fields = T::deserialize(Probe).unwrap_err().0;
        assert!(fields.len() > 3);
        fields
    }
}
