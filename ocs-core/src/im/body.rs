//! IM bodies: `text/plain`, `text/html`, `text/rtf` and
//! `multipart/alternative`, each kept as received and reduced to plain
//! text for callers who want that.
//!
//! The reducers ([`html_to_text`], [`rtf_to_text`]) are small and robust
//! rather than complete: they never panic, run in time linear in the input
//! and never recurse.

use memchr::memmem;
use thiserror::Error;

use super::MAX_IM_BODY_BYTES;
use super::charset::{Charset, cp1252};
use crate::sip::{MediaType, Message, ParseError, multipart};

/// The IM content types we understand, for the `Accept` header of a 415
/// answer to an IM body we cannot show.
pub const ACCEPT: &str = "text/plain, text/html, text/rtf, multipart/alternative";

/// [`ACCEPT`] plus RFC 3994 is-composing: the `Accept` header of a 415
/// answer to a MESSAGE (which may carry either).
pub const MESSAGE_ACCEPT: &str =
    "text/plain, text/html, text/rtf, multipart/alternative, application/im-iscomposing+xml";

/// Why an IM body could not be read. [`BodyError::status`] is the response
/// the receiving side sends; on 415 add `Accept: ` [`ACCEPT`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BodyError {
    /// A content type we do not show. Answer 415 with [`ACCEPT`].
    #[error("unsupported IM content type {content_type:?}")]
    UnsupportedType {
        /// The content type's essence (`type/subtype`), lower-cased.
        content_type: String,
    },
    /// A charset we do not decode. Answer 415 with [`ACCEPT`].
    #[error("unsupported charset {0:?}")]
    UnsupportedCharset(String),
    /// A `multipart/alternative` without any part we can show. Answer 415
    /// with [`ACCEPT`].
    #[error("no supported part in multipart/alternative")]
    NoSupportedAlternative,
    /// The Content-Type header does not parse. Answer 400.
    #[error("malformed Content-Type: {0}")]
    BadContentType(ParseError),
    /// A multipart body without a boundary parameter. Answer 400.
    #[error("multipart body without boundary")]
    MissingBoundary,
    /// The multipart body does not split. Answer 400.
    #[error("malformed multipart body: {0}")]
    BadMultipart(ParseError),
    /// The body is larger than [`MAX_IM_BODY_BYTES`]. Answer 413.
    #[error("IM body larger than {MAX_IM_BODY_BYTES} bytes")]
    TooLarge,
}

impl BodyError {
    /// The status code to answer the request that carried the body with.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::UnsupportedType { .. }
            | BodyError::UnsupportedCharset(_)
            | BodyError::NoSupportedAlternative => 415,
            BodyError::TooLarge => 413,
            BodyError::BadContentType(_)
            | BodyError::MissingBoundary
            | BodyError::BadMultipart(_) => 400,
        }
    }
}

/// A received IM: its type, the bytes as received and a plain-text
/// rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImContent {
    /// The content type's essence, lower-cased (`text/html`,
    /// `multipart/alternative`, ...).
    pub content_type: String,
    /// The body exactly as received.
    pub original: Vec<u8>,
    /// The text: the body itself for `text/plain`, HTML or RTF reduced to
    /// plain text, the preferred alternative of a multipart body
    /// (`text/plain`, else `text/html`, else `text/rtf`).
    pub plain_text: String,
}

impl ImContent {
    /// A `text/plain` message.
    pub fn plain(text: &str) -> ImContent {
        ImContent {
            content_type: "text/plain".to_owned(),
            original: text.as_bytes().to_vec(),
            plain_text: text.to_owned(),
        }
    }

    /// Reads the body of a MESSAGE (or any request carrying an IM). A
    /// missing Content-Type means `text/plain`.
    pub fn from_message(m: &Message) -> Result<ImContent, BodyError> {
        let ct = m.content_type().map_err(BodyError::BadContentType)?;
        match ct {
            Some(ct) => from_media_type(&ct, m.body()),
            None => parse_body("text/plain", m.body()),
        }
    }
}

