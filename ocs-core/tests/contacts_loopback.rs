//! The server-stored contact list against the embedded server over
//! loopback: the roaming-contacts subscription brings the list, SOAP
//! changes (add, move, rename, remove, groups) come back confirmed and
//! match the server's list, refusals name their reason, and a list changed
//! behind the client's back (stale version, 409) is re-read and the change
//! retried. (The embedded server keeps one endpoint per user, so a second
//! endpoint following through contactDelta is covered by the document
//! tests, not here.)
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, sim_client_config, wait_for};

use std::net::{IpAddr, Ipv4Addr};

use ocs_core::discovery::Dialect;
use ocs_core::driver::sim::{SimHandle, serve};
use ocs_core::driver::{Client, ClientEvent};
use ocs_core::error::Error;
use ocs_core::presence::ContactList;
use ocs_core::presence_agent::PresenceEvent;
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

async fn server(seed: u64) -> SimHandle {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(seed),
        [seed as u8; 32],
    );
    for u in ["alice", "bob", "carol"] {
        r.add_user(u, "CONTOSO", &format!("{u}pw"));
    }
    let mut sim = SimServer::new(r, Rng::from_seed(seed + 1));
    sim.set_contacts(
        "sip:alice@contoso.com",
        &[("carol@contoso.com", "Carol", "")],
    );
    serve(sim, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None)
        .await
        .expect("serve")
}

fn client(user: &str, epid: &str, port: u16, dialect: Dialect) -> Client {
    Client::start(sim_client_config(user, epid, port, dialect)).expect("client")
}

fn list_event(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::Presence(PresenceEvent::ContactList(_)))
}

fn groups_of(l: &ContactList, uri: &str) -> Vec<String> {
    let c = l.contact(uri).expect("listed");
    c.groups
        .iter()
        .map(|g| l.group(*g).expect("group").name.to_string())
        .collect()
}

#[tokio::test]
async fn add_move_rename_remove_refuse_and_retry_a_stale_version() {
    let srv = server(71).await;
    let port = srv.tcp.port();
    let mut a1 = client("alice", "a1a1a1a1a1", port, Dialect::Ocs);
    wait_for(&mut a1, "sign-in", registered).await;
    let seen = wait_for(&mut a1, "contact list", list_event).await;
    let Some(ClientEvent::Presence(PresenceEvent::ContactList(l))) = seen.last() else {
        unreachable!()
    };
    assert_eq!(l.groups.len(), 1);
    assert_eq!(&*l.groups[0].name, "~");
    assert_eq!(
        l.contact("carol@contoso.com")
            .and_then(|c| c.name.as_deref()),
        Some("Carol")
    );
    let mut bob = client("bob", "b0b0b0b0b0", port, Dialect::Ocs);
    wait_for(&mut bob, "bob signs in", registered).await;

    let team = a1.add_group("Team").await.expect("add group");
    assert_eq!(team, 2);
    a1.add_contact("bob@contoso.com", Some("Team"))
        .await
        .expect("add bob");
    let l = a1.contact_list().await.expect("list").expect("known");
    assert_eq!(groups_of(&l, "sip:bob@contoso.com"), ["Team"]);
    // Adding watches: bob's presence arrives.
    wait_for(&mut a1, "bob's presence", |e| {
        matches!(e, ClientEvent::Presence(PresenceEvent::Changed { uri, .. }) if uri == "sip:bob@contoso.com")
    })
    .await;
    // Adding again to the default group keeps Team (a copy, not a move).
    a1.add_contact("sip:bob@contoso.com", None)
        .await
        .expect("copy");
    let l = a1.contact_list().await.expect("list").expect("known");
    assert_eq!(groups_of(&l, "sip:bob@contoso.com"), ["Team", "~"]);
    a1.move_contact("sip:bob@contoso.com", "~")
        .await
        .expect("move");
    a1.rename_group("Team", "Project X").await.expect("rename");
    a1.move_contact("sip:carol@contoso.com", "Project X")
        .await
        .expect("move carol");
    a1.remove_contact("sip:bob@contoso.com")
        .await
        .expect("remove bob");

    let want = a1.contact_list().await.expect("list").expect("known");
    assert!(want.contact("bob@contoso.com").is_none());
    assert_eq!(groups_of(&want, "carol@contoso.com"), ["Project X"]);
    assert_eq!(want.delta_num, Some(8), "seven changes after version 1");
    // The server agrees.
    let server_list = srv
        .with(|s, _| s.presence().contact_list("sip:alice@contoso.com").cloned())
        .await
        .flatten()
        .expect("server list");
    assert_eq!(server_list, want);

    // Refusals, each with a reason, and nothing sent.
    for (r, what) in [
        (a1.remove_group("~").await, "default group"),
        (a1.remove_group("Nope").await, "no group"),
        (
            a1.add_contact("dave@contoso.com", Some("Nope")).await,
            "no group",
        ),
        (
            a1.remove_contact("dave@contoso.com").await,
            "not in the contact list",
        ),
        (a1.add_group("Project X").await.map(drop), "exists already"),
        (a1.add_contact("  ", None).await, "empty"),
    ] {
        match r {
            Err(Error::ApiMisuse { detail: m, .. }) => assert!(m.contains(what), "{m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    a1.remove_group("Project X").await.expect("remove group");
    let l = a1.contact_list().await.expect("list").expect("known");
    assert!(
        l.contact("carol@contoso.com")
            .expect("carol stays")
            .groups
            .is_empty()
    );
    assert_eq!(l.groups.len(), 1);

    // The list changes behind our back (another client, an administrator):
    // our next change carries a stale version, gets 409, and is retried
    // against the list read again.
    srv.with(|s, _| {
        s.set_contacts(
            "sip:alice@contoso.com",
            &[("dave@contoso.com", "Dave", "Elsewhere")],
        )
    })
    .await
    .expect("server");
    let id = a1.add_group("After").await.expect("retried");
    let l = a1.contact_list().await.expect("list").expect("known");
    assert!(l.contact("dave@contoso.com").is_some(), "{l:?}");
    assert!(l.contact("carol@contoso.com").is_none(), "{l:?}");
    assert_eq!(l.group(id).map(|g| &*g.name), Some("After"));
    assert_eq!(l.delta_num, Some(2));

    for c in [a1, bob] {
        c.sign_out();
    }
}

#[tokio::test]
async fn the_standard_dialect_has_no_server_list() {
    let srv = server(81).await;
    // The sim is OCS-only for contact lists; the refusal is local anyway.
    let c = client("alice", "a1a1a1a1a1", srv.tcp.port(), Dialect::Standard);
    match c.add_group("x").await {
        Err(Error::ApiMisuse { detail: m, .. }) => assert!(m.contains("standard dialect"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.contact_list().await.expect("list"), None);
}
