//! A Kamailio of a test's own (`tests/peers/kamailio/start.sh` on a free
//! port pair, its folder in the temp dir): for tests that restart it, which
//! the shared one (`scripts/kamailio.sh`) must not do under the others.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio")
}

/// True when UDP and TCP on `port` and `port + 1` are free on 127.0.0.1.
fn free_pair(port: u16) -> bool {
    [port, port + 1].iter().all(|p| {
        TcpListener::bind(("127.0.0.1", *p)).is_ok() && UdpSocket::bind(("127.0.0.1", *p)).is_ok()
    })
}

/// A running Kamailio (users alice/alicepw and bob/bobpw at 127.0.0.1),
/// stopped and its folder removed on drop.
pub struct Kamailio {
    dir: PathBuf,
    /// Its UDP/TCP port (TLS on the next).
    pub port: u16,
    nat: bool,
}

impl Kamailio {
    /// Starts one. `name` keeps tests of one run apart (its folder), the
    /// port is the first free pair from `base` (away from
    /// scripts/kamailio.sh's 5070 up). `nat`: registrations keep the
    /// address a REGISTER came from and requests go there (nathelper's
    /// `fix_nated_register`), as for clients behind a NAT or a proxy.
    pub fn start(name: &str, base: u16, nat: bool) -> Kamailio {
        let dir = std::env::temp_dir().join(format!("ocs-kamailio-{name}.{}", std::process::id()));
        let port = (base..base + 400)
            .step_by(2)
            .find(|p| free_pair(*p))
            .expect("a free port pair for Kamailio");
        let k = Kamailio { dir, port, nat };
        k.up();
        k
    }

    /// Starts it (again), with empty tables.
    pub fn up(&self) {
        let mut cmd = Command::new("sh");
        cmd.arg(peer_dir().join("start.sh"))
            .arg(&self.dir)
            .arg(self.port.to_string());
        if self.nat {
            cmd.env("KAMAILIO_DEFINES", "-A WITH_NAT");
        }
        let st = cmd.status().expect("run start.sh");
        assert!(st.success(), "Kamailio did not start on port {}", self.port);
    }

    /// Kills it and waits until it has gone.
    pub fn down(&self) {
        let st = Command::new("sh")
            .arg(peer_dir().join("stop.sh"))
            .arg(&self.dir)
            .status()
            .expect("run stop.sh");
        assert!(st.success(), "stop.sh failed");
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
