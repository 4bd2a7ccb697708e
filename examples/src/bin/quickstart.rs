//! The quickstart: everything on loopback, no set-up.
//!
//! Starts the embedded OCS-dialect test server, signs two users in with
//! NTLM (MS-SIPAE, signed messages), shows what the client learned, and
//! signs both out. To sign in to a real server, use `ocs register`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{Client, ClientConfig, ClientEvent};
use ocs_core::endpoint::EndpointConfig;
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

    println!("4. Signing out");
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
