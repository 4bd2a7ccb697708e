//! Lync / Skype for Business autodiscover ([MS-OCDISCWS]), sans-IO: where
//! a client asks, what the answers say, and when to stop following them.
//! The driver (later) does the HTTP; everything here is pure.
//!
//! The walk: for `sip:alice@contoso.com` the client asks
//! `lyncdiscoverinternal.contoso.com`, then `lyncdiscover.contoso.com`, each
//! over http and https ([`lookup_urls`]). A `Root` answer over http holds
//! only a `Redirect` link (to https); over https it holds `User` (and
//! `Domain`) links, or `Redirect` when another pool owns the user. The
//! `User` resource (after a web ticket; a 401 names the ticket service)
//! gives the SIP access points: clients use `SipClientInternalAccess` /
//! `SipClientExternalAccess` ([`Response::next`]). A [`Walk`] refuses
//! loops and more than [`MAX_HOPS`] steps.
//!
//! Documents go through the hardened XML front end of the presence
//! parsers (no DTDs, size/depth/element limits, positioned errors).
//!
//! [MS-OCDISCWS]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-ocdiscws

use crate::presence::error::{DocumentError, DocumentErrorKind};
use crate::presence::xml::{Doc, NodeId, decode};

/// The media type to ask for (`Accept`) and to expect back.
pub const MEDIA_TYPE: &str = "application/vnd.microsoft.rtc.autodiscover+xml;v=1";

/// Most steps (redirects, Root → User) one walk follows.
pub const MAX_HOPS: usize = 8;

/// Where the server says the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLocation {
    /// Inside the corporate network.
    Internal,
    /// Outside (through the edge).
    External,
    /// Not said.
    Unknown,
}

/// Which resource an answer describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The entry point: links onwards.
    Root,
    /// The user's servers.
    User,
    /// The domain's resource (links only).
    Domain,
}

/// A `<Link token=".." href=".."/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `Redirect`, `User`, `Domain`, `Self`, `External/Ucwa`, ...
    pub token: String,
    /// Where it points.
    pub href: String,
}

/// A SIP access point of the `User` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAccess {
    /// The host name.
    pub fqdn: String,
    /// The port (TLS).
    pub port: u16,
}

/// One autodiscover answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Where the server says the client is.
    pub access: AccessLocation,
    /// What the answer describes.
    pub resource: Resource,
    /// Its links, in document order.
    pub links: Vec<Link>,
    /// `SipClientInternalAccess`, when given (User).
    pub client_internal: Option<SipAccess>,
    /// `SipClientExternalAccess`, when given (User).
    pub client_external: Option<SipAccess>,
}

/// What to do with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask this URL instead (another pool, or http → https).
    Redirect(String),
    /// Ask the `User` resource at this URL (it needs a web ticket).
    User(String),
    /// Sign in to these SIP servers (TLS), in this order.
    Sip(Vec<SipAccess>),
    /// The answer leads nowhere (no link a client follows, no SIP access).
    Nowhere,
}

/// The URLs to ask for `sip_uri`'s domain, in order: internal before
/// external, http (which only redirects) before https. `None` when the
/// URI has no `user@domain`.
pub fn lookup_urls(sip_uri: &str) -> Option<Vec<String>> {
    let bare = sip_uri
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_start_matches("sip:")
        .trim_start_matches("sips:");
    let (user, domain) = bare.split_once('@')?;
    let domain = domain
        .split([';', '?', '>'])
        .next()?
        .trim()
        .to_ascii_lowercase();
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    if !ok(user) || !ok(&domain) {
        return None;
    }
    let mut out = Vec::with_capacity(4);
    for host in ["lyncdiscoverinternal", "lyncdiscover"] {
        for scheme in ["http", "https"] {
            out.push(format!(
                "{scheme}://{host}.{domain}/autodiscover/autodiscoverservice.svc/root?sipuri={user}@{domain}"
            ));
        }
    }
    Some(out)
}

/// Reads an autodiscover answer (`AutodiscoverResponse`, UTF-8 or UTF-16
/// with a BOM).
pub fn parse(bytes: &[u8]) -> Result<Response, DocumentError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    if doc.node(root).local() != "AutodiscoverResponse" {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "AutodiscoverResponse",
                found: doc.node(root).qname().to_owned(),
            },
        ));
    }
    let access = match doc.node(root).attr("AccessLocation").as_deref() {
        Some(a) if a.eq_ignore_ascii_case("internal") => AccessLocation::Internal,
        Some(a) if a.eq_ignore_ascii_case("external") => AccessLocation::External,
        _ => AccessLocation::Unknown,
    };
    let (resource, body) = match doc.children(root).find_map(|c| {
        let r = match doc.node(c).local() {
            "Root" => Resource::Root,
            "User" => Resource::User,
            "Domain" => Resource::Domain,
            _ => return None,
        };
        Some((r, c))
    }) {
        Some(x) => x,
        None => {
            return Err(doc.error_at(root, DocumentErrorKind::Missing("Root, User or Domain")));
        }
    };
    let mut out = Response {
        access,
        resource,
        links: Vec::new(),
        client_internal: None,
        client_external: None,
    };
    for c in doc.children(body) {
        let n = doc.node(c);
        match n.local() {
            "Link" => {
                let token = n.attr("token");
                let href = n.attr("href");
                match (token, href) {
                    (Some(t), Some(h)) => out.links.push(Link {
                        token: t.trim().to_owned(),
                        href: h.trim().to_owned(),
                    }),
                    _ => {
                        return Err(
                            doc.error_at(c, DocumentErrorKind::Missing("Link token or href"))
                        );
                    }
                }
            }
            "SipClientInternalAccess" => out.client_internal = Some(access_point(&doc, c)?),
            "SipClientExternalAccess" => out.client_external = Some(access_point(&doc, c)?),
            _ => {}
        }
    }
    Ok(out)
}

