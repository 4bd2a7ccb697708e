//! Waiting for driver events in tests.

use std::time::Duration;

use ocs_core::driver::{Client, ClientEvent};
use ocs_core::register::RegistrationEvent;

/// Reads events until `pred` accepts one, failing after 10 s with
/// everything seen. Returns the events read, the accepted one last.
pub async fn wait_for(
    c: &mut Client,
    what: &str,
    pred: impl Fn(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = c.next_event().await {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(r, Ok(true)), "no {what}; saw {seen:?}");
    seen
}

/// A (re-)registration.
pub fn registered(e: &ClientEvent) -> bool {
    matches!(
        e,
        ClientEvent::Registration(RegistrationEvent::Registered { .. })
    )
}
