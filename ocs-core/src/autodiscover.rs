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
    let (user, domain) = user_domain(sip_uri)?;
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

/// The user and (lower-case) domain of a SIP URI, when both are plain
/// enough to put in a URL unescaped.
fn user_domain(sip_uri: &str) -> Option<(&str, String)> {
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
    Some((user, domain))
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

/// Largest autodiscover or token answer a [`Discovery`] reads.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most HTTP requests one [`Discovery`] makes (four lookups, each with a
/// walk and a token request per hop, stays far below it).
pub const MAX_REQUESTS: usize = 48;

/// What a [`Discovery`] is given.
#[derive(Clone)]
pub struct DiscoveryConfig {
    /// The user's SIP URI (`sip:alice@contoso.com`).
    pub sip_uri: String,
    /// The URLs to start from instead of [`lookup_urls`] (a known
    /// autodiscover service, or the embedded server on loopback).
    pub urls: Option<Vec<String>>,
    /// User name and password for a token service's password grant
    /// (`CONTOSO\alice` or `alice@contoso.com`). Without them a `User`
    /// resource that asks for a token ends the discovery.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for DiscoveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryConfig")
            .field("sip_uri", &self.sip_uri)
            .field("urls", &self.urls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

/// Identifies one [`HttpRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u32);

/// An HTTP request for the driver to make. The driver must not follow
/// redirects itself (the walk does, to stop loops) and should give up
/// after its own timeout with an error. `Debug` leaves out credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Answer with this id.
    pub id: RequestId,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Where.
    pub url: String,
    /// Headers to send.
    pub headers: Vec<(&'static str, String)>,
    /// The body (`POST`).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers =
            crate::trace::redacted_headers(self.headers.iter().map(|(n, v)| (*n, v.as_str())));
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// The driver's answer to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY_BYTES`] are read).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Values of header `name` (case-insensitive).
    pub fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request a discovery made and what came of it (for progress and
/// diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// What came of it: `200 Root: redirect`, `401: token needed`,
    /// `connection refused`, ...
    pub outcome: String,
}

/// Where autodiscover says to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The SIP servers (TLS), in the order to try.
    pub servers: Vec<SipAccess>,
    /// Where the server said the client is.
    pub access: AccessLocation,
    /// The URLs of the walk that found them, in order.
    pub walk: Vec<String>,
    /// The `User` resource's links (UCWA, XFrame, ...).
    pub links: Vec<Link>,
}

/// Why a discovery found no SIP server. What to do: fall back to DNS SRV
/// (the client does), or fix what the message names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The SIP URI has no `user@domain` autodiscover can use.
    #[error("autodiscover: {0:?} has no user@domain")]
    BadUri(String),
    /// No lookup URL led to a SIP server; each attempt is in
    /// [`Discovery::attempts`].
    #[error("autodiscover found no SIP server: {0}")]
    NotFound(String),
    /// The user is not known to the pool (404 from `User`).
    #[error("autodiscover: the server does not know this user ({0})")]
    UnknownUser(String),
    /// `User` wants a token and no credentials were given, or the token
    /// service takes none of the grants we have.
    #[error("autodiscover: {0}")]
    NeedsCredentials(String),
    /// The token service or the resource refused the credentials.
    #[error("autodiscover: sign-in to the web service refused: {0}")]
    Refused(String),
    /// Credentials would have gone over plain http to a host that is not
    /// this machine.
    #[error("autodiscover: refusing to send credentials over plain http to {0}")]
    Insecure(String),
}

#[derive(Debug, Clone)]
enum Purpose {
    /// An autodiscover document (`true`: a `User` link's).
    Document(bool),
    /// A token for the resource at `then` (asked again with it).
    Token { then: String, user: bool },
}

/// The whole autodiscover walk, sans-IO: give it a [`DiscoveryConfig`];
/// make each [`Discovery::poll_request`] and answer it with
/// [`Discovery::handle_response`] until [`Discovery::outcome`] is set.
/// One request is in flight at a time.
///
/// Order: the lookup URLs in turn; from the first that answers, the walk
/// follows `Redirect` links and HTTP redirects, then `User`. A `User` that
/// answers 401 with an `MsRtcOAuth` challenge gets a password-grant token
/// from the named service (https only, or this machine's loopback), and is
/// asked again with `Authorization: Bearer`; the token goes only to the
/// origin that asked for it. A walk that fails moves on to the next
/// lookup URL; a refused sign-in or an unknown user ends the discovery.
#[derive(Debug)]
pub struct Discovery {
    cfg: DiscoveryConfig,
    lookups: std::collections::VecDeque<String>,
    walk: Walk,
    /// (origin, `Authorization` value).
    bearer: Option<(String, String)>,
    pending: Option<(RequestId, String, Purpose)>,
    /// Every URL asked (lower case), across walks.
    visited: Vec<String>,
    queued: Option<HttpRequest>,
    next_id: u32,
    attempts: Vec<Attempt>,
    outcome: Option<Result<Found, DiscoveryError>>,
}

impl Discovery {
    /// Starts a discovery; its first request is ready at once.
    pub fn new(cfg: DiscoveryConfig) -> Discovery {
        let lookups = match (&cfg.urls, user_domain(&cfg.sip_uri)) {
            // A given root URL gets the user's `sipuri` when it has none.
            (Some(u), who) => Some(
                u.iter()
                    .map(|url| match &who {
                        Some((user, domain)) if !url.contains("sipuri=") => {
                            let sep = if url.contains('?') { '&' } else { '?' };
                            format!("{url}{sep}sipuri={user}@{domain}")
                        }
                        _ => url.clone(),
                    })
                    .collect(),
            ),
            (None, _) => lookup_urls(&cfg.sip_uri),
        };
        let mut d = Discovery {
            lookups: lookups.clone().unwrap_or_default().into(),
            cfg,
            walk: Walk::new(),
            bearer: None,
            pending: None,
            visited: Vec::new(),
            queued: None,
            next_id: 0,
            attempts: Vec::new(),
            outcome: None,
        };
        if lookups.is_none() {
            d.outcome = Some(Err(DiscoveryError::BadUri(d.cfg.sip_uri.clone())));
        } else {
            d.next_lookup();
        }
        d
    }

    /// The next request to make, once.
    pub fn poll_request(&mut self) -> Option<HttpRequest> {
        self.queued.take()
    }

    /// The end, once there is one.
    pub fn outcome(&self) -> Option<&Result<Found, DiscoveryError>> {
        self.outcome.as_ref()
    }

    /// Every request made so far and what came of it.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The answer to request `id`: the response, or why there was none
    /// (`connection refused`, `timed out`, a TLS error). Answers to
    /// anything but the request in flight are ignored.
    pub fn handle_response(&mut self, id: RequestId, response: Result<HttpResponse, String>) {
        let Some((pid, url, purpose)) = self.pending.take() else {
            return;
        };
        if pid != id {
            self.pending = Some((pid, url, purpose));
            return;
        }
        let method = match purpose {
            Purpose::Document(_) => "GET",
            Purpose::Token { .. } => "POST",
        };
        let resp = match response {
            Ok(r) => r,
            Err(why) => {
                self.record(method, &url, why);
                return self.walk_failed();
            }
        };
        if resp.body.len() > MAX_BODY_BYTES {
            self.record(
                method,
                &url,
                format!("{}: body over {MAX_BODY_BYTES} bytes", resp.status),
            );
            return self.walk_failed();
        }
        match purpose {
            Purpose::Document(user) => self.document(url, user, resp),
            Purpose::Token { then, user } => self.token(url, then, user, resp),
        }
    }

    fn record(&mut self, method: &'static str, url: &str, outcome: String) {
        self.attempts.push(Attempt {
            method,
            url: url.to_owned(),
            outcome,
        });
    }

    fn finish(&mut self, r: Result<Found, DiscoveryError>) {
        self.queued = None;
        self.pending = None;
        self.outcome = Some(r);
    }

    /// The walk from the current lookup URL led nowhere: the next one.
    fn walk_failed(&mut self) {
        self.next_lookup();
    }

    fn next_lookup(&mut self) {
        while let Some(url) = self.lookups.pop_front() {
            // A URL an earlier walk reached (http's redirect to https)
            // has had its answer.
            let lower = url.trim().to_ascii_lowercase();
            if self.visited.contains(&lower) {
                continue;
            }
            self.walk = Walk::new();
            if let Err(e) = self.walk.step(&url) {
                self.record("GET", &url, e.to_string());
                continue;
            }
            return self.get(url, false);
        }
        let summary = if self.attempts.is_empty() {
            "no URL to ask".to_owned()
        } else {
            self.attempts
                .iter()
                .map(|a| format!("{} {}", a.url, a.outcome))
                .collect::<Vec<_>>()
                .join("; ")
        };
        self.finish(Err(DiscoveryError::NotFound(summary)));
    }

    fn issue(
        &mut self,
        method: &'static str,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        purpose: Purpose,
    ) {
        if self.attempts.len() >= MAX_REQUESTS {
            return self.finish(Err(DiscoveryError::NotFound(format!(
                "gave up after {MAX_REQUESTS} requests"
            ))));
        }
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.pending = Some((id, url.clone(), purpose));
        self.queued = Some(HttpRequest {
            id,
            method,
            url,
            headers,
            body,
        });
    }

    fn get(&mut self, url: String, user: bool) {
        self.visited.push(url.trim().to_ascii_lowercase());
        let mut headers = vec![("Accept", MEDIA_TYPE.to_owned())];
        if let Some((origin, value)) = &self.bearer
            && origin_of(&url).as_deref() == Some(origin.as_str())
        {
            headers.push(("Authorization", value.clone()));
        }
        self.issue("GET", url, headers, Vec::new(), Purpose::Document(user));
    }

    /// Takes a step of the walk to `to` (relative to `from`).
    fn follow(&mut self, from: &str, to: &str, user: bool) {
        let to = resolve(from, to);
        match self.walk.step(&to) {
            Ok(()) => self.get(to, user),
            Err(e) => {
                self.record("GET", &to, e.to_string());
                self.walk_failed();
            }
        }
    }

    fn document(&mut self, url: String, user: bool, resp: HttpResponse) {
        match resp.status {
            200 => match parse(&resp.body) {
                Ok(doc) => {
                    let what = match doc.resource {
                        Resource::Root => "Root",
                        Resource::User => "User",
                        Resource::Domain => "Domain",
                    };
                    match doc.next() {
                        Next::Redirect(to) => {
                            self.record("GET", &url, format!("200 {what}: redirect"));
                            self.follow(&url, &to, false);
                        }
                        Next::User(to) => {
                            self.record("GET", &url, format!("200 {what}: user link"));
                            self.follow(&url, &to, true);
                        }
                        Next::Sip(servers) => {
                            let list: Vec<String> = servers
                                .iter()
                                .map(|s| format!("{}:{}", s.fqdn, s.port))
                                .collect();
                            self.record(
                                "GET",
                                &url,
                                format!("200 {what}: SIP {}", list.join(", ")),
                            );
                            let found = Found {
                                servers,
                                access: doc.access,
                                walk: self.walk.seen().to_vec(),
                                links: doc.links,
                            };
                            self.finish(Ok(found));
                        }
                        Next::Nowhere => {
                            self.record("GET", &url, format!("200 {what}: leads nowhere"));
                            self.walk_failed();
                        }
                    }
                }
                Err(e) => {
                    self.record("GET", &url, format!("200, not an autodiscover answer: {e}"));
                    self.walk_failed();
                }
            },
            301 | 302 | 303 | 307 | 308 => match resp.header("Location").next() {
                Some(to) => {
                    let to = to.trim().to_owned();
                    self.record("GET", &url, format!("{} to {to}", resp.status));
                    self.follow(&url, &to, user);
                }
                None => {
                    self.record("GET", &url, format!("{} without Location", resp.status));
                    self.walk_failed();
                }
            },
            401 => self.unauthorized(url, user, resp),
            404 if user => {
                // The pool's User resource: it answered for this user.
                self.record("GET", &url, "404: unknown user".to_owned());
                self.finish(Err(DiscoveryError::UnknownUser(url)));
            }
            s => {
                self.record("GET", &url, format!("{s}"));
                self.walk_failed();
            }
        }
    }

    fn unauthorized(&mut self, url: String, user: bool, resp: HttpResponse) {
        let origin = origin_of(&url).unwrap_or_default();
        if self.bearer.as_ref().is_some_and(|(o, _)| *o == origin) {
            self.record("GET", &url, "401 with our token".to_owned());
            return self.finish(Err(DiscoveryError::Refused(format!(
                "{url} refused the token"
            ))));
        }
        let challenge = resp
            .header("WWW-Authenticate")
            .find_map(crate::oauth::Challenge::parse);
        let Some(challenge) = challenge else {
            let why = match resp.header("X-MS-WebTicketURL").next() {
                Some(ws) => format!(
                    "{url} wants a WS-Trust web ticket from {ws} (not supported yet; only the OAuth password grant)"
                ),
                None => format!("{url} answered 401 without a challenge we know"),
            };
            self.record("GET", &url, "401: no OAuth challenge".to_owned());
            return self.finish(Err(DiscoveryError::NeedsCredentials(why)));
        };
        let Some((login, password)) = self.cfg.credentials.clone() else {
            self.record("GET", &url, "401: token needed".to_owned());
            return self.finish(Err(DiscoveryError::NeedsCredentials(format!(
                "{url} needs a sign-in and no credentials were given"
            ))));
        };
        if !challenge.takes_password() {
            self.record("GET", &url, "401: token needed".to_owned());
            return self.finish(Err(DiscoveryError::NeedsCredentials(format!(
                "{} takes none of our grants ({})",
                challenge.href,
                challenge.grant_types.join(", ")
            ))));
        }
        let href = resolve(&url, &challenge.href);
        if !is_secure(&href) {
            self.record("GET", &url, "401: token needed".to_owned());
            return self.finish(Err(DiscoveryError::Insecure(href)));
        }
        self.record("GET", &url, format!("401: token from {href}"));
        let body = crate::oauth::password_grant_body(&login, &password).into_bytes();
        self.issue(
            "POST",
            href,
            vec![
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded;charset=UTF-8".to_owned(),
                ),
                ("Accept", "application/json".to_owned()),
            ],
            body,
            Purpose::Token { then: url, user },
        );
    }

    fn token(&mut self, url: String, then: String, user: bool, resp: HttpResponse) {
        match (resp.status, crate::oauth::parse_token(&resp.body)) {
            (200, Ok(token)) => {
                self.record("POST", &url, "200: token".to_owned());
                let origin = origin_of(&then).unwrap_or_default();
                if !is_secure(&then) {
                    return self.finish(Err(DiscoveryError::Insecure(then)));
                }
                self.bearer = Some((origin, token.authorization()));
                self.get(then, user);
            }
            (status, Err(e)) if matches!(e.kind, crate::oauth::JsonErrorKind::Refused(_)) => {
                self.record("POST", &url, format!("{status}: refused"));
                self.finish(Err(DiscoveryError::Refused(e.to_string())));
            }
            (400 | 401 | 403, _) => {
                self.record("POST", &url, format!("{}: refused", resp.status));
                self.finish(Err(DiscoveryError::Refused(format!(
                    "{url} answered {}",
                    resp.status
                ))));
            }
            (200, Err(e)) => {
                self.record("POST", &url, format!("200, not a token: {e}"));
                self.walk_failed();
            }
            (s, _) => {
                self.record("POST", &url, format!("{s}"));
                self.walk_failed();
            }
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower case.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// `to` as an absolute URL: as it is when it has a scheme, else on
/// `from`'s origin (`/path`) or beside `from`'s path.
pub(crate) fn resolve(from: &str, to: &str) -> String {
    let to = to.trim();
    if to.contains("://") {
        return to.to_owned();
    }
    let origin = origin_of(from).unwrap_or_default();
    if to.starts_with('/') {
        format!("{origin}{to}")
    } else {
        let path = from.split(['?', '#']).next().unwrap_or(from);
        match path.rfind('/') {
            Some(i) if i + 1 > origin.len() => format!("{}{to}", &path[..=i]),
            _ => format!("{origin}/{to}"),
        }
    }
}

/// https, or http to this machine (127.0.0.0/8, `[::1]`, `localhost`):
/// where credentials and tokens may go (autodiscover's token, the web
/// ticket service's password grant).
pub fn is_secure(url: &str) -> bool {
    let Some(origin) = origin_of(url) else {
        return false;
    };
    if origin.starts_with("https://") {
        return true;
    }
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

    /// Runs a discovery against `server` (URL → answer); returns the
    /// requests made and the outcome.
    fn run(
        cfg: DiscoveryConfig,
        mut server: impl FnMut(&HttpRequest) -> Result<HttpResponse, String>,
    ) -> (Vec<HttpRequest>, Result<Found, DiscoveryError>) {
        let mut d = Discovery::new(cfg);
        let mut asked = Vec::new();
        while let Some(req) = d.poll_request() {
            let answer = server(&req);
            d.handle_response(req.id, answer);
            asked.push(req);
            assert!(asked.len() <= MAX_REQUESTS, "runs away");
        }
        (asked, d.outcome().expect("an outcome").clone())
    }

    fn ok(body: &str) -> Result<HttpResponse, String> {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), MEDIA_TYPE.into())],
            body: body.as_bytes().to_vec(),
        })
    }

    fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Result<HttpResponse, String> {
        Ok(HttpResponse {
            status: code,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn cfg(creds: bool) -> DiscoveryConfig {
        DiscoveryConfig {
            sip_uri: "sip:alice@contoso.com".into(),
            urls: None,
            credentials: creds.then(|| ("CONTOSO\\alice".to_owned(), "pw&1".to_owned())),
        }
    }

    const EXT_HTTP: &str = "http://lyncdiscover.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com";
    const EXT_HTTPS: &str = "https://lyncdiscover.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com";
    const USER_URL: &str =
        "https://webext.contoso.com/Autodiscover/AutodiscoverService.svc/root/oauth/user";
    const CHALLENGE: &str = r#"MsRtcOAuth href="https://webext.contoso.com/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows,password""#;

    /// The external pool of a Lync 2013 deployment whose internal names
    /// do not resolve from here.
    fn lync(req: &HttpRequest) -> Result<HttpResponse, String> {
        let auth = req
            .headers
            .iter()
            .find(|(n, _)| *n == "Authorization")
            .map(|(_, v)| v.as_str());
        match (req.method, req.url.as_str()) {
            (_, u) if u.contains("lyncdiscoverinternal") => Err("no such host".into()),
            ("GET", EXT_HTTP) => ok(&format!(
                r#"<AutodiscoverResponse AccessLocation="External"><Root><Link token="Redirect" href="{EXT_HTTPS}"/></Root></AutodiscoverResponse>"#
            )),
            ("GET", EXT_HTTPS) => ok(&format!(
                r#"<AutodiscoverResponse AccessLocation="External"><Root><Link token="User" href="{USER_URL}"/></Root></AutodiscoverResponse>"#
            )),
            ("GET", USER_URL) if auth == Some("Bearer cwt=T0KEN") => ok(USER),
            ("GET", USER_URL) => status(401, &[("WWW-Authenticate", CHALLENGE)], ""),
            ("POST", "https://webext.contoso.com/WebTicket/oauthtoken") => {
                if req.body == b"grant_type=password&username=CONTOSO%5Calice&password=pw%261" {
                    status(
                        200,
                        &[],
                        r#"{"access_token":"cwt=T0KEN","token_type":"Bearer","expires_in":28799}"#,
                    )
                } else {
                    status(400, &[], r#"{"error":"invalid_grant"}"#)
                }
            }
            _ => status(404, &[], ""),
        }
    }

    #[test]
    fn a_discovery_walks_from_the_lookup_to_a_token_and_the_sip_server() {
        let (asked, out) = run(cfg(true), lync);
        let found = out.expect("found");
        assert_eq!(
            found.servers,
            [SipAccess {
                fqdn: "sip.contoso.com".into(),
                port: 443
            }]
        );
        assert_eq!(found.access, AccessLocation::External);
        let steps: Vec<(&str, &str)> = asked.iter().map(|r| (r.method, r.url.as_str())).collect();
        assert_eq!(
            steps,
            [
                (
                    "GET",
                    lookup_urls("sip:alice@contoso.com").unwrap()[0].as_str()
                ),
                (
                    "GET",
                    lookup_urls("sip:alice@contoso.com").unwrap()[1].as_str()
                ),
                ("GET", EXT_HTTP),
                ("GET", EXT_HTTPS),
                ("GET", USER_URL),
                ("POST", "https://webext.contoso.com/WebTicket/oauthtoken"),
                ("GET", USER_URL),
            ]
        );
        // The token goes to the resource that asked for it, nowhere else.
        let with_token: Vec<usize> = asked
            .iter()
            .enumerate()
            .filter(|(_, r)| r.headers.iter().any(|(n, _)| *n == "Authorization"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(with_token, [6]);
        assert!(
            !format!("{:?}", asked[6]).contains("T0KEN"),
            "Debug shows the token"
        );
        assert_eq!(found.walk.len(), 3, "{:?}", found.walk);
    }

    #[test]
    fn a_wrong_password_or_a_refused_token_ends_the_discovery() {
        let mut c = cfg(true);
        c.credentials = Some(("CONTOSO\\alice".into(), "wrong".into()));
        let (asked, out) = run(c, lync);
        assert!(
            matches!(&out, Err(DiscoveryError::Refused(w)) if w.contains("invalid_grant")),
            "{out:?}"
        );
        assert_eq!(
            asked.len(),
            6,
            "no other pool is asked with the same password"
        );
        // A resource that refuses the token it asked for.
        let (_, out) = run(cfg(true), |r| {
            if r.url == USER_URL && r.method == "GET" {
                return status(401, &[("WWW-Authenticate", CHALLENGE)], "");
            }
            lync(r)
        });
        assert!(matches!(out, Err(DiscoveryError::Refused(_))), "{out:?}");
    }

    #[test]
    fn credentials_never_go_over_plain_http_except_to_this_machine() {
        let (asked, out) = run(cfg(true), |r| {
            if r.url == USER_URL {
                return status(
                    401,
                    &[(
                        "WWW-Authenticate",
                        r#"MsRtcOAuth href="http://webext.contoso.com/WebTicket/oauthtoken",grant_type="password""#,
                    )],
                    "",
                );
            }
            lync(r)
        });
        assert!(matches!(out, Err(DiscoveryError::Insecure(_))), "{out:?}");
        assert!(asked.iter().all(|r| r.method == "GET"));
        for (url, secure) in [
            ("http://127.0.0.1:8080/x", true),
            ("http://127.9.0.1/x", true),
            ("http://[::1]:80/x", true),
            ("http://localhost/x", true),
            ("https://a.example/x", true),
            ("http://a.example/x", false),
            ("http://127.0.0.1.evil.example/x", false),
            ("http://user@a.example/x", false),
            ("ftp://127.0.0.1/x", false),
        ] {
            assert_eq!(is_secure(url), secure, "{url}");
        }
    }

    #[test]
    fn no_credentials_or_a_ws_trust_service_says_what_is_needed() {
        let (_, out) = run(cfg(false), lync);
        assert!(
            matches!(&out, Err(DiscoveryError::NeedsCredentials(w)) if w.contains("no credentials")),
            "{out:?}"
        );
        let (_, out) = run(cfg(true), |r| {
            if r.url == USER_URL {
                return status(
                    401,
                    &[(
                        "X-MS-WebTicketURL",
                        "https://webext.contoso.com/WebTicket/WebTicketService.svc",
                    )],
                    "",
                );
            }
            lync(r)
        });
        assert!(
            matches!(&out, Err(DiscoveryError::NeedsCredentials(w)) if w.contains("WS-Trust")),
            "{out:?}"
        );
    }

    #[test]
    fn an_unknown_user_loops_and_dead_ends_are_told_apart() {
        // 404 from the User resource: the pool does not know alice.
        let (_, out) = run(cfg(true), |r| {
            if r.url == USER_URL && r.headers.iter().any(|(n, _)| *n == "Authorization") {
                return status(404, &[], "");
            }
            lync(r)
        });
        assert!(
            matches!(out, Err(DiscoveryError::UnknownUser(_))),
            "{out:?}"
        );
        // Every root redirects to itself (HTTP and Redirect links), and a
        // relative Location: each walk stops, then the discovery.
        let (asked, out) = run(cfg(true), |r| {
            if r.url.starts_with("http://") {
                return status(
                    302,
                    &[(
                        "Location",
                        "/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
                    )],
                    "",
                );
            }
            ok(&format!(
                r#"<AutodiscoverResponse><Root><Link token="Redirect" href="{}"/></Root></AutodiscoverResponse>"#,
                r.url
            ))
        });
        let Err(DiscoveryError::NotFound(summary)) = &out else {
            panic!("{out:?}")
        };
        assert!(summary.contains("loop"), "{summary}");
        assert!(asked.len() <= 6, "{}", asked.len());
        assert!(
            asked
                .iter()
                .any(|r| r.url == "http://lyncdiscover.contoso.com/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com"),
            "relative Location resolved"
        );
        // No user@domain.
        let mut c = cfg(true);
        c.sip_uri = "sip:contoso.com".into();
        let (asked, out) = run(c, lync);
        assert!(asked.is_empty());
        assert!(matches!(out, Err(DiscoveryError::BadUri(_))), "{out:?}");
    }

    #[test]
    fn a_given_url_is_asked_instead_and_stale_answers_are_ignored() {
        let mut c = cfg(true);
        c.urls = Some(vec![EXT_HTTPS.to_owned()]);
        let mut d = Discovery::new(c);
        let first = d.poll_request().expect("first");
        assert_eq!(first.url, EXT_HTTPS);
        // A given root without the user's sipuri gets it.
        let mut bare = cfg(true);
        bare.urls = Some(vec![
            "https://a.example/root".into(),
            "https://b.example/root?x=1".into(),
        ]);
        let mut b = Discovery::new(bare);
        let r = b.poll_request().expect("first");
        assert_eq!(r.url, "https://a.example/root?sipuri=alice@contoso.com");
        b.handle_response(r.id, Err("refused".into()));
        let r = b.poll_request().expect("second");
        assert_eq!(r.url, "https://b.example/root?x=1&sipuri=alice@contoso.com");
        d.handle_response(RequestId(first.id.0 + 7), Err("stale".into()));
        assert!(d.outcome().is_none());
        assert!(d.attempts().is_empty());
        d.handle_response(first.id, lync(&first));
        let second = d.poll_request().expect("user");
        assert_eq!(second.url, USER_URL);
        // A body over the cap is not read as a document.
        d.handle_response(
            second.id,
            Ok(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: vec![b' '; MAX_BODY_BYTES + 1],
            }),
        );
        assert!(matches!(
            d.outcome(),
            Some(Err(DiscoveryError::NotFound(_)))
        ));
    }
}
