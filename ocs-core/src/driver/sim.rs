//! The loopback driver for the embedded test server (features `sim` and
//! `tokio`): UDP, TCP and optionally TLS listeners feeding one task that
//! owns the [`SimServer`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::sim::SimServer;

type Job = Box<dyn FnOnce(&mut SimServer, Instant) + Send>;

enum Input {
    Stream(SocketAddr, Vec<u8>),
    Open(SocketAddr, Conn),
    Closed(SocketAddr),
    Job(Job),
}

/// The owner's side of one stream connection: its writer's queue, and the
/// reader's stop signal (dropping both closes the connection).
struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    stop: oneshot::Sender<()>,
}

/// Reads from every connection wait when this many are queued for the
/// server, so a flooding peer is slowed by TCP instead of filling memory.
const INPUT_QUEUE: usize = 1024;
/// Pieces queued for one peer that does not read; then it is disconnected.
const OUTPUT_QUEUE: usize = 1024;

/// A running test server. Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    /// UDP listening address.
    pub udp: SocketAddr,
    /// TCP listening address.
    pub tcp: SocketAddr,
    /// TLS listening address, when a certificate was given.
    pub tls: Option<SocketAddr>,
    /// The web services (autodiscover, OAuth tokens) over plain HTTP:
    /// `http://{http}/autodiscover/autodiscoverservice.svc/root`.
    pub http: SocketAddr,
    inputs: mpsc::Sender<Input>,
    tasks: Vec<JoinHandle<()>>,
    /// Dropped with the handle: every connection task watches it, so
    /// stopping the server closes its connections as a real restart would.
    _shutdown: watch::Sender<()>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SimHandle {
    /// Runs `f` on the server inside its task and returns its result
    /// (configure users, force a sign-out, inspect bindings).
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SimServer, Instant) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |s, now| {
            let _ = tx.send(f(s, now));
        });
        self.inputs.send(Input::Job(job)).await.ok()?;
        rx.await.ok()
    }
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// The wall clock, for certificate validity (this driver's only other
/// clock read).
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// A throw-away certificate authority and a server certificate it signed,
/// for the embedded server's TLS listener: trust [`SimPki::ca_pem`] (or
/// [`SimPki::ca_der`]) in the client, as an enterprise CA.
pub struct SimPki {
    /// The CA certificate, PEM (to write to a file for `--ca`).
    pub ca_pem: String,
    /// The CA certificate, DER (for [`crate::driver::TlsSettings::extra_roots`]).
    pub ca_der: rustls::pki_types::CertificateDer<'static>,
    /// A server configuration whose certificate names the given hosts.
    pub server: Arc<rustls::ServerConfig>,
    ca_key: Arc<rcgen::KeyPair>,
    ca_params: rcgen::CertificateParams,
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SimPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPki").finish_non_exhaustive()
    }
}

impl SimPki {
    /// A fresh CA (P-256 keys, rcgen's default) and a server certificate
    /// for `names` (host names or IP literals).
    pub fn generate(names: &[String]) -> io::Result<SimPki> {
        let err = |e: rcgen::Error| io::Error::other(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ocs embedded test server CA");
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let cert = rcgen::CertificateParams::new(names.to_vec())
            .map_err(err)?
            .signed_by(&key, &issuer)
            .map_err(err)?;
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(io::Error::other)?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(SimPki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server: Arc::new(server),
            ca_key: Arc::new(ca_key),
            ca_params,
        })
    }

    /// TLS settings that trust this CA only (a client of the embedded
    /// server).
    pub fn client_tls(&self) -> crate::driver::TlsSettings {
        crate::driver::TlsSettings {
            extra_roots: vec![self.ca_der.clone()],
            no_platform_roots: true,
            ..crate::driver::TlsSettings::default()
        }
    }