/// Reads an IM body given its Content-Type header value.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<ImContent, BodyError> {
    let ct = MediaType::parse(content_type, 0).map_err(BodyError::BadContentType)?;
    from_media_type(&ct, body)
}

/// What a single (non-multipart) part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Plain,
    Html,
    Rtf,
}

fn kind_of(ct: &MediaType<'_>) -> Option<Kind> {
    if ct.is("text/plain") {
        Some(Kind::Plain)
    } else if ct.is("text/html") {
        Some(Kind::Html)
    } else if ct.is("text/rtf") || ct.is("application/rtf") {
        Some(Kind::Rtf)
    } else {
        None
    }
}

fn from_media_type(ct: &MediaType<'_>, body: &[u8]) -> Result<ImContent, BodyError> {
    if body.len() > MAX_IM_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    let plain_text = if ct.is("multipart/alternative") {
        let boundary = ct.param("boundary").ok_or(BodyError::MissingBoundary)?;
        let parts = multipart::parse(body, &boundary).map_err(BodyError::BadMultipart)?;
        let mut best: Option<(Kind, MediaType<'_>, &[u8])> = None;
        for p in &parts {
            let Ok(pct) = MediaType::parse(p.content_type(), 0) else {
                continue;
            };
            let Some(k) = kind_of(&pct) else {
                continue;
            };
            if charset(&pct).is_err() {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _, _)| k < *b) {
                best = Some((k, pct, p.body));
            }
        }
        let (k, pct, b) = best.ok_or(BodyError::NoSupportedAlternative)?;
        reduce(k, charset(&pct)?, b)
    } else {
        let k = kind_of(ct).ok_or_else(|| BodyError::UnsupportedType {
            content_type: ct.essence(),
        })?;
        reduce(k, charset(ct)?, body)
    };
    Ok(ImContent {
        content_type: ct.essence(),
        original: body.to_vec(),
        plain_text,
    })
}

fn charset(ct: &MediaType<'_>) -> Result<Charset, BodyError> {
    match ct.param("charset") {
        None => Ok(Charset::Utf8),
        Some(c) => Charset::from_label(&c).ok_or_else(|| BodyError::UnsupportedCharset(c.into())),
    }
}

fn reduce(k: Kind, cs: Charset, body: &[u8]) -> String {
    match k {
        Kind::Plain => cs.decode(body),
        Kind::Html => html_to_text(&cs.decode(body)),
        // RTF is 7-bit with its own escapes; the charset parameter does not
        // apply to it.
        Kind::Rtf => rtf_to_text(body),
    }
}

// ----- HTML -------------------------------------------------------------------

/// Collapses whitespace the way HTML renders it and lets tags insert line
/// breaks.
struct TextOut {
    out: String,
    pending_space: bool,
}

impl TextOut {
    fn push_text(&mut self, c: char) {
        if self.pending_space && !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push(c);
    }

    fn space(&mut self) {
        self.pending_space = true;
    }

    fn newline(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out.push('\n');
        self.pending_space = false;
    }

