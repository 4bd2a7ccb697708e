//! `ocs sim-server`: run the embedded OCS-dialect test server on loopback.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ocs_core::driver::sim::serve;
use ocs_core::rng::Rng;
use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};
use ocs_examples::{CliError, emit};
use serde_json::json;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuthArg {
    /// NTLM with MS-SIPAE signing, as OCS 2007 R2.
    Ntlm,
    /// Digest, as a standard registrar.
    Digest,
    /// TLS-DSK with MS-SIPAE signing, as Lync and Skype for Business: the
    /// user's certificate is the credential (see --cert-dir).
    TlsDsk,
    /// Kerberos with MS-SIPAE signing: the service's key from the keytab
    /// KRB5_KTNAME names (principal sip/TARGETNAME). Needs ocs built with
    /// --features kerberos.
    #[cfg(all(feature = "kerberos", unix))]
    Kerberos,
}

/// Options of `ocs sim-server`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// UDP and TCP port (0 picks free ports).
    #[arg(long, default_value_t = 5060)]
    port: u16,
    /// SIP domain served.
    #[arg(long, default_value = "contoso.com")]
    domain: String,
    /// NTLM domain of the accounts.
    #[arg(long, default_value = "CONTOSO")]
    ntlm_domain: String,
    /// An account as NAME:PASSWORD (repeatable).
    #[arg(long = "account", default_values_t = ["alice:alicepw".to_owned(), "bob:bobpw".to_owned()])]
    accounts: Vec<String>,
    /// Also serve this many users, PREFIX0..PREFIX{N-1} (--user-prefix),
    /// all with --password (for `ocs load`).
    #[arg(long, default_value_t = 0)]
    users: u32,
    /// The prefix of the --users names.
    #[arg(long, default_value = "u")]
    user_prefix: String,
    /// The password of the --users.
    #[arg(long, default_value = "pw")]
    password: String,
    /// Authentication scheme.
    #[arg(long, value_enum, default_value = "ntlm")]
    auth: AuthArg,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long = "for")]
    hold: Option<u64>,
    /// Act as a Director: answer every authenticated REGISTER with 301 to
    /// this HOST:PORT (a pool member; a host name is resolved by the
    /// client, the hosts file included).
    #[arg(long, value_name = "HOST:PORT")]
    redirect_to: Option<String>,
    /// Transport named in the redirect's Contact.
    #[arg(long, value_enum, default_value = "tcp", requires = "redirect_to")]
    redirect_transport: RedirectTransport,
    /// Where to write the server's own CA certificate (PEM; give it to
    /// clients as --ca). Default: ocs-sim-ca-PID.pem in the temp folder.
    #[arg(long, value_name = "FILE")]
    ca_out: Option<std::path::PathBuf>,
    /// No TLS listener (it takes --port + 1; the web services --port + 2).
    #[arg(long)]
    no_tls: bool,
    /// With --auth tls-dsk: where to write each --account's certificate
    /// and key (NAME.pem, NAME.key), issued by the server's CA. This
    /// stands in for certificate provisioning, which the server does not
    /// serve yet. Default: ocs-sim-certs-PID in the temp folder.
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<std::path::PathBuf>,
}

/// Transports a redirect can name.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RedirectTransport {
    /// `transport=tcp`.
    Tcp,
    /// `transport=tls` (what OCS pools use).
    Tls,
}

