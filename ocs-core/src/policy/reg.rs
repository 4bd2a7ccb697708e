//! Registry export (`.reg`) files: parse into ordered operations, print back.
//!
//! Accepted:
//! - header `Windows Registry Editor Version 5.00` or `REGEDIT4` (first
//!   non-blank line, compared case-insensitively);
//! - UTF-8 (with or without BOM) or UTF-16LE with a BOM;
//! - `;` comment lines (and `;` comments after a complete value);
//! - `[KEY]` and `[-KEY]` (delete the key and its subtree); roots
//!   `HKEY_LOCAL_MACHINE`/`HKLM`, `HKEY_CURRENT_USER`/`HKCU`,
//!   `HKEY_CLASSES_ROOT`/`HKCR`, `HKEY_USERS`/`HKU`,
//!   `HKEY_CURRENT_CONFIG`/`HKCC`, in any letter case (the seed writes
//!   `HKEY_CURRENT_User`);
//! - `"Name"=...` and `@=...` (the default value), `"Name"=-` (delete);
//! - data `"string"` (escapes `\\`, `\"`, and Wine's `\n`, `\r`; any other
//!   backslash is kept literally, as regedit does), `dword:XXXXXXXX`,
//!   `hex:..` (binary), `hex(n):..` with `\` line continuations: `hex(1)`
//!   string, `hex(2)` expand_sz, `hex(3)` binary, `hex(4)` dword, `hex(7)`
//!   multi_sz, `hex(b)` qword; other kinds (e.g. `hex(0)`) are kept raw.
//!   In version 5.00 files string data is UTF-16LE; in `REGEDIT4` files it
//!   is one byte per character (read as Latin-1).
//!
//! Values that follow a `[-KEY]` line belong to no key; regedit ignores
//! them and so does this parser.

use std::fmt::{self, Write as _};

use super::{SyntaxError, SyntaxErrorKind, decode_text, saturate};

/// Which header the file had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegVersion {
    /// `REGEDIT4` (Windows 9x/NT4 style; single-byte string data).
    Regedit4,
    /// `Windows Registry Editor Version 5.00` (UTF-16 string data).
    V5,
}

/// A registry root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hive {
    /// `HKEY_LOCAL_MACHINE` (HKLM).
    LocalMachine,
    /// `HKEY_CURRENT_USER` (HKCU).
    CurrentUser,
    /// `HKEY_CLASSES_ROOT` (HKCR).
    ClassesRoot,
    /// `HKEY_USERS` (HKU).
    Users,
    /// `HKEY_CURRENT_CONFIG` (HKCC).
    CurrentConfig,
}

impl Hive {
    /// Reads a root name, long or short, in any letter case.
    pub fn from_name(name: &str) -> Option<Hive> {
        const NAMES: [(&str, &str, Hive); 5] = [
            ("HKEY_LOCAL_MACHINE", "HKLM", Hive::LocalMachine),
            ("HKEY_CURRENT_USER", "HKCU", Hive::CurrentUser),
            ("HKEY_CLASSES_ROOT", "HKCR", Hive::ClassesRoot),
            ("HKEY_USERS", "HKU", Hive::Users),
            ("HKEY_CURRENT_CONFIG", "HKCC", Hive::CurrentConfig),
        ];
        NAMES
            .iter()
            .find(|(long, short, _)| {
                name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
            })
            .map(|(_, _, h)| *h)
    }

    /// The long name regedit writes, e.g. `HKEY_CURRENT_USER`.
    pub fn long_name(self) -> &'static str {
        match self {
            Hive::LocalMachine => "HKEY_LOCAL_MACHINE",
            Hive::CurrentUser => "HKEY_CURRENT_USER",
            Hive::ClassesRoot => "HKEY_CLASSES_ROOT",
            Hive::Users => "HKEY_USERS",
            Hive::CurrentConfig => "HKEY_CURRENT_CONFIG",
        }
    }
}

/// A key path: root plus the path below it as written (without leading or
/// trailing backslashes). Compare with [`RegKey::is`] / [`RegKey::contains`],
/// which ignore letter case as the registry does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegKey {
    /// The root.
    pub hive: Hive,
    /// The path below the root, e.g. `Software\Policies\Microsoft\Communicator`.
    pub path: String,
}

impl RegKey {
    /// Parses `HKEY_...\path` (or `HKLM\path`, any letter case).
    pub fn parse(text: &str) -> Option<RegKey> {
        let (root, path) = text.split_once('\\').unwrap_or((text, ""));
        Some(RegKey {
            hive: Hive::from_name(root)?,
            path: path.trim_end_matches('\\').to_owned(),
        })
    }

    fn components(path: &str) -> impl Iterator<Item = &str> {
        path.split('\\').filter(|c| !c.is_empty())
    }

    /// True when this is the key `hive\path` (case-insensitive).
    pub fn is(&self, hive: Hive, path: &str) -> bool {
        self.hive == hive && {
            let mut a = Self::components(&self.path);
            let mut b = Self::components(path);
            loop {
                match (a.next(), b.next()) {
                    (None, None) => break true,
                    (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                    _ => break false,
                }
            }
        }
    }

    /// True when `hive\path` is this key or lies below it
    /// (case-insensitive), i.e. deleting this key deletes that one.
    pub fn contains(&self, hive: Hive, path: &str) -> bool {
        self.hive == hive && {
            let mut a = Self::components(&self.path);
            let mut b = Self::components(path);
            loop {
                match (a.next(), b.next()) {
                    (None, _) => break true,
                    (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                    _ => break false,
                }
            }
        }
    }
}

impl fmt::Display for RegKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hive.long_name())?;
        if !self.path.is_empty() {
            write!(f, "\\{}", self.path)?;
        }
        Ok(())
    }
}

