//! The address-book file format (MS-ABS, `.lsabs`).
//!
//! What MS-ABS fixes and this module follows exactly: little-endian
//! integers; the 154-byte delta header (file-type GUID, base and creation
//! days, attribute count, largest attribute id, whether phone numbers were
//! normalised, 128 reserved bytes) and both delta GUIDs; the
//! normalisation-rules block (`u32` length + UTF-8 text); attribute
//! records (`u16` length of the rest, `u16` id, `u32` flags whose high
//! byte says which client field the attribute fills, NUL-terminated
//! name); contact attributes (`u8` id + NUL-terminated string, a
//! normalised phone number right after the raw one under the same id);
//! and the `u32` trailer length in the last four bytes.
//!
//! What the parts of MS-ABS available to us do not fix, and this module
//! therefore assumes (**not yet checked against a file from a real OCS
//! server**): a full file's header is the delta header without the base
//! day, under any GUID that is not a delta GUID; the rules block follows
//! the header and the attribute table follows the rules; contacts are a
//! `u32` count, then per contact a 16-byte object GUID, a `u16` attribute
//! count and the attributes, a delta marking a deleted contact by zero
//! attributes; the trailer is the contact count and the CRC-32 (MS-ABS
//! 5.1, the zlib CRC) of everything before it; files are not compressed
//! (MS-ABS mentions compressed blocks whose layout we could not read, so
//! a compressed file fails with a clear error at offset 0).
//!
//! [`write_full`] and [`write_delta`] produce this layout; tests, the
//! benchmark and the fuzz target use them.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use super::book::{Entry, Phone, PhoneKind};
use super::names::AbsDay;

/// The delta-file GUID (MS-ABS 2.2.4).
pub const DELTA_GUID: [u8; 16] = [
    0x16, 0xc1, 0x4b, 0xb5, 0x08, 0x90, 0xc7, 0x47, 0xb9, 0xbd, 0xf3, 0xbb, 0x1a, 0x0a, 0xb6, 0xeb,
];
/// The compact-delta GUID (MS-ABS 2.2.4).
pub const COMPACT_GUID: [u8; 16] = [
    0x34, 0x17, 0x7d, 0xf7, 0x87, 0xae, 0x2b, 0x4d, 0x09, 0xa0, 0x8e, 0xe9, 0xba, 0x89, 0x4a, 0x04,
];
/// The GUID [`write_full`] puts in full files (MS-ABS's full-file GUID was
/// not available to us; the parser accepts any non-delta GUID as full).
pub const FULL_GUID: [u8; 16] = [0; 16];

/// Most contacts a file may declare (a bound on memory before reading;
/// an OCS 2007 R2 directory is far smaller).
pub const MAX_CONTACTS: u32 = 1_000_000;

/// Most phone numbers kept per entry; more are dropped (a directory entry
/// has a handful; the cap keeps a hostile file from inflating memory).
pub const MAX_PHONES_PER_ENTRY: usize = 16;

/// Most uninterpreted attributes kept per entry.
pub const MAX_OTHER_PER_ENTRY: usize = 32;

/// Which client field an attribute fills: the high byte of its flags
/// (MS-ABS 2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ClientField {
    /// `proxyAddresses` (`sip:`, `SMTP:` …).
    ProxyAddresses = 0x00,
    /// `givenName`.
    GivenName = 0x01,
    /// `sn`.
    Surname = 0x02,
    /// `displayName`.
    DisplayName = 0x03,
    /// `title`.
    Title = 0x04,
    /// `mailNickname`.
    MailNickname = 0x05,
    /// `company`.
    Company = 0x06,
    /// `physicalDeliveryOfficeName`.
    Office = 0x07,
    /// `msRTCSIP-PrimaryUserAddress`.
    SipUri = 0x08,
    /// `telephoneNumber`.
    Telephone = 0x09,
    /// `homePhone`.
    HomePhone = 0x0A,
    /// `mobile`.
    Mobile = 0x0B,
    /// `otherTelephone`.
    OtherTelephone = 0x0C,
    /// `ipPhone`.
    IpPhone = 0x0D,
    /// `mail`.
    Mail = 0x0E,
    /// `groupType`.
    GroupType = 0x0F,
    /// `manager`.
    Manager = 0x10,
    /// Ignored by clients.
    Ignore = 0xFF,
}

