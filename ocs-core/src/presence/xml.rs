//! A small, hardened XML front end: one pass of a hand-written scanner
//! (memchr for the long runs, byte loops for names and attribute values)
//! builds a compact element tree that borrows from the input, with limits on
//! size, depth and element count, no DTDs and no entities beyond the five
//! predefined ones. It replaced quick-xml here because quick-xml re-checks
//! UTF-8 per event and its events then had to be re-scanned for attributes:
//! a 1000-contact batched NOTIFY went from 5.2 ms to 2.3 ms (issue 4).
//! Attributes are checked once while scanning (syntax, `<`, references), so
//! accessors only find delimiters; a flag per element says whether any
//! value needs resolving at all. Batches reuse the node buffer and one UTF-8
//! check of the whole body ([`decode_within`]).
//!
//! Every presence and custom-states parser goes through [`Doc::parse`], so
//! the hostile-input rules live in one place:
//! - `<!DOCTYPE` is refused (there is no way to declare an entity);
//! - `&name;` other than `lt gt amp apos quot` and character references is
//!   an error, in text and in attribute values;
//! - documents above [`MAX_DOCUMENT_BYTES`], nesting deeper than
//!   [`MAX_DEPTH`] and more than [`MAX_ELEMENTS`] elements are refused
//!   before any further work;
//! - input must be UTF-8 (a UTF-8 BOM is skipped) or UTF-16 with a BOM.

use std::borrow::Cow;

use super::error::{DocumentError, DocumentErrorKind};

/// Largest XML document accepted (4 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 200_000;

const NONE: u32 = u32::MAX;

/// Decodes document bytes to text: UTF-8 (BOM skipped) or UTF-16 LE/BE with
/// a BOM (custom-states files saved by Notepad as "Unicode").
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, DocumentError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::at_bytes(
            bytes,
            MAX_DOCUMENT_BYTES,
            DocumentErrorKind::TooLarge(MAX_DOCUMENT_BYTES),
        ));
    }
    let utf16 = |le: bool| -> Result<Cow<'_, str>, DocumentError> {
        let body = &bytes[2..];
        let units = body.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        let mut s = String::with_capacity(body.len() / 2);
        for (i, r) in char::decode_utf16(units).enumerate() {
            match r {
                Ok(c) => s.push(c),
                Err(_) => {
                    return Err(DocumentError::new(
                        &s,
                        s.len(),
                        DocumentErrorKind::InvalidEncoding(format!(
                            "unpaired UTF-16 surrogate at byte {}",
                            2 + 2 * i
                        )),
                    ));
                }
            }
        }
        if !body.len().is_multiple_of(2) {
            return Err(DocumentError::new(
                &s,
                s.len(),
                DocumentErrorKind::InvalidEncoding("odd number of bytes in UTF-16 text".into()),
            ));
        }
        Ok(Cow::Owned(s))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        _ => {
            let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(b) {
                Ok(s) => Ok(Cow::Borrowed(s)),
                Err(e) => Err(DocumentError::at_bytes(
                    b,
                    e.valid_up_to(),
                    DocumentErrorKind::InvalidEncoding("invalid UTF-8".into()),
                )),
            }
        }
    }
}

/// Decodes `part`, a slice of `outer`, reusing a UTF-8 check already done on
/// the whole of `outer` (`whole`): a part split at ASCII delimiters of valid
/// UTF-8 is valid UTF-8, so only its bounds need checking. Falls back to
/// [`decode`] when `whole` is `None` or `part` is not inside `outer`.
pub(crate) fn decode_within<'a>(
    whole: Option<&'a str>,
    outer: &'a [u8],
    part: &'a [u8],
) -> Result<Cow<'a, str>, DocumentError> {
    if let Some(whole) = whole
        && part.len() <= MAX_DOCUMENT_BYTES
    {
        let off = (part.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
        if off <= outer.len()
            && let Some(s) = whole.get(off..off.saturating_add(part.len()))
        {
            return Ok(Cow::Borrowed(s.strip_prefix('\u{FEFF}').unwrap_or(s)));
        }
    }
    decode(part)
}

