//! Autodiscover against the embedded server's web services: the sans-IO
//! walk paired with the sim on a simulated clock, then the driver over
//! loopback HTTP (reqwest against the sim's listener).

use std::time::{Duration, Instant};

use ocs_core::autodiscover::{
    Discovery, DiscoveryConfig, DiscoveryError, HttpRequest, HttpResponse, SipAccess,
};
use ocs_core::rng::Rng;
use ocs_core::sim::web::{WebConfig, WebRequest, parse_request};
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    // An arbitrary origin for the simulated clock.
    Instant::now()
}

const BASE: &str = "http://127.0.0.1:8080";

fn server() -> SimServer {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(1),
        [7; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    r.add_user("bob", "CONTOSO", "bobpw");
    let mut s = SimServer::new(r, Rng::from_seed(2));
    s.configure_web(WebConfig {
        base_url: BASE.into(),
        sip_fqdn: "127.0.0.1".into(),
        sip_port: 5061,
    });
    s
}

/// Puts the client's request on the wire and reads it back as the
/// server's driver would: the bytes between the two are HTTP/1.1.
fn to_server(req: &HttpRequest) -> WebRequest {
    let target = req.url.strip_prefix(BASE).expect("the sim's URL");
    let mut wire = format!(
        "{} {target} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n",
        req.method
    );
    for (n, v) in &req.headers {
        wire.push_str(&format!("{n}: {v}\r\n"));
    }
    wire.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.len()));
    let mut bytes = wire.into_bytes();
    bytes.extend_from_slice(&req.body);
    // Fed one byte at a time: the framing waits for the whole request.
    for cut in 0..bytes.len() {
        assert_eq!(parse_request(&bytes[..cut]), Ok(None), "complete at {cut}");
    }
    let (r, used) = parse_request(&bytes).expect("parses").expect("complete");
    assert_eq!(used, bytes.len());
    r
}

fn run(
    s: &mut SimServer,
    creds: Option<(&str, &str)>,
    now: Instant,
) -> (
    Vec<String>,
    Result<ocs_core::autodiscover::Found, DiscoveryError>,
) {
    let mut d = Discovery::new(DiscoveryConfig {
        sip_uri: "sip:alice@contoso.com".into(),
        urls: Some(vec![format!(
            "{BASE}/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com"
        )]),
        credentials: creds.map(|(u, p)| (u.to_owned(), p.to_owned())),
    });
    let mut steps = Vec::new();
    while let Some(req) = d.poll_request() {
        let answer = s.handle_http(&to_server(&req), now);
        steps.push(format!("{} {}", req.method, answer.status));
        let resp = HttpResponse {
            status: answer.status,
            headers: answer.headers.clone(),
            body: answer.body.clone(),
        };
        d.handle_response(req.id, Ok(resp));
    }
    (steps, d.outcome().expect("outcome").clone())
}

#[test]
fn the_walk_and_the_sim_agree_from_root_to_token_to_sip_server() {
    let mut s = server();
    let now = t0();
    let (steps, out) = run(&mut s, Some(("CONTOSO\\alice", "alicepw")), now);
    assert_eq!(steps, ["GET 200", "GET 401", "POST 200", "GET 200"]);
    let found = out.expect("found");
    assert_eq!(
        found.servers,
        [SipAccess {
            fqdn: "127.0.0.1".into(),
            port: 5061
        }]
    );
    assert_eq!(s.web().token_count(), 1);
    // The user name may also be given as user@domain.
    let (_, out) = run(&mut s, Some(("alice@contoso.com", "alicepw")), now);
    assert!(out.is_ok(), "{out:?}");
}

#[test]
fn the_sim_refuses_wrong_passwords_and_lapsed_tokens() {
    let mut s = server();
    let now = t0();
    let (steps, out) = run(&mut s, Some(("CONTOSO\\alice", "bobpw")), now);
    assert_eq!(steps, ["GET 200", "GET 401", "POST 400"]);
    assert!(
        matches!(&out, Err(DiscoveryError::Refused(w)) if w.contains("invalid_grant")),
        "{out:?}"
    );
    let (_, out) = run(&mut s, Some(("FABRIKAM\\alice", "alicepw")), now);
    assert!(matches!(out, Err(DiscoveryError::Refused(_))), "{out:?}");
    let (_, out) = run(&mut s, None, now);
    assert!(
        matches!(out, Err(DiscoveryError::NeedsCredentials(_))),
        "{out:?}"
    );

    // A token is good for 8 hours.
    let (steps, _) = run(&mut s, Some(("alice", "alicepw")), now);
    assert_eq!(steps.len(), 4);
    let token = {
        let r = s.handle_http(
            &WebRequest {
                method: "POST".into(),
                target: "/WebTicket/oauthtoken".into(),
                headers: vec![],
                body: b"grant_type=password&username=bob&password=bobpw".to_vec(),
            },
            now,
        );
        assert_eq!(r.status, 200);
        ocs_core::oauth::parse_token(&r.body).expect("token")
    };
    assert_eq!(token.expires_in, Some(8 * 3600));
    let user = || WebRequest {
        method: "GET".into(),
        // Paths compare case-insensitively, as IIS does.
        target: "/Autodiscover/AutodiscoverService.svc/root/oauth/user".into(),
        headers: vec![("Authorization".into(), token.authorization())],
        body: vec![],
    };
    assert_eq!(s.handle_http(&user(), now).status, 200);
    let later = now + Duration::from_secs(8 * 3600 + 1);
    let r = s.handle_http(&user(), later);
    assert_eq!(r.status, 401);
    assert!(
        r.headers
            .iter()
            .any(|(n, v)| n == "WWW-Authenticate" && v.starts_with("MsRtcOAuth href=")),
        "{:?}",
        r.headers
    );
}