impl ClientField {
    /// From the high byte of an attribute's flags; `None` for values
    /// MS-ABS does not define (kept raw).
    pub fn from_byte(b: u8) -> Option<ClientField> {
        use ClientField::*;
        Some(match b {
            0x00 => ProxyAddresses,
            0x01 => GivenName,
            0x02 => Surname,
            0x03 => DisplayName,
            0x04 => Title,
            0x05 => MailNickname,
            0x06 => Company,
            0x07 => Office,
            0x08 => SipUri,
            0x09 => Telephone,
            0x0A => HomePhone,
            0x0B => Mobile,
            0x0C => OtherTelephone,
            0x0D => IpPhone,
            0x0E => Mail,
            0x0F => GroupType,
            0x10 => Manager,
            0xFF => Ignore,
            _ => return None,
        })
    }

    /// The Active Directory attribute name a writer records.
    pub fn ad_name(self) -> &'static str {
        use ClientField::*;
        match self {
            ProxyAddresses => "proxyAddresses",
            GivenName => "givenName",
            Surname => "sn",
            DisplayName => "displayName",
            Title => "title",
            MailNickname => "mailNickname",
            Company => "company",
            Office => "physicalDeliveryOfficeName",
            SipUri => "msRTCSIP-PrimaryUserAddress",
            Telephone => "telephoneNumber",
            HomePhone => "homePhone",
            Mobile => "mobile",
            OtherTelephone => "otherTelephone",
            IpPhone => "ipPhone",
            Mail => "mail",
            GroupType => "groupType",
            Manager => "manager",
            Ignore => "ignored",
        }
    }

    fn phone_kind(self) -> Option<PhoneKind> {
        match self {
            ClientField::Telephone => Some(PhoneKind::Work),
            ClientField::HomePhone => Some(PhoneKind::Home),
            ClientField::Mobile => Some(PhoneKind::Mobile),
            ClientField::OtherTelephone => Some(PhoneKind::Other),
            ClientField::IpPhone => Some(PhoneKind::Ip),
            _ => None,
        }
    }
}

/// What is wrong with a file, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("byte {offset}: {kind}")]
pub struct AbsError {
    /// Byte offset in the file.
    pub offset: usize,
    /// What is wrong.
    pub kind: AbsErrorKind,
}

/// The kinds of [`AbsError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AbsErrorKind {
    /// The file ends inside a structure.
    #[error("the file ends inside {0}")]
    Truncated(&'static str),
    /// A count or length is impossible for the file's size.
    #[error("{what} {value} is impossible here")]
    BadCount {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A contact refers to an attribute id the table does not define.
    #[error("contact attribute id {0} is not in the attribute table")]
    UnknownAttribute(u16),
    /// The trailer's CRC-32 does not match the content.
    #[error("CRC-32 mismatch: the file says {stored:08x}, the content gives {computed:08x}")]
    Crc {
        /// The CRC in the trailer.
        stored: u32,
        /// The CRC of the content.
        computed: u32,
    },
    /// Bytes left between the contacts and the trailer.
    #[error("{0} unexpected bytes before the trailer")]
    TrailingBytes(usize),
    /// A delta arrived with no full file to apply it to.
    #[error("a delta file needs a full file to apply to, and there is none")]
    DeltaWithoutBase,
    /// The file is not the one its name promises.
    #[error("not the file asked for: {0}")]
    WrongFile(String),
}

impl AbsError {
    fn at(offset: usize, kind: AbsErrorKind) -> AbsError {
        AbsError { offset, kind }
    }

    /// The error for a file whose header does not match its name.
    pub fn wrong_file(what: String) -> AbsError {
        AbsError::at(0, AbsErrorKind::WrongFile(what))
    }

    /// The error for a delta with no full file under it.
    pub fn unexpected_delta() -> AbsError {
        AbsError::at(0, AbsErrorKind::DeltaWithoutBase)
    }
}

/// One change of a delta file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new or changed contact, whole (`D-` files): replaces the old one.
    Replace(Box<Entry>),
    /// Changed attributes only (`C-` files): an empty value removes the
    /// attribute.
    Patch {
        /// The contact's object id.
        id: Vec<u8>,
        /// `(field, value)`; multi-valued fields list every value.
        attrs: Vec<(ClientField, String)>,
    },
    /// The contact was deleted.
    Delete(Vec<u8>),
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbsFile {
    /// A full file's contacts.
    Full(Vec<Entry>),
    /// A delta's changes.
    Delta(Vec<Change>),
}

/// The CRC-32 of MS-ABS 5.1 (reflected, polynomial 0xEDB88320, the zlib
/// one): the same function NTLM's legacy checksum uses.
pub use crate::auth::ntlm::crc32;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AbsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| AbsError::at(self.pos, AbsErrorKind::Truncated(what)))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, AbsError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, AbsError> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, AbsError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn cstr(&mut self, what: &'static str) -> Result<String, AbsError> {
        let rest = &self.b[self.pos..];
        let n = memchr::memchr(0, rest)
            .ok_or_else(|| AbsError::at(self.pos, AbsErrorKind::Truncated(what)))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
}

