//! The checks behind each fuzz target, kept out of the `fuzz_target!`
//! bodies so that `cargo test` can replay the corpora (and any crash
//! artifacts) on stable, without libFuzzer.
//!
//! Every `check_*` function must not panic for any input; a panic (or a
//! failed assertion about a property) is a finding.
// `deny`, not `forbid`: the counting allocator in `heap` is the one place
// that needs `unsafe` (GlobalAlloc is an unsafe trait).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod heap;

use ocs_core::sip::{
    disposition, multipart, Capabilities, Framing, Limits, Message, NameAddr, SipUri, Via,
};

// ----- targets ----------------------------------------------------------------

/// `parse_message`: parse as a datagram and as a stream message (default
/// and tight limits), run every typed accessor, and the UA disposition.
pub fn check_parse_message(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        exercise(&m);
    }
    let tight = Limits {
        max_head_bytes: 256,
        max_headers: 8,
        max_body_bytes: 64,
    };
    for limits in [Limits::default(), tight] {
        if let Ok(m) = Message::parse_with(data, Framing::Stream, &limits) {
            exercise(&m);
        }
    }
    let _ = disposition(data, &Capabilities::default());
}

/// `roundtrip`: whatever parses prints to bytes that parse again to the
/// same message and print identically.
pub fn check_roundtrip(data: &[u8]) {
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let printed = m.to_bytes();
    let again = Message::parse(&printed).unwrap_or_else(|e| {
        panic!(
            "printed message does not parse ({e}): {:?}",
            String::from_utf8_lossy(&printed)
        )
    });
    assert_eq!(again.to_bytes(), printed, "second print differs");
    assert_eq!(again.start_line(), m.start_line());
    assert_eq!(again.body(), m.body());
    let h1: Vec<_> = m.headers().map(|h| (h.name_as_written, h.value)).collect();
    let h2: Vec<_> = again
        .headers()
        .map(|h| (h.name_as_written, h.value))
        .collect();
    assert_eq!(h1, h2, "headers differ after reparse");
}

/// `stream_framing`: the first byte picks how many split points follow
/// (low 3 bits) and whether to feed byte by byte (bit 3); the rest is fed
/// to a [`StreamFramer`] in those chunks. The messages and the final error
/// state must equal feeding everything at once.
pub fn check_stream_framing(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(sel & 7);
    if rest.len() < k {
        return;
    }
    let (picks, payload) = rest.split_at(k);
    let cuts: Vec<usize> = if sel & 8 != 0 {
        (0..payload.len()).collect()
    } else {
        picks
            .iter()
            .map(|&b| usize::from(b) * (payload.len() + 1) / 256)
            .collect()
    };
    let whole = frame_chunks(payload, &[]);
    let chunked = frame_chunks(payload, &cuts);
    assert_eq!(whole.0, chunked.0, "messages differ with cuts {cuts:?}");
    assert_eq!(whole.1, chunked.1, "error state differs with cuts {cuts:?}");
    for m in &whole.0 {
        let again = Message::parse_with(m, Framing::Stream, &Limits::default())
            .unwrap_or_else(|e| panic!("framed message does not reparse: {e}"));
        assert_eq!(&again.to_bytes(), m);
    }
}

/// `typed_headers`: the input is one header value; every typed parser runs
/// on it, and what parses prints to something that parses to the same
/// print.
pub fn check_typed_headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let v: &str = &text;
    exercise_value(v, 0);
    if let Ok(u) = SipUri::parse(v) {
        let p1 = u.to_string();
        let u2 = SipUri::parse(&p1).unwrap_or_else(|e| panic!("printed URI {p1:?}: {e}"));
        assert_eq!(u2.to_string(), p1);
        assert!(u.equivalent(&u2) && u2.equivalent(&u), "{v:?} vs {p1:?}");
    }
    if let Ok(x) = Via::parse(v, 0) {
        let p1 = x.to_string();
        let x2 = Via::parse(&p1, 0).unwrap_or_else(|e| panic!("printed Via {p1:?}: {e}"));
        assert_eq!(x2.to_string(), p1);
    }
    if let Ok(x) = NameAddr::parse(v, 0) {
        let p1 = x.to_string();
        let x2 =
            NameAddr::parse(&p1, 0).unwrap_or_else(|e| panic!("printed name-addr {p1:?}: {e}"));
        assert_eq!(x2.to_string(), p1);
    }
}

/// A part as `multipart::build` takes it.
type PartSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// `multipart`: the first byte gives the boundary length (mod 71), the
/// next bytes the boundary, the rest is the body. What splits rebuilds
/// into a body that splits into the same contents.
pub fn check_multipart(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(sel) % 71;
    if rest.len() < n {
        return;
    }
    let (b, body) = rest.split_at(n);
    let boundary = String::from_utf8_lossy(b);
    let Ok(parts) = multipart::parse(body, &boundary) else {
        return;
    };
    let extra: Vec<Vec<(&str, &str)>> = parts
        .iter()
        .map(|p| {
            p.headers
                .iter()
                .copied()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Type"))
                .collect()
        })
        .collect();
    let spec: Vec<PartSpec<'_>> = parts
        .iter()
        .zip(&extra)
        .map(|(p, e)| (p.content_type(), &e[..], p.body))
        .collect();
    let rebuilt = multipart::build(&boundary, &spec);
    let again = multipart::parse(&rebuilt, &boundary).unwrap_or_else(|e| {
        panic!(
            "rebuilt body does not split ({e}): {:?}",
            String::from_utf8_lossy(&rebuilt)
        )
    });
    assert_eq!(again.len(), parts.len());
    for (a, p) in again.iter().zip(&parts) {
        assert_eq!(a.body, p.body);
        assert_eq!(a.content_type(), p.content_type());
    }
}

