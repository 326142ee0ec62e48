//! One non-blocking socket under an optional TLS layer: a read that hands back plaintext,
//! and writes until done or `WouldBlock`. Shared by the clients' connections
//! (`client.rs`) and the bridges' upstream links (`bridge.rs`), so both read, decrypt,
//! encrypt and flush the same way; and a graceful close for a stop.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::tls::{Layer, TlsError};

/// What one [`read`] got.
#[derive(Debug)]
pub enum Received {
    /// Plaintext bytes at the start of the scratch buffer.
    Data(usize),
    /// Nothing more for now (`WouldBlock`).
    Drained,
    /// The peer closed the stream.
    Closed,
    /// The socket failed.
    Failed(io::Error),
    /// The TLS layer refused what came (bad record, failed verification).
    Tls(TlsError),
}

/// Reads once into `scratch`: plaintext already decrypted by `tls` first, otherwise from
/// the socket (through `tls`, which may take a whole record of ciphertext before it yields
/// any plaintext, so this reads again until it does or the socket is drained).
pub fn read(socket: &mut TcpStream, mut tls: Option<&mut Layer>, scratch: &mut [u8]) -> Received {
    loop {
        if let Some(tls) = tls.as_deref_mut() {
            let n = tls.take_plaintext(scratch);
            if n > 0 {
                return Received::Data(n);
            }
        }
        let n = match socket.read(scratch) {
            Ok(0) => return Received::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Received::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Received::Failed(e),
        };
        let Some(tls) = tls.as_deref_mut() else {
            return Received::Data(n);
        };
        if let Err(e) = tls.feed(&scratch[..n]) {
            return Received::Tls(e);
        }
    }
}

/// Writes `bytes` until all are written or the socket would block. Returns how many were
/// written, and Err when the peer is gone (a write of 0 counts as that).
pub fn write(socket: &mut TcpStream, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(&bytes[written..]) {
            Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

/// Encrypts what `tls` takes of `plain` (all of it once the handshake is done; it stays
/// in `plain` until then) and writes the layer's ciphertext until done or the socket
/// would block. Returns the ciphertext bytes written, and Err when TLS or the peer failed.
pub fn write_tls(
    socket: &mut TcpStream,
    tls: &mut Layer,
    plain: &mut Vec<u8>,
) -> (usize, io::Result<()>) {
    if let Err(e) = tls.encrypt(plain) {
        return (0, Err(io::Error::other(e)));
    }
    let (written, result) = write(socket, tls.wire());
    tls.written(written);
    (written, result)
}

/// At a stop, after the last bytes: shuts the write side and reads and drops input until
/// the peer closes too, or `deadline`. Closing with unread input would send a reset, and a
/// reset can make the peer lose what we wrote last. Blocks (briefly): for the stop only.
pub fn close_gracefully(socket: &mut TcpStream, deadline: Instant) {
    if socket.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let mut scratch = [0u8; 1024];
    while Instant::now() < deadline {
        match socket.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair over loopback: ours non-blocking (as the loop has it), the peer's
    /// blocking.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (TcpStream::from_std(ours), peer)
    }

    /// Reads until something other than `Drained` comes, for at most a few seconds.
    fn read_until_not_drained(socket: &mut TcpStream, scratch: &mut [u8]) -> Received {
        for _ in 0..500 {
            match read(socket, None, scratch) {
                Received::Drained => std::thread::sleep(std::time::Duration::from_millis(10)),
                other => return other,
            }
        }
        Received::Drained
    }

    #[test]
    fn plain_bytes_go_both_ways_and_a_close_is_seen() {
        let (mut ours, mut peer) = pair();
        let mut scratch = [0u8; 64];
        assert!(matches!(
            read(&mut ours, None, &mut scratch),
            Received::Drained
        ));
        let (n, result) = write(&mut ours, b"hello");
        assert_eq!(n, 5);
        assert!(result.is_ok());
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        peer.write_all(b"back").unwrap();
        let got = read_until_not_drained(&mut ours, &mut scratch);
        assert!(matches!(got, Received::Data(4)), "{got:?}");
        assert_eq!(&scratch[..4], b"back");
        drop(peer);
        let got = read_until_not_drained(&mut ours, &mut scratch);
        assert!(matches!(got, Received::Closed), "{got:?}");
    }

    #[test]
    fn a_graceful_close_ends_with_a_fin_after_the_last_bytes() {
        let (mut ours, mut peer) = pair();
        let (n, _) = write(&mut ours, b"bye");
        assert_eq!(n, 3);
        peer.write_all(b"unread").unwrap();
        let closer = std::thread::spawn(move || {
            let mut got = Vec::new();
            // EOF (not a reset) after our bytes: the write side was shut.
            peer.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"bye");
        });
        close_gracefully(&mut ours, Instant::now() + Duration::from_secs(5));
        closer.join().unwrap();
    }

    #[test]
    fn nothing_to_write_is_no_write() {
        let (mut ours, _peer) = pair();
        let (n, result) = write(&mut ours, b"");
        assert_eq!(n, 0);
        assert!(result.is_ok());
    }
}
