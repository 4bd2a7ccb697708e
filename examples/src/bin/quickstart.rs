//! The quickstart: everything on loopback, no set-up.
//!
//! Starts the embedded OCS-dialect test server, signs two users in with
//! NTLM (MS-SIPAE, signed messages), has each watch the other while alice
//! publishes a custom state and a note, exchanges instant messages, applies a
//! sample DisableIM policy from a .reg file so the refusal shows, and signs
//! both out. To sign in to a real server, use `ocs register`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::messaging::ImEvent;
use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

fn client(user: &str, password: &str, epid: &str, port: u16) -> Result<Client, String> {
    let reg = RegisterConfig::new(&format!("sip:{user}@contoso.com"), Dialect::Ocs, epid);
    let creds = Credentials::new(&format!("CONTOSO\\{user}"), password);
    let mut cfg = ClientConfig::new(EndpointConfig::new(reg, Some(creds)));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Tcp,
    });
    Client::start(cfg).map_err(|e| e.to_string())
}

async fn until_registered(name: &str, c: &mut Client) -> Result<(), String> {
    while let Some(e) = c.next_event().await {
        match e {
            ClientEvent::Connected {
                addr,
                transport,
                source,
                ..
            } => {
                println!("  {name}: connected to {addr} over {transport} ({source})");
            }
            ClientEvent::Registration(RegistrationEvent::Registered {
                gruu,
                expires,
                keep_alive,
                auth_scheme,
                auth_version,
                ..
            }) => {
                println!(
                    "  {name}: signed in with {auth_scheme} (MS-SIPAE version {auth_version}), \
                     registration valid {expires} s, keep-alive every {} s",
                    keep_alive.map(|d| d.as_secs()).unwrap_or(0)
                );
                println!("  {name}: GRUU {}", gruu.unwrap_or_default());
                return Ok(());
            }
            ClientEvent::Registration(RegistrationEvent::Failed(e)) => {
                return Err(format!("{name}: sign-in failed: {e}"));
            }
            ClientEvent::Stopped => return Err(format!("{name}: stopped")),
            _ => {}
        }
    }
    Err(format!("{name}: client ended"))
}

/// The quickstart's sample policy: a user-policy key as an admin would
/// export it with regedit (the seed's spelling of the hive).
const SAMPLE_POLICY: &str = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\r\n\
\"DisableIM\"=dword:00000001\r\n";

/// The sample custom presence states (the format CustomStateURL points at).
const CUSTOM_STATES: &str = r#"<?xml version="1.0"?>
<customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">
  <customState ID="1" availability="busy">
    <activity LCID="1033">In a Customer Seminar</activity>
    <activity LCID="1031">Im Kundenseminar</activity>
  </customState>
</customStates>"#;

