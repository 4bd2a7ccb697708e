//! Client policy: `.reg` and ADM parsers and the pure policy evaluator
//! (DESIGN.md "Policies and configuration", PROTOCOL.md §f).
//!
//! Everything here is a pure function over bytes or text: callers read the
//! files (or the live registry) and hand the contents in.
//!
//! - [`reg`] parses regedit exports (`REGEDIT4` and version 5.00, UTF-8 or
//!   UTF-16LE with a BOM) into an ordered list of [`reg::RegOp`]s, and
//!   prints them back.
//! - [`adm`] parses ADM group-policy templates and lists the policies they
//!   define. [`OCS_COMMUNICATOR_ADM`] is our own template for every setting
//!   the library understands.
//! - [`eval`] merges the sources (HKLM policy, HKCU policy, in-band
//!   provisioning, user options, built-in defaults) into an
//!   [`EffectivePolicy`] whose every value names where it came from.
//! - [`known`] is the table of typed policies with their defaults and
//!   plain-words explanations.

use thiserror::Error;

pub mod adm;
pub mod eval;
pub mod known;
/// The live Windows registry (Windows builds only).
#[cfg(windows)]
pub mod live;
pub mod reg;

pub use eval::{Effective, EffectivePolicy, InBand, Setting, Source, Transport, evaluate};
pub use known::{PolicyInfo, PolicyKind, explain};

/// The largest `.reg` or `.adm` input accepted, in bytes. Larger inputs are
/// rejected up front so that parsing stays within bounded memory.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Nesting limit for ADM categories and `#if` blocks.
pub const MAX_NESTING: usize = 64;

/// Our ADM template (ASCII) for every Communicator setting ocs understands,
/// under `CLASS MACHINE` and `CLASS USER`.
pub const OCS_COMMUNICATOR_ADM: &str = include_str!("../../data/ocs-communicator.adm");

/// A malformed `.reg` or `.adm` input, with the 1-based line and column
/// (in characters) of the offending spot. Fix the file at that position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: {kind}")]
#[non_exhaustive]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What was wrong there.
    pub kind: SyntaxErrorKind,
}

impl SyntaxError {
    pub(crate) fn new(line: u32, column: u32, kind: SyntaxErrorKind) -> Self {
        SyntaxError { line, column, kind }
    }
}

/// What made a `.reg` or `.adm` input malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyntaxErrorKind {
    /// The input exceeds [`MAX_INPUT_BYTES`].
    #[error("input larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The bytes are not valid UTF-8 / UTF-16LE.
    #[error("invalid text encoding: {0}")]
    Encoding(&'static str),
    /// The first line is neither `REGEDIT4` nor
    /// `Windows Registry Editor Version 5.00`.
    #[error("missing header: expected `Windows Registry Editor Version 5.00` or `REGEDIT4`")]
    MissingHeader,
    /// A key names a root other than HKLM, HKCU, HKCR, HKU or HKCC.
    #[error("unknown registry root `{0}`")]
    UnknownRoot(String),
    /// A value line before any `[KEY]` line.
    #[error("value outside a [key] section")]
    ValueOutsideKey,
    /// A quoted string has no closing quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// Something other than what the grammar allows here.
    #[error("expected {expected}")]
    Expected {
        /// What would have been valid.
        expected: &'static str,
    },
    /// A typed hex value with the wrong number of bytes.
    #[error("{kind} needs {needed} bytes, found {found}")]
    BadLength {
        /// `dword`, `qword` or `UTF-16 string`.
        kind: &'static str,
        /// What the type needs (for strings: a multiple of this).
        needed: usize,
        /// What was there.
        found: usize,
    },
    /// UTF-16 data that is not valid UTF-16.
    #[error("invalid UTF-16 in string data")]
    BadUtf16,
    /// A `\` continuation on the last line.
    #[error("line continuation at end of file")]
    ContinuationAtEof,
    /// An ADM token that does not fit here.
    #[error("unexpected `{found}`, expected {expected}")]
    Unexpected {
        /// The token found.
        found: String,
        /// What would have been valid.
        expected: &'static str,
    },
    /// The input ended inside a construct.
    #[error("unexpected end of input, expected {expected}")]
    UnexpectedEof {
        /// What would have been valid.
        expected: &'static str,
    },
    /// A `!!name` reference with no entry in `[strings]`.
    #[error("undefined string reference `!!{0}`")]
    UndefinedString(String),
    /// An ADM policy (or part) with no KEYNAME in scope.
    #[error("policy `{0}` has no KEYNAME")]
    MissingKeyName(String),
    /// Categories or `#if` blocks nested deeper than [`MAX_NESTING`].
    #[error("nesting deeper than {MAX_NESTING}")]
    TooDeep,
}

