//! Property tests for the address book: files written from any entries
//! parse back to the same entries; any bytes (also with a valid CRC
//! forced into the trailer) give a positioned error or a file, never a
//! panic; deltas apply like a map; prefix search finds exactly the
//! entries whose keys start with the query.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;

use ocs_core::addressbook::format::{crc32, parse_with_header, write_delta, write_full};
use ocs_core::addressbook::{
    AbsDay, AbsFile, AddressBook, Change, Entry, Phone, PhoneKind, apply_delta, parse_file,
};

fn text() -> impl Strategy<Value = String> {
    "[A-Za-zÄÖÜäöüß .@'-]{1,24}"
}

fn phone() -> impl Strategy<Value = Phone> {
    (
        0..5u8,
        "[0-9 +()-]{1,20}",
        proptest::option::of("[0-9]{3,15}"),
    )
        .prop_map(|(k, number, n)| Phone {
            kind: [
                PhoneKind::Work,
                PhoneKind::Mobile,
                PhoneKind::Home,
                PhoneKind::Other,
                PhoneKind::Ip,
            ][usize::from(k)],
            number,
            normalized: n.map(|d| format!("tel:+{d}")),
        })
}

fn entry(id: u32) -> impl Strategy<Value = Entry> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of("[a-z0-9.]{1,12}@[a-z]{1,8}\\.com"),
        proptest::option::of("sip:[a-z0-9.]{1,12}@[a-z]{1,8}\\.com"),
        proptest::option::of(text()),
        vec(phone(), 0..4),
    )
        .prop_map(
            move |(display_name, given_name, surname, email, sip_uri, title, phones)| {
                let mut idb = vec![0u8; 16];
                idb[..4].copy_from_slice(&id.to_le_bytes());
                Entry {
                    id: idb,
                    display_name,
                    given_name,
                    surname,
                    email,
                    sip_uri,
                    title,
                    phones,
                    ..Entry::default()
                }
            },
        )
}

fn entries(max: usize) -> impl Strategy<Value = Vec<Entry>> {
    (0..max).prop_flat_map(|n| (0..n as u32).map(entry).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn written_files_parse_to_the_same_entries(es in entries(20), day in any::<u16>()) {
        let f = write_full(AbsDay(day), &es);
        let (h, parsed) = parse_with_header(&f).expect("parses");
        prop_assert_eq!(h.day, AbsDay(day));
        prop_assert_eq!(parsed, AbsFile::Full(es));
    }

    #[test]
    fn any_bytes_give_an_error_or_a_file(bytes in vec(any::<u8>(), 0..600), fix in any::<bool>()) {
        let mut b = bytes;
        if fix && b.len() >= 12 {
            let n = b.len();
            let crc = crc32(&b[..n - 12]);
            b[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
            b[n - 4..].copy_from_slice(&8u32.to_le_bytes());
        }
        if let Err(e) = parse_file(&b) {
            prop_assert!(e.offset <= b.len());
        }
    }

    #[test]
    fn mutated_files_never_panic(es in entries(6), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut f = write_full(AbsDay(1), &es);
        let i = at.index(f.len() - 12);
        f[i] = byte;
        let n = f.len();
        let crc = crc32(&f[..n - 12]);
        f[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
        let _ = parse_file(&f);
    }

    #[test]
    fn deltas_apply_like_a_map(
        base in entries(12),
        edits in vec((0..16u32, any::<bool>()), 0..10),
        fresh in entry(0),
    ) {
        let mut model: BTreeMap<Vec<u8>, Entry> = base.iter().map(|e| (e.id.clone(), e.clone())).collect();
        let mut changes = Vec::new();
        for (i, delete) in edits {
            let mut idb = vec![0u8; 16];
            idb[..4].copy_from_slice(&i.to_le_bytes());
            if delete {
                model.remove(&idb);
                changes.push(Change::Delete(idb));
            } else {
                // A delta record without attributes reads as a deletion
                // (our layout), so a replacement always has a name.
                let e = Entry {
                    id: idb.clone(),
                    display_name: Some(fresh.display_name.clone().unwrap_or_else(|| "x".into())),
                    ..fresh.clone()
                };
                model.insert(idb, e.clone());
                changes.push(Change::Replace(Box::new(e)));
            }
        }
        let d = write_delta(AbsDay(1), AbsDay(2), &changes);
        let AbsFile::Delta(parsed) = parse_file(&d).expect("delta parses") else {
            return Err(TestCaseError::fail("not a delta"));
        };
        let got: BTreeMap<Vec<u8>, Entry> =
            apply_delta(base, parsed).into_iter().map(|e| (e.id.clone(), e)).collect();
        prop_assert_eq!(got, model);
    }

    #[test]
    fn search_finds_exactly_the_matching_names(es in entries(30), q in "[a-zäö]{1,2}") {
        let book = AddressBook::new(es.clone());
        let hits = book.search(&q, usize::MAX);
        let matches = |e: &Entry| {
            [&e.display_name, &e.given_name, &e.surname].into_iter().flatten().any(|n| {
                let l = n.to_lowercase();
                l.trim().starts_with(&q) || l.split_whitespace().any(|w| w.starts_with(&q))
            }) || e.email.as_deref().is_some_and(|m| m.to_lowercase().starts_with(&q))
                || e.sip_uri.as_deref().is_some_and(|u| u[4..].to_lowercase().starts_with(&q))
        };
        let want: Vec<&Vec<u8>> = {
            let mut v: Vec<&Vec<u8>> = es.iter().filter(|e| matches(e)).map(|e| &e.id).collect();
            v.sort();
            v
        };
        let mut got: Vec<&Vec<u8>> = hits.iter().map(|e| &e.id).collect();
        got.sort();
        prop_assert_eq!(got, want);
    }
}