#[test]
fn bad_web_requests_get_a_clear_status() {
    let mut s = server();
    let now = t0();
    let status = |s: &mut SimServer, method: &str, target: &str| {
        s.handle_http(
            &WebRequest {
                method: method.into(),
                target: target.into(),
                headers: vec![],
                body: vec![],
            },
            now,
        )
        .status
    };
    assert_eq!(
        status(&mut s, "GET", "/autodiscover/autodiscoverservice.svc/root"),
        400
    );
    assert_eq!(
        status(
            &mut s,
            "POST",
            "/autodiscover/autodiscoverservice.svc/root?sipuri=a@b"
        ),
        405
    );
    assert_eq!(status(&mut s, "GET", "/WebTicket/oauthtoken"), 405);
    assert_eq!(status(&mut s, "GET", "/nothing"), 404);
    let r = s.handle_http(
        &WebRequest {
            method: "POST".into(),
            target: "/WebTicket/oauthtoken".into(),
            headers: vec![],
            body: b"grant_type=urn%3Amicrosoft.rtc%3Awindows".to_vec(),
        },
        now,
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("unsupported_grant_type"));

    use ocs_core::sim::web::{MAX_BODY_BYTES, MAX_HEAD_BYTES, RequestError};
    let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
    assert_eq!(
        parse_request(big_head.as_bytes()),
        Err(RequestError::TooLarge("head"))
    );
    let big_body = format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    assert_eq!(
        parse_request(big_body.as_bytes()),
        Err(RequestError::TooLarge("body"))
    );
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(
        parse_request(chunked),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        parse_request(b"\x00\x01 junk\r\n\r\n"),
        Err(RequestError::Malformed(_))
    ));
    let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
    assert_eq!(
        parse_request(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
        Err(RequestError::TooLarge("headers"))
    );
}

/// The driver over loopback: reqwest against the sim's HTTP listener,
/// ending at the sim's SIP listener.
#[tokio::test]
async fn the_driver_discovers_the_embedded_server_over_http() {
    let sim = ocs_core::driver::sim::serve_users("contoso.com", &[("alice", "alicepw")])
        .await
        .expect("sim");
    let url = format!(
        "http://{}/autodiscover/autodiscoverservice.svc/root?sipuri=alice@contoso.com",
        sim.http
    );
    let mut seen = Vec::new();
    let (out, attempts) = ocs_core::driver::autodiscover(
        DiscoveryConfig {
            sip_uri: "sip:alice@contoso.com".into(),
            urls: Some(vec![url]),
            credentials: Some(("CONTOSO\\alice".into(), "alicepw".into())),
        },
        &*ocs_core::driver::http::builtin(&ocs_core::driver::TlsSettings::default()).expect("http"),
        |a| seen.push(a.outcome.clone()),
    )
    .await;
    let found = out.expect("found");
    assert_eq!(found.servers.len(), 1);
    assert_eq!(found.servers[0].fqdn, "127.0.0.1");
    assert_eq!(found.servers[0].port, sim.tcp.port());
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert_eq!(seen.len(), 4, "progress saw each step");

    // Nothing listening: the walk ends with what it tried.
    let dead = format!("http://127.0.0.1:{}/x", free_port());
    let (out, attempts) = ocs_core::driver::autodiscover(
        DiscoveryConfig {
            sip_uri: "sip:alice@contoso.com".into(),
            urls: Some(vec![dead.clone()]),
            credentials: None,
        },
        &*ocs_core::driver::http::builtin(&ocs_core::driver::TlsSettings::default()).expect("http"),
        |_| {},
    )
    .await;
    assert!(
        matches!(&out, Err(DiscoveryError::NotFound(w)) if w.contains(&dead)),
        "{out:?}"
    );
    assert_eq!(attempts.len(), 1);
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
