//! `ocs policy ...` as a black box: JSON shape, provenance, exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A scratch directory per test (removed and recreated).
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("policy_cli_{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_string_lossy().into_owned()
}

fn utf16le_bom(text: &str) -> Vec<u8> {
    let mut b = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        b.extend_from_slice(&u.to_le_bytes());
    }
    b
}

const SEED_USER: &str = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\r\n\
\"EnableAppearOffline\"=dword:00000001\r\n\
\"DisableIM\"=dword:00000001\r\n\
\"GalDownloadInitialDelay\"=dword:00000000\r\n\
\"Extra\"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n\
\"Blob\"=hex:DE,AD\r\n";

const SEED_MACHINE: &str = "REGEDIT4\n\n\
[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Communicator]\n\
@=\"\"\n\
\"CustomStateURL\"=\"https://intranet/presence.xml\"\n\
\"DisableIM\"=dword:0\n";

#[test]
fn eval_prints_every_policy_with_provenance() {
    let d = scratch("eval");
    let user = write(&d, "user.reg", &utf16le_bom(SEED_USER));
    let (code, out, err) = run(&["policy", "eval", &user]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        v["DisableIM"],
        serde_json::json!({"value": 1, "source": "HKCU", "from": format!("{user}:5")})
    );
    assert_eq!(v["GalDownloadInitialDelay"]["value"], 0);
    assert_eq!(
        v["CustomStateURL"],
        serde_json::json!({"value": null, "source": "default", "from": null})
    );
    assert_eq!(v["SavePassword"]["value"], 1);
    assert_eq!(v["Extra"]["value"], serde_json::json!(["a", "b"]));
    assert_eq!(v["Blob"]["value"], "dead");
    // Known policies come first, in a fixed order.
    assert!(out.starts_with("{\"CustomStateURL\":"), "{out}");
    for name in [
        "EnableAppearOffline",
        "ServerAddressInternal",
        "ServerAddressExternal",
        "Transport",
        "ConfigurationMode",
        "EnableSIPHighSecurityMode",
        "DisableFileTransfer",
        "DisableNTCredentials",
        "EnableEventLogging",
        "DisablePresenceNote",
        "DisableCalendarPresence",
        "DisablePhonePresence",
        "DisableHTMLIM",
        "TrustModelData",
    ] {
        assert!(v.get(name).is_some(), "{name} missing");
    }

    // HKLM (REGEDIT4, UTF-8) beats HKCU whatever the file order.
    let machine = write(&d, "machine.reg", SEED_MACHINE.as_bytes());
    let (code, out, _) = run(&["policy", "eval", &machine, &user]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["DisableIM"]["value"], 0);
    assert_eq!(v["DisableIM"]["source"], "HKLM");
    assert_eq!(v["DisableIM"]["from"], format!("{machine}:6"));
    assert_eq!(
        v["CustomStateURL"]["value"],
        "https://intranet/presence.xml"
    );
    assert_eq!(v["EnableAppearOffline"]["source"], "HKCU");
}

#[test]
fn eval_later_file_overrides_and_deletes() {
    let d = scratch("override");
    let a = write(&d, "a.reg", SEED_USER.as_bytes());
    let b = write(
        &d,
        "b.reg",
        b"REGEDIT4\n[HKCU\\Software\\Policies\\Microsoft\\Communicator]\n\"DisableIM\"=-\n\"enableappearoffline\"=dword:0\n",
    );
    let (code, out, _) = run(&["policy", "eval", &a, &b]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["DisableIM"]["source"], "default");
    assert_eq!(v["DisableIM"]["value"], 0);
    assert_eq!(v["EnableAppearOffline"]["from"], format!("{b}:4"));
}

