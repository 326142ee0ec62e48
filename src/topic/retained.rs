//! Retained messages, stored by topic level and looked up by filter (the reverse of the trie).
//!
//! Each node is one topic level; a node holding a value also holds the full topic name,
//! so matching never rebuilds it. Lookups honour `+` (one level, possibly empty), `#`
//! (the parent level and everything below) and the `$` rule (a first filter level of
//! `+` or `#` does not match topics starting with `$`). All walks are iterative and
//! dropping the tree does not recurse, so deep topics cannot overflow the stack.

use std::collections::HashMap;

struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    /// (full topic name, value)
    value: Option<(Box<str>, V)>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            value: None,
        }
    }
}

impl<V> Drop for Node<V> {
    /// Tears the subtree down with an explicit stack instead of recursion.
    fn drop(&mut self) {
        let mut stack: Vec<Node<V>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

impl<V> Node<V> {
    fn emit(&self, f: &mut impl FnMut(&str, &V)) {
        if let Some((topic, value)) = &self.value {
            f(topic, value);
        }
    }
}

/// What is left to do at a node during [`RetainedTree::for_each_match`].
enum Step<'a> {
    /// Match the rest of the filter (`None`: the filter is used up).
    Filter(Option<&'a str>),
    /// Below a `#`: everything matches.
    All,
}

/// Retained values keyed by topic name.
pub struct RetainedTree<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> RetainedTree<V> {
    pub fn new() -> Self {
        RetainedTree {
            root: Node::default(),
            len: 0,
        }
    }

    /// Stores `value` for `topic`, returning the previous one.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in topic.split('/') {
            if !node.children.contains_key(level) {
                node.children.insert(level.into(), Node::default());
            }
            // Always `Some` (just ensured); checked twice so that existing levels do not
            // allocate a key.
            node = node.children.get_mut(level)?;
        }
        match &mut node.value {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            empty @ None => {
                *empty = Some((topic.into(), value));
                self.len += 1;
                None
            }
        }
    }

    /// Removes the value for `topic`. Prunes empty nodes.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        // Pass 1 (shared): find the value and the deepest node that must stay after its
        // removal; the branch below it on the path is cut off.
        let mut keep_depth = 0;
        let mut depth = 0;
        let mut node = &self.root;
        for level in topic.split('/') {
            if depth > 0 && (node.value.is_some() || node.children.len() > 1) {
                keep_depth = depth;
            }
            node = node.children.get(level)?;
            depth += 1;
        }
        node.value.as_ref()?;
        if !node.children.is_empty() {
            keep_depth = depth;
        }

