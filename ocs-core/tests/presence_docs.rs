//! Presence and custom-states documents through the public API: golden
//! files, hostile XML, and builder → parser round trips.

use ocs_core::customstates;
use ocs_core::presence::{
    self, Availability, BatchResource, CustomActivity, DocumentErrorKind, NoteKind, ParseOptions,
    PidfPublish, PublishBody, State, build_pidf, build_rlmi_multipart, parse_categories,
    parse_notify_body, parse_pidf,
};
use proptest::prelude::*;

fn data(rel: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/presence/{rel}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test data")
}

#[test]
fn golden_t16d_notify() {
    let ct = "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary=50UBfW7LSCVLtggUPe5z";
    let v = parse_notify_body(
        &data("t16d_notify_body.txt"),
        ct,
        &ParseOptions::keeping_documents(),
    )
    .expect("parses");
    let p = v[0].presence.as_ref().expect("presence");
    assert_eq!(p.state(), State::Busy);
    assert_eq!(
        p.document.as_deref().map(str::as_bytes),
        Some(data("t16d_bob_categories.xml").as_slice())
    );
}

#[test]
fn entity_expansion_is_refused() {
    let billion = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<categories>&lol2;</categories>"#;
    let e = parse_categories(billion).expect_err("doctype");
    assert_eq!(e.kind, DocumentErrorKind::DocType);
    assert_eq!((e.line, e.column), (2, 1));
    let e = parse_categories(b"<categories>&lol;</categories>").expect_err("entity");
    assert!(
        matches!(e.kind, DocumentErrorKind::UndefinedEntity(_)),
        "{e}"
    );
    let e = parse_categories(b"<categories uri=\"&ext;\"/>").expect_err("entity in attribute");
    assert!(
        matches!(e.kind, DocumentErrorKind::UndefinedEntity(_)),
        "{e}"
    );
    let e = parse_categories(b"<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><categories/>")
        .expect_err("external");
    assert_eq!(e.kind, DocumentErrorKind::DocType);
    assert!(customstates::validate(billion).is_err());
    assert!(parse_pidf(billion).is_err());
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let mut doc = String::from("<categories>");
    doc.push_str(&"<a>".repeat(10_000));
    doc.push_str(&"</a>".repeat(10_000));
    doc.push_str("</categories>");
    let e = parse_categories(doc.as_bytes()).expect_err("deep");
    assert_eq!(e.kind, DocumentErrorKind::TooDeep(presence::MAX_DEPTH));
    assert!(customstates::validate(doc.as_bytes()).is_err());
}

#[test]
fn huge_documents_are_refused() {
    let mut doc = b"<categories>".to_vec();
    doc.resize(10 * 1024 * 1024, b' ');
    doc.extend_from_slice(b"</categories>");
    let e = parse_categories(&doc).expect_err("10 MB");
    assert_eq!(
        e.kind,
        DocumentErrorKind::TooLarge(presence::MAX_DOCUMENT_BYTES)
    );
    let e = parse_notify_body(
        &doc,
        "multipart/related; boundary=x",
        &ParseOptions::default(),
    )
    .expect_err("10 MB multipart part");
    assert!(
        e.to_string().contains("boundary") || e.to_string().contains("multipart"),
        "{e}"
    );
    let big = vec![b'-'; presence::MAX_MULTIPART_BYTES + 1];
    let e = parse_notify_body(
        &big,
        "multipart/related; boundary=x",
        &ParseOptions::default(),
    )
    .expect_err("too big");
    assert_eq!(
        e.kind,
        DocumentErrorKind::TooLarge(presence::MAX_MULTIPART_BYTES)
    );
    // Many elements, each tiny.
    let many = format!(
        "<categories>{}</categories>",
        "<x/>".repeat(presence::MAX_ELEMENTS)
    );
    let e = parse_categories(many.as_bytes()).expect_err("elements");
    assert_eq!(
        e.kind,
        DocumentErrorKind::TooManyElements(presence::MAX_ELEMENTS)
    );
}

#[test]
fn unknown_categories_are_kept_raw() {
    let xml = br#"<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories" uri="sip:a@b"><category name="routing" instance="0"><routing><preamble/></routing></category><category name="userProperties"><userProperties><lines/></userProperties></category></categories>"#;
    let p = parse_categories(xml).expect("parses");
    assert_eq!(p.raw_categories.len(), 2);
    assert_eq!(
        &*p.raw_categories[0].xml,
        r#"<category name="routing" instance="0"><routing><preamble/></routing></category>"#
    );
}

#[test]
fn wrong_namespaces_and_impossible_values() {
    let e =
        parse_categories(b"<categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\"/>")
            .expect_err("ns");
    assert!(e.to_string().starts_with("1:1: namespace"), "{e}");
    let e = parse_categories(
        b"<c:categories xmlns:c=\"urn:other\"><c:category name=\"state\"/></c:categories>",
    )
    .expect_err("prefixed ns");
    assert!(matches!(e.kind, DocumentErrorKind::WrongNamespace { .. }));
    let e = parse_categories(
        b"<categories><category name=\"legacyInterop\"><legacyInterop availability=\"-3\"/></category></categories>",
    )
    .expect_err("negative");
    assert!(e.to_string().contains("invalid availability \"-3\""), "{e}");
}

#[test]
fn memory_per_contact_is_small() {
    let p = parse_categories(&data("t16d_bob_categories.xml")).expect("parses");
    let total = std::mem::size_of_val(&p) + p.heap_size();
    assert!(total <= 2048, "{total} bytes");
}

fn text() -> impl Strategy<Value = String> {
    // Printable text including XML specials and non-ASCII; trimmed
    // because the parsers trim.
    "[a-zA-Z0-9 <>&\"'äöü€]{1,40}".prop_map(|s| s.trim().to_owned())
}

