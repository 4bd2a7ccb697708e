//! TLS-DSK ([MS-SIPAE] 3.2.5): a TLS handshake carried in `gssapi-data`
//! of REGISTER challenges, whose only product is a pair of signing keys.
//! No application data ever flows over this TLS session.
//!
//! Both sides are here, sans-IO, on rustls driven from buffers: the
//! client ([`TlsDskAuthenticator`], plugged into the registration as an
//! [`Authenticator`]) and the server half the embedded server uses
//! ([`TlsDskServer`]). The client proves itself with its certificate (the
//! one certificate provisioning issued); the server with its own, checked
//! against the client's trust anchors for `targetname`.
//!
//! Keys: the RFC 5705 exporter with label `client EAP encryption`, no
//! context, 128 bytes (equal to `PRF(master_secret, label, client_random
//! || server_random)` that MS-SIPAE names): bytes 64..96 sign the client's
//! messages, 96..128 the server's. The MAC is HMAC with the negotiated
//! suite's hash (SHA-256 or SHA-384 with the TLS 1.2 suites rustls
//! offers); servers have been seen sending 48-byte `rspauth`s, which is
//! SHA-384. TLS 1.2 only: Schannel on the servers people run has no TLS
//! 1.3, and rustls has no TLS 1.0/1.1 (unpatched Lync 2010/2013 servers
//! that only speak TLS 1.0 are out of reach).
//!
//! [MS-SIPAE]: https://learn.microsoft.com/en-us/openspecs/office_protocols/ms-sipae

use std::sync::Arc;

use hmac::{KeyInit, Mac};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::mechanism::{Authenticator, MechanismContext};

/// The exporter label MS-SIPAE's key derivation uses.
pub const EXPORTER_LABEL: &[u8] = b"client EAP encryption";

/// The largest handshake flight accepted from the peer (a certificate
/// chain; real flights are 1–5 KB).
pub const MAX_FLIGHT_BYTES: usize = 64 * 1024;

/// Which HMAC signs: the negotiated suite's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacHash {
    /// HMAC-SHA-256 (32-byte signatures).
    Sha256,
    /// HMAC-SHA-384 (48-byte signatures).
    Sha384,
}

/// The two signing keys of an established association, from one side's
/// point of view. `Debug` shows no key.
#[derive(Clone)]
pub struct TlsDskKeys {
    ours: [u8; 32],
    theirs: [u8; 32],
    hash: MacHash,
}

impl std::fmt::Debug for TlsDskKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDskKeys")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl TlsDskKeys {
    /// The MAC this association uses.
    pub fn hash(&self) -> MacHash {
        self.hash
    }

    fn mac(&self, key: &[u8; 32], data: &[u8]) -> Vec<u8> {
        match self.hash {
            MacHash::Sha256 => {
                let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            MacHash::Sha384 => {
                let mut m = <hmac::Hmac<sha2::Sha384> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Our signature over an MS-SIPAE buffer.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.mac(&self.ours, data)
    }

    /// Checks the peer's signature (constant time).
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), String> {
        if super::ct_eq(&self.mac(&self.theirs, data), signature) {
            Ok(())
        } else {
            Err("TLS-DSK signature does not verify".into())
        }
    }
}

/// Keys from a finished handshake; `client` says which side we are.
fn derive(conn: &rustls::ConnectionCommon<impl Sized>, client: bool) -> Result<TlsDskKeys, String> {
    let hash = match conn.negotiated_cipher_suite() {
        Some(rustls::SupportedCipherSuite::Tls12(s)) => match s.common.hash_provider.algorithm() {
            rustls::crypto::hash::HashAlgorithm::SHA256 => MacHash::Sha256,
            rustls::crypto::hash::HashAlgorithm::SHA384 => MacHash::Sha384,
            other => return Err(format!("TLS-DSK: no MAC for the suite's hash {other:?}")),
        },
        other => return Err(format!("TLS-DSK needs TLS 1.2, got {other:?}")),
    };
    let mut km = [0u8; 128];
    let km = conn
        .export_keying_material(&mut km, EXPORTER_LABEL, None)
        .map_err(|e| format!("TLS-DSK key export: {e}"))?;
    let mut client_key = [0u8; 32];
    let mut server_key = [0u8; 32];
    client_key.copy_from_slice(&km[64..96]);
    server_key.copy_from_slice(&km[96..128]);
    let (ours, theirs) = if client {
        (client_key, server_key)
    } else {
        (server_key, client_key)
    };
    Ok(TlsDskKeys { ours, theirs, hash })
}

/// Feeds a peer's flight to a connection and returns ours.
fn exchange<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    input: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    if let Some(mut bytes) = input {
        if bytes.len() > MAX_FLIGHT_BYTES {
            return Err(format!(
                "TLS-DSK flight of {} bytes (at most {MAX_FLIGHT_BYTES})",
                bytes.len()
            ));
        }
        while !bytes.is_empty() {
            let n = conn
                .read_tls(&mut bytes)
                .map_err(|e| format!("TLS-DSK: {e}"))?;
            if n == 0 {
                break;
            }
            conn.process_new_packets()
                .map_err(|e| format!("TLS-DSK handshake: {e}"))?;
        }
    }
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)
            .map_err(|e| format!("TLS-DSK: {e}"))?;
    }
    Ok(out)
}

