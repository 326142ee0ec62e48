//! Validation of topic names and filters, and parsing of `$share/{group}/{filter}`.
//!
//! Rules (MQTT 5.0 section 4.7): levels are separated by `/` and may be empty
//! (`a//b`, `/a` and `a/` are all valid). In a filter, `+` must be alone in its level
//! and `#` must be alone in the last level. Neither may appear in a topic name.
//! Nothing may contain U+0000 or be empty.

/// `$share/{group}/{filter}` split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// Whether `s` has at most `max_levels` levels (0 = no limit).
fn levels_within(s: &str, max_levels: usize) -> bool {
    // A string with `n` slashes has `n + 1` levels.
    max_levels == 0 || s.bytes().filter(|&b| b == b'/').count() < max_levels
}

/// A topic name a client may publish to: non-empty, no `+` or `#`, no U+0000,
/// at most `max_levels` levels (0 = no limit).
pub fn valid_topic_name(topic: &str, max_levels: usize) -> bool {
    !topic.is_empty()
        && !topic.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
        && levels_within(topic, max_levels)
}

/// A filter a client may subscribe to: non-empty, `#` only last and alone in its level,
/// `+` alone in its level, no U+0000, at most `max_levels` levels (0 = no limit).
pub fn valid_filter(filter: &str, max_levels: usize) -> bool {
    if filter.is_empty() || filter.contains('\0') || !levels_within(filter, max_levels) {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// `Some(Ok(..))` for a well-formed shared filter, `Some(Err(()))` for a malformed one
/// (`$share/` with an empty group, a group containing `+`/`#`, or no filter part),
/// `None` when `filter` is not a shared subscription at all.
///
/// Only splits: the filter part is returned as is and must still be checked with
/// [`valid_filter`]. A group containing U+0000 is malformed too.
pub fn parse_shared(filter: &str) -> Option<Result<SharedFilter<'_>, ()>> {
    if filter == "$share" {
        return Some(Err(()));
    }
    let rest = filter.strip_prefix("$share/")?;
    let parsed = match rest.split_once('/') {
        Some((group, filter))
            if !group.is_empty()
                && !filter.is_empty()
                && !group.bytes().any(|b| matches!(b, b'+' | b'#' | 0)) =>
        {
            Ok(SharedFilter { group, filter })
        }
        _ => Err(()),
    };
    Some(parsed)
}

/// Whether the (valid, non-shared) `filter` matches the topic name `topic`, including
/// the rule that filters starting with a `+` or `#` level do not match `$`-topics.
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    if topic.starts_with('$') && matches!(filter.split('/').next(), Some("+" | "#")) {
        return false;
    }
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        let cases: &[(&str, usize, bool)] = &[
            ("a", 0, true),
            ("a/b/c", 0, true),
            ("/", 0, true),
            ("/a", 0, true),
            ("a/", 0, true),
            ("a//b", 0, true),
            ("$SYS/x", 0, true),
            ("a b/ü/€", 0, true),
            ("", 0, false),
            ("+", 0, false),
            ("a/+", 0, false),
            ("#", 0, false),
            ("a/#", 0, false),
            ("a+b", 0, false),
            ("a#", 0, false),
            ("a\0b", 0, false),
            ("a/b/c", 3, true),
            ("a/b/c", 2, false),
            ("a", 1, true),
            ("/", 1, false),
            ("/", 2, true),
            ("a//", 3, true),
            ("a//", 2, false),
        ];
        for &(topic, max, ok) in cases {
            assert_eq!(valid_topic_name(topic, max), ok, "{topic:?} max {max}");
        }
    }

    #[test]
    fn filters() {
        let cases: &[(&str, usize, bool)] = &[
            ("a", 0, true),
            ("a/b", 0, true),
            ("#", 0, true),
            ("+", 0, true),
            ("a/#", 0, true),
            ("a/+", 0, true),
            ("+/+", 0, true),
            ("+/#", 0, true),
            ("a/+/b/#", 0, true),
            ("/", 0, true),
            ("/#", 0, true),
            ("//+", 0, true),
            ("a//b", 0, true),
            ("$SYS/#", 0, true),
            ("$share/g/a", 0, true),
            ("", 0, false),
            ("#/a", 0, false),
            ("a/#/b", 0, false),
            ("a#", 0, false),
            ("a/b#", 0, false),
            ("#a", 0, false),
            ("a/#/", 0, false),
            ("##", 0, false),
            ("a+", 0, false),
            ("+a", 0, false),
            ("a/+b/c", 0, false),
            ("++", 0, false),
            ("+#", 0, false),
            ("a\0", 0, false),
            ("a/b/#", 3, true),
            ("a/b/#", 2, false),
            ("+/+", 2, true),
            ("+/+", 1, false),
        ];
        for &(filter, max, ok) in cases {
            assert_eq!(valid_filter(filter, max), ok, "{filter:?} max {max}");
        }
    }

    #[test]
    fn shared() {
        let ok = |group, filter| Some(Ok(SharedFilter { group, filter }));
        let cases: &[(&str, Option<Result<SharedFilter<'_>, ()>>)] = &[
            ("$share/g/a", ok("g", "a")),
            ("$share/g/a/b/#", ok("g", "a/b/#")),
            ("$share/group1/+", ok("group1", "+")),
            ("$share/g//", ok("g", "/")),
            ("$share/g/$SYS/x", ok("g", "$SYS/x")),
            // Only splits: the filter part is not validated here.
            ("$share/g/#/a", ok("g", "#/a")),
            ("$share", Some(Err(()))),
            ("$share/", Some(Err(()))),
            ("$share/g", Some(Err(()))),
            ("$share/g/", Some(Err(()))),
            ("$share//a", Some(Err(()))),
            ("$share/+/a", Some(Err(()))),
            ("$share/#/a", Some(Err(()))),
            ("$share/g+/a", Some(Err(()))),
            ("$share/g#/a", Some(Err(()))),
            ("$share/g\0/a", Some(Err(()))),
            ("$sharex/g/a", None),
            ("$sharex", None),
            ("$shar", None),
            ("share/g/a", None),
            ("a/$share/g/a", None),
            ("$SHARE/g/a", None),
            ("#", None),
        ];
        for (filter, expected) in cases {
            assert_eq!(&parse_shared(filter), expected, "{filter:?}");
        }
    }

    #[test]
    fn single_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("a", "a", true),
            ("a", "b", false),
            ("a", "a/b", false),
            ("a/b", "a", false),
            ("a/b", "a/b", true),
            ("+", "a", true),
            ("+", "", true),
            ("+", "a/b", false),
            ("+", "/", false),
            ("+/+", "/", true),
            ("a/+", "a/", true),
            ("a/+", "a", false),
            ("a/+/c", "a//c", true),
            ("#", "a", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("#", "$SYS", false),
            ("#", "$SYS/x", false),
            ("+", "$SYS", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/#", "$SYS", true),
            ("$SYS/+", "$SYS/x", true),
            ("a/$x", "a/$x", true),
            ("a/+", "a/$x", true),
            ("a/#", "a/$x", true),
            ("a/#", "a", true),
            ("a/#", "a/", true),
            ("a/#", "a/b/c", true),
            ("a/#", "ab", false),
            ("a/#", "b/a", false),
            ("/#", "/", true),
            ("/#", "/a", true),
            ("/#", "a", false),
            ("+/#", "a", true),
            ("+/#", "a/b", true),
            ("a//b", "a//b", true),
            ("a//b", "a/b", false),
        ];
        for &(filter, topic, ok) in cases {
            assert_eq!(matches(filter, topic), ok, "{filter:?} vs {topic:?}");
        }
    }

    #[test]
    fn exhaustive_against_naive_reference() {
        use crate::topic::reference::{all_filters, all_topics, naive_matches};
        let topics = all_topics();
        for filter in all_filters() {
            for topic in &topics {
                assert_eq!(
                    matches(&filter, topic),
                    naive_matches(&filter, topic),
                    "{filter:?} vs {topic:?}"
                );
            }
        }
    }
}
