//! RFC 4475 torture messages: every message of section 3 behaves as
//! `tests/data/rfc4475/expected.tsv` says (the table in README.md).

use std::path::PathBuf;

use ocs_core::sip::{Capabilities, Disposition, Message, disposition};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

fn kv(detail: &str, key: &str) -> Option<String> {
    detail.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == key).then(|| v.trim_matches('"').to_owned())
    })
}

/// Checks the detail column's facts about a message that must parse.
fn check_details(file: &str, m: &Message, detail: &str) {
    if let Some(method) = kv(detail, "method") {
        assert_eq!(
            m.method().map(|x| x.as_str()),
            Some(method.as_str()),
            "{file}: method"
        );
    }
    if let Some(status) = kv(detail, "status") {
        assert_eq!(
            m.status().map(|s| s.to_string()),
            Some(status),
            "{file}: status"
        );
    }
    if let Some(body) = kv(detail, "body") {
        assert_eq!(m.body().len().to_string(), body, "{file}: body length");
    }
    if let Some(n) = kv(detail, "via") {
        assert_eq!(
            m.via().expect("Via parses").len().to_string(),
            n,
            "{file}: Via count"
        );
    }
    if let Some(n) = kv(detail, "contact") {
        assert_eq!(
            m.headers_named("Contact").count().to_string(),
            n,
            "{file}: Contact header count"
        );
    }
    if let Some(r) = kv(detail, "reason")
        && r.is_empty()
    {
        assert_eq!(m.reason(), Some(""), "{file}: empty reason");
    }
    if let Some(t) = kv(detail, "transports") {
        let got: Vec<_> = m
            .via()
            .expect("Via parses")
            .iter()
            .map(|v| v.transport.to_owned())
            .collect();
        assert_eq!(got.join(","), t, "{file}: transports");
    }
    // Printing the parsed message gives back the bytes it was parsed from.
    let printed = m.to_bytes();
    let reparsed = Message::parse(&printed).expect("printed form reparses");
    assert_eq!(reparsed.to_bytes(), printed, "{file}: print is stable");
}

#[test]
fn every_rfc4475_message_behaves_as_documented() {
    let table = std::fs::read_to_string(data_dir().join("expected.tsv")).expect("expected.tsv");
    let caps = Capabilities::default();
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let file = cols.next().expect("file column");
        let expect = cols.next().expect("expect column");
        let detail = cols.next().unwrap_or("");
        let bytes = std::fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let parsed = Message::parse(&bytes);
        let disp = disposition(&bytes, &caps);
        match expect {
            "parse" => {
                let m = parsed.unwrap_or_else(|e| panic!("{file} must parse: {e}"));
                check_details(file, &m, detail);
                if m.is_request() {
                    // A valid message is never refused as malformed.
                    assert!(
                        !matches!(disp, Disposition::Reply { code: 400, .. }),
                        "{file}: valid message answered 400: {disp:?}"
                    );
                }
            }
            "reject" => assert!(
                matches!(
                    disp,
                    Disposition::Unparseable(_) | Disposition::Reply { code: 400, .. }
                ),
                "{file} must be rejected, got {disp:?}"
            ),
            "drop" => assert!(
                matches!(disp, Disposition::Unparseable(_) | Disposition::Drop(_)),
                "{file} must be dropped, got {disp:?}"
            ),
            "parse-or-reject" => {
                if let Ok(m) = parsed {
                    let _ = m.to_bytes();
                }
            }
            other => {
                let code: u16 = other
                    .strip_prefix("check=")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_else(|| panic!("bad expectation {other}"));
                let alt: Option<u16> = kv(detail, "alt").and_then(|a| a.parse().ok());
                let m = parsed.unwrap_or_else(|e| panic!("{file} must parse: {e}"));
                check_details(file, &m, detail);
                match disp {
                    Disposition::Reply { code: c, .. } if c == code || Some(c) == alt => {}
                    d => panic!("{file}: expected {code} (or {alt:?}), got {d:?}"),
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 49, "only {checked} messages checked");
}

#[test]
fn no_message_panics_when_truncated_or_mangled() {
    for entry in std::fs::read_dir(data_dir()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("dat") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        for cut in 0..bytes.len() {
            let _ = disposition(&bytes[..cut], &Capabilities::default());
        }
        let mut m = bytes.clone();
        for i in (0..m.len()).step_by(7) {
            m[i] ^= 0x5a;
            let _ = disposition(&m, &Capabilities::default());
            m[i] ^= 0x5a;
        }
    }
}
