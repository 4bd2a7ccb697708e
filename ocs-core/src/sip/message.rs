//! The SIP message: parsing, raw header access, editing and printing.
//!
//! A parsed [`Message`] keeps the header section exactly as received. Every
//! header remembers its raw line, so printing an unmodified message gives
//! back the same bytes; typed views (see [`super::typed`]) are parsed on
//! demand from the raw values and borrow from the message.

use std::fmt;

use super::error::{ParseError, ParseErrorKind};
use super::name::{HeaderName, Method};
use super::scan::{is_token, is_token_byte, parse_u64_max};

/// Limits applied while parsing, so that nothing is buffered without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes of start line plus headers (including the blank line).
    pub max_head_bytes: usize,
    /// Maximum number of header lines.
    pub max_headers: usize,
    /// Maximum body size in bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 64 KiB of headers and 512 headers is far above anything OCS or
        // Kamailio sends (a REGISTER with NTLM is about 2 KiB) while keeping a
        // hostile peer from making us hold megabytes per connection. Bodies
        // carry whole contact lists in OCS, so they get more room.
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 512,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// How the message arrived. Stream transports (TCP/TLS) require
/// Content-Length (RFC 3261 §18.3); datagrams take the rest of the packet
/// when it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// One message per UDP datagram.
    #[default]
    Datagram,
    /// A message cut from a TCP/TLS byte stream.
    Stream,
}

/// A span into the message's head, or an owned replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Text {
    Span(u32, u32),
    Owned(Box<str>),
}

