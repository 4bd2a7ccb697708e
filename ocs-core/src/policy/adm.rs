//! ADM group-policy templates: list the policies a template defines.
//!
//! Understood: `CLASS MACHINE|USER`, `CATEGORY name ... END CATEGORY`
//! (nested), `POLICY name ... END POLICY`, `KEYNAME` (inherited from the
//! enclosing category and overridable per policy and per part),
//! `VALUENAME`, `VALUEON`/`VALUEOFF` (a string, `NUMERIC n` or `DELETE`),
//! `EXPLAIN`, `SUPPORTED`, `CLIENTEXT`, `PART name TYPE ... END PART` (types
//! CHECKBOX, TEXT, EDITTEXT, NUMERIC, COMBOBOX, DROPDOWNLIST, LISTBOX, with
//! their attributes and `ITEMLIST`), `ACTIONLISTON`/`ACTIONLISTOFF`/
//! `SUGGESTIONS` blocks (skipped), `;` comments, `"quoted strings"`,
//! `!!name` references resolved from the `[strings]` section (where `\n`
//! means a line break), and `#if version OP N` / `#ifdef` / `#ifndef` /
//! `#else` / `#endif` (evaluated for template version 4; `#ifdef` names
//! are never defined). Keywords are case-insensitive. Text is UTF-8 or
//! UTF-16LE with a BOM.

use std::collections::HashMap;

use super::{MAX_NESTING, SyntaxError, SyntaxErrorKind, decode_text, saturate};

/// `CLASS MACHINE` or `CLASS USER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmClass {
    /// Computer configuration (HKLM).
    Machine,
    /// User configuration (HKCU).
    User,
}

impl AdmClass {
    /// `MACHINE` or `USER`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmClass::Machine => "MACHINE",
            AdmClass::User => "USER",
        }
    }
}

/// A value written when a policy (or checkbox) is turned on or off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmValue {
    /// A string value.
    Text(String),
    /// `NUMERIC n`: a DWORD.
    Numeric(u32),
    /// `DELETE`: the value is removed.
    Delete,
}

/// One `PART` of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmPart {
    /// Its label.
    pub name: String,
    /// Its type, upper case (`EDITTEXT`, `NUMERIC`, `CHECKBOX`, ...).
    pub kind: String,
    /// The key it writes (its own KEYNAME or the policy's).
    pub key: String,
    /// The value it writes, if it names one.
    pub value_name: Option<String>,
    /// `ITEMLIST` entries (DROPDOWNLIST): display name and value.
    pub items: Vec<(String, AdmValue)>,
}

/// One `POLICY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmPolicy {
    /// Machine or user.
    pub class: AdmClass,
    /// Enclosing category names, outermost first.
    pub category: Vec<String>,
    /// The policy's display name.
    pub name: String,
    /// The registry key it writes below the class root.
    pub key: String,
    /// Its own VALUENAME, if any.
    pub value_name: Option<String>,
    /// VALUEON, if given.
    pub value_on: Option<AdmValue>,
    /// VALUEOFF, if given.
    pub value_off: Option<AdmValue>,
    /// The EXPLAIN text, if given.
    pub explain: Option<String>,
    /// Its parts.
    pub parts: Vec<AdmPart>,
    /// The line of its `POLICY` keyword.
    pub line: u32,
}

