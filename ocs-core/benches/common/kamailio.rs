//! The Kamailio the interop benchmarks measure against: the one the test
//! script already runs (`OCS_KAMAILIO_PORT`), or one started here through
//! `scripts/kamailio.sh` and stopped on drop. Shared by the `signin`, `im`
//! and `presence_rtt` benches.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ocs-core sits in the workspace")
        .to_owned()
}

/// The Kamailio to measure against; stops it on drop when we started it.
pub struct Kamailio {
    pub port: u16,
    started_here: bool,
}

impl Kamailio {
    pub fn get() -> Kamailio {
        if let Ok(p) = std::env::var("OCS_KAMAILIO_PORT") {
            let port = p
                .parse()
                .unwrap_or_else(|_| panic!("OCS_KAMAILIO_PORT={p:?} is not a port"));
            return Kamailio {
                port,
                started_here: false,
            };
        }
        let script = root().join("scripts/kamailio.sh");
        let ok = Command::new(&script)
            .arg("start")
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(ok.success(), "{} start failed", script.display());
        let env = std::fs::read_to_string(root().join("target/kamailio.env"))
            .expect("scripts/kamailio.sh wrote target/kamailio.env");
        let port = env
            .lines()
            .find_map(|l| l.strip_prefix("OCS_KAMAILIO_PORT="))
            .and_then(|p| p.trim().parse().ok())
            .expect("OCS_KAMAILIO_PORT in target/kamailio.env");
        Kamailio {
            port,
            started_here: true,
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new(root().join("scripts/kamailio.sh"))
                .arg("stop")
                .status();
        }
    }
}
