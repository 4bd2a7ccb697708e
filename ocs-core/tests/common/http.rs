//! A small HTTP/1.1 file server on loopback for download tests: serves
//! the files put into it (by path), answers 404 for others, can be told
//! to fail with a status, logs every path asked for, and can demand NTLM
//! (connection-oriented, as IIS does: the connection is authenticated,
//! using the server half of `ocs_core::auth::ntlm`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server serves, shared with the test.
#[derive(Debug, Default)]
pub struct Files {
    /// Path → body.
    pub files: HashMap<String, Vec<u8>>,
    /// When set: every request gets this status and these extra headers.
    pub fail: Option<(u16, Vec<(String, String)>)>,
    /// Every path asked for, in order.
    pub log: Vec<String>,
    /// When set: (domain, user, password) that must authenticate with
    /// NTLM before anything is served.
    pub ntlm: Option<(String, String, String)>,
    /// What the NTLM exchange did: `negotiate`, `authenticated DOMAIN\user`,
    /// `refused`.
    pub auth_log: Vec<String>,
    /// Connections accepted.
    pub connections: usize,
}

/// A running server.
pub struct HttpServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its files.
    pub files: Arc<Mutex<Files>>,
}

impl HttpServer {
    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` at `path`.
    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().files.insert(path.into(), body);
    }

    /// Every path asked for so far.
    pub fn log(&self) -> Vec<String> {
        self.files.lock().unwrap().log.clone()
    }
}

/// Starts the server on 127.0.0.1 (an ephemeral port).
pub async fn start() -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let files = Arc::new(Mutex::new(Files::default()));
    let shared = files.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            n += 1;
            shared.lock().unwrap().connections += 1;
            tokio::spawn(serve_connection(sock, shared.clone(), n));
        }
    });
    HttpServer { addr, files }
}

/// One kept-alive connection: requests until the client closes it.
async fn serve_connection(mut sock: tokio::net::TcpStream, files: Arc<Mutex<Files>>, n: u64) {
    use ocs_core::auth::ntlm::{
        AuthenticateMessage, ChallengeMessage, message_type, server_target_info,
        verify_authenticate,
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut challenge: Option<[u8; 8]> = None;
    let mut authenticated = false;
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let auth = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("authorization")
                .then(|| v.trim().to_owned())
        });
        let (status, extra, body) = {
            let mut f = files.lock().unwrap();
            f.log.push(path.clone());
            let mut step = None;
            if let (Some((domain, user, password)), false) = (f.ntlm.clone(), authenticated) {
                let token = auth.as_deref().and_then(|a| {
                    let (scheme, t) = a.split_once(' ')?;
                    let scheme = scheme.to_owned();
                    use base64::Engine as _;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(t.trim())
                        .ok()?;
                    Some((scheme, raw, t.trim().to_owned()))
                });
                step = Some(match token {
                    None => (
                        401,
                        vec![
                            ("WWW-Authenticate".to_owned(), "Negotiate".to_owned()),
                            ("WWW-Authenticate".to_owned(), "NTLM".to_owned()),
                        ],
                    ),
                    Some((scheme, raw, _)) if message_type(&raw) == Some(1) => {
                        f.auth_log.push("negotiate".into());
                        let mut sc = [0u8; 8];
                        sc[..8].copy_from_slice(&n.to_le_bytes());
                        sc[7] ^= 0x5a;
                        challenge = Some(sc);
                        let msg = ChallengeMessage {
                            flags: ocs_core::auth::ntlm::HTTP_CLIENT_FLAGS
                                | ocs_core::auth::ntlm::flags::NEGOTIATE_TARGET_INFO,
                            server_challenge: sc,
                            target_name: Vec::new(),
                            target_info: server_target_info(
                                "CONTOSO",
                                "ABS",
                                "contoso.com",
                                "abs.contoso.com",
                                "contoso.com",
                            )
                            .expect("target info"),
                            version: None,
                        };
                        (
                            401,
                            vec![(
                                "WWW-Authenticate".to_owned(),
                                format!("{scheme} {}", msg.to_base64().expect("challenge")),
                            )],
                        )
                    }
                    Some((_, _, b64)) => {
                        let ok = challenge.is_some_and(|sc| {
                            AuthenticateMessage::from_base64(&b64)
                                .ok()
                                .is_some_and(|m| {
                                    m.user.eq_ignore_ascii_case(&user)
                                        && m.domain.eq_ignore_ascii_case(&domain)
                                        && verify_authenticate(&m, &sc, &password).is_ok()
                                })
                        });
                        if ok {
                            f.auth_log.push(format!("authenticated {domain}\\{user}"));
                            authenticated = true;
                            (0, Vec::new())
                        } else {
                            f.auth_log.push("refused".into());
                            (
                                401,
                                vec![("WWW-Authenticate".to_owned(), "NTLM".to_owned())],
                            )
                        }
                    }
                });
            }
            match step {
                Some((401, h)) => (401, h, Vec::new()),
                _ => match (&f.fail, f.files.get(&path)) {
                    (Some((s, h)), _) => (*s, h.clone(), Vec::new()),
                    (None, Some(b)) => (200, Vec::new(), b.clone()),
                    (None, None) => (404, Vec::new(), Vec::new()),
                },
            }
        };
        let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in extra {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        if sock.write_all(resp.as_bytes()).await.is_err() || sock.write_all(&body).await.is_err() {
            return;
        }
    }
}
