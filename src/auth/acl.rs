//! Topic access control, evaluated on the loop: cheap, no I/O.
//!
//! Rules come from the store (per-user rules, and pattern rules for everyone with `%u`
//! and `%c` substituted) and from the configuration (`deny_subscribe`, `deny_publish`).
//! Like Mosquitto: with no rules at all everything is allowed; once any grant applies
//! to a client, only what a rule grants is allowed; a `deny` rule beats every grant.

use crate::store::{Access, AclRule};
use crate::topic;

/// What a client wants to do with a topic or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Subscribe to a filter, or receive a message on a topic.
    Read,
    /// Publish to a topic.
    Write,
}

/// The rules that apply to one client, with `%u` and `%c` already substituted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAcl {
    grants: Vec<(String, Access)>,
    denials: Vec<(String, Action)>,
    /// True when some rule exists in the store, so anything not granted is refused.
    restrictive: bool,
}

impl ClientAcl {
    /// The rules for `username` (if any) and `client_id` out of every stored rule, plus the
    /// configured denials.
    pub fn for_client(
        rules: &[AclRule],
        deny_subscribe: &[String],
        deny_publish: &[String],
        username: Option<&str>,
        client_id: &str,
    ) -> ClientAcl {
        let mut acl = ClientAcl {
            restrictive: !rules.is_empty(),
            ..ClientAcl::default()
        };
        for rule in rules {
            let applies = match &rule.username {
                None => true,
                Some(owner) => Some(owner.as_str()) == username,
            };
            if !applies {
                continue;
            }
            // A pattern naming %u cannot apply to a client without a user name.
            if rule.topic.contains("%u") && username.is_none() {
                continue;
            }
            let pattern = rule
                .topic
                .replace("%u", username.unwrap_or(""))
                .replace("%c", client_id);
            match rule.access {
                Access::Deny => {
                    acl.denials.push((pattern.clone(), Action::Read));
                    acl.denials.push((pattern, Action::Write));
                }
                access => acl.grants.push((pattern, access)),
            }
        }
        acl.denials
            .extend(deny_subscribe.iter().map(|f| (f.clone(), Action::Read)));
        acl.denials
            .extend(deny_publish.iter().map(|f| (f.clone(), Action::Write)));
        acl
    }

    /// True when `action` on `topic` (a topic name, or a filter for a subscription) is
    /// allowed. A filter is checked level by level against each rule, its wildcards
    /// taken literally: a rule `a/#` covers `a/+/c`, a rule `a/b` does not cover `a/#`.
    pub fn allows(&self, action: Action, topic: &str) -> bool {
        if self
            .denials
            .iter()
            .any(|(pattern, a)| *a == action && covers(pattern, topic))
        {
            return false;
        }
        if !self.restrictive {
            return true;
        }
        self.grants.iter().any(|(pattern, access)| {
            let granted = match action {
                Action::Read => matches!(access, Access::Read | Access::ReadWrite),
                Action::Write => matches!(access, Access::Write | Access::ReadWrite),
            };
            granted && covers(pattern, topic)
        })
    }

    /// True when no rule can refuse anything, so delivery needs no per-message check.
    pub fn allows_everything(&self) -> bool {
        !self.restrictive && self.denials.is_empty()
    }
}

/// A rule pattern covers a topic, or a filter whose wildcards are taken as plain levels,
/// except that a filter's `#` is only covered by a pattern's `#`.
fn covers(pattern: &str, topic_or_filter: &str) -> bool {
    if topic_or_filter.ends_with('#') && !pattern.ends_with('#') {
        return false;
    }
    topic::matches(pattern, topic_or_filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(username: Option<&str>, topic: &str, access: Access) -> AclRule {
        AclRule {
            id: 0,
            username: username.map(String::from),
            topic: topic.into(),
            access,
        }
    }

    #[test]
    fn no_rules_allow_everything_but_configured_denials() {
        let acl = ClientAcl::for_client(&[], &["test/nosubscribe".into()], &[], None, "c1");
        assert!(acl.allows(Action::Read, "a/b"));
        assert!(acl.allows(Action::Write, "test/nosubscribe"));
        assert!(!acl.allows(Action::Read, "test/nosubscribe"));
        assert!(!acl.allows_everything());
        assert!(ClientAcl::for_client(&[], &[], &[], None, "c1").allows_everything());
    }

    #[test]
    fn user_rules_apply_only_to_their_user() {
        let rules = [
            rule(Some("alice"), "sensors/#", Access::Read),
            rule(Some("bob"), "cmd/#", Access::Write),
        ];
        let alice = ClientAcl::for_client(&rules, &[], &[], Some("alice"), "a1");
        assert!(alice.allows(Action::Read, "sensors/t1"));
        assert!(alice.allows(Action::Read, "sensors/+"));
        assert!(alice.allows(Action::Read, "sensors/#"));
        assert!(!alice.allows(Action::Write, "sensors/t1"));
        assert!(!alice.allows(Action::Write, "cmd/x"));
        assert!(!alice.allows(Action::Read, "#"));
        let anonymous = ClientAcl::for_client(&rules, &[], &[], None, "x");
        assert!(!anonymous.allows(Action::Read, "sensors/t1"));
    }

    #[test]
    fn patterns_substitute_user_and_client_id() {
        let rules = [
            rule(None, "users/%u/#", Access::ReadWrite),
            rule(None, "clients/%c", Access::Write),
        ];
        let acl = ClientAcl::for_client(&rules, &[], &[], Some("carol"), "dev-7");
        assert!(acl.allows(Action::Write, "users/carol/inbox"));
        assert!(!acl.allows(Action::Write, "users/dave/inbox"));
        assert!(acl.allows(Action::Write, "clients/dev-7"));
        assert!(!acl.allows(Action::Read, "clients/dev-7"));
        let anonymous = ClientAcl::for_client(&rules, &[], &[], None, "dev-8");
        assert!(!anonymous.allows(Action::Write, "users//inbox"));
        assert!(anonymous.allows(Action::Write, "clients/dev-8"));
    }

    #[test]
    fn deny_beats_grant() {
        let rules = [
            rule(Some("alice"), "#", Access::ReadWrite),
            rule(Some("alice"), "secret/#", Access::Deny),
        ];
        let acl = ClientAcl::for_client(&rules, &[], &[], Some("alice"), "a");
        assert!(acl.allows(Action::Read, "public/x"));
        assert!(!acl.allows(Action::Read, "secret/x"));
        assert!(!acl.allows(Action::Write, "secret/x"));
    }

    #[test]
    fn a_narrow_rule_does_not_cover_a_wider_filter() {
        let rules = [rule(Some("u"), "a/+", Access::Read)];
        let acl = ClientAcl::for_client(&rules, &[], &[], Some("u"), "c");
        assert!(acl.allows(Action::Read, "a/b"));
        assert!(acl.allows(Action::Read, "a/+"));
        assert!(!acl.allows(Action::Read, "a/#"));
    }
}
