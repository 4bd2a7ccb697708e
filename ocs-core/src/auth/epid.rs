//! `epid` → `+sip.instance` UUID (MS-SIPAE 3.3.5.2 requires servers to check it).
//!
//! The REGISTER `Contact` carries `+sip.instance="<urn:uuid:…>"`, and the server checks
//! that this UUID is derived from the `epid` in `From`. The derivation is a name-based
//! (version 5, SHA-1) UUID, but with Windows GUID byte order: the namespace is hashed in
//! its little-endian GUID serialisation and the first three fields of the hash are read
//! little-endian. A standard RFC 4122 v5 implementation therefore gives a different value.

use sha1::{Digest, Sha1};

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
