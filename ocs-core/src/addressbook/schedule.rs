//! When to download the address book (seed; PROTOCOL.md g).
//!
//! - The first download after sign-in happens at a random time in
//!   `[0, GalDownloadInitialDelay]`, so a whole site signing in at 9:00
//!   does not hit the server at once (the reason the setting exists);
//!   0 means at once, the seed's lab workaround.
//! - A failed download is retried after 1, 2, 4 … 64 minutes, then every
//!   64 minutes.
//! - After 24 hours of failures a warning is raised, once per streak.
//! - After a success the next download is a day later.
//!
//! Sans-IO: the caller passes the time and the randomness, asks
//! [`Schedule::next_download`] when to wake up and reports outcomes.

use std::time::{Duration, Instant};

use crate::rng::Rng;

/// The first retry delay after a failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(60);
/// The longest retry delay.
pub const RETRY_MAX: Duration = Duration::from_secs(64 * 60);
/// How long downloads may fail before [`Schedule::failed`] warns.
pub const WARN_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The time from a successful download to the next one.
pub const REFRESH_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What a failed download means for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// When the next attempt is due.
    pub retry_at: Instant,
    /// Consecutive failures so far (1 for the first).
    pub failures: u32,
    /// `Some(time failing)` exactly once per streak, when downloads have
    /// failed for [`WARN_AFTER`]: the moment to tell the user.
    pub warn: Option<Duration>,
}

/// The download timetable.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    next: Option<Instant>,
    failures: u32,
    failing_since: Option<Instant>,
    warned: bool,
    in_flight: bool,
    last_success: Option<Instant>,
    /// Asked to download while one was running: run again right after.
    again: bool,
}

impl Schedule {
    /// Nothing scheduled yet.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Signed in at `now`: the first download is due at a random time in
    /// `[now, now + max_initial_delay]` (whole seconds). Replaces whatever
    /// was scheduled; a download in flight is left to finish.
    pub fn signed_in(&mut self, now: Instant, max_initial_delay: Duration, rng: &mut Rng) {
        let wait = Duration::from_secs(rng.below(max_initial_delay.as_secs().saturating_add(1)));
        self.next = Some(now + wait);
    }

    /// Signed out: nothing more is scheduled until the next sign-in.
    pub fn signed_out(&mut self) {
        self.next = None;
    }

    /// Download now, whatever the timetable says (an explicit refresh).
    pub fn download_now(&mut self, now: Instant) {
        if self.in_flight {
            self.again = true;
        } else {
            self.next = Some(now);
        }
    }

    /// When the next download is due (`None`: nothing scheduled, or one is
    /// running).
    pub fn next_download(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.next }
    }

    /// When the last download succeeded.
    pub fn last_success(&self) -> Option<Instant> {
        self.last_success
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Starts the download if it is due at `now`; `true` means the caller
    /// must run it and report [`succeeded`](Self::succeeded) or
    /// [`failed`](Self::failed).
    pub fn start_if_due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(at) if !self.in_flight && at <= now => {
                self.in_flight = true;
                self.next = None;
                true
            }
            _ => false,
        }
    }

    /// The download could not start yet for a reason that is not a failure
    /// (its URL is still on its way): try again at `at`.
    pub fn postpone(&mut self, at: Instant) {
        self.in_flight = false;
        self.next = Some(at);
    }

    /// The download finished well: the next one is due a day later.
    pub fn succeeded(&mut self, now: Instant) {
        self.in_flight = false;
        self.failures = 0;
        self.failing_since = None;
        self.warned = false;
        self.last_success = Some(now);
        self.next = Some(if std::mem::take(&mut self.again) {
            now
        } else {
            now + REFRESH_AFTER
        });
    }

    /// The download failed: schedules the retry with exponential back-off
    /// and says whether it is time to warn the user.
    pub fn failed(&mut self, now: Instant) -> FailureOutcome {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        let since = *self.failing_since.get_or_insert(now);
        let retry_at = if std::mem::take(&mut self.again) {
            now
        } else {
            now + retry_delay(self.failures)
        };
        self.next = Some(retry_at);
        let failing_for = now.saturating_duration_since(since);
        let warn = if !self.warned && failing_for >= WARN_AFTER {
            self.warned = true;
            Some(failing_for)
        } else {
            None
        };
        FailureOutcome {
            retry_at,
            failures: self.failures,
            warn,
        }
    }
}

