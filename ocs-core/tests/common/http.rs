//! A small HTTP/1.1 file server on loopback for download tests: serves
//! the files put into it (by path), answers 404 for others, can be told
//! to fail with a status, and logs every path asked for.

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
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let files = shared.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, extra, body) = {
                    let mut f = files.lock().unwrap();
                    f.log.push(path.clone());
                    match (&f.fail, f.files.get(&path)) {
                        (Some((s, h)), _) => (*s, h.clone(), Vec::new()),
                        (None, Some(b)) => (200, Vec::new(), b.clone()),
                        (None, None) => (404, Vec::new(), Vec::new()),
                    }
                };
                let mut resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    HttpServer { addr, files }
}
