//! `ocs autodiscover`: find the SIP server by Lync/SfB autodiscover.

use std::path::PathBuf;

use clap::Args;
use ocs_core::autodiscover::{AccessLocation, DiscoveryConfig};
use ocs_core::driver::TlsSettings;
use ocs_examples::{CliError, emit};
use serde_json::json;

/// Options of `ocs autodiscover`.
#[derive(Debug, Args)]
pub(crate) struct AutodiscoverArgs {
    /// Your SIP address, e.g. sip:alice@contoso.com.
    #[arg(long)]
    user: String,
    /// Start here instead of lyncdiscoverinternal.DOMAIN and
    /// lyncdiscover.DOMAIN (e.g. the `autodiscover` URL `ocs sim-server`
    /// prints); `?sipuri=` is added when missing.
    #[arg(long)]
    url: Option<String>,
    /// Account for the token service, e.g. CONTOSO\alice (default: the
    /// user part of --user).
    #[arg(long)]
    auth_user: Option<String>,
    /// Name of the environment variable holding the password; without
    /// it set, a user resource that asks for a token ends the search.
    #[arg(long, default_value = "OCS_PASSWORD")]
    password_env: String,
    /// Extra trusted CA certificate (PEM), e.g. an enterprise CA.
    #[arg(long)]
    ca: Option<PathBuf>,
}

pub(crate) async fn run(a: AutodiscoverArgs) -> Result<(), CliError> {
    let uri = ocs_core::sip::SipUri::parse(&a.user)
        .map_err(|e| CliError::Failed(format!("--user {}: {e}", a.user)))?;
    let auth_user = a
        .auth_user
        .clone()
        .unwrap_or_else(|| uri.user.unwrap_or_default().to_owned());
    let credentials = std::env::var(&a.password_env)
        .ok()
        .map(|pw| (auth_user, pw));
    let urls = a.url.clone().map(|u| vec![u]);
    let mut tls = TlsSettings::default();
    if let Some(ca) = &a.ca {
        tls.add_ca_file(ca)
            .map_err(|e| CliError::Usage(format!("--ca {}: {e}", ca.display())))?;
    }
    let http = ocs_core::driver::http::builtin(&tls)
        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
    let mut emitted = Ok(());
    let (out, _) = ocs_core::driver::autodiscover(
        DiscoveryConfig {
            sip_uri: a.user.clone(),
            urls,
            credentials,
        },
        &*http,
        |step| {
            if emitted.is_ok() {
                emitted = emit(json!({
                    "event": "autodiscover_step",
                    "method": step.method,
                    "url": step.url,
                    "outcome": step.outcome,
                }));
            }
        },
    )
    .await;
    emitted?;
    let found = out.map_err(|e| CliError::Failed(e.to_string()))?;
    let access = match found.access {
        AccessLocation::Internal => "internal",
        AccessLocation::External => "external",
        AccessLocation::Unknown => "unknown",
    };
    emit(json!({
        "event": "autodiscover_found",
        "servers": found
            .servers
            .iter()
            .map(|s| json!({"fqdn": s.fqdn, "port": s.port}))
            .collect::<Vec<_>>(),
        "access": access,
        "walk": found.walk,
    }))
}
