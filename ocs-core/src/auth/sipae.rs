//! MS-SIPAE message signing on top of an NTLM security context: building
//! the signature buffer from a [`Message`], signing outgoing messages and
//! verifying incoming ones.

use super::authheader::{FieldOrder, Scheme, SignatureParams, SipAuthorization, quote};
use super::mechanism::MechanismContext;
use super::ntlm::{NtlmError, SecurityContext};
use super::sigbuf::{SignatureFields, signature_buffer};
use crate::sip::{HeaderName, Message, ParseError, Uri};

/// The MS-SIPAE signature buffer of `msg` (PROTOCOL.md a.6), for the given
/// scheme, rand/num and security-association names. Values are taken as
/// they appear on the wire.
pub fn message_signature_buffer(
    msg: &Message,
    scheme: &str,
    rand: &str,
    num: &str,
    realm: &str,
    targetname: &str,
    auth_version: u32,
) -> Result<String, ParseError> {
    let from = msg.from()?;
    let to = msg.to()?;
    let cseq = msg.cseq()?;
    let cseq_number = cseq.seq.to_string();
    // P-Asserted-Identity, or P-Preferred-Identity when absent: first sip:
    // and first tel: URI.
    let mut ids = msg.p_asserted_identity()?;
    if ids.is_empty() {
        ids = msg
            .headers_named(HeaderName::PPreferredIdentity)
            .flat_map(|h| crate::sip::NameAddr::parse(h.value, h.offset).ok())
            .collect();
    }
    let pai_sip = ids
        .iter()
        .find(|n| matches!(n.uri, Uri::Sip(_)))
        .map(|n| n.uri_text)
        .unwrap_or("");
    let pai_tel = ids
        .iter()
        .find(|n| n.uri.scheme().eq_ignore_ascii_case("tel"))
        .map(|n| n.uri_text)
        .unwrap_or("");
    let fields = SignatureFields {
        scheme,
        rand,
        num,
        realm,
        targetname,
        call_id: msg.call_id()?,
        cseq_number: &cseq_number,
        cseq_method: cseq.method,
        from_uri: from.uri_text,
        from_tag: from.tag().unwrap_or(""),
        to_uri: to.uri_text,
        to_tag: to.tag().unwrap_or(""),
        pai_sip,
        pai_tel,
        expires: msg.header(HeaderName::Expires).unwrap_or(""),
        status: msg.status(),
    };
    Ok(signature_buffer(&fields, auth_version))
}

/// The `rand`, `num`, `realm` and `targetname` a message carries in its
/// Authentication-Info (server side: `srand`/`snum`) or Authorization /
/// Proxy-Authorization (client side: `crand`/`cnum`), plus the scheme and
/// signature. This is what `ocs sip signature-buffer` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The scheme (`NTLM`, ...).
    pub scheme: String,
    /// `crand` or `srand`.
    pub rand: String,
    /// `cnum` or `snum`.
    pub num: String,
    /// `realm`.
    pub realm: String,
    /// `targetname`.
    pub targetname: String,
    /// `response` or `rspauth`.
    pub signature: Option<String>,
    /// `version`, when given.
    pub version: Option<u32>,
    /// `opaque`, when given.
    pub opaque: Option<String>,
}

/// Finds the signature parameters of a message, if it carries any.
pub fn signature_header(msg: &Message) -> Result<Option<SignatureHeader>, ParseError> {
    let mut candidates = Vec::new();
    if let Some(ai) = msg.authentication_info()? {
        candidates.push((ai, "srand", "snum", "rspauth"));
    }
    for h in msg
        .authorization()?
        .into_iter()
        .chain(msg.proxy_authorization()?)
    {
        candidates.push((h, "crand", "cnum", "response"));
    }
    for (h, r, n, s) in candidates {
        if let (Some(rand), Some(num)) = (h.params.get(r), h.params.get(n)) {
            return Ok(Some(SignatureHeader {
                scheme: if h.scheme.is_empty() {
                    "NTLM".to_owned()
                } else {
                    h.scheme.to_owned()
                },
                rand: rand.into_owned(),
                num: num.into_owned(),
                realm: h
                    .params
                    .get("realm")
                    .map(|v| v.into_owned())
                    .unwrap_or_default(),
                targetname: h
                    .params
                    .get("targetname")
                    .map(|v| v.into_owned())
                    .unwrap_or_default(),
                signature: h.params.get(s).map(|v| v.into_owned()),
                version: h.params.get("version").and_then(|v| v.parse().ok()),
                opaque: h.params.get("opaque").map(|v| v.into_owned()),
            }));
        }
    }
    Ok(None)
}

