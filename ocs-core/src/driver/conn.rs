//! One connection to the server: UDP (connected socket), TCP or TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::discovery::{Candidate, Transport};

/// TLS settings. The server certificate is always verified against the
/// host name that discovery or configuration produced, unless the caller
/// opts out with the `dangerous_` knob.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Extra trust anchors (an enterprise CA), DER encoded.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Don't load the platform's trust store (tests with a private CA).
    pub no_platform_roots: bool,
    /// Accept any server certificate. Only for labs; never in production.
    pub dangerous_accept_any_certificate: bool,
}

impl TlsSettings {
    /// Reads PEM certificates from a file and adds them as trust anchors.
    pub fn add_ca_file(&mut self, path: &std::path::Path) -> io::Result<usize> {
        use rustls::pki_types::pem::PemObject;
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
        {
            let cert =
                cert.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.extra_roots.push(cert);
            n += 1;
        }
        Ok(n)
    }

    /// Builds the rustls client configuration.
    pub fn client_config(&self) -> io::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(e.to_string()))?;
        if self.dangerous_accept_any_certificate {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::AcceptAny(provider)))
                .with_no_client_auth());
        }
        Ok(builder
            .with_root_certificates(self.root_store()?)
            .with_no_client_auth())
    }

    /// The trust anchors these settings name: the platform's (unless
    /// `no_platform_roots`) and the extra ones. TLS-DSK checks the
    /// server's certificate against them too.
    pub fn root_store(&self) -> io::Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        if !self.no_platform_roots {
            for c in native_roots() {
                let _ = roots.add(c.clone());
            }
        }
        for c in &self.extra_roots {
            roots
                .add(c.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
        Ok(roots)
    }
}

/// The platform's trust store, read once per process: reading it costs
/// milliseconds, ten times a whole registration on loopback.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

mod danger {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Accepts any certificate but still checks handshake signatures.
    #[derive(Debug)]
    pub(super) struct AcceptAny(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// How much one read from a stream takes at most (the framer joins the
/// pieces).
const STREAM_READ: usize = 16 * 1024;

thread_local! {
    /// Room for a whole UDP datagram; borrowed only inside a non-blocking
    /// read, never across an await.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 65_535]);
}

fn with_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with(|b| f(&mut b.borrow_mut()))
}

/// An open connection.
#[derive(Debug)]
pub(crate) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    /// Connects to a candidate: the TCP connect within `tcp_timeout`, the
    /// TLS handshake within `tls_timeout`. Errors name the step and the
    /// target (`TLS handshake with fe2.contoso.com:5061 timed out after
    /// 10 s`).
    pub(crate) async fn connect(
        c: &Candidate,
        tls: &TlsSettings,
        tls_config: &mut Option<Arc<rustls::ClientConfig>>,
        tcp_timeout: Duration,
        tls_timeout: Duration,
    ) -> io::Result<(Conn, SocketAddr)> {
        // TLS configuration is built on first use: UDP and TCP users never
        // pay for the trust store.
        if c.transport == Transport::Tls && tls_config.is_none() {
            *tls_config = Some(Arc::new(tls.client_config()?));
        }
        let tcp = |addr: SocketAddr| async move {
            let s = tokio::time::timeout(tcp_timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "TCP connect to {addr} timed out after {}",
                            crate::error::show_duration(tcp_timeout)
                        ),
                    )
                })?
                .map_err(|e| io::Error::new(e.kind(), format!("TCP connect to {addr}: {e}")))?;
            s.set_nodelay(true)?;
            Ok::<_, io::Error>(s)
        };
        match c.transport {
            Transport::Udp => {
                let bind: SocketAddr = if c.addr.is_ipv4() {
                    "0.0.0.0:0".parse().map_err(io::Error::other)?
                } else {
                    "[::]:0".parse().map_err(io::Error::other)?
                };
                let s = UdpSocket::bind(bind).await?;
                s.connect(c.addr).await?;
                let local = s.local_addr()?;
                Ok((Conn::Udp(s), local))
            }
            Transport::Tcp => {
                let s = tcp(c.addr).await?;
                let local = s.local_addr()?;
                Ok((Conn::Tcp(s), local))
            }
            Transport::Tls => {
                let s = tcp(c.addr).await?;
                let local = s.local_addr()?;
                let host = c.host.trim_end_matches('.');
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let Some(cfg) = tls_config.clone() else {
                    return Err(io::Error::other("TLS configuration missing"));
                };
                let target = format!("{host}:{}", c.addr.port());
                let t = tokio::time::timeout(tls_timeout, TlsConnector::from(cfg).connect(name, s))
                    .await
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "TLS handshake with {target} timed out after {}",
                                crate::error::show_duration(tls_timeout)
                            ),
                        )
                    })?
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("TLS handshake with {target}: {e}"))
                    })?;
                Ok((Conn::Tls(Box::new(t)), local))
            }
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(bytes).await.map(|_| ()),
            Conn::Tcp(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Reads what is available; `Ok(0)` means the peer closed the stream.
    /// The next bytes from the connection (empty: closed by the peer).
    ///
    /// UDP and TCP wait for readiness and then read into one scratch buffer
    /// per thread, so an idle client holds no receive buffer: a per-client
    /// buffer (64 KB for a whole datagram, 8 KB for a stream) was most of
    /// a client's memory (`ocs load`). TLS reads through rustls into an
    /// 8 KB buffer that lives while it waits.
    pub(crate) async fn recv(&mut self) -> io::Result<Vec<u8>> {
        match self {
            Conn::Udp(s) => loop {
                s.readable().await?;
                match with_scratch(|buf| s.try_recv(buf).map(|n| buf[..n].to_vec())) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
            Conn::Tcp(s) => loop {
                s.readable().await?;
                match with_scratch(|buf| {
                    s.try_read(&mut buf[..STREAM_READ])
                        .map(|n| buf[..n].to_vec())
                }) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            },
            Conn::Tls(s) => {
                let mut buf = vec![0u8; STREAM_READ];
                let n = s.read(&mut buf).await?;
                buf.truncate(n);
                Ok(buf)
            }
        }
    }
}
