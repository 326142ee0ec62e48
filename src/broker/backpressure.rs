//! Backpressure (`queue_full = "backpressure"`): a publisher whose QoS 1/2 message cannot be
//! queued for a matching session is held back — its acknowledgement withheld, its frame
//! kept unhandled, its socket no longer read, so TCP slows it down — and released, in the
//! order publishers came, once that queue (or the broker-wide budget) has room again.
//!
//! A client that sends more unacknowledged QoS 1/2 PUBLISHes than our Receive Maximum
//! (paho-mqtt 2.x, for one, ignores it) is held back the same way until its
//! acknowledgements are written, rather than disconnected: only a real flood of open
//! QoS 2 exchanges, which waiting cannot bring back under the window, gets 0x93.
//!
//! A held publisher is not timed out for keep alive: its silence is ours. A session that
//! keeps publishers waiting longer than `slow_consumer_timeout` is disconnected; if it is
//! persistent (it keeps queueing on disk) and still full, further messages for it are
//! dropped and counted until it has room, so it cannot stall its publishers for good.

use std::time::{Duration, Instant};

use super::client::Hold;
use super::close::Ending;
use super::{Broker, Violation};
use crate::core::acks::{self, Window};
use crate::core::admission::Holder;
use crate::core::keys::{ConnKey, SessionKey};
use crate::core::queue;
use crate::core::timers::Timer;
use crate::protocol::ReasonCode;

impl Broker {
    /// Holds the publisher on `token` back: the frame being handled stays in its buffer
    /// and is handled again once it is released.
    pub(super) fn hold(&mut self, token: ConnKey, holder: Holder, now: Instant) {
        let conn = &mut self.conns[token];
        conn.hold = Hold::Held;
        let entry = (token, conn.serial);
        self.stats.publishers_held += 1;
        match holder {
            Holder::Budget => {
                if self.budget.waiters.is_empty() {
                    log::warn!("queue budget spent: holding publishers back until queues drain");
                }
                self.budget.waiters.push(entry);
            }
            Holder::Session(session) => {
                let s = &mut self.sessions[session];
                let first = s.flight().holding_since.is_none();
                let flight = s.flight_mut();
                flight.waiting.push(entry);
                if first {
                    flight.holding_since = Some(now);
                    log::info!(
                        "client {}: queue full, holding publishers back until it drains",
                        s.client_id
                    );
                    let timeout = Duration::from_secs(self.config.limits.slow_consumer_timeout);
                    self.timers
                        .schedule(now + timeout, Timer::HeldTooLong { session });
                }
            }
        }
    }

    /// A QoS 1/2 PUBLISH from an MQTT 5 client on `token`: true when it is beyond the
    /// Receive Maximum and must wait, unhandled, until the acknowledgements already
    /// given are written (the end of this turn); a flood of open QoS 2 exchanges is
    /// refused (see [`acks::inbound_window`]).
    pub(super) fn beyond_receive_maximum(
        &mut self,
        token: ConnKey,
        session: SessionKey,
    ) -> Result<bool, Violation> {
        let receive_maximum = self.config.features.receive_maximum;
        let open_qos2 = self.sessions[session].flight().incoming_qos2.len();
        let conn = &mut self.conns[token];
        match acks::inbound_window(receive_maximum, open_qos2, conn.unflushed_qos1_acks) {
            Window::Open => Ok(false),
            Window::Wait => {
                if !conn.over_window {
                    conn.over_window = true;
                    log::info!(
                        "client {}: more unacknowledged QoS 1/2 publishes than Receive Maximum \
                         ({receive_maximum}); reading it again once its acknowledgements are out",
                        conn.client_id
                    );
                }
                conn.hold = Hold::Held;
                self.turn.window_waiters.push((token, conn.serial));
                self.publisher_blocked(token);
                Ok(true)
            }
            Window::Flood => Err(Violation::new(
                ReasonCode::ReceiveMaximumExceeded,
                "more open QoS 2 publishes than twice Receive Maximum",
            )),
        }
    }

