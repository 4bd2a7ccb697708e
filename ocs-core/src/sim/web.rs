//! The embedded server's web services, sans-IO: Lync-style autodiscover
//! ([MS-OCDISCWS]) and the OAuth password-grant token service, so a
//! client can find the server and get a token with no set-up.
//!
//! Routes (paths compare case-insensitively, as IIS does):
//! - `GET /autodiscover/autodiscoverservice.svc/root?sipuri=u@d`: a `Root`
//!   with `User` and `OAuth` links to the user resource;
//! - `GET /autodiscover/autodiscoverservice.svc/root/oauth/user` (also
//!   `.../root/user`): 401 with an `MsRtcOAuth` challenge without a valid
//!   bearer token; with one, the `User` resource naming this server's SIP
//!   listener;
//! - `POST /webticket/oauthtoken`: `grant_type=password&username=..&password=..`
//!   (the user as `DOMAIN\user`, `user@domain` or `user`) gives a token.
//!
//! Deviations from a Lync pool, on purpose: plain http on loopback (the
//! root does not redirect http to https, and the client accepts tokens
//! over http only to this machine); one SIP access point for internal and
//! external.
//!
//! [`parse_request`] frames and reads one HTTP/1.1 request (httparse, with
//! caps); the driver writes [`WebResponse::to_bytes`] back and closes.
//!
//! [MS-OCDISCWS]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-ocdiscws

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Largest request head read.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest request body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 64;
/// How long a token is good for (what Lync pools give: 8 hours).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most live tokens kept; the oldest goes first.
pub const MAX_TOKENS: usize = 100_000;

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl WebRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read. The driver answers 400 (413 for
/// [`RequestError::TooLarge`]) and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not HTTP/1.x (httparse's reason).
    #[error("bad HTTP request: {0}")]
    Malformed(String),
    /// Head or body over the caps.
    #[error("request too large: {0}")]
    TooLarge(&'static str),
}

impl RequestError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::TooLarge(_) => 413,
        }
    }
}

/// Reads one request from the start of `buf`: `Ok(None)` while more bytes
/// are needed, else the request and how many bytes it took.
pub fn parse_request(buf: &[u8]) -> Result<Option<(WebRequest, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD_BYTES {
                Err(RequestError::TooLarge("head"))
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge("headers")),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    if head > MAX_HEAD_BYTES {
        return Err(RequestError::TooLarge("head"));
    }
    let mut out = WebRequest {
        method: req.method.unwrap_or_default().to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        headers: Vec::with_capacity(req.headers.len()),
        body: Vec::new(),
    };
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value).into_owned();
        out.headers.push((h.name.to_owned(), value));
    }
    if out
        .header("Transfer-Encoding")
        .is_some_and(|t| !t.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(RequestError::Malformed(
            "chunked bodies are not taken; send Content-Length".into(),
        ));
    }
    let len = match out.header("Content-Length") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| RequestError::Malformed(format!("Content-Length {v:?}")))?,
    };
    if len > MAX_BODY_BYTES {
        return Err(RequestError::TooLarge("body"));
    }
    if buf.len() < head + len {
        return Ok(None);
    }
    out.body = buf[head..head + len].to_vec();
    Ok(Some((out, head + len)))
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebResponse {
    /// The status.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl WebResponse {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> WebResponse {
        WebResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// A plain-text error answer.
    pub fn error(status: u16, why: &str) -> WebResponse {
        WebResponse::new(status, "text/plain; charset=utf-8", format!("{why}\n"))
    }

    /// The response on the wire (`Connection: close`: one request per
    /// connection).
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            413 => "Payload Too Large",
            _ => "Status",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Where the web services are and what they point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// The services' own base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// The SIP access point autodiscover names.
    pub sip_fqdn: String,
    /// Its port.
    pub sip_port: u16,
}

/// Signs a PKCS#10 request (DER) for a user (`alice@contoso.com`):
/// the certificate (DER), or why not. The embedded server's CA.
pub type CertIssuer = std::sync::Arc<dyn Fn(&[u8], &str) -> Result<Vec<u8>, String> + Send + Sync>;

/// The services' state: configuration and the tokens handed out.
#[derive(Default)]
pub struct WebService {
    cfg: Option<WebConfig>,
    /// Certificate provisioning, when set ([`WebService::set_issuer`]).
    issuer: Option<CertIssuer>,
    /// OAuth tokens: token → user.
    tokens: Issued<String>,
    /// Web tickets: assertion id → (user, proof key).
    tickets: Issued<(String, Vec<u8>)>,
    /// The wall clock at an instant (web tickets carry `xsd:dateTime`s);
    /// `None`: the first request's instant is 1970-01-01 (tests, fuzzing).
    wall0: Option<(Instant, std::time::SystemTime)>,
}

