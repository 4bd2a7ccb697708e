//! SIP server discovery, sans-IO: which DNS names to ask, in which order,
//! and how to order SRV answers.
//!
//! Nothing here touches the network. [`plan`] turns a SIP domain into the
//! ordered list of lookups ([`Query`]); [`order_srv`] orders the answers of
//! one SRV lookup as RFC 2782 asks. The `tokio` driver
//! (`driver::dns::Resolver::discover`) runs the plan against real DNS and
//! returns [`Candidate`]s, which the connection layer tries in order (a
//! candidate that fails moves the client on to the next one).
//!
//! Two dialects:
//! - [`Dialect::Ocs`]: what Office Communicator 2007 R2 does (TechNet
//!   "Client DNS Queries Drilldown", PROTOCOL.md §a.1): three SRV names,
//!   then three A-record fallbacks;
//! - [`Dialect::Standard`]: RFC 3263 without NAPTR: `_sips._tcp`,
//!   `_sip._tcp`, `_sip._udp`, then the domain's own address records.
//!
//! A manually configured server ([`ServerConfig`]) skips discovery
//! altogether.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::rng::Rng;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP (RFC 3261). Never used by OCS 2007 R2.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP.
    Tls,
}

impl Transport {
    /// Preference order used when several transports are allowed:
    /// secure first, then reliable, then datagram.
    pub const PREFERENCE: [Transport; 3] = [Transport::Tls, Transport::Tcp, Transport::Udp];

    /// The port used when nothing else names one: 5061 for TLS, 5060 for
    /// TCP and UDP (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }

    /// The name used in `Via` and in messages: `"UDP"`, `"TCP"`, `"TLS"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which discovery rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// Office Communicator 2007 R2 rules (internal/external SRV names, then
    /// `sipinternal`/`sip`/`sipexternal` A records). TLS and TCP only.
    #[default]
    Ocs,
    /// RFC 3263 rules (`_sips._tcp`, `_sip._tcp`, `_sip._udp`, then the
    /// domain's own A/AAAA records), for non-Microsoft servers.
    Standard,
}

/// A manually configured server: discovery is skipped and only this host
/// is resolved (the administrator's `ConfigurationMode` = manual, §f).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerConfig {
    /// Host name or IP literal (IPv6 may be bracketed). A host name is also
    /// the name the TLS certificate is verified against.
    pub host: String,
    /// Port; `None` means the transport's default port.
    pub port: Option<u16>,
    /// Transport to use.
    pub transport: Transport,
}

impl ServerConfig {
    /// The port to connect to: the configured one, or the transport's
    /// default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.transport.default_port())
    }
}

/// One DNS lookup of a discovery plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// Look up SRV records; each target found is contacted with
    /// `transport` on the port the record gives.
    Srv {
        /// Full SRV owner name, e.g. `_sipinternaltls._tcp.contoso.com`.
        name: String,
        /// Transport the service name stands for.
        transport: Transport,
    },
    /// Look up A/AAAA records of a host (or use it directly if it is an IP
    /// literal) and contact it on a fixed port.
    Host {
        /// Host name or IP literal.
        name: String,
        /// Transport to use.
        transport: Transport,
        /// Port to use.
        port: u16,
    },
}

impl Query {
    /// The DNS name (or IP literal) looked up.
    pub fn name(&self) -> &str {
        match self {
            Query::Srv { name, .. } | Query::Host { name, .. } => name,
        }
    }

    /// The transport a server found by this query is contacted with.
    pub fn transport(&self) -> Transport {
        match self {
            Query::Srv { transport, .. } | Query::Host { transport, .. } => *transport,
        }
    }

    /// Whether this is an SRV lookup.
    pub fn is_srv(&self) -> bool {
        matches!(self, Query::Srv { .. })
    }
}

