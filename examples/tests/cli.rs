//! The `ocs` command line as a black box: output shapes and exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn ocs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocs"))
}

fn data(rel: &str) -> String {
    format!(
        "{}/../ocs-core/tests/data/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = ocs().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sip_parse_prints_json_in_the_documented_shape() {
    let (code, out, _) = run(&["sip", "parse", &data("rfc4475/wsinv.dat")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(v["body_len"], 150);
    assert!(out.starts_with("{\"kind\":\"request\",\"method\":\"INVITE\",\"uri\":"));
    let (code, out, _) = run(&["sip", "parse", &data("ocs/t2_register_200.sip")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["kind"], "response");
    assert_eq!(v["status"], 200);
    assert_eq!(v["reason"], "OK");
    assert_eq!(v["headers"][0]["name"], "ms-keep-alive");
}

#[test]
fn sip_parse_errors_have_offsets_and_exit_codes() {
    let (code, _, err) = run(&["sip", "parse", &data("rfc4475/lwsstart.dat")]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("at byte"),
        "{err}"
    );
    let (code, _, err) = run(&["sip", "parse", "/nonexistent/file"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: reading"));
    let (code, _, _) = run(&["sip", "nonsense"]);
    assert_eq!(code, 2);
}

#[test]
fn sip_parse_reads_stdin() {
    let mut child = ocs()
        .args(["sip", "parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"method\":\"OPTIONS\""));
}

#[test]
fn sip_check_answers() {
    for (file, want) in [
        ("rfc4475/wsinv.dat", "accept"),
        ("rfc4475/badvers.dat", "505 Version Not Supported"),
        ("rfc4475/unkscm.dat", "416 Unsupported URI Scheme"),
        ("rfc4475/bext01.dat", "420 Bad Extension"),
        ("rfc4475/invut.dat", "415 Unsupported Media Type"),
        ("rfc4475/bcast.dat", "drop"),
        ("rfc4475/insuf.dat", "400 Bad Request"),
    ] {
        let (code, out, _) = run(&["sip", "check", &data(file)]);
        assert_eq!((code, out.trim()), (0, want), "{file}");
    }
    let (code, _, _) = run(&["sip", "check", &data("rfc4475/ltgtruri.dat")]);
    assert_eq!(code, 1);
}

#[test]
fn signature_buffers_of_the_vectors() {
    let json = std::fs::read_to_string(data("ocs/signature_buffers.json")).expect("json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("parse");
    for file in ["t1_register_request.sip", "t2_register_200.sip"] {
        let (code, out, _) = run(&["sip", "signature-buffer", &data(&format!("ocs/{file}"))]);
        assert_eq!(code, 0);
        assert_eq!(out.trim_end(), v[file]["buffer"].as_str().expect("buffer"));
    }
    // Version 2 drops the To URI and P-Asserted-Identity fields.
    let (_, out, _) = run(&[
        "sip",
        "signature-buffer",
        "--auth-version",
        "2",
        &data("ocs/t2_register_200.sip"),
    ]);
    assert_eq!(out.trim_end().matches('<').count(), 13);
    let (code, _, err) = run(&["sip", "signature-buffer", &data("rfc4475/wsinv.dat")]);
    assert_eq!(code, 1);
    assert!(err.contains("no signature parameters"));
}

/// Starts `ocs sim-server` on free ports and returns it with its TCP port.
fn sim_server() -> (std::process::Child, u16) {
    sim_server_with(&[])
}

/// `ocs sim-server` with extra arguments.
fn sim_server_with(extra: &[&str]) -> (std::process::Child, u16) {
    let (child, v) = sim_server_listening(extra);
    let port = v["tcp"]
        .as_str()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    (child, port)
}

/// `ocs sim-server` with extra arguments, and its first line (addresses,
/// CA file, autodiscover URL, certificate folder).
fn sim_server_listening(extra: &[&str]) -> (std::process::Child, serde_json::Value) {
    let mut child = ocs()
        .args(["sim-server", "--port", "0", "--for", "30"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sim-server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let v = serde_json::from_str(&line).expect("listening line");
    (child, v)
}

#[test]
fn register_against_the_embedded_server() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let out = ocs()
        .args([
            "register",
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args(["--server", &addr, "--transport", "tcp", "--for", "1"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names[..2], ["connected", "registered"], "{names:?}");
    assert_eq!(
        names[names.len() - 2..],
        ["signed_out", "stopped"],
        "{names:?}"
    );
    // Provisioning and the contact list come from two subscriptions, in
    // either order.
    let mut middle = names[2..names.len() - 2].to_vec();
    middle.sort_unstable();
    assert_eq!(middle, ["contact_list", "provisioning"], "{names:?}");
    assert_eq!(events[1]["auth"], "NTLM");
    assert_eq!(events[1]["auth_version"], 4);
    // Wrong password: exit 1 with the reason; -v shows the steps on
    // stderr, never the password.
    let out = ocs()
        .args([
            "-v",
            "register",
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args(["--server", &addr, "--transport", "tcp", "--for", "1"])
        .env("OCS_PASSWORD", "Wr0ng-Passw0rd")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rejected the credentials"), "{stderr}");
    for step in [
        "REGISTER without credentials",
        "407 challenge offers NTLM version 4",
        "REGISTER NTLM, AUTHENTICATE token and first signature",
        "credentials needed",
        "event_id=1102",
    ] {
        assert!(stderr.contains(step), "missing {step:?} in {stderr}");
    }
    assert!(
        !stderr.contains("Wr0ng-Passw0rd"),
        "the password leaked: {stderr}"
    );
    // No password at all: exit 1, asking for one.
    let out = ocs()
        .args(["register", "--user", "sip:alice@contoso.com"])
        .args([
            "--server",
            &addr,
            "--transport",
            "tcp",
            "--password-env",
            "OCS_TEST_UNSET_VAR",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("credentials needed"));
    let _ = server.kill();
}

#[test]
fn register_follows_a_redirect_and_never_hangs() {
    // A Director sending alice to the home pool by host name.
    let (mut home, home_port) = sim_server();
    let target = format!("localhost:{home_port}");
    let (mut director, director_port) = sim_server_with(&["--redirect-to", &target]);
    let sign_in = |port: u16, extra: &[&str]| {
        // Wall time is what this test measures.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let out = ocs()
            .args([
                "register",
                "--user",
                "sip:alice@contoso.com",
                "--auth-user",
                "CONTOSO\\alice",
            ])
            .args([
                "--server",
                &format!("127.0.0.1:{port}"),
                "--transport",
                "tcp",
            ])
            .args(["--for", "1"])
            .args(extra)
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("runs");
        (out, started.elapsed())
    };
    let (out, _) = sign_in(director_port, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let names: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        names[..4],
        ["connected", "redirected", "connected", "registered"],
        "{names:?}"
    );

    // A port that accepts TCP and never answers: exit 1 within the
    // deadline, naming the step.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole_port = hole.local_addr().expect("addr").port();
    let (out, took) = sign_in(hole_port, &["--step-timeout", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sign-in failed")
            && stderr.contains("REGISTER got no final answer within 1 s"),
        "{stderr}"
    );
    assert!(took < std::time::Duration::from_secs(8), "took {took:?}");
    // The same over TLS: the handshake is the step that runs out.
    let out = ocs()
        .args(["register", "--user", "sip:alice@contoso.com"])
        .args([
            "--server",
            &format!("localhost:{hole_port}"),
            "--transport",
            "tls",
        ])
        .args(["--step-timeout", "1"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sign-in failed: transport: TLS handshake with localhost:{hole_port} timed out after 1 s"
        )),
        "{stderr}"
    );
    drop(hole);
    let _ = home.kill();
    let _ = director.kill();
}

#[test]
fn im_send_and_listen_through_the_embedded_server() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let mut bob = ocs()
        .args([
            "im",
            "listen",
            "--user",
            "sip:bob@contoso.com",
            "--auth-user",
            "CONTOSO\\bob",
        ])
        .args(["--server", &addr, "--transport", "tcp", "--for", "4"])
        .env("OCS_PASSWORD", "bobpw")
        .stdout(Stdio::piped())
        .spawn()
        .expect("listen");
    // Wait until Bob is signed in.
    let mut out = BufReader::new(bob.stdout.take().expect("stdout"));
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 {
        if line.contains("\"registered\"") {
            break;
        }
        line.clear();
    }
    let sent = ocs()
        .args([
            "im",
            "send",
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args([
            "--server",
            &addr,
            "--transport",
            "tcp",
            "sip:bob@contoso.com",
            "hello from the CLI",
        ])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("send");
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert_eq!(sent.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"delivered\""), "{stdout}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let _ = bob.wait();
    assert!(
        rest.contains("\"event\":\"message\"") && rest.contains("hello from the CLI"),
        "{rest}"
    );
    // Nobody signed in as carol: exit 1 with the reason.
    let failed = ocs()
        .args([
            "im",
            "send",
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args([
            "--server",
            &addr,
            "--transport",
            "tcp",
            "sip:carol@contoso.com",
            "anyone?",
        ])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("send");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not delivered"));
    let _ = server.kill();
}

#[test]
fn disable_im_policy_refuses_sending_and_names_its_source() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let reg = dir.join("disable-im.reg");
    // The seed's spelling of the key, as a user would export it.
    std::fs::write(
        &reg,
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\r\n\"DisableIM\"=dword:00000001\r\n",
    )
    .expect("write");
    let (mut server, port) = sim_server();
    let out = ocs()
        .args([
            "im",
            "send",
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--transport",
            "tcp",
        ])
        .args([
            "--policy",
            reg.to_str().expect("path"),
            "sip:bob@contoso.com",
            "hi",
        ])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("DisableIM") && err.contains("HKCU"), "{err}");
    let _ = server.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provisioning_file_is_the_in_band_source_on_live_commands() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-prov-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let xml = dir.join("prov.xml");
    std::fs::write(
        &xml,
        r#"<provisionGroupList xmlns="http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification"><provisionGroup name="ucPolicy"><instance><property name="DisableIM">true</property></instance></provisionGroup></provisionGroupList>"#,
    )
    .expect("write");
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<provisionGroupList>\n<provisionGroup/>\n</provisionGroupList>",
    )
    .expect("write");
    let (mut server, port) = sim_server();
    let send = |file: &std::path::Path| {
        ocs()
            .args([
                "im",
                "send",
                "--user",
                "sip:alice@contoso.com",
                "--auth-user",
                "CONTOSO\\alice",
                "--server",
                &format!("127.0.0.1:{port}"),
                "--transport",
                "tcp",
                "--provisioning",
                file.to_str().expect("path"),
                "sip:bob@contoso.com",
                "hi",
            ])
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("runs")
    };
    let out = send(&xml);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("DisableIM") && err.contains("in-band"),
        "{err}"
    );
    // A malformed document is refused with its position, before sign-in.
    let out = send(&bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// When Wireshark's tshark is installed (scripts/test.sh installs it), it
/// must read the pcap trace and dissect the SIP exchange in it.
fn check_with_tshark(path: &std::path::Path) {
    let Ok(out) = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
    else {
        eprintln!("tshark not installed: pcap checked by our own reader only");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("REGISTER")), "{text}");
    assert!(lines.iter().any(|l| l.contains("407")), "{text}");
    assert!(lines.iter().any(|l| l.contains("200")), "{text}");
}

#[test]
fn trace_files_redact_credentials_in_text_and_pcap() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    for (file, extra) in [("sip.log", None), ("sip.pcap", Some("--trace-pcap"))] {
        let path = dir.join(file);
        let out = ocs()
            .args([
                "diag",
                "--user",
                "sip:alice@contoso.com",
                "--auth-user",
                "CONTOSO\\alice",
                "--server",
                &addr,
                "--transport",
                "tcp",
                "--trace",
                path.to_str().expect("path"),
            ])
            .args(extra)
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).expect("trace written");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("REGISTER sip:contoso.com SIP/2.0"), "{text}");
        assert!(text.contains("SIP/2.0 407"), "{text}");
        assert!(text.contains("SIP/2.0 200"), "{text}");
        // The NTLM tokens both ways are gone; the scheme is still shown.
        assert!(text.contains("gssapi-data=\"<redacted>\""), "{text}");
        assert!(text.contains("Authorization: NTLM <redacted>"), "{text}");
        assert!(!text.contains("TlRMTVNT"), "an NTLM token leaked:\n{text}");
        if extra.is_some() {
            assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes());
            check_with_tshark(&path);
        } else {
            assert!(text.contains("TCP 127.0.0.1:"), "{text}");
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_set_is_seen_by_watch() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let mut bob = ocs()
        .args([
            "watch",
            "--user",
            "sip:bob@contoso.com",
            "--auth-user",
            "CONTOSO\\bob",
        ])
        .args([
            "--server",
            &addr,
            "--transport",
            "tcp",
            "--for",
            "4",
            "sip:alice@contoso.com",
        ])
        .env("OCS_PASSWORD", "bobpw")
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let mut out = BufReader::new(bob.stdout.take().expect("stdout"));
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 {
        if line.contains("\"uri\":\"sip:alice@contoso.com\"") {
            break;
        }
        line.clear();
    }
    let set = ocs()
        .args([
            "status",
            "set",
            "busy",
            "--note",
            "In the lab",
            "--for",
            "1",
        ])
        .args([
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args(["--server", &addr, "--transport", "tcp"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("status");
    assert_eq!(
        set.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let _ = bob.wait();
    assert!(
        rest.lines()
            .any(|l| l.contains("\"state\":\"busy\"") && l.contains("\"note\":\"In the lab\"")),
        "{rest}"
    );
    // Appear offline without the policy: exit 1 naming it.
    let off = ocs()
        .args(["status", "set", "offline", "--for", "1"])
        .args([
            "--user",
            "sip:alice@contoso.com",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .args(["--server", &addr, "--transport", "tcp"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("status");
    assert_eq!(off.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&off.stderr).contains("EnableAppearOffline"));
    let _ = server.kill();
}

#[test]
fn diag_prints_the_snapshot_as_json_and_as_a_table() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let diag = |extra: &[&str]| {
        ocs()
            .args([
                "diag",
                "--user",
                "sip:alice@contoso.com",
                "--auth-user",
                "CONTOSO\\alice",
                "--server",
                &addr,
                "--transport",
                "tcp",
            ])
            .args(extra)
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("runs")
    };
    let out = diag(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(v["sip_uri"], "sip:alice@contoso.com");
    assert_eq!(v["dialect"], "ocs");
    assert_eq!(v["server"]["transport"], "TCP");
    assert_eq!(v["server"]["found_by"], "manual configuration");
    assert_eq!(v["auth"]["scheme"], "NTLM");
    // Why NTLM: what the server offered and the rule that picked it.
    let why = v["auth"]["why"].as_str().expect("why");
    assert!(why.starts_with("NTLM (offered: NTLM, Kerberos)"), "{why}");
    assert_eq!(v["registration"]["state"], "registered");
    assert!(v["registration"]["gruu"].is_string());
    assert_eq!(v["provisioning"], "received");
    assert_eq!(v["address_book"]["url"], "http://127.0.0.1/abs/int");
    assert_eq!(
        v["address_book"]["download"],
        "not configured (no address-book folder)"
    );
    assert_eq!(v["custom_states"]["status"], "not configured");
    assert_eq!(v["policies"]["DisableIM"]["source"], "default");
    assert_eq!(v["policies"]["EnableDelegation"]["source"], "in-band");

    let out = diag(&["--table"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for want in [
        "SIP URI",
        "sip:alice@contoso.com",
        "Address book URL",
        "http://127.0.0.1/abs/int",
        "Policy DisableIM",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn address_book_sample_show_and_search() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-abs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("F-0A8C.lsabs");
    let f = file.to_str().expect("utf-8 path");
    let (code, out, err) = run(&[
        "address-book",
        "sample",
        f,
        "--count",
        "64",
        "--day",
        "0A8C",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"count\":64"), "{out}");

    let (code, out, err) = run(&["address-book", "show", f, "--limit", "2"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["kind"], "full");
    assert_eq!(v["day"], "0A8C");
    assert_eq!(v["count"], 64);
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["items"][0]["display_name"], "Anna Meyer");
    assert_eq!(v["items"][0]["phones"][0]["normalized"], "tel:+49891000000");

    // The folder layout a download leaves: the file and the state file.
    std::fs::write(
        dir.join("ocs-address-book.state"),
        "ocs-address-book 1\nfull F-0A8C.lsabs\ndownloaded 0\n",
    )
    .expect("state");
    let d = dir.to_str().expect("utf-8 path");
    let (code, out, err) = run(&["address-book", "search", d, "weber"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["entries"], 64);
    // Surnames cycle every 8 people in blocks of 8: Weber is people 16..24.
    assert_eq!(v["results"].as_array().map(Vec::len), Some(8), "{v}");
    let (code, out, _) = run(&["address-book", "search", d, "+49 89 100 0042"]);
    assert_eq!(code, 0);
    assert!(out.contains("clara.becker42@"), "{out}");

    // Damage is reported with its byte offset, exit 1.
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[300] ^= 0x20;
    std::fs::write(&file, &bytes).expect("write");
    let (code, _, err) = run(&["address-book", "show", f]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(": byte "), "{err}");
    let (code, _, err) = run(&["address-book", "search", d, "x"]);
    assert_eq!(code, 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn contacts_commands_change_the_server_list() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let contacts = |args: &[&str]| {
        let out = ocs()
            .args(["contacts", "--user", "sip:alice@contoso.com"])
            .args(["--auth-user", "CONTOSO\\alice", "--server", &addr])
            .args(["--transport", "tcp"])
            .args(args)
            .env("OCS_PASSWORD", "alicepw")
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = contacts(&["list"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["groups"][0]["name"], "~");
    let (code, out, err) = contacts(&["group-add", "Team"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["new_group_id"], 2);
    let (code, out, err) = contacts(&["add", "sip:bob@contoso.com", "--group", "Team"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["contacts"][0]["uri"], "sip:bob@contoso.com");
    assert_eq!(v["contacts"][0]["groups"][0], "Team");
    // The list lives on the server: a later sign-in sees it.
    let (code, out, err) = contacts(&["move", "bob@contoso.com", "--to", "~"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"groups\":[\"~\"]"), "{out}");
    let (code, _, err) = contacts(&["group-remove", "~"]);
    assert_eq!(code, 1);
    assert!(err.contains("default group"), "{err}");
    let (code, out, err) = contacts(&["remove", "sip:bob@contoso.com"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["contacts"].as_array().map(Vec::len), Some(0));
    let _ = server.kill();
}

#[test]
fn track_run_records_presence_and_report_sums_each_day() {
    let (mut server, port) = sim_server();
    let addr = format!("127.0.0.1:{port}");
    let db = std::env::temp_dir().join(format!("ocs-cli-track-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let spec = format!("sqlite:{}", db.display());
    let sign_in = |user: &str| {
        vec![
            "--user".to_owned(),
            format!("sip:{user}@contoso.com"),
            "--auth-user".to_owned(),
            format!("CONTOSO\\{user}"),
            "--server".to_owned(),
            addr.clone(),
            "--transport".to_owned(),
            "tcp".to_owned(),
        ]
    };
    let tracker = ocs()
        .args([
            "track",
            "run",
            "--db",
            &spec,
            "--watch",
            "sip:bob@contoso.com",
            "--for",
            "12",
        ])
        .args(sign_in("alice"))
        .env("OCS_PASSWORD", "alicepw")
        .stdout(Stdio::piped())
        .spawn()
        .expect("tracker");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let bob = ocs()
        // On a loaded machine bob's online and busy reach the tracker in
        // the same millisecond; the tracker used to drop the second of
        // them (the store's one-per-millisecond key), so busy counted 0 s.
        .args(["status", "set", "busy", "--note", "tracked", "--for", "3"])
        .args(sign_in("bob"))
        .env("OCS_PASSWORD", "bobpw")
        .output()
        .expect("bob");
    assert_eq!(
        bob.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&bob.stderr)
    );
    let out = tracker.wait_with_output().expect("tracker ends");
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let to: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "transition")
        .filter_map(|l| l["to"].as_str())
        .collect();
    assert!(to.contains(&"busy"), "{lines:?}");
    assert_eq!(lines.last().expect("last")["event"], "stopped");
    // The day bob turned busy (UTC), whenever the test ran.
    let day = lines
        .iter()
        .find(|l| l["to"] == "busy")
        .and_then(|l| l["at"].as_str())
        .map(|at| at[..10].to_owned())
        .expect("a time");

    let report = |format: &str| {
        let o = ocs()
            .args(["track", "report", "--db", &spec, "--format", format])
            .args(["--from", &day, "--to", &day])
            .output()
            .expect("report");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let rows: serde_json::Value = serde_json::from_str(&report("json")).expect("json");
    let bob_today = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["who"] == "sip:bob@contoso.com")
        .expect("a row for bob");
    assert!(
        bob_today["seconds"]["busy"].as_f64().unwrap_or(0.0) > 0.0,
        "{bob_today} {lines:?}"
    );
    // Every second of the day is accounted for: states, unknown, gaps.
    let total: f64 = bob_today["seconds"]
        .as_object()
        .expect("seconds")
        .values()
        .filter_map(|v| v.as_f64())
        .sum::<f64>()
        + bob_today["tracker_offline_seconds"].as_f64().expect("gaps");
    assert!((total - 86_400.0).abs() < 0.001, "{total}");
    let csv = report("csv");
    assert!(csv.starts_with("who,day,first_seen,last_seen,"), "{csv}");
    assert!(csv.contains("sip:bob@contoso.com,"), "{csv}");
    // Bad input: a clear usage error.
    let bad = ocs()
        .args(["track", "report", "--db", &spec, "--from", "someday"])
        .output()
        .expect("bad");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected YYYY-MM-DD"));
    let _ = server.kill();
    let _ = std::fs::remove_file(&db);
}

#[test]
fn track_demo_accounts_for_exactly_the_hour_and_draws_it() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let html = dir.join("demo.html");
    let out = ocs()
        .args(["track", "demo", "--speed", "1200", "--minutes", "60"])
        .arg("--db")
        .arg(format!("sqlite:{}", dir.join("demo.db").display()))
        .arg("--out")
        .arg(&html)
        .output()
        .expect("demo");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let people: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "person").collect();
    assert_eq!(people.len(), 3, "{lines:?}");
    for p in &people {
        // The durations of the demo hour sum exactly to the hour.
        assert_eq!(p["accounted_seconds"], 3600.0, "{p}");
        let states: f64 = p["seconds"]
            .as_object()
            .expect("seconds")
            .values()
            .filter_map(|v| v.as_f64())
            .sum();
        // The tracker signs in during the first simulated seconds (at this
        // speed a real 50 ms is a minute): that much is tracker_offline.
        assert!(states > 3600.0 - 120.0, "the tracker watched the hour: {p}");
        assert!(
            p["seconds"]["unknown"].as_f64().unwrap_or(0.0) < 120.0,
            "{p}"
        );
    }
    let anna = people
        .iter()
        .find(|p| p["who"] == "sip:anna@contoso.com")
        .expect("anna");
    // Her custom state (minutes 35-50) is filed under its name.
    let custom = anna["seconds"]["custom: Customer visit"]
        .as_f64()
        .expect("custom state");
    assert!((custom - 900.0).abs() < 120.0, "{anna}");
    // The page: one timeline per person, each drawn across the width.
    let page = std::fs::read_to_string(&html).expect("html");
    assert_eq!(page.matches("<svg").count(), 3);
    for svg in page.split("<svg").skip(1) {
        let svg = svg.split("</svg>").next().expect("svg");
        let width: f64 = svg
            .split("<rect ")
            .skip(2) // the pattern's background
            .filter_map(|r| {
                r.split("width=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .sum();
        // The whole width but the tracker's first seconds (hatched).
        assert!(
            width <= 960.5 && width > 960.0 * (1.0 - 120.0 / 3600.0),
            "{width}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The HTML report in a real browser: headless Chromium loads it, the DOM
/// it builds has a timeline per person and the totals table, and it
/// renders a screenshot. Run by scripts/test.sh, which installs Debian's
/// chromium; by hand: `cargo test -p ocs-examples --test cli -- --ignored
/// chromium`.
#[test]
#[ignore = "needs chromium (scripts/test.sh installs it)"]
fn track_report_renders_in_headless_chromium() {
    let dir = std::env::temp_dir().join(format!("ocs-cli-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let html = dir.join("report.html");
    let demo = ocs()
        .args(["track", "demo", "--speed", "1200", "--minutes", "60"])
        .arg("--db")
        .arg(format!("sqlite:{}", dir.join("demo.db").display()))
        .arg("--out")
        .arg(&html)
        .output()
        .expect("demo");
    assert_eq!(demo.status.code(), Some(0));
    let chromium = |extra: &[&str]| {
        std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .expect("chromium (install Debian's chromium)")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 3, "a timeline per person");
    assert!(dom.contains("Daily totals"));
    for state in ["online", "busy", "custom: Customer visit"] {
        assert!(dom.contains(&format!("data-state=\"{state}\"")), "{state}");
    }
    let png = dir.join("report.png");
    let shot = chromium(&[
        "--window-size=1000,700",
        &format!("--screenshot={}", png.display()),
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_signs_many_clients_in_and_reports_figures() {
    let (mut server, port) =
        sim_server_with(&["--users", "30", "--user-prefix", "u", "--password", "pw"]);
    let out = ocs()
        .args([
            "load",
            "--user",
            "sip:u@contoso.com",
            "--auth-user",
            "CONTOSO\\u",
        ])
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--transport",
            "tcp",
        ])
        .args([
            "--clients",
            "30",
            "--rate",
            "300",
            "--watch",
            "2",
            "--im-rate",
            "30",
            "--hold",
            "1",
        ])
        .env("OCS_PASSWORD", "pw")
        .output()
        .expect("load");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The progress bar went to stderr, the figures to stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("30/30 signed in"));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON line");
    assert_eq!(v["clients"], 30);
    assert_eq!(v["signed_in"], 30);
    assert_eq!(v["failed"], 0);
    assert!(v["signin_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(v["p50_ms"].as_f64().unwrap_or(0.0) <= v["p99_ms"].as_f64().unwrap_or(0.0));
    assert!(v["rss_per_client_bytes"].as_u64().unwrap_or(0) > 0);
    let sent = v["ims_sent"].as_u64().expect("ims");
    assert!(sent > 0);
    // Every IM ended, delivered or failed (none vanished).
    assert_eq!(
        v["ims_delivered"].as_u64().unwrap_or(0) + v["ims_failed"].as_u64().unwrap_or(0),
        sent,
        "{v}"
    );
    // A user the server does not know: failures counted with the reason.
    let bad = ocs()
        .args([
            "load",
            "--user",
            "sip:nobody@contoso.com",
            "--auth-user",
            "CONTOSO\\nobody",
        ])
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--transport",
            "tcp",
        ])
        .args(["--clients", "2", "--user-prefix", "nobody"])
        .env("OCS_PASSWORD", "pw")
        .output()
        .expect("load");
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&bad.stdout).trim()).expect("one JSON line");
    assert_eq!(v["failed"], 2);
    assert!(v["first_error"].as_str().is_some(), "{v}");
    let _ = server.kill();
}

#[test]
fn autodiscover_finds_the_embedded_server_with_a_token() {
    let (mut server, v) = sim_server_listening(&[]);
    let url = v["autodiscover"]
        .as_str()
        .expect("autodiscover URL")
        .to_owned();
    // Autodiscover names the TLS listener, as a pool names its TLS port.
    let tls = v["tls"].as_str().expect("tls").to_owned();
    let discover = |password: &str| {
        ocs()
            .args(["autodiscover", "--user", "sip:alice@contoso.com"])
            .args(["--auth-user", "CONTOSO\\alice", "--url", &url])
            .env("OCS_PASSWORD", password)
            .output()
            .expect("runs")
    };
    let out = discover("alicepw");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let outcomes: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "autodiscover_step")
        .filter_map(|l| l["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    assert!(outcomes[1].starts_with("401: token from"), "{outcomes:?}");
    let found = lines.last().expect("found");
    assert_eq!(found["event"], "autodiscover_found");
    let server_addr = format!(
        "{}:{}",
        found["servers"][0]["fqdn"].as_str().expect("fqdn"),
        found["servers"][0]["port"]
    );
    assert_eq!(server_addr, tls);

    // A wrong password: exit 1 and the token service's reason.
    let out = discover("wrong");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_grant"), "{stderr}");

    // Sign-in by autodiscover: TLS to the server's own CA, then NTLM.
    let ca = v["ca"].as_str().expect("the CA file").to_owned();
    let out = ocs()
        .args(["register", "--user", "sip:alice@contoso.com"])
        .args(["--auth-user", "CONTOSO\\alice", "--autodiscover", &url])
        .args(["--ca", &ca, "--for", "1"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(events[0]["event"], "connected", "{stdout}");
    assert_eq!(events[0]["source"], "autodiscover");
    assert_eq!(events[0]["transport"], "TLS");
    assert_eq!(events[0]["addr"].as_str(), Some(tls.as_str()));
    assert_eq!(events[1]["event"], "registered", "{stdout}");
    let _ = std::fs::remove_file(&ca);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn tls_dsk_sign_in_with_a_certificate_from_the_embedded_server() {
    let (mut server, v) = sim_server_listening(&["--auth", "tls-dsk"]);
    let tcp = v["tcp"].as_str().expect("tcp").to_owned();
    let ca = v["ca"].as_str().expect("ca").to_owned();
    let dir = std::path::PathBuf::from(v["cert_dir"].as_str().expect("cert_dir"));
    let register = |cert: &str| {
        ocs()
            .args(["register", "--user", "sip:alice@contoso.com"])
            .args(["--server", &tcp, "--transport", "tcp", "--for", "1"])
            .args(["--ca", &ca])
            .arg("--cert")
            .arg(dir.join(format!("{cert}.pem")))
            .arg("--key")
            .arg(dir.join(format!("{cert}.key")))
            // No password anywhere: the certificate is the credential.
            .env_remove("OCS_PASSWORD")
            .output()
            .expect("runs")
    };
    let out = register("alice");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let registered: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .find(|e| e["event"] == "registered")
        .expect("registered");
    assert_eq!(registered["auth"], "TLS-DSK");
    // bob's certificate does not sign alice in.
    let out = register("bob");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    // Asked for NTLM, the client does not answer the TLS-DSK challenge.
    let out = ocs()
        .args(["register", "--user", "sip:alice@contoso.com"])
        .args(["--server", &tcp, "--transport", "tcp", "--for", "1"])
        .args(["--auth", "ntlm"])
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the server offers TLS-DSK and NTLM was asked for"),
        "{stderr}"
    );
    // With --cert-store and a password, the client provisions its own
    // certificate from the server the challenge names, and keeps it.
    let store = dir.join("store");
    let out = ocs()
        .args(["register", "--user", "sip:alice@contoso.com"])
        .args(["--server", &tcp, "--transport", "tcp", "--for", "1"])
        .args([
            "--ca",
            &ca,
            "--auth",
            "tls-dsk",
            "--auth-user",
            "CONTOSO\\alice",
        ])
        .arg("--cert-store")
        .arg(&store)
        .env("OCS_PASSWORD", "alicepw")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let needed = events
        .iter()
        .find(|e| e["event"] == "certificate_needed")
        .expect("certificate_needed");
    assert_eq!(needed["renewal"], false);
    assert!(
        needed["sts_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/CertProv/CertProvisioningService.svc")),
        "{needed}"
    );
    let registered = events
        .iter()
        .find(|e| e["event"] == "registered")
        .expect("registered");
    assert_eq!(registered["auth"], "TLS-DSK");
    assert!(store.join("alice@contoso.com.pem").exists());
    assert!(!stdout.contains("alicepw"));
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&ca);
}

/// `ocs register --auth kerberos` against `ocs sim-server --auth kerberos`,
/// both built with `--features kerberos`, with the MIT KDC of
/// scripts/kdc.sh (its settings in the environment; scripts/test.sh runs
/// this with `--ignored`).
#[cfg(all(feature = "kerberos", unix))]
#[test]
#[ignore = "needs the KDC of scripts/kdc.sh (scripts/test.sh runs it)"]
fn kerberos_sign_in_against_a_real_kdc() {
    assert!(
        std::env::var_os("KRB5_KTNAME").is_some(),
        "run scripts/kdc.sh start and load target/kdc.env first"
    );
    let (mut server, v) = sim_server_listening(&["--auth", "kerberos", "--no-tls"]);
    let tcp = v["tcp"].as_str().expect("tcp").to_owned();
    let register = |password: &str| {
        ocs()
            .args(["register", "--user", "sip:alice@contoso.com"])
            .args(["--server", &tcp, "--transport", "tcp", "--for", "1"])
            .args(["--auth", "kerberos"])
            .env("OCS_PASSWORD", password)
            .output()
            .expect("runs")
    };
    let out = register("alicepw");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registered: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .find(|e| e["event"] == "registered")
        .expect("registered");
    assert_eq!(registered["auth"], "Kerberos");
    // The KDC refuses a wrong password; sign-in fails saying Kerberos.
    let out = register("wrong");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Kerberos"), "{stderr}");
    let _ = server.kill();
    let _ = server.wait();
}
