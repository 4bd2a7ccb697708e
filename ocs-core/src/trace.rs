//! SIP trace records: credential redaction, a readable text form and a
//! pcap form that Wireshark and sngrep open.
//!
//! No I/O here: the driver's trace file (`driver::trace`) decides where
//! records go and rotates files; this module only turns one whole SIP
//! message into bytes to append.
//!
//! The pcap form is synthetic: each message becomes one IPv4 (or IPv6)
//! packet with a UDP header, or TCP with sequence numbers that run on per
//! direction so dissectors can follow the stream. TLS connections are
//! written as the plaintext they carry, over TCP, because the point of a
//! trace is to read the SIP.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::discovery::Transport;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us to the server.
    Sent,
    /// From the server to us.
    Received,
}

/// The connection a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// Our address.
    pub local: SocketAddr,
    /// The server's address.
    pub remote: SocketAddr,
}

const REDACTED: &str = "<redacted>";

/// Removes credentials from a message's head: the value of Authorization
/// and Proxy-Authorization after the scheme name (Digest responses, NTLM
/// and Kerberos tokens), and every `gssapi-data` parameter (the NTLM and
/// Kerberos tokens of WWW-Authenticate / Proxy-Authenticate). The body is
/// left alone: it is the user's content, not a credential.
pub fn redact(msg: &[u8]) -> Cow<'_, [u8]> {
    let head_end = find_blank_line(msg).unwrap_or(msg.len());
    let head = &msg[..head_end];
    let lower = head.to_ascii_lowercase();
    let needs = [b"authorization".as_slice(), b"gssapi-data"]
        .iter()
        .any(|n| lower.windows(n.len()).any(|w| w == *n));
    if !needs {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len());
    let mut hiding = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if folded && hiding {
            // A continuation of a credential header: dropped with it.
            continue;
        }
        hiding = false;
        let l = line.to_ascii_lowercase();
        let name_end = l.iter().position(|&b| b == b':');
        let name = name_end.map(|i| l[..i].trim_ascii());
        if let (Some(i), Some(n)) = (name_end, name)
            && (n == b"authorization" || n == b"proxy-authorization")
        {
            let value = line[i + 1..].trim_ascii_start();
            let scheme_len = value
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(value.len());
            out.extend_from_slice(&line[..=i]);
            out.push(b' ');
            out.extend_from_slice(&value[..scheme_len]);
            out.push(b' ');
            out.extend_from_slice(REDACTED.as_bytes());
            out.extend_from_slice(b"\r\n");
            hiding = true;
            continue;
        }
        redact_gssapi(line, &mut out);
    }
    out.extend_from_slice(&msg[head_end..]);
    Cow::Owned(out)
}

/// Copies `line`, replacing each `gssapi-data="…"` (or unquoted) value.
fn redact_gssapi(line: &[u8], out: &mut Vec<u8>) {
    const KEY: &[u8] = b"gssapi-data";
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if rest.len() >= KEY.len() && rest[..KEY.len()].eq_ignore_ascii_case(KEY) {
            let mut j = i + KEY.len();
            while j < line.len() && line[j].is_ascii_whitespace() && line[j] != b'\n' {
                j += 1;
            }
            if j < line.len() && line[j] == b'=' {
                j += 1;
                while j < line.len() && (line[j] == b' ' || line[j] == b'\t') {
                    j += 1;
                }
                let end = if line.get(j) == Some(&b'"') {
                    line[j + 1..]
                        .iter()
                        .position(|&b| b == b'"')
                        .map_or(line.len(), |k| j + 1 + k + 1)
                } else {
                    line[j..]
                        .iter()
                        .position(|&b| matches!(b, b',' | b';' | b'\r' | b'\n'))
                        .map_or(line.len(), |k| j + k)
                };
                out.extend_from_slice(&line[i..j]);
                out.push(b'"');
                out.extend_from_slice(REDACTED.as_bytes());
                out.push(b'"');
                i = end;
                continue;
            }
        }
        out.push(line[i]);
        i += 1;
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| b.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
}

