//! `ocs custom-states ...`: check a custom presence states file.

use clap::{Subcommand, ValueEnum};
use ocs_core::customstates::{ClientVersion, check_url, validate};
use ocs_examples::{CliError, emit};
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Client {
    /// Office Communicator 2007 (file:, http:, https:).
    Oc2007,
    /// Office Communicator 2007 R2 (http:, https:).
    Oc2007r2,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CustomStatesCommand {
    /// Validate a customStates XML file strictly: print the states as JSON
    /// (exit 0), or every violation as `error: LINE:COL: ...` (exit 1).
    Check {
        /// A file path, or a `file:`/`http:`/`https:` URL (the URL's scheme
        /// is checked against --client and --high-security).
        source: String,
        /// The client's language: which activity text to print.
        #[arg(long, default_value_t = 1033)]
        lcid: u32,
        /// Whose CustomStateURL rules apply.
        #[arg(long, value_enum, default_value_t = Client::Oc2007r2)]
        client: Client,
        /// SIP high-security mode: only https: URLs.
        #[arg(long)]
        high_security: bool,
    },
}

pub(crate) fn run(cmd: CustomStatesCommand) -> Result<(), CliError> {
    match cmd {
        CustomStatesCommand::Check {
            source,
            lcid,
            client,
            high_security,
        } => check(&source, lcid, client, high_security),
    }
}

/// `scheme:` of a URL, if `s` looks like one (two letters or more, so
/// `C:\x.xml` stays a path).
fn url_scheme(s: &str) -> Option<String> {
    let (scheme, _) = s.split_once(':')?;
    (scheme.len() > 1
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then(|| scheme.to_ascii_lowercase())
}

/// The local path of a `file:` URL (`file:///C:/x`, `file:///tmp/x`,
/// `file:/tmp/x`), percent-decoded for spaces.
fn file_url_path(url: &str) -> String {
    let rest = &url[5..];
    let rest = rest.strip_prefix("//localhost").unwrap_or(rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    rest.replace("%20", " ")
}

fn check(source: &str, lcid: u32, client: Client, high_security: bool) -> Result<(), CliError> {
    let client = match client {
        Client::Oc2007 => ClientVersion::Oc2007,
        Client::Oc2007r2 => ClientVersion::Oc2007R2,
    };
    let path = match url_scheme(source).as_deref() {
        Some(scheme @ ("file" | "http" | "https")) => {
            check_url(source, client, high_security)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if scheme != "file" {
                return Err(CliError::Usage("fetching URLs is not supported yet".into()));
            }
            file_url_path(source)
        }
        Some(other) if !std::path::Path::new(source).exists() => {
            return Err(CliError::Usage(format!(
                "unsupported URL scheme \"{other}:\" (file:, http:, https:)"
            )));
        }
        _ => source.to_owned(),
    };
    let bytes =
        std::fs::read(&path).map_err(|e| CliError::Usage(format!("reading {path}: {e}")))?;
    match validate(&bytes) {
        Ok(states) => {
            let list: Vec<_> = states
                .states
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id,
                        "availability": s.availability.as_str(),
                        "availability_value": s.availability.availability().0,
                        "text": s.text(lcid),
                    })
                })
                .collect();
            emit(json!({ "states": list }))
        }
        Err(violations) => {
            for v in &violations {
                eprintln!("error: {v}");
            }
            let n = violations.len();
            Err(CliError::Failed(format!(
                "{n} violation{} in {path}",
                if n == 1 { "" } else { "s" }
            )))
        }
    }
}