/// A certificate's notAfter.
fn not_after(cert: &CertificateDer<'_>) -> Option<std::time::SystemTime> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let secs = c.validity().not_after.timestamp();
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A user's TLS-DSK credential: the certificate certificate provisioning
/// issued (with its chain), its private key, and the trust anchors the
/// server's certificate is checked against. `Debug` shows no key.
#[derive(Clone)]
pub struct TlsDskAuthenticator {
    config: Arc<rustls::ClientConfig>,
    not_after: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for TlsDskAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsDskAuthenticator(..)")
    }
}

impl TlsDskAuthenticator {
    /// A credential from the user's certificate chain (leaf first), its
    /// key, and the roots that vouch for the server.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: rustls::RootCertStore,
    ) -> Result<TlsDskAuthenticator, String> {
        let not_after = chain.first().and_then(|c| not_after(c));
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("TLS-DSK certificate: {e}"))?;
        // Every association is a full handshake (MS-SIPAE 4.4's four
        // flights): a resumed one would skip the client certificate and
        // change the number of legs.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsDskAuthenticator {
            config: Arc::new(config),
            not_after,
        })
    }

    /// [`TlsDskAuthenticator::new`] from PEM files: the certificate chain
    /// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert: &std::path::Path,
        key: &std::path::Path,
        roots: rustls::RootCertStore,
    ) -> Result<TlsDskAuthenticator, String> {
        let read =
            |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let (c, k) = (read(cert)?, read(key)?);
        TlsDskAuthenticator::from_pem(&c, &k, roots)
            .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))
    }

    /// [`TlsDskAuthenticator::new`] from PEM text: the certificate chain
    /// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(
        cert: &[u8],
        key: &[u8],
        roots: rustls::RootCertStore,
    ) -> Result<TlsDskAuthenticator, String> {
        use rustls::pki_types::pem::PemObject;
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate: {e}"))?;
        if chain.is_empty() {
            return Err("no certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("private key: {e}"))?;
        TlsDskAuthenticator::new(chain, key, roots)
    }

    /// When the certificate lapses (its notAfter), as read from it.
    pub fn not_after(&self) -> Option<std::time::SystemTime> {
        self.not_after
    }
}

impl Authenticator for TlsDskAuthenticator {
    fn scheme(&self) -> &str {
        "TLS-DSK"
    }

    fn start(&mut self, targetname: &str) -> Result<Box<dyn MechanismContext>, String> {
        let name = ServerName::try_from(targetname.to_owned())
            .map_err(|e| format!("targetname {targetname:?}: {e}"))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), name)
            .map_err(|e| format!("TLS-DSK: {e}"))?;
        Ok(Box::new(TlsDskClient {
            conn,
            keys: None,
            not_after: self.not_after,
        }))
    }

    fn valid_until(&self) -> Option<std::time::SystemTime> {
        self.not_after
    }
}

/// The client's side of one TLS-DSK handshake, then its association.
struct TlsDskClient {
    conn: rustls::ClientConnection,
    keys: Option<TlsDskKeys>,
    not_after: Option<std::time::SystemTime>,
}

impl MechanismContext for TlsDskClient {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        if self.keys.is_some() {
            return Err("TLS-DSK handshake already finished".into());
        }
        let out = exchange(&mut self.conn, input)?;
        if !self.conn.is_handshaking() {
            self.keys = Some(derive(&self.conn, true)?);
        }
        Ok(out)
    }

    fn is_complete(&self) -> bool {
        self.keys.is_some()
    }

    fn valid_until(&self) -> Option<std::time::SystemTime> {
        self.not_after
    }

    fn sign(&mut self, buffer: &[u8]) -> Result<Vec<u8>, String> {
        match &self.keys {
            Some(k) => Ok(k.sign(buffer)),
            None => Err("TLS-DSK handshake not finished".into()),
        }
    }

    fn verify(&self, buffer: &[u8], signature: &[u8]) -> Result<(), String> {
        match &self.keys {
            Some(k) => k.verify(buffer, signature),
            None => Err("TLS-DSK handshake not finished".into()),
        }
    }
}

