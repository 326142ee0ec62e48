//! The subscription trie: filter → subscribers, and topic → matching subscriptions.
//!
//! Filters are split into levels at `/`; each level is one edge of the trie. Literal
//! levels live in a hash map, the wildcards `+` and `#` in dedicated slots. Filters are
//! expected to have been checked with [`valid_filter`](super::valid_filter) first (the
//! trie stores whatever it is given and never panics, but a `#` that is not the last
//! level is treated as matching everything below its parent).
//!
//! Valid filters and what they match:
//!
//! | filter      | matches                              | does not match          |
//! |-------------|--------------------------------------|-------------------------|
//! | `a/b`       | `a/b`                                | `a`, `a/b/c`, `a/b/`    |
//! | `a/+`       | `a/b`, `a/` (empty level), `a/$x`    | `a`, `a/b/c`            |
//! | `+/+`       | `a/b`, `/`, `/b`                     | `a`, `a/b/c`, `$SYS/x`  |
//! | `+`         | `a`, `b` (any single level)          | `/`, `a/b`, `$SYS`      |
//! | `a/#`       | `a` (the parent), `a/`, `a/b/c`      | `ab`, `b/a`             |
//! | `#`         | every topic not starting with `$`    | `$SYS`, `$SYS/x`        |
//! | `+/#`       | `a`, `a/b`, `/`                      | `$SYS/x`                |
//! | `/#`        | `/`, `/a`, `//b` (parent level empty)| `a`, `a/`               |
//! | `a//b`      | `a//b`                               | `a/b`                   |
//! | `$SYS/#`    | `$SYS`, `$SYS/x`, `$SYS/x/y`         | `SYS/x`                 |
//! | `$SYS/+`    | `$SYS/x`                             | `$SYS`, `$SYS/x/y`      |
//!
//! Invalid filters (rejected by `valid_filter`): the empty string, `#/a`, `a/#/b`, `a#`,
//! `a/b#`, `##`, `a+`, `+a`, `a/+b`, `+#`, anything containing U+0000.
//!
//! Shared subscriptions (`$share/{group}/{filter}`) are stored under their inner filter,
//! with the group name kept alongside; matching reports each matching group once.
//! A subscriber with overlapping subscriptions (`a/+` and `a/#`) is reported once per
//! matching subscription.
//!
//! All walks are iterative (explicit stacks, not recursion), and dropping the trie does
//! not recurse either, so arbitrarily deep filters cannot overflow the stack.

use std::collections::HashMap;

/// One shared-subscription group on one filter: members get messages in turn.
#[derive(Debug, Clone)]
pub struct SharedGroup<V, K = usize> {
    pub group: String,
    pub filter: String,
    /// (subscriber key, value), in subscription order.
    pub members: Vec<(K, V)>,
}

/// One trie node: the subscriptions whose filter ends here, and the next levels.
struct Node<V, K> {
    children: HashMap<Box<str>, Node<V, K>>,
    plus: Option<Box<Node<V, K>>>,
    hash: Option<Box<Node<V, K>>>,
    subs: Vec<(K, V)>,
    groups: Vec<SharedGroup<V, K>>,
}

impl<V, K> Default for Node<V, K> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            subs: Vec::new(),
            groups: Vec::new(),
        }
    }
}

impl<V, K> Drop for Node<V, K> {
    /// Tears the subtree down with an explicit stack instead of recursion.
    fn drop(&mut self) {
        let mut stack: Vec<Node<V, K>> = Vec::new();
        self.take_children(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.take_children(&mut stack);
        }
    }
}

impl<V, K> Node<V, K> {
    fn take_children(&mut self, out: &mut Vec<Node<V, K>>) {
        out.extend(self.children.drain().map(|(_, n)| n));
        out.extend(self.plus.take().map(|n| *n));
        out.extend(self.hash.take().map(|n| *n));
    }

