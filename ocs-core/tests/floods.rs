//! Floods and bombs (issue 25, part 4): the client's endpoint and the
//! embedded server under a 10 MB header, 100,000 headers, a body larger
//! than Content-Length allows, a Content-Length of a gigabyte, slowloris
//! (one byte a second), 10,000 requests in a second, and every XML document
//! we parse under billion-laughs and deep nesting. For each: the peak heap
//! it took (a counting allocator), the error it gave, and whether the
//! session went on. The caps are asserted; the table is printed (README
//! "Faults").
//!
//! One test runs every case in turn, so the allocator sees one at a time.
// The counting global allocator must implement `GlobalAlloc` (unsafe); nothing else is.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ocs_core::discovery::{Dialect, Transport};
use ocs_core::endpoint::{Endpoint, EndpointConfig, EndpointEvent};
use ocs_core::register::{LocalTransport, RegisterConfig};
use ocs_core::rng::Rng;
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
use ocs_core::sip::{Message, builder};

struct Counting;

static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let c = CUR.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(c, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only
// the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CUR.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                grew(new - l.size());
            } else {
                CUR.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f`; returns its result and the most heap it held at once above
/// what was held before.
fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CUR.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

const MB: usize = 1024 * 1024;

/// An attack as pieces (never held whole: 10 MB of it would swamp the
/// measurement), fed 8 KiB at a time as the driver reads.
struct Attack {
    name: &'static str,
    head: Vec<u8>,
    /// `fill` repeated to this many bytes after `head`.
    fill_len: usize,
    fill: &'static [u8],
    tail: Vec<u8>,
}

impl Attack {
    fn pieces(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        let chunk: Vec<u8> = self.fill.iter().copied().cycle().take(8192).collect();
        let full = self.fill_len / 8192;
        let rest = self.fill_len % 8192;
        std::iter::once(self.head.clone())
            .chain((0..full).map(move |_| chunk.clone()))
            .chain(std::iter::once(
                self.fill.iter().copied().cycle().take(rest).collect(),
            ))
            .chain(std::iter::once(self.tail.clone()))
    }
}

fn stream_attacks() -> Vec<Attack> {
    let options = |extra: &str| {
        format!(
            "OPTIONS sip:alice@example.org SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9:5060;branch=z9hG4bKf1\r\n\
             From: <sip:eve@example.org>;tag=e1\r\nTo: <sip:alice@example.org>\r\nCall-ID: flood\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}"
        )
        .into_bytes()
    };
    vec![
        Attack {
            name: "10 MB header",
            head: options("X-Big: "),
            fill_len: 10 * MB,
            fill: b"a",
            tail: b"\r\nContent-Length: 0\r\n\r\n".to_vec(),
        },
        Attack {
            name: "100,000 headers",
            head: options(""),
            fill_len: 100_000 * 6,
            fill: b"X: y\r\n",
            tail: b"Content-Length: 0\r\n\r\n".to_vec(),
        },
        Attack {
            name: "Content-Length: 1 GB",
            head: options("Content-Length: 1073741824\r\n\r\n"),
            fill_len: 10 * MB,
            fill: b"b",
            tail: Vec::new(),
        },
        Attack {
            name: "body beyond Content-Length",
            head: options("Content-Length: 5\r\n\r\nhello"),
            fill_len: 10 * MB,
            fill: b"c",
            tail: Vec::new(),
        },
    ]
}

/// The client's endpoint, registered over `transport` (standard dialect).
fn client(transport: Transport, now: Instant) -> Endpoint {
    let reg = RegisterConfig::new("sip:alice@example.org", Dialect::Standard, "0123456789");
    let mut ep = Endpoint::new(
        EndpointConfig::new(reg, None),
        1,
        [1; 32],
        now,
        SystemTime::UNIX_EPOCH,
    );
    ep.connected(
        LocalTransport {
            transport,
            addr: "192.0.2.1:5060".parse().expect("addr"),
        },
        now,
    );
    ep.register(now).expect("register");
    let req = Message::parse(&ep.poll_transmit().expect("REGISTER")).expect("parses");
    let mut ok = builder::response(&req, 200, None, Some("srv")).expect("200");
    ok.insert_header(ok.header_count() - 1, "Expires", "3600");
    ep.handle_bytes(&ok.to_bytes(), now);
    while ep.poll_event().is_some() {}
    assert!(ep.registration().is_registered());
    ep
}

struct Row {
    target: &'static str,
    case: String,
    fed: usize,
    peak: usize,
    result: String,
}

fn print(rows: &[Row]) {
    println!("| target | case | bytes fed | peak heap | result |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} KiB | {} |",
            r.target,
            r.case,
            r.fed,
            r.peak / 1024,
            r.result
        );
    }
}

/// Feeds the attack to a registered client over TCP until the endpoint
/// says the stream is broken (the driver closes the connection then).
fn client_stream(a: &Attack, rows: &mut Vec<Row>) -> (Tally, Option<String>) {
    let now = t0();
    let mut ep = client(Transport::Tcp, now);
    let ((fed, answers, broken), p) = peak(|| {
        let (mut fed, mut answers, mut broken) = (0, Tally::default(), None);
        for piece in a.pieces() {
            ep.handle_bytes(&piece, now);
            fed += piece.len();
            while let Some(b) = ep.poll_transmit() {
                answers.push(&b);
            }
            while let Some(e) = ep.poll_event() {
                if let EndpointEvent::ConnectionBroken(why) = e {
                    broken = Some(why);
                }
            }
            if broken.is_some() {
                break;
            }
        }
        (fed, answers, broken)
    });
    let mut result = summary(&answers, false);
    if let Some(why) = &broken {
        result.push_str(&format!(", connection closed: {why}"));
    }
    rows.push(Row {
        target: "client (TCP)",
        case: a.name.into(),
        fed,
        peak: p,
        result,
    });
    (answers, broken)
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Answers by their status line, counted (not kept: 10,000 strings would
/// be most of what the measurement sees).
#[derive(Default, Debug, PartialEq)]
struct Tally(Vec<(String, usize)>);

impl Tally {
    fn push(&mut self, b: &[u8]) {
        let line = String::from_utf8_lossy(b);
        let line = line.lines().next().unwrap_or_default();
        match self.0.iter_mut().find(|(k, _)| k == line) {
            Some((_, n)) => *n += 1,
            None => self.0.push((line.to_owned(), 1)),
        }
    }

    fn len(&self) -> usize {
        self.0.iter().map(|(_, n)| n).sum()
    }

    fn only(&self) -> Option<&str> {
        match self.0.as_slice() {
            [(k, _)] => Some(k),
            _ => None,
        }
    }

    fn has(&self, prefix: &str) -> bool {
        self.0.iter().any(|(k, _)| k.starts_with(prefix))
    }
}

/// The embedded server with alice.
fn server() -> SimServer {
    let mut r = Registrar::new(
        RegistrarConfig::ocs("example.org"),
        Rng::from_seed(1),
        [7; 32],
    );
    r.add_user("alice", "EXAMPLE", "alicepw");
    SimServer::new(r, Rng::from_seed(2))
}

/// What the server sent and whether it closed the connection, in a word.
fn server_said(s: &mut SimServer, answers: &mut Tally, closed: &mut bool) {
    while let Some((_, b)) = s.poll_transmit() {
        answers.push(&b);
    }
    while s.poll_close().is_some() {
        *closed = true;
    }
}

fn summary(answers: &Tally, closed: bool) -> String {
    let mut out: Vec<String> = answers
        .0
        .iter()
        .map(|(k, n)| format!("{n} × {k}"))
        .collect();
    if out.is_empty() {
        out.push("no answer".into());
    }
    if closed {
        out.push("connection closed".into());
    }
    out.join(", ")
}

fn server_stream(a: &Attack, rows: &mut Vec<Row>) -> (Tally, bool) {
    let now = t0();
    let mut s = server();
    let peer: SocketAddr = "192.0.2.9:40000".parse().expect("addr");
    let ((fed, answers, closed), p) = peak(|| {
        let (mut fed, mut answers, mut closed) = (0, Tally::default(), false);
        for piece in a.pieces() {
            s.handle_stream(peer, &piece, now);
            fed += piece.len();
            server_said(&mut s, &mut answers, &mut closed);
            if closed {
                // The driver stops reading once it closes.
                break;
            }
        }
        (fed, answers, closed)
    });
    rows.push(Row {
        target: "server (TCP)",
        case: a.name.into(),
        fed,
        peak: p,
        result: summary(&answers, closed),
    });
    (answers, closed)
}

/// `n` OPTIONS requests, each its own transaction, spread over one
/// simulated second, as datagrams (UDP) or one stream (TCP).
fn options_flood(n: usize, transport: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    (0..n).map(move |i| {
        format!(
            "OPTIONS sip:alice@example.org SIP/2.0\r\nVia: SIP/2.0/{transport} 192.0.2.9:5060;branch=z9hG4bKfl{i}\r\n\
             From: <sip:eve@example.org>;tag=e{i}\r\nTo: <sip:alice@example.org>\r\nCall-ID: flood{i}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    })
}

fn client_request_flood(transport: Transport, rows: &mut Vec<Row>) -> (Tally, usize) {
    let start = t0();
    let mut ep = client(transport, start);
    let n = 10_000;
    let ((answers, fed), p) = peak(|| {
        let (mut answers, mut fed) = (Tally::default(), 0);
        for (i, req) in options_flood(n, transport.as_str()).enumerate() {
            let now = start + Duration::from_micros(100 * i as u64);
            fed += req.len();
            ep.handle_bytes(&req, now);
            ep.handle_timeout(now);
            while let Some(b) = ep.poll_transmit() {
                answers.push(&b);
            }
            while ep.poll_event().is_some() {}
        }
        (answers, fed)
    });
    rows.push(Row {
        target: if transport == Transport::Udp {
            "client (UDP)"
        } else {
            "client (TCP)"
        },
        case: format!("{n} requests in 1 s"),
        fed,
        peak: p,
        result: summary(&answers, false),
    });
    // A minute later the flood's transactions have ended: a new request is
    // answered as usual, and the registration is still there.
    let later = start + Duration::from_secs(60);
    ep.handle_timeout(later);
    while ep.poll_transmit().is_some() {}
    let one = options_flood(n + 1, transport.as_str())
        .last()
        .expect("one");
    ep.handle_bytes(&one, later);
    let after: Vec<String> = std::iter::from_fn(|| ep.poll_transmit())
        .map(|b| first_line(&b))
        .collect();
    assert_eq!(after, ["SIP/2.0 200 OK"], "{transport}: after the flood");
    assert!(ep.registration().is_registered());
    (answers, p)
}

fn server_request_flood(udp: bool, rows: &mut Vec<Row>) -> Tally {
    let start = t0();
    let mut s = server();
    let peer: SocketAddr = "192.0.2.9:40000".parse().expect("addr");
    let n = 10_000;
    let ((answers, fed), p) = peak(|| {
        let (mut answers, mut fed, mut closed) = (Tally::default(), 0, false);
        for (i, req) in options_flood(n, if udp { "UDP" } else { "TCP" }).enumerate() {
            let now = start + Duration::from_micros(100 * i as u64);
            fed += req.len();
            if udp {
                s.handle_datagram(peer, &req, now);
            } else {
                s.handle_stream(peer, &req, now);
            }
            s.handle_timeout(now);
            server_said(&mut s, &mut answers, &mut closed);
        }
        (answers, fed)
    });
    rows.push(Row {
        target: if udp { "server (UDP)" } else { "server (TCP)" },
        case: format!("{n} requests in 1 s"),
        fed,
        peak: p,
        result: summary(&answers, false),
    });
    answers
}

/// One byte a (simulated) second: a whole OPTIONS would take minutes.
fn server_slowloris(rows: &mut Vec<Row>) -> (usize, bool) {
    let start = t0();
    let mut s = server();
    let peer: SocketAddr = "192.0.2.9:40000".parse().expect("addr");
    let req: Vec<u8> = options_flood(1, "TCP").next().expect("one");
    let ((fed, answers, closed), p) = peak(|| {
        let (mut fed, mut answers, mut closed) = (0, Tally::default(), false);
        for (i, b) in req.iter().enumerate() {
            let now = start + Duration::from_secs(i as u64);
            s.handle_timeout(now);
            server_said(&mut s, &mut answers, &mut closed);
            if closed {
                break;
            }
            s.handle_stream(peer, std::slice::from_ref(b), now);
            fed += 1;
        }
        (fed, answers, closed)
    });
    rows.push(Row {
        target: "server (TCP)",
        case: "slowloris, 1 byte/s".into(),
        fed,
        peak: p,
        result: summary(&answers, closed),
    });
    (fed, closed)
}

/// Billion laughs: ten entities, each ten of the one before (a gigabyte
/// of "lol" once expanded), in a document a parser of ours expects.
fn billion_laughs(root: &str) -> Vec<u8> {
    let mut d = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 \"lol\">\n");
    for i in 1..10 {
        let refs = format!("&lol{};", i - 1).repeat(10);
        d.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    d.push_str(&format!("]>\n<{root}>&lol9;</{root}>"));
    d.into_bytes()
}

/// 100,000 nested elements inside the expected root.
fn deep(root: &str) -> Vec<u8> {
    let n = 100_000;
    format!("<{root}>{}{}</{root}>", "<a>".repeat(n), "</a>".repeat(n)).into_bytes()
}

/// Every XML document the client (and the server, which parses with the
/// same front end) reads, by its parser.
/// A parser under test: its name, the root element it expects, and a call.
type XmlParser = (&'static str, &'static str, fn(&[u8]) -> Result<(), String>);

fn xml_parsers() -> Vec<XmlParser> {
    use ocs_core::presence;
    fn e<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
        r.map(|_| ()).map_err(|e| e.to_string())
    }
    vec![
        ("PIDF", "presence", |b| e(presence::parse_pidf(b))),
        ("categories", "categories", |b| {
            e(presence::parse_categories(b))
        }),
        ("roaming-self", "roamingData", |b| {
            e(presence::parse_roaming_self(b))
        }),
        ("contact list", "contactList", |b| {
            e(presence::parse_contact_list(b))
        }),
        ("roaming contacts", "roamingData", |b| {
            e(presence::parse_roaming_contacts(b))
        }),
        ("contact SOAP", "Envelope", |b| {
            e(presence::contacts::parse_contact_soap(b))
        }),
        ("addGroup answer", "addGroup", |b| {
            e(presence::contacts::parse_add_group_response(b))
        }),
        ("SERVICE fault", "Fault", |b| {
            e(presence::publish::parse_fault(b))
        }),
        ("rlmi NOTIFY", "list", |b| {
            e(presence::rlmi::parse_notify_body(
                b,
                "",
                &presence::ParseOptions::default(),
            ))
        }),
        ("custom states", "customStates", |b| {
            ocs_core::customstates::validate(b)
                .map(|_| ())
                .map_err(|v| {
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
        }),
        ("provisioning", "provisionGroupList", |b| {
            e(ocs_core::provisioning::parse(b))
        }),
        ("autodiscover", "AutodiscoverResponse", |b| {
            e(ocs_core::autodiscover::parse(b))
        }),
        ("isComposing", "isComposing", |b| {
            e(ocs_core::im::IsComposing::parse(b))
        }),
        ("KeyboardActivity", "KeyboardActivity", |b| {
            e(ocs_core::im::typing::parse_keyboard_activity(b))
        }),
    ]
}

fn xml_bombs(rows: &mut Vec<Row>) {
    for (name, root, parse) in xml_parsers() {
        for (kind, doc) in [
            ("billion laughs", billion_laughs(root)),
            ("100,000 nested elements", deep(root)),
        ] {
            let (r, p) = peak(|| parse(&doc));
            rows.push(Row {
                target: "XML",
                case: format!("{name}: {kind}"),
                fed: doc.len(),
                peak: p,
                result: match r {
                    Ok(()) => "accepted".into(),
                    Err(e) => format!("refused: {e}"),
                },
            });
        }
    }
}

/// The caps this test holds every case to (README "Faults").
const STREAM_CAP: usize = 256 * 1024;
const UDP_FLOOD_CAP: usize = 12 * MB;
const XML_CAP: usize = 64 * 1024;

#[test]
fn floods_and_bombs_stay_within_their_caps() {
    let mut rows = Vec::new();
    for a in stream_attacks() {
        let (c_answers, broken) = client_stream(&a, &mut rows);
        let (s_answers, closed) = server_stream(&a, &mut rows);
        // Framing that cannot be trusted closes the connection, on both
        // sides, with the position in the error.
        let why = broken.unwrap_or_else(|| panic!("client kept the stream: {}", a.name));
        assert!(why.contains("at byte"), "{why}");
        assert!(closed, "server kept the stream: {}", a.name);
        if a.name.starts_with("Content-Length") {
            // The head parsed: the request is answered before the close.
            assert_eq!(c_answers.only(), Some("SIP/2.0 513 Message Too Large"));
            assert_eq!(s_answers.only(), Some("SIP/2.0 513 Message Too Large"));
        }
    }
    let (answers, _) = client_request_flood(Transport::Udp, &mut rows);
    assert_eq!(answers.len(), 10_000, "every request answered");
    let (answers, _) = client_request_flood(Transport::Tcp, &mut rows);
    assert_eq!(answers.only(), Some("SIP/2.0 200 OK"));
    let answers = server_request_flood(true, &mut rows);
    assert_eq!(answers.len(), 10_000, "every request answered");
    assert!(answers.has("SIP/2.0 503"), "{answers:?}");
    let answers = server_request_flood(false, &mut rows);
    assert_eq!(answers.len(), 10_000);
    assert_eq!(answers.only(), Some("SIP/2.0 200 OK"));
    let (fed, closed) = server_slowloris(&mut rows);
    assert!(closed && fed <= 31, "slowloris held {fed} s");
    xml_bombs(&mut rows);
    print(&rows);
    for r in &rows {
        let cap = match (r.target, r.case.as_str()) {
            ("XML", _) => XML_CAP,
            ("client (UDP)" | "server (UDP)", _) => UDP_FLOOD_CAP,
            _ => STREAM_CAP,
        };
        assert!(
            r.peak <= cap,
            "{} / {}: {} bytes > {cap}",
            r.target,
            r.case,
            r.peak
        );
        if r.target == "XML" {
            assert!(r.result.starts_with("refused"), "{}: {}", r.case, r.result);
        }
    }
}
