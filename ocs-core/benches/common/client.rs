//! Waiting for client events in the interop benchmarks (`signin`, `im`,
//! `presence_rtt`).

use std::time::Duration;

use ocs_core::driver::{Client, ClientEvent};
use ocs_core::register::RegistrationEvent;

/// Reads events (at most 30 s) until `pred` accepts one; panics with the
/// reason when sign-in fails or the client ends first.
pub async fn wait_for(c: &mut Client, what: &str, pred: impl Fn(&ClientEvent) -> bool) {
    let r = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = c.next_event().await {
            if pred(&e) {
                return Ok(());
            }
            if matches!(
                e,
                ClientEvent::Registration(
                    RegistrationEvent::Failed(_) | RegistrationEvent::CredentialsNeeded { .. }
                )
            ) {
                return Err(format!("{e:?}"));
            }
        }
        Err("client ended".to_owned())
    })
    .await;
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("waiting for {what}: {e}"),
        Err(_) => panic!("no {what} within 30 s"),
    }
}
