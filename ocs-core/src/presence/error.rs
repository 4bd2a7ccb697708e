//! Errors of the presence document parsers (and the custom-states parser).

use thiserror::Error;

use super::xml::line_col;

/// A document was refused. Positions are 1-based line and column
/// (characters) plus the byte offset into the decoded text.
///
/// What to do: the input is bad; report it (with the position) and keep
/// the previous state. Nothing is retried.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: {kind}")]
#[non_exhaustive]
pub struct DocumentError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// Byte offset into the (decoded) document.
    pub offset: usize,
    /// What is wrong.
    pub kind: DocumentErrorKind,
}

impl DocumentError {
    /// An error at byte `offset` of `src`.
    pub(crate) fn new(src: &str, offset: usize, kind: DocumentErrorKind) -> DocumentError {
        let (line, column) = line_col(src, offset);
        DocumentError {
            line,
            column,
            offset: offset.min(src.len()),
            kind,
        }
    }

    /// An error at byte `offset` of input that is not (yet) text.
    pub(crate) fn at_bytes(bytes: &[u8], offset: usize, kind: DocumentErrorKind) -> DocumentError {
        let off = offset.min(bytes.len());
        let before = &bytes[..off];
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
        DocumentError {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            offset: off,
            kind,
        }
    }

    /// An error without a position in any document (line and column 0),
    /// for example a multipart framing problem reported at a body offset.
    pub(crate) fn unpositioned(offset: usize, kind: DocumentErrorKind) -> DocumentError {
        DocumentError {
            line: 0,
            column: 0,
            offset,
            kind,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DocumentErrorKind {
    /// Not well-formed XML (quick-xml's message).
    #[error("not well-formed XML: {0}")]
    Syntax(String),
    /// A `<!DOCTYPE>`: refused so that no entity can ever be declared.
    #[error("DOCTYPE declarations are not accepted (no DTDs, no entity definitions)")]
    DocType,
    /// A reference to an entity other than the five predefined ones.
    #[error("undefined entity reference {0}")]
    UndefinedEntity(String),
    /// Elements nested deeper than the limit.
    #[error("elements nested deeper than {0} levels")]
    TooDeep(usize),
    /// The document (or multipart body) is larger than the limit in bytes.
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    /// More elements than the limit.
    #[error("more than {0} elements")]
    TooManyElements(usize),
    /// Not UTF-8 (nor UTF-16 with a byte-order mark).
    #[error("text encoding: {0}")]
    InvalidEncoding(String),
    /// No root element at all.
    #[error("no root element")]
    NoRoot,
    /// The root element is not the one this parser reads.
    #[error("expected root element <{expected}>, found <{found}>")]
    UnexpectedRoot {
        /// What was expected (may list alternatives).
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// The root element is in a namespace this parser does not read.
    #[error("namespace \"{found}\" is not {expected}")]
    WrongNamespace {
        /// The namespace(s) accepted.
        expected: &'static str,
        /// The namespace found.
        found: String,
    },
    /// A value that cannot be right (a non-numeric or out-of-range
    /// availability, version or instance).
    #[error("invalid {what} \"{value}\"")]
    InvalidValue {
        /// Which value.
        what: &'static str,
        /// The value as written (shortened).
        value: String,
    },
    /// A required element or attribute is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A multipart body could not be split or lacks its rlmi part.
    #[error("multipart body: {0}")]
    Multipart(String),
}
