//! Sign-in flags shared by every live command, and `ocs register`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::{AddressBookEvent, Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::error::Error;
use ocs_core::provisioning_agent::ProvisioningEvent;
use ocs_core::register::{Credentials, CredentialsReason, RegisterConfig, RegistrationEvent};
use ocs_examples::{CliError, emit};
use serde_json::{Value, json};

/// Transport names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TransportArg {
    Tls,
    Tcp,
    Udp,
}

/// Dialect names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum DialectArg {
    /// Office Communicator 2007 R2 (NTLM, epid, GRUU, ms-keep-alive).
    Ocs,
    /// Plain RFC 3261 (Digest), e.g. Kamailio.
    Standard,
}

/// Authentication schemes on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuthArg {
    /// Lync's order among the schemes the server offers: TLS-DSK (with
    /// --cert or --cert-store), then NTLM, then Digest.
    Auto,
    /// TLS-DSK only (needs --cert and --key, or --cert-store).
    TlsDsk,
    /// NTLM only.
    Ntlm,
    /// Digest only.
    Digest,
    /// Kerberos only: a ticket got with the password (principal
    /// --auth-user, or user@DOMAIN), or from the credential cache (kinit).
    /// Needs ocs built with --features kerberos.
    Kerberos,
}

/// How to sign in.
#[derive(Debug, Clone, Args)]
pub(crate) struct SignIn {
    /// Your SIP address, e.g. sip:alice@contoso.com.
    #[arg(long)]
    pub user: String,
    /// Server as HOST[:PORT]; without it, DNS discovery runs.
    #[arg(long)]
    pub server: Option<String>,
    /// Without --server: find the server by Lync/Skype for Business
    /// autodiscover first (lyncdiscoverinternal.DOMAIN, lyncdiscover.DOMAIN;
    /// or from URL, e.g. the `autodiscover` URL `ocs sim-server` prints),
    /// then DNS. The server it names is reached over TLS.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub autodiscover: Option<String>,
    /// Transport for --server (default: tls for ocs, udp for standard).
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// Account for authentication, e.g. CONTOSO\alice (default: the user
    /// part of --user).
    #[arg(long)]
    pub auth_user: Option<String>,
    /// Name of the environment variable holding the password.
    #[arg(long, default_value = "OCS_PASSWORD")]
    pub password_env: String,
    /// Protocol dialect.
    #[arg(long, value_enum, default_value = "ocs")]
    pub dialect: DialectArg,
    /// Extra trusted CA certificate (PEM), e.g. an enterprise CA.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Sign in with TLS-DSK (Lync, Skype for Business) using this
    /// certificate (PEM, leaf first) and --key: the server's TLS-DSK
    /// certificate is checked against the platform's roots and --ca.
    #[arg(long, value_name = "FILE.pem", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE.key", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Provision the TLS-DSK certificate when the server asks for one
    /// (Lync, Skype for Business: a web ticket with the password, then the
    /// pool's Certificate Provisioning service), keep it in this folder
    /// (the key readable by you only) and renew it before it lapses; a
    /// fresh one already there is used as is.
    #[arg(long, value_name = "DIR")]
    pub cert_store: Option<PathBuf>,
    /// Which authentication scheme to answer the server's challenge with.
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: AuthArg,
    /// Client policy as a .reg file (repeatable; later files override
    /// earlier ones for the same key). DisableIM, ServerAddressInternal,
    /// Transport, ConfigurationMode, CustomStateURL and
    /// EnableSIPHighSecurityMode take effect.
    #[arg(long = "policy", value_name = "FILE.reg")]
    pub policy: Vec<PathBuf>,
    /// In-band provisioning to start from: a provisionGroupList document
    /// (what the server sends for vnd-microsoft-provisioning-v2). Its
    /// ucPolicy values are the in-band source, below group policy, until
    /// the server's own provisioning replaces them.
    #[arg(long = "provisioning", value_name = "FILE.xml")]
    pub provisioning: Option<PathBuf>,
    /// Write a SIP trace to this file, credentials redacted; rotated at
    /// 10 MB with three old files kept (FILE.1 … FILE.3).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the trace as pcap (for Wireshark or sngrep) instead of text.
    #[arg(long, requires = "trace")]
    pub trace_pcap: bool,
    /// Download the address book into this folder: first at a random time
    /// within GalDownloadInitialDelay minutes after sign-in (policy;
    /// 0 = at once), then daily.
    #[arg(long, value_name = "DIR")]
    pub address_book: Option<PathBuf>,
    /// Give up when sign-in (redirects included) has not succeeded after
    /// this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub sign_in_timeout: f64,
    /// Deadline of each sign-in step (DNS, TCP connect, TLS handshake,
    /// each REGISTER), in seconds (default: 10 s each, 32 s for a REGISTER).
    #[arg(long, value_name = "SECS")]
    pub step_timeout: Option<f64>,
}

