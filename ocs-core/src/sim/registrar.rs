//! The registrar half of the OCS-dialect test server: NTLM (MS-SIPAE,
//! the server side of the same code the client uses) and Digest, signed
//! responses, 301 redirects and binding expiry. Sans-IO: requests in,
//! responses out, time passed in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::auth::digest::{self, DigestAuthorization, DigestChallenge};
use crate::auth::drbg::SecretRng;
use crate::auth::epid::sip_instance_uuid;
use crate::auth::ntlm::{self, AuthenticateMessage, ChallengeMessage};
use crate::auth::sipae::{SecurityAssociation, signature_header};
use crate::rng::Rng;
use crate::sip::{Contacts, HeaderName, Message, builder};

/// How the registrar authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Connectionless NTLM with MS-SIPAE signing (OCS).
    Ntlm,
    /// RFC 3261 Digest (standard registrars).
    Digest,
    /// TLS-DSK with MS-SIPAE signing (Lync 2010 and later): the client's
    /// certificate is its credential. Needs [`Registrar::set_tls_dsk`].
    TlsDsk,
    /// Kerberos with MS-SIPAE signing: the client's ticket names the user.
    /// Needs [`Registrar::set_kerberos`].
    Kerberos,
}

/// Accepts a client's Kerberos AP-REQ for a targetname (`sip/host`):
/// the client's principal (`alice@CONTOSO.COM`) and the context that signs
/// and verifies, or why not. `auth::kerberos::accept` is one (feature
/// `kerberos`); the registrar itself needs no GSSAPI.
pub type KerberosAcceptor = std::sync::Arc<
    dyn Fn(
            &str,
            &[u8],
        ) -> Result<(String, Box<dyn crate::auth::mechanism::MechanismContext>), String>
        + Send
        + Sync,
>;

impl AuthMode {
    /// Whether sign-in sets up an MS-SIPAE association, after which every
    /// message is signed (NTLM, TLS-DSK, Kerberos).
    pub fn is_signed(self) -> bool {
        matches!(self, AuthMode::Ntlm | AuthMode::TlsDsk | AuthMode::Kerberos)
    }
}

/// Most TLS-DSK handshakes under way at once; more are answered 503.
pub const MAX_TLS_DSK_PENDING: usize = 10_000;
/// Most NTLM handshakes under way at once (a CHALLENGE handed out, its
/// AUTHENTICATE not yet seen); more are answered 503.
pub const MAX_NTLM_PENDING: usize = 10_000;
/// How long a handshake under way is kept: a client that starts one and
/// goes away must not hold a slot for good (a full table would refuse
/// everyone's sign-in until a restart).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Handshakes under way by opaque, each with its deadline, at most `cap`.
#[derive(Debug)]
struct Handshakes<T> {
    map: HashMap<String, (T, Instant)>,
    cap: usize,
}

impl<T> Handshakes<T> {
    fn new(cap: usize) -> Self {
        Handshakes {
            map: HashMap::new(),
            cap,
        }
    }

    /// Whether one more fits at `now` (lapsed ones are dropped first when
    /// the table is full).
    fn has_room(&mut self, now: Instant) -> bool {
        if self.map.len() >= self.cap {
            self.map.retain(|_, (_, until)| *until > now);
        }
        self.map.len() < self.cap
    }

    fn insert(&mut self, opaque: String, hs: T, now: Instant) {
        self.map.insert(opaque, (hs, now + HANDSHAKE_TIMEOUT));
    }

