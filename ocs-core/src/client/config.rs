//! The session's settings and how an effective client policy maps onto
//! them.

use super::*;

/// The session settings (everything but I/O: sockets, TLS trust, DNS
/// servers and HTTP belong to the driver).
#[derive(Debug, Clone)]
pub struct Config {
    /// The endpoint's settings (user, dialect, credentials, REGISTER
    /// deadline, retries before the first sign-in, ...).
    pub endpoint: EndpointConfig,
    /// A manually configured server; `None`: the driver runs DNS discovery.
    pub server: Option<ServerConfig>,
    /// Instant messaging settings (dialect, DisableIM, idle timeout).
    pub im: ImConfig,
    /// Presence settings (dialect, EnableAppearOffline, lifetimes).
    pub presence: PresenceConfig,
    /// The effective policy (shown by [`Client::snapshot`]).
    pub policy: EffectivePolicy,
    /// The `CustomStateURL` policy (shown by [`Client::snapshot`]).
    pub custom_state_url: Option<String>,
    /// Whose `CustomStateURL` rules apply.
    pub custom_state_client: ClientVersion,
    /// SIP high-security mode: the custom-states URL must be https.
    pub high_security: bool,
    /// How long the whole first sign-in may take, redirects included
    /// (`None`: no limit); it stops while the app is asked for credentials.
    pub sign_in_timeout: Option<Duration>,
    /// How long sign-out waits for the server before giving up.
    pub sign_out_timeout: Duration,
    /// Address-book downloads (`None`: none). The driver does the HTTP and
    /// keeps the files; the Client decides when and from where.
    pub address_book: Option<AddressBookSchedule>,
}

/// When and from where the address book is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookSchedule {
    /// The first download runs at a random time within this after sign-in
    /// (GalDownloadInitialDelay; zero: at once).
    pub initial_delay: Duration,
    /// A fixed base URL; `None`: the one in-band provisioning names.
    pub url: Option<String>,
}

/// What an address-book download run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBookRun {
    /// Entries in the book now.
    pub entries: usize,
    /// The day it is current to.
    pub day: String,
    /// The file fetched; `None` when the book was already current.
    pub fetched: Option<String>,
}

impl Config {
    /// Applies the effective client policy the way OC 2007 R2 does:
    /// DisableIM to IM, EnableAppearOffline to presence, CustomStateURL
    /// (unless a URL is configured already) and EnableSIPHighSecurityMode
    /// (2 = https only) to custom states, ServerAddressInternal with
    /// Transport when ConfigurationMode is 1 and no server is configured,
    /// GalDownloadInitialDelay to the address-book schedule; the policy is
    /// kept (the snapshot shows it, and in-band provisioning is layered on
    /// it while the session runs).
    pub fn apply_policy(&mut self, policy: EffectivePolicy) {
        let disable_im = policy.disable_im();
        self.im.disable_im = disable_im.value.then_some(disable_im.provenance);
        let appear = policy.enable_appear_offline();
        self.presence.appear_offline = if appear.value {
            Ok(appear.provenance)
        } else {
            Err(appear.provenance)
        };
        if self.custom_state_url.is_none() {
            self.custom_state_url = policy.custom_state_url().value;
        }
        self.high_security = policy.enable_sip_high_security_mode().value == 2;
        if self.server.is_none()
            && policy.configuration_mode().value == 1
            && let Some(addr) = policy.server_address_internal().value
        {
            // A value that is not HOST[:PORT] is tried as a host name, so
            // discovery reports what failed.
            let (host, port) =
                crate::discovery::parse_host_port(&addr).unwrap_or_else(|_| (addr.clone(), None));
            self.server = Some(ServerConfig {
                host,
                port,
                transport: policy.transport().value.unwrap_or(Transport::Tls),
            });
        }
        if let Some(ab) = &mut self.address_book {
            ab.initial_delay = policy.gal_download_initial_delay().value;
        }
        self.policy = policy;
    }

    /// Defaults around an endpoint configuration.
    pub fn new(endpoint: EndpointConfig) -> Config {
        Config {
            server: None,
            im: ImConfig::new(endpoint.register.dialect),
            presence: PresenceConfig::new(endpoint.register.dialect, &endpoint.register.aor),
            policy: EffectivePolicy::default(),
            custom_state_url: None,
            custom_state_client: ClientVersion::Oc2007R2,
            high_security: false,
            sign_in_timeout: Some(Duration::from_secs(60)),
            sign_out_timeout: Duration::from_secs(5),
            address_book: None,
            endpoint,
        }
    }
}
