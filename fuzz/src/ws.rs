//! The property the `ws_frames` fuzz target checks: the WebSocket layer of one connection
//! (`outpost::ws::Framing`) never panics on what a client sends after a valid upgrade
//! request, keeps its output inside the buffer, and gives the same MQTT bytes and the same
//! ending whether the bytes come in one read or in many (the input's first byte picks the
//! read size, 1 to 64 bytes).
//!
//! Shared with `tests/fuzz_regressions.rs` (through `#[path]`), which replays the corpus.

use outpost::ws::{End, Framing};

/// A valid upgrade request; the fuzz bytes follow it.
pub const REQUEST: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/// The largest message the harness allows, small so that 1009 is reachable.
const MAX_MESSAGE: u32 = 1024;

/// Feeds `REQUEST` and `bytes` in reads of `chunk` bytes; the MQTT bytes and the ending.
fn run(bytes: &[u8], chunk: usize) -> (Vec<u8>, Option<End>) {
    let mut framing = Framing::default();
    let mut all = REQUEST.to_vec();
    all.extend_from_slice(bytes);
    let mut data = Vec::new();
    for piece in all.chunks(chunk.max(1)) {
        let mut buf = piece.to_vec();
        let input = framing.input(&mut buf, MAX_MESSAGE, &|_| true);
        assert!(input.data.end <= buf.len(), "data range outside the buffer");
        data.extend_from_slice(&buf[input.data]);
        if input.end.is_some() {
            return (data, input.end);
        }
    }
    (data, None)
}

/// One case: see the module doc.
pub fn check_ws(input: &[u8]) {
    let Some((&first, bytes)) = input.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(first % 64);
    let whole = run(bytes, usize::MAX);
    let split = run(bytes, chunk);
    assert_eq!(whole, split, "reads of {chunk} bytes changed the outcome");
}
