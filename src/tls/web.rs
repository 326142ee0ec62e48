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
use crate::config::{Config, WebTlsMode};

/// The certificate and key of the web listeners, once loaded.
#[derive(Clone)]
pub struct WebTls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate, as browsers show it (`AB:CD:…`).
    pub fingerprint: String,
    /// Where the certificate is (the operator's file or the generated one).
    pub cert_path: PathBuf,
}

/// True when a web-facing listener on `addr` serves TLS.
pub fn serves_tls(config: &Config, addr: SocketAddr) -> bool {
    match config.web.web_tls {
        WebTlsMode::On => true,
        WebTlsMode::Off => false,
        WebTlsMode::Auto => config.web.web_tls_cert.is_some() || !addr.ip().is_loopback(),
    }
}

/// The console's address and the WebSocket listeners', those that serve TLS.
fn web_addresses(config: &Config) -> impl Iterator<Item = SocketAddr> + '_ {
    config
        .web
        .http
        .iter()
        .chain(&config.network.ws_listen)
        .copied()
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
fn paths(config: &Config) -> (PathBuf, PathBuf) {
    match (&config.web.web_tls_cert, &config.web.web_tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => generated_paths(&config.storage.db),
    }
}

/// Loads the web listeners' certificate, generating it first when none was given and none
/// was generated before; `None` when no web listener serves TLS. Logs the fingerprint, and
/// a warning for each plain listener on a non-loopback address.
pub fn prepare(config: &Config) -> Result<Option<WebTls>, TlsError> {
    for addr in web_addresses(config) {
        if !addr.ip().is_loopback() && !serves_tls(config, addr) {
            log::warn!(
                "{addr} serves plain HTTP/WebSocket to the network (web_tls = \"off\"): \
                 passwords, cookies and chat cross it unencrypted"
            );
        }
    }
    if !web_addresses(config).any(|a| serves_tls(config, a)) {
        return Ok(None);
    }
    let (cert, key) = paths(config);
    if config.web.web_tls_cert.is_none() && !cert.exists() {
        generate(config, &cert, &key)?;
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
pub fn describe(config: &Config) -> Result<Option<String>, TlsError> {
    if !web_addresses(config).any(|a| serves_tls(config, a)) {
        return Ok(None);
    }
    let (cert, _) = paths(config);
    if config.web.web_tls_cert.is_none() && !cert.exists() {
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
fn names(config: &Config) -> Vec<String> {
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
    for addr in web_addresses(config) {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(config.web.web_hosts.iter().cloned());
    names.sort();
    names.dedup();
    names
}

fn generate(config: &Config, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let failed = |path: &Path, e: &dyn std::fmt::Display| TlsError::File {
        path: path.to_owned(),
        detail: format!("cannot generate the web certificate: {e}"),
    };
    let mut params = rcgen::CertificateParams::new(names(config)).map_err(|e| failed(cert, &e))?;
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

    #[test]
    fn auto_serves_tls_off_loopback_or_with_a_certificate() {
        let mut config = Config::default();
        let lan: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(serves_tls(&config, lan));
        assert!(!serves_tls(&config, local));
        config.web.web_tls_cert = Some("c.pem".into());
        assert!(serves_tls(&config, local));
        config.web.web_tls = WebTlsMode::Off;
        assert!(!serves_tls(&config, lan));
        config.web.web_tls = WebTlsMode::On;
        config.web.web_tls_cert = None;
        assert!(serves_tls(&config, local));
    }

    #[test]
    fn a_generated_certificate_is_kept_with_a_private_key_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.db = dir.path().join("outpost.db");
        config.web.web_tls = WebTlsMode::On;
        let first = prepare(&config).unwrap().unwrap();
        let (cert, key) = generated_paths(&config.storage.db);
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
