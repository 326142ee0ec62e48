//! The request loop: [`THREADS`] threads share one `tiny_http` listener, each with its
//! own SQLite connection; bodies and URLs are size-limited before anything else looks at
//! them, and every reply carries the security headers.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response};

use super::limit::LoginLimiter;
use super::routes;
use super::session::Sessions;
use crate::broker::console::{self, AskError, ConsoleAnswer, ConsoleAsk};
use crate::broker::InboxSender;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Request threads: one can hash a password (bcrypt, slow on purpose) while the other
/// keeps the admin page live.
const THREADS: usize = 2;
/// Largest request body accepted (forms and API commands are small).
pub const MAX_BODY: usize = 16 * 1024;
/// Longest URL accepted.
const MAX_URL: usize = 4096;
/// How long a request waits for the loop's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// Sent with every reply: no inline script, no framing, no type sniffing.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
];

/// Why the console could not start.
#[derive(Debug)]
pub enum WebError {
    Bind(SocketAddr, String),
    Store(StoreError),
    Thread(std::io::Error),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Bind(addr, e) => write!(f, "cannot listen on {addr} (web console): {e}"),
            WebError::Store(e) => write!(f, "web console: {e}"),
            WebError::Thread(e) => write!(f, "cannot start the web console threads: {e}"),
        }
    }
}

impl std::error::Error for WebError {}

/// What every request thread shares.
pub struct Context {
    pub inbox: InboxSender,
    pub sessions: Mutex<Sessions>,
    pub limiter: Mutex<LoginLimiter>,
    pub bcrypt_cost: u32,
    /// A hash checked against when the user does not exist, so a login takes as long for
    /// an unknown name as for a wrong password.
    pub dummy_hash: OnceLock<String>,
}

impl Context {
    /// Asks the loop; `None` when it did not answer in time (the caller answers 503).
    pub fn ask(&self, ask: ConsoleAsk) -> Result<ConsoleAnswer, AskError> {
        console::ask(&self.inbox, ask, ASK_TIMEOUT)
    }
}

/// One request as the handlers see it: decoded, with its body read.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub cookie: Option<String>,
    pub origin: Option<String>,
    pub host: Option<String>,
    pub content_type: Option<String>,
    pub csrf_header: Option<String>,
    pub peer: IpAddr,
    pub body: Vec<u8>,
}

impl Req {
    /// The body as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        super::form::parse(&String::from_utf8_lossy(&self.body))
    }

    /// True when the body is declared as `mime` (parameters such as charset ignored).
    pub fn body_is(&self, mime: &str) -> bool {
        self.content_type
            .as_deref()
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(mime))
    }
}

/// What a handler answers.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn html(status: u16, body: String) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        let body = serde_json::to_vec(value).expect("console values serialise");
        Reply::new(status, "application/json", body)
    }

    /// `{"error": code, "message": text}` with `status`.
    pub fn json_error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &serde_json::json!({ "error": code, "message": message }),
        )
    }

    /// 303 See Other: after a form post, the browser fetches `location` with GET.
    pub fn redirect(location: &str) -> Reply {
        Reply::new(303, "text/plain; charset=utf-8", "").with("Location", location.to_owned())
    }

    pub fn with(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// Binds the console's address and starts its threads; they run until the process ends.
pub fn spawn(config: &Config, addr: SocketAddr, inbox: InboxSender) -> Result<(), WebError> {
    let server = tiny_http::Server::http(addr).map_err(|e| WebError::Bind(addr, e.to_string()))?;
    let bound = server.server_addr().to_ip().map_or(addr, |bound| bound);
    log::info!("http console on {bound}");
    let server = Arc::new(server);
    let context = Arc::new(Context {
        inbox,
        sessions: Mutex::default(),
        limiter: Mutex::default(),
        bcrypt_cost: config.bcrypt_cost,
        dummy_hash: OnceLock::new(),
    });
    for n in 0..THREADS {
        let store = Store::open(&config.db, config.sync).map_err(WebError::Store)?;
        let (server, context) = (server.clone(), context.clone());
        std::thread::Builder::new()
            .name(format!("web-{n}"))
            .spawn(move || {
                for request in server.incoming_requests() {
                    serve(&context, &store, request);
                }
            })
            .map_err(WebError::Thread)?;
    }
    Ok(())
}

fn serve(context: &Context, store: &Store, mut request: Request) {
    let reply = match read(&mut request) {
        Ok(req) => {
            let reply = routes::handle(context, store, &req);
            if reply.status >= 500 || (reply.status >= 400 && reply.status != 404) {
                log::info!(
                    "http {} {} from {}: {}",
                    req.method,
                    req.path,
                    req.peer,
                    reply.status
                );
            }
            reply
        }
        Err(reply) => {
            log::info!(
                "http request from {:?} refused: {}",
                request.remote_addr(),
                reply.status
            );
            reply
        }
    };
    respond(request, reply);
}

/// Decodes the request and reads its body, or answers 413/414 straight away.
fn read(request: &mut Request) -> Result<Req, Reply> {
    let url = request.url().to_owned();
    if url.len() > MAX_URL {
        return Err(plain(414, "URL too long"));
    }
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(plain(413, "request body too large"));
    }
    let mut body = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    if request
        .as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .is_err()
    {
        return Err(plain(400, "cannot read the request body"));
    }
    if body.len() > MAX_BODY {
        return Err(plain(413, "request body too large"));
    }
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    Ok(Req {
        method: request.method().clone(),
        path: path.to_owned(),
        query: super::form::parse(query),
        cookie: header("Cookie"),
        origin: header("Origin"),
        host: header("Host"),
        content_type: header("Content-Type"),
        csrf_header: header(super::csrf::HEADER),
        peer: request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip()),
        body,
    })
}

fn plain(status: u16, text: &str) -> Reply {
    Reply::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

fn respond(request: Request, reply: Reply) {
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    let cache = if reply.content_type.starts_with("text/css")
        || reply.content_type.starts_with("text/javascript")
    {
        "max-age=3600"
    } else {
        "no-store"
    };
    let fixed = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", cache),
    ];
    for (name, value) in SECURITY_HEADERS.iter().chain(fixed.iter()) {
        response.add_header(header(name, value));
    }
    for (name, value) in &reply.headers {
        response.add_header(header(name, value));
    }
    // The client may have gone; nothing to do then.
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header text is ASCII")
}