impl Text {
    #[inline]
    fn get<'a>(&'a self, head: &'a str) -> &'a str {
        match self {
            Text::Span(a, b) => &head[*a as usize..*b as usize],
            Text::Owned(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HeaderEntry {
    name: HeaderName,
    /// Length of the name as written at the start of `raw` (e.g. 1 for a
    /// compact `v`); headers without `raw` print their canonical name.
    name_len: u16,
    /// The value, trimmed and unfolded.
    value: Text,
    /// The whole raw line(s) including the line end, when unmodified.
    raw: Option<(u32, u32)>,
    /// Offset of the value in the message, for error positions.
    offset: u32,
    /// The value spans folded lines and must be unfolded.
    folded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Start {
    Request {
        method: Method,
        uri: Text,
        version: Text,
    },
    Response {
        code: u16,
        reason: Text,
        version: Text,
    },
}

/// One header as seen through [`Message::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The recognised name.
    pub name: &'a HeaderName,
    /// The name exactly as written.
    pub name_as_written: &'a str,
    /// The value, trimmed, with folded lines joined by a single space.
    pub value: &'a str,
    /// Offset of the value in the message as received (0 for headers added
    /// after parsing).
    pub offset: usize,
}

/// A SIP request or response.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The header section as received (start line up to and including the
    /// blank line), or empty for a built message.
    head: String,
    start: Start,
    start_raw: Option<(u32, u32)>,
    headers: Vec<HeaderEntry>,
    blank_raw: Option<(u32, u32)>,
    body: Vec<u8>,
    /// Bytes preceding the message (CRLF keep-alives) that were skipped.
    skipped: usize,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("start", &self.start_line())
            .field("headers", &self.headers().count())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Message {
    /// Parses one message from a datagram with default [`Limits`].
    ///
    /// Leading CRLFs are skipped (RFC 3261 §7.5). When Content-Length is
    /// present the body is exactly that long and any further bytes are
    /// ignored (RFC 4475 dblreq); when it is absent the rest is the body.
    pub fn parse(input: &[u8]) -> Result<Message, ParseError> {
        Self::parse_with(input, Framing::Datagram, &Limits::default())
    }

    /// Parses one message with explicit framing rules and limits.
    pub fn parse_with(
        input: &[u8],
        framing: Framing,
        limits: &Limits,
    ) -> Result<Message, ParseError> {
        let (mut msg, head_len) = Self::parse_head_only(input, limits)?;
        let skipped = msg.skipped;
        let rest = &input[skipped + head_len..];
        let body_len = match msg.content_length_raw()? {
            Some(n) => {
                if n > limits.max_body_bytes {
                    return Err(ParseError::new(
                        skipped + head_len,
                        ParseErrorKind::LimitExceeded("body size"),
                    ));
                }
                if n > rest.len() {
                    return Err(ParseError::new(input.len(), ParseErrorKind::BodyTooShort));
                }
                n
            }
            None if framing == Framing::Stream => {
                return Err(ParseError::new(
                    skipped,
                    ParseErrorKind::MissingContentLength,
                ));
            }
            None => {
                if rest.len() > limits.max_body_bytes {
                    return Err(ParseError::new(
                        skipped + head_len,
                        ParseErrorKind::LimitExceeded("body size"),
                    ));
                }
                rest.len()
            }
        };
        msg.body = rest[..body_len].to_vec();
        Ok(msg)
    }

    /// Parses the start line and headers only, returning the message (with
    /// an empty body) and the head length (after any skipped CRLFs).
    pub(crate) fn parse_head_only(
        input: &[u8],
        limits: &Limits,
    ) -> Result<(Message, usize), ParseError> {
        let skipped = skip_crlf(input);
        let scan = scan_head(&input[skipped..], limits).map_err(|e| e.shift(skipped))?;
        let head_len = scan.head_len;
        let head_bytes = &input[skipped..skipped + head_len];
        let head = match std::str::from_utf8(head_bytes) {
            Ok(s) => s.to_owned(),
            Err(e) => {
                return Err(ParseError::new(
                    skipped + e.valid_up_to(),
                    ParseErrorKind::InvalidUtf8,
                ));
            }
        };
        let mut msg = build_head(head, scan).map_err(|e| e.shift(skipped))?;
        msg.skipped = skipped;
        Ok((msg, head_len))
    }

    /// Builds a request with the given start line and no headers.
    pub fn request(method: Method, uri: &str) -> Message {
        Message {
            head: String::new(),
            start: Start::Request {
                method,
                uri: Text::Owned(uri.into()),
                version: Text::Owned("SIP/2.0".into()),
            },
            start_raw: None,
            headers: Vec::new(),
            blank_raw: None,
            body: Vec::new(),
            skipped: 0,
        }
    }

    /// Builds a response with the given status and reason phrase and no
    /// headers.
    pub fn response(code: u16, reason: &str) -> Message {
        Message {
            head: String::new(),
            start: Start::Response {
                code,
                reason: Text::Owned(reason.into()),
                version: Text::Owned("SIP/2.0".into()),
            },
            start_raw: None,
            headers: Vec::new(),
            blank_raw: None,
            body: Vec::new(),
            skipped: 0,
        }
    }

    // ----- start line -------------------------------------------------

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    /// True for a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI of a request, as written.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            Start::Request { uri, .. } => Some(uri.get(&self.head)),
            Start::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            Start::Response { code, .. } => Some(*code),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (may be empty).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            Start::Response { reason, .. } => Some(reason.get(&self.head)),
            Start::Request { .. } => None,
        }
    }

    /// The SIP-Version as written (normally `SIP/2.0`).
    pub fn version(&self) -> &str {
        match &self.start {
            Start::Request { version, .. } | Start::Response { version, .. } => {
                version.get(&self.head)
            }
        }
    }

    /// The start line, without its line end.
    pub fn start_line(&self) -> String {
        match &self.start {
            Start::Request {
                method,
                uri,
                version,
            } => format!(
                "{} {} {}",
                method,
                uri.get(&self.head),
                version.get(&self.head)
            ),
            Start::Response {
                code,
                reason,
                version,
            } => format!(
                "{} {} {}",
                version.get(&self.head),
                code,
                reason.get(&self.head)
            ),
        }
    }

    /// Replaces the Request-URI (requests only; ignored for responses).
    pub fn set_request_uri(&mut self, new: &str) {
        if let Start::Request { uri, .. } = &mut self.start {
            *uri = Text::Owned(new.into());
            self.start_raw = None;
        }
    }

    // ----- headers ------------------------------------------------------

    /// All headers in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.headers.iter().map(move |h| self.header_ref(h))
    }

    fn header_ref<'a>(&'a self, h: &'a HeaderEntry) -> HeaderRef<'a> {
        HeaderRef {
            name: &h.name,
            name_as_written: match h.raw {
                Some((a, _)) => &self.head[a as usize..a as usize + h.name_len as usize],
                None => h.name.as_str(),
            },
            value: h.value.get(&self.head),
            // Offsets count from the bytes as received, skipped CRLFs included.
            offset: h.offset as usize + self.skipped,
        }
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The first value of a header.
    pub fn header(&self, name: impl Into<HeaderName>) -> Option<&str> {
        let name = name.into();
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.get(&self.head))
    }

    /// All header lines with this name, in order.
    pub fn headers_named(
        &self,
        name: impl Into<HeaderName>,
    ) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        let name = name.into();
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(move |h| self.header_ref(h))
    }