    /// The handshake under `opaque`, unless it lapsed.
    fn take(&mut self, opaque: &str, now: Instant) -> Option<T> {
        match self.map.remove(opaque) {
            Some((hs, until)) if until > now => Some(hs),
            _ => None,
        }
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Registrar settings. The defaults mirror the captured OCS 2007 R2
/// server (T2): 407 challenges, auth version 4, Expires 7200,
/// keep-alive 300 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// The SIP domain served.
    pub domain: String,
    /// NTLM or Digest.
    pub auth: AuthMode,
    /// Challenge with 401 (WWW-Authenticate) instead of 407.
    pub use_401: bool,
    /// MS-SIPAE realm.
    pub realm: String,
    /// MS-SIPAE targetname (the server FQDN).
    pub targetname: String,
    /// MS-SIPAE auth version offered (3 or 4).
    pub auth_version: u32,
    /// Registration lifetime granted.
    pub expires: u32,
    /// ms-keep-alive timeout (0: don't send the header).
    pub keep_alive: u32,
    /// Digest nonces go stale after this long.
    pub nonce_lifetime: Duration,
    /// Server header.
    pub server: String,
    /// Answer every authenticated REGISTER with `301` to this
    /// `HOST:PORT[;transport=..]` (a Director sending users to their home
    /// pool, PROTOCOL.md a.8); accounts' own redirects win.
    pub redirect_to: Option<String>,
}

impl RegistrarConfig {
    /// OCS 2007 R2-like defaults for `domain`.
    pub fn ocs(domain: &str) -> RegistrarConfig {
        RegistrarConfig {
            domain: domain.to_owned(),
            auth: AuthMode::Ntlm,
            use_401: false,
            realm: "SIP Communications Service".to_owned(),
            targetname: format!("ocs-sim.{domain}"),
            auth_version: 4,
            expires: 7200,
            keep_alive: 300,
            nonce_lifetime: Duration::from_secs(300),
            server: "RTC/3.5".to_owned(),
            redirect_to: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Account {
    domain: String,
    password: String,
    redirect: Option<String>,
}

#[derive(Debug)]
struct PendingNtlm {
    server_challenge: [u8; 8],
}

/// A registered binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The user's address of record.
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    /// The GRUU handed out.
    pub gruu: String,
    /// The endpoint id.
    pub epid: String,
    /// When it lapses.
    pub expires_at: Instant,
}

/// What the registrar wants the owner to do with a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrarOutcome {
    /// Send this response.
    Respond(Message),
    /// Not a REGISTER (or not for us): verified and handed back for other
    /// services (presence, IM). `signed_by` names the user whose security
    /// association signed it, if any.
    Pass {
        /// The authenticated user (user name), when the request was signed.
        signed_by: Option<String>,
    },
}

/// The registrar.
#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarConfig,
    rng: Rng,
    secret: SecretRng,
    accounts: HashMap<String, Account>,
    pending: Handshakes<PendingNtlm>,
    /// Security associations by opaque, with the user they belong to.
    sas: HashMap<String, (String, SecurityAssociation)>,
    /// The opaque of each user's association (one per user): signing for
    /// a user was a scan of every association, the embedded server's
    /// hottest spot with 10,000 users signed in (`ocs load`).
    sa_of_user: HashMap<String, String>,
    /// Associations of users signed out by the server: the client still
    /// signs its answer to the NOTIFY that signed it out with them.
    retired: HashMap<String, (String, SecurityAssociation)>,
    nonces: HashMap<String, Instant>,
    bindings: HashMap<String, Binding>,
    /// When bindings lapse, earliest first; an entry whose binding was
    /// refreshed or removed since is skipped when it comes up (so
    /// `poll_timeout` may wake early, never late). Finding the earliest
    /// by scanning every binding on each wake-up made the server O(users)
    /// per message.
    expiries: BinaryHeap<Reverse<(Instant, String)>>,
    /// Next time lapsed digest nonces are swept.
    next_nonce_sweep: Option<Instant>,
    unavailable: Option<u32>,
    /// TLS-DSK: the server's TLS configuration (its certificate for the
    /// targetname, client certificates checked against the CA that
    /// provisioning issues from) and the certificate provisioning URL the
    /// challenge names (`sts-uri`).
    tls_dsk: Option<(std::sync::Arc<rustls::ServerConfig>, Option<String>)>,
    /// TLS-DSK handshakes under way, by opaque.
    pending_tls: Handshakes<crate::auth::tlsdsk::TlsDskServer>,
    /// Kerberos: the acceptor of clients' tickets.
    kerberos: Option<Acceptor>,
}

/// A [`KerberosAcceptor`] the registrar's `Debug` can show.
#[derive(Clone)]
struct Acceptor(KerberosAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KerberosAcceptor(..)")
    }
}

/// What [`Registrar::check_client_signature`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed by this user's association and verified.
    Valid {
        /// Whose association.
        user: String,
        /// The association (its `opaque`).
        association: String,
        /// The message's `cnum`.
        cnum: u64,
    },
    /// No signature.
    Unsigned,
    /// A signature that does not verify (the reason).
    Bad(String),
    /// Signed for an association this server does not know (it restarted):
    /// answered with 401 so the client signs in again, as OCS does.
    UnknownAssociation,
}

/// The user a client certificate names: its subject CN `user@domain`
/// (what certificate provisioning puts there), lower case, before `@`.
fn certificate_user(der: &rustls::pki_types::CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(user_of(cn))
}

fn user_of(aor: &str) -> String {
    let s = aor.trim_start_matches("sip:").trim_start_matches("sips:");
    s.split('@').next().unwrap_or(s).to_ascii_lowercase()
}

/// The GRUU OCS hands out: `opaque=user:epid:` + base64url of the
/// instance GUID (Windows byte order) plus two zero bytes (matches T2).
pub fn gruu_for(aor: &str, epid: &str) -> String {
    let uuid = sip_instance_uuid(epid);
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let mut b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0))
        .collect();
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b.extend_from_slice(&[0, 0]);
    let opaque = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b);
    format!("{aor};opaque=user:epid:{opaque};gruu")
}

/// The parts of a 200 OK to REGISTER that vary (T2 layout).
#[derive(Debug, Clone)]
pub struct RegisterOk<'a> {
    /// To tag.
    pub to_tag: &'a str,
    /// Display name put on From (OCS adds the user's name).
    pub display_name: Option<&'a str>,
    /// The connection id OCS appends as `ms-received-cid`.
    pub received_cid: Option<&'a str>,
    /// Granted lifetime.
    pub expires: u32,
    /// The GRUU.
    pub gruu: &'a str,
    /// ms-keep-alive timeout (0: omit).
    pub keep_alive: u32,
    /// Server header.
    pub server: &'a str,
    /// Leave room for Authentication-Info in second position (signed).
    pub signed: bool,
    /// A new binding (`presence-state: register-action="added"`); refreshes
    /// omit it (MS-SIPREGE).
    pub added: bool,
}

