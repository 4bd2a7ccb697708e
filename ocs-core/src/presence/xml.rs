//! A small, hardened XML front end over quick-xml: one pass builds a compact
//! element tree that borrows from the input, with limits on size, depth and
//! element count, no DTDs and no entities beyond the five predefined ones.
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

use quick_xml::events::Event;

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
        self.attr_q(|k| {
            !k.starts_with("xmlns") && k.rsplit_once(':').map_or(k, |(_, l)| l) == local
        })
    }

    fn attr_q(&self, mut want: impl FnMut(&str) -> bool) -> Option<Cow<'a, str>> {
        let mut it = AttrIter {
            s: &self.tag[self.name_len..],
        };
        while let Some(Ok((k, raw))) = it.next() {
            if want(k) {
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
        if src.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::new(
                src,
                MAX_DOCUMENT_BYTES,
                DocumentErrorKind::TooLarge(MAX_DOCUMENT_BYTES),
            ));
        }
        let mut reader = quick_xml::Reader::from_str(src);
        {
            let c = reader.config_mut();
            c.check_end_names = true;
            c.expand_empty_elements = false;
            c.trim_text(false);
        }
        let err = |at: usize, kind| Err(DocumentError::new(src, at, kind));
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(16);
        // (node, last child)
        let mut stack: Vec<(u32, u32)> = Vec::with_capacity(16);
        let mut root_closed = false;
        loop {
            let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let ev = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = usize::try_from(reader.error_position()).unwrap_or(0);
                    return err(at, DocumentErrorKind::Syntax(e.to_string()));
                }
            };
            let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            match ev {
                Event::Start(_) | Event::Empty(_) => {
                    let empty = after >= 2 && src.as_bytes().get(after - 2) == Some(&b'/');
                    if root_closed {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("content after the root element".into()),
                        );
                    }
                    if nodes.len() >= MAX_ELEMENTS {
                        return err(before, DocumentErrorKind::TooManyElements(MAX_ELEMENTS));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return err(before, DocumentErrorKind::TooDeep(MAX_DEPTH));
                    }
                    let (tag, name_len) = tag_of(src, before, after, empty);
                    // Validate attributes once so accessors can't hit errors.
                    let it = AttrIter {
                        s: &tag[name_len..],
                    };
                    for a in it {
                        let problem = match a {
                            Ok((_, raw)) => attr_value(raw).err(),
                            Err(e) => Some(e),
                        };
                        if let Some(kind) = problem {
                            return err(before, kind);
                        }
                    }
                    let local_at = tag[..name_len].rfind(':').map_or(0, |i| i + 1);
                    let Ok(local_at) = u16::try_from(local_at) else {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("element name too long".into()),
                        );
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
                }
                Event::End(_) => {
                    let Some((id, _)) = stack.pop() else {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("unmatched end tag".into()),
                        );
                    };
                    nodes[id as usize].end = after;
                    if stack.is_empty() {
                        root_closed = true;
                    }
                }
                Event::Text(t) => {
                    let raw = t.into_inner();
                    if let Some(&(id, _)) = stack.last() {
                        append_text(&mut nodes[id as usize].text, normalize_eol(raw));
                    } else if !raw.trim().is_empty() {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("text outside the root element".into()),
                        );
                    }
                }
                Event::CData(c) => {
                    let Some(&(id, _)) = stack.last() else {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("CDATA outside the root element".into()),
                        );
                    };
                    let s: Cow<'a, str> = c.into_inner();
                    // CDATA is content even when it is only whitespace.
                    force_append(&mut nodes[id as usize].text, s);
                }
                Event::GeneralRef(r) => {
                    let ch = match resolve_ref(&r.into_inner()) {
                        Ok(c) => c,
                        Err(kind) => return err(before, kind),
                    };
                    let Some(&(id, _)) = stack.last() else {
                        return err(
                            before,
                            DocumentErrorKind::Syntax("reference outside the root element".into()),
                        );
                    };
                    let mut buf = [0u8; 4];
                    force_append(
                        &mut nodes[id as usize].text,
                        Cow::Owned(ch.encode_utf8(&mut buf).to_owned()),
                    );
                }
                Event::DocType(_) => return err(before, DocumentErrorKind::DocType),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
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
        self.children(id).find(|&c| self.node(c).local() == local)
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

/// The start tag's content (name + attributes, without `<`, `/` and `>`)
/// as a slice of the source, and the name length.
fn tag_of(src: &str, before: usize, after: usize, empty: bool) -> (&str, usize) {
    let lo = (before + 1).min(src.len());
    let hi = after
        .saturating_sub(if empty { 2 } else { 1 })
        .max(lo)
        .min(src.len());
    let tag = src.get(lo..hi).unwrap_or("");
    let name_len = tag
        .find(|c: char| c.is_ascii_whitespace() || c == '/')
        .unwrap_or(tag.len());
    (tag, name_len)
}

/// A minimal attribute scanner over a start tag's attribute text:
/// `name = "value"` or `name = 'value'` pairs separated by whitespace.
/// Faster than quick-xml's (no duplicate check, no allocation) and strict:
/// anything else is a syntax error.
struct AttrIter<'a> {
    s: &'a str,
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<(&'a str, &'a str), DocumentErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if s.is_empty() {
            self.s = s;
            return None;
        }
        let bad = |m: &str| Some(Err(DocumentErrorKind::Syntax(format!("attribute: {m}"))));
        let name_end = s
            .find(|c: char| c.is_ascii_whitespace() || c == '=')
            .unwrap_or(s.len());
        let name = &s[..name_end];
        if name.is_empty() || name.contains(['"', '\'', '<', '>', '&']) {
            self.s = "";
            return bad("expected a name");
        }
        let rest = s[name_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let Some(rest) = rest.strip_prefix('=') else {
            self.s = "";
            return bad(&format!("{name} has no value"));
        };
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            self.s = "";
            return bad(&format!("value of {name} is not quoted"));
        };
        let body = &rest[1..];
        let Some(end) = body.find(q) else {
            self.s = "";
            return bad(&format!("value of {name} is not closed"));
        };
        let value = &body[..end];
        self.s = &body[end + 1..];
        if !self.s.is_empty() && !self.s.starts_with(|c: char| c.is_ascii_whitespace()) {
            self.s = "";
            return bad(&format!("no space after {name}"));
        }
        Some(Ok((name, value)))
    }
}

/// Resolves references in a raw attribute value and normalizes whitespace
/// characters to spaces (XML 1.0 §3.3.3).
fn attr_value(raw: &str) -> Result<Cow<'_, str>, DocumentErrorKind> {
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
    fn line_columns() {
        assert_eq!(line_col("ab\ncä\nx", 6), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
