//! Topic rules of one bridge: which local messages go upstream and under which topic,
//! which upstream topics we subscribe to and where their messages land locally. Pure:
//! strings in, strings out.
//!
//! A rule `{ filter = "sensors/#", local_prefix = "", remote_prefix = "site1/" }` sends
//! local `sensors/a/temp` upstream as `site1/sensors/a/temp`, and (for `in`/`both`)
//! subscribes upstream to `site1/sensors/#`, delivering `site1/sensors/x` locally as
//! `sensors/x`. The filter is matched against the topic with its prefix removed; a topic
//! without the prefix does not match the rule.

use super::config::{Direction, TopicRule};
use crate::protocol::Qos;
use crate::topic;

/// The rules of one bridge, in config order; the first matching rule decides.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<TopicRule>,
}

/// Where a message goes across the link: its topic on the other side and its QoS there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub topic: String,
    pub qos: Qos,
}

impl Rules {
    pub fn new(rules: Vec<TopicRule>) -> Rules {
        Rules { rules }
    }

    /// The upstream topic and QoS for a local message, if an `out` rule takes it.
    pub fn outbound(&self, local_topic: &str, qos: Qos) -> Option<Mapped> {
        self.map(local_topic, qos, Direction::outbound, |r| {
            (&r.local_prefix, &r.remote_prefix)
        })
    }

    /// True when an `out` rule takes a local message on `local_topic` (at any QoS):
    /// `outbound` without building the upstream topic.
    pub fn sends(&self, local_topic: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.direction.outbound() && rest(rule, &rule.local_prefix, local_topic).is_some()
        })
    }

    /// The local topic and QoS for a message from the upstream, if an `in` rule takes it.
    pub fn inbound(&self, remote_topic: &str, qos: Qos) -> Option<Mapped> {
        self.map(remote_topic, qos, Direction::inbound, |r| {
            (&r.remote_prefix, &r.local_prefix)
        })
    }

    /// What to subscribe to upstream: one filter per `in`/`both` rule, with its QoS.
    pub fn subscriptions(&self) -> Vec<(String, Qos)> {
        self.rules
            .iter()
            .filter(|r| r.direction.inbound())
            .map(|r| (format!("{}{}", r.remote_prefix, r.filter), qos_of(r.qos)))
            .collect()
    }

    fn map(
        &self,
        topic: &str,
        qos: Qos,
        wanted: fn(Direction) -> bool,
        prefixes: fn(&TopicRule) -> (&String, &String),
    ) -> Option<Mapped> {
        self.rules.iter().find_map(|rule| {
            if !wanted(rule.direction) {
                return None;
            }
            let (from, to) = prefixes(rule);
            let rest = rest(rule, from, topic)?;
            Some(Mapped {
                topic: format!("{to}{rest}"),
                qos: qos.min(qos_of(rule.qos)),
            })
        })
    }
}

/// The topic without the rule's prefix `from`, if it has the prefix and the rest matches
/// the rule's filter.
fn rest<'t>(rule: &TopicRule, from: &str, topic: &'t str) -> Option<&'t str> {
    let rest = topic.strip_prefix(from)?;
    (!rest.is_empty() && topic::matches(&rule.filter, rest)).then_some(rest)
}

