//! Parsing a 1000-contact batched presence NOTIFY (multipart/related rlmi
//! plus one msrtc categories part per contact) into the presence model.
//! Goal (issue 4): at most 2 ms.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ocs_core::presence::{
    CATEGORIES_NS, ParseOptions, build_rlmi_multipart, parse_categories, parse_notify_body,
};

/// A realistic contact document: aggregate state with activity, a note and
/// a contact card (about 1 KB).
fn contact(i: usize) -> (String, String) {
    let uri = format!("sip:user{i:04}@contoso.com");
    let doc = format!(
        concat!(
            "<categories xmlns=\"{ns}\" uri=\"{uri}\">",
            "<category name=\"state\" instance=\"0\" publishTime=\"2009-06-01T10:00:00.000\">",
            "<state xmlns=\"http://schemas.microsoft.com/2006/09/sip/state\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"aggregateState\" lastActive=\"2009-06-01T09:55:00Z\">",
            "<availability>{a}</availability><activity token=\"in-a-meeting\"/></state></category>",
            "<category name=\"note\" instance=\"0\" publishTime=\"2009-06-01T08:00:00.000\">",
            "<note xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\"><body type=\"personal\" uri=\"\">Call me on my mobile, number {i}</body></note></category>",
            "<category name=\"contactCard\" instance=\"0\" publishTime=\"2009-06-01T08:00:00.000\">",
            "<contactCard xmlns=\"http://schemas.microsoft.com/2006/09/sip/contactcard\"><identity><name><displayName>User {i}</displayName></name>",
            "<email>user{i:04}@contoso.com</email></identity><title>Engineer</title><company>Contoso</company>",
            "<phone type=\"work\"><uri>tel:+1425555{i:04}</uri><displayString>+1 425 555 {i:04}</displayString></phone></contactCard></category>",
            "</categories>"
        ),
        ns = CATEGORIES_NS,
        uri = uri,
        a = 3500 + (i % 6) * 3000,
        i = i,
    );
    (uri, doc)
}

fn benches(c: &mut Criterion) {
    let contacts: Vec<(String, String)> = (0..1000).map(contact).collect();
    let refs: Vec<(&str, &str)> = contacts
        .iter()
        .map(|(u, d)| (u.as_str(), d.as_str()))
        .collect();
    let body = build_rlmi_multipart("50UBfW7LSCVLtggUPe5z", "sip:alice@contoso.com", &refs);
    let ct = "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary=50UBfW7LSCVLtggUPe5z";
    let opts = ParseOptions::default();
    let parsed = parse_notify_body(&body, ct, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.len(), 1000);
    assert!(parsed.iter().all(|u| u.presence.is_some()));
    let max_heap = parsed
        .iter()
        .filter_map(|u| u.presence.as_ref())
        .map(|p| p.heap_size() + std::mem::size_of_val(p))
        .max()
        .unwrap_or(0);
    eprintln!(
        "body {} bytes; largest model per contact ≈ {max_heap} bytes",
        body.len()
    );

    let mut g = c.benchmark_group("presence");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("notify_1000_contacts", |b| {
        b.iter(|| parse_notify_body(black_box(&body), ct, &opts))
    });
    g.throughput(Throughput::Bytes(contacts[0].1.len() as u64));
    g.bench_function("categories_one_contact", |b| {
        b.iter(|| parse_categories(black_box(contacts[0].1.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
