//! Builders the core's unit tests share: messages, deliveries and sessions in a given state.

use std::num::NonZeroU16;
use std::sync::{Arc, OnceLock};

use crate::protocol::Qos;

use super::keys::{ConnKey, Key};
use super::message::{ForwardedProperties, Message};
use super::session::{Inflight, InflightState, Outbound, Session};

/// A message on `topic` with a payload of `size` bytes.
pub fn message(topic: &str, size: usize, qos: Qos, retain: bool) -> Arc<Message> {
    Arc::new(Message {
        topic: topic.into(),
        payload: vec![b'x'; size].into(),
        qos,
        retain,
        properties: ForwardedProperties::default(),
        expires_at: None,
        publisher: None,
        store_id: OnceLock::new(),
    })
}

/// One delivery of `message` at `qos`.
pub fn outbound(message: &Arc<Message>, qos: Qos) -> Outbound {
    Outbound {
        message: message.clone(),
        qos,
        retain: false,
        subscription_ids: Vec::new(),
        seq: None,
    }
}

/// A session of client `id`, online on connection `conn` (or offline).
pub fn session(id: &str, conn: Option<u32>) -> Session {
    let mut s = Session::new(id.into(), 0);
    s.set_connection(conn.map(|c| ConnKey::from_index(c as usize)));
    s
}

/// Queues `n` messages of `size` bytes in the session's memory queue (counted as the
/// shell counts them).
pub fn fill(session: &mut Session, n: usize, size: usize) {
    let m = message("t/q", size - 3, Qos::AtLeastOnce, false);
    let flight = session.flight_mut();
    for _ in 0..n {
        flight.queue.push_back(outbound(&m, Qos::AtLeastOnce));
        flight.queued_bytes += size;
    }
}

/// Puts `n` QoS `qos` messages in flight (PUBLISH sent, not yet acknowledged), ids 1..=n.
pub fn in_flight(session: &mut Session, n: u16, qos: Qos) {
    let m = message("t/f", 1, qos, false);
    for id in 1..=n {
        session.flight_mut().inflight.push_back(Inflight {
            packet_id: NonZeroU16::new(id).expect("ids from 1"),
            state: InflightState::Published,
            outbound: outbound(&m, qos),
        });
    }
}
