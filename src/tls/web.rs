//! The certificate the web console (HTTPS) and the WebSocket listeners (wss) present, and
//! which of them use it: with `web_tls = "auto"`, every one bound to anything but loopback,
//! and all of them once the operator names a certificate; `"on"` all, `"off"` none. Without
//! the operator's certificate, a self-signed one is generated on first start (rcgen) and
//! kept beside the database (`outpost-web-cert.pem`, and `outpost-web-key.pem` with mode
//! 0600); its SHA-256 fingerprint is logged at start, printed by `check-config` and shown on
//! the admin page, so a person can compare it with what the browser shows on first visit.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use super::{load_certs, server_config, TlsError};
use serde::{Deserialize, Serialize};

/// The certificate and key of the web listeners, once loaded.
#[derive(Clone)]
pub struct WebTls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate, as browsers show it (`AB:CD:…`).
    pub fingerprint: String,
    /// Where the certificate is (the operator's file or the generated one).
    pub cert_path: PathBuf,
}

/// `web_tls`: where the console and the WebSocket listeners serve TLS.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebTlsMode {
    /// On every address but loopback; everywhere once a certificate is configured.
    #[default]
    Auto,
    /// Everywhere, loopback included.
    On,
    /// Nowhere: plain HTTP and ws, with a warning for a non-loopback address.
    Off,
}

/// What the web listeners' TLS is set up from; the caller takes it from its settings.
pub struct Settings<'a> {
    pub mode: WebTlsMode,
    /// The operator's certificate chain and key, when given.
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    /// Extra names the generated certificate is for.
    pub hosts: &'a [String],
    /// The console's address and the WebSocket listeners'.
    pub addresses: Vec<SocketAddr>,
    /// The database, beside which a generated pair is kept.
    pub db: &'a Path,
}

/// True when a web-facing listener on `addr` serves TLS.
pub fn serves_tls(settings: &Settings, addr: SocketAddr) -> bool {
    match settings.mode {
        WebTlsMode::On => true,
        WebTlsMode::Off => false,
        WebTlsMode::Auto => settings.cert.is_some() || !addr.ip().is_loopback(),
    }
}

/// The console's address and the WebSocket listeners', those that serve TLS.
fn web_addresses<'s>(settings: &'s Settings) -> impl Iterator<Item = SocketAddr> + 's {
    settings.addresses.iter().copied()
}

/// The generated certificate's and key's paths, beside the database.
pub fn generated_paths(db: &Path) -> (PathBuf, PathBuf) {
    let dir = db.parent().unwrap_or(Path::new("."));
    (
        dir.join("outpost-web-cert.pem"),
        dir.join("outpost-web-key.pem"),
    )
}

/// The certificate and key files in use: the operator's, or the generated pair.
fn paths(settings: &Settings) -> (PathBuf, PathBuf) {
    match (settings.cert, settings.key) {
        (Some(cert), Some(key)) => (cert.to_path_buf(), key.to_path_buf()),
        _ => generated_paths(settings.db),
    }
}

/// Loads the web listeners' certificate, generating it first when none was given and none
/// was generated before; `None` when no web listener serves TLS. Logs the fingerprint, and
/// a warning for each plain listener on a non-loopback address.
pub fn prepare(settings: &Settings) -> Result<Option<WebTls>, TlsError> {
    for addr in web_addresses(settings) {
        if !addr.ip().is_loopback() && !serves_tls(settings, addr) {
            log::warn!(
                "{addr} serves plain HTTP/WebSocket to the network (web_tls = \"off\"): \
                 passwords, cookies and chat cross it unencrypted"
            );
        }
    }
    if !web_addresses(settings).any(|a| serves_tls(settings, a)) {
        return Ok(None);
    }
    let (cert, key) = paths(settings);
    if settings.cert.is_none() && !cert.exists() {
        generate(settings, &cert, &key)?;
        log::info!(
            "generated a self-signed certificate for the web console and WebSocket \
             listeners: {}",
            cert.display()
        );
    }
    let loaded = WebTls {
        config: server_config(&cert, &key, None)?,
        fingerprint: fingerprint(&load_certs(&cert)?[0]),
        cert_path: cert,
    };
    log::info!(
        "web TLS certificate {} SHA-256 fingerprint {}",
        loaded.cert_path.display(),
        loaded.fingerprint
    );
    Ok(Some(loaded))
}