/// Registry value data with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegValue {
    /// REG_SZ: `"text"` or `hex(1):`.
    Sz(String),
    /// REG_EXPAND_SZ: `hex(2):`. `%VAR%` references are not expanded.
    ExpandSz(String),
    /// REG_BINARY: `hex:` or `hex(3):`.
    Binary(Vec<u8>),
    /// REG_DWORD: `dword:` or `hex(4):`.
    Dword(u32),
    /// REG_MULTI_SZ: `hex(7):`.
    MultiSz(Vec<String>),
    /// REG_QWORD: `hex(b):`.
    Qword(u64),
    /// Any other `hex(n):` kind (REG_NONE, big-endian dword, ...), raw.
    Raw {
        /// The registry type number `n`.
        kind: u32,
        /// The bytes as written.
        bytes: Vec<u8>,
    },
}

impl RegValue {
    /// A value as the registry API returns it: the type number (`REG_SZ`
    /// = 1, `REG_EXPAND_SZ` = 2, `REG_BINARY` = 3, `REG_DWORD` = 4,
    /// `REG_MULTI_SZ` = 7, `REG_QWORD` = 11) and the data bytes
    /// (UTF-16LE strings, little-endian numbers). Numbers of the wrong
    /// size and other types stay [`RegValue::Raw`].
    pub fn from_raw(kind: u32, bytes: &[u8]) -> RegValue {
        let first = |b: &[u8]| utf16_strings(b).into_iter().next().unwrap_or_default();
        match (kind, bytes.len()) {
            (1, _) => RegValue::Sz(first(bytes)),
            (2, _) => RegValue::ExpandSz(first(bytes)),
            (3, _) => RegValue::Binary(bytes.to_vec()),
            (4, 4) => RegValue::Dword(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            (7, _) => RegValue::MultiSz(utf16_strings(bytes)),
            (11, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(bytes);
                RegValue::Qword(u64::from_le_bytes(b))
            }
            _ => RegValue::Raw {
                kind,
                bytes: bytes.to_vec(),
            },
        }
    }

    /// The registry type name, e.g. `REG_DWORD`.
    pub fn type_name(&self) -> &'static str {
        match self {
            RegValue::Sz(_) => "REG_SZ",
            RegValue::ExpandSz(_) => "REG_EXPAND_SZ",
            RegValue::Binary(_) => "REG_BINARY",
            RegValue::Dword(_) => "REG_DWORD",
            RegValue::MultiSz(_) => "REG_MULTI_SZ",
            RegValue::Qword(_) => "REG_QWORD",
            RegValue::Raw { .. } => "REG_(raw)",
        }
    }
}

impl fmt::Display for RegValue {
    /// A short human form: numbers in decimal, strings quoted, bytes in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegValue::Sz(s) | RegValue::ExpandSz(s) => write!(f, "{s:?}"),
            RegValue::Dword(n) => write!(f, "{n}"),
            RegValue::Qword(n) => write!(f, "{n}"),
            RegValue::MultiSz(v) => write!(f, "{v:?}"),
            RegValue::Binary(b) | RegValue::Raw { bytes: b, .. } => f.write_str(&hex_string(b)),
        }
    }
}

/// Lowercase hex without separators.
pub fn hex_string(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One operation of a `.reg` file, in file order. `line` is the 1-based
/// line where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOp {
    /// `[KEY]`: create the key (if absent); following values go here.
    CreateKey {
        /// The key.
        key: RegKey,
        /// Source line.
        line: u32,
    },
    /// `[-KEY]`: delete the key and everything below it.
    DeleteKey {
        /// The key.
        key: RegKey,
        /// Source line.
        line: u32,
    },
    /// `"Name"=data` / `@=data`.
    SetValue {
        /// The key it is written under.
        key: RegKey,
        /// The value name; `None` is the default value (`@`).
        name: Option<String>,
        /// The data.
        value: RegValue,
        /// Source line.
        line: u32,
    },
    /// `"Name"=-`.
    DeleteValue {
        /// The key.
        key: RegKey,
        /// The value name; `None` is the default value (`@`).
        name: Option<String>,
        /// Source line.
        line: u32,
    },
}

impl RegOp {
    /// The source line.
    pub fn line(&self) -> u32 {
        match self {
            RegOp::CreateKey { line, .. }
            | RegOp::DeleteKey { line, .. }
            | RegOp::SetValue { line, .. }
            | RegOp::DeleteValue { line, .. } => *line,
        }
    }

    /// The key it applies to.
    pub fn key(&self) -> &RegKey {
        match self {
            RegOp::CreateKey { key, .. }
            | RegOp::DeleteKey { key, .. }
            | RegOp::SetValue { key, .. }
            | RegOp::DeleteValue { key, .. } => key,
        }
    }
}

/// A parsed `.reg` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegFile {
    /// The header it had.
    pub version: RegVersion,
    /// Its operations, in file order.
    pub ops: Vec<RegOp>,
}

impl RegFile {
    /// The operations with their line numbers zeroed: two files that say
    /// the same thing compare equal however they are laid out.
    pub fn ops_without_lines(&self) -> Vec<RegOp> {
        self.ops
            .iter()
            .cloned()
            .map(|mut op| {
                match &mut op {
                    RegOp::CreateKey { line, .. }
                    | RegOp::DeleteKey { line, .. }
                    | RegOp::SetValue { line, .. }
                    | RegOp::DeleteValue { line, .. } => *line = 0,
                }
                op
            })
            .collect()
    }
}