/// `reg_parser`: `.reg` bytes (any encoding) never panic the parser; what
/// parses prints to text that parses to the same operations (lines aside),
/// in UTF-8 and in UTF-16LE, and the evaluator accepts it.
pub fn check_reg_parser(data: &[u8]) {
    use ocs_core::policy::{encode_utf16le_with_bom, evaluate, reg, InBand};
    let Ok(f) = reg::parse(data) else {
        return;
    };
    let printed = f.to_text();
    let again = reg::parse_str(&printed)
        .unwrap_or_else(|e| panic!("printed .reg does not parse ({e}):\n{printed}"));
    assert_eq!(
        again.ops_without_lines(),
        f.ops_without_lines(),
        "ops differ after reprint"
    );
    assert_eq!(again.to_text(), printed, "second print differs");
    let wide = reg::parse(&encode_utf16le_with_bom(&printed))
        .unwrap_or_else(|e| panic!("UTF-16 print does not parse ({e})"));
    assert_eq!(wide, again);
    let p = evaluate(&[("f.reg", f)], &InBand::new());
    let _ = (
        p.settings(),
        p.disable_im(),
        p.transport(),
        p.custom_state_url(),
    );
    let _ = p.gal_download_initial_delay();
}

/// `adm_parser`: ADM bytes never panic the parser; every policy it lists
/// has a key, and every part too.
pub fn check_adm_parser(data: &[u8]) {
    use ocs_core::policy::adm;
    let Ok(t) = adm::parse(data) else {
        return;
    };
    for p in &t.policies {
        let _ = p.value_names().count();
        for part in &p.parts {
            let _ = (&part.key, &part.kind);
        }
    }
}

// ----- helpers ------------------------------------------------------------------

// The harness (`exercise`, `exercise_value`, `frame_chunks`) is shared
// with the proptests.
#[path = "../../ocs-core/tests/support/exercise.rs"]
mod exercise;
pub use exercise::{exercise, exercise_value, frame_chunks};

// ----- IM content layer (ocs_core::im) ------------------------------------------

/// `sdp`: SDP bytes never panic the parser; what parses prints to text
/// that parses and prints identically, and the IM media line is found.
pub fn check_sdp(data: &[u8]) {
    use ocs_core::im::sdp::{message_media, Sdp};
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let printed = sdp.to_string();
    let again = Sdp::parse(printed.as_bytes())
        .unwrap_or_else(|e| panic!("printed SDP does not parse ({e}): {printed:?}"));
    assert_eq!(again.to_string(), printed, "second print differs");
    assert_eq!(message_media(&again), message_media(&sdp));
    if let Some(m) = message_media(&sdp) {
        let _ = (m.accepts("text/plain"), m.accepts("text/html"));
    }
}

/// `ms_text_format`: a header value never panics the decoder; what decodes
/// re-encodes to a value that decodes to the same body. The input as text
/// also round-trips as a message.
pub fn check_ms_text_format(data: &[u8]) {
    use ocs_core::im::textformat::{MsTextFormat, MsgrFormat};
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = MsTextFormat::parse(&text) {
        let _ = f.text();
        let _ = f.content();
        let enc = f.encode();
        let again = MsTextFormat::parse(&enc)
            .unwrap_or_else(|e| panic!("re-encoded value does not parse ({e}): {enc:?}"));
        assert_eq!(again.body, f.body);
        assert_eq!(again.content_type, f.content_type);
    }
    if text.len() > 16 * 1024 {
        return;
    }
    let f = MsTextFormat::new("text/plain", &text).with_msgr(MsgrFormat::new(&text));
    let back = MsTextFormat::parse(&f.encode()).expect("encoded message decodes");
    assert_eq!(back.text().expect("UTF-8"), text);
    assert_eq!(
        back.msgr.map(|m| m.font_name().into_owned()),
        Some(text.into_owned())
    );
}

/// `im_body`: the first byte picks a content type, the rest is the body.
/// Body parsing, the HTML/RTF reducers and the typing parsers never panic.
pub fn check_im_body(data: &[u8]) {
    use ocs_core::im::body::{html_to_text, parse_body, rtf_to_text};
    use ocs_core::im::typing::{parse_keyboard_activity, parse_typing, IsComposing};
    const TYPES: [&str; 8] = [
        "text/plain; charset=UTF-8",
        "text/html; charset=UTF-8",
        "text/rtf",
        "multipart/alternative; boundary=b1",
        "text/plain; charset=windows-1252",
        "application/im-iscomposing+xml",
        "application/xml",
        "image/gif",
    ];
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ct = TYPES[usize::from(sel) % TYPES.len()];
    match parse_body(ct, body) {
        Ok(c) => assert_eq!(c.original, body),
        Err(e) => assert!(matches!(e.status(), 400 | 413 | 415)),
    }
    let _ = parse_typing(ct, body);
    let _ = parse_keyboard_activity(body);
    if let Ok(c) = IsComposing::parse(body) {
        let again = IsComposing::parse(c.to_xml().as_bytes())
            .unwrap_or_else(|e| panic!("printed isComposing does not parse: {e}"));
        assert_eq!(again.state, c.state);
        assert_eq!(again.refresh, c.refresh);
    }
    let _ = html_to_text(&String::from_utf8_lossy(body));
    let _ = rtf_to_text(body);
}

// ----- presence documents -------------------------------------------------------

/// `presence_categories`: an msrtc categories document (and, on the same
/// bytes, the other OCS presence parsers: roaming-self, roaming-contacts,
/// the 409 fault). What parses is internally consistent.
pub fn check_presence_categories(data: &[u8]) {
    use ocs_core::presence::{
        parse_categories, parse_contact_list, parse_fault, parse_roaming_self, State,
    };
    if let Ok(p) = parse_categories(data) {
        match p.availability {
            None => assert_eq!(p.state(), State::Offline),
            Some(a) => assert_eq!(p.state(), a.state()),
        }
        let _ = p.heap_size();
        let _ = p.any_custom_text(1033);
        for r in &p.raw_categories {
            // Raw categories are slices of the input document.
            assert!(r.xml.starts_with('<') && r.xml.ends_with('>'));
        }
    }
    if let Ok(r) = parse_roaming_self(data) {
        let table = r.versions();
        assert!(table.len() <= r.publications.len());
    }
    let _ = parse_contact_list(data);
    if let Ok(f) = parse_fault(data) {
        let _ = f.is_wrong_delta();
    }
}