/// The header fields both kinds of file share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Full, delta or compact delta.
    pub kind: FileKind,
    /// The base day (deltas only).
    pub base: Option<AbsDay>,
    /// The day the file brings the book to.
    pub day: AbsDay,
    /// Number of attribute records.
    pub attributes: u16,
    /// Phone numbers were normalised by the server.
    pub normalized: bool,
}

/// The kind of file, from its GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A full file.
    Full,
    /// A delta (`D-`).
    Delta,
    /// A compact delta (`C-`).
    Compact,
}

/// Parses a whole file.
pub fn parse_file(bytes: &[u8]) -> Result<AbsFile, AbsError> {
    parse_with_header(bytes).map(|(_, f)| f)
}

/// Parses a whole file and returns its header too.
pub fn parse_with_header(bytes: &[u8]) -> Result<(Header, AbsFile), AbsError> {
    // The trailer first: its length is in the last four bytes.
    if bytes.len() < 4 {
        return Err(AbsError::at(
            0,
            AbsErrorKind::Truncated("the trailer length"),
        ));
    }
    let tl_at = bytes.len() - 4;
    let trailer_len = u32::from_le_bytes([
        bytes[tl_at],
        bytes[tl_at + 1],
        bytes[tl_at + 2],
        bytes[tl_at + 3],
    ]) as usize;
    if trailer_len < 8 || trailer_len > tl_at {
        return Err(AbsError::at(
            tl_at,
            AbsErrorKind::BadCount {
                what: "trailer length",
                value: trailer_len as u64,
            },
        ));
    }
    let trailer_at = tl_at - trailer_len;
    let mut t = Reader {
        b: &bytes[..tl_at],
        pos: trailer_at,
    };
    let trailer_count = t.u32("the trailer")?;
    let stored_crc = t.u32("the trailer")?;
    let content = &bytes[..trailer_at];
    let computed = crc32(content);
    if computed != stored_crc {
        return Err(AbsError::at(
            trailer_at + 4,
            AbsErrorKind::Crc {
                stored: stored_crc,
                computed,
            },
        ));
    }

    let mut r = Reader { b: content, pos: 0 };
    let guid = r.take(16, "the header")?;
    let kind = if guid == DELTA_GUID {
        FileKind::Delta
    } else if guid == COMPACT_GUID {
        FileKind::Compact
    } else {
        FileKind::Full
    };
    let base = match kind {
        FileKind::Full => None,
        _ => Some(AbsDay(r.u16("the header")?)),
    };
    let day = AbsDay(r.u16("the header")?);
    let n_attrs = r.u16("the header")?;
    let _max_id = r.u16("the header")?;
    let normalized = r.u16("the header")? != 0;
    r.take(128, "the header")?;
    let header = Header {
        kind,
        base,
        day,
        attributes: n_attrs,
        normalized,
    };

    let rules_at = r.pos;
    let rules_len = r.u32("the normalisation rules")?;
    if rules_len as usize > content.len() - r.pos {
        return Err(AbsError::at(
            rules_at,
            AbsErrorKind::BadCount {
                what: "normalisation rules length",
                value: rules_len.into(),
            },
        ));
    }
    r.take(rules_len as usize, "the normalisation rules")?;

    // Attribute table: id -> client field (None: undefined, kept raw).
    let mut fields: HashMap<u16, Option<ClientField>> = HashMap::new();
    for _ in 0..n_attrs {
        let at = r.pos;
        let len = r.u16("an attribute record")? as usize;
        let rec = r.take(len, "an attribute record")?;
        if len < 7 {
            return Err(AbsError::at(
                at,
                AbsErrorKind::BadCount {
                    what: "attribute record length",
                    value: len as u64,
                },
            ));
        }
        let id = u16::from_le_bytes([rec[0], rec[1]]);
        let flags = u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]);
        fields.insert(id, ClientField::from_byte((flags >> 24) as u8));
    }

    let count_at = r.pos;
    let count = r.u32("the contact count")?;
    // Every contact takes at least 18 bytes: a bound before allocating.
    if count > MAX_CONTACTS
        || count as usize > (content.len() - r.pos) / 18
        || count != trailer_count
    {
        return Err(AbsError::at(
            count_at,
            AbsErrorKind::BadCount {
                what: "contact count",
                value: count.into(),
            },
        ));
    }
    let mut entries = Vec::new();
    let mut changes = Vec::new();
    for _ in 0..count {
        let id = r.take(16, "a contact")?.to_vec();
        let n = r.u16("a contact")?;
        let mut attrs: Vec<(Option<ClientField>, u8, String)> = Vec::with_capacity(n.into());
        for _ in 0..n {
            let at = r.pos;
            let aid = r.u8("a contact attribute")?;
            let field = *fields
                .get(&u16::from(aid))
                .ok_or_else(|| AbsError::at(at, AbsErrorKind::UnknownAttribute(aid.into())))?;
            let value = r.cstr("a contact attribute value")?;
            attrs.push((field, aid, value));
        }
        match kind {
            FileKind::Full => entries.push(entry_from(id, &attrs)),
            FileKind::Delta if n == 0 => changes.push(Change::Delete(id)),
            FileKind::Delta => changes.push(Change::Replace(Box::new(entry_from(id, &attrs)))),
            FileKind::Compact if n == 0 => changes.push(Change::Delete(id)),
            FileKind::Compact => changes.push(Change::Patch {
                id,
                attrs: attrs
                    .into_iter()
                    .filter_map(|(f, _, v)| f.map(|f| (f, v)))
                    .collect(),
            }),
        }
    }
    if r.pos != content.len() {
        return Err(AbsError::at(
            r.pos,
            AbsErrorKind::TrailingBytes(content.len() - r.pos),
        ));
    }
    let file = match kind {
        FileKind::Full => AbsFile::Full(entries),
        _ => AbsFile::Delta(changes),
    };
    Ok((header, file))
}

