//! A throw-away test CA and a server certificate it signed, for TLS tests.

use std::sync::Arc;

/// A CA certificate (to trust) and a rustls server configuration whose
/// certificate the CA signed.
pub struct Pki {
    /// The CA certificate, DER.
    pub ca_der: rustls::pki_types::CertificateDer<'static>,
    /// A server configuration with a certificate for the name given.
    pub server: Arc<rustls::ServerConfig>,
}

/// A fresh CA and a server certificate for `name` (a host name or IP).
pub fn make_pki(name: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key_der)
    .expect("server config");
    Pki {
        ca_der: ca.der().clone(),
        server: Arc::new(server),
    }
}
