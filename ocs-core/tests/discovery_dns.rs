//! SIP server discovery against an in-process DNS server on loopback.
//!
//! The resolver is pointed only at that server (no system configuration,
//! no hosts file), so these tests never touch the real network.
#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::dns::{Dns, Rr, zone};
use ocs_core::discovery::{Candidate, Dialect, ServerConfig, Transport};
use ocs_core::driver::dns::{DiscoveryError, Resolver};
use ocs_core::rng::Rng;

const ALL: [Transport; 3] = [Transport::Tls, Transport::Tcp, Transport::Udp];

async fn dns_server() -> Dns {
    let zones = [
        // OCS: two internal pools with different priorities, an Edge, and
        // A fallbacks that must not be used because SRV records exist.
        zone(
            "contoso.com",
            &[
                Rr::Srv(
                    "_sipinternaltls._tcp.contoso.com",
                    20,
                    0,
                    5061,
                    "pool2.contoso.com",
                ),
                Rr::Srv(
                    "_sipinternaltls._tcp.contoso.com",
                    10,
                    0,
                    5061,
                    "pool1.contoso.com",
                ),
                Rr::Srv("_sip._tls.contoso.com", 0, 0, 443, "edge.contoso.com"),
                Rr::A("pool1.contoso.com", [127, 0, 0, 11]),
                Rr::A("pool2.contoso.com", [127, 0, 0, 12]),
                Rr::A("edge.contoso.com", [127, 0, 0, 13]),
                Rr::A("sipinternal.contoso.com", [127, 0, 0, 20]),
                Rr::A("sip.contoso.com", [127, 0, 0, 21]),
            ],
        ),
        // No SRV at all: A fallbacks only. `sip` and `sipexternal` exist,
        // so TechNet order (sip first) and SIPE order (sipexternal first)
        // differ.
        zone(
            "fabrikam.com",
            &[
                Rr::A("sipexternal.fabrikam.com", [127, 0, 0, 32]),
                Rr::A("sip.fabrikam.com", [127, 0, 0, 31]),
            ],
        ),
        // The internal SRV says "not here" ("."); the Edge SRV works.
        zone(
            "litware.com",
            &[
                Rr::Srv("_sipinternaltls._tcp.litware.com", 0, 0, 0, "."),
                Rr::Srv("_sip._tls.litware.com", 0, 0, 5061, "edge.litware.com"),
                Rr::A("edge.litware.com", [127, 0, 0, 60]),
            ],
        ),
        // Standard: only `_sip._udp`; the apex A must not be used.
        zone(
            "example.org",
            &[
                Rr::Srv("_sip._udp.example.org", 0, 0, 5070, "proxy.example.org"),
                Rr::A("proxy.example.org", [127, 0, 0, 41]),
                Rr::A("example.org", [127, 0, 0, 40]),
            ],
        ),
        // Standard without SRV: the domain's own A record.
        zone("wingtip.test", &[Rr::A("wingtip.test", [127, 0, 0, 50])]),
        // A zone with nothing in it.
        zone("empty.test", &[]),
    ];
    common::dns::serve(zones).await
}

fn summary(c: &[Candidate]) -> Vec<(String, String, Transport, String)> {
    c.iter()
        .map(|c| {
            (
                c.host.clone(),
                c.addr.to_string(),
                c.transport,
                c.source.clone(),
            )
        })
        .collect()
}

fn row(host: &str, addr: &str, t: Transport, source: &str) -> (String, String, Transport, String) {
    (host.into(), addr.into(), t, source.into())
}

/// A resolver pointed at a loopback port where nothing answers: any DNS
/// query would time out, so a quick success proves no DNS was used.
async fn dead_resolver() -> Resolver {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    Resolver::with_nameserver(addr).unwrap()
}

#[tokio::test]
async fn ocs_srv_order_priority_then_later_srv_names() {
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    for seed in 0..5 {
        let got = r
            .discover(
                "contoso.com",
                Dialect::Ocs,
                &[Transport::Tls, Transport::Tcp],
                None,
                &mut Rng::from_seed(seed),
            )
            .await
            .unwrap();
        assert_eq!(
            summary(&got),
            [
                row(
                    "pool1.contoso.com",
                    "127.0.0.11:5061",
                    Transport::Tls,
                    "SRV _sipinternaltls._tcp.contoso.com"
                ),
                row(
                    "pool2.contoso.com",
                    "127.0.0.12:5061",
                    Transport::Tls,
                    "SRV _sipinternaltls._tcp.contoso.com"
                ),
                row(
                    "edge.contoso.com",
                    "127.0.0.13:443",
                    Transport::Tls,
                    "SRV _sip._tls.contoso.com"
                ),
            ]
        );
    }
}

#[tokio::test]
async fn ocs_unavailable_srv_target_is_skipped() {
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    let got = r
        .discover(
            "litware.com",
            Dialect::Ocs,
            &ALL,
            None,
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&got),
        [row(
            "edge.litware.com",
            "127.0.0.60:5061",
            Transport::Tls,
            "SRV _sip._tls.litware.com"
        )]
    );
}

#[tokio::test]
async fn ocs_falls_back_to_a_records_in_technet_order() {
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    let got = r
        .discover(
            "fabrikam.com",
            Dialect::Ocs,
            &ALL,
            None,
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&got),
        [
            row(
                "sip.fabrikam.com",
                "127.0.0.31:5061",
                Transport::Tls,
                "A/AAAA sip.fabrikam.com"
            ),
            row(
                "sipexternal.fabrikam.com",
                "127.0.0.32:443",
                Transport::Tls,
                "A/AAAA sipexternal.fabrikam.com"
            ),
        ]
    );
}