    /// Certificate provisioning for the embedded server
    /// ([`crate::sim::SimServer::set_cert_issuer`]): signs a user's PKCS#10
    /// request (its signature checked) with this CA, for 180 days, with the
    /// subject CN set to the user whatever the request asked for.
    pub fn cert_issuer(&self) -> crate::sim::web::CertIssuer {
        let key = self.ca_key.clone();
        let params = self.ca_params.clone();
        Arc::new(move |csr: &[u8], entity: &str| {
            let der = rustls::pki_types::CertificateSigningRequestDer::from(csr.to_vec());
            let req = rcgen::CertificateSigningRequestParams::from_der(&der)
                .map_err(|e| e.to_string())?;
            let mut p = req.params.clone();
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::CommonName, entity);
            p.distinguished_name = dn;
            p.not_after = (wall_now() + std::time::Duration::from_secs(180 * 86_400)).into();
            let issuer = rcgen::Issuer::from_params(&params, &*key);
            let cert = rcgen::CertificateSigningRequestParams {
                params: p,
                public_key: req.public_key,
            }
            .signed_by(&issuer)
            .map_err(|e| e.to_string())?;
            Ok(cert.der().to_vec())
        })
    }

    /// A certificate from this CA: for host `names`, or for a user (the
    /// subject CN `user@domain`, as certificate provisioning issues).
    pub fn issue(&self, names: &[String], cn: Option<&str>) -> io::Result<IssuedCertificate> {
        let err = |e: rcgen::Error| io::Error::other(e.to_string());
        let issuer = rcgen::Issuer::from_params(&self.ca_params, &*self.ca_key);
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(err)?;
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The TLS-DSK server configuration of a registrar whose targetname
    /// is `targetname`: a certificate for it from this CA, and client
    /// certificates checked against this CA
    /// ([`crate::sim::Registrar::set_tls_dsk`]).
    pub fn tls_dsk_config(&self, targetname: &str) -> io::Result<Arc<rustls::ServerConfig>> {
        use rustls::pki_types::pem::PemObject;
        let issued = self.issue(&[targetname.to_owned()], None)?;
        let chain = vec![
            rustls::pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
                .map_err(|e| io::Error::other(e.to_string()))?,
        ];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|e| io::Error::other(e.to_string()))?;
        crate::auth::tlsdsk::TlsDskServer::config(chain, key, roots).map_err(io::Error::other)
    }
}

/// The embedded OCS-dialect server for `domain` with these users
/// (`(name, password)`, NTLM domain the first label of `domain` in upper
/// case, e.g. `CONTOSO`), on free loopback ports: for tests, examples and
/// trying the library without a server.
pub async fn serve_users(domain: &str, users: &[(&str, &str)]) -> io::Result<SimHandle> {
    let (r, seed) = registrar_for(domain, users, crate::sim::AuthMode::Ntlm)?;
    let server = SimServer::new(r, crate::rng::Rng::from_seed(seed ^ 0x5e4));
    serve(server, IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0, None).await
}