impl AdmPolicy {
    /// Every registry value name it writes: its own, then its parts'.
    pub fn value_names(&self) -> impl Iterator<Item = &str> {
        self.value_name
            .as_deref()
            .into_iter()
            .chain(self.parts.iter().filter_map(|p| p.value_name.as_deref()))
    }
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdmTemplate {
    /// The policies in file order.
    pub policies: Vec<AdmPolicy>,
}

/// Parses an ADM template from bytes (UTF-8 or UTF-16LE with a BOM).
pub fn parse(bytes: &[u8]) -> Result<AdmTemplate, SyntaxError> {
    parse_str(&decode_text(bytes)?)
}

/// Parses an ADM template from text.
pub fn parse_str(text: &str) -> Result<AdmTemplate, SyntaxError> {
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
    let (tokens, strings) = tokenize(text)?;
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        strings: &strings,
        out: Vec::new(),
        eof: end_position(text),
    };
    p.file()?;
    Ok(AdmTemplate { policies: p.out })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Ref(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
    col: u32,
}

fn end_position(text: &str) -> (u32, u32) {
    super::position_after(text)
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{1a}'
}

/// Splits the body into tokens and reads the `[strings]` section(s).
fn tokenize(text: &str) -> Result<(Vec<Token>, HashMap<String, String>), SyntaxError> {
    let mut tokens = Vec::new();
    let mut strings = HashMap::new();
    // `true` while inside [strings]; other [sections] are skipped.
    let mut section: Option<bool> = None;
    // The #if stack: is each level's current branch active?
    let mut conds: Vec<(bool, u32)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let lno = saturate(i + 1);
        let col_of = |byte: usize| saturate(line[..byte].chars().count() + 1);
        let start = line.len() - line.trim_start_matches(is_blank).len();
        let t = line[start..].trim_end_matches(is_blank);
        if is_section_header(t) {
            section = Some(t.eq_ignore_ascii_case("[strings]"));
            continue;
        }
        if let Some(in_strings) = section {
            if !in_strings || t.is_empty() || t.starts_with(';') {
                continue;
            }
            let Some(eq) = t.find('=') else {
                return Err(SyntaxError::new(
                    lno,
                    col_of(start),
                    SyntaxErrorKind::Expected {
                        expected: "name=value in [strings]",
                    },
                ));
            };
            let name = t[..eq].trim_end_matches(is_blank);
            let v = t[eq + 1..].trim_start_matches(is_blank);
            let value = match v.strip_prefix('"') {
                Some(q) => match q.rfind('"') {
                    Some(end) => &q[..end],
                    None => {
                        let at = start + eq + 1 + (t[eq + 1..].len() - v.len());
                        return Err(SyntaxError::new(
                            lno,
                            col_of(at),
                            SyntaxErrorKind::UnterminatedString,
                        ));
                    }
                },
                None => v,
            };
            strings.insert(name.to_ascii_lowercase(), unescape_strings_value(value));
            continue;
        }
        // Body.
        if let Some(d) = t.strip_prefix('#') {
            directive(d, &mut conds, lno, col_of(start))?;
            continue;
        }
        if conds.iter().any(|(active, _)| !active) {
            continue;
        }
        let mut k = start;
        while k < line.len() {
            let rest = &line[k..];
            let Some(c) = rest.chars().next() else { break };
            if is_blank(c) {
                k += c.len_utf8();
                continue;
            }
            if c == ';' {
                break;
            }
            let col = col_of(k);
            if c == '"' {
                let Some(end) = rest[1..].find('"') else {
                    return Err(SyntaxError::new(
                        lno,
                        col,
                        SyntaxErrorKind::UnterminatedString,
                    ));
                };
                tokens.push(Token {
                    tok: Tok::Str(rest[1..1 + end].to_owned()),
                    line: lno,
                    col,
                });
                k += end + 2;
                continue;
            }
            let len = rest
                .find(|c: char| is_blank(c) || c == '"' || c == ';')
                .unwrap_or(rest.len());
            let word = &rest[..len];
            let tok = match word.strip_prefix("!!") {
                Some(r) => Tok::Ref(r.to_owned()),
                None => Tok::Word(word.to_owned()),
            };
            tokens.push(Token {
                tok,
                line: lno,
                col,
            });
            k += len;
        }
    }
    if let Some((_, line)) = conds.last() {
        return Err(SyntaxError::new(
            *line,
            1,
            SyntaxErrorKind::UnexpectedEof { expected: "#endif" },
        ));
    }
    Ok((tokens, strings))
}

