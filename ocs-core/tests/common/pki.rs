//! A throw-away test CA and a server certificate it signed, for TLS tests.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

/// A CA standing in for the pool's (certificate provisioning issues user
/// certificates from it), the pool's certificate, and user certificates.
pub struct Ca {
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    der: CertificateDer<'static>,
}

impl Default for Ca {
    fn default() -> Ca {
        Ca::new()
    }
}

impl Ca {
    /// A fresh CA.
    pub fn new() -> Ca {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).expect("ca").der().clone();
        Ca { key, params, der }
    }

    /// A root store holding this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut r = rustls::RootCertStore::empty();
        r.add(self.der.clone()).expect("root");
        r
    }

    /// A certificate for host names (`names`) or a user (`cn`).
    pub fn issue(
        &self,
        names: &[&str],
        cn: Option<&str>,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        self.issue_until(names, cn, None)
    }

    /// [`Ca::issue`], valid until `not_after` when given.
    pub fn issue_until(
        &self,
        names: &[&str],
        cn: Option<&str>,
        not_after: Option<std::time::SystemTime>,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        if let Some(cn) = cn {
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        if let Some(t) = not_after {
            p.not_after = t.into();
        }
        let cert = p.signed_by(&key, &issuer).expect("cert");
        (
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
        )
    }
}