/// `rlmi_multipart`: the first byte gives the boundary length (mod 71),
/// the next bytes the boundary, the rest is a multipart/related rlmi body.
pub fn check_rlmi_multipart(data: &[u8]) {
    use ocs_core::presence::{parse_notify_body, parse_rlmi_multipart, ParseOptions};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(sel) % 71;
    if rest.len() < n {
        return;
    }
    let (b, body) = rest.split_at(n);
    let boundary = String::from_utf8_lossy(b);
    let opts = ParseOptions::default();
    if let Ok(v) = parse_rlmi_multipart(body, &boundary, &opts) {
        for u in &v {
            if let Some(p) = &u.presence {
                let _ = p.state();
            }
        }
    }
    let _ = parse_notify_body(
        body,
        &format!("multipart/related; boundary=\"{boundary}\""),
        &opts,
    );
    let _ = parse_notify_body(body, "", &opts);
}

/// `pidf`: a PIDF/RPID document; what parses is rebuilt as a PUBLISH
/// document that parses to the same offline-ness and note.
pub fn check_pidf(data: &[u8]) {
    use ocs_core::presence::{build_pidf, parse_pidf, PidfPublish, State};
    let Ok(p) = parse_pidf(data) else {
        return;
    };
    let note = p.note.as_ref().map(|n| n.text.to_string());
    let doc = build_pidf(&PidfPublish::for_state(
        &p.uri,
        "t1",
        p.state(),
        note.as_deref(),
    ));
    let again =
        parse_pidf(doc.as_bytes()).unwrap_or_else(|e| panic!("built PIDF does not parse: {e}"));
    assert_eq!(again.state() == State::Offline, p.state() == State::Offline);
    // Notes are trimmed on parse; a note of only whitespace vanishes.
    let trimmed = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    assert_eq!(again.note.as_ref().map(|n| &*n.text), trimmed);
}

/// `custom_states`: strict and lenient custom-states parsing agree; the
/// input as a URL goes through the URL policy.
pub fn check_custom_states(data: &[u8]) {
    use ocs_core::customstates::{check_url, load, validate, ClientVersion, MAX_STATES};
    let loaded = load(data);
    assert!(loaded.states.states.len() <= MAX_STATES);
    match validate(data) {
        Ok(s) => {
            assert!(loaded.warnings.is_empty());
            assert_eq!(s, loaded.states);
        }
        Err(v) => {
            assert!(!v.is_empty());
            assert_eq!(v, loaded.warnings);
        }
    }
    let url = String::from_utf8_lossy(data);
    for client in [ClientVersion::Oc2007, ClientVersion::Oc2007R2] {
        let strict = check_url(&url, client, true).is_ok();
        let relaxed = check_url(&url, client, false).is_ok();
        assert!(
            !strict || relaxed,
            "high-security allows what normal mode refuses"
        );
    }
}

