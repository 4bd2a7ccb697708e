//! Plugging in other security mechanisms (Kerberos through GSSAPI, Windows
//! SSPI, TLS-DSK) for MS-SIPAE, without the core knowing them.
//!
//! The shape follows GSSAPI: an [`Authenticator`] is the credential (one
//! per signed-in user) and starts a [`MechanismContext`] per handshake. The
//! registration runs the token exchange through `gssapi-data`, and once the
//! server's 200 OK names the association (`opaque`) and proves itself
//! (`rspauth`), the context signs every outgoing message and verifies every
//! incoming one, exactly as the built-in NTLM does.

/// A credential for one mechanism. Implemented by the host.
pub trait Authenticator: Send {
    /// The scheme as it appears in challenges and credentials (`Kerberos`,
    /// `NTLM`, `TLS-DSK`); matched case-insensitively.
    fn scheme(&self) -> &str;

    /// Starts a new security context for the server named `targetname`
    /// (e.g. `sip/pool.contoso.com` for Kerberos).
    fn start(&mut self, targetname: &str) -> Result<Box<dyn MechanismContext>, String>;

    /// When the credential lapses (a TLS-DSK certificate's notAfter), if
    /// known: a provisioning host renews it before then.
    fn valid_until(&self) -> Option<std::time::SystemTime> {
        None
    }
}

/// One security context: the token exchange, then message signatures.
pub trait MechanismContext: Send {
    /// The next token to send. `input` is the server's token from the last
    /// challenge (`None` in the first round). An empty result means
    /// nothing more to send.
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String>;

    /// Whether the handshake is done on our side and the context can sign.
    /// TLS-DSK is: its client signs the REGISTER after the last flight
    /// (the server's 200 OK then proves the server). Kerberos is not: the
    /// server's 200 OK finishes it (the default).
    fn is_complete(&self) -> bool {
        false
    }

    /// When the credential behind this context lapses (a TLS-DSK
    /// certificate's notAfter; a Kerberos ticket's end). The registration
    /// authenticates again before then, 5 minutes early, or after the
    /// usual association lifetime if that comes first (MS-SIPAE 3.2.2).
    fn valid_until(&self) -> Option<std::time::SystemTime> {
        None
    }

    /// Signs an MS-SIPAE signature buffer (outgoing message).
    fn sign(&mut self, buffer: &[u8]) -> Result<Vec<u8>, String>;

    /// Checks the server's signature over a buffer (incoming message).
    fn verify(&self, buffer: &[u8], signature: &[u8]) -> Result<(), String>;
}
