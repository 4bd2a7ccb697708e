//! DNS for server discovery: runs a [`discovery::plan`](crate::discovery::plan)
//! against real DNS with hickory-resolver (feature `dns-srv`, default).
//! Without that feature (mobile builds) the platform's resolver is asked
//! for addresses only (getaddrinfo through tokio): SRV lookups are
//! reported as not available, so discovery goes on to the plan's host
//! names, and a configured server name resolves as the platform resolves
//! it.
//!
//! The order of the lookups and of SRV answers is decided by the sans-IO
//! [`crate::discovery`] module; this file only asks the questions. Lookups
//! of one phase (all SRV names, then all SRV targets, then the fallback
//! host names) run concurrently, and their answers are used in plan order.

use std::net::{IpAddr, SocketAddr};
#[cfg(feature = "dns-srv")]
use std::time::Duration;

use futures_util::future::join_all;
#[cfg(feature = "dns-srv")]
use hickory_resolver::TokioResolver;
#[cfg(feature = "dns-srv")]
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
#[cfg(feature = "dns-srv")]
use hickory_resolver::net::NetError;
#[cfg(feature = "dns-srv")]
use hickory_resolver::net::runtime::TokioRuntimeProvider;
#[cfg(feature = "dns-srv")]
use hickory_resolver::proto::rr::{Name, RData};

use crate::discovery::{
    Candidate, Dialect, DomainError, DomainName, Query, ServerConfig, SrvRecord, Transport,
    order_srv, parse_domain, plan, plan_manual,
};
use crate::rng::Rng;

/// Why discovery found no server to try.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The SIP domain (or the configured host) is not a valid host name.
    /// The caller should check the sign-in address or the server setting.
    #[error("{domain:?} is not a valid SIP domain: {reason}")]
    InvalidDomain {
        /// The name as given.
        domain: String,
        /// What is wrong with it.
        reason: DomainError,
    },
    /// None of the allowed transports can be used with this dialect (for
    /// example only UDP with [`Dialect::Ocs`], which is TLS/TCP only). The
    /// caller should allow TLS or TCP.
    #[error("no usable transport: {dialect:?} discovery cannot use {}", list(.allowed))]
    NoUsableTransport {
        /// The dialect asked for.
        dialect: Dialect,
        /// The transports that were allowed.
        allowed: Vec<Transport>,
    },
    /// Every lookup came back empty or failed. `tried` lists each lookup
    /// with its outcome. The caller should check the domain and DNS, or
    /// configure the server manually.
    #[error("no SIP server found for {domain}; tried: {}", .tried.join("; "))]
    NoServerFound {
        /// The domain (or configured host) discovery was run for.
        domain: String,
        /// Each lookup, with what came of it, in plan order, e.g.
        /// `SRV _sipinternaltls._tcp.contoso.com: no records`.
        tried: Vec<String>,
    },
    /// The resolver could not be set up, e.g. the system DNS configuration
    /// (`/etc/resolv.conf`) could not be read. The caller may build the
    /// resolver with [`Resolver::with_nameserver`] or configure the server
    /// manually.
    #[error("cannot set up the DNS resolver: {reason}")]
    ResolverSetup {
        /// The resolver's explanation.
        reason: String,
    },
}

fn list(ts: &[Transport]) -> String {
    if ts.is_empty() {
        return "no transport".to_owned();
    }
    ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

/// An asynchronous DNS resolver for SIP server discovery.
///
/// Cheap to clone (the cache is shared). Must be used inside a tokio
/// runtime.
#[derive(Debug, Clone)]
pub struct Resolver {
    #[cfg(feature = "dns-srv")]
    inner: TokioResolver,
}

#[cfg(not(feature = "dns-srv"))]
impl Resolver {
    /// The platform's resolver (getaddrinfo): addresses only, no SRV.
    pub fn from_system_conf() -> Result<Self, DiscoveryError> {
        Ok(Resolver {})
    }

    /// Needs the `dns-srv` feature (a name server of our own choosing).
    pub fn with_nameserver(addr: SocketAddr) -> Result<Self, DiscoveryError> {
        Err(DiscoveryError::ResolverSetup {
            reason: format!(
                "asking the name server {addr} needs the dns-srv feature (this build uses the platform's resolver)"
            ),
        })
    }

    async fn srv(&self, _name: &str) -> Result<Vec<SrvRecord>, String> {
        Err("SRV lookups need the dns-srv feature (this build asks the platform's resolver for addresses only)".to_owned())
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![ip]);
        }
        let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        let mut ips: Vec<IpAddr> = tokio::net::lookup_host((unbracketed, 0))
            .await
            .map_err(|e| e.to_string())?
            .map(|a| a.ip())
            .collect();
        // A first, as the hickory path asks.
        ips.sort_by_key(|ip| ip.is_ipv6());
        ips.dedup();
        if ips.is_empty() {
            Err("no records".to_owned())
        } else {
            Ok(ips)
        }
    }
}

