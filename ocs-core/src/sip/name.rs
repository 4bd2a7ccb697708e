//! Header names and methods.

use std::fmt;

/// The longest name looked up by its key (Proxy-Authentication-Info has
/// 25 bytes); longer ones are no well-known name.
const KEY_BYTES: usize = 32;

/// A header name as four little-endian words of its bytes, zero-padded to
/// [`KEY_BYTES`], every byte or-ed with 0x20: that lower-cases letters and
/// leaves `-` and digits alone; no other token byte folds onto a letter,
/// so equal keys and lengths mean equal names, case-insensitively. The
/// compile-time form builds the table; [`name_key_of`] is the fast one.
const fn name_key(b: &[u8]) -> [u64; 4] {
    let mut w = [0x2020_2020_2020_2020u64; 4];
    let mut i = 0;
    while i < b.len() && i < KEY_BYTES {
        w[i / 8] |= ((b[i] | 0x20) as u64) << (8 * (i % 8));
        i += 1;
    }
    w
}

/// [`name_key`] at run time: one copy and four word loads instead of a
/// loop over the bytes (every header of every message comes here).
#[inline]
fn name_key_of(b: &[u8]) -> [u64; 4] {
    let mut buf = [0u8; KEY_BYTES];
    buf[..b.len()].copy_from_slice(b);
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w) | 0x2020_2020_2020_2020
    };
    [word(0), word(1), word(2), word(3)]
}

/// The table slot of a key (its first 16 bytes and the length: names that
/// share 16 bytes differ in length).
const fn key_slot(k: &[u64; 4], len: usize) -> usize {
    let x = k[0].wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ k[1].wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (len as u64).wrapping_mul(0x1656_67B1_9E37_79F9);
    (x >> 56) as usize
}

macro_rules! header_names {
    ($( $(#[$doc:meta])* $var:ident => $canon:literal $(, $compact:literal)? ;)*) => {
        /// A header name. Well-known names are variants so lookups compare
        /// integers; everything else is kept as written in `Other`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $var, )*
            /// Any other header, with its name as written (compared
            /// case-insensitively).
            Other(Box<str>),
        }

        /// Every well-known name with its variant.
        pub(crate) const KNOWN_NAMES: &[(&str, HeaderName)] = &[ $( ($canon, HeaderName::$var), )* ];

        impl HeaderName {
            /// The canonical spelling (e.g. `Call-ID`).
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$var => $canon, )*
                    HeaderName::Other(s) => s,
                }
            }

            /// Recognises a name as written on the wire, including the
            /// RFC 3261 §7.3.3 compact forms, case-insensitively.
            pub fn from_wire(name: &str) -> HeaderName {
                Self::from_wire_bytes(name.as_bytes())
            }

            /// [`HeaderName::from_wire`] on bytes already known to be a
            /// token (ASCII), as the parser has them.
            pub(crate) fn from_wire_bytes(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact { return HeaderName::$var; } )? )*
                }
                // Open-addressed hash over the canonical names' keys, built
                // at compile time: every header of every message comes
                // through here, so one probe and a four-word compare beat
                // fifty comparisons.
                const KNOWN: &[(&str, HeaderName)] = KNOWN_NAMES;
                const SLOTS: usize = 256;
                const KEYS: [[u64; 4]; KNOWN.len()] = {
                    let mut k = [[0u64; 4]; KNOWN.len()];
                    let mut i = 0;
                    while i < KNOWN.len() {
                        assert!(KNOWN[i].0.len() <= KEY_BYTES);
                        k[i] = name_key(KNOWN[i].0.as_bytes());
                        i += 1;
                    }
                    k
                };
                const TABLE: [u8; SLOTS] = {
                    let mut t = [u8::MAX; SLOTS];
                    let mut i = 0;
                    while i < KNOWN.len() {
                        let mut h = key_slot(&KEYS[i], KNOWN[i].0.len());
                        while t[h] != u8::MAX {
                            h = (h + 1) % SLOTS;
                        }
                        t[h] = i as u8;
                        i += 1;
                    }
                    t
                };
                let other = || HeaderName::Other(String::from_utf8_lossy(name).into());
                if name.len() > KEY_BYTES {
                    return other();
                }
                let key = name_key_of(name);
                let mut h = key_slot(&key, name.len());
                loop {
                    let i = TABLE[h];
                    if i == u8::MAX {
                        return other();
                    }
                    let i = usize::from(i);
                    if KEYS[i] == key && KNOWN[i].0.len() == name.len() {
                        return KNOWN[i].1.clone();
                    }
                    h = (h + 1) % SLOTS;
                }
            }

            /// The compact form, if the header has one.
            pub fn compact(&self) -> Option<char> {
                match self {
                    $( $( HeaderName::$var => Some($compact as char), )? )*
                    _ => None,
                }
            }
        }
    };
}

