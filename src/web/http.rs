//! The console's HTTP/1.1 rules on top of the shared head parser ([`crate::http_head`]):
//! what a request may declare (one decimal `Content-Length`, no chunked body, a path
//! target within [`MAX_URL`]), when the connection stays open after the answer, and the
//! bytes of a response. Pure functions on buffers; the sockets are `front`'s.

use std::fmt;

use crate::http_head::{self, refuse, Head, Refusal};

/// Longest request line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (forms and API commands are small).
pub const MAX_BODY: usize = 16 * 1024;
/// Longest request target (path and query).
pub const MAX_URL: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Delete,
    Other,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Other => "(other method)",
        })
    }
}

/// A request whose head has been read and checked; its body is `body_len` bytes after
/// the head.
pub struct Request {
    pub method: Method,
    /// Path and query, as sent.
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Filled in once the whole body has come.
    pub body: Vec<u8>,
    /// Bytes of the head.
    pub head_len: usize,
    /// Bytes of the body, from `Content-Length`.
    pub body_len: usize,
    /// The client asked for the connection to stay open after the answer.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the client waits for `100 Continue` before sending its body.
    pub fn expects_continue(&self) -> bool {
        self.body_len > 0
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// Reads the request head at the front of `buf`: `Ok(None)` until it is all there.
pub fn parse_head(buf: &[u8]) -> Result<Option<Request>, Refusal> {
    let Some(head) = http_head::parse(buf, MAX_HEAD)? else {
        return Ok(None);
    };
    let method = match head.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    };
    if !head.target.starts_with('/') {
        return Err(refuse(400, "request target must be a path"));
    }
    if head.target.len() > MAX_URL {
        return Err(refuse(414, "URL too long"));
    }
    if head.count("transfer-encoding") > 0 {
        return Err(refuse(411, "send a Content-Length, not a chunked body"));
    }
    let body_len = content_length(&head)?;
    if body_len > MAX_BODY {
        return Err(refuse(413, "request body too large"));
    }
    let keep_alive = match head.minor_version {
        0 => head.has_token("connection", "keep-alive"),
        _ => !head.has_token("connection", "close"),
    };
    Ok(Some(Request {
        method,
        target: head.target,
        headers: head.headers,
        body: Vec::new(),
        head_len: head.len,
        body_len,
        keep_alive,
    }))
}

/// The body length: none means 0; otherwise exactly one line of decimal digits (no sign,
/// no list, no spaces inside), as RFC 9112 §6.3 asks of a server that wants no smuggling.
fn content_length(head: &Head) -> Result<usize, Refusal> {
    match head.count("content-length") {
        0 => return Ok(0),
        1 => {}
        _ => return Err(refuse(400, "more than one Content-Length")),
    }
    let text = head.header("content-length").unwrap_or_default();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(400, "bad Content-Length"));
    }
    text.parse().map_err(|_| refuse(400, "bad Content-Length"))
}

/// The bytes of one response (the body left out for HEAD), saying whether the connection
/// closes after it.
pub fn encode_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    send_body: bool,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        // Values are ours; a line break in one would split the header.
        debug_assert!(!value.contains(['\r', '\n']), "header {name}");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let connection = if close { "close" } else { "keep-alive" };
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    if send_body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// A plain-text answer that closes the connection: for refusals, before any handler ran.
pub fn refusal_response(refusal: Refusal) -> Vec<u8> {
    let body = format!("{}\n", refusal.reason);
    encode_response(
        refusal.status,
        &[("Content-Type", "text/plain; charset=utf-8")],
        body.as_bytes(),
        true,
        true,
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(head: &str) -> Refusal {
        match parse_head(head.as_bytes()) {
            Err(r) => r,
            Ok(_) => panic!("accepted: {head:?}"),
        }
    }

    #[test]
    fn content_length_must_be_one_plain_number() {
        for value in [
            "+2",
            "-1",
            "0x10",
            "2, 2",
            "",
            " 2 2",
            "99999999999999999999",
        ] {
            let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(refused(&head).reason, "bad Content-Length", "{value:?}");
        }
        let twice = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(refused(twice).reason, "more than one Content-Length");
        let ok = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n";
        let request = parse_head(ok.as_bytes()).unwrap().unwrap();
        assert_eq!((request.head_len, request.body_len), (ok.len(), 12));
    }

    #[test]
    fn framing_limits_get_their_own_statuses() {
        let chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(refused(chunked).status, 411);
        let big = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 16385\r\n\r\n";
        assert_eq!(refused(big).status, 413);
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(MAX_URL));
        assert_eq!(refused(&long).status, 414);
        assert_eq!(refused("GET * HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        let cases = [
            ("HTTP/1.1", "", true),
            ("HTTP/1.1", "Connection: close\r\n", false),
            ("HTTP/1.0", "", false),
            ("HTTP/1.0", "Connection: Keep-Alive\r\n", true),
        ];
        for (version, header, keep) in cases {
            let head = format!("GET / {version}\r\nHost: x\r\n{header}\r\n");
            let request = parse_head(head.as_bytes()).unwrap().unwrap();
            assert_eq!(request.keep_alive, keep, "{head:?}");
        }
    }

    #[test]
    fn a_response_says_its_length_and_whether_it_closes() {
        let bytes = encode_response(200, &[("Content-Type", "text/plain")], b"hi", false, true);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n"
        );
    }
}
