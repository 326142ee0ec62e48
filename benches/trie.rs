//! Topic-matching micro-benches: the subscription trie with 10 000 and
//! 100 000 subscriptions, and retained-message lookup by filter.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use outpost::topic::{RetainedTree, TopicTrie};

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Subscriptions shaped like a gateway's: mostly exact device topics, some
/// `+` per site or per metric, a few `#` per site.
fn filters(n: usize) -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let sites = (n / 100).max(10) as u64;
    (0..n)
        .map(|i| {
            let site = rng.below(sites);
            let device = rng.below(1000);
            match i % 20 {
                0 => format!("site/{site}/#"),
                1 | 2 => format!("site/{site}/device/+/temperature"),
                3 => format!("site/+/device/{device}/status"),
                _ => format!("site/{site}/device/{device}/temperature"),
            }
        })
        .collect()
}

fn bench_trie(c: &mut Criterion) {
    let mut g = c.benchmark_group("trie_match");
    for n in [10_000usize, 100_000] {
        let mut trie = TopicTrie::new();
        for (i, f) in filters(n).iter().enumerate() {
            trie.subscribe(f, None, i, 1u8);
        }
        let topics: Vec<String> = {
            let mut rng = Rng(42);
            let sites = (n / 100).max(10) as u64;
            (0..256)
                .map(|_| {
                    let (s, d) = (rng.below(sites), rng.below(1000));
                    format!("site/{s}/device/{d}/temperature")
                })
                .collect()
        };
        let mut k = 0;
        g.bench_with_input(BenchmarkId::new("subscriptions", n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % topics.len();
                let (mut subs, mut groups) = (0usize, 0usize);
                trie.for_each_match(
                    black_box(&topics[k]),
                    |sub, _| subs += sub & 1,
                    |group| groups += group.members.len(),
                );
                black_box(subs + groups)
            })
        });
    }
    g.finish();
}

fn bench_retained(c: &mut Criterion) {
    let mut g = c.benchmark_group("retained_lookup");
    for n in [10_000usize, 100_000] {
        let mut tree = RetainedTree::new();
        let sites = (n / 100) as u64;
        for i in 0..n as u64 {
            tree.insert(&format!("site/{}/device/{}/temperature", i % sites, i), i);
        }
        g.bench_with_input(BenchmarkId::new("exact", n), &n, |b, _| {
            let mut i = 0u64;
            b.iter(|| {
                i = (i + 7919) % n as u64;
                let topic = format!("site/{}/device/{i}/temperature", i % sites);
                let mut found = 0;
                tree.for_each_match(black_box(&topic), |_, v| found += v);
                black_box(found)
            })
        });
        // One site's devices: about 100 matches.
        g.bench_with_input(BenchmarkId::new("site_wildcard", n), &n, |b, _| {
            let mut s = 0u64;
            b.iter(|| {
                s = (s + 1) % sites;
                let filter = format!("site/{s}/device/+/temperature");
                let mut found = 0u64;
                tree.for_each_match(black_box(&filter), |_, v| found += v);
                black_box(found)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_trie, bench_retained
}
criterion_main!(benches);
