//! Address-book download against a real HTTP server on loopback serving
//! generated `.lsabs` files: first download, deltas, fallback to a full
//! file, damaged files, HTTP failures, atomic storage, and the client
//! wiring (schedule after sign-in, provisioning URL, search, diagnostics).
#![cfg(feature = "tokio")]

mod common;
use common::client::{registered, wait_for};
use common::http;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ocs_core::addressbook::{
    AbsDay, Change, Entry, FileName, Phone, PhoneKind, Stored, format::write_delta,
    format::write_full,
};
use ocs_core::discovery::{Dialect, ServerConfig, Transport};
use ocs_core::driver::sim::serve;
use ocs_core::driver::{
    AbsStore, AddressBookConfig, AddressBookEvent, Client, ClientConfig, ClientEvent,
    DownloadError, STATE_FILE, TlsSettings, download,
};
use ocs_core::endpoint::EndpointConfig;
use ocs_core::register::{Credentials, RegisterConfig};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn person(i: u32) -> Entry {
    let mut id = vec![0u8; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    Entry {
        id,
        display_name: Some(format!("Person{i} Example")),
        given_name: Some(format!("Person{i}")),
        surname: Some("Example".into()),
        email: Some(format!("p{i}@contoso.com")),
        sip_uri: Some(format!("sip:p{i}@contoso.com")),
        phones: vec![Phone {
            kind: PhoneKind::Work,
            number: format!("+1 425 555 {i:04}"),
            normalized: Some(format!("tel:+1425555{i:04}")),
        }],
        ..Entry::default()
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ocs-abs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cfg(dir: &std::path::Path) -> AddressBookConfig {
    let mut c = AddressBookConfig::new(dir);
    c.initial_delay = Duration::ZERO;
    c.timeout = Duration::from_secs(5);
    c
}

#[tokio::test]
async fn first_download_then_delta_then_fallback_to_full() {
    let srv = http::start().await;
    let dir = temp_dir("flow");
    let c = cfg(&dir);
    let tls = ocs_core::driver::http::builtin(&TlsSettings::default()).expect("http");
    let t = AbsDay(0x1000);
    let people: Vec<Entry> = (0..300).map(person).collect();
    srv.put(
        &format!("/abs/{}", FileName::full(AbsDay(t.0 - 2))),
        write_full(AbsDay(t.0 - 2), &people),
    );

    // Nothing local: the newest full file of the last days.
    let d = download(&srv.url("/abs"), &c, &*tls, None, t, 1000)
        .await
        .expect("first");
    assert_eq!(d.book.len(), 300);
    assert_eq!(d.fetched, Some(FileName::full(AbsDay(t.0 - 2))));
    assert_eq!(
        srv.log(),
        [
            "/abs/F-1000.lsabs",
            "/abs/F-0FFF.lsabs",
            "/abs/F-0FFE.lsabs"
        ]
    );
    let store = AbsStore::open(&dir).expect("store");
    assert_eq!(store.state().expect("state").day(), AbsDay(t.0 - 2));
    assert_eq!(
        d.book.search("person12", 20).len(),
        11,
        "Person12 and Person120..129"
    );

    // A delta from our day to today: one request.
    let mut renamed = person(7);
    renamed.display_name = Some("Zed Renamed".into());
    srv.put(
        "/abs/D-0FFE-1000.lsabs",
        write_delta(
            AbsDay(t.0 - 2),
            t,
            &[
                Change::Replace(Box::new(renamed)),
                Change::Delete(person(8).id),
                Change::Replace(Box::new(person(1000))),
            ],
        ),
    );
    let before = srv.log().len();
    let d = download(&srv.url("/abs/"), &c, &*tls, None, t, 2000)
        .await
        .expect("delta");
    assert_eq!(srv.log()[before..], ["/abs/D-0FFE-1000.lsabs"]);
    assert_eq!(d.book.len(), 300);
    assert_eq!(d.book.search("zed", 5).len(), 1);
    assert!(d.book.by_sip_uri("sip:p8@contoso.com").is_none());
    assert!(d.book.by_sip_uri("p1000@contoso.com").is_some());
    let st = store.state().expect("state");
    assert_eq!(st.deltas, [FileName::delta(AbsDay(t.0 - 2), t)]);
    assert_eq!(st.downloaded_unix, 2000);

    // Current already: nothing fetched, the book is still there.
    let d = download(&srv.url("/abs"), &c, &*tls, None, t, 3000)
        .await
        .expect("current");
    assert_eq!(d.fetched, None);
    assert_eq!(d.book.len(), 300);

    // Next day, no delta (too many changes): the full file.
    let t2 = AbsDay(t.0 + 1);
    srv.put(
        &format!("/abs/{}", FileName::full(t2)),
        write_full(t2, &people[..10]),
    );
    let before = srv.log().len();
    let d = download(&srv.url("/abs"), &c, &*tls, None, t2, 4000)
        .await
        .expect("full again");
    assert_eq!(
        srv.log()[before..],
        ["/abs/D-1000-1001.lsabs", "/abs/F-1001.lsabs"]
    );
    assert_eq!(d.book.len(), 10);
    // Old files are gone; no partial files are left.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["F-1001.lsabs", STATE_FILE]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ntlm_protected_downloads_authenticate_on_one_connection() {
    let srv = http::start().await;
    srv.files.lock().unwrap().ntlm = Some(("CONTOSO".into(), "alice".into(), "alicepw".into()));
    let t = AbsDay(0x3000);
    srv.put("/abs/F-3000.lsabs", write_full(t, &[person(1), person(2)]));
    let dir = temp_dir("ntlm");
    let mut c = cfg(&dir);
    let tls = ocs_core::driver::http::builtin(&TlsSettings::default()).expect("http");

    // Without credentials: the 401 says what the server wants.
    let e = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect_err("401");
    assert!(
        e.to_string().contains("no credentials are configured"),
        "{e}"
    );
    assert!(e.to_string().contains("Negotiate, NTLM"), "{e}");
    // Over plain http the NTLM response is not given away by default.
    let good = Credentials::new("CONTOSO\\alice", "alicepw");
    let e = download(&srv.url("/abs"), &c, &*tls, Some(&good), t, 1)
        .await
        .expect_err("not over http");
    assert!(e.to_string().contains("NTLM over plain http"), "{e}");
    assert!(srv.files.lock().unwrap().auth_log.is_empty());
    // This test server has no TLS: allow it explicitly from here on.
    c.allow_ntlm_over_http = true;
    // A wrong password is refused by the server's NTLMv2 check.
    let bad = Credentials::new("CONTOSO\\alice", "wrong");
    let e = download(&srv.url("/abs"), &c, &*tls, Some(&bad), t, 1)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("refused"), "{e}");
    assert_eq!(
        srv.files
            .lock()
            .unwrap()
            .auth_log
            .last()
            .map(String::as_str),
        Some("refused")
    );

    // The right one: NEGOTIATE, CHALLENGE, AUTHENTICATE, then the file.
    // A fresh HTTP client, so no connection is left from the runs above.
    let tls = ocs_core::driver::http::builtin(&TlsSettings::default()).expect("http");
    let before = srv.files.lock().unwrap().connections;
    let d = download(&srv.url("/abs"), &c, &*tls, Some(&good), t, 1)
        .await
        .expect("authenticated");
    assert_eq!(d.book.len(), 2);
    let f = srv.files.lock().unwrap();
    assert_eq!(
        f.auth_log[f.auth_log.len() - 2..],
        ["negotiate", "authenticated CONTOSO\\alice"]
    );
    // The whole handshake and the download ran on one connection.
    assert_eq!(f.connections - before, 1, "{:?}", f.log);
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn failures_are_clear_and_leave_the_store_alone() {
    let srv = http::start().await;
    let dir = temp_dir("fail");
    let c = cfg(&dir);
    let tls = ocs_core::driver::http::builtin(&TlsSettings::default()).expect("http");
    let t = AbsDay(0x2000);

    let e = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect_err("empty server");
    assert!(matches!(e, DownloadError::NothingOnServer { .. }), "{e}");
    assert!(e.to_string().contains("F-2000.lsabs … F-1FFA.lsabs"), "{e}");

    // A damaged file: a positioned error, nothing stored.
    let mut bad = write_full(t, &[person(1), person(2)]);
    bad[180] ^= 1;
    srv.put("/abs/F-2000.lsabs", bad);
    let e = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect_err("damaged");
    assert!(e.to_string().starts_with("F-2000.lsabs: byte "), "{e}");
    assert!(AbsStore::open(&dir).expect("store").state().is_none());

    // Another day's file under this name: refused.
    srv.put(
        "/abs/F-2000.lsabs",
        write_full(AbsDay(0x1FFF), &[person(1)]),
    );
    let e = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect_err("wrong day");
    assert!(e.to_string().contains("not the file asked for"), "{e}");

    // Windows authentication asked for: said plainly.
    srv.files.lock().unwrap().fail = Some((
        401,
        vec![
            ("WWW-Authenticate".into(), "Negotiate".into()),
            ("WWW-Authenticate".into(), "NTLM".into()),
        ],
    ));
    let e = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect_err("401");
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(e.to_string().contains("Negotiate, NTLM"), "{e}");

    // Too large.
    srv.files.lock().unwrap().fail = None;
    srv.put("/abs/F-2000.lsabs", write_full(t, &[person(1), person(2)]));
    let mut small = c.clone();
    small.max_bytes = 100;
    let e = download(&srv.url("/abs"), &small, &*tls, None, t, 1)
        .await
        .expect_err("large");
    assert!(matches!(e, DownloadError::TooLarge { .. }), "{e}");

    // Nobody listening.
    let e = download("http://127.0.0.1:9/abs", &c, &*tls, None, t, 1)
        .await
        .expect_err("refused");
    assert!(matches!(e, DownloadError::Http { .. }), "{e}");

    // A damaged state file means "start afresh", not an error.
    std::fs::write(dir.join(STATE_FILE), "garbage").expect("write");
    let d = download(&srv.url("/abs"), &c, &*tls, None, t, 1)
        .await
        .expect("fresh");
    assert_eq!(d.book.len(), 2);
    let st: Stored = AbsStore::open(&dir).expect("store").state().expect("state");
    assert_eq!(st.full, FileName::full(t));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn sim_with_abs(url: &str) -> ocs_core::driver::sim::SimHandle {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(51),
        [9; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    let mut sim = SimServer::new(r, Rng::from_seed(52));
    sim.set_address_book_url(url);
    serve(sim, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, None)
        .await
        .expect("serve")
}

fn client_config(port: u16, dir: &std::path::Path) -> ClientConfig {
    let reg = RegisterConfig::new("sip:alice@contoso.com", Dialect::Ocs, "abcdabcdab");
    let mut cfg = ClientConfig::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "alicepw")),
    ));
    cfg.server = Some(ServerConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        transport: Transport::Tcp,
    });
    cfg.address_book = Some(self::cfg(dir));
    cfg
}