#[test]
fn eval_errors_and_exit_codes() {
    let d = scratch("errors");
    let bad = write(
        &d,
        "bad.reg",
        b"REGEDIT4\n[HKCU\\Software\\Policies\\Microsoft\\Communicator]\n\"DisableIM\"=dword:xyz\n",
    );
    let (code, out, err) = run(&["policy", "eval", &bad]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.starts_with(&format!("error: {bad}:3:19: ")), "{err}");
    let (code, _, err) = run(&["policy", "eval", "/nonexistent/x.reg"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: reading /nonexistent/x.reg"),
        "{err}"
    );
    let (code, _, err) = run(&["policy", "eval", "--provisioning", "/nonexistent/p.xml"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: reading /nonexistent/p.xml"),
        "{err}"
    );
    let (code, out, _) = run(&["policy", "eval", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("provisionGroupList"), "{out}");
    // No files: all defaults.
    let (code, out, _) = run(&["policy", "eval"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert!(
        v.as_object()
            .expect("object")
            .values()
            .all(|e| e["source"] == "default")
    );
}

#[test]
fn explain_in_plain_words() {
    let d = scratch("explain");
    let user = write(&d, "user.reg", SEED_USER.as_bytes());
    let (code, out, _) = run(&["policy", "explain", "disableim", &user]);
    assert_eq!(code, 0);
    let first = out.lines().next().expect("a line");
    assert_eq!(
        first,
        format!("DisableIM = 1 (from user policy, HKCU, {user}:5)")
    );
    assert!(out.contains("instant messages can be neither sent nor received"));
    let (code, out, _) = run(&["policy", "explain", "GalDownloadInitialDelay"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("GalDownloadInitialDelay = 60 (from built-in default)"),
        "{out}"
    );
    let (code, out, _) = run(&["policy", "explain", "Blob", &user]);
    assert_eq!(code, 0);
    assert!(out.contains("Not a setting ocs knows"), "{out}");
    let (code, _, err) = run(&["policy", "explain", "NoSuchPolicy"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a policy ocs knows"), "{err}");
}

#[test]
fn list_reads_our_adm() {
    let adm = format!(
        "{}/../ocs-core/data/ocs-communicator.adm",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = run(&["policy", "list", "--adm", &adm]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 36);
    let im = rows
        .iter()
        .find(|r| r["class"] == "USER" && r["value_name"] == "DisableIM")
        .expect("DisableIM for USER");
    assert_eq!(im["key"], "Software\\Policies\\Microsoft\\Communicator");
    assert_eq!(im["value_on"], 1);
    assert!(
        im["explain"]
            .as_str()
            .expect("explain")
            .contains("instant messages")
    );
    let url = rows
        .iter()
        .find(|r| r["class"] == "MACHINE" && r["parts"][0]["value_name"] == "CustomStateURL")
        .expect("CustomStateURL part");
    assert_eq!(url["parts"][0]["type"], "EDITTEXT");

    let d = scratch("adm");
    let bad = write(
        &d,
        "bad.adm",
        b"CLASS USER\nCATEGORY !!missing\nEND CATEGORY\n",
    );
    let (code, _, err) = run(&["policy", "list", "--adm", &bad]);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("error: {bad}:2:10: ")), "{err}");
}

#[test]
fn top_level_help_lists_policy() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("policy"), "{out}");
    let (code, out, _) = run(&["policy", "--help"]);
    assert_eq!(code, 0);
    for sub in ["eval", "list", "explain"] {
        assert!(out.contains(sub), "{out}");
    }
}

#[test]
fn eval_with_provisioning_is_the_in_band_source_below_group_policy() {
    let d = scratch("provisioning");
    let xml = write(
        &d,
        "F.xml",
        br#"<provisionGroupList xmlns="http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification">
  <provisionGroup name="ServerConfiguration">
    <absInternalServerUrl>https://pool.contoso.com/abs/int</absInternalServerUrl>
  </provisionGroup>
  <provisionGroup name="ucPolicy"><instance>
    <property name="DisableIM">true</property>
    <property name="EnableAppearOffline">true</property>
  </instance></provisionGroup>
</provisionGroupList>"#,
    );
    let reg = write(
        &d,
        "gp.reg",
        b"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\r\n\"EnableAppearOffline\"=dword:00000000\r\n",
    );
    let (code, out, err) = run(&["policy", "eval", &reg, "--provisioning", &xml]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["DisableIM"]["value"], "true");
    assert_eq!(v["DisableIM"]["source"], "in-band");
    assert_eq!(v["DisableIM"]["from"], xml.as_str());
    // Group policy beats in-band provisioning.
    assert_eq!(v["EnableAppearOffline"]["value"], 0);
    assert_eq!(v["EnableAppearOffline"]["source"], "HKCU");
    // ServerConfiguration is not policy.
    assert!(v.get("absInternalServerUrl").is_none());

    let bad = write(
        &d,
        "bad.xml",
        b"<provisionGroupList>\n  <provisionGroup/>\n</provisionGroupList>",
    );
    let (code, out, err) = run(&["policy", "eval", "--provisioning", &bad]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.starts_with(&format!("error: {bad}:2:")), "{err}");
    let doctype = write(
        &d,
        "xxe.xml",
        b"<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><provisionGroupList>&x;</provisionGroupList>",
    );
    let (code, _, err) = run(&["policy", "eval", "--provisioning", &doctype]);
    assert_eq!(code, 1);
    assert!(err.contains("DOCTYPE"), "{err}");
}
