//! The sections of `Config`: each groups the options of one concern and says whether a
//! reload may change it in place (see `section.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::section::{section, Reload};
use super::{
    LogLevel, QueueFull, SyncMode, WebTlsMode, DEFAULT_HTTP, DEFAULT_LISTEN, DEFAULT_WS_LISTEN,
};
use crate::bridge::BridgeConfig;
use crate::chat::RoomCreation;

section! {
    /// The MQTT listeners: TCP, WebSocket and TLS, and the TLS listeners' files. Bound at
    /// start.
    pub struct Network(Reload::Restart) {
        /// MQTT/TCP listeners. Loopback only by default so a fresh install is not
        /// an open broker on the network.
        pub listen: Vec<SocketAddr> = vec![DEFAULT_LISTEN],
        /// MQTT-over-WebSocket listeners (path `/mqtt`, subprotocol `mqtt`), for
        /// browsers; empty for none. Loopback by default, like `listen`.
        pub ws_listen: Vec<SocketAddr> = vec![DEFAULT_WS_LISTEN],
        /// MQTT over TLS listeners (8883 by convention); they need `tls_cert` and `tls_key`.
        pub tls_listen: Vec<SocketAddr> = Vec::new(),
        /// PEM certificate chain the TLS listeners present.
        pub tls_cert: Option<PathBuf> = None,
        /// PEM private key of `tls_cert`.
        pub tls_key: Option<PathBuf> = None,
        /// PEM CA certificates; when set, TLS clients must present a certificate signed by
        /// one of them.
        pub tls_client_ca: Option<PathBuf> = None,
    }
}

section! {
    /// The web console and what the console and the WebSocket listeners answer to: address,
    /// connection caps, HTTPS, host names and origins. The console's poll loop takes them
    /// at start.
    pub struct Web(Reload::Restart) {
        /// Where the web console listens; `None` when `http_enabled = false`.
        /// Loopback by default for the same reason as `listen`.
        pub http: Option<SocketAddr> = Some(DEFAULT_HTTP),
        /// Lets a config file turn the web console off (TOML has no null, so an
        /// absent `http` cannot mean "off").
        pub http_enabled: bool = true,
        /// Connections the web console holds at most, and from one client address at most:
        /// beyond them a new connection gets 503 / 429 and is closed.
        pub web_max_connections: usize = 256,
        pub web_max_connections_per_address: usize = 32,
        /// Whether the console and the WebSocket listeners speak TLS (HTTPS, wss): `auto` on
        /// every address but loopback (and everywhere once `web_tls_cert` is set), `on`
        /// everywhere, `off` nowhere (a warning for each non-loopback address).
        pub web_tls: WebTlsMode = WebTlsMode::Auto,
        /// The PEM certificate chain and key they present; without them a self-signed pair is
        /// generated beside the database on first start.
        pub web_tls_cert: Option<PathBuf> = None,
        pub web_tls_key: Option<PathBuf> = None,
        /// Host names (besides the console's address and `localhost`) the console answers to,
        /// and the generated certificate names.
        pub web_hosts: Vec<String> = Vec::new(),
        /// Origins (`https://host:port`) whose pages may open a WebSocket to `ws_listen`,
        /// besides pages from the console's own host names.
        pub ws_allowed_origins: Vec<String> = Vec::new(),
    }
}

section! {
    /// The database and how its commits wait for the disk. Opened at start.
    pub struct Storage(Reload::Restart) {
        /// SQLite database holding users, ACLs, sessions, retained messages and
        /// chat. Relative paths are relative to the working directory.
        pub db: PathBuf = PathBuf::from("outpost.db"),
        /// How hard each group commit waits for the disk: trade durability of the
        /// last commits on power loss against SD-card write latency.
        pub sync: SyncMode = SyncMode::Full,
    }
}

