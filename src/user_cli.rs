//! The `user …`, `acl …` and `ban …` administration commands: parse the arguments,
//! read a new password, change the store, print the result.
//!
//! ```text
//! user add NAME [--admin] [--password-stdin]
//! user passwd NAME [--password-stdin]
//! user del NAME
//! user list
//! acl add (--user NAME | --pattern) TOPIC read|write|readwrite|deny
//! acl list
//! acl del ID
//! ban add client_id|username|address VALUE [--reason TEXT] [--for TIME]
//! ban list
//! ban remove ID
//! ```
//!
//! A running broker applies ACL and ban changes made here on `SIGHUP`.
//!
//! Without `--password-stdin` the password is asked twice on the terminal
//! without echo. Errors are one line on stderr; the exit code is 2 for usage
//! errors and 1 for failures.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;

use crate::auth::bans;
use crate::auth::password::{self, PasswordError};
use crate::store::{Access, BanKind, NewBan, Store, StoreError, SyncMode};

/// Where a new password comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    /// The first line of standard input, for scripts.
    Stdin,
    /// Asked twice on the terminal without echo.
    Prompt,
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `user add`.
    UserAdd {
        /// The new user's name.
        name: String,
        /// `--admin`: may administer the broker from the web pages.
        admin: bool,
        /// Where the password comes from.
        password: PasswordSource,
    },
    /// `user passwd`.
    UserPasswd {
        /// Whose password changes.
        name: String,
        /// Where the password comes from.
        password: PasswordSource,
    },
    /// `user del`.
    UserDel {
        /// Who goes.
        name: String,
    },
    /// `user list`.
    UserList,
    /// `acl add`.
    AclAdd {
        /// `--user NAME`, or `None` for `--pattern`.
        user: Option<String>,
        /// The topic filter, possibly with `%u`/`%c`.
        topic: String,
        /// What the rule grants.
        access: Access,
    },
    /// `acl list`.
    AclList,
    /// `acl del`.
    AclDel {
        /// The rule's id, as `acl list` shows it.
        id: i64,
    },
    /// `ban add`.
    BanAdd {
        kind: BanKind,
        /// As typed; normalised when carried out.
        value: String,
        reason: String,
        /// `--for`, in seconds; `None` until removed.
        seconds: Option<u64>,
    },
    /// `ban list`.
    BanList,
    /// `ban remove`.
    BanRemove {
        /// The ban's id, as `ban list` shows it.
        id: i64,
    },
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The arguments are wrong; the text says how, with the expected form.
    Usage(String),
    /// The store refused or failed.
    Store(StoreError),
    /// The password could not be hashed (empty, too long, bad cost).
    Password(PasswordError),
    /// The two prompted passwords differ.
    PasswordsDiffer,
    /// The terminal could not be prompted (none attached, for example).
    Prompt(io::Error),
    /// Reading standard input or writing the result failed.
    Io(io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(text) => f.write_str(text),
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Password(e) => write!(f, "{e}"),
            CliError::PasswordsDiffer => f.write_str("the passwords do not match"),
            CliError::Prompt(e) => write!(
                f,
                "cannot prompt for the password: {e} (without a terminal, use --password-stdin)"
            ),
            CliError::Io(e) => write!(f, "input/output error: {e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Store(e)
    }
}

impl From<PasswordError> for CliError {
    fn from(e: PasswordError) -> Self {
        CliError::Password(e)
    }
}

const USER_ADD: &str = "user add NAME [--admin] [--password-stdin]";
const USER_PASSWD: &str = "user passwd NAME [--password-stdin]";
const ACL_ADD: &str = "acl add (--user NAME | --pattern) TOPIC read|write|readwrite|deny";
const BAN_ADD: &str =
    "ban add client_id|username|address VALUE [--reason TEXT] [--for SECONDS|90m|12h|7d]";
const ALL: &str = "user add|passwd|del|list, acl add|list|del, ban add|list|remove";