header_names! {
    /// `Accept`
    Accept => "Accept";
    /// `Accept-Encoding`
    AcceptEncoding => "Accept-Encoding";
    /// `Accept-Language`
    AcceptLanguage => "Accept-Language";
    /// `Allow`
    Allow => "Allow";
    /// `Allow-Events` (compact `u`)
    AllowEvents => "Allow-Events", b'u';
    /// `Authentication-Info`
    AuthenticationInfo => "Authentication-Info";
    /// `Authorization`
    Authorization => "Authorization";
    /// `Call-ID` (compact `i`)
    CallId => "Call-ID", b'i';
    /// `Contact` (compact `m`)
    Contact => "Contact", b'm';
    /// `Content-Disposition`
    ContentDisposition => "Content-Disposition";
    /// `Content-Encoding` (compact `e`)
    ContentEncoding => "Content-Encoding", b'e';
    /// `Content-Length` (compact `l`)
    ContentLength => "Content-Length", b'l';
    /// `Content-Type` (compact `c`)
    ContentType => "Content-Type", b'c';
    /// `CSeq`
    CSeq => "CSeq";
    /// `Date`
    Date => "Date";
    /// `Event` (compact `o`)
    Event => "Event", b'o';
    /// `Expires`
    Expires => "Expires";
    /// `From` (compact `f`)
    From => "From", b'f';
    /// `Max-Forwards`
    MaxForwards => "Max-Forwards";
    /// `Min-Expires`
    MinExpires => "Min-Expires";
    /// `P-Asserted-Identity`
    PAssertedIdentity => "P-Asserted-Identity";
    /// `P-Preferred-Identity`
    PPreferredIdentity => "P-Preferred-Identity";
    /// `Proxy-Authenticate`
    ProxyAuthenticate => "Proxy-Authenticate";
    /// `Proxy-Authentication-Info`
    ProxyAuthenticationInfo => "Proxy-Authentication-Info";
    /// `Proxy-Authorization`
    ProxyAuthorization => "Proxy-Authorization";
    /// `Proxy-Require`
    ProxyRequire => "Proxy-Require";
    /// `Record-Route`
    RecordRoute => "Record-Route";
    /// `Refer-To` (compact `r`)
    ReferTo => "Refer-To", b'r';
    /// `Referred-By` (compact `b`)
    ReferredBy => "Referred-By", b'b';
    /// `Require`
    Require => "Require";
    /// `Retry-After`
    RetryAfter => "Retry-After";
    /// `Route`
    Route => "Route";
    /// `Server`
    Server => "Server";
    /// `SIP-ETag`
    SipETag => "SIP-ETag";
    /// `SIP-If-Match`
    SipIfMatch => "SIP-If-Match";
    /// `Subject` (compact `s`)
    Subject => "Subject", b's';
    /// `Subscription-State`
    SubscriptionState => "Subscription-State";
    /// `Supported` (compact `k`)
    Supported => "Supported", b'k';
    /// `Timestamp`
    Timestamp => "Timestamp";
    /// `To` (compact `t`)
    To => "To", b't';
    /// `Unsupported`
    Unsupported => "Unsupported";
    /// `User-Agent`
    UserAgent => "User-Agent";
    /// `Via` (compact `v`)
    Via => "Via", b'v';
    /// `Warning`
    Warning => "Warning";
    /// `WWW-Authenticate`
    WwwAuthenticate => "WWW-Authenticate";
    /// `ms-diagnostics` (OCS)
    MsDiagnostics => "ms-diagnostics";
    /// `ms-diagnostics-public` (OCS)
    MsDiagnosticsPublic => "ms-diagnostics-public";
    /// `ms-client-diagnostics` (OCS clients)
    MsClientDiagnostics => "ms-client-diagnostics";
    /// `ms-keep-alive` (OCS)
    MsKeepAlive => "ms-keep-alive";
    /// `ms-text-format` (OCS IM)
    MsTextFormat => "ms-text-format";
}