    /// Text between tags: whitespace collapses, entities decode.
    fn text(&mut self, s: &str) {
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            if c == '&'
                && let Some((decoded, used)) = entity(rest)
            {
                self.push_text(decoded);
                rest = &rest[used..];
                continue;
            }
            if matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{c}') {
                self.space();
            } else {
                self.push_text(c);
            }
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// Decodes an entity at the start of `s` (which starts with `&`):
/// the character and the bytes used, or `None` to keep the `&` as text.
fn entity(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    let end = b
        .iter()
        .take(34)
        .position(|&c| c == b';')
        .filter(|&e| e > 1)?;
    let name = &s[1..end];
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'#') {
        return None;
    }
    let c = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok()?,
            None if !num.is_empty() && num.len() <= 10 => num.parse::<u32>().ok()?,
            _ => return None,
        };
        match code {
            0 => '\u{FFFD}',
            0x80..=0x9F => cp1252(code as u8),
            _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
        }
    } else {
        match name {
            "amp" | "AMP" => '&',
            "lt" | "LT" => '<',
            "gt" | "GT" => '>',
            "quot" | "QUOT" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "copy" => '\u{A9}',
            "reg" => '\u{AE}',
            "trade" => '\u{2122}',
            "hellip" => '\u{2026}',
            "mdash" => '\u{2014}',
            "ndash" => '\u{2013}',
            "lsquo" => '\u{2018}',
            "rsquo" => '\u{2019}',
            "ldquo" => '\u{201C}',
            "rdquo" => '\u{201D}',
            "euro" => '\u{20AC}',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

/// Tags after which (closing) or at which (`br`) a line ends.
fn breaks_line(name: &[u8], closing: bool) -> bool {
    match name {
        b"br" => true,
        b"p" | b"div" | b"li" | b"tr" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6"
        | b"blockquote" | b"pre" | b"table" | b"ul" | b"ol" => closing,
        _ => false,
    }
}

/// Reduces HTML to plain text: tags are removed, `<script>`/`<style>`
/// contents and comments are skipped, the common entities (`&amp;` `&lt;`
/// `&gt;` `&quot;` `&nbsp;` `&#NNN;` `&#xHH;` ...) are decoded, whitespace
/// collapses, and `<br>` and the ends of `</p>`, `</div>` and other blocks
/// become line breaks. Leading and trailing whitespace is trimmed.
pub fn html_to_text(html: &str) -> String {
    let b = html.as_bytes();
    let lower = b.to_ascii_lowercase();
    let mut w = TextOut {
        out: String::with_capacity(html.len()),
        pending_space: false,
    };
    let mut text_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let is_tag = b
            .get(i + 1)
            .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'));
        if !is_tag {
            i += 1;
            continue;
        }
        w.text(&html[text_start..i]);
        if lower[i..].starts_with(b"<!--") {
            i = match memmem::find(&b[i + 4..], b"-->") {
                Some(j) => i + 4 + j + 3,
                None => b.len(),
            };
            text_start = i;
            continue;
        }
        let Some(j) = memchr::memchr(b'>', &b[i..]) else {
            // An unterminated tag: drop the rest, as a browser would.
            text_start = b.len();
            break;
        };
        let inner = &lower[i + 1..i + j];
        let closing = inner.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = inner[name_start..]
            .iter()
            .position(|c| !c.is_ascii_alphanumeric())
            .unwrap_or(inner.len() - name_start);
        let name = &inner[name_start..name_start + name_len];
        i += j + 1;
        if breaks_line(name, closing) {
            w.newline();
        }
        if !closing && matches!(name, b"script" | b"style") && inner.last() != Some(&b'/') {
            let mut end_tag = b"</".to_vec();
            end_tag.extend_from_slice(name);
            i = match memmem::find(&lower[i..], &end_tag) {
                Some(k) => match memchr::memchr(b'>', &b[i + k..]) {
                    Some(g) => i + k + g + 1,
                    None => b.len(),
                },
                None => b.len(),
            };
        }
        text_start = i;
    }
    if text_start < b.len() {
        w.text(&html[text_start..]);
    }
    w.out.trim().to_owned()
}

// ----- RTF --------------------------------------------------------------------

/// Groups deeper than this share their parent's state instead of growing
/// the stack further.
const MAX_RTF_DEPTH: usize = 512;

/// Destinations whose text is not part of the message.
const SKIPPED_DESTINATIONS: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"info",
    b"pict",
    b"object",
    b"objdata",
    b"header",
    b"headerl",
    b"headerr",
    b"headerf",
    b"footer",
    b"footerl",
    b"footerr",
    b"footerf",
    b"footnote",
    b"fldinst",
    b"themedata",
    b"colorschememapping",
    b"latentstyles",
    b"datastore",
    b"xmlnstbl",
    b"listtable",
    b"listoverridetable",
    b"rsidtbl",
    b"generator",
    b"filetbl",
    b"revtbl",
    b"pntext",
    b"pntxta",
    b"pntxtb",
    b"bkmkstart",
    b"bkmkend",
    b"xe",
    b"tc",
    b"txe",
    b"datafield",
    b"mmathPr",
    b"userprops",
    b"nonshppict",
    b"shppict",
];