    /// The end of a turn, after the flush: publishers held for their Receive Maximum
    /// whose acknowledgements are out go on; the others wait another turn.
    pub(super) fn release_window_waiters(&mut self) {
        if self.turn.window_waiters.is_empty() {
            return;
        }
        let mut waiting = std::mem::take(&mut self.turn.window_waiters);
        waiting.retain(|&(token, serial)| {
            self.conns
                .get(token)
                .is_some_and(|c| c.serial == serial && c.hold == Hold::Held)
        });
        let (ready, still): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|&(token, _)| self.conns[token].unflushed_qos1_acks == 0);
        self.turn.window_waiters = still;
        self.release(ready);
    }

    /// Called whenever a session's queue may have shrunk: releases the publishers waiting
    /// for it (and for the broker-wide budgets) once there is room again.
    pub(super) fn queue_drained(&mut self, session: SessionKey) {
        let limits = self.queue_limits();
        let waiting = queue::take_released(&mut self.sessions[session], &limits);
        self.release(waiting);
        self.release_budget_waiters();
    }

    /// Releases the publishers held for a broker-wide budget once both have slack.
    pub(super) fn release_budget_waiters(&mut self) {
        let waiting = self.budget.take_released(&self.queue_limits());
        self.release(waiting);
    }

    /// Lets held publishers go on: each handles its kept frames at its next read, in turn.
    pub(super) fn release(&mut self, waiting: impl IntoIterator<Item = (ConnKey, u64)>) {
        for (token, serial) in waiting {
            let Some(conn) = self.conns.get_mut(token).filter(|c| c.serial == serial) else {
                continue;
            };
            if conn.hold == Hold::Held {
                conn.hold = Hold::Released;
                self.turn.read_next_turn(token);
            }
        }
    }

    /// Before a connection's socket is read: false while it is held back. A publisher just
    /// released first handles the frames it kept (and may be held again).
    pub(super) fn resume_input(&mut self, token: ConnKey, now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(token) else {
            return false;
        };
        match conn.hold {
            Hold::Reading => true,
            Hold::Held => false,
            Hold::Released => {
                conn.hold = Hold::Reading;
                // Silent because of us: its keep alive counts from now.
                conn.last_read = now;
                self.handle_input(token, now);
                self.conns
                    .get(token)
                    .is_some_and(|c| c.hold == Hold::Reading)
            }
        }
    }

    /// `slow_consumer_timeout` after a session began holding publishers back.
    pub(super) fn held_too_long(&mut self, session: SessionKey, now: Instant) {
        let Some(s) = self.sessions.get(session) else {
            return;
        };
        let Some(since) = s.flight().holding_since else {
            return;
        };
        let due = since + Duration::from_secs(self.config.limits.slow_consumer_timeout);
        if due > now {
            // Released and held again since: count from the new start.
            self.timers.schedule(due, Timer::HeldTooLong { session });
            return;
        }
        log::warn!(
            "client {}: its full queue held {} publishers back for {}s",
            s.client_id,
            s.flight().waiting.len(),
            self.config.limits.slow_consumer_timeout
        );
        self.stats.slow_consumers += 1;
        let (stored, connection) = (s.stored, s.connection());
        if let Some(token) = connection {
            self.end_connection(token, Ending::SlowConsumer);
        }
        if stored {
            // It goes on queueing on disk, still full: drop for it until it has room.
            let s = &mut self.sessions[session];
            log::warn!(
                "client {}: messages for it are dropped until its queue has room",
                s.client_id
            );
            let flight = s.flight_mut();
            flight.overflowing = true;
            flight.holding_since = None;
            let waiting = std::mem::take(&mut flight.waiting);
            self.release(waiting);
        }
        // A clean session ends with its connection this turn, which releases them.
    }
}
