//! The uplink: a store-and-forward bridge to an upstream MQTT broker.
//!
//! Everything here is pure decision-making the broker drives: `config` (the `[[bridge]]`
//! sections), `rules` (which topics cross, renamed how), `queue` (the forward queue and its
//! in-flight window), `session` (the MQTT client side: CONNECT, acks, keep alive),
//! `backoff` (reconnect delays), `rounds` (which upstream address is tried next), `lazy`
//! (when a metered link comes up and is let go). The
//! socket, the store writes and the local routing live in `broker::bridge`, which owns one
//! [`session::Session`] per bridge.

pub mod backoff;
pub mod config;
pub mod lazy;
pub mod queue;
pub mod rounds;
pub mod rules;
pub mod session;

pub use config::{BridgeConfig, Direction, QueueFull, TopicRule};
