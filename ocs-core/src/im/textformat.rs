//! The `ms-text-format` header: the first message of an OCS IM session,
//! carried in the INVITE (PROTOCOL.md e.1).
//!
//! ```text
//! ms-text-format: text/plain; charset=UTF-8[;msgr=<font info>];ms-body=<base64 of the message>
//! ```
//!
//! `msgr=` is the base64 of UTF-16LE
//! `X-MMS-IM-Format: FN=…; EF=…; CO=…; CS=0; PF=…\r\n\r\n` with the `=`
//! padding stripped (SIPE `sipmsg_get_msgr_string`). It is optional and only
//! describes the font; [`MsTextFormat::parse`] drops a `msgr=` it cannot read
//! instead of refusing the message.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT};
use thiserror::Error;

use super::MAX_IM_BODY_BYTES;
use super::body::{BodyError, ImContent, parse_body};
use super::charset::Charset;

/// Why an `ms-text-format` value could not be read. The first message is
/// lost; the session layer may still accept the session and show an error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TextFormatError {
    /// The value is empty: no content type.
    #[error("ms-text-format has no content type")]
    MissingContentType,
    /// The content type is not `type/subtype`.
    #[error("ms-text-format content type is not type/subtype (byte {offset})")]
    BadContentType {
        /// Byte offset into the header value.
        offset: usize,
    },
    /// A parameter is not `name=value`.
    #[error("malformed ms-text-format parameter at byte {offset}")]
    BadParameter {
        /// Byte offset into the header value.
        offset: usize,
    },
    /// There is no `ms-body=` parameter.
    #[error("ms-text-format has no ms-body parameter")]
    MissingBody,
    /// `ms-body=` is not valid base64.
    #[error("ms-body is not valid base64 (byte {offset})")]
    BadBase64 {
        /// Byte offset of the value into the header value.
        offset: usize,
    },
    /// The charset is not one we decode (UTF-8, US-ASCII, ISO-8859-1,
    /// Windows-1252).
    #[error("unsupported charset {0:?}")]
    UnknownCharset(String),
    /// The decoded body is larger than [`MAX_IM_BODY_BYTES`].
    #[error("ms-body larger than {MAX_IM_BODY_BYTES} bytes")]
    TooLarge,
}

/// The font information of an IM (`X-MMS-IM-Format`). Values are kept as
/// they appear on the wire; the font name is percent-encoded
/// (`MS%20Shell%20Dlg`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsgrFormat {
    /// `FN`: font name, percent-encoded.
    pub font: String,
    /// `EF`: effects (`B`, `I`, `U`, `S` letters), often empty.
    pub effects: String,
    /// `CO`: colour as a decimal BGR number.
    pub color: String,
    /// `CS`: character set (`0`).
    pub charset: String,
    /// `PF`: pitch and family.
    pub pitch_family: String,
}

impl MsgrFormat {
    /// A format for a font name (percent-encoded here) with no effects,
    /// black, `CS=0` and `PF=0`.
    pub fn new(font_name: &str) -> MsgrFormat {
        let mut font = String::new();
        for b in font_name.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                font.push(char::from(b));
            } else {
                font.push_str(&format!("%{b:02X}"));
            }
        }
        MsgrFormat {
            font,
            effects: String::new(),
            color: "0".to_owned(),
            charset: "0".to_owned(),
            pitch_family: "0".to_owned(),
        }
    }

    /// The font name, percent-decoded.
    pub fn font_name(&self) -> Cow<'_, str> {
        crate::sip::percent_decode(&self.font)
    }

    /// `FN=…; EF=…; CO=…; CS=…; PF=…` (the `X-MMS-IM-Format` value).
    pub fn to_value(&self) -> String {
        format!(
            "FN={}; EF={}; CO={}; CS={}; PF={}",
            clean(&self.font),
            clean(&self.effects),
            clean(&self.color),
            clean(&self.charset),
            clean(&self.pitch_family)
        )
    }

    /// Reads an `X-MMS-IM-Format` value (with or without the header name).
    /// Unknown keys are ignored.
    pub fn from_value(value: &str) -> MsgrFormat {
        let v = value.trim();
        let v = match v.get(..16) {
            Some(p) if p.eq_ignore_ascii_case("X-MMS-IM-Format:") => &v[16..],
            _ => v,
        };
        let mut f = MsgrFormat::default();
        for pair in v.split(';') {
            let Some((k, val)) = pair.split_once('=') else {
                continue;
            };
            let val = val.trim().to_owned();
            match k.trim().to_ascii_uppercase().as_str() {
                "FN" => f.font = val,
                "EF" => f.effects = val,
                "CO" => f.color = val,
                "CS" => f.charset = val,
                "PF" => f.pitch_family = val,
                _ => {}
            }
        }
        f
    }

    /// The `msgr=` parameter value: base64 of UTF-16LE
    /// `X-MMS-IM-Format: <value>\r\n\r\n`, padding stripped.
    pub fn to_msgr(&self) -> String {
        let s = format!("X-MMS-IM-Format: {}\r\n\r\n", self.to_value());
        let utf16: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        STANDARD_NO_PAD.encode(utf16)
    }

    /// Reads a `msgr=` parameter value. `None` when it is not base64 of
    /// UTF-16LE text.
    pub fn from_msgr(msgr: &str) -> Option<MsgrFormat> {
        let bytes = STANDARD_PAD_INDIFFERENT.decode(msgr.trim()).ok()?;
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units).ok()?;
        Some(MsgrFormat::from_value(&text))
    }
}

