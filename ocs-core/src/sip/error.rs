//! Positioned parse errors.

use thiserror::Error;

/// Why a message, header or document could not be parsed.
///
/// `offset` is a byte offset into the input given to the parser (for typed
/// headers taken from a message: into the message as received). Callers show
/// it to users; nothing needs to be retried, the input is simply invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset}")]
pub struct ParseError {
    /// Byte offset of the first offending byte.
    pub offset: usize,
    /// What was wrong there.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ParseErrorKind) -> Self {
        ParseError { offset, kind }
    }

    /// Shifts the offset by `by` (used when a value's errors are reported
    /// relative to the enclosing message).
    pub(crate) fn shift(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

/// The kinds of parse error. New kinds may be added.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input ended before the message was complete.
    #[error("incomplete message")]
    Incomplete,
    /// Something specific was expected here.
    #[error("expected {0}")]
    Expected(&'static str),
    /// The start line is not a Request-Line or Status-Line.
    #[error("malformed start line")]
    BadStartLine,
    /// A status code outside 100..=999.
    #[error("invalid status code")]
    BadStatusCode,
    /// A header line without `name:`.
    #[error("malformed header line")]
    BadHeaderLine,
    /// A quoted string without its closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A `\` escape that is not a valid quoted-pair.
    #[error("invalid escape")]
    BadEscape,
    /// A number too large for its field.
    #[error("number out of range")]
    NumberOutOfRange,
    /// Content-Length disagrees with the bytes that arrived.
    #[error("body shorter than Content-Length")]
    BodyTooShort,
    /// A stream message without Content-Length.
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// Two Content-Length headers with different values.
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
    /// The header section is not valid UTF-8.
    #[error("header section is not valid UTF-8")]
    InvalidUtf8,
    /// A URI that does not follow its grammar.
    #[error("malformed URI: {0}")]
    BadUri(&'static str),
    /// A header parameter that does not follow `;name[=value]`.
    #[error("malformed parameter")]
    BadParam,
    /// Unexpected bytes after a complete value.
    #[error("unexpected trailing characters")]
    Trailing,
    /// A header the typed accessor needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A limit (header bytes, header count, body size) was exceeded.
    #[error("{0} limit exceeded")]
    LimitExceeded(&'static str),
    /// A multipart body is malformed.
    #[error("malformed multipart body: {0}")]
    BadMultipart(&'static str),
}
