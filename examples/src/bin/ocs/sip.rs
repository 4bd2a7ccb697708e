//! `ocs sip ...`: message-level tools.

use clap::Subcommand;
use ocs_core::sip::{Capabilities, Disposition, Message, disposition};
use ocs_examples::{CliError, emit, read_input};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub(crate) enum SipCommand {
    /// Parse one message exactly as received and print it as JSON.
    Parse {
        /// The message file; absent or `-` reads stdin.
        file: Option<String>,
    },
    /// Print what a user agent answers: `accept`, `drop` or `<code> <reason>`.
    Check {
        /// The message file; absent or `-` reads stdin.
        file: Option<String>,
    },
    /// Print the MS-SIPAE signature buffer of a signed message
    /// (`<NTLM><rand><num>...`), taking rand, num, realm and targetname from
    /// its Authentication-Info or (Proxy-)Authorization header.
    SignatureBuffer {
        /// The message file; absent or `-` reads stdin.
        file: Option<String>,
        /// Authentication version (default: the header's `version`, else 4).
        #[arg(long)]
        auth_version: Option<u32>,
    },
}

pub(crate) fn run(cmd: SipCommand) -> Result<(), CliError> {
    match cmd {
        SipCommand::Parse { file } => parse(file.as_deref()),
        SipCommand::Check { file } => check(file.as_deref()),
        SipCommand::SignatureBuffer { file, auth_version } => {
            signature_buffer(file.as_deref(), auth_version)
        }
    }
}

fn parse(file: Option<&str>) -> Result<(), CliError> {
    let bytes = read_input(file)?;
    let m = Message::parse(&bytes).map_err(|e| CliError::Failed(e.to_string()))?;
    let headers: Vec<_> = m
        .headers()
        .map(|h| json!({"name": h.name_as_written, "value": h.value}))
        .collect();
    let out = match (m.method(), m.status()) {
        (Some(method), _) => json!({
            "kind": "request",
            "method": method.as_str(),
            "uri": m.request_uri(),
            "headers": headers,
            "body_len": m.body().len(),
        }),
        (None, status) => json!({
            "kind": "response",
            "status": status,
            "reason": m.reason(),
            "headers": headers,
            "body_len": m.body().len(),
        }),
    };
    emit(out)?;
    Ok(())
}

fn check(file: Option<&str>) -> Result<(), CliError> {
    let bytes = read_input(file)?;
    match disposition(&bytes, &Capabilities::default()) {
        Disposition::Accept => emit("accept")?,
        Disposition::Drop(_) => emit("drop")?,
        Disposition::Reply { code, reason, .. } => emit(format!("{code} {reason}"))?,
        Disposition::Unparseable(e) => return Err(CliError::Failed(e.to_string())),
        // New outcomes must be added here before the CLI claims them.
        other => return Err(CliError::Failed(format!("unhandled outcome {other:?}"))),
    }
    Ok(())
}

fn signature_buffer(file: Option<&str>, version: Option<u32>) -> Result<(), CliError> {
    use ocs_core::auth::sipae::{message_signature_buffer, signature_header};
    let bytes = read_input(file)?;
    let m = Message::parse(&bytes).map_err(|e| CliError::Failed(e.to_string()))?;
    let h = signature_header(&m)
        .map_err(|e| CliError::Failed(e.to_string()))?
        .ok_or_else(|| {
            CliError::Failed(
                "the message carries no signature parameters (crand/cnum or srand/snum)".into(),
            )
        })?;
    let version = version.or(h.version).unwrap_or(4);
    let buf = message_signature_buffer(
        &m,
        &h.scheme,
        &h.rand,
        &h.num,
        &h.realm,
        &h.targetname,
        version,
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    emit(buf)
}