/// One element.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    /// Start-tag content: the qualified name followed by the attributes.
    tag: &'a str,
    name_len: usize,
    /// Where the local name starts in `tag` (after `prefix:`).
    local_at: u16,
    /// Byte offset of `<` of the start tag.
    pub start: usize,
    /// Byte offset just past the end tag (or `/>`).
    pub end: usize,
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    /// No attribute value needs resolving or normalizing (checked while
    /// parsing), so values are returned as written.
    plain_attrs: bool,
    /// Character data directly inside this element (entities resolved).
    /// Whitespace-only runs before the first real character are dropped.
    pub text: Cow<'a, str>,
}

impl<'a> Node<'a> {
    /// The qualified name as written (`st:state`).
    pub fn qname(&self) -> &'a str {
        &self.tag[..self.name_len]
    }

    /// The name without its prefix.
    pub fn local(&self) -> &'a str {
        &self.tag[usize::from(self.local_at)..self.name_len]
    }

    /// The prefix of the name, if any.
    pub fn prefix(&self) -> Option<&'a str> {
        self.qname().split_once(':').map(|(p, _)| p)
    }

    /// An attribute by local name (prefix ignored; `xmlns` declarations are
    /// not attributes). Values are entity-resolved and normalized.
    pub fn attr(&self, local: &str) -> Option<Cow<'a, str>> {
        let lb = local.as_bytes();
        if lb.contains(&b':') {
            return None;
        }
        let n = lb.len();
        for (k, raw) in (ValidAttrs {
            s: &self.tag[self.name_len..],
        }) {
            // Lengths first: `local` or `prefix:local`.
            let kb = k.as_bytes();
            let hit = match kb.len().checked_sub(n) {
                Some(0) => eq_bytes(kb, lb),
                Some(p) => kb[p - 1] == b':' && eq_bytes(&kb[p..], lb),
                None => false,
            };
            if hit && !kb.starts_with(b"xmlns") {
                return if self.plain_attrs {
                    Some(Cow::Borrowed(raw))
                } else {
                    attr_value(raw).ok()
                };
            }
        }
        None
    }

    /// Every attribute except `xmlns` declarations, as (local name,
    /// value), values entity-resolved and normalized.
    pub fn attrs(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        // The tag was checked when the document was parsed: only the
        // delimiters need finding.
        ValidAttrs {
            s: &self.tag[self.name_len..],
        }
        .filter(|(k, _)| !k.starts_with("xmlns"))
        .filter_map(|(k, raw)| {
            let local = k.rsplit_once(':').map_or(k, |(_, l)| l);
            Some((local, attr_value(raw).ok()?))
        })
    }

    fn attr_q(&self, mut want: impl FnMut(&str) -> bool) -> Option<Cow<'a, str>> {
        let it = ValidAttrs {
            s: &self.tag[self.name_len..],
        };
        for (k, raw) in it {
            if want(k) {
                if self.plain_attrs {
                    return Some(Cow::Borrowed(raw));
                }
                return attr_value(raw).ok();
            }
        }
        None
    }

    /// The trimmed text.
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }
}

/// A parsed document: the source and its elements in document order
/// (index 0 is the root).
#[derive(Debug)]
pub(crate) struct Doc<'a> {
    /// The decoded source text (offsets in nodes index into it).
    pub src: &'a str,
    nodes: Vec<Node<'a>>,
}

/// Index of a node in a [`Doc`].
pub(crate) type NodeId = u32;

impl<'a> Doc<'a> {
    /// Parses `src` (already decoded) under the limits above.
    pub fn parse(src: &'a str) -> Result<Doc<'a>, DocumentError> {
        Doc::parse_reusing(src, Vec::new())
    }

    /// Gives back the node buffer (emptied) for [`Doc::parse_reusing`].
    pub fn into_buffer(self) -> Vec<Node<'a>> {
        let mut nodes = self.nodes;
        nodes.clear();
        nodes
    }

