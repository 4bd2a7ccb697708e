//! The "touch everything" harness shared by the SIP proptests
//! (`tests/proptest_sip.rs`) and the fuzz targets (`fuzz/src/lib.rs`, which
//! includes this file by path): every typed parser and accessor runs on
//! what a test produced, and nothing may panic.

use ocs_core::sip::framing::Frame;
// Type names and functions in separate groups: the fuzz workspace formats
// this file with the 2021 style, which orders lower-case items differently.
use ocs_core::sip::{
    AuthHeader, CSeq, Capabilities, Contacts, MediaType, Message, MsDiagnostics, NameAddr, Params,
    RetryAfter, SipUri, StreamFramer, TokenParams, Uri, Via, Warning,
};

use ocs_core::sip::{multipart, validate_request, validate_response};

fn exercise_params(p: &Params<'_>) {
    for param in p.iter() {
        let _ = param.value_unquoted();
        let _ = p.get(param.name);
    }
    let _ = p.get_unquoted("tag");
    let _ = p.as_str();
}

/// True when some parameter name occurs twice (case-insensitively).
fn exercise_uri(u: &Uri<'_>) {
    let _ = u.scheme();
    let _ = u.to_string();
    if let Some(s) = u.as_sip() {
        exercise_sip_uri(s);
    }
}

fn exercise_sip_uri(s: &SipUri<'_>) {
    let _ = s.user_at_host();
    let _ = s.transport();
    // Reflexive even with a parameter name repeated (`sip:h;x=1;x=2`).
    assert!(s.equivalent(s), "equivalent is not reflexive for {s}");
    exercise_params(&s.params);
    let printed = s.to_string();
    let _ = SipUri::parse(&printed).map(|again| again.equivalent(s));
}

fn exercise_name_addr(n: &NameAddr<'_>) {
    let _ = n.tag();
    let _ = n.epid();
    let _ = n.display_name_unquoted();
    let _ = n.to_string();
    exercise_uri(&n.uri);
    exercise_params(&n.params);
}

fn exercise_via(v: &Via<'_>) {
    let _ = (v.branch(), v.received(), v.rport());
    let _ = v.to_string();
    exercise_params(&v.params);
}

fn exercise_auth(a: &AuthHeader<'_>) {
    let _ = a.is_scheme("NTLM");
    for (n, v) in a.params.iter() {
        let _ = (n, v);
    }
    let _ = a.params.get("realm");
    let _ = a.params.get_raw("response");
}

/// Runs every typed parser on one header value.
pub fn exercise_value(v: &str, base: usize) {
    if let Ok(x) = Via::parse(v, base) {
        exercise_via(&x);
    }
    if let Ok(x) = NameAddr::parse(v, base) {
        exercise_name_addr(&x);
    }
    let _ = CSeq::parse(v, base);
    if let Ok(x) = MediaType::parse(v, base) {
        let _ = (x.essence(), x.is("multipart/related"), x.param("boundary"));
    }
    if let Ok(x) = TokenParams::parse(v, base) {
        let _ = x.param_u32("expires");
        exercise_params(&x.params);
    }
    if let Ok(x) = RetryAfter::parse(v, base) {
        exercise_params(&x.params);
    }
    let _ = Warning::parse(v, base);
    if let Ok(x) = MsDiagnostics::parse(v, base) {
        let _ = (x.reason(), x.source());
    }
    if let Ok(x) = AuthHeader::parse(v, base) {
        exercise_auth(&x);
    }
    if let Ok(x) = SipUri::parse(v) {
        exercise_sip_uri(&x);
    }
    if let Ok(x) = Uri::parse(v) {
        exercise_uri(&x);
    }
    if let Ok(x) = Params::from_header_text(v) {
        exercise_params(&x);
    }
}

/// Splits the body when the Content-Type names a boundary.
fn exercise_body_parts(m: &Message) {
    let Ok(Some(ct)) = m.content_type() else {
        return;
    };
    let Some(b) = ct.param("boundary") else {
        return;
    };
    let Ok(parts) = multipart::parse(m.body(), &b) else {
        return;
    };
    for p in parts {
        let _ = (p.content_type(), p.header("Content-ID"));
    }
}

/// Runs every typed accessor (and the request/response validators) on a
/// parsed message.
pub fn exercise(m: &Message) {
    let _ = (m.is_request(), m.method(), m.request_uri(), m.status());
    let _ = (m.reason(), m.version(), m.start_line(), m.skipped_prefix());
    for h in m.headers() {
        let _ = (h.name.as_str(), h.name_as_written, h.offset);
        exercise_value(h.value, h.offset);
    }
    if let Ok(v) = m.via() {
        v.iter().for_each(exercise_via);
    }
    if let Ok(v) = m.top_via() {
        exercise_via(&v);
    }
    if let Ok(n) = m.from() {
        exercise_name_addr(&n);
    }
    if let Ok(n) = m.to() {
        exercise_name_addr(&n);
    }
    let _ = m.call_id();
    let _ = m.cseq();
    if let Ok(Contacts::List(l)) = m.contacts() {
        l.iter().for_each(exercise_name_addr);
    }
    let _ = (
        m.max_forwards(),
        m.expires(),
        m.min_expires(),
        m.content_length(),
    );
    exercise_body_parts(m);
    let _ = m.accept();
    let _ = (m.event(), m.subscription_state(), m.ms_keep_alive());
    let _ = (m.allow_events(), m.allow(), m.supported());
    let _ = (m.require(), m.proxy_require(), m.unsupported());
    for l in [m.record_route(), m.route(), m.p_asserted_identity()]
        .into_iter()
        .flatten()
    {
        l.iter().for_each(exercise_name_addr);
    }
    let _ = (
        m.retry_after(),
        m.warnings(),
        m.sip_etag(),
        m.sip_if_match(),
    );
    for l in [
        m.www_authenticate(),
        m.proxy_authenticate(),
        m.authorization(),
        m.proxy_authorization(),
    ]
    .into_iter()
    .flatten()
    {
        l.iter().for_each(exercise_auth);
    }
    if let Ok(Some(a)) = m.authentication_info() {
        exercise_auth(&a);
    }
    let _ = (m.ms_diagnostics(), m.ms_diagnostics_public());
    let _ = m.ms_client_diagnostics();
    let caps = Capabilities::default();
    let _ = validate_request(m, &caps);
    let _ = validate_response(m);
    let _ = m.to_bytes();
    let _ = format!("{m:?}");
}

/// Feeds `data` to a framer in chunks cut at `cuts` and returns the
/// messages (as printed) plus whether it ended in an error.
pub fn frame_chunks(data: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, bool) {
    let mut f = StreamFramer::new();
    let mut out = Vec::new();
    let mut last = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    cuts.sort_unstable();
    cuts.push(data.len());
    for c in cuts {
        f.push(&data[last..c]);
        last = c;
        loop {
            match f.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    exercise(&m);
                    out.push(m.to_bytes());
                }
                Ok(Some(Frame::KeepAlive)) => {}
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}
