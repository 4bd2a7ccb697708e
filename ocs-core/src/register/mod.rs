//! Registration: the REGISTER lifecycle, sans-IO.
//!
//! [`Registration`] builds REGISTER requests the way OC 2007 R2 does (or
//! plain RFC 3261 ones in the standard dialect), answers 401/407 challenges
//! with connectionless NTLMv2 (MS-SIPAE) or Digest, keeps the security
//! association that signs every later message, refreshes before expiry,
//! re-authenticates before the association's lifetime ends, follows 301
//! redirects, backs off after failures and un-registers on sign-out.
//!
//! It never sends anything itself: requests come out of
//! [`Registration::poll_request`] for the owner to run through a client
//! transaction, and the owner feeds back the final response
//! ([`Registration::handle_response`]) or the transaction failure
//! ([`Registration::handle_failure`]).

mod build;
mod challenge;
mod outcome;

use crate::log::log;
use build::registrar_uri;
pub use build::{RegisterParams, build_register};

use std::collections::VecDeque;

use base64::Engine;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth::authheader::{AuthHeader, FieldOrder, Scheme, SignatureParams, SipAuthorization};
use crate::auth::digest::DigestChallenge;
use crate::auth::drbg::SecretRng;
use crate::auth::epid::sip_instance_uuid;
use crate::auth::mechanism::{Authenticator, MechanismContext};
use crate::auth::ntlm::{self, AuthenticateParams, ChallengeMessage};
use crate::auth::sipae::SecurityAssociation;
use crate::discovery::{Dialect, Transport};
use crate::error::{Diagnostics, Error};
use crate::error::{Misuse, TransportFailure};
use crate::rng::Rng;
use crate::sip::{Contacts, HeaderName, Message, Method, SipUri};
use crate::transaction::TxFailure;

/// The methods OC 2007 R2 lists in its REGISTER Contact (T1).
pub const OC_CONTACT_METHODS: &str =
    "INVITE, MESSAGE, INFO, OPTIONS, BYE, CANCEL, NOTIFY, ACK, REFER, BENOTIFY";

/// The User-Agent OC 2007 R2 sends (T1).
pub const OC_USER_AGENT: &str =
    "UCCAPI/3.5.6907.0 OC/3.5.6907.0 (Microsoft Office Communicator 2007 R2)";

/// Credentials for NTLM or Digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (Digest) or NTLM account name.
    pub username: String,
    /// NTLM domain (empty for Digest, or for a UPN user name).
    pub domain: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Splits `DOMAIN\user` into domain and user; anything else is a user
    /// name with an empty domain.
    pub fn new(user: &str, password: &str) -> Credentials {
        let (domain, username) = match user.split_once('\\') {
            Some((d, u)) => (d.to_owned(), u.to_owned()),
            None => (String::new(), user.to_owned()),
        };
        Credentials {
            username,
            domain,
            password: password.to_owned(),
        }
    }
}

/// Registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterConfig {
    /// The user's address of record, e.g. `sip:alice@contoso.com`.
    pub aor: String,
    /// OCS (NTLM, epid, GRUU, ms-keep-alive) or standard SIP.
    pub dialect: Dialect,
    /// The endpoint id (10 hex digits in OC); `+sip.instance` derives from it.
    pub epid: String,
    /// The opaque token OC puts in its Contact URI.
    pub ms_opaque: String,
    /// User-Agent header.
    pub user_agent: String,
    /// Requested registration lifetime (`None`: let the server choose, as
    /// OC does; the standard dialect defaults to 3600).
    pub expires: Option<u32>,
    /// Refresh this long before expiry (capped at half the lifetime).
    pub refresh_margin: Duration,
    /// Re-authenticate from scratch this long after a security association
    /// was established (MS-SIPAE: 8 h minus at least 5 min).
    pub sa_lifetime: Duration,
    /// First retry delay after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// NTLM workstation name.
    pub workstation: String,
    /// Keep retrying (with back-off) when the first sign-in fails. Off by
    /// default: until a sign-in has succeeded once, a failure (refused,
    /// unreachable, timed out) ends sign-in with that error, so a wrong
    /// address or a dead server is reported instead of retried forever.
    /// After a successful sign-in, losses are always retried.
    pub retry_first_sign_in: bool,
    /// Answer only challenges of this scheme (`TLS-DSK`, `NTLM`, `Digest`,
    /// `Kerberos`; case-insensitive); `None` picks in Lync's order among
    /// those offered (the host's mechanism, then NTLM, then Digest). A
    /// server that does not offer it ends sign-in with
    /// [`AuthFailure::NoUsableScheme`](crate::error::AuthFailure).
    pub only_scheme: Option<String>,
    /// Most 301/302 redirects followed in a row before sign-in fails with
    /// "redirect loop" (a Director sends a user on once, to the home pool).
    pub max_redirects: u32,
    /// How long one REGISTER transaction may wait for its final answer
    /// (the transaction's own Timer F is 32 s).
    pub register_timeout: Duration,
    /// The host can provision TLS-DSK certificates (Lync/SfB): when a
    /// TLS-DSK challenge names a provisioning service (`sts-uri`) and the
    /// host's certificate is missing or has less than
    /// [`CERT_RENEW_BEFORE`] left, sign-in pauses with
    /// [`RegistrationEvent::CertificateNeeded`]; a certificate in use is
    /// renewed that long before it lapses. Off by default.
    pub provision_certificates: bool,
}

impl RegisterConfig {
    /// Defaults for a user and dialect.
    pub fn new(aor: &str, dialect: Dialect, epid: &str) -> RegisterConfig {
        RegisterConfig {
            aor: aor.to_owned(),
            dialect,
            epid: epid.to_owned(),
            ms_opaque: "d3470f2e1d".to_owned(),
            user_agent: match dialect {
                Dialect::Ocs => OC_USER_AGENT.to_owned(),
                _ => format!("ocs/{}", env!("CARGO_PKG_VERSION")),
            },
            expires: match dialect {
                Dialect::Ocs => None,
                _ => Some(3600),
            },
            refresh_margin: Duration::from_secs(30),
            sa_lifetime: Duration::from_secs(8 * 3600 - 5 * 60),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            workstation: "OCS-CLIENT".to_owned(),
            retry_first_sign_in: false,
            only_scheme: None,
            max_redirects: 3,
            register_timeout: Duration::from_secs(32),
            provision_certificates: false,
        }
    }
}

/// Where this endpoint sits on the connection to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTransport {
    /// Transport of the connection.
    pub transport: Transport,
    /// Our address as the server sees it (or our socket's address).
    pub addr: SocketAddr,
}

/// Why the app is asked for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsReason {
    /// None were configured (single sign-on is not available here).
    Missing,
    /// The server refused the ones given.
    Rejected,
}

/// A server to move to after a 301/302.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Host from the Contact.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// `transport=tcp` means TCP; anything else TLS (OCS pools).
    pub transport: Transport,
}

