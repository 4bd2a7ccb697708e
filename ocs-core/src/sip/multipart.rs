//! Multipart bodies (RFC 2046 §5.1): `multipart/related` (OCS rlmi
//! notifications) and `multipart/alternative` (IM in several formats).

use super::error::{ParseError, ParseErrorKind};
use super::scan::trim_ws;

/// One body part: its headers (name, value) and content, borrowed from the
/// enclosing body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// Part headers in order, values trimmed.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The content bytes.
    pub body: &'a [u8],
}

impl<'a> Part<'a> {
    /// A part header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The part's Content-Type (defaults to `text/plain` per RFC 2046).
    pub fn content_type(&self) -> &'a str {
        self.header("Content-Type").unwrap_or("text/plain")
    }
}

/// Maximum number of parts accepted, so a hostile body can't make us build
/// an unbounded list. 10,000 is above a full OCS contact list.
pub const MAX_PARTS: usize = 10_000;

/// Splits a multipart body at `boundary`. Errors carry offsets into `body`.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, ParseError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(ParseError::new(
            0,
            ParseErrorKind::BadMultipart("bad boundary"),
        ));
    }
    let delim = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delim.as_bytes());
    // Find delimiter lines: at the start or after a line end.
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(i) = finder.find(&body[from..]) {
        let at = from + i;
        if at == 0 || body[at - 1] == b'\n' {
            positions.push(at);
            if positions.len() > MAX_PARTS + 1 {
                return Err(ParseError::new(
                    at,
                    ParseErrorKind::LimitExceeded("multipart parts"),
                ));
            }
        }
        from = at + delim.len();
    }
    if positions.is_empty() {
        return Err(ParseError::new(
            0,
            ParseErrorKind::BadMultipart("no boundary"),
        ));
    }
    let mut parts = Vec::with_capacity(positions.len().saturating_sub(1));
    for w in 0..positions.len() {
        let at = positions[w];
        let after = at + delim.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        let Some(next) = positions.get(w + 1).copied() else {
            return Err(ParseError::new(
                at,
                ParseErrorKind::BadMultipart("missing close delimiter"),
            ));
        };
        // Skip transport padding and the line end after the delimiter.
        let line_end = match memchr::memchr(b'\n', &body[after..next]) {
            Some(i) => after + i + 1,
            None => {
                return Err(ParseError::new(
                    after,
                    ParseErrorKind::BadMultipart("delimiter line"),
                ));
            }
        };
        // The line end before the next delimiter belongs to it.
        let mut end = next;
        if end > line_end && body[end - 1] == b'\n' {
            end -= 1;
            if end > line_end && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(parse_part(&body[line_end..end], line_end)?);
    }
    Err(ParseError::new(
        body.len(),
        ParseErrorKind::BadMultipart("missing close delimiter"),
    ))
}

fn parse_part(p: &[u8], base: usize) -> Result<Part<'_>, ParseError> {
    // Headers end at the first empty line; a part may have none.
    let mut headers = Vec::with_capacity(4);
    let mut pos = 0;
    loop {
        let nl = match memchr::memchr(b'\n', &p[pos..]) {
            Some(i) => pos + i,
            None => {
                if pos == p.len() {
                    break;
                }
                return Err(ParseError::new(
                    base + pos,
                    ParseErrorKind::BadMultipart("part headers"),
                ));
            }
        };
        let line = &p[pos..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = nl + 1;
        if line.is_empty() {
            break;
        }
        let s = std::str::from_utf8(line)
            .map_err(|_| ParseError::new(base + pos, ParseErrorKind::InvalidUtf8))?;
        let (n, v) = s.split_once(':').ok_or_else(|| {
            ParseError::new(base + pos, ParseErrorKind::BadMultipart("part header line"))
        })?;
        headers.push((trim_ws(n), trim_ws(v)));
    }
    Ok(Part {
        headers,
        body: &p[pos.min(p.len())..],
    })
}

/// A part to build: content type, extra headers (name, value), content.
pub type PartSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8]);

/// Builds a multipart body from parts. The boundary must not occur in any
/// content.
pub fn build(boundary: &str, parts: &[PartSpec<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ct, extra, content) in parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in *extra {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Type: {ct}\r\n\r\n").as_bytes());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let body = build(
            "b1",
            &[
                (
                    "application/rlmi+xml",
                    &[("Content-ID", "resourceList")],
                    b"<list/>",
                ),
                (
                    "application/msrtc-event-categories+xml",
                    &[],
                    b"<categories/>",
                ),
            ],
        );
        let parts = parse(&body, "b1").expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].header("content-id"), Some("resourceList"));
        assert_eq!(parts[0].body, b"<list/>");
        assert_eq!(
            parts[1].content_type(),
            "application/msrtc-event-categories+xml"
        );
        assert_eq!(parts[1].body, b"<categories/>");
    }

    #[test]
    fn missing_close_is_an_error() {
        assert!(parse(b"--b\r\n\r\nx\r\n", "b").is_err());
        assert!(parse(b"no delimiters", "b").is_err());
        assert!(parse(b"--b--", "").is_err());
    }
}