/// Why an incoming message failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The message carries no signature but one is required.
    #[error("message is not signed")]
    Unsigned,
    /// The signature does not match the message.
    #[error("bad signature: {0}")]
    BadSignature(#[from] NtlmError),
    /// A header the signature covers is malformed.
    #[error("cannot build signature buffer: {0}")]
    Malformed(#[from] ParseError),
    /// The signature names another security association.
    #[error("signature belongs to another security association")]
    WrongAssociation,
    /// A plugged-in mechanism refused the signature.
    #[error("mechanism refused the signature: {0}")]
    Mechanism(String),
}

/// What computes and checks signatures: the built-in NTLM context or a
/// host's mechanism.
enum Signer {
    Ntlm(SecurityContext),
    External(Box<dyn MechanismContext>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Ntlm(_) => f.write_str("Signer::Ntlm(..)"),
            Signer::External(_) => f.write_str("Signer::External(..)"),
        }
    }
}

/// An established MS-SIPAE security association (one side of it).
///
/// After the handshake every outgoing message is signed with
/// [`SecurityAssociation::sign`] and every incoming one checked with
/// [`SecurityAssociation::verify`].
#[derive(Debug)]
pub struct SecurityAssociation {
    signer: Signer,
    scheme: Scheme,
    realm: String,
    targetname: String,
    opaque: Option<String>,
    version: u32,
    header: HeaderName,
    /// Our message counter (cnum or snum): starts at 1.
    num: u32,
}

impl SecurityAssociation {
    /// Wraps a security context. `header` is where a client puts its
    /// signature (Authorization after a 401, Proxy-Authorization after a
    /// 407); servers sign in Authentication-Info.
    pub fn new(
        ctx: SecurityContext,
        realm: &str,
        targetname: &str,
        opaque: Option<&str>,
        version: u32,
        header: HeaderName,
    ) -> Self {
        SecurityAssociation {
            signer: Signer::Ntlm(ctx),
            scheme: Scheme::Ntlm,
            realm: realm.to_owned(),
            targetname: targetname.to_owned(),
            opaque: opaque.map(str::to_owned),
            version,
            header,
            num: 0,
        }
    }

    /// An association whose signatures come from a host's mechanism
    /// (Kerberos, SSPI) under `scheme`.
    pub fn external(
        ctx: Box<dyn MechanismContext>,
        scheme: &str,
        realm: &str,
        targetname: &str,
        opaque: Option<&str>,
        version: u32,
        header: HeaderName,
    ) -> Self {
        SecurityAssociation {
            signer: Signer::External(ctx),
            scheme: Scheme::from_token(scheme),
            realm: realm.to_owned(),
            targetname: targetname.to_owned(),
            opaque: opaque.map(str::to_owned),
            version,
            header,
            num: 0,
        }
    }

    /// When the credential behind a host mechanism's association lapses
    /// ([`MechanismContext::valid_until`]); `None` for NTLM.
    pub fn valid_until(&self) -> Option<std::time::SystemTime> {
        match &self.signer {
            Signer::Ntlm(_) => None,
            Signer::External(ctx) => ctx.valid_until(),
        }
    }

    /// The scheme (`NTLM`, `Kerberos`, ...).
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// The authentication version (2, 3 or 4).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The `opaque` naming this association.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// The `realm`.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The `targetname`.
    pub fn targetname(&self) -> &str {
        &self.targetname
    }

