//! The live Windows registry as a policy source (Windows only).
//!
//! Reads the three Communicator keys the engine knows (HKLM and HKCU
//! `Software\Policies\Microsoft\Communicator`, HKCU
//! `Software\Microsoft\Communicator`) and turns them into a [`RegFile`]
//! of `SetValue` operations, so the live registry goes through exactly
//! the same evaluation as a `.reg` export. Provenance reads
//! `registry:0`, since values in a hive have no line numbers.

use std::io;

use winreg::RegKey as WinKey;
use winreg::enums::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ};

use super::eval::{OPTIONS_KEY, POLICY_KEY};
use super::reg::{Hive, RegFile, RegKey, RegOp, RegValue, RegVersion};

/// The file name the evaluation records for live values.
pub const LIVE_SOURCE_NAME: &str = "registry";

/// Reads the Communicator policy and option keys. Missing keys are
/// skipped; other errors (access denied) are returned.
pub fn read_live_registry() -> io::Result<RegFile> {
    let mut ops = Vec::new();
    for (hive, root, path) in [
        (Hive::LocalMachine, HKEY_LOCAL_MACHINE, POLICY_KEY),
        (Hive::CurrentUser, HKEY_CURRENT_USER, POLICY_KEY),
        (Hive::CurrentUser, HKEY_CURRENT_USER, OPTIONS_KEY),
    ] {
        let key = match WinKey::predef(root).open_subkey_with_flags(path, KEY_READ) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let reg_key = RegKey {
            hive,
            path: path.to_owned(),
        };
        for item in key.enum_values() {
            let (name, raw) = item?;
            ops.push(RegOp::SetValue {
                key: reg_key.clone(),
                name: if name.is_empty() { None } else { Some(name) },
                value: RegValue::from_raw(raw.vtype as u32, &raw.bytes),
                line: 0,
            });
        }
    }
    Ok(RegFile {
        version: RegVersion::V5,
        ops,
    })
}