/// Seconds from the command line as a duration.
fn seconds(flag: &str, v: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::Usage(format!("{flag} {v}: expected a positive number of seconds"))
        })
}

impl SignIn {
    /// Builds the client configuration.
    pub(crate) fn client_config(&self) -> Result<ClientConfig, CliError> {
        let uri = ocs_core::sip::SipUri::parse(&self.user)
            .map_err(|e| CliError::Failed(format!("--user {}: {e}", self.user)))?;
        let dialect = match self.dialect {
            DialectArg::Ocs => Dialect::Ocs,
            DialectArg::Standard => Dialect::Standard,
        };
        let auth_user = self
            .auth_user
            .clone()
            .or_else(|| uri.user.map(str::to_owned))
            .unwrap_or_default();
        let creds = std::env::var(&self.password_env)
            .ok()
            .map(|pw| Credentials::new(&auth_user, &pw));
        let reg = RegisterConfig::new(&self.user, dialect, &epid_for(&self.user));
        let mut cfg = ClientConfig::new(EndpointConfig::new(reg, creds));
        if let Some(s) = &self.server {
            let transport = match (self.transport, dialect) {
                (Some(TransportArg::Tls), _) | (None, Dialect::Ocs) => Transport::Tls,
                (Some(TransportArg::Tcp), _) => Transport::Tcp,
                (Some(TransportArg::Udp), _) | (None, _) => Transport::Udp,
            };
            let (host, port) = ocs_core::discovery::parse_host_port(s)
                .map_err(|e| CliError::Failed(format!("--server {e}")))?;
            cfg.server = Some(ServerConfig {
                host,
                port,
                transport,
            });
        } else if let Some(t) = self.transport {
            cfg.allowed = vec![match t {
                TransportArg::Tls => Transport::Tls,
                TransportArg::Tcp => Transport::Tcp,
                TransportArg::Udp => Transport::Udp,
            }];
        }
        if let Some(ca) = &self.ca {
            let mut tls = TlsSettings::default();
            tls.add_ca_file(ca)
                .map_err(|e| CliError::Usage(format!("--ca {}: {e}", ca.display())))?;
            cfg.tls = tls;
        }
        if let Some(dir) = &self.address_book {
            cfg.address_book = Some(ocs_core::driver::AddressBookConfig::new(dir));
        }
        cfg.endpoint.register.only_scheme = match self.auth {
            AuthArg::Auto => None,
            AuthArg::TlsDsk if self.cert.is_none() && self.cert_store.is_none() => {
                return Err(CliError::Usage(
                    "--auth tls-dsk needs --cert and --key, or --cert-store".into(),
                ));
            }
            AuthArg::TlsDsk => Some("TLS-DSK".into()),
            AuthArg::Ntlm => Some("NTLM".into()),
            AuthArg::Digest => Some("Digest".into()),
            #[cfg(all(feature = "kerberos", unix))]
            AuthArg::Kerberos => {
                // The ticket: got with the password when one is set (the
                // principal is --auth-user, or user@DOMAIN from --user),
                // else the credential cache's (kinit).
                let auth = match std::env::var(&self.password_env) {
                    Ok(pw) => {
                        let principal = match &self.auth_user {
                            Some(p) => p.clone(),
                            None => format!(
                                "{}@{}",
                                uri.user.unwrap_or_default(),
                                uri.host.to_string().to_ascii_uppercase()
                            ),
                        };
                        ocs_core::auth::kerberos::KerberosAuthenticator::with_password(
                            &principal, &pw,
                        )
                    }
                    Err(_) => ocs_core::auth::kerberos::KerberosAuthenticator::from_cache(),
                };
                cfg.authenticator = Some(ocs_core::driver::AuthenticatorFactory(
                    std::sync::Arc::new(move || Box::new(auth.clone())),
                ));
                Some("Kerberos".into())
            }
            #[cfg(not(all(feature = "kerberos", unix)))]
            AuthArg::Kerberos => {
                return Err(CliError::Usage(
                    "--auth kerberos: this ocs is built without Kerberos (build it with \
                     --features kerberos, which needs the system's GSSAPI)"
                        .into(),
                ));
            }
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            let roots = cfg
                .tls
                .root_store()
                .map_err(|e| CliError::Usage(format!("trust anchors: {e}")))?;
            let auth =
                ocs_core::auth::tlsdsk::TlsDskAuthenticator::from_pem_files(cert, key, roots)
                    .map_err(|e| CliError::Usage(format!("--cert/--key: {e}")))?;
            cfg.authenticator = Some(ocs_core::driver::AuthenticatorFactory(std::sync::Arc::new(
                move || Box::new(auth.clone()),
            )));
        }
        if let Some(dir) = &self.cert_store {
            cfg.certificates = Some(ocs_core::driver::CertificateSettings {
                store: Some(dir.clone()),
            });
        }
        if let Some(url) = &self.autodiscover {
            cfg.autodiscover = Some(ocs_core::driver::AutodiscoverSettings {
                urls: (!url.is_empty()).then(|| vec![url.clone()]),
            });
        }
        // DisableIM, EnableAppearOffline, CustomStateURL,
        // EnableSIPHighSecurityMode, ConfigurationMode with
        // ServerAddressInternal/Transport (when no --server was given) and
        // GalDownloadInitialDelay, as the core applies them.
        cfg.apply_policy(self.effective_policy()?);
        cfg.sign_in_timeout = Some(seconds("--sign-in-timeout", self.sign_in_timeout)?);
        if let Some(v) = self.step_timeout {
            let d = seconds("--step-timeout", v)?;
            cfg.dns_timeout = d;
            cfg.connect_timeout = d;
            cfg.tls_handshake_timeout = d;
            cfg.endpoint.register.register_timeout = d;
        }
        cfg.trace = self.trace.as_ref().map(|p| {
            if self.trace_pcap {
                ocs_core::driver::TraceConfig::pcap(p)
            } else {
                ocs_core::driver::TraceConfig::text(p)
            }
        });
        Ok(cfg)
    }
}