impl HeaderName {
    /// Case-insensitive comparison with a name as written.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            HeaderName::Other(s) => s.eq_ignore_ascii_case(name),
            known => *known == HeaderName::from_wire(name),
        }
    }
}

impl From<&str> for HeaderName {
    fn from(s: &str) -> Self {
        HeaderName::from_wire(s)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1); anything that
/// is not a well-known method is kept verbatim in `Extension`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO
    Info,
    /// PRACK
    Prack,
    /// SUBSCRIBE
    Subscribe,
    /// NOTIFY
    Notify,
    /// PUBLISH
    Publish,
    /// REFER
    Refer,
    /// MESSAGE
    Message,
    /// UPDATE
    Update,
    /// SERVICE (OCS: publications and container management)
    Service,
    /// BENOTIFY (OCS: a NOTIFY that is never answered)
    Benotify,
    /// Any other token, as written.
    Extension(Box<str>),
}

impl Method {
    /// Parses a method token (the caller has checked it is a token).
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "UPDATE" => Method::Update,
            "SERVICE" => Method::Service,
            "BENOTIFY" => Method::Benotify,
            other => Method::Extension(other.into()),
        }
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Service => "SERVICE",
            Method::Benotify => "BENOTIFY",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Method {
    fn from(s: &str) -> Self {
        Method::from_token(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("V"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("cAlL-iD"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_wire("k"), HeaderName::Supported);
        assert!(HeaderName::from_wire("X-Foo").matches("x-foo"));
        assert!(HeaderName::Via.matches("v"));
        assert!(!HeaderName::Via.matches("vx"));
        // esc02: an escaped name is a different header.
        assert_eq!(
            HeaderName::from_wire("C%6Fntact"),
            HeaderName::Other("C%6Fntact".into())
        );
    }

    proptest::proptest! {
        /// The run-time key is the compile-time one.
        #[test]
        fn run_time_key_as_compile_time(s in "[A-Za-z0-9!%*_+`'~.-]{0,32}") {
            proptest::prop_assert_eq!(name_key_of(s.as_bytes()), name_key(s.as_bytes()));
        }
    }

    #[test]
    fn every_known_name_is_found_in_any_case() {
        for (name, h) in KNOWN_NAMES {
            assert_eq!(&HeaderName::from_wire(name), h);
            assert_eq!(&HeaderName::from_wire(&name.to_ascii_uppercase()), h);
            assert_eq!(&HeaderName::from_wire(&name.to_ascii_lowercase()), h);
            assert_eq!(h.as_str(), *name);
        }
        // Bytes that fold onto letters or '-' under bit 5 are not tokens,
        // except these, which must not match.
        for other in [
            "X-Foo",
            "Vias",
            "Contacts",
            "ms-keep-alivex",
            "ab",
            "T_",
            "vi`",
            "Vi@",
        ] {
            assert!(
                matches!(HeaderName::from_wire(other), HeaderName::Other(_)),
                "{other}"
            );
        }
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::from_token("INVITE"), Method::Invite);
        assert_eq!(
            Method::from_token("invite"),
            Method::Extension("invite".into())
        );
        assert_eq!(Method::from_token("BENOTIFY").as_str(), "BENOTIFY");
    }
}
