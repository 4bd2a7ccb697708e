//! The quickstart as a black box: every numbered step in order, "Done" at
//! the end, well within the five seconds the README promises; and the
//! same program pointed at a server with --server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn quickstart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quickstart"))
}

/// Runs the quickstart; exit code, stdout, stderr and the wall time.
fn run(cmd: &mut Command) -> (i32, String, String, Duration) {
    // clippy.toml keeps the sans-IO core off the clock; timing a child
    // process is what this test is for.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let out = cmd.output().expect("runs");
    let took = started.elapsed();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

/// The lines that start the numbered steps 1–10, in order of appearance.
fn step_lines(stdout: &str) -> Vec<&str> {
    let mut next = 1;
    let mut found = Vec::new();
    for line in stdout.lines() {
        if line.starts_with(&format!("{next}. ")) {
            found.push(line);
            next += 1;
        }
    }
    found
}

fn assert_contains(stdout: &str, wants: &[&str]) {
    for want in wants {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
}

#[test]
fn quickstart_runs_all_ten_steps_within_5_s() {
    let (code, stdout, stderr, took) = run(&mut quickstart());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let steps = step_lines(&stdout);
    assert_eq!(
        steps.len(),
        10,
        "steps 1-10 in order, got {steps:?} in\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("Done"), "last line {last:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_contains(
        &stdout,
        &[
            // The server verified every message the clients signed and
            // refused none (strict MS-SIPAE checking).
            " unsigned or badly signed",
            "signed requests verified, 0 unsigned",
            // 1, 2: the embedded server and two NTLM sign-ins.
            "1. Starting the embedded",
            "alice: signed in with NTLM",
            "bob: signed in with NTLM",
            "server: sip:alice@contoso.com at",
            // 3: the custom states came over HTTP from this process.
            "custom states from http://127.0.0.1:",
            "state 1: busy, 1033 \"In a Customer Seminar\"",
            // 4: the policy with its provenance.
            "DisableIM = true (from HKCU quickstart-policy.reg:4)",
            // 5, 6: published and seen by the other.
            "bob sees alice: busy (\"In a Customer Seminar\"), note \"Back at 3 pm\"",
            "alice sees bob: online",
            // 7: messages both ways, then the refusal with its reason.
            "alice -> bob: \"Hello Bob, lunch at noon?\"",
            "bob -> alice: \"Sure, see you there\"",
            "alice -> bob: refused, message blocked by policy",
            "bob -> alice: refused, DisableIM forbids this",
            // 8: the snapshot table.
            "SIP URI",
            "Custom states URL",
            "Policy DisableIM",
            // 9.
            "alice: signed out",
            "bob: signed out",
            // 10: the Lync way, on a second embedded server.
            "pool: autodiscover at http://127.0.0.1:",
            "over TLS (found by autodiscover)",
            "alice: the server asks for a TLS-DSK certificate from http://127.0.0.1:",
            "alice: signed in with TLS-DSK (MS-SIPAE version 4)",
            "alice: certificate provisioned by the pool's service, kept in",
            "alice: TLS-DSK (offered: TLS-DSK): the host's credential",
        ],
    );
}

/// Starts `ocs sim-server` on free ports; the child and its TCP address.
fn sim_server() -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocs"))
        .args(["sim-server", "--port", "0", "--for", "30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sim-server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let v: serde_json::Value = serde_json::from_str(&line).expect("listening line");
    let tcp = v["tcp"].as_str().expect("tcp address").to_owned();
    (child, tcp)
}

#[test]
fn with_server_it_signs_in_the_given_users_and_says_what_it_skips() {
    let (mut server, addr) = sim_server();
    let base = ["--server", &addr, "--transport", "tcp"];

    let (code, stdout, stderr, _) = run(quickstart()
        .args(base)
        .args([
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args([
            "--user",
            "sip:bob@contoso.com",
            "--auth-user",
            "CONTOSO\\bob",
        ])
        .env("OCS_PASSWORD", "alicepw")
        .env("OCS_PASSWORD2", "bobpw"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(step_lines(&stdout).len(), 10, "{stdout}");
    assert_contains(
        &stdout,
        &[
            "(skipped: starting the embedded test server)",
            "(skipped: the server's list of registrations",
            "10. Lync / Skype for Business sign-in (skipped: shown on the embedded server only)",
            "bob sees alice: busy",
            "alice -> bob: refused",
            "Done",
        ],
    );

    // One user: the steps between two users are skipped, the rest runs.
    let (code, stdout, stderr, _) = run(quickstart()
        .args(base)
        .args([
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args(["--password-env", "QUICKSTART_TEST_PW"])
        .env("QUICKSTART_TEST_PW", "alicepw"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(step_lines(&stdout).len(), 10, "{stdout}");
    assert_contains(
        &stdout,
        &[
            "6. Watching each other (skipped: needs a second --user)",
            "7. Exchanging instant messages (skipped: needs a second --user)",
            "alice: busy (\"In a Customer Seminar\")",
            "Done",
        ],
    );

    // A wrong password fails with the reason, exit 1.
    let (code, _, stderr, _) = run(quickstart()
        .args(base)
        .args([
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .env("OCS_PASSWORD", "wrong"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.starts_with("error: alice: "), "{stderr}");

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn sign_in_flags_need_server_and_server_needs_user() {
    let (code, _, stderr, _) = run(quickstart().args(["--user", "sip:alice@contoso.com"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--server"), "{stderr}");
    let (code, _, stderr, _) = run(quickstart().args(["--server", "127.0.0.1:5061"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--user"), "{stderr}");
    let (code, _, stderr, _) = run(quickstart()
        .args([
            "--server",
            "127.0.0.1:5061",
            "--user",
            "sip:alice@contoso.com",
        ])
        .env_remove("OCS_PASSWORD"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("set $OCS_PASSWORD"), "{stderr}");
}
