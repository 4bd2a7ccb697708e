//! The tokio driver's configuration: the session's settings plus the
//! driver's own (sockets, TLS trust, DNS, step deadlines, trace, the
//! address-book folder).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::addressbook::AddressBookConfig;
use super::conn::TlsSettings;
use super::http::SharedHttp;
use crate::auth::epid::Epid;
use crate::auth::mechanism::Authenticator;
use crate::client::AddressBookSchedule;
use crate::discovery::Transport;
use crate::discovery::{Dialect, ServerConfig};
use crate::endpoint::EndpointConfig;
use crate::error::Error;
use crate::policy::EffectivePolicy;
use crate::register::{Credentials, RegisterConfig};
use crate::sip::SipUri;
use std::path::PathBuf;

/// Everything the tokio driver needs: the session's settings (reached
/// through `Deref`: `cfg.endpoint`, `cfg.server`, `cfg.im`, ...) plus the
/// driver's own (sockets, TLS trust, DNS, step deadlines, trace, the
/// address-book folder).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The sans-IO session's settings ([`crate::client::Config`]).
    pub session: crate::client::Config,
    /// Transports discovery may pick.
    pub allowed: Vec<Transport>,
    /// TLS trust settings.
    pub tls: TlsSettings,
    /// A specific DNS server (tests); `None` uses the system's.
    pub nameserver: Option<SocketAddr>,
    /// How long one TCP connect may take (per address tried).
    pub connect_timeout: Duration,
    /// How long one TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long finding the server in DNS (SRV and A/AAAA) may take.
    pub dns_timeout: Duration,
    /// How long sending one message may block (a server that stops
    /// reading).
    pub send_timeout: Duration,
    /// A host security mechanism (Kerberos, SSPI) to prefer over NTLM.
    pub authenticator: Option<AuthenticatorFactory>,
    /// Write a SIP trace (every message sent and received, credentials
    /// redacted): text or pcap, rotated by size.
    pub trace: Option<super::trace::TraceConfig>,
    /// Address-book download (`None`: no download): the folder, and the
    /// schedule the session follows (the first run at a random time within
    /// `initial_delay` after sign-in).
    pub address_book: Option<AddressBookConfig>,
    /// Find the server by Lync/SfB autodiscover before DNS SRV (`None`:
    /// DNS only, as OCS 2007 R2 clients do). Only when no server is
    /// configured; when autodiscover finds nothing, DNS runs as before.
    pub autodiscover: Option<AutodiscoverSettings>,
    /// Provision and renew a TLS-DSK certificate when the server asks for
    /// one (Lync/SfB; `None`: never). See [`CertificateSettings`].
    pub certificates: Option<CertificateSettings>,
    /// The HTTP stack for the web services (autodiscover, CustomStateURL,
    /// the address book, certificate provisioning); `None`: the built-in
    /// one (feature `builtin-http`; a build without it, like the mobile
    /// one, then fails those requests saying so). A host supplies its own
    /// to use the platform's proxy settings and trust store, or to leave
    /// reqwest out of its build.
    pub http: Option<SharedHttp>,
}

/// Certificate provisioning ([`ClientConfig::certificates`]): when a TLS-DSK
/// challenge names the pool's Certificate Provisioning service and no fresh
/// certificate is set, the client gets a token from the pool's web ticket
/// service with the user's password, asks the service for a certificate for
/// a key made here, keeps it, and signs in with it; it renews it an hour
/// before it lapses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateSettings {
    /// The folder certificates are kept in (a [`super::CertStore`]: the
    /// key readable by its owner only); a fresh one found there is used
    /// without asking. `None`: kept in memory only.
    pub store: Option<std::path::PathBuf>,
}

/// How to autodiscover the server ([`ClientConfig::autodiscover`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutodiscoverSettings {
    /// Start here instead of `lyncdiscoverinternal.DOMAIN` and
    /// `lyncdiscover.DOMAIN` (e.g. the embedded server's URL).
    pub urls: Option<Vec<String>>,
}

impl std::ops::Deref for ClientConfig {
    type Target = crate::client::Config;

    fn deref(&self) -> &crate::client::Config {
        &self.session
    }
}

impl std::ops::DerefMut for ClientConfig {
    fn deref_mut(&mut self) -> &mut crate::client::Config {
        &mut self.session
    }
}