fn access_point(doc: &Doc<'_>, id: NodeId) -> Result<SipAccess, DocumentError> {
    let n = doc.node(id);
    let fqdn = n
        .attr("fqdn")
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .ok_or_else(|| doc.error_at(id, DocumentErrorKind::Missing("fqdn")))?;
    let port = match n.attr("port") {
        None => 5061,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                doc.error_at(
                    id,
                    DocumentErrorKind::InvalidValue {
                        what: "port",
                        value: p.chars().take(32).collect(),
                    },
                )
            })?,
    };
    Ok(SipAccess { fqdn, port })
}

impl Response {
    /// The link with `token` (case-insensitive), if any.
    pub fn link(&self, token: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.token.eq_ignore_ascii_case(token))
            .map(|l| l.href.as_str())
    }

    /// What a client does next: follow `Redirect` first (Root or User),
    /// then a Root's `User` link; a User's SIP access points go by the
    /// access location (internal first when it is not said).
    pub fn next(&self) -> Next {
        if let Some(r) = self.link("Redirect") {
            return Next::Redirect(r.to_owned());
        }
        match self.resource {
            Resource::Root | Resource::Domain => match self.link("User") {
                Some(u) => Next::User(u.to_owned()),
                None => Next::Nowhere,
            },
            Resource::User => {
                let order: [&Option<SipAccess>; 2] = match self.access {
                    AccessLocation::External => [&self.client_external, &self.client_internal],
                    _ => [&self.client_internal, &self.client_external],
                };
                let sip: Vec<SipAccess> = match self.access {
                    // The server said where we are: only that access.
                    AccessLocation::Internal | AccessLocation::External => {
                        order[0].iter().cloned().collect()
                    }
                    AccessLocation::Unknown => order.iter().filter_map(|a| (*a).clone()).collect(),
                };
                if sip.is_empty() {
                    Next::Nowhere
                } else {
                    Next::Sip(sip)
                }
            }
        }
    }
}

/// Why a walk stopped following.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// A URL came round again.
    #[error("autodiscover loop: {0} again (after {1})")]
    Loop(String, String),
    /// Too many steps.
    #[error("autodiscover: more than {MAX_HOPS} steps ({0})")]
    TooLong(String),
    /// A link that is not http(s).
    #[error("autodiscover: {0} is not an http or https URL")]
    NotHttp(String),
}

/// The URLs one walk has asked, to stop loops and endless chains.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    seen: Vec<String>,
}

impl Walk {
    /// A new walk.
    pub fn new() -> Walk {
        Walk::default()
    }

    /// Records that `url` is asked next; an error when it would loop or
    /// the walk is too long.
    pub fn step(&mut self, url: &str) -> Result<(), WalkError> {
        let lower = url.trim().to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(WalkError::NotHttp(url.to_owned()));
        }
        if self.seen.contains(&lower) {
            return Err(WalkError::Loop(url.to_owned(), self.seen.join(" -> ")));
        }
        if self.seen.len() >= MAX_HOPS {
            return Err(WalkError::TooLong(self.seen.join(" -> ")));
        }
        self.seen.push(lower);
        Ok(())
    }

    /// The URLs asked so far, in order (lower case).
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<AutodiscoverResponse xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" AccessLocation="External">
  <User>
    <SipServerInternalAccess fqdn="pool01.contoso.net" port="5061"/>
    <SipClientInternalAccess fqdn="pool01.contoso.net" port="5061"/>
    <SipServerExternalAccess fqdn="sip.contoso.com" port="5061"/>
    <SipClientExternalAccess fqdn="sip.contoso.com" port="443"/>
    <Link token="External/Autodiscover" href="https://webext.contoso.com/Autodiscover/AutodiscoverService.svc/Root"/>
    <Link token="External/Ucwa" href="https://webext.contoso.com/ucwa/v1/applications"/>
  </User>
