//! Time per state per person per day (UTC) from recorded transitions and
//! the spans the tracker was watching.
//!
//! A state counts from the transition that set it until the next one or
//! the end of the span it was seen in. Time no span covers is
//! `tracker_offline`, and at the start of a span a person is `unknown`
//! until the first notification: nothing is guessed across a gap.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Millis, Span, Transition, civil_day, day_name, day_start, utc_name};

/// The label for time in a span before a person's first notification.
pub const UNKNOWN: &str = "unknown";

/// One person's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// The person.
    pub who: String,
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Milliseconds per state label (see [`super::Snapshot::label`]), plus
    /// [`UNKNOWN`].
    pub totals: BTreeMap<String, Millis>,
    /// Milliseconds of the day (within the report's range) no tracker
    /// covered.
    pub tracker_offline: Millis,
    /// The first moment that day the person was in a state other than
    /// offline or unknown.
    pub first_seen: Option<Millis>,
    /// The last such moment.
    pub last_seen: Option<Millis>,
}

impl DayRow {
    /// Every millisecond of the row: the states, unknown and the tracker's
    /// gaps (the day's length within the range).
    pub fn accounted(&self) -> Millis {
        self.totals.values().sum::<Millis>() + self.tracker_offline
    }
}

/// Merges overlapping or touching spans (several trackers, or a run that
/// restarted) and sorts them.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.to > s.from);
    spans.sort_by_key(|s| (s.from, s.to));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.from <= last.to => last.to = last.to.max(s.to),
            _ => out.push(s),
        }
    }
    out
}

/// One stretch of one person's time: `[from, to)` in state `label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// From (inclusive).
    pub from: Millis,
    /// To (exclusive).
    pub to: Millis,
    /// The state label, or [`UNKNOWN`].
    pub label: String,
}

/// `who`'s time within `[from, to)` that the (merged) spans cover, as
/// consecutive segments: each state from its transition to the next one
/// or the span's end, [`UNKNOWN`] from a span's start to the first
/// notification in it. `ts` are `who`'s transitions, oldest first.
pub fn segments(ts: &[&Transition], spans: &[Span], from: Millis, to: Millis) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut push = |a: Millis, b: Millis, label: &str| {
        if a < b {
            out.push(Segment {
                from: a,
                to: b,
                label: label.to_owned(),
            });
        }
    };
    for span in spans {
        let (a, b) = (span.from.max(from), span.to.min(to));
        if a >= b {
            continue;
        }
        let mut cursor = a;
        let mut label = UNKNOWN.to_owned();
        for t in ts.iter().filter(|t| t.at >= span.from && t.at < span.to) {
            if t.at > cursor {
                push(cursor, t.at.min(b), &label);
            }
            cursor = cursor.max(t.at);
            label = t.to.label();
            if cursor >= b {
                break;
            }
        }
        push(cursor, b, &label);
    }
    out
}

/// The rows for `[from, to)`: one per person (in `people`, plus everyone
/// with transitions) per day. `transitions` may come in any order.
pub fn days(
    transitions: &[Transition],
    spans: &[Span],
    people: &[String],
    from: Millis,
    to: Millis,
) -> Vec<DayRow> {
    let spans = merge(spans.to_vec());
    let mut by_who: BTreeMap<&str, Vec<&Transition>> = BTreeMap::new();
    for p in people {
        by_who.entry(p.as_str()).or_default();
    }
    for t in transitions {
        by_who.entry(t.who.as_str()).or_default().push(t);
    }
    let mut rows = Vec::new();
    for (who, mut ts) in by_who {
        ts.sort_by_key(|t| t.at);
        let mut row_of: BTreeMap<Millis, DayRow> = BTreeMap::new();
        // Every day of the range exists, even one without data.
        let mut day = day_start_of(from);
        while day < to {
            let (a, b) = (day.max(from), (day + 86_400_000).min(to));
            row_of.insert(
                day,
                DayRow {
                    who: who.to_owned(),
                    day: day_name(civil_day(day)),
                    totals: BTreeMap::new(),
                    tracker_offline: b - a - covered(&spans, a, b),
                    first_seen: None,
                    last_seen: None,
                },
            );
            day += 86_400_000;
        }
        for seg in segments(&ts, &spans, from, to) {
            add(&mut row_of, &seg.label, seg.from, seg.to);
        }
        rows.extend(row_of.into_values());
    }
    rows
}