/// Builds an entry from its attributes (a normalised phone number follows
/// its raw form under the same id).
fn entry_from(id: Vec<u8>, attrs: &[(Option<ClientField>, u8, String)]) -> Entry {
    let mut e = Entry {
        id,
        ..Entry::default()
    };
    let mut last_phone: Option<u8> = None;
    for (field, aid, value) in attrs {
        if value.is_empty() {
            // An empty value says nothing in a full record (only compact
            // deltas use it, to remove an attribute).
            continue;
        }
        let Some(field) = field else {
            if e.other.len() < MAX_OTHER_PER_ENTRY {
                e.other.push((u32::from(*aid), value.clone()));
            }
            last_phone = None;
            continue;
        };
        if let Some(kind) = field.phone_kind() {
            if last_phone == Some(*aid)
                && value.starts_with("tel:")
                && let Some(p) = e.phones.last_mut()
                && p.normalized.is_none()
            {
                p.normalized = Some(value.clone());
                last_phone = None;
                continue;
            }
            if e.phones.len() < MAX_PHONES_PER_ENTRY {
                e.phones.push(Phone {
                    kind,
                    number: value.clone(),
                    normalized: None,
                });
                last_phone = Some(*aid);
            }
            continue;
        }
        last_phone = None;
        set_field(&mut e, *field, value);
    }
    e
}

