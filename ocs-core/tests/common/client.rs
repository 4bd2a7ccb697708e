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

/// The configuration of a client for `user` of the embedded server on
/// 127.0.0.1:`port` over TCP: `sip:user@contoso.com`, NTLM as
/// `CONTOSO\user` with the password `{user}pw` (as the tests create them).
pub fn sim_client_config(
    user: &str,
    epid: &str,
    port: u16,
    dialect: ocs_core::discovery::Dialect,
) -> ocs_core::driver::ClientConfig {
    use ocs_core::discovery::{ServerConfig, Transport};
    use ocs_core::endpoint::EndpointConfig;
    use ocs_core::register::{Credentials, RegisterConfig};
    let reg = RegisterConfig::new(&format!("sip:{user}@contoso.com"), dialect, epid);
    let mut cfg = ocs_core::driver::ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new(
            &format!("CONTOSO\\{user}"),
            &format!("{user}pw"),
        )),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Tcp,
    });
    cfg
}