/// What the running driver keeps of a [`ClientConfig`]: its own settings.
/// The session's go to the session alone ([`ClientConfig::split`]); the
/// task held a second copy of them (about 1.4 KB per client, and the
/// password twice).
#[derive(Debug)]
pub(super) struct DriverSettings {
    pub(super) allowed: Vec<Transport>,
    pub(super) tls: TlsSettings,
    pub(super) nameserver: Option<SocketAddr>,
    pub(super) connect_timeout: Duration,
    pub(super) tls_handshake_timeout: Duration,
    pub(super) dns_timeout: Duration,
    pub(super) send_timeout: Duration,
    pub(super) address_book: Option<AddressBookConfig>,
    pub(super) autodiscover: Option<AutodiscoverSettings>,
    #[cfg(feature = "cert-provisioning")]
    pub(super) certificates: Option<CertificateSettings>,
    /// The host's HTTP stack, or the built-in one once a job needed it.
    pub(super) http: Option<SharedHttp>,
}

/// The schedule the session follows for the address-book download.
fn schedule(ab: Option<&AddressBookConfig>) -> Option<AddressBookSchedule> {
    ab.map(|a| AddressBookSchedule {
        initial_delay: a.initial_delay,
        url: a.url.clone(),
    })
}

/// Makes the host's [`Authenticator`] for a client (called once per
/// client start).
#[derive(Clone)]
pub struct AuthenticatorFactory(pub Arc<dyn Fn() -> Box<dyn Authenticator> + Send + Sync>);

impl std::fmt::Debug for AuthenticatorFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthenticatorFactory(..)")
    }
}

impl ClientConfig {
    /// Defaults around an endpoint configuration.
    pub fn new(endpoint: EndpointConfig) -> ClientConfig {
        ClientConfig {
            session: crate::client::Config::new(endpoint),
            allowed: vec![Transport::Tls, Transport::Tcp, Transport::Udp],
            tls: TlsSettings::default(),
            nameserver: None,
            connect_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            authenticator: None,
            trace: None,
            address_book: None,
            autodiscover: None,
            certificates: None,
            http: None,
        }
    }

    /// The session's settings (with the address-book schedule), the
    /// driver's, the authenticator factory and the trace settings, each
    /// once.
    pub(super) fn split(
        self,
    ) -> (
        crate::client::Config,
        DriverSettings,
        Option<AuthenticatorFactory>,
        Option<super::trace::TraceConfig>,
    ) {
        let ClientConfig {
            mut session,
            allowed,
            tls,
            nameserver,
            connect_timeout,
            tls_handshake_timeout,
            dns_timeout,
            send_timeout,
            authenticator,
            trace,
            address_book,
            autodiscover,
            certificates,
            http,
        } = self;
        session.address_book = schedule(address_book.as_ref());
        if certificates.is_some() {
            session.endpoint.register.provision_certificates = true;
        }
        let driver = DriverSettings {
            allowed,
            tls,
            nameserver,
            connect_timeout,
            tls_handshake_timeout,
            dns_timeout,
            send_timeout,
            address_book,
            autodiscover,
            #[cfg(feature = "cert-provisioning")]
            certificates,
            http,
        };
        (session, driver, authenticator, trace)
    }

    /// The sans-IO session's configuration, with the address-book schedule
    /// from [`ClientConfig::address_book`].
    pub fn session(&self) -> crate::client::Config {
        let mut s = self.session.clone();
        s.address_book = schedule(self.address_book.as_ref());
        s
    }

    /// Applies the effective client policy to the session's settings
    /// ([`crate::client::Config::apply_policy`]) and
    /// GalDownloadInitialDelay to the address-book download. Every front
    /// end (the CLI, the FFI facade) calls this rather than repeating the
    /// rules.
    pub fn apply_policy(&mut self, policy: EffectivePolicy) {
        if let Some(ab) = &mut self.address_book {
            ab.initial_delay = policy.gal_download_initial_delay().value;
        }
        self.session.apply_policy(policy);
    }
}

/// Builds a [`ClientConfig`] with typed setters; [`ClientConfigBuilder::build`]
/// checks everything at once and says what is wrong. From
/// [`ClientConfig::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientConfigBuilder {
    aor: String,
    dialect: Dialect,
    epid: Option<String>,
    credentials: Option<Credentials>,
    server: Option<(String, Transport)>,
    ca_files: Vec<PathBuf>,
    policy: Option<EffectivePolicy>,
    address_book: Option<PathBuf>,
    sign_in_timeout: Option<Option<Duration>>,
    retry_first_sign_in: bool,
    trace: Option<super::trace::TraceConfig>,
    autodiscover: Option<AutodiscoverSettings>,
}

