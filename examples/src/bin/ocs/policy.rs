//! `ocs policy ...`: evaluate client policy, list ADM templates, explain a
//! setting.

use clap::Subcommand;
use ocs_core::policy::reg::{self, RegFile, RegValue, hex_string};
use ocs_core::policy::{EffectivePolicy, InBand, Setting, adm, evaluate, explain};
use ocs_examples::{CliError, emit, read_input};
use serde_json::{Map, Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print the effective Communicator policy as one JSON object:
    /// `{"DisableIM":{"value":1,"source":"HKCU","from":"F.reg:7"},...}`.
    ///
    /// Every known policy is listed (unset ones with source "default" and
    /// from null), then any other value found in the three Communicator
    /// keys. Sources, highest first: HKLM, HKCU, in-band, options, default.
    /// Values: dword/qword → number, sz/expand_sz → string, multi_sz →
    /// array of strings, other hex → lowercase hex string.
    Eval {
        /// `.reg` files (UTF-8 or UTF-16LE), applied in order; `-` is stdin.
        files: Vec<String>,
        /// In-band provisioning: a provisionGroupList document (the body of
        /// the server's answer to the vnd-microsoft-provisioning-v2
        /// SUBSCRIBE). Its ucPolicy properties are the in-band source
        /// (below HKLM and HKCU, above the user's options), each with
        /// "from" naming this file. A malformed file: exit 1 with line:column.
        #[arg(long, value_name = "F.xml")]
        provisioning: Option<String>,
    },
    /// List the policies an ADM template defines, one JSON object per line:
    /// {"class","category":[..],"name","key","value_name","value_on",
    /// "value_off","parts":[{"name","type","key","value_name"}],"explain","line"}.
    List {
        /// The .adm file; `-` is stdin.
        #[arg(long, value_name = "FILE")]
        adm: String,
    },
    /// Say in plain words what a policy is set to, where that came from and
    /// what it does.
    Explain {
        /// The policy (value) name, any letter case, e.g. DisableIM.
        name: String,
        /// `.reg` files, applied in order; `-` is stdin.
        files: Vec<String>,
    },
}

pub(crate) fn run(cmd: PolicyCommand) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Eval {
            files,
            provisioning,
        } => {
            let mut policy = load(&files)?;
            if let Some(p) = provisioning {
                let bytes = read_input(Some(&p))?;
                let shown = if p == "-" { "stdin" } else { p.as_str() };
                let doc = ocs_core::provisioning::parse(&bytes)
                    .map_err(|e| CliError::Failed(format!("{shown}:{e}")))?;
                policy.set_in_band(&doc.to_in_band_from(shown));
            }
            let mut out = Map::new();
            for s in policy.settings() {
                out.insert(
                    s.name.clone(),
                    json!({
                        "value": s.value.as_ref().map_or(Value::Null, value_json),
                        "source": s.source.as_str(),
                        "from": s.from,
                    }),
                );
            }
            emit(Value::Object(out))
        }
        PolicyCommand::List { adm: path } => {
            let bytes = read_input(Some(&path))?;
            let t = adm::parse(&bytes).map_err(|e| CliError::Failed(format!("{path}:{e}")))?;
            for p in &t.policies {
                let parts: Vec<Value> = p
                    .parts
                    .iter()
                    .map(|x| {
                        json!({"name": x.name, "type": x.kind, "key": x.key, "value_name": x.value_name})
                    })
                    .collect();
                emit(json!({
                    "class": p.class.as_str(),
                    "category": p.category,
                    "name": p.name,
                    "key": p.key,
                    "value_name": p.value_name,
                    "value_on": p.value_on.as_ref().map(adm_value),
                    "value_off": p.value_off.as_ref().map(adm_value),
                    "parts": parts,
                    "explain": p.explain,
                    "line": p.line,
                }))?;
            }
            Ok(())
        }
        PolicyCommand::Explain { name, files } => {
            let policy = load(&files)?;
            let Some(s) = policy.setting(&name) else {
                return Err(CliError::Failed(format!(
                    "{name} is not a policy ocs knows, and no file sets it"
                )));
            };
            let value = s
                .value
                .as_ref()
                .map_or_else(|| "not set".to_owned(), |v| v.to_string());
            emit(format!("{} = {value} ({})", s.name, origin(&s)))?;
            for r in policy.rejected(&name) {
                let v = r
                    .value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                emit(format!(
                    "  ignored {v} ({}): not a valid value for this policy",
                    origin(r)
                ))?;
            }
            emit(explain(&name).unwrap_or(
                "Not a setting ocs knows: the value is kept as it is but changes nothing.",
            ))
        }
    }
}

/// Where a value came from, in words.
fn origin(s: &Setting) -> String {
    let what = match s.source.as_str() {
        "HKLM" => "machine policy, HKLM",
        "HKCU" => "user policy, HKCU",
        "in-band" => "in-band provisioning from the server",
        "options" => "the user's options, HKCU\\Software\\Microsoft\\Communicator",
        _ => "built-in default",
    };
    match &s.from {
        Some(f) => format!("from {what}, {f}"),
        None => format!("from {what}"),
    }
}

/// Reads and parses every file; a malformed one is exit 1 with
/// `FILE:LINE:COL: ...`, an unreadable one exit 2.
fn load(files: &[String]) -> Result<EffectivePolicy, CliError> {
    let mut parsed: Vec<(String, RegFile)> = Vec::new();
    for f in files {
        let bytes = read_input(Some(f))?;
        let file = reg::parse(&bytes).map_err(|e| CliError::Failed(format!("{f}:{e}")))?;
        let shown = if f == "-" { "stdin" } else { f.as_str() };
        parsed.push((shown.to_owned(), file));
    }
    Ok(evaluate(&parsed, &InBand::new()))
}

fn value_json(v: &RegValue) -> Value {
    match v {
        RegValue::Dword(n) => json!(n),
        RegValue::Qword(n) => json!(n),
        RegValue::Sz(s) | RegValue::ExpandSz(s) => json!(s),
        RegValue::MultiSz(v) => json!(v),
        RegValue::Binary(b) | RegValue::Raw { bytes: b, .. } => json!(hex_string(b)),
        // New value kinds must be mapped here before the CLI prints them.
        other => json!(other.to_string()),
    }
}

fn adm_value(v: &adm::AdmValue) -> Value {
    match v {
        adm::AdmValue::Text(s) => json!(s),
        adm::AdmValue::Numeric(n) => json!(n),
        adm::AdmValue::Delete => json!({"delete": true}),
    }
}