    /// [`Doc::parse`] into a node buffer from an earlier document (so a
    /// batch of documents allocates it once).
    pub fn parse_reusing(src: &'a str, mut nodes: Vec<Node<'a>>) -> Result<Doc<'a>, DocumentError> {
        nodes.clear();
        if src.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::new(
                src,
                MAX_DOCUMENT_BYTES,
                DocumentErrorKind::TooLarge(MAX_DOCUMENT_BYTES),
            ));
        }
        if nodes.capacity() == 0 {
            nodes.reserve(32);
        }
        let err = |at: usize, kind| Err(DocumentError::new(src, at, kind));
        let syntax = |at: usize, m: &str| err(at, DocumentErrorKind::Syntax(m.to_owned()));
        let b = src.as_bytes();
        let mut stack = Stack::default();
        let mut root_closed = false;
        let mut i = 0;
        // Every index below is at an ASCII delimiter (or the end), so all
        // `src` slices fall on char boundaries.
        while i < b.len() {
            // Fast path: text without references or carriage returns.
            // Markup usually follows markup directly: skip the search then.
            let stop = if b[i] == b'<' {
                i
            } else {
                memchr::memchr3(b'<', b'&', b'\r', &b[i..]).map_or(b.len(), |k| i + k)
            };
            let plain = stop == b.len() || b[stop] == b'<';
            let lt = if plain {
                if stop > i {
                    let seg = &src[i..stop];
                    match stack.last() {
                        Some(&(id, _)) => {
                            append_text(&mut nodes[id as usize].text, Cow::Borrowed(seg));
                        }
                        None => {
                            if !seg.trim().is_empty() {
                                return syntax(i, "text outside the root element");
                            }
                        }
                    }
                }
                i = stop;
                stop
            } else {
                memchr::memchr(b'<', &b[stop..]).map_or(b.len(), |k| stop + k)
            };
            if lt > i {
                let seg = &src[i..lt];
                match stack.last() {
                    Some(&(id, _)) => {
                        if let Err((at, kind)) = add_text(&mut nodes[id as usize].text, seg, i) {
                            return err(at, kind);
                        }
                    }
                    None => {
                        if !seg.trim().is_empty() {
                            return syntax(i, "text outside the root element");
                        }
                    }
                }
            }
            if lt >= b.len() {
                break;
            }
            i = lt;
            let rest = &b[i..];
            if rest.starts_with(b"</") {
                let Some(gt) = memchr::memchr(b'>', &rest[2..]).map(|k| i + 2 + k) else {
                    return syntax(i, "end tag is not closed");
                };
                let name = src[i + 2..gt].trim_end_matches(|c: char| c.is_ascii_whitespace());
                let Some((id, _)) = stack.pop() else {
                    return syntax(i, "unmatched end tag");
                };
                let open = nodes[id as usize].qname();
                if open != name {
                    return err(
                        i,
                        DocumentErrorKind::Syntax(format!(
                            "expected </{}>, found </{}>",
                            open,
                            truncate(name, 40)
                        )),
                    );
                }
                nodes[id as usize].end = gt + 1;
                if stack.is_empty() {
                    root_closed = true;
                }
                i = gt + 1;
            } else if rest.starts_with(b"<!--") {
                let Some(k) = memchr::memmem::find(&rest[4..], b"-->") else {
                    return syntax(i, "comment is not closed");
                };
                i += 4 + k + 3;
            } else if rest.starts_with(b"<![CDATA[") {
                let Some(k) = memchr::memmem::find(&rest[9..], b"]]>") else {
                    return syntax(i, "CDATA section is not closed");
                };
                let Some(&(id, _)) = stack.last() else {
                    return syntax(i, "CDATA outside the root element");
                };
                // CDATA is content even when it is only whitespace.
                force_append(
                    &mut nodes[id as usize].text,
                    Cow::Borrowed(&src[i + 9..i + 9 + k]),
                );
                i += 9 + k + 3;
            } else if rest.len() >= 9
                && rest[2..9].eq_ignore_ascii_case(b"DOCTYPE")
                && rest[1] == b'!'
            {
                return err(i, DocumentErrorKind::DocType);
            } else if rest.starts_with(b"<!") {
                return syntax(i, "unsupported markup declaration");
            } else if rest.starts_with(b"<?") {
                let Some(k) = memchr::memmem::find(&rest[2..], b"?>") else {
                    return syntax(i, "processing instruction is not closed");
                };
                i += 2 + k + 2;
            } else {
                let before = i;
                if root_closed {
                    return syntax(before, "content after the root element");
                }
                if nodes.len() >= MAX_ELEMENTS {
                    return err(before, DocumentErrorKind::TooManyElements(MAX_ELEMENTS));
                }
                if stack.len() >= MAX_DEPTH {
                    return err(before, DocumentErrorKind::TooDeep(MAX_DEPTH));
                }
                let StartTag {
                    end: tag_end,
                    empty,
                    plain: plain_attrs,
                    name_end,
                    local_at,
                } = match scan_start_tag(src, before + 1) {
                    Ok(x) => x,
                    Err(kind) => return err(before, kind),
                };
                let tag = &src[before + 1..tag_end];
                let name_len = name_end - (before + 1);
                if name_len == 0 {
                    return syntax(before, "element without a name");
                }
                let after = tag_end + if empty { 2 } else { 1 };
                let Ok(local_at) = u16::try_from(local_at - (before + 1)) else {
                    return syntax(before, "element name too long");
                };
                let id = nodes.len() as u32;
                let parent = stack.last().map_or(NONE, |s| s.0);
                nodes.push(Node {
                    tag,
                    name_len,
                    local_at,
                    start: before,
                    end: after,
                    parent,
                    first_child: NONE,
                    next_sibling: NONE,
                    plain_attrs,
                    text: Cow::Borrowed(""),
                });
                if let Some(top) = stack.last_mut() {
                    if top.1 == NONE {
                        nodes[top.0 as usize].first_child = id;
                    } else {
                        nodes[top.1 as usize].next_sibling = id;
                    }
                    top.1 = id;
                }
                if empty {
                    if stack.is_empty() {
                        root_closed = true;
                    }
                } else {
                    stack.push((id, NONE));
                }
                i = after;
            }
        }
        if let Some(&(id, _)) = stack.last() {
            return err(
                nodes[id as usize].start,
                DocumentErrorKind::Syntax(format!(
                    "<{}> is never closed",
                    nodes[id as usize].qname()
                )),
            );
        }
        if nodes.is_empty() {
            return err(0, DocumentErrorKind::NoRoot);
        }
        Ok(Doc { src, nodes })
    }

    /// The root element.
    pub fn root(&self) -> NodeId {
        0
    }

    /// A node by id.
    pub fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id as usize]
    }

    /// The children of `id`, in order.
    pub fn children(&self, id: NodeId) -> Children<'_, 'a> {
        Children {
            doc: self,
            next: self.nodes[id as usize].first_child,
        }
    }

    /// The first child of `id` with local name `local`.
    pub fn child(&self, id: NodeId, local: &str) -> Option<NodeId> {
        self.children(id)
            .find(|&c| eq_short(self.node(c).local(), local))
    }

    /// The trimmed text of the first child named `local`.
    pub fn child_text(&self, id: NodeId, local: &str) -> Option<&str> {
        self.child(id, local).map(|c| self.node(c).trimmed())
    }

    /// The parent of `id`.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.nodes[id as usize].parent;
        (p != NONE).then_some(p)
    }

    /// The source text of `id`, start tag through end tag.
    pub fn raw(&self, id: NodeId) -> &'a str {
        let n = &self.nodes[id as usize];
        self.src.get(n.start..n.end).unwrap_or("")
    }

    /// The namespace URI of `id`'s own name (resolved through the
    /// `xmlns`/`xmlns:p` declarations on it and its ancestors).
    pub fn namespace(&self, id: NodeId) -> Option<Cow<'a, str>> {
        let prefix = self.node(id).prefix();
        let is_decl = |k: &str| match prefix {
            Some(p) => k.strip_prefix("xmlns:") == Some(p),
            None => k == "xmlns",
        };
        let mut cur = Some(id);
        while let Some(c) = cur {
            if let Some(v) = self.node(c).attr_q(is_decl) {
                return Some(v);
            }
            cur = self.parent(c);
        }
        None
    }

    /// Byte offset of attribute `local` (prefix ignored) in `id`'s start
    /// tag, else of the start tag itself.
    pub fn attr_offset(&self, id: NodeId, local: &str) -> usize {
        let n = self.node(id);
        let tag = n.tag;
        let mut from = n.name_len;
        while let Some(i) = tag[from..].find(local) {
            let at = from + i;
            let before_ok = tag[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_whitespace() || c == ':');
            let after = tag[at + local.len()..].trim_start();
            if before_ok && after.starts_with('=') {
                // Back up over a prefix to the attribute's first character.
                let start = tag[..at]
                    .rfind(|c: char| c.is_ascii_whitespace())
                    .map_or(at, |w| w + 1);
                return n.start + 1 + start;
            }
            from = at + local.len();
        }
        n.start
    }

    /// An error positioned at `id`'s start tag.
    pub fn error_at(&self, id: NodeId, kind: DocumentErrorKind) -> DocumentError {
        DocumentError::new(self.src, self.node(id).start, kind)
    }
}