/// Keeps a field from breaking the `K=V; ` list.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains([';', '\r', '\n']) {
        Cow::Owned(s.replace([';', '\r', '\n'], ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// A decoded `ms-text-format` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsTextFormat {
    /// The body's content type, e.g. `text/plain`.
    pub content_type: String,
    /// The `charset` parameter, if given (UTF-8 is assumed otherwise).
    pub charset: Option<String>,
    /// Font information, if given and readable.
    pub msgr: Option<MsgrFormat>,
    /// The decoded message bytes.
    pub body: Vec<u8>,
}

impl MsTextFormat {
    /// A UTF-8 message of `content_type` (`text/plain`, `text/html`, ...).
    pub fn new(content_type: &str, text: &str) -> MsTextFormat {
        MsTextFormat {
            content_type: content_type.to_owned(),
            charset: Some("UTF-8".to_owned()),
            msgr: None,
            body: text.as_bytes().to_vec(),
        }
    }

    /// Adds font information.
    pub fn with_msgr(mut self, msgr: MsgrFormat) -> MsTextFormat {
        self.msgr = Some(msgr);
        self
    }

    /// The header value, as SIPE prints it:
    /// `text/plain; charset=UTF-8;msgr=…;ms-body=SGk=`.
    pub fn encode(&self) -> String {
        // Only the essence: parameters would end up before ms-body and
        // could smuggle in a second one.
        let essence = self.content_type.split(';').next().unwrap_or("");
        let ct: String = essence
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, ';' | ','))
            .collect();
        let mut out = ct;
        if let Some(cs) = &self.charset {
            let cs: String = cs
                .split(';')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
                .collect();
            out.push_str("; charset=");
            out.push_str(&cs);
        }
        if let Some(m) = &self.msgr {
            out.push_str(";msgr=");
            out.push_str(&m.to_msgr());
        }
        out.push_str(";ms-body=");
        out.push_str(&STANDARD.encode(&self.body));
        out
    }

    /// Decodes a header value. Needs a content type and `ms-body=`; the
    /// charset must be one we decode; an unreadable `msgr=` is dropped.
    pub fn parse(value: &str) -> Result<MsTextFormat, TextFormatError> {
        let mut segments = segments(value);
        let (ct_at, ct) = segments.next().unwrap_or((0, ""));
        let ct_trimmed = ct.trim();
        if ct_trimmed.is_empty() {
            return Err(TextFormatError::MissingContentType);
        }
        let ct_at = ct_at + (ct.len() - ct.trim_start().len());
        let is_token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        match ct_trimmed.split_once('/') {
            Some((t, s)) if is_token(t) && is_token(s) => {}
            _ => return Err(TextFormatError::BadContentType { offset: ct_at }),
        }
        let mut charset = None;
        let mut msgr = None;
        let mut body = None;
        for (at, seg) in segments {
            if seg.trim().is_empty() {
                continue;
            }
            let Some((name, raw_val)) = seg.split_once('=') else {
                return Err(TextFormatError::BadParameter { offset: at });
            };
            let name = name.trim();
            let val = raw_val.trim();
            let val_at =
                at + (seg.len() - raw_val.len()) + (raw_val.len() - raw_val.trim_start().len());
            let val = val
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(val);
            if name.eq_ignore_ascii_case("charset") {
                charset.get_or_insert(val);
            } else if name.eq_ignore_ascii_case("msgr") {
                msgr.get_or_insert(val);
            } else if name.eq_ignore_ascii_case("ms-body") {
                body.get_or_insert((val_at, val));
            }
        }
        let Some((body_at, b64)) = body else {
            return Err(TextFormatError::MissingBody);
        };
        if b64.len() / 4 * 3 > MAX_IM_BODY_BYTES + 3 {
            return Err(TextFormatError::TooLarge);
        }
        let body = STANDARD_PAD_INDIFFERENT
            .decode(b64)
            .map_err(|_| TextFormatError::BadBase64 { offset: body_at })?;
        if body.len() > MAX_IM_BODY_BYTES {
            return Err(TextFormatError::TooLarge);
        }
        if let Some(cs) = charset
            && Charset::from_label(cs).is_none()
        {
            return Err(TextFormatError::UnknownCharset(cs.to_owned()));
        }
        Ok(MsTextFormat {
            content_type: ct_trimmed.to_owned(),
            charset: charset.map(str::to_owned),
            msgr: msgr.and_then(MsgrFormat::from_msgr),
            body,
        })
    }

    /// The message text, decoded with its charset (invalid UTF-8 becomes
    /// U+FFFD). For `text/plain` this is the message; use
    /// [`MsTextFormat::content`] to reduce HTML or RTF to plain text.
    pub fn text(&self) -> Result<String, TextFormatError> {
        let cs = match &self.charset {
            Some(c) => {
                Charset::from_label(c).ok_or_else(|| TextFormatError::UnknownCharset(c.clone()))?
            }
            None => Charset::Utf8,
        };
        Ok(cs.decode(&self.body))
    }

    /// The message as IM content (HTML and RTF reduced to plain text), as
    /// if it had arrived in a MESSAGE with this content type and charset.
    pub fn content(&self) -> Result<ImContent, BodyError> {
        let ct = match &self.charset {
            Some(cs) => format!("{}; charset=\"{}\"", self.content_type, cs.replace('"', "")),
            None => self.content_type.clone(),
        };
        parse_body(&ct, &self.body)
    }
}

