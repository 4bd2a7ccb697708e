//! Authentication: pure crypto for MS-SIPAE (NTLM), Digest and OCS endpoint identity.
//!
//! Everything in this module is deterministic: it never reads the clock and never draws
//! random numbers. Values that must be fresh (NTLM client challenge, random session key,
//! timestamps, `crand`, Digest `cnonce`) are passed in by the caller, which keeps the
//! code testable against captured traffic and reusable by a test server.
//!
//! Modules:
//! * [`ntlm`] — connectionless NTLMv2 (MS-NLMP as profiled by MS-SIPAE): CHALLENGE /
//!   AUTHENTICATE messages for both sides, key derivation and SIP message signatures.
//! * [`digest`] — RFC 2617 / RFC 7616 Digest for non-Microsoft registrars and proxies.
//! * [`sigbuf`] — the MS-SIPAE signature buffer that NTLM signatures are computed over.
//! * [`epid`] — `epid` → `+sip.instance` UUID derivation.
//! * [`mechanism`] — the traits a host implements to plug in Kerberos or SSPI.
//! * `tlsdsk` (feature `tls-dsk`) — TLS-DSK: a TLS 1.2 handshake in `gssapi-data`
//!   (rustls from buffers), both sides, and its signing keys.
//! * [`authheader`] — parsing of `Scheme k=v, ...` auth headers and building the
//!   MS-SIPAE `Authorization` / `Proxy-Authorization` value.

/// Constant-time comparison, so that verification time does not leak how
/// many leading bytes of a forged proof, signature or password were right.
/// Every check of a secret against what was sent goes through it.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub mod authheader;
pub mod digest;
pub mod drbg;
pub mod epid;
pub(crate) mod hex;
#[cfg(all(feature = "kerberos", unix))]
pub mod kerberos;
pub mod mechanism;
pub mod ntlm;
pub mod sigbuf;
pub mod sipae;
#[cfg(feature = "tls-dsk")]
pub mod tlsdsk;
