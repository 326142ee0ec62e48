//! Command-line parsing: flags over the config file, and the subcommands.
//!
//! Hand-written rather than a dependency: the grammar is five flags and a few
//! subcommand words whose arguments are short or handed on untouched.
//!
//! ```text
//! outpost [--config FILE] [--listen HOST:PORT]... [--ws-listen HOST:PORT|off]...
//!         [--http HOST:PORT|off] [--db PATH]
//! outpost [--config FILE] [--db PATH] user|acl|ban ARGS...
//! outpost [--config FILE] [--db PATH] backup DEST
//! outpost check-config FILE
//! outpost --help | -h | --version | -V
//! ```
//!
//! Every flag also takes the `--flag=value` form. Precedence is defaults <
//! `--config` file < flags; `--listen` and `--ws-listen` flags, when given,
//! replace the file's whole list. The broker keeps the [`ConfigSource`] so that
//! SIGHUP reads the same file again under the same flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

/// Help text printed by `outpost --help`.
pub const USAGE: &str = "\
outpost - an MQTT 5 and 3.1.1 broker for small gateways

Usage:
  outpost [--config FILE] [--listen HOST:PORT]... [--ws-listen HOST:PORT|off]...
          [--http HOST:PORT|off] [--db PATH]
  outpost [--config FILE] [--db PATH] user|acl|ban COMMAND [ARGS...]
  outpost [--config FILE] [--db PATH] backup DEST
  outpost check-config FILE
  outpost --help | --version

Options:
  --config FILE       read settings from a TOML file (see docs/config.md);
                      without it the built-in defaults are used
  --listen HOST:PORT  MQTT listener; repeat for several. Replaces the file's
                      `listen` list (default 127.0.0.1:1883)
  --ws-listen HOST:PORT
                      MQTT-over-WebSocket listener (ws://HOST:PORT/mqtt), or
                      `off`; repeat for several. Replaces the file's
                      `ws_listen` list (default 127.0.0.1:8083)
  --http HOST:PORT    web console address, or `off` (default 127.0.0.1:8080)
  --db PATH           SQLite database (default outpost.db)
  -h, --help          print this help
  -V, --version       print the version
HOST is an IP address: 0.0.0.0 for every IPv4 interface, [::] for IPv6.
Flags override the config file. Every flag also accepts --flag=value.

Accounts and access rules (stored in the database):
  user add NAME [--admin] [--password-stdin]
                      create a user; the password is prompted for, or read
                      from standard input with --password-stdin
  user passwd NAME    change a user's password
  user del NAME       delete a user
  user list           list users
  acl add (--user NAME | --pattern) TOPIC read|write|readwrite|deny
                      add an access rule for one user, or a pattern rule
  acl list            list access rules with their ids
  acl del ID          delete an access rule
  ban add client_id|username|address VALUE [--reason TEXT] [--for TIME]
                      refuse a client id, a user or an address or network
                      (10.0.0.0/8, 2001:db8::/32) for TIME (3600, 90m, 12h,
                      7d) or until removed
  ban list            list bans with their ids
  ban remove ID       lift a ban

Day two (see docs/deploy.md):
  check-config FILE   check a config file and print the settings it gives;
                      exit status 2 and the offending line if it is wrong
  backup DEST         copy the database to DEST, consistently, while the
                      broker runs; restore by putting the copy in its place
                      while the broker is stopped
  SIGHUP              makes a running broker read its config file, ACL
                      rules and bans again; it logs what needs a restart
                      instead
  SIGTERM, SIGINT     stop gracefully

Exit status 2 means bad usage or a bad config file.
";

/// The version line printed by `outpost --version`.
pub const VERSION: &str = concat!("outpost ", env!("CARGO_PKG_VERSION"));

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run the broker.
    Run {
        /// The configuration to start with (boxed: it dwarfs the other variants).
        config: Box<Config>,
        /// Where it came from, to read it again on SIGHUP.
        source: ConfigSource,
    },
    /// Print [`USAGE`] and exit 0.
    Help,
    /// Print [`VERSION`] and exit 0.
    Version,
    /// Manage users or ACL rules in the database, then exit.
    User {
        /// The database to edit (config file, then `--db`).
        db: PathBuf,
        /// Work factor for passwords set by this command.
        bcrypt_cost: u32,
        /// Everything from the word `user`, `acl` or `ban` on, that word included.
        args: Vec<String>,
    },
    /// Validate a config file and print the effective settings.
    CheckConfig(PathBuf),
    /// Copy the database while the broker may be running.
    Backup {
        /// The live database (config file, then `--db`).
        db: PathBuf,
        /// Where the copy goes.
        dest: PathBuf,
    },
}

