//! `ocs im send` and `ocs im listen`.

use std::time::Duration;

use clap::Subcommand;
use ocs_core::driver::{Client, ClientEvent};
use ocs_core::messaging::ImEvent;
use ocs_examples::{CliError, emit};
use serde_json::json;

use crate::signin::{SignIn, event_json, sign_out, signed_in};

#[derive(Debug, Subcommand)]
pub(crate) enum ImCommand {
    /// Sign in, send one instant message, wait for its outcome, sign out.
    /// Exit 0 when delivered, 1 with the reason when not.
    Send {
        #[command(flatten)]
        sign_in: SignIn,
        /// The recipient, e.g. sip:bob@contoso.com.
        uri: String,
        /// The text.
        text: String,
    },
    /// Sign in and print incoming messages and typing notifications as JSON
    /// lines until Ctrl-C or --for runs out.
    Listen {
        #[command(flatten)]
        sign_in: SignIn,
        /// Listen this many seconds, then sign out.
        #[arg(long = "for")]
        hold: Option<u64>,
    },
}

pub(crate) fn im_json(e: &ImEvent) -> serde_json::Value {
    match e {
        ImEvent::Delivered { id } => json!({"event": "delivered", "id": id.0}),
        ImEvent::Failed { id, reason, detail } => json!({"event": "failed", "id": id.0,
            "reason": format!("{reason:?}"), "description": reason.description(), "detail": detail}),
        ImEvent::Received { from, content } => json!({"event": "message", "from": from,
            "content_type": content.content_type, "text": content.plain_text}),
        ImEvent::Typing { from, active } => {
            json!({"event": "typing", "from": from, "active": active})
        }
        ImEvent::RefusedByPolicy { from } => {
            json!({"event": "refused_by_policy", "from": from, "policy": "DisableIM"})
        }
        ImEvent::ContactCannotReceiveIm { uri } => {
            json!({"event": "contact_cannot_receive_im", "uri": uri})
        }
        ImEvent::SessionEnded { uri, by_peer } => {
            json!({"event": "session_ended", "uri": uri, "by_peer": by_peer})
        }
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}

fn print(e: &ClientEvent) -> Result<(), CliError> {
    match e {
        ClientEvent::Im(im) => emit(im_json(im)),
        other => emit(event_json(other)),
    }
}

pub(crate) async fn run(cmd: ImCommand) -> Result<(), CliError> {
    match cmd {
        ImCommand::Send { sign_in, uri, text } => {
            let mut client = Client::start(sign_in.client_config()?)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            signed_in(&mut client, print).await?;
            let id = match client.send_im(&uri, &text).await {
                Ok(sent) => sent.id,
                Err(e) => {
                    sign_out(&mut client, print).await?;
                    return Err(CliError::Failed(e.to_string()));
                }
            };
            let mut outcome = Err(CliError::Failed("no outcome".into()));
            let wait = tokio::time::timeout(Duration::from_secs(90), async {
                while let Some(e) = client.next_event().await {
                    print(&e)?;
                    match e {
                        ClientEvent::Im(ImEvent::Delivered { id: d }) if d == id => {
                            outcome = Ok(());
                            break;
                        }
                        ClientEvent::Im(ImEvent::Failed {
                            id: f,
                            reason,
                            detail,
                        }) if f == id => {
                            outcome = Err(CliError::Failed(format!(
                                "not delivered: {} ({detail})",
                                reason.description()
                            )));
                            break;
                        }
                        ClientEvent::Stopped => break,
                        _ => {}
                    }
                }
                Ok::<(), CliError>(())
            })
            .await;
            if wait.is_err() {
                outcome = Err(CliError::Failed("no outcome within 90 s".into()));
            }
            sign_out(&mut client, print).await?;
            outcome
        }
        ImCommand::Listen { sign_in, hold } => {
            let mut client = Client::start(sign_in.client_config()?)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            signed_in(&mut client, print).await?;
            let until = async {
                match hold {
                    Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::pin!(until);
            loop {
                tokio::select! {
                    e = client.next_event() => match e {
                        Some(e) => {
                            print(&e)?;
                            if e == ClientEvent::Stopped {
                                return Err(CliError::Failed("client stopped".into()));
                            }
                        }
                        None => return Err(CliError::Failed("client ended".into())),
                    },
                    _ = &mut until => break,
                }
            }
            sign_out(&mut client, print).await
        }
    }
}