/// What a service handed out (tokens, tickets) until it lapses: at most
/// [`MAX_TOKENS`] kept, the lapsed dropped first, then the oldest.
/// `order` holds each key of `map` once, oldest first.
struct Issued<V> {
    map: HashMap<String, (V, Instant)>,
    order: std::collections::VecDeque<String>,
}

impl<V> Default for Issued<V> {
    fn default() -> Self {
        Issued {
            map: HashMap::new(),
            order: std::collections::VecDeque::new(),
        }
    }
}

impl<V> Issued<V> {
    /// Keeps `value` under `key` until `until`. Each table gives one
    /// lifetime to all it hands out, so the oldest lapses first: dropping
    /// from the front while lapsed (or while full) costs nothing per insert
    /// however large the table (a scan of the whole table on every insert
    /// had made issuing 100,000 tokens take minutes).
    fn insert(&mut self, key: String, value: V, until: Instant, now: Instant) {
        while let Some(front) = self.order.front() {
            let lapsed = self.map.get(front).is_none_or(|(_, u)| *u <= now);
            if !lapsed && self.map.len() < MAX_TOKENS {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        if self.map.insert(key.clone(), (value, until)).is_some() {
            // A key given again (never, with random keys): one place in line.
            self.order.retain(|k| *k != key);
        }
        self.order.push_back(key);
    }

    /// The value under `key` while it is good.
    fn get(&self, key: &str, now: Instant) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v)
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

const ROOT_PATH: &str = "/autodiscover/autodiscoverservice.svc/root";
const USER_PATHS: [&str; 2] = [
    "/autodiscover/autodiscoverservice.svc/root/oauth/user",
    "/autodiscover/autodiscoverservice.svc/root/user",
];
const TOKEN_PATH: &str = "/webticket/oauthtoken";
const CERTPROV_PATH: &str = "/certprov/certprovisioningservice.svc";
const WEBTICKET_PATH: &str = "/webticket/webticketservice.svc";
/// How long a web ticket is good for.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const XML: &str = "application/vnd.microsoft.rtc.autodiscover+xml; v=1; charset=utf-8";

impl std::fmt::Debug for WebService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebService")
            .field("cfg", &self.cfg)
            .field("issuer", &self.issuer.is_some())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl WebService {
    /// Turns certificate provisioning on: `POST
    /// /CertProv/CertProvisioningService.svc` signs the user's request
    /// with `issuer`.
    pub fn set_issuer(&mut self, issuer: CertIssuer) {
        self.issuer = Some(issuer);
    }

    /// Sets where the services are (the driver, once its listener is bound).
    pub fn configure(&mut self, cfg: WebConfig) {
        self.cfg = Some(cfg);
    }

    /// Live tokens.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Tickets handed out and not yet dropped.
    pub fn ticket_count(&self) -> usize {
        self.tickets.len()
    }

    /// Sets the wall clock: `wall` at `at` (the driver, at start).
    pub fn set_wall_origin(&mut self, at: Instant, wall: std::time::SystemTime) {
        self.wall0 = Some((at, wall));
    }

    fn wall(&mut self, now: Instant) -> std::time::SystemTime {
        let (at, wall) = *self
            .wall0
            .get_or_insert((now, std::time::SystemTime::UNIX_EPOCH));
        match now.checked_duration_since(at) {
            Some(d) => wall + d,
            None => wall - at.duration_since(now),
        }
    }

    /// Answers one request, with the registrar's accounts (passwords for
    /// the token service, users for `User`) and its secret generator (a
    /// token is drawn only when one is handed out).
    pub(crate) fn handle(
        &mut self,
        req: &WebRequest,
        now: Instant,
        registrar: &mut super::Registrar,
    ) -> WebResponse {
        let Some(cfg) = self.cfg.clone() else {
            return WebResponse::error(404, "no web services on this server");
        };
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let path = path.trim_end_matches('/').to_ascii_lowercase();
        let get = req.method.eq_ignore_ascii_case("GET");
        if path == ROOT_PATH {
            if !get {
                return WebResponse::error(405, "GET only");
            }
            let Some(sipuri) = form_pairs(query)
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("sipuri"))
                .map(|(_, v)| v)
            else {
                return WebResponse::error(400, "sipuri is required");
            };
            let domain = sipuri.rsplit('@').next().unwrap_or_default();
            let user = format!(
                "{}{}?originalDomain={}",
                cfg.base_url,
                USER_PATHS[0],
                xml_escape(domain)
            );
            let body = format!(
                r#"<?xml version="1.0" encoding="utf-8"?><AutodiscoverResponse xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" AccessLocation="Internal"><Root><Link token="Self" href="{base}{ROOT_PATH}"/><Link token="User" href="{user}"/><Link token="OAuth" href="{user}"/></Root></AutodiscoverResponse>"#,
                base = cfg.base_url,
            );
            return WebResponse::new(200, XML, body);
        }
        if path == CERTPROV_PATH {
            return self.certprov(req, now, &cfg);
        }
        if path == WEBTICKET_PATH {
            return self.web_ticket(req, now, &cfg, registrar);
        }
        if USER_PATHS.contains(&path.as_str()) {
            if !get {
                return WebResponse::error(405, "GET only");
            }
            let Some(user) = self.bearer_user(req, now) else {
                let mut r = WebResponse::error(401, "a bearer token is required");
                r.headers.push((
                    "WWW-Authenticate".into(),
                    format!(
                        r#"MsRtcOAuth href="{}{}",grant_type="urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password""#,
                        cfg.base_url, "/WebTicket/oauthtoken"
                    ),
                ));
                return r;
            };
            if !registrar.has_user(&user) {
                return WebResponse::error(404, "no such user");
            }
            let access = format!(
                r#"fqdn="{}" port="{}""#,
                xml_escape(&cfg.sip_fqdn),
                cfg.sip_port
            );
            let body = format!(
                r#"<?xml version="1.0" encoding="utf-8"?><AutodiscoverResponse xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" AccessLocation="Internal"><User><SipServerInternalAccess {access}/><SipClientInternalAccess {access}/><SipServerExternalAccess {access}/><SipClientExternalAccess {access}/><Link token="Self" href="{base}{path}"/></User></AutodiscoverResponse>"#,
                base = cfg.base_url,
                path = USER_PATHS[0],
            );
            return WebResponse::new(200, XML, body);
        }
        if path == TOKEN_PATH {
            if !req.method.eq_ignore_ascii_case("POST") {
                return WebResponse::error(405, "POST only");
            }
            let form = form_pairs(&String::from_utf8_lossy(&req.body));
            let field = |k: &str| {
                form.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
            };
            let json = "application/json; charset=utf-8";
            if field("grant_type") != Some("password") {
                return WebResponse::new(
                    400,
                    json,
                    r#"{"error":"unsupported_grant_type","error_description":"this server takes grant_type=password"}"#,
                );
            }
            let (Some(login), Some(password)) = (field("username"), field("password")) else {
                return WebResponse::new(
                    400,
                    json,
                    r#"{"error":"invalid_request","error_description":"username and password are required"}"#,
                );
            };
            let Some(user) = registrar.check_password(login, password) else {
                return WebResponse::new(
                    400,
                    json,
                    r#"{"error":"invalid_grant","error_description":"wrong user name or password"}"#,
                );
            };
            let t = registrar.random_token();
            self.tokens
                .insert(t.clone(), user, now + TOKEN_LIFETIME, now);
            let body = format!(
                r#"{{"access_token":"{t}","expires_in":{},"ms_rtc_identityscope":"local","token_type":"Bearer"}}"#,
                TOKEN_LIFETIME.as_secs()
            );
            return WebResponse::new(200, json, body);
        }
        WebResponse::error(404, "not found")
    }
}

impl WebService {
    /// The user a request's bearer token names, while it is good.
    fn bearer_user(&self, req: &WebRequest, now: Instant) -> Option<String> {
        let token = req
            .header("Authorization")
            .and_then(|a| a.trim().strip_prefix("Bearer "))
            .map(str::trim)?;
        self.tokens.get(token, now).cloned()
    }

