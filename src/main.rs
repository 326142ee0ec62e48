//! The `outpost` binary: parse the command line, then run the broker or a user command.

use std::process::ExitCode;

use outpost::broker::Server;
use outpost::cli::{self, Command};
use outpost::config::Config;

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
        Command::Run(config) => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .init();
            match serve(*config) {
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
fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let web = config.http;
    let web_config = config.clone();
    let server = Server::bind(config)?;
    if let Some(addr) = web {
        outpost::web::spawn(&web_config, addr, server.inbox())?;
    }
    server.run()?;
    Ok(())
}