/// The server's side of one TLS-DSK handshake (the embedded server's
/// registrar): takes the client's flights, gives its own, and once done
/// names the client by its certificate.
pub struct TlsDskServer {
    conn: rustls::ServerConnection,
    keys: Option<TlsDskKeys>,
}

impl std::fmt::Debug for TlsDskServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDskServer")
            .field("done", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsDskServer {
    /// A server configuration for TLS-DSK: TLS 1.2, the server's
    /// certificate for `targetname`, and client certificates required and
    /// checked against `client_roots` (the CA certificate provisioning
    /// issues from).
    pub fn config(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_roots: rustls::RootCertStore,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_roots),
            provider(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        // No resumption: each association proves the client certificate.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }

    /// A new handshake.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Result<TlsDskServer, String> {
        Ok(TlsDskServer {
            conn: rustls::ServerConnection::new(config).map_err(|e| e.to_string())?,
            keys: None,
        })
    }

    /// Takes the client's flight and returns the server's.
    pub fn step(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        if self.keys.is_some() {
            return Err("TLS-DSK handshake already finished".into());
        }
        let out = exchange(&mut self.conn, Some(input))?;
        if !self.conn.is_handshaking() {
            self.keys = Some(derive(&self.conn, false)?);
        }
        Ok(out)
    }

    /// The keys, once the handshake is done.
    pub fn keys(&self) -> Option<&TlsDskKeys> {
        self.keys.as_ref()
    }

    /// The client's certificate (leaf), once it was checked.
    pub fn client_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.conn.peer_certificates().and_then(|c| c.first())
    }
}

/// Signs and verifies with established keys: the server's half of an
/// association ([`crate::auth::sipae::SecurityAssociation::external`]).
#[derive(Debug)]
pub struct KeysContext(pub TlsDskKeys);

impl MechanismContext for KeysContext {
    fn step(&mut self, _input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        Err("TLS-DSK handshake already finished".into())
    }

    fn is_complete(&self) -> bool {
        true
    }

