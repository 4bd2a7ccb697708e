//! Parse throughput of ocs against rsip, rsipstack (its own parser since
//! 0.7) and ezk-sip-types.
//!
//! Three inputs (a typical INVITE with SDP, an OCS rlmi multipart NOTIFY,
//! an NTLM REGISTER), two groups per input:
//! - `parse`: bytes to a message object;
//! - `parse_typed_print`: parse, decode top Via, From, To, CSeq, Call-ID
//!   and Contact, then print the message back to bytes.
//!
//! Every (library, input) pair is run once before measuring. A baseline
//! that can't handle an input is reported on stderr and left out of the
//! measurements instead of aborting the whole run.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};

struct Input {
    name: &'static str,
    bytes: &'static [u8],
}

const INPUTS: [Input; 3] = [
    Input {
        name: "invite_sdp",
        bytes: include_bytes!("data/invite_sdp.sip"),
    },
    Input {
        name: "notify_multipart",
        bytes: include_bytes!("data/notify_multipart.sip"),
    },
    Input {
        name: "register_ntlm",
        bytes: include_bytes!("data/register_ntlm.sip"),
    },
];

/// One benchmarked operation: returns a number derived from the result so
/// the work can't be optimised away.
type Op = fn(&[u8]) -> Result<usize, String>;

struct Lib {
    name: &'static str,
    parse: Op,
    typed_print: Op,
}

const LIBS: [Lib; 4] = [
    Lib {
        name: "ocs",
        parse: ocs::parse,
        typed_print: ocs::typed_print,
    },
    Lib {
        name: "rsip",
        parse: rsip_impl::parse,
        typed_print: rsip_impl::typed_print,
    },
    Lib {
        name: "rsipstack",
        parse: rsipstack_impl::parse,
        typed_print: rsipstack_impl::typed_print,
    },
    Lib {
        name: "ezk",
        parse: ezk::parse,
        typed_print: ezk::typed_print,
    },
];

mod ocs {
    use std::hint::black_box;

    use ocs_core::sip::{Contacts, Message};

    fn err(e: impl std::fmt::Display) -> String {
        e.to_string()
    }

    pub fn parse(b: &[u8]) -> Result<usize, String> {
        let m = Message::parse(b).map_err(err)?;
        Ok(m.header_count() + m.body().len())
    }

    pub fn typed_print(b: &[u8]) -> Result<usize, String> {
        let m = Message::parse(b).map_err(err)?;
        let via = m.top_via().map_err(err)?;
        black_box(via.branch());
        let from = m.from().map_err(err)?;
        black_box(from.tag());
        let to = m.to().map_err(err)?;
        black_box(to.tag());
        let cseq = m.cseq().map_err(err)?;
        black_box(cseq.seq);
        black_box(m.call_id().map_err(err)?);
        match m.contacts().map_err(err)? {
            Contacts::List(l) if !l.is_empty() => {
                black_box(&l);
            }
            _ => return Err("no Contact".into()),
        }
        Ok(m.to_bytes().len())
    }
}

mod rsip_impl {
    use std::hint::black_box;

    use rsip::prelude::*;

    fn err(e: impl std::fmt::Display) -> String {
        e.to_string()
    }

    pub fn parse(b: &[u8]) -> Result<usize, String> {
        let m = rsip::SipMessage::try_from(b).map_err(err)?;
        Ok(m.headers().iter().count() + m.body().len())
    }

    pub fn typed_print(b: &[u8]) -> Result<usize, String> {
        let m = rsip::SipMessage::try_from(b).map_err(err)?;
        let via = m.via_header().map_err(err)?.typed().map_err(err)?;
        black_box(&via);
        let from = m.from_header().map_err(err)?.typed().map_err(err)?;
        black_box(&from);
        let to = m.to_header().map_err(err)?.typed().map_err(err)?;
        black_box(&to);
        let cseq = m.cseq_header().map_err(err)?.typed().map_err(err)?;
        black_box(&cseq);
        black_box(m.call_id_header().map_err(err)?.value());
        let contact = m.contact_header().map_err(err)?.typed().map_err(err)?;
        black_box(&contact);
        Ok(m.to_string().len())
    }
}

mod rsipstack_impl {
    use std::hint::black_box;

    use rsipstack::sip::SipMessage;
    use rsipstack::sip::prelude::*;

    fn err(e: impl std::fmt::Display) -> String {
        e.to_string()
    }

    fn body(m: &SipMessage) -> usize {
        match m {
            SipMessage::Request(r) => r.body().len(),
            SipMessage::Response(r) => r.body().len(),
        }
    }

    pub fn parse(b: &[u8]) -> Result<usize, String> {
        let m = SipMessage::try_from(b).map_err(err)?;
        Ok(m.headers().iter().count() + body(&m))
    }

