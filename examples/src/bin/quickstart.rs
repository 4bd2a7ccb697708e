//! The quickstart: an Office Communicator 2007 R2 client in ten steps, on
//! loopback, with no set-up.
//!
//! 1. starts the embedded OCS-dialect test server;
//! 2. signs alice and bob in with NTLM (MS-SIPAE, signed messages);
//! 3. loads alice's custom states from her CustomStateURL, served over HTTP
//!    by this process;
//! 4. evaluates a sample client policy (.reg) that sets DisableIM for bob;
//! 5. publishes alice's custom state with a note, and bob's status;
//! 6. has each watch the other;
//! 7. exchanges instant messages, then gives bob the policy so the next
//!    message is refused;
//! 8. prints alice's diagnostics snapshot;
//! 9. signs both out;
//! 10. signs alice in to a second embedded server set up as a Lync pool:
//!     found by autodiscover (with an OAuth token), TLS-DSK with a
//!     certificate the client provisions from the pool instead of NTLM.
//!
//! ```text
//! cargo run -p ocs-examples --bin quickstart
//! ```
//!
//! With `--server HOST[:PORT]` it signs in to a real server instead (the
//! flags are those of `ocs register`; `--user`, `--auth-user` and
//! `--password-env` may be given twice, for a second user):
//!
//! ```text
//! OCS_PASSWORD=... OCS_PASSWORD2=... cargo run -p ocs-examples --bin quickstart -- \
//!     --server ocs.contoso.com --user sip:alice@contoso.com --auth-user 'CONTOSO\alice' \
//!     --user sip:bob@contoso.com --auth-user 'CONTOSO\bob'
//! ```
//!
//! Step 1 is then skipped (and the server's view of the registrations in
//! step 2, which only the embedded server can show); with one user, steps
//! 6 and 7 are skipped too.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::Pending;
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{Client, ClientConfig, ClientEvent, TlsSettings};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::error::Provenance;
use ocs_core::messaging::ImEvent;
use ocs_core::presence::model::{Presence, State};
use ocs_core::presence_agent::{PresenceEvent, PublishId};
use ocs_core::register::{Credentials, CredentialsReason, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
use ocs_examples::custom_state_server;

/// Runs the quickstart against the embedded test server, or against a real
/// one with --server.
#[derive(Debug, Parser)]
#[command(name = "quickstart")]
struct Args {
    /// Sign in to this server (HOST[:PORT]) instead of starting the
    /// embedded test server.
    #[arg(long, requires = "user")]
    server: Option<String>,
    /// SIP address to sign in, e.g. sip:alice@contoso.com; give it twice
    /// for the steps between two users (watch, IM).
    #[arg(long, requires = "server")]
    user: Vec<String>,
    /// Account for authentication, e.g. CONTOSO\alice, in --user order
    /// (default: the user part of --user).
    #[arg(long, requires = "server")]
    auth_user: Vec<String>,
    /// Environment variable holding the password, in --user order
    /// (default: OCS_PASSWORD, and OCS_PASSWORD2 for the second user).
    #[arg(long, requires = "server")]
    password_env: Vec<String>,
    /// Transport (default: tls for ocs, udp for standard).
    #[arg(long, value_enum, requires = "server")]
    transport: Option<TransportArg>,
    /// Protocol dialect.
    #[arg(long, value_enum, default_value = "ocs", requires = "server")]
    dialect: DialectArg,
    /// Extra trusted CA certificate (PEM), e.g. an enterprise CA.
    #[arg(long, requires = "server")]
    ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    Tls,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    /// Office Communicator 2007 R2 (NTLM, epid, GRUU).
    Ocs,
    /// Plain RFC 3261 (Digest), e.g. Kamailio.
    Standard,
}

/// How long to wait for any one thing to happen (a real server's presence
/// notifications can take a few seconds; the embedded server answers in
/// milliseconds).
const WAIT: Duration = Duration::from_secs(10);

/// The embedded server's users (domain contoso.com, NTLM domain CONTOSO)
/// and their passwords.
const SIM_USERS: [(&str, &str); 2] = [("alice", "alicepw"), ("bob", "bobpw")];

/// The custom states behind alice's CustomStateURL, in the
/// custom-state-server example's format (`ID AVAILABILITY LCID TEXT`); that
/// server renders them as the customStates XML Communicator reads.
const CUSTOM_STATES: &str = "\
[default]
1 busy 1033 In a Customer Seminar
1 busy 1031 Im Kundenseminar
2 do-not-disturb 1033 Presenting
";

/// The sample policy: a user-policy key as an admin would export it with
/// regedit (Communicator's own spelling of the hive).
const SAMPLE_POLICY: &str = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\r\n\
\"DisableIM\"=dword:00000001\r\n";

/// One signed-in user.
struct User {
    /// Short name for the output (the user part of the SIP address).
    name: String,
    uri: String,
    client: Client,
}

/// Who signs in.
struct Account {
    /// SIP address, e.g. sip:alice@contoso.com.
    uri: String,
    /// Account for authentication, e.g. CONTOSO\alice.
    auth_user: String,
    password: String,
}

/// Where and how to sign in.
struct SignInSettings {
    server: ServerConfig,
    dialect: Dialect,
    tls: TlsSettings,
    accounts: Vec<Account>,
}

impl SignInSettings {
    /// The embedded server's users over TCP on loopback (no certificate
    /// needed, NTLM still signs every message).
    fn embedded(sim: &SimHandle) -> SignInSettings {
        SignInSettings {
            server: ServerConfig {
                host: sim.tcp.ip().to_string(),
                port: Some(sim.tcp.port()),
                transport: Transport::Tcp,
            },
            dialect: Dialect::Ocs,
            tls: TlsSettings::default(),
            accounts: SIM_USERS
                .iter()
                .map(|&(name, password)| Account {
                    uri: format!("sip:{name}@contoso.com"),
                    auth_user: format!("CONTOSO\\{name}"),
                    password: password.to_owned(),
                })
                .collect(),
        }
    }

    /// From --server and the sign-in flags.
    fn from_args(a: &Args, server: &str) -> Result<SignInSettings, String> {
        if a.user.len() > 2 {
            return Err("at most two --user".into());
        }
        let dialect = match a.dialect {
            DialectArg::Ocs => Dialect::Ocs,
            DialectArg::Standard => Dialect::Standard,
        };
        // The same defaults as `ocs register`.
        let transport = match (a.transport, dialect) {
            (Some(TransportArg::Tls), _) | (None, Dialect::Ocs) => Transport::Tls,
            (Some(TransportArg::Tcp), _) => Transport::Tcp,
            (Some(TransportArg::Udp), _) | (None, Dialect::Standard) => Transport::Udp,
        };
        let (host, port) =
            ocs_core::discovery::parse_host_port(server).map_err(|e| format!("--server {e}"))?;
        let mut tls = TlsSettings::default();
        if let Some(ca) = &a.ca {
            tls.add_ca_file(ca)
                .map_err(|e| format!("--ca {}: {e}", ca.display()))?;
        }
        let mut accounts = Vec::new();
        for (i, uri) in a.user.iter().enumerate() {
            let parsed =
                ocs_core::sip::SipUri::parse(uri).map_err(|e| format!("--user {uri}: {e}"))?;
            let auth_user = match a.auth_user.get(i) {
                Some(u) => u.clone(),
                None => parsed.user.unwrap_or_default().to_owned(),
            };
            let var = match a.password_env.get(i) {
                Some(v) => v.clone(),
                None if i == 0 => "OCS_PASSWORD".to_owned(),
                None => "OCS_PASSWORD2".to_owned(),
            };
            let password =
                std::env::var(&var).map_err(|_| format!("set ${var} to {uri}'s password"))?;
            accounts.push(Account {
                uri: uri.clone(),
                auth_user,
                password,
            });
        }
        Ok(SignInSettings {
            server: ServerConfig {
                host,
                port,
                transport,
            },
            dialect,
            tls,
            accounts,
        })
    }

    /// The client configuration for one account.
    fn config(&self, a: &Account) -> ClientConfig {
        let reg = RegisterConfig::new(&a.uri, self.dialect, &epid_for(&a.uri));
        let creds = Credentials::new(&a.auth_user, &a.password);
        let mut cfg = ClientConfig::new(EndpointConfig::new(reg, Some(creds)));
        cfg.server = Some(self.server.clone());
        cfg.tls = self.tls.clone();
        cfg
    }
}

/// `sip:alice@contoso.com` → `alice`, for the output.
fn user_name(uri: &str) -> &str {
    let s = uri.strip_prefix("sip:").unwrap_or(uri);
    s.split('@').next().unwrap_or(s)
}

/// A stable endpoint id per user, as Communicator keeps one per install.
fn epid_for(uri: &str) -> String {
    ocs_core::auth::epid::Epid::derive(uri, "").to_string()
}

/// Reads `c`'s events until `f` picks one out (other events are not needed
/// here and are dropped), for at most [`WAIT`].
async fn until<T>(
    c: &mut Client,
    what: &str,
    mut f: impl FnMut(ClientEvent) -> Option<Result<T, String>>,
) -> Result<T, String> {
    let wait = async {
        while let Some(e) = c.next_event().await {
            if let Some(r) = f(e) {
                return r;
            }
        }
        Err(format!("the client ended while waiting for {what}"))
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .map_err(|_| format!("timed out waiting for {what}"))?
}

/// Starts a client and prints its progress until it is signed in.
async fn sign_in(cfg: ClientConfig) -> Result<User, String> {
    let uri = cfg.endpoint.register.aor.clone();
    let name = user_name(&uri).to_owned();
    let mut client = Client::start(cfg).map_err(|e| format!("{uri}: {e}"))?;
    let what = format!("{name} to sign in");
    until(&mut client, &what, |e| match e {
        ClientEvent::Connected {
            addr,
            transport,
            source,
            ..
        } => {
            let found = if source == "autodiscover" {
                " (found by autodiscover)"
            } else {
                ""
            };
            println!("  {name}: connected to {addr} over {transport}{found}");
            None
        }
        // The client tries again (or the next server); say why meanwhile.
        ClientEvent::ConnectFailed { target, error } => {
            println!("  {name}: cannot connect to {target}: {error}");
            None
        }
        ClientEvent::Registration(RegistrationEvent::Registered {
            gruu,
            expires,
            auth_scheme,
            auth_version,
            ..
        }) => {
            // Version 0 means no MS-SIPAE (Digest).
            let version = match auth_version {
                0 => String::new(),
                v => format!(" (MS-SIPAE version {v})"),
            };
            println!(
                "  {name}: signed in with {auth_scheme}{version}, registration valid {expires} s"
            );
            if let Some(g) = gruu {
                println!("  {name}: GRUU {g}");
            }
            Some(Ok(()))
        }
        ClientEvent::Registration(RegistrationEvent::CertificateNeeded { sts_uri, .. }) => {
            println!("  {name}: the server asks for a TLS-DSK certificate from {sts_uri}");
            None
        }
        ClientEvent::Registration(RegistrationEvent::CredentialsNeeded { reason, .. }) => {
            Some(Err(match reason {
                CredentialsReason::Missing => format!("{name}: the server wants credentials"),
                CredentialsReason::Rejected => format!("{name}: the server rejected the password"),
            }))
        }
        ClientEvent::Registration(RegistrationEvent::Failed(e)) => {
            Some(Err(format!("{name}: sign-in failed: {e}")))
        }
        _ => None,
    })
    .await?;
    Ok(User { name, uri, client })
}

/// Has `watcher` watch `of` and waits until it sees a presence `f`
/// accepts.
async fn watch(
    watcher: &mut User,
    of: &User,
    f: impl Fn(&Presence) -> bool,
) -> Result<Presence, String> {
    watcher
        .client
        .watch(&of.uri)
        .await
        .map_err(|e| e.to_string())?;
    let what = format!("{}'s watch of {}", watcher.name, of.name);
    until(&mut watcher.client, &what, |e| match e {
        ClientEvent::Presence(PresenceEvent::Changed { uri, presence })
            if uri == of.uri && f(&presence) =>
        {
            Some(Ok(*presence))
        }
        ClientEvent::Presence(PresenceEvent::WatchEnded { uri, reason }) if uri == of.uri => {
            Some(Err(format!("the server ended {what}: {reason}")))
        }
        _ => None,
    })
    .await
}

/// Waits for the outcome of `u`'s presence command `asked`.
async fn until_published(
    u: &User,
    asked: Result<Pending<PublishId, State>, ocs_core::Error>,
) -> Result<State, String> {
    let what = format!("{}'s publication", u.name);
    let asked = asked.map_err(|e| format!("{what}: {e}"))?;
    tokio::time::timeout(WAIT, asked.outcome())
        .await
        .map_err(|_| format!("timed out waiting for {what}"))?
        .map_err(|e| format!("{what}: {e}"))
}

/// Sends an IM from `from` to `to` and waits until it is received and
/// delivered.
async fn send_im(from: &mut User, to: &mut User, text: &str) -> Result<(), String> {
    let sent = from
        .client
        .send_im(&to.uri, text)
        .await
        .map_err(|e| e.to_string())?;
    let what = format!("{} to receive an IM", to.name);
    let received = until(&mut to.client, &what, |e| match e {
        ClientEvent::Im(ImEvent::Received { content, .. }) => Some(Ok(content.plain_text)),
        _ => None,
    })
    .await?;
    println!("  {} -> {}: \"{received}\"", from.name, to.name);
    let what = format!("{}'s IM to be delivered", from.name);
    tokio::time::timeout(WAIT, sent.outcome())
        .await
        .map_err(|_| format!("timed out waiting for {what}"))?
        .map_err(|e| format!("{what}: {e}"))
}

/// Step 7: a message each way, then bob's client gets the DisableIM policy
/// (`disable_im`: its provenance) and the next messages are refused.
async fn exchange_messages(
    alice: &mut User,
    bob: &mut User,
    disable_im: Option<Provenance>,
) -> Result<(), String> {
    send_im(alice, bob, "Hello Bob, lunch at noon?").await?;
    send_im(bob, alice, "Sure, see you there").await?;
    let Some(disable_im) = disable_im else {
        return Ok(());
    };
    bob.client.set_disable_im(Some(disable_im));
    println!(
        "  {}'s client applies quickstart-policy.reg: IM off",
        bob.name
    );
    // A new session, so bob's client is asked again (and refuses).
    alice.client.end_im_session(&bob.uri);
    let refused = alice
        .client
        .send_im(&bob.uri, "Are you still there?")
        .await
        .map_err(|e| e.to_string())?
        .id;
    let what = format!("{}'s IM to be refused", alice.name);
    let why = until(&mut alice.client, &what, |e| match e {
        ClientEvent::Im(ImEvent::Failed { id, reason, detail }) if id == refused => {
            Some(Ok(format!("{}: {detail}", reason.description())))
        }
        ClientEvent::Im(ImEvent::Delivered { id }) if id == refused => {
            Some(Err("DisableIM did not stop the message".into()))
        }
        _ => None,
    })
    .await?;
    println!("  {} -> {}: refused, {why}", alice.name, bob.name);
    // Bob's own client refuses to send, without asking the server.
    match bob.client.send_im(&alice.uri, "Still there?").await {
        Err(e) => println!("  {} -> {}: refused, {e}", bob.name, alice.name),
        Ok(_) => return Err("DisableIM did not stop bob from sending".into()),
    }
    Ok(())
}

/// Signs out and waits until the client has stopped.
async fn sign_out(u: &mut User) {
    u.client.sign_out();
    let _ = until(&mut u.client, "sign-out", |e| match e {
        ClientEvent::Registration(RegistrationEvent::SignedOut { .. }) => {
            println!("  {}: signed out", u.name);
            None
        }
        ClientEvent::Stopped => Some(Ok(())),
        _ => None,
    })
    .await;
}

async fn run(args: Args) -> Result<(), String> {
    // clippy.toml keeps the sans-IO core off the clock; the quickstart's
    // own run time is what the last line reports.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();

    // `sim` (the embedded server) runs until the end of `run`.
    let (sim, sign_in_cfg) = match &args.server {
        None => {
            println!("1. Starting the embedded OCS 2007 R2-dialect test server on loopback");
            let sim = start_embedded_server().await?;
            println!("  listening on udp {} and tcp {}", sim.udp, sim.tcp);
            let cfg = SignInSettings::embedded(&sim);
            (Some(sim), cfg)
        }
        Some(server) => {
            let cfg = SignInSettings::from_args(&args, server)?;
            println!(
                "1. Using the server {server} over {} (skipped: starting the embedded test server)",
                cfg.server.transport
            );
            (None, cfg)
        }
    };

    let names: Vec<&str> = sign_in_cfg
        .accounts
        .iter()
        .map(|a| user_name(&a.uri))
        .collect();
    println!(
        "2. Signing in {} with {}",
        names.join(" and "),
        match sign_in_cfg.dialect {
            Dialect::Ocs => "NTLM (connectionless, signed messages)",
            Dialect::Standard => "Digest",
        }
    );
    // Alice's client loads her CustomStateURL right after sign-in (step 3),
    // so the HTTP server that serves it starts first.
    let states_url = serve_custom_states().await?;
    let mut users = Vec::new();
    for (i, account) in sign_in_cfg.accounts.iter().enumerate() {
        let mut cfg = sign_in_cfg.config(account);
        if i == 0 {
            cfg.custom_state_url = Some(states_url.clone());
        }
        users.push(sign_in(cfg).await?);
    }
    match &sim {
        Some(sim) => {
            let mut bindings = sim
                .with(|s, _| {
                    s.registrar()
                        .bindings()
                        .map(|b| format!("  server: {} at {} (epid {})", b.aor, b.contact, b.epid))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
            bindings.sort();
            for b in bindings {
                println!("{b}");
            }
        }
        None => println!("  (skipped: the server's list of registrations, embedded server only)"),
    }
    let (alice, others) = users.split_first_mut().ok_or("no user to sign in")?;
    let mut bob = others.first_mut();

    println!(
        "3. Loading {}'s custom states from {states_url}",
        alice.name
    );
    let states = until(&mut alice.client, "the custom states", |e| match e {
        ClientEvent::CustomStates { states, warnings } => {
            for w in warnings {
                println!("  warning: {w}");
            }
            Some(Ok(states))
        }
        ClientEvent::CustomStatesFailed { error, .. } => Some(Err(error)),
        _ => None,
    })
    .await?;
    for s in &states.states {
        let texts: Vec<String> = s
            .texts
            .iter()
            .map(|(l, t)| format!("{l} \"{t}\""))
            .collect();
        println!(
            "  state {}: {}, {}",
            s.id,
            s.availability.as_str(),
            texts.join(", ")
        );
    }

    println!("4. Applying a sample policy (quickstart-policy.reg)");
    let reg = ocs_core::policy::reg::parse(SAMPLE_POLICY.as_bytes()).map_err(|e| e.to_string())?;
    let policy = ocs_core::policy::eval::evaluate(
        &[("quickstart-policy.reg", reg)],
        &ocs_core::policy::eval::InBand::default(),
    );
    let disable_im = policy.disable_im();
    println!(
        "  DisableIM = {} (from {} {})",
        disable_im.value,
        disable_im.provenance.source,
        disable_im.provenance.from.as_deref().unwrap_or("")
    );
    // What `Client::set_disable_im` takes: where the setting came from, or
    // None when IM is allowed.
    let bob_disable_im = disable_im.value.then_some(disable_im.provenance);
    // A policy refresh can reach a signed-in client; bob's gets this one in
    // step 7, once he and alice have exchanged a first message.
    match &bob {
        Some(b) => println!("  for {}; his client gets it in step 7", b.name),
        None => println!("  (no second user to apply it to: step 7 is skipped)"),
    }

    println!("5. Publishing a custom state and a note");
    let seminar = states
        .states
        .first()
        .ok_or("the custom states file has no state")?;
    let text = seminar.text(1033).unwrap_or_default();
    let note = "Back at 3 pm";
    let asked = alice
        .client
        .set_custom_state(seminar.availability.availability(), 1033, text, Some(note))
        .await;
    let alice_state = until_published(alice, asked).await?;
    println!(
        "  {}: {} (\"{text}\"), note \"{note}\"",
        alice.name,
        alice_state.as_str()
    );
    if let Some(b) = &mut bob {
        let asked = b.client.set_status(State::Online, None).await;
        let published = until_published(b, asked).await?;
        println!("  {}: {}", b.name, published.as_str());
    }

    match &mut bob {
        Some(bob) => {
            println!("6. Watching each other");
            // The state is enough to wait for: the standard dialect (PIDF) has
            // no place for the custom text, OCS shows it too.
            let seen = watch(bob, alice, |p| p.state() == alice_state).await?;
            let custom = seen
                .any_custom_text(1033)
                .map(|t| format!(" (\"{t}\")"))
                .unwrap_or_default();
            println!(
                "  {} sees {}: {}{custom}, note \"{}\"",
                bob.name,
                alice.name,
                seen.state().as_str(),
                seen.note.as_ref().map(|n| &*n.text).unwrap_or("")
            );
            let seen = watch(alice, bob, |p| p.state() == State::Online).await?;
            println!(
                "  {} sees {}: {}",
                alice.name,
                bob.name,
                seen.state().as_str()
            );

            println!("7. Exchanging instant messages");
            exchange_messages(alice, bob, bob_disable_im).await?;
        }
        None => {
            println!("6. Watching each other (skipped: needs a second --user)");
            println!("7. Exchanging instant messages (skipped: needs a second --user)");
        }
    }

    println!("8. Diagnostics snapshot of {}", alice.name);
    let snapshot = alice
        .client
        .diagnostics()
        .await
        .map_err(|e| e.to_string())?;
    for line in snapshot.to_table().lines() {
        println!("  {line}");
    }

    println!("9. Signing out");
    for u in &mut users {
        sign_out(u).await;
    }
    if let Some(sim) = &sim {
        // The embedded server checked the MS-SIPAE signature of everything
        // the clients sent after signing in, as an OCS front end does.
        let (verified, refused, recent) = sim
            .with(|s, _| {
                let verified: u64 = [
                    "ACK",
                    "MESSAGE",
                    "INVITE",
                    "SERVICE",
                    "SUBSCRIBE",
                    "BYE",
                    "INFO",
                ]
                .iter()
                .map(|k| s.verified_signatures(k))
                .sum();
                let recent: Vec<String> =
                    s.recent_signature_violations().map(str::to_owned).collect();
                (verified, s.signature_violations(), recent)
            })
            .await
            .ok_or("the embedded server stopped")?;
        println!(
            "  server: {verified} signed requests verified, {refused} unsigned or badly signed"
        );
        if refused > 0 {
            return Err(format!("the server refused unsigned messages: {recent:?}"));
        }
    }
    match &sim {
        Some(_) => {
            println!(
                "10. Signing in as Lync and Skype for Business clients do: autodiscover, an OAuth token, a provisioned certificate, TLS-DSK"
            );
            lync_sign_in().await?;
        }
        None => println!(
            "10. Lync / Skype for Business sign-in (skipped: shown on the embedded server only)"
        ),
    }
    println!("Done in {:.2} s.", started.elapsed().as_secs_f64());
    Ok(())
}

/// Step 10: a second embedded server set up as a Lync pool (TLS, its own
/// CA, autodiscover, a token service and certificate provisioning over
/// http, TLS-DSK instead of NTLM); alice finds it by autodiscover, is asked
/// for a certificate by the TLS-DSK challenge, provisions one from the
/// service it names and signs in with it.
async fn lync_sign_in() -> Result<(), String> {
    use ocs_core::driver::sim::serve_tls_dsk_users;
    use ocs_core::driver::{AutodiscoverSettings, CertificateSettings};
    let (pool, pki) = serve_tls_dsk_users("contoso.com", &SIM_USERS)
        .await
        .map_err(|e| format!("cannot start the pool on loopback: {e}"))?;
    let targetname = RegistrarConfig::ocs("contoso.com").targetname;
    let root = format!(
        "http://{}/autodiscover/autodiscoverservice.svc/root",
        pool.http
    );
    println!("  pool: autodiscover at {root}, TLS-DSK targetname {targetname}");
    let store = std::env::temp_dir().join(format!("ocs-quickstart-certs.{}", std::process::id()));
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "0123456789");
    // The password is for autodiscover's and the web ticket service's
    // tokens; the SIP sign-in uses the certificate provisioned with it.
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.tls = pki.client_tls();
    cfg.autodiscover = Some(AutodiscoverSettings {
        urls: Some(vec![root]),
    });
    cfg.certificates = Some(CertificateSettings {
        store: Some(store.clone()),
    });
    let mut alice = sign_in(cfg).await?;
    if store.join("alice@contoso.com.pem").exists() {
        println!(
            "  alice: certificate provisioned by the pool's service, kept in {}",
            store.display()
        );
    }
    let why = alice
        .client
        .diagnostics()
        .await
        .ok()
        .and_then(|s| s.registration.auth_choice)
        .unwrap_or_default();
    println!("  alice: {why}");
    sign_out(&mut alice).await;
    let _ = std::fs::remove_dir_all(&store);
    Ok(())
}

/// The embedded OCS-dialect server with [`SIM_USERS`], on free loopback
/// ports.
async fn start_embedded_server() -> Result<SimHandle, String> {
    let mut registrar = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(1),
        [3; 32],
    );
    for (name, password) in SIM_USERS {
        registrar.add_user(name, "CONTOSO", password);
    }
    let server = SimServer::new(registrar, Rng::from_seed(2));
    serve(server, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None)
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))
}

/// Serves [`CUSTOM_STATES`] on a free loopback port with the
/// custom-state-server example's server, for as long as the process runs;
/// returns the URL.
async fn serve_custom_states() -> Result<String, String> {
    let cfg = custom_state_server::parse_config(CUSTOM_STATES).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(custom_state_server::serve(listener, Arc::new(cfg)));
    Ok(format!("http://{addr}/states.xml"))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Each step waits at most WAIT; this bounds the whole run.
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), run(args)).await }) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("error: the quickstart did not finish within 60 s");
            std::process::ExitCode::from(1)
        }
    }
}
