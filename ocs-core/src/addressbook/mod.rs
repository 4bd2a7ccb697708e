//! Address-book (GAL) download: file names, the download timetable,
//! which file to fetch next, the MS-ABS file format and a searchable
//! local book (PROTOCOL.md g; seed "OC Adressbuch Download").
//!
//! Everything here is sans-IO. The driver's `AddressBookDownloader`
//! fetches files with reqwest and stores them with `AbsStore`.

mod book;
pub mod format;
mod names;
mod schedule;

pub use book::{AddressBook, Entry, Phone, PhoneKind};
pub use format::{AbsError, AbsFile, Change, apply_delta, parse_file};
pub use names::{AbsDay, FileName, Flavor};
pub use schedule::{
    FailureOutcome, REFRESH_AFTER, RETRY_FIRST, RETRY_MAX, Schedule, WARN_AFTER, retry_delay,
};

/// How old the local book may be before deltas are no longer tried and a
/// full file is fetched (the server keeps about 30 days of deltas).
pub const MAX_DELTA_AGE_DAYS: u16 = 30;

/// How many days back a full file is looked for when there is no usable
/// local book (the server writes one a day; today's may not exist yet).
pub const FULL_LOOKBACK_DAYS: u16 = 7;

/// What is stored locally: the full file and the deltas applied on top of
/// it, in order, and when the last download succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The full file.
    pub full: FileName,
    /// Deltas applied after it, oldest first.
    pub deltas: Vec<FileName>,
    /// When the last download succeeded (seconds since the Unix epoch).
    pub downloaded_unix: u64,
}

impl Stored {
    /// The day the local book is current to.
    pub fn day(&self) -> AbsDay {
        self.deltas.last().unwrap_or(&self.full).day()
    }

    /// Every file the state names.
    pub fn files(&self) -> impl Iterator<Item = &FileName> {
        std::iter::once(&self.full).chain(&self.deltas)
    }

    /// The state file's text.
    pub fn to_text(&self) -> String {
        let mut s = format!("ocs-address-book 1\nfull {}\n", self.full);
        for d in &self.deltas {
            s.push_str(&format!("delta {d}\n"));
        }
        s.push_str(&format!("downloaded {}\n", self.downloaded_unix));
        s
    }

    /// Reads [`to_text`](Self::to_text)'s output; `None` for anything
    /// else (a damaged state file means "start afresh", never an error).
    pub fn parse(text: &str) -> Option<Stored> {
        let mut lines = text.lines();
        if lines.next()? != "ocs-address-book 1" {
            return None;
        }
        let (mut full, mut deltas, mut downloaded) = (None, Vec::new(), None);
        for line in lines {
            let (k, v) = line.split_once(' ')?;
            match k {
                "full" if full.is_none() => full = Some(FileName::parse(v)?),
                "delta" => deltas.push(FileName::parse(v)?),
                "downloaded" => downloaded = Some(v.parse().ok()?),
                _ => return None,
            }
        }
        let full = full.filter(|f| matches!(f, FileName::Full { .. }))?;
        if deltas.iter().any(|d| matches!(d, FileName::Full { .. })) {
            return None;
        }
        Some(Stored {
            full,
            deltas,
            downloaded_unix: downloaded?,
        })
    }
}

/// Which file to ask the server for, one request at a time.
///
/// Without a usable local book (none, or older than
/// [`MAX_DELTA_AGE_DAYS`]): the newest full file of the last
/// [`FULL_LOOKBACK_DAYS`] days. With one of day `B`: for each day `d`
/// from today back to `B + 1`, the delta `D-B-d`, else the full file
/// `F-d` (the server leaves a delta out when too much changed, KB 972403);
/// nothing newer means the book is current.
#[derive(Debug, Clone)]
pub struct UpdatePlan {
    base: Option<AbsDay>,
    floor: AbsDay,
    day: AbsDay,
    delta_next: bool,
    done: bool,
}

