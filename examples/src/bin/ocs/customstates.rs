//! `ocs custom-states ...`: check a custom presence states file.

use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

use ocs_core::customstates::{ClientVersion, check_url, file_url_path, validate};
use ocs_core::driver::{CustomStatesError, FetchLimits, TlsSettings, fetch_custom_states_bytes};
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
        /// Extra trusted CA certificate (PEM) for https: URLs.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

pub(crate) fn run(cmd: CustomStatesCommand) -> Result<(), CliError> {
    match cmd {
        CustomStatesCommand::Check {
            source,
            lcid,
            client,
            high_security,
            ca,
        } => check(&source, lcid, client, high_security, ca),
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

/// Fetches an http(s) URL with the driver's loader (URL rules, size
/// limit, timeout, the platform trust store plus --ca).
fn fetch(
    url: &str,
    client: ClientVersion,
    high_security: bool,
    ca: Option<&PathBuf>,
) -> Result<Vec<u8>, CliError> {
    let mut tls = TlsSettings::default();
    if let Some(ca) = ca {
        tls.add_ca_file(ca)
            .map_err(|e| CliError::Usage(format!("--ca {}: {e}", ca.display())))?;
    }
    let http = ocs_core::driver::http::builtin(&tls)
        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
    crate::live(async {
        fetch_custom_states_bytes(url, client, high_security, &*http, FetchLimits::default())
            .await
            .map_err(|e| match e {
                CustomStatesError::UrlNotAllowed(v) => CliError::Failed(v.to_string()),
                other => CliError::Usage(other.to_string()),
            })
    })
}

fn check(
    source: &str,
    lcid: u32,
    client: Client,
    high_security: bool,
    ca: Option<PathBuf>,
) -> Result<(), CliError> {
    let client = match client {
        Client::Oc2007 => ClientVersion::Oc2007,
        Client::Oc2007r2 => ClientVersion::Oc2007R2,
    };
    let path = match url_scheme(source).as_deref() {
        Some(scheme @ ("file" | "http" | "https")) => {
            check_url(source, client, high_security)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            if scheme != "file" {
                let bytes = fetch(source, client, high_security, ca.as_ref())?;
                return report(&bytes, source, lcid);
            }
            file_url_path(source).unwrap_or_default()
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
    report(&bytes, &path, lcid)
}

/// Strict validation of fetched or read bytes: JSON states or every
/// violation.
fn report(bytes: &[u8], path: &str, lcid: u32) -> Result<(), CliError> {
    match validate(bytes) {
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
