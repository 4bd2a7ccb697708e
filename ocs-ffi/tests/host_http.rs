//! HTTP supplied by the app (`OcsClient.with_http`): a signed-in client
//! loads its CustomStateURL through the app's HTTP stack, the body in
//! pieces; a transport that drops its responder, throws, fails, stops
//! early, floods or answers too late ends the request with its reason,
//! never a hang or unbounded memory. In the mobile build
//! (`--no-default-features --features sim`, which `scripts/test.sh` runs)
//! the library has no HTTP client of its own: without the app's, the fetch
//! fails saying so.
#![cfg(feature = "sim")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ocs_core::driver::http::{FetchError, Request};
use ocs_ffi::host_http::{HostHttp, HttpHeader, HttpRequest, HttpResponder, HttpTransport};
use ocs_ffi::uniffi_api::{
    Dialect, LogLevel, LogRecord, Logger, OcsClient, OcsConfig, ServerAddress, SimServer,
    Transport, set_logger,
};

/// A small blocking HTTP/1.1 client over std's TcpStream, as an app's
/// stack would be: answers the library's requests from its own thread,
/// the body in pieces of `piece` bytes. Records what it was asked.
struct StdHttp {
    piece: usize,
    asked: Mutex<Vec<HttpRequest>>,
}

impl StdHttp {
    fn new(piece: usize) -> Arc<StdHttp> {
        Arc::new(StdHttp {
            piece,
            asked: Mutex::default(),
        })
    }

    fn exchange(&self, req: &HttpRequest, out: &HttpResponder) -> Result<(), String> {
        let rest = req
            .url
            .strip_prefix("http://")
            .ok_or("this test transport speaks plain http only")?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut s = TcpStream::connect(authority).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(req.timeout_ms)))
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\n",
            req.method,
            if path.is_empty() { "/" } else { path },
            req.body.len()
        );
        for h in &req.headers {
            head.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(&req.body).map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of head")?;
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or("no status")?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| HttpHeader {
                name: n.trim().to_owned(),
                value: v.trim().to_owned(),
            })
            .collect();
        if !out.head(status, headers) {
            return Ok(());
        }
        for piece in answer[split + 4..].chunks(self.piece) {
            if !out.body(piece.to_vec()) {
                return Ok(());
            }
        }
        out.end();
        Ok(())
    }
}

impl HttpTransport for StdHttp {
    fn send(&self, request: HttpRequest, response: Arc<HttpResponder>) {
        self.asked.lock().unwrap().push(request.clone());
        if let Err(e) = self.exchange(&request, &response) {
            response.fail(e, false);
        }
    }
}

const STATES: &str = r#"<?xml version="1.0"?>
<customStates xmlns="http://schemas.microsoft.com/09/2009/communicator/customStates">
  <customState ID="1" availability="busy"><activity LCID="1033">In the app's HTTP</activity></customState>
</customStates>
"#;

/// Serves `body` at any path over plain HTTP on loopback, one request per
/// connection, until the process ends.
fn file_server(body: &'static str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/custom-states.xml")
}

fn sim() -> Arc<SimServer> {
    let sim = SimServer::start("contoso.com".into()).expect("sim");
    for u in ["alice", "bob"] {
        sim.add_user(u.into(), "CONTOSO".into(), format!("{u}pw"));
    }
    sim
}

fn config(sim: &SimServer, user: &str, custom_state_url: String) -> OcsConfig {
    OcsConfig {
        uri: format!("sip:{user}@contoso.com"),
        auth_user: format!("CONTOSO\\{user}"),
        password: format!("{user}pw"),
        dialect: Dialect::Ocs,
        server: Some(ServerAddress {
            host: "127.0.0.1".into(),
            port: sim.tcp_port(),
            transport: Transport::Tcp,
        }),
        epid: None,
        trace_path: None,
        trace_pcap: false,
        policy_files: Vec::new(),
        custom_state_url: Some(custom_state_url),
        ca_file: None,
        language_id: 1033,
        autodiscover: false,
        autodiscover_urls: Vec::new(),
        provision_certificates: false,
        certificate_store: None,
    }
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    ocs_ffi::runtime().block_on(f)
}

/// Keeps every log record (the logger is one per process).
struct Records(Mutex<Vec<LogRecord>>);

impl Logger for Records {
    fn log(&self, record: LogRecord) {
        self.0.lock().unwrap().push(record);
    }
}

fn records() -> &'static Arc<Records> {
    static R: OnceLock<Arc<Records>> = OnceLock::new();
    R.get_or_init(|| {
        let r = Arc::new(Records(Mutex::default()));
        set_logger(r.clone(), LogLevel::Verbose).expect("the only logger");
        r
    })
}