/// Waits (up to 5 s) for a presence change of `uri` that `f` accepts.
async fn until_presence(
    c: &mut Client,
    uri: &str,
    f: impl Fn(&ocs_core::presence::model::Presence) -> bool,
) -> Result<ocs_core::presence::model::Presence, String> {
    let fut = async {
        while let Some(e) = c.next_event().await {
            if let ClientEvent::Presence(ocs_core::presence_agent::PresenceEvent::Changed {
                uri: u,
                presence,
            }) = e
                && u == uri
                && f(&presence)
            {
                return Ok(*presence);
            }
        }
        Err("client ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| format!("timed out waiting for {uri}'s presence"))?
}

/// Waits (up to 5 s) for an IM event `f` accepts.
async fn until_im<T>(c: &mut Client, f: impl Fn(&ImEvent) -> Option<T>) -> Result<T, String> {
    let fut = async {
        while let Some(e) = c.next_event().await {
            if let ClientEvent::Im(im) = &e
                && let Some(t) = f(im)
            {
                return Ok(t);
            }
        }
        Err("client ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .map_err(|_| "timed out waiting for an IM event".to_owned())?
}

async fn until_signed_out(name: &str, c: &mut Client) {
    c.sign_out();
    while let Some(e) = c.next_event().await {
        if let ClientEvent::Registration(RegistrationEvent::SignedOut { .. }) = e {
            println!("  {name}: signed out");
        }
        if e == ClientEvent::Stopped {
            break;
        }
    }
}

async fn run() -> Result<(), String> {
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    println!("1. Starting the embedded OCS 2007 R2-dialect test server on loopback");
    let mut registrar = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(1),
        [3; 32],
    );
    registrar.add_user("alice", "CONTOSO", "alicepw");
    registrar.add_user("bob", "CONTOSO", "bobpw");
    let server = serve(
        SimServer::new(registrar, Rng::from_seed(2)),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        0,
        None,
    )
    .await
    .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    println!("  listening on udp {} and tcp {}", server.udp, server.tcp);

    println!("2. Signing in alice and bob with NTLM (connectionless, signed messages)");
    let mut alice = client("alice", "alicepw", "a1b2c3d4e5", server.tcp.port())?;
    let mut bob = client("bob", "bobpw", "0f1e2d3c4b", server.tcp.port())?;
    until_registered("alice", &mut alice).await?;
    until_registered("bob", &mut bob).await?;

    println!("3. What the server sees");
    let bindings = server
        .with(|s, _| {
            let mut v: Vec<String> = s
                .registrar()
                .bindings()
                .map(|b| format!("  {} at {} (epid {})", b.aor, b.contact, b.epid))
                .collect();
            v.sort();
            v
        })
        .await
        .unwrap_or_default();
    for b in bindings {
        println!("{b}");
    }

    println!("4. Presence: each watches the other; alice publishes a custom state and a note");
    let states = ocs_core::customstates::load(CUSTOM_STATES.as_bytes());
    for w in &states.warnings {
        println!("  custom states warning: {w}");
    }
    let seminar = states
        .states
        .states
        .first()
        .ok_or("the sample customStates file has no state")?;
    let text = seminar.text(1033).unwrap_or_default().to_owned();
    alice.set_custom_state(
        seminar.availability.availability(),
        1033,
        &text,
        Some("Back at 3 pm"),
    );
    bob.set_status(ocs_core::presence::model::State::Online, None)
        .await
        .map_err(|e| e.to_string())?;
    alice.watch("sip:bob@contoso.com");
    bob.watch("sip:alice@contoso.com");
    let seen = until_presence(&mut bob, "sip:alice@contoso.com", |p| {
        p.any_custom_text(1033).is_some()
    })
    .await?;
    println!(
        "  bob sees alice:   {} ({}), \"{}\", note \"{}\"",
        seen.state().as_str(),
        seen.availability.map(|a| a.0).unwrap_or(0),
        seen.any_custom_text(1033).unwrap_or(""),
        seen.note.as_ref().map(|n| &*n.text).unwrap_or("")
    );
    let seen = until_presence(&mut alice, "sip:bob@contoso.com", |p| {
        p.state() == ocs_core::presence::model::State::Online
    })
    .await?;
    println!("  alice sees bob:   {}", seen.state().as_str());

    println!("5. Instant messages (OCS session: INVITE with ms-text-format, then MESSAGE)");
    let id = alice
        .send_im("sip:bob@contoso.com", "Hello Bob, lunch at noon?")
        .await
        .map_err(|e| e.to_string())?;
    let text = until_im(&mut bob, |e| match e {
        ImEvent::Received { from, content } => Some(format!("{from}: {}", content.plain_text)),
        _ => None,
    })
    .await?;
    println!("  bob received  {text}");
    until_im(&mut alice, |e| {
        matches!(e, ImEvent::Delivered { id: d } if *d == id).then_some(())
    })
    .await?;
    println!("  alice: message {} delivered", id.0);
    let reply = bob
        .send_im("sip:alice@contoso.com", "Sure, see you there")
        .await
        .map_err(|e| e.to_string())?;
    let text = until_im(&mut alice, |e| match e {
        ImEvent::Received { from, content } => Some(format!("{from}: {}", content.plain_text)),
        _ => None,
    })
    .await?;
    println!("  alice received {text}");
    until_im(&mut bob, |e| {
        matches!(e, ImEvent::Delivered { id: d } if *d == reply).then_some(())
    })
    .await?;

    println!("6. Applying a sample policy to bob (quickstart-policy.reg)");
    let reg = ocs_core::policy::reg::parse(SAMPLE_POLICY.as_bytes()).map_err(|e| e.to_string())?;
    let policy = ocs_core::policy::eval::evaluate(
        &[("quickstart-policy.reg", reg)],
        &ocs_core::policy::eval::InBand::default(),
    );
    let disable = policy.disable_im();
    println!(
        "  DisableIM = {} (from {}{})",
        disable.value,
        disable.provenance.source,
        disable
            .provenance
            .from
            .as_deref()
            .map(|f| format!(", {f}"))
            .unwrap_or_default()
    );
    if disable.value {
        bob.set_disable_im(Some(disable.provenance.clone()));
    }
    alice.end_im_session("sip:bob@contoso.com");
    let refused = alice
        .send_im("sip:bob@contoso.com", "Are you still there?")
        .await
        .map_err(|e| e.to_string())?;
    let why = until_im(&mut alice, |e| match e {
        ImEvent::Failed { id, reason, detail } if *id == refused => {
            Some(format!("{} ({detail})", reason.description()))
        }
        _ => None,
    })
    .await?;
    println!("  alice's message was refused: {why}");
    match bob.send_im("sip:alice@contoso.com", "x").await {
        Err(e) => println!("  bob cannot send either: {e}"),
        Ok(_) => return Err("DisableIM did not stop bob from sending".into()),
    }

    println!("7. Signing out");
    until_signed_out("alice", &mut alice).await;
    until_signed_out("bob", &mut bob).await;
    println!("Done in {:.2} s.", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> std::process::ExitCode {
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
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), run()).await }) {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("error: the quickstart did not finish within 30 s");
            std::process::ExitCode::from(1)
        }
    }
}