/// The open elements while parsing (node, last child): a fixed array, as
/// depth is limited to [`MAX_DEPTH`] anyway.
struct Stack {
    items: [(u32, u32); MAX_DEPTH],
    len: usize,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack {
            items: [(NONE, NONE); MAX_DEPTH],
            len: 0,
        }
    }
}

impl Stack {
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn last(&self) -> Option<&(u32, u32)> {
        self.len.checked_sub(1).and_then(|i| self.items.get(i))
    }
    fn last_mut(&mut self) -> Option<&mut (u32, u32)> {
        self.len.checked_sub(1).and_then(|i| self.items.get_mut(i))
    }
    /// Callers check `len() < MAX_DEPTH` first; a push beyond is dropped.
    fn push(&mut self, v: (u32, u32)) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }
    fn pop(&mut self) -> Option<(u32, u32)> {
        let i = self.len.checked_sub(1)?;
        self.len = i;
        self.items.get(i).copied()
    }
}

/// Iterator over a node's children.
pub(crate) struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;
    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let id = self.next;
        self.next = self.doc.nodes[id as usize].next_sibling;
        Some(id)
    }
}

/// What [`scan_start_tag`] found (all offsets into the source).
struct StartTag {
    /// Where the closing `>` or `/` is.
    end: usize,
    /// `/>`.
    empty: bool,
    /// No attribute value needs resolving or normalizing.
    plain: bool,
    /// Just past the element name.
    name_end: usize,
    /// Where the local name starts (after the last `:` of the name).
    local_at: usize,
}