impl fmt::Display for Query {
    /// `SRV _sip._tls.contoso.com` or `A/AAAA sip.contoso.com (TLS 5061)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Srv { name, .. } => write!(f, "SRV {name}"),
            Query::Host {
                name,
                transport,
                port,
            } => {
                if name.parse::<IpAddr>().is_ok() {
                    write!(f, "IP literal {name} ({transport} {port})")
                } else {
                    write!(f, "A/AAAA {name} ({transport} {port})")
                }
            }
        }
    }
}

/// A server to try, in the order discovery returned it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The SRV target or A-record name (or the configured host, or the IP
    /// literal): this is what the TLS certificate is verified against.
    pub host: String,
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The transport to connect with.
    pub transport: Transport,
    /// How it was found, for logs and error messages, e.g.
    /// `SRV _sipinternaltls._tcp.contoso.com`.
    pub source: String,
}

/// One SRV resource record (RFC 2782), as far as ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative chance of being tried first among equal priorities.
    pub weight: u16,
    /// Port of the service on `target`.
    pub port: u16,
    /// Target host, without trailing dot; `"."` means "service not
    /// available at this domain".
    pub target: String,
}

impl SrvRecord {
    /// Whether this record says the service is not available here (target
    /// `"."`, RFC 2782).
    pub fn is_unavailable(&self) -> bool {
        let t = self.target.trim();
        t.is_empty() || t == "."
    }
}

/// Why a string is not a usable SIP domain or host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The name is empty. Pass the part of the sign-in address after `@`.
    #[error("the domain is empty")]
    Empty,
    /// The name is longer than 253 characters.
    #[error("the domain is longer than 253 characters")]
    TooLong,
    /// A label (the part between dots) is empty, e.g. `contoso..com`.
    #[error("the domain has an empty label")]
    EmptyLabel,
    /// A label is longer than 63 characters.
    #[error("a label of the domain is longer than 63 characters")]
    LabelTooLong,
    /// The name contains a character that cannot appear in a host name.
    /// Internationalised names must be given in their `xn--` (punycode) form.
    #[error(
        "the domain contains {0:?}, which cannot appear in a host name (use the xn-- form for international names)"
    )]
    BadCharacter(char),
}

/// A checked SIP domain or host: either a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainName {
    /// A DNS name: lower-cased, without a trailing dot.
    Name(String),
    /// An IP literal (IPv6 may have been written in brackets).
    Ip(IpAddr),
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainName::Name(n) => f.write_str(n),
            DomainName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Reads a server address as users and policies write it: `host`,
/// `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address without
/// brackets has no port). The error says what was expected.
pub fn parse_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    let bad = || format!("{s:?}: expected HOST[:PORT]");
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err(bad()),
            }
        }
        None => match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (s, None),
        },
    };
    let port = port.map(|p| p.parse().map_err(|_| bad())).transpose()?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// Checks and normalises a SIP domain or host name: surrounding white
/// space and one trailing dot are removed, letters are lower-cased, and
/// IP literals (`192.0.2.1`, `::1`, `[2001:db8::1]`) are recognised.
pub fn parse_domain(input: &str) -> Result<DomainName, DomainError> {
    let s = input.trim();
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(DomainName::Ip(ip));
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(DomainError::Empty);
    }
    if s.len() > 253 {
        return Err(DomainError::TooLong);
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(DomainError::LabelTooLong);
        }
        // Underscores are not legal in host names but do occur in
        // corporate DNS; let them through rather than refuse to sign in.
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(DomainError::BadCharacter(c));
        }
    }
    Ok(DomainName::Name(s.to_ascii_lowercase()))
}