fn day_start_of(at: Millis) -> Millis {
    let (y, m, d) = civil_day(at);
    day_start(y, m, d)
}

/// How much of `[a, b)` the (merged) spans cover.
fn covered(spans: &[Span], a: Millis, b: Millis) -> Millis {
    spans
        .iter()
        .map(|s| (s.to.min(b) - s.from.max(a)).max(0))
        .sum()
}

/// Adds `[a, b)` in state `label` to the rows, split at midnight.
fn add(rows: &mut BTreeMap<Millis, DayRow>, label: &str, a: Millis, b: Millis) {
    let mut t = a;
    while t < b {
        let day = day_start_of(t);
        let end = b.min(day + 86_400_000);
        if let Some(row) = rows.get_mut(&day) {
            *row.totals.entry(label.to_owned()).or_insert(0) += end - t;
            if label != UNKNOWN && label != "offline" {
                row.first_seen = Some(row.first_seen.map_or(t, |f| f.min(t)));
                row.last_seen = Some(row.last_seen.map_or(end, |l| l.max(end)));
            }
        }
        t = end;
    }
}

/// The labels that occur in `rows`, in a stable order: the standard
/// states first, then custom states, then unknown.
pub fn labels(rows: &[DayRow]) -> Vec<String> {
    const ORDER: [&str; 9] = [
        "online",
        "inactive",
        "busy",
        "busy-idle",
        "do-not-disturb",
        "be-right-back",
        "away",
        "offline",
        UNKNOWN,
    ];
    let mut all: Vec<String> = rows.iter().flat_map(|r| r.totals.keys().cloned()).collect();
    all.sort();
    all.dedup();
    all.sort_by_key(|l| {
        let rank = ORDER.iter().position(|o| o == l).unwrap_or(ORDER.len() - 1);
        // Custom states between the standard ones and unknown.
        let rank = if l == UNKNOWN { ORDER.len() + 1 } else { rank };
        (rank, l.clone())
    });
    all
}

/// The rows as CSV: `who,day,first_seen,last_seen,<label seconds>...,
/// tracker_offline` with a header line.
pub fn csv(rows: &[DayRow]) -> String {
    let labels = labels(rows);
    let mut out = String::from("who,day,first_seen,last_seen");
    for l in &labels {
        out.push(',');
        out.push_str(&csv_field(l));
    }
    out.push_str(",tracker_offline\n");
    for r in rows {
        let time = |t: Option<Millis>| t.map(utc_name).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{}",
            csv_field(&r.who),
            r.day,
            time(r.first_seen),
            time(r.last_seen)
        ));
        for l in &labels {
            let ms = r.totals.get(l).copied().unwrap_or(0);
            out.push_str(&format!(",{}", seconds(ms)));
        }
        out.push_str(&format!(",{}\n", seconds(r.tracker_offline)));
    }
    out
}

/// Seconds with up to three decimals (`12`, `0.5`).
fn seconds(ms: Millis) -> String {
    if ms % 1000 == 0 {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
            .trim_end_matches('0')
            .to_owned()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The rows as JSON: an array of objects with `who`, `day`, `first_seen`,
/// `last_seen`, `seconds` (per label) and `tracker_offline_seconds`.
pub fn json(rows: &[DayRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let secs: serde_json::Map<String, Value> = r
                    .totals
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(*v as f64 / 1000.0)))
                    .collect();
                json!({
                    "who": r.who,
                    "day": r.day,
                    "first_seen": r.first_seen.map(utc_name),
                    "last_seen": r.last_seen.map(utc_name),
                    "seconds": secs,
                    "tracker_offline_seconds": r.tracker_offline as f64 / 1000.0,
                })
            })
            .collect(),
    )
}

