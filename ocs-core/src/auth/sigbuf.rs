//! The MS-SIPAE signature buffer: the string NTLM/Kerberos/TLS-DSK signatures cover.
//!
//! Each value is wrapped in `<`…`>` and the pieces are concatenated without separators.
//! Values are taken exactly as they appear in the message (case preserved); extracting
//! them from a SIP message is the caller's job, this module only assembles them.

/// The values that go into a signature buffer, borrowed from the message.
///
/// Empty strings stand for absent values (e.g. the To tag of an initial request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureFields<'a> {
    /// `NTLM`, `Kerberos` or `TLS-DSK`.
    pub scheme: &'a str,
    /// `crand` for outgoing messages, the peer's `srand` for incoming ones.
    pub rand: &'a str,
    /// `cnum` / `snum` as a decimal string.
    pub num: &'a str,
    /// `realm` of the security association.
    pub realm: &'a str,
    /// `targetname` of the security association.
    pub targetname: &'a str,
    /// `Call-ID` header value.
    pub call_id: &'a str,
    /// Number part of `CSeq`.
    pub cseq_number: &'a str,
    /// Method part of `CSeq`.
    pub cseq_method: &'a str,
    /// addr-spec of `From` (inside `<…>`, no display name).
    pub from_uri: &'a str,
    /// `tag` parameter of `From`.
    pub from_tag: &'a str,
    /// addr-spec of `To` (used from auth version 3 on).
    pub to_uri: &'a str,
    /// `tag` parameter of `To`.
    pub to_tag: &'a str,
    /// First `sip:` URI of P-Asserted-Identity (or P-Preferred-Identity), version ≥ 3.
    pub pai_sip: &'a str,
    /// First `tel:` URI of P-Asserted-Identity (or P-Preferred-Identity), version ≥ 3.
    pub pai_tel: &'a str,
    /// `Expires` header value.
    pub expires: &'a str,
    /// Status code for responses; `None` for requests, which drops the field entirely.
    pub status: Option<u16>,
}

/// Builds the signature buffer for MS-SIPAE authentication `auth_version`.
///
/// Version < 3 has 13 fields (no To URI, no P-Asserted-Identity); version ≥ 3 has the
/// 16 fields OCS 2007 R2 checks with `version=4`. Requests have one field fewer because
/// the status code is left out rather than sent empty.
pub fn signature_buffer(fields: &SignatureFields<'_>, auth_version: u32) -> String {
    let mut parts: Vec<&str> = vec![
        fields.scheme,
        fields.rand,
        fields.num,
        fields.realm,
        fields.targetname,
        fields.call_id,
        fields.cseq_number,
        fields.cseq_method,
        fields.from_uri,
        fields.from_tag,
    ];
    if auth_version >= 3 {
        parts.extend([fields.to_uri, fields.to_tag, fields.pai_sip, fields.pai_tel]);
    } else {
        parts.push(fields.to_tag);
    }
    parts.push(fields.expires);
    let status = fields.status.map(|s| s.to_string());
    if let Some(s) = &status {
        parts.push(s);
    }
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 2).sum());
    for p in parts {
        out.push('<');
        out.push_str(p);
        out.push('>');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields of testdata/ocs/t1_register_request.sip, picked out by hand.
    fn t1() -> SignatureFields<'static> {
        SignatureFields {
            scheme: "NTLM",
            rand: "13317733",
            num: "1",
            realm: "SIP Communications Service",
            targetname: "cosmo-ocs-r2.cosmo.local",
            call_id: "4037df9284354df39065195bd57a4b14",
            cseq_number: "3",
            cseq_method: "REGISTER",
            from_uri: "sip:user@cosmo.local",
            from_tag: "3e49177a52",
            to_uri: "sip:user@cosmo.local",
            to_tag: "",
            pai_sip: "",
            pai_tel: "",
            expires: "",
            status: None,
        }
    }

    #[test]
    fn t1_request_buffer_v4() {
        assert_eq!(
            signature_buffer(&t1(), 4),
            "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><><><><>"
        );
    }

    #[test]
    fn t2_response_buffer_v4() {
        // testdata/ocs/t2_register_200.sip: srand/snum from Authentication-Info,
        // To tag from the response, Expires header, status 200.
        let f = SignatureFields {
            rand: "9616454F",
            to_tag: "5E61CCD925D17E043D9A74835A88F664",
            expires: "7200",
            status: Some(200),
            ..t1()
        };
        assert_eq!(
            signature_buffer(&f, 4),
            "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52><sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>"
        );
    }

    #[test]
    fn legacy_v2_layout() {
        // 13 fields for responses / 12 for requests: no To URI, no P-Asserted-Identity.
        let f = SignatureFields {
            to_tag: "tt",
            pai_sip: "sip:ignored@x",
            pai_tel: "tel:+1",
            expires: "900",
            ..t1()
        };
        assert_eq!(
            signature_buffer(&f, 2),
            "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local><4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52><tt><900>"
        );
        let resp = SignatureFields {
            status: Some(401),
            ..f
        };
        assert!(signature_buffer(&resp, 2).ends_with("<tt><900><401>"));
        assert_eq!(signature_buffer(&resp, 2).matches('<').count(), 13);
        assert_eq!(signature_buffer(&resp, 3).matches('<').count(), 16);
        assert!(signature_buffer(&resp, 3).ends_with("<tt><sip:ignored@x><tel:+1><900><401>"));
    }
}