    /// `IssueToken` (MS-OCAUTHWS Web Ticket Service, OAuth2 client
    /// authentication): a bearer token from the token service names the
    /// user; the answer is a SAML 1.1 assertion for the URI claim (which
    /// must be the user's), good for [`TICKET_LIFETIME`], with the
    /// service's entropy for the proof key.
    fn web_ticket(
        &mut self,
        req: &WebRequest,
        now: Instant,
        cfg: &WebConfig,
        registrar: &mut super::Registrar,
    ) -> WebResponse {
        let soap = "text/xml; charset=utf-8";
        let fault = |status: u16, why: &str| {
            WebResponse::new(status, soap, crate::certprov::build_fault(why))
        };
        if !req.method.eq_ignore_ascii_case("POST") {
            return WebResponse::error(405, "POST only");
        }
        let Some(user) = self.bearer_user(req, now) else {
            let mut r = fault(401, "a bearer token from the token service is required");
            r.headers.push((
                "WWW-Authenticate".into(),
                format!(
                    r#"MsRtcOAuth href="{}/WebTicket/oauthtoken",grant_type="password""#,
                    cfg.base_url
                ),
            ));
            return r;
        };
        let asked = match crate::webticket::parse_request(&req.body) {
            Ok(a) => a,
            Err(e) => return fault(400, &e.to_string()),
        };
        let Some(client_entropy) = asked.entropy.filter(|e| !e.is_empty()) else {
            return fault(
                400,
                "this service issues proof-of-possession tickets: Entropy is required",
            );
        };
        let uri = asked.sip_uri.unwrap_or_default();
        let claimed = uri
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if claimed != user {
            return fault(403, "the URI claim is not the signed-in user");
        }
        let id = format!(
            "SamlSecurityToken-{}",
            crate::auth::hex::encode(&registrar.random_bytes()[..16])
        );
        let server_entropy = registrar.random_bytes();
        let key = crate::webticket::proof_key(&client_entropy, &server_entropy);
        let created = self.wall(now);
        let body = crate::webticket::build_response(
            &id,
            &uri,
            &server_entropy,
            &crate::utc::format(created),
            &crate::utc::format(created + TICKET_LIFETIME),
        );
        self.tickets
            .insert(id, (user, key), now + TICKET_LIFETIME, now);
        WebResponse::new(200, soap, body)
    }

