//! `$SYS` statistics, named as Mosquitto names them, published as retained QoS 0
//! messages every `sys_interval` seconds — and only while some subscription matches one of
//! the topics published, so an idle broker never wakes up for them.
//!
//! A subscription whose filter starts with `$` starts the timer; each round then checks
//! every topic it is about to publish against the subscriptions, and lets the timer lapse
//! when none matches (`$SYS/broker/uptime` alone, `$SYS/broker/bridge/#`, `$SYS/#` all keep
//! it going; `#` and `+/…` never match `$SYS`, so they do not).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::Hold;
use super::Broker;
use crate::core::message::{ForwardedProperties, Message};
use crate::core::timers::Timer;
use crate::protocol::Qos;

/// What `$SYS` keeps between its publications.
#[derive(Debug)]
pub struct Sys {
    /// True while the `$SYS` timer is scheduled (someone subscribes to `$SYS`).
    pub running: bool,
    /// The rates published under `load/`.
    pub load: Load,
    /// When the broker started, for `uptime` (and the console's).
    pub started: Instant,
}

impl Default for Sys {
    fn default() -> Self {
        Sys {
            running: false,
            load: Load::default(),
            started: Instant::now(),
        }
    }
}

/// Exponentially decayed per-minute rates, like Mosquitto's `load/*/1min`.
#[derive(Debug, Default)]
pub struct Load {
    last: Option<(Instant, [u64; 5])>,
    per_minute: [f64; 5],
}

impl Load {
    /// Folds the counters' growth since the last update into the 1-minute averages.
    fn update(&mut self, now: Instant, counters: [u64; 5]) -> [f64; 5] {
        if let Some((then, before)) = self.last {
            let dt = now.saturating_duration_since(then).as_secs_f64();
            if dt > 0.0 {
                let keep = (-dt / 60.0).exp();
                for i in 0..5 {
                    let rate = counters[i].saturating_sub(before[i]) as f64 * 60.0 / dt;
                    self.per_minute[i] = self.per_minute[i] * keep + rate * (1.0 - keep);
                }
            }
        }
        self.last = Some((now, counters));
        self.per_minute
    }
}

impl Broker {
    /// Starts the `$SYS` timer when a subscription could want it and it is not running.
    pub(super) fn sys_wanted(&mut self, filter: &str, now: Instant) {
        if self.config.features.sys_interval > 0 && !self.sys.running && filter.starts_with('$') {
            self.sys.running = true;
            self.timers.schedule(now, Timer::Sys);
        }
    }

    /// The `$SYS` interval is due: publish, and keep the timer only while some
    /// subscription matches a published topic.
    pub(super) fn sys_tick(&mut self, now: Instant) {
        let mut values = self.sys_values(now);
        values.extend(self.bridge_sys_values());
        if !values.iter().any(|(topic, _)| self.has_subscriber(topic)) {
            self.sys.running = false;
            return;
        }
        for (topic, value) in values {
            // Kept in memory only: $SYS values are not worth a disk write.
            self.publish_retained_in_memory(topic.into(), value.into_bytes().into(), now);
        }
        let interval = Duration::from_secs(self.config.features.sys_interval);
        self.timers.schedule(now + interval, Timer::Sys);
    }

    /// True when a plain or shared subscription matches `topic`.
    /// A broker-made QoS 0 retained message (`$SYS`, a bridge's local notification state),
    /// kept in the retained tree in memory only and routed to its subscribers.
    pub(super) fn publish_retained_in_memory(
        &mut self,
        topic: Box<str>,
        payload: Box<[u8]>,
        now: Instant,
    ) {
        let message = Arc::new(Message {
            topic,
            payload,
            qos: Qos::AtMostOnce,
            retain: true,
            properties: ForwardedProperties::default(),
            expires_at: None,
            publisher: None,
            store_id: Default::default(),
        });
        self.retained.insert(&message.topic, message.clone());
        self.route(message, now);
    }

