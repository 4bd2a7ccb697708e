//! The SIP message layer: no I/O, no clock.
//!
//! - [`Message`] parses a request or response, keeps every header raw and in
//!   order, prints back the same bytes, and offers typed views on demand
//!   ([`Via`], [`NameAddr`], [`CSeq`], [`AuthHeader`], ...).
//! - [`Uri`]/[`SipUri`] parse, print and compare URIs (RFC 3261 §19.1.4).
//! - [`StreamFramer`] cuts messages out of a TCP/TLS byte stream.
//! - [`validate_request`]/[`validate_response`] decide what a user agent
//!   answers to a request it cannot process (RFC 3261 §8.2).
//! - [`builder`] builds requests (§8.1.1) and responses (§8.2.6).
//! - [`multipart`] splits and builds multipart bodies.

pub mod builder;
mod error;
pub mod framing;
mod message;
pub mod multipart;
mod name;
mod scan;
mod typed;
mod uri;
pub mod validate;

pub use error::{ParseError, ParseErrorKind};
pub use framing::StreamFramer;
pub use message::{Framing, HeaderRef, Limits, Message};
pub use name::{HeaderName, Method};
pub use scan::{percent_decode, quote, unquote};
pub use typed::{
    AuthHeader, AuthParams, CSeq, Contacts, MediaType, MsDiagnostics, NameAddr, RetryAfter,
    TokenParams, Via, Warning,
};
pub use uri::{Host, Param, ParamIter, Params, SipUri, Uri};
pub use validate::{
    Capabilities, Disposition, RequestVerdict, ResponseVerdict, disposition, reason_phrase,
    validate_request, validate_response,
};

/// The first element of a comma-separated header value (e.g. the top Via
/// of a combined Via line).
pub(crate) fn first_list_element(v: &str) -> &str {
    scan::split_commas(v).next().map(|(_, s)| s).unwrap_or(v)
}
