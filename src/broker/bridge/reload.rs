//! SIGHUP for the bridges: a running bridge takes the new values of the options that say
//! when its link comes up and is let go (`BridgeConfig::RELOADABLE`: `start`,
//! `lazy_threshold`, `lazy_interval`, `idle_timeout`) at once, keeping its link, queue and
//! session. Everything else of a `[[bridge]]` section (the address, TLS, the rules, the
//! queue's budget…) belongs to the link or the queue set up at start and waits for a
//! restart, as does a section added or removed; the reload's log line names each.

use std::time::Instant;

use super::super::Broker;
use super::BridgeKey;
use crate::bridge::lazy::Lazy;
use crate::bridge::BridgeConfig;

/// What a reload did to the bridges, as `bridge.NAME.OPTION` names for the log.
#[derive(Debug, Default)]
pub struct BridgeReload {
    pub applied: Vec<String>,
    pub restart: Vec<String>,
}

impl Broker {
    /// Applies to each running bridge the reloadable options of its section in `new`
    /// (matched by name), and lists what waits for a restart.
    pub(in crate::broker) fn reload_bridges(
        &mut self,
        new: &[BridgeConfig],
        now: Instant,
    ) -> BridgeReload {
        let mut report = BridgeReload::default();
        for key in self.bridges.list.keys() {
            let name = self.bridges.list[key].config.name.clone();
            let Some(fresh) = new.iter().find(|b| b.name == name) else {
                report.restart.push(format!("bridge.{name} (removed)"));
                continue;
            };
            let changed = self.bridges.list[key].config.changed_options(fresh);
            let (live, later): (Vec<String>, Vec<String>) = changed
                .into_iter()
                .partition(|option| BridgeConfig::RELOADABLE.contains(&option.as_str()));
            report
                .restart
                .extend(later.iter().map(|option| format!("bridge.{name}.{option}")));
            if !live.is_empty() {
                report
                    .applied
                    .extend(live.iter().map(|option| format!("bridge.{name}.{option}")));
                self.restart_lazy(key, fresh, now);
            }
        }
        let running = |name: &str| self.bridges.all().any(|b| b.config.name == name);
        for fresh in new.iter().filter(|b| !running(&b.name)) {
            report.restart.push(format!("bridge.{} (new)", fresh.name));
        }
        for section in &mut self.config.bridge.links {
            if let Some(fresh) = new.iter().find(|b| b.name == section.name) {
                section.take_reloadable(fresh);
            }
        }
        report
    }

    /// Bridge `key` takes `fresh`'s lazy-start options: from `lazy` to `always` it
    /// connects now (if it has no link and no attempt due); from `always` to `lazy` a link
    /// that is up (or one being made for queued messages) stays until idle, and a bridge
    /// with neither rests; a lazy one keeps its state under the new numbers, which may
    /// bring the link up at once (a lower threshold) or move its timers.
    fn restart_lazy(&mut self, key: BridgeKey, fresh: &BridgeConfig, now: Instant) {
        let bridge = &mut self.bridges.list[key];
        bridge.config.take_reloadable(fresh);
        let queued = bridge.session.queue.len();
        let active = bridge.link.is_some() || (bridge.retry_at.is_some() && queued > 0);
        bridge.lazy = Lazy::reconfigured(bridge.lazy.take(), &bridge.config, active, now);
        match &bridge.lazy {
            None if bridge.link.is_none() && bridge.retry_at.is_none() => {
                log::info!(
                    "bridge {}: start = always now; connecting",
                    bridge.config.name
                );
                bridge.retry_at = Some(now);
            }
            Some(lazy) if !lazy.wanted() => {
                // At rest: no attempt is due, and a resolver's late answer is ignored.
                bridge.retry_at = None;
                bridge.serial += 1;
            }
            _ => {}
        }
        self.wake_if_wanted(key, now);
        self.schedule_bridge(key, now);
    }
}
