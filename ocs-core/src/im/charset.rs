//! The few character sets IM bodies arrive in.

/// Windows-1252 code points for bytes 0x80..=0x9F (the rest of the code
/// page equals ISO-8859-1). Undefined bytes map to U+FFFD.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{FFFD}', '\u{017D}', '\u{FFFD}',
    '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}',
];

/// One Windows-1252 byte as a char.
pub(crate) fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// A character set we can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    Utf8,
    Latin1,
    Windows1252,
}

impl Charset {
    /// Looks up a charset label (case-insensitive, quotes removed by the
    /// caller). `None` for labels we do not support.
    pub(crate) fn from_label(label: &str) -> Option<Charset> {
        let l = label.trim().to_ascii_lowercase();
        match l.as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Some(Charset::Utf8),
            "iso-8859-1" | "iso8859-1" | "latin1" | "l1" => Some(Charset::Latin1),
            "windows-1252" | "cp1252" => Some(Charset::Windows1252),
            _ => None,
        }
    }

    /// Decodes `bytes`. Invalid UTF-8 sequences become U+FFFD rather than
    /// failing: a message with one bad byte is still worth showing.
    pub(crate) fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
            Charset::Windows1252 => bytes.iter().map(|&b| cp1252(b)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_decoding() {
        assert_eq!(Charset::from_label("UTF-8"), Some(Charset::Utf8));
        assert_eq!(
            Charset::from_label("Windows-1252"),
            Some(Charset::Windows1252)
        );
        assert_eq!(Charset::from_label("koi8-r"), None);
        assert_eq!(
            Charset::Windows1252.decode(&[0x80, b'a', 0xE9]),
            "\u{20AC}a\u{e9}"
        );
        assert_eq!(Charset::Latin1.decode(&[0x80]), "\u{80}");
        assert_eq!(Charset::Utf8.decode(&[0xFF, b'x']), "\u{FFFD}x");
    }
}
