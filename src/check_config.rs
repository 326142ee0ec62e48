//! `outpost check-config FILE`: validate a config file the way the broker would and print
//! the settings it gives (the file over the defaults), or the error with its line.
//!
//! Meant to run before a restart or a `systemctl reload`: a file that passes here starts
//! the broker; one that fails names the option and shows the offending line. Beyond the
//! settings themselves it loads the TLS certificates, keys and CAs, as start-up does.

use std::fmt::Write as _;
use std::path::Path;

use crate::broker::RunError;
use crate::config::{Config, ConfigError};
use crate::tls::{self, TlsError};

/// Checks the file at `path`; prints the effective settings on standard output and returns
/// 0, or prints the error on standard error and returns 2.
pub fn run(path: &Path) -> i32 {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(source) => {
            let e = ConfigError::Read {
                path: path.to_owned(),
                source,
            };
            eprintln!("outpost: {e}");
            return 2;
        }
    };
    match check(path, &text) {
        Ok(settings) => {
            print!("{settings}");
            0
        }
        Err(report) => {
            eprint!("{report}");
            2
        }
    }
}

/// The effective settings as a commented TOML document, or the error report: one line
/// naming the file, the option and the line number, then the line itself when known.
pub fn check(path: &Path, text: &str) -> Result<String, String> {
    let config = Config::from_toml_str(text).map_err(|e| report(path, text, e))?;
    load_tls_files(&config).map_err(|e| tls_report(path, text, e))?;
    let web_tls =
        tls::web::describe(&config).map_err(|e| tls_report(path, text, RunError::Tls(e)))?;
    let mut out = effective(path, &config);
    if let Some(certificate) = web_tls {
        let _ = writeln!(out, "# HTTPS console and wss certificate: {certificate}");
    }
    out.push_str(&user_name_notes(&config.storage.db));
    Ok(out)
}

/// A note on the accounts of the database at `db`, when it exists, whose names differ only
/// in case (made before names were unique that way): they keep working, each under its
/// exact name, and the operator may want to merge or rename them.
fn user_name_notes(db: &Path) -> String {
    if !db.exists() {
        return String::new();
    }
    match crate::store::users::colliding_user_names_in(db) {
        Ok(groups) if groups.is_empty() => String::new(),
        Ok(groups) => {
            let mut out = format!(
                "# note: {} has user names that differ only in case; each logs in under its\n\
                 # exact name, another spelling finds the oldest, and no new one can be added:\n",
                db.display()
            );
            for group in groups {
                let _ = writeln!(out, "#   {}", group.join(", "));
            }
            out
        }
        Err(e) => format!(
            "# note: cannot read the user names in {}: {e}\n",
            db.display()
        ),
    }
}

/// Loads every TLS file the broker would load at start-up, through the same functions.
fn load_tls_files(config: &Config) -> Result<(), RunError> {
    tls::listeners_config(config).map_err(RunError::Tls)?;
    crate::broker::load_bridge_tls(config)?;
    Ok(())
}

/// A TLS file that cannot be loaded: start-up's message, then the line naming the file.
fn tls_report(path: &Path, text: &str, e: RunError) -> String {
    let file = match &e {
        RunError::Tls(TlsError::File { path, .. })
        | RunError::Bridge(_, TlsError::File { path, .. }) => Some(path.display().to_string()),
        _ => None,
    };
    let mut out = format!("outpost: config {}: {e}\n", path.display());
    let line = file.and_then(|file| text.lines().enumerate().find(|(_, l)| l.contains(&file)));
    if let Some((i, content)) = line {
        let _ = writeln!(out, "  {} | {content}", i + 1);
    }
    out
}

fn report(path: &Path, text: &str, e: ConfigError) -> String {
    // Parse errors already end with "at line N"; validation errors know only the option.
    let (line, validation) = match &e {
        ConfigError::Parse { line, .. } => (*line, false),
        ConfigError::Invalid { option, .. } => (line_of(text, option), true),
        ConfigError::Read { .. } => (None, false),
    };
    let message = e.to_string();
    let mut out = format!(
        "outpost: config {}: {}",
        path.display(),
        message.strip_prefix("config: ").unwrap_or(&message)
    );
    if let (true, Some(n)) = (validation, line) {
        let _ = write!(out, " at line {n}");
    }
    out.push('\n');
    if let Some(content) = line.and_then(|n| text.lines().nth(n - 1)) {
        let _ = writeln!(out, "  {} | {content}", line.unwrap_or_default());
    }
    out
}

