//! The `outpost` binary: parse the command line, then run the broker or a one-shot command.

use std::process::ExitCode;

use outpost::broker::Server;
use outpost::cli::{self, Command, ConfigSource};
use outpost::config::Config;
use outpost::store::Store;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("outpost {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::User {
            db,
            bcrypt_cost,
            args,
        } => ExitCode::from(outpost::user_cli::run(&args, &db, bcrypt_cost) as u8),
        Command::CheckConfig(path) => ExitCode::from(outpost::check_config::run(&path) as u8),
        Command::Backup { db, dest } => match outpost::store::backup(&db, &dest) {
            Ok(summary) => {
                println!(
                    "backed up {} to {} ({} bytes, schema version {})",
                    db.display(),
                    dest.display(),
                    summary.bytes,
                    summary.schema_version
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("outpost: {e}");
                ExitCode::from(1)
            }
        },
        Command::Run { config, source } => {
            outpost::logging::init(config.runtime.log_level);
            match serve(*config, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("outpost: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Binds the broker, starts the web console beside it (unless it is off), runs the loop.
/// SIGHUP reloads what it can; the console's address and database are restart-only.
fn serve(config: Config, source: ConfigSource) -> Result<(), Box<dyn std::error::Error>> {
    let web = config.web.http;
    let web_config = config.clone();
    let server = Server::bind(config)?.reload_from(source);
    if let Some(addr) = web {
        outpost::web::spawn(&web_config, addr, server.inbox(), server.web_tls())?;
    }
    announce_missing_admin(&web_config);
    server.run()?;
    stop_store(&web_config.storage.db);
    Ok(())
}

/// After the loop closed its store: closes the web and auth threads' connections, then
/// makes the last close, which leaves the database in its one file (no `-wal`, no `-shm`).
fn stop_store(db: &std::path::Path) {
    outpost::store::close_helpers();
    match outpost::store::close_last(db) {
        Ok(true) => log::info!("database closed: everything is in {}", db.display()),
        Ok(false) => log::warn!(
            "{} keeps its -wal beside it: another process has it open",
            db.display()
        ),
        Err(e) => log::warn!("closing the database: {e}"),
    }
}

/// While nobody may administer the broker, says how to create the first administrator.
fn announce_missing_admin(config: &Config) {
    let has_admin =
        Store::open(&config.storage.db, config.storage.sync).and_then(|store| store.has_admin());
    if let Ok(false) = has_admin {
        log::info!(
            "no administrator yet: create one with `outpost --db {} user add admin --admin`",
            config.storage.db.display()
        );
    }
}
