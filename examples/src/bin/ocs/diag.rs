//! `ocs diag`: sign in, print the configuration snapshot, sign out.

use std::time::Duration;

use clap::Args;
use ocs_core::discovery::Dialect;
use ocs_core::driver::{Client, ClientEvent};
use ocs_core::register::{CredentialsReason, RegistrationEvent};
use ocs_examples::{CliError, emit};

use crate::signin::SignIn;

/// Options of `ocs diag`.
#[derive(Debug, Args)]
pub(crate) struct DiagArgs {
    #[command(flatten)]
    sign_in: SignIn,
    /// Print a human-readable table instead of JSON.
    #[arg(long)]
    table: bool,
    /// How long to wait for in-band provisioning after sign-in (OCS), in
    /// seconds.
    #[arg(long, default_value_t = 5)]
    wait: u64,
}

/// Signs in, waits for provisioning (OCS dialect), prints the snapshot
/// (JSON object, or `--table`), signs out.
pub(crate) async fn run(a: DiagArgs) -> Result<(), CliError> {
    let cfg = a.sign_in.client_config()?;
    let ocs = cfg.endpoint.register.dialect == Dialect::Ocs;
    let mut client = Client::start(cfg).map_err(|e| CliError::Failed(e.to_string()))?;
    signed_in(&mut client, &a.sign_in.password_env).await?;
    if ocs {
        // The snapshot is taken either way; without provisioning it says so.
        let _ = tokio::time::timeout(Duration::from_secs(a.wait), async {
            while let Some(e) = client.next_event().await {
                if matches!(e, ClientEvent::Provisioning(_)) {
                    return;
                }
            }
        })
        .await;
    }
    let snap = client
        .diagnostics()
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if a.table {
        emit(snap.to_table().trim_end())?;
    } else {
        emit(snap.to_json())?;
    }
    client.sign_out();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = client.next_event().await {
            if e == ClientEvent::Stopped {
                return;
            }
        }
    })
    .await;
    Ok(())
}

async fn signed_in(c: &mut Client, password_env: &str) -> Result<(), CliError> {
    while let Some(e) = c.next_event().await {
        match e {
            ClientEvent::Registration(RegistrationEvent::Registered { .. }) => return Ok(()),
            ClientEvent::Registration(RegistrationEvent::Failed(err)) => {
                return Err(CliError::Failed(format!("sign-in failed: {err}")));
            }
            ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { reason, .. }) => {
                return Err(CliError::Failed(match reason {
                    CredentialsReason::Missing => {
                        format!("credentials needed: set ${password_env}")
                    }
                    CredentialsReason::Rejected => "the server rejected the credentials".into(),
                }));
            }
            ClientEvent::Stopped => break,
            _ => {}
        }
    }
    Err(CliError::Failed("not registered".into()))
}