/// The 1-based line where `option = ...` is set.
fn line_of(text: &str, option: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(option)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// What a secret is printed as.
const HIDDEN: &str = "********";

/// The settings as TOML, with comments for what TOML cannot say and for what the
/// packaged service needs.
fn effective(path: &Path, config: &Config) -> String {
    let mut out = format!(
        "# Effective settings of {}: the file over the built-in defaults.\n",
        path.display()
    );
    if config.access.allow_anonymous.is_none() {
        out.push_str(
            "# allow_anonymous is unset: clients without a username may connect only through\n\
             # listeners bound to a loopback address.\n",
        );
    }
    // The output ends up in terminals, tickets and logs: no secrets in it.
    let mut shown = config.clone();
    let mut hidden = false;
    for password in shown
        .bridge
        .links
        .iter_mut()
        .filter_map(|b| b.password.as_mut())
    {
        *password = HIDDEN.to_string();
        hidden = true;
    }
    if hidden {
        let _ = writeln!(out, "# Bridge passwords are set but shown as \"{HIDDEN}\".");
    }
    // Serializing a validated config cannot fail: every field is a plain TOML value.
    out.push_str(&toml::to_string(&shown).unwrap_or_default());
    let low: Vec<String> = config
        .network
        .listen
        .iter()
        .chain(config.network.ws_listen.iter())
        .chain(config.web.http.iter())
        .filter(|a| a.port() != 0 && a.port() < 1024)
        .map(|a| a.to_string())
        .collect();
    if !low.is_empty() {
        let _ = writeln!(
            out,
            "# note: {} below port 1024: the packaged systemd unit needs\n\
             # CAP_NET_BIND_SERVICE for that (see docs/deploy.md).",
            low.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("/etc/outpost/outpost.toml")
    }

    #[test]
    fn the_printed_settings_read_back_as_the_same_config() {
        for text in [
            "",
            include_str!("../assets/outpost.toml"),
            "listen = [\"0.0.0.0:1883\", \"[::]:1883\"]\nhttp_enabled = false\n\
             allow_anonymous = false\nsync = \"normal\"\nlog_level = \"debug\"\n\
             deny_publish = [\"a/#\"]\n",
        ] {
            let printed = check(path(), text).unwrap();
            let config = Config::from_toml_str(text).unwrap();
            assert_eq!(
                Config::from_toml_str(&printed).unwrap(),
                config,
                "{printed}"
            );
        }
    }

    #[test]
    fn defaults_are_filled_in_and_unset_options_explained() {
        let printed = check(path(), "max_inflight = 7\n").unwrap();
        assert!(printed.starts_with("# Effective settings of /etc/outpost/outpost.toml"));
        assert!(printed.contains("\nmax_inflight = 7\n"), "{printed}");
        assert!(printed.contains("\nbcrypt_cost = 10\n"), "{printed}");
        assert!(printed.contains("\nlog_level = \"info\"\n"), "{printed}");
        assert!(printed.contains("allow_anonymous is unset"), "{printed}");
        assert!(!printed.contains("note:"), "{printed}");
        let printed = check(path(), "allow_anonymous = true\n").unwrap();
        assert!(printed.contains("\nallow_anonymous = true\n"), "{printed}");
        assert!(!printed.contains("is unset"), "{printed}");
    }

    #[test]
    fn low_ports_get_a_note() {
        let printed = check(
            path(),
            "listen = [\"0.0.0.0:883\"]\nws_listen = [\"0.0.0.0:443\"]\nhttp = \"0.0.0.0:80\"\n",
        )
        .unwrap();
        assert!(
            printed.contains("# note: 0.0.0.0:883, 0.0.0.0:443, 0.0.0.0:80 below port 1024"),
            "{printed}"
        );
        assert!(printed.contains("CAP_NET_BIND_SERVICE"), "{printed}");
    }

    #[test]
    fn a_parse_error_names_and_shows_the_line() {
        let text = "# comment\nmax_inflight = 5\nmax_conections = 3\n";
        let report = check(path(), text).unwrap_err();
        assert_eq!(
            report,
            "outpost: config /etc/outpost/outpost.toml: unknown option `max_conections` at line 3\n\
             \x20 3 | max_conections = 3\n"
        );
    }

    #[test]
    fn a_value_out_of_range_gets_its_line_too() {
        let text = "bcrypt_cost = 10\n\n  maximum_qos  = 7\n";
        let report = check(path(), text).unwrap_err();
        assert_eq!(
            report,
            "outpost: config /etc/outpost/outpost.toml: `maximum_qos` = 7 is out of range (0..=2) at line 3\n\
             \x20 3 |   maximum_qos  = 7\n"
        );
        let report = check(path(), "listen = []\n").unwrap_err();
        assert!(
            report.ends_with(
                "`listen` must name at least one address at line 1\n  1 | listen = []\n"
            ),
            "{report}"
        );
    }

    #[test]
    fn line_of_finds_the_option_not_a_longer_name() {
        let text = "max_connections_per_address = 1\nmax_connections = 2\n";
        assert_eq!(line_of(text, "max_connections"), Some(2));
        assert_eq!(line_of(text, "listen"), None);
    }
}