impl ClientConfig {
    /// Starts a configuration for the user `aor` (`sip:alice@contoso.com`):
    /// OCS dialect, DNS discovery, an epid derived from the address
    /// ([`Epid::derive`]), no credentials (the client asks for them).
    pub fn builder(aor: &str) -> ClientConfigBuilder {
        ClientConfigBuilder {
            aor: aor.trim().to_owned(),
            dialect: Dialect::Ocs,
            epid: None,
            credentials: None,
            server: None,
            ca_files: Vec::new(),
            policy: None,
            address_book: None,
            sign_in_timeout: None,
            retry_first_sign_in: false,
            trace: None,
            autodiscover: None,
        }
    }
}

impl ClientConfigBuilder {
    /// The protocol dialect (default OCS 2007 R2; `Standard` for plain
    /// SIP/SIMPLE servers such as Kamailio).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The account and password (NTLM: `DOMAIN\\user`; Digest: the user
    /// name).
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// A fixed server, `HOST[:PORT]`, instead of DNS discovery.
    pub fn server(mut self, host_port: &str, transport: Transport) -> Self {
        self.server = Some((host_port.to_owned(), transport));
        self
    }

    /// The endpoint id the app keeps for this install (hex digits).
    pub fn epid(mut self, epid: &str) -> Self {
        self.epid = Some(epid.to_owned());
        self
    }