/// `provisioning`: the provisionGroupList parser never panics, and what it
/// accepts feeds the policy engine and picks an address-book URL.
/// Feeds arbitrary bytes to the autodiscover answer parser and the walk:
/// no panic; an answer that parses always says what to do next; a SIP
/// access point has a host and a port; the lookup URLs for any text are
/// http(s) and a walk over them never repeats itself.
pub fn check_autodiscover(data: &[u8]) {
    use ocs_core::autodiscover::{lookup_urls, parse, Next, Walk};
    if let Ok(r) = parse(data) {
        match r.next() {
            Next::Sip(points) => {
                assert!(!points.is_empty());
                for p in points {
                    assert!(!p.fqdn.is_empty() && p.port != 0);
                }
            }
            Next::Redirect(u) | Next::User(u) => {
                let mut w = Walk::new();
                let _ = w.step(&u);
            }
            Next::Nowhere => {}
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(urls) = lookup_urls(text) {
            assert_eq!(urls.len(), 4);
            let mut w = Walk::new();
            for u in &urls {
                assert!(u.starts_with("http://") || u.starts_with("https://"));
                w.step(u)
                    .expect("the lookup URLs are distinct http(s) URLs");
            }
        }
    }
}

/// `oauth_token`: the token answer reader and the `MsRtcOAuth` challenge
/// reader never panic; an error's offset lies within the input; a token
/// read has a non-empty access token, and its `Debug` never shows it.
pub fn check_oauth_token(data: &[u8]) {
    use ocs_core::oauth::{parse_object, parse_token, Challenge};
    match parse_token(data) {
        Ok(t) => {
            assert!(!t.access_token.is_empty());
            assert!(t.authorization().starts_with("Bearer "));
            // Debug does not depend on what the token says (only on its
            // length): a token of the same length prints the same.
            let mut other = t.clone();
            other.access_token = "x".repeat(t.access_token.len());
            assert_eq!(format!("{t:?}"), format!("{other:?}"));
        }
        Err(e) => assert!(e.offset <= data.len().max(ocs_core::oauth::MAX_TOKEN_BYTES)),
    }
    if let Err(e) = parse_object(data) {
        assert!(e.offset <= data.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = Challenge::parse(text) {
            assert!(!c.href.is_empty());
        }
    }
}

/// `web_request`: the embedded server's HTTP request reader frames any
/// bytes (complete, incomplete or refused, never more than given), and
/// the web services answer whatever it reads with a status.
pub fn check_web_request(data: &[u8]) {
    use ocs_core::sim::web::{parse_request, WebConfig, MAX_BODY_BYTES};
    match parse_request(data) {
        Ok(Some((req, used))) => {
            assert!(used <= data.len());
            assert!(req.body.len() <= MAX_BODY_BYTES);
            let mut s = sim_with_users();
            s.configure_web(WebConfig {
                base_url: "http://127.0.0.1:8080".into(),
                sip_fqdn: "127.0.0.1".into(),
                sip_port: 5061,
            });
            let r = s.handle_http(&req, fuzz_now());
            assert!((200..600).contains(&r.status));
            let wire = r.to_bytes();
            assert!(wire.starts_with(b"HTTP/1.1 "));
        }
        Ok(None) => {
            // Every prefix of an incomplete request is incomplete too.
            let cut = data.len() / 2;
            assert!(!matches!(parse_request(&data[..cut]), Ok(Some(_))));
        }
        Err(e) => assert!(matches!(e.status(), 400 | 413)),
    }
}

/// `discovery_walk`: the autodiscover walk against answers made from the
/// input (each: a status, a Location or challenge, a body). It ends
/// within its request cap; a password or token goes only over https or
/// to this machine; every request names an http(s) URL.
pub fn check_discovery_walk(data: &[u8]) {
    use ocs_core::autodiscover::{Discovery, DiscoveryConfig, HttpResponse, MAX_REQUESTS};
    let mut d = Discovery::new(DiscoveryConfig {
        sip_uri: "sip:alice@contoso.com".into(),
        urls: None,
        credentials: Some(("CONTOSO\\alice".into(), "secret-pw".into())),
    });
    let mut chunks = data.split(|b| *b == 0xFF);
    let mut n = 0;
    while let Some(req) = d.poll_request() {
        n += 1;
        assert!(n <= MAX_REQUESTS + 1, "the walk runs away");
        let url = req.url.to_ascii_lowercase();
        assert!(url.starts_with("http://") || url.starts_with("https://"));
        let sends_secret = req.method == "POST"
            || req
                .headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case("authorization"));
        if sends_secret {
            let host = url
                .split("://")
                .nth(1)
                .and_then(|r| r.split(['/', '?', '#']).next())
                .unwrap_or("");
            assert!(
                url.starts_with("https://")
                    || host.starts_with("127.")
                    || host.starts_with("localhost")
                    || host.starts_with("[::1]"),
                "a secret to {url}"
            );
        }
        let answer = match chunks.next() {
            None => Err("connection refused".to_owned()),
            Some([]) => Err("timed out".to_owned()),
            Some(c) => {
                let status = [200u16, 301, 302, 401, 404, 500, 400][usize::from(c[0]) % 7];
                let text = String::from_utf8_lossy(&c[1..]).into_owned();
                let (head, body) = text.split_once('\n').unwrap_or(("", &text));
                let headers = match status {
                    301 | 302 => vec![("Location".to_owned(), head.to_owned())],
                    401 => vec![("WWW-Authenticate".to_owned(), head.to_owned())],
                    _ => Vec::new(),
                };
                Ok(HttpResponse {
                    status,
                    headers,
                    body: body.as_bytes().to_vec(),
                })
            }
        };
        d.handle_response(req.id, answer);
    }
    assert!(d.outcome().is_some(), "no request and no outcome");
}

/// `certprov_response`: the certificate provisioning answer and request
/// readers never panic, and what they accept is no larger than the input.
pub fn check_certprov_response(data: &[u8]) {
    if let Ok(cert) = ocs_core::certprov::parse_response(data) {
        assert!(cert.len() <= data.len());
    }
    // The service's side (the embedded server) reads requests the same way.
    if let Ok((entity, csr)) = ocs_core::certprov::parse_request(data) {
        assert!(!entity.is_empty());
        assert!(csr.len() <= data.len());
    }
}

/// `webticket`: web-ticket answers, `IssueToken` requests and presented
/// tickets parse or fail cleanly; a ticket that parses, presented with a
/// proof key, verifies with that key and no other; `xsd:dateTime`s that
/// parse print back to the same instant.
pub fn check_webticket(data: &[u8]) {
    use ocs_core::webticket::{check_presented, parse_request, parse_response, security_header};
    if let Ok(t) = parse_response(data) {
        assert!(!t.assertion_id.is_empty());
        assert!(t.assertion.len() <= data.len());
        let key = [7u8; 32];
        let sec = security_header(&t, Some(&key), "2026-12-07T16:00:00Z", "2026-12-07T16:05:00Z");
        let envelope = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">{sec}</wsse:Security></s:Header><s:Body></s:Body></s:Envelope>"#
        );
        // The assertion came from the input: it may break the envelope
        // (then nothing verifies), but it must never verify with a key
        // other than the one it was signed with.
        if let Ok(p) = check_presented(envelope.as_bytes(), |_| Some(key.to_vec())) {
            assert_eq!(p.expires, "2026-12-07T16:05:00Z");
        }
        assert!(check_presented(envelope.as_bytes(), |_| Some(vec![8; 32])).is_err());
    }
    if let Ok(r) = parse_request(data) {
        assert!(r.applies_to.len() <= data.len());
    }
    let _ = check_presented(data, |_| Some(vec![7; 32]));
    let text = String::from_utf8_lossy(data);
    if let Some(t) = ocs_core::utc::parse(&text) {
        let printed = ocs_core::utc::format(t);
        assert_eq!(ocs_core::utc::parse(&printed), Some(t), "{text:?} -> {printed}");
    }
}

/// `provisioning`: in-band provisioning documents parse or fail cleanly.
pub fn check_provisioning(data: &[u8]) {
    use ocs_core::provisioning::parse;
    let Ok(p) = parse(data) else { return };
    for remote in [false, true] {
        if let Some(url) = p.abs_url(remote) {
            assert!(!url.is_empty());
        }
    }
    let in_band = p.to_in_band();
    assert_eq!(in_band.is_empty(), p.uc_policy.is_empty());
    let none: [(&str, ocs_core::policy::reg::RegFile); 0] = [];
    let eff = ocs_core::policy::evaluate(&none, &in_band);
    for name in p.uc_policy.keys() {
        assert!(eff.raw(name).is_some(), "in-band {name} lost");
    }
    let _ = eff.settings();
}

