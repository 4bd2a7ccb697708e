//! `epid` → `+sip.instance` UUID (MS-SIPAE 3.3.5.2 requires servers to check it).
//!
//! The REGISTER `Contact` carries `+sip.instance="<urn:uuid:…>"`, and the server checks
//! that this UUID is derived from the `epid` in `From`. The derivation is a name-based
//! (version 5, SHA-1) UUID, but with Windows GUID byte order: the namespace is hashed in
//! its little-endian GUID serialisation and the first three fields of the hash are read
//! little-endian. A standard RFC 4122 v5 implementation therefore gives a different value.

use sha1::{Digest, Sha1};

/// An endpoint id (`epid`): names one installation of the client to the
/// server (OC 2007 R2 keeps one per install and user), in `From` and, as
/// `+sip.instance`, in the REGISTER's Contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Epid(String);

impl Epid {
    /// The default epid of `aor` on `machine` (empty: any machine), the
    /// same in every release: the first 5 bytes of
    /// SHA-256(`"ocs epid v1\0"` ‖ lower-case `aor` ‖ `"\0"` ‖ `machine`),
    /// as 10 lower-case hex digits (OC's epids are 10 hex digits; their
    /// head names the endpoint's publication instances). Apps that store an
    /// epid per install pass it with [`Epid::parse`] instead.
    pub fn derive(aor: &str, machine: &str) -> Epid {
        let digest = sha2::Sha256::new()
            .chain_update(b"ocs epid v1\0")
            .chain_update(aor.to_ascii_lowercase().as_bytes())
            .chain_update(b"\0")
            .chain_update(machine.as_bytes())
            .finalize();
        Epid(super::hex::encode(&digest[..5]))
    }

    /// An epid the app keeps: 1 to 32 hex digits.
    pub fn parse(s: &str) -> Result<Epid, crate::error::Error> {
        let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Epid(s.to_ascii_lowercase()))
        } else {
            Err(crate::error::Error::misuse(
                crate::error::Misuse::BadArgument,
                format!("epid {s:?}: expected 1 to 32 hex digits"),
            ))
        }
    }

    /// The epid as sent (`epid=` parameter).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Epid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Namespace `fcacfb03-8a73-46ef-91b1-e5ebeeaba4fe` in Windows GUID byte order
/// (Data1/Data2/Data3 little-endian).
const NAMESPACE_GUID_BYTES: [u8; 16] = [
    0x03, 0xfb, 0xac, 0xfc, 0x73, 0x8a, 0xef, 0x46, 0x91, 0xb1, 0xe5, 0xeb, 0xee, 0xab, 0xa4, 0xfe,
];

/// Returns the `+sip.instance` UUID for `epid`, lower-case, without `urn:uuid:`.
///
/// OC 2007 R2 writes it upper-case in its REGISTER (use `to_ascii_uppercase` to mimic
/// it); servers compare case-insensitively and echo it lower-case.
pub fn sip_instance_uuid(epid: &str) -> String {
    let digest = Sha1::new()
        .chain_update(NAMESPACE_GUID_BYTES)
        .chain_update(epid.as_bytes())
        .finalize();
    let h = &digest[..16];
    let time_low = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let time_mid = u16::from_le_bytes([h[4], h[5]]);
    // Version 5 in the high nibble of the (little-endian read) time_hi field.
    let time_hi = (u16::from_le_bytes([h[6], h[7]]) & 0x0fff) | 0x5000;
    // RFC 4122 variant bits.
    let clock_seq_hi = (h[8] & 0x3f) | 0x80;
    format!(
        "{time_low:08x}-{time_mid:04x}-{time_hi:04x}-{clock_seq_hi:02x}{:02x}-{}",
        h[9],
        super::hex::encode(&h[10..16])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_epids_follow_the_documented_algorithm() {
        // Computed independently with Python's hashlib:
        // sha256(b"ocs epid v1\0" + aor.lower() + b"\0" + machine)[:5].hex()
        for (aor, machine, epid) in [
            ("sip:alice@contoso.com", "", "f7bd051bd6"),
            ("sip:alice@contoso.com", "WS01", "a72e7232f2"),
            ("SIP:Alice@Contoso.com", "", "f7bd051bd6"),
            ("sip:bob@contoso.com", "", "97ab9003ba"),
        ] {
            assert_eq!(Epid::derive(aor, machine).as_str(), epid, "{aor} {machine}");
        }
    }

    #[test]
    fn kept_epids_are_hex() {
        assert_eq!(
            Epid::parse("C8CA638A15").map(|e| e.to_string()),
            Ok("c8ca638a15".into())
        );
        assert!(Epid::parse("").is_err());
        assert!(Epid::parse("xyz").is_err());
        assert!(Epid::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn epid_instance_vectors() {
        // testdata/ocs/epid_instance.json (T5); compare case-insensitively.
        let vectors = [
            ("01010101", "4b1682a8-f968-5701-83fc-7c6741dc6697"),
            ("8248ca9ebb", "4233FD41-093B-5FD6-B5D2-651ED55969E6"),
            ("2ebb6f264f", "124841E4-264D-52E8-96C5-D22AA8CDC316"),
            ("c8ca638a15", "34D859DB-6585-5F91-A3B4-DE853C15347D"),
        ];
        for (epid, want) in vectors {
            let got = sip_instance_uuid(epid);
            assert!(got.eq_ignore_ascii_case(want), "{epid}: {got} != {want}");
            assert_eq!(got, got.to_ascii_lowercase());
        }
    }
}