#[derive(Debug, Clone, Copy)]
struct RtfGroup {
    /// Inside a destination we do not show.
    skip: bool,
    /// `\ucN`: characters to skip after `\u`.
    uc: u32,
}

struct RtfOut {
    out: String,
    /// Characters still to skip after a `\u` (its ANSI fallback).
    pending_skip: u32,
    /// A UTF-16 high surrogate from `\u` waiting for its low half.
    high: Option<u16>,
}

impl RtfOut {
    /// Emits a character unless it is a `\u` fallback or in a skipped
    /// destination.
    fn emit(&mut self, g: &RtfGroup, c: char) {
        if self.pending_skip > 0 {
            self.pending_skip -= 1;
            return;
        }
        if g.skip {
            return;
        }
        if self.high.take().is_some() {
            self.out.push('\u{FFFD}');
        }
        self.out.push(c);
    }

    fn unicode(&mut self, g: &RtfGroup, unit: u16) {
        if g.skip {
            return;
        }
        match unit {
            0xD800..=0xDBFF => {
                if self.high.replace(unit).is_some() {
                    self.out.push('\u{FFFD}');
                }
            }
            0xDC00..=0xDFFF => match self.high.take() {
                Some(h) => {
                    let c = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                    self.out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                None => self.out.push('\u{FFFD}'),
            },
            _ => {
                if self.high.take().is_some() {
                    self.out.push('\u{FFFD}');
                }
                self.out
                    .push(char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
            }
        }
    }
}

/// Reduces RTF to plain text: groups and control words are interpreted just
/// enough to keep the message text. `\par` and `\line` become line breaks,
/// `\tab` a tab, `\'hh` a Windows-1252 character, `\uN` a Unicode character
/// (its `\ucN` fallback characters skipped); font, colour and style tables,
/// `\*` destinations, pictures and field instructions are dropped. Leading
/// and trailing whitespace is trimmed.
pub fn rtf_to_text(rtf: &[u8]) -> String {
    let mut stack: Vec<RtfGroup> = Vec::new();
    let mut overflow = 0usize;
    let mut g = RtfGroup { skip: false, uc: 1 };
    let mut w = RtfOut {
        out: String::new(),
        pending_skip: 0,
        high: None,
    };
    let b = rtf;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                w.pending_skip = 0;
                if stack.len() >= MAX_RTF_DEPTH {
                    overflow += 1;
                } else {
                    stack.push(g);
                }
                i += 1;
            }
            b'}' => {
                w.pending_skip = 0;
                if overflow > 0 {
                    overflow -= 1;
                } else if let Some(parent) = stack.pop() {
                    g = parent;
                }
                i += 1;
            }
            b'\r' | b'\n' => i += 1,
            b'\\' => {
                let Some(&c) = b.get(i + 1) else {
                    break;
                };
                if c.is_ascii_alphabetic() {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && b[j].is_ascii_alphabetic() {
                        j += 1;
                    }
                    let word = &b[start..j];
                    let mut param: Option<i64> = None;
                    let neg =
                        b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit);
                    if neg {
                        j += 1;
                    }
                    if b.get(j).is_some_and(u8::is_ascii_digit) {
                        let mut v: i64 = 0;
                        while j < b.len() && b[j].is_ascii_digit() {
                            v = (v * 10 + i64::from(b[j] - b'0')).min(1 << 32);
                            j += 1;
                        }
                        param = Some(if neg { -v } else { v });
                    }
                    if b.get(j) == Some(&b' ') {
                        j += 1;
                    }
                    i = j;
                    if word == b"bin" {
                        // Binary data follows the word; it is never text.
                        let n = usize::try_from(param.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
                        i = i.saturating_add(n).min(b.len());
                        continue;
                    }
                    if w.pending_skip > 0 {
                        w.pending_skip -= 1;
                        continue;
                    }
                    control_word(word, param, &mut g, &mut w);
                } else {
                    i += 2;
                    match c {
                        b'\'' => {
                            let hex = b.get(i..i + 2).and_then(|h| {
                                std::str::from_utf8(h)
                                    .ok()
                                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                            });
                            if let Some(byte) = hex {
                                i += 2;
                                w.emit(&g, cp1252(byte));
                            }
                        }
                        b'\\' | b'{' | b'}' => w.emit(&g, char::from(c)),
                        b'~' => w.emit(&g, ' '),
                        b'_' => w.emit(&g, '-'),
                        b'\r' | b'\n' => w.emit(&g, '\n'),
                        b'*' if w.pending_skip > 0 => w.pending_skip -= 1,
                        b'*' => g.skip = true,
                        // `\-` (optional hyphen), `\:` (index subentry) and
                        // unknown symbols count as one skipped character.
                        _ => {
                            w.pending_skip = w.pending_skip.saturating_sub(1);
                        }
                    }
                }
            }
            c => {
                w.emit(&g, cp1252(c));
                i += 1;
            }
        }
    }
    if w.high.is_some() {
        w.out.push('\u{FFFD}');
    }
    w.out.trim().to_owned()
}