/// `abs_file`: the address-book file parser never panics, on the bytes as
/// given and again with a valid CRC-32 put into the trailer (selector
/// bits of the first byte also swap in the delta or compact GUID), so the
/// fuzzer gets past the checksum to the structure. What parses writes
/// back out and parses to the same entries, and builds a searchable book.
pub fn check_abs_file(data: &[u8]) {
    use ocs_core::addressbook::format::{
        crc32, parse_with_header, write_full, AbsErrorKind, COMPACT_GUID, DELTA_GUID,
    };
    use ocs_core::addressbook::{apply_delta, AbsFile, AddressBook};
    let check = |bytes: &[u8]| {
        let Ok((h, f)) = parse_with_header(bytes) else {
            return;
        };
        match f {
            AbsFile::Full(entries) => {
                let again = parse_with_header(&write_full(h.day, &entries))
                    .unwrap_or_else(|e| panic!("written file does not parse: {e}"));
                let AbsFile::Full(back) = again.1 else {
                    panic!("written full file parsed as a delta")
                };
                assert_eq!(back.len(), entries.len());
                for (a, b) in entries.iter().zip(&back) {
                    assert_eq!(a.display_name, b.display_name);
                    assert_eq!(a.sip_uri, b.sip_uri);
                    assert_eq!(a.phones.len(), b.phones.len());
                }
                let book = AddressBook::new(entries);
                for q in ["a", "sip:", "1", ""] {
                    let _ = book.search(q, 5);
                }
            }
            AbsFile::Delta(changes) => {
                let _ = AddressBook::new(apply_delta(Vec::new(), changes));
            }
        }
    };
    check(data);
    // The same bytes with the checksum made right.
    if data.len() >= 12 {
        let mut fixed = data.to_vec();
        match data[0] & 3 {
            1 if fixed.len() >= 28 => fixed[..16].copy_from_slice(&DELTA_GUID),
            2 if fixed.len() >= 28 => fixed[..16].copy_from_slice(&COMPACT_GUID),
            _ => {}
        }
        let n = fixed.len();
        let crc = crc32(&fixed[..n - 12]);
        fixed[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
        fixed[n - 4..].copy_from_slice(&8u32.to_le_bytes());
        if let Err(e) = parse_with_header(&fixed) {
            assert!(
                !matches!(e.kind, AbsErrorKind::Crc { .. }),
                "the CRC was fixed: {e}"
            );
        }
        check(&fixed);
    }
}

/// `roaming_contacts`: the contact-list documents and the contact SOAP
/// requests never panic the parsers; a parsed full list prints and parses
/// back to itself, and every change parsed from SOAP prints back to the
/// same change.
pub fn check_roaming_contacts(data: &[u8]) {
    use ocs_core::presence::contacts::{parse_contact_soap, parse_roaming_contacts};
    use ocs_core::presence::RoamingContacts;
    match parse_roaming_contacts(data) {
        Ok(RoamingContacts::Full(l)) => {
            let again = parse_roaming_contacts(l.to_xml().as_bytes())
                .unwrap_or_else(|e| panic!("printed list does not parse: {e}\n{}", l.to_xml()));
            assert_eq!(again, RoamingContacts::Full(l));
        }
        Ok(RoamingContacts::Delta(d)) => {
            let mut l = ocs_core::presence::ContactList::default();
            let _ = l.apply(&d);
        }
        Err(_) => {}
    }
    if let Ok((op, n)) = parse_contact_soap(data) {
        let printed = op.soap(n);
        let (back, n2) = parse_contact_soap(printed.as_bytes())
            .unwrap_or_else(|e| panic!("printed SOAP does not parse: {e}\n{printed}"));
        assert_eq!(n2, n);
        assert_eq!(back.soap(n2), printed);
    }
}

// ----- the whole client ----------------------------------------------------------

/// `client_inputs`: an arbitrary sequence of inputs to the sans-IO
/// [`ocs_core::client::Client`] — server bytes, answers to the last request
/// it sent (any status), time passing, connects, connection losses, network
/// changes and user commands — then sign-out and an hour of time. Checks:
/// no panic; after `handle_timeout(now)` no timer is in the past; every IM
/// and presence command id ends at most once while running and exactly
/// once by the time the client has stopped; the client does stop (nothing
/// hangs sign-out).
pub fn check_client_inputs(data: &[u8]) {
    use ocs_core::auth::sipae::signature_header;
    use ocs_core::client::{AddressBookRun, AddressBookSchedule, Client, Config, Connected, Io};
    use ocs_core::discovery::{Dialect, ServerConfig, Transport};
    use ocs_core::endpoint::EndpointConfig;
    use ocs_core::messaging::ImEvent;
    use ocs_core::presence::model::State;
    use ocs_core::register::{Credentials, RegisterConfig, RegistrationEvent};
    use ocs_core::rng::Rng;
    use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};
    use ocs_core::sip::{builder, HeaderName, Method};
    use ocs_core::ClientEvent;
    use ocs_core::PresenceEvent;
    use std::collections::{HashMap, HashSet, VecDeque};
    use std::net::SocketAddr;
    use std::time::{Duration, Instant, SystemTime};

    heap::reset_peak();
    let heap_base = heap::live();
    let mut it = data.iter().copied();
    let dialect = if it.next().unwrap_or(0) & 1 == 0 {
        Dialect::Standard
    } else {
        Dialect::Ocs
    };
    let reg = RegisterConfig::new("sip:alice@contoso.com", dialect, "a1a1a1a1a1");
    let mut cfg = Config::new(EndpointConfig::new(
        reg,
        Some(Credentials::new("CONTOSO\\alice", "pw")),
    ));
    // HTTP work the client asks for is answered by the input (op 12, 13).
    cfg.custom_state_url = Some("https://contoso.com/states/presence.xml".into());
    cfg.address_book = Some(AddressBookSchedule {
        initial_delay: Duration::from_secs(60),
        url: Some("https://contoso.com/abs/".into()),
    });
    cfg.server = Some(ServerConfig {
        host: "192.0.2.1".into(),
        port: Some(5060),
        transport: Transport::Tcp,
    });
    let mut now = Instant::now();
    let mut c = Client::new(cfg, 1, [7; 32], now, SystemTime::UNIX_EPOCH);
    c.start(now);

    // An honest server (op 14) the client can really sign in to: NTLM on
    // the OCS dialect, Digest on the standard one.
    let mut rcfg = RegistrarConfig::ocs("contoso.com");
    if dialect == Dialect::Standard {
        rcfg.auth = AuthMode::Digest;
    }
    let mut reg = Registrar::new(rcfg, Rng::from_seed(3), [9; 32]);
    reg.add_user("alice", "CONTOSO", "pw");
    let mut server = SimServer::new(reg, Rng::from_seed(4));
    let local: SocketAddr = "198.51.100.1:40000".parse().expect("address");

    struct Seen {
        last_request: Option<Message>,
        connect_wanted: bool,
        /// An HTTP fetch the client asked for and has no answer to yet.
        states_wanted: Option<String>,
        book_wanted: bool,
        /// What the client sent since the honest server last read (the
        /// newest 64; older ones are lost as on a bad link).
        to_server: VecDeque<Vec<u8>>,
        /// The association whose final REGISTER answer was just given to
        /// the client, and whether it was forged.
        final_answer: Option<(String, bool)>,
        /// Associations the client itself reported as failed after being
        /// shown a forged final answer: it must never sign with them again
        /// (until an unaltered answer completes them after all).
        refuted: HashSet<String>,
        /// Outcomes per (0 IM / 1 publication / 2 watch, id).
        outcomes: HashMap<(u8, u64), u32>,
    }
    let mut seen = Seen {
        last_request: None,
        connect_wanted: false,
        states_wanted: None,
        book_wanted: false,
        to_server: VecDeque::new(),
        final_answer: None,
        refuted: HashSet::new(),
        outcomes: HashMap::new(),
    };
    let drain = |c: &mut Client, seen: &mut Seen| {
        while let Some(io) = c.poll_io() {
            match io {
                Io::Connect(_) => seen.connect_wanted = true,
                Io::FetchCustomStates { url } => seen.states_wanted = Some(url),
                Io::DownloadAddressBook { .. } => seen.book_wanted = true,
                _ => {}
            }
        }
        // Events first: what the client made of a final REGISTER answer
        // decides how the requests it sent with it are judged.
        let answer = seen.final_answer.take();
        while let Some(e) = c.poll_event() {
            if let (Some((opaque, forged)), ClientEvent::Registration(r)) = (&answer, &e) {
                match r {
                    RegistrationEvent::Registered { .. } => {
                        // Invariant: a forged server signature never signs
                        // the client in.
                        assert!(!forged, "signed in on a forged 200 (association {opaque})");
                        seen.refuted.remove(opaque);
                    }
                    RegistrationEvent::Failed(_) | RegistrationEvent::RetryScheduled { .. }
                        if *forged =>
                    {
                        seen.refuted.insert(opaque.clone());
                    }
                    _ => {}
                }
            }
            let id = match e {
                ClientEvent::Im(ImEvent::Delivered { id }) => (0, id.0),
                ClientEvent::Im(ImEvent::Failed { id, .. }) => (0, id.0),
                ClientEvent::Presence(PresenceEvent::Published { id: Some(id), .. }) => (1, id.0),
                ClientEvent::Presence(PresenceEvent::PublishFailed { id: Some(id), .. }) => {
                    (1, id.0)
                }
                ClientEvent::Presence(PresenceEvent::Watching { id, .. }) => (2, id.0),
                ClientEvent::Presence(PresenceEvent::WatchFailed { id, .. }) => (2, id.0),
                _ => continue,
            };
            let n = seen.outcomes.entry(id).or_insert(0);
            *n += 1;
            assert!(*n == 1, "command {id:?} ended twice");
        }
        while let Some(b) = c.poll_transmit() {
            if let Ok(m) = Message::parse(&b) {
                if m.is_request() && m.method() != Some(&Method::Register) {
                    // Invariant: no request is signed with the association
                    // of a sign-in that failed on a forged server signature.
                    if let Ok(Some(sig)) = signature_header(&m) {
                        let opaque = sig.opaque.unwrap_or_default();
                        assert!(
                            !seen.refuted.contains(&opaque),
                            "signed {:?} with association {opaque:?} after its sign-in \
                             failed on a forged signature",
                            m.method()
                        );
                    }
                }
                if m.is_request() && m.method() != Some(&Method::Ack) {
                    seen.last_request = Some(m);
                }
            }
            if seen.to_server.len() == 64 {
                seen.to_server.pop_front();
            }
            seen.to_server.push_back(b);
        }
    };
    let mut sent: Vec<(u8, u64)> = Vec::new();
    let codes = [
        100u16, 180, 200, 202, 401, 403, 404, 407, 408, 409, 412, 415, 480, 481, 486, 500, 503, 606,
    ];
    let peers = ["sip:bob@contoso.com", "sip:carol@contoso.com"];
    drain(&mut c, &mut seen);
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0);
        // Ops 0-11 keep the meaning they had before 12-14 came (op % 12),
        // so the committed corpus still reaches what it reached.
        let op = if op >= 232 {
            12 + (op - 232) % 3
        } else {
            op % 12
        };
        match op {
            0 => {
                let n = (arg as usize).min(it.len());
                let chunk: Vec<u8> = it.by_ref().take(n).collect();
                c.handle_bytes(&chunk, now);
            }
            1 => {
                if let Some(req) = seen.last_request.clone() {
                    let code = codes[arg as usize % codes.len()];
                    if let Ok(mut r) = builder::response(&req, code, None, Some("srv1")) {
                        if code / 100 == 2 {
                            r.insert_header(r.header_count() - 1, HeaderName::Expires, "3600");
                            r.insert_header(
                                r.header_count() - 1,
                                HeaderName::Contact,
                                "<sip:192.0.2.1:5060;transport=tcp>",
                            );
                        }
                        c.handle_bytes(&r.to_bytes(), now);
                    }
                }
            }
            2 => {
                now += Duration::from_millis(u64::from(arg) * 250);
                c.handle_timeout(now);
                if let Some(t) = c.poll_timeout() {
                    assert!(t >= now, "a timer {:?} in the past", now - t);
                }
            }
            3 if seen.connect_wanted => {
                seen.connect_wanted = false;
                server.handle_disconnect(local);
                seen.to_server.clear();
                c.handle_connected(
                    Connected {
                        host: "192.0.2.1".into(),
                        addr: "192.0.2.1:5060".parse().expect("address"),
                        transport: Transport::Tcp,
                        source: "fuzz".into(),
                        local,
                    },
                    now,
                );
            }
            4 if seen.connect_wanted => {
                seen.connect_wanted = false;
                c.handle_connect_failed(
                    ocs_core::Error::transport(
                        ocs_core::error::TransportFailure::Connect,
                        "refused",
                    ),
                    now,
                );
            }
            5 => {
                c.handle_connection_lost("reset".into(), now);
                server.handle_disconnect(local);
                seen.to_server.clear();
            }
            6 => {
                if let Ok(id) = c.send_im(peers[arg as usize % 2], "hi", now) {
                    sent.push((0, id.0));
                }
            }
            7 => {
                let state =
                    [State::Online, State::Busy, State::Away, State::Offline][arg as usize % 4];
                let id = match arg >> 2 {
                    0..=31 => c.set_status(state, None, now),
                    32..=39 => c.set_custom_state(state.availability(), 1033, "x", None, now),
                    40..=47 => c.set_idle(Duration::from_secs(u64::from(arg) * 20), now),
                    48..=55 => c.set_in_call(arg & 1 == 1, now),
                    _ => c.reset_status(now),
                }
                .ok();
                sent.extend(id.map(|id| (1, id.0)));
            }
            8 => {
                if arg & 1 == 0 {
                    if let Ok(id) = c.watch(peers[(arg as usize >> 1) % 2], now) {
                        sent.push((2, id.0));
                    }
                } else {
                    c.unwatch(peers[(arg as usize >> 1) % 2], now);
                }
            }
            9 => c.network_changed(now),
            10 => c.sign_out(now),
            11 => c.end_im_session(peers[arg as usize % 2], now),
            12 => {
                if let Some(url) = seen.states_wanted.take() {
                    let result = if arg & 1 == 0 {
                        let n = usize::from(arg >> 1).min(it.len());
                        let doc: Vec<u8> = it.by_ref().take(n).collect();
                        let loaded = ocs_core::customstates::load(&doc);
                        Ok((loaded.states, loaded.warnings))
                    } else {
                        Err("HTTP 404".to_owned())
                    };
                    c.handle_custom_states_done(url, result);
                }
            }
            13 if seen.book_wanted => {
                seen.book_wanted = false;
                let result = if arg & 1 == 0 {
                    Ok(AddressBookRun {
                        entries: usize::from(arg),
                        day: "2026-12-07".into(),
                        fetched: (arg & 2 == 0).then(|| "F-0a1b".to_owned()),
                    })
                } else {
                    Err("HTTP 500".to_owned())
                };
                c.handle_address_book_done(result, now);
            }
            14 => {
                // The honest server reads what the client sent and answers;
                // with bit 0 set, every server signature in its answers is
                // forged (one hex digit changed).
                let forge = arg & 1 == 1;
                server.handle_timeout(now);
                for b in std::mem::take(&mut seen.to_server) {
                    server.handle_stream(local, &b, now);
                }
                let mut answers = Vec::new();
                while let Some((peer, b)) = server.poll_transmit() {
                    if peer == local {
                        answers.push(b);
                    }
                }
                while server.poll_close().is_some() {}
                for mut b in answers {
                    let final_register = Message::parse(&b).ok().and_then(|m| {
                        let ok = m.status().is_some_and(|s| (200..300).contains(&s))
                            && m.cseq().is_ok_and(|c| c.method == "REGISTER");
                        if !ok {
                            return None;
                        }
                        signature_header(&m).ok().flatten().and_then(|s| s.opaque)
                    });
                    if forge {
                        forge_signatures(&mut b);
                    }
                    c.handle_bytes(&b, now);
                    seen.final_answer = final_register.map(|o| (o, forge));
                    drain(&mut c, &mut seen);
                }
            }
            _ => {}
        }
        drain(&mut c, &mut seen);
    }
    // Sign out and let an hour pass: the client stops, every message ended.
    c.sign_out(now);
    drain(&mut c, &mut seen);
    for _ in 0..60 {
        now += Duration::from_secs(60);
        c.handle_timeout(now);
        drain(&mut c, &mut seen);
    }
    assert!(c.is_stopped(), "sign-out did not finish within an hour");
    // Invariant: memory stays bounded. An input is at most a few KiB
    // (libFuzzer's default -max_len is 4096), so no sequence of it may make
    // the client (with the harness and the honest server beside it) hold
    // more than this at once.
    let held = heap::peak() - heap_base;
    assert!(
        held <= CLIENT_INPUTS_HEAP_CAP,
        "held {held} bytes at once (cap {CLIENT_INPUTS_HEAP_CAP})"
    );
    for id in sent {
        assert_eq!(
            seen.outcomes.get(&id).copied().unwrap_or(0),
            1,
            "command {id:?} has no outcome"
        );
    }
}