/// Builds the 200 OK to a REGISTER the way OCS 2007 R2 lays it out (T2).
pub fn build_register_ok(req: &Message, p: &RegisterOk<'_>) -> Message {
    let mut m = Message::response(200, "OK");
    if p.keep_alive > 0 {
        m.push_header(
            HeaderName::MsKeepAlive,
            format!(
                "UAS; tcp=no; hop-hop=yes; end-end=no; timeout={}",
                p.keep_alive
            ),
        );
    }
    if p.signed {
        // Placeholder replaced in place by the signature.
        m.push_header(HeaderName::AuthenticationInfo, "NTLM");
    }
    if let Some(from) = req.header(HeaderName::From) {
        match p.display_name {
            Some(d) => m.push_header(HeaderName::From, format!("\"{d}\"{from}")),
            None => m.push_header(HeaderName::From, from),
        }
    }
    if let Some(to) = req.header(HeaderName::To) {
        m.push_header(HeaderName::To, format!("{to};tag={}", p.to_tag));
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = req.header(name.clone()) {
            m.push_header(name, v);
        }
    }
    for via in req.headers_named(HeaderName::Via) {
        let mut v = via.value.to_owned();
        if let Some(cid) = p.received_cid {
            let port = req.top_via().ok().and_then(|t| t.port).unwrap_or(5061);
            v.push_str(&format!(";ms-received-port={port};ms-received-cid={cid}"));
        }
        m.push_header(HeaderName::Via, v);
    }
    if let Ok(Contacts::List(list)) = req.contacts()
        && let Some(c) = list.first()
    {
        let mut uri = c.uri_text.to_owned();
        if let Some(cid) = p.received_cid {
            uri.push_str(&format!(";ms-received-cid={cid}"));
        }
        let mut v = format!("<{uri}>;expires={}", p.expires);
        if let Some(inst) = c.params.get_unquoted("+sip.instance") {
            v.push_str(&format!(";+sip.instance=\"{}\"", inst.to_ascii_lowercase()));
        }
        v.push_str(&format!(";gruu=\"{}\"", p.gruu));
        m.push_header(HeaderName::Contact, v);
    }
    m.push_header(HeaderName::Expires, p.expires.to_string());
    if p.added {
        m.push_header("presence-state", "register-action=\"added\"");
    }
    m.push_header(
        HeaderName::AllowEvents,
        "vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,presence,presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2",
    );
    m.push_header(HeaderName::Supported, "adhoclist");
    m.push_header(HeaderName::Server, p.server);
    m.push_header(HeaderName::Supported, "msrtc-event-categories");
    m.push_header(HeaderName::ContentLength, "0");
    m
}

impl Registrar {
    /// A registrar with no accounts.
    pub fn new(cfg: RegistrarConfig, rng: Rng, entropy: [u8; 32]) -> Registrar {
        Registrar {
            cfg,
            rng,
            secret: SecretRng::new(entropy),
            accounts: HashMap::new(),
            pending: Handshakes::new(MAX_NTLM_PENDING),
            sas: HashMap::new(),
            sa_of_user: HashMap::new(),
            retired: HashMap::new(),
            nonces: HashMap::new(),
            bindings: HashMap::new(),
            expiries: BinaryHeap::new(),
            next_nonce_sweep: None,
            unavailable: None,
            tls_dsk: None,
            pending_tls: Handshakes::new(MAX_TLS_DSK_PENDING),
            kerberos: None,
        }
    }

    /// TLS-DSK settings (for [`AuthMode::TlsDsk`]): the server's TLS
    /// configuration ([`crate::auth::tlsdsk::TlsDskServer::config`]) and
    /// the certificate provisioning URL named in challenges.
    pub fn set_tls_dsk(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
        sts_uri: Option<String>,
    ) {
        self.tls_dsk = Some((config, sts_uri));
    }

    /// Kerberos settings (for [`AuthMode::Kerberos`]): what accepts the
    /// clients' tickets. Challenges name the service `sip/` + the
    /// targetname.
    pub fn set_kerberos(&mut self, acceptor: KerberosAcceptor) {
        self.kerberos = Some(Acceptor(acceptor));
    }

    /// The Certificate Provisioning URL TLS-DSK challenges name
    /// (`sts-uri`); `None`: none named.
    pub fn set_sts_uri(&mut self, sts_uri: Option<String>) {
        if let Some((_, s)) = &mut self.tls_dsk {
            *s = sts_uri;
        }
    }

    /// While set, REGISTERs are answered `503 Service Unavailable` with this
    /// Retry-After (seconds), as an overloaded pool does.
    pub fn set_unavailable(&mut self, retry_after: Option<u32>) {
        self.unavailable = retry_after;
    }

    /// Adds an account (`user` is the part before `@`).
    pub fn add_user(&mut self, user: &str, ntlm_domain: &str, password: &str) {
        self.accounts.insert(
            user.to_ascii_lowercase(),
            Account {
                domain: ntlm_domain.to_owned(),
                password: password.to_owned(),
                redirect: None,
            },
        );
    }

    /// The user `login` names (`DOMAIN\user`, `user@domain` or `user`)
    /// when `password` is theirs: the web token service's check.
    pub fn check_password(&self, login: &str, password: &str) -> Option<String> {
        let (domain, user) = match login.split_once('\\') {
            Some((d, u)) => (Some(d), u),
            None => (None, login.split('@').next().unwrap_or(login)),
        };
        let user = user.to_ascii_lowercase();
        let account = self.accounts.get(&user)?;
        if domain.is_some_and(|d| !d.eq_ignore_ascii_case(&account.domain)) {
            return None;
        }
        crate::auth::ct_eq(account.password.as_bytes(), password.as_bytes()).then_some(user)
    }

    /// Whether `user` (the part before `@`) has an account.
    pub fn has_user(&self, user: &str) -> bool {
        self.accounts.contains_key(&user.to_ascii_lowercase())
    }

    /// A fresh unguessable token: `cwt=` and 192 bits from the secret
    /// generator the NTLM challenges come from.
    pub(crate) fn random_token(&mut self) -> String {
        let b: [u8; 24] = self.secret.bytes();
        format!("cwt={}", crate::auth::hex::encode(&b))
    }

    /// 256 fresh unguessable bits (the web ticket service's entropy).
    pub(crate) fn random_bytes(&mut self) -> [u8; 32] {
        self.secret.bytes()
    }

    /// Makes the registrar answer this user's authenticated REGISTER with
    /// `301` to `pool` (a `host:port;transport=tls` target).
    pub fn redirect_user(&mut self, user: &str, pool: &str) {
        if let Some(a) = self.accounts.get_mut(&user.to_ascii_lowercase()) {
            a.redirect = Some(pool.to_owned());
        }
    }

