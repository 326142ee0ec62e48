//! MQTT over WebSocket (RFC 6455), as bytes only: no sockets and no broker state here.
//!
//! Own framing rather than `tungstenite`: frames are unwrapped in place in the loop's read
//! buffer and streamed, so the MQTT decoder reads WebSocket payloads exactly as it reads
//! TCP bytes (zero-copy, whatever the frame boundaries), and an idle connection holds no
//! buffer at all. `tungstenite` would own a read buffer per connection and hand each
//! message over as its own allocation. Only the handshake's SHA-1 and base64 come from
//! crates (`sha1`, `base64`).
//!
//! - `handshake` — the HTTP upgrade request for `/mqtt` and its answer (101, 400, 404, 426)
//! - `frame` — frame headers in and out, masking, close codes
//! - `deframe` — client frames → the MQTT byte stream, in place, with ping/close/size rules
//! - `framing` — one connection's layer: handshake, then frames in, binary frames out, close

pub mod deframe;
pub mod frame;
pub mod framing;
pub mod handshake;

pub use frame::CloseCode;
pub use framing::{End, Framing, Input};