    fn has_subscriber(&self, topic: &str) -> bool {
        let mut plain = false;
        let mut shared = false;
        self.trie
            .for_each_match(topic, |_, _| plain = true, |_| shared = true);
        plain || shared
    }

    /// The broker's own statistics, as (topic, value) pairs.
    fn sys_values(&mut self, now: Instant) -> Vec<(String, String)> {
        let connected = self
            .conns
            .iter()
            .filter(|(_, c)| c.session().is_some())
            .count();
        let sessions = self.sessions.len();
        let s = self.stats.clone();
        let load = self.sys.load.update(
            now,
            [
                s.messages_received,
                s.messages_sent,
                s.bytes_received,
                s.bytes_sent,
                s.connections_total,
            ],
        );
        let uptime = now.saturating_duration_since(self.sys.started).as_secs();
        let held = self
            .conns
            .iter()
            .filter(|(_, c)| c.hold == Hold::Held)
            .count();
        let values: [(&str, String); 30] = [
            ("version", format!("outpost {}", env!("CARGO_PKG_VERSION"))),
            ("uptime", format!("{uptime} seconds")),
            ("clients/connected", connected.to_string()),
            (
                "clients/disconnected",
                (sessions.saturating_sub(connected)).to_string(),
            ),
            ("clients/total", sessions.max(connected).to_string()),
            ("messages/received", s.messages_received.to_string()),
            ("messages/sent", s.messages_sent.to_string()),
            ("messages/dropped", s.messages_dropped.to_string()),
            (
                "messages/dropped/queue full",
                s.dropped_queue_full.to_string(),
            ),
            ("messages/dropped/expired", s.dropped_expired.to_string()),
            (
                "messages/dropped/too large",
                s.dropped_too_large.to_string(),
            ),
            (
                "messages/dropped/slow consumer",
                s.dropped_slow_consumer.to_string(),
            ),
            ("messages/refused", s.messages_refused.to_string()),
            ("publishers/held", held.to_string()),
            ("publishers/held/total", s.publishers_held.to_string()),
            ("clients/slow consumers", s.slow_consumers.to_string()),
            ("bytes/received", s.bytes_received.to_string()),
            ("bytes/sent", s.bytes_sent.to_string()),
            (
                "bytes/saved by topic aliases",
                s.alias_bytes_saved.to_string(),
            ),
            ("subscriptions/count", self.trie.len().to_string()),
            ("retained messages/count", self.retained.len().to_string()),
            ("store/messages/queued", self.budget.messages.to_string()),
            (
                "store/messages/queued bytes in memory",
                self.budget.memory_bytes.to_string(),
            ),
            (
                "store/messages/queued bytes on disk",
                self.budget.disk_bytes.to_string(),
            ),
            ("store/failures", s.store_failures.to_string()),
            ("load/messages/received/1min", format!("{:.2}", load[0])),
            ("load/messages/sent/1min", format!("{:.2}", load[1])),
            ("load/bytes/received/1min", format!("{:.2}", load[2])),
            ("load/bytes/sent/1min", format!("{:.2}", load[3])),
            ("load/connections/1min", format!("{:.2}", load[4])),
        ];
        values
            .into_iter()
            .map(|(name, value)| (format!("$SYS/broker/{name}"), value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_converges_to_the_steady_rate() {
        let start = Instant::now();
        let mut load = Load::default();
        assert_eq!(load.update(start, [0; 5]), [0.0; 5]);
        let mut out = [0.0; 5];
        for step in 1..=60u64 {
            // 10 messages every 10 s = 60 per minute.
            out = load.update(
                start + Duration::from_secs(step * 10),
                [step * 10, 0, 0, 0, 0],
            );
        }
        assert!((out[0] - 60.0).abs() < 1.0, "{out:?}");
        assert_eq!(out[1], 0.0);
    }
}