fn qos_of(n: u8) -> Qos {
    Qos::from_u8(n).unwrap_or(Qos::ExactlyOnce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(filter: &str, direction: Direction, qos: u8, local: &str, remote: &str) -> TopicRule {
        TopicRule {
            filter: filter.into(),
            direction,
            qos,
            local_prefix: local.into(),
            remote_prefix: remote.into(),
        }
    }

    fn mapped(topic: &str, qos: Qos) -> Option<Mapped> {
        Some(Mapped {
            topic: topic.into(),
            qos,
        })
    }

    #[test]
    fn out_rules_add_the_remote_prefix_and_cap_the_qos() {
        let rules = Rules::new(vec![rule("sensors/#", Direction::Out, 1, "", "site1/")]);
        assert_eq!(
            rules.outbound("sensors/a/temp", Qos::ExactlyOnce),
            mapped("site1/sensors/a/temp", Qos::AtLeastOnce)
        );
        assert_eq!(
            rules.outbound("sensors/a", Qos::AtMostOnce),
            mapped("site1/sensors/a", Qos::AtMostOnce)
        );
        assert_eq!(rules.outbound("other/a", Qos::AtLeastOnce), None);
        assert_eq!(
            rules.inbound("site1/sensors/a", Qos::AtLeastOnce),
            None,
            "an out rule never brings messages in"
        );
        assert!(rules.subscriptions().is_empty());
    }

    #[test]
    fn in_rules_strip_the_remote_prefix_and_subscribe_with_it() {
        let rules = Rules::new(vec![rule(
            "cmd/+",
            Direction::In,
            2,
            "from-cloud/",
            "site1/",
        )]);
        assert_eq!(
            rules.subscriptions(),
            vec![("site1/cmd/+".to_string(), Qos::ExactlyOnce)]
        );
        assert_eq!(
            rules.inbound("site1/cmd/reboot", Qos::ExactlyOnce),
            mapped("from-cloud/cmd/reboot", Qos::ExactlyOnce)
        );
        assert_eq!(rules.inbound("site2/cmd/reboot", Qos::AtLeastOnce), None);
        assert_eq!(rules.inbound("site1/cmd/a/b", Qos::AtLeastOnce), None);
        assert_eq!(
            rules.outbound("from-cloud/cmd/x", Qos::AtLeastOnce),
            None,
            "an in rule never sends messages out"
        );
    }

    #[test]
    fn a_local_prefix_must_be_present_to_match() {
        let rules = Rules::new(vec![rule("#", Direction::Out, 2, "up/", "")]);
        assert_eq!(
            rules.outbound("up/x/y", Qos::ExactlyOnce),
            mapped("x/y", Qos::ExactlyOnce)
        );
        assert_eq!(rules.outbound("down/x", Qos::ExactlyOnce), None);
        assert_eq!(rules.outbound("up/", Qos::ExactlyOnce), None);
    }

    #[test]
    fn both_works_in_each_direction_and_the_first_rule_wins() {
        let rules = Rules::new(vec![
            rule("chat/#", Direction::Both, 1, "", "gw/"),
            rule("#", Direction::Out, 0, "", "all/"),
        ]);
        assert_eq!(
            rules.outbound("chat/room", Qos::AtLeastOnce),
            mapped("gw/chat/room", Qos::AtLeastOnce)
        );
        assert_eq!(
            rules.inbound("gw/chat/room", Qos::AtLeastOnce),
            mapped("chat/room", Qos::AtLeastOnce)
        );
        assert_eq!(
            rules.outbound("misc", Qos::AtLeastOnce),
            mapped("all/misc", Qos::AtMostOnce)
        );
        assert_eq!(
            rules.subscriptions(),
            vec![("gw/chat/#".to_string(), Qos::AtLeastOnce)]
        );
    }

    #[test]
    fn dollar_topics_do_not_match_wildcards() {
        let rules = Rules::new(vec![rule("#", Direction::Out, 1, "", "")]);
        assert_eq!(rules.outbound("$SYS/broker/uptime", Qos::AtMostOnce), None);
    }

    #[test]
    fn sends_is_outbound_without_the_mapping() {
        let sets = [
            vec![rule("sensors/#", Direction::Out, 1, "", "site1/")],
            vec![rule("cmd/+", Direction::In, 2, "from-cloud/", "site1/")],
            vec![rule("#", Direction::Out, 2, "up/", "")],
            vec![
                rule("chat/#", Direction::Both, 1, "", "gw/"),
                rule("#", Direction::Out, 0, "", "all/"),
            ],
        ];
        let topics = [
            "sensors/a/temp",
            "other/a",
            "from-cloud/cmd/x",
            "up/x/y",
            "up/",
            "down/x",
            "chat/room",
            "misc",
            "$SYS/broker/uptime",
        ];
        let mut sent = 0;
        for rules in sets.map(Rules::new) {
            for topic in topics {
                let outbound = rules.outbound(topic, Qos::ExactlyOnce).is_some();
                assert_eq!(rules.sends(topic), outbound, "{topic} with {rules:?}");
                sent += usize::from(outbound);
            }
        }
        assert_eq!(sent, 10, "both answers occur");
    }
}