#[cfg(feature = "dns-srv")]
impl Resolver {
    /// A resolver using the operating system's DNS configuration
    /// (`/etc/resolv.conf` on Unix, the registry on Windows). The hosts
    /// file is honoured.
    pub fn from_system_conf() -> Result<Self, DiscoveryError> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| DiscoveryError::ResolverSetup {
                reason: e.to_string(),
            })?;
        // OCS 2007 R2 is IPv4-only; for SIP servers generally, A first is
        // the safer default. Both families are still queried.
        builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let inner = builder.build().map_err(|e| DiscoveryError::ResolverSetup {
            reason: e.to_string(),
        })?;
        Ok(Resolver { inner })
    }

    /// A resolver that asks only the name server at `addr` (UDP, and TCP
    /// for truncated answers), ignoring the system configuration and the
    /// hosts file. For tests and for deployments that pin a DNS server.
    pub fn with_nameserver(addr: SocketAddr) -> Result<Self, DiscoveryError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = addr.port();
        let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
        let config = ResolverConfig::from_name_servers(vec![ns]);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        let opts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 1;
        let inner = builder.build().map_err(|e| DiscoveryError::ResolverSetup {
            reason: e.to_string(),
        })?;
        Ok(Resolver { inner })
    }
}

impl Resolver {
    /// Finds the SIP servers to try for `domain` (the part of the sign-in
    /// address after `@`), best first.
    ///
    /// With `manual` set, discovery is skipped: only the configured host is
    /// resolved (or used directly if it is an IP literal), with its own
    /// transport and port; `domain`, `dialect` and `allowed` are ignored.
    ///
    /// Otherwise the [`plan`] for `dialect` is run: the SRV names in plan
    /// order (records ordered by [`order_srv`] with `rng`, each target
    /// resolved to A/AAAA). The candidates of the first SRV name that
    /// yields an address come first, followed by those of later SRV names,
    /// so that a candidate that fails moves the client on to the next one.
    /// Only if no SRV name yields anything are the host fallbacks used, in
    /// plan order. A candidate reachable by two routes is listed once, at
    /// its first place.
    pub async fn discover(
        &self,
        domain: &str,
        dialect: Dialect,
        allowed: &[Transport],
        manual: Option<&ServerConfig>,
        rng: &mut Rng,
    ) -> Result<Vec<Candidate>, DiscoveryError> {
        if let Some(server) = manual {
            parse_domain(&server.host).map_err(|reason| DiscoveryError::InvalidDomain {
                domain: server.host.clone(),
                reason,
            })?;
            let mut tried = Vec::new();
            let found = self
                .resolve_hosts(
                    &plan_manual(server),
                    Some("manual configuration"),
                    &mut tried,
                )
                .await;
            return finish(found, server.host.trim(), tried);
        }

        let name = parse_domain(domain).map_err(|reason| DiscoveryError::InvalidDomain {
            domain: domain.to_owned(),
            reason,
        })?;
        let queries = plan(domain, dialect, allowed);
        if queries.is_empty() {
            return Err(DiscoveryError::NoUsableTransport {
                dialect,
                allowed: allowed.to_vec(),
            });
        }
        let shown = name.to_string();
        let mut tried = Vec::new();

        if let DomainName::Name(_) = name {
            let srv: Vec<&Query> = queries.iter().filter(|q| q.is_srv()).collect();
            let found = self.resolve_srv(&srv, rng, &mut tried).await;
            if !found.is_empty() {
                return finish(found, &shown, tried);
            }
        }
        let hosts: Vec<Query> = queries.into_iter().filter(|q| !q.is_srv()).collect();
        let found = self.resolve_hosts(&hosts, None, &mut tried).await;
        finish(found, &shown, tried)
    }