/// Line and column just after `text` (1-based).
pub(crate) fn position_after(text: &str) -> (u32, u32) {
    let line = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let last = text.rfind('\n').map_or(text, |i| &text[i + 1..]);
    let col = last.chars().count() + 1;
    (saturate(line), saturate(col))
}

pub(crate) fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decodes a text file: UTF-16LE with a BOM (regedit's default), UTF-8 with
/// or without a BOM. The BOM is not part of the result.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, SyntaxError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(SyntaxError::new(
            1,
            1,
            SyntaxErrorKind::TooLarge {
                limit: MAX_INPUT_BYTES,
            },
        ));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units = rest
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        let mut out = String::with_capacity(rest.len());
        for ch in char::decode_utf16(units) {
            match ch {
                Ok(c) => out.push(c),
                Err(_) => {
                    let (l, c) = position_after(&out);
                    return Err(SyntaxError::new(
                        l,
                        c,
                        SyntaxErrorKind::Encoding("unpaired UTF-16 surrogate"),
                    ));
                }
            }
        }
        if !rest.len().is_multiple_of(2) {
            // The odd byte was decoded as a unit above; drop it and report.
            out.pop();
            let (l, c) = position_after(&out);
            return Err(SyntaxError::new(
                l,
                c,
                SyntaxErrorKind::Encoding("odd number of bytes in UTF-16 text"),
            ));
        }
        return Ok(out);
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(SyntaxError::new(
            1,
            1,
            SyntaxErrorKind::Encoding("UTF-16 big-endian is not supported; save as UTF-16LE"),
        ));
    }
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let good = std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default();
            let (l, c) = position_after(good);
            Err(SyntaxError::new(
                l,
                c,
                SyntaxErrorKind::Encoding("not UTF-8 (and no UTF-16LE byte-order mark)"),
            ))
        }
    }
}

/// Encodes text as regedit writes it: UTF-16LE with a BOM.
pub fn encode_utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + text.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_three_encodings() {
        assert_eq!(decode_text(b"abc").unwrap(), "abc");
        assert_eq!(decode_text(b"\xEF\xBB\xBFabc").unwrap(), "abc");
        assert_eq!(
            decode_text(&encode_utf16le_with_bom("a\u{e4}\u{1F600}")).unwrap(),
            "a\u{e4}\u{1F600}"
        );
    }

    #[test]
    fn encoding_errors_are_positioned() {
        let e = decode_text(b"ab\ncd\xFF").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        let mut b = encode_utf16le_with_bom("x\ny");
        b.push(0x41);
        let e = decode_text(&b).unwrap_err();
        assert_eq!((e.line, e.column), (2, 2));
        let mut b = encode_utf16le_with_bom("x");
        b.extend_from_slice(&0xD800u16.to_le_bytes());
        let e = decode_text(&b).unwrap_err();
        assert_eq!((e.line, e.column), (1, 2));
        assert!(decode_text(b"\xFE\xFF\x00a").is_err());
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        let e = decode_text(&big).unwrap_err();
        assert!(matches!(e.kind, SyntaxErrorKind::TooLarge { .. }));
    }
}