/// For `check-config`: which certificate the web listeners present and its fingerprint
/// (without generating one); `None` when none serves TLS.
pub fn describe(settings: &Settings) -> Result<Option<String>, TlsError> {
    if !web_addresses(settings).any(|a| serves_tls(settings, a)) {
        return Ok(None);
    }
    let (cert, _) = paths(settings);
    if settings.cert.is_none() && !cert.exists() {
        return Ok(Some(format!(
            "a self-signed certificate will be generated on first start at {}",
            cert.display()
        )));
    }
    let print = fingerprint(&load_certs(&cert)?[0]);
    Ok(Some(format!(
        "{} SHA-256 fingerprint {print}",
        cert.display()
    )))
}

/// SHA-256 of a certificate in upper-case hex pairs joined by colons.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let mut text = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        let _ = write!(text, "{byte:02X}");
    }
    text
}

/// The names the generated certificate is for: loopback, this host's name, the listen
/// addresses that name one interface, and `web_hosts`.
fn names(settings: &Settings) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
            names.push(format!("{host}.local"));
        }
    }
    for addr in web_addresses(settings) {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(settings.hosts.iter().cloned());
    names.sort();
    names.dedup();
    names
}

fn generate(settings: &Settings, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let failed = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.to_owned(),
        detail: format!("cannot generate the web certificate: {e}"),
    };
    let mut params =
        rcgen::CertificateParams::new(names(settings)).map_err(|e| failed(cert, &e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Outpost web console");
    let pair = rcgen::KeyPair::generate().map_err(|e| failed(key, &e))?;
    let certificate = params.self_signed(&pair).map_err(|e| failed(cert, &e))?;
    write_new(key, pair.serialize_pem().as_bytes(), 0o600).map_err(|e| failed(key, &e))?;
    write_new(cert, certificate.pem().as_bytes(), 0o644).map_err(|e| failed(cert, &e))?;
    Ok(())
}

/// Writes a file that must not exist yet, created with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults' settings: console on loopback, no certificate given.
    fn settings(db: &Path) -> Settings<'_> {
        Settings {
            mode: WebTlsMode::Auto,
            cert: None,
            key: None,
            hosts: &[],
            addresses: vec!["127.0.0.1:8080".parse().unwrap()],
            db,
        }
    }

    #[test]
    fn auto_serves_tls_off_loopback_or_with_a_certificate() {
        let mut settings = settings(Path::new("outpost.db"));
        let lan: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(serves_tls(&settings, lan));
        assert!(!serves_tls(&settings, local));
        settings.cert = Some(Path::new("c.pem"));
        assert!(serves_tls(&settings, local));
        settings.mode = WebTlsMode::Off;
        assert!(!serves_tls(&settings, lan));
        settings.mode = WebTlsMode::On;
        settings.cert = None;
        assert!(serves_tls(&settings, local));
    }

    #[test]
    fn a_generated_certificate_is_kept_with_a_private_key_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("outpost.db");
        let config = Settings {
            mode: WebTlsMode::On,
            ..settings(&db)
        };
        let first = prepare(&config).unwrap().unwrap();
        let (cert, key) = generated_paths(&db);
        assert_eq!(first.cert_path, cert);
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let again = prepare(&config).unwrap().unwrap();
        assert_eq!(again.fingerprint, first.fingerprint, "generated once");
        assert!(describe(&config)
            .unwrap()
            .unwrap()
            .contains(&first.fingerprint));
    }
}
