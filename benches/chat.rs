//! Chat history at scale: pages of a room holding one million messages (among four rooms,
//! 1.25 million rows), read from the (room, id) index the way the chat service reads them.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use outpost::store::{ChatWrite, HistoryRange, Store, SyncMode, Write};

/// Messages in the big room; three small rooms share the rest.
const BIG_ROOM: i64 = 1_000_000;
const OTHERS: i64 = 250_000;

/// A database with the rooms and messages, written in group-commit-sized batches.
fn populated() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("chat.db"), SyncMode::Normal).unwrap();
    for (id, name) in [(1, "general"), (2, "camp"), (3, "kitchen"), (4, "radio")] {
        store.stage(Write::Chat(ChatWrite::Room {
            id,
            name: name.into(),
            created_by: "ana".into(),
            at: 1_700_000_000,
        }));
    }
    let total = BIG_ROOM + OTHERS;
    for id in 1..=total {
        // Every fifth message goes to a small room, the rest to the big one.
        let room_id = if id % 5 == 0 { 2 + id % 3 } else { 1 };
        store.stage(Write::Chat(ChatWrite::Message {
            id,
            room_id,
            sender: if id % 2 == 0 { "ana" } else { "bob" }.into(),
            at: 1_700_000_000 + id,
            body: format!("message number {id} about the water pump"),
        }));
        if id % 10_000 == 0 {
            store.commit().unwrap();
        }
    }
    store.commit().unwrap();
    (dir, store)
}

fn history(c: &mut Criterion) {
    let (_dir, store) = populated();
    let mut g = c.benchmark_group("chat_history_million");
    g.bench_function("last_page", |b| {
        b.iter(|| black_box(store.chat_history(1, HistoryRange::Last, 21).unwrap()))
    });
    g.bench_function("after_middle", |b| {
        b.iter(|| {
            black_box(
                store
                    .chat_history(1, HistoryRange::After(600_001), 21)
                    .unwrap(),
            )
        })
    });
    g.bench_function("before_oldest", |b| {
        b.iter(|| {
            black_box(
                store
                    .chat_history(1, HistoryRange::Before(200), 21)
                    .unwrap(),
            )
        })
    });
    g.bench_function("like_lookup", |b| {
        b.iter(|| black_box(store.chat_message_room(777_777).unwrap()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = history
}
criterion_main!(benches);
