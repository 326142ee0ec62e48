//! Arbitrary bytes into the MQTT 3.1.1 decoder; see `outpost_fuzz::codec` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost::protocol::ProtocolVersion;

fuzz_target!(|data: &[u8]| {
    outpost_fuzz::codec::check_decode(data, ProtocolVersion::V311);
});
