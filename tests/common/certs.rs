//! A throwaway certificate authority for the TLS tests, made with the `openssl` command:
//! a CA, a server certificate for `localhost` / `127.0.0.1` and a client certificate,
//! all signed by it, plus a second CA that signed nothing (the "wrong CA").

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for ca in ["ca", "other-ca"] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=Outpost test {ca}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                ],
            );
        }
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            sign(d, name, usage, "DNS:localhost,IP:127.0.0.1");
        }
        Certs { dir }
    }

    /// A server certificate `{name}.pem` (key `{name}.key`) signed by the CA for the
    /// names in `san` (openssl's `subjectAltName` syntax, `DNS:a,IP:b`); openssl takes any
    /// text as a DNS name, as a hostile upstream's certificate may carry.
    pub fn server(&self, name: &str, san: &str) {
        sign(self.dir.path(), name, "serverAuth", san);
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `path` as a string for command lines and config files.
    pub fn arg(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }
}

/// A key and a certificate `{name}` for `usage` and the names `san`, signed by `ca`.
fn sign(d: &Path, name: &str, usage: &str, san: &str) {
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = format!(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n\
         subjectAltName={san}\n"
    );
    std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
