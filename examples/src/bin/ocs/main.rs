//! `ocs`: the command-line client for trying the library and scripting it.
//!
//! Exit codes: 0 success, 1 invalid input or failed operation (with a
//! one-line `error: ...` on stderr), 2 usage or I/O error.

mod addressbook;
mod autodiscover;
mod contacts;
mod customstates;
mod diag;
mod im;
mod load;
mod policy;
mod presence;
mod signin;
mod simserver;
mod sip;
mod status;
mod track;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An Office Communicator 2007 R2 compatible SIP client.
#[derive(Debug, Parser)]
#[command(name = "ocs", version, about, long_about = None)]
struct Cli {
    /// Log what the library does to stderr: -v the steps (debug), -vv
    /// everything (trace). RUST_LOG (e.g. `ocs_core=debug`) takes
    /// precedence; stdout keeps its JSON lines either way.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// Library logs (`tracing`) as human-readable lines on stderr, from
/// RUST_LOG or -v/-vv; warnings and errors only by default.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "ocs_core=warn",
        1 => "ocs_core=debug",
        _ => "ocs_core=trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with single SIP messages (parse, check, signature-buffer).
    #[command(subcommand)]
    Sip(sip::SipCommand),
    /// Sign in, print events as JSON lines, sign out on Ctrl-C or after --for.
    Register {
        #[command(flatten)]
        sign_in: signin::SignIn,
        /// Stay signed in this many seconds, then sign out.
        #[arg(long = "for")]
        hold: Option<u64>,
    },
    /// Run the embedded OCS-dialect test server (NTLM or Digest registrar).
    SimServer(simserver::SimArgs),
    /// Publish our presence (a state, custom:ID, a note) and hold it.
    #[command(subcommand)]
    Status(StatusCommand),
    /// Print contacts' presence changes as JSON lines.
    Watch(status::WatchArgs),
    /// Instant messages: send one, or listen for incoming ones.
    #[command(subcommand)]
    Im(im::ImCommand),
    /// Client policy: evaluate .reg files, list an ADM template, explain a setting.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Presence documents: parse msrtc categories, rlmi multipart or PIDF.
    #[command(subcommand)]
    Presence(presence::PresenceCommand),
    /// Custom presence states: check a customStates XML file.
    #[command(subcommand)]
    CustomStates(customstates::CustomStatesCommand),
    /// Sign in, print the configuration snapshot (server, registration,
    /// provisioning, address book, custom states, effective policy) as JSON
    /// or --table, sign out.
    Diag(diag::DiagArgs),
    /// The server-stored contact list (OCS): list, add, remove, move,
    /// group-add, group-rename, group-remove.
    Contacts(contacts::ContactsArgs),
    /// Address book (GAL) files: show one, search a downloaded folder,
    /// write a sample. Live commands download with --address-book DIR.
    #[command(subcommand)]
    AddressBook(addressbook::AddressBookCommand),
    /// Presence time tracking: `run` records contacts' presence changes in
    /// a database (sqlite:PATH), `report` shows time per state per person
    /// per day (csv or json).
    #[command(subcommand)]
    Track(track::TrackCommand),
    /// Many clients in one process (like SIPp for this dialect): sign in
    /// PREFIX0..PREFIX{N-1}, hold, optionally watch and send IMs, sign
    /// out; prints one JSON line of figures (rate, latency, memory).
    Load(Box<load::LoadArgs>),
    /// Find the SIP server the Lync/Skype for Business way: autodiscover
    /// (lyncdiscoverinternal.DOMAIN, then lyncdiscover.DOMAIN, or --url),
    /// with an OAuth token when the user resource asks for one. Prints each
    /// step and the servers found as JSON lines.
    Autodiscover(autodiscover::AutodiscoverArgs),
}

#[derive(Debug, Subcommand)]
enum StatusCommand {
    /// Sign in, publish STATE, hold it for --for seconds, sign out.
    Set(status::StatusSet),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Sip(cmd) => sip::run(cmd),
        Command::Register { sign_in, hold } => live(signin::register(sign_in, hold)),
        Command::SimServer(args) => live(simserver::run(args)),
        Command::Im(cmd) => live(im::run(cmd)),
        Command::Status(StatusCommand::Set(a)) => live(status::set(a)),
        Command::Watch(a) => live(status::watch(a)),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Presence(cmd) => presence::run(cmd),
        Command::CustomStates(cmd) => customstates::run(cmd),
        Command::Diag(a) => live(diag::run(a)),
        Command::AddressBook(cmd) => addressbook::run(cmd),
        Command::Contacts(a) => live(contacts::run(a)),
        Command::Track(cmd) => live(track::run(cmd)),
        Command::Load(a) => live(load::run(*a)),
        Command::Autodiscover(a) => live(autodiscover::run(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// Runs a live command on a single-threaded runtime.
fn live<T>(
    fut: impl std::future::Future<Output = Result<T, ocs_examples::CliError>>,
) -> Result<T, ocs_examples::CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ocs_examples::CliError::Usage(format!("runtime: {e}")))?
        .block_on(fut)
}