    fn sign(&mut self, buffer: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.0.sign(buffer))
    }

    fn verify(&self, buffer: &[u8], signature: &[u8]) -> Result<(), String> {
        self.0.verify(buffer, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pki {
        roots: rustls::RootCertStore,
        server: Arc<rustls::ServerConfig>,
        client_chain: Vec<CertificateDer<'static>>,
        client_key: PrivateKeyDer<'static>,
    }

    fn pki(target: &str, user: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let skey = rcgen::KeyPair::generate().expect("key");
        let scert = rcgen::CertificateParams::new(vec![target.to_owned()])
            .expect("params")
            .signed_by(&skey, &issuer)
            .expect("cert");
        let ckey = rcgen::KeyPair::generate().expect("key");
        let mut cparams = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        cparams
            .distinguished_name
            .push(rcgen::DnType::CommonName, user);
        let ccert = cparams.signed_by(&ckey, &issuer).expect("cert");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");
        let server = TlsDskServer::config(
            vec![scert.der().clone()],
            PrivateKeyDer::try_from(skey.serialize_der()).expect("key"),
            roots.clone(),
        )
        .expect("server config");
        Pki {
            roots,
            server,
            client_chain: vec![ccert.der().clone()],
            client_key: PrivateKeyDer::try_from(ckey.serialize_der()).expect("key"),
        }
    }

    /// Runs the handshake the way the REGISTERs carry it; returns the
    /// client context, the server, and the flights' sizes.
    fn handshake(p: &Pki, target: &str) -> (Box<dyn MechanismContext>, TlsDskServer, Vec<usize>) {
        let mut auth = TlsDskAuthenticator::new(
            p.client_chain.clone(),
            p.client_key.clone_key(),
            p.roots.clone(),
        )
        .expect("credential");
        assert_eq!(auth.scheme(), "TLS-DSK");
        let mut client = auth.start(target).expect("start");
        let mut server = TlsDskServer::new(p.server.clone()).expect("server");
        let mut sizes = Vec::new();
        let hello = client.step(None).expect("client hello");
        sizes.push(hello.len());
        let s1 = server.step(&hello).expect("server hello");
        sizes.push(s1.len());
        let c2 = client.step(Some(&s1)).expect("client flight");
        sizes.push(c2.len());
        assert!(
            !client.is_complete(),
            "the client waits for the server's Finished"
        );
        let s2 = server.step(&c2).expect("server finished");
        sizes.push(s2.len());
        assert!(server.keys().is_some());
        let c3 = client.step(Some(&s2)).expect("client done");
        assert!(c3.is_empty(), "nothing more to send");
        assert!(client.is_complete());
        (client, server, sizes)
    }

    #[test]
    fn a_handshake_in_four_flights_gives_both_sides_the_same_keys() {
        let p = pki("pool.contoso.com", "alice@contoso.com");
        let (mut client, server, sizes) = handshake(&p, "pool.contoso.com");
        assert_eq!(sizes.len(), 4);
        assert!(sizes.iter().all(|s| *s > 0), "{sizes:?}");
        let keys = server.keys().expect("keys");
        let buf = b"<TLS-DSK><01234567><1><SIP Communications Service><pool.contoso.com>";
        // The client signs, the server checks, and the other way round.
        let sig = client.sign(buf).expect("sign");
        assert_eq!(
            sig.len(),
            if keys.hash() == MacHash::Sha384 {
                48
            } else {
                32
            }
        );
        keys.verify(buf, &sig)
            .expect("the server checks the client");
        let back = keys.sign(buf);
        client
            .verify(buf, &back)
            .expect("the client checks the server");
        // Each side's key is its own: a server signature is not a client one.
        assert!(keys.verify(buf, &back).is_err());
        // A forged or altered signature fails.
        let mut forged = back.clone();
        forged[0] ^= 1;
        assert!(client.verify(buf, &forged).is_err());
        assert!(client.verify(b"other buffer", &back).is_err());
        // The client is named by its certificate.
        assert!(server.client_certificate().is_some());
        // Two handshakes, two different key sets.
        let (mut c2, _, _) = handshake(&p, "pool.contoso.com");
        assert_ne!(c2.sign(buf).expect("sign"), sig);
        // The same credential again: a full handshake, never a resumed
        // one (which would skip the certificate and a leg).
        let mut auth = TlsDskAuthenticator::new(
            p.client_chain.clone(),
            p.client_key.clone_key(),
            p.roots.clone(),
        )
        .expect("credential");
        for _ in 0..2 {
            let mut client = auth.start("pool.contoso.com").expect("start");
            let mut server = TlsDskServer::new(p.server.clone()).expect("server");
            let s1 = server.step(&client.step(None).expect("hello")).expect("s1");
            let c2 = client.step(Some(&s1)).expect("c2");
            assert!(!client.is_complete(), "resumed");
            let s2 = server.step(&c2).expect("s2");
            assert!(client.step(Some(&s2)).expect("done").is_empty());
            assert!(client.is_complete());
        }
    }

    #[test]
    fn a_server_certificate_for_another_name_or_a_foreign_ca_is_refused() {
        let p = pki("pool.contoso.com", "alice@contoso.com");
        let mut auth = TlsDskAuthenticator::new(
            p.client_chain.clone(),
            p.client_key.clone_key(),
            p.roots.clone(),
        )
        .expect("credential");
        let mut client = auth.start("evil.contoso.com").expect("start");
        let mut server = TlsDskServer::new(p.server.clone()).expect("server");
        let hello = client.step(None).expect("hello");
        let s1 = server.step(&hello).expect("server hello");
        let e = client.step(Some(&s1)).expect_err("wrong name");
        assert!(e.contains("TLS-DSK handshake"), "{e}");

        // A client certificate from another CA: the server refuses it.
        let other = pki("pool.contoso.com", "mallory@contoso.com");
        let mut auth = TlsDskAuthenticator::new(
            other.client_chain.clone(),
            other.client_key.clone_key(),
            p.roots.clone(),
        )
        .expect("credential");
        let mut client = auth.start("pool.contoso.com").expect("start");
        let mut server = TlsDskServer::new(p.server.clone()).expect("server");
        let hello = client.step(None).expect("hello");
        let s1 = server.step(&hello).expect("server hello");
        let c2 = client.step(Some(&s1)).expect("client flight");
        assert!(
            server.step(&c2).is_err(),
            "foreign client certificate accepted"
        );
        // Garbage instead of a flight.
        let mut server = TlsDskServer::new(p.server.clone()).expect("server");
        assert!(server.step(b"\x16\x03\x01\x00\x05hello").is_err());
        assert!(server.step(&vec![0u8; MAX_FLIGHT_BYTES + 1]).is_err());
    }
}
