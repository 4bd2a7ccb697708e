//! HTTP Digest (RFC 2617 / RFC 7616) as used by SIP (RFC 3261 §22) for non-Microsoft
//! registrars and proxies. OCS itself never challenges with Digest.
//!
//! Only `qop=auth` and the no-qop (RFC 2069 compatible) form are implemented:
//! `auth-int` would need the message body, which SIP servers practically never ask for.
//! The client nonce and nonce count are passed in, so the computation is deterministic.

use md5::Md5;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::authheader::{AuthHeader, Scheme, quote};
use crate::sip::ParseError;

/// Errors from parsing Digest headers or computing / verifying responses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The header value is not syntactically valid.
    #[error("malformed Digest header: {0}")]
    Header(#[from] ParseError),
    /// The scheme is not `Digest`.
    #[error("not a Digest header")]
    NotDigest,
    /// A required parameter is missing.
    #[error("Digest parameter {0} is missing")]
    MissingParam(&'static str),
    /// The algorithm is not one this crate implements.
    #[error("unsupported Digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No usable qop (the server offered only `auth-int` or something unknown).
    #[error("unsupported Digest qop {0:?}")]
    UnsupportedQop(String),
    /// `nc` is not 8 hex digits.
    #[error("invalid Digest nonce count {0:?}")]
    InvalidNonceCount(String),
    /// The response does not match the password.
    #[error("Digest response does not match")]
    ResponseMismatch,
}

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default when the challenge names none).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess` (RFC 7616).
    Sha256Sess,
}

impl Algorithm {
    /// Maps an `algorithm=` token (case-insensitive).
    pub fn from_token(token: &str) -> Option<Self> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Canonical token.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex digest of `data` — the `H()` of the RFCs.
    fn h(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => super::hex::encode(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => super::hex::encode(&Sha256::digest(data)),
        }
    }
}

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate: Digest …` challenge (or one a test
/// server is about to send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// The `qop` options offered (empty: RFC 2069 style, no qop).
    pub qop: Vec<String>,
    /// Algorithm to use.
    pub algorithm: Algorithm,
    /// Whether the challenge named the algorithm explicitly (then it is echoed).
    pub algorithm_explicit: bool,
    /// `stale=true`: the nonce expired but the credentials were fine — retry silently
    /// with the new nonce instead of asking the user for a password.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a full header value such as `Digest realm="…", nonce="…", qop="auth"`.
    pub fn parse(header_value: &str) -> Result<Self, DigestError> {
        Self::from_header(&AuthHeader::parse(header_value)?)
    }

    /// Builds the challenge from an already parsed header.
    pub fn from_header(h: &AuthHeader) -> Result<Self, DigestError> {
        if h.scheme != Scheme::Digest {
            return Err(DigestError::NotDigest);
        }
        let realm = h.get("realm").ok_or(DigestError::MissingParam("realm"))?;
        let nonce = h.get("nonce").ok_or(DigestError::MissingParam("nonce"))?;
        let (algorithm, algorithm_explicit) = match h.get("algorithm") {
            None => (Algorithm::Md5, false),
            Some(t) => (
                Algorithm::from_token(t)
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(t.to_owned()))?,
                true,
            ),
        };
        let qop = h
            .get("qop")
            .map(|q| {
                q.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: h.get("opaque").map(str::to_owned),
            qop,
            algorithm,
            algorithm_explicit,
            stale: h
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Renders the challenge for a test registrar:
    /// `Digest realm="…", nonce="…"[, opaque="…"][, qop="…"][, algorithm=…][, stale=true]`.
    pub fn to_header_value(&self) -> String {
        let mut parts = vec![
            format!("realm={}", quote(&self.realm)),
            format!("nonce={}", quote(&self.nonce)),
        ];
        if let Some(o) = &self.opaque {
            parts.push(format!("opaque={}", quote(o)));
        }
        if !self.qop.is_empty() {
            parts.push(format!("qop={}", quote(&self.qop.join(","))));
        }
        if self.algorithm_explicit {
            parts.push(format!("algorithm={}", self.algorithm.as_str()));
        }
        if self.stale {
            parts.push("stale=true".to_owned());
        }
        format!("Digest {}", parts.join(", "))
    }

    /// Answers the challenge. `cnonce` is the caller's fresh random client nonce and
    /// `nc` the number of requests already sent with this nonce plus one; both are
    /// ignored when the server offered no qop.
    pub fn respond(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<DigestAuthorization, DigestError> {
        let use_qop = if self.qop.is_empty() {
            false
        } else if self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
            true
        } else {
            return Err(DigestError::UnsupportedQop(self.qop.join(",")));
        };
        let qop = use_qop.then(|| QopAuth {
            cnonce: cnonce.to_owned(),
            nc,
        });
        let response = compute_response(
            self.algorithm,
            username,
            &self.realm,
            password,
            &self.nonce,
            qop.as_ref(),
            method,
            uri,
        );
        Ok(DigestAuthorization {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            qop,
            response,
            opaque: self.opaque.clone(),
            algorithm: self.algorithm_explicit.then_some(self.algorithm),
        })
    }
}

/// The `qop=auth` parameters of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopAuth {
    /// Client nonce.
    pub cnonce: String,
    /// Nonce count.
    pub nc: u32,
}

/// Computes the `response` value (lower-case hex).
///
/// `HA1 = H(user:realm:password)` (for `-sess`: `H(H(user:realm:password):nonce:cnonce)`),
/// `HA2 = H(method:uri)`, and `response = H(HA1:nonce:nc:cnonce:auth:HA2)` with qop or
/// `H(HA1:nonce:HA2)` without.
#[allow(clippy::too_many_arguments)]
pub fn compute_response(
    algorithm: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    qop: Option<&QopAuth>,
    method: &str,
    uri: &str,
) -> String {
    let mut ha1 = algorithm.h(&format!("{username}:{realm}:{password}"));
    if algorithm.is_sess() {
        // RFC 2617 defines -sess with the cnonce; without qop there is none, so use "".
        let cnonce = qop.map_or("", |q| q.cnonce.as_str());
        ha1 = algorithm.h(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = algorithm.h(&format!("{method}:{uri}"));
    match qop {
        Some(q) => algorithm.h(&format!(
            "{ha1}:{nonce}:{:08x}:{}:auth:{ha2}",
            q.nc, q.cnonce
        )),
        None => algorithm.h(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The client's `Authorization` / `Proxy-Authorization: Digest …` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAuthorization {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the Request-URI).
    pub uri: String,
    /// `qop=auth` with `nc`/`cnonce`, or `None` for the no-qop form.
    pub qop: Option<QopAuth>,
    /// `response`.
    pub response: String,
    /// `opaque`, echoed from the challenge.
    pub opaque: Option<String>,
    /// `algorithm`, echoed when the challenge named one.
    pub algorithm: Option<Algorithm>,
}

impl DigestAuthorization {
    /// Renders the header value in the order of the RFC 2617 §3.5 example (and SIPE's
    /// test, T20): `username, realm, nonce, uri, [qop, nc, cnonce,] response, [opaque,]
    /// [algorithm]`. `qop` and `nc` are tokens, the rest quoted strings.
    pub fn to_header_value(&self) -> String {
        let mut parts = vec![
            format!("username={}", quote(&self.username)),
            format!("realm={}", quote(&self.realm)),
            format!("nonce={}", quote(&self.nonce)),
            format!("uri={}", quote(&self.uri)),
        ];
        if let Some(q) = &self.qop {
            parts.push("qop=auth".to_owned());
            parts.push(format!("nc={:08x}", q.nc));
            parts.push(format!("cnonce={}", quote(&q.cnonce)));
        }
        parts.push(format!("response={}", quote(&self.response)));
        if let Some(o) = &self.opaque {
            parts.push(format!("opaque={}", quote(o)));
        }
        if let Some(a) = self.algorithm {
            parts.push(format!("algorithm={}", a.as_str()));
        }
        format!("Digest {}", parts.join(", "))
    }

    /// Parses a client's header value (server side).
    pub fn parse(header_value: &str) -> Result<Self, DigestError> {
        let h = AuthHeader::parse(header_value)?;
        if h.scheme != Scheme::Digest {
            return Err(DigestError::NotDigest);
        }
        let req = |name: &'static str| {
            h.get(name)
                .map(str::to_owned)
                .ok_or(DigestError::MissingParam(name))
        };
        let qop = match h.get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc_str = req("nc")?;
                if nc_str.len() != 8 || !nc_str.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(DigestError::InvalidNonceCount(nc_str));
                }
                let nc = u32::from_str_radix(&nc_str, 16)
                    .map_err(|_| DigestError::InvalidNonceCount(nc_str.clone()))?;
                Some(QopAuth {
                    cnonce: req("cnonce")?,
                    nc,
                })
            }
            Some(q) => return Err(DigestError::UnsupportedQop(q.to_owned())),
        };
        let algorithm = match h.get("algorithm") {
            None => None,
            Some(t) => Some(
                Algorithm::from_token(t)
                    .ok_or_else(|| DigestError::UnsupportedAlgorithm(t.to_owned()))?,
            ),
        };
        Ok(Self {
            username: req("username")?,
            realm: req("realm")?,
            nonce: req("nonce")?,
            uri: req("uri")?,
            qop,
            response: req("response")?,
            opaque: h.get("opaque").map(str::to_owned),
            algorithm,
        })
    }
}

/// Server side: recomputes the response from `auth`'s own fields and `password`.
///
/// The registrar must separately check that `realm`, `nonce` (issued by it, not expired)
/// and `uri` are acceptable and that `nc` grows; this function only checks the proof.
pub fn verify(auth: &DigestAuthorization, method: &str, password: &str) -> Result<(), DigestError> {
    let expected = compute_response(
        auth.algorithm.unwrap_or(Algorithm::Md5),
        &auth.username,
        &auth.realm,
        password,
        &auth.nonce,
        auth.qop.as_ref(),
        method,
        &auth.uri,
    );
    // Constant-time compare on the (case-folded) hex strings.
    let a = expected.as_bytes();
    let b = auth.response.to_ascii_lowercase();
    let b = b.as_bytes();
    if super::ct_eq(a, b) {
        Ok(())
    } else {
        Err(DigestError::ResponseMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// testdata/ocs/digest_rfc2617.json
    const T20_CHALLENGE: &str = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    const T20_AUTHORIZATION: &str = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    #[test]
    fn t20_rfc2617_exact() {
        let c = DigestChallenge::parse(T20_CHALLENGE).unwrap();
        assert_eq!(c.qop, vec!["auth", "auth-int"]);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(!c.algorithm_explicit && !c.stale);
        let a = c
            .respond(
                "Mufasa",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "0a4f113b",
                1,
            )
            .unwrap();
        assert_eq!(a.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(a.to_header_value(), T20_AUTHORIZATION);
    }

    #[test]
    fn t20_server_side_verify() {
        let a = DigestAuthorization::parse(T20_AUTHORIZATION).unwrap();
        assert_eq!(
            a.qop,
            Some(QopAuth {
                cnonce: "0a4f113b".into(),
                nc: 1
            })
        );
        verify(&a, "GET", "Circle Of Life").unwrap();
        assert_eq!(
            verify(&a, "GET", "Circle of Life"),
            Err(DigestError::ResponseMismatch)
        );
        assert_eq!(
            verify(&a, "POST", "Circle Of Life"),
            Err(DigestError::ResponseMismatch)
        );
        let mut replay = a.clone();
        replay.qop = Some(QopAuth {
            cnonce: "0a4f113b".into(),
            nc: 2,
        });
        assert_eq!(
            verify(&replay, "GET", "Circle Of Life"),
            Err(DigestError::ResponseMismatch)
        );
        // Round trip through the renderer.
        assert_eq!(DigestAuthorization::parse(&a.to_header_value()).unwrap(), a);
    }

    /// RFC 7616 §3.9.1 (password "Circle of Life", lower-case "of", per erratum 4495).
    #[test]
    fn rfc7616_sha256_and_md5_examples() {
        for (alg, want) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = DigestChallenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .unwrap();
            let a = c
                .respond(
                    "Mufasa",
                    "Circle of Life",
                    "GET",
                    "/dir/index.html",
                    "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                    1,
                )
                .unwrap();
            assert_eq!(a.response, want, "{alg}");
            let header = a.to_header_value();
            assert!(header.ends_with(&format!(", algorithm={alg}")), "{header}");
            let parsed = DigestAuthorization::parse(&header).unwrap();
            verify(&parsed, "GET", "Circle of Life").unwrap();
        }
    }

    /// SHA-256 without qop (curl test 2061: testuser/testpass).
    #[test]
    fn sha256_without_qop() {
        let c = DigestChallenge::parse(
            "Digest realm=\"testrealm\", nonce=\"1053604145\", algorithm=\"SHA-256\"",
        )
        .unwrap();
        let a = c
            .respond("testuser", "testpass", "GET", "/2061", "ignored", 1)
            .unwrap();
        assert_eq!(
            a.to_header_value(),
            "Digest username=\"testuser\", realm=\"testrealm\", nonce=\"1053604145\", uri=\"/2061\", response=\"9dc55255f1a2537b838311674b621d45346b862a81631bb20e4ce356ef25062d\", algorithm=SHA-256"
        );
    }

    #[test]
    fn md5_sess_and_no_qop_vectors() {
        // Expected values computed independently with Python's hashlib.
        let sess = DigestChallenge::parse(
            &T20_CHALLENGE.replace("Digest ", "Digest algorithm=MD5-sess, "),
        )
        .unwrap();
        assert_eq!(sess.algorithm, Algorithm::Md5Sess);
        let a = sess
            .respond(
                "Mufasa",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "0a4f113b",
                2,
            )
            .unwrap();
        assert_eq!(a.response, "d16df0df0d92cef8935129145e21b5e1");
        assert!(a.to_header_value().contains("nc=00000002"));
        verify(
            &DigestAuthorization::parse(&a.to_header_value()).unwrap(),
            "GET",
            "Circle Of Life",
        )
        .unwrap();

        let plain = DigestChallenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"",
        )
        .unwrap();
        let a = plain
            .respond("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "x", 1)
            .unwrap();
        assert_eq!(a.response, "670fd8c2df070c60b045671b8b24ff02");
        assert_eq!(a.qop, None);
    }

    #[test]
    fn challenge_flags_and_errors() {
        let c =
            DigestChallenge::parse("Digest realm=\"r\", nonce=\"n\", stale=TRUE, qop=\"auth-int\"")
                .unwrap();
        assert!(c.stale);
        assert_eq!(
            c.respond("u", "p", "REGISTER", "sip:x", "c", 1),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            DigestChallenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(
            DigestChallenge::parse("Digest realm=\"r\""),
            Err(DigestError::MissingParam("nonce"))
        );
        assert_eq!(
            DigestChallenge::parse("NTLM realm=\"r\""),
            Err(DigestError::NotDigest)
        );
        assert!(matches!(
            DigestChallenge::parse("Digest realm=\"r"),
            Err(DigestError::Header(ParseError {
                kind: crate::sip::ParseErrorKind::UnterminatedQuote,
                ..
            }))
        ));
        assert_eq!(
            DigestAuthorization::parse(&T20_AUTHORIZATION.replace("nc=00000001", "nc=1")),
            Err(DigestError::InvalidNonceCount("1".into()))
        );
        assert_eq!(
            DigestAuthorization::parse(&T20_AUTHORIZATION.replace("nc=00000001", "nc=+0000001")),
            Err(DigestError::InvalidNonceCount("+0000001".into()))
        );
    }

    #[test]
    fn server_challenge_round_trip() {
        let c = DigestChallenge {
            realm: "example.test".into(),
            nonce: "abc\"def".into(),
            opaque: Some("op".into()),
            qop: vec!["auth".into()],
            algorithm: Algorithm::Sha256,
            algorithm_explicit: true,
            stale: true,
        };
        let v = c.to_header_value();
        assert_eq!(
            v,
            "Digest realm=\"example.test\", nonce=\"abc\\\"def\", opaque=\"op\", qop=\"auth\", algorithm=SHA-256, stale=true"
        );
        assert_eq!(DigestChallenge::parse(&v).unwrap(), c);
        let a = c
            .respond("bob", "pw", "REGISTER", "sip:example.test", "0011aabb", 7)
            .unwrap();
        verify(
            &DigestAuthorization::parse(&a.to_header_value()).unwrap(),
            "REGISTER",
            "pw",
        )
        .unwrap();
    }
}