pub(crate) async fn run(a: SimArgs) -> Result<(), CliError> {
    let mut cfg = RegistrarConfig::ocs(&a.domain);
    cfg.auth = match a.auth {
        AuthArg::Ntlm => AuthMode::Ntlm,
        AuthArg::Digest => AuthMode::Digest,
        AuthArg::TlsDsk => AuthMode::TlsDsk,
        #[cfg(all(feature = "kerberos", unix))]
        AuthArg::Kerberos => AuthMode::Kerberos,
    };
    let targetname = cfg.targetname.clone();
    if let Some(to) = &a.redirect_to {
        ocs_core::discovery::parse_host_port(to)
            .map_err(|e| CliError::Usage(format!("--redirect-to {e}")))?;
        let t = match a.redirect_transport {
            RedirectTransport::Tcp => "tcp",
            RedirectTransport::Tls => "tls",
        };
        cfg.redirect_to = Some(format!("{to};transport={t}"));
    }
    // The NTLM challenges and web tokens come from this.
    let mut entropy = [0u8; 32];
    getrandom::fill(&mut entropy).map_err(|e| CliError::Usage(format!("no entropy: {e}")))?;
    let mut reg = Registrar::new(cfg, Rng::from_seed(u64::from(std::process::id())), entropy);
    for acct in &a.accounts {
        let (name, pw) = acct
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("--account {acct}: expected NAME:PASSWORD")))?;
        reg.add_user(name, &a.ntlm_domain, pw);
    }
    for i in 0..a.users {
        reg.add_user(
            &format!("{}{i}", a.user_prefix),
            &a.ntlm_domain,
            &a.password,
        );
    }
    let server = SimServer::new(reg, Rng::from_seed(u64::from(std::process::id()) ^ 0xabc));
    // TLS with a CA of its own, written where a client can trust it.
    let pki =
        ocs_core::driver::sim::SimPki::generate(&[a.listen.to_string(), "localhost".to_owned()])
            .map_err(|e| CliError::Usage(format!("making the TLS certificate: {e}")))?;
    let ca_path = a.ca_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ocs-sim-ca-{}.pem", std::process::id()))
    });
    std::fs::write(&ca_path, &pki.ca_pem)
        .map_err(|e| CliError::Usage(format!("writing {}: {e}", ca_path.display())))?;
    let mut server = server;
    let mut cert_dir = None;
    if matches!(a.auth, AuthArg::TlsDsk) {
        let config = pki
            .tls_dsk_config(&targetname)
            .map_err(|e| CliError::Usage(format!("TLS-DSK certificate: {e}")))?;
        server.registrar_mut().set_tls_dsk(config, None);
        let dir = a.cert_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ocs-sim-certs-{}", std::process::id()))
        });
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
        for acct in &a.accounts {
            let name = acct.split(':').next().unwrap_or(acct);
            let issued = pki
                .issue(&[], Some(&format!("{name}@{}", a.domain)))
                .map_err(|e| CliError::Usage(format!("certificate for {name}: {e}")))?;
            let write = |ext: &str, text: &str| {
                let p = dir.join(format!("{name}.{ext}"));
                std::fs::write(&p, text)
                    .map_err(|e| CliError::Usage(format!("writing {}: {e}", p.display())))
            };
            write("pem", &issued.cert_pem)?;
            write("key", &issued.key_pem)?;
        }
        cert_dir = Some(dir);
    }
    // The CA file is written either way: TLS-DSK checks the server's
    // certificate against it too.
    let tls = (!a.no_tls).then(|| pki.server.clone());
    let ca_path = Some(ca_path);
    if matches!(a.auth, AuthArg::TlsDsk) {
        server.set_cert_issuer(pki.cert_issuer());
    }
    #[cfg(all(feature = "kerberos", unix))]
    if matches!(a.auth, AuthArg::Kerberos) {
        server
            .registrar_mut()
            .set_kerberos(std::sync::Arc::new(|target: &str, token: &[u8]| {
                ocs_core::auth::kerberos::accept(target, token)
            }));
    }
    let h = serve(server, a.listen, a.port, tls)
        .await
        .map_err(|e| CliError::Usage(format!("listen on {}:{}: {e}", a.listen, a.port)))?;
    if matches!(a.auth, AuthArg::TlsDsk) {
        // Challenges name the provisioning service, as a pool's do, so
        // `ocs register --cert-store` can get its certificate here.
        let sts = format!("http://{}/CertProv/CertProvisioningService.svc", h.http);
        h.with(move |s, _| s.registrar_mut().set_sts_uri(Some(sts)))
            .await
            .ok_or_else(|| CliError::Failed("the server stopped".into()))?;
    }
    emit(json!({
        "event": "listening",
        "udp": h.udp.to_string(),
        "tcp": h.tcp.to_string(),
        "tls": h.tls.map(|t| t.to_string()),
        "ca": ca_path.as_ref().map(|p| p.display().to_string()),
        "cert_dir": cert_dir.as_ref().map(|p| p.display().to_string()),
        "http": h.http.to_string(),
        "autodiscover": format!("http://{}/autodiscover/autodiscoverservice.svc/root", h.http),
        "domain": a.domain,
    }))?;
    match a.hold {
        Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    emit(json!({"event": "stopped"}))
}
