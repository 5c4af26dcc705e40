//! `arca`: the server (`arca serve`) and the client commands, in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod profile;
mod serve;

/// Arca: a key management system you run yourself.
#[derive(Debug, Parser)]
#[command(name = "arca", version, about, propagate_version = true)]
struct Cli {
    /// Profile file (default: ~/.config/arca/profile.toml).
    #[arg(long, global = true, env = "ARCA_PROFILE_FILE")]
    profile_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Arca server.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        match cli.command {
            Command::Serve(a) => serve::run(a, cli.profile_file).await,
        }
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