fn set_field(e: &mut Entry, field: ClientField, value: &str) {
    let v = (!value.is_empty()).then(|| value.to_owned());
    match field {
        ClientField::DisplayName => e.display_name = v,
        ClientField::GivenName => e.given_name = v,
        ClientField::Surname => e.surname = v,
        ClientField::Title => e.title = v,
        ClientField::Company => e.company = v,
        ClientField::Office => e.office = v,
        ClientField::Mail => e.email = v,
        ClientField::SipUri => e.sip_uri = v,
        ClientField::ProxyAddresses
            if e.sip_uri.is_none()
                && value
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("sip:")) =>
        {
            e.sip_uri = v;
        }
        other => {
            if let Some(v) = v
                && e.other.len() < MAX_OTHER_PER_ENTRY
            {
                e.other.push((u32::from(other as u8) << 24, v));
            }
        }
    }
}

/// Applies a delta's changes to a full file's entries.
pub fn apply_delta(mut entries: Vec<Entry>, changes: Vec<Change>) -> Vec<Entry> {
    let mut index: HashMap<Vec<u8>, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), i))
        .collect();
    let mut deleted = vec![false; entries.len()];
    for c in changes {
        match c {
            Change::Replace(e) => match index.get(&e.id) {
                Some(&i) => {
                    deleted[i] = false;
                    entries[i] = *e;
                }
                None => {
                    index.insert(e.id.clone(), entries.len());
                    entries.push(*e);
                    deleted.push(false);
                }
            },
            Change::Patch { id, attrs } => {
                let i = match index.get(&id) {
                    Some(&i) => i,
                    None => {
                        index.insert(id.clone(), entries.len());
                        entries.push(Entry {
                            id,
                            ..Entry::default()
                        });
                        deleted.push(false);
                        entries.len() - 1
                    }
                };
                deleted[i] = false;
                let e = &mut entries[i];
                for (field, _) in &attrs {
                    if let Some(kind) = field.phone_kind() {
                        // A patch lists every number of a kind anew.
                        e.phones.retain(|p| p.kind != kind);
                    }
                }
                for (field, value) in attrs {
                    match field.phone_kind() {
                        Some(kind) if value.starts_with("tel:") => {
                            if let Some(p) = e.phones.iter_mut().rev().find(|p| p.kind == kind) {
                                p.normalized = Some(value);
                            }
                        }
                        Some(kind)
                            if !value.is_empty() && e.phones.len() < MAX_PHONES_PER_ENTRY =>
                        {
                            e.phones.push(Phone {
                                kind,
                                number: value,
                                normalized: None,
                            })
                        }
                        Some(_) => {}
                        None => set_field(e, field, &value),
                    }
                }
            }
            Change::Delete(id) => {
                if let Some(&i) = index.get(&id) {
                    deleted[i] = true;
                }
            }
        }
    }
    entries
        .into_iter()
        .zip(deleted)
        .filter_map(|(e, d)| (!d).then_some(e))
        .collect()
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Full => "full",
            FileKind::Delta => "delta",
            FileKind::Compact => "compact delta",
        })
    }
}

// ----- writing --------------------------------------------------------

/// The attribute table every written file carries: one attribute per
/// client field this library fills, ids 1.. in this order.
const WRITTEN: [ClientField; 14] = [
    ClientField::DisplayName,
    ClientField::GivenName,
    ClientField::Surname,
    ClientField::Mail,
    ClientField::SipUri,
    ClientField::Title,
    ClientField::Company,
    ClientField::Office,
    ClientField::Telephone,
    ClientField::Mobile,
    ClientField::HomePhone,
    ClientField::OtherTelephone,
    ClientField::IpPhone,
    ClientField::ProxyAddresses,
];

fn attr_id(field: ClientField) -> u8 {
    WRITTEN
        .iter()
        .position(|f| *f == field)
        .map_or(0, |i| i as u8 + 1)
}

fn write_header(out: &mut Vec<u8>, guid: &[u8; 16], base: Option<AbsDay>, day: AbsDay) {
    out.extend_from_slice(guid);
    if let Some(b) = base {
        out.extend_from_slice(&b.0.to_le_bytes());
    }
    out.extend_from_slice(&day.0.to_le_bytes());
    out.extend_from_slice(&(WRITTEN.len() as u16).to_le_bytes());
    out.extend_from_slice(&(WRITTEN.len() as u16).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[0; 128]);
    // Normalisation rules: the built-in E164 rule.
    let rules = b"E164\r\n\r\n\0";
    out.extend_from_slice(&(rules.len() as u32).to_le_bytes());
    out.extend_from_slice(rules);
    for f in WRITTEN {
        let name = f.ad_name().as_bytes();
        let len = 2 + 4 + name.len() + 1;
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&u16::from(attr_id(f)).to_le_bytes());
        out.extend_from_slice(&((f as u32) << 24).to_le_bytes());
        out.extend_from_slice(name);
        out.push(0);
    }
}

