//! What the handlers see and answer ([`Req`], [`Reply`], the shared [`Context`]), how the
//! console starts (its poll loop in `front`, its workers in `workers`), and how one complete
//! request becomes an answer with the security headers every reply carries.

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::front::{Caps, Front};
use super::http::{self, Method, Request};
use super::limit::LoginLimiter;
use super::routes;
use super::session::Sessions;
use super::workers::Pool;
use crate::accounts::{Bcrypt, Hasher};
use crate::auth::password::PasswordError;
use crate::broker::console::{self, AskError, ConsoleAnswer, ConsoleAsk};
use crate::broker::InboxSender;
use crate::config::Config;
use crate::origin::Sites;
use crate::store::HelperStore;
use crate::tls::web::WebTls;

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
    // Not `no-referrer`: with it Chromium sends `Origin: null` on form posts, which the
    // cross-origin check must refuse.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
];

/// Why the console could not start.
#[derive(Debug)]
pub enum WebError {
    Bind(SocketAddr, std::io::Error),
    Thread(std::io::Error),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Bind(addr, e) => write!(f, "cannot listen on {addr} (web console): {e}"),
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
    bcrypt_cost: u32,
    /// A hash checked against when the user does not exist, so a login takes as long for
    /// an unknown name as for a wrong password.
    pub dummy_hash: OnceLock<String>,
    /// Held while bcrypt runs: one password check at a time, so a burst of logins costs at
    /// most one core and the broker loop keeps the other.
    hashing: Mutex<()>,
    /// The SHA-256 fingerprint of the certificate the console presents over HTTPS, shown
    /// on the admin page so the admin can check what the browser was given.
    pub tls_fingerprint: Option<String>,
}

/// bcrypt at the configured cost, one hash or check at a time.
impl Hasher for Context {
    fn hash(&self, plain: &str) -> Result<String, PasswordError> {
        let _slot = self.hashing.lock().expect("hashing slot");
        Bcrypt(self.bcrypt_cost).hash(plain)
    }

    fn verify(&self, plain: &[u8], hash: &str) -> bool {
        let _slot = self.hashing.lock().expect("hashing slot");
        Bcrypt(self.bcrypt_cost).verify(plain, hash)
    }
}

impl Context {
    /// Asks the loop and waits up to [`ASK_TIMEOUT`]; an error means no answer (the
    /// caller answers 503).
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
    /// The request came over HTTPS: cookies get `Secure`.
    pub https: bool,
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

/// Binds the console's address and starts its poll loop and workers; they run until the
/// process ends.
pub fn spawn(
    config: &Config,
    addr: SocketAddr,
    inbox: InboxSender,
    web_tls: Option<WebTls>,
) -> Result<(), WebError> {
    let listener = TcpListener::bind(addr).map_err(|e| WebError::Bind(addr, e))?;
    let bound = listener.local_addr().unwrap_or(addr);
    let tls = web_tls.filter(|_| crate::tls::web::serves_tls(&config.web_tls(), addr));
    match &tls {
        Some(tls) => log::info!(
            "console on https://{bound}/ (certificate SHA-256 fingerprint {})",
            tls.fingerprint
        ),
        None => log::info!("console on http://{bound}/"),
    }
    let context = Arc::new(Context {
        inbox,
        sessions: Mutex::default(),
        limiter: Mutex::new(LoginLimiter::new(config.accounts.registrations_per_hour)),
        bcrypt_cost: config.accounts.bcrypt_cost,
        dummy_hash: OnceLock::new(),
        hashing: Mutex::new(()),
        tls_fingerprint: tls.as_ref().map(|t| t.fingerprint.clone()),
    });
    let caps = Caps {
        per_address: config.web.web_max_connections_per_address,
        total: config.web.web_max_connections,
    };
    let (db, sync) = (config.storage.db.clone(), config.storage.sync);
    let sites = Sites::from_config(&config.web);
    let front = Front::new(
        listener,
        caps,
        tls.map(|t| t.config),
        sites,
        |done, waker| Pool::spawn(context, db, sync, done, waker),
    )
    .map_err(WebError::Thread)?;
    std::thread::Builder::new()
        .name("web".to_owned())
        .spawn(move || front.run())
        .map_err(WebError::Thread)?;
    Ok(())
}

/// Runs one complete request through the routes: the encoded answer, and whether the
/// connection closes after it.
pub fn serve(
    context: &Context,
    store: &HelperStore,
    request: Request,
    peer: IpAddr,
    https: bool,
) -> (Vec<u8>, bool) {
    let send_body = request.method != Method::Head;
    let keep_alive = request.keep_alive;
    let req = decode(request, peer, https);
    // When the database cannot be opened, the next request tries again.
    let reply = store
        .with(|store| routes::handle(context, store, &req))
        .unwrap_or_else(|e| {
            log::warn!("web console: {e}");
            plain(503, "the database is not available; see the broker log")
        });
    if reply.status >= 400 && reply.status != 404 {
        log::info!(
            "http {} {} from {}: {}",
            req.method,
            req.path,
            req.peer,
            reply.status
        );
    }
    // A handler may end the connection with `Connection: close`.
    let close = !keep_alive
        || reply
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    (encode(reply, send_body, close, req.https), close)
}

/// The handlers' view of a request.
fn decode(request: Request, peer: IpAddr, https: bool) -> Req {
    let header = |name: &str| request.header(name).map(str::to_owned);
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    Req {
        // HEAD is answered like GET, without the body.
        method: match request.method {
            Method::Head => Method::Get,
            m => m,
        },
        path: path.to_owned(),
        query: super::form::parse(query),
        cookie: header("cookie"),
        origin: header("origin"),
        host: header("host"),
        content_type: header("content-type"),
        csrf_header: header(&super::csrf::HEADER.to_ascii_lowercase()),
        peer,
        https,
        body: request.body,
    }
}

fn plain(status: u16, text: &str) -> Reply {
    Reply::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
}

/// The bytes of `reply` with the security and cache headers; cookies set over HTTPS are
/// `Secure`.
fn encode(reply: Reply, send_body: bool, close: bool, https: bool) -> Vec<u8> {
    let cache = if reply.content_type.starts_with("text/css")
        || reply.content_type.starts_with("text/javascript")
    {
        "max-age=3600"
    } else {
        "no-store"
    };
    // A reply may set its own policy (the chat page widens connect-src).
    let mut headers: Vec<(&str, &str)> = SECURITY_HEADERS
        .iter()
        .filter(|(name, _)| !reply.headers.iter().any(|(n, _)| n == name))
        .copied()
        .collect();
    headers.push(("Content-Type", reply.content_type));
    headers.push(("Cache-Control", cache));
    let secure: Vec<String> = reply
        .headers
        .iter()
        .filter(|(n, _)| https && n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| format!("{v}; Secure"))
        .collect();
    headers.extend(secure.iter().map(|v| ("Set-Cookie", v.as_str())));
    for (name, value) in &reply.headers {
        let secured = https && name.eq_ignore_ascii_case("set-cookie");
        if !secured && !name.eq_ignore_ascii_case("connection") {
            headers.push((name, value));
        }
    }
    http::encode_response(reply.status, &headers, &reply.body, send_body, close)
}