    /// The current binding of a user, if registered at `now`.
    pub fn binding(&self, aor: &str, now: Instant) -> Option<&Binding> {
        self.bindings
            .get(&user_of(aor))
            .filter(|b| b.expires_at > now)
    }

    /// All live bindings.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values()
    }

    /// Drops lapsed bindings.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.expiries.peek()
            && *at <= now
        {
            let Some(Reverse((_, user))) = self.expiries.pop() else {
                break;
            };
            if self
                .bindings
                .get(&user)
                .is_some_and(|b| b.expires_at <= now)
            {
                self.bindings.remove(&user);
            }
        }
        // Nonces live an hour; sweeping them once a minute is enough.
        if self.next_nonce_sweep.is_none_or(|t| t <= now) {
            self.nonces
                .retain(|_, t| *t + Duration::from_secs(3600) > now);
            self.next_nonce_sweep = Some(now + Duration::from_secs(60));
        }
    }

    /// When the next binding lapses.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _))| *at)
    }

    /// Forgets every security association, as a restarted server would.
    pub fn restart(&mut self) {
        self.sas.clear();
        self.sa_of_user.clear();
        self.expiries.clear();
        self.retired.clear();
        self.pending.clear();
        self.bindings.clear();
        self.nonces.clear();
    }

    /// How this registrar authenticates.
    pub fn auth_mode(&self) -> AuthMode {
        self.cfg.auth
    }

    /// Forgets one user's binding and associations (after a forced
    /// sign-out the user must authenticate again).
    pub fn restart_user(&mut self, user: &str) {
        let user = user.to_ascii_lowercase();
        self.bindings.remove(&user);
        if let Some(o) = self.sa_of_user.remove(&user)
            && let Some(sa) = self.sas.remove(&o)
        {
            self.retired.insert(o, sa);
        }
    }

    /// Checks the MS-SIPAE signature of a message a signed-in client sent
    /// (a request other than REGISTER, or a final response to one of our
    /// requests). Associations of users the server signed out still count,
    /// for their answer to the sign-out NOTIFY.
    pub fn check_client_signature(&self, msg: &Message) -> SignatureCheck {
        let h = match signature_header(msg) {
            Ok(Some(h)) => h,
            Ok(None) => return SignatureCheck::Unsigned,
            Err(e) => return SignatureCheck::Bad(format!("unreadable signature header: {e}")),
        };
        let Some((user, sa)) = h
            .opaque
            .as_ref()
            .and_then(|o| self.sas.get(o).or_else(|| self.retired.get(o)))
        else {
            return SignatureCheck::UnknownAssociation;
        };
        match sa.verify(msg) {
            Ok(true) => match h.num.parse::<u64>() {
                Ok(cnum) => SignatureCheck::Valid {
                    user: user.clone(),
                    association: h.opaque.unwrap_or_default(),
                    cnum,
                },
                Err(_) => SignatureCheck::Bad(format!("cnum {:?} is not a number", h.num)),
            },
            Ok(false) => SignatureCheck::Unsigned,
            Err(e) => SignatureCheck::Bad(e.to_string()),
        }
    }

    /// Signs a response the server sends to `user` (no-op without an
    /// association).
    pub fn sign_for(&mut self, user: &str, msg: &mut Message) {
        let rand = self.rng.hex(8).to_ascii_uppercase();
        if let Some((_, sa)) = self
            .sa_of_user
            .get(&user.to_ascii_lowercase())
            .and_then(|o| self.sas.get_mut(o))
        {
            let _ = sa.sign(msg, &rand);
        }
    }

    /// Handles a request. REGISTERs are answered; other requests are
    /// verified (when signed) and passed back.
    pub fn handle_request(&mut self, req: &Message, now: Instant) -> RegistrarOutcome {
        let is_register = req.method().is_some_and(|m| m.as_str() == "REGISTER");
        if !is_register {
            return match self.verify_signed(req) {
                Ok(signed_by) => RegistrarOutcome::Pass { signed_by },
                Err(resp) => RegistrarOutcome::Respond(*resp),
            };
        }
        if let Some(secs) = self.unavailable {
            let mut r = self.reply(req, 503);
            r.insert_header(
                r.header_count() - 1,
                HeaderName::RetryAfter,
                secs.to_string(),
            );
            r.insert_header(
                r.header_count() - 1,
                HeaderName::MsDiagnostics,
                "1008;reason=\"Server is busy\";source=\"ocs-sim\"",
            );
            return RegistrarOutcome::Respond(r);
        }
        match self.cfg.auth {
            AuthMode::Ntlm => self.register_ntlm(req, now),
            AuthMode::Digest => self.register_digest(req, now),
            AuthMode::TlsDsk => self.register_tls_dsk(req, now),
            AuthMode::Kerberos => self.register_kerberos(req, now),
        }
    }

    /// Makes `sa` the user's association. One endpoint per user here: a
    /// new association replaces the old one, so the server never signs
    /// with stale keys.
    fn adopt(&mut self, user: String, opaque: String, sa: SecurityAssociation) {
        if let Some(old) = self.sa_of_user.insert(user.clone(), opaque.clone()) {
            self.sas.remove(&old);
        }
        self.sas.insert(opaque, (user, sa));
    }

    /// 503 with Retry-After: too many handshakes under way.
    fn busy(&self, req: &Message) -> Message {
        let mut r = self.reply(req, 503);
        r.insert_header(r.header_count() - 1, "Retry-After", "10");
        r
    }

    /// Handshakes under way (NTLM, TLS-DSK).
    pub fn handshakes_under_way(&self) -> usize {
        self.pending.len() + self.pending_tls.len()
    }

    fn reply(&self, req: &Message, code: u16) -> Message {
        builder::response(req, code, None, None).unwrap_or_else(|_| Message::response(code, ""))
    }

    /// Checks the signature of a signed request; unsigned requests after
    /// sign-in are refused with 401 by OCS.
    fn verify_signed(&self, req: &Message) -> Result<Option<String>, Box<Message>> {
        let Ok(Some(h)) = signature_header(req) else {
            return Ok(None);
        };
        let Some((user, sa)) = h.opaque.as_ref().and_then(|o| self.sas.get(o)) else {
            return Err(Box::new(self.reply(req, 401)));
        };
        match sa.verify(req) {
            Ok(true) => Ok(Some(user.clone())),
            _ => Err(Box::new(self.reply(req, 401))),
        }
    }

    fn challenge_header(&self) -> HeaderName {
        if self.cfg.use_401 {
            HeaderName::WwwAuthenticate
        } else {
            HeaderName::ProxyAuthenticate
        }
    }

    fn challenge(&self, req: &Message, value: String) -> Message {
        let code = if self.cfg.use_401 { 401 } else { 407 };
        let mut r = self.reply(req, code);
        r.insert_header(r.header_count() - 1, self.challenge_header(), value);
        r
    }

    fn register_ntlm(&mut self, req: &Message, now: Instant) -> RegistrarOutcome {
        let creds = credentials_of(req, "NTLM");
        let Some(creds) = creds else {
            let v = format!(
                "NTLM realm=\"{}\", targetname=\"{}\", version={}",
                self.cfg.realm, self.cfg.targetname, self.cfg.auth_version
            );
            let mut r = self.challenge(req, v);
            // Offer Kerberos too, as OCS does; clients must pick NTLM.
            r.insert_header(
                r.header_count() - 1,
                self.challenge_header(),
                format!(
                    "Kerberos realm=\"{}\", targetname=\"sip/{}\", version={}",
                    self.cfg.realm, self.cfg.targetname, self.cfg.auth_version
                ),
            );
            return RegistrarOutcome::Respond(r);
        };
        let token = creds.params.get("gssapi-data");
        match token.as_deref() {
            Some("") => {
                // Round two: hand out a CHALLENGE under a fresh opaque.
                if !self.pending.has_room(now) {
                    return RegistrarOutcome::Respond(self.busy(req));
                }
                let opaque = self.rng.hex(8).to_ascii_uppercase();
                let server_challenge: [u8; 8] = self.secret.bytes();
                let dom = self
                    .cfg
                    .domain
                    .split('.')
                    .next()
                    .unwrap_or("DOMAIN")
                    .to_ascii_uppercase();
                let target_info = ntlm::server_target_info(
                    &dom,
                    "OCS-SIM",
                    &self.cfg.domain,
                    &self.cfg.targetname,
                    &self.cfg.domain,
                )
                .unwrap_or_default();
                let ch = ChallengeMessage {
                    flags: 0xE298_82F3,
                    server_challenge,
                    target_name: Vec::new(),
                    target_info,
                    version: Some(ntlm::VERSION_5_2_3790),
                };
                let Ok(b64) = ch.to_base64() else {
                    return RegistrarOutcome::Respond(self.reply(req, 500));
                };
                self.pending
                    .insert(opaque.clone(), PendingNtlm { server_challenge }, now);
                let v = format!(
                    "NTLM opaque=\"{opaque}\", gssapi-data=\"{b64}\", targetname=\"{}\", realm=\"{}\", version={}",
                    self.cfg.targetname, self.cfg.realm, self.cfg.auth_version
                );
                RegistrarOutcome::Respond(self.challenge(req, v))
            }
            Some(tok) => {
                let opaque = creds
                    .params
                    .get("opaque")
                    .map(|o| o.into_owned())
                    .unwrap_or_default();
                let Some(p) = self.pending.take(&opaque, now) else {
                    return self.restart_challenge(req);
                };
                let Ok(auth) = AuthenticateMessage::from_base64(tok) else {
                    return RegistrarOutcome::Respond(self.reply(req, 400));
                };
                let user = auth.user.to_ascii_lowercase();
                let Some(acct) = self.accounts.get(&user).cloned() else {
                    return self.restart_challenge(req);
                };
                if !acct.domain.is_empty() && !acct.domain.eq_ignore_ascii_case(&auth.domain) {
                    return self.restart_challenge(req);
                }
                let Ok(ok) = ntlm::verify_authenticate(&auth, &p.server_challenge, &acct.password)
                else {
                    return self.restart_challenge(req);
                };
                let mut sa = SecurityAssociation::new(
                    ok.security_context(),
                    &self.cfg.realm,
                    &self.cfg.targetname,
                    Some(&opaque),
                    self.cfg.auth_version,
                    HeaderName::AuthenticationInfo,
                );
                // From version 3 on the AUTHENTICATE request is signed too.
                if self.cfg.auth_version >= 3 && !matches!(sa.verify(req), Ok(true)) {
                    return RegistrarOutcome::Respond(self.reply(req, 403));
                }
                let resp = self.finish_register(req, &user, &acct, now, Some(&mut sa));
                self.adopt(user, opaque, sa);
                RegistrarOutcome::Respond(resp)
            }
            None => {
                // Signed refresh (no gssapi-data): verify against its SA.
                let opaque = creds
                    .params
                    .get("opaque")
                    .map(|o| o.into_owned())
                    .unwrap_or_default();
                self.signed_refresh(req, opaque, now)
                    .unwrap_or_else(|| self.restart_challenge(req))
            }
        }
    }

    /// A REGISTER signed with an established association: answered, or
    /// `None` when the association is unknown (challenge again).
    fn signed_refresh(
        &mut self,
        req: &Message,
        opaque: String,
        now: Instant,
    ) -> Option<RegistrarOutcome> {
        let (user, mut sa) = self.sas.remove(&opaque)?;
        if !matches!(sa.verify(req), Ok(true)) {
            self.sas.insert(opaque, (user, sa));
            return Some(RegistrarOutcome::Respond(self.reply(req, 401)));
        }
        let acct = self.accounts.get(&user).cloned()?;
        let resp = self.finish_register(req, &user, &acct, now, Some(&mut sa));
        self.sas.insert(opaque, (user, sa));
        Some(RegistrarOutcome::Respond(resp))
    }

    fn tls_dsk_challenge(&self, req: &Message, extra: &str) -> RegistrarOutcome {
        let sts = match self.tls_dsk.as_ref().and_then(|(_, s)| s.as_ref()) {
            Some(uri) => format!(", sts-uri=\"{uri}\""),
            None => String::new(),
        };
        let v = format!(
            "TLS-DSK {extra}realm=\"{}\", targetname=\"{}\", version={}{sts}",
            self.cfg.realm, self.cfg.targetname, self.cfg.auth_version
        );
        RegistrarOutcome::Respond(self.challenge(req, v))
    }

    /// TLS-DSK (MS-SIPAE 4.4): challenge; the client's two TLS flights,
    /// each answered with ours under one opaque; then the REGISTER signed
    /// with the new keys, whose client certificate names the user.
    fn register_tls_dsk(&mut self, req: &Message, now: Instant) -> RegistrarOutcome {
        let creds = credentials_of(req, "TLS-DSK");
        let Some(creds) = creds else {
            return self.tls_dsk_challenge(req, "");
        };
        let Some(config) = self.tls_dsk.as_ref().map(|(c, _)| c.clone()) else {
            return RegistrarOutcome::Respond(self.reply(req, 500));
        };
        let opaque = creds.params.get("opaque").map(|o| o.into_owned());
        let token = creds
            .params
            .get("gssapi-data")
            .map(|t| t.into_owned())
            .filter(|t| !t.is_empty());
        match (token, opaque) {
            (Some(tok), opaque) => {
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(tok.as_bytes())
                else {
                    return RegistrarOutcome::Respond(self.reply(req, 400));
                };
                let under_way = opaque.and_then(|o| {
                    let hs = self.pending_tls.take(&o, now)?;
                    Some((o, hs))
                });
                let (opaque, mut hs) = match under_way {
                    Some(p) => p,
                    None => {
                        if !self.pending_tls.has_room(now) {
                            return RegistrarOutcome::Respond(self.busy(req));
                        }
                        match crate::auth::tlsdsk::TlsDskServer::new(config) {
                            Ok(h) => (self.rng.hex(8).to_ascii_uppercase(), h),
                            Err(_) => return RegistrarOutcome::Respond(self.reply(req, 500)),
                        }
                    }
                };
                match hs.step(&bytes) {
                    Ok(out) => {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&out);
                        self.pending_tls.insert(opaque.clone(), hs, now);
                        self.tls_dsk_challenge(
                            req,
                            &format!("opaque=\"{opaque}\", gssapi-data=\"{b64}\", "),
                        )
                    }
                    // A handshake that fails (a certificate from another
                    // CA, a bad flight) starts over.
                    Err(_) => self.tls_dsk_challenge(req, ""),
                }
            }
            (None, Some(opaque)) => {
                if let Some(out) = self.signed_refresh(req, opaque.clone(), now) {
                    return out;
                }
                let Some(hs) = self.pending_tls.take(&opaque, now) else {
                    return self.tls_dsk_challenge(req, "");
                };
                let (Some(keys), Some(cert)) = (hs.keys(), hs.client_certificate()) else {
                    return self.tls_dsk_challenge(req, "");
                };
                let mut sa = SecurityAssociation::external(
                    Box::new(crate::auth::tlsdsk::KeysContext(keys.clone())),
                    "TLS-DSK",
                    &self.cfg.realm,
                    &self.cfg.targetname,
                    Some(&opaque),
                    self.cfg.auth_version,
                    HeaderName::AuthenticationInfo,
                );
                if !matches!(sa.verify(req), Ok(true)) {
                    return RegistrarOutcome::Respond(self.reply(req, 403));
                }
                // The certificate names the user (CN=user@domain); it must
                // be the user signing in.
                let from_user = from_user(req);
                let cert_user = certificate_user(cert);
                if cert_user.as_deref() != Some(from_user.as_str()) {
                    return RegistrarOutcome::Respond(self.reply(req, 403));
                }
                let Some(acct) = self.accounts.get(&from_user).cloned() else {
                    return RegistrarOutcome::Respond(self.reply(req, 403));
                };
                let resp = self.finish_register(req, &from_user, &acct, now, Some(&mut sa));
                self.adopt(from_user, opaque, sa);
                RegistrarOutcome::Respond(resp)
            }
            (None, None) => self.tls_dsk_challenge(req, ""),
        }
    }

    /// The Kerberos service a challenge names: `sip/` + the targetname.
    fn kerberos_target(&self) -> String {
        format!("sip/{}", self.cfg.targetname)
    }

    fn kerberos_challenge(&self, req: &Message) -> RegistrarOutcome {
        let v = format!(
            "Kerberos realm=\"{}\", targetname=\"{}\", version={}",
            self.cfg.realm,
            self.kerberos_target(),
            self.cfg.auth_version
        );
        RegistrarOutcome::Respond(self.challenge(req, v))
    }

    /// Kerberos (MS-SIPAE 3.2.5): challenge; the REGISTER with the AP-REQ,
    /// whose ticket must name the user signing in; the 200 OK signed with
    /// the session key. Later refreshes are signed.
    fn register_kerberos(&mut self, req: &Message, now: Instant) -> RegistrarOutcome {
        let creds = credentials_of(req, "Kerberos");
        let Some(creds) = creds else {
            return self.kerberos_challenge(req);
        };
        let token = creds
            .params
            .get("gssapi-data")
            .map(|t| t.into_owned())
            .filter(|t| !t.is_empty());
        let opaque = creds.params.get("opaque").map(|o| o.into_owned());
        let Some(token) = token else {
            if let Some(o) = opaque
                && let Some(out) = self.signed_refresh(req, o, now)
            {
                return out;
            }
            return self.kerberos_challenge(req);
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token.as_bytes()) else {
            return RegistrarOutcome::Respond(self.reply(req, 400));
        };
        let Some(accept) = self.kerberos.clone() else {
            return RegistrarOutcome::Respond(self.reply(req, 500));
        };
        let target = self.kerberos_target();
        let Ok((principal, ctx)) = (accept.0)(&target, &bytes) else {
            return RegistrarOutcome::Respond(self.reply(req, 403));
        };
        // The ticket names the user (alice@CONTOSO.COM): it must be the
        // user signing in.
        let from_user = from_user(req);
        let ticket_user = principal
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ticket_user != from_user {
            return RegistrarOutcome::Respond(self.reply(req, 403));
        }
        let Some(acct) = self.accounts.get(&from_user).cloned() else {
            return RegistrarOutcome::Respond(self.reply(req, 403));
        };
        let opaque = self.rng.hex(8).to_ascii_uppercase();
        let mut sa = SecurityAssociation::external(
            ctx,
            "Kerberos",
            &self.cfg.realm,
            &target,
            Some(&opaque),
            self.cfg.auth_version,
            HeaderName::AuthenticationInfo,
        );
        let resp = self.finish_register(req, &from_user, &acct, now, Some(&mut sa));
        self.adopt(from_user, opaque, sa);
        RegistrarOutcome::Respond(resp)
    }

    fn restart_challenge(&mut self, req: &Message) -> RegistrarOutcome {
        let v = format!(
            "NTLM realm=\"{}\", targetname=\"{}\", version={}",
            self.cfg.realm, self.cfg.targetname, self.cfg.auth_version
        );
        RegistrarOutcome::Respond(self.challenge(req, v))
    }

    fn register_digest(&mut self, req: &Message, now: Instant) -> RegistrarOutcome {
        let value = req
            .headers_named(HeaderName::Authorization)
            .chain(req.headers_named(HeaderName::ProxyAuthorization))
            .map(|h| h.value)
            .find(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("digest"));
        let fresh = |this: &mut Self, stale: bool| {
            let nonce = this.rng.hex(24);
            this.nonces.insert(nonce.clone(), now);
            let ch = DigestChallenge {
                realm: this.cfg.domain.clone(),
                nonce,
                opaque: None,
                qop: vec!["auth".into()],
                algorithm: digest::Algorithm::Md5,
                algorithm_explicit: true,
                stale,
            };
            RegistrarOutcome::Respond(this.challenge(req, ch.to_header_value()))
        };
        let Some(value) = value else {
            return fresh(self, false);
        };
        let Ok(auth) = DigestAuthorization::parse(value) else {
            return RegistrarOutcome::Respond(self.reply(req, 400));
        };
        let user = auth.username.to_ascii_lowercase();
        let Some(acct) = self.accounts.get(&user).cloned() else {
            return fresh(self, false);
        };
        let Some(issued) = self.nonces.get(&auth.nonce).copied() else {
            return fresh(self, true);
        };
        if digest::verify(&auth, "REGISTER", &acct.password).is_err() {
            return fresh(self, false);
        }
        if issued + self.cfg.nonce_lifetime <= now {
            return fresh(self, true);
        }
        RegistrarOutcome::Respond(self.finish_register(req, &user, &acct, now, None))
    }

    fn finish_register(
        &mut self,
        req: &Message,
        user: &str,
        acct: &Account,
        now: Instant,
        sa: Option<&mut SecurityAssociation>,
    ) -> Message {
        if let Some(pool) = acct.redirect.as_ref().or(self.cfg.redirect_to.as_ref()) {
            let mut r = self.reply(req, 301);
            r.insert_header(
                r.header_count() - 1,
                HeaderName::Contact,
                format!("<sip:{pool}>"),
            );
            if let Some(sa) = sa {
                let rand = self.rng.hex(8).to_ascii_uppercase();
                let _ = sa.sign(&mut r, &rand);
            }
            return r;
        }
        let from = req.from().ok();
        let aor = from
            .as_ref()
            .map(|f| f.uri_text.to_owned())
            .unwrap_or_else(|| format!("sip:{user}@{}", self.cfg.domain));
        let epid = from
            .as_ref()
            .and_then(|f| f.epid())
            .unwrap_or("")
            .to_owned();
        let expires = match req.expires().ok().flatten() {
            Some(0) => 0,
            Some(e) => e.clamp(60, self.cfg.expires),
            None => self.cfg.expires,
        };
        let gruu = gruu_for(&aor, &epid);
        let added = self
            .bindings
            .get(user)
            .is_none_or(|b| b.epid != epid || b.expires_at <= now);
        let to_tag = self.rng.hex(32).to_ascii_uppercase();
        let cid = (self.rng.below(9000) + 1000).to_string();
        let mut ok = build_register_ok(
            req,
            &RegisterOk {
                to_tag: &to_tag,
                display_name: None,
                received_cid: Some(&cid),
                expires,
                gruu: &gruu,
                keep_alive: self.cfg.keep_alive,
                server: &self.cfg.server,
                signed: sa.is_some(),
                added,
            },
        );
        if let Some(sa) = sa {
            let rand = self.rng.hex(8).to_ascii_uppercase();
            let _ = sa.sign(&mut ok, &rand);
        }
        if expires == 0 {
            self.bindings.remove(user);
        } else {
            let contact = req
                .contacts()
                .ok()
                .and_then(|c| match c {
                    Contacts::List(l) => l.first().map(|c| c.uri_text.to_owned()),
                    Contacts::Star => None,
                })
                .unwrap_or_default();
            let expires_at = now + Duration::from_secs(u64::from(expires));
            self.expiries.push(Reverse((expires_at, user.to_owned())));
            self.bindings.insert(
                user.to_owned(),
                Binding {
                    aor,
                    contact,
                    gruu,
                    epid,
                    expires_at,
                },
            );
        }
        ok
    }
}

