//! Arbitrary bytes from one client into the real broker, which must keep serving others;
//! see `outpost_fuzz::connection` for the input layout and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    outpost_fuzz::connection::check_connection(outpost_fuzz::broker(), data);
});