    pub fn typed_print(b: &[u8]) -> Result<usize, String> {
        let m = SipMessage::try_from(b).map_err(err)?;
        let via = m.via_header().map_err(err)?.typed().map_err(err)?;
        black_box(&via);
        let from = m.from_header().map_err(err)?.typed().map_err(err)?;
        black_box(&from);
        let to = m.to_header().map_err(err)?.typed().map_err(err)?;
        black_box(&to);
        let cseq = m.cseq_header().map_err(err)?.typed().map_err(err)?;
        black_box(&cseq);
        black_box(m.call_id_header().map_err(err)?.value());
        let contact = m.contact_header().map_err(err)?.typed().map_err(err)?;
        black_box(&contact);
        Ok(m.to_bytes().len())
    }
}

mod ezk {
    //! ezk-sip-types has no whole-message entry point (ezk-sip-core's
    //! transport does the framing), so this follows what that transport
    //! does for a complete datagram: pull the lines, parse the start line,
    //! insert each header line, cut the body at Content-Length.

    use std::hint::black_box;

    use ezk_sip_types::_private_reexport::Bytes;
    use ezk_sip_types::header::typed::{CSeq, CallID, Contact, ContentLength, FromTo, Via};
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;
    use ezk_sip_types::print::AppendCtx;
    use ezk_sip_types::{Headers, Name};

    pub struct Msg {
        line: MessageLine,
        headers: Headers,
        body: Bytes,
    }

    fn err(e: impl std::fmt::Display) -> String {
        e.to_string()
    }

    pub fn decode(b: &[u8]) -> Result<Msg, String> {
        let buffer = Bytes::copy_from_slice(b);
        let mut parser = PullParser::new(&buffer, 0);
        let mut line = None;
        let mut headers = Headers::new();
        for item in &mut parser {
            let raw = item.map_err(|_| "incomplete message head".to_string())?;
            let text = std::str::from_utf8(raw).map_err(err)?;
            if line.is_none() {
                let (_, l) =
                    MessageLine::parse(&buffer)(text).map_err(|e| format!("start line: {e:?}"))?;
                line = Some(l);
            } else {
                let (_, h) = Line::parse(&buffer, text).map_err(|e| format!("header: {e:?}"))?;
                headers.insert(h.name, h.value);
            }
        }
        let head_end = parser.head_end();
        let body = match headers.get_named::<ContentLength>() {
            Ok(ContentLength(0)) => Bytes::new(),
            Ok(ContentLength(n)) if buffer.len() >= head_end + n => {
                buffer.slice(head_end..head_end + n)
            }
            Ok(_) => return Err("body shorter than Content-Length".into()),
            Err(_) => buffer.slice(head_end..),
        };
        Ok(Msg {
            line: line.ok_or("empty message")?,
            headers,
            body,
        })
    }

    pub fn parse(b: &[u8]) -> Result<usize, String> {
        let m = decode(b)?;
        Ok(m.headers.iter().count() + m.body.len())
    }

    pub fn typed_print(b: &[u8]) -> Result<usize, String> {
        let m = decode(b)?;
        let via: Via = m.headers.get_named().map_err(err)?;
        black_box(&via);
        let from: FromTo = m.headers.get(Name::FROM).map_err(err)?;
        black_box(&from);
        let to: FromTo = m.headers.get(Name::TO).map_err(err)?;
        black_box(&to);
        let cseq: CSeq = m.headers.get_named().map_err(err)?;
        black_box(&cseq);
        let call_id: CallID = m.headers.get_named().map_err(err)?;
        black_box(&call_id);
        let contacts: Vec<Contact> = m.headers.get_named().map_err(err)?;
        if contacts.is_empty() {
            return Err("no Contact".into());
        }
        black_box(&contacts);
        let mut out = format!("{}\r\n{}\r\n", m.line.default_print_ctx(), m.headers).into_bytes();
        out.extend_from_slice(&m.body);
        Ok(out.len())
    }
}

fn benches(c: &mut Criterion) {
    // Which pairs work at all, decided once, loudly.
    let mut usable = Vec::new();
    for input in &INPUTS {
        for lib in &LIBS {
            for (group, op) in [("parse", lib.parse), ("parse_typed_print", lib.typed_print)] {
                match op(input.bytes) {
                    Ok(_) => usable.push((input.name, lib.name, group)),
                    Err(e) => {
                        let e: String = e.chars().take(160).collect();
                        eprintln!(
                            "BASELINE FAILURE: {} can't do `{group}` on {}: {e:?}; pair excluded",
                            lib.name, input.name
                        )
                    }
                }
            }
        }
    }
    let ok = |i: &str, l: &str, g: &str| usable.contains(&(i, l, g));
    for input in &INPUTS {
        for group in ["parse", "parse_typed_print"] {
            assert!(
                ok(input.name, "ocs", group),
                "ocs itself must handle `{group}` on {}",
                input.name
            );
        }
    }

    for input in &INPUTS {
        for (group, pick) in [
            ("parse", (|l: &Lib| l.parse) as fn(&Lib) -> Op),
            ("parse_typed_print", |l: &Lib| l.typed_print),
        ] {
            let mut g = c.benchmark_group(format!("{}/{group}", input.name));
            g.throughput(Throughput::Elements(1))
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1))
                .sample_size(50);
            for lib in &LIBS {
                if !ok(input.name, lib.name, group) {
                    continue;
                }
                let op = pick(lib);
                let bytes = input.bytes;
                g.bench_function(lib.name, |b| b.iter(|| op(black_box(bytes))));
            }
            g.finish();
        }
    }
}