    /// True when at least one header with this name is present.
    pub fn has_header(&self, name: impl Into<HeaderName>) -> bool {
        let name = name.into();
        self.headers.iter().any(|h| h.name == name)
    }

    /// Appends a header.
    pub fn push_header(&mut self, name: impl Into<HeaderName>, value: impl Into<String>) {
        let name = name.into();
        self.headers.push(HeaderEntry {
            name,
            name_len: 0,
            value: Text::Owned(value.into().into_boxed_str()),
            raw: None,
            offset: 0,
            folded: false,
        });
    }

    /// Inserts a header at position `index` among the headers.
    pub fn insert_header(
        &mut self,
        index: usize,
        name: impl Into<HeaderName>,
        value: impl Into<String>,
    ) {
        let name = name.into();
        let index = index.min(self.headers.len());
        self.headers.insert(
            index,
            HeaderEntry {
                name,
                name_len: 0,
                value: Text::Owned(value.into().into_boxed_str()),
                raw: None,
                offset: 0,
                folded: false,
            },
        );
    }

    /// Removes every header with this name; returns how many went.
    pub fn remove_headers(&mut self, name: impl Into<HeaderName>) -> usize {
        let name = name.into();
        let before = self.headers.len();
        self.headers.retain(|h| h.name != name);
        before - self.headers.len()
    }

    /// Replaces the first header with this name in place (keeping its
    /// position), removes any others, or appends it when absent.
    pub fn set_header(&mut self, name: impl Into<HeaderName>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        if let Some(i) = self.headers.iter().position(|h| h.name == name) {
            let h = &mut self.headers[i];
            h.value = Text::Owned(value.into_boxed_str());
            h.raw = None;
            let mut idx = 0;
            self.headers.retain(|h| {
                let keep = idx <= i || h.name != name;
                idx += 1;
                keep
            });
        } else {
            self.push_header(name, value);
        }
    }

    // ----- body -------------------------------------------------------------

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Sets the body and its Content-Type, and keeps Content-Length true.
    /// An empty `content_type` removes the Content-Type header.
    pub fn set_body(&mut self, content_type: &str, body: impl Into<Vec<u8>>) {
        self.body = body.into();
        if content_type.is_empty() {
            self.remove_headers(HeaderName::ContentType);
        } else {
            self.set_header(HeaderName::ContentType, content_type);
        }
        self.set_header(HeaderName::ContentLength, self.body.len().to_string());
    }