/// The ordered DNS lookups for discovering the SIP server of `domain`.
///
/// `allowed` lists the transports the client may use (its order does not
/// matter: TLS is preferred, then TCP, then UDP). Lookups for transports
/// not allowed are left out; an empty `allowed`, or a `domain` that
/// [`parse_domain`] rejects, gives an empty plan.
///
/// SRV queries come first; [`Query::Host`] queries are fallbacks, to be
/// used only when no SRV query yields an address.
///
/// **OCS** (TechNet "Client DNS Queries Drilldown", PROTOCOL.md §a.1):
/// 1. SRV `_sipinternaltls._tcp.<d>` (TLS),
/// 2. SRV `_sipinternal._tcp.<d>` (TCP, only if TCP is allowed),
/// 3. SRV `_sip._tls.<d>` (TLS),
/// 4. A `sipinternal.<d>` (TLS 5061), A `sip.<d>` (TLS 5061),
///    A `sipexternal.<d>` (TLS 443).
///
/// UDP is never used in this dialect (MS-CONMGMT: all SIP traffic is over
/// TCP).
///
/// **Standard** (RFC 3263 without NAPTR): SRV `_sips._tcp.<d>` (TLS),
/// `_sip._tcp.<d>` (TCP), `_sip._udp.<d>` (UDP), then the address records
/// of `<d>` itself once per allowed transport on its default port.
///
/// When `domain` is an IP literal no DNS is involved in either dialect: the
/// plan is that address once per allowed transport, on its default port.
pub fn plan(domain: &str, dialect: Dialect, allowed: &[Transport]) -> Vec<Query> {
    let Ok(domain) = parse_domain(domain) else {
        return Vec::new();
    };
    let allows = |t: Transport| allowed.contains(&t);
    let srv = |prefix: &str, d: &str, transport| Query::Srv {
        name: format!("{prefix}.{d}"),
        transport,
    };
    let host = |name: String, transport, port| Query::Host {
        name,
        transport,
        port,
    };

    let d = match domain {
        DomainName::Ip(ip) => {
            let transports: &[Transport] = match dialect {
                Dialect::Ocs => &[Transport::Tls, Transport::Tcp],
                Dialect::Standard => &Transport::PREFERENCE,
            };
            return transports
                .iter()
                .copied()
                .filter(|t| allows(*t))
                .map(|t| host(ip.to_string(), t, t.default_port()))
                .collect();
        }
        DomainName::Name(d) => d,
    };

    let mut out = Vec::new();
    match dialect {
        Dialect::Ocs => {
            if allows(Transport::Tls) {
                out.push(srv("_sipinternaltls._tcp", &d, Transport::Tls));
            }
            if allows(Transport::Tcp) {
                out.push(srv("_sipinternal._tcp", &d, Transport::Tcp));
            }
            if allows(Transport::Tls) {
                out.push(srv("_sip._tls", &d, Transport::Tls));
                // Fallback A records, in TechNet's order: sipinternal, sip,
                // sipexternal. SIPE (sip-transport.c, `addresses[]`) uses
                // sipinternal, sipexternal, sip instead and connects to
                // `sip.<d>` on 443, dropping 5061 (it cites KB 2619522);
                // PROTOCOL.md §a.1 marks the discrepancy [U]. The R2 TechNet
                // page gives no ports: we use 5061 for the two internal-style
                // names (the front end's TLS port) and 443 for sipexternal
                // (Access Edge), which is the common deployment and matches
                // SIPE for sipinternal/sipexternal.
                out.push(host(format!("sipinternal.{d}"), Transport::Tls, 5061));
                out.push(host(format!("sip.{d}"), Transport::Tls, 5061));
                out.push(host(format!("sipexternal.{d}"), Transport::Tls, 443));
            }
        }
        Dialect::Standard => {
            if allows(Transport::Tls) {
                out.push(srv("_sips._tcp", &d, Transport::Tls));
            }
            if allows(Transport::Tcp) {
                out.push(srv("_sip._tcp", &d, Transport::Tcp));
            }
            if allows(Transport::Udp) {
                out.push(srv("_sip._udp", &d, Transport::Udp));
            }
            for t in Transport::PREFERENCE {
                if allows(t) {
                    out.push(host(d.clone(), t, t.default_port()));
                }
            }
        }
    }
    out
}