impl SignIn {
    /// Reads and evaluates the --policy files and --provisioning.
    pub(crate) fn effective_policy(
        &self,
    ) -> Result<ocs_core::policy::eval::EffectivePolicy, CliError> {
        let mut files = Vec::new();
        for path in &self.policy {
            let name = path.display().to_string();
            let bytes =
                std::fs::read(path).map_err(|e| CliError::Usage(format!("reading {name}: {e}")))?;
            let parsed = ocs_core::policy::reg::parse(&bytes)
                .map_err(|e| CliError::Failed(format!("{name}:{e}")))?;
            files.push((name, parsed));
        }
        let in_band = match &self.provisioning {
            Some(path) => {
                let name = path.display().to_string();
                let bytes = std::fs::read(path)
                    .map_err(|e| CliError::Usage(format!("reading {name}: {e}")))?;
                ocs_core::provisioning::parse(&bytes)
                    .map_err(|e| CliError::Failed(format!("{name}:{e}")))?
                    .to_in_band_from(&name)
            }
            None => ocs_core::policy::eval::InBand::default(),
        };
        Ok(ocs_core::policy::eval::evaluate(&files, &in_band))
    }
}

/// A stable endpoint id per user and machine, as OC keeps one per install.
fn epid_for(user: &str) -> String {
    let machine = std::env::var("HOSTNAME").unwrap_or_default();
    ocs_core::auth::epid::Epid::derive(user, &machine).to_string()
}

