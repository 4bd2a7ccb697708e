//! Parsing a 1000-contact batched presence NOTIFY (multipart/related rlmi
//! plus one msrtc categories part per contact) into the presence model.
//! Goal (issue 4): at most 2 ms. Also prints the heap held per watched
//! contact by the parsed updates (goal: at most 2 KB), counted by a global
//! allocator.
#![allow(missing_docs)]
// The counting global allocator must implement `GlobalAlloc` (unsafe); nothing else is.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ocs_core::presence::{
    CATEGORIES_NS, ParseOptions, build_rlmi_multipart, parse_categories, parse_notify_body,
};

// ----- counting allocator ----------------------------------------------------

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);
/// Counting is on only while measuring memory, so the timed runs don't pay
/// for the atomic updates.
static COUNT: AtomicBool = AtomicBool::new(false);

fn count(delta: isize) {
    if COUNT.load(Ordering::Relaxed) {
        HEAP.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; only a counter is
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

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

    // Memory per watched contact: the heap the parsed updates keep (the
    // parser's temporaries are freed by the time it returns).
    drop(parsed);
    COUNT.store(true, Ordering::Relaxed);
    let before = heap();
    let kept = parse_notify_body(&body, ct, &opts).unwrap_or_else(|e| panic!("{e}"));
    let held = heap() - before;
    COUNT.store(false, Ordering::Relaxed);
    let per = held as f64 / kept.len() as f64;
    println!(
        "presence: memory per watched contact ~{per:.0} bytes (goal <= 2048; {} contacts hold {held} bytes)",
        kept.len()
    );
    drop(kept);

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