    fn child(&self, level: &str) -> Option<&Node<V, K>> {
        match level {
            "+" => self.plus.as_deref(),
            "#" => self.hash.as_deref(),
            _ => self.children.get(level),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<V, K>> {
        match level {
            "+" => self.plus.as_deref_mut(),
            "#" => self.hash.as_deref_mut(),
            _ => self.children.get_mut(level),
        }
    }

    /// The child for `level`, created if missing. Always `Some`; an `Option` only
    /// because the borrow checker cannot express "get, else insert" without allocating
    /// the key on every call.
    fn child_or_insert(&mut self, level: &str) -> Option<&mut Node<V, K>> {
        match level {
            "+" => Some(self.plus.get_or_insert_with(Box::default)),
            "#" => Some(self.hash.get_or_insert_with(Box::default)),
            _ => {
                if !self.children.contains_key(level) {
                    self.children.insert(level.into(), Node::default());
                }
                self.children.get_mut(level)
            }
        }
    }

    fn remove_child(&mut self, level: &str) -> Option<Node<V, K>> {
        match level {
            "+" => self.plus.take().map(|n| *n),
            "#" => self.hash.take().map(|n| *n),
            _ => self.children.remove(level),
        }
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some()) + usize::from(self.hash.is_some())
    }

    fn emit(&self, on_sub: &mut impl FnMut(K, &V), on_group: &mut impl FnMut(&SharedGroup<V, K>))
    where
        K: Copy,
    {
        for (sub, value) in &self.subs {
            on_sub(*sub, value);
        }
        for group in &self.groups {
            on_group(group);
        }
    }
}

/// Splits off the first level: `("a", Some("b/c"))` for `"a/b/c"`, `("a", None)` for `"a"`.
fn split_level(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((level, rest)) => (level, Some(rest)),
        None => (s, None),
    }
}

/// Subscriptions keyed by filter; each subscriber (a key `K`, e.g. a session's slab key)
/// holds at most one value per filter (and per shared group and filter).
pub struct TopicTrie<V, K = usize> {
    root: Node<V, K>,
    len: usize,
}

impl<V, K: Copy + Eq> Default for TopicTrie<V, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, K: Copy + Eq> TopicTrie<V, K> {
    pub fn new() -> Self {
        TopicTrie {
            root: Node::default(),
            len: 0,
        }
    }

