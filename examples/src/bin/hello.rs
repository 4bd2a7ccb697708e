//! The shortest useful program: two users sign in to the embedded test
//! server, Bob watches Alice, Alice goes busy and sends Bob a message, both
//! sign out. Everything comes from the top of `ocs_core`.

use std::time::Duration;

use ocs_core::{
    Client, ClientConfig, ClientEvent, ImEvent, PresenceEvent, State, Transport, start_test_server,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server =
        start_test_server("contoso.com", &[("alice", "alicepw"), ("bob", "bobpw")]).await?;
    let addr = server.tcp.to_string();
    let config = |user: &str| {
        ClientConfig::builder(&format!("sip:{user}@contoso.com"))
            .credentials(&format!("CONTOSO\\{user}"), &format!("{user}pw"))
            .server(&addr, Transport::Tcp)
            .build()
    };
    let mut alice = Client::start(config("alice")?)?;
    let mut bob = Client::start(config("bob")?)?;
    alice.signed_in().await?;
    bob.signed_in().await?;
    println!("alice and bob signed in");

    bob.watch("sip:alice@contoso.com").await?;
    alice
        .set_status(State::Busy, Some("writing the report"))
        .await?;
    let seen = until(&mut bob, |e| match e {
        ClientEvent::Presence(PresenceEvent::Changed { presence, .. })
            if presence.state() == State::Busy =>
        {
            Some(presence.state())
        }
        _ => None,
    })
    .await?;
    println!("bob sees alice: {}", seen.as_str());

    // Every command has an id and one outcome: as an event, or awaited.
    let sent = alice
        .send_im("sip:bob@contoso.com", "lunch at noon?")
        .await?;
    let text = until(&mut bob, |e| match e {
        ClientEvent::Im(ImEvent::Received { content, .. }) => Some(content.plain_text.clone()),
        _ => None,
    })
    .await?;
    println!("bob got: {text}");
    let id = sent.id;
    sent.outcome().await?;
    println!("alice: IM {} delivered", id.0);

    for c in [&mut alice, &mut bob] {
        c.sign_out();
        until(c, |e| (*e == ClientEvent::Stopped).then_some(())).await?;
    }
    println!("signed out");
    Ok(())
}

/// Reads `c`'s events until `f` picks one out, for at most 10 s.
async fn until<T>(
    c: &mut Client,
    f: impl Fn(&ClientEvent) -> Option<T>,
) -> Result<T, Box<dyn std::error::Error>> {
    let wait = async {
        while let Some(e) = c.next_event().await {
            if let Some(t) = f(&e) {
                return Ok(t);
            }
        }
        Err("the client stopped".into())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| Err("nothing happened within 10 s".into()))
}
