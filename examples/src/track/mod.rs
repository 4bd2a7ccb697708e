//! Presence time tracking (the seed's "Zeiterfassung"): a tracker signs in
//! as one account, watches contacts and records every presence transition
//! in a database ([`store`]); [`report`] turns the records into time per
//! state per person per day.
//!
//! What is recorded is only what the tracker saw: the time between its
//! runs, and while its connection was down, is a gap ("tracker offline
//! from .. to .."), never the last state stretched over it.

pub mod demo;
pub mod report;
pub mod run;
pub mod store;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// A person's presence as the tracker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The state (`online`, `busy`, `do-not-disturb`, `be-right-back`,
    /// `away`, `offline`, ...; `ocs_core::State::as_str`).
    pub state: String,
    /// The raw availability number, when the contact published one.
    pub availability: Option<u32>,
    /// The activity token (`in-a-meeting`, `on-the-phone`), if any.
    pub activity: Option<String>,
    /// A custom state's text, if any.
    pub custom: Option<String>,
    /// The note, if any.
    pub note: Option<String>,
}

impl Snapshot {
    /// The name a report files the time under: the custom state's text
    /// when there is one, else the state.
    pub fn label(&self) -> String {
        match &self.custom {
            Some(c) if !c.trim().is_empty() => format!("custom: {}", c.trim()),
            _ => self.state.clone(),
        }
    }
}

/// One change of one person's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The person's SIP URI (lower case).
    pub who: String,
    /// When the tracker saw it.
    pub at: Millis,
    /// The state before (`None`: the first one this run saw).
    pub from: Option<String>,
    /// The presence after.
    pub to: Snapshot,
    /// The dialect it came from (`ocs` or `standard`).
    pub source: String,
}

/// A stretch of time a tracker was signed in and watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// From (inclusive).
    pub from: Millis,
    /// To (exclusive).
    pub to: Millis,
}

/// The time of day now, in [`Millis`]: the one place the tracker's hosts
/// (the CLI, tests) read the wall clock.
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> Millis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The days (UTC) of a Unix time in milliseconds: `(year, month, day)`.
pub fn civil_day(at: Millis) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm.
    let z = at.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Midnight (UTC) at the start of `(year, month, day)`, in milliseconds.
pub fn day_start(year: i64, month: u32, day: u32) -> Millis {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400_000
}

/// `YYYY-MM-DD` for a day.
pub fn day_name((y, m, d): (i64, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// Reads `YYYY-MM-DD` (UTC midnight), or `None` when it is not one.
pub fn parse_day(s: &str) -> Option<Millis> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let start = day_start(y, m, d);
    // 2026-02-31 is not a day.
    (civil_day(start) == (y, m, d)).then_some(start)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time.
pub fn utc_name(at: Millis) -> String {
    let day = civil_day(at);
    let s = at.rem_euclid(86_400_000) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_name(day),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for (y, m, d) in [(1970, 1, 1), (2026, 12, 7), (2024, 2, 29), (2000, 3, 1)] {
            let t = day_start(y, m, d);
            assert_eq!(civil_day(t), (y, m, d));
            assert_eq!(civil_day(t + 86_399_999), (y, m, d));
            assert_eq!(parse_day(&day_name((y, m, d))), Some(t));
        }
        assert_eq!(day_start(1970, 1, 1), 0);
        assert_eq!(parse_day("2026-02-31"), None);
        assert_eq!(parse_day("yesterday"), None);
        assert_eq!(
            utc_name(day_start(2026, 12, 7) + 3_723_000),
            "2026-12-07T01:02:03Z"
        );
    }
}