    /// Sets the body without touching headers (the framer has already
    /// checked it against Content-Length).
    pub(crate) fn attach_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }

    /// Number of CRLF bytes skipped before the start line.
    pub fn skipped_prefix(&self) -> usize {
        self.skipped
    }

    /// The Content-Length header value, validated; `None` when absent.
    /// Several equal values are tolerated, different ones are an error.
    pub(crate) fn content_length_raw(&self) -> Result<Option<usize>, ParseError> {
        let mut found: Option<usize> = None;
        for h in self
            .headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentLength)
        {
            let v = h.value.get(&self.head);
            let off = h.offset as usize + self.skipped;
            // Content-Length can't be bigger than what fits in memory; 2^32
            // is far above any limit we accept, so it bounds the parse.
            let n = parse_u64_max(v, off, u64::from(u32::MAX))? as usize;
            match found {
                Some(prev) if prev != n => {
                    return Err(ParseError::new(
                        off,
                        ParseErrorKind::ConflictingContentLength,
                    ));
                }
                _ => found = Some(n),
            }
        }
        Ok(found)
    }

    // ----- printing --------------------------------------------------------

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.head.len() + self.body.len() + 64);
        if let Some(end) = self.unchanged_head_end() {
            // As parsed: the head is one run of the bytes received.
            out.extend_from_slice(&self.head.as_bytes()[..end]);
            out.extend_from_slice(&self.body);
            return;
        }
        match self.start_raw {
            Some((a, b)) => out.extend_from_slice(&self.head.as_bytes()[a as usize..b as usize]),
            None => {
                out.extend_from_slice(self.start_line().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            match h.raw {
                Some((a, b)) => {
                    out.extend_from_slice(&self.head.as_bytes()[a as usize..b as usize])
                }
                None => {
                    out.extend_from_slice(h.name.as_str().as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(h.value.get(&self.head).as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        match self.blank_raw {
            Some((a, b)) => out.extend_from_slice(&self.head.as_bytes()[a as usize..b as usize]),
            None => out.extend_from_slice(b"\r\n"),
        }
        out.extend_from_slice(&self.body);
    }

    /// Where the head ends when its start line, headers and blank line are
    /// the parsed bytes in order with nothing changed, removed or added.
    fn unchanged_head_end(&self) -> Option<usize> {
        let (0, mut at) = self.start_raw? else {
            return None;
        };
        for h in &self.headers {
            match h.raw {
                Some((a, b)) if a == at => at = b,
                _ => return None,
            }
        }
        match self.blank_raw? {
            (a, b) if a == at => Some(b as usize),
            _ => None,
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }
}

fn skip_crlf(input: &[u8]) -> usize {
    input
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Finds the end of the header section (just past the blank line).
/// Lines may end in CRLF or, leniently, in a bare LF. `from` is how far an
/// earlier call already searched, so a stream that trickles in byte by
/// byte is not rescanned from the start each time.
pub(crate) fn find_head_end(
    input: &[u8],
    from: usize,
    max: usize,
) -> Result<Option<usize>, ParseError> {
    let window = &input[..input.len().min(max.saturating_add(1))];
    let mut pos = from.saturating_sub(2).min(window.len());
    while let Some(nl) = memchr::memchr(b'\n', &window[pos..]) {
        let next = pos + nl + 1;
        match window.get(next) {
            Some(b'\n') => return Ok(Some(next + 1)),
            Some(b'\r') => match window.get(next + 1) {
                Some(b'\n') => return Ok(Some(next + 2)),
                Some(_) => {}
                None => break,
            },
            Some(_) => {}
            None => break,
        }
        pos = next;
    }
    if input.len() > max {
        return Err(ParseError::new(
            max,
            ParseErrorKind::LimitExceeded("header bytes"),
        ));
    }
    Ok(None)
}

/// Where the parts of a header section are, found in one pass over the
/// bytes before they are validated as UTF-8.
struct Scan {
    head_len: usize,
    /// End of the start line (without its line end) and start of the next.
    start_end: usize,
    start_next: usize,
    headers: Vec<HeaderEntry>,
    blank: (usize, usize),
    folded: bool,
}

/// End of the line starting at `pos`: (end without CR/LF, start of the
/// next line), or `None` when the line end has not arrived.
#[inline]
fn line_end(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    let nl = pos + memchr::memchr(b'\n', &b[pos..])?;
    let end = if nl > pos && b[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

#[inline]
fn trim_end_ws(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    end
}

fn scan_head(data: &[u8], limits: &Limits) -> Result<Scan, ParseError> {
    let window = &data[..data.len().min(limits.max_head_bytes)];
    let incomplete = || {
        if data.len() >= limits.max_head_bytes {
            ParseError::new(
                limits.max_head_bytes,
                ParseErrorKind::LimitExceeded("header bytes"),
            )
        } else {
            ParseError::new(data.len(), ParseErrorKind::Incomplete)
        }
    };
    let (start_end, mut pos) = line_end(window, 0).ok_or_else(incomplete)?;
    let start_next = pos;
    let mut headers: Vec<HeaderEntry> = Vec::with_capacity(20);
    let mut folded = false;
    loop {
        let Some(&b0) = window.get(pos) else {
            return Err(incomplete());
        };
        if b0 == b'\n' {
            return Ok(Scan {
                head_len: pos + 1,
                start_end,
                start_next,
                headers,
                blank: (pos, pos + 1),
                folded,
            });
        }
        if b0 == b'\r' {
            match window.get(pos + 1) {
                Some(b'\n') => {
                    return Ok(Scan {
                        head_len: pos + 2,
                        start_end,
                        start_next,
                        headers,
                        blank: (pos, pos + 2),
                        folded,
                    });
                }
                Some(_) => return Err(ParseError::new(pos, ParseErrorKind::BadHeaderLine)),
                None => return Err(incomplete()),
            }
        }
        let (end, next) = line_end(window, pos).ok_or_else(incomplete)?;
        if b0 == b' ' || b0 == b'\t' {
            // A folded continuation of the previous header (§7.3.1).
            let Some(prev) = headers.last_mut() else {
                return Err(ParseError::new(pos, ParseErrorKind::BadHeaderLine));
            };
            let vend = trim_end_ws(window, pos, end);
            let blank = vend
                == pos
                    + window[pos..vend]
                        .iter()
                        .take_while(|c| **c == b' ' || **c == b'\t')
                        .count();
            if let Text::Span(a, e) = &mut prev.value
                && !blank
            {
                // Mark folding with the span end past the line: unfolded later.
                *e = vend as u32;
                let _ = a;
            }
            if let Some(r) = &mut prev.raw {
                r.1 = next as u32;
            }
            prev.folded = true;
            folded = true;
            pos = next;
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::new(
                pos,
                ParseErrorKind::LimitExceeded("header count"),
            ));
        }
        let mut i = pos;
        while i < end && is_token_byte(window[i]) {
            i += 1;
        }
        let name_end = i;
        while i < end && (window[i] == b' ' || window[i] == b'\t') {
            i += 1;
        }
        if name_end == pos || i >= end || window[i] != b':' {
            let bad = if name_end == pos { pos } else { name_end };
            return Err(ParseError::new(bad, ParseErrorKind::BadHeaderLine));
        }
        i += 1;
        while i < end && (window[i] == b' ' || window[i] == b'\t') {
            i += 1;
        }
        let vend = trim_end_ws(window, i, end);
        headers.push(HeaderEntry {
            name: HeaderName::from_wire_bytes(&window[pos..name_end]),
            name_len: (name_end - pos).min(usize::from(u16::MAX)) as u16,
            value: Text::Span(i as u32, vend as u32),
            raw: Some((pos as u32, next as u32)),
            offset: i as u32,
            folded: false,
        });
        pos = next;
    }
}

fn build_head(head: String, scan: Scan) -> Result<Message, ParseError> {
    let start = parse_start_line(&head[..scan.start_end], 0)?;
    let mut headers = scan.headers;
    if scan.folded {
        for h in headers.iter_mut().filter(|h| h.folded) {
            let v = unfold(h.value.get(&head));
            h.value = Text::Owned(v.into_boxed_str());
        }
    }
    Ok(Message {
        head,
        start,
        start_raw: Some((0, scan.start_next as u32)),
        headers,
        blank_raw: Some((scan.blank.0 as u32, scan.blank.1 as u32)),
        body: Vec::new(),
        skipped: 0,
    })
}

/// Joins folded lines: each line end plus the white space around it becomes
/// one SP.
fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut lines = v.split('\n');
    if let Some(first) = lines.next() {
        out.push_str(first.trim_end_matches(['\r', ' ', '\t']));
    }
    for l in lines {
        let l = l.trim_matches(|c| c == '\r' || c == ' ' || c == '\t');
        if l.is_empty() {
            continue;
        }
        out.push(' ');
        out.push_str(l);
    }
    out
}

fn parse_version(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 7 || !b[..4].eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let rest = &v[4..];
    match rest.split_once('.') {
        Some((maj, min)) => {
            !maj.is_empty()
                && !min.is_empty()
                && maj.bytes().all(|c| c.is_ascii_digit())
                && min.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn parse_start_line(line: &str, base: usize) -> Result<Start, ParseError> {
    let b = line.as_bytes();
    if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = memchr::memchr(b' ', b)
            .ok_or_else(|| ParseError::new(base + line.len(), ParseErrorKind::BadStartLine))?;
        let version = &line[..sp1];
        if !parse_version(version) {
            return Err(ParseError::new(base, ParseErrorKind::BadStartLine));
        }
        let rest = &line[sp1 + 1..];
        let (code_str, reason_off) = match memchr::memchr(b' ', rest.as_bytes()) {
            Some(i) => (&rest[..i], sp1 + 1 + i + 1),
            None => (rest, line.len()),
        };
        if code_str.len() != 3 || !code_str.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new(
                base + sp1 + 1,
                ParseErrorKind::BadStatusCode,
            ));
        }
        let code: u16 = code_str
            .parse()
            .map_err(|_| ParseError::new(base + sp1 + 1, ParseErrorKind::BadStatusCode))?;
        if code < 100 {
            return Err(ParseError::new(
                base + sp1 + 1,
                ParseErrorKind::BadStatusCode,
            ));
        }
        if let Some(i) = line[reason_off.min(line.len())..]
            .bytes()
            .position(|c| c < 0x20 && c != b'\t')
        {
            return Err(ParseError::new(
                base + reason_off + i,
                ParseErrorKind::BadStartLine,
            ));
        }
        let reason_off = reason_off.min(line.len());
        return Ok(Start::Response {
            code,
            reason: Text::Span((base + reason_off) as u32, (base + line.len()) as u32),
            version: Text::Span(base as u32, (base + sp1) as u32),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single spaces.
    let mut parts = line.split(' ');
    let (Some(m), Some(uri), Some(ver), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::new(base, ParseErrorKind::BadStartLine));
    };
    if !is_token(m) {
        return Err(ParseError::new(
            base,
            ParseErrorKind::Expected("method token"),
        ));
    }
    let uri_off = m.len() + 1;
    if uri.is_empty() {
        return Err(ParseError::new(
            base + uri_off,
            ParseErrorKind::BadStartLine,
        ));
    }
    // Request-URI = SIP-URI / SIPS-URI / absoluteURI: it starts with a
    // scheme. This refuses `<sip:...>` (RFC 4475 ltgtruri) with a position.
    let ub = uri.as_bytes();
    let scheme_len = ub
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.'))
        .unwrap_or(ub.len());
    if scheme_len == 0 || !ub[0].is_ascii_alphabetic() || ub.get(scheme_len) != Some(&b':') {
        return Err(ParseError::new(
            base + uri_off,
            ParseErrorKind::BadUri("Request-URI must start with a scheme"),
        ));
    }
    if let Some(i) = ub.iter().position(|&c| c <= 0x20 || c == 0x7f) {
        return Err(ParseError::new(
            base + uri_off + i,
            ParseErrorKind::BadUri("control character"),
        ));
    }
    let ver_off = uri_off + uri.len() + 1;
    if !parse_version(ver) {
        return Err(ParseError::new(
            base + ver_off,
            ParseErrorKind::BadStartLine,
        ));
    }
    Ok(Start::Request {
        method: Method::from_token(m),
        uri: Text::Span((base + uri_off) as u32, (base + uri_off + uri.len()) as u32),
        version: Text::Span((base + ver_off) as u32, (base + line.len()) as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKabc\r\n\
v: SIP/2.0/TCP other;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
Subject: folded\r\n  continues\r\n\there\r\n\
Content-Length: 4\r\n\r\nbodyEXTRA";

    #[test]
    fn parses_and_prints_back_exactly() {
        let m = Message::parse(OPTIONS).expect("parses");
        assert!(m.is_request());
        assert_eq!(m.method(), Some(&Method::Options));
        assert_eq!(m.request_uri(), Some("sip:bob@example.com"));
        assert_eq!(m.headers_named(HeaderName::Via).count(), 2);
        assert_eq!(m.header("subject"), Some("folded continues here"));
        assert_eq!(m.body(), b"body");
        let printed = m.to_bytes();
        assert_eq!(printed, &OPTIONS[..OPTIONS.len() - 5]);
    }

    #[test]
    fn edits_keep_the_rest_verbatim() {
        let mut m = Message::parse(OPTIONS).expect("parses");
        m.set_header(HeaderName::MaxForwards, "69");
        m.set_body("text/plain", "hi");
        let s = String::from_utf8(m.to_bytes()).expect("utf8");
        assert!(s.contains("v: SIP/2.0/TCP other;branch=z9hG4bKdef\r\n"));
        assert!(s.contains("Max-Forwards: 69\r\n"));
        assert!(s.ends_with("Content-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi"));
        let again = Message::parse(s.as_bytes()).expect("reparses");
        assert_eq!(again.body(), b"hi");
    }

    #[test]
    fn response_without_reason() {
        let m = Message::parse(b"SIP/2.0 100 \r\nCall-ID: x\r\n\r\n").expect("parses");
        assert_eq!(m.status(), Some(100));
        assert_eq!(m.reason(), Some(""));
        let m = Message::parse(b"SIP/2.0 180\r\n\r\n").expect("parses");
        assert_eq!(m.reason(), Some(""));
    }

    #[test]
    fn positioned_errors() {
        let e = Message::parse(b"INVITE  sip:a@b SIP/2.0\r\n\r\n").expect_err("two spaces");
        assert_eq!(e.offset, 0);
        let e = Message::parse(b"INVITE <sip:a@b> SIP/2.0\r\n\r\n").expect_err("brackets");
        assert_eq!(e.offset, 7);
        let e = Message::parse(b"SIP/2.0 4294967301 Bad\r\n\r\n").expect_err("big code");
        assert_eq!(e.kind, ParseErrorKind::BadStatusCode);
        let e = Message::parse(b"OPTIONS sip:a SIP/2.0\r\nBad Header: x\r\n\r\n").expect_err("bad");
        assert_eq!(e.offset, 26);
        let e = Message::parse(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc")
            .expect_err("short");
        assert_eq!(e.kind, ParseErrorKind::BodyTooShort);
        let e = Message::parse_with(
            b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n",
            Framing::Stream,
            &Limits::default(),
        )
        .expect_err("stream needs CL");
        assert_eq!(e.kind, ParseErrorKind::MissingContentLength);
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_head_bytes: 40,
            max_headers: 1,
            max_body_bytes: 2,
        };
        let e = Message::parse_with(
            b"OPTIONS sip:a SIP/2.0\r\nA: 1\r\nB: 2\r\n\r\n",
            Framing::Datagram,
            &limits,
        )
        .expect_err("too many");
        assert_eq!(e.kind, ParseErrorKind::LimitExceeded("header count"));
        let long = format!("OPTIONS sip:a SIP/2.0\r\nA: {}\r\n\r\n", "x".repeat(100));
        let e =
            Message::parse_with(long.as_bytes(), Framing::Datagram, &limits).expect_err("too long");
        assert_eq!(e.kind, ParseErrorKind::LimitExceeded("header bytes"));
    }
}
