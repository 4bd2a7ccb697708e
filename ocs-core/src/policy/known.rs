//! The typed Communicator policies ocs understands: type, built-in default
//! and a plain-words explanation of each.
//!
//! Defaults marked "assumed" could not be confirmed for OC 2007 R2
//! (PROTOCOL.md §f.2 marks them \[U\]); they follow the Lync-era client
//! documentation or the conservative choice.

/// How a policy's registry value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyKind {
    /// A DWORD where 0 is off and anything else is on. From in-band
    /// provisioning, `true`/`false` and decimal strings are accepted too.
    Bool,
    /// A DWORD number (decimal strings are accepted too).
    Dword,
    /// A string (REG_SZ or REG_EXPAND_SZ; `%VAR%` is not expanded).
    String,
}

/// One known policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyInfo {
    /// The registry value name, e.g. `DisableIM`.
    pub name: &'static str,
    /// How its value is read.
    pub kind: PolicyKind,
    /// The built-in default: a number for `Bool` (0/1) and `Dword`, `None`
    /// for strings that are unset by default.
    pub default: Option<u32>,
    /// What it does, in plain words.
    pub explain: &'static str,
}

const fn p(
    name: &'static str,
    kind: PolicyKind,
    default: Option<u32>,
    explain: &'static str,
) -> PolicyInfo {
    PolicyInfo {
        name,
        kind,
        default,
        explain,
    }
}

use PolicyKind::{Bool, Dword, String as Str};

/// Every typed policy, in the order `ocs policy eval` lists them.
pub const KNOWN_POLICIES: &[PolicyInfo] = &[
    p(
        "CustomStateURL",
        Str,
        None,
        "Where to fetch the custom presence states XML (up to four extra states). \
         With OC 2007 R2 it must be an http(s) URL; it is read once at start. Unset: no custom states.",
    ),
    p(
        "EnableAppearOffline",
        Bool,
        Some(0),
        "When on, the user may pick the hidden \"Appear Offline\" state, so contacts see \
         them as signed out. Default off.",
    ),
    p(
        "DisableIM",
        Bool,
        Some(0),
        "When on, instant messages can be neither sent nor received; contacts see that IM \
         is blocked. Client-side only: other devices of the same user are not affected. Default off.",
    ),
    p(
        "GalDownloadInitialDelay",
        Dword,
        Some(60),
        "Upper bound, in minutes, of the random wait before the first address-book download \
         after sign-in; 0 downloads right away. Default 60 (assumed).",
    ),
    p(
        "ServerAddressInternal",
        Str,
        None,
        "The server (FQDN or IP, optionally :port) to sign in to inside the company network, \
         used when ConfigurationMode is 1. Unset: found through DNS.",
    ),
    p(
        "ServerAddressExternal",
        Str,
        None,
        "The server (usually the Edge/access proxy) to sign in to from outside the company \
         network, used when ConfigurationMode is 1. Unset: found through DNS.",
    ),
    p(
        "Transport",
        Str,
        None,
        "Transport for the manually configured servers: TCP or TLS. Unset: TLS.",
    ),
    p(
        "ConfigurationMode",
        Dword,
        Some(0),
        "How the sign-in server is found: 0 automatically through DNS, 1 from \
         ServerAddressInternal/ServerAddressExternal and Transport. Default 0.",
    ),
    p(
        "EnableSIPHighSecurityMode",
        Dword,
        Some(0),
        "SIP security mode. Non-zero demands secure connections; with 2, custom states are \
         only fetched over https. Default 0 (assumed).",
    ),
    p(
        "DisableFileTransfer",
        Bool,
        Some(0),
        "When on, files can be neither sent nor received. Default off.",
    ),
    p(
        "DisableNTCredentials",
        Bool,
        Some(0),
        "When on, the Windows logon is never used for single sign-on; the user is always \
         asked for a user name and password. Default off.",
    ),
    p(
        "SavePassword",
        Bool,
        Some(1),
        "Whether the user may let the client remember the password. Default on (assumed).",
    ),
    p(
        "EnableEventLogging",
        Bool,
        Some(0),
        "When on, the client writes sign-in and connection problems to the event log. Default off.",
    ),
    p(
        "DisablePresenceNote",
        Bool,
        Some(0),
        "When on, the personal note is neither published nor shown. Default off.",
    ),
    p(
        "DisableCalendarPresence",
        Bool,
        Some(0),
        "When on, calendar information (free/busy, out of office) does not feed presence. \
         Default off.",
    ),
    p(
        "DisablePhonePresence",
        Bool,
        Some(0),
        "When on, being on the phone does not change presence to \"In a call\". Default off.",
    ),
    p(
        "DisableHTMLIM",
        Bool,
        Some(0),
        "When on, instant messages are sent and shown as plain text only, without HTML \
         formatting. Default off.",
    ),
    p(
        "TrustModelData",
        Str,
        None,
        "Extra server domains (comma or semicolon separated) to trust when the server's \
         name does not match the SIP domain. Unset: only the SIP domain is trusted.",
    ),
];

/// The policy named `name` (case-insensitive), if ocs knows it.
pub fn info(name: &str) -> Option<&'static PolicyInfo> {
    KNOWN_POLICIES
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// What the policy named `name` does, in plain words; `None` for a name
/// ocs does not know (its value is still kept raw).
pub fn explain(name: &str) -> Option<&'static str> {
    info(name).map(|p| p.explain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_names_are_unique() {
        assert_eq!(info("disableim").map(|p| p.name), Some("DisableIM"));
        assert!(explain("NoSuchThing").is_none());
        for (i, a) in KNOWN_POLICIES.iter().enumerate() {
            assert!(
                KNOWN_POLICIES[i + 1..]
                    .iter()
                    .all(|b| !a.name.eq_ignore_ascii_case(b.name))
            );
            assert_eq!(
                a.default.is_none(),
                a.kind == PolicyKind::String,
                "{}",
                a.name
            );
        }
    }
}
