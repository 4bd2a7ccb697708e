//! Low-level lexical helpers for the RFC 3261 §25 grammar.
//!
//! Everything here works on `&str` header values that have already been
//! unfolded (no CR/LF inside), so typed parsers only deal with SP/HTAB.

use super::error::{ParseError, ParseErrorKind};

/// `token` characters (RFC 3261 §25.1): alphanum and `-.!%*_+`'~`, as a
/// table because this test runs for every byte of every header name.
pub(crate) static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// True for a `token` character.
#[inline(always)]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

/// True when `s` is a non-empty `token`.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space inside an unfolded value.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims SP/HTAB on both sides.
#[inline]
pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// A cursor over an unfolded header value with positioned errors.
///
/// `base` is the offset of the value inside whatever the caller wants
/// errors to point into (the message, or 0 for a bare value).
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
    pub(crate) base: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str, base: usize) -> Self {
        Cursor { s, pos: 0, base }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.s.len()
    }

    #[inline]
    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn err(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.base + self.pos, kind)
    }

    pub(crate) fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if is_ws(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// Consumes `c` (after optional white space on both sides).
    pub(crate) fn eat_sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes a non-empty token.
    pub(crate) fn token(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_token_byte(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(self.err(ParseErrorKind::Expected(what)));
        }
        Ok(&self.s[start..self.pos])
    }

    /// Takes bytes while `f` holds (may be empty).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if f(b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.pos]
    }

    /// Takes a quoted string including its quotes; escapes are validated,
    /// not removed (see [`unquote`]).
    pub(crate) fn quoted(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(self.err(ParseErrorKind::Expected("quoted string")));
        }
        let bytes = self.s.as_bytes();
        // Jump to the next quote or backslash: only they matter here.
        while let Some(k) = memchr::memchr2(b'"', b'\\', &bytes[self.pos..]) {
            self.pos += k;
            if bytes[self.pos] == b'"' {
                self.pos += 1;
                return Ok(&self.s[start..self.pos]);
            }
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            match bytes.get(self.pos + 1) {
                Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => self.pos += 2,
                _ => {
                    return Err(self.err(ParseErrorKind::BadEscape));
                }
            }
        }
        self.pos = bytes.len();
        Err(ParseError::new(
            self.base + start,
            ParseErrorKind::UnterminatedQuote,
        ))
    }
}

/// Removes surrounding quotes and `\` escapes from a quoted string.
/// Returns the input unchanged when it is not quoted.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        if !inner.contains('\\') {
            return std::borrow::Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Quotes `s` as a SIP quoted-string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a header value at top-level commas, honouring quoted strings and
/// `<...>` brackets. Yields each element trimmed, with its offset in `s`.
pub(crate) fn split_commas(s: &str) -> CommaSplit<'_> {
    CommaSplit {
        s,
        pos: 0,
        done: false,
    }
}

/// Iterator returned by [`split_commas`].
pub(crate) struct CommaSplit<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let end = element_end(bytes, start);
        if end >= bytes.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let raw = &self.s[start..end];
        let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        Some((start + lead, trim_ws(raw)))
    }
}

/// Where the element starting at `i` ends: the next comma outside quoted
/// strings and `<...>`, or the end. Jumps from one byte that matters to
/// the next with memchr (Contact values run to hundreds of bytes of
/// parameters; this runs for each of them).
fn element_end(bytes: &[u8], mut i: usize) -> usize {
    let mut in_angle = false;
    while i < bytes.len() {
        let found = if in_angle {
            memchr::memchr2(b'>', b'"', &bytes[i..])
        } else {
            memchr::memchr3(b',', b'"', b'<', &bytes[i..])
        };
        let Some(k) = found else {
            return bytes.len();
        };
        i += k;
        match bytes[i] {
            b',' => return i,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            // A quoted string: to its closing quote, escapes skipped.
            _ => {
                i += 1;
                loop {
                    let Some(k) = bytes.get(i..).and_then(|r| memchr::memchr2(b'"', b'\\', r))
                    else {
                        return bytes.len();
                    };
                    i += k;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
        }
        i += 1;
    }
    bytes.len()
}

/// Decodes `%XX` escapes. Invalid escapes are kept literally; the caller
/// decides whether that matters (RFC 4475 esc02 shows `%` that is not an
/// escape inside a method token, which must survive untouched).
pub fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = hex_val(b[i + 1]);
            let l = hex_val(b[i + 2]);
            if let (Some(h), Some(l)) = (h, l) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => std::borrow::Cow::Owned(s),
        Err(e) => std::borrow::Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a decimal number of at most `max` (leading zeros allowed, as
/// RFC 4475 wsinv shows), with a positioned error when it overflows.
pub(crate) fn parse_u64_max(s: &str, base: usize, max: u64) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(base, ParseErrorKind::Expected("number")));
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = match v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) if v <= max => v,
            _ => return Err(ParseError::new(base, ParseErrorKind::NumberOutOfRange)),
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_brackets() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x;p=1,2>, <sip:y> ,z"#)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(v, vec![r#""a,b" <sip:x;p=1,2>"#, "<sip:y>", "z"]);
    }

    /// The byte-at-a-time splitter the memchr one replaced: the oracle.
    fn split_slow(s: &str) -> Vec<(usize, &str)> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let start = pos;
            let mut i = start;
            let (mut in_quote, mut in_angle) = (false, false);
            while i < bytes.len() {
                let b = bytes[i];
                if in_quote {
                    if b == b'\\' {
                        i += 1;
                    } else if b == b'"' {
                        in_quote = false;
                    }
                } else {
                    match b {
                        b'"' => in_quote = true,
                        b'<' => in_angle = true,
                        b'>' => in_angle = false,
                        b',' if !in_angle => break,
                        _ => {}
                    }
                }
                i += 1;
            }
            let end = i.min(bytes.len());
            let raw = &s[start..end];
            let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
            out.push((start + lead, trim_ws(raw)));
            if end >= bytes.len() {
                return out;
            }
            pos = end + 1;
        }
    }

    proptest::proptest! {
        #[test]
        fn commas_split_as_the_byte_loop_did(s in "[a-c ,<>\"\\\\;=]{0,40}") {
            let fast: Vec<_> = split_commas(&s).collect();
            proptest::prop_assert_eq!(fast, split_slow(&s));
        }

        #[test]
        fn quoted_strings_end_where_they_did(s in "\"[a-c \"\\\\\r]{0,20}") {
            let mut c = Cursor::new(&s, 0);
            let got = c.quoted().map(|q| (q.len(), c.pos)).map_err(|e| e.offset);
            // The byte loop: a quote ends it, a backslash takes the next
            // byte unless it is CR/LF or the end.
            let b = s.as_bytes();
            let mut i = 1;
            let want = loop {
                match b.get(i) {
                    None => break Err(0),
                    Some(b'"') => break Ok((i + 1, i + 1)),
                    Some(b'\\') => match b.get(i + 1) {
                        Some(&n) if n <= 0x7f && n != b'\r' && n != b'\n' => i += 2,
                        _ => break Err(i),
                    },
                    Some(_) => i += 1,
                }
            };
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn unquote_removes_escapes() {
        assert_eq!(unquote(r#""a\"b\\c""#), r#"a"b\c"#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("RE%47IST%45R"), "REGISTER");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn numbers_have_ranges() {
        assert_eq!(parse_u64_max("0009", 0, 10).ok(), Some(9));
        assert!(parse_u64_max("11", 0, 10).is_err());
        assert!(parse_u64_max("99999999999999999999999", 0, u64::MAX).is_err());
    }
}