/// Scans a start tag from just after its `<`: the name, then well-formed
/// `name="value"` attributes (no `<` in values, only predefined entities
/// and character references), up to `>` or `/>`.
fn scan_start_tag(src: &str, from: usize) -> Result<StartTag, DocumentErrorKind> {
    let b = src.as_bytes();
    let bad = |m: String| Err(DocumentErrorKind::Syntax(format!("attribute: {m}")));
    let mut j = from;
    let mut plain = true;
    let mut local_at = from;
    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'/' && b[j] != b'>' {
        match b[j] {
            b'<' | b'"' | b'\'' | b'&' | b'=' => {
                return Err(DocumentErrorKind::Syntax("invalid element name".into()));
            }
            b':' => local_at = j + 1,
            _ => {}
        }
        j += 1;
    }
    let name_end = j;
    loop {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        match b.get(j) {
            None => return Err(DocumentErrorKind::Syntax("start tag is not closed".into())),
            Some(b'>') => {
                return Ok(StartTag {
                    end: j,
                    empty: false,
                    plain,
                    name_end,
                    local_at,
                });
            }
            Some(b'/') => {
                return if b.get(j + 1) == Some(&b'>') {
                    Ok(StartTag {
                        end: j,
                        empty: true,
                        plain,
                        name_end,
                        local_at,
                    })
                } else {
                    Err(DocumentErrorKind::Syntax("expected '>' after '/'".into()))
                };
            }
            Some(_) => {}
        }
        let name_start = j;
        while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'=' | b'>' | b'/') {
            j += 1;
        }
        // Both ends are at ASCII delimiters (or the end).
        let name = src.get(name_start..j).unwrap_or("");
        if name.is_empty()
            || b[name_start..j]
                .iter()
                .any(|c| matches!(c, b'"' | b'\'' | b'<' | b'&'))
        {
            return bad("expected a name".into());
        }
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            return bad(format!("{name} has no value"));
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let q = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return bad(format!("value of {name} is not quoted")),
        };
        let vstart = j + 1;
        // One pass for the closing quote or anything needing a closer look.
        let (len, special) = match find_quote_or_special(&b[vstart..], q) {
            Some(k) if b[vstart + k] == q => (k, false),
            _ => {
                let Some(len) = find_byte(&b[vstart..], q) else {
                    return bad(format!("value of {name} is not closed"));
                };
                (len, true)
            }
        };
        let value = &b[vstart..vstart + len];
        if special
            && value
                .iter()
                .any(|c| matches!(c, b'<' | b'&' | b'\t' | b'\n' | b'\r'))
        {
            plain = false;
            // Validation only (slow path); the value lies between ASCII
            // quotes.
            attr_value(src.get(vstart..vstart + len).unwrap_or(""))?;
        }
        j = vstart + len + 1;
        match b.get(j) {
            Some(c) if c.is_ascii_whitespace() || matches!(c, b'>' | b'/') => {}
            None => {}
            Some(_) => return bad(format!("no space after {name}")),
        }
    }
}