fn push_attr(attrs: &mut Vec<(u8, String)>, field: ClientField, value: &str) {
    // NUL ends a value; one inside would cut it, so it is dropped.
    attrs.push((attr_id(field), value.replace('\0', "")));
}

fn entry_attrs(e: &Entry) -> Vec<(u8, String)> {
    let mut a = Vec::new();
    for (field, v) in [
        (ClientField::DisplayName, &e.display_name),
        (ClientField::GivenName, &e.given_name),
        (ClientField::Surname, &e.surname),
        (ClientField::Mail, &e.email),
        (ClientField::SipUri, &e.sip_uri),
        (ClientField::Title, &e.title),
        (ClientField::Company, &e.company),
        (ClientField::Office, &e.office),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            push_attr(&mut a, field, v);
        }
    }
    for p in &e.phones {
        let field = match p.kind {
            PhoneKind::Work => ClientField::Telephone,
            PhoneKind::Mobile => ClientField::Mobile,
            PhoneKind::Home => ClientField::HomePhone,
            PhoneKind::Other => ClientField::OtherTelephone,
            PhoneKind::Ip => ClientField::IpPhone,
        };
        push_attr(&mut a, field, &p.number);
        if let Some(n) = &p.normalized {
            push_attr(&mut a, field, n);
        }
    }
    a
}