    /// An extra trusted CA certificate file (PEM), e.g. an enterprise CA.
    pub fn trusted_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// The effective client policy (group policy `.reg` files, in-band
    /// provisioning), applied as Communicator does
    /// ([`crate::client::Config::apply_policy`]).
    pub fn policy(mut self, policy: EffectivePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Download the address book into this folder.
    pub fn address_book(mut self, dir: impl Into<PathBuf>) -> Self {
        self.address_book = Some(dir.into());
        self
    }

    /// How long the first sign-in may take (`None`: no limit; default
    /// 60 s).
    pub fn sign_in_timeout(mut self, limit: Option<Duration>) -> Self {
        self.sign_in_timeout = Some(limit);
        self
    }

    /// Keep retrying when the first sign-in fails (default: it ends with
    /// the error).
    pub fn retry_first_sign_in(mut self, retry: bool) -> Self {
        self.retry_first_sign_in = retry;
        self
    }

    /// Write a SIP trace (credentials redacted).
    pub fn trace(mut self, trace: super::trace::TraceConfig) -> Self {
        self.trace = Some(trace);
        self
    }

    /// Find the server by Lync/SfB autodiscover before DNS SRV; `url`
    /// replaces the `lyncdiscover` lookups (e.g. the embedded server's).
    pub fn autodiscover(mut self, url: Option<&str>) -> Self {
        self.autodiscover = Some(AutodiscoverSettings {
            urls: url.map(|u| vec![u.to_owned()]),
        });
        self
    }

    /// Checks the settings and builds the configuration; the error names
    /// the setting and what is wrong with it.
    pub fn build(self) -> Result<ClientConfig, Error> {
        let misuse = |m: String| Error::misuse(crate::error::Misuse::BadArgument, m);
        let uri = SipUri::parse(&self.aor)
            .map_err(|e| misuse(format!("user address {:?}: {e}", self.aor)))?;
        if uri.user.is_none() {
            return Err(misuse(format!(
                "user address {:?}: no user part (expected sip:user@domain)",
                self.aor
            )));
        }
        let epid = match &self.epid {
            Some(e) => Epid::parse(e)?,
            None => Epid::derive(&self.aor, ""),
        };
        let mut reg = RegisterConfig::new(&self.aor, self.dialect, epid.as_str());
        reg.retry_first_sign_in = self.retry_first_sign_in;
        let mut cfg = ClientConfig::new(EndpointConfig::new(reg, self.credentials));
        if let Some((s, transport)) = &self.server {
            let (host, port) =
                crate::discovery::parse_host_port(s).map_err(|e| misuse(format!("server {e}")))?;
            cfg.server = Some(ServerConfig {
                host,
                port,
                transport: *transport,
            });
        }
        for path in &self.ca_files {
            cfg.tls
                .add_ca_file(path)
                .map_err(|e| misuse(format!("CA file {}: {e}", path.display())))?;
        }
        if let Some(dir) = self.address_book {
            cfg.address_book = Some(AddressBookConfig::new(dir));
        }
        if let Some(t) = self.sign_in_timeout {
            cfg.sign_in_timeout = t;
        }
        cfg.trace = self.trace;
        cfg.autodiscover = self.autodiscover;
        if let Some(p) = self.policy {
            cfg.apply_policy(p);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::ServerConfig;
    use crate::policy::InBand;
    use crate::policy::reg::parse_str;
    use crate::register::RegisterConfig;

    #[test]
    fn policy_reaches_every_setting_it_governs() {
        let reg = parse_str(
            "Windows Registry Editor Version 5.00\n\n\
             [HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\n\
             \"DisableIM\"=dword:00000001\n\
             \"EnableAppearOffline\"=dword:00000001\n\
             \"CustomStateURL\"=\"https://intranet/cs.xml\"\n\
             \"EnableSIPHighSecurityMode\"=dword:00000002\n\
             \"ConfigurationMode\"=dword:00000001\n\
             \"ServerAddressInternal\"=\"pool.contoso.com:5061\"\n\
             \"Transport\"=\"TCP\"\n\
             \"GalDownloadInitialDelay\"=dword:00000000\n",
        )
        .expect("reg");
        let policy = crate::policy::evaluate(&[("gp.reg", reg)], &InBand::new());
        let ep = EndpointConfig::new(
            RegisterConfig::new(
                "sip:alice@contoso.com",
                crate::discovery::Dialect::Ocs,
                "a1a1a1a1a1",
            ),
            None,
        );
        let mut cfg = ClientConfig::new(ep.clone());
        cfg.address_book = Some(super::super::AddressBookConfig::new("/tmp/abs"));
        cfg.apply_policy(policy.clone());
        assert_eq!(
            cfg.im.disable_im.clone().map(|p| p.from),
            Some(Some("gp.reg:4".into()))
        );
        assert!(cfg.presence.appear_offline.is_ok());
        assert_eq!(
            cfg.custom_state_url.as_deref(),
            Some("https://intranet/cs.xml")
        );
        assert!(cfg.high_security);
        let s = cfg.server.clone().expect("manual server");
        assert_eq!(
            (s.host.as_str(), s.port, s.transport),
            ("pool.contoso.com", Some(5061), Transport::Tcp)
        );
        assert_eq!(
            cfg.address_book.as_ref().expect("abs").initial_delay,
            Duration::ZERO
        );
        assert!(cfg.policy.disable_im().value);

        // What the host configured itself wins over the policy's defaults.
        let mut cfg = ClientConfig::new(ep);
        cfg.custom_state_url = Some("https://mine/cs.xml".into());
        cfg.server = Some(ServerConfig {
            host: "other".into(),
            port: None,
            transport: Transport::Tls,
        });
        cfg.apply_policy(policy);
        assert_eq!(cfg.custom_state_url.as_deref(), Some("https://mine/cs.xml"));
        assert_eq!(cfg.server.clone().map(|s| s.host), Some("other".into()));
    }

    #[test]
    fn the_builder_checks_every_setting_and_names_what_is_wrong() {
        let cfg = ClientConfig::builder("sip:alice@contoso.com")
            .credentials("CONTOSO\\alice", "pw")
            .server("pool.contoso.com:5061", Transport::Tls)
            .epid("C8CA638A15")
            .sign_in_timeout(Some(Duration::from_secs(5)))
            .build()
            .expect("valid");
        assert_eq!(cfg.endpoint.register.epid, "c8ca638a15");
        assert_eq!(cfg.sign_in_timeout, Some(Duration::from_secs(5)));
        let s = cfg.server.clone().expect("server");
        assert_eq!((s.host.as_str(), s.port), ("pool.contoso.com", Some(5061)));
        // Without an epid: the documented derivation.
        let cfg = ClientConfig::builder("sip:alice@contoso.com")
            .build()
            .expect("valid");
        assert_eq!(cfg.endpoint.register.epid, "f7bd051bd6");

        let err = |b: ClientConfigBuilder| b.build().expect_err("invalid").to_string();
        assert!(err(ClientConfig::builder("alice")).contains("user address \"alice\""));
        assert!(
            err(ClientConfig::builder("sip:contoso.com")).contains("no user part"),
            "{}",
            err(ClientConfig::builder("sip:contoso.com"))
        );
        assert!(
            err(ClientConfig::builder("sip:a@b.c").server("[::1", Transport::Tcp))
                .contains("server"),
        );
        assert!(err(ClientConfig::builder("sip:a@b.c").epid("xyz")).contains("epid \"xyz\""));
        assert!(
            err(ClientConfig::builder("sip:a@b.c").trusted_ca_file("/nonexistent/ca.pem"))
                .contains("CA file /nonexistent/ca.pem")
        );
    }
}