/// The plan for a manually configured server: one [`Query::Host`] for its
/// host (or IP literal) on its port. Discovery is skipped.
pub fn plan_manual(server: &ServerConfig) -> Vec<Query> {
    let name = match parse_domain(&server.host) {
        Ok(d) => d.to_string(),
        Err(_) => return Vec::new(),
    };
    vec![Query::Host {
        name,
        transport: server.transport,
        port: server.effective_port(),
    }]
}

/// Orders the answers of one SRV lookup as RFC 2782 asks: ascending
/// priority, and within one priority a weighted random order (a record's
/// chance of coming first is proportional to its weight; weight-0 records
/// come after the others except with a very small chance, and a group of
/// only weight-0 records is shuffled uniformly).
///
/// Records whose target is `"."` ("service not available here") are
/// removed.
pub fn order_srv(records: &mut Vec<SrvRecord>, rng: &mut Rng) {
    records.retain(|r| !r.is_unavailable());
    records.sort_by_key(|r| r.priority);

    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = std::mem::take(records);
    while !rest.is_empty() {
        let priority = rest[0].priority;
        let split = rest
            .iter()
            .position(|r| r.priority != priority)
            .unwrap_or(rest.len());
        let tail = rest.split_off(split);
        let mut group = rest;
        rest = tail;

        // "arrange all SRV RRs (that have not been ordered yet) in any
        // order, except that all those with weight 0 are placed at the
        // beginning": shuffle first so that ties (notably all-zero groups)
        // are broken at random, then move the zero weights to the front.
        shuffle(&mut group, rng);
        group.sort_by_key(|r| r.weight != 0);

        while !group.is_empty() {
            let sum: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            // Uniform in 0..=sum.
            let pick = rng.below(sum + 1);
            let mut running = 0u64;
            let mut chosen = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                running += u64::from(r.weight);
                if running >= pick {
                    chosen = i;
                    break;
                }
            }
            // `remove` keeps the zero-weight records at the front.
            ordered.push(group.remove(chosen));
        }
    }
    *records = ordered;
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        // `below` never exceeds its bound, and `i + 1` fits a u64.
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_as_written_by_users_and_policies() {
        for (text, want) in [
            (
                "pool.contoso.com:5061",
                Ok(("pool.contoso.com", Some(5061))),
            ),
            (" pool.contoso.com ", Ok(("pool.contoso.com", None))),
            ("[::1]:5061", Ok(("::1", Some(5061)))),
            ("[::1]", Ok(("::1", None))),
            ("::1", Ok(("::1", None))),
            ("pool:x", Err(())),
            ("[::1]x", Err(())),
            ("[::1", Err(())),
            (":5061", Err(())),
            ("", Err(())),
        ] {
            let got = parse_host_port(text);
            match want {
                Ok((h, p)) => assert_eq!(got, Ok((h.to_owned(), p)), "{text:?}"),
                Err(()) => assert!(got.is_err_and(|e| e.contains("HOST[:PORT]")), "{text:?}"),
            }
        }
    }

    const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    fn names(plan: &[Query]) -> Vec<String> {
        plan.iter().map(|q| q.to_string()).collect()
    }

    #[test]
    fn transport_basics() {
        assert_eq!(Transport::Udp.default_port(), 5060);
        assert_eq!(Transport::Tcp.default_port(), 5060);
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!(Transport::Tls.as_str(), "TLS");
        assert_eq!(Transport::Tcp.to_string(), "TCP");
        assert_eq!(Transport::Udp.as_str(), "UDP");
    }

    #[test]
    fn ocs_plan_follows_technet() {
        let p = plan("Contoso.com.", Dialect::Ocs, &ALL);
        assert_eq!(
            names(&p),
            [
                "SRV _sipinternaltls._tcp.contoso.com",
                "SRV _sipinternal._tcp.contoso.com",
                "SRV _sip._tls.contoso.com",
                "A/AAAA sipinternal.contoso.com (TLS 5061)",
                "A/AAAA sip.contoso.com (TLS 5061)",
                "A/AAAA sipexternal.contoso.com (TLS 443)",
            ]
        );
        assert_eq!(p[0].transport(), Transport::Tls);
        assert_eq!(p[1].transport(), Transport::Tcp);
        assert_eq!(p[2].transport(), Transport::Tls);
        assert!(p[..3].iter().all(Query::is_srv));
        assert!(!p[3..].iter().any(Query::is_srv));
    }

    #[test]
    fn ocs_plan_without_tcp_skips_sipinternal_srv() {
        let p = plan("contoso.com", Dialect::Ocs, &[Transport::Tls]);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0].name(), "_sipinternaltls._tcp.contoso.com");
        assert_eq!(p[1].name(), "_sip._tls.contoso.com");
    }

    #[test]
    fn ocs_plan_tcp_only_and_udp_only() {
        let p = plan("contoso.com", Dialect::Ocs, &[Transport::Tcp]);
        assert_eq!(names(&p), ["SRV _sipinternal._tcp.contoso.com"]);
        assert!(plan("contoso.com", Dialect::Ocs, &[Transport::Udp]).is_empty());
        assert!(plan("contoso.com", Dialect::Ocs, &[]).is_empty());
    }

    #[test]
    fn standard_plan_follows_rfc3263() {
        let p = plan("example.org", Dialect::Standard, &ALL);
        assert_eq!(
            names(&p),
            [
                "SRV _sips._tcp.example.org",
                "SRV _sip._tcp.example.org",
                "SRV _sip._udp.example.org",
                "A/AAAA example.org (TLS 5061)",
                "A/AAAA example.org (TCP 5060)",
                "A/AAAA example.org (UDP 5060)",
            ]
        );
        let p = plan("example.org", Dialect::Standard, &[Transport::Udp]);
        assert_eq!(
            names(&p),
            ["SRV _sip._udp.example.org", "A/AAAA example.org (UDP 5060)"]
        );
    }

    #[test]
    fn ip_literals_skip_dns() {
        let p = plan("192.0.2.7", Dialect::Standard, &ALL);
        assert_eq!(
            p,
            [
                Query::Host {
                    name: "192.0.2.7".into(),
                    transport: Transport::Tls,
                    port: 5061
                },
                Query::Host {
                    name: "192.0.2.7".into(),
                    transport: Transport::Tcp,
                    port: 5060
                },
                Query::Host {
                    name: "192.0.2.7".into(),
                    transport: Transport::Udp,
                    port: 5060
                },
            ]
        );
        let p = plan("[2001:db8::1]", Dialect::Ocs, &ALL);
        assert_eq!(
            names(&p),
            [
                "IP literal 2001:db8::1 (TLS 5061)",
                "IP literal 2001:db8::1 (TCP 5060)"
            ]
        );
        assert_eq!(
            parse_domain(" ::1 "),
            Ok(DomainName::Ip("::1".parse().unwrap()))
        );
    }

    #[test]
    fn manual_config_is_a_single_host() {
        let cfg = ServerConfig {
            host: "OCS.contoso.com".into(),
            port: None,
            transport: Transport::Tls,
        };
        assert_eq!(
            names(&plan_manual(&cfg)),
            ["A/AAAA ocs.contoso.com (TLS 5061)"]
        );
        let cfg = ServerConfig {
            host: "[::1]".into(),
            port: Some(5070),
            transport: Transport::Tcp,
        };
        assert_eq!(cfg.effective_port(), 5070);
        assert_eq!(names(&plan_manual(&cfg)), ["IP literal ::1 (TCP 5070)"]);
        let bad = ServerConfig {
            host: "bad host".into(),
            port: None,
            transport: Transport::Tcp,
        };
        assert!(plan_manual(&bad).is_empty());
    }

    #[test]
    fn malformed_domains_are_errors_not_panics() {
        assert_eq!(parse_domain(""), Err(DomainError::Empty));
        assert_eq!(parse_domain("."), Err(DomainError::Empty));
        assert_eq!(parse_domain("a..b"), Err(DomainError::EmptyLabel));
        assert_eq!(
            parse_domain("user@contoso.com"),
            Err(DomainError::BadCharacter('@'))
        );
        assert_eq!(
            parse_domain("bücher.de"),
            Err(DomainError::BadCharacter('ü'))
        );
        assert_eq!(
            parse_domain(&"a".repeat(64)),
            Err(DomainError::LabelTooLong)
        );
        assert_eq!(
            parse_domain(&["abc"; 70].join(".")),
            Err(DomainError::TooLong)
        );
        assert!(plan("a..b", Dialect::Ocs, &ALL).is_empty());
        assert!(plan("[::1", Dialect::Standard, &ALL).is_empty());
    }

    fn rec(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5061,
            target: target.into(),
        }
    }

    fn targets(r: &[SrvRecord]) -> Vec<&str> {
        r.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn srv_priority_ascending_and_dot_removed() {
        for seed in 0..50 {
            let mut rng = Rng::from_seed(seed);
            let mut r = vec![
                rec(20, 5, "c"),
                rec(10, 0, "."),
                rec(10, 100, "a"),
                rec(30, 1, "d"),
                rec(20, 5, "b"),
            ];
            order_srv(&mut r, &mut rng);
            let t = targets(&r);
            assert_eq!(t.len(), 4);
            assert_eq!(t[0], "a");
            assert!(t[1..3].contains(&"b") && t[1..3].contains(&"c"));
            assert_eq!(t[3], "d");
        }
        let mut only_dot = vec![rec(0, 0, ".")];
        order_srv(&mut only_dot, &mut Rng::from_seed(1));
        assert!(only_dot.is_empty());
        let mut empty = Vec::new();
        order_srv(&mut empty, &mut Rng::from_seed(1));
        assert!(empty.is_empty());
    }

    #[test]
    fn srv_weights_are_roughly_proportional() {
        let n = 20_000u32;
        let mut first = [0u32; 3];
        for seed in 0..u64::from(n) {
            let mut rng = Rng::from_seed(seed);
            let mut r = vec![rec(1, 10, "a"), rec(1, 30, "b"), rec(1, 60, "c")];
            order_srv(&mut r, &mut rng);
            assert_eq!(r.len(), 3);
            let i = match r[0].target.as_str() {
                "a" => 0,
                "b" => 1,
                _ => 2,
            };
            first[i] += 1;
        }
        // Expected shares: 10 %, 30 %, 60 % (±2 points).
        let share = |c: u32| f64::from(c) / f64::from(n);
        assert!((share(first[0]) - 0.10).abs() < 0.02, "{first:?}");
        assert!((share(first[1]) - 0.30).abs() < 0.02, "{first:?}");
        assert!((share(first[2]) - 0.60).abs() < 0.02, "{first:?}");
    }

    #[test]
    fn srv_zero_weights() {
        // Only zero weights: every record comes first sometimes.
        let mut first = std::collections::HashMap::new();
        for seed in 0..3_000 {
            let mut rng = Rng::from_seed(seed);
            let mut r = vec![rec(5, 0, "a"), rec(5, 0, "b"), rec(5, 0, "c")];
            order_srv(&mut r, &mut rng);
            assert_eq!(r.len(), 3);
            *first.entry(r[0].target.clone()).or_insert(0u32) += 1;
        }
        for t in ["a", "b", "c"] {
            let c = first.get(t).copied().unwrap_or(0);
            assert!((800..1_200).contains(&c), "{first:?}");
        }

        // A zero weight next to a large one is almost never first.
        let mut zero_first = 0;
        for seed in 0..3_000 {
            let mut rng = Rng::from_seed(seed);
            let mut r = vec![rec(5, 0, "zero"), rec(5, 1000, "big")];
            order_srv(&mut r, &mut rng);
            if r[0].target == "zero" {
                zero_first += 1;
            }
        }
        assert!(zero_first < 15, "{zero_first}");
    }
}
