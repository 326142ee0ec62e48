//! `/metrics`: the broker's counters (the same as `$SYS`) in the Prometheus text format,
//! for a scraper on the gateway itself: loopback peers only, no login.

use std::fmt::Write;

use super::server::{Context, Reply, Req};
use crate::broker::console::{BridgeInfo, ConsoleAnswer, ConsoleAsk, LinkState};

pub fn handle(context: &Context, req: &Req) -> Reply {
    if !req.peer.is_loopback() {
        return Reply::new(
            403,
            "text/plain; charset=utf-8",
            "metrics are served to loopback only\n",
        );
    }
    let Ok(ConsoleAnswer::Stats(s)) = context.ask(ConsoleAsk::Stats) else {
        return Reply::new(
            503,
            "text/plain; charset=utf-8",
            "the broker did not answer in time\n",
        );
    };
    let metrics: [(&str, &str, &str, u64); 15] = [
        (
            "outpost_uptime_seconds",
            "gauge",
            "Seconds since start.",
            s.uptime_seconds,
        ),
        (
            "outpost_clients_connected",
            "gauge",
            "Clients connected now.",
            s.clients_connected as u64,
        ),
        (
            "outpost_sessions",
            "gauge",
            "Sessions held (connected or not).",
            s.sessions as u64,
        ),
        (
            "outpost_connections_total",
            "counter",
            "Connections accepted since start.",
            s.connections_total,
        ),
        (
            "outpost_messages_received_total",
            "counter",
            "PUBLISH packets received.",
            s.messages_received,
        ),
        (
            "outpost_messages_sent_total",
            "counter",
            "PUBLISH packets sent.",
            s.messages_sent,
        ),
        (
            "outpost_messages_dropped_total",
            "counter",
            "Messages dropped (queue full, too large, expired).",
            s.messages_dropped,
        ),
        (
            "outpost_bytes_received_total",
            "counter",
            "Bytes read from MQTT clients.",
            s.bytes_received,
        ),
        (
            "outpost_bytes_sent_total",
            "counter",
            "Bytes written to MQTT clients.",
            s.bytes_sent,
        ),
        (
            "outpost_subscriptions",
            "gauge",
            "Subscriptions in the topic tree.",
            s.subscriptions as u64,
        ),
        (
            "outpost_retained_messages",
            "gauge",
            "Retained messages.",
            s.retained_messages as u64,
        ),
        (
            "outpost_queued_messages",
            "gauge",
            "Messages waiting in session queues.",
            s.queued_messages as u64,
        ),
        (
            "outpost_store_failures_total",
            "counter",
            "Group commits that failed.",
            s.store_failures,
        ),
        (
            "outpost_alias_bytes_saved_total",
            "counter",
            "Bytes saved by topic aliases.",
            s.alias_bytes_saved,
        ),
        (
            "outpost_topics_seen",
            "gauge",
            "Topics in the console's history.",
            s.topics_seen as u64,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    if let Ok(ConsoleAnswer::Bridges(bridges)) = context.ask(ConsoleAsk::Bridges) {
        write_bridges(&bridges, &mut out);
    }
    Reply::new(200, "text/plain; version=0.0.4; charset=utf-8", out)
}

/// Reads one figure of a bridge.
type BridgeValue = fn(&BridgeInfo) -> u64;

/// Each bridge's state and counters (the same as `$SYS/broker/bridge/NAME/...`), one
/// series per bridge under the label `bridge` (names are letters, digits, `-` and `_`).
fn write_bridges(bridges: &[BridgeInfo], out: &mut String) {
    if bridges.is_empty() {
        return;
    }
    let series: [(&str, &str, &str, BridgeValue); 7] = [
        (
            "connected",
            "gauge",
            "1 while the link to the upstream is up.",
            |b| u64::from(b.connected),
        ),
        (
            "queued",
            "gauge",
            "Messages waiting for the upstream's acknowledgement.",
            |b| b.queued,
        ),
        (
            "queued_bytes",
            "gauge",
            "Bytes of the queued messages.",
            |b| b.queued_bytes,
        ),
        (
            "forwarded_total",
            "counter",
            "Messages the upstream acknowledged.",
            |b| b.forwarded,
        ),
        (
            "received_total",
            "counter",
            "Messages from the upstream delivered locally.",
            |b| b.received,
        ),
        (
            "dropped_total",
            "counter",
            "Messages bound upstream that were dropped.",
            |b| b.dropped,
        ),
        (
            "connects_total",
            "counter",
            "Links made to the upstream.",
            |b| b.connects,
        ),
    ];
    let _ = writeln!(
        out,
        "# HELP outpost_bridge_state 1 for the link's state (up, connecting, down; idle: a lazy \
         bridge at rest on purpose), 0 for the others.\n# TYPE outpost_bridge_state gauge"
    );
    for bridge in bridges {
        for state in LinkState::ALL {
            let _ = writeln!(
                out,
                "outpost_bridge_state{{bridge=\"{}\",state=\"{}\"}} {}",
                bridge.name,
                state.as_str(),
                u8::from(bridge.state == state)
            );
        }
    }
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP outpost_bridge_{name} {help}\n# TYPE outpost_bridge_{name} {kind}"
        );
        for bridge in bridges {
            let _ = writeln!(
                out,
                "outpost_bridge_{name}{{bridge=\"{}\"}} {}",
                bridge.name,
                value(bridge)
            );
        }
    }
}