/// A `[name]` line starts a section when it is a plain section name
/// (`[strings]`, `[xyz]`), not some bracketed text in the body.
fn is_section_header(t: &str) -> bool {
    t.len() > 2
        && t.starts_with('[')
        && t.ends_with(']')
        && t[1..t.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `\n` in a [strings] value is a line break; other text is literal.
fn unescape_strings_value(v: &str) -> String {
    v.replace("\\n", "\n")
}

/// Handles one `#...` line.
fn directive(
    d: &str,
    conds: &mut Vec<(bool, u32)>,
    line: u32,
    col: u32,
) -> Result<(), SyntaxError> {
    let words: Vec<&str> = d.split_whitespace().collect();
    let bad = |expected| SyntaxError::new(line, col, SyntaxErrorKind::Expected { expected });
    let Some(kw) = words.first() else {
        return Err(bad("#if, #ifdef, #ifndef, #else or #endif"));
    };
    let push = |conds: &mut Vec<(bool, u32)>, v: bool| {
        if conds.len() >= MAX_NESTING {
            return Err(SyntaxError::new(line, col, SyntaxErrorKind::TooDeep));
        }
        conds.push((v, line));
        Ok(())
    };
    match kw.to_ascii_lowercase().as_str() {
        "if" => {
            let v = match words.as_slice() {
                [_, var, op, n] if var.eq_ignore_ascii_case("version") => {
                    let n: u32 = n.parse().map_err(|_| bad("a version number"))?;
                    let have = 4u32;
                    match *op {
                        "<" => have < n,
                        "<=" => have <= n,
                        ">" => have > n,
                        ">=" => have >= n,
                        "==" => have == n,
                        "!=" => have != n,
                        _ => return Err(bad("a comparison (<, <=, >, >=, ==, !=)")),
                    }
                }
                _ => return Err(bad("#if version OP N")),
            };
            push(conds, v)
        }
        "ifdef" => push(conds, false),
        "ifndef" => push(conds, true),
        "else" => match conds.last_mut() {
            Some((v, _)) => {
                *v = !*v;
                Ok(())
            }
            None => Err(bad("#if before #else")),
        },
        "endif" => match conds.pop() {
            Some(_) => Ok(()),
            None => Err(bad("#if before #endif")),
        },
        _ => Err(bad("#if, #ifdef, #ifndef, #else or #endif")),
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    strings: &'a HashMap<String, String>,
    out: Vec<AdmPolicy>,
    eof: (u32, u32),
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self, expected: &'static str) -> Result<&'a Token, SyntaxError> {
        let t = self.tokens.get(self.pos).ok_or(SyntaxError::new(
            self.eof.0,
            self.eof.1,
            SyntaxErrorKind::UnexpectedEof { expected },
        ))?;
        self.pos += 1;
        Ok(t)
    }

    fn unexpected(t: &Token, expected: &'static str) -> SyntaxError {
        let found = match &t.tok {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Ref(r) => format!("!!{r}"),
        };
        SyntaxError::new(
            t.line,
            t.col,
            SyntaxErrorKind::Unexpected { found, expected },
        )
    }

    /// The next token as text (a word, a quoted string or a resolved `!!ref`).
    fn text(&mut self, expected: &'static str) -> Result<String, SyntaxError> {
        let t = self.next(expected)?;
        match &t.tok {
            Tok::Word(w) | Tok::Str(w) => Ok(w.clone()),
            Tok::Ref(r) => self
                .strings
                .get(&r.to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| {
                    SyntaxError::new(t.line, t.col, SyntaxErrorKind::UndefinedString(r.clone()))
                }),
        }
    }

    /// The next token as a keyword (upper case) and its token.
    fn keyword(&mut self, expected: &'static str) -> Result<(String, Token), SyntaxError> {
        let t = self.next(expected)?.clone();
        match &t.tok {
            Tok::Word(w) => Ok((w.to_ascii_uppercase(), t)),
            _ => Err(Self::unexpected(&t, expected)),
        }
    }

    fn expect_word(
        &mut self,
        word: &'static str,
        expected: &'static str,
    ) -> Result<(), SyntaxError> {
        let (k, t) = self.keyword(expected)?;
        if k == word {
            Ok(())
        } else {
            Err(Self::unexpected(&t, expected))
        }
    }

    fn number(&mut self, expected: &'static str) -> Result<u32, SyntaxError> {
        let t = self.next(expected)?.clone();
        match &t.tok {
            Tok::Word(w) | Tok::Str(w) => w.parse().map_err(|_| Self::unexpected(&t, expected)),
            Tok::Ref(_) => Err(Self::unexpected(&t, expected)),
        }
    }

    fn value(&mut self) -> Result<AdmValue, SyntaxError> {
        const WHAT: &str = "a value, NUMERIC n or DELETE";
        if let Some(Token {
            tok: Tok::Word(w), ..
        }) = self.peek()
        {
            if w.eq_ignore_ascii_case("NUMERIC") {
                self.pos += 1;
                return Ok(AdmValue::Numeric(self.number("a number after NUMERIC")?));
            }
            if w.eq_ignore_ascii_case("DELETE") {
                self.pos += 1;
                return Ok(AdmValue::Delete);
            }
        }
        Ok(AdmValue::Text(self.text(WHAT)?))
    }

    fn file(&mut self) -> Result<(), SyntaxError> {
        let mut class = None;
        while self.peek().is_some() {
            let (k, t) = self.keyword("CLASS or CATEGORY")?;
            match k.as_str() {
                "CLASS" => {
                    let (c, t) = self.keyword("MACHINE or USER")?;
                    class = Some(match c.as_str() {
                        "MACHINE" => AdmClass::Machine,
                        "USER" => AdmClass::User,
                        _ => return Err(Self::unexpected(&t, "MACHINE or USER")),
                    });
                }
                "CATEGORY" => {
                    let Some(class) = class else {
                        return Err(Self::unexpected(&t, "CLASS before CATEGORY"));
                    };
                    self.category(class, &mut Vec::new(), None)?;
                }
                _ => return Err(Self::unexpected(&t, "CLASS or CATEGORY")),
            }
        }
        Ok(())
    }

    fn category(
        &mut self,
        class: AdmClass,
        path: &mut Vec<String>,
        key: Option<String>,
    ) -> Result<(), SyntaxError> {
        const WHAT: &str = "KEYNAME, EXPLAIN, CATEGORY, POLICY or END CATEGORY";
        let name = self.text("a category name")?;
        if path.len() >= MAX_NESTING {
            let t = &self.tokens[self.pos - 1];
            return Err(SyntaxError::new(t.line, t.col, SyntaxErrorKind::TooDeep));
        }
        path.push(name);
        let mut key = key;
        loop {
            let (k, t) = self.keyword(WHAT)?;
            match k.as_str() {
                "KEYNAME" => key = Some(self.text("a key name")?),
                "EXPLAIN" => {
                    self.text("explain text")?;
                }
                "CATEGORY" => self.category(class, path, key.clone())?,
                "POLICY" => self.policy(class, path, key.clone(), t.line)?,
                "END" => {
                    self.expect_word("CATEGORY", "CATEGORY after END")?;
                    path.pop();
                    return Ok(());
                }
                _ => return Err(Self::unexpected(&t, WHAT)),
            }
        }
    }

    fn policy(
        &mut self,
        class: AdmClass,
        path: &[String],
        key: Option<String>,
        line: u32,
    ) -> Result<(), SyntaxError> {
        const WHAT: &str = "a POLICY keyword (KEYNAME, VALUENAME, VALUEON, VALUEOFF, EXPLAIN, PART, ...) or END POLICY";
        let name_tok = self.tokens.get(self.pos).cloned();
        let name = self.text("a policy name")?;
        let mut policy = AdmPolicy {
            class,
            category: path.to_vec(),
            name,
            key: String::new(),
            value_name: None,
            value_on: None,
            value_off: None,
            explain: None,
            parts: Vec::new(),
            line,
        };
        let mut key = key;
        // Parts are resolved at END POLICY, when the policy's KEYNAME is known.
        let mut parts: Vec<(AdmPart, Option<String>)> = Vec::new();
        loop {
            let (k, t) = self.keyword(WHAT)?;
            match k.as_str() {
                "KEYNAME" => key = Some(self.text("a key name")?),
                "VALUENAME" => policy.value_name = Some(self.text("a value name")?),
                "VALUEON" => policy.value_on = Some(self.value()?),
                "VALUEOFF" => policy.value_off = Some(self.value()?),
                "EXPLAIN" => policy.explain = Some(self.text("explain text")?),
                "SUPPORTED" | "CLIENTEXT" | "HELP" => {
                    self.text("a value")?;
                }
                "PART" => parts.push(self.part()?),
                "ACTIONLISTON" | "ACTIONLISTOFF" => self.skip_block(&k)?,
                "END" => {
                    self.expect_word("POLICY", "POLICY after END")?;
                    break;
                }
                _ => return Err(Self::unexpected(&t, WHAT)),
            }
        }
        let missing = || {
            let (l, c) = name_tok.as_ref().map_or((line, 1), |t| (t.line, t.col));
            SyntaxError::new(l, c, SyntaxErrorKind::MissingKeyName(policy.name.clone()))
        };
        for (mut part, own_key) in parts {
            part.key = match own_key.or_else(|| key.clone()) {
                Some(k) => k,
                None => return Err(missing()),
            };
            policy.parts.push(part);
        }
        policy.key = match key {
            Some(k) => k,
            None => return Err(missing()),
        };
        self.out.push(policy);
        Ok(())
    }

    fn part(&mut self) -> Result<(AdmPart, Option<String>), SyntaxError> {
        const TYPES: &str =
            "a part type (CHECKBOX, TEXT, EDITTEXT, NUMERIC, COMBOBOX, DROPDOWNLIST, LISTBOX)";
        const WHAT: &str = "a PART keyword or END PART";
        let name = self.text("a part name")?;
        let (kind, t) = self.keyword(TYPES)?;
        if !matches!(
            kind.as_str(),
            "CHECKBOX" | "TEXT" | "EDITTEXT" | "NUMERIC" | "COMBOBOX" | "DROPDOWNLIST" | "LISTBOX"
        ) {
            return Err(Self::unexpected(&t, TYPES));
        }
        let mut part = AdmPart {
            name,
            kind,
            key: String::new(),
            value_name: None,
            items: Vec::new(),
        };
        let mut key = None;
        loop {
            let (k, t) = self.keyword(WHAT)?;
            match k.as_str() {
                "KEYNAME" => key = Some(self.text("a key name")?),
                "VALUENAME" => part.value_name = Some(self.text("a value name")?),
                "VALUEON" | "VALUEOFF" => {
                    self.value()?;
                }
                "DEFAULT" | "VALUEPREFIX" | "CLIENTEXT" => {
                    self.text("a value")?;
                }
                "MIN" | "MAX" | "SPIN" | "MAXLEN" => {
                    self.number("a number")?;
                }
                "REQUIRED" | "EXPANDABLETEXT" | "OEMCONVERT" | "TXTCONVERT" | "NOSORT"
                | "ADDITIVE" | "EXPLICITVALUE" | "SOFT" => {}
                "ITEMLIST" => self.item_list(&mut part.items)?,
                "SUGGESTIONS" | "ACTIONLISTON" | "ACTIONLISTOFF" => self.skip_block(&k)?,
                "END" => {
                    self.expect_word("PART", "PART after END")?;
                    return Ok((part, key));
                }
                _ => return Err(Self::unexpected(&t, WHAT)),
            }
        }
    }

    fn item_list(&mut self, items: &mut Vec<(String, AdmValue)>) -> Result<(), SyntaxError> {
        const WHAT: &str = "NAME, VALUE, ACTIONLIST, DEFAULT or END ITEMLIST";
        let mut name: Option<String> = None;
        loop {
            let (k, t) = self.keyword(WHAT)?;
            match k.as_str() {
                "NAME" => name = Some(self.text("an item name")?),
                "VALUE" => {
                    let v = self.value()?;
                    items.push((name.take().unwrap_or_default(), v));
                }
                "ACTIONLIST" => self.skip_block("ACTIONLIST")?,
                "DEFAULT" => {}
                "END" => {
                    self.expect_word("ITEMLIST", "ITEMLIST after END")?;
                    return Ok(());
                }
                _ => return Err(Self::unexpected(&t, WHAT)),
            }
        }
    }

    /// Skips to the `END <name>` closing a block.
    fn skip_block(&mut self, name: &str) -> Result<(), SyntaxError> {
        loop {
            let t = self.next("END of a block")?;
            if matches!(&t.tok, Tok::Word(w) if w.eq_ignore_ascii_case("END"))
                && matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(name))
            {
                self.pos += 1;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::known::KNOWN_POLICIES;
    use super::*;

    const SAMPLE: &str = r#"; a sample in the style of the seed's comm-outlook.adm
CLASS USER
CATEGORY !!Comm
  KEYNAME "Software\Policies\Microsoft\Communicator"
  CATEGORY "Outlook"
    POLICY !!Im
      EXPLAIN !!Im_Explain
      VALUENAME "DisableIM"
      VALUEON NUMERIC 1
      VALUEOFF NUMERIC 0
    END POLICY
    POLICY "Delay"
      KEYNAME Software\Other
      #if version >= 4
      SUPPORTED !!Comm
      #endif
      #if version < 3
      BOGUS
      #else
      PART "Minutes" NUMERIC
        VALUENAME GalDownloadInitialDelay
        MIN 0 MAX 1440 DEFAULT 60 SPIN 1
      END PART
      #endif
      PART "Mode" DROPDOWNLIST
        KEYNAME "Software\Third"
        VALUENAME Transport
        ITEMLIST
          NAME "TLS" VALUE "TLS"
          NAME "TCP" VALUE "TCP" ACTIONLIST KEYNAME x VALUENAME y VALUE NUMERIC 1 END ACTIONLIST
        END ITEMLIST
        REQUIRED
      END PART
      ACTIONLISTON VALUENAME a VALUE NUMERIC 1 END ACTIONLISTON
    END POLICY
  END CATEGORY
END CATEGORY

[strings]
Comm="Microsoft Office Communicator"
im = "Turn off IM"
Im_Explain="Line one.\n\nLine two."
"#;

    #[test]
    fn lists_policies_with_keys_values_and_explain() {
        let t = parse_str(SAMPLE).unwrap();
        assert_eq!(t.policies.len(), 2);
        let p = &t.policies[0];
        assert_eq!(p.class, AdmClass::User);
        assert_eq!(p.category, ["Microsoft Office Communicator", "Outlook"]);
        assert_eq!(p.name, "Turn off IM");
        assert_eq!(p.key, r"Software\Policies\Microsoft\Communicator");
        assert_eq!(p.value_name.as_deref(), Some("DisableIM"));
        assert_eq!(p.value_on, Some(AdmValue::Numeric(1)));
        assert_eq!(p.value_off, Some(AdmValue::Numeric(0)));
        assert_eq!(p.explain.as_deref(), Some("Line one.\n\nLine two."));
        assert_eq!(p.line, 6);
        let q = &t.policies[1];
        assert_eq!(q.key, r"Software\Other");
        assert_eq!(q.parts.len(), 2);
        assert_eq!(q.parts[0].kind, "NUMERIC");
        assert_eq!(q.parts[0].key, r"Software\Other");
        assert_eq!(q.parts[1].key, r"Software\Third");
        assert_eq!(
            q.parts[1].items,
            [
                ("TLS".to_owned(), AdmValue::Text("TLS".into())),
                ("TCP".to_owned(), AdmValue::Text("TCP".into()))
            ]
        );
        assert_eq!(
            q.value_names().collect::<Vec<_>>(),
            ["GalDownloadInitialDelay", "Transport"]
        );
    }

    #[test]
    fn utf16_templates_parse_too() {
        let t = parse(&super::super::encode_utf16le_with_bom(SAMPLE)).unwrap();
        assert_eq!(t, parse_str(SAMPLE).unwrap());
    }

    fn err(text: &str) -> (u32, u32, SyntaxErrorKind) {
        let e = parse_str(text).unwrap_err();
        (e.line, e.column, e.kind)
    }

    #[test]
    fn errors_are_positioned() {
        use SyntaxErrorKind as K;
        assert_eq!(
            err("CLASS USER\nCATEGORY !!nope\nEND CATEGORY\n"),
            (2, 10, K::UndefinedString("nope".into()))
        );
        assert_eq!(
            err("CATEGORY x\nEND CATEGORY\n").2,
            K::Unexpected {
                found: "CATEGORY".into(),
                expected: "CLASS before CATEGORY"
            }
        );
        assert_eq!(
            err("CLASS USER\nCATEGORY x\n  POLICY p\n  END POLICY\nEND CATEGORY\n"),
            (3, 10, K::MissingKeyName("p".into()))
        );
        assert_eq!(
            err("CLASS USER\nCATEGORY x\n  POLICY p\n"),
            (
                4,
                1,
                K::UnexpectedEof {
                    expected: "a POLICY keyword (KEYNAME, VALUENAME, VALUEON, VALUEOFF, EXPLAIN, PART, ...) or END POLICY"
                }
            )
        );
        assert_eq!(
            err("CLASS USER\nCATEGORY \"x\n").0..=err("CLASS USER\nCATEGORY \"x\n").1,
            2..=10
        );
        assert_eq!(err("CLASS ROBOT\n").0..=err("CLASS ROBOT\n").1, 1..=7);
        assert_eq!(
            err("CLASS USER\nCATEGORY x KEYNAME k POLICY p PART q WIDGET END PART END POLICY END CATEGORY").1,
            38
        );
        assert_eq!(
            err("#if version >= 4\nCLASS USER\n").2,
            K::UnexpectedEof { expected: "#endif" }
        );
        assert_eq!(err("#endif\n").0, 1);
        assert_eq!(
            err("[strings]\nnovalue\n"),
            (
                2,
                1,
                K::Expected {
                    expected: "name=value in [strings]"
                }
            )
        );
        let deep = "CLASS USER\n".to_owned() + &"CATEGORY x\n".repeat(MAX_NESTING + 2);
        assert_eq!(err(&deep).2, K::TooDeep);
    }

    #[test]
    fn our_template_defines_every_typed_policy_for_both_classes() {
        let t = parse_str(super::super::OCS_COMMUNICATOR_ADM).unwrap();
        assert!(super::super::OCS_COMMUNICATOR_ADM.is_ascii());
        for class in [AdmClass::Machine, AdmClass::User] {
            for known in KNOWN_POLICIES {
                let found = t
                    .policies
                    .iter()
                    .find(|p| p.class == class && p.value_names().any(|v| v == known.name));
                let p = found.unwrap_or_else(|| panic!("{} missing under {class:?}", known.name));
                assert_eq!(p.key, r"Software\Policies\Microsoft\Communicator");
                assert!(p.parts.iter().all(|x| x.key == p.key));
                assert!(
                    p.explain.as_deref().is_some_and(|e| e.len() > 20),
                    "{}",
                    known.name
                );
            }
        }
        // Nothing but known policies, each once per class.
        assert_eq!(t.policies.len(), 2 * KNOWN_POLICIES.len());
    }
}
