//! The local address book: entries and a prefix index over names, e-mail
//! addresses, SIP URIs and phone numbers.
//!
//! The index is one sorted array of `(key, entry)` pairs whose key bytes
//! live in a single arena, so 100,000 entries cost a few megabytes and a
//! prefix search is two binary searches plus a short scan.

use std::collections::HashSet;

/// The kind of a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    /// `telephoneNumber`.
    Work,
    /// `mobile`.
    Mobile,
    /// `homePhone`.
    Home,
    /// `otherTelephone`.
    Other,
    /// `ipPhone`.
    Ip,
}

impl PhoneKind {
    /// The name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneKind::Work => "work",
            PhoneKind::Mobile => "mobile",
            PhoneKind::Home => "home",
            PhoneKind::Other => "other",
            PhoneKind::Ip => "ip",
        }
    }
}

/// A phone number as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// Which number it is.
    pub kind: PhoneKind,
    /// The number, as written (e.g. `+49 (89) 1234-567`).
    pub number: String,
    /// The server's normalised form (`tel:+498912345567`), when it sent one.
    pub normalized: Option<String>,
}

/// One person (or room, or group) of the address book.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The identity deltas refer to (the directory object's id).
    pub id: Vec<u8>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `givenName`.
    pub given_name: Option<String>,
    /// `sn`.
    pub surname: Option<String>,
    /// `mail`.
    pub email: Option<String>,
    /// The SIP URI (`msRTCSIP-PrimaryUserAddress`), with its `sip:`.
    pub sip_uri: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `company`.
    pub company: Option<String>,
    /// `department`.
    pub department: Option<String>,
    /// `physicalDeliveryOfficeName`.
    pub office: Option<String>,
    /// Phone numbers.
    pub phones: Vec<Phone>,
    /// Attributes this library does not interpret: `(attribute id, text
    /// or hex of the value)`.
    pub other: Vec<(u32, String)>,
}

/// A searchable address book.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    entries: Vec<Entry>,
    arena: String,
    /// `(key start, key length, entry index)`, sorted by key.
    index: Vec<(u32, u32, u32)>,
}

