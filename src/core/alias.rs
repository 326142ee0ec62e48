//! Topic aliases of one MQTT 5 connection. Inbound: what the client set up. Outbound:
//! what the broker sets up toward the client, so a repeated topic costs
//! an empty string and a 3-byte property instead of its length. Slots are handed out
//! while the client's Topic Alias Maximum allows; after that the least recently used
//! slot is given to the new topic (the spec lets a server remap an alias).

use std::collections::HashMap;

/// Topics shorter than this gain nothing from an alias (the property costs 3 bytes).
const MIN_ALIASED_TOPIC: usize = 4;
/// The most aliases kept per connection, whatever the client allows: bounds memory and
/// the least-recently-used scan.
const MAX_SLOTS: u16 = 64;

/// The topic alias a PUBLISH to this client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicAlias {
    /// The client knows it: the topic is sent empty.
    Known(u16),
    /// Set up (or remapped) by this PUBLISH: the topic is sent with it.
    New(u16),
}

impl TopicAlias {
    pub fn number(self) -> u16 {
        match self {
            TopicAlias::Known(n) | TopicAlias::New(n) => n,
        }
    }
}

/// Topic aliases a client set up toward us (alias → topic).
#[derive(Debug, Default)]
pub struct InboundAliases {
    by_alias: HashMap<u16, Box<str>>,
}

impl InboundAliases {
    pub fn get(&self, alias: u16) -> Option<&str> {
        self.by_alias.get(&alias).map(|t| &**t)
    }

    pub fn set(&mut self, alias: u16, topic: &str) {
        self.by_alias.insert(alias, topic.into());
    }
}

#[derive(Debug, Default)]
pub struct OutboundAliases {
    /// How many aliases we may use (the client's maximum, capped at `MAX_SLOTS`).
    limit: u16,
    by_topic: HashMap<Box<str>, u16>,
    /// Alias − 1 → its topic and when it was last used.
    slots: Vec<(Box<str>, u64)>,
    clock: u64,
}

impl OutboundAliases {
    pub fn new(client_maximum: u16) -> Self {
        OutboundAliases {
            limit: client_maximum.min(MAX_SLOTS),
            ..Self::default()
        }
    }

    /// The alias to use for `topic`, or none. Nothing changes until [`Self::used`] says the
    /// PUBLISH carrying it was really sent.
    pub fn lookup(&self, topic: &str) -> Option<TopicAlias> {
        if self.limit == 0 || topic.len() < MIN_ALIASED_TOPIC {
            return None;
        }
        if let Some(&known) = self.by_topic.get(topic) {
            return Some(TopicAlias::Known(known));
        }
        let slot = if self.slots.len() < usize::from(self.limit) {
            self.slots.len()
        } else {
            let (oldest, _) = self.slots.iter().enumerate().min_by_key(|(_, (_, t))| *t)?;
            oldest
        };
        u16::try_from(slot + 1).ok().map(TopicAlias::New)
    }

    /// Records that `alias` went out for `topic`.
    pub fn used(&mut self, topic: &str, alias: TopicAlias) {
        self.clock += 1;
        let index = usize::from(alias.number()) - 1;
        match self.slots.get_mut(index) {
            Some(slot) if *slot.0 == *topic => slot.1 = self.clock,
            Some(slot) => {
                self.by_topic.remove(&slot.0);
                *slot = (topic.into(), self.clock);
                self.by_topic.insert(topic.into(), alias.number());
            }
            None => {
                self.slots.push((topic.into(), self.clock));
                self.by_topic.insert(topic.into(), alias.number());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(aliases: &mut OutboundAliases, topic: &str) -> Option<TopicAlias> {
        let alias = aliases.lookup(topic);
        if let Some(a) = alias {
            aliases.used(topic, a);
        }
        alias
    }

    #[test]
    fn assigns_then_reuses_then_remaps_the_least_recently_used() {
        let mut a = OutboundAliases::new(2);
        assert_eq!(send(&mut a, "room/1"), Some(TopicAlias::New(1)));
        assert_eq!(send(&mut a, "room/2"), Some(TopicAlias::New(2)));
        assert_eq!(send(&mut a, "room/1"), Some(TopicAlias::Known(1)));
        // room/2 is now the least recently used: room/3 takes its slot.
        assert_eq!(send(&mut a, "room/3"), Some(TopicAlias::New(2)));
        assert_eq!(send(&mut a, "room/3"), Some(TopicAlias::Known(2)));
        assert_eq!(send(&mut a, "room/2"), Some(TopicAlias::New(1)));
        assert_eq!(send(&mut a, "room/1"), Some(TopicAlias::New(2)));
    }

    #[test]
    fn none_without_a_client_maximum_or_for_short_topics() {
        let mut none = OutboundAliases::new(0);
        assert_eq!(send(&mut none, "room/1"), None);
        let mut a = OutboundAliases::new(10);
        assert_eq!(send(&mut a, "a/b"), None);
    }

    #[test]
    fn lookup_alone_changes_nothing() {
        let a = OutboundAliases::new(1);
        assert_eq!(a.lookup("room/1"), Some(TopicAlias::New(1)));
        assert_eq!(a.lookup("room/2"), Some(TopicAlias::New(1)));
    }
}
