//! A metered link (`start = "lazy"`): when the bridge brings its link up and when it lets
//! it go. Pure: the broker tells it what is queued and what crossed the link, with the
//! time, and asks whether the link is wanted, when to look again, and whether it is idle.
//!
//! At rest (no link, none wanted) the link is wanted once `lazy_threshold` messages are
//! queued, or once `lazy_interval` seconds have passed since the link was last let go (or
//! since start) with at least one message queued. Once wanted, the link behaves as an
//! `always` one (reconnects with backoff when lost) until it is let go: up, nothing
//! queued (nothing unacknowledged either), and no message across it in either direction
//! for `idle_timeout` seconds. A link lost with nothing queued goes back to rest too.

use std::time::{Duration, Instant};

use super::config::{BridgeConfig, Start};

#[derive(Debug, Clone)]
pub struct Lazy {
    threshold: u64,
    interval: Option<Duration>,
    idle_timeout: Duration,
    /// From the moment the link is wanted until it is let go.
    wanted: bool,
    /// When the link was last let go (or start): `lazy_interval` counts from here.
    resting_since: Instant,
    /// The last message or acknowledgement across the link: idleness counts from here.
    last_busy: Instant,
}

impl Lazy {
    /// The bridge's lazy start, or `None` for `start = "always"`.
    pub fn new(config: &BridgeConfig, now: Instant) -> Option<Lazy> {
        (config.start == Start::Lazy).then(|| Lazy {
            threshold: config.lazy_threshold(),
            interval: config.lazy_interval.map(Duration::from_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout()),
            wanted: false,
            resting_since: now,
            last_busy: now,
        })
    }

    /// After a SIGHUP changed `config`'s lazy options: the lazy start the bridge has from
    /// now on. A lazy bridge keeps its state under the new threshold, interval and idle
    /// timeout; one that becomes lazy starts wanted if it is `active` (up, or trying with
    /// something queued), so it is let go once idle, and at rest otherwise.
    pub fn reconfigured(
        previous: Option<Lazy>,
        config: &BridgeConfig,
        active: bool,
        now: Instant,
    ) -> Option<Lazy> {
        let fresh = Lazy::new(config, now)?;
        Some(match previous {
            Some(lazy) => Lazy {
                threshold: fresh.threshold,
                interval: fresh.interval,
                idle_timeout: fresh.idle_timeout,
                ..lazy
            },
            None => Lazy {
                wanted: active,
                ..fresh
            },
        })
    }

    /// True from the moment the link is wanted until it is let go.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// With `queued` messages waiting: whether the link is wanted now (it becomes so when
    /// the threshold or the interval is reached, and stays so until let go).
    pub fn wants_link(&mut self, queued: u64, now: Instant) -> bool {
        if !self.wanted && queued > 0 {
            let interval_passed = self.interval.is_some_and(|i| now >= self.resting_since + i);
            if queued >= self.threshold || interval_passed {
                self.wanted = true;
                self.last_busy = now;
            }
        }
        self.wanted
    }

    /// At rest with `queued` messages waiting: when the interval will want the link.
    pub fn wake_at(&self, queued: u64) -> Option<Instant> {
        if self.wanted || queued == 0 {
            return None;
        }
        self.interval.map(|i| self.resting_since + i)
    }

    /// A message or acknowledgement crossed the link: it is not idle.
    pub fn busy(&mut self, now: Instant) {
        self.last_busy = now;
    }

    /// While the link is up with `queued` messages waiting: when it will be idle.
    pub fn idle_at(&self, queued: u64) -> Option<Instant> {
        (self.wanted && queued == 0).then(|| self.last_busy + self.idle_timeout)
    }

    /// Whether the link (up, `queued` waiting) should be let go now.
    pub fn is_idle(&self, queued: u64, now: Instant) -> bool {
        self.idle_at(queued).is_some_and(|at| now >= at)
    }

    /// The link was let go (idle), or lost with nothing queued: back to rest.
    pub fn rest(&mut self, now: Instant) {
        self.wanted = false;
        self.resting_since = now;
    }

    /// `idle_timeout`, for the log.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::config::Addresses;

    fn config(threshold: Option<u64>, interval: Option<u64>, idle: Option<u64>) -> BridgeConfig {
        let text = "name = \"c\"\naddress = \"h:1\"\nstart = \"lazy\"\n\
                    [[topic]]\nfilter = \"#\"\ndirection = \"out\"\n";
        let mut config: BridgeConfig = toml::from_str(text).unwrap();
        assert_eq!(config.address, Addresses::One("h:1".into()));
        config.lazy_threshold = threshold;
        config.lazy_interval = interval;
        config.idle_timeout = idle;
        config
    }