    /// The header this side signs in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// Computes the signature of `msg` with a fresh `rand` and the next
    /// counter value, returning `(num, signature hex)`.
    pub fn signature_for(
        &mut self,
        msg: &Message,
        rand: &str,
    ) -> Result<(u32, String), ParseError> {
        self.num += 1;
        let num = self.num.to_string();
        let buf = message_signature_buffer(
            msg,
            self.scheme.as_str(),
            rand,
            &num,
            &self.realm,
            &self.targetname,
            self.version,
        )?;
        let sig = match &mut self.signer {
            Signer::Ntlm(ctx) => ctx.sign_hex(buf.as_bytes()),
            Signer::External(ctx) => match ctx.sign(buf.as_bytes()) {
                Ok(sig) => super::hex::encode(&sig),
                // A mechanism that cannot sign yields a signature the peer
                // rejects, which surfaces as an authentication failure.
                Err(_) => String::new(),
            },
        };
        Ok((self.num, sig))
    }

    /// Signs an outgoing message: replaces its auth header with the
    /// post-handshake form (client) or adds Authentication-Info (server).
    pub fn sign(&mut self, msg: &mut Message, rand: &str) -> Result<(), ParseError> {
        let (num, sig) = self.signature_for(msg, rand)?;
        let value = if self.header == HeaderName::AuthenticationInfo {
            // OCS writes its rspauth in upper case (T2).
            let sig = sig.to_ascii_uppercase();
            let mut v = format!(
                "{} rspauth={}, srand={}, snum={}",
                self.scheme.as_str(),
                quote(&sig),
                quote(rand),
                quote(&num.to_string())
            );
            if let Some(o) = &self.opaque {
                v.push_str(&format!(", opaque={}", quote(o)));
            }
            v.push_str(&format!(
                ", qop=\"auth\", targetname={}, realm={}",
                quote(&self.targetname),
                quote(&self.realm)
            ));
            v
        } else {
            SipAuthorization {
                scheme: self.scheme.clone(),
                realm: &self.realm,
                targetname: &self.targetname,
                opaque: self.opaque.as_deref(),
                gssapi_data: None,
                version: None,
                signature: Some(SignatureParams {
                    crand: rand,
                    cnum: num,
                    response: &sig,
                }),
            }
            .to_header_value(FieldOrder::OfficeCommunicator)
        };
        msg.set_header(self.header.clone(), value);
        Ok(())
    }