/// The wait after the `failures`-th consecutive failure: 1, 2, 4 … 64
/// minutes, then 64 minutes.
pub fn retry_delay(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(6);
    (RETRY_FIRST * (1 << shift)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulated clock's origin, the one clock read.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn initial_delay_is_random_within_bounds_and_zero_means_now() {
        let t0 = origin();
        let mut rng = Rng::from_seed(7);
        let mut s = Schedule::new();
        s.signed_in(t0, Duration::ZERO, &mut rng);
        assert_eq!(s.next_download(), Some(t0));
        assert!(s.start_if_due(t0));
        let max = Duration::from_secs(60 * 60);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut s = Schedule::new();
            s.signed_in(t0, max, &mut rng);
            let wait = s.next_download().unwrap() - t0;
            assert!(wait <= max, "{wait:?}");
            seen.insert(wait.as_secs() / 600);
        }
        // Spread over the whole hour, not bunched at one end.
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn backoff_doubles_to_64_minutes_and_warns_once_after_a_day() {
        let t0 = origin();
        let mut s = Schedule::new();
        s.download_now(t0);
        let mut now = t0;
        let mut waits = Vec::new();
        let mut warnings = Vec::new();
        for _ in 0..40 {
            assert!(s.start_if_due(now));
            assert!(!s.start_if_due(now), "only one download at a time");
            let out = s.failed(now);
            waits.push((out.retry_at - now).as_secs() / 60);
            if let Some(w) = out.warn {
                warnings.push((out.failures, w));
            }
            now = out.retry_at;
            assert!(!s.start_if_due(now - Duration::from_secs(1)));
        }
        assert_eq!(&waits[..8], &[1, 2, 4, 8, 16, 32, 64, 64]);
        // 1+2+…+32 = 63 min, then 64 min steps: the 24 h mark is passed on
        // the 29th failure (63 + 22*64 = 1471 min >= 1440).
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].0, 29);
        assert!(warnings[0].1 >= WARN_AFTER);
        // Success clears the streak; the next failure starts at 1 minute.
        assert!(s.start_if_due(now));
        s.succeeded(now);
        assert_eq!(s.failures(), 0);
        assert_eq!(s.last_success(), Some(now));
        assert_eq!(s.next_download(), Some(now + REFRESH_AFTER));
        let later = now + REFRESH_AFTER;
        assert!(s.start_if_due(later));
        assert_eq!(s.failed(later).retry_at - later, RETRY_FIRST);
    }

    #[test]
    fn asking_during_a_download_runs_another_right_after() {
        let t0 = origin();
        let mut s = Schedule::new();
        s.download_now(t0);
        assert!(s.start_if_due(t0));
        s.download_now(t0);
        assert_eq!(s.next_download(), None, "one at a time");
        s.succeeded(t0);
        assert_eq!(s.next_download(), Some(t0));
        assert!(s.start_if_due(t0));
        s.succeeded(t0);
        assert_eq!(s.next_download(), Some(t0 + REFRESH_AFTER));
    }

    #[test]
    fn sign_out_cancels() {
        let t0 = origin();
        let mut s = Schedule::new();
        s.signed_in(t0, Duration::ZERO, &mut Rng::from_seed(1));
        s.signed_out();
        assert_eq!(s.next_download(), None);
        assert!(!s.start_if_due(t0 + REFRESH_AFTER));
    }

    #[test]
    fn retry_delay_saturates() {
        assert_eq!(retry_delay(0), RETRY_FIRST);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }
}