/// The user part of a request's From (empty when it has none).
fn from_user(req: &Message) -> String {
    req.from()
        .ok()
        .map(|f| user_of(f.uri_text))
        .unwrap_or_default()
}

/// The request's credentials of `scheme` (Authorization or
/// Proxy-Authorization), if any.
fn credentials_of<'m>(req: &'m Message, scheme: &str) -> Option<crate::sip::AuthHeader<'m>> {
    req.authorization()
        .ok()
        .into_iter()
        .flatten()
        .chain(req.proxy_authorization().ok().into_iter().flatten())
        .find(|h| h.is_scheme(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ntlm::{Role, SecurityContext, SessionKeys};

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/ocs/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("vector")
    }

    /// T2 byte for byte: the registrar's 200 OK builder plus the server
    /// half of the T3 security association.
    #[test]
    fn reproduces_t2() {
        let t1 = Message::parse(&read("t1_register_request.sip")).expect("t1");
        let gruu = gruu_for("sip:user@cosmo.local", "c8ca638a15");
        assert_eq!(
            gruu,
            "sip:user@cosmo.local;opaque=user:epid:21nYNIVlkV-jtN6FPBU0fQAA;gruu"
        );
        let mut ok = build_register_ok(
            &t1,
            &RegisterOk {
                to_tag: "5E61CCD925D17E043D9A74835A88F664",
                display_name: Some("User"),
                received_cid: Some("2600"),
                expires: 7200,
                gruu: &gruu,
                keep_alive: 300,
                server: "RTC/3.5",
                signed: true,
                added: true,
            },
        );
        let esk: [u8; 16] = crate::auth::hex::decode("6742fbe37bb1946b49d86a525bd29a9b")
            .expect("hex")
            .try_into()
            .expect("16 bytes");
        let mut sa = SecurityAssociation::new(
            SecurityContext::new(SessionKeys::derive(&esk), Role::Server),
            "SIP Communications Service",
            "cosmo-ocs-r2.cosmo.local",
            Some("2BDBAC9D"),
            4,
            HeaderName::AuthenticationInfo,
        );
        sa.sign(&mut ok, "9616454F").expect("signs");
        let got = String::from_utf8(ok.to_bytes()).expect("utf8");
        let want = String::from_utf8(read("t2_register_200.sip")).expect("utf8");
        assert_eq!(got, want);
    }

    /// A REGISTER starting an NTLM handshake (the empty token), as a
    /// client that never comes back sends it.
    fn ntlm_start(n: usize) -> Message {
        let text = format!(
            "REGISTER sip:contoso.com SIP/2.0\r\n\
             Via: SIP/2.0/TCP 192.0.2.9:5061;branch=z9hG4bKhs{n}\r\n\
             From: <sip:alice@contoso.com>;tag=t{n}\r\n\
             To: <sip:alice@contoso.com>\r\n\
             Call-ID: hs{n}\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:192.0.2.9:5061;transport=tls>\r\n\
             Proxy-Authorization: NTLM qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"ocs-sim.contoso.com\", version=4, gssapi-data=\"\"\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("REGISTER")
    }

    fn status(o: RegistrarOutcome) -> u16 {
        match o {
            RegistrarOutcome::Respond(m) => m.status().unwrap_or(0),
            _ => 0,
        }
    }

    /// Handshakes started and abandoned fill at most the table; lapsed ones
    /// make room again, so abandoned handshakes cannot refuse everyone's
    /// sign-in for good (before: the NTLM table had no cap at all, and
    /// TLS-DSK's, once full, answered 503 until a restart).
    #[test]
    fn abandoned_handshakes_are_bounded_and_lapse() {
        let mut r = Registrar::new(
            RegistrarConfig::ocs("contoso.com"),
            Rng::from_seed(1),
            [2; 32],
        );
        r.add_user("alice", "CONTOSO", "pw");
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for the test's clock
        let t0 = Instant::now();
        for n in 0..MAX_NTLM_PENDING {
            assert_eq!(status(r.handle_request(&ntlm_start(n), t0)), 407, "{n}");
        }
        assert_eq!(r.handshakes_under_way(), MAX_NTLM_PENDING);
        let full = r.handle_request(&ntlm_start(MAX_NTLM_PENDING), t0);
        let RegistrarOutcome::Respond(m) = full else {
            panic!("no answer")
        };
        assert_eq!(m.status(), Some(503));
        assert_eq!(m.header("Retry-After"), Some("10"));
        // After the handshake deadline, a new sign-in gets its challenge.
        let later = t0 + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        assert_eq!(status(r.handle_request(&ntlm_start(0), later)), 407);
        assert_eq!(r.handshakes_under_way(), 1);
    }
}