/// The JSON form of an event (one line each).
pub(crate) fn event_json(e: &ClientEvent) -> Value {
    match e {
        ClientEvent::Connected {
            host,
            addr,
            transport,
            source,
            local,
        } => json!({"event": "connected", "host": host, "addr": addr.to_string(),
            "transport": transport.as_str(), "source": source, "local": local.to_string()}),
        ClientEvent::ConnectFailed { target, error } => {
            json!({"event": "connect_failed", "target": target, "error": error})
        }
        ClientEvent::Disconnected(why) => json!({"event": "disconnected", "reason": why}),
        ClientEvent::Reconnected { down_for, attempts } => json!({"event": "reconnected",
            "down_ms": u64::try_from(down_for.as_millis()).unwrap_or(u64::MAX), "attempts": attempts}),
        ClientEvent::SecurityViolation(d) => json!({"event": "security_violation", "detail": d}),
        ClientEvent::Stopped => json!({"event": "stopped"}),
        ClientEvent::CustomStates { states, warnings } => json!({"event": "custom_states",
            "states": states.states.iter().map(|s| json!({"id": s.id,
                "availability": s.availability.as_str(),
                "texts": s.texts.iter().map(|(l, t)| json!({"lcid": l, "text": t})).collect::<Vec<_>>()}))
                .collect::<Vec<_>>(),
            "warnings": warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>()}),
        ClientEvent::CustomStatesFailed { url, error } => {
            json!({"event": "custom_states_failed", "url": url, "error": error})
        }
        ClientEvent::Registration(r) => registration_json(r),
        ClientEvent::Provisioning(ProvisioningEvent::Received(p)) => {
            json!({"event": "provisioning", "abs_internal": p.abs_url(false),
                "abs_external": p.abs_url(true),
                "server_configuration": p.server_configuration, "uc_policy": p.uc_policy,
                "meeting_policy": p.meeting_policy,
                "other_groups": p.other.iter().map(|g| g.name.as_str()).collect::<Vec<_>>()})
        }
        ClientEvent::Provisioning(ProvisioningEvent::Failed(e)) => {
            json!({"event": "provisioning_failed", "error": error_json(e)})
        }
        ClientEvent::AddressBook(AddressBookEvent::Ready {
            entries,
            day,
            fetched,
        }) => json!({"event": "address_book", "entries": entries, "day": day, "fetched": fetched}),
        ClientEvent::AddressBook(AddressBookEvent::Failed {
            error,
            failures,
            retry_in,
        }) => json!({"event": "address_book_failed", "error": error, "failures": failures,
            "retry_in": retry_in.as_secs()}),
        ClientEvent::AddressBook(AddressBookEvent::FailingForADay { failing_for, error }) => {
            json!({"event": "address_book_failing", "error": error,
                "failing_for": failing_for.as_secs()})
        }
        ClientEvent::Presence(ocs_core::presence_agent::PresenceEvent::ContactList(l)) => {
            let mut v = crate::contacts::list_json(l);
            v["event"] = json!("contact_list");
            v
        }
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}

fn error_json(e: &Error) -> Value {
    match e {
        Error::Rejected {
            status,
            reason,
            retry_after,
            diagnostics,
        } => json!({"kind": "rejected", "status": status, "reason": reason,
            "retry_after": retry_after.map(|d| d.as_secs()),
            "diagnostics": diagnostics.as_ref().map(|d| json!({"code": d.code, "reason": d.reason, "source": d.source, "header": d.header})),
            "message": e.to_string()}),
        other => json!({"kind": "error", "message": other.to_string()}),
    }
}

fn registration_json(r: &RegistrationEvent) -> Value {
    match r {
        RegistrationEvent::Registered {
            gruu,
            expires,
            keep_alive,
            refresh,
            auth_scheme,
            auth_version,
        } => json!({"event": "registered", "gruu": gruu, "expires": expires,
            "keep_alive": keep_alive.map(|d| d.as_secs()), "refresh": refresh,
            "auth": auth_scheme, "auth_version": auth_version}),
        RegistrationEvent::CredentialsNeeded { realm, reason } => {
            json!({"event": "credentials_needed",
            "realm": realm, "reason": match reason { CredentialsReason::Missing => "missing", CredentialsReason::Rejected => "rejected" }})
        }
        RegistrationEvent::CertificateNeeded { sts_uri, renewal } => {
            json!({"event": "certificate_needed", "sts_uri": sts_uri, "renewal": renewal})
        }
        RegistrationEvent::Redirected(to) => json!({"event": "redirected", "host": to.host,
            "port": to.port, "transport": to.transport.as_str()}),
        RegistrationEvent::RetryScheduled { error, .. } => {
            json!({"event": "retry_scheduled", "error": error_json(error)})
        }
        RegistrationEvent::Failed(e) => json!({"event": "failed", "error": error_json(e)}),
        RegistrationEvent::SignedOut { by_server, reason } => {
            json!({"event": "signed_out", "by_server": by_server, "reason": reason})
        }
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}

/// `ocs register`: sign in, print events, sign out after `--for` or Ctrl-C.
pub(crate) async fn register(sign_in: SignIn, hold: Option<u64>) -> Result<(), CliError> {
    let cfg = sign_in.client_config()?;
    let mut client = Client::start(cfg).map_err(|e| CliError::Failed(e.to_string()))?;
    let mut registered = false;
    let mut signing_out = false;
    let mut failure: Option<String> = None;
    let hold_until = async {
        match hold {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(hold_until);
    let mut hold_armed = false;
    loop {
        tokio::select! {
            e = client.next_event() => {
                let Some(e) = e else { break };
                emit(event_json(&e))?;
                match &e {
                    ClientEvent::Registration(RegistrationEvent::Registered { .. }) => {
                        registered = true;
                        hold_armed = true;
                    }
                    ClientEvent::Registration(RegistrationEvent::Failed(err)) => {
                        failure = Some(if registered {
                            err.to_string()
                        } else {
                            format!("sign-in failed: {err}")
                        });
                    }
                    ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { reason, .. }) => {
                        failure = Some(match reason {
                            CredentialsReason::Missing => format!("credentials needed: set ${}", sign_in.password_env),
                            CredentialsReason::Rejected => "the server rejected the credentials".to_owned(),
                        });
                        client.sign_out();
                    }
                    ClientEvent::Registration(RegistrationEvent::SignedOut { by_server: true, reason }) => {
                        failure = Some(format!("signed out by the server: {}", reason.clone().unwrap_or_default()));
                    }
                    ClientEvent::Stopped => break,
                    _ => {}
                }
            }
            _ = &mut hold_until, if hold_armed && !signing_out => {
                signing_out = true;
                client.sign_out();
            }
            _ = tokio::signal::ctrl_c(), if !signing_out => {
                signing_out = true;
                client.sign_out();
            }
        }
    }
    match failure {
        Some(f) => Err(CliError::Failed(f)),
        None if registered => Ok(()),
        None => Err(CliError::Failed("not registered".into())),
    }
}

/// Reads events (printing each with `print`) until sign-in succeeds; an
/// error with the reason when it fails.
pub(crate) async fn signed_in(
    client: &mut Client,
    print: impl Fn(&ClientEvent) -> Result<(), CliError>,
) -> Result<(), CliError> {
    while let Some(e) = client.next_event().await {
        print(&e)?;
        match e {
            ClientEvent::Registration(RegistrationEvent::Registered { .. }) => return Ok(()),
            ClientEvent::Registration(RegistrationEvent::Failed(err)) => {
                return Err(CliError::Failed(format!("sign-in failed: {err}")));
            }
            ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { .. }) => {
                return Err(CliError::Failed(
                    "sign-in failed: credentials needed or rejected".into(),
                ));
            }
            ClientEvent::Stopped => return Err(CliError::Failed("client stopped".into())),
            _ => {}
        }
    }
    Err(CliError::Failed("client ended".into()))
}

/// Signs out and prints events until the client has stopped.
pub(crate) async fn sign_out(
    client: &mut Client,
    print: impl Fn(&ClientEvent) -> Result<(), CliError>,
) -> Result<(), CliError> {
    client.sign_out();
    while let Some(e) = client.next_event().await {
        print(&e)?;
        if e == ClientEvent::Stopped {
            break;
        }
    }
    Ok(())
}