section! {
    /// How the running broker logs and how long the store gathers writes; `SIGHUP` applies
    /// them at once.
    pub struct Runtime(Reload::Live) {
        /// How much the broker logs; SIGHUP applies a new value without a restart.
        /// `RUST_LOG`, when set, wins (and allows per-module filters).
        pub log_level: LogLevel = LogLevel::Info,
        /// Milliseconds the store gathers writes before it commits them (the commit
        /// window): fewer flushes of the SD card, and a QoS 1/2 message every
        /// subscriber acknowledged within it is never written at all. A full batch
        /// commits at once. 0 commits at the end of every loop turn.
        pub commit_interval: u64 = 200,
    }
}

section! {
    /// Who may connect without an account and the topics nobody may use; checked again on
    /// every connect, publish and delivery, so `SIGHUP` applies them at once.
    pub struct Access(Reload::Live) {
        /// Whether clients may connect without a username. Unset means: only on
        /// listeners bound to a loopback address, so local tools work out of the
        /// box while remote clients must log in.
        pub allow_anonymous: Option<bool> = None,
        /// Where anonymous clients are allowed, a CONNECT naming a user without an
        /// account connects as anonymous (as Mosquitto does without a password
        /// file), so tools that always send a user name still work locally.
        pub anonymous_unknown_users: bool = true,
        /// Topic filters nobody may subscribe to or receive from, whatever the ACL rules
        /// say (Mosquitto-style `deny` rules kept in the config file).
        pub deny_subscribe: Vec<String> = Vec::new(),
        /// Topic filters nobody may publish to, whatever the ACL rules say.
        pub deny_publish: Vec<String> = Vec::new(),
    }
}

section! {
    /// How accounts are made: the password hashing cost (given to the auth workers) and the
    /// registration rate (given to the console and the chat service), both at start.
    pub struct Accounts(Reload::Restart) {
        /// bcrypt work factor for new passwords; each step doubles the hashing
        /// time, which matters on a Raspberry-Pi-class CPU.
        pub bcrypt_cost: u32 = 10,
        /// Accounts a client address (an IPv6 /64) may try to register per hour, over the web
        /// console and the chat service; a taken name counts like a fresh one. 0 = no limit.
        pub registrations_per_hour: u32 = 10,
    }
}

section! {
    /// Limits that are only ever compared with new work (connections, buffers, queues,
    /// topics, timeouts for new connections), so `SIGHUP` applies them at once.
    pub struct Limits(Reload::Live) {
        /// Connection cap that protects memory and file descriptors; 0 = no cap.
        pub max_connections: usize = 10_000,
        /// Connections one IP address may hold, so one host cannot take them all; 0 = no cap.
        pub max_connections_per_address: usize = 100,
        /// Bytes of output a client may leave unread before QoS 0 messages to it are
        /// dropped, so a subscriber that never reads cannot grow the broker's memory.
        pub max_output_buffer: usize = 4 * 1024 * 1024,
        /// Seconds a client may stay over `max_output_buffer` before it is disconnected.
        pub slow_consumer_timeout: u64 = 60,
        /// Longest topic name or filter, in bytes; 0 = the protocol's 65535.
        pub max_topic_length: usize = 4096,
        /// Seconds a new socket may take to send CONNECT before it is closed, so
        /// idle sockets cannot pile up.
        pub connect_timeout: u64 = 10,
        /// Longest keep alive (seconds) a client may ask for; longer requests get
        /// this value back as Server Keep Alive, so dead clients are noticed.
        pub max_keepalive: u16 = 65_535,
        /// How many unacknowledged QoS 1/2 publishes we send one client at once;
        /// the rest wait in its queue. A subscriber on a LAN gets at most a window
        /// per round trip, so this is sized for loopback and LAN speeds; the
        /// client's own Receive Maximum still caps it.
        pub max_inflight: u16 = 1024,
        /// Messages queued per session (offline or behind) before `queue_full`
        /// applies. A persistent session's queue lives on disk, so the default is
        /// deep enough for an overnight outage; 0 = no count limit.
        pub max_queued_messages: usize = 100_000,
        /// Topic and payload bytes queued per session, same purpose as
        /// `max_queued_messages`; 0 = no byte limit.
        pub max_queued_bytes: usize = 256 * 1024 * 1024,
        /// Broker-wide bytes of queued messages kept in memory: clean sessions'
        /// queues (which live only in memory) and the pages of persistent
        /// sessions' queues being delivered. 0 = no limit.
        pub max_queued_memory: usize = 64 * 1024 * 1024,
        /// Broker-wide bytes of queued messages persistent sessions may keep on
        /// disk, so queues cannot fill the SD card. 0 = no limit.
        pub max_queued_disk: usize = 1024 * 1024 * 1024,
        /// What happens to a QoS 1/2 message that a matching session cannot
        /// queue because it is at one of the limits above.
        pub queue_full: QueueFull = QueueFull::Backpressure,
        /// Whether QoS 0 messages are queued for offline persistent sessions.
        /// Off by default: QoS 0 promises nothing and would fill the queue.
        pub queue_qos0: bool = false,
        /// Topic aliases a client may use towards us (saves uplink bytes on long
        /// topics); 0 disables them.
        pub topic_alias_maximum: u16 = 64,
        /// Upper bound (seconds) on the session expiry a client may request;
        /// `4294967295` means sessions may never expire.
        pub max_session_expiry: u32 = u32::MAX,
        /// Deepest topic or filter (in levels) we accept; bounds trie depth and
        /// matching cost. 0 = no limit.
        pub max_topic_levels: usize = 32,
        /// Subscriptions one client may hold, so one client cannot bloat the
        /// trie; 0 = no limit.
        pub max_subscriptions_per_client: usize = 1000,
    }
}

