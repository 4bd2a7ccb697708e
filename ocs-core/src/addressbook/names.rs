//! Address-book file names (MS-ABS 1.3; PROTOCOL.md g, vector T19).
//!
//! `F-XXXX.lsabs` is a full file, `D-XXXX-YYYY.lsabs` the changes from
//! the full file of day XXXX to the one of day YYYY, `C-XXXX-YYYY.lsabs`
//! the compact delta of later servers. A day is four upper-case hex
//! digits counting days since 2001-01-01 00:00 UTC. `.dabs` files are
//! the device variants.

use std::fmt;

/// Seconds from the Unix epoch to 2001-01-01 00:00 UTC, day 0 of the
/// address-book calendar.
const EPOCH_2001_UNIX_SECS: u64 = 978_307_200;

/// A day of the address-book calendar: days since 2001-01-01 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsDay(pub u16);

impl AbsDay {
    /// The day containing `unix_secs` (seconds since 1970-01-01 UTC).
    /// Times before 2001 give day 0; times after the year 2180 (day
    /// 0xFFFF) give the last day, which four hex digits can still name.
    pub fn from_unix_secs(unix_secs: u64) -> AbsDay {
        let days = unix_secs.saturating_sub(EPOCH_2001_UNIX_SECS) / 86_400;
        AbsDay(u16::try_from(days).unwrap_or(u16::MAX))
    }

    /// Midnight (UTC) starting this day, in seconds since the Unix epoch.
    pub fn unix_secs(self) -> u64 {
        EPOCH_2001_UNIX_SECS + u64::from(self.0) * 86_400
    }

    /// The number of days from `self` to `later` (0 when `later` is not
    /// later).
    pub fn days_until(self, later: AbsDay) -> u16 {
        later.0.saturating_sub(self.0)
    }
}

impl fmt::Display for AbsDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// Which kind of client a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `.lsabs`: desktop clients.
    Desktop,
    /// `.dabs`: devices.
    Device,
}

impl Flavor {
    fn extension(self) -> &'static str {
        match self {
            Flavor::Desktop => "lsabs",
            Flavor::Device => "dabs",
        }
    }
}

/// An address-book file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileName {
    /// `F-XXXX`: the whole address book as of a day.
    Full {
        /// The day.
        day: AbsDay,
        /// Desktop or device.
        flavor: Flavor,
    },
    /// `D-XXXX-YYYY`: the changes from the full file of `from` to the one
    /// of `to`.
    Delta {
        /// The older day.
        from: AbsDay,
        /// The newer day.
        to: AbsDay,
        /// Desktop or device.
        flavor: Flavor,
    },
    /// `C-XXXX-YYYY`: a compact delta (later servers).
    Compact {
        /// The older day.
        from: AbsDay,
        /// The newer day.
        to: AbsDay,
        /// Desktop or device.
        flavor: Flavor,
    },
}

impl FileName {
    /// The desktop full file of `day`.
    pub fn full(day: AbsDay) -> FileName {
        FileName::Full {
            day,
            flavor: Flavor::Desktop,
        }
    }

    /// The desktop delta from `from` to `to`.
    pub fn delta(from: AbsDay, to: AbsDay) -> FileName {
        FileName::Delta {
            from,
            to,
            flavor: Flavor::Desktop,
        }
    }

    /// The day the file brings the address book to.
    pub fn day(&self) -> AbsDay {
        match *self {
            FileName::Full { day, .. } => day,
            FileName::Delta { to, .. } | FileName::Compact { to, .. } => to,
        }
    }

    /// Parses a file name such as `D-0A8B-0A8C.lsabs` (letters and hex
    /// digits in either case). `None` when it is not an address-book file.
    pub fn parse(name: &str) -> Option<FileName> {
        let (stem, ext) = name.rsplit_once('.')?;
        let flavor = if ext.eq_ignore_ascii_case("lsabs") {
            Flavor::Desktop
        } else if ext.eq_ignore_ascii_case("dabs") {
            Flavor::Device
        } else {
            return None;
        };
        let mut parts = stem.split('-');
        let kind = parts.next()?;
        let day = |s: Option<&str>| -> Option<AbsDay> {
            let s = s?;
            if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u16::from_str_radix(s, 16).ok().map(AbsDay)
        };
        let parsed = match kind {
            "F" | "f" => FileName::Full {
                day: day(parts.next())?,
                flavor,
            },
            "D" | "d" => FileName::Delta {
                from: day(parts.next())?,
                to: day(parts.next())?,
                flavor,
            },
            "C" | "c" => FileName::Compact {
                from: day(parts.next())?,
                to: day(parts.next())?,
                flavor,
            },
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(parsed)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FileName::Full { day, flavor } => write!(f, "F-{day}.{}", flavor.extension()),
            FileName::Delta { from, to, flavor } => {
                write!(f, "D-{from}-{to}.{}", flavor.extension())
            }
            FileName::Compact { from, to, flavor } => {
                write!(f, "C-{from}-{to}.{}", flavor.extension())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t19_vectors() {
        // 2008-05-24 00:00 UTC and 2008-05-23 12:00 UTC.
        let d24 = AbsDay::from_unix_secs(1_211_587_200);
        let d23 = AbsDay::from_unix_secs(1_211_544_000);
        assert_eq!(FileName::full(d24).to_string(), "F-0A8C.lsabs");
        assert_eq!(FileName::delta(d23, d24).to_string(), "D-0A8B-0A8C.lsabs");
        assert_eq!(
            FileName::full(AbsDay::from_unix_secs(978_307_200)).to_string(),
            "F-0000.lsabs"
        );
        assert_eq!(d24.unix_secs(), 1_211_587_200);
    }

    #[test]
    fn parse_round_trips_and_refuses_junk() {
        for n in [
            "F-0A8C.lsabs",
            "D-0A8B-0A8C.lsabs",
            "C-0001-FFFF.dabs",
            "F-0000.dabs",
        ] {
            assert_eq!(
                FileName::parse(n).map(|f| f.to_string()).as_deref(),
                Some(n)
            );
        }
        assert_eq!(
            FileName::parse("f-0a8c.LSABS"),
            Some(FileName::full(AbsDay(0x0A8C)))
        );
        for bad in [
            "F-0A8.lsabs",
            "F-0A8CC.lsabs",
            "F-0A8G.lsabs",
            "D-0A8B.lsabs",
            "D-0A8B-0A8C-0A8D.lsabs",
            "X-0A8C.lsabs",
            "F-0A8C.txt",
            "F-0A8C",
            "",
            "F-+A8C.lsabs",
        ] {
            assert_eq!(FileName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_saturate() {
        assert_eq!(AbsDay::from_unix_secs(0), AbsDay(0));
        assert_eq!(AbsDay::from_unix_secs(u64::MAX), AbsDay(u16::MAX));
        assert_eq!(AbsDay(5).days_until(AbsDay(3)), 0);
        assert_eq!(AbsDay(3).days_until(AbsDay(5)), 2);
    }
}