impl UpdatePlan {
    /// A plan for a local book of day `local` (`None`: no book) on `today`.
    pub fn new(local: Option<AbsDay>, today: AbsDay) -> UpdatePlan {
        let base = local.filter(|b| *b <= today && b.days_until(today) <= MAX_DELTA_AGE_DAYS);
        let floor = match base {
            Some(b) => AbsDay(b.0.saturating_add(1)),
            None => AbsDay(today.0.saturating_sub(FULL_LOOKBACK_DAYS - 1)),
        };
        UpdatePlan {
            base,
            floor,
            day: today,
            delta_next: base.is_some(),
            done: floor > today,
        }
    }

    /// The next file to request; `None` when there is nothing newer to
    /// look for.
    pub fn next(&self) -> Option<FileName> {
        if self.done {
            return None;
        }
        Some(match (self.base, self.delta_next) {
            (Some(b), true) => FileName::delta(b, self.day),
            _ => FileName::full(self.day),
        })
    }

    /// The server does not have the file [`next`](Self::next) named.
    pub fn not_found(&mut self) {
        if self.done {
            return;
        }
        if self.base.is_some() && self.delta_next {
            self.delta_next = false;
            return;
        }
        if self.day <= self.floor {
            self.done = true;
        } else {
            self.day = AbsDay(self.day.0 - 1);
            self.delta_next = self.base.is_some();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(local: Option<u16>, today: u16) -> Vec<String> {
        let mut p = UpdatePlan::new(local.map(AbsDay), AbsDay(today));
        let mut out = Vec::new();
        while let Some(f) = p.next() {
            out.push(f.to_string());
            p.not_found();
            assert!(out.len() < 100);
        }
        out
    }

    #[test]
    fn first_download_looks_for_the_newest_full_file() {
        let w = walk(None, 0x0A8C);
        assert_eq!(w.len(), 7);
        assert_eq!(w[0], "F-0A8C.lsabs");
        assert_eq!(w[6], "F-0A86.lsabs");
        assert_eq!(
            walk(None, 2),
            ["F-0002.lsabs", "F-0001.lsabs", "F-0000.lsabs"]
        );
    }

    #[test]
    fn a_recent_book_tries_deltas_then_full_files_newest_first() {
        assert_eq!(
            walk(Some(0x0A8A), 0x0A8C),
            [
                "D-0A8A-0A8C.lsabs",
                "F-0A8C.lsabs",
                "D-0A8A-0A8B.lsabs",
                "F-0A8B.lsabs"
            ]
        );
        assert!(walk(Some(0x0A8C), 0x0A8C).is_empty(), "current");
        // A book from the future (clock skew) is not trusted.
        assert_eq!(walk(Some(0x0A8D), 0x0A8C)[0], "F-0A8C.lsabs");
        // Older than 30 days: full files only.
        assert_eq!(walk(Some(100), 131)[0], "F-0083.lsabs");
        assert_eq!(walk(Some(101), 131)[0], "D-0065-0083.lsabs");
    }

    #[test]
    fn stored_state_round_trips_and_damage_is_refused() {
        let s = Stored {
            full: FileName::full(AbsDay(0x0A8A)),
            deltas: vec![
                FileName::delta(AbsDay(0x0A8A), AbsDay(0x0A8B)),
                FileName::delta(AbsDay(0x0A8B), AbsDay(0x0A8C)),
            ],
            downloaded_unix: 1_211_587_200,
        };
        assert_eq!(s.day(), AbsDay(0x0A8C));
        assert_eq!(Stored::parse(&s.to_text()), Some(s.clone()));
        let text = s.to_text();
        for bad in [
            String::new(),
            text.replace("ocs-address-book 1", "ocs-address-book 2"),
            text.replace("full F-0A8A", "full D-0A8A-0A8B"),
            text.replace("downloaded 1211587200\n", ""),
            text.replace("delta D-0A8A-0A8B", "delta F-0A8B"),
            text.replace("downloaded", "when"),
            text[..text.len() / 2].to_owned(),
        ] {
            assert_eq!(Stored::parse(&bad), None, "{bad:?}");
        }
    }
}
