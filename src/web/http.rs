//! The HTTP/1.1 wire: read one request from a socket within size and time limits, write
//! one response, close. One request per connection (`Connection: close`) keeps every
//! worker's time bounded and needs no pipelining; a console page makes a handful of
//! requests every few seconds, so the extra TCP handshakes cost nothing that matters.
//!
//! Why not `tiny_http`, which the design named: its connection pool (0.12) leaves a new
//! connection unserved when several arrive at once while its threads are busy with
//! keep-alive connections (five parallel browser fetches: one hangs until another
//! connection closes), and it refuses a `Connection` header on responses, so the page
//! cannot work around it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Longest request line plus headers.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (forms and API commands are small).
pub const MAX_BODY: usize = 16 * 1024;
/// Longest request target (path and query).
pub const MAX_URL: usize = 4096;
/// How long a client may take to send its request, or to take our answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A request as read from the wire.
pub struct Request {
    pub method: Method,
    /// Path and query, as sent.
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read: the status to answer with (if the peer is still there)
/// and a reason for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Reads one request. `Ok(None)` when the peer closed without sending one.
pub fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let end = find(&buf, b"\r\n\r\n");
        // The head runs through its blank line; while unfinished, it is at least what came.
        if end.map_or(buf.len(), |end| end + 4) > MAX_HEAD {
            return Err(refuse(431, "request head too large"));
        }
        if let Some(end) = end {
            break end;
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(refuse(400, "connection closed inside the request head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(refuse(408, "request not sent in time")),
            Err(_) => return Ok(None),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| refuse(400, "request head is not text"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(400, "malformed request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(if version.starts_with("HTTP/") {
            refuse(505, "HTTP version not supported")
        } else {
            refuse(400, "malformed request line")
        });
    }
    if !target.starts_with('/') {
        return Err(refuse(400, "request target must be a path"));
    }
    if target.len() > MAX_URL {
        return Err(refuse(414, "URL too long"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => Method::Other,
        _ => return Err(refuse(400, "malformed request line")),
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(refuse(400, "malformed header line"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
            return Err(refuse(400, "malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method,
        target: target.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(refuse(411, "send a Content-Length, not a chunked body"));
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| refuse(400, "bad Content-Length"))?,
    };
    if length > MAX_BODY {
        return Err(refuse(413, "request body too large"));
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() > length {
        return Err(refuse(400, "more bytes than Content-Length"));
    }
    let missing = length - body.len();
    let mut rest = stream.take(missing as u64);
    match rest.read_to_end(&mut body) {
        Ok(_) if body.len() == length => {}
        Ok(_) => return Err(refuse(400, "connection closed inside the body")),
        Err(e) if is_timeout(&e) => return Err(refuse(408, "body not sent in time")),
        Err(_) => return Ok(None),
    }
    request.body = body;
    Ok(Some(request))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes one response and closes the connection (without sending the body for HEAD).
pub fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    send_body: bool,
) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        // Values are ours; a line break in one would split the header.
        debug_assert!(!value.contains(['\r', '\n']), "header {name}");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| {
            if send_body {
                stream.write_all(body)
            } else {
                Ok(())
            }
        })
        .and_then(|()| stream.flush());
    if sent.is_ok() {
        linger(stream);
    }
}

/// Closes our side and reads what the client still sends for a moment, so an early answer
/// (413 before the body) is not destroyed by a reset when unread input is dropped.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 256 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
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
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
