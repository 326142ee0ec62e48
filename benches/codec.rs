//! Codec micro-benches: decoding and encoding a PUBLISH, the packet on the hot
//! path, for both protocol versions and two payload sizes; and one delivery's
//! size check plus encode, done in one pass (`encode_within`) and in two
//! (`encoded_len` then `encode`, as deliveries did before).

use std::hint::black_box;
use std::num::NonZeroU16;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use outpost::protocol::{
    decode, encode, encode_within, encoded_len, Packet, Properties, ProtocolVersion, Publish,
    QosPid,
};

const MAX_PACKET: u32 = 1 << 20;

fn publish(payload: &[u8]) -> Packet<'_> {
    Packet::Publish(Publish {
        dup: false,
        qos: QosPid::AtLeastOnce(NonZeroU16::new(4242).unwrap()),
        retain: false,
        topic: "site/7/device/1234/temperature",
        properties: Properties::default(),
        payload,
    })
}

fn cases() -> Vec<(String, ProtocolVersion, Vec<u8>)> {
    let mut v = Vec::new();
    for (name, version) in [("v5", ProtocolVersion::V5), ("v311", ProtocolVersion::V311)] {
        for size in [64usize, 4096] {
            v.push((
                format!("publish_q1_{size}B_{name}"),
                version,
                vec![0xA5; size],
            ));
        }
    }
    v
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, version, payload) in cases() {
        let mut frame = Vec::new();
        encode(&publish(&payload), version, &mut frame);
        g.throughput(Throughput::Elements(1));
        g.bench_function(&name, |b| {
            b.iter(|| {
                let decoded = decode(black_box(&frame), version, MAX_PACKET);
                match decoded {
                    Ok(Some((Packet::Publish(p), used))) => black_box((p.payload.len(), used)),
                    other => panic!("not a PUBLISH: {other:?}"),
                }
            })
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, version, payload) in cases() {
        let packet = publish(&payload);
        let mut out = Vec::with_capacity(8192);
        g.throughput(Throughput::Elements(1));
        g.bench_function(&name, |b| {
            b.iter(|| {
                out.clear();
                black_box(encode(black_box(&packet), version, &mut out))
            })
        });
    }
    g.finish();
}

fn bench_deliver(c: &mut Criterion) {
    let mut g = c.benchmark_group("deliver");
    let payload = vec![0xA5; 64];
    let packet = publish(&payload);
    let version = ProtocolVersion::V5;
    let limit = MAX_PACKET as usize;
    let mut out = Vec::with_capacity(8192);
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_then_encode_q1_64B_v5", |b| {
        b.iter(|| {
            out.clear();
            if encoded_len(black_box(&packet), version) <= limit {
                black_box(encode(black_box(&packet), version, &mut out));
            }
        })
    });
    g.bench_function("encode_within_q1_64B_v5", |b| {
        b.iter(|| {
            out.clear();
            black_box(encode_within(black_box(&packet), version, limit, &mut out))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short runs: `make bench` has a time budget and these are stable.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decode, bench_encode, bench_deliver
}
criterion_main!(benches);