    /// Verifies an incoming message signed by the other side. Returns
    /// `Ok(false)` when it carries no signature (the caller decides whether
    /// that is acceptable, PROTOCOL.md a.6), `Ok(true)` when it verified.
    pub fn verify(&self, msg: &Message) -> Result<bool, VerifyError> {
        let Some(h) = signature_header(msg)? else {
            return Ok(false);
        };
        if let (Some(ours), Some(theirs)) = (&self.opaque, &h.opaque)
            && !ours.eq_ignore_ascii_case(theirs)
        {
            return Err(VerifyError::WrongAssociation);
        }
        let Some(sig) = h.signature else {
            return Err(VerifyError::Unsigned);
        };
        let buf = message_signature_buffer(
            msg,
            &h.scheme,
            &h.rand,
            &h.num,
            &self.realm,
            &self.targetname,
            self.version,
        )?;
        match &self.signer {
            Signer::Ntlm(ctx) => ctx.verify_hex(buf.as_bytes(), &sig)?,
            Signer::External(ctx) => {
                let raw = super::hex::decode(&sig)
                    .ok_or_else(|| VerifyError::Mechanism("signature is not hex".into()))?;
                ctx.verify(buf.as_bytes(), &raw)
                    .map_err(VerifyError::Mechanism)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ntlm::{Role, SessionKeys};

    fn read(name: &str) -> Message {
        let p = format!("{}/tests/data/ocs/{name}", env!("CARGO_MANIFEST_DIR"));
        Message::parse(&std::fs::read(p).expect("vector")).expect("parses")
    }

    fn keys() -> SessionKeys {
        let esk: [u8; 16] = crate::auth::hex::decode("6742fbe37bb1946b49d86a525bd29a9b")
            .expect("hex")
            .try_into()
            .expect("16");
        SessionKeys::derive(&esk)
    }

    #[test]
    fn buffers_of_the_captured_messages() {
        let t1 = read("t1_register_request.sip");
        let h = signature_header(&t1).expect("ok").expect("signed");
        let b =
            message_signature_buffer(&t1, &h.scheme, &h.rand, &h.num, &h.realm, &h.targetname, 4)
                .expect("buffer");
        assert_eq!(
            b,
            "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><><><><>"
        );
        let t2 = read("t2_register_200.sip");
        let h = signature_header(&t2).expect("ok").expect("signed");
        let b =
            message_signature_buffer(&t2, &h.scheme, &h.rand, &h.num, &h.realm, &h.targetname, 4)
                .expect("buffer");
        assert_eq!(
            b,
            "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>"
        );
    }

    #[test]
    fn captured_signatures_verify_and_tampering_is_caught() {
        let client = SecurityAssociation::new(
            SecurityContext::new(keys(), Role::Client),
            "SIP Communications Service",
            "cosmo-ocs-r2.cosmo.local",
            Some("2BDBAC9D"),
            4,
            HeaderName::ProxyAuthorization,
        );
        let server = SecurityAssociation::new(
            SecurityContext::new(keys(), Role::Server),
            "SIP Communications Service",
            "cosmo-ocs-r2.cosmo.local",
            Some("2BDBAC9D"),
            4,
            HeaderName::AuthenticationInfo,
        );
        // The client verifies the server's 200; the server verifies T1.
        assert_eq!(client.verify(&read("t2_register_200.sip")), Ok(true));
        assert_eq!(server.verify(&read("t1_register_request.sip")), Ok(true));
        // A tampered Call-ID or a forged signature fails.
        let mut t2 = read("t2_register_200.sip");
        t2.set_header(HeaderName::CallId, "4037df9284354df39065195bd57a4b15");
        assert!(matches!(
            client.verify(&t2),
            Err(VerifyError::BadSignature(_))
        ));
        let forged = String::from_utf8(read("t2_register_200.sip").to_bytes())
            .expect("utf8")
            .replace(
                "01000000E615438A917661BE64000000",
                "01000000E615438A917661BE64000001",
            );
        let forged = Message::parse(forged.as_bytes()).expect("parses");
        assert!(client.verify(&forged).is_err());
        // Unsigned messages are reported as such.
        let mut unsigned = read("t2_register_200.sip");
        unsigned.remove_headers(HeaderName::AuthenticationInfo);
        assert_eq!(client.verify(&unsigned), Ok(false));
    }

    #[test]
    fn sign_then_verify_both_directions() {
        let mut client = SecurityAssociation::new(
            SecurityContext::new(keys(), Role::Client),
            "r",
            "t",
            Some("AB"),
            4,
            HeaderName::Authorization,
        );
        let mut server = SecurityAssociation::new(
            SecurityContext::new(keys(), Role::Server),
            "r",
            "t",
            Some("AB"),
            4,
            HeaderName::AuthenticationInfo,
        );
        let mut m = read("t1_register_request.sip");
        m.remove_headers(HeaderName::ProxyAuthorization);
        client.sign(&mut m, "0badf00d").expect("signs");
        let m = Message::parse(&m.to_bytes()).expect("reparses");
        assert_eq!(server.verify(&m), Ok(true));
        let mut r = read("t2_register_200.sip");
        server.sign(&mut r, "12345678").expect("signs");
        let r = Message::parse(&r.to_bytes()).expect("reparses");
        assert_eq!(client.verify(&r), Ok(true));
        // Our own signatures don't verify as the peer's.
        assert!(client.verify(&m).is_err());
    }
}