    /// Adds or replaces `subscriber`'s subscription; returns true if it was new.
    pub fn subscribe(
        &mut self,
        filter: &str,
        share_group: Option<&str>,
        subscriber: K,
        value: V,
    ) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            let Some(child) = node.child_or_insert(level) else {
                return false;
            };
            node = child;
        }
        let members = match share_group {
            None => &mut node.subs,
            Some(group) => {
                let i = match node.groups.iter().position(|g| g.group == group) {
                    Some(i) => i,
                    None => {
                        node.groups.push(SharedGroup {
                            group: group.to_owned(),
                            filter: filter.to_owned(),
                            members: Vec::new(),
                        });
                        node.groups.len() - 1
                    }
                };
                &mut node.groups[i].members
            }
        };
        match members.iter_mut().find(|(s, _)| *s == subscriber) {
            Some((_, old)) => {
                *old = value;
                false
            }
            None => {
                members.push((subscriber, value));
                self.len += 1;
                true
            }
        }
    }

    /// Removes it; returns the value if it existed. Prunes empty nodes.
    pub fn unsubscribe(
        &mut self,
        filter: &str,
        share_group: Option<&str>,
        subscriber: K,
    ) -> Option<V> {
        // Pass 1 (shared): find the subscription and the deepest node that must stay
        // after its removal; everything below that node on the path gets cut off.
        let mut keep_depth = 0;
        let mut depth = 0;
        let mut node = &self.root;
        for level in filter.split('/') {
            if depth > 0
                && (!node.subs.is_empty() || !node.groups.is_empty() || node.child_count() > 1)
            {
                keep_depth = depth;
            }
            node = node.child(level)?;
            depth += 1;
        }
        let leaf_keeps = node.child_count() > 0
            || match share_group {
                None => {
                    node.subs.iter().position(|(s, _)| *s == subscriber)?;
                    node.subs.len() > 1 || !node.groups.is_empty()
                }
                Some(group) => {
                    let g = node.groups.iter().find(|g| g.group == group)?;
                    g.members.iter().position(|(s, _)| *s == subscriber)?;
                    !node.subs.is_empty() || node.groups.len() > 1 || g.members.len() > 1
                }
            };
        if leaf_keeps {
            keep_depth = depth;
        }

        // Pass 2 (exclusive): walk to the kept node, cut the dead branch off, then
        // take the value out of the leaf (now possibly inside the detached branch).
        let mut levels = filter.split('/');
        let mut node = &mut self.root;
        for level in levels.by_ref().take(keep_depth) {
            node = node.child_mut(level)?;
        }
        let mut detached = match levels.next() {
            Some(level) if keep_depth < depth => Some(node.remove_child(level)?),
            _ => None,
        };
        if let Some(branch) = detached.as_mut() {
            node = branch;
            for level in levels {
                node = node.child_mut(level)?;
            }
        }
        let value = match share_group {
            None => {
                let i = node.subs.iter().position(|(s, _)| *s == subscriber)?;
                node.subs.swap_remove(i).1
            }
            Some(group) => {
                let gi = node.groups.iter().position(|g| g.group == group)?;
                let members = &mut node.groups[gi].members;
                let i = members.iter().position(|(s, _)| *s == subscriber)?;
                let (_, value) = members.remove(i);
                if members.is_empty() {
                    node.groups.remove(gi);
                }
                value
            }
        };
        self.len -= 1;
        Some(value)
    }

    /// Calls `on_sub` for each plain subscription matching `topic`, and `on_group` once for
    /// each shared group matching it. `$`-topics are not matched by filters whose first
    /// level is `+` or `#`.
    pub fn for_each_match(
        &self,
        topic: &str,
        mut on_sub: impl FnMut(K, &V),
        mut on_group: impl FnMut(&SharedGroup<V, K>),
    ) {
        // Literal children are followed in a loop; only `+` branches go on the stack,
        // so the stack (and its allocation) is only used when there are `+` filters.
        let mut stack: Vec<(&Node<V, K>, Option<&str>)> = Vec::new();
        let mut current = Some((&self.root, Some(topic)));
        // At the root, wildcards do not match `$`-topics.
        let mut wildcards = !topic.starts_with('$');
        while let Some((node, rest)) = current.take().or_else(|| stack.pop()) {
            if wildcards {
                if let Some(hash) = node.hash.as_deref() {
                    hash.emit(&mut on_sub, &mut on_group);
                }
            }
            match rest {
                None => node.emit(&mut on_sub, &mut on_group),
                Some(rest) => {
                    let (level, next) = split_level(rest);
                    if wildcards {
                        if let Some(plus) = node.plus.as_deref() {
                            stack.push((plus, next));
                        }
                    }
                    current = node.children.get(level).map(|child| (child, next));
                }
            }
            wildcards = true;
        }
    }

    /// Calls `f(filter, group, subscriber, value)` for every subscription, plain
    /// (`group` is `None`) and shared, in no particular order.
    pub fn for_each_subscription(&self, mut f: impl FnMut(&str, Option<&str>, K, &V)) {
        let mut filter = String::new();
        // (node, depth, length of the parent's filter, level leading to the node)
        let mut stack: Vec<(&Node<V, K>, usize, usize, &str)> = vec![(&self.root, 0, 0, "")];
        while let Some((node, depth, parent_len, level)) = stack.pop() {
            filter.truncate(parent_len);
            if depth > 1 {
                filter.push('/');
            }
            filter.push_str(level);
            if depth > 0 {
                for (sub, value) in &node.subs {
                    f(&filter, None, *sub, value);
                }
                for group in &node.groups {
                    for (sub, value) in &group.members {
                        f(&filter, Some(&group.group), *sub, value);
                    }
                }
            }
            let len = filter.len();
            stack.extend(node.children.iter().map(|(l, n)| (n, depth + 1, len, &**l)));
            stack.extend(node.plus.as_deref().map(|n| (n, depth + 1, len, "+")));
            stack.extend(node.hash.as_deref().map(|n| (n, depth + 1, len, "#")));
        }
    }

    /// Number of subscriptions (plain plus shared members).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::reference::{all_filters, all_topics, naive_matches, Rng};
    use std::collections::BTreeMap;

    /// Matching filters of plain subscriptions (value = filter) and of groups, sorted.
    fn matched(trie: &TopicTrie<String>, topic: &str) -> (Vec<String>, Vec<String>) {
        let mut subs = Vec::new();
        let mut groups = Vec::new();
        trie.for_each_match(
            topic,
            |_, v| subs.push(v.clone()),
            |g| groups.push(format!("{}:{}", g.group, g.filter)),
        );
        subs.sort();
        groups.sort();
        (subs, groups)
    }

    #[test]
    fn matching_table() {
        let filters = [
            "a", "a/b", "a/+", "a/#", "+", "+/+", "+/#", "#", "/", "/#", "/+", "a//b", "a/+/b",
            "$SYS/#", "$SYS/+", "+/b", "a/b/c", "$x", "a/$x",
        ];
        let mut trie = TopicTrie::new();
        for (i, f) in filters.iter().enumerate() {
            assert!(trie.subscribe(f, None, i, f.to_string()));
        }
        let cases: &[(&str, &[&str])] = &[
            ("a", &["a", "a/#", "+", "+/#", "#"]),
            ("a/b", &["a/b", "a/+", "a/#", "+/+", "+/#", "#", "+/b"]),
            ("a/", &["a/+", "a/#", "+/+", "+/#", "#"]),
            ("a//b", &["a//b", "a/+/b", "a/#", "+/#", "#"]),
            ("a/b/c", &["a/b/c", "a/#", "+/#", "#"]),
            ("/", &["/", "/#", "/+", "+/+", "+/#", "#"]),
            ("/b", &["/#", "/+", "+/+", "+/#", "#", "+/b"]),
            ("b", &["+", "+/#", "#"]),
            ("a/$x", &["a/$x", "a/+", "a/#", "+/+", "+/#", "#"]),
            ("$SYS", &["$SYS/#"]),
            ("$SYS/x", &["$SYS/#", "$SYS/+"]),
            ("$SYS/x/y", &["$SYS/#"]),
            ("$x", &["$x"]),
            ("$x/b", &[]),
            ("x/y/z/w", &["+/#", "#"]),
        ];
        for (topic, expected) in cases {
            let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            expected.sort();
            assert_eq!(matched(&trie, topic).0, expected, "topic {topic:?}");
            for f in &expected {
                assert!(naive_matches(f, topic), "{f:?} {topic:?}");
            }
        }
        assert_eq!(trie.len(), filters.len());
    }

    #[test]
    fn subscriber_keys_and_overlaps() {
        let mut trie = TopicTrie::new();
        assert!(trie.subscribe("a/+", None, 1, 10));
        assert!(trie.subscribe("a/#", None, 1, 11));
        assert!(trie.subscribe("a/b", None, 2, 20));
        assert!(trie.subscribe("a/b", None, 3, 30));
        let mut got = Vec::new();
        trie.for_each_match("a/b", |s, v| got.push((s, *v)), |_| panic!("no groups"));
        got.sort();
        assert_eq!(got, [(1, 10), (1, 11), (2, 20), (3, 30)]);
        assert_eq!(trie.len(), 4);
    }

    #[test]
    fn replace_and_unsubscribe() {
        let mut trie = TopicTrie::new();
        assert!(trie.is_empty());
        assert!(trie.subscribe("a/b", None, 1, 1));
        assert!(
            !trie.subscribe("a/b", None, 1, 2),
            "same subscriber+filter replaces"
        );
        assert_eq!(trie.len(), 1);
        let mut got = Vec::new();
        trie.for_each_match("a/b", |s, v| got.push((s, *v)), |_| {});
        assert_eq!(got, [(1, 2)]);
        // Shared and plain subscriptions on the same filter are distinct.
        assert!(trie.subscribe("a/b", Some("g"), 1, 3));
        assert!(!trie.subscribe("a/b", Some("g"), 1, 4));
        assert!(trie.subscribe("a/b", Some("h"), 1, 5));
        assert_eq!(trie.len(), 3);

        assert_eq!(trie.unsubscribe("a/b", None, 2), None);
        assert_eq!(trie.unsubscribe("a/c", None, 1), None);
        assert_eq!(trie.unsubscribe("a/b", Some("x"), 1), None);
        assert_eq!(trie.unsubscribe("a/b", Some("g"), 2), None);
        assert_eq!(trie.unsubscribe("a", None, 1), None);
        assert_eq!(trie.unsubscribe("a/b/c", None, 1), None);
        assert_eq!(trie.len(), 3);

        assert_eq!(trie.unsubscribe("a/b", None, 1), Some(2));
        assert_eq!(trie.unsubscribe("a/b", None, 1), None);
        assert_eq!(trie.unsubscribe("a/b", Some("g"), 1), Some(4));
        assert_eq!(trie.len(), 1);
        let mut groups = Vec::new();
        trie.for_each_match(
            "a/b",
            |_, _| panic!("no plain subs"),
            |g| groups.push(g.group.clone()),
        );
        assert_eq!(groups, ["h"]);
        assert_eq!(trie.unsubscribe("a/b", Some("h"), 1), Some(5));
        assert!(trie.is_empty());
        assert!(trie.root.child_count() == 0, "pruned back to the root");
    }

    #[test]
    fn pruning_keeps_needed_nodes() {
        let mut trie = TopicTrie::new();
        trie.subscribe("a", None, 1, ());
        trie.subscribe("a/b/c/d", None, 1, ());
        trie.subscribe("a/b/x", None, 1, ());
        trie.subscribe("a/+/#", None, 1, ());
        assert_eq!(trie.unsubscribe("a/b/c/d", None, 1), Some(()));
        // "a/b" stays (it leads to "a/b/x"), "a/b/c" is gone.
        let a = trie
            .root
            .child("a")
            .map(|a| (a.child_count(), a.child("b").map(Node::child_count)));
        assert_eq!(a, Some((2, Some(1))));
        assert!(trie
            .root
            .child("a")
            .and_then(|a| a.child("b"))
            .and_then(|b| b.child("c"))
            .is_none());
        assert_eq!(trie.unsubscribe("a/+/#", None, 1), Some(()));
        assert!(trie.root.child("a").and_then(|a| a.child("+")).is_none());
        assert_eq!(trie.unsubscribe("a/b/x", None, 1), Some(()));
        assert_eq!(trie.root.child("a").map(Node::child_count), Some(0));
        // A node with subscribers of its own is not pruned.
        assert_eq!(trie.len(), 1);
        assert_eq!(trie.unsubscribe("a", None, 1), Some(()));
        assert_eq!(trie.root.child_count(), 0);
        // An inner node emptied while it still has children stays.
        trie.subscribe("x", None, 1, ());
        trie.subscribe("x/y", None, 1, ());
        assert_eq!(trie.unsubscribe("x", None, 1), Some(()));
        assert_eq!(trie.root.child("x").map(Node::child_count), Some(1));
        let mut hits = 0;
        trie.for_each_match("x/y", |_, _| hits += 1, |_| {});
        assert_eq!(hits, 1);
    }

    #[test]
    fn shared_groups() {
        let mut trie = TopicTrie::new();
        trie.subscribe("a/+", Some("g1"), 1, "1");
        trie.subscribe("a/+", Some("g1"), 2, "2");
        trie.subscribe("a/+", Some("g1"), 3, "3");
        trie.subscribe("a/+", Some("g2"), 1, "1");
        trie.subscribe("a/#", Some("g1"), 4, "4");
        trie.subscribe("#", Some("g3"), 5, "5");
        trie.subscribe("a/b", None, 6, "6");
        assert_eq!(trie.len(), 7);
        let mut groups = Vec::new();
        let mut plain = Vec::new();
        trie.for_each_match(
            "a/b",
            |s, _| plain.push(s),
            |g| {
                let members: Vec<usize> = g.members.iter().map(|(s, _)| *s).collect();
                groups.push((g.group.clone(), g.filter.clone(), members));
            },
        );
        groups.sort();
        assert_eq!(plain, [6]);
        let expected = [
            ("g1", "a/#", vec![4]),
            ("g1", "a/+", vec![1, 2, 3]),
            ("g2", "a/+", vec![1]),
            ("g3", "#", vec![5]),
        ]
        .map(|(g, f, m)| (g.to_owned(), f.to_owned(), m));
        assert_eq!(groups, expected);
        // Members keep subscription order after a removal and a replacement.
        assert_eq!(trie.unsubscribe("a/+", Some("g1"), 2), Some("2"));
        assert!(!trie.subscribe("a/+", Some("g1"), 1, "1b"));
        let mut members = Vec::new();
        trie.for_each_match(
            "a/x",
            |_, _| {},
            |g| {
                if g.group == "g1" && g.filter == "a/+" {
                    members.clone_from(&g.members);
                }
            },
        );
        assert_eq!(members, [(1, "1b"), (3, "3")]);
        // `$` topics: not matched by the `#` group.
        let n = std::cell::Cell::new(0);
        trie.for_each_match("$SYS/a", |_, _| n.set(n.get() + 1), |_| n.set(n.get() + 1));
        assert_eq!(n.get(), 0);
    }

    #[test]
    fn for_each_subscription_lists_everything() {
        let mut trie = TopicTrie::new();
        let subs: &[(&str, Option<&str>, usize)] = &[
            ("a/b", None, 1),
            ("a/b", None, 2),
            ("a/b", Some("g"), 1),
            ("a", None, 3),
            ("+/#", None, 1),
            ("#", Some("h"), 2),
            ("/", None, 4),
            ("//", None, 4),
            ("/a/", None, 4),
            ("a//+", Some("g"), 5),
            ("$SYS/+", None, 6),
        ];
        for (i, (f, g, s)) in subs.iter().enumerate() {
            trie.subscribe(f, *g, *s, i);
        }
        let mut got = Vec::new();
        trie.for_each_subscription(|f, g, s, v| {
            got.push((*v, f.to_owned(), g.map(str::to_owned), s))
        });
        got.sort();
        let expected: Vec<_> = subs
            .iter()
            .enumerate()
            .map(|(i, (f, g, s))| (i, f.to_string(), g.map(str::to_owned), *s))
            .collect();
        assert_eq!(got, expected);
    }

    /// Plain: (filter, subscriber) → value; shared: (filter, group) → members in order.
    #[derive(Default)]
    struct Model {
        plain: BTreeMap<(String, usize), u32>,
        shared: BTreeMap<(String, String), Vec<(usize, u32)>>,
    }

    fn check_against_model(trie: &TopicTrie<u32>, model: &Model, topics: &[String]) {
        let len = model.plain.len() + model.shared.values().map(Vec::len).sum::<usize>();
        assert_eq!(trie.len(), len);
        for topic in topics {
            let mut plain = Vec::new();
            let mut groups = Vec::new();
            trie.for_each_match(
                topic,
                |s, v| plain.push((s, *v)),
                |g| groups.push((g.filter.clone(), g.group.clone(), g.members.clone())),
            );
            plain.sort();
            groups.sort();
            let mut want_plain: Vec<(usize, u32)> = model
                .plain
                .iter()
                .filter(|((f, _), _)| naive_matches(f, topic))
                .map(|((_, s), v)| (*s, *v))
                .collect();
            want_plain.sort();
            let want_groups: Vec<_> = model
                .shared
                .iter()
                .filter(|((f, _), _)| naive_matches(f, topic))
                .map(|((f, g), m)| (f.clone(), g.clone(), m.clone()))
                .collect();
            assert_eq!(plain, want_plain, "plain, topic {topic:?}");
            assert_eq!(groups, want_groups, "groups, topic {topic:?}");
        }
        let mut listed_plain = BTreeMap::new();
        let mut listed_shared: BTreeMap<(String, String), Vec<(usize, u32)>> = BTreeMap::new();
        trie.for_each_subscription(|f, g, s, v| match g {
            None => assert!(listed_plain.insert((f.to_owned(), s), *v).is_none()),
            Some(g) => listed_shared
                .entry((f.to_owned(), g.to_owned()))
                .or_default()
                .push((s, *v)),
        });
        assert_eq!(listed_plain, model.plain);
        assert_eq!(listed_shared, model.shared);
    }

    #[test]
    fn randomised_against_naive_reference() {
        let topics = all_topics();
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let mut trie = TopicTrie::new();
            let mut model = Model::default();
            let mut value = 0;
            let mut filters: Vec<String> = (0..12).map(|_| rng.filter()).collect();
            for step in 0..200 {
                if rng.below(8) == 0 {
                    filters[rng.below(12)] = rng.filter();
                }
                let filter = filters[rng.below(filters.len())].clone();
                let sub = rng.below(4);
                let group = [None, Some("g1"), Some("g2")][rng.below(3)];
                value += 1;
                if rng.below(3) == 0 {
                    let got = trie.unsubscribe(&filter, group, sub);
                    let want = match group {
                        None => model.plain.remove(&(filter.clone(), sub)),
                        Some(g) => {
                            let key = (filter.clone(), g.to_owned());
                            let members = model.shared.entry(key.clone()).or_default();
                            let i = members.iter().position(|(s, _)| *s == sub);
                            let v = i.map(|i| members.remove(i).1);
                            if members.is_empty() {
                                model.shared.remove(&key);
                            }
                            v
                        }
                    };
                    assert_eq!(got, want);
                } else {
                    let new = trie.subscribe(&filter, group, sub, value);
                    let was_new = match group {
                        None => model.plain.insert((filter.clone(), sub), value).is_none(),
                        Some(g) => {
                            let members = model
                                .shared
                                .entry((filter.clone(), g.to_owned()))
                                .or_default();
                            match members.iter_mut().find(|(s, _)| *s == sub) {
                                Some((_, v)) => {
                                    *v = value;
                                    false
                                }
                                None => {
                                    members.push((sub, value));
                                    true
                                }
                            }
                        }
                    };
                    assert_eq!(new, was_new);
                }
                if step % 50 == 49 {
                    check_against_model(&trie, &model, &topics);
                }
            }
            // Remove everything: the trie must prune back to an empty root.
            for (filter, sub) in model.plain.keys() {
                assert!(trie.unsubscribe(filter, None, *sub).is_some());
            }
            for ((filter, group), members) in &model.shared {
                for (sub, _) in members {
                    assert!(trie.unsubscribe(filter, Some(group), *sub).is_some());
                }
            }
            assert!(trie.is_empty());
            assert_eq!(trie.root.child_count(), 0);
        }
    }

    #[test]
    fn exhaustive_against_naive_reference() {
        let filters = all_filters();
        let mut trie = TopicTrie::new();
        for (i, f) in filters.iter().enumerate() {
            trie.subscribe(f, None, i, ());
        }
        assert_eq!(trie.len(), filters.len());
        for topic in all_topics() {
            let mut got = Vec::new();
            trie.for_each_match(&topic, |s, _| got.push(s), |_| {});
            got.sort();
            let want: Vec<usize> = (0..filters.len())
                .filter(|&i| naive_matches(&filters[i], &topic))
                .collect();
            assert_eq!(got, want, "topic {topic:?}");
        }
    }

    #[test]
    fn deep_filters_do_not_overflow() {
        let deep = vec!["a"; 200_000].join("/");
        let mut trie = TopicTrie::new();
        assert!(trie.subscribe(&deep, None, 1, ()));
        assert!(trie.subscribe(&deep.replace("a/a/a", "a/+/a"), None, 2, ()));
        let mut hits = Vec::new();
        trie.for_each_match(&deep, |s, _| hits.push(s), |_| {});
        hits.sort();
        assert_eq!(hits, [1, 2]);
        let mut n = 0;
        trie.for_each_subscription(|_, _, _, _| n += 1);
        assert_eq!(n, 2);
        assert_eq!(trie.unsubscribe(&deep, None, 1), Some(()));
        drop(trie);
    }
}
