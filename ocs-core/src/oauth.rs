//! The OAuth password grant of Lync 2013 and Skype for Business web
//! services, sans-IO: the challenge a web service answers with, the form
//! a client posts to the token service, and the token it gets back.
//!
//! A protected resource (autodiscover's `User`, UCWA) answers 401 with
//! `WWW-Authenticate: MsRtcOAuth href="https://pool/WebTicket/oauthtoken",
//! grant_type="urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password"`.
//! The client posts `grant_type=password&username=..&password=..` to
//! `href` and gets a JSON object whose `access_token` (`cwt=...`) goes
//! back as `Authorization: Bearer cwt=...`.
//!
//! The JSON reader here is a small, bounded one for that flat object (no
//! serde: the mobile library stays small). It keeps the top-level string,
//! number and boolean members, skips nested values up to [`MAX_DEPTH`], and
//! refuses anything else with the byte offset of the fault.

use std::fmt;

use crate::auth::authheader::AuthHeader;

/// Largest token answer read (a real one is about 1 KB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Deepest nesting the JSON reader skips.
pub const MAX_DEPTH: usize = 16;

/// The grant types a client of ours can use.
pub const GRANT_PASSWORD: &str = "password";

/// An `MsRtcOAuth` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The token service (`href`).
    pub href: String,
    /// The grant types it takes, as listed (`password`,
    /// `urn:microsoft.rtc:windows`, ...).
    pub grant_types: Vec<String>,
}

impl Challenge {
    /// Reads one `WWW-Authenticate` value; `None` when it is not an
    /// `MsRtcOAuth` challenge with an `href`.
    pub fn parse(value: &str) -> Option<Challenge> {
        let h = AuthHeader::parse(value).ok()?;
        if !h.scheme.as_str().eq_ignore_ascii_case("MsRtcOAuth") {
            return None;
        }
        let href = h.get("href")?.trim().to_owned();
        if href.is_empty() {
            return None;
        }
        let grant_types = h
            .get("grant_type")
            .unwrap_or_default()
            .split(',')
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
        Some(Challenge { href, grant_types })
    }

    /// Whether the service takes a user name and password.
    pub fn takes_password(&self) -> bool {
        self.grant_types
            .iter()
            .any(|g| g.eq_ignore_ascii_case(GRANT_PASSWORD))
    }
}

/// The body of a password-grant request
/// (`application/x-www-form-urlencoded`).
pub fn password_grant_body(username: &str, password: &str) -> String {
    let mut out = String::from("grant_type=password&username=");
    form_encode(username, &mut out);
    out.push_str("&password=");
    form_encode(password, &mut out);
    out
}

/// `application/x-www-form-urlencoded` (WHATWG URL): unreserved bytes as
/// they are, space as `+`, everything else `%XX`.
fn form_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// A token from the token service. `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// `access_token`: what goes after `Bearer `.
    pub access_token: String,
    /// `token_type` (`Bearer`).
    pub token_type: String,
    /// `expires_in`, in seconds, when given.
    pub expires_in: Option<u64>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field(
                "access_token",
                &format_args!("<{} bytes>", self.access_token.len()),
            )
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl Token {
    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.access_token)
    }
}

/// Why a token answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token answer, byte {offset}: {kind}")]
pub struct JsonError {
    /// Byte offset of the fault.
    pub offset: usize,
    /// What is wrong.
    pub kind: JsonErrorKind,
}

/// What is wrong with a token answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Larger than [`MAX_TOKEN_BYTES`].
    #[error("larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Not JSON here (what was expected).
    #[error("expected {0}")]
    Expected(&'static str),
    /// A string with a bad escape or a control character.
    #[error("bad string: {0}")]
    BadString(&'static str),
    /// The same member twice (which one would count is not clear).
    #[error("member {0:?} given twice")]
    Duplicate(String),
    /// A member the token needs is missing or of the wrong type.
    #[error("no {0}")]
    Missing(&'static str),
    /// The service said no (`error`, `error_description`).
    #[error("the token service refused: {0}")]
    Refused(String),
}

/// A top-level member's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A number (as JSON gives it; integers up to 2^53 are exact).
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object or array (skipped).
    Nested,
}

/// Reads a token answer: `access_token` and `token_type` strings,
/// `expires_in` a number (or a string of digits). An answer with `error`
/// instead is [`JsonErrorKind::Refused`] with its description.
pub fn parse_token(bytes: &[u8]) -> Result<Token, JsonError> {
    let members = parse_object(bytes)?;
    let get = |k: &str| members.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let at_end = |kind| JsonError {
        offset: bytes.len(),
        kind,
    };
    if let Some(Value::Str(e)) = get("error") {
        let why = match get("error_description") {
            Some(Value::Str(d)) => format!("{e} ({d})"),
            _ => e.clone(),
        };
        return Err(at_end(JsonErrorKind::Refused(why)));
    }
    let access_token = match get("access_token") {
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        _ => return Err(at_end(JsonErrorKind::Missing("access_token string"))),
    };
    let token_type = match get("token_type") {
        Some(Value::Str(s)) => s.clone(),
        None => "Bearer".to_owned(),
        _ => return Err(at_end(JsonErrorKind::Missing("token_type string"))),
    };
    let expires_in = match get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Num(n)) if *n >= 0.0 && n.fract() == 0.0 && *n < 9.0e15 => Some(*n as u64),
        Some(Value::Str(s)) if s.parse::<u64>().is_ok() => s.parse().ok(),
        _ => return Err(at_end(JsonErrorKind::Missing("expires_in number"))),
    };
    Ok(Token {
        access_token,
        token_type,
        expires_in,
    })
}