fn ready(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::AddressBook(AddressBookEvent::Ready { .. }))
}

#[tokio::test]
async fn client_downloads_from_the_provisioned_url_after_sign_in() {
    let srv = http::start().await;
    let today = AbsDay::from_unix_secs(unix_now());
    let people: Vec<Entry> = (0..1000).map(person).collect();
    // Yesterday's too, in case the day turns during the test.
    for d in [today, AbsDay(today.0 - 1)] {
        srv.put(
            &format!("/abs/int/{}", FileName::full(d)),
            write_full(d, &people),
        );
    }
    let server = sim_with_abs(&srv.url("/abs")).await;
    let dir = temp_dir("client");
    let mut c = Client::start(client_config(server.tcp.port(), &dir)).expect("client");
    wait_for(&mut c, "registration", registered).await;
    let seen = wait_for(&mut c, "address book", ready).await;
    let Some(ClientEvent::AddressBook(AddressBookEvent::Ready {
        entries, fetched, ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!(*entries, 1000);
    assert!(
        fetched.as_deref().is_some_and(|f| f.starts_with("F-")),
        "{fetched:?}"
    );
    assert_eq!(seen.last().map(ClientEvent::id), Some(1800));
    assert!(srv.log()[0].starts_with("/abs/int/F-"), "{:?}", srv.log());

    let hits = c.search_address_book("person99", 20).await.expect("search");
    let names: Vec<_> = hits.iter().filter_map(|e| e.display_name.clone()).collect();
    assert_eq!(names.len(), 11, "{names:?}");
    let by_phone = c
        .search_address_book("+1 425 555 0042", 5)
        .await
        .expect("phone");
    assert_eq!(by_phone[0].sip_uri.as_deref(), Some("sip:p42@contoso.com"));

    let snap = c.diagnostics().await.expect("snapshot");
    let ab = &snap.address_book;
    assert_eq!(ab.url.as_deref(), Some(srv.url("/abs/int").as_str()));
    assert!(ab.last_download.is_some(), "{ab:?}");
    assert!(ab.next_download.is_some(), "{ab:?}");
    assert!(
        ab.status.starts_with("1000 entries, current to day"),
        "{ab:?}"
    );
    // The next run builds on the book in memory: with the stored full
    // file damaged it still finds the book current and fetches nothing
    // (reading the folder again would have failed and fetched it anew).
    let full = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "lsabs"))
        .expect("the full file");
    let good = std::fs::read(&full).expect("read");
    std::fs::write(&full, b"damaged").expect("damage");
    let asked = srv.log().len();
    c.download_address_book();
    let seen = wait_for(&mut c, "second run", ready).await;
    let Some(ClientEvent::AddressBook(AddressBookEvent::Ready {
        fetched, entries, ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!((*entries, fetched.as_deref()), (1000, None));
    assert!(
        srv.log()[asked..].iter().all(|p| !p.contains("/F-")),
        "{:?}",
        &srv.log()[asked..]
    );
    std::fs::write(&full, good).expect("restore");
    c.sign_out();
    wait_for(&mut c, "stop", |e| matches!(e, ClientEvent::Stopped)).await;

    // A new client reads the folder at start, before any download.
    let mut cfg = client_config(server.tcp.port(), &dir);
    if let Some(ab) = &mut cfg.address_book {
        ab.initial_delay = Duration::from_secs(3600);
    }
    let mut c = Client::start(cfg).expect("client");
    let seen = wait_for(&mut c, "stored book", ready).await;
    let Some(ClientEvent::AddressBook(AddressBookEvent::Ready {
        entries, fetched, ..
    })) = seen.last()
    else {
        unreachable!()
    };
    assert_eq!((*entries, fetched.clone()), (1000, None));
    // Search works from the folder before any download.
    let hit = c.search_address_book("p42@", 5).await.expect("search");
    assert_eq!(hit.len(), 1);
    if !seen.iter().any(registered) {
        wait_for(&mut c, "sign-in", registered).await;
    }
    // Signed in: the first download waits (up to an hour), none has run.
    let snap = c.diagnostics().await.expect("snapshot");
    assert!(
        snap.address_book.next_download.is_some(),
        "{:?}",
        snap.address_book
    );
    assert_eq!(snap.address_book.last_download, None);
    c.sign_out();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn client_reports_failures_with_back_off() {
    let srv = http::start().await;
    srv.files.lock().unwrap().fail = Some((503, Vec::new()));
    let server = sim_with_abs(&srv.url("/abs")).await;
    let dir = temp_dir("client-fail");
    let mut c = Client::start(client_config(server.tcp.port(), &dir)).expect("client");
    let seen = wait_for(&mut c, "failure", |e| {
        matches!(e, ClientEvent::AddressBook(AddressBookEvent::Failed { .. }))
    })
    .await;
    let Some(ClientEvent::AddressBook(AddressBookEvent::Failed {
        error,
        failures,
        retry_in,
    })) = seen.last()
    else {
        unreachable!()
    };
    assert!(error.contains("HTTP 503"), "{error}");
    assert_eq!(*failures, 1);
    assert_eq!(*retry_in, Duration::from_secs(60));
    let ev = seen.last().expect("event");
    assert_eq!(
        (ev.id(), ev.severity()),
        (1801, ocs_core::diag::Severity::Warning)
    );
    let snap = c.diagnostics().await.expect("snapshot");
    assert!(
        snap.address_book.status.starts_with("failing: "),
        "{:?}",
        snap.address_book
    );
    // Asking again runs at once rather than after the back-off.
    srv.files.lock().unwrap().fail = None;
    let today = AbsDay::from_unix_secs(unix_now());
    srv.put(
        &format!("/abs/int/{}", FileName::full(today)),
        write_full(today, &[person(1)]),
    );
    c.download_address_book();
    wait_for(&mut c, "ready", ready).await;
    c.sign_out();
    let _ = std::fs::remove_dir_all(&dir);
}
