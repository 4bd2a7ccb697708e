//! `ocs presence parse` and `ocs custom-states check` as black boxes.

use std::io::Write;
use std::process::{Command, Stdio};

fn data(rel: &str) -> String {
    format!(
        "{}/../ocs-core/tests/data/presence/{rel}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ocs"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_stdin(args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writes");
    let out = child.wait_with_output().expect("waits");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn presence_parse_multipart_with_content_type() {
    let ct = "multipart/related; type=\"application/rlmi+xml\"; start=resourceList; boundary=50UBfW7LSCVLtggUPe5z";
    let (code, out, err) = run(&[
        "presence",
        "parse",
        &data("t16d_notify_body.txt"),
        "--content-type",
        ct,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let c = &v[0];
    assert_eq!(c["uri"], "sip:bob@contoso.com");
    assert_eq!(c["availability"], 6500);
    assert_eq!(c["state"], "busy");
    assert_eq!(c["activity"], "in-a-meeting");
    assert_eq!(c["custom_text"], serde_json::Value::Null);
    assert_eq!(c["note"], "Call me on my mobile");
    assert_eq!(c["display_name"], serde_json::Value::Null);
    assert!(out.starts_with(
        "[{\"uri\":\"sip:bob@contoso.com\",\"availability\":6500,\"state\":\"busy\",\"activity\":\"in-a-meeting\",\"custom_text\":null,\"note\":\"Call me on my mobile\",\"display_name\":null"
    ), "{out}");
}

#[test]
fn presence_parse_detects_kind_without_content_type() {
    let (code, out, err) = run(&["presence", "parse", &data("t16d_notify_body.txt")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"state\":\"busy\""), "{out}");
    let (code, out, _) = run(&["presence", "parse", &data("t16d_bob_categories.xml")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["state"], "busy");
    let (code, out, _) = run(&["presence", "parse", &data("pidf_rpid.xml")]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v[0]["uri"], "sip:carol@example.com");
    assert_eq!(v[0]["state"], "away");
    assert_eq!(v[0]["note"], "Lunch");
}

#[test]
fn presence_parse_refuses_hostile_input_with_position() {
    let (code, _, err) = run_stdin(
        &["presence", "parse"],
        b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]>\n<categories>&a;</categories>",
    );
    assert_eq!(code, 1);
    assert!(err.starts_with("error: 1:1: DOCTYPE"), "{err}");
    let (code, _, err) = run_stdin(
        &["presence", "parse", "--content-type", "application/msrtc-event-categories+xml"],
        b"<categories>\n<category name=\"state\"><state><availability>lots</availability></state></category></categories>",
    );
    assert_eq!(code, 1);
    assert!(err.contains("2:31: invalid availability \"lots\""), "{err}");
}

#[test]
fn custom_states_check_t17_and_seed() {
    let (code, out, err) = run(&["custom-states", "check", &data("t17_custom_states.xml")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        r#"{"states":[{"id":1,"availability":"online","availability_value":3500,"text":"Working from Home"},{"id":2,"availability":"busy","availability_value":6500,"text":"In a Live Meeting"}]}"#
    );
    // A language the file does not list: plain state only (text null).
    let (code, out, _) = run(&[
        "custom-states",
        "check",
        &data("t17_custom_states.xml"),
        "--lcid",
        "1031",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("\"text\":null"), "{out}");
    let (code, out, _) = run(&[
        "custom-states",
        "check",
        &data("seed_custom_states.xml"),
        "--lcid",
        "1031",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["states"][1]["availability"], "busy");
    assert_eq!(v["states"][3]["availability_value"], 9500);
    assert_eq!(v["states"][3]["text"], "Halte Webcast");
}

#[test]
fn custom_states_check_lists_every_violation() {
    let (code, out, err) = run(&["custom-states", "check", &data("t17_negative.xml")]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines[0].starts_with("error: 2:23: availability \"away\""),
        "{err}"
    );
    assert!(
        lines[1].starts_with("error: 6:5: activity text is 65 characters"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("error: 10:3: custom state #5 is one too many"),
        "{err}"
    );
    assert!(lines[3].starts_with("error: 10:16: ID 4 is used"), "{err}");
    assert_eq!(
        lines[4],
        format!("error: 4 violations in {}", data("t17_negative.xml"))
    );
}

#[test]
fn custom_states_url_rules() {
    let file_url = format!("file://{}", data("t17_custom_states.xml"));
    let (code, _, err) = run(&["custom-states", "check", &file_url]);
    assert_eq!(code, 1, "R2 refuses file:");
    assert!(err.contains("R2 needs http"), "{err}");
    let (code, out, err) = run(&["custom-states", "check", &file_url, "--client", "oc2007"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("{\"states\":["));
    let (code, _, err) = run(&[
        "custom-states",
        "check",
        &file_url,
        "--client",
        "oc2007",
        "--high-security",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("https"), "{err}");
    // Allowed URLs are fetched now; nobody listens on port 1 (exit 2, I/O).
    let (code, _, err) = run(&["custom-states", "check", "https://127.0.0.1:1/cs.xml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("https://127.0.0.1:1/cs.xml"), "{err}");
    let (code, _, err) = run(&[
        "custom-states",
        "check",
        "http://example.invalid/cs.xml",
        "--high-security",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("high-security"), "{err}");
}

#[test]
fn help_lists_the_new_commands() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("presence"));
    assert!(out.contains("custom-states"));
}
