//! The one HTTP/1.1 request-head parser, used by the web console and by the WebSocket
//! listener's handshake: `httparse` (the parser hyper uses) reads the request line and
//! header fields, and this module refuses what httparse lets through but a server must not
//! trust: bare LF line endings, header text that is not UTF-8, and a missing or repeated
//! `Host` (RFC 9112 §3.2). "Not all here yet" is `Ok(None)`, not an error.

/// Most header fields a request may carry (browsers send about 15).
const MAX_HEADERS: usize = 64;

/// A request head, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// As sent (`GET`, `POST` …).
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, its blank line included: the body (or the next request) follows.
    pub len: usize,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times header `name` (lower-case) was sent.
    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// True when a comma-separated header `name` lists `token` (case-insensitive), in any
    /// of its lines.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Why a head was refused: the status to answer with and a reason for the log and the
/// answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

pub fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Parses the head at the front of `buf`: `Ok(None)` until its blank line has come (while
/// it stays within `max` bytes), then the head.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<Head>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > max => {
            return Err(refuse(431, "request head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) if len > max => {
            return Err(refuse(431, "request head too large"))
        }
        Ok(httparse::Status::Complete(len)) => len,
        Err(e) => return Err(refusal_for(e)),
    };
    if buf[..len]
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || buf[i - 1] != b'\r'))
    {
        return Err(refuse(400, "bare LF line ending (lines end with CRLF)"));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let value = std::str::from_utf8(field.value)
            .map_err(|_| refuse(400, "header value is not UTF-8"))?;
        headers.push((field.name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let head = Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        minor_version: request.version.unwrap_or_default(),
        headers,
        len,
    };
    match head.count("host") {
        0 => Err(refuse(400, "no Host header")),
        1 => Ok(Some(head)),
        _ => Err(refuse(400, "more than one Host header")),
    }
}

fn refusal_for(error: httparse::Error) -> Refusal {
    match error {
        httparse::Error::Version => refuse(505, "HTTP version not supported"),
        httparse::Error::TooManyHeaders => refuse(431, "too many header fields"),
        httparse::Error::HeaderName => refuse(400, "malformed header line (name)"),
        httparse::Error::HeaderValue => {
            refuse(400, "malformed header line (forbidden byte in a value)")
        }
        httparse::Error::NewLine => refuse(400, "malformed line ending"),
        httparse::Error::Token | httparse::Error::Status => refuse(400, "malformed request line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &str = "GET /login?next=%2F HTTP/1.1\r\nHost: gw:8080\r\nAccept: */*\r\n\r\n";

    fn refused(head: &str) -> Refusal {
        parse(head.as_bytes(), 16 * 1024).expect_err(head)
    }

    #[test]
    fn a_head_is_read_once_whole_and_says_where_it_ends() {
        for cut in 0..GET.len() {
            assert_eq!(parse(&GET.as_bytes()[..cut], 1024), Ok(None), "cut {cut}");
        }
        let mut with_body = GET.as_bytes().to_vec();
        with_body.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let head = parse(&with_body, 1024).unwrap().unwrap();
        assert_eq!(head.len, GET.len());
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("GET", "/login?next=%2F")
        );
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.header("host"), Some("gw:8080"));
        assert_eq!(head.header("accept"), Some("*/*"));
    }

    #[test]
    fn smuggling_shapes_are_refused_with_400() {
        let cases = [
            ("GET / HTTP/1.1\nHost: x\n\n", "line ending"),
            ("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "bare LF"),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
                "forbidden byte",
            ),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "malformed"),
            ("GET / HTTP/1.1\r\nX: y\r\n\r\n", "no Host"),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                "more than one Host",
            ),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "name"),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "malformed"),
            ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "request line"),
            ("\x16\x03\x01 nonsense\r\n\r\n", "request line"),
        ];
        for (head, reason) in cases {
            let r = refused(head);
            assert_eq!(r.status, 400, "{head:?}: {r:?}");
            assert!(r.reason.contains(reason), "{head:?}: {r:?}");
        }
    }

    #[test]
    fn other_versions_get_505_and_oversized_heads_431() {
        assert_eq!(refused("GET / HTTP/2.0\r\n\r\n").status, 505);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(100)
        );
        assert_eq!(parse(big.as_bytes(), 50).unwrap_err().status, 431);
        assert_eq!(parse(&big.as_bytes()[..60], 50).unwrap_err().status, 431);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X{i}: y\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(refused(&many).status, 431);
    }

    #[test]
    fn tokens_are_found_in_any_line_of_a_list_header() {
        let head =
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n\r\n";
        let head = parse(head.as_bytes(), 1024).unwrap().unwrap();
        assert!(head.has_token("connection", "upgrade"));
        assert!(!head.has_token("connection", "close"));
    }
}
