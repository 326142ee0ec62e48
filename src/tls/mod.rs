//! TLS as a framing layer between a socket and an MQTT buffer, with rustls's sans-IO API:
//! ciphertext read from the socket goes in, plaintext comes out; plaintext to send goes in,
//! ciphertext for the socket comes out. Nothing here touches a socket, so the same
//! [`TlsSession`] sits under a listener's connections and under the bridge's outbound
//! connection. Also: loading certificates, keys and CAs from PEM files into rustls configs;
//! `web` — the certificate of the console and the WebSocket listeners (given or generated).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};

pub mod web;

use crate::bridge::BridgeConfig;
use crate::config::Config;

/// Why TLS could not be set up or went wrong; one line, naming the file when there is one.
#[derive(Debug)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read or holds nothing usable.
    File { path: PathBuf, detail: String },
    /// rustls refused the configuration (a key that does not match its certificate …).
    Config(String),
    /// The peer broke the protocol or failed verification (bad certificate, wrong name).
    Session(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::File { path, detail } => write!(f, "{}: {detail}", path.display()),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
            TlsError::Session(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// One TLS connection, client or server side.
pub struct TlsSession {
    conn: Connection,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl TlsSession {
    /// Feeds ciphertext from the socket and appends the plaintext it yields to `plain`.
    /// Handshake answers it causes are picked up by the next [`Self::write_plaintext`].
    pub fn read_ciphertext(
        &mut self,
        mut data: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        let mut chunk = [0u8; 4096];
        while !data.is_empty() {
            let n = self
                .conn
                .read_tls(&mut data)
                .map_err(|e| TlsError::Config(e.to_string()))?;
            self.conn.process_new_packets().map_err(TlsError::Session)?;
            loop {
                match self.conn.reader().read(&mut chunk) {
                    Ok(0) => break,
                    Ok(k) => plain.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(TlsError::Config(e.to_string())),
                }
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Encrypts `plain` (emptied, once the handshake is done; kept until then) and appends
    /// what must go to the socket, handshake messages included, to `wire`.
    pub fn write_plaintext(
        &mut self,
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        let io = |e: io::Error| TlsError::Config(e.to_string());
        let mut taken = 0;
        if !self.conn.is_handshaking() {
            // rustls buffers a bounded amount: hand it a piece, collect the records, repeat.
            while taken < plain.len() {
                let n = self.conn.writer().write(&plain[taken..]).map_err(io)?;
                taken += n;
                while self.conn.wants_write() {
                    self.conn.write_tls(wire).map_err(io)?;
                }
                if n == 0 {
                    break;
                }
            }
        }
        plain.drain(..taken);
        while self.conn.wants_write() {
            self.conn.write_tls(wire).map_err(io)?;
        }
        Ok(())
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues the close_notify alert (nothing more is sent after it) and appends it to `wire`.
    pub fn close_notify(&mut self, wire: &mut Vec<u8>) -> Result<(), TlsError> {
        self.conn.send_close_notify();
        self.write_plaintext(&mut Vec::new(), wire)
    }
}

/// A [`TlsSession`] with the buffers a connection keeps around it: plaintext decrypted
/// and not yet taken, ciphertext not yet written.
#[derive(Debug)]
pub struct Layer {
    session: TlsSession,
    plain: Vec<u8>,
    plain_pos: usize,
    wire: Vec<u8>,
    wire_pos: usize,
}

impl Layer {
    pub fn new(session: TlsSession) -> Layer {
        Layer {
            session,
            plain: Vec::new(),
            plain_pos: 0,
            wire: Vec::new(),
            wire_pos: 0,
        }
    }

    /// Copies decrypted plaintext into `buf`; 0 when there is none waiting.
    pub fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let waiting = &self.plain[self.plain_pos..];
        let n = waiting.len().min(buf.len());
        buf[..n].copy_from_slice(&waiting[..n]);
        self.plain_pos += n;
        if self.plain_pos == self.plain.len() {
            self.plain.clear();
            self.plain_pos = 0;
        }
        n
    }

    /// Feeds ciphertext read from the socket.
    pub fn feed(&mut self, ciphertext: &[u8]) -> Result<(), TlsError> {
        self.session.read_ciphertext(ciphertext, &mut self.plain)?;
        // Handshake answers go out with the next flush.
        self.session
            .write_plaintext(&mut Vec::new(), &mut self.wire)
    }

    /// Encrypts what of `plain` the session takes (all of it once the handshake is done).
    pub fn encrypt(&mut self, plain: &mut Vec<u8>) -> Result<(), TlsError> {
        self.session.write_plaintext(plain, &mut self.wire)
    }

    /// Ciphertext to write to the socket next.
    pub fn wire(&self) -> &[u8] {
        &self.wire[self.wire_pos..]
    }

    /// The socket took `n` bytes of [`Self::wire`].
    pub fn written(&mut self, n: usize) {
        self.wire_pos += n;
        if self.wire_pos == self.wire.len() {
            self.wire.clear();
            self.wire_pos = 0;
        }
    }

    /// Bytes of ciphertext waiting for the socket.
    pub fn pending(&self) -> usize {
        self.wire.len() - self.wire_pos
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Ends the TLS session: encrypts what of `plain` the session takes, queues the
    /// close_notify alert after it (once the handshake is done), and gives back every byte
    /// of ciphertext not yet written.
    pub fn finish(mut self, plain: &mut Vec<u8>) -> Vec<u8> {
        let mut wire = self.wire.split_off(self.wire_pos);
        // A failure leaves what was encrypted so far: all there is to send. A peer that
        // has not finished the handshake was told nothing, and gets no alert either.
        if !self.session.is_handshaking() {
            let _ = self
                .session
                .write_plaintext(plain, &mut wire)
                .and_then(|()| self.session.close_notify(&mut wire));
        }
        wire
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, detail: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

/// Every certificate in a PEM file; an empty file is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The TLS listeners' configuration: their certificate and key, and the CA client
/// certificates must chain to when `client_ca` is given.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(load_roots(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| file_error(key, format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The TLS listeners' configuration from the broker's settings; `None` without TLS
/// listeners. Start-up and `check-config` both load the files through here.
pub fn listeners_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    match (&config.network.tls_cert, &config.network.tls_key) {
        (Some(cert), Some(key)) if !config.network.tls_listen.is_empty() => {
            server_config(cert, key, config.network.tls_client_ca.as_deref()).map(Some)
        }
        _ => Ok(None),
    }
}

/// A server-side session for a newly accepted connection.
pub fn server(config: Arc<ServerConfig>) -> Result<TlsSession, TlsError> {
    let conn = ServerConnection::new(config).map_err(TlsError::Session)?;
    Ok(TlsSession { conn: conn.into() })
}

/// A bridge's client configuration: its CA file or the built-in Mozilla roots, and its
/// client certificate if it has one.
pub fn client_config(bridge: &BridgeConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &bridge.ca_file {
        Some(path) => load_roots(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&bridge.cert_file, &bridge.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| file_error(key, format!("does not fit the certificate: {e}")))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// [`client_config`] for a bridge with `tls = true`; `None` for a plain one.
pub fn bridge_config(bridge: &BridgeConfig) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    bridge.tls.then(|| client_config(bridge)).transpose()
}

/// A client session toward the bridge's upstream at `address`, checking its certificate
/// against `server_name` (default: the host of `address`).
pub fn client(
    config: Arc<ClientConfig>,
    bridge: &BridgeConfig,
    address: &str,
) -> Result<TlsSession, TlsError> {
    let host = crate::bridge::config::host_of(address);
    let name = bridge.server_name.as_deref().unwrap_or(host);
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| TlsError::Config(format!("server name {name:?}: {e}")))?;
    let conn = ClientConnection::new(config, name).map_err(TlsError::Session)?;
    Ok(TlsSession { conn: conn.into() })
}