#[tokio::test]
async fn standard_mode_uses_rfc3263_order() {
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    let got = r
        .discover(
            "example.org",
            Dialect::Standard,
            &ALL,
            None,
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&got),
        [row(
            "proxy.example.org",
            "127.0.0.41:5070",
            Transport::Udp,
            "SRV _sip._udp.example.org"
        )]
    );

    // No SRV: the domain itself, once per allowed transport, TLS first.
    let got = r
        .discover(
            "wingtip.test",
            Dialect::Standard,
            &[Transport::Udp, Transport::Tls],
            None,
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&got),
        [
            row(
                "wingtip.test",
                "127.0.0.50:5061",
                Transport::Tls,
                "A/AAAA wingtip.test"
            ),
            row(
                "wingtip.test",
                "127.0.0.50:5060",
                Transport::Udp,
                "A/AAAA wingtip.test"
            ),
        ]
    );
}

#[tokio::test]
async fn manual_config_skips_discovery() {
    // A host name: only that host is resolved, SRV records are ignored.
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    let manual = ServerConfig {
        host: "sip.contoso.com".into(),
        port: None,
        transport: Transport::Tls,
    };
    let got = r
        .discover(
            "contoso.com",
            Dialect::Ocs,
            &ALL,
            Some(&manual),
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&got),
        [row(
            "sip.contoso.com",
            "127.0.0.21:5061",
            Transport::Tls,
            "manual configuration"
        )]
    );

    // An IP literal: no DNS at all (the resolver here has no server).
    let dead = dead_resolver().await;
    let manual = ServerConfig {
        host: "127.0.0.99".into(),
        port: Some(5070),
        transport: Transport::Tcp,
    };
    let got = tokio::time::timeout(
        Duration::from_millis(500),
        dead.discover(
            "contoso.com",
            Dialect::Ocs,
            &ALL,
            Some(&manual),
            &mut Rng::from_seed(1),
        ),
    )
    .await
    .expect("no DNS query for an IP literal")
    .unwrap();
    assert_eq!(
        summary(&got),
        [row(
            "127.0.0.99",
            "127.0.0.99:5070",
            Transport::Tcp,
            "manual configuration"
        )]
    );
}

#[tokio::test]
async fn ip_literal_domain_skips_dns() {
    let dead = dead_resolver().await;
    let got = tokio::time::timeout(
        Duration::from_millis(500),
        dead.discover(
            "[::1]",
            Dialect::Standard,
            &ALL,
            None,
            &mut Rng::from_seed(1),
        ),
    )
    .await
    .expect("no DNS query for an IP literal")
    .unwrap();
    assert_eq!(
        summary(&got),
        [
            row("::1", "[::1]:5061", Transport::Tls, "IP literal"),
            row("::1", "[::1]:5060", Transport::Tcp, "IP literal"),
            row("::1", "[::1]:5060", Transport::Udp, "IP literal"),
        ]
    );
}

#[tokio::test]
async fn no_server_found_lists_what_was_tried() {
    let dns = dns_server().await;
    let r = Resolver::with_nameserver(dns.addr).unwrap();
    let err = r
        .discover(
            "empty.test",
            Dialect::Ocs,
            &ALL,
            None,
            &mut Rng::from_seed(1),
        )
        .await
        .unwrap_err();
    let DiscoveryError::NoServerFound { domain, tried } = &err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(domain, "empty.test");
    let expected = [
        "SRV _sipinternaltls._tcp.empty.test",
        "SRV _sipinternal._tcp.empty.test",
        "SRV _sip._tls.empty.test",
        "A/AAAA sipinternal.empty.test (TLS 5061)",
        "A/AAAA sip.empty.test (TLS 5061)",
        "A/AAAA sipexternal.empty.test (TLS 443)",
    ];
    assert_eq!(tried.len(), expected.len(), "{tried:?}");
    for (t, e) in tried.iter().zip(expected) {
        assert!(t.starts_with(e), "{t:?} should start with {e:?}");
    }
    let msg = err.to_string();
    assert!(msg.starts_with("no SIP server found for empty.test; tried: "));
    for e in expected {
        assert!(msg.contains(e), "{msg}");
    }
}

#[tokio::test]
async fn bad_input_is_an_error() {
    let dead = dead_resolver().await;
    let mut rng = Rng::from_seed(1);
    let err = dead
        .discover("user@contoso.com", Dialect::Ocs, &ALL, None, &mut rng)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::InvalidDomain { .. }), "{err}");

    let err = dead
        .discover(
            "contoso.com",
            Dialect::Ocs,
            &[Transport::Udp],
            None,
            &mut rng,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NoUsableTransport { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "no usable transport: Ocs discovery cannot use UDP"
    );

    let manual = ServerConfig {
        host: "".into(),
        port: None,
        transport: Transport::Tls,
    };
    let err = dead
        .discover("contoso.com", Dialect::Ocs, &ALL, Some(&manual), &mut rng)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::InvalidDomain { .. }), "{err}");
}

#[tokio::test]
async fn discover_future_is_send() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let dead = dead_resolver().await;
    let mut rng = Rng::from_seed(1);
    let manual = ServerConfig {
        host: "127.0.0.1".into(),
        port: None,
        transport: Transport::Tls,
    };
    // Spawnable on a multi-threaded runtime.
    let got = assert_send(dead.discover("x.test", Dialect::Ocs, &ALL, Some(&manual), &mut rng))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
}
