//! The codec property the `decode_*` fuzz targets check: whatever the bytes, `decode` does
//! not panic, never claims more bytes than it was given, and a packet it accepts survives
//! `encode` then `decode` unchanged.
//!
//! Shared with `tests/fuzz_regressions.rs` (through `#[path]`), so the seed corpus and every
//! crash found are replayed by `cargo test` through exactly this code.

use outpost::protocol::{decode, encode, encoded_len, ProtocolVersion, MAX_PACKET_SIZE};

/// Checks one input against the codec for `version`; panics on any broken property.
pub fn check_decode(data: &[u8], version: ProtocolVersion) {
    let Ok(Some((packet, used))) = decode(data, version, MAX_PACKET_SIZE) else {
        return;
    };
    assert!(
        used <= data.len(),
        "decode used {used} bytes of a {}-byte buffer",
        data.len()
    );
    assert!(used >= 2, "a frame is at least 2 bytes, decode used {used}");

    // A frame that decodes whole must be "not yet" at every shorter length: a reader that
    // stopped early would otherwise act on half a packet. Checking every prefix is
    // quadratic; the fixed header's edges and the last byte are where it goes wrong.
    for cut in [0, 1, 2, 3, 4, 5, used - 1] {
        if cut < used {
            assert_eq!(
                decode(&data[..cut], version, MAX_PACKET_SIZE),
                Ok(None),
                "a {cut}-byte prefix of a {used}-byte frame was not reported as incomplete"
            );
        }
    }

    // The size limit counts the whole frame: exactly `used` passes, one less is too large.
    let limit = u32::try_from(used).expect("frames are below 2^28 bytes");
    assert_eq!(
        decode(data, version, limit).map(|p| p.map(|(_, n)| n)),
        Ok(Some(used)),
        "a {used}-byte frame was refused with max_packet_size = {used}"
    );
    let refused = decode(data, version, limit - 1).expect_err("frame accepted above the limit");
    assert_eq!(
        refused.reason,
        outpost::protocol::ReasonCode::PacketTooLarge,
        "{refused:?}"
    );

    let mut out = Vec::new();
    let written = encode(&packet, version, &mut out);
    assert_eq!(
        written,
        out.len(),
        "encode's return value is not what it wrote"
    );
    assert_eq!(
        written,
        encoded_len(&packet, version),
        "encoded_len disagrees with encode"
    );
    assert!(written > 0, "a decoded {packet:?} has no encoding");
    match decode(&out, version, MAX_PACKET_SIZE) {
        Ok(Some((again, n))) => {
            assert_eq!(n, out.len(), "re-decode used {n} of {} bytes", out.len());
            assert_eq!(again, packet, "encode(decode(x)) changed the packet");
        }
        other => panic!(
            "encode({packet:?}) = {out:02x?} does not decode: {other:?}",
            out = out.as_slice()
        ),
    }
}
