//! The bridge tests' shared setup: an Outpost config with one bridge to a local upstream,
//! publishing numbered messages locally, and checking what reached the upstream.

use std::collections::HashSet;
use std::time::Duration;

use super::clients::{QoS5, V5Packet, V5};
use super::{unique, Broker};

/// Outpost with one bridge `up` to `127.0.0.1:port`: local `sensors/#` goes up as
/// `site1/sensors/#`, upstream `site1/cmd/#` comes down as `cmd/#`, `talk/#` both ways.
pub fn bridge_config(port: u16, protocol: &str, inflight: u16, extra: &str) -> String {
    let both = if protocol == "v5" {
        "[[bridge.topic]]\nfilter = \"talk/#\"\ndirection = \"both\"\nremote_prefix = \"site1/\"\n"
    } else {
        ""
    };
    format!(
        "sync = \"normal\"\nsys_interval = 1\n\
         [[bridge]]\nname = \"up\"\naddress = \"127.0.0.1:{port}\"\nprotocol = \"{protocol}\"\n\
         client_id = \"{}\"\nkeep_alive = 20\ninflight = {inflight}\n\
         reconnect_delay = 1\nreconnect_delay_max = 2\n{extra}\n\
         [[bridge.topic]]\nfilter = \"sensors/#\"\ndirection = \"out\"\nqos = 2\nremote_prefix = \"site1/\"\n\
         [[bridge.topic]]\nfilter = \"cmd/#\"\ndirection = \"in\"\nqos = 2\nremote_prefix = \"site1/\"\n\
         {both}",
        unique("gw")
    )
}

/// Publishes `n` messages `m-00000`… on `sensors/<i % 10>` and waits for every
/// acknowledgement.
pub fn publish_many(broker: &Broker, n: usize, qos: QoS5) {
    publish_range(broker, 0..n, qos);
}

/// [`publish_many`] for the messages numbered `range`.
pub fn publish_range(broker: &Broker, range: std::ops::Range<usize>, qos: QoS5) {
    let n = range.len();
    let client = V5::connect(broker.port(), &unique("pub"));
    for i in range {
        client
            .client
            .publish(
                format!("sensors/{}", i % 10),
                qos,
                false,
                format!("m-{i:05}"),
            )
            .unwrap();
    }
    let done = |p: &V5Packet| match qos {
        QoS5::AtLeastOnce => matches!(p, V5Packet::PubAck(_)),
        _ => matches!(p, V5Packet::PubComp(_)),
    };
    for i in 0..n {
        client
            .take(Duration::from_secs(30), done)
            .unwrap_or_else(|| panic!("no acknowledgement for message {i}"));
    }
    client.disconnect();
}

/// Every message 0..n exactly as sent (topic and payload), first arrivals in order.
/// Returns how many arrived more than once.
pub fn check_all_arrived(got: &[(String, String)], n: usize) -> usize {
    check_arrived(got, n, true)
}

/// [`check_all_arrived`], optionally without the order check.
pub fn check_arrived(got: &[(String, String)], n: usize, ordered: bool) -> usize {
    let mut seen = HashSet::new();
    let mut last = None;
    for (topic, payload) in got {
        let i: usize = payload
            .strip_prefix("m-")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("unexpected payload {payload:?} on {topic}"));
        assert_eq!(topic, &format!("site1/sensors/{}", i % 10), "message {i}");
        if seen.insert(i) {
            assert!(
                !ordered || last < Some(i),
                "message {i} overtook {last:?}: out of order"
            );
            last = Some(i);
        }
    }
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} of {n} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    got.len() - n
}

pub fn distinct(got: &[(String, String)]) -> usize {
    got.iter().map(|(_, p)| p).collect::<HashSet<_>>().len()
}

/// Publishes `payload` on local `sensors/<topic>` at QoS 1 and waits for the PUBACK.
pub fn publish_one(broker: &Broker, topic: &str, payload: &str) {
    let client = V5::connect(broker.port(), &unique("pub"));
    client
        .client
        .publish(
            format!("sensors/{topic}"),
            QoS5::AtLeastOnce,
            false,
            payload.to_string(),
        )
        .unwrap();
    client
        .take(Duration::from_secs(10), |p| {
            matches!(p, V5Packet::PubAck(_))
        })
        .expect("PUBACK");
    client.disconnect();
}

/// Which messages numbered in `range` are not among `got` (payloads `m-NNNNN`).
pub fn missing_in(got: &[(String, String)], range: std::ops::Range<usize>) -> Vec<usize> {
    let seen: HashSet<usize> = got
        .iter()
        .filter_map(|(_, p)| p.strip_prefix("m-").and_then(|d| d.parse().ok()))
        .collect();
    range.filter(|i| !seen.contains(i)).collect()
}
