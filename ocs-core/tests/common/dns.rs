//! An in-process authoritative DNS server (hickory-server) on loopback, for
//! discovery tests: the resolver under test is pointed only at it, so no
//! test touches the real network.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// An absolute DNS name from `s` (without the trailing dot).
pub fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).unwrap()
}

/// A resource record to put in a zone.
pub enum Rr {
    /// owner, IPv4 address
    A(&'static str, [u8; 4]),
    /// owner, priority, weight, port, target ("." = not available)
    Srv(&'static str, u16, u16, u16, &'static str),
}

/// A zone handler for `origin` holding an SOA and `records`.
pub type Zone = (LowerName, InMemoryZoneHandler<TokioRuntimeProvider>);

/// Builds the zone `origin` with an SOA and `records`.
pub fn zone(origin: &str, records: &[Rr]) -> Zone {
    let origin_name = name(origin);
    let mut z = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin_name.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let serial = 1;
    let soa = SOA::new(
        name(&format!("ns.{origin}")),
        name(&format!("hostmaster.{origin}")),
        serial,
        3600,
        600,
        86400,
        60,
    );
    assert!(z.upsert_mut(
        Record::from_rdata(origin_name.clone(), 3600, RData::SOA(soa)),
        serial
    ));
    for rr in records {
        let record = match rr {
            Rr::A(owner, ip) => {
                Record::from_rdata(name(owner), 60, RData::A(Ipv4Addr::from(*ip).into()))
            }
            Rr::Srv(owner, prio, weight, port, target) => {
                let target = if *target == "." {
                    Name::root()
                } else {
                    name(target)
                };
                Record::from_rdata(
                    name(owner),
                    60,
                    RData::SRV(SRV::new(*prio, *weight, *port, target)),
                )
            }
        };
        assert!(z.upsert_mut(record, serial));
    }
    (LowerName::new(&origin_name), z)
}

/// The test DNS server; dropping it stops it.
pub struct Dns {
    /// Where it answers (UDP and TCP on the same port).
    pub addr: SocketAddr,
    _server: Server<Catalog>,
}

/// Serves `zones` on a free loopback port (UDP and TCP).
pub async fn serve(zones: impl IntoIterator<Item = Zone>) -> Dns {
    let mut catalog = Catalog::new();
    for (origin, handler) in zones {
        catalog.upsert(origin, vec![Arc::new(handler)]);
    }

    let mut server = Server::new(catalog);
    // TCP first on a random port, then UDP on the same port (the resolver
    // falls back to TCP for truncated answers).
    let (tcp, udp) = loop {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)).await {
            break (tcp, udp);
        }
    };
    let addr = udp.local_addr().unwrap();
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 4096);
    Dns {
        addr,
        _server: server,
    }
}
