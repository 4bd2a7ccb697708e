//! The tokio driver's configuration: the session's settings plus the
//! driver's own (sockets, TLS trust, DNS, step deadlines, trace, the
//! address-book folder).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::addressbook::AddressBookConfig;
use super::conn::TlsSettings;
use crate::auth::mechanism::Authenticator;
use crate::client::AddressBookSchedule;
use crate::discovery::Transport;
use crate::endpoint::EndpointConfig;
use crate::policy::EffectivePolicy;

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
        }
    }

    /// The sans-IO session's configuration, with the address-book schedule
    /// from [`ClientConfig::address_book`].
    pub fn session(&self) -> crate::client::Config {
        let mut s = self.session.clone();
        s.address_book = self.address_book.as_ref().map(|a| AddressBookSchedule {
            initial_delay: a.initial_delay,
            url: a.url.clone(),
        });
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
}