/// The first `c` in `b`, eight bytes at a time (attribute values are short,
/// where a memchr call costs more than it saves).
fn find_byte(b: &[u8], c: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO * u64::from(c);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for ch in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(ch);
        let x = u64::from_le_bytes(w) ^ pat;
        let hit = x.wrapping_sub(LO) & !x & HI;
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == c)
        .map(|i| at + i)
}

/// The first byte of `b` that is `q`, `<`, `&` or below 0x0E (which covers
/// tab, line feed and carriage return), eight bytes at a time.
#[inline(always)]
fn find_quote_or_special(b: &[u8], q: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Each term flags its lowest matching byte exactly (false flags only
    // sit above a true one), so the lowest flag overall is exact.
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let (pq, plt, pamp) = (
        LO * u64::from(q),
        LO * u64::from(b'<'),
        LO * u64::from(b'&'),
    );
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for ch in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(ch);
        let x = u64::from_le_bytes(w);
        let hit =
            zero(x ^ pq) | zero(x ^ plt) | zero(x ^ pamp) | (x.wrapping_sub(LO * 0x0E) & !x & HI);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == q || x == b'<' || x == b'&' || x < 0x0E)
        .map(|i| at + i)
}

/// Equality of equal-length short byte strings without a library call.
#[inline]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Short-string equality without a library call.
#[inline]
fn eq_short(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// Adds a run of character data (`seg`, at byte `at`) to an element's
/// text: references resolved (only the predefined five and character
/// references), line ends normalized, leading whitespace-only runs
/// dropped.
fn add_text<'a>(
    text: &mut Cow<'a, str>,
    seg: &'a str,
    at: usize,
) -> Result<(), (usize, DocumentErrorKind)> {
    let mut rest = seg;
    let mut pos = at;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        if amp > 0 {
            append_text(text, normalize_eol(Cow::Borrowed(&rest[..amp])));
        }
        let after = &rest[amp + 1..];
        let Some(semi) = memchr::memchr(b';', after.as_bytes()) else {
            return Err((
                pos + amp,
                DocumentErrorKind::Syntax("'&' without ';'".into()),
            ));
        };
        let ch = resolve_ref(&after[..semi]).map_err(|k| (pos + amp, k))?;
        let mut buf = [0u8; 4];
        force_append(text, Cow::Owned(ch.encode_utf8(&mut buf).to_owned()));
        let used = amp + 1 + semi + 1;
        rest = &rest[used..];
        pos += used;
    }
    if !rest.is_empty() {
        append_text(text, normalize_eol(Cow::Borrowed(rest)));
    }
    Ok(())
}

