//! A bad link of our own between one client and a server, on loopback with
//! no privileges (issue 25, part 3). The client is pointed at the proxy's
//! address; the proxy forwards to the server.
//!
//! - UDP ([`LossyUdp`]): each datagram, either way, is dropped, sent twice
//!   or held back (so later ones overtake it) at the set rates, from a
//!   seeded generator. It plays a NAT that passes ICMP errors on: when the
//!   server's port refuses (the server is down), the proxy closes its own
//!   port for a moment, so the client's next datagram is refused too.
//! - TCP ([`CuttingTcp`]): each client connection gets its own to the
//!   server; a forwarded piece cuts both (at the set rate), and a connection
//!   the server closes closes the client's.
//!
//! What it did is counted in [`Counts`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// What goes wrong, per datagram (UDP) or forwarded piece (TCP cuts).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Dropped.
    pub loss: f64,
    /// Sent twice.
    pub duplicate: f64,
    /// Held back 30 ms.
    pub reorder: f64,
    /// TCP only: both connections cut.
    pub cut: f64,
    /// Seeds the generator.
    pub seed: u64,
}

/// What the proxy did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Datagrams or pieces forwarded (duplicates counted once).
    pub forwarded: AtomicU64,
    /// Dropped.
    pub dropped: AtomicU64,
    /// Sent twice.
    pub duplicated: AtomicU64,
    /// Held back.
    pub reordered: AtomicU64,
    /// TCP connections cut.
    pub cuts: AtomicU64,
    /// Times the server's port refused (UDP) or a connect failed (TCP).
    pub refused: AtomicU64,
}

impl Counts {
    /// `{"forwarded":..,"dropped":..,...}`.
    pub fn json(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{{\"forwarded\":{},\"dropped\":{},\"duplicated\":{},\"reordered\":{},\"cuts\":{},\"refused\":{}}}",
            g(&self.forwarded),
            g(&self.dropped),
            g(&self.duplicated),
            g(&self.reordered),
            g(&self.cuts),
            g(&self.refused)
        )
    }
}

/// xorshift64*: reproducible fates from the seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Fate {
    Pass,
    Drop,
    Twice,
    Late,
}

fn fate(d: &mut Dice, f: &Faults, c: &Counts) -> Fate {
    let r = d.roll();
    if r < f.loss {
        c.dropped.fetch_add(1, Ordering::Relaxed);
        return Fate::Drop;
    }
    c.forwarded.fetch_add(1, Ordering::Relaxed);
    if r < f.loss + f.duplicate {
        c.duplicated.fetch_add(1, Ordering::Relaxed);
        Fate::Twice
    } else if r < f.loss + f.duplicate + f.reorder {
        c.reordered.fetch_add(1, Ordering::Relaxed);
        Fate::Late
    } else {
        Fate::Pass
    }
}

/// Sends `bytes` on `sock` (to `to`, or the connected peer) as `fate` says.
fn deliver(fate: Fate, sock: &Arc<UdpSocket>, to: Option<SocketAddr>, bytes: &[u8]) {
    let send = |s: &UdpSocket, b: &[u8]| match to {
        Some(a) => s.try_send_to(b, a).map(|_| ()),
        None => s.try_send(b).map(|_| ()),
    };
    match fate {
        Fate::Drop => {}
        Fate::Pass => {
            let _ = send(sock, bytes);
        }
        Fate::Twice => {
            let _ = send(sock, bytes);
            let _ = send(sock, bytes);
        }
        Fate::Late => {
            let (sock, bytes) = (sock.clone(), bytes.to_vec());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let _ = match to {
                    Some(a) => sock.send_to(&bytes, a).await.map(|_| ()),
                    None => sock.send(&bytes).await.map(|_| ()),
                };
            });
        }
    }
}

/// The UDP proxy for one client. See the module docs.
pub struct LossyUdp {
    /// Where the client sends.
    pub addr: SocketAddr,
    /// What it did.
    pub counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl LossyUdp {
    /// Starts forwarding to `server`.
    pub async fn start(server: SocketAddr, faults: Faults) -> LossyUdp {
        let first = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = first.local_addr().expect("addr");
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(run_udp(first, server, faults, counts.clone()));
        LossyUdp { addr, counts, task }
    }
}

impl Drop for LossyUdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_udp(first: UdpSocket, server: SocketAddr, f: Faults, c: Arc<Counts>) {
    let addr = first.local_addr().expect("addr");
    let mut dice = Dice(f.seed | 1);
    let mut down = Some(first);
    let (mut a, mut b) = (vec![0u8; 65536], vec![0u8; 65536]);
    loop {
        let client_side = match down.take() {
            Some(s) => Arc::new(s),
            None => loop {
                // Our port back once the refusal has been seen.
                match UdpSocket::bind(addr).await {
                    Ok(s) => break Arc::new(s),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            },
        };
        let up = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        up.connect(server).await.expect("connect");
        let up = Arc::new(up);
        let mut client: Option<SocketAddr> = None;
        loop {
            tokio::select! {
                r = client_side.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { continue };
                    client = Some(from);
                    deliver(fate(&mut dice, &f, &c), &up, None, &a[..n]);
                }
                r = up.recv(&mut b) => match r {
                    Ok(n) => {
                        if let Some(to) = client {
                            deliver(fate(&mut dice, &f, &c), &client_side, Some(to), &b[..n]);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        c.refused.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(_) => {}
                },
            }
        }
        // The server's port refused: ours refuses for a second (longer than
        // the client's keep-alive interval in the tests), as the ICMP error
        // a NAT passes on would.
        drop(client_side);
        drop(up);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The TCP proxy. See the module docs.
pub struct CuttingTcp {
    /// Where the client connects.
    pub addr: SocketAddr,
    /// What it did.
    pub counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl CuttingTcp {
    /// Starts forwarding to `server`.
    pub async fn start(server: SocketAddr, faults: Faults) -> CuttingTcp {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let task = tokio::spawn(async move {
            let mut seed = faults.seed | 1;
            while let Ok((client, _)) = l.accept().await {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let Ok(up) = TcpStream::connect(server).await else {
                    c.refused.fetch_add(1, Ordering::Relaxed);
                    continue; // the client's connection closes
                };
                tokio::spawn(pump_tcp(client, up, faults, Dice(seed | 1), c.clone()));
            }
        });
        CuttingTcp { addr, counts, task }
    }
}

impl Drop for CuttingTcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump_tcp(client: TcpStream, up: TcpStream, f: Faults, mut dice: Dice, c: Arc<Counts>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let (mut a, mut b) = (vec![0u8; 16384], vec![0u8; 16384]);
    loop {
        let (n, to_server) = tokio::select! {
            r = cr.read(&mut a) => (r.unwrap_or(0), true),
            r = ur.read(&mut b) => (r.unwrap_or(0), false),
        };
        if n == 0 {
            break; // either side closed: close the other
        }
        if dice.roll() < f.cut {
            c.cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
        c.forwarded.fetch_add(1, Ordering::Relaxed);
        let ok = if to_server {
            uw.write_all(&a[..n]).await
        } else {
            cw.write_all(&b[..n]).await
        };
        if ok.is_err() {
            break;
        }
    }
    // Dropping both halves closes both connections.
}
