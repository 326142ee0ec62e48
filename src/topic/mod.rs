//! Topic names and filters: validation, the subscription trie, the retained-message tree.
//! Pure data: no ACLs, no queueing, no QoS policy (those live in `broker/`).

pub mod filter;
pub mod retained;
pub mod trie;

pub use filter::{matches, parse_shared, valid_filter, valid_topic_name, SharedFilter};
pub use retained::RetainedTree;
pub use trie::{SharedGroup, TopicTrie};

/// Test helpers shared by the submodules: an independent naive matcher and a tiny PRNG.
#[cfg(test)]
pub(crate) mod reference {
    /// Levels random topics are made of.
    pub const TOPIC_LEVELS: [&str; 4] = ["a", "b", "", "$x"];

    /// Naive reference: does `filter` match `topic`? Written independently of
    /// `filter::matches` (compares level vectors instead of walking iterators).
    pub fn naive_matches(filter: &str, topic: &str) -> bool {
        let f: Vec<&str> = filter.split('/').collect();
        let t: Vec<&str> = topic.split('/').collect();
        if topic.starts_with('$') && (f[0] == "+" || f[0] == "#") {
            return false;
        }
        let level_ok = |(a, b): (&&str, &&str)| *a == "+" || a == b;
        match f.split_last() {
            Some((&"#", prefix)) => t.len() >= prefix.len() && prefix.iter().zip(&t).all(level_ok),
            _ => f.len() == t.len() && f.iter().zip(&t).all(level_ok),
        }
    }

    /// Every topic of 1..=4 levels over [`TOPIC_LEVELS`] (except the invalid `""`).
    pub fn all_topics() -> Vec<String> {
        let mut topics = all_paths(&TOPIC_LEVELS, 4);
        topics.retain(|t| !t.is_empty());
        topics
    }

    /// Every valid filter of 1..=4 levels over [`TOPIC_LEVELS`], `+` and a final `#`.
    pub fn all_filters() -> Vec<String> {
        let mut levels = TOPIC_LEVELS.to_vec();
        levels.push("+");
        let plain = all_paths(&levels, 4);
        let mut filters: Vec<String> = plain.iter().filter(|p| !p.is_empty()).cloned().collect();
        filters.push("#".to_owned());
        filters.extend(
            plain
                .iter()
                .filter(|p| p.split('/').count() < 4)
                .map(|p| format!("{p}/#")),
        );
        filters
    }

    fn all_paths(levels: &[&str], max: usize) -> Vec<String> {
        let mut out: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..max {
            last = last
                .iter()
                .flat_map(|p| levels.iter().map(move |l| format!("{p}/{l}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    /// xorshift64*: deterministic, dependency-free randomness for tests.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }

        /// A random valid topic name (never `""`).
        pub fn topic(&mut self) -> String {
            loop {
                let n = 1 + self.below(4);
                let topic = (0..n)
                    .map(|_| TOPIC_LEVELS[self.below(TOPIC_LEVELS.len())])
                    .collect::<Vec<_>>()
                    .join("/");
                if !topic.is_empty() {
                    return topic;
                }
            }
        }

        /// A random valid filter: levels over the topic alphabet plus `+`, maybe ending in `#`.
        pub fn filter(&mut self) -> String {
            loop {
                let n = 1 + self.below(4);
                let mut levels = Vec::new();
                for _ in 0..n {
                    match self.below(6) {
                        4 => levels.push("+"),
                        5 => {
                            levels.push("#");
                            break;
                        }
                        i => levels.push(TOPIC_LEVELS[i]),
                    }
                }
                let filter = levels.join("/");
                if !filter.is_empty() {
                    return filter;
                }
            }
        }
    }

    #[test]
    fn enumerations_are_valid() {
        let topics = all_topics();
        assert_eq!(topics.len(), 4 + 16 + 64 + 256 - 1);
        assert!(topics.iter().all(|t| super::valid_topic_name(t, 4)));
        let filters = all_filters();
        assert_eq!(filters.len(), (5 + 25 + 125 + 625 - 1) + (1 + 5 + 25 + 125));
        assert!(filters.iter().all(|f| super::valid_filter(f, 4)));
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            assert!(super::valid_topic_name(&rng.topic(), 4));
            assert!(super::valid_filter(&rng.filter(), 4));
        }
    }

    #[test]
    fn naive_reference_sanity() {
        assert!(naive_matches("a/#", "a"));
        assert!(naive_matches("+", ""));
        assert!(naive_matches("$x/#", "$x"));
        assert!(!naive_matches("#", "$x"));
        assert!(!naive_matches("+/a", "$x/a"));
        assert!(!naive_matches("a/+", "a"));
    }
}
