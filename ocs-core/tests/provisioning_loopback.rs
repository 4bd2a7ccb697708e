//! In-band provisioning and the diagnostics snapshot against the embedded
//! server over loopback: after an OCS sign-in the client subscribes to
//! `vnd-microsoft-provisioning-v2` and reports the piggy-backed
//! `provisionGroupList`; `Client::diagnostics` then shows the address-book
//! URL from it.
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};

use std::net::{IpAddr, Ipv4Addr};

use ocs_core::diag::Severity;
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::provisioning_agent::ProvisioningEvent;
use ocs_core::register::{Credentials, RegisterConfig};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

#[tokio::test]
async fn ocs_sign_in_fetches_provisioning_and_diagnostics_show_it() {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(41),
        [7; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    let server = serve(
        SimServer::new(r, Rng::from_seed(42)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        None,
    )
    .await
    .expect("serve");
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "a1a1a1a1a1");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(server.tcp.port()),
        transport: Transport::Tcp,
    });
    let mut c = Client::start(cfg).expect("client");
    wait_for(&mut c, "registration", registered).await;
    let seen = wait_for(&mut c, "provisioning", |e| {
        matches!(e, ClientEvent::Provisioning(_))
    })
    .await;
    let Some(ClientEvent::Provisioning(ProvisioningEvent::Received(p))) = seen.last() else {
        panic!("provisioning failed: {seen:?}");
    };
    assert_eq!(p.abs_url(false), Some("http://127.0.0.1/abs/int"));
    assert_eq!(p.abs_url(true), Some("http://127.0.0.1/abs/ext"));
    assert_eq!(p.uc_policy("EnableDelegation"), Some("true"));
    assert_eq!(p.meeting_policy("AllowIPAudio"), Some("true"));
    let ev = seen.last().expect("event");
    assert_eq!((ev.id(), ev.severity()), (1500, Severity::Info));

    let snap = c.diagnostics().await.expect("snapshot");
    assert_eq!(snap.sip_uri, "sip:alice@contoso.com");
    assert_eq!(snap.registration.state, "registered");
    assert_eq!(snap.registration.auth_scheme.as_deref(), Some("NTLM"));
    assert!(snap.registration.gruu.is_some());
    assert_eq!(snap.provisioning, "received");
    assert_eq!(
        snap.address_book.url.as_deref(),
        Some("http://127.0.0.1/abs/int")
    );
    let server_info = snap.server.as_ref().expect("connected");
    assert_eq!(server_info.transport, "TCP");
    // The in-band ucPolicy values join the effective policy.
    assert!(
        snap.policies
            .iter()
            .any(|s| s.name == "EnableDelegation" && s.source == ocs_core::policy::Source::InBand)
    );
    let json: serde_json::Value = serde_json::from_str(&snap.to_json()).expect("valid JSON");
    assert_eq!(json["address_book"]["url"], "http://127.0.0.1/abs/int");

    c.sign_out();
    wait_for(&mut c, "stop", |e| *e == ClientEvent::Stopped).await;
}