/// Reads one JSON object and returns its top-level members in order.
pub fn parse_object(bytes: &[u8]) -> Result<Vec<(String, Value)>, JsonError> {
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(JsonError {
            offset: MAX_TOKEN_BYTES,
            kind: JsonErrorKind::TooLarge,
        });
    }
    let mut r = Reader { b: bytes, i: 0 };
    // A UTF-8 byte-order mark is allowed before the object.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        r.i = 3;
    }
    r.ws();
    r.expect(b'{', "'{'")?;
    let mut out: Vec<(String, Value)> = Vec::new();
    r.ws();
    if r.peek() == Some(b'}') {
        r.i += 1;
    } else {
        loop {
            r.ws();
            let at = r.i;
            let name = r.string()?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(JsonError {
                    offset: at,
                    kind: JsonErrorKind::Duplicate(name),
                });
            }
            r.ws();
            r.expect(b':', "':'")?;
            r.ws();
            let v = r.value(1)?;
            out.push((name, v));
            r.ws();
            match r.peek() {
                Some(b',') => r.i += 1,
                Some(b'}') => {
                    r.i += 1;
                    break;
                }
                _ => return Err(r.err(JsonErrorKind::Expected("',' or '}'"))),
            }
        }
    }
    r.ws();
    if r.i != bytes.len() {
        return Err(r.err(JsonErrorKind::Expected("the end after the object")));
    }
    Ok(out)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.i,
            kind,
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(JsonErrorKind::Expected(what)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'{') | Some(b'[') => {
                self.skip_nested(depth)?;
                Ok(Value::Nested)
            }
            Some(b't') => self.word(b"true", Value::Bool(true)),
            Some(b'f') => self.word(b"false", Value::Bool(false)),
            Some(b'n') => self.word(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err(JsonErrorKind::Expected("a value"))),
        }
    }

    fn word(&mut self, w: &[u8], v: Value) -> Result<Value, JsonError> {
        if self.b[self.i..].starts_with(w) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err(JsonErrorKind::Expected("true, false or null")))
        }
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |r: &mut Self| {
            let s = r.i;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.i += 1;
            }
            r.i > s
        };
        if !digits(self) {
            return Err(self.err(JsonErrorKind::Expected("a digit")));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err(JsonErrorKind::Expected("a digit")));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err(JsonErrorKind::Expected("a digit")));
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were taken: valid UTF-8.
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0");
        Ok(Value::Num(text.parse().unwrap_or(f64::INFINITY)))
    }

    /// A string; the reader stands on its opening quote.
    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"', "a string")?;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(JsonErrorKind::BadString("not closed")));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek();
                    self.i += 1;
                    let ch = match e {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => {
                            self.i -= 1;
                            return Err(self.err(JsonErrorKind::BadString("unknown escape")));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1F => return Err(self.err(JsonErrorKind::BadString("control character"))),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        let at = self.i;
        String::from_utf8(out).map_err(|_| JsonError {
            offset: at,
            kind: JsonErrorKind::BadString("not UTF-8"),
        })
    }

    /// After `\u`: four hex digits, and a low surrogate after a high one.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.b[self.i..].starts_with(b"\\u") {
                return Err(self.err(JsonErrorKind::BadString("lone surrogate")));
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err(JsonErrorKind::BadString("lone surrogate")));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err(JsonErrorKind::BadString("lone surrogate")))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.b.get(self.i..self.i + 4) else {
            return Err(self.err(JsonErrorKind::BadString("short \\u escape")));
        };
        let mut v = 0u32;
        for &d in h {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.err(JsonErrorKind::BadString("bad \\u escape"))),
            };
            v = v * 16 + u32::from(n);
        }
        self.i += 4;
        Ok(v)
    }

    /// Skips an object or array, checking it is well formed.
    fn skip_nested(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        let close = if self.peek() == Some(b'{') {
            b'}'
        } else {
            b']'
        };
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if close == b'}' {
                self.string()?;
                self.ws();
                self.expect(b':', "':'")?;
                self.ws();
            }
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.err(JsonErrorKind::Expected(if close == b'}' {
                        "',' or '}'"
                    } else {
                        "',' or ']'"
                    })));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lync_challenge_names_the_token_service_and_its_grants() {
        let c = Challenge::parse(
            r#"MsRtcOAuth href="https://pool01.contoso.com/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows,urn:microsoft.rtc:anonmeeting,password""#,
        )
        .expect("challenge");
        assert_eq!(c.href, "https://pool01.contoso.com/WebTicket/oauthtoken");
        assert_eq!(c.grant_types.len(), 3);
        assert!(c.takes_password());
        let windows_only = Challenge::parse(
            r#"MsRtcOAuth href="https://p/oauthtoken",grant_type="urn:microsoft.rtc:windows""#,
        )
        .expect("challenge");
        assert!(!windows_only.takes_password());
        assert_eq!(Challenge::parse(r#"Bearer realm="x""#), None);
        assert_eq!(
            Challenge::parse(r#"MsRtcOAuth grant_type="password""#),
            None
        );
    }

    #[test]
    fn the_form_encodes_what_a_password_may_hold() {
        assert_eq!(
            password_grant_body(r"CONTOSO\alice", "p&ss w=rd+ü"),
            "grant_type=password&username=CONTOSO%5Calice&password=p%26ss+w%3Drd%2B%C3%BC"
        );
    }

    #[test]
    fn a_token_answer_gives_the_bearer_value() {
        let t = parse_token(
            br#"{"access_token":"cwt=AAEBHAEFAAAAAAAFFQAAAA","expires_in":28799,"ms_rtc_identityscope":"local","token_type":"Bearer","x":{"a":[1,2,{"b":null}]}}"#,
        )
        .expect("token");
        assert_eq!(t.authorization(), "Bearer cwt=AAEBHAEFAAAAAAAFFQAAAA");
        assert_eq!(t.expires_in, Some(28799));
        assert!(!format!("{t:?}").contains("cwt="), "Debug shows the token");
        let t = parse_token(b"\xEF\xBB\xBF { \"access_token\" : \"a\\u00e9\\ud83d\\ude00\\n\" } ")
            .expect("bom, escapes");
        assert_eq!(t.access_token, "a\u{e9}\u{1F600}\n");
        assert_eq!(t.expires_in, None);
    }

    #[test]
    fn bad_answers_are_refused_at_their_byte() {
        let e = |b: &[u8]| parse_token(b).expect_err("refused");
        assert_eq!(
            e(br#"{"error":"invalid_grant","error_description":"bad password"}"#).kind,
            JsonErrorKind::Refused("invalid_grant (bad password)".into())
        );
        assert_eq!(
            e(br#"{"access_token":1}"#).kind,
            JsonErrorKind::Missing("access_token string")
        );
        assert_eq!(e(br#"{"access_token":"a" "x":1}"#).offset, 20);
        assert_eq!(e(br#"{"a":"x","a":"y"}"#).offset, 9);
        assert_eq!(
            e(b"{\"a\":\"\x01\"}").kind,
            JsonErrorKind::BadString("control character")
        );
        assert_eq!(
            e(br#"{"a":"\ud800"}"#).kind,
            JsonErrorKind::BadString("lone surrogate")
        );
        assert_eq!(e(br#"{"a":"\q"}"#).offset, 7);
        assert_eq!(
            e(br#"{"a":01x}"#).kind,
            JsonErrorKind::Expected("',' or '}'")
        );
        assert_eq!(
            e(b"{} x").kind,
            JsonErrorKind::Expected("the end after the object")
        );
        assert_eq!(e(b"[]").kind, JsonErrorKind::Expected("'{'"));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(e(deep.as_bytes()).kind, JsonErrorKind::TooDeep);
        let big = vec![b' '; MAX_TOKEN_BYTES + 1];
        assert_eq!(e(&big).kind, JsonErrorKind::TooLarge);
    }
}