/// Runs the command in `args` (what follows the program name) against the
/// database at `db`, hashing new passwords at `cost`; returns the exit code.
pub fn run(args: &[String], db: &Path, cost: u32) -> i32 {
    match run_inner(args, db, cost) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run_inner(args: &[String], db: &Path, cost: u32) -> Result<(), CliError> {
    let command = parse(args)?;
    let store = Store::open(db, SyncMode::Full)?;
    execute(
        &command,
        &store,
        cost,
        &mut read_password,
        &mut io::stdout().lock(),
    )
}

/// Parses `args` (what follows the program name) into a [`Command`].
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["user", "add", rest @ ..] => {
            let (flags, names) = split_flags(rest, &["--admin", "--password-stdin"], USER_ADD)?;
            Ok(Command::UserAdd {
                name: one(&names, "NAME", USER_ADD)?,
                admin: flags.contains(&"--admin"),
                password: source(&flags),
            })
        }
        ["user", "passwd", rest @ ..] => {
            let (flags, names) = split_flags(rest, &["--password-stdin"], USER_PASSWD)?;
            Ok(Command::UserPasswd {
                name: one(&names, "NAME", USER_PASSWD)?,
                password: source(&flags),
            })
        }
        ["user", "del", rest @ ..] => {
            let (_, names) = split_flags(rest, &[], "user del NAME")?;
            Ok(Command::UserDel {
                name: one(&names, "NAME", "user del NAME")?,
            })
        }
        ["user", "list"] => Ok(Command::UserList),
        ["acl", "add", "--user", user, topic, access] => acl_add(Some(user), topic, access),
        ["acl", "add", "--pattern", topic, access] => acl_add(None, topic, access),
        ["acl", "add", ..] => Err(usage(
            "expected --user NAME or --pattern, TOPIC and ACCESS",
            ACL_ADD,
        )),
        ["acl", "list"] => Ok(Command::AclList),
        ["acl", "del", id] => match id.parse() {
            Ok(id) => Ok(Command::AclDel { id }),
            Err(_) => Err(usage(&format!("{id:?} is not a rule id"), "acl del ID")),
        },
        ["ban", "add", kind, value, rest @ ..] => ban_add(kind, value, rest),
        ["ban", "add", ..] => Err(usage("expected a kind and a value", BAN_ADD)),
        ["ban", "list"] => Ok(Command::BanList),
        ["ban", "remove", id] => match id.parse() {
            Ok(id) => Ok(Command::BanRemove { id }),
            Err(_) => Err(usage(&format!("{id:?} is not a ban id"), "ban remove ID")),
        },
        _ => Err(usage(
            &format!("unknown command {:?}", words.join(" ")),
            ALL,
        )),
    }
}

fn acl_add(user: Option<&str>, topic: &str, access: &str) -> Result<Command, CliError> {
    let access = access
        .parse()
        .map_err(|e: StoreError| usage(&e.to_string(), ACL_ADD))?;
    Ok(Command::AclAdd {
        user: user.map(str::to_owned),
        topic: topic.to_owned(),
        access,
    })
}

fn ban_add(kind: &str, value: &str, options: &[&str]) -> Result<Command, CliError> {
    let kind = kind.parse().map_err(|e: String| usage(&e, BAN_ADD))?;
    let (mut reason, mut seconds) = (String::new(), None);
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let Some(argument) = options.next() else {
            return Err(usage(&format!("{option} needs a value"), BAN_ADD));
        };
        match *option {
            "--reason" => reason = (*argument).to_owned(),
            "--for" => {
                seconds = Some(
                    duration(argument)
                        .ok_or_else(|| usage(&format!("{argument:?} is not a time"), BAN_ADD))?,
                )
            }
            other => return Err(usage(&format!("unknown option {other}"), BAN_ADD)),
        }
    }
    Ok(Command::BanAdd {
        kind,
        value: value.to_owned(),
        reason,
        seconds,
    })
}

