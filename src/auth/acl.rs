//! Topic access control, evaluated on the loop: cheap, no I/O.
//!
//! Rules come from the store (per-user rules, and pattern rules for everyone with `%u`
//! and `%c` substituted) and from the configuration (`deny_subscribe`, `deny_publish`).
//! Like Mosquitto: with no rules at all everything is allowed; once any grant applies
//! to a client, only what a rule grants is allowed; a `deny` rule beats every grant.
//!
//! Apart from the rules, reply topics are private ([`reply_topic_allows`]), whatever the
//! rules grant: `chat/u/<user>/…` is readable only by clients logged in as that user,
//! `chat/a/<client id>/…` only by the client with that id.

use crate::store::{Access, AclRule};
use crate::topic;

/// Replies to a logged-in user live under `chat/u/<user>`, replies to an anonymous client
/// under `chat/a/<client id>`.
pub const USER_REPLIES: &str = "chat/u/";
pub const CLIENT_REPLIES: &str = "chat/a/";

/// True when `topic` is someone's reply topic, so delivery must check its owner.
pub fn is_reply_topic(topic: &str) -> bool {
    topic.starts_with(USER_REPLIES) || topic.starts_with(CLIENT_REPLIES)
}

/// True unless `topic_or_filter` names someone else's reply topic. A filter is refused
/// when it names another owner, or any owner through a wildcard at that level
/// (`chat/u/+`, `chat/+/#`…); a filter whose `#` comes earlier (`#`, `chat/#`) is allowed,
/// and delivery checks each message's topic against this again.
pub fn reply_topic_allows(topic_or_filter: &str, username: Option<&str>, client_id: &str) -> bool {
    let mut levels = topic_or_filter.split('/');
    let first = levels.next().unwrap_or("");
    let (Some(second), Some(owner)) = (levels.next(), levels.next()) else {
        return true;
    };
    if !matches!(first, "chat" | "+") {
        return true;
    }
    let user_ok = !matches!(second, "u" | "+") || username == Some(owner);
    let client_ok = !matches!(second, "a" | "+") || owner == client_id;
    user_ok && client_ok
}

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
    fn reply_topics_belong_to_their_user_or_client() {
        for ok in [
            "chat/u/ana",
            "chat/u/ana/tag",
            "chat/u/ana/#",
            "chat/a/c1",
            "chat/a/c1/7",
            "chat/#",
            "#",
            "chat/u",
            "chat/r/general",
            "a/u/bob",
        ] {
            assert!(reply_topic_allows(ok, Some("ana"), "c1"), "{ok}");
        }
        for bad in [
            "chat/u/bob",
            "chat/u/bob/tag",
            "chat/u/+",
            "chat/u/#",
            "chat/a/c2",
            "chat/+/ana",
            "chat/+/+",
            "+/u/bob",
            "+/+/#",
            "chat/u/an",
            "chat/u/c1",
            "chat/a/ana",
        ] {
            assert!(!reply_topic_allows(bad, Some("ana"), "c1"), "{bad}");
        }
        assert!(
            !reply_topic_allows("chat/u/c1", None, "c1"),
            "anonymous: no user topic"
        );
        assert!(reply_topic_allows("chat/a/c1", None, "c1"));
        assert!(reply_topic_allows("chat/+/c1", Some("c1"), "c1"));
        assert!(is_reply_topic("chat/u/x") && is_reply_topic("chat/a/x"));
        assert!(!is_reply_topic("chat/r/x"));
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