/// A state's colour in the HTML report (Communicator's: green available,
/// red busy, yellow away, grey offline; custom states by their kind).
fn colour(label: &str) -> &'static str {
    match label {
        "online" => "#3c9a3c",
        "inactive" => "#8cc68c",
        "busy" | "busy-idle" => "#d03c3c",
        "do-not-disturb" => "#8b1a1a",
        "be-right-back" | "away" => "#e3b505",
        "offline" => "#9a9a9a",
        UNKNOWN => "#ffffff",
        _ => "#5a6fd0",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every person's timeline in one SVG picture (a row each, a legend of
/// the states that occur, the range's ends), for a README or a wiki.
pub fn timelines_svg(timelines: &[(String, Vec<Segment>)], from: Millis, to: Millis) -> String {
    const LEFT: f64 = 180.0;
    const W: f64 = 720.0;
    const ROW: f64 = 30.0;
    let span = (to - from).max(1) as f64;
    let x = |t: Millis| ((t - from) as f64 / span * W * 100.0).round() / 100.0;
    let mut used: Vec<String> = timelines
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.label.clone()))
        .collect();
    used.sort();
    used.dedup();
    let height = ROW * timelines.len() as f64 + 60.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<defs><pattern id=\"gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><path d=\"M0 6L6 0\" stroke=\"#bbb\"/></pattern></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
        LEFT + W + 10.0
    );
    for (i, (who, segs)) in timelines.iter().enumerate() {
        let y = 10.0 + ROW * i as f64;
        out.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{}</text>\n<rect x=\"{LEFT}\" y=\"{y}\" width=\"{W}\" height=\"20\" fill=\"url(#gap)\"/>\n",
            y + 15.0,
            esc(who)
        ));
        for s in segs {
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"20\" fill=\"{}\"><title>{}</title></rect>\n",
                ((LEFT + x(s.from)) * 100.0).round() / 100.0,
                ((x(s.to) - x(s.from)) * 100.0).round().max(0.0) / 100.0,
                colour(&s.label),
                esc(&s.label)
            ));
        }
    }
    let y = 10.0 + ROW * timelines.len() as f64;
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
        y + 4.0,
        utc_name(from),
        LEFT + W,
        y + 4.0,
        utc_name(to)
    ));
    let mut lx = 0.0;
    for l in used
        .iter()
        .chain(std::iter::once(&"tracker offline".to_owned()))
    {
        let fill = if l == "tracker offline" {
            "url(#gap)".to_owned()
        } else {
            colour(l).to_owned()
        };
        out.push_str(&format!(
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{fill}\" stroke=\"#999\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            y + 20.0,
            lx + 16.0,
            y + 30.0,
            esc(l)
        ));
        lx += 24.0 + 7.0 * l.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

/// The report as one self-contained HTML file: a timeline (SVG) per person
/// over `[from, to)`, coloured by state, with hatched gaps where no tracker
/// watched, and the daily totals table. `timelines` are each person's
/// segments ([`segments`]).
pub fn html(
    rows: &[DayRow],
    timelines: &[(String, Vec<Segment>)],
    from: Millis,
    to: Millis,
) -> String {
    const W: f64 = 960.0;
    let span = (to - from).max(1) as f64;
    let x = |t: Millis| ((t - from) as f64 / span * W * 100.0).round() / 100.0;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Presence report</title>\n<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}</style>\n</head><body>\n",
    );
    out.push_str(&format!(
        "<h1>Presence report</h1>\n<p>{} to {} (UTC)</p>\n",
        utc_name(from),
        utc_name(to)
    ));
    for (who, segs) in timelines {
        out.push_str(&format!("<h2>{}</h2>\n", esc(who)));
        out.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"40\" role=\"img\" aria-label=\"timeline of {}\">\n<defs><pattern id=\"gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><path d=\"M0 6L6 0\" stroke=\"#bbb\"/></pattern></defs>\n<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"24\" fill=\"url(#gap)\"><title>tracker offline</title></rect>\n",
            esc(who)
        ));
        for s in segs {
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"0\" width=\"{}\" height=\"24\" fill=\"{}\" data-state=\"{}\"><title>{}: {} to {}</title></rect>\n",
                x(s.from),
                ((x(s.to) - x(s.from)) * 100.0).round().max(0.0) / 100.0,
                colour(&s.label),
                esc(&s.label),
                esc(&s.label),
                utc_name(s.from),
                utc_name(s.to)
            ));
        }
        out.push_str(&format!(
            "<text x=\"0\" y=\"38\" font-size=\"11\">{}</text><text x=\"{W}\" y=\"38\" font-size=\"11\" text-anchor=\"end\">{}</text>\n</svg>\n",
            utc_name(from),
            utc_name(to)
        ));
    }
    let labels = labels(rows);
    out.push_str("<h2>Daily totals (minutes)</h2>\n<table>\n<tr><th>who</th><th>day</th><th>first seen</th><th>last seen</th>");
    for l in &labels {
        out.push_str(&format!(
            "<th><span style=\"color:{}\">&#9632;</span> {}</th>",
            colour(l),
            esc(l)
        ));
    }
    out.push_str("<th>tracker offline</th></tr>\n");
    let min = |ms: Millis| format!("{:.1}", ms as f64 / 60_000.0);
    for r in rows {
        let time = |t: Option<Millis>| t.map(utc_name).unwrap_or_default();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&r.who),
            r.day,
            time(r.first_seen),
            time(r.last_seen)
        ));
        for l in &labels {
            out.push_str(&format!(
                "<td>{}</td>",
                min(r.totals.get(l).copied().unwrap_or(0))
            ));
        }
        out.push_str(&format!("<td>{}</td></tr>\n", min(r.tracker_offline)));
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::Snapshot;
    use super::*;

    const H: Millis = 3_600_000;

    fn t(who: &str, at: Millis, state: &str) -> Transition {
        Transition {
            who: who.into(),
            at,
            from: None,
            to: Snapshot {
                state: state.into(),
                availability: None,
                activity: None,
                custom: None,
                note: None,
            },
            source: "ocs".into(),
        }
    }

    fn day0() -> Millis {
        day_start(2026, 12, 7)
    }

    #[test]
    fn a_state_counts_until_the_next_and_across_midnight() {
        let d = day0();
        let ts = [
            t("sip:bob@x", d + 22 * H, "online"),
            t("sip:bob@x", d + 23 * H, "busy"),
            t("sip:bob@x", d + 26 * H, "away"),
        ];
        let spans = [Span {
            from: d + 22 * H,
            to: d + 28 * H,
        }];
        let rows = days(&ts, &spans, &[], d, d + 48 * H);
        assert_eq!(rows.len(), 2);
        let (a, b) = (&rows[0], &rows[1]);
        assert_eq!(a.day, "2026-12-07");
        assert_eq!(a.totals["online"], H);
        assert_eq!(a.totals["busy"], H, "busy until midnight");
        assert_eq!(a.tracker_offline, 22 * H);
        assert_eq!(a.first_seen, Some(d + 22 * H));
        assert_eq!(a.last_seen, Some(d + 24 * H));
        assert_eq!(b.day, "2026-12-08");
        assert_eq!(b.totals["busy"], 2 * H, "busy from midnight on");
        assert_eq!(b.totals["away"], 2 * H);
        assert_eq!(b.tracker_offline, 20 * H);
        for r in &rows {
            assert_eq!(r.accounted(), 24 * H, "{r:?}");
        }
    }

    #[test]
    fn a_gap_between_runs_is_not_filled_with_the_last_state() {
        let d = day0();
        // Busy at 9; the tracker stops at 10 and comes back at 12, when the
        // first notification says busy again at 12:00:01.
        let ts = [
            t("sip:bob@x", d + 9 * H, "busy"),
            t("sip:bob@x", d + 12 * H + 1000, "busy"),
        ];
        let spans = [
            Span {
                from: d + 9 * H,
                to: d + 10 * H,
            },
            Span {
                from: d + 12 * H,
                to: d + 13 * H,
            },
        ];
        let rows = days(&ts, &spans, &[], d, d + 24 * H);
        let r = &rows[0];
        assert_eq!(r.totals["busy"], 2 * H - 1000);
        assert_eq!(r.totals[UNKNOWN], 1000, "until the first notification");
        assert_eq!(r.tracker_offline, 22 * H);
        assert_eq!(r.accounted(), 24 * H);
    }

    #[test]
    fn overlapping_trackers_count_once_and_people_without_data_get_rows() {
        let d = day0();
        let spans = merge(vec![
            Span {
                from: d,
                to: d + 2 * H,
            },
            Span {
                from: d + H,
                to: d + 3 * H,
            },
            Span {
                from: d + 3 * H,
                to: d + 4 * H,
            },
        ]);
        assert_eq!(
            spans,
            vec![Span {
                from: d,
                to: d + 4 * H
            }]
        );
        let rows = days(&[], &spans, &["sip:carol@x".into()], d, d + 24 * H);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].totals[UNKNOWN], 4 * H);
        assert_eq!(rows[0].tracker_offline, 20 * H);
        assert_eq!(rows[0].first_seen, None);
    }

    #[test]
    fn the_html_report_draws_each_segment_where_it_belongs() {
        let d = day0();
        let ts = [
            t("sip:bob@x", d + 6 * H, "online"),
            t("sip:bob@x", d + 12 * H, "busy"),
        ];
        let spans = [Span {
            from: d + 6 * H,
            to: d + 18 * H,
        }];
        let refs: Vec<&Transition> = ts.iter().collect();
        let segs = segments(&refs, &spans, d, d + 24 * H);
        assert_eq!(
            segs.iter()
                .map(|s| (s.from - d, s.to - d, s.label.as_str()))
                .collect::<Vec<_>>(),
            vec![(6 * H, 12 * H, "online"), (12 * H, 18 * H, "busy")]
        );
        let rows = days(&ts, &spans, &[], d, d + 24 * H);
        let page = html(&rows, &[("sip:bob@x".into(), segs)], d, d + 24 * H);
        // A quarter of the width per six hours.
        assert!(page.contains(r##"<rect x="240" y="0" width="240" height="24" fill="#3c9a3c" data-state="online">"##), "{page}");
        assert!(
            page.contains(
                r##"<rect x="480" y="0" width="240" height="24" fill="#d03c3c" data-state="busy">"##
            ),
            "{page}"
        );
        assert!(page.contains("<td>360.0</td>"), "six hours online");
        assert!(!page.contains("<script"), "self-contained, no scripts");
    }

    #[test]
    fn csv_and_json_carry_the_same_numbers() {
        let d = day0();
        let mut custom = t("sip:bob@x", d + H, "busy");
        custom.to.custom = Some("Seminar, room 2".into());
        let ts = [t("sip:bob@x", d, "online"), custom];
        let spans = [Span {
            from: d,
            to: d + 2 * H,
        }];
        let rows = days(&ts, &spans, &[], d, d + 24 * H);
        let text = csv(&rows);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("who,day,first_seen,last_seen,online,\"custom: Seminar, room 2\",tracker_offline")
        );
        assert_eq!(
            lines.next(),
            Some("sip:bob@x,2026-12-07,2026-12-07T00:00:00Z,2026-12-07T02:00:00Z,3600,3600,79200")
        );
        let j = json(&rows);
        assert_eq!(j[0]["seconds"]["custom: Seminar, room 2"], json!(3600.0));
        assert_eq!(j[0]["tracker_offline_seconds"], json!(79200.0));
    }
}