fn write_contact(out: &mut Vec<u8>, id: &[u8], attrs: &[(u8, String)]) {
    let mut guid = [0u8; 16];
    let n = id.len().min(16);
    guid[..n].copy_from_slice(&id[..n]);
    out.extend_from_slice(&guid);
    out.extend_from_slice(&(attrs.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    for (aid, v) in attrs.iter().take(usize::from(u16::MAX)) {
        out.push(*aid);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
}

fn finish(mut out: Vec<u8>, count: u32) -> Vec<u8> {
    let crc = crc32(&out);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out
}

/// Writes a full file of `day` (ids longer than 16 bytes are cut, shorter
/// ones padded with zeros).
pub fn write_full(day: AbsDay, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + entries.len() * 160);
    write_header(&mut out, &FULL_GUID, None, day);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        write_contact(&mut out, &e.id, &entry_attrs(e));
    }
    finish(out, entries.len() as u32)
}

/// Writes a delta (`D-`) from `base` to `day`: [`Change::Replace`] and
/// [`Change::Delete`]; a [`Change::Patch`] makes it a compact delta
/// (`C-`) — do not mix them. A replacement entry without any attribute
/// reads back as a deletion (a record with no attributes marks one).
pub fn write_delta(base: AbsDay, day: AbsDay, changes: &[Change]) -> Vec<u8> {
    let compact = changes.iter().any(|c| matches!(c, Change::Patch { .. }));
    let mut out = Vec::new();
    let guid = if compact { &COMPACT_GUID } else { &DELTA_GUID };
    write_header(&mut out, guid, Some(base), day);
    out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for c in changes {
        match c {
            Change::Replace(e) => write_contact(&mut out, &e.id, &entry_attrs(e)),
            Change::Delete(id) => write_contact(&mut out, id, &[]),
            Change::Patch { id, attrs } => {
                let a: Vec<(u8, String)> = attrs
                    .iter()
                    .map(|(f, v)| (attr_id(*f), v.clone()))
                    .collect();
                write_contact(&mut out, id, &a);
            }
        }
    }
    finish(out, changes.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(i: u32, name: &str) -> Entry {
        let mut id = vec![0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        Entry {
            id,
            display_name: Some(name.into()),
            given_name: name.split(' ').next().map(Into::into),
            surname: name.split(' ').nth(1).map(Into::into),
            email: Some(format!(
                "{}@contoso.com",
                name.replace(' ', ".").to_lowercase()
            )),
            sip_uri: Some(format!(
                "sip:{}@contoso.com",
                name.replace(' ', ".").to_lowercase()
            )),
            title: Some("Development Manager".into()),
            phones: vec![
                Phone {
                    kind: PhoneKind::Work,
                    number: "555 391 3224".into(),
                    normalized: Some("tel:+5553913224".into()),
                },
                Phone {
                    kind: PhoneKind::Ip,
                    number: "1234".into(),
                    normalized: None,
                },
            ],
            ..Entry::default()
        }
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn delta_header_and_attribute_records_match_ms_abs_bytes() {
        let f = write_delta(AbsDay(0x0A10), AbsDay(0x0A11), &[]);
        assert_eq!(&f[..16], &DELTA_GUID);
        assert_eq!(&f[16..20], &[0x10, 0x0A, 0x11, 0x0A]);
        // The title record has MS-ABS 3.1.3.16's shape: length 0x000C,
        // then id, flags 0x04000000, "title\0".
        let title = b"\x00\x00\x00\x04title\x00";
        let at = f
            .windows(title.len())
            .position(|w| w == title)
            .expect("title");
        assert_eq!(&f[at - 4..at - 2], &[0x0C, 0x00]);
        // And a contact attribute is id + NUL-terminated text (3.1.4.16).
        let c = write_full(AbsDay(1), &[person(1, "Ann Lee")]);
        let id = attr_id(ClientField::Title);
        let want = [&[id][..], b"Development Manager\0"].concat();
        assert!(c.windows(want.len()).any(|w| w == want.as_slice()));
        let (h, _) = parse_with_header(&f).expect("parses");
        assert_eq!(h.kind, FileKind::Delta);
        assert_eq!(h.base, Some(AbsDay(0x0A10)));
        assert_eq!(h.day, AbsDay(0x0A11));
        assert!(h.normalized);
    }

    #[test]
    fn full_round_trip_and_deltas() {
        let people: Vec<Entry> = (0..50).map(|i| person(i, &format!("Ann{i} Lee"))).collect();
        let f = write_full(AbsDay(0x0A10), &people);
        let AbsFile::Full(back) = parse_file(&f).expect("full") else {
            panic!("not full")
        };
        assert_eq!(back, people);
        let mut changed = people[3].clone();
        changed.display_name = Some("Renamed".into());
        let d = write_delta(
            AbsDay(0x0A10),
            AbsDay(0x0A11),
            &[
                Change::Replace(Box::new(changed.clone())),
                Change::Delete(people[4].id.clone()),
                Change::Replace(Box::new(person(99, "New Person"))),
            ],
        );
        let AbsFile::Delta(ch) = parse_file(&d).expect("delta") else {
            panic!("not delta")
        };
        let after = apply_delta(back, ch);
        assert_eq!(after.len(), 50);
        assert_eq!(after[3], changed);
        assert!(after.iter().all(|e| e.id != people[4].id));
        assert_eq!(after[49].display_name.as_deref(), Some("New Person"));
        // A compact delta patches one attribute and clears another.
        let c = write_delta(
            AbsDay(0x0A11),
            AbsDay(0x0A12),
            &[Change::Patch {
                id: people[5].id.clone(),
                attrs: vec![
                    (ClientField::Title, String::new()),
                    (ClientField::Mobile, "+1 555 0100".into()),
                ],
            }],
        );
        let AbsFile::Delta(ch) = parse_file(&c).expect("compact") else {
            panic!("not delta")
        };
        let after = apply_delta(after, ch);
        let p = after.iter().find(|e| e.id == people[5].id).unwrap();
        assert_eq!(p.title, None);
        assert_eq!(p.phones.len(), 3);
        assert_eq!(p.phones[2].number, "+1 555 0100");
    }

    #[test]
    fn damage_is_found_with_its_offset() {
        let f = write_full(AbsDay(1), &[person(1, "Ann Lee"), person(2, "Bo Chan")]);
        for cut in [0, 3, 10, 100, f.len() - 1] {
            assert!(parse_file(&f[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = f.clone();
        flipped[200] ^= 0x40;
        let e = parse_file(&flipped).expect_err("crc");
        assert!(matches!(e.kind, AbsErrorKind::Crc { .. }), "{e}");
        let mut huge = f.clone();
        let len = huge.len();
        huge[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = parse_file(&huge).expect_err("trailer");
        assert_eq!(e.offset, len - 4);
        assert!(
            e.to_string().starts_with(&format!("byte {}: ", len - 4)),
            "{e}"
        );
    }
}