/// The most heap one `client_inputs` run may hold at once (see the check).
pub const CLIENT_INPUTS_HEAP_CAP: isize = 4 * 1024 * 1024;

/// Changes one hex digit of every `rspauth` in `b` (a server signature).
fn forge_signatures(b: &mut [u8]) {
    let key = b"rspauth=";
    let mut i = 0;
    while i + key.len() < b.len() {
        if b[i..].starts_with(key) {
            let mut j = i + key.len();
            if b.get(j) == Some(&b'"') {
                j += 1;
            }
            if let Some(d) = b.get_mut(j) {
                *d = if *d == b'0' { b'1' } else { b'0' };
            }
            i = j;
        }
        i += 1;
    }
}

/// `sim_server`: the embedded server (NTLM or Digest registrar, strict or
/// lax signatures, users alice and bob) fed arbitrary sequences from three
/// peers: raw stream and datagram bytes, well-formed requests of every
/// method it knows (with fuzzed Event, Content-Type, Expires and body),
/// answers to what it sent, time passing, disconnects and forced
/// sign-outs. Invariants: no panic; everything it sends parses as SIP;
/// its next timer is never in the past; it closes only peers that spoke.
pub fn check_sim_server(data: &[u8]) {
    use ocs_core::rng::Rng;
    use ocs_core::sim::{AuthMode, Registrar, RegistrarConfig, SimServer};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    let mut it = data.iter().copied();
    let flags = it.next().unwrap_or(0);
    let mut cfg = RegistrarConfig::ocs("contoso.com");
    if flags & 1 == 1 {
        cfg.auth = AuthMode::Digest;
    }
    let mut r = Registrar::new(cfg, Rng::from_seed(1), [7; 32]);
    r.add_user("alice", "CONTOSO", "alicepw");
    r.add_user("bob", "CONTOSO", "bobpw");
    let mut s = SimServer::new(r, Rng::from_seed(2));
    s.set_strict_signatures(flags & 2 == 0);

    let peers: [SocketAddr; 3] = [
        "198.51.100.1:40001".parse().expect("addr"),
        "198.51.100.2:40002".parse().expect("addr"),
        "198.51.100.3:40003".parse().expect("addr"),
    ];
    let methods = [
        "REGISTER",
        "SUBSCRIBE",
        "SERVICE",
        "MESSAGE",
        "INVITE",
        "NOTIFY",
        "OPTIONS",
        "BYE",
        "ACK",
        "CANCEL",
        "PUBLISH",
        "INFO",
        "BENOTIFY",
    ];
    let users = ["alice", "bob", "carol"];
    let events = [
        "",
        "presence",
        "registration",
        "vnd-microsoft-roaming-self",
        "vnd-microsoft-roaming-contacts",
        "vnd-microsoft-provisioning-v2",
        "vnd-microsoft-roaming-ACL",
    ];
    let types = [
        "",
        "application/msrtc-category-publish+xml",
        "application/msrtc-presence-batchsub+xml",
        "application/vnd-microsoft-roaming-self+xml",
        "application/SOAP+xml",
        "text/plain",
        "application/sdp",
        "application/pidf+xml",
    ];
    let codes = [
        100u16, 180, 200, 202, 400, 401, 403, 404, 481, 486, 500, 503,
    ];

    let mut now = Instant::now();
    let mut spoke = [false; 3];
    // The last request the server sent to each peer, to answer.
    let mut last_request: HashMap<SocketAddr, Message> = HashMap::new();
    let mut n = 0u32;
    let drain = |s: &mut SimServer, last: &mut HashMap<SocketAddr, Message>, spoke: &[bool; 3]| {
        while let Some((peer, bytes)) = s.poll_transmit() {
            let m = Message::parse(&bytes).unwrap_or_else(|e| {
                panic!(
                    "the server sent what does not parse ({e}):\n{}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            if m.is_request() {
                last.insert(peer, m);
            }
        }
        while let Some(peer) = s.poll_close() {
            let k = peers.iter().position(|p| *p == peer);
            assert!(
                k.is_some_and(|k| spoke[k]),
                "closed a peer that never spoke: {peer}"
            );
        }
    };
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0);
        let k = usize::from(arg) % 3;
        let peer = peers[k];
        match op % 8 {
            0 | 1 => {
                let len = usize::from(it.next().unwrap_or(0)) * 4;
                let chunk: Vec<u8> = it.by_ref().take(len).collect();
                spoke[k] = true;
                if op % 8 == 0 {
                    s.handle_stream(peer, &chunk, now);
                } else {
                    s.handle_datagram(peer, &chunk, now);
                }
            }
            2 | 3 => {
                n += 1;
                let pick = |it: &mut std::iter::Copied<std::slice::Iter<'_, u8>>| {
                    usize::from(it.next().unwrap_or(0))
                };
                let method = methods[pick(&mut it) % methods.len()];
                let from = users[usize::from(arg >> 2) % users.len()];
                let to = users[pick(&mut it) % users.len()];
                let event = events[pick(&mut it) % events.len()];
                let ctype = types[pick(&mut it) % types.len()];
                let expires = [0u32, 1, 60, 3600, 4_294_967_295][pick(&mut it) % 5];
                let body_len = pick(&mut it) * 2;
                let body: Vec<u8> = it.by_ref().take(body_len).collect();
                let transport = if op % 8 == 2 { "TCP" } else { "UDP" };
                let mut head = format!(
                    "{method} sip:{to}@contoso.com SIP/2.0\r\n\
                     Via: SIP/2.0/{transport} {peer};branch=z9hG4bKfz{n}\r\n\
                     Max-Forwards: 70\r\n\
                     From: <sip:{from}@contoso.com>;tag=f{n};epid=01010101\r\n\
                     To: <sip:{to}@contoso.com>\r\n\
                     Call-ID: fuzz{k}-{}\r\n\
                     CSeq: {n} {method}\r\n\
                     Contact: <sip:{from}@{peer};transport={}>\r\n\
                     Expires: {expires}\r\n",
                    n % 4,
                    transport.to_ascii_lowercase(),
                );
                if !event.is_empty() {
                    head.push_str(&format!("Event: {event}\r\n"));
                }
                if !ctype.is_empty() {
                    head.push_str(&format!("Content-Type: {ctype}\r\n"));
                }
                head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                let mut msg = head.into_bytes();
                msg.extend_from_slice(&body);
                spoke[k] = true;
                if op % 8 == 2 {
                    s.handle_stream(peer, &msg, now);
                } else {
                    s.handle_datagram(peer, &msg, now);
                }
            }
            4 => {
                if let Some(req) = last_request.get(&peer).cloned() {
                    let code = codes[usize::from(arg >> 2) % codes.len()];
                    if let Ok(r) = ocs_core::sip::builder::response(&req, code, None, Some("peer"))
                    {
                        s.handle_stream(peer, &r.to_bytes(), now);
                    }
                }
            }
            5 => {
                now += Duration::from_millis(u64::from(arg) * 500);
                s.handle_timeout(now);
                if let Some(t) = s.poll_timeout() {
                    assert!(t >= now, "a timer {:?} in the past", now - t);
                }
            }
            6 => s.handle_disconnect(peer),
            _ => {
                let who = users[usize::from(arg) % 2];
                let _ = s.force_sign_out(&format!("sip:{who}@contoso.com"), "fuzz", now);
            }
        }
        drain(&mut s, &mut last_request, &spoke);
    }
    // Time passes: every transaction ends; nothing is left to send.
    now += Duration::from_secs(3600);
    s.handle_timeout(now);
    drain(&mut s, &mut last_request, &spoke);
}

/// The embedded server with alice and bob, for the web-service checks.
fn sim_with_users() -> ocs_core::sim::SimServer {
    use ocs_core::rng::Rng;
    use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
    let mut r = Registrar::new(
        RegistrarConfig::ocs("contoso.com"),
        Rng::from_seed(1),
        [7; 32],
    );
    r.add_user("alice", "CONTOSO", "alicepw");
    r.add_user("bob", "CONTOSO", "bobpw");
    SimServer::new(r, Rng::from_seed(2))
}

/// The clock for checks that need one (only differences matter).
#[allow(clippy::disallowed_methods)]
fn fuzz_now() -> std::time::Instant {
    std::time::Instant::now()
}