/// What the registration tells its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// Registered (or refreshed).
    Registered {
        /// The GRUU to use as Contact from now on (OCS).
        gruu: Option<String>,
        /// Lifetime the server granted, seconds.
        expires: u32,
        /// Keep-alive interval from ms-keep-alive.
        keep_alive: Option<Duration>,
        /// True for a refresh of an existing registration.
        refresh: bool,
        /// Auth scheme in use (`NTLM`, `Digest` or empty).
        auth_scheme: String,
        /// MS-SIPAE authentication version (0 without NTLM).
        auth_version: u32,
    },
    /// The app must supply credentials ([`Registration::set_credentials`]).
    CredentialsNeeded {
        /// The realm asking.
        realm: String,
        /// Why.
        reason: CredentialsReason,
    },
    /// The host must provision a TLS-DSK certificate from `sts_uri` (the
    /// Certificate Provisioning service the server's challenge named) and
    /// give it with [`Registration::provide_authenticator`], or report
    /// [`Registration::certificate_failed`]. With `renewal` the session
    /// goes on meanwhile (the certificate in use lapses within
    /// [`CERT_RENEW_BEFORE`]); without, sign-in waits.
    CertificateNeeded {
        /// The provisioning service's URL.
        sts_uri: String,
        /// True when a certificate in use is to be replaced.
        renewal: bool,
    },
    /// The server sent us elsewhere: connect there and register again.
    Redirected(Redirect),
    /// A retry is scheduled after a temporary failure.
    RetryScheduled {
        /// When.
        at: Instant,
        /// What went wrong.
        error: Error,
    },
    /// Registration failed for good.
    Failed(Error),
    /// Signed out: by us (`by_server` false) or forced by the server.
    SignedOut {
        /// True for a server-initiated sign-out.
        by_server: bool,
        /// The reason the server gave.
        reason: Option<String>,
    },
}

/// Registration state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegState {
    /// Not started.
    Idle,
    /// A REGISTER exchange is under way.
    Registering,
    /// Registered.
    Registered,
    /// Waiting for the app's credentials.
    WaitingForCredentials,
    /// Waiting to retry.
    WaitingToRetry,
    /// Un-registering.
    Unregistering,
    /// Signed out (by us or the server), redirected, or failed.
    Done,
}

enum AuthState {
    None,
    /// NTLM: sent the empty token, waiting for the CHALLENGE.
    NtlmStarted,
    /// NTLM: sent AUTHENTICATE; the association is in `sa`.
    NtlmAuthenticated,
    /// A host mechanism (Kerberos, SSPI) mid-handshake: the context waits
    /// for the server's 200 OK to become an association.
    External {
        ctx: Box<dyn MechanismContext>,
        header: HeaderName,
        realm: String,
        targetname: String,
        version: u32,
        rounds: u32,
    },
    /// A host mechanism's association is established (in `sa`).
    ExternalAuthenticated,
    /// Digest: answering this challenge.
    Digest {
        header: HeaderName,
        challenge: DigestChallenge,
        nc: u32,
        answered_nonce: String,
    },
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthState::None => "None",
            AuthState::NtlmStarted => "NtlmStarted",
            AuthState::NtlmAuthenticated => "NtlmAuthenticated",
            AuthState::External { .. } => "External",
            AuthState::ExternalAuthenticated => "ExternalAuthenticated",
            AuthState::Digest { .. } => "Digest",
        })
    }
}

/// The registration state machine. See the module docs.
pub struct Registration {
    cfg: RegisterConfig,
    creds: Option<Credentials>,
    local: Option<LocalTransport>,
    rng: Rng,
    secret: SecretRng,
    wall0: (Instant, SystemTime),
    call_id: String,
    tag: String,
    cseq: u32,
    state: RegState,
    auth: AuthState,
    sa: Option<SecurityAssociation>,
    sa_since: Option<Instant>,
    gruu: Option<String>,
    expires: u32,
    keep_alive: Option<Duration>,
    allow_events: Vec<String>,
    remote_user: bool,
    registered_once: bool,
    in_flight: bool,
    attempt: u32,
    refresh_at: Option<Instant>,
    reauth_at: Option<Instant>,
    retry_at: Option<Instant>,
    requests: VecDeque<Message>,
    events: VecDeque<RegistrationEvent>,
    authenticator: Option<Box<dyn Authenticator>>,
    /// The last Digest challenge to a non-REGISTER request, its header and
    /// nonce count, for pre-emptive credentials.
    request_digest: Option<(HeaderName, DigestChallenge, u32)>,
    /// Challenges since the last success: a server that never
    /// lets us in must not keep us sending REGISTERs forever.
    challenges: u32,
    /// Where the redirects since the last success sent us.
    redirects: Vec<String>,
    /// Which scheme the last challenge was answered with, and why.
    auth_choice: Option<String>,
    /// The Certificate Provisioning URL the last TLS-DSK challenge named.
    sts_uri: Option<String>,
    /// Why provisioning a certificate failed (the next challenge then
    /// goes on without TLS-DSK).
    provision_error: Option<String>,
    /// When to ask for the certificate in use to be renewed.
    renew_at: Option<Instant>,
}