/// Attributes of a start tag [`Doc::parse`] has already checked: only
/// finds the delimiters (a malformed tag just ends the iteration).
struct ValidAttrs<'a> {
    s: &'a str,
}

impl<'a> Iterator for ValidAttrs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let full = self.s;
        self.s = "";
        let b = full.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        let eq = name_start + find_byte(&b[name_start..], b'=')?;
        let mut name_end = eq;
        while name_end > name_start && b[name_end - 1].is_ascii_whitespace() {
            name_end -= 1;
        }
        let mut q = eq + 1;
        while q < b.len() && b[q].is_ascii_whitespace() {
            q += 1;
        }
        let quote = *b.get(q)?;
        let vstart = q + 1;
        let vend = vstart + find_byte(b.get(vstart..)?, quote)?;
        self.s = full.get(vend + 1..)?;
        Some((full.get(name_start..name_end)?, full.get(vstart..vend)?))
    }
}

/// Resolves references in a raw attribute value and normalizes whitespace
/// characters to spaces (XML 1.0 §3.3.3).
fn attr_value(raw: &str) -> Result<Cow<'_, str>, DocumentErrorKind> {
    if !raw
        .bytes()
        .any(|c| matches!(c, b'<' | b'&' | b'\t' | b'\n' | b'\r'))
    {
        return Ok(Cow::Borrowed(raw));
    }
    if raw.contains('<') {
        return Err(DocumentErrorKind::Syntax(
            "'<' in an attribute value".into(),
        ));
    }
    if !raw.contains(['&', '\t', '\n', '\r']) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        if c != b'&' {
            // \r\n counts as one line end.
            out.push(' ');
            rest = if c == b'\r' && rest[i + 1..].starts_with('\n') {
                &rest[i + 2..]
            } else {
                &rest[i + 1..]
            };
            continue;
        }
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';') else {
            return Err(DocumentErrorKind::Syntax(
                "'&' without ';' in an attribute".into(),
            ));
        };
        out.push(resolve_ref(&after[..semi])?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// One of the five predefined entities or a character reference.
fn resolve_ref(name: &str) -> Result<char, DocumentErrorKind> {
    let ch = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => {
            let num = if let Some(h) = name.strip_prefix("#x") {
                u32::from_str_radix(h, 16).ok()
            } else if let Some(d) = name.strip_prefix('#') {
                d.parse::<u32>().ok()
            } else {
                return Err(DocumentErrorKind::UndefinedEntity(format!(
                    "&{};",
                    truncate(name, 40)
                )));
            };
            num.and_then(char::from_u32).filter(|c| *c != '\0')
        }
    };
    ch.ok_or_else(|| {
        DocumentErrorKind::Syntax(format!(
            "invalid character reference &{};",
            truncate(name, 40)
        ))
    })
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// XML 1.0 end-of-line handling: `\r\n` and lone `\r` become `\n`.
fn normalize_eol(s: Cow<'_, str>) -> Cow<'_, str> {
    if !s.contains('\r') {
        return s;
    }
    Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
}

fn append_text<'a>(text: &mut Cow<'a, str>, seg: Cow<'a, str>) {
    if text.is_empty() {
        if !seg.trim().is_empty() {
            *text = seg;
        }
    } else {
        text.to_mut().push_str(&seg);
    }
}

fn force_append<'a>(text: &mut Cow<'a, str>, seg: Cow<'a, str>) {
    if text.is_empty() {
        *text = seg;
    } else {
        text.to_mut().push_str(&seg);
    }
}

