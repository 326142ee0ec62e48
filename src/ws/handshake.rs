//! The opening handshake (RFC 6455 §4.2): reads a client's HTTP upgrade request for the
//! MQTT endpoint and writes the `101 Switching Protocols` answer, or the HTTP error that
//! says what was wrong with it.
//!
//! Accepted: `GET /mqtt HTTP/1.1` (any query string), `Host`, `Upgrade: websocket`,
//! `Connection: upgrade` (among other tokens), `Sec-WebSocket-Version: 13`, a
//! `Sec-WebSocket-Key` of 16 base64-encoded bytes, and `mqtt` among the offered
//! `Sec-WebSocket-Protocol`s (MQTT 5 §6 and 3.1.1 §6 ask for it; MQTT.js and paho send it).
//! Header names are case-insensitive. The head is read by the shared parser
//! ([`crate::http_head`]), which also refuses bare LFs, bad bytes in values and a missing or
//! repeated `Host`. Anything else gets `400 Bad Request`, except another
//! path (`404 Not Found`) and another WebSocket version (`426 Upgrade Required` naming
//! version 13, as §4.4 asks).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::http_head;

/// The path MQTT clients connect to.
pub const PATH: &str = "/mqtt";
/// The subprotocol MQTT over WebSocket uses.
pub const SUBPROTOCOL: &str = "mqtt";
/// Longest request accepted, headers included: browsers send about 500 bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Appended to the client's key before hashing (§1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request that asks for the MQTT endpoint correctly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Key`, as sent.
    pub key: String,
    /// `Origin`, sent by browsers (the page's scheme, host and port).
    pub origin: Option<String>,
}

/// A request refused: the HTTP status to answer with and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub detail: &'static str,
}

impl Refusal {
    fn bad(detail: &'static str) -> Refusal {
        Refusal {
            status: 400,
            detail,
        }
    }
}

/// Reads the request at the front of `buf`: `Ok(None)` until its blank line has arrived,
/// then the upgrade and the request's length (bytes after it are the first frames).
pub fn parse(buf: &[u8]) -> Result<Option<(Upgrade, usize)>, Refusal> {
    let head = match http_head::parse(buf, MAX_REQUEST) {
        Ok(Some(head)) => head,
        Ok(None) => return Ok(None),
        Err(refusal) if refusal.status == 431 => {
            return Err(Refusal::bad("request headers too large"))
        }
        Err(refusal) => return Err(Refusal::bad(refusal.reason)),
    };
    if head.method != "GET" {
        return Err(Refusal::bad("method is not GET"));
    }
    if head.minor_version != 1 {
        return Err(Refusal::bad("HTTP version is not 1.1"));
    }
    let path = head
        .target
        .split_once('?')
        .map_or(head.target.as_str(), |(path, _)| path);
    if path != PATH {
        return Err(Refusal {
            status: 404,
            detail: "no websocket endpoint at this path",
        });
    }
    if !head.has_token("upgrade", "websocket") {
        return Err(Refusal::bad("not a websocket upgrade (Upgrade: websocket)"));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(Refusal::bad(
            "not a websocket upgrade (Connection: Upgrade)",
        ));
    }
    match head.header("sec-websocket-version") {
        Some("13") => {}
        Some(_) => {
            return Err(Refusal {
                status: 426,
                detail: "unsupported Sec-WebSocket-Version (13 is supported)",
            })
        }
        None => return Err(Refusal::bad("no Sec-WebSocket-Version")),
    }
    let key = head
        .header("sec-websocket-key")
        .ok_or(Refusal::bad("no Sec-WebSocket-Key"))?;
    if BASE64.decode(key).map_or(true, |k| k.len() != 16) {
        return Err(Refusal::bad("Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    // Subprotocol names are case-sensitive (§4.1); the header may repeat.
    let mqtt = head
        .headers
        .iter()
        .filter(|(n, _)| n == "sec-websocket-protocol")
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim() == SUBPROTOCOL);
    if !mqtt {
        return Err(Refusal::bad("Sec-WebSocket-Protocol does not offer mqtt"));
    }
    let upgrade = Upgrade {
        key: key.to_owned(),
        origin: head.header("origin").map(str::to_owned),
    };
    Ok(Some((upgrade, head.len)))
}

/// `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// Appends the `101 Switching Protocols` answer to `upgrade`.
pub fn accept(upgrade: &Upgrade, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\
             Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n",
            accept_key(&upgrade.key)
        )
        .as_bytes(),
    );
}

