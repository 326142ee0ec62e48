//! Reading `$SYS` values: a v5 client subscribed to `$SYS/#` and a wait for one value.

use super::clients::{QoS5, V5Packet, V5};
use std::time::{Duration, Instant};

/// A v5 client subscribed to `$SYS/#`.
pub fn sys_client(port: u16, id: &str) -> V5 {
    let client = V5::connect(port, id);
    client.subscribe("$SYS/#", QoS5::AtMostOnce);
    client
}

/// Waits for a `$SYS/broker/<name>` message whose value satisfies `pred`; returns the last
/// value seen (Err) when none does within `timeout`.
pub fn wait_sys(
    client: &V5,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<String, Option<String>> {
    let topic = format!("$SYS/broker/{name}");
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = client.take(
            left,
            |p| matches!(p, V5Packet::Publish(p) if p.topic == topic.as_bytes()),
        );
        match got {
            Some(V5Packet::Publish(p)) => {
                let value = String::from_utf8_lossy(&p.payload).into_owned();
                if pred(&value) {
                    return Ok(value);
                }
                last = Some(value);
            }
            _ => return Err(last),
        }
    }
}

/// A `$SYS` value parsed as a number (the leading integer: "12 seconds" gives 12).
pub fn number(value: &str) -> u64 {
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {value:?}"))
}
