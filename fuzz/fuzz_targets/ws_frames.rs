//! Arbitrary client bytes after a WebSocket upgrade; see `outpost_fuzz::ws` for the checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    outpost_fuzz::ws::check_ws(data);
});