    /// `GetAndPublishCert`: the caller presents a web ticket from
    /// `/WebTicket/WebTicketService.svc` in `wsse:Security`, signed with
    /// its proof key over a timestamp that has not expired; the request's
    /// Entity must be the ticket's user; the certificate names the user
    /// whatever the request's subject.
    fn certprov(&mut self, req: &WebRequest, now: Instant, cfg: &WebConfig) -> WebResponse {
        let soap = "text/xml; charset=utf-8";
        let fault = |status: u16, why: &str| {
            WebResponse::new(status, soap, crate::certprov::build_fault(why))
        };
        if !req.method.eq_ignore_ascii_case("POST") {
            return WebResponse::error(405, "POST only");
        }
        let Some(issuer) = self.issuer.clone() else {
            return WebResponse::error(404, "no certificate provisioning on this server");
        };
        let wall = self.wall(now);
        let tickets = &self.tickets;
        let presented = crate::webticket::check_presented(&req.body, |id| {
            tickets.get(id, now).map(|(_, key)| key.clone())
        });
        let user = match presented {
            Ok(p) if crate::utc::parse(&p.expires).is_some_and(|e| e > wall) => self
                .tickets
                .get(&p.assertion_id, now)
                .map(|(u, _)| u.clone()),
            Ok(_) => return fault(401, "the web ticket's timestamp has expired"),
            Err(_) => None,
        };
        let Some(user) = user else {
            let mut r = fault(401, "a web ticket signed with its proof key is required");
            r.headers.push((
                "X-MS-WebTicketURL".into(),
                format!("{}/WebTicket/WebTicketService.svc", cfg.base_url),
            ));
            return r;
        };
        let (entity, csr) = match crate::certprov::parse_request(&req.body) {
            Ok(x) => x,
            Err(e) => return fault(400, &e.to_string()),
        };
        let entity = entity.trim_start_matches("sip:").to_ascii_lowercase();
        if entity.split('@').next() != Some(user.as_str()) {
            return fault(403, "the Entity is not the signed-in user");
        }
        match issuer(&csr, &entity) {
            Ok(cert) => WebResponse::new(200, soap, crate::certprov::build_response(&cert)),
            Err(e) => fault(400, &format!("the certificate request: {e}")),
        }
    }
}

/// `k=v&k=v` (form or query), `+` as space and `%XX` decoded; bad escapes
/// are kept as they are.
fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::presence::xml::escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a service hands out lapses, and the table stays bounded: the
    /// lapsed go first, then the oldest.
    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs some instant to start from
    fn issued_things_lapse_and_stay_bounded() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(10);
        let mut issued: Issued<u32> = Issued::default();
        issued.insert("short".into(), 1, t0 + Duration::from_secs(5), t0);
        issued.insert("long".into(), 2, t0 + Duration::from_secs(60), t0);
        assert_eq!(issued.get("short", t0), Some(&1));
        assert_eq!(issued.get("short", later), None, "lapsed");
        assert_eq!(issued.get("long", later), Some(&2));
        // The next insert drops what lapsed.
        issued.insert("x".into(), 3, t0 + Duration::from_secs(60), later);
        assert_eq!(issued.len(), 2);
        // Full: the oldest live one goes.
        for i in 0..MAX_TOKENS {
            issued.insert(format!("k{i}"), 0, t0 + Duration::from_secs(60), later);
        }
        assert_eq!(issued.len(), MAX_TOKENS);
        assert_eq!(issued.get("long", later), None, "the oldest was dropped");
        assert_eq!(issued.get(&format!("k{}", MAX_TOKENS - 1), later), Some(&0));
    }
}