/// A command line that cannot be run. `Display` is one line starting with
/// `outpost: `; the process should exit with [`CliError::exit_code`].
#[derive(Debug)]
pub enum CliError {
    /// An option we do not know, as written (without any `=value`).
    UnknownOption(String),
    /// An option that needs a value came last or was followed by another option.
    MissingValue(&'static str),
    /// `--help=x` and the like.
    UnexpectedValue(&'static str),
    /// A value that is not `IP:PORT`.
    BadAddress { option: &'static str, value: String },
    /// A bare word that is neither a subcommand nor an option value.
    UnexpectedArgument(String),
    /// A subcommand with too few or too many arguments.
    SubcommandUsage(&'static str),
    /// A broker-only flag before `user`, `acl` or `ban`.
    NotForSubcommand {
        option: &'static str,
        subcommand: String,
    },
    /// The `--config` file could not be read, parsed or validated.
    Config(ConfigError),
}

impl CliError {
    /// The process exit status for this error: always 2 (usage or config).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SEE: &str = "(see outpost --help)";
        match self {
            CliError::UnknownOption(o) => write!(f, "outpost: unknown option `{o}` {SEE}"),
            CliError::MissingValue(o) => write!(f, "outpost: `{o}` needs a value {SEE}"),
            CliError::UnexpectedValue(o) => write!(f, "outpost: `{o}` takes no value {SEE}"),
            CliError::BadAddress { option, value } => write!(
                f,
                "outpost: `{option}` got `{value}`, expected IP:PORT such as 127.0.0.1:1883"
            ),
            CliError::UnexpectedArgument(a) => {
                write!(f, "outpost: unexpected argument `{a}` {SEE}")
            }
            CliError::SubcommandUsage(form) => write!(f, "outpost: usage: outpost {form} {SEE}"),
            CliError::NotForSubcommand { option, subcommand } => {
                write!(
                    f,
                    "outpost: `{option}` cannot be used with `{subcommand}` {SEE}"
                )
            }
            CliError::Config(e) => write!(f, "outpost: {e}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

/// Where the broker's configuration comes from: the `--config` file and the
/// flags over it, as given. Kept by the running broker so that SIGHUP reads
/// the file again and applies the same flags on top.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigSource {
    config: Option<PathBuf>,
    listen: Vec<SocketAddr>,
    /// `Some(vec![])` is `--ws-listen off`.
    ws_listen: Option<Vec<SocketAddr>>,
    /// `Some(None)` is `--http off`.
    http: Option<Option<SocketAddr>>,
    db: Option<PathBuf>,
}

impl ConfigSource {
    /// The `--config` file, if one was named.
    pub fn file(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Reads the file (or takes the defaults) and applies the flags.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = self.base()?;
        if !self.listen.is_empty() {
            config.network.listen = self.listen.clone();
        }
        if let Some(ws_listen) = &self.ws_listen {
            config.network.ws_listen = ws_listen.clone();
        }
        if let Some(http) = self.http {
            config.web.http = http;
            config.web.http_enabled = http.is_some();
        }
        // The flags may bring listeners that clash with the file's or each other.
        config.validate_listeners()?;
        Ok(config)
    }

    /// The config file (or the defaults) with `--db` applied.
    fn base(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(db) = &self.db {
            config.storage.db = db.clone();
        }
        Ok(config)
    }

    /// The first broker-only flag given, for subcommands that refuse them.
    fn broker_only_flag(&self) -> Option<&'static str> {
        if !self.listen.is_empty() {
            Some("--listen")
        } else if self.ws_listen.is_some() {
            Some("--ws-listen")
        } else if self.http.is_some() {
            Some("--http")
        } else {
            None
        }
    }
}

/// The one-argument subcommands and their usage lines.
const CHECK_CONFIG: &str = "check-config FILE";
const BACKUP: &str = "backup DEST";

/// Parses the arguments after `argv[0]`. Reads the `--config` file, if any,
/// so the returned [`Command::Run`] holds the final configuration.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let mut flags = ConfigSource::default();
    while let Some(arg) = args.next() {
        if arg == "user" || arg == "acl" || arg == "ban" {
            let subcommand = std::iter::once(arg).chain(args).collect();
            return subcommand_command(flags, subcommand);
        }
        if arg == "check-config" || arg == "backup" {
            return one_argument_command(flags, &arg, args.collect());
        }
        if !arg.starts_with('-') || arg == "-" {
            return Err(CliError::UnexpectedArgument(arg));
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if arg.starts_with("--") => (name, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let option = match name {
            "--help" | "-h" | "--version" | "-V" => {
                let (long, command) = match name {
                    "--help" | "-h" => ("--help", Command::Help),
                    _ => ("--version", Command::Version),
                };
                return match inline {
                    Some(_) => Err(CliError::UnexpectedValue(long)),
                    None => Ok(command),
                };
            }
            "--config" => Valued::Config,
            "--listen" => Valued::Listen,
            "--ws-listen" => Valued::WsListen,
            "--http" => Valued::Http,
            "--db" => Valued::Db,
            _ => return Err(CliError::UnknownOption(name.to_string())),
        };
        let value = match inline {
            Some(v) => v,
            None => match args.next() {
                Some(v) if !v.starts_with("--") => v,
                _ => return Err(CliError::MissingValue(option.name())),
            },
        };
        match option {
            Valued::Config => flags.config = Some(PathBuf::from(value)),
            Valued::Listen => flags.listen.push(address(option, &value)?),
            Valued::WsListen => {
                let list = flags.ws_listen.get_or_insert_with(Vec::new);
                match value.as_str() {
                    "off" => list.clear(),
                    _ => list.push(address(option, &value)?),
                }
            }
            Valued::Http if value == "off" => flags.http = Some(None),
            Valued::Http => flags.http = Some(Some(address(option, &value)?)),
            Valued::Db => flags.db = Some(PathBuf::from(value)),
        }
    }
    run_command(flags)
}

/// The options that take a value.
#[derive(Clone, Copy)]
enum Valued {
    Config,
    Listen,
    WsListen,
    Http,
    Db,
}

impl Valued {
    fn name(self) -> &'static str {
        match self {
            Valued::Config => "--config",
            Valued::Listen => "--listen",
            Valued::WsListen => "--ws-listen",
            Valued::Http => "--http",
            Valued::Db => "--db",
        }
    }
}

fn address(option: Valued, value: &str) -> Result<SocketAddr, CliError> {
    value.parse().map_err(|_| CliError::BadAddress {
        option: option.name(),
        value: value.to_string(),
    })
}

fn run_command(flags: ConfigSource) -> Result<Command, CliError> {
    let config = flags.load()?;
    Ok(Command::Run {
        config: Box::new(config),
        source: flags,
    })
}

fn subcommand_command(flags: ConfigSource, args: Vec<String>) -> Result<Command, CliError> {
    if let Some(option) = flags.broker_only_flag() {
        return Err(CliError::NotForSubcommand {
            option,
            subcommand: args[0].clone(),
        });
    }
    let config = flags.base()?;
    Ok(Command::User {
        db: config.storage.db,
        bcrypt_cost: config.accounts.bcrypt_cost,
        args,
    })
}

/// `check-config FILE` (takes no flags: the file is the point) or `backup DEST`.
fn one_argument_command(
    flags: ConfigSource,
    word: &str,
    args: Vec<String>,
) -> Result<Command, CliError> {
    let check = word == "check-config";
    let refused = if check {
        flags
            .broker_only_flag()
            .or(flags.config.as_ref().map(|_| "--config"))
            .or(flags.db.as_ref().map(|_| "--db"))
    } else {
        flags.broker_only_flag()
    };
    if let Some(option) = refused {
        return Err(CliError::NotForSubcommand {
            option,
            subcommand: word.to_string(),
        });
    }
    let form = if check { CHECK_CONFIG } else { BACKUP };
    let [path] = <[String; 1]>::try_from(args).map_err(|_| CliError::SubcommandUsage(form))?;
    if path.starts_with('-') {
        return Err(CliError::SubcommandUsage(form));
    }
    if check {
        return Ok(Command::CheckConfig(PathBuf::from(path)));
    }
    Ok(Command::Backup {
        db: flags.base()?.storage.db,
        dest: PathBuf::from(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, CliError> {
        parse(line.split_whitespace().map(String::from))
    }

    fn run(line: &str) -> Config {
        match parse_str(line) {
            Ok(Command::Run { config, .. }) => *config,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        let e = parse_str(line).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    }

    /// A config file in a fresh temporary directory, removed on drop.
    struct TempConfig(PathBuf);

    impl TempConfig {
        fn new(name: &str, text: &str) -> TempConfig {
            let dir =
                std::env::temp_dir().join(format!("outpost-cli-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("outpost.toml");
            std::fs::write(&path, text).unwrap();
            TempConfig(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    #[test]
    fn no_arguments_runs_on_the_defaults() {
        assert_eq!(run(""), Config::default());
    }

    #[test]
    fn help_and_version() {
        for line in ["--help", "-h", "--db x --help", "--help --bogus"] {
            assert!(matches!(parse_str(line), Ok(Command::Help)), "{line}");
        }
        for line in ["--version", "-V"] {
            assert!(matches!(parse_str(line), Ok(Command::Version)), "{line}");
        }
        assert!(VERSION.starts_with("outpost "));
        assert_eq!(
            error("--help=yes"),
            "outpost: `--help` takes no value (see outpost --help)"
        );
        assert_eq!(
            error("--version=1"),
            "outpost: `--version` takes no value (see outpost --help)"
        );
    }

    #[test]
    fn usage_mentions_every_flag_and_subcommand() {
        for word in [
            "--config FILE",
            "--listen HOST:PORT",
            "--ws-listen HOST:PORT",
            "--http HOST:PORT",
            "--db PATH",
            "user add NAME [--admin] [--password-stdin]",
            "user passwd NAME",
            "user del NAME",
            "user list",
            "acl add (--user NAME | --pattern) TOPIC read|write|readwrite|deny",
            "acl list",
            "acl del ID",
            "check-config FILE",
            "backup DEST",
            "SIGHUP",
        ] {
            assert!(USAGE.contains(word), "USAGE lacks {word}");
        }
    }

    #[test]
    fn flags_set_listen_http_and_db() {
        let c = run("--listen 0.0.0.0:1883 --listen=[::]:1884 --http 0.0.0.0:80 --db /tmp/x.db");
        assert_eq!(
            c.network.listen,
            vec![
                "0.0.0.0:1883".parse().unwrap(),
                "[::]:1884".parse().unwrap()
            ]
        );
        assert_eq!(c.web.http, Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(c.storage.db, PathBuf::from("/tmp/x.db"));
        assert_eq!(run("--db=a.db --db b.db").storage.db, PathBuf::from("b.db"));
    }

    #[test]
    fn ws_listen_flags_replace_the_list_and_off_empties_it() {
        assert_eq!(
            run("").network.ws_listen,
            vec!["127.0.0.1:8083".parse().unwrap()]
        );
        let c = run("--ws-listen 0.0.0.0:8083 --ws-listen=[::]:8084");
        assert_eq!(
            c.network.ws_listen,
            vec![
                "0.0.0.0:8083".parse().unwrap(),
                "[::]:8084".parse().unwrap()
            ]
        );
        assert!(run("--ws-listen off").network.ws_listen.is_empty());
        assert_eq!(
            run("--ws-listen off --ws-listen 127.0.0.1:0")
                .network
                .ws_listen,
            vec!["127.0.0.1:0".parse().unwrap()]
        );
        assert_eq!(
            error("--ws-listen 127.0.0.1:0 user list"),
            "outpost: `--ws-listen` cannot be used with `user` (see outpost --help)"
        );
    }

    #[test]
    fn http_off_disables_the_console() {
        let c = run("--http off");
        assert_eq!(c.web.http, None);
        assert!(!c.web.http_enabled);
        let c = run("--http=off --http 127.0.0.1:9000");
        assert_eq!(c.web.http, Some("127.0.0.1:9000".parse().unwrap()));
        assert!(c.web.http_enabled);
    }

    #[test]
    fn flags_override_the_config_file() {
        let file = TempConfig::new(
            "override",
            "listen = [\"0.0.0.0:1883\", \"0.0.0.0:1884\"]\n\
             http_enabled = false\n\
             db = \"file.db\"\n\
             bcrypt_cost = 12\n",
        );
        let c = run(&format!("--config {}", file.path()));
        assert_eq!(c.network.listen.len(), 2);
        assert_eq!(c.web.http, None);
        assert_eq!(c.storage.db, PathBuf::from("file.db"));
        assert_eq!(c.accounts.bcrypt_cost, 12);

        let c = run(&format!(
            "--listen 127.0.0.1:2000 --config={} --http 127.0.0.1:9000 --db flag.db",
            file.path()
        ));
        assert_eq!(c.network.listen, vec!["127.0.0.1:2000".parse().unwrap()]);
        assert_eq!(c.web.http, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(c.storage.db, PathBuf::from("flag.db"));
        assert_eq!(c.accounts.bcrypt_cost, 12);
    }

    #[test]
    fn config_errors_are_reported_once() {
        let file = TempConfig::new("bad", "listen = []\nfoo = 1\n");
        let e = parse_str(&format!("--config {}", file.path())).unwrap_err();
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            e.to_string(),
            format!(
                "outpost: config {}: unknown option `foo` at line 2",
                file.path()
            )
        );
        assert_eq!(
            error("--config /nonexistent/outpost.toml"),
            "outpost: cannot read config /nonexistent/outpost.toml: No such file or directory"
        );
    }

    #[test]
    fn user_and_acl_take_the_rest_of_the_line() {
        let cmd = parse_str("user add admin --admin --password-stdin").unwrap();
        assert_eq!(
            cmd,
            Command::User {
                db: PathBuf::from("outpost.db"),
                bcrypt_cost: 10,
                args: ["user", "add", "admin", "--admin", "--password-stdin"]
                    .map(String::from)
                    .to_vec(),
            }
        );
        let cmd = parse_str("--db x.db acl add --user bob a/# --help").unwrap();
        let Command::User { db, args, .. } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(db, PathBuf::from("x.db"));
        assert_eq!(args, ["acl", "add", "--user", "bob", "a/#", "--help"]);
    }

    #[test]
    fn user_reads_db_and_cost_from_the_config_file() {
        let file = TempConfig::new("user", "db = \"file.db\"\nbcrypt_cost = 5\n");
        let cmd = parse_str(&format!("--config {} user list", file.path())).unwrap();
        let Command::User {
            db, bcrypt_cost, ..
        } = cmd
        else {
            panic!("{cmd:?}")
        };
        assert_eq!((db, bcrypt_cost), (PathBuf::from("file.db"), 5));

        let cmd = parse_str(&format!("--db flag.db --config {} user list", file.path())).unwrap();
        let Command::User { db, .. } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(db, PathBuf::from("flag.db"));
    }

    #[test]
    fn broker_flags_are_refused_before_subcommands() {
        assert_eq!(
            error("--listen 127.0.0.1:1 user list"),
            "outpost: `--listen` cannot be used with `user` (see outpost --help)"
        );
        assert_eq!(
            error("--http off acl list"),
            "outpost: `--http` cannot be used with `acl` (see outpost --help)"
        );
    }

    #[test]
    fn usage_errors_are_one_line() {
        assert_eq!(
            error("--foo"),
            "outpost: unknown option `--foo` (see outpost --help)"
        );
        assert_eq!(
            error("--foo=1"),
            "outpost: unknown option `--foo` (see outpost --help)"
        );
        assert_eq!(
            error("-x"),
            "outpost: unknown option `-x` (see outpost --help)"
        );
        assert_eq!(
            error("--listen"),
            "outpost: `--listen` needs a value (see outpost --help)"
        );
        assert_eq!(
            error("--config --db x"),
            "outpost: `--config` needs a value (see outpost --help)"
        );
        assert_eq!(
            error("--listen localhost"),
            "outpost: `--listen` got `localhost`, expected IP:PORT such as 127.0.0.1:1883"
        );
        assert_eq!(
            error("--http=1.2.3.4"),
            "outpost: `--http` got `1.2.3.4`, expected IP:PORT such as 127.0.0.1:1883"
        );
        assert_eq!(
            error("serve"),
            "outpost: unexpected argument `serve` (see outpost --help)"
        );
        assert_eq!(
            error("-"),
            "outpost: unexpected argument `-` (see outpost --help)"
        );
    }

    #[test]
    fn empty_inline_value_is_kept_as_given() {
        assert_eq!(
            error("--listen="),
            "outpost: `--listen` got ``, expected IP:PORT such as 127.0.0.1:1883"
        );
    }

    #[test]
    fn check_config_takes_one_file_and_no_flags() {
        assert_eq!(
            parse_str("check-config /etc/outpost/outpost.toml").unwrap(),
            Command::CheckConfig(PathBuf::from("/etc/outpost/outpost.toml"))
        );
        for line in ["check-config", "check-config a b", "check-config --help"] {
            assert_eq!(
                error(line),
                "outpost: usage: outpost check-config FILE (see outpost --help)",
                "{line}"
            );
        }
        assert_eq!(
            error("--db x.db check-config a.toml"),
            "outpost: `--db` cannot be used with `check-config` (see outpost --help)"
        );
        assert_eq!(
            error("--config a.toml check-config a.toml"),
            "outpost: `--config` cannot be used with `check-config` (see outpost --help)"
        );
    }

    #[test]
    fn backup_reads_the_database_path_like_user() {
        let file = TempConfig::new("backup", "db = \"/var/lib/outpost/outpost.db\"\n");
        let cmd = parse_str(&format!("--config {} backup /tmp/copy.db", file.path())).unwrap();
        assert_eq!(
            cmd,
            Command::Backup {
                db: PathBuf::from("/var/lib/outpost/outpost.db"),
                dest: PathBuf::from("/tmp/copy.db"),
            }
        );
        let cmd = parse_str("--db live.db backup copy.db").unwrap();
        assert_eq!(
            cmd,
            Command::Backup {
                db: PathBuf::from("live.db"),
                dest: PathBuf::from("copy.db"),
            }
        );
        assert_eq!(
            error("backup"),
            "outpost: usage: outpost backup DEST (see outpost --help)"
        );
        assert_eq!(
            error("--listen 127.0.0.1:1 backup x.db"),
            "outpost: `--listen` cannot be used with `backup` (see outpost --help)"
        );
    }

    #[test]
    fn the_source_reloads_the_file_under_the_same_flags() {
        let file = TempConfig::new("reload", "db = \"file.db\"\nmax_inflight = 5\n");
        let cmd = parse_str(&format!(
            "--config {} --listen 127.0.0.1:2000 --http off --db flag.db",
            file.path()
        ))
        .unwrap();
        let Command::Run { config, source } = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(source.file(), Some(Path::new(file.path())));
        assert_eq!(source.load().unwrap(), *config);
        std::fs::write(file.path(), "db = \"file.db\"\nmax_inflight = 9\n").unwrap();
        let again = source.load().unwrap();
        assert_eq!(again.limits.max_inflight, 9);
        assert_eq!(again.storage.db, PathBuf::from("flag.db"));
        assert_eq!(
            again.network.listen,
            vec!["127.0.0.1:2000".parse().unwrap()]
        );
        assert_eq!(again.web.http, None);
        let Command::Run { source, .. } = parse_str("").unwrap() else {
            panic!()
        };
        assert_eq!(source.file(), None);
        assert_eq!(source.load().unwrap(), Config::default());
    }
}