impl AddressBook {
    /// Builds the book and its index.
    pub fn new(entries: Vec<Entry>) -> AddressBook {
        let mut book = AddressBook {
            entries,
            arena: String::new(),
            index: Vec::new(),
        };
        book.build_index();
        book
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Hands the entries back (to apply a delta, say).
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry whose SIP URI is `uri` (with or without `sip:`, any case).
    pub fn by_sip_uri(&self, uri: &str) -> Option<&Entry> {
        let want = strip_sip(uri);
        self.entries.iter().find(|e| {
            e.sip_uri
                .as_deref()
                .is_some_and(|u| strip_sip(u).eq_ignore_ascii_case(want))
        })
    }

    /// Up to `limit` entries with a name, a word of a name, an e-mail
    /// address, a SIP URI (without `sip:`) or a phone number (digits only)
    /// starting with `query`, ignoring case. Results come in key order,
    /// each entry once. An empty query finds nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Entry> {
        let mut out = Vec::new();
        if limit == 0 {
            return out;
        }
        let mut seen = HashSet::new();
        for q in query_keys(query) {
            if q.is_empty() {
                continue;
            }
            let start = self.index.partition_point(|k| self.key(k) < q.as_str());
            for k in &self.index[start..] {
                if !self.key(k).starts_with(q.as_str()) {
                    break;
                }
                if seen.insert(k.2) {
                    out.push(&self.entries[k.2 as usize]);
                    if out.len() == limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    fn key(&self, k: &(u32, u32, u32)) -> &str {
        &self.arena[k.0 as usize..(k.0 + k.1) as usize]
    }

    fn build_index(&mut self) {
        let mut arena = String::new();
        let mut index = Vec::new();
        let mut push = |arena: &mut String, key: &str, entry: usize| {
            if key.is_empty() {
                return;
            }
            // Offsets are u32 to halve the index; an arena past 4 GiB is
            // not an address book, so such keys are simply not indexed.
            let (Ok(start), Ok(len), Ok(entry)) = (
                u32::try_from(arena.len()),
                u32::try_from(key.len()),
                u32::try_from(entry),
            ) else {
                return;
            };
            if start.checked_add(len).is_none() {
                return;
            }
            arena.push_str(key);
            index.push((start, len, entry));
        };
        for (i, e) in self.entries.iter().enumerate() {
            for name in [&e.display_name, &e.given_name, &e.surname]
                .into_iter()
                .flatten()
            {
                let lower = name.to_lowercase();
                push(&mut arena, lower.trim(), i);
                if lower.split_whitespace().nth(1).is_some() {
                    for w in lower.split_whitespace().skip(1) {
                        push(&mut arena, w, i);
                    }
                }
            }
            if let Some(m) = &e.email {
                push(&mut arena, &m.trim().to_lowercase(), i);
            }
            if let Some(u) = &e.sip_uri {
                let u = strip_sip(u.trim()).to_lowercase();
                if e.email.as_deref().map(|m| m.trim().to_lowercase()) != Some(u.clone()) {
                    push(&mut arena, &u, i);
                }
            }
            for p in &e.phones {
                let d = digits(&p.number);
                push(&mut arena, &d, i);
                if let Some(n) = &p.normalized {
                    let nd = digits(n);
                    if nd != d {
                        push(&mut arena, &nd, i);
                    }
                }
            }
        }
        let a = &arena;
        let key = |k: &(u32, u32, u32)| &a[k.0 as usize..(k.0 + k.1) as usize];
        index.sort_unstable_by(|x, y| key(x).cmp(key(y)).then(x.2.cmp(&y.2)));
        index.dedup_by(|x, y| x.2 == y.2 && key(x) == key(y));
        self.arena = arena;
        self.index = index;
    }
}

/// The keys a query is looked up under: its lower-case text without a
/// `sip:` prefix, and its digits when it looks like a phone number.
fn query_keys(query: &str) -> Vec<String> {
    let q = query.trim();
    let mut keys = vec![strip_sip(q).to_lowercase()];
    let phone_like = q.bytes().any(|b| b.is_ascii_digit())
        && q.bytes()
            .all(|b| b.is_ascii_digit() || b" +-()./".contains(&b));
    if phone_like {
        let d = digits(q);
        if d != keys[0] {
            keys.push(d);
        }
    }
    keys
}

fn strip_sip(uri: &str) -> &str {
    match uri.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("sip:") => &uri[4..],
        _ => uri,
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, mail: &str, phone: &str) -> Entry {
        let (given, sur) = name.split_once(' ').unwrap_or((name, ""));
        Entry {
            id: mail.as_bytes().to_vec(),
            display_name: Some(name.into()),
            given_name: Some(given.into()),
            surname: Some(sur.into()),
            email: Some(mail.into()),
            sip_uri: Some(format!("sip:{mail}")),
            phones: vec![Phone {
                kind: PhoneKind::Work,
                number: phone.into(),
                normalized: None,
            }],
            ..Entry::default()
        }
    }

    fn names(v: Vec<&Entry>) -> Vec<&str> {
        v.into_iter()
            .map(|e| e.display_name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn finds_by_every_key_once() {
        let book = AddressBook::new(vec![
            person("Bob Builder", "bob@contoso.com", "+49 (89) 1234-567"),
            person("Björn Öberg", "bjoern@contoso.com", "+46 8 555 01"),
            person("Carol Bobson", "carol@contoso.com", "+1 425 555 0100"),
        ]);
        assert_eq!(
            names(book.search("bob", 10)),
            ["Bob Builder", "Carol Bobson"]
        );
        assert_eq!(names(book.search("BUILD", 10)), ["Bob Builder"]);
        assert_eq!(names(book.search("öb", 10)), ["Björn Öberg"]);
        assert_eq!(names(book.search("ÖBERG", 10)), ["Björn Öberg"]);
        assert_eq!(names(book.search("carol@", 10)), ["Carol Bobson"]);
        assert_eq!(names(book.search("sip:bjoern", 10)), ["Björn Öberg"]);
        assert_eq!(names(book.search("+49 89 12", 10)), ["Bob Builder"]);
        assert_eq!(names(book.search("1425", 10)), ["Carol Bobson"]);
        assert_eq!(names(book.search("b", 1)), ["Björn Öberg"]);
        assert!(book.search("", 10).is_empty());
        assert!(book.search("zed", 10).is_empty());
        assert!(book.search("bob", 0).is_empty());
        assert_eq!(
            book.by_sip_uri("SIP:Carol@Contoso.com")
                .unwrap()
                .email
                .as_deref(),
            Some("carol@contoso.com")
        );
        assert_eq!(book.len(), 3);
    }
}