        // Pass 2 (exclusive): walk to the kept node, detach the dead branch, take the value.
        let mut levels = topic.split('/');
        let mut node = &mut self.root;
        for level in levels.by_ref().take(keep_depth) {
            node = node.children.get_mut(level)?;
        }
        let mut detached = match levels.next() {
            Some(level) if keep_depth < depth => Some(node.children.remove(level)?),
            _ => None,
        };
        if let Some(branch) = detached.as_mut() {
            node = branch;
            for level in levels {
                node = node.children.get_mut(level)?;
            }
        }
        let (_, value) = node.value.take()?;
        self.len -= 1;
        Some(value)
    }

    pub fn get(&self, topic: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.value.as_ref().map(|(_, v)| v)
    }

    /// Calls `f` for each retained (topic, value) matching `filter` (`+`, `#`, `$`-rule).
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&str, &V)) {
        let mut stack: Vec<(&Node<V>, Step<'_>)> = Vec::new();
        let mut current = Some((&self.root, Step::Filter(Some(filter))));
        // At the root, wildcards skip `$` levels.
        let mut at_root = true;
        while let Some((node, step)) = current.take().or_else(|| stack.pop()) {
            let visible = |level: &str| !(at_root && level.starts_with('$'));
            match step {
                Step::All => {
                    node.emit(&mut f);
                    stack.extend(node.children.values().map(|c| (c, Step::All)));
                }
                Step::Filter(None) => node.emit(&mut f),
                Step::Filter(Some(rest)) => match rest.split_once('/') {
                    // `#` (treated as last even if it is not): the parent and everything below.
                    _ if rest == "#" || rest.starts_with("#/") => {
                        node.emit(&mut f);
                        stack.extend(
                            node.children
                                .iter()
                                .filter(|(l, _)| visible(l))
                                .map(|(_, c)| (c, Step::All)),
                        );
                    }
                    split => {
                        let (level, next) = match split {
                            Some((level, next)) => (level, Some(next)),
                            None => (rest, None),
                        };
                        if level == "+" {
                            stack.extend(
                                node.children
                                    .iter()
                                    .filter(|(l, _)| visible(l))
                                    .map(|(_, c)| (c, Step::Filter(next))),
                            );
                        } else {
                            current = node.children.get(level).map(|c| (c, Step::Filter(next)));
                        }
                    }
                },
            }
            at_root = false;
        }
    }

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

    fn matched<V: Clone + Ord>(tree: &RetainedTree<V>, filter: &str) -> Vec<(String, V)> {
        let mut got = Vec::new();
        tree.for_each_match(filter, |t, v| got.push((t.to_owned(), v.clone())));
        got.sort();
        got
    }

    #[test]
    fn matching_table() {
        let topics = [
            "a", "a/b", "a/", "a//b", "a/b/c", "/", "/b", "b", "a/$x", "$SYS", "$SYS/x",
            "$SYS/x/y", "$x", "$x/b", "x/y/z/w",
        ];
        let mut tree = RetainedTree::new();
        for t in topics {
            assert_eq!(tree.insert(t, ()), None);
        }
        assert_eq!(tree.len(), topics.len());
        let cases: &[(&str, &[&str])] = &[
            ("a", &["a"]),
            ("a/b", &["a/b"]),
            ("a/+", &["a/b", "a/", "a/$x"]),
            ("a/#", &["a", "a/b", "a/", "a//b", "a/b/c", "a/$x"]),
            ("+", &["a", "b"]),
            ("+/+", &["a/b", "a/", "/", "/b", "a/$x"]),
            (
                "+/#",
                &[
                    "a", "a/b", "a/", "a//b", "a/b/c", "/", "/b", "b", "a/$x", "x/y/z/w",
                ],
            ),
            (
                "#",
                &[
                    "a", "a/b", "a/", "a//b", "a/b/c", "/", "/b", "b", "a/$x", "x/y/z/w",
                ],
            ),
            ("/", &["/"]),
            ("/#", &["/", "/b"]),
            ("/+", &["/", "/b"]),
            ("a//b", &["a//b"]),
            ("a/+/b", &["a//b"]),
            ("a/+/+", &["a//b", "a/b/c"]),
            ("$SYS/#", &["$SYS", "$SYS/x", "$SYS/x/y"]),
            ("$SYS/+", &["$SYS/x"]),
            ("$x", &["$x"]),
            ("$x/+", &["$x/b"]),
            ("+/b", &["a/b", "/b"]),
            ("c", &[]),
            ("a/b/c/d", &[]),
            ("+/+/+/+/+", &[]),
        ];
        for (filter, expected) in cases {
            let mut expected: Vec<(String, ())> =
                expected.iter().map(|s| (s.to_string(), ())).collect();
            expected.sort();
            assert_eq!(matched(&tree, filter), expected, "filter {filter:?}");
            for (t, _) in &expected {
                assert!(naive_matches(filter, t), "{filter:?} {t:?}");
            }
        }
    }

    #[test]
    fn insert_get_remove_prune() {
        let mut tree = RetainedTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.insert("a/b/c", 1), None);
        assert_eq!(tree.insert("a/b/c", 2), Some(1));
        assert_eq!(tree.insert("a", 3), None);
        assert_eq!(tree.insert("a/b/d", 4), None);
        assert_eq!(tree.insert("a//", 5), None);
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.get("a/b/c"), Some(&2));
        assert_eq!(tree.get("a"), Some(&3));
        assert_eq!(tree.get("a/b"), None);
        assert_eq!(tree.get("a/b/c/d"), None);
        assert_eq!(tree.get("a//"), Some(&5));
        assert_eq!(tree.get("a/"), None);

        assert_eq!(tree.remove("a/b"), None);
        assert_eq!(tree.remove("x"), None);
        assert_eq!(tree.remove("a/b/c/d"), None);
        assert_eq!(tree.len(), 4);

        assert_eq!(tree.remove("a/b/c"), Some(2));
        assert_eq!(tree.remove("a/b/c"), None);
        assert_eq!(tree.get("a/b/d"), Some(&4));
        let a = tree.root.children.get("a").map(|a| a.children.len());
        assert_eq!(a, Some(2), "a/b kept for a/b/d, a/ kept for a//");
        assert_eq!(tree.remove("a/b/d"), Some(4));
        assert!(tree
            .root
            .children
            .get("a")
            .is_some_and(|a| !a.children.contains_key("b")));
        assert_eq!(tree.remove("a"), Some(3));
        assert_eq!(tree.get("a//"), Some(&5), "inner node emptied but kept");
        assert_eq!(tree.remove("a//"), Some(5));
        assert!(tree.is_empty());
        assert!(tree.root.children.is_empty(), "pruned back to the root");
        assert_eq!(matched(&tree, "#"), []);
    }

    #[test]
    fn callback_gets_full_topic() {
        let mut tree = RetainedTree::new();
        tree.insert("sensors/kitchen/temp", 21);
        tree.insert("sensors/hall/temp", 19);
        tree.insert("sensors/hall", 0);
        assert_eq!(
            matched(&tree, "sensors/+/temp"),
            [
                ("sensors/hall/temp".to_owned(), 19),
                ("sensors/kitchen/temp".to_owned(), 21)
            ]
        );
        assert_eq!(matched(&tree, "sensors/hall/#").len(), 2);
    }

    #[test]
    fn randomised_against_naive_reference() {
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let mut tree = RetainedTree::new();
            let mut model: BTreeMap<String, u32> = BTreeMap::new();
            for step in 0..300u32 {
                let topic = rng.topic();
                if rng.below(3) == 0 {
                    assert_eq!(tree.remove(&topic), model.remove(&topic));
                } else {
                    assert_eq!(tree.insert(&topic, step), model.insert(topic.clone(), step));
                }
                assert_eq!(tree.get(&topic), model.get(&topic));
                assert_eq!(tree.len(), model.len());
                if step % 30 == 29 {
                    for _ in 0..30 {
                        let filter = rng.filter();
                        let want: Vec<(String, u32)> = model
                            .iter()
                            .filter(|(t, _)| naive_matches(&filter, t))
                            .map(|(t, v)| (t.clone(), *v))
                            .collect();
                        assert_eq!(matched(&tree, &filter), want, "filter {filter:?}");
                    }
                }
            }
            let topics: Vec<String> = model.keys().cloned().collect();
            for t in topics {
                assert_eq!(tree.remove(&t), model.remove(&t));
            }
            assert!(tree.is_empty());
            assert!(tree.root.children.is_empty());
        }
    }

    #[test]
    fn exhaustive_against_naive_reference() {
        let topics = all_topics();
        let mut tree = RetainedTree::new();
        for (i, t) in topics.iter().enumerate() {
            tree.insert(t, i);
        }
        assert_eq!(tree.len(), topics.len());
        for filter in all_filters() {
            let mut got: Vec<usize> = Vec::new();
            tree.for_each_match(&filter, |t, v| {
                assert_eq!(t, topics[*v]);
                got.push(*v);
            });
            got.sort();
            let want: Vec<usize> = (0..topics.len())
                .filter(|&i| naive_matches(&filter, &topics[i]))
                .collect();
            assert_eq!(got, want, "filter {filter:?}");
        }
    }

    #[test]
    fn deep_topics_do_not_overflow() {
        let deep = vec!["a"; 200_000].join("/");
        let mut tree = RetainedTree::new();
        assert_eq!(tree.insert(&deep, 1), None);
        assert_eq!(tree.insert("a", 2), None);
        assert_eq!(matched(&tree, "#").len(), 2);
        assert_eq!(matched(&tree, &deep.replace("a/a/a", "a/+/a")).len(), 1);
        assert_eq!(tree.get(&deep), Some(&1));
        assert_eq!(tree.remove(&deep), Some(1));
        assert_eq!(tree.insert(&deep, 3), None);
        drop(tree);
    }
}