/// The first record with event `id` for `user` within 10 s.
fn wait_record(user: &str, id: u32) -> LogRecord {
    let uri = format!("sip:{user}@contoso.com");
    for _ in 0..200 {
        if let Some(r) = records()
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.event_id == id && r.user == uri)
        {
            return r.clone();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no event {id} for {user}");
}

#[test]
fn custom_states_come_through_the_apps_http() {
    records();
    let sim = sim();
    let url = file_server(STATES);
    // 7-byte pieces: the file arrives in many.
    let http = StdHttp::new(7);
    let c = OcsClient::with_http(config(&sim, "alice", url.clone()), http.clone()).expect("client");
    block(c.sign_in()).expect("signed in");
    let mut states = Vec::new();
    for _ in 0..200 {
        states = c.custom_states();
        if !states.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(states.len(), 1, "loaded through the app's HTTP");
    assert_eq!(states[0].texts[0].text, "In the app's HTTP");
    let asked = http.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        (asked[0].method.as_str(), asked[0].url.as_str()),
        ("GET", url.as_str())
    );
    assert!(asked[0].timeout_ms > 0);
    block(c.sign_out()).expect("signed out");
}

/// Without the app's HTTP the mobile build cannot fetch, and says why;
/// the desktop build uses its own.
#[test]
fn without_the_apps_http() {
    records();
    let sim = sim();
    let c = OcsClient::new(config(&sim, "bob", file_server(STATES))).expect("client");
    block(c.sign_in()).expect("signed in");
    if cfg!(feature = "builtin-http") {
        for _ in 0..200 {
            if !c.custom_states().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(c.custom_states().len(), 1, "the built-in HTTP client");
    } else {
        let r = wait_record("bob", 1601);
        assert!(r.message.contains("no HTTP client of its own"), "{r:?}");
    }
    block(c.sign_out()).expect("signed out");
}

/// Answers in ways a careless app might.
struct Careless(&'static str);

impl HttpTransport for Careless {
    fn send(&self, _request: HttpRequest, response: Arc<HttpResponder>) {
        match self.0 {
            // Forgets the request: the responder is dropped unanswered.
            "drop" => {}
            "fail" => response.fail("no route to host".into(), false),
            // A body before its head.
            "body-first" => {
                assert!(!response.body(b"x".to_vec()));
            }
            // Throws (a panic in a Rust host).
            "panic" => panic!("the app's transport threw"),
            // Stops in the middle of the body.
            "cut" => {
                assert!(response.head(200, Vec::new()));
                assert!(response.body(b"<customStates>".to_vec()));
            }
            // Sends more than the library takes.
            "flood" => {
                assert!(response.head(200, Vec::new()));
                let mut sent = 0;
                while response.body(vec![b' '; 4096]) {
                    sent += 4096;
                    assert!(sent < 1 << 20, "the library never said stop");
                }
            }
            // Answers later, from its own thread, after the library gave up.
            _ => {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    assert!(!response.head(200, Vec::new()), "too late: not wanted");
                    let _ = LATE_SEEN.set(());
                });
            }
        }
    }
}

static LATE_SEEN: OnceLock<()> = OnceLock::new();

fn fetch(how: &'static str, limit: usize) -> Result<Vec<u8>, FetchError> {
    let http = HostHttp(Arc::new(Careless(how)));
    block(async {
        ocs_core::driver::http::fetch(
            &http,
            Request::get("http://127.0.0.1:9/x", Duration::from_millis(200)),
            limit,
        )
        .await
        .map(|(_, body)| body)
    })
}

#[test]
fn a_transport_that_does_not_answer_properly_ends_the_request_with_its_reason() {
    for (how, says) in [
        ("drop", "gave no answer"),
        ("panic", "gave no answer"),
        ("fail", "no route to host"),
        ("body-first", "body before the head"),
        ("cut", "stopped before the end of the body"),
    ] {
        match fetch(how, 1000) {
            Err(FetchError::Http(e)) => {
                assert!(e.message.contains(says), "{how}: {e}");
                assert!(!e.timed_out, "{how}");
            }
            other => panic!("{how}: {other:?}"),
        }
    }
    assert_eq!(fetch("flood", 64 << 10), Err(FetchError::TooLarge));
    match fetch("late", 1000) {
        Err(FetchError::Http(e)) => assert!(e.timed_out, "{e}"),
        other => panic!("late: {other:?}"),
    }
    for _ in 0..40 {
        if LATE_SEEN.get().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the late answer was never refused");
}

#[test]
fn a_body_arrives_in_pieces_with_its_head() {
    let url = file_server(STATES);
    let http = HostHttp(StdHttp::new(3));
    let (resp, body) = block(ocs_core::driver::http::fetch(
        &http,
        Request::get(url, Duration::from_secs(5)),
        1 << 20,
    ))
    .expect("fetched");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type").next(), Some("text/xml"));
    assert_eq!(body, STATES.as_bytes());
}

#[test]
fn a_request_shown_hides_its_credentials() {
    let r = HttpRequest {
        method: "GET".into(),
        url: "https://pool/abs/F-0001.lsabs".into(),
        headers: vec![HttpHeader {
            name: "Authorization".into(),
            value: "NTLM TlRMTVNTUAAD".into(),
        }],
        body: Vec::new(),
        timeout_ms: 1000,
    };
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("TlRMTVNTUAAD") && shown.contains("<redacted>"),
        "{shown}"
    );
}
