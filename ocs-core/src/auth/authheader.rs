//! Parsing of SIP auth header values (`Scheme name=value, name="quoted", ...`) and
//! building of the MS-SIPAE `Authorization` / `Proxy-Authorization` value.
//!
//! The parser is deliberately generic: OCS and Digest servers order parameters freely,
//! so callers look parameters up by name. Parameter order is nevertheless preserved,
//! which keeps round-trip tests and diagnostics faithful to the wire.

use crate::sip::ParseError;
pub use crate::sip::quote;

/// Authentication scheme of a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `NTLM`.
    Ntlm,
    /// `Kerberos`.
    Kerberos,
    /// `TLS-DSK`.
    TlsDsk,
    /// `Digest`.
    Digest,
    /// Any other scheme, spelled as received.
    Other(String),
}

impl Scheme {
    /// Maps a scheme token (case-insensitively, as RFC 7235 requires).
    pub fn from_token(token: &str) -> Self {
        if token.eq_ignore_ascii_case("NTLM") {
            Scheme::Ntlm
        } else if token.eq_ignore_ascii_case("Kerberos") {
            Scheme::Kerberos
        } else if token.eq_ignore_ascii_case("TLS-DSK") {
            Scheme::TlsDsk
        } else if token.eq_ignore_ascii_case("Digest") {
            Scheme::Digest
        } else {
            Scheme::Other(token.to_owned())
        }
    }

    /// Canonical spelling, as it goes on the wire and into the signature buffer.
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Ntlm => "NTLM",
            Scheme::Kerberos => "Kerberos",
            Scheme::TlsDsk => "TLS-DSK",
            Scheme::Digest => "Digest",
            Scheme::Other(s) => s,
        }
    }
}

/// An owned auth header value: scheme and unquoted parameters in wire
/// order. The parsing itself is the message layer's
/// [`crate::sip::AuthHeader`]; this owned form is what the authenticators
/// keep across messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The scheme.
    pub scheme: Scheme,
    /// Parameters in wire order; quoted values are unescaped, names kept as sent.
    pub params: Vec<(String, String)>,
}

