//! `custom-state-server`: serves customStates XML (the CustomStateURL file)
//! per user or per group from a small configuration file. See
//! `ocs_examples::custom_state_server` for the routes and the format.
//!
//! ```text
//! custom-state-server --config examples/custom-state-server.conf --listen 127.0.0.1:8080
//! curl 'http://127.0.0.1:8080/states.xml?user=alice'
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use ocs_examples::CliError;
use ocs_examples::custom_state_server::{parse_config, serve};

/// Serves customStates XML per user or group.
#[derive(Debug, Parser)]
#[command(name = "custom-state-server")]
struct Args {
    /// The configuration file ([default], [group NAME], [user NAME]).
    #[arg(long, default_value = "examples/custom-state-server.conf")]
    config: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address in use
    /// is printed as the first line of output, as JSON).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

async fn run(a: Args) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&a.config)
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", a.config.display())))?;
    let cfg = parse_config(&text)
        .map_err(|e| CliError::Failed(format!("{}: {e}", a.config.display())))?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|e| CliError::Usage(format!("listening on {}: {e}", a.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    ocs_examples::emit(serde_json::json!({
        "listening": addr.to_string(),
        "url": format!("http://{addr}/states.xml"),
    }))?;
    tokio::select! {
        r = serve(listener, Arc::new(cfg)) => r.map_err(|e| CliError::Usage(e.to_string())),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
