//! The instant-messaging content layer: pure functions, no I/O, no clock,
//! no dialogs (the session layer wires these into INVITE/MESSAGE/INFO).
//!
//! - [`sdp`]: the `m=message` SDP offer and answer of an OCS IM session
//!   (PROTOCOL.md e.1, vector T21), a small RFC 4566 parser and
//!   [`sdp::message_media`] to find the IM media line;
//! - [`textformat`]: the `ms-text-format` header that carries the first
//!   message of a session (with optional `msgr=` font information);
//! - [`body`]: IM bodies (`text/plain`, `text/html`, `text/rtf`,
//!   `multipart/alternative`) with HTML and RTF reduced to plain text;
//! - [`typing`]: OC's `KeyboardActivity` INFO bodies and RFC 3994
//!   `isComposing` documents;
//! - [`outcome`]: what a final response to an IM means for the sender
//!   (PROTOCOL.md e.4), and the response our client sends when IM is
//!   disabled by policy.
//!
//! DisableIM is enforced on the client only, as in Office Communicator:
//! the server still routes IM to a user whose policy disables it, and that
//! user's client refuses it with [`outcome::IM_DISABLED_STATUS`] and
//! [`outcome::IM_DISABLED_CLIENT_DIAGNOSTICS`].

pub mod body;
mod charset;
pub mod outcome;
pub mod sdp;
pub mod textformat;
pub mod typing;

pub use body::{ACCEPT, BodyError, ImContent, MESSAGE_ACCEPT, html_to_text, rtf_to_text};
pub use outcome::{DeliveryFailure, FailureReason};
pub use sdp::{MessageMedia, MessageMediaKind, Sdp, SdpError};
pub use textformat::{MsTextFormat, MsgrFormat, TextFormatError};
pub use typing::{IsComposing, TypingError, TypingState};

/// The largest IM body (or decoded `ms-text-format` body) accepted, in
/// bytes. An IM is a few hundred bytes; an RTF or HTML rendering of a long
/// pasted text is a few tens of KiB. Anything bigger is refused with
/// [`BodyError::TooLarge`] / [`TextFormatError::TooLarge`] (the session
/// layer answers 413).
pub const MAX_IM_BODY_BYTES: usize = 256 * 1024;
