//! The `custom-state-server` example serving `ocs custom-states check` and
//! `ocs status set custom:ID` (CustomStateURL from --policy).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn ocs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocs"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = ocs().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Kills the child when dropped (also when an assertion fails).
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `custom-state-server` with the sample configuration on a free
/// port and returns it with its base URL.
fn server() -> (Killer, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-state-server"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/custom-state-server.conf"),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn custom-state-server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening line");
    let addr = v["listening"].as_str().expect("listening").to_owned();
    (Killer(child), format!("http://{addr}"))
}

#[test]
fn check_fetches_per_user_and_group() {
    let (_server, base) = server();
    let (code, out, err) = run(&["custom-states", "check", &format!("{base}/users/alice.xml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"text\":\"On a support call\""), "{out}");
    let (code, out, err) = run(&[
        "custom-states",
        "check",
        &format!("{base}/states.xml?user=sip:carol@contoso.com"),
        "--lcid",
        "1044",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Besøker Oslo-kontoret"), "{out}");
    let (code, out, _) = run(&["custom-states", "check", &format!("{base}/users/dave.xml")]);
    assert_eq!(code, 0);
    assert!(out.contains("Working from home"), "default: {out}");

    // High-security mode refuses http (exit 1, invalid input).
    let url = format!("{base}/states.xml");
    let (code, _, err) = run(&["custom-states", "check", &url, "--high-security"]);
    assert_eq!(code, 1);
    assert!(err.contains("high-security"), "{err}");

    // A 404 is an I/O error (exit 2) that names the status.
    let (code, _, err) = run(&["custom-states", "check", &format!("{base}/groups/none.xml")]);
    assert_eq!(code, 2);
    assert!(err.contains("HTTP 404"), "{err}");
}

fn sim_server() -> (Killer, u16) {
    let mut child = ocs()
        .args(["sim-server", "--port", "0", "--for", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sim-server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening line");
    let port = v["tcp"]
        .as_str()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    (Killer(child), port)
}

#[test]
fn status_set_custom_uses_the_policy_url() {
    let (_states, base) = server();
    let (_sim, port) = sim_server();
    let dir = std::env::temp_dir().join(format!("ocs-csurl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let reg = dir.join("policy.reg");
    std::fs::write(
        &reg,
        format!(
            "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\Software\\Policies\\Microsoft\\Communicator]\r\n\"CustomStateURL\"=\"{base}/users/alice.xml\"\r\n"
        ),
    )
    .expect("write");
    let addr = format!("127.0.0.1:{port}");
    let set = |state: &str| {
        ocs()
            .args(["status", "set", state, "--for", "1"])
            .args([
                "--user",
                "sip:alice@contoso.com",
                "--auth-user",
                "CONTOSO\\alice",
            ])
            .args(["--server", &addr, "--transport", "tcp"])
            .arg("--policy")
            .arg(&reg)
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("status")
    };
    let out = set("custom:1");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("\"event\":\"published\""),
        "{stdout}\n{stderr}"
    );
    let out = set("custom:4");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no custom state 4"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