/// Appends the HTTP error answer to a refused request; the connection closes after it.
pub fn refuse(refusal: &Refusal, out: &mut Vec<u8>) {
    let status = match refusal.status {
        403 => "403 Forbidden",
        404 => "404 Not Found",
        426 => "426 Upgrade Required",
        _ => "400 Bad Request",
    };
    let body = format!("{}\n", refusal.detail);
    let version = if refusal.status == 426 {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\n\
             {version}\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\n\
             Connection: close\r\n\r\n\
             {body}",
            body.len()
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3's sample key, with the headers MQTT.js sends.
    const REQUEST: &str = "GET /mqtt HTTP/1.1\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Connection: Upgrade\r\n\
        Upgrade: websocket\r\n\
        Sec-WebSocket-Protocol: mqtt\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
        Host: 127.0.0.1:8083\r\n\r\n";

    fn refused(request: &str) -> Refusal {
        parse(request.as_bytes()).expect_err(request)
    }

    fn with(from: &str, to: &str) -> String {
        assert!(REQUEST.contains(from), "{from}");
        REQUEST.replacen(from, to, 1)
    }

    #[test]
    fn the_rfc_sample_key_gets_the_rfc_sample_answer() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let mut with_frame = REQUEST.as_bytes().to_vec();
        with_frame.extend([0x82, 0x80, 1, 2, 3, 4]);
        let (upgrade, len) = parse(&with_frame).unwrap().unwrap();
        assert_eq!(
            len,
            REQUEST.len(),
            "the frame after the request is not part of it"
        );
        let mut out = Vec::new();
        accept(&upgrade, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        );
    }

    #[test]
    fn a_request_is_read_only_once_whole() {
        for cut in 0..REQUEST.len() {
            assert_eq!(parse(&REQUEST.as_bytes()[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn paho_style_headers_with_other_case_and_a_query_are_accepted() {
        // paho-mqtt writes `Sec-Websocket-Key`; browsers add tokens to Connection.
        let request = "GET /mqtt?client=1 HTTP/1.1\r\n\
            host: gw\r\n\
            upgrade: WebSocket\r\n\
            connection: keep-alive, Upgrade\r\n\
            Origin: http://gw\r\n\
            Sec-Websocket-Protocol: mqttv3.1\r\n\
            Sec-Websocket-Protocol: mqtt\r\n\
            Sec-Websocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-Websocket-Version: 13\r\n\r\n";
        assert!(parse(request.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn bad_requests_get_400_with_the_reason() {
        let cases = [
            (with("GET /mqtt HTTP/1.1", "POST /mqtt HTTP/1.1"), "not GET"),
            (with("GET /mqtt HTTP/1.1", "GET /mqtt HTTP/1.0"), "1.1"),
            (
                with("GET /mqtt HTTP/1.1", "GET  /mqtt HTTP/1.1"),
                "request line",
            ),
            (with("Host: 127.0.0.1:8083\r\n", ""), "Host"),
            (
                with("Upgrade: websocket", "Upgrade: h2c"),
                "Upgrade: websocket",
            ),
            (
                with("Connection: Upgrade", "Connection: close"),
                "Connection",
            ),
            (
                with("Sec-WebSocket-Version: 13\r\n", ""),
                "no Sec-WebSocket-Version",
            ),
            (
                with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                "no Sec-WebSocket-Key",
            ),
            (with("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), "16 bytes"),
            (with("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"), "16 bytes"),
            (
                with(
                    "Sec-WebSocket-Protocol: mqtt",
                    "Sec-WebSocket-Protocol: MQTT",
                ),
                "mqtt",
            ),
            (with("Sec-WebSocket-Protocol: mqtt\r\n", ""), "mqtt"),
            (
                with("Upgrade: websocket\r\n", "Upgrade websocket\r\n"),
                "header line",
            ),
        ];
        for (request, detail) in cases {
            let r = refused(&request);
            assert_eq!(r.status, 400, "{request}");
            assert!(r.detail.contains(detail), "{detail}: {}", r.detail);
        }
        let mut not_utf8 = REQUEST.as_bytes().to_vec();
        not_utf8[20] = 0xFF;
        assert_eq!(parse(&not_utf8).unwrap_err().status, 400);
        let huge = format!("GET /mqtt HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_REQUEST));
        assert!(refused(&huge).detail.contains("too large"));
        let huge_whole = format!(
            "GET /mqtt HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST)
        );
        assert!(refused(&huge_whole).detail.contains("too large"));
    }

    #[test]
    fn another_path_is_404_and_another_version_426() {
        assert_eq!(refused(&with("GET /mqtt ", "GET /ws ")).status, 404);
        assert_eq!(refused(&with("GET /mqtt ", "GET /mqtt/x ")).status, 404);
        let r = refused(&with(
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Version: 8",
        ));
        assert_eq!(r.status, 426);
        let mut out = Vec::new();
        refuse(&r, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
    }

    #[test]
    fn a_refusal_is_a_complete_http_response() {
        let mut out = Vec::new();
        refuse(&Refusal::bad("no Host header"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 400 Bad Request\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 15\r\n\
             Connection: close\r\n\r\n\
             no Host header\n"
        );
    }
}