proptest! {
    #[test]
    fn publish_note_and_state_round_trip(
        note in text(),
        avail in 0u32..20000,
        custom in text(),
        lcid in 1u32..20000,
        version in any::<u32>(),
    ) {
        prop_assume!(!note.is_empty() && !custom.is_empty());
        let mut b = PublishBody::new("sip:alice@contoso.com");
        b.note(0, 200, version, NoteKind::OutOfOffice, &note);
        b.user_state(2, version, Availability(avail), None, &[CustomActivity { lcid, text: &custom }]);
        let body = b.finish();
        // Turn the publications into a categories document as the server
        // would (same inner elements), and parse it back.
        let doc = body
            .replace("<publish xmlns=\"http://schemas.microsoft.com/2006/09/sip/rich-presence\"><publications uri=", "<categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" uri=")
            .replace("</publications></publish>", "</categories>")
            .replace("<publication categoryName=", "<category name=")
            .replace("</publication>", "</category>");
        let p = parse_categories(doc.as_bytes()).expect("round trip parses");
        prop_assert_eq!(p.availability, Some(Availability(avail)));
        prop_assert_eq!(p.state(), Availability(avail).state());
        prop_assert_eq!(p.custom_text(lcid), Some(custom.as_str()));
        let n = p.note.expect("note");
        prop_assert_eq!(n.kind, NoteKind::OutOfOffice);
        prop_assert_eq!(&*n.text, note.as_str());
    }

    #[test]
    fn pidf_round_trip(note in proptest::option::of(text()), idx in 0usize..8, tuple in "[a-z][a-z0-9]{0,8}") {
        let note = note.filter(|n| !n.is_empty());
        let st = State::ALL[idx];
        let doc = build_pidf(&PidfPublish::for_state("sip:bob@example.com", &tuple, st, note.as_deref()));
        let p = parse_pidf(doc.as_bytes()).expect("parses");
        prop_assert_eq!(p.note.as_ref().map(|n| n.text.to_string()), note);
        prop_assert_eq!(&*p.uri, "sip:bob@example.com");
        prop_assert_eq!(p.state() == State::Offline, st == State::Offline);
    }

    #[test]
    fn rlmi_round_trip(avails in proptest::collection::vec(0u32..20000, 0..20), noise in text()) {
        let docs: Vec<(String, String)> = avails.iter().enumerate().map(|(i, a)| {
            let uri = format!("sip:u{i}@x.com");
            let mut note = String::new();
            for c in noise.chars() {
                match c { '<' => note.push_str("&lt;"), '&' => note.push_str("&amp;"), c => note.push(c) }
            }
            let doc = format!("<categories uri=\"{uri}\"><category name=\"state\"><state><availability>{a}</availability></state></category><category name=\"note\"><note><body>{note}</body></note></category></categories>");
            (uri, doc)
        }).collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(u, d)| (u.as_str(), d.as_str())).collect();
        let body = build_rlmi_multipart("bNd", "sip:me@x.com", &refs);
        let v = parse_notify_body(&body, "multipart/related; boundary=bNd", &ParseOptions::default()).expect("parses");
        prop_assert_eq!(v.len(), avails.len());
        for (u, a) in v.iter().zip(&avails) {
            let p = u.presence.as_ref().expect("presence");
            prop_assert_eq!(p.availability, Some(Availability(*a)));
            prop_assert_eq!(p.note.as_ref().map(|n| &*n.text), (!noise.is_empty()).then_some(noise.as_str()));
        }
    }

    #[test]
    fn batch_subscribe_parses_as_xml(uris in proptest::collection::vec("sip:[a-z<&\"]{1,10}@x\\.com", 0..10)) {
        let res: Vec<BatchResource<'_>> = uris.iter().enumerate().map(|(i, u)| BatchResource { uri: u, context: i % 2 == 0 }).collect();
        let body = presence::batch_subscribe_body("alice@contoso.com", &res, &presence::DEFAULT_BATCH_CATEGORIES);
        // Well-formed: the categories parser reads it far enough to name the root.
        let e = parse_categories(body.as_bytes()).expect_err("not categories");
        let is_root_error = matches!(e.kind, DocumentErrorKind::UnexpectedRoot { .. });
        prop_assert!(is_root_error, "{}", e);
    }

    #[test]
    fn custom_states_round_trip(states in proptest::collection::vec((0usize..3, text(), 1u32..5000), 0..=4)) {
        let names = ["online", "BUSY", "Do-Not-Disturb"];
        let mut xml = String::from("<customStates xmlns=\"http://schemas.microsoft.com/09/2005/communicator/customStates\">");
        for (i, (a, t, lcid)) in states.iter().enumerate() {
            let mut esc = String::new();
            for c in t.chars() {
                match c { '<' => esc.push_str("&lt;"), '&' => esc.push_str("&amp;"), c => esc.push(c) }
            }
            xml.push_str(&format!("<customState ID=\"{}\" availability=\"{}\"><activity LCID=\"{lcid}\">{esc}</activity></customState>", i + 1, names[*a]));
        }
        xml.push_str("</customStates>");
        let all_ok = states.iter().all(|(_, t, _)| !t.is_empty());
        match customstates::validate(xml.as_bytes()) {
            Ok(s) => {
                prop_assert!(all_ok);
                prop_assert_eq!(s.states.len(), states.len());
                for (st, (a, t, lcid)) in s.states.iter().zip(&states) {
                    prop_assert_eq!(st.availability.availability(), [Availability(3500), Availability(6500), Availability(9500)][*a]);
                    prop_assert_eq!(st.text(*lcid), Some(t.as_str()));
                }
            }
            Err(v) => prop_assert!(!all_ok, "{:?}", v),
        }
    }
}