section! {
    /// What clients are told they may rely on: the capabilities announced in CONNACK, and
    /// the `$SYS` timer. Fixed at start.
    pub struct Features(Reload::Restart) {
        /// Largest packet (bytes) we accept or send; bounds per-client buffers.
        pub max_packet_size: u32 = 1_048_576,
        /// How many unacknowledged QoS 1/2 publishes a client may send us at once
        /// (flow control of inbound traffic). 128 by default: paho-mqtt's usual 20 or 100
        /// and rumqttc's 100 fit; a client beyond it is read more slowly, not disconnected.
        pub receive_maximum: u16 = 128,
        /// Whether retained messages are supported; announced in CONNACK.
        pub retain_available: bool = true,
        /// Highest QoS we grant; announced in CONNACK and applied to subscriptions.
        pub maximum_qos: u8 = 2,
        /// Whether `+` and `#` filters are allowed; announced in CONNACK.
        pub wildcard_subscriptions: bool = true,
        /// Whether `$share/GROUP/filter` subscriptions are allowed; announced in
        /// CONNACK.
        pub shared_subscriptions: bool = true,
        /// Whether subscription identifiers are supported; announced in CONNACK.
        pub subscription_identifiers: bool = true,
        /// Seconds between `$SYS` updates (only while someone subscribes to
        /// `$SYS`); 0 disables `$SYS` entirely.
        pub sys_interval: u64 = 10,
    }
}

section! {
    /// The chat service; given to it when it starts.
    pub struct Chat(Reload::Restart) {
        /// Runs the chat service on the topics under `chat/` (see docs/chat.md); off, those
        /// are plain topics.
        pub enabled("chat"): bool = true,
        /// Longest chat message, in bytes.
        pub chat_max_text: usize = 1000,
        /// Most messages in one history page.
        pub chat_history_page: usize = 50,
        /// Who creates a room by sending to it: `anyone` logged in, or only `admins`.
        pub chat_room_creation: RoomCreation = RoomCreation::Anyone,
        /// Chat requests (messages included) per second per client, after a burst of
        /// `chat_request_burst`; 0 = no limit.
        pub chat_requests_per_second: u32 = 10,
        pub chat_request_burst: u32 = 20,
    }
}

section! {
    /// The uplinks to other brokers; their connections and queues are set up at start.
    pub struct Bridges(Reload::Restart) {
        /// Upstream brokers to bridge to (`[[bridge]]` sections; docs/bridge.md).
        pub links("bridge"): Vec<BridgeConfig> = Vec::new(),
    }
}
