//! Presence documents, both dialects (pure: no networking, no clock).
//!
//! - [`model`]: one state model — [`Availability`] numbers ↔ [`State`],
//!   and [`Presence`] for one contact (activity, custom text per LCID,
//!   notes, phone and calendar state, device, contact card, raw
//!   categories);
//! - [`categories`]: `application/msrtc-event-categories+xml` → [`Presence`];
//! - [`rlmi`]: batched `multipart/related` rlmi notifications →
//!   [`ResourceUpdate`]s;
//! - [`pidf`]: PIDF + RPID (RFC 3863/4480) → [`Presence`], and the PUBLISH
//!   document builder;
//! - [`publish`]: OCS request bodies (publications, `batchSub`, container
//!   members, subscribers, roaming-self and provisioning-v2 bodies) and the
//!   409 `WrongDelta` fault;
//! - [`roaming`]: roaming-self `roamingData` and roaming-contacts
//!   `contactList`.
//!
//! All parsers share one hardened XML front end: no DTDs (a `<!DOCTYPE` is
//! refused), no entities beyond the predefined five, at most
//! [`MAX_DOCUMENT_BYTES`] per document, [`MAX_DEPTH`] levels and
//! [`MAX_ELEMENTS`] elements; errors carry line and column.

pub mod categories;
pub mod contacts;
pub mod error;
pub mod model;
pub mod pidf;
pub mod publish;
pub mod rlmi;
pub mod roaming;
pub(crate) mod xml;

pub use categories::{CATEGORIES_NS, ParseOptions, parse_categories, parse_categories_with};
pub use contacts::{
    Contact, ContactDelta, ContactList, ContactOp, Group, RoamingContacts, parse_contact_list,
    parse_roaming_contacts,
};
pub use error::{DocumentError, DocumentErrorKind};
pub use model::{
    Availability, CalendarState, ContactCard, CustomText, Note, NoteKind, Phone, PhoneState,
    Presence, RawCategory, State,
};
pub use pidf::{PidfPublish, build_pidf, parse_pidf};
pub use publish::{
    BatchResource, ContainerChange, CustomActivity, DEFAULT_BATCH_CATEGORIES, DeviceInfo,
    ExpireType, Fault, FaultOperation, MemberAction, MemberChange, PROVISIONING_V2_BODY,
    PublishBody, ROAMING_SELF_BODY, USER_STATE_INSTANCE, batch_subscribe_body,
    calendar_oof_instance, calendar_state_instance, device_instance, epid_instance,
    machine_state_instance, parse_fault, phone_voip_instance, set_container_members_body,
    set_subscribers_body,
};
pub use rlmi::{
    InstanceState, MAX_MULTIPART_BYTES, ResourceUpdate, build_rlmi_multipart, parse_notify_body,
    parse_rlmi_multipart,
};
pub use roaming::{Container, Member, OwnPublication, RoamingSelf, Subscriber, parse_roaming_self};
pub use xml::{MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ELEMENTS};

/// What kind of presence document a body is, from its root element (for
/// callers without a Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentKind {
    /// `<categories>`: msrtc event categories.
    Categories,
    /// `<presence>`: PIDF.
    Pidf,
    /// Starts with a multipart delimiter (`--boundary`).
    Multipart,
    /// Anything else.
    Unknown,
}

/// Sniffs the document kind: a body starting (after whitespace) with `--`
/// is multipart; otherwise the first element's local name decides.
pub fn sniff(body: &[u8]) -> DocumentKind {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let b = &body[start..];
    if b.starts_with(b"--") {
        return DocumentKind::Multipart;
    }
    // Skip the declaration, comments and PIs up to the first element.
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let at = i + off + 1;
        match b.get(at) {
            Some(b'?' | b'!') => i = at,
            Some(_) => {
                let name_end = b[at..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || matches!(c, b'>' | b'/'))
                    .map_or(b.len(), |e| at + e);
                let name = &b[at..name_end];
                let local = name.rsplit(|c| *c == b':').next().unwrap_or(name);
                return match local {
                    b"categories" => DocumentKind::Categories,
                    b"presence" => DocumentKind::Pidf,
                    _ => DocumentKind::Unknown,
                };
            }
            None => break,
        }
    }
    DocumentKind::Unknown
}

/// The multipart boundary of the first delimiter line of a body that
/// starts with `--` (for multipart bodies given without a Content-Type).
pub fn sniff_boundary(body: &[u8]) -> Option<&str> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let b = body[start..].strip_prefix(b"--")?;
    let end = b
        .iter()
        .position(|c| *c == b'\r' || *c == b'\n')
        .unwrap_or(b.len());
    let s = std::str::from_utf8(&b[..end]).ok()?.trim_end();
    (!s.is_empty() && s.len() <= 70).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            sniff(b"  <?xml version=\"1.0\"?><!-- x --><categories/>"),
            DocumentKind::Categories
        );
        assert_eq!(
            sniff(b"<p:presence xmlns:p=\"urn:ietf:params:xml:ns:pidf\"/>"),
            DocumentKind::Pidf
        );
        assert_eq!(sniff(b"\r\n--abc\r\n"), DocumentKind::Multipart);
        assert_eq!(sniff_boundary(b"\r\n--abc\r\nx"), Some("abc"));
        assert_eq!(sniff(b"hello"), DocumentKind::Unknown);
        assert_eq!(sniff(b""), DocumentKind::Unknown);
        assert_eq!(sniff(b"<"), DocumentKind::Unknown);
    }
}
