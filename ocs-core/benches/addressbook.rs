//! Address-book search: prefix search over 100,000 entries (goal, issue
//! 6: at most 1 ms), plus parsing the 100,000-entry full file and
//! building the index, for scale.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ocs_core::addressbook::format::write_full;
use ocs_core::addressbook::{AbsDay, AbsFile, AddressBook, Entry, Phone, PhoneKind, parse_file};

const GIVEN: [&str; 16] = [
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ines", "Jonas", "Klara",
    "Lukas", "Mia", "Noah", "Olga", "Paul",
];
const SUR: [&str; 16] = [
    "Meyer",
    "Schmidt",
    "Weber",
    "Fischer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krueger",
];

fn people(n: u32) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let g = GIVEN[i as usize % 16];
            let s = SUR[(i as usize / 16) % 16];
            let local = format!("{}.{}{}", g.to_lowercase(), s.to_lowercase(), i);
            let mut id = vec![0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            Entry {
                id,
                display_name: Some(format!("{g} {s} {i}")),
                given_name: Some(g.into()),
                surname: Some(s.into()),
                email: Some(format!("{local}@contoso.com")),
                sip_uri: Some(format!("sip:{local}@contoso.com")),
                title: Some("Engineer".into()),
                phones: vec![
                    Phone {
                        kind: PhoneKind::Work,
                        number: format!("+49 89 {:07}", 1_000_000 + i),
                        normalized: Some(format!("tel:+4989{:07}", 1_000_000 + i)),
                    },
                    Phone {
                        kind: PhoneKind::Mobile,
                        number: format!("+49 170 {:07}", 2_000_000 + i),
                        normalized: None,
                    },
                ],
                ..Entry::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let es = people(100_000);
    let file = write_full(AbsDay(0x0A8C), &es);
    let book = AddressBook::new(es.clone());
    assert_eq!(book.search("weber", 20).len(), 20);
    assert_eq!(book.search("anna.weber32@", 20).len(), 1);
    assert_eq!(book.search("+49 89 105", 20).len(), 20);

    let mut g = c.benchmark_group("address_book_100k");
    g.bench_function("search prefix 'mey' (20 results)", |b| {
        b.iter(|| black_box(book.search(black_box("mey"), 20)))
    });
    g.bench_function("search e-mail 'anna.weber32@'", |b| {
        b.iter(|| black_box(book.search(black_box("anna.weber32@"), 20)))
    });
    g.bench_function("search phone '+49 89 105' (20 results)", |b| {
        b.iter(|| black_box(book.search(black_box("+49 89 105"), 20)))
    });
    g.bench_function("search miss 'zzz'", |b| {
        b.iter(|| black_box(book.search(black_box("zzz"), 20)))
    });
    g.bench_function("search 'a' (1000 results)", |b| {
        b.iter(|| black_box(book.search(black_box("a"), 1000)))
    });
    g.sample_size(10);
    g.bench_function("parse full file", |b| {
        b.iter(|| match parse_file(black_box(&file)) {
            Ok(AbsFile::Full(e)) => e.len(),
            _ => 0,
        })
    });
    g.bench_function("build index", |b| {
        b.iter(|| black_box(AddressBook::new(es.clone())).len())
    });
    g.finish();
    println!(
        "address_book_100k: file {} bytes, {} entries",
        file.len(),
        book.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