fn unix(at: SystemTime) -> (u64, u32) {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

/// One text record: a line with the time (seconds since the Unix epoch),
/// the direction and the addresses, then the redacted message and a
/// blank line.
pub fn text_record(dir: Direction, at: SystemTime, flow: Option<&Flow>, msg: &[u8]) -> Vec<u8> {
    let (s, us) = unix(at);
    let arrow = match dir {
        Direction::Sent => ">>> sent",
        Direction::Received => "<<< received",
    };
    let mut out = match flow {
        Some(f) => {
            let (from, to) = match dir {
                Direction::Sent => (f.local, f.remote),
                Direction::Received => (f.remote, f.local),
            };
            format!("{s}.{us:06} {arrow} {} {from} -> {to}\n", f.transport).into_bytes()
        }
        None => format!("{s}.{us:06} {arrow}\n").into_bytes(),
    };
    out.extend_from_slice(&redact(msg));
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// pcap link type for raw IPv4/IPv6 packets.
const LINKTYPE_RAW: u32 = 101;
/// The largest payload one synthetic packet carries; longer TCP data is
/// split into several segments, as a real stack would.
const MAX_PAYLOAD: usize = 65_000;

/// Turns messages into pcap packet records, keeping TCP sequence numbers
/// per direction of the current connection.
#[derive(Debug, Default)]
pub struct PcapWriter {
    flow: Option<Flow>,
    /// Next sequence number from us, and from the server.
    seq: [u32; 2],
}

impl PcapWriter {
    /// A writer at the start of a file.
    pub fn new() -> PcapWriter {
        PcapWriter::default()
    }

    /// The pcap global header (microsecond timestamps, raw IP).
    pub fn file_header() -> [u8; 24] {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        h
    }

    /// The packet record(s) for one message (redacted).
    pub fn record(&mut self, dir: Direction, at: SystemTime, flow: &Flow, msg: &[u8]) -> Vec<u8> {
        if self.flow.as_ref() != Some(flow) {
            self.flow = Some(*flow);
            self.seq = [1, 1];
        }
        let payload = redact(msg);
        let (src, dst) = match dir {
            Direction::Sent => (flow.local, flow.remote),
            Direction::Received => (flow.remote, flow.local),
        };
        let (s, us) = unix(at);
        let mut out = Vec::with_capacity(payload.len() + 80);
        let udp = flow.transport == Transport::Udp;
        let chunks: Vec<&[u8]> = if udp {
            // A datagram cannot be split; nothing this big goes over UDP.
            vec![&payload[..payload.len().min(MAX_PAYLOAD)]]
        } else {
            payload.chunks(MAX_PAYLOAD).collect()
        };
        let (mine, theirs) = match dir {
            Direction::Sent => (0, 1),
            Direction::Received => (1, 0),
        };
        for chunk in chunks {
            let transport = if udp {
                udp_header(src.port(), dst.port(), chunk.len())
            } else {
                let h = tcp_header(src.port(), dst.port(), self.seq[mine], self.seq[theirs]);
                self.seq[mine] = self.seq[mine].wrapping_add(chunk.len() as u32);
                h
            };
            let proto = if udp { 17 } else { 6 };
            let ip = ip_header(src.ip(), dst.ip(), proto, transport.len() + chunk.len());
            let len = (ip.len() + transport.len() + chunk.len()) as u32;
            out.extend_from_slice(&(s as u32).to_le_bytes());
            out.extend_from_slice(&us.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&ip);
            out.extend_from_slice(&transport);
            out.extend_from_slice(chunk);
        }
        out
    }
}

fn udp_header(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(8);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    // Checksum 0: "not computed", which IPv4 allows.
    h.extend_from_slice(&[0, 0]);
    h
}

fn tcp_header(sport: u16, dport: u16, seq: u32, ack: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&ack.to_be_bytes());
    h.push(5 << 4); // 20-byte header
    h.push(0x18); // PSH, ACK
    h.extend_from_slice(&65_535u16.to_be_bytes());
    // Checksum left 0: dissectors do not verify it by default.
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

fn ip_header(src: IpAddr, dst: IpAddr, proto: u8, payload: usize) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&((20 + payload) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let sum = ipv4_checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            h
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(v) => v.to_ipv6_mapped(),
                IpAddr::V6(v) => v,
            };
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(payload as u16).to_be_bytes());
            h.push(proto);
            h.push(64);
            h.extend_from_slice(&v6(s).octets());
            h.extend_from_slice(&v6(d).octets());
            h
        }
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// HTTP headers as `Debug` shows them, `Authorization` values (passwords,
/// tokens, NTLM answers) replaced: requests end up in logs and panics.
pub fn redacted_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    headers
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("authorization") {
                (n, "<redacted>")
            } else {
                (n, v)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CHALLENGE: &[u8] = b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TCP 10.0.0.1:5061;branch=z9hG4bK1\r\nWWW-Authenticate: NTLM realm=\"SIP Communications Service\", targetname=\"ocs.contoso.com\", opaque=\"0a1b2c3d\", gssapi-data=\"TlRMTVNTUAACAAAAAAAAADgAAADzgpjiAAAA\", version=3\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn credentials_are_redacted_and_the_rest_is_kept() {
        let r = redact(CHALLENGE);
        let t = std::str::from_utf8(&r).expect("utf-8");
        assert!(!t.contains("TlRMTVNTUAAC"), "{t}");
        assert!(t.contains("gssapi-data=\"<redacted>\", version=3"), "{t}");
        assert!(t.contains("opaque=\"0a1b2c3d\""), "{t}");

        let req = b"REGISTER sip:contoso.com SIP/2.0\r\nAuthorization: Digest username=\"alice\", realm=\"x\", nonce=\"n\", response=\"6629fae49393a05397450978507c4ef1\"\r\n  , cnonce=\"c\"\r\nProxy-Authorization: NTLM qop=\"auth\", gssapi-data=\"AAAA\"\r\nContent-Length: 5\r\n\r\nhello";
        let r = redact(req);
        let t = std::str::from_utf8(&r).expect("utf-8");
        assert!(t.contains("Authorization: Digest <redacted>\r\n"), "{t}");
        assert!(
            t.contains("Proxy-Authorization: NTLM <redacted>\r\n"),
            "{t}"
        );
        assert!(!t.contains("6629fae4"), "{t}");
        assert!(!t.contains("cnonce"), "folded line dropped: {t}");
        assert!(t.ends_with("\r\n\r\nhello"), "body kept: {t}");

        // Nothing to hide: the same bytes, not a copy.
        let plain = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(redact(plain), Cow::Borrowed(_)));
        // The body is not searched: an IM may mention anything.
        let im = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 24\r\n\r\nauthorization: gssapi-data";
        assert!(matches!(redact(im), Cow::Borrowed(_)));
    }

    fn flow(t: Transport) -> Flow {
        Flow {
            transport: t,
            local: "192.0.2.1:50000".parse().expect("addr"),
            remote: "192.0.2.9:5061".parse().expect("addr"),
        }
    }

    #[test]
    fn text_records_carry_time_direction_and_addresses() {
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let r = text_record(
            Direction::Received,
            at,
            Some(&flow(Transport::Tls)),
            CHALLENGE,
        );
        let t = String::from_utf8(r).expect("utf-8");
        assert!(
            t.starts_with(
                "1700000000.123456 <<< received TLS 192.0.2.9:5061 -> 192.0.2.1:50000\nSIP/2.0 401"
            ),
            "{t}"
        );
        assert!(t.ends_with("\r\n\r\n\n"), "{t:?}");
    }

    #[test]
    fn pcap_packets_have_consistent_lengths_checksums_and_sequence_numbers() {
        let mut w = PcapWriter::new();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let f = flow(Transport::Tcp);
        let msg = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let a = w.record(Direction::Sent, at, &f, msg);
        let b = w.record(Direction::Sent, at, &f, msg);
        let c = w.record(Direction::Received, at, &f, msg);
        for rec in [&a, &b, &c] {
            let incl = u32::from_le_bytes(rec[8..12].try_into().expect("4")) as usize;
            assert_eq!(incl, rec.len() - 16);
            let ip = &rec[16..36];
            assert_eq!(ip[0], 0x45);
            assert_eq!(u16::from_be_bytes([ip[2], ip[3]]) as usize, incl);
            assert_eq!(ipv4_checksum(ip), 0, "header checksum verifies");
            assert_eq!(ip[9], 6);
            assert_eq!(&rec[56..], msg);
        }
        let seq = |r: &[u8]| u32::from_be_bytes(r[40..44].try_into().expect("4"));
        let ack = |r: &[u8]| u32::from_be_bytes(r[44..48].try_into().expect("4"));
        assert_eq!(seq(&a), 1);
        assert_eq!(seq(&b), 1 + msg.len() as u32);
        // The server's first byte, acknowledging everything we sent.
        assert_eq!(seq(&c), 1);
        assert_eq!(ack(&c), 1 + 2 * msg.len() as u32);
        // Ports follow the direction.
        assert_eq!(u16::from_be_bytes([a[36], a[37]]), 50000);
        assert_eq!(u16::from_be_bytes([c[36], c[37]]), 5061);

        // UDP, and a large message over TCP split into segments.
        let u = w.record(Direction::Sent, at, &flow(Transport::Udp), msg);
        assert_eq!(u[16 + 9], 17);
        assert_eq!(
            u16::from_be_bytes([u[40], u[41]]) as usize,
            8 + msg.len(),
            "UDP length"
        );
        let big = vec![b'x'; 150_000];
        let segs = w.record(Direction::Sent, at, &f, &big);
        assert_eq!(segs.len(), 150_000 + 3 * (16 + 20 + 20));
    }

    proptest::proptest! {
        /// Any bytes: no panic, the body after the first blank line is
        /// untouched, and no gssapi-data value survives in the head.
        #[test]
        fn redaction_is_total_and_keeps_the_body(
            head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            token in "[A-Za-z0-9+/]{8,40}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
        ) {
            let head: Vec<u8> = head.into_iter().filter(|&b| b != b'\n').collect();
            let mut msg = head.clone();
            msg.extend_from_slice(format!("\r\nX: NTLM gssapi-data=\"{token}\"\r\n\r\n").as_bytes());
            msg.extend_from_slice(&body);
            let r = redact(&msg);
            let cut = find_blank_line(&r).expect("blank line kept");
            proptest::prop_assert!(r[cut..].ends_with(&body));
            let h = String::from_utf8_lossy(&r[..cut]).to_string();
            proptest::prop_assert!(!h.contains(&format!("\"{token}\"")), "{}", h);
        }
    }

    #[test]
    fn ipv6_flows_use_ipv6_headers() {
        let mut w = PcapWriter::new();
        let f = Flow {
            transport: Transport::Udp,
            local: "[2001:db8::1]:5060".parse().expect("addr"),
            remote: "[2001:db8::2]:5060".parse().expect("addr"),
        };
        let r = w.record(Direction::Sent, UNIX_EPOCH, &f, b"x");
        assert_eq!(r[16] >> 4, 6);
        assert_eq!(u16::from_be_bytes([r[20], r[21]]), 9);
        assert_eq!(r.len(), 16 + 40 + 8 + 1);
    }
}
