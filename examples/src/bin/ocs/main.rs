//! `ocs`: the command-line client for trying the library and scripting it.
//!
//! Exit codes: 0 success, 1 invalid input or failed operation (with a
//! one-line `error: ...` on stderr), 2 usage or I/O error.

mod sip;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An Office Communicator 2007 R2 compatible SIP client.
#[derive(Debug, Parser)]
#[command(name = "ocs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with single SIP messages (parse, check).
    #[command(subcommand)]
    Sip(sip::SipCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sip(cmd) => sip::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