fn control_word(word: &[u8], param: Option<i64>, g: &mut RtfGroup, w: &mut RtfOut) {
    let ch = match word {
        b"par" | b"line" | b"sect" | b"page" | b"row" => Some('\n'),
        b"tab" | b"cell" => Some('\t'),
        b"emdash" => Some('\u{2014}'),
        b"endash" => Some('\u{2013}'),
        b"bullet" => Some('\u{2022}'),
        b"lquote" => Some('\u{2018}'),
        b"rquote" => Some('\u{2019}'),
        b"ldblquote" => Some('\u{201C}'),
        b"rdblquote" => Some('\u{201D}'),
        b"emspace" | b"enspace" | b"qmspace" => Some(' '),
        _ => None,
    };
    if let Some(c) = ch {
        w.emit(g, c);
        return;
    }
    match word {
        b"u" => {
            let n = param.unwrap_or(0);
            let unit = if n < 0 { n + 65536 } else { n };
            match u16::try_from(unit) {
                Ok(u) => w.unicode(g, u),
                Err(_) => w.unicode(g, 0xFFFD),
            }
            w.pending_skip = g.uc;
        }
        b"uc" => g.uc = u32::try_from(param.unwrap_or(1).clamp(0, 16)).unwrap_or(1),
        _ if SKIPPED_DESTINATIONS.contains(&word) => g.skip = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_with_charset() {
        let c = parse_body("text/plain; charset=UTF-8", "héllo".as_bytes()).expect("plain");
        assert_eq!(c.content_type, "text/plain");
        assert_eq!(c.plain_text, "héllo");
        assert_eq!(c.original, "héllo".as_bytes());
        let c = parse_body("Text/Plain;charset=\"windows-1252\"", &[0x93, b'x', 0x94]).expect("cp");
        assert_eq!(c.plain_text, "\u{201C}x\u{201D}");
        let c = parse_body("text/plain", b"  spaces kept  ").expect("plain");
        assert_eq!(c.plain_text, "  spaces kept  ");
        assert_eq!(ImContent::plain("x").plain_text, "x");
    }

    #[test]
    fn html_reduction() {
        let cases = [
            ("<b>Hi</b> there", "Hi there"),
            ("a<br>b<br/>c<BR />d", "a\nb\nc\nd"),
            ("<p>one</p><p>two</p>", "one\ntwo"),
            (
                "x &amp; y &lt;z&gt; &quot;q&quot; &#65;&#x42;&#X43;",
                "x & y <z> \"q\" ABC",
            ),
            (
                "&unknown; & &; &#xZZ; &#1114112;",
                "&unknown; & &; &#xZZ; \u{FFFD}",
            ),
            (
                "<script>alert('<b>x</b>')</script>ok<style>p{}</style>",
                "ok",
            ),
            ("<SCRIPT type=x>bad</SCRIPT >good", "good"),
            ("a<!-- <b>hidden</b> -->b", "ab"),
            ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
            ("  lots \r\n of\t  space  ", "lots of space"),
            ("<span style=\"font-family:Segoe UI\">hi</span>", "hi"),
            ("tail <unterminated", "tail"),
            ("<script>never closed", ""),
            ("&#128;", "\u{20AC}"),
            ("<div>a</div>b", "a\nb"),
        ];
        for (html, text) in cases {
            assert_eq!(html_to_text(html), text, "{html:?}");
        }
        let c = parse_body("text/html; charset=UTF-8", b"<b>hi</b>").expect("html");
        assert_eq!(
            (c.content_type.as_str(), c.plain_text.as_str()),
            ("text/html", "hi")
        );
        assert_eq!(c.original, b"<b>hi</b>");
    }

    #[test]
    fn rtf_reduction() {
        let oc = br"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fnil\fcharset0 Segoe UI;}}{\colortbl ;\red0\green0\blue0;}{\*\generator Msftedit 5.41.21.2509;}\viewkind4\uc1\pard\cf1\f0\fs20 Hello \b world\b0\par second line\tab x\par
}";
        assert_eq!(rtf_to_text(oc), "Hello world\nsecond line\tx");
        let cases: [(&[u8], &str); 9] = [
            (br"{\rtf1 caf\'e9 \'80}", "caf\u{e9} \u{20AC}"),
            (br"{\rtf1\uc1 \u8364?x}", "\u{20AC}x"),
            (br"{\rtf1\uc2 \u-10179\'3f\'3f\u-8704??y}", "\u{1F600}y"),
            (br"{\rtf1\uc0 \u233 e}", "\u{e9}e"),
            (br"{\rtf1 a\{b\}c\\d}", "a{b}c\\d"),
            (br"{\rtf1 {\*\unknown hidden}shown}", "shown"),
            (br"{\rtf1 x\bin3 abc\par y}", "x\ny"),
            (
                br"{\rtf1 \ldblquote q\rdblquote\~\emdash}",
                "\u{201C}q\u{201D} \u{2014}",
            ),
            (br"no rtf at all", "no rtf at all"),
        ];
        for (rtf, text) in cases {
            assert_eq!(rtf_to_text(rtf), text, "{:?}", String::from_utf8_lossy(rtf));
        }
        // Unbalanced and truncated input.
        assert_eq!(rtf_to_text(br"}}}a{{{b\"), "ab");
        assert_eq!(rtf_to_text(br"{\rtf1 \'4"), "4");
        assert_eq!(rtf_to_text(br"\u-10179"), "\u{FFFD}");
        let c = parse_body("text/rtf", br"{\rtf1 hi\par}").expect("rtf");
        assert_eq!(c.plain_text, "hi");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut deep = Vec::new();
        deep.extend(std::iter::repeat_n(b'{', 200_000));
        deep.extend_from_slice(b"x");
        deep.extend(std::iter::repeat_n(b'}', 200_000));
        deep.extend_from_slice(b"y");
        assert_eq!(rtf_to_text(&deep), "xy");
        let html = "<b>".repeat(100_000) + "z";
        assert_eq!(html_to_text(&html), "z");
    }

    fn alternative(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let spec: Vec<multipart::PartSpec<'_>> =
            parts.iter().map(|(ct, b)| (*ct, &[][..], *b)).collect();
        multipart::build("b1", &spec)
    }

    #[test]
    fn multipart_alternative_prefers_plain() {
        let ct = "multipart/alternative; boundary=b1";
        let body = alternative(&[
            ("text/rtf", br"{\rtf1 rtf}"),
            ("text/html", b"<i>html</i>"),
            ("text/plain; charset=UTF-8", b"plain"),
        ]);
        let c = parse_body(ct, &body).expect("parses");
        assert_eq!(c.content_type, "multipart/alternative");
        assert_eq!(c.plain_text, "plain");
        assert_eq!(c.original, body);
        let body = alternative(&[("text/rtf", br"{\rtf1 rtf}"), ("text/html", b"<i>html</i>")]);
        assert_eq!(parse_body(ct, &body).expect("html").plain_text, "html");
        let body = alternative(&[("image/gif", b"GIF89a"), ("text/rtf", br"{\rtf1 rtf}")]);
        assert_eq!(parse_body(ct, &body).expect("rtf").plain_text, "rtf");
        let body = alternative(&[
            ("image/gif", b"GIF89a"),
            ("text/plain; charset=koi8-r", b"x"),
        ]);
        assert_eq!(
            parse_body(ct, &body),
            Err(BodyError::NoSupportedAlternative)
        );
        assert_eq!(
            parse_body("multipart/alternative", &body),
            Err(BodyError::MissingBoundary)
        );
        assert!(matches!(
            parse_body(ct, b"garbage"),
            Err(BodyError::BadMultipart(_))
        ));
    }

    #[test]
    fn unsupported_and_bad_input() {
        let e = parse_body("image/gif", b"GIF89a").expect_err("gif");
        assert_eq!(
            e,
            BodyError::UnsupportedType {
                content_type: "image/gif".into()
            }
        );
        assert_eq!(e.status(), 415);
        let e = parse_body("text/plain; charset=koi8-r", b"x").expect_err("charset");
        assert_eq!(
            (e.status(), e.clone()),
            (415, BodyError::UnsupportedCharset("koi8-r".into()))
        );
        let e = parse_body("text", b"x").expect_err("bad ct");
        assert!(matches!(e, BodyError::BadContentType(_)));
        assert_eq!(e.status(), 400);
        let huge = vec![b'a'; MAX_IM_BODY_BYTES + 1];
        assert_eq!(parse_body("text/plain", &huge), Err(BodyError::TooLarge));
        assert_eq!(BodyError::TooLarge.status(), 413);
        assert!(ACCEPT.contains("text/rtf") && MESSAGE_ACCEPT.contains("iscomposing"));
    }

    #[test]
    fn from_message() {
        let raw = b"MESSAGE sip:bob@contoso.com SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK1\r\nFrom: <sip:alice@contoso.com>;tag=1\r\nTo: <sip:bob@contoso.com>\r\nCall-ID: c1\r\nCSeq: 2 MESSAGE\r\nContent-Type: text/html;charset=UTF-8\r\nContent-Length: 9\r\n\r\n<b>Hi</b>";
        let m = Message::parse(raw).expect("message");
        let c = ImContent::from_message(&m).expect("html");
        assert_eq!(c.plain_text, "Hi");
        let raw = b"MESSAGE sip:bob@contoso.com SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK1\r\nFrom: <sip:alice@contoso.com>;tag=1\r\nTo: <sip:bob@contoso.com>\r\nCall-ID: c1\r\nCSeq: 2 MESSAGE\r\nContent-Length: 2\r\n\r\nHi";
        let m = Message::parse(raw).expect("message");
        assert_eq!(ImContent::from_message(&m).expect("plain").plain_text, "Hi");
    }

    proptest! {
        #[test]
        fn html_never_panics(s in any::<String>()) {
            let _ = html_to_text(&s);
        }

        #[test]
        fn html_tagsoup_never_panics(s in "[<>/&#;a-zA-Z0-9 !\\-x\u{e9}\u{1F600}]{0,200}") {
            let t = html_to_text(&s);
            prop_assert!(t.len() <= s.len() * 4 + 4);
        }

        #[test]
        fn rtf_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = rtf_to_text(&b);
        }

        #[test]
        fn rtf_soup_never_panics(s in "[{}\\\\'a-z0-9 ?*\\-]{0,300}") {
            let _ = rtf_to_text(s.as_bytes());
        }

        #[test]
        fn plain_round_trips(s in any::<String>()) {
            let c = parse_body("text/plain; charset=utf-8", s.as_bytes()).expect("plain");
            prop_assert_eq!(c.plain_text, s);
        }

        #[test]
        fn escaped_html_round_trips(s in "[ -~]{0,100}") {
            let escaped = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
            prop_assert_eq!(html_to_text(&escaped), collapsed);
        }
    }
}