/// Reads criterion's point estimate (mean, ns) for one benchmark of this run.
fn estimate(group: &str, lib: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../target", env!("CARGO_MANIFEST_DIR")));
    // Criterion writes a group named `a/b` into the directory `a_b`.
    let path = format!(
        "{dir}/criterion/{}/{lib}/new/estimates.json",
        group.replace('/', "_")
    );
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Prints ocs's speed-up over each baseline, side by side, from the
/// estimates criterion just wrote.
fn print_ratios() {
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>12} {:>10} {:>9} {:>12} {:>9}",
        "benchmark",
        "ocs ns",
        "rsip ns",
        "rsipstack ns",
        "ezk ns",
        "vs rsip",
        "vs rsipstack",
        "vs ezk"
    );
    for input in &INPUTS {
        for group in ["parse", "parse_typed_print"] {
            let g = format!("{}/{group}", input.name);
            let Some(ours) = estimate(&g, "ocs") else {
                continue;
            };
            let show = |lib: &str| match estimate(&g, lib) {
                Some(t) => (format!("{t:.0}"), format!("{:.2}x", t / ours)),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let (r, rr) = show("rsip");
            let (st, str_) = show("rsipstack");
            let (e, er) = show("ezk");
            println!("{g:<40} {ours:>10.0} {r:>10} {st:>12} {e:>10} {rr:>9} {str_:>12} {er:>9}");
        }
    }
}

/// How many interleaved rounds [`print_paired_ratios`] runs per row.
const ROUNDS: usize = 31;

/// Time of `n` calls of `op` on `bytes`, in ns per call.
#[allow(clippy::disallowed_methods)] // a benchmark reads the clock
fn time_per_call(op: Op, bytes: &[u8], n: u32) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..n {
        let _ = black_box(op(black_box(bytes)));
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

/// The ratios again, measured paired: in each of [`ROUNDS`] rounds every
/// library runs the same work back to back (the order turning each round),
/// the round's ratio is baseline time / ocs time, and the table shows the
/// median round. Criterion measures one library after the other, so on a
/// shared machine whose speed drifts between them (this project's VM swung
/// by 40 % within minutes) its ratios move with the drift; paired rounds
/// see the same drift on both sides.
fn print_paired_ratios() {
    println!();
    println!("paired ratios (median of {ROUNDS} interleaved rounds; baseline time / ocs time)");
    println!(
        "{:<40} {:>9} {:>12} {:>9}",
        "benchmark", "vs rsip", "vs rsipstack", "vs ezk"
    );
    for input in &INPUTS {
        for (group, pick) in [
            ("parse", (|l: &Lib| l.parse) as fn(&Lib) -> Op),
            ("parse_typed_print", |l: &Lib| l.typed_print),
        ] {
            let libs: Vec<&Lib> = LIBS
                .iter()
                .filter(|l| pick(l)(input.bytes).is_ok())
                .collect();
            // About 2 ms of ocs work per round.
            let once = time_per_call(pick(&LIBS[0]), input.bytes, 200).max(1.0);
            let n = ((2_000_000.0 / once) as u32).clamp(50, 20_000);
            let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); libs.len()];
            for round in 0..ROUNDS {
                let mut times = vec![0.0; libs.len()];
                for k in 0..libs.len() {
                    let j = (k + round) % libs.len();
                    times[j] = time_per_call(pick(libs[j]), input.bytes, n);
                }
                let ours = times[0];
                for (j, t) in times.iter().enumerate() {
                    ratios[j].push(t / ours);
                }
            }
            let median = |name: &str| {
                libs.iter()
                    .position(|l| l.name == name)
                    .map_or("-".to_owned(), |j| {
                        let mut r = ratios[j].clone();
                        r.sort_by(f64::total_cmp);
                        format!("{:.2}x", r[r.len() / 2])
                    })
            };
            println!(
                "{:<40} {:>9} {:>12} {:>9}",
                format!("{}/{group}", input.name),
                median("rsip"),
                median("rsipstack"),
                median("ezk")
            );
        }
    }
}

criterion_group!(parse_benches, benches);

fn main() {
    parse_benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    print_paired_ratios();
}