    /// Finds the addresses of the server a 301/302 named (RFC 3263 §4.2):
    /// with an explicit port only its A/AAAA records (the hosts file
    /// included, with the system resolver); without one the SRV records of
    /// `_sips._tcp.HOST` (TLS), `_sip._tcp.HOST` (TCP) or `_sip._udp.HOST`
    /// first, then A/AAAA on the transport's default port. An IP literal
    /// is used as it is.
    pub async fn discover_redirect(
        &self,
        server: &ServerConfig,
        rng: &mut Rng,
    ) -> Result<Vec<Candidate>, DiscoveryError> {
        let name = parse_domain(&server.host).map_err(|reason| DiscoveryError::InvalidDomain {
            domain: server.host.clone(),
            reason,
        })?;
        let mut tried = Vec::new();
        if let (DomainName::Name(host), None) = (&name, server.port) {
            let service = match server.transport {
                Transport::Tls => "_sips._tcp",
                Transport::Tcp => "_sip._tcp",
                Transport::Udp => "_sip._udp",
            };
            let q = Query::Srv {
                name: format!("{service}.{host}"),
                transport: server.transport,
            };
            let found = self.resolve_srv(&[&q], rng, &mut tried).await;
            if !found.is_empty() {
                return finish(found, server.host.trim(), tried);
            }
        }
        let found = self
            .resolve_hosts(&plan_manual(server), Some("redirect"), &mut tried)
            .await;
        finish(found, server.host.trim(), tried)
    }

    /// Runs the SRV queries, then resolves every target; returns the
    /// candidates in plan order.
    async fn resolve_srv(
        &self,
        queries: &[&Query],
        rng: &mut Rng,
        tried: &mut Vec<String>,
    ) -> Vec<Candidate> {
        let answers = join_all(queries.iter().map(|q| self.srv(q.name()))).await;

        // (query, ordered records) for every SRV name that answered.
        let mut found: Vec<(&Query, Vec<SrvRecord>)> = Vec::new();
        for (q, answer) in queries.iter().zip(answers) {
            match answer {
                Ok(mut records) => {
                    order_srv(&mut records, rng);
                    if records.is_empty() {
                        tried.push(format!("{q}: service not available (target \".\")"));
                    } else {
                        found.push((q, records));
                    }
                }
                Err(why) => tried.push(format!("{q}: {why}")),
            }
        }

        let targets = found
            .iter()
            .flat_map(|(_, records)| records.iter().map(|r| self.addresses(&r.target)));
        let mut addresses = join_all(targets).await.into_iter();

        let mut out = Vec::new();
        for (q, records) in &found {
            let before = out.len();
            let mut failures = Vec::new();
            for r in records {
                match addresses.next() {
                    Some(Ok(ips)) => out.extend(ips.into_iter().map(|ip| Candidate {
                        host: r.target.clone(),
                        addr: SocketAddr::new(ip, r.port),
                        transport: q.transport(),
                        source: format!("SRV {}", q.name()),
                    })),
                    Some(Err(why)) => failures.push(format!("{}: {why}", r.target)),
                    None => {}
                }
            }
            if out.len() == before {
                tried.push(format!(
                    "{q}: no target has an address ({})",
                    failures.join(", ")
                ));
            } else {
                tried.push(format!("{q}: {} address(es)", out.len() - before));
            }
        }
        out
    }