</AutodiscoverResponse>"#;

    const ROOT_HTTP: &str = r#"<AutodiscoverResponse AccessLocation="Internal"><Root><Link token="Redirect" href="https://lyncdiscoverinternal.contoso.com/Autodiscover/AutodiscoverService.svc/root?sipuri=alice@contoso.com"/></Root></AutodiscoverResponse>"#;

    const ROOT_HTTPS: &str = r#"<AutodiscoverResponse AccessLocation="Internal"><Root>
<Link token="Domain" href="https://web.contoso.net/Autodiscover/AutodiscoverService.svc/root/domain"/>
<Link token="User" href="https://web.contoso.net/Autodiscover/AutodiscoverService.svc/root/user"/>
<Link token="Self" href="https://web.contoso.net/Autodiscover/AutodiscoverService.svc/root"/>
</Root></AutodiscoverResponse>"#;

    #[test]
    fn the_lookup_asks_internal_then_external_http_then_https() {
        let urls = lookup_urls("sip:alice@Contoso.com").expect("urls");
        assert_eq!(
            urls,
            [
                "http://lyncdiscoverinternal.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
                "https://lyncdiscoverinternal.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
                "http://lyncdiscover.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
                "https://lyncdiscover.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
            ]
        );
        assert_eq!(lookup_urls("alice"), None);
        assert_eq!(lookup_urls("sip:al ice@contoso.com"), None);
        assert_eq!(lookup_urls("sip:alice@contoso.com/../x"), None);
    }

    #[test]
    fn a_walk_follows_redirect_then_user_then_signs_in_where_it_is_told() {
        let mut walk = Walk::new();
        let urls = lookup_urls("sip:alice@contoso.com").expect("urls");
        walk.step(&urls[0]).expect("first");
        let http = parse(ROOT_HTTP.as_bytes()).expect("root over http");
        let Next::Redirect(to) = http.next() else {
            panic!("{:?}", http.next())
        };
        walk.step(&to).expect("redirect");
        let https = parse(ROOT_HTTPS.as_bytes()).expect("root over https");
        assert_eq!(https.access, AccessLocation::Internal);
        let Next::User(user) = https.next() else {
            panic!("{:?}", https.next())
        };
        walk.step(&user).expect("user");
        let u = parse(USER.as_bytes()).expect("user");
        assert_eq!(u.resource, Resource::User);
        // External: only the client external access point.
        assert_eq!(
            u.next(),
            Next::Sip(vec![SipAccess {
                fqdn: "sip.contoso.com".into(),
                port: 443
            }])
        );
        assert_eq!(
            u.link("external/ucwa"),
            Some("https://webext.contoso.com/ucwa/v1/applications")
        );
        // Unknown location: internal first, then external.
        let unknown =
            parse(USER.replace(r#" AccessLocation="External""#, "").as_bytes()).expect("user");
        let Next::Sip(both) = unknown.next() else {
            panic!()
        };
        assert_eq!(
            both.iter().map(|s| s.fqdn.as_str()).collect::<Vec<_>>(),
            ["pool01.contoso.net", "sip.contoso.com"]
        );
    }

    #[test]
    fn loops_long_chains_and_other_schemes_stop_the_walk() {
        let mut w = Walk::new();
        w.step("https://a.example/r").expect("a");
        w.step("https://b.example/r").expect("b");
        assert!(matches!(
            w.step("HTTPS://A.example/r"),
            Err(WalkError::Loop(..))
        ));
        assert!(matches!(
            w.step("file:///etc/passwd"),
            Err(WalkError::NotHttp(_))
        ));
        let mut long = Walk::new();
        for i in 0..MAX_HOPS {
            long.step(&format!("https://h{i}.example/")).expect("step");
        }
        assert!(matches!(
            long.step("https://last.example/"),
            Err(WalkError::TooLong(_))
        ));
    }

    #[test]
    fn bad_answers_are_refused_with_a_position() {
        let e = parse(b"<Other/>").expect_err("root");
        assert!(e.to_string().contains("AutodiscoverResponse"), "{e}");
        let e = parse(b"<AutodiscoverResponse><User><SipClientExternalAccess port=\"443\"/></User></AutodiscoverResponse>")
            .expect_err("fqdn");
        assert!(e.to_string().contains("fqdn"), "{e}");
        let e = parse(b"<AutodiscoverResponse><User><SipClientExternalAccess fqdn=\"x\" port=\"99999\"/></User></AutodiscoverResponse>")
            .expect_err("port");
        assert!(e.to_string().contains("port"), "{e}");
        let e = parse(b"<!DOCTYPE x [<!ENTITY a \"b\">]><AutodiscoverResponse/>").expect_err("dtd");
        assert_eq!(e.kind, DocumentErrorKind::DocType);
        assert!(
            parse(b"<AutodiscoverResponse/>").is_err(),
            "no Root/User/Domain"
        );
        // A User without access points leads nowhere.
        let empty = parse(b"<AutodiscoverResponse><User/></AutodiscoverResponse>").expect("parses");
        assert_eq!(empty.next(), Next::Nowhere);
    }
}