/// `;`-separated segments with their byte offsets.
fn segments(value: &str) -> impl Iterator<Item = (usize, &str)> {
    value.split(';').scan(0usize, |at, seg| {
        let start = *at;
        *at += seg.len() + 1;
        Some((start, seg))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn t21_decodes_to_hi() {
        let f = MsTextFormat::parse("text/plain; charset=UTF-8;ms-body=SGk=").expect("T21");
        assert_eq!(f.content_type, "text/plain");
        assert_eq!(f.charset.as_deref(), Some("UTF-8"));
        assert_eq!(f.msgr, None);
        assert_eq!(f.text().expect("utf-8"), "Hi");
        assert_eq!(f.content().expect("plain").plain_text, "Hi");
    }

    #[test]
    fn t21_encodes_byte_for_byte() {
        assert_eq!(
            MsTextFormat::new("text/plain", "Hi").encode(),
            "text/plain; charset=UTF-8;ms-body=SGk="
        );
    }

    #[test]
    fn msgr_matches_sipe() {
        let m = MsgrFormat::from_value("FN=MS%20Shell%20Dlg; EF=; CO=0; CS=0; PF=0");
        assert_eq!(m.font_name(), "MS Shell Dlg");
        let enc = m.to_msgr();
        assert!(!enc.ends_with('='));
        // base64 of UTF-16LE "X-MMS-IM-Format: ..." starts with "WAAtAE0ATQBTAC0A".
        assert!(enc.starts_with("WAAtAE0ATQBTAC0ASQBNAC0ARgBvAHIAbQBhAHQAOgAgAEYATgA9AE0AUwAlADIAMABTAGgAZQBsAGwAJQAyADAARABsAGcAOwAgAEUARgA9ADsAIABDAE8APQAwADsAIABDAFMAPQAwADsAIABQAEYAPQAwAA0ACgANAAoA"));
        assert_eq!(MsgrFormat::from_msgr(&enc), Some(m.clone()));
        let f = MsTextFormat::new("text/html", "<b>x</b>").with_msgr(m.clone());
        let v = f.encode();
        assert!(v.starts_with("text/html; charset=UTF-8;msgr=WAAtAE0A"));
        let back = MsTextFormat::parse(&v).expect("parses");
        assert_eq!(back, f);
        assert_eq!(back.content().expect("html").plain_text, "x");
        assert_eq!(MsgrFormat::new("Segoe UI").font, "Segoe%20UI");
    }

    #[test]
    fn tolerant_forms() {
        // No charset, quoted values, other order, unpadded base64, spaces.
        let f = MsTextFormat::parse(" text/plain ; ms-body=\"SGk\" ;charset=utf-8; x=y")
            .expect("parses");
        assert_eq!(f.text().expect("text"), "Hi");
        let f = MsTextFormat::parse("text/plain;ms-body=SGk=").expect("parses");
        assert_eq!(f.charset, None);
        assert_eq!(f.text().expect("text"), "Hi");
        // An unreadable msgr is dropped, the message survives.
        let f = MsTextFormat::parse("text/plain;msgr=!!!;ms-body=SGk=").expect("parses");
        assert_eq!(f.msgr, None);
        let f = MsTextFormat::parse("text/plain;charset=windows-1252;ms-body=gA==").expect("cp");
        assert_eq!(f.text().expect("text"), "\u{20AC}");
        let f = MsTextFormat::parse("text/plain;ms-body=").expect("empty body");
        assert_eq!(f.text().expect("text"), "");
    }

    #[test]
    fn errors() {
        use TextFormatError as E;
        assert_eq!(MsTextFormat::parse(""), Err(E::MissingContentType));
        assert_eq!(
            MsTextFormat::parse(" ;ms-body=SGk="),
            Err(E::MissingContentType)
        );
        assert_eq!(
            MsTextFormat::parse("text; charset=UTF-8;ms-body=SGk="),
            Err(E::BadContentType { offset: 0 })
        );
        assert_eq!(
            MsTextFormat::parse("text/plain; charset=UTF-8"),
            Err(E::MissingBody)
        );
        assert_eq!(
            MsTextFormat::parse("text/plain; charset=UTF-8;ms-body"),
            Err(E::BadParameter { offset: 26 })
        );
        assert_eq!(
            MsTextFormat::parse("text/plain; charset=UTF-8;ms-body=S@k="),
            Err(E::BadBase64 { offset: 34 })
        );
        assert_eq!(
            MsTextFormat::parse("text/plain;  ms-body = S@k="),
            Err(E::BadBase64 { offset: 23 })
        );
        assert_eq!(
            MsTextFormat::parse("text/plain; charset=koi8-r;ms-body=SGk="),
            Err(E::UnknownCharset("koi8-r".into()))
        );
        let huge = format!(
            "text/plain;ms-body={}",
            STANDARD.encode(vec![b'a'; MAX_IM_BODY_BYTES + 1])
        );
        assert_eq!(MsTextFormat::parse(&huge), Err(E::TooLarge));
        let fits = format!(
            "text/plain;ms-body={}",
            STANDARD.encode(vec![b'a'; MAX_IM_BODY_BYTES])
        );
        assert!(MsTextFormat::parse(&fits).is_ok());
        assert!(E::MissingBody.to_string().contains("ms-body"));
    }

    #[test]
    fn encode_cannot_be_injected() {
        let f = MsTextFormat {
            content_type: "text/plain;ms-body=QQ==".into(),
            charset: Some("UTF-8;ms-body=QQ==".into()),
            msgr: None,
            body: b"Hi".to_vec(),
        };
        let back = MsTextFormat::parse(&f.encode()).expect("parses");
        assert_eq!(back.body, b"Hi");
    }

    proptest! {
        #[test]
        fn round_trip_any_text(text in any::<String>(), html in any::<bool>(),
                               font in proptest::option::of("[ -~]{0,20}")) {
            let ct = if html { "text/html" } else { "text/plain" };
            let mut f = MsTextFormat::new(ct, &text);
            if let Some(font) = &font {
                f = f.with_msgr(MsgrFormat::new(font));
            }
            let back = MsTextFormat::parse(&f.encode()).expect("encoded value parses");
            prop_assert_eq!(back.text().expect("utf-8"), text);
            prop_assert_eq!(&back.content_type, ct);
            prop_assert_eq!(back.msgr.as_ref().map(|m| m.font_name().into_owned()), font);
            prop_assert_eq!(back, f);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if let Ok(f) = MsTextFormat::parse(&s) {
                let _ = f.text();
                let _ = f.content();
                let again = MsTextFormat::parse(&f.encode()).expect("re-encoded parses");
                prop_assert_eq!(again.body, f.body);
            }
        }
    }
}