    fn lazy(threshold: Option<u64>, interval: Option<u64>, idle: Option<u64>) -> (Lazy, Instant) {
        let now = Instant::now();
        let config = config(threshold, interval, idle);
        (Lazy::new(&config, now).unwrap(), now)
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_lazy_options_are_checked() {
        let base = "name = \"c\"\naddress = \"h:1\"\n";
        let out = "[[topic]]\nfilter = \"#\"\ndirection = \"out\"\n";
        let inbound = "[[topic]]\nfilter = \"#\"\ndirection = \"in\"\n";
        let problem = |lines: &str, rules: &str| {
            let config: BridgeConfig = toml::from_str(&format!("{base}{lines}{rules}")).unwrap();
            config
                .problem()
                .map(|(option, message)| format!("{option} {message}"))
        };
        assert_eq!(
            problem(
                "start = \"lazy\"\nlazy_threshold = 3\nlazy_interval = 60\nidle_timeout = 5\n",
                out
            ),
            None
        );
        for (lines, rules, want) in [
            (
                "idle_timeout = 5\n",
                out,
                "bridge.idle_timeout only applies with start = \"lazy\"",
            ),
            (
                "lazy_threshold = 5\n",
                out,
                "bridge.lazy_threshold only applies",
            ),
            (
                "start = \"lazy\"\n",
                inbound,
                "bridge.start \"lazy\" needs an `out` or `both` rule",
            ),
            (
                "start = \"lazy\"\nlazy_threshold = 0\n",
                out,
                "bridge.lazy_threshold must be at least 1",
            ),
            (
                "start = \"lazy\"\nlazy_interval = 0\n",
                out,
                "bridge.lazy_interval must be between",
            ),
            (
                "start = \"lazy\"\nidle_timeout = 86401\n",
                out,
                "bridge.idle_timeout must be between",
            ),
        ] {
            let got = problem(lines, rules).unwrap_or_default();
            assert!(got.starts_with(want), "{lines}: {got}");
        }
    }

    #[test]
    fn a_reload_keeps_the_state_and_takes_the_new_numbers() {
        let (mut l, t0) = lazy(Some(100), Some(60), Some(30));
        l.rest(t0 + 10 * S);
        let config = config(Some(3), Some(20), Some(5));
        let mut l = Lazy::reconfigured(Some(l), &config, false, t0 + 15 * S).unwrap();
        assert!(!l.wanted());
        assert_eq!(
            l.wake_at(1),
            Some(t0 + 30 * S),
            "the interval counts from the rest"
        );
        assert!(l.wants_link(3, t0 + 16 * S), "the new threshold");
        assert_eq!(l.idle_at(0), Some(t0 + 21 * S), "the new idle timeout");
    }

    #[test]
    fn a_reload_to_always_drops_the_lazy_start_and_one_to_lazy_starts_it() {
        let (l, t0) = lazy(Some(5), None, Some(30));
        let mut config = config(None, None, None);
        config.start = Start::Always;
        assert!(Lazy::reconfigured(Some(l), &config, true, t0).is_none());
        config.start = Start::Lazy;
        let up = Lazy::reconfigured(None, &config, true, t0).unwrap();
        assert!(up.wanted(), "a link that is up stays until idle");
        assert_eq!(up.idle_at(0), Some(t0 + 60 * S));
        let resting = Lazy::reconfigured(None, &config, false, t0).unwrap();
        assert!(!resting.wanted(), "no link and nothing queued: at rest");
    }

    #[test]
    fn always_has_no_lazy_start() {
        let text =
            "name = \"c\"\naddress = \"h:1\"\n[[topic]]\nfilter = \"#\"\ndirection = \"out\"\n";
        let config: BridgeConfig = toml::from_str(text).unwrap();
        assert!(Lazy::new(&config, Instant::now()).is_none());
    }

    #[test]
    fn the_threshold_wants_the_link_and_nothing_below_it_does() {
        let (mut l, t0) = lazy(Some(5), None, None);
        for queued in 0..5 {
            assert!(!l.wants_link(queued, t0 + 1000 * S), "{queued} queued");
            assert_eq!(l.wake_at(queued), None, "no interval: no wake-up");
        }
        assert!(l.wants_link(5, t0 + 1000 * S));
        // Once wanted, it stays so while messages drain.
        assert!(l.wants_link(1, t0 + 1001 * S));
        assert!(l.wanted());
    }

    #[test]
    fn the_default_threshold_is_mosquittos_ten() {
        let (mut l, t0) = lazy(None, None, None);
        assert!(!l.wants_link(9, t0));
        assert!(l.wants_link(10, t0));
    }

    #[test]
    fn the_interval_wants_the_link_only_with_something_queued() {
        let (mut l, t0) = lazy(Some(100), Some(60), None);
        assert_eq!(l.wake_at(0), None, "nothing queued: no wake-up");
        assert_eq!(l.wake_at(1), Some(t0 + 60 * S));
        assert!(!l.wants_link(1, t0 + 59 * S));
        assert!(!l.wants_link(0, t0 + 61 * S), "nothing queued");
        assert!(l.wants_link(1, t0 + 61 * S));
        assert_eq!(l.wake_at(1), None, "wanted: no wake-up needed");
    }

    #[test]
    fn idle_counts_from_the_last_message_with_nothing_queued() {
        let (mut l, t0) = lazy(Some(2), Some(60), Some(30));
        assert_eq!(
            l.idle_at(0),
            None,
            "at rest the link is not idle, it is absent"
        );
        assert!(l.wants_link(2, t0));
        assert_eq!(l.idle_at(1), None, "something queued: not idle");
        l.busy(t0 + 10 * S);
        assert_eq!(l.idle_at(0), Some(t0 + 40 * S));
        assert!(!l.is_idle(0, t0 + 39 * S));
        assert!(l.is_idle(0, t0 + 40 * S));
        assert!(!l.is_idle(1, t0 + 400 * S));
        assert_eq!(l.idle_timeout(), 30 * S);
    }

    #[test]
    fn a_rest_restarts_the_interval_and_needs_a_new_trigger() {
        let (mut l, t0) = lazy(Some(3), Some(60), Some(30));
        assert!(l.wants_link(3, t0));
        l.rest(t0 + 100 * S);
        assert!(!l.wanted());
        assert!(!l.wants_link(1, t0 + 159 * S));
        assert_eq!(l.wake_at(1), Some(t0 + 160 * S));
        assert!(l.wants_link(1, t0 + 160 * S));
        // Wanting the link starts the idle clock afresh.
        assert_eq!(l.idle_at(0), Some(t0 + 190 * S));
    }
}