    /// Resolves host queries (IP literals are used as they are); returns
    /// the candidates in plan order.
    async fn resolve_hosts(
        &self,
        queries: &[Query],
        source: Option<&str>,
        tried: &mut Vec<String>,
    ) -> Vec<Candidate> {
        // Standard mode asks for the same name once per transport: look
        // each name up once.
        let mut names: Vec<&str> = Vec::new();
        for q in queries {
            if !names.contains(&q.name()) {
                names.push(q.name());
            }
        }
        let answers = join_all(names.iter().map(|n| self.addresses(n))).await;
        let mut out = Vec::new();
        for q in queries {
            let answer = names
                .iter()
                .position(|n| *n == q.name())
                .and_then(|i| answers.get(i))
                .cloned()
                .unwrap_or_else(|| Err("not looked up".to_owned()));
            let Query::Host {
                name,
                transport,
                port,
            } = q
            else {
                continue;
            };
            match answer {
                Ok(ips) => {
                    tried.push(format!("{q}: {} address(es)", ips.len()));
                    let source = match source {
                        Some(s) => s.to_owned(),
                        None if name.parse::<IpAddr>().is_ok() => "IP literal".to_owned(),
                        None => format!("A/AAAA {name}"),
                    };
                    out.extend(ips.into_iter().map(|ip| Candidate {
                        host: name.clone(),
                        addr: SocketAddr::new(ip, *port),
                        transport: *transport,
                        source: source.clone(),
                    }));
                }
                Err(why) => tried.push(format!("{q}: {why}")),
            }
        }
        out
    }
}

#[cfg(feature = "dns-srv")]
impl Resolver {
    /// The SRV records of `name`. An empty answer is an error ("no
    /// records"); a lone `.` target comes back as a record for
    /// [`order_srv`] to drop.
    async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, String> {
        let fqdn = absolute(name)?;
        let lookup = self.inner.srv_lookup(fqdn).await.map_err(|e| why(&e))?;
        let records: Vec<SrvRecord> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: if srv.target.is_root() {
                        ".".to_owned()
                    } else {
                        relative(&srv.target)
                    },
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            Err("no records".to_owned())
        } else {
            Ok(records)
        }
    }

    /// The addresses of `host` (A first, then AAAA); an IP literal is
    /// returned as it is, without DNS.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![ip]);
        }
        let fqdn = absolute(host)?;
        let lookup = self.inner.lookup_ip(fqdn).await.map_err(|e| why(&e))?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            Err("no records".to_owned())
        } else {
            Ok(ips)
        }
    }
}

/// `host` as an IP address (`[v6]` unbracketed), when it is one: no DNS.
fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// Removes candidates seen before (same address and transport) and turns
/// an empty result into [`DiscoveryError::NoServerFound`].
/// The candidate for a configured server given as an IP address: no
/// lookup, so no resolver is needed (each one costs about 40 KB, which
/// adds up for thousands of clients in one process). `None` for a name.
pub fn literal_candidate(server: &ServerConfig) -> Option<Candidate> {
    let host = server
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    Some(Candidate {
        host: host.to_owned(),
        addr: SocketAddr::new(ip, server.effective_port()),
        transport: server.transport,
        source: "manual configuration".to_owned(),
    })
}

fn finish(
    found: Vec<Candidate>,
    domain: &str,
    tried: Vec<String>,
) -> Result<Vec<Candidate>, DiscoveryError> {
    let mut out: Vec<Candidate> = Vec::with_capacity(found.len());
    for c in found {
        if !out
            .iter()
            .any(|o| o.addr == c.addr && o.transport == c.transport)
        {
            out.push(c);
        }
    }
    if out.is_empty() {
        Err(DiscoveryError::NoServerFound {
            domain: domain.to_owned(),
            tried,
        })
    } else {
        Ok(out)
    }
}

#[cfg(feature = "dns-srv")]
/// `name` as an absolute DNS name, so no search domain is appended: SIP
/// discovery names are always fully qualified.
fn absolute(name: &str) -> Result<Name, String> {
    let mut n = Name::from_ascii(name).map_err(|e| format!("invalid name ({e})"))?;
    n.set_fqdn(true);
    Ok(n)
}

#[cfg(feature = "dns-srv")]
/// A DNS name as text without the trailing dot.
fn relative(name: &Name) -> String {
    let s = name.to_ascii();
    match s.strip_suffix('.') {
        Some(t) => t.to_owned(),
        None => s,
    }
}

#[cfg(feature = "dns-srv")]
/// A short reason for a failed lookup.
fn why(e: &NetError) -> String {
    if e.is_nx_domain() {
        "no such name".to_owned()
    } else if e.is_no_records_found() {
        "no records".to_owned()
    } else {
        e.to_string()
    }
}