/// How much validity a TLS-DSK certificate needs to be used; one with
/// less is renewed first (SIPE's rule: an hour).
pub const CERT_RENEW_BEFORE: Duration = Duration::from_secs(3600);

/// How many challenges in a row a handshake may take before the
/// credentials are considered refused: NTLM needs two (empty token, then
/// the CHALLENGE), Digest one plus one for a stale nonce, TLS-DSK three
/// (the challenge, then the server's two TLS flights).
const MAX_CHALLENGES: u32 = 2;
/// The same for a host mechanism (TLS-DSK, Kerberos).
const MAX_EXTERNAL_CHALLENGES: u32 = 3;

/// The longest Retry-After honoured; larger values are capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("aor", &self.cfg.aor)
            .field("state", &self.state)
            .field("auth", &self.auth)
            .field("gruu", &self.gruu)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// A registration for `cfg`. `rng` provides tags and Call-IDs,
    /// `entropy` seeds NTLM secrets, and `(now, wall)` anchors the wall
    /// clock NTLM timestamps need (the core never reads clocks).
    pub fn new(
        cfg: RegisterConfig,
        creds: Option<Credentials>,
        mut rng: Rng,
        entropy: [u8; 32],
        now: Instant,
        wall: SystemTime,
    ) -> Registration {
        let call_id = rng.call_id();
        let tag = rng.tag();
        Registration {
            cfg,
            creds,
            local: None,
            rng,
            secret: SecretRng::new(entropy),
            wall0: (now, wall),
            call_id,
            tag,
            cseq: 0,
            state: RegState::Idle,
            auth: AuthState::None,
            sa: None,
            sa_since: None,
            gruu: None,
            expires: 0,
            keep_alive: None,
            allow_events: Vec::new(),
            remote_user: false,
            registered_once: false,
            in_flight: false,
            attempt: 0,
            refresh_at: None,
            reauth_at: None,
            retry_at: None,
            requests: VecDeque::new(),
            events: VecDeque::new(),
            authenticator: None,
            request_digest: None,
            challenges: 0,
            redirects: Vec::new(),
            auth_choice: None,
            sts_uri: None,
            provision_error: None,
            renew_at: None,
        }
    }

    /// Plugs in a host mechanism (Kerberos, SSPI). When a challenge offers
    /// its scheme, it is used in preference to the built-in NTLM and Digest.
    pub fn set_authenticator(&mut self, authenticator: Box<dyn Authenticator>) {
        self.authenticator = Some(authenticator);
    }

    /// The certificate asked for by [`RegistrationEvent::CertificateNeeded`],
    /// as an authenticator: sign-in goes on with it, or a registration in
    /// use authenticates again with it at once.
    pub fn provide_authenticator(
        &mut self,
        authenticator: Box<dyn Authenticator>,
        now: Instant,
    ) -> Result<(), Error> {
        self.authenticator = Some(authenticator);
        self.provision_error = None;
        match self.state {
            RegState::WaitingForCredentials => self.resume_sign_in(now)?,
            // A REGISTER on the wire finishes first (the timer then fires).
            RegState::Registered if self.in_flight => self.reauth_at = Some(now),
            RegState::Registered => {
                log!(INFO, "re-authenticating with the renewed certificate");
                self.reauthenticate(now);
            }
            _ => {}
        }
        Ok(())
    }

    /// Provisioning the certificate failed: sign-in goes on without
    /// TLS-DSK (NTLM when offered and a password is set), and if nothing
    /// else is usable it fails naming `error`. A renewal that failed is
    /// asked for again when the certificate is due to be re-used.
    pub fn certificate_failed(&mut self, error: String, now: Instant) -> Result<(), Error> {
        log!(WARN, "certificate provisioning failed: {error}");
        self.provision_error = Some(error);
        if self.state == RegState::WaitingForCredentials {
            self.resume_sign_in(now)?;
        }
        Ok(())
    }

    /// A sign-in that waited for the host (credentials, a certificate)
    /// starts over with a fresh allowance of challenges.
    fn resume_sign_in(&mut self, now: Instant) -> Result<(), Error> {
        self.challenges = 0;
        self.auth = AuthState::None;
        self.sa = None;
        self.register(now)
    }

    // ----- getters -------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> RegState {
        self.state
    }

    /// True while registered.
    pub fn is_registered(&self) -> bool {
        self.state == RegState::Registered
    }

    /// The GRUU from the last 200 OK (OCS).
    pub fn gruu(&self) -> Option<&str> {
        self.gruu.as_deref()
    }

    /// Keep-alive interval from ms-keep-alive.
    pub fn keep_alive(&self) -> Option<Duration> {
        self.keep_alive
    }

    /// Events the registrar allows subscribing to (Allow-Events).
    pub fn allow_events(&self) -> &[String] {
        &self.allow_events
    }

    /// True when the server flagged us as signed in through an Edge
    /// (`ms-user-logon-data: RemoteUser`).
    pub fn is_remote_user(&self) -> bool {
        self.remote_user
    }

    /// The security association, once NTLM authentication succeeded.
    pub fn security(&self) -> Option<&SecurityAssociation> {
        self.sa.as_ref()
    }

    /// Which scheme the last challenge was answered with, what the server
    /// offered, and why (`TLS-DSK (offered: TLS-DSK, NTLM): ...`).
    pub fn auth_choice(&self) -> Option<&str> {
        self.auth_choice.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &RegisterConfig {
        &self.cfg
    }

    /// The From tag used for REGISTER.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The Call-ID reused by every (re-)REGISTER.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    // ----- commands ------------------------------------------------------

    /// The transport is up at `local`. Call before [`Registration::register`]
    /// and again after every reconnect.
    pub fn set_local(&mut self, local: LocalTransport, now: Instant) {
        self.local = Some(local);
        // A retry that fell due while disconnected goes out now.
        if self.state == RegState::Registering && !self.in_flight {
            self.send_register(now, None);
        }
    }

    /// Retries right away instead of waiting out the back-off (the network
    /// changed, so the old delay means nothing).
    pub fn retry_now(&mut self, now: Instant) {
        if self.state == RegState::WaitingToRetry {
            self.retry_at = Some(now);
        }
    }

    /// The connection went away; REGISTERs wait for the next one.
    pub fn clear_local(&mut self) {
        self.local = None;
    }

    /// True when the registration has something to send but no connection
    /// (the driver should connect).
    pub fn needs_connection(&self) -> bool {
        self.local.is_none() && self.state == RegState::Registering
    }

    /// Starts (or restarts) registration.
    /// Without a connection the REGISTER waits for
    /// [`Registration::set_local`] ([`Registration::needs_connection`] says so).
    pub fn register(&mut self, now: Instant) -> Result<(), Error> {
        if matches!(self.state, RegState::Registering | RegState::Unregistering) && self.in_flight {
            return Err(Error::misuse(
                Misuse::WrongState,
                "a REGISTER is already in flight",
            ));
        }
        self.refresh_at = None;
        self.retry_at = None;
        self.state = RegState::Registering;
        self.send_register(now, None);
        Ok(())
    }

    /// Supplies credentials (after [`RegistrationEvent::CredentialsNeeded`])
    /// and starts over with them.
    pub fn set_credentials(&mut self, creds: Credentials, now: Instant) -> Result<(), Error> {
        self.creds = Some(creds);
        if self.state == RegState::WaitingForCredentials {
            return self.resume_sign_in(now);
        }
        // New credentials get a fresh allowance of challenges.
        self.challenges = 0;
        self.auth = AuthState::None;
        self.sa = None;
        Ok(())
    }

    /// Un-registers (Expires: 0). A [`RegistrationEvent::SignedOut`]
    /// follows when the server answers or the transaction fails.
    pub fn unregister(&mut self, now: Instant) {
        self.refresh_at = None;
        self.reauth_at = None;
        self.retry_at = None;
        if self.registered_once && self.local.is_some() && self.state == RegState::Registered {
            self.state = RegState::Unregistering;
            self.send_register(now, Some(0));
        } else {
            self.finish_sign_out(false, None);
        }
    }

    /// The connection dropped: forget the association (the server may have
    /// restarted) and retry with back-off.
    pub fn handle_connection_lost(&mut self, now: Instant) {
        if matches!(self.state, RegState::Done | RegState::Idle) {
            return;
        }
        if self.state == RegState::Unregistering {
            self.finish_sign_out(false, None);
            return;
        }
        self.in_flight = false;
        self.schedule_retry(
            now,
            None,
            Error::transport(TransportFailure::ConnectionLost, "connection lost"),
        );
    }

    // ----- inputs ----------------------------------------------------------

    /// A final (or provisional) response to our REGISTER.
    pub fn handle_response(&mut self, resp: &Message, now: Instant) {
        let Some(code) = resp.status() else { return };
        if code < 200 {
            return;
        }
        self.in_flight = false;
        if self.state == RegState::Unregistering {
            // A registrar that challenges the un-REGISTER (Digest nonces go
            // stale) gets one answer, so the binding really goes away.
            if matches!(code, 401 | 407) && self.challenges == 0 {
                self.challenges += 1;
                self.on_challenge(resp, code, now);
                if self.state == RegState::Unregistering && self.in_flight {
                    return;
                }
            }
            self.finish_sign_out(false, None);
            return;
        }
        if matches!(code, 401 | 407) {
            self.challenges += 1;
            let limit = if self.authenticator.is_some() {
                MAX_EXTERNAL_CHALLENGES
            } else {
                MAX_CHALLENGES
            };
            if self.challenges > limit {
                let realm = resp
                    .www_authenticate()
                    .ok()
                    .into_iter()
                    .flatten()
                    .chain(resp.proxy_authenticate().ok().into_iter().flatten())
                    .find_map(|c| c.params.get("realm").map(|r| r.into_owned()))
                    .unwrap_or_default();
                self.challenges = 0;
                return self.need_credentials(&realm, CredentialsReason::Rejected);
            }
        }
        match code {
            200..=299 => self.on_success(resp, now),
            401 | 407 => self.on_challenge(resp, code, now),
            301 | 302 => self.on_redirect(resp),
            423 => {
                let min = resp.min_expires().ok().flatten().unwrap_or(3600);
                // Asking again with what was already refused would loop.
                if self.cfg.expires.is_some_and(|e| e >= min) {
                    return self.fail(Error::rejected(resp));
                }
                self.cfg.expires = Some(min);
                self.send_register(now, None);
            }
            408 | 480 | 500 | 503 | 504 => {
                let after = resp
                    .retry_after()
                    .ok()
                    .flatten()
                    .map(|r| Duration::from_secs(u64::from(r.seconds)).min(MAX_RETRY_AFTER));
                self.schedule_retry(now, after, Error::rejected(resp));
            }
            _ => self.fail(Error::rejected(resp)),
        }
    }

    /// Our REGISTER's transaction failed (timeout or transport error).
    pub fn handle_failure(&mut self, failure: TxFailure, now: Instant) {
        self.in_flight = false;
        if self.state == RegState::Unregistering {
            self.finish_sign_out(false, None);
            return;
        }
        let error = match failure {
            TxFailure::Timeout => Error::transport(
                TransportFailure::TimedOut,
                format!(
                    "REGISTER got no final answer within {}",
                    crate::error::show_duration(self.transaction_timeout())
                ),
            ),
            other => Error::transport(
                TransportFailure::of(&other),
                format!("REGISTER could not be sent: {other:?}"),
            ),
        };
        self.schedule_retry(now, None, error);
    }

    /// How long a REGISTER may wait for its answer
    /// ([`RegisterConfig::register_timeout`]).
    pub fn transaction_timeout(&self) -> Duration {
        self.cfg.register_timeout
    }

    /// The driver could not reach any server (DNS, TCP connect or TLS
    /// handshake failed or timed out): retried with back-off, or, before
    /// the first successful sign-in, the end of sign-in with this error.
    pub fn handle_connect_failed(&mut self, error: Error, now: Instant) {
        match self.state {
            RegState::Done | RegState::Idle => {}
            RegState::Unregistering => self.finish_sign_out(false, None),
            _ => {
                self.in_flight = false;
                self.schedule_retry(now, None, error);
            }
        }
    }

    /// True once a sign-in has succeeded (later failures are retried).
    pub fn has_signed_in(&self) -> bool {
        self.registered_once
    }

    /// A NOTIFY for `registration-notify`: the server signs us out.
    /// Returns true when it was one (the owner answers it 200 OK).
    pub fn handle_registration_notify(&mut self, req: &Message) -> bool {
        if !is_registration_notify(req) {
            return false;
        }
        let body = String::from_utf8_lossy(req.body()).into_owned();
        let mut reason = body.trim().to_owned();
        if let Some(d) = Diagnostics::from_message(req) {
            reason = format!("{reason}: {d}");
        }
        self.refresh_at = None;
        self.reauth_at = None;
        self.retry_at = None;
        self.sa = None;
        self.finish_sign_out(true, Some(reason));
        true
    }

    /// Advances timers up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.state = RegState::Registering;
            self.auth = AuthState::None;
            self.sa = None;
            self.send_register(now, None);
        }
        if self.reauth_at.is_some_and(|t| t <= now) && !self.in_flight {
            // MS-SIPAE: a fresh handshake before the association expires.
            log!(
                INFO,
                "re-authenticating: the security association is due for renewal"
            );
            self.reauthenticate(now);
        }
        if self.renew_at.is_some_and(|t| t <= now) {
            self.renew_at = None;
            if let Some(sts_uri) = self.sts_uri.clone() {
                log!(INFO, "the TLS-DSK certificate is due for renewal");
                self.events.push_back(RegistrationEvent::CertificateNeeded {
                    sts_uri,
                    renewal: true,
                });
            }
        }
        if self.refresh_at.is_some_and(|t| t <= now) && !self.in_flight {
            log!(DEBUG, "refreshing the registration before it expires");
            self.refresh_at = None;
            self.send_register(now, None);
        }
    }

    // ----- outputs ---------------------------------------------------------

    /// The next REGISTER to send (already signed where needed).
    pub fn poll_request(&mut self) -> Option<Message> {
        crate::queue::take_next(&mut self.requests)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        crate::queue::take_next(&mut self.events)
    }

    /// When [`Registration::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.refresh_at,
            self.reauth_at,
            self.retry_at,
            self.renew_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Signs an outgoing non-REGISTER message with the association, if any.
    pub fn sign(&mut self, msg: &mut Message) -> Result<(), Error> {
        let rand = self.rng.hex(8);
        if let Some(sa) = &mut self.sa {
            sa.sign(msg, &rand)?;
        }
        Ok(())
    }

    // ----- internals -------------------------------------------------------

    fn wall_now(&self, now: Instant) -> SystemTime {
        self.wall0.1 + now.saturating_duration_since(self.wall0.0)
    }

    /// The next REGISTER of this registration (next CSeq, a new branch),
    /// or `None` without a connection.
    fn next_register(
        &mut self,
        expires: Option<u32>,
        auth: Option<(HeaderName, String)>,
    ) -> Option<Message> {
        let local = self.local?;
        self.cseq += 1;
        let branch = self.rng.branch();
        Some(build_register(&RegisterParams {
            dialect: self.cfg.dialect,
            aor: &self.cfg.aor,
            local,
            tag: &self.tag,
            epid: &self.cfg.epid,
            ms_opaque: &self.cfg.ms_opaque,
            call_id: &self.call_id,
            cseq: self.cseq,
            branch: Some(&branch),
            user_agent: &self.cfg.user_agent,
            expires,
            auth,
        }))
    }

    fn send_register(&mut self, now: Instant, expires: Option<u32>) {
        let expires = expires.or(self.cfg.expires);
        let Some(mut msg) = self.next_register(expires, None) else {
            return;
        };
        // Signed refresh (NTLM) or Digest with the next nonce count.
        match &mut self.auth {
            AuthState::NtlmAuthenticated | AuthState::ExternalAuthenticated => {
                let rand = self.rng.hex(8);
                if let Some(sa) = &mut self.sa
                    && let Err(e) = sa.sign(&mut msg, &rand)
                {
                    self.fail(Error::Parse(e));
                    return;
                }
            }
            AuthState::Digest {
                header,
                challenge,
                nc,
                ..
            } => {
                *nc += 1;
                let header = header.clone();
                let challenge = challenge.clone();
                let n = *nc;
                if let Some(v) = self.digest_value(&challenge, n) {
                    msg.set_header(header, v);
                    // Content-Length stays last.
                    msg.remove_headers(HeaderName::ContentLength);
                    msg.push_header(HeaderName::ContentLength, "0");
                }
            }
            _ => {}
        }
        let _ = now;
        self.in_flight = true;
        self.requests.push_back(msg);
    }

    fn schedule_retry(&mut self, now: Instant, after: Option<Duration>, error: Error) {
        if !self.registered_once && !self.cfg.retry_first_sign_in {
            return self.fail(error);
        }
        let delay = match after {
            Some(d) => d,
            None => {
                // Jittered exponential back-off: base·2^attempt, ±50 %.
                let base = self
                    .cfg
                    .min_backoff
                    .saturating_mul(1u32 << self.attempt.min(16))
                    .min(self.cfg.max_backoff);
                let ms = base.as_millis() as u64;
                Duration::from_millis(ms / 2 + self.rng.below(ms.max(1)))
            }
        };
        self.attempt = self.attempt.saturating_add(1);
        let at = now + delay;
        self.state = RegState::WaitingToRetry;
        self.refresh_at = None;
        self.reauth_at = None;
        self.retry_at = Some(at);
        self.sa = None;
        self.auth = AuthState::None;
        self.events
            .push_back(RegistrationEvent::RetryScheduled { at, error });
    }

    fn fail(&mut self, error: Error) {
        self.state = RegState::Done;
        self.in_flight = false;
        self.timers_off();
        self.sa = None;
        self.events.push_back(RegistrationEvent::Failed(error));
    }

    /// A fresh handshake while registered.
    fn reauthenticate(&mut self, now: Instant) {
        self.reauth_at = None;
        self.refresh_at = None;
        self.sa = None;
        self.auth = AuthState::None;
        self.send_register(now, None);
    }

    fn timers_off(&mut self) {
        self.refresh_at = None;
        self.reauth_at = None;
        self.retry_at = None;
        self.renew_at = None;
    }

    fn finish_sign_out(&mut self, by_server: bool, reason: Option<String>) {
        self.state = RegState::Done;
        self.timers_off();
        self.events
            .push_back(RegistrationEvent::SignedOut { by_server, reason });
    }
}

/// Windows FILETIME (100 ns ticks since 1601-01-01) for NTLM blobs.
pub(crate) fn filetime(t: SystemTime) -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

/// True for the server's `Event: registration-notify` NOTIFY/BENOTIFY
/// (MS-SIPREGE: it ends or changes our registration).
pub fn is_registration_notify(req: &Message) -> bool {
    req.event()
        .ok()
        .flatten()
        .is_some_and(|e| e.value.eq_ignore_ascii_case("registration-notify"))
}