impl AuthHeader {
    /// Parses `Scheme k=v, k="quoted", ...` with positioned errors.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        Ok(Self::from_typed(&crate::sip::AuthHeader::parse(input, 0)?))
    }

    /// Converts the message layer's borrowed view.
    pub fn from_typed(h: &crate::sip::AuthHeader<'_>) -> Self {
        AuthHeader {
            scheme: Scheme::from_token(h.scheme),
            params: h
                .params
                .iter()
                .map(|(n, v)| (n.to_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// First value of parameter `name` (case-insensitive name match).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parameter order for [`SipAuthorization::to_header_value`]. OCS does not care about
/// order; the two variants exist so that output can match either reference exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldOrder {
    /// Order of the captured OC 2007 R2 REGISTER (T1):
    /// `qop, realm, opaque, targetname, version, gssapi-data, crand, cnum, response`.
    #[default]
    OfficeCommunicator,
    /// Order SIPE produces (PROTOCOL.md a.5):
    /// `qop, opaque, realm, targetname, gssapi-data, version, crand, cnum, response`.
    Sipe,
}

/// The client's first message signature, carried from authentication version 4 on in
/// the handshake and in every message afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureParams<'a> {
    /// `crand`: 8 hex digits, fresh per message.
    pub crand: &'a str,
    /// `cnum`: the message counter.
    pub cnum: u32,
    /// `response`: the 32-hex-digit signature.
    pub response: &'a str,
}

/// Values for an MS-SIPAE `Authorization` / `Proxy-Authorization` header.
///
/// Handshake form: `gssapi_data` is `Some` (an empty string for the first, token-less
/// NTLM request). Post-handshake form: `gssapi_data` and `version` are `None` and
/// `signature` is `Some`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAuthorization<'a> {
    /// Scheme (`NTLM`, `Kerberos`, `TLS-DSK`).
    pub scheme: Scheme,
    /// `realm` from the challenge.
    pub realm: &'a str,
    /// `targetname` from the challenge.
    pub targetname: &'a str,
    /// `opaque` from the challenge, once one was received.
    pub opaque: Option<&'a str>,
    /// Base64 security token, handshake only.
    pub gssapi_data: Option<&'a str>,
    /// `version=` (SIPE sends it only when it is above 2; leave `None` then).
    pub version: Option<u32>,
    /// Message signature.
    pub signature: Option<SignatureParams<'a>>,
}

impl SipAuthorization<'_> {
    /// Renders the header value (without the header name). `qop="auth"` is always
    /// first, as both OC and SIPE send it.
    pub fn to_header_value(&self, order: FieldOrder) -> String {
        let mut parts: Vec<String> = vec![format!("qop={}", quote("auth"))];
        let realm = format!("realm={}", quote(self.realm));
        let opaque = self.opaque.map(|o| format!("opaque={}", quote(o)));
        let target = format!("targetname={}", quote(self.targetname));
        let gssapi = self
            .gssapi_data
            .map(|g| format!("gssapi-data={}", quote(g)));
        let version = self.version.map(|v| format!("version={v}"));
        match order {
            FieldOrder::OfficeCommunicator => {
                parts.push(realm);
                parts.extend(opaque);
                parts.push(target);
                parts.extend(version);
                parts.extend(gssapi);
            }
            FieldOrder::Sipe => {
                parts.extend(opaque);
                parts.push(realm);
                parts.push(target);
                parts.extend(gssapi);
                parts.extend(version);
            }
        }
        if let Some(sig) = &self.signature {
            parts.push(format!("crand={}", quote(sig.crand)));
            parts.push(format!("cnum={}", quote(&sig.cnum.to_string())));
            parts.push(format!("response={}", quote(sig.response)));
        }
        format!("{} {}", self.scheme.as_str(), parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1_GSSAPI: &str = "TlRMTVNTUAADAAAAGAAYAHIAAADGAMYAigAAAAoACgBIAAAACAAIAFIAAAAYABgAWgAAABAAEABQAQAAVYKYYgUCzg4AAAAPQwBPAFMATQBPAFUAcwBlAHIAQwBPAFMATQBPAC0ATwBDAFMALQBSADIAoeku/k4Hi/fFwASazGFmwtauh1yw/apBjcDIAK527KYG0rn769BHMQEBAAAAAAAAWVGaFye5ygHWrodcsP2qQQAAAAACAAoAQwBPAFMATQBPAAEAGABDAE8AUwBNAE8ALQBPAEMAUwAtAFIAMgAEABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAMAMABjAG8AcwBtAG8ALQBvAGMAcwAtAHIAMgAuAGMAbwBzAG0AbwAuAGwAbwBjAGEAbAAFABYAYwBvAHMAbQBvAC4AbABvAGMAYQBsAAAAAAAAAAAAMctznhyoCkmFkeiueXEV5A==";

    /// The exact `Proxy-Authorization` value of testdata/ocs/t1_register_request.sip.
    fn t1_header_value() -> String {
        format!(
            "NTLM qop=\"auth\", realm=\"SIP Communications Service\", opaque=\"2BDBAC9D\", targetname=\"cosmo-ocs-r2.cosmo.local\", version=4, gssapi-data=\"{T1_GSSAPI}\", crand=\"13317733\", cnum=\"1\", response=\"0100000029618e9651b65a7764000000\""
        )
    }

    fn t1_auth() -> SipAuthorization<'static> {
        SipAuthorization {
            scheme: Scheme::Ntlm,
            realm: "SIP Communications Service",
            targetname: "cosmo-ocs-r2.cosmo.local",
            opaque: Some("2BDBAC9D"),
            gssapi_data: Some(T1_GSSAPI),
            version: Some(4),
            signature: Some(SignatureParams {
                crand: "13317733",
                cnum: 1,
                response: "0100000029618e9651b65a7764000000",
            }),
        }
    }

    #[test]
    fn builds_t1_proxy_authorization_exactly() {
        assert_eq!(
            t1_auth().to_header_value(FieldOrder::OfficeCommunicator),
            t1_header_value()
        );
    }

    #[test]
    fn builds_sipe_order_forms() {
        assert_eq!(
            t1_auth().to_header_value(FieldOrder::Sipe),
            format!(
                "NTLM qop=\"auth\", opaque=\"2BDBAC9D\", realm=\"SIP Communications Service\", targetname=\"cosmo-ocs-r2.cosmo.local\", gssapi-data=\"{T1_GSSAPI}\", version=4, crand=\"13317733\", cnum=\"1\", response=\"0100000029618e9651b65a7764000000\""
            )
        );
        // First, token-less NTLM request (PROTOCOL.md a.5 step 3).
        let first = SipAuthorization {
            scheme: Scheme::Ntlm,
            realm: "SIP Communications Service",
            targetname: "server.contoso.com",
            opaque: None,
            gssapi_data: Some(""),
            version: Some(3),
            signature: None,
        };
        assert_eq!(
            first.to_header_value(FieldOrder::Sipe),
            "NTLM qop=\"auth\", realm=\"SIP Communications Service\", targetname=\"server.contoso.com\", gssapi-data=\"\", version=3"
        );
        // Post-handshake form.
        let signed = SipAuthorization {
            gssapi_data: None,
            version: None,
            ..t1_auth()
        };
        assert_eq!(
            signed.to_header_value(FieldOrder::Sipe),
            "NTLM qop=\"auth\", opaque=\"2BDBAC9D\", realm=\"SIP Communications Service\", targetname=\"cosmo-ocs-r2.cosmo.local\", crand=\"13317733\", cnum=\"1\", response=\"0100000029618e9651b65a7764000000\""
        );
        assert_eq!(
            signed.to_header_value(FieldOrder::OfficeCommunicator),
            "NTLM qop=\"auth\", realm=\"SIP Communications Service\", opaque=\"2BDBAC9D\", targetname=\"cosmo-ocs-r2.cosmo.local\", crand=\"13317733\", cnum=\"1\", response=\"0100000029618e9651b65a7764000000\""
        );
    }

    #[test]
    fn parses_t1_header_and_round_trips() {
        let h = AuthHeader::parse(&t1_header_value()).unwrap();
        assert_eq!(h.scheme, Scheme::Ntlm);
        let names: Vec<&str> = h.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "qop",
                "realm",
                "opaque",
                "targetname",
                "version",
                "gssapi-data",
                "crand",
                "cnum",
                "response"
            ]
        );
        assert_eq!(h.get("VERSION"), Some("4"));
        assert_eq!(h.get("gssapi-data"), Some(T1_GSSAPI));
        assert_eq!(h.get("realm"), Some("SIP Communications Service"));
        assert_eq!(h.get("missing"), None);
    }

    #[test]
    fn parses_t2_authentication_info() {
        let h = AuthHeader::parse("NTLM rspauth=\"01000000E615438A917661BE64000000\", srand=\"9616454F\", snum=\"1\", opaque=\"2BDBAC9D\", qop=\"auth\", targetname=\"cosmo-ocs-r2.cosmo.local\", realm=\"SIP Communications Service\"").unwrap();
        assert_eq!(h.get("srand"), Some("9616454F"));
        assert_eq!(h.get("rspauth"), Some("01000000E615438A917661BE64000000"));
        assert_eq!(h.params.len(), 7);
    }

    #[test]
    fn schemes_and_escapes() {
        assert_eq!(
            AuthHeader::parse("kerberos").unwrap().scheme,
            Scheme::Kerberos
        );
        assert_eq!(
            AuthHeader::parse("TLS-DSK realm=\"x\", sts-uri=\"https://a/b\"")
                .unwrap()
                .scheme,
            Scheme::TlsDsk
        );
        let h = AuthHeader::parse("Fancy a=b").unwrap();
        assert_eq!(h.scheme, Scheme::Other("Fancy".into()));
        let d = AuthHeader::parse(
            "Digest realm=\"a \\\"q\\\" \\\\ b\",nonce=abc ,  stale=TRUE, algorithm=MD5-sess",
        )
        .unwrap();
        assert_eq!(d.scheme, Scheme::Digest);
        assert_eq!(d.get("realm"), Some("a \"q\" \\ b"));
        assert_eq!(d.get("nonce"), Some("abc"));
        assert_eq!(d.get("stale"), Some("TRUE"));
        assert_eq!(d.get("algorithm"), Some("MD5-sess"));
        assert_eq!(quote("a \"q\" \\ b"), "\"a \\\"q\\\" \\\\ b\"");
        // Unquoted base64 values keep their '=' padding.
        assert_eq!(
            AuthHeader::parse("NTLM gssapi-data=TlRM==")
                .unwrap()
                .get("gssapi-data"),
            Some("TlRM==")
        );
    }

    #[test]
    fn errors_carry_offsets() {
        let off = |s: &str| AuthHeader::parse(s).expect_err(s).offset;
        assert_eq!(off("   "), 3);
        assert_eq!(off("NTLM realm=\"abc"), 11);
        assert_eq!(off("NTLM realm=\"abc\\"), 15);
        assert_eq!(off("NTLM realm=\"a\", =x"), 16);
        assert_eq!(off("NTLM realm=\"a\","), 15);
        assert_eq!(off("NTLM realm \"a\""), 10);
        assert_eq!(off("NTLM realm=, x=y"), 11);
        assert_eq!(off("NTLM a=\"x\" b=y"), 11);
        assert_eq!(off("NTLM,a=b"), 4);
    }

    #[test]
    fn never_panics_on_truncation_or_garbling() {
        let full = t1_header_value();
        for (i, _) in full.char_indices() {
            let _ = AuthHeader::parse(&full[..i]);
        }
        let bytes = full.as_bytes();
        for i in 0..bytes.len() {
            for repl in [b'"', b'\\', b',', b'=', b' ', 0xC3] {
                let mut b = bytes.to_vec();
                b[i] = repl;
                let s = String::from_utf8_lossy(&b);
                let _ = AuthHeader::parse(&s);
            }
        }
    }
}
