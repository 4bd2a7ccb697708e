//! The mobile build's DNS (ocs-core without `dns-srv`): the platform's
//! resolver gives addresses, SRV lookups say they are not in this build and
//! discovery goes on to the plan's host names, and a client signs in to a
//! server configured by name. `scripts/test.sh` runs this with
//! `cargo test -p ocs-ffi --no-default-features --features sim --test platform_dns`.
#![cfg(not(feature = "dns-srv"))]

use std::net::{IpAddr, Ipv4Addr};

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve_users;
use ocs_core::driver::{Client, ClientConfig, ClientEvent, DiscoveryError, Resolver};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;

#[tokio::test]
async fn the_platform_resolver_finds_addresses_and_says_srv_is_not_built() {
    let r = Resolver::from_system_conf().expect("the platform's resolver");
    let mut rng = Rng::from_seed(1);
    let manual = ServerConfig {
        host: "localhost".into(),
        port: Some(5061),
        transport: Transport::Tls,
    };
    let found = r
        .discover(
            "contoso.com",
            Dialect::Ocs,
            &[Transport::Tls],
            Some(&manual),
            &mut rng,
        )
        .await
        .expect("localhost resolves");
    assert!(
        found
            .iter()
            .any(|c| c.addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) && c.addr.port() == 5061),
        "{found:?}"
    );
    match r
        .discover(
            "contoso.invalid",
            Dialect::Ocs,
            &[Transport::Tls],
            None,
            &mut rng,
        )
        .await
    {
        Err(DiscoveryError::NoServerFound { tried, .. }) => {
            assert!(
                tried
                    .iter()
                    .any(|t| t.starts_with("SRV ") && t.contains("dns-srv feature")),
                "{tried:?}"
            );
            assert!(tried.iter().any(|t| t.starts_with("A/AAAA ")), "{tried:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(Resolver::with_nameserver("127.0.0.1:53".parse().expect("addr")).is_err());
}

#[tokio::test]
async fn a_client_signs_in_to_a_server_configured_by_name() {
    let server = serve_users("contoso.com", &[("alice", "alicepw")])
        .await
        .expect("serve");
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.server = Some(ServerConfig {
        host: "localhost".into(),
        port: Some(server.tcp.port()),
        transport: Transport::Tcp,
    });
    let mut c = Client::start(cfg).expect("client starts");
    let signed_in = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(e) = c.next_event().await {
            match e {
                ClientEvent::Registration(RegistrationEvent::Registered { .. }) => return Ok(()),
                ClientEvent::Registration(RegistrationEvent::Failed(e)) => {
                    return Err(e.to_string());
                }
                _ => {}
            }
        }
        Err("the client stopped".to_owned())
    })
    .await
    .expect("within 10 s");
    assert_eq!(signed_in, Ok(()));
    c.sign_out();
}
