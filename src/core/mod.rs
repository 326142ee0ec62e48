//! The broker's state and decisions, with no sockets, no clock reads and no SQL: what a
//! unit test can drive in microseconds. The I/O shell (`broker/`) reads and decodes,
//! asks the core, and does what it answers.
//!
//! - `keys`     — typed slab keys (`ConnKey`, `SessionKey`) and the slab they index.
//! - `session`  — what survives a connection: subscriptions, queue, in-flight, will.
//! - `index`    — sessions by client id (slab keys only; the id lives in the session).
//! - `message`  — the shared, reference-counted copy of a published message.
//! - `shared`   — round-robin positions of shared-subscription groups.
//! - `alias`    — topic aliases: the client's toward us, ours toward it (LRU remapping).
//! - `route`    — who gets a message: matching, shared-group choice, merging, No Local.
//! - `retain`   — retained messages toward a new subscription: Retain Handling, flags.
//! - `acks`     — the QoS 1/2 handshakes both ways, resends, our Receive Maximum.
//! - `queue`    — queue limits and budgets: would it wait, does it fit, whom to release.
//! - `admission` — `queue_full`: deliver, make room, drop, hold the publisher or refuse.
//! - `connect`  — a CONNECT's session: expiry, keep alive, takeover, resume or clean start.
//! - `expiry`   — a connection's end: the will now or after its delay, the session's expiry.
//! - `timers`   — the deadline heap that sets the poll timeout.

pub mod acks;
pub mod admission;
pub mod alias;
pub mod connect;
pub mod expiry;
pub mod index;
pub mod keys;
pub mod message;
pub mod queue;
pub mod retain;
pub mod route;
pub mod session;
pub mod shared;
#[cfg(test)]
mod testing;
pub mod timers;