/// Parses a `.reg` file from its bytes (UTF-8 or UTF-16LE with BOM).
pub fn parse(bytes: &[u8]) -> Result<RegFile, SyntaxError> {
    let text = decode_text(bytes)?;
    parse_str(&text)
}

/// Parses a `.reg` file from text (a leading BOM character is skipped).
pub fn parse_str(text: &str) -> Result<RegFile, SyntaxError> {
    if text.len() > super::MAX_INPUT_BYTES.saturating_mul(2) {
        return Err(SyntaxError::new(
            1,
            1,
            SyntaxErrorKind::TooLarge {
                limit: super::MAX_INPUT_BYTES,
            },
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // The final line break ends the last line; it does not start another.
    if lines.len() > 1 && lines.last() == Some(&"") {
        lines.pop();
    }
    Parser {
        lines: &lines,
        i: 0,
        version: RegVersion::V5,
    }
    .run()
}

struct Parser<'a> {
    lines: &'a [&'a str],
    /// Index of the current line.
    i: usize,
    /// From the header; decides how hex(2)/hex(7) bytes are read.
    version: RegVersion,
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl<'a> Parser<'a> {
    /// An error at byte offset `at` of line `i`.
    fn err(&self, i: usize, at: usize, kind: SyntaxErrorKind) -> SyntaxError {
        let line = self.lines.get(i).copied().unwrap_or("");
        let col = line.get(..at).map_or(1, |s| s.chars().count() + 1);
        SyntaxError::new(saturate(i + 1), saturate(col), kind)
    }

    fn expected(&self, i: usize, at: usize, what: &'static str) -> SyntaxError {
        self.err(i, at, SyntaxErrorKind::Expected { expected: what })
    }

    fn run(mut self) -> Result<RegFile, SyntaxError> {
        let version = self.header()?;
        self.version = version;
        let mut ops = Vec::new();
        // None after `[-KEY]` (values there are ignored) or before any key.
        let mut current: Option<RegKey> = None;
        let mut seen_key = false;
        while self.i < self.lines.len() {
            let i = self.i;
            let line = self.lines[i];
            let start = line.len() - line.trim_start_matches(is_ws).len();
            let t = &line[start..];
            let lno = saturate(i + 1);
            if t.is_empty() || t.starts_with(';') {
                self.i += 1;
                continue;
            }
            if t.starts_with('[') {
                let Some(close) = t.rfind(']') else {
                    return Err(self.expected(i, line.len(), "`]`"));
                };
                self.trailing(i, start + close + 1)?;
                let inner = &t[1..close];
                let (delete, name, name_at) = match inner.strip_prefix('-') {
                    Some(rest) => (true, rest, start + 2),
                    None => (false, inner, start + 1),
                };
                let root = name.split('\\').next().unwrap_or("");
                let key = RegKey::parse(name).ok_or_else(|| {
                    self.err(i, name_at, SyntaxErrorKind::UnknownRoot(root.to_owned()))
                })?;
                seen_key = true;
                if delete {
                    ops.push(RegOp::DeleteKey { key, line: lno });
                    current = None;
                } else {
                    ops.push(RegOp::CreateKey {
                        key: key.clone(),
                        line: lno,
                    });
                    current = Some(key);
                }
                self.i += 1;
                continue;
            }
            if t.starts_with('"') || t.starts_with('@') {
                if !seen_key {
                    return Err(self.err(i, start, SyntaxErrorKind::ValueOutsideKey));
                }
                let op = self.value_line(i, start)?;
                if let Some(key) = &current {
                    ops.push(match op {
                        (name, Some(value)) => RegOp::SetValue {
                            key: key.clone(),
                            name,
                            value,
                            line: lno,
                        },
                        (name, None) => RegOp::DeleteValue {
                            key: key.clone(),
                            name,
                            line: lno,
                        },
                    });
                }
                continue;
            }
            return Err(self.expected(i, start, "a [key] line, a \"value\"=, @= or a ; comment"));
        }
        Ok(RegFile { version, ops })
    }

    fn header(&mut self) -> Result<RegVersion, SyntaxError> {
        while self.i < self.lines.len() {
            let t = self.lines[self.i].trim();
            if t.is_empty() {
                self.i += 1;
                continue;
            }
            let v = if t.eq_ignore_ascii_case("REGEDIT4") {
                RegVersion::Regedit4
            } else if t.eq_ignore_ascii_case("Windows Registry Editor Version 5.00") {
                RegVersion::V5
            } else {
                break;
            };
            self.i += 1;
            return Ok(v);
        }
        let i = self.i.min(self.lines.len().saturating_sub(1));
        let line = self.lines.get(i).copied().unwrap_or("");
        let at = line.len() - line.trim_start().len();
        Err(self.err(i, at, SyntaxErrorKind::MissingHeader))
    }

    /// After a complete item at byte `at` of line `i`: only blanks or a
    /// `;` comment may follow.
    fn trailing(&self, i: usize, at: usize) -> Result<(), SyntaxError> {
        let line = self.lines[i];
        let rest = &line[at..];
        let skip = rest.len() - rest.trim_start_matches(is_ws).len();
        let rest = &rest[skip..];
        if rest.is_empty() || rest.starts_with(';') {
            Ok(())
        } else {
            Err(self.expected(i, at + skip, "end of line"))
        }
    }

    /// A quoted string starting at byte `at` (the `"`); returns the string
    /// and the byte offset after the closing quote.
    fn quoted(&self, i: usize, at: usize) -> Result<(String, usize), SyntaxError> {
        let line = self.lines[i];
        let mut out = String::new();
        let mut chars = line[at + 1..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => return Ok((out, at + 1 + k + 1)),
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        Err(self.err(i, at, SyntaxErrorKind::UnterminatedString))
    }

    /// A value line starting at byte `start` of line `i`; advances `self.i`
    /// past it (and its continuation lines). `None` data means `=-`.
    fn value_line(
        &mut self,
        i: usize,
        start: usize,
    ) -> Result<(Option<String>, Option<RegValue>), SyntaxError> {
        let line = self.lines[i];
        let (name, mut at) = if line[start..].starts_with('@') {
            (None, start + 1)
        } else {
            let (n, end) = self.quoted(i, start)?;
            (Some(n), end)
        };
        at = skip_ws(line, at);
        if !line[at..].starts_with('=') {
            return Err(self.expected(i, at, "`=`"));
        }
        at = skip_ws(line, at + 1);
        let rest = &line[at..];
        self.i = i + 1;
        if rest.starts_with('-') {
            self.trailing(i, at + 1)?;
            return Ok((name, None));
        }
        if rest.starts_with('"') {
            let (s, end) = self.quoted(i, at)?;
            self.trailing(i, end)?;
            return Ok((name, Some(RegValue::Sz(s))));
        }
        if starts_with_ci(rest, "dword:") {
            let d = at + 6;
            let digits = line[d..].bytes().take_while(u8::is_ascii_hexdigit).count();
            if digits == 0 || digits > 8 {
                return Err(self.expected(i, d, "1 to 8 hex digits after dword:"));
            }
            let n = u32::from_str_radix(&line[d..d + digits], 16)
                .map_err(|_| self.expected(i, d, "hex digits"))?;
            self.trailing(i, d + digits)?;
            return Ok((name, Some(RegValue::Dword(n))));
        }
        if starts_with_ci(rest, "hex") {
            let mut p = at + 3;
            let mut kind = 3u32;
            if line[p..].starts_with('(') {
                let d = p + 1;
                let digits = line[d..].bytes().take_while(u8::is_ascii_hexdigit).count();
                if digits == 0 || digits > 8 || !line[d + digits..].starts_with(')') {
                    return Err(self.expected(i, d, "hex(N) with a hex type number"));
                }
                kind = u32::from_str_radix(&line[d..d + digits], 16)
                    .map_err(|_| self.expected(i, d, "hex digits"))?;
                p = d + digits + 1;
            }
            if !line[p..].starts_with(':') {
                return Err(self.expected(i, p, "`:` after hex"));
            }
            let bytes = self.hex_bytes(i, p + 1)?;
            let v = self.typed(kind, bytes, i, at)?;
            return Ok((name, Some(v)));
        }
        Err(self.expected(i, at, "a \"string\", dword:, hex:, hex(N): or -"))
    }

    /// Comma-separated hex bytes from byte `at` of line `i`, following `\`
    /// continuations. Leaves `self.i` after the last line used.
    fn hex_bytes(&mut self, mut i: usize, mut at: usize) -> Result<Vec<u8>, SyntaxError> {
        let mut out = Vec::new();
        let mut want_byte = true;
        loop {
            let line = self.lines[i];
            at = skip_ws(line, at);
            let rest = &line[at..];
            match rest.chars().next() {
                None | Some(';') => {
                    if want_byte && !out.is_empty() {
                        return Err(self.expected(i, at, "a hex byte after `,`"));
                    }
                    self.i = i + 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.trailing(i, at + 1)?;
                    i += 1;
                    if i >= self.lines.len() {
                        return Err(self.err(i - 1, at, SyntaxErrorKind::ContinuationAtEof));
                    }
                    at = 0;
                }
                Some(',') if !want_byte => {
                    want_byte = true;
                    at += 1;
                }
                Some(c) if want_byte && c.is_ascii_hexdigit() => {
                    let n = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
                    if n > 2 {
                        return Err(self.expected(i, at, "two hex digits per byte"));
                    }
                    let b = u8::from_str_radix(&rest[..n], 16)
                        .map_err(|_| self.expected(i, at, "a hex byte"))?;
                    out.push(b);
                    want_byte = false;
                    at += n;
                }
                Some(_) => {
                    return Err(if want_byte {
                        self.expected(i, at, "a hex byte")
                    } else {
                        self.expected(i, at, "`,`, `\\` or end of line")
                    });
                }
            }
        }
    }

    /// Interprets `hex(kind)` bytes. Errors point at the data's start.
    fn typed(&self, kind: u32, b: Vec<u8>, i: usize, at: usize) -> Result<RegValue, SyntaxError> {
        let wide = self.version == RegVersion::V5;
        let len_err = |what, needed| {
            self.err(
                i,
                at,
                SyntaxErrorKind::BadLength {
                    kind: what,
                    needed,
                    found: b.len(),
                },
            )
        };
        Ok(match kind {
            1 | 2 | 7 => {
                let units = if wide {
                    if !b.len().is_multiple_of(2) {
                        return Err(len_err("UTF-16 string", 2));
                    }
                    b.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect::<Vec<u16>>()
                } else {
                    b.iter().map(|&x| u16::from(x)).collect()
                };
                let bad = || self.err(i, at, SyntaxErrorKind::BadUtf16);
                if kind == 7 {
                    RegValue::MultiSz(multi_from_units(&units).ok_or_else(bad)?)
                } else {
                    let s = units.strip_suffix(&[0]).unwrap_or(&units);
                    let s = String::from_utf16(s).map_err(|_| bad())?;
                    if kind == 1 {
                        RegValue::Sz(s)
                    } else {
                        RegValue::ExpandSz(s)
                    }
                }
            }
            3 => RegValue::Binary(b),
            4 => match <[u8; 4]>::try_from(b.as_slice()) {
                Ok(a) => RegValue::Dword(u32::from_le_bytes(a)),
                Err(_) => return Err(len_err("dword", 4)),
            },
            0xb => match <[u8; 8]>::try_from(b.as_slice()) {
                Ok(a) => RegValue::Qword(u64::from_le_bytes(a)),
                Err(_) => return Err(len_err("qword", 8)),
            },
            kind => RegValue::Raw { kind, bytes: b },
        })
    }
}

fn skip_ws(line: &str, at: usize) -> usize {
    let rest = &line[at..];
    at + (rest.len() - rest.trim_start_matches(is_ws).len())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// REG_MULTI_SZ units: each string NUL-terminated, then a final NUL. A
/// missing final terminator is tolerated.
fn multi_from_units(units: &[u16]) -> Option<Vec<String>> {
    let u = units.strip_suffix(&[0]).unwrap_or(units);
    if u.is_empty() {
        return Some(Vec::new());
    }
    let u = u.strip_suffix(&[0]).unwrap_or(u);
    u.split(|&x| x == 0)
        .map(|s| String::from_utf16(s).ok())
        .collect()
}

fn multi_to_units(v: &[String]) -> Vec<u16> {
    let mut u = Vec::new();
    for s in v {
        u.extend(s.encode_utf16());
        u.push(0);
    }
    u.push(0);
    u
}

fn utf16_bytes(units: impl IntoIterator<Item = u16>) -> Vec<u8> {
    units.into_iter().flat_map(u16::to_le_bytes).collect()
}

impl RegFile {
    /// Prints the file in regedit's version 5.00 form (CRLF line ends;
    /// encode with [`super::encode_utf16le_with_bom`] for regedit's
    /// on-disk form). Parsing the output gives back the same operations
    /// (line numbers aside). `Raw` values of kinds that have a typed form
    /// (1, 2, 3, 4, 7, b) come back typed.
    pub fn to_text(&self) -> String {
        let mut out = String::from("Windows Registry Editor Version 5.00\r\n");
        let mut current: Option<&RegKey> = None;
        for op in &self.ops {
            match op {
                RegOp::CreateKey { key, .. } => {
                    let _ = write!(out, "\r\n[{key}]\r\n");
                    current = Some(key);
                }
                RegOp::DeleteKey { key, .. } => {
                    let _ = write!(out, "\r\n[-{key}]\r\n");
                    current = None;
                }
                RegOp::SetValue {
                    key, name, value, ..
                } => {
                    if current != Some(key) {
                        let _ = write!(out, "\r\n[{key}]\r\n");
                        current = Some(key);
                    }
                    let head = print_name(name.as_deref());
                    out.push_str(&head);
                    out.push('=');
                    print_value(&mut out, head.chars().count() + 1, value);
                    out.push_str("\r\n");
                }
                RegOp::DeleteValue { key, name, .. } => {
                    if current != Some(key) {
                        let _ = write!(out, "\r\n[{key}]\r\n");
                        current = Some(key);
                    }
                    out.push_str(&print_name(name.as_deref()));
                    out.push_str("=-\r\n");
                }
            }
        }
        out
    }
}

fn print_name(name: Option<&str>) -> String {
    match name {
        None => "@".to_owned(),
        Some(n) => quote(n),
    }
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '"' => q.push_str("\\\""),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn print_value(out: &mut String, col: usize, v: &RegValue) {
    match v {
        RegValue::Sz(s) => out.push_str(&quote(s)),
        RegValue::Dword(n) => {
            let _ = write!(out, "dword:{n:08x}");
        }
        RegValue::ExpandSz(s) => print_hex(
            out,
            col,
            "hex(2):",
            &utf16_bytes(s.encode_utf16().chain([0])),
        ),
        RegValue::Binary(b) => print_hex(out, col, "hex:", b),
        RegValue::MultiSz(v) => print_hex(out, col, "hex(7):", &utf16_bytes(multi_to_units(v))),
        RegValue::Qword(n) => print_hex(out, col, "hex(b):", &n.to_le_bytes()),
        RegValue::Raw { kind, bytes } => print_hex(out, col, &format!("hex({kind:x}):"), bytes),
    }
}

/// Hex bytes wrapped like regedit: lines up to about 80 columns, each
/// continued with `,\` and the next indented by two spaces.
fn print_hex(out: &mut String, mut col: usize, prefix: &str, bytes: &[u8]) {
    out.push_str(prefix);
    col += prefix.len();
    for (k, b) in bytes.iter().enumerate() {
        let _ = write!(out, "{b:02x}");
        col += 2;
        if k + 1 < bytes.len() {
            out.push(',');
            col += 1;
            if col >= 76 {
                out.push_str("\\\r\n  ");
                col = 2;
            }
        }
    }
}

/// The NUL-separated UTF-16LE strings of registry data, up to the first
/// empty one (REG_MULTI_SZ ends with an empty string; anything after it is
/// not part of the value); an odd last byte is ignored.
fn utf16_strings(bytes: &[u8]) -> Vec<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    units
        .split(|&u| u == 0)
        .take_while(|s| !s.is_empty())
        .map(String::from_utf16_lossy)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::encode_utf16le_with_bom;
    use super::*;
    use proptest::prelude::*;

    const COMM: &str = r"Software\Policies\Microsoft\Communicator";

    fn values(f: &RegFile) -> Vec<(Option<&str>, &RegValue, u32)> {
        f.ops
            .iter()
            .filter_map(|op| match op {
                RegOp::SetValue {
                    name, value, line, ..
                } => Some((name.as_deref(), value, *line)),
                _ => None,
            })
            .collect()
    }

    fn err(text: &str) -> (u32, u32, SyntaxErrorKind) {
        let e = parse_str(text).unwrap_err();
        (e.line, e.column, e.kind)
    }

    #[test]
    fn seed_snippets_parse_with_mixed_case_roots() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n\
            [HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\r\n\
            \"EnableAppearOffline\"=dword:00000001\r\n\
            \"DisableIM\"=dword:00000001\r\n\
            \"GalDownloadInitialDelay\"=dword:00000000\r\n";
        let f = parse_str(text).unwrap();
        assert_eq!(f.version, RegVersion::V5);
        assert!(f.ops[0].key().is(Hive::CurrentUser, COMM));
        assert!(f.ops[0].key().is(
            Hive::CurrentUser,
            r"SOFTWARE\policies\MICROSOFT\communicator\"
        ));
        let v = values(&f);
        assert_eq!(v[0], (Some("EnableAppearOffline"), &RegValue::Dword(1), 4));
        assert_eq!(v[1], (Some("DisableIM"), &RegValue::Dword(1), 5));
        assert_eq!(
            v[2],
            (Some("GalDownloadInitialDelay"), &RegValue::Dword(0), 6)
        );

        let text = "Windows Registry Editor Version 5.00 \n\n\
            [HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Communicator] \n\
            @=\"\" \n\
            \"CustomStateURL\"=\"file:///C:/Program Files/Microsoft Office Communicator/presence.xml\"\n";
        let f = parse_str(text).unwrap();
        let v = values(&f);
        assert_eq!(v[0], (None, &RegValue::Sz(String::new()), 4));
        assert_eq!(
            v[1].1,
            &RegValue::Sz(
                "file:///C:/Program Files/Microsoft Office Communicator/presence.xml".into()
            )
        );
        assert!(f.ops[0].key().is(Hive::LocalMachine, COMM));
    }

    #[test]
    fn short_roots_and_every_value_type() {
        let text = "Windows Registry Editor Version 5.00\n\
            ; a comment\n\
            [hklm\\Software\\X]\n\
            \"s\"=\"a\\\\b\\\"c\\q\"\n\
            \"d\"=DWORD:0000ffff ; trailing comment\n\
            \"bin\"=hex:de,ad,be,ef\n\
            \"exp\"=hex(2):25,00,50,00,41,00,54,00,48,00,25,00,00,00\n\
            \"multi\"=hex(7):61,00,00,00,62,00,63,00,00,00,00,00\n\
            \"q\"=hex(b):01,00,00,00,00,00,00,80\n\
            \"none\"=hex(0):\n\
            \"be\"=hex(5):00,00,00,01\n\
            \"one\"=hex(1):68,00,69,00,00,00\n\
            \"four\"=hex(4):02,01,00,00\n\
            \"three\"=hex(3):ff\n\
            [HKCU\\Software]\n\
            \"x\" = dword:1\n";
        let f = parse_str(text).unwrap();
        let v: Vec<_> = values(&f).into_iter().map(|(_, v, _)| v.clone()).collect();
        assert_eq!(
            v,
            vec![
                RegValue::Sz("a\\b\"c\\q".into()),
                RegValue::Dword(0xffff),
                RegValue::Binary(vec![0xde, 0xad, 0xbe, 0xef]),
                RegValue::ExpandSz("%PATH%".into()),
                RegValue::MultiSz(vec!["a".into(), "bc".into()]),
                RegValue::Qword(0x8000_0000_0000_0001),
                RegValue::Raw {
                    kind: 0,
                    bytes: vec![]
                },
                RegValue::Raw {
                    kind: 5,
                    bytes: vec![0, 0, 0, 1]
                },
                RegValue::Sz("hi".into()),
                RegValue::Dword(0x102),
                RegValue::Binary(vec![0xff]),
                RegValue::Dword(1),
            ]
        );
        assert!(f.ops[0].key().is(Hive::LocalMachine, r"Software\X"));
        assert!(
            matches!(&f.ops[12], RegOp::CreateKey { key, line: 15 } if key.hive == Hive::CurrentUser)
        );
    }

    #[test]
    fn regedit4_strings_are_single_byte() {
        let text = "REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Software]\r\n\
            \"e\"=hex(2):25,41,25,00\r\n\"m\"=hex(7):61,00,62,00,00\r\n";
        let f = parse_str(text).unwrap();
        assert_eq!(f.version, RegVersion::Regedit4);
        let v = values(&f);
        assert_eq!(v[0].1, &RegValue::ExpandSz("%A%".into()));
        assert_eq!(v[1].1, &RegValue::MultiSz(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn continuations_join_hex_lines() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKCU\\A]\r\n\
            \"b\"=hex:01,02,\\\r\n  03,04,\\\r\n\t05\r\n\"c\"=dword:7\r\n";
        let f = parse_str(text).unwrap();
        let v = values(&f);
        assert_eq!(v[0], (Some("b"), &RegValue::Binary(vec![1, 2, 3, 4, 5]), 4));
        assert_eq!(v[1], (Some("c"), &RegValue::Dword(7), 7));
    }

    #[test]
    fn deletions() {
        let text = "REGEDIT4\n[-HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\n\
            \"ignored\"=dword:1\n[HKCU\\Software\\Policies\\Microsoft\\Communicator]\n\"DisableIM\"=-\n@=-\n";
        let f = parse_str(text).unwrap();
        assert_eq!(f.ops.len(), 4);
        assert!(
            matches!(&f.ops[0], RegOp::DeleteKey { key, line: 2 } if key.is(Hive::CurrentUser, COMM))
        );
        assert!(
            matches!(&f.ops[2], RegOp::DeleteValue { name: Some(n), line: 5, .. } if n == "DisableIM")
        );
        assert!(matches!(
            &f.ops[3],
            RegOp::DeleteValue {
                name: None,
                line: 6,
                ..
            }
        ));
        let k = RegKey::parse(r"HKCU\software").unwrap();
        assert!(k.contains(Hive::CurrentUser, COMM));
        assert!(!k.contains(Hive::LocalMachine, COMM));
        assert!(
            !RegKey::parse(r"HKCU\Soft")
                .unwrap()
                .contains(Hive::CurrentUser, COMM)
        );
    }

    #[test]
    fn utf16le_with_bom_as_regedit_writes_it() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n\
            [HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\r\n\
            \"CustomStateURL\"=\"https://intranet/St\u{e4}tus.xml\"\r\n";
        let bytes = encode_utf16le_with_bom(text);
        assert_eq!(&bytes[..4], &[0xFF, 0xFE, b'W', 0]);
        let f = parse(&bytes).unwrap();
        assert_eq!(
            values(&f)[0],
            (
                Some("CustomStateURL"),
                &RegValue::Sz("https://intranet/St\u{e4}tus.xml".into()),
                4
            )
        );
        // UTF-8 with a BOM too.
        let mut b = vec![0xEF, 0xBB, 0xBF];
        b.extend_from_slice(text.as_bytes());
        assert_eq!(parse(&b).unwrap(), f);
    }

    #[test]
    fn errors_name_line_and_column() {
        use SyntaxErrorKind as K;
        assert_eq!(err(""), (1, 1, K::MissingHeader));
        assert_eq!(err("\n  REGEDIT5\n"), (2, 3, K::MissingHeader));
        let h = "REGEDIT4\n";
        assert_eq!(
            err(&format!("{h}\"a\"=dword:1\n")),
            (2, 1, K::ValueOutsideKey)
        );
        assert_eq!(
            err(&format!("{h}[HKEY_NOWHERE\\x]\n")),
            (2, 2, K::UnknownRoot("HKEY_NOWHERE".into()))
        );
        assert_eq!(
            err(&format!("{h}[-HKXX]\n")).0..=err(&format!("{h}[-HKXX]\n")).1,
            2..=3
        );
        assert_eq!(err(&format!("{h}[HKCU\\x\n")).0, 2);
        assert_eq!(
            err(&format!("{h}[HKCU]\n  \"abc=dword:1\n")),
            (3, 3, K::UnterminatedString)
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=dword:123456789\n")),
            (
                3,
                11,
                K::Expected {
                    expected: "1 to 8 hex digits after dword:"
                }
            )
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=dword:12x\n")),
            (
                3,
                13,
                K::Expected {
                    expected: "end of line"
                }
            )
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=hex:01,zz\n")),
            (
                3,
                12,
                K::Expected {
                    expected: "a hex byte"
                }
            )
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=hex:01,\\\n 02,\n")),
            (
                4,
                5,
                K::Expected {
                    expected: "a hex byte after `,`"
                }
            )
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=hex:01,\\\n")).2,
            K::ContinuationAtEof
        );
        assert_eq!(
            err("Windows Registry Editor Version 5.00\n[HKCU]\n\"a\"=hex(b):01\n"),
            (
                3,
                5,
                K::BadLength {
                    kind: "qword",
                    needed: 8,
                    found: 1
                }
            )
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=hex(4):01\n")).2,
            K::BadLength {
                kind: "dword",
                needed: 4,
                found: 1
            }
        );
        assert_eq!(
            err("Windows Registry Editor Version 5.00\n[HKCU]\n\"a\"=hex(2):41\n").2,
            K::BadLength {
                kind: "UTF-16 string",
                needed: 2,
                found: 1
            }
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\" dword:1\n")),
            (3, 5, K::Expected { expected: "`=`" })
        );
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"a\"=word:1\n")).0
                ..=err(&format!("{h}[HKCU]\n\"a\"=word:1\n")).1,
            3..=5
        );
        assert_eq!(err(&format!("{h}[HKCU]\nfoo\n")).0, 3);
        // Columns count characters, not bytes.
        assert_eq!(
            err(&format!("{h}[HKCU]\n\"\u{e4}\u{e4}\"=nope\n")),
            (
                3,
                6,
                K::Expected {
                    expected: "a \"string\", dword:, hex:, hex(N): or -"
                }
            )
        );
    }

    #[test]
    fn printer_wraps_and_round_trips_a_sample() {
        let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKCU\\A]\r\n\"big\"=hex:00,01,02,03,04,05,06,07,08,09,0a,0b,0c,0d,0e,0f,10,11,12,13,14,15,16,17,18,19,1a,1b,1c,1d,1e,1f,20,21,22,23,24,25,26,27,28,29,2a\r\n";
        let f = parse_str(text).unwrap();
        let printed = f.to_text();
        assert!(printed.contains(",\\\r\n  "), "{printed}");
        assert!(
            printed.lines().all(|l| l.chars().count() <= 80),
            "{printed}"
        );
        let again = parse_str(&printed).unwrap();
        assert_eq!(again.ops_without_lines(), f.ops_without_lines());
    }

    fn any_string() -> impl Strategy<Value = String> {
        // Anything but NUL (which REG_SZ cannot hold).
        proptest::string::string_regex("[^\u{0}]{0,12}").expect("regex")
    }

    fn any_value() -> impl Strategy<Value = RegValue> {
        prop_oneof![
            any_string().prop_map(RegValue::Sz),
            any_string().prop_map(RegValue::ExpandSz),
            proptest::collection::vec(any::<u8>(), 0..60).prop_map(RegValue::Binary),
            any::<u32>().prop_map(RegValue::Dword),
            proptest::collection::vec(any_string(), 0..4).prop_map(RegValue::MultiSz),
            any::<u64>().prop_map(RegValue::Qword),
            (
                prop_oneof![Just(0u32), Just(5), Just(8), Just(0x10), Just(0xffff_ffff)],
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(kind, bytes)| RegValue::Raw { kind, bytes }),
        ]
    }

    fn any_key() -> impl Strategy<Value = RegKey> {
        (
            prop_oneof![
                Just(Hive::LocalMachine),
                Just(Hive::CurrentUser),
                Just(Hive::Users),
                Just(Hive::ClassesRoot),
                Just(Hive::CurrentConfig)
            ],
            proptest::collection::vec("[A-Za-z0-9 ._-]{1,8}", 0..4),
        )
            .prop_map(|(hive, parts)| RegKey {
                hive,
                path: parts.join("\\"),
            })
    }

    fn any_name() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(any_string())
    }

    fn any_section() -> impl Strategy<Value = Vec<RegOp>> {
        prop_oneof![
            any_key().prop_map(|key| vec![RegOp::DeleteKey { key, line: 0 }]),
            (
                any_key(),
                proptest::collection::vec((any_name(), proptest::option::of(any_value())), 0..5)
            )
                .prop_map(|(key, vals)| {
                    let mut ops = vec![RegOp::CreateKey {
                        key: key.clone(),
                        line: 0,
                    }];
                    for (name, v) in vals {
                        ops.push(match v {
                            Some(value) => RegOp::SetValue {
                                key: key.clone(),
                                name,
                                value,
                                line: 0,
                            },
                            None => RegOp::DeleteValue {
                                key: key.clone(),
                                name,
                                line: 0,
                            },
                        });
                    }
                    ops
                }),
        ]
    }

    proptest! {
        #[test]
        fn print_then_parse_gives_the_same_ops(
            sections in proptest::collection::vec(any_section(), 0..6),
            utf16 in any::<bool>(),
        ) {
            let f = RegFile { version: RegVersion::V5, ops: sections.concat() };
            let text = f.to_text();
            let parsed = if utf16 {
                parse(&encode_utf16le_with_bom(&text))
            } else {
                parse_str(&text)
            };
            let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(parsed.ops_without_lines(), f.ops);
            // Line numbers point at the lines that hold the items.
            let lines: Vec<&str> = text.split("\r\n").collect();
            for op in &parsed.ops {
                let l = lines[op.line() as usize - 1];
                prop_assert!(l.starts_with('[') || l.starts_with('"') || l.starts_with('@'), "{}", l);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_str(&s);
            let _ = parse_str(&format!("REGEDIT4\n[HKCU\\x]\n{s}"));
            let _ = parse_str(&format!("Windows Registry Editor Version 5.00\n[HKCU\\x]\n\"a\"=hex(7):{s}"));
        }
    }

    #[test]
    fn values_from_the_registry_api() {
        let w = |t: &str| -> Vec<u8> { t.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        assert_eq!(
            RegValue::from_raw(1, &w("https://x/cs.xml\0")),
            RegValue::Sz("https://x/cs.xml".into())
        );
        assert_eq!(
            RegValue::from_raw(2, &w("%TEMP%\0")),
            RegValue::ExpandSz("%TEMP%".into())
        );
        assert_eq!(
            RegValue::from_raw(7, &w("a\0bc\0\0")),
            RegValue::MultiSz(vec!["a".into(), "bc".into()])
        );
        assert_eq!(RegValue::from_raw(4, &[1, 0, 0, 0]), RegValue::Dword(1));
        assert_eq!(
            RegValue::from_raw(11, &[0, 0, 0, 0, 1, 0, 0, 0]),
            RegValue::Qword(1 << 32)
        );
        assert_eq!(RegValue::from_raw(3, &[0xab]), RegValue::Binary(vec![0xab]));
        assert_eq!(
            RegValue::from_raw(4, &[1, 0]),
            RegValue::Raw {
                kind: 4,
                bytes: vec![1, 0]
            }
        );
        assert_eq!(
            RegValue::from_raw(1, &[0x41, 0, 0x42]),
            RegValue::Sz("A".into())
        );
        assert_eq!(
            RegValue::from_raw(7, &w("a\0\0b\0\0")),
            RegValue::MultiSz(vec!["a".into()])
        );
    }
}