/// The embedded server set up as a Lync pool for `domain` with these
/// users: TLS with a CA of its own, TLS-DSK instead of NTLM, autodiscover,
/// the token service and certificate provisioning; on free loopback ports.
/// The [`SimPki`] is for the client: its trust ([`SimPki::client_tls`]) and,
/// where provisioning is not used, certificates ([`SimPki::issue`]).
pub async fn serve_tls_dsk_users(
    domain: &str,
    users: &[(&str, &str)],
) -> io::Result<(SimHandle, SimPki)> {
    let (mut r, seed) = registrar_for(domain, users, crate::sim::AuthMode::TlsDsk)?;
    let pki = SimPki::generate(&["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let target = crate::sim::RegistrarConfig::ocs(domain).targetname;
    r.set_tls_dsk(pki.tls_dsk_config(&target)?, None);
    let mut server = SimServer::new(r, crate::rng::Rng::from_seed(seed ^ 0x5e4));
    server.set_cert_issuer(pki.cert_issuer());
    let handle = serve(
        server,
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        0,
        Some(pki.server.clone()),
    )
    .await?;
    // The challenge names the provisioning service, as a pool's does.
    let sts = format!(
        "http://{}/CertProv/CertProvisioningService.svc",
        handle.http
    );
    handle
        .with(move |s, _| s.registrar_mut().set_sts_uri(Some(sts)))
        .await
        .ok_or_else(|| io::Error::other("the embedded server stopped"))?;
    Ok((handle, pki))
}

/// A registrar for `domain` with `users` under `auth`, seeded from the
/// OS's entropy; and the seed, for the server's other randomness.
fn registrar_for(
    domain: &str,
    users: &[(&str, &str)],
    auth: crate::sim::AuthMode,
) -> io::Result<(crate::sim::Registrar, u64)> {
    let mut entropy = [0u8; 32];
    getrandom::fill(&mut entropy).map_err(|e| io::Error::other(e.to_string()))?;
    let seed = u64::from_le_bytes(entropy[..8].try_into().unwrap_or([0; 8]));
    let mut cfg = crate::sim::RegistrarConfig::ocs(domain);
    cfg.auth = auth;
    let mut r = crate::sim::Registrar::new(cfg, crate::rng::Rng::from_seed(seed), entropy);
    let ntlm_domain = domain
        .split('.')
        .next()
        .unwrap_or(domain)
        .to_ascii_uppercase();
    for (name, password) in users {
        r.add_user(name, &ntlm_domain, password);
    }
    Ok((r, seed))
}

/// Serves `server` on `ip` (port 0 picks free ports; use a fixed port to
/// be reachable at a known address). `tls` enables a TLS listener.
pub async fn serve(
    mut server: SimServer,
    ip: IpAddr,
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<SimHandle> {
    let udp = Arc::new(UdpSocket::bind(SocketAddr::new(ip, port)).await?);
    let udp_addr = udp.local_addr()?;
    let tcp = TcpListener::bind(SocketAddr::new(ip, port)).await?;
    let tcp_addr = tcp.local_addr()?;
    let tls_listener = match &tls {
        Some(_) => Some(
            TcpListener::bind(SocketAddr::new(ip, if port == 0 { 0 } else { port + 1 })).await?,
        ),
        None => None,
    };
    let tls_addr = tls_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let http = TcpListener::bind(SocketAddr::new(ip, if port == 0 { 0 } else { port + 2 })).await?;
    let http_addr = http.local_addr()?;
    // Autodiscover names the TLS listener when there is one, as a pool
    // names its TLS port.
    server.set_web_wall_origin(now(), wall_now());
    server.configure_web(crate::sim::web::WebConfig {
        base_url: format!("http://{http_addr}"),
        sip_fqdn: ip.to_string(),
        sip_port: tls_addr.unwrap_or(tcp_addr).port(),
    });
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(());
    let mut tasks = Vec::new();

    // TCP (and TLS) accept loops: one reader/writer task per connection.
    fn spawn_conn<S>(
        stream: S,
        peer: SocketAddr,
        in_tx: mpsc::Sender<Input>,
        mut shutdown: watch::Receiver<()>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUTPUT_QUEUE);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let conn = Conn {
                out: out_tx,
                stop: stop_tx,
            };
            if in_tx.send(Input::Open(peer, conn)).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 65536];
            loop {
                tokio::select! {
                    r = rd.read(&mut buf) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if in_tx.send(Input::Stream(peer, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    },
                    _ = &mut stop_rx => break,
                    _ = shutdown.changed() => break,
                }
            }
            let _ = in_tx.send(Input::Closed(peer)).await;
        });
    }
    {
        let in_tx = in_tx.clone();
        let shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok((s, peer)) = tcp.accept().await {
                let _ = s.set_nodelay(true);
                spawn_conn(s, peer, in_tx.clone(), shutdown.clone());
            }
        }));
    }
    if let (Some(l), Some(cfg)) = (tls_listener, tls) {
        let in_tx = in_tx.clone();
        let shutdown = shutdown_rx.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        tasks.push(tokio::spawn(async move {
            while let Ok((s, peer)) = l.accept().await {
                let acceptor = acceptor.clone();
                let in_tx = in_tx.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    if let Ok(t) = acceptor.accept(s).await {
                        spawn_conn(t, peer, in_tx, shutdown);
                    }
                });
            }
        }));
    }

    {
        let in_tx = in_tx.clone();
        let shutdown = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok((s, _)) = http.accept().await {
                tokio::spawn(serve_http(s, in_tx.clone(), shutdown.clone()));
            }
        }));
    }

    // The owner task.
    let udp_rx = udp.clone();
    tasks.push(tokio::spawn(async move {
        let mut writers: HashMap<SocketAddr, Conn> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let deadline = server.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = udp_rx.recv_from(&mut buf) => {
                    if let Ok((n, peer)) = r {
                        server.handle_datagram(peer, &buf[..n], now());
                    }
                }
                i = in_rx.recv() => match i {
                    Some(Input::Stream(peer, b)) => server.handle_stream(peer, &b, now()),
                    Some(Input::Open(peer, w)) => { writers.insert(peer, w); }
                    Some(Input::Closed(peer)) => {
                        writers.remove(&peer);
                        server.handle_disconnect(peer);
                    }
                    Some(Input::Job(job)) => job(&mut server, now()),
                    None => return,
                },
                _ = sleep => server.handle_timeout(now()),
            }
            while let Some((peer, bytes)) = server.poll_transmit() {
                match writers.get(&peer) {
                    Some(w) => {
                        // A peer that does not read what it asked for is
                        // cut off rather than queued for without end.
                        if w.out.try_send(bytes).is_err()
                            && let Some(w) = writers.remove(&peer)
                        {
                            let _ = w.stop.send(());
                        }
                    }
                    None => {
                        let _ = udp_rx.send_to(&bytes, peer).await;
                    }
                }
            }
            // Dropping the writer's queue ends it once the answers queued
            // before (a 513) are written; the reader stops too.
            while let Some(peer) = server.poll_close() {
                if let Some(w) = writers.remove(&peer) {
                    let _ = w.stop.send(());
                }
            }
        }
    }));
    Ok(SimHandle {
        udp: udp_addr,
        tcp: tcp_addr,
        tls: tls_addr,
        http: http_addr,
        inputs: in_tx,
        tasks,
        _shutdown: shutdown_tx,
    })
}

/// A web request must arrive whole within this time (no slowloris).
const HTTP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// One HTTP connection: one request, its answer (from the owner task),
/// then close.
async fn serve_http(
    mut s: tokio::net::TcpStream,
    in_tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<()>,
) {
    use crate::sim::web::{WebResponse, parse_request};
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match parse_request(&buf) {
                Ok(Some((req, _))) => return Ok(req),
                Ok(None) => {}
                Err(e) => return Err(WebResponse::error(e.status(), &e.to_string())),
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(WebResponse::error(400, "the request ended early")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let answer = tokio::select! {
        r = tokio::time::timeout(HTTP_DEADLINE, read) => match r {
            Ok(Ok(req)) => {
                let (tx, rx) = oneshot::channel();
                let job: Job = Box::new(move |server, now| {
                    let _ = tx.send(server.handle_http(&req, now));
                });
                if in_tx.send(Input::Job(job)).await.is_err() {
                    return;
                }
                match rx.await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
            Ok(Err(r)) => r,
            Err(_) => WebResponse::error(408, "the request took too long"),
        },
        _ = shutdown.changed() => return,
    };
    let _ = s.write_all(&answer.to_bytes()).await;
    let _ = s.shutdown().await;
}
