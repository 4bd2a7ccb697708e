//! `ocs address-book ...`: read `.lsabs` files and the downloaded folder,
//! search them, and write sample files.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use ocs_core::addressbook::format::{parse_with_header, write_full};
use ocs_core::addressbook::{AbsDay, AbsFile, AddressBook, Change, Entry, Phone, PhoneKind};
use ocs_core::driver::{AbsStore, load_stored};
use ocs_examples::{CliError, emit};

#[derive(Debug, Subcommand)]
pub(crate) enum AddressBookCommand {
    /// Parse one address-book file (F-, D- or C-…lsabs) and print its
    /// header and entries (or changes) as JSON; exit 1 with the byte
    /// offset when it is damaged.
    Show {
        /// The file.
        file: PathBuf,
        /// Print at most this many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Search a downloaded address-book folder (the one given to
    /// --address-book) by name, e-mail, SIP URI or phone prefix.
    Search {
        /// The folder.
        dir: PathBuf,
        /// The prefix to look for.
        query: String,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Write a sample full file of COUNT generated people (for trying the
    /// download against a web server of your own).
    Sample {
        /// Where to write it.
        file: PathBuf,
        /// How many people.
        #[arg(long, default_value_t = 100)]
        count: u32,
        /// The day, as four hex digits (default: today).
        #[arg(long)]
        day: Option<String>,
    },
}

pub(crate) fn run(cmd: AddressBookCommand) -> Result<(), CliError> {
    match cmd {
        AddressBookCommand::Show { file, limit } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let (h, parsed) = parse_with_header(&bytes)
                .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
            let (count, items): (usize, Vec<Value>) = match &parsed {
                AbsFile::Full(entries) => (
                    entries.len(),
                    entries.iter().take(limit).map(entry_json).collect(),
                ),
                AbsFile::Delta(changes) => (
                    changes.len(),
                    changes.iter().take(limit).map(change_json).collect(),
                ),
            };
            emit(json!({"kind": h.kind.to_string(), "day": h.day.to_string(),
                "base": h.base.map(|b| b.to_string()), "normalized_phones": h.normalized,
                "count": count, "items": items}))
        }
        AddressBookCommand::Search { dir, query, limit } => {
            let store = AbsStore::open(&dir)
                .map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
            let (state, entries) = load_stored(&store).ok_or_else(|| {
                CliError::Failed(format!(
                    "{}: no address book stored there (or it no longer parses)",
                    dir.display()
                ))
            })?;
            let book = AddressBook::new(entries);
            let hits: Vec<Value> = book
                .search(&query, limit)
                .into_iter()
                .map(entry_json)
                .collect();
            emit(json!({"day": state.day().to_string(), "entries": book.len(), "results": hits}))
        }
        AddressBookCommand::Sample { file, count, day } => {
            let day = match day {
                Some(d) => AbsDay(u16::from_str_radix(&d, 16).map_err(|_| {
                    CliError::Usage(format!("--day {d}: expected four hex digits"))
                })?),
                None => AbsDay::from_unix_secs(unix_now()),
            };
            let people: Vec<Entry> = (0..count).map(sample_person).collect();
            std::fs::write(&file, write_full(day, &people))
                .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
            emit(
                json!({"file": file.display().to_string(), "day": day.to_string(), "count": count}),
            )
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sample_person(i: u32) -> Entry {
    const GIVEN: [&str; 8] = [
        "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans",
    ];
    const SUR: [&str; 8] = [
        "Meyer", "Schmidt", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch",
    ];
    let g = GIVEN[i as usize % 8];
    let s = SUR[(i as usize / 8) % 8];
    let local = format!("{}.{}{}", g.to_lowercase(), s.to_lowercase(), i);
    let mut id = vec![0u8; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    Entry {
        id,
        display_name: Some(format!("{g} {s}")),
        given_name: Some(g.into()),
        surname: Some(s.into()),
        email: Some(format!("{local}@contoso.com")),
        sip_uri: Some(format!("sip:{local}@contoso.com")),
        title: Some("Engineer".into()),
        phones: vec![Phone {
            kind: PhoneKind::Work,
            number: format!("+49 89 {:07}", 1_000_000 + i),
            normalized: Some(format!("tel:+4989{:07}", 1_000_000 + i)),
        }],
        ..Entry::default()
    }
}

pub(crate) fn entry_json(e: &Entry) -> Value {
    json!({"display_name": e.display_name, "given_name": e.given_name, "surname": e.surname,
        "email": e.email, "sip_uri": e.sip_uri, "title": e.title, "company": e.company,
        "office": e.office,
        "phones": e.phones.iter().map(|p| json!({"kind": p.kind.as_str(), "number": p.number,
            "normalized": p.normalized})).collect::<Vec<_>>()})
}

fn change_json(c: &Change) -> Value {
    let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match c {
        Change::Replace(e) => {
            json!({"change": "replace", "id": hex(&e.id), "entry": entry_json(e)})
        }
        Change::Patch { id, attrs } => json!({"change": "patch", "id": hex(id),
            "attrs": attrs.iter().map(|(f, v)| json!({"field": f.ad_name(), "value": v})).collect::<Vec<_>>()}),
        Change::Delete(id) => json!({"change": "delete", "id": hex(id)}),
    }
}