/// `3600`, `90m`, `12h` or `7d` in seconds; never 0.
fn duration(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last()? {
        (at, 's') => (&text[..at], 1),
        (at, 'm') => (&text[..at], 60),
        (at, 'h') => (&text[..at], 3600),
        (at, 'd') => (&text[..at], 86_400),
        _ => (text, 1),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number
        .parse::<u64>()
        .ok()?
        .checked_mul(unit)
        .filter(|&s| s > 0)
}

/// Splits `--flags` (each one of `known`) from positional words.
fn split_flags<'a>(
    words: &[&'a str],
    known: &[&str],
    form: &str,
) -> Result<(Vec<&'a str>, Vec<&'a str>), CliError> {
    let (flags, positional): (Vec<&str>, Vec<&str>) =
        words.iter().partition(|w| w.starts_with("--"));
    match flags.iter().find(|f| !known.contains(f)) {
        Some(bad) => Err(usage(&format!("unknown option {bad}"), form)),
        None => Ok((flags, positional)),
    }
}

/// The single positional word `what`.
fn one(words: &[&str], what: &str, form: &str) -> Result<String, CliError> {
    match words {
        [word] => Ok((*word).to_owned()),
        [] => Err(usage(&format!("missing {what}"), form)),
        _ => Err(usage(
            &format!("expected one {what}, got {}", words.len()),
            form,
        )),
    }
}

fn source(flags: &[&str]) -> PasswordSource {
    if flags.contains(&"--password-stdin") {
        PasswordSource::Stdin
    } else {
        PasswordSource::Prompt
    }
}

fn usage(problem: &str, form: &str) -> CliError {
    CliError::Usage(format!("{problem} (usage: {form})"))
}

/// Carries out `command` on `store`; new passwords come from
/// `read_password` and are hashed at `cost`; results are printed to `out`.
pub fn execute(
    command: &Command,
    store: &Store,
    cost: u32,
    read_password: &mut dyn FnMut(PasswordSource) -> Result<String, CliError>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let printed = match command {
        Command::UserAdd {
            name,
            admin,
            password,
        } => {
            // Check the name before asking for a password; names are unique without
            // regard to case, so `ROOT` is refused beside `root` (named in the error).
            crate::store::users::validate_user_name(name)?;
            if let Some(taken) = store.find_login(name)? {
                return Err(StoreError::DuplicateUser(taken.name).into());
            }
            let hash = password::hash_password(&read_password(*password)?, cost)?;
            store.add_user(name, &hash, *admin)?;
            let role = if *admin { "admin" } else { "user" };
            writeln!(out, "added {role} {name}")
        }
        Command::UserPasswd { name, password } => {
            if store.find_user(name)?.is_none() {
                return Err(StoreError::UnknownUser(name.clone()).into());
            }
            let hash = password::hash_password(&read_password(*password)?, cost)?;
            store.set_password(name, &hash)?;
            writeln!(out, "changed the password of {name}")
        }
        Command::UserDel { name } => {
            store.delete_user(name)?;
            writeln!(out, "deleted user {name}")
        }
        Command::UserList => {
            let mut text = format!("{:<24} {:<5} {}\n", "NAME", "ADMIN", "CREATED");
            for u in store.list_users()? {
                let admin = if u.is_admin { "yes" } else { "no" };
                let created = crate::clock::utc(u.created_at);
                text.push_str(&format!("{:<24} {admin:<5} {created}\n", u.name));
            }
            out.write_all(text.as_bytes())
        }
        Command::AclAdd {
            user,
            topic,
            access,
        } => {
            let id = store.add_acl_rule(user.as_deref(), topic, *access)?;
            writeln!(out, "added ACL rule {id}")
        }
        Command::AclList => {
            let mut text = format!("{:<6} {:<24} {:<10} {}\n", "ID", "USER", "ACCESS", "TOPIC");
            for r in store.list_acl_rules()? {
                let user = r.username.as_deref().unwrap_or("(pattern)");
                let access = r.access.as_str();
                text.push_str(&format!(
                    "{:<6} {user:<24} {access:<10} {}\n",
                    r.id, r.topic
                ));
            }
            out.write_all(text.as_bytes())
        }
        Command::AclDel { id } => {
            store.delete_acl_rule(*id)?;
            writeln!(out, "deleted ACL rule {id}")
        }
        Command::BanAdd {
            kind,
            value,
            reason,
            seconds,
        } => {
            let value = bans::normalise(*kind, value)
                .map_err(|e| CliError::Usage(format!("{e} (usage: {BAN_ADD})")))?;
            let reason = bans::check_reason(reason)
                .map_err(|e| CliError::Usage(format!("{e} (usage: {BAN_ADD})")))?;
            let now = crate::clock::unix_seconds();
            let expires_at =
                seconds.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
            let id = store.add_ban(&NewBan {
                kind: *kind,
                value: &value,
                reason,
                created_by: "(command line)",
                created_at: now,
                expires_at,
            })?;
            let until = expires_at.map_or_else(
                || "until removed".to_owned(),
                |at| format!("until {}", crate::clock::utc(at)),
            );
            writeln!(
                out,
                "added ban {id}: {kind} {value} {until} (a running broker applies it on SIGHUP)"
            )
        }
        Command::BanList => {
            let now = crate::clock::unix_seconds();
            let mut text = format!(
                "{:<6} {:<10} {:<40} {:<24} {}\n",
                "ID", "KIND", "VALUE", "UNTIL", "REASON"
            );
            for b in store.list_bans()? {
                let until = match b.expires_at {
                    None => "removed".to_owned(),
                    Some(at) if bans::in_force(&b, now) => crate::clock::utc(at),
                    Some(at) => format!("expired {}", crate::clock::utc(at)),
                };
                text.push_str(&format!(
                    "{:<6} {:<10} {:<40} {until:<24} {}\n",
                    b.id,
                    b.kind.as_str(),
                    b.value,
                    b.reason
                ));
            }
            out.write_all(text.as_bytes())
        }
        Command::BanRemove { id } => {
            let ban = store.delete_ban(*id)?;
            writeln!(
                out,
                "removed ban {id} on {} {} (a running broker applies it on SIGHUP)",
                ban.kind, ban.value
            )
        }
    };
    printed.map_err(CliError::Io)
}

/// Reads a new password from `source`: one line of stdin, or two prompts
/// without echo that must agree.
fn read_password(source: PasswordSource) -> Result<String, CliError> {
    match source {
        PasswordSource::Stdin => {
            let mut line = String::new();
            io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(CliError::Io)?;
            let end = line.trim_end_matches(['\n', '\r']).len();
            line.truncate(end);
            Ok(line)
        }
        PasswordSource::Prompt => {
            let first = rpassword::prompt_password("Password: ").map_err(CliError::Prompt)?;
            let second =
                rpassword::prompt_password("Repeat password: ").map_err(CliError::Prompt)?;
            if first == second {
                Ok(first)
            } else {
                Err(CliError::PasswordsDiffer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::verify_password;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cli.db"), SyncMode::Normal).unwrap();
        (dir, store)
    }

    /// Runs `line` with every password read answering `password`.
    fn exec(store: &Store, line: &str, password: &str) -> Result<String, CliError> {
        let mut out = Vec::new();
        let command = parse(&args(line))?;
        execute(
            &command,
            store,
            4,
            &mut |_| Ok(password.to_owned()),
            &mut out,
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parse(&args("user add alice --admin --password-stdin")).unwrap(),
            Command::UserAdd {
                name: "alice".into(),
                admin: true,
                password: PasswordSource::Stdin
            }
        );
        assert_eq!(
            parse(&args("user passwd bob")).unwrap(),
            Command::UserPasswd {
                name: "bob".into(),
                password: PasswordSource::Prompt
            }
        );
        assert_eq!(
            parse(&args("user del bob")).unwrap(),
            Command::UserDel { name: "bob".into() }
        );
        assert_eq!(parse(&args("user list")).unwrap(), Command::UserList);
        assert_eq!(
            parse(&args("acl add --user bob a/# readwrite")).unwrap(),
            Command::AclAdd {
                user: Some("bob".into()),
                topic: "a/#".into(),
                access: Access::ReadWrite
            }
        );
        assert_eq!(
            parse(&args("acl add --pattern u/%u/# deny")).unwrap(),
            Command::AclAdd {
                user: None,
                topic: "u/%u/#".into(),
                access: Access::Deny
            }
        );
        assert_eq!(parse(&args("acl list")).unwrap(), Command::AclList);
        assert_eq!(
            parse(&args("acl del 7")).unwrap(),
            Command::AclDel { id: 7 }
        );
        assert_eq!(
            parse(&args("ban add address 10.0.0.0/8 --for 12h --reason noisy")).unwrap(),
            Command::BanAdd {
                kind: BanKind::Address,
                value: "10.0.0.0/8".into(),
                reason: "noisy".into(),
                seconds: Some(12 * 3600)
            }
        );
        assert_eq!(parse(&args("ban list")).unwrap(), Command::BanList);
        assert_eq!(
            parse(&args("ban remove 3")).unwrap(),
            Command::BanRemove { id: 3 }
        );
        let times = [("90", 90), ("90s", 90), ("90m", 5400), ("7d", 604_800)];
        for (text, seconds) in times {
            assert_eq!(duration(text), Some(seconds), "{text}");
        }
        for text in [
            "0",
            "0h",
            "h",
            "",
            "1w",
            "-1",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(duration(text), None, "{text}");
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for line in [
            "",
            "user",
            "user add",
            "user add a b",
            "user add a --root",
            "user del",
            "user list extra",
            "acl add --user bob a/#",
            "acl add --pattern a/# all",
            "acl del x",
            "ban add address",
            "ban add ip 1.2.3.4",
            "ban add client_id c --for",
            "ban add client_id c --for 0",
            "ban add client_id c --until 1h",
            "ban remove x",
            "group add",
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line:?}");
            assert!(err.to_string().contains("usage:"), "{line:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run(&args("user frob"), &dir.path().join("x.db"), 4), 2);
    }

    #[test]
    fn user_commands() {
        let (_dir, store) = store();
        assert_eq!(
            exec(&store, "user add alice --admin", "pw1").unwrap(),
            "added admin alice\n"
        );
        let alice = store.find_user("alice").unwrap().unwrap();
        assert!(alice.is_admin && verify_password(b"pw1", &alice.password_hash));

        let err = exec(&store, "user add alice", "pw").unwrap_err();
        assert_eq!(
            (err.exit_code(), err.to_string()),
            (1, "user \"alice\" already exists".into())
        );
        let err = exec(&store, "user add bob", "").unwrap_err();
        assert_eq!(err.to_string(), "the password must not be empty");
        assert!(store.find_user("bob").unwrap().is_none());

        exec(&store, "user passwd alice --password-stdin", "pw2").unwrap();
        let alice = store.find_user("alice").unwrap().unwrap();
        assert!(verify_password(b"pw2", &alice.password_hash));
        assert!(matches!(
            exec(&store, "user passwd zed", "pw"),
            Err(CliError::Store(StoreError::UnknownUser(_)))
        ));

        let list = exec(&store, "user list", "").unwrap();
        assert!(list.lines().nth(1).unwrap().starts_with("alice"), "{list}");
        assert!(list.contains(" yes "), "{list}");

        exec(&store, "user del alice", "").unwrap();
        assert_eq!(
            exec(&store, "user del alice", "").unwrap_err().exit_code(),
            1
        );
    }

    #[test]
    fn password_reader_errors_stop_the_command() {
        let (_dir, store) = store();
        let command = parse(&args("user add carol")).unwrap();
        let err = execute(
            &command,
            &store,
            4,
            &mut |_| Err(CliError::PasswordsDiffer),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "the passwords do not match");
        assert!(store.find_user("carol").unwrap().is_none());
    }

    #[test]
    fn acl_commands() {
        let (_dir, store) = store();
        exec(&store, "user add bob", "pw").unwrap();
        assert_eq!(
            exec(&store, "acl add --user bob home/# readwrite", "").unwrap(),
            "added ACL rule 1\n"
        );
        exec(&store, "acl add --pattern users/%u/# read", "").unwrap();
        let list = exec(&store, "acl list", "").unwrap();
        assert!(
            list.contains("bob") && list.contains("(pattern)") && list.contains("users/%u/#"),
            "{list}"
        );
        exec(&store, "acl del 1", "").unwrap();
        assert_eq!(
            exec(&store, "acl del 1", "").unwrap_err().to_string(),
            "no ACL rule with id 1"
        );
        assert!(exec(&store, "acl add --user nobody x read", "").is_err());
    }

    #[test]
    fn run_reports_runtime_failures_with_1() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("run.db");
        assert_eq!(run(&args("user list"), &db, 4), 0);
        assert_eq!(run(&args("user del ghost"), &db, 4), 1);
        assert_eq!(
            run(&args("user list"), &dir.path().join("no/dir/x.db"), 4),
            1
        );
    }
}