/// (line, column), both 1-based, of byte `offset` in `src`; columns count
/// characters.
pub(crate) fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let mut off = offset.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src.as_bytes()[..off];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let col = src[line_start..off].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Escapes text for element content or a double-quoted attribute value.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_and_text() {
        let d = Doc::parse("<a x=\"1 &amp; 2\"><b>hi &lt;there&gt;</b>\n<c/><b>two</b></a>")
            .expect("parses");
        let r = d.root();
        assert_eq!(d.node(r).local(), "a");
        assert_eq!(d.node(r).attr("x").as_deref(), Some("1 & 2"));
        let kids: Vec<_> = d.children(r).map(|c| d.node(c).local()).collect();
        assert_eq!(kids, ["b", "c", "b"]);
        assert_eq!(d.child_text(r, "b"), Some("hi <there>"));
        assert_eq!(d.raw(d.child(r, "c").expect("c")), "<c/>");
        assert_eq!(d.node(r).text, "");
    }

    #[test]
    fn refusals() {
        let e = Doc::parse("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>").expect_err("doctype");
        assert_eq!(e.kind, DocumentErrorKind::DocType);
        let e = Doc::parse("<a>&x;</a>").expect_err("entity");
        assert!(
            matches!(e.kind, DocumentErrorKind::UndefinedEntity(_)),
            "{e}"
        );
        let e = Doc::parse("<a b=\"&x;\"/>").expect_err("entity in attribute");
        assert!(
            matches!(e.kind, DocumentErrorKind::UndefinedEntity(_)),
            "{e}"
        );
        let deep = "<a>".repeat(10_000);
        let e = Doc::parse(&deep).expect_err("deep");
        assert_eq!(e.kind, DocumentErrorKind::TooDeep(MAX_DEPTH));
        assert_eq!((e.line, e.column), (1, 3 * 64 + 1));
        let e = Doc::parse("<a>\n  <b></c></a>").expect_err("mismatch");
        assert!(matches!(e.kind, DocumentErrorKind::Syntax(_)));
        assert_eq!(e.line, 2);
        assert!(Doc::parse("").is_err());
        assert!(Doc::parse("<a/><b/>").is_err());
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xEF\xBB\xBF<a/>").expect("bom"), "<a/>");
        let u16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<a>ä</a>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&u16le).expect("utf16"), "<a>ä</a>");
        let e = decode(b"<a>\n\xff</a>").expect_err("bad utf8");
        assert_eq!((e.line, e.column), (2, 1));
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(
            decode(&big).expect_err("big").kind,
            DocumentErrorKind::TooLarge(_)
        ));
    }

    #[test]
    fn scanner_edges() {
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            assert_eq!(find_byte(&v, b'"'), None);
            v.push(b'"');
            v.push(b'"');
            assert_eq!(find_byte(&v, b'"'), Some(n));
        }
        for n in 0..24 {
            for c in [
                b'"', b'\'', b'<', b'&', b'\t', b'\n', b'\r', 0, 0x0D, 0x0E, 0x80, 0xFF,
            ] {
                let mut v = vec![b'a'; n];
                v.push(c);
                v.extend_from_slice(b"x\"<&");
                let naive = v
                    .iter()
                    .position(|&x| x == b'"' || x == b'<' || x == b'&' || x < 0x0E);
                assert_eq!(find_quote_or_special(&v, b'"'), naive, "{n} {c}");
            }
        }
        let d = Doc::parse(
            "<?xml version=\"1.0\"?><!-- c --><a\r\n x = 'a>b' y=\"&#x41;&lt;\"><![CDATA[<raw> ]]>t\r\nu &amp; v<b/></a>\n",
        )
        .expect("parses");
        let r = d.node(d.root());
        assert_eq!(r.attr("x").as_deref(), Some("a>b"));
        assert_eq!(r.attr("y").as_deref(), Some("A<"));
        assert_eq!(r.text, "<raw> t\nu & v");
        for bad in [
            "<a b=\"1\"c=\"2\"/>",
            "<a b/>",
            "<a b=1/>",
            "<a b=\"<\"/>",
            "<a>&bogus;</a>",
            "<a>& b</a>",
            "<a><!-- open</a>",
            "<a><![CDATA[x</a>",
            "<a><!ENTITY x \"y\"></a>",
            "<a",
            "<a/ >",
            "<>",
            "<a></a>x",
            "<a></a><b/>",
            "</a>",
        ] {
            assert!(Doc::parse(bad).is_err(), "{bad:?}");
        }
        let e = Doc::parse("<!doctype a><a/>").expect_err("doctype");
        assert_eq!(e.kind, DocumentErrorKind::DocType);
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_col("ab\ncä\nx", 6), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
