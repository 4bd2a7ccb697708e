//! Policy evaluation: sources in, effective policy out (a pure function).
//!
//! Sources, highest precedence first (OC 2007 R2, PROTOCOL.md §f.1):
//!
//! | [`Source`] | where | name in provenance |
//! |---|---|---|
//! | `Hklm` | `HKLM\Software\Policies\Microsoft\Communicator` | `HKLM` |
//! | `Hkcu` | `HKCU\Software\Policies\Microsoft\Communicator` | `HKCU` |
//! | `InBand` | in-band provisioning from the server ([`InBand`]) | `in-band` |
//! | `Options` | `HKCU\Software\Microsoft\Communicator` (the user's own options) | `options` |
//! | `Default` | built-in ([`super::known`]) | `default` |
//!
//! Only values directly in those three keys count. Everything else in a
//! `.reg` file is ignored, including subkeys such as
//! `...\Communicator\Policy`: PROTOCOL.md §f.2 names
//! `HKLM\...\Communicator\Policy\EnableAppearOffline` only as a setting of
//! the Communicator Web Access *server*, not of the desktop client, so
//! honouring it here would let a server-side knob change client behaviour.
//! 64-bit `Wow6432Node` copies are ignored too (the Policies key is shared
//! between views on 64-bit Windows).
//!
//! Files are applied in the order given, each operation in file order,
//! each to the source its key belongs to: a later file overrides an
//! earlier one, `"Name"=-` removes a value and `[-KEY]` removes every value
//! of each source key at or below KEY (so `[-HKEY_CURRENT_USER\Software]`
//! clears both the HKCU policy and the user options).
//!
//! A typed accessor takes the highest-precedence value that reads as its
//! type; a value of the wrong type (e.g. `DisableIM="yes"`) is passed
//! over (see [`EffectivePolicy::rejected`]) rather than silently turned
//! into a default. Value names are case-insensitive.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::known::{self, KNOWN_POLICIES, PolicyInfo, PolicyKind};
use super::reg::{Hive, RegFile, RegOp, RegValue};
use crate::error::{Error, Provenance};

/// The policy key below `HKLM` and `HKCU`.
pub const POLICY_KEY: &str = r"Software\Policies\Microsoft\Communicator";
/// The user options key below `HKCU`.
pub const OPTIONS_KEY: &str = r"Software\Microsoft\Communicator";

/// Where a value came from, in precedence order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Machine group policy.
    Hklm,
    /// User group policy.
    Hkcu,
    /// In-band provisioning from the server.
    InBand,
    /// The user's own options.
    Options,
    /// Built in.
    Default,
}

impl Source {
    /// All sources, highest precedence first.
    pub const PRECEDENCE: [Source; 5] = [
        Source::Hklm,
        Source::Hkcu,
        Source::InBand,
        Source::Options,
        Source::Default,
    ];

    /// The name used in provenance and JSON: `HKLM`, `HKCU`, `in-band`,
    /// `options` or `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hklm => "HKLM",
            Source::Hkcu => "HKCU",
            Source::InBand => "in-band",
            Source::Options => "options",
            Source::Default => "default",
        }
    }

    /// The registry source a key belongs to, if it is one of the three
    /// Communicator keys.
    fn of_key(path: &super::reg::RegKey) -> Option<Source> {
        if path.is(Hive::LocalMachine, POLICY_KEY) {
            Some(Source::Hklm)
        } else if path.is(Hive::CurrentUser, POLICY_KEY) {
            Some(Source::Hkcu)
        } else if path.is(Hive::CurrentUser, OPTIONS_KEY) {
            Some(Source::Options)
        } else {
            None
        }
    }

    fn layer(self) -> Option<usize> {
        match self {
            Source::Hklm => Some(0),
            Source::Hkcu => Some(1),
            Source::InBand => Some(2),
            Source::Options => Some(3),
            Source::Default => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value with its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value name: the canonical spelling for a known policy (from
    /// [`EffectivePolicy::setting`]), else as the source wrote it.
    pub name: String,
    /// The value; `None` only for a built-in default that is "unset"
    /// (string policies such as CustomStateURL).
    pub value: Option<RegValue>,
    /// Which source.
    pub source: Source,
    /// `file:line` for registry files; the caller's locator (or nothing)
    /// for in-band values; `None` for defaults.
    pub from: Option<String>,
}

impl Setting {
    /// Its provenance, for errors and display.
    pub fn provenance(&self) -> Provenance {
        Provenance {
            source: self.source.as_str().to_owned(),
            from: self.from.clone(),
        }
    }
}

/// A typed effective value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective<T> {
    /// The value.
    pub value: T,
    /// The source that supplied it.
    pub source: Source,
    /// Source and `file:line`.
    pub provenance: Provenance,
}

/// The transport named by the `Transport` policy is the one discovery
/// uses (only `TCP` and `TLS` are valid policy values).
pub use crate::discovery::Transport;

/// The in-band provisioning source: value names and values as the server
/// sent them (booleans may be `true`/`false` strings). The provisioning
/// XML parser fills it; tests and callers can set it directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InBand {
    entries: Vec<(String, RegValue, Option<String>)>,
}

impl InBand {
    /// An empty in-band source.
    pub fn new() -> Self {
        InBand::default()
    }

    /// Sets `name` (a later set of the same name wins).
    pub fn set(&mut self, name: impl Into<String>, value: RegValue) -> &mut Self {
        self.entries.push((name.into(), value, None));
        self
    }

    /// Sets `name` with a locator for its provenance, e.g.
    /// `provisionGroup ucPolicy`.
    pub fn set_from(
        &mut self,
        name: impl Into<String>,
        value: RegValue,
        from: impl Into<String>,
    ) -> &mut Self {
        self.entries.push((name.into(), value, Some(from.into())));
        self
    }

    /// True when nothing was set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, RegValue)> for InBand {
    fn from_iter<I: IntoIterator<Item = (K, RegValue)>>(iter: I) -> Self {
        let mut b = InBand::new();
        for (k, v) in iter {
            b.set(k, v);
        }
        b
    }
}

type Layer = BTreeMap<String, Setting>;

/// The merged policy: every source's values, queried by precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// HKLM, HKCU, in-band, options; keyed by lowercase name.
    layers: [Layer; 4],
}

/// Merges `.reg` files (name, parsed file; in order, later wins within a
/// source) and the in-band source into the effective policy. Pure: no I/O.
pub fn evaluate<N: AsRef<str>>(files: &[(N, RegFile)], in_band: &InBand) -> EffectivePolicy {
    let mut eff = EffectivePolicy::default();
    for (name, file) in files {
        eff.apply(name.as_ref(), file);
    }
    eff.set_in_band(in_band);
    eff
}

const REG_SOURCES: [(Hive, &str, usize); 3] = [
    (Hive::LocalMachine, POLICY_KEY, 0),
    (Hive::CurrentUser, POLICY_KEY, 1),
    (Hive::CurrentUser, OPTIONS_KEY, 3),
];

impl EffectivePolicy {
    /// Evaluates; same as [`evaluate`].
    pub fn evaluate<N: AsRef<str>>(files: &[(N, RegFile)], in_band: &InBand) -> Self {
        evaluate(files, in_band)
    }

    /// Replaces the in-band source (e.g. when provisioning arrives after
    /// sign-in); the registry sources are kept.
    pub fn set_in_band(&mut self, in_band: &InBand) {
        self.layers[2].clear();
        for (name, value, from) in &in_band.entries {
            self.layers[2].insert(
                name.to_ascii_lowercase(),
                Setting {
                    name: name.clone(),
                    value: Some(value.clone()),
                    source: Source::InBand,
                    from: from.clone(),
                },
            );
        }
    }

    /// Applies one more file on top (it overrides what is there for the
    /// same source).
    pub fn apply(&mut self, file_name: &str, file: &RegFile) {
        for op in &file.ops {
            match op {
                RegOp::CreateKey { .. } => {}
                RegOp::DeleteKey { key, .. } => {
                    for (hive, path, layer) in REG_SOURCES {
                        if key.contains(hive, path) {
                            self.layers[layer].clear();
                        }
                    }
                }
                RegOp::SetValue {
                    key,
                    name,
                    value,
                    line,
                } => {
                    let (Some(layer), Some(name)) =
                        (Source::of_key(key).and_then(Source::layer), name)
                    else {
                        continue;
                    };
                    let source = Source::PRECEDENCE[layer];
                    self.layers[layer].insert(
                        name.to_ascii_lowercase(),
                        Setting {
                            name: name.clone(),
                            value: Some(value.clone()),
                            source,
                            from: Some(format!("{file_name}:{line}")),
                        },
                    );
                }
                RegOp::DeleteValue { key, name, .. } => {
                    if let (Some(layer), Some(name)) =
                        (Source::of_key(key).and_then(Source::layer), name)
                    {
                        self.layers[layer].remove(&name.to_ascii_lowercase());
                    }
                }
            }
        }
    }

    /// Every value set for `name` (case-insensitive), highest precedence
    /// first, defaults excluded.
    pub fn candidates<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Setting> + 'a {
        let key = name.to_ascii_lowercase();
        self.layers.iter().filter_map(move |l| l.get(&key))
    }

    /// The highest-precedence value set for `name`, whatever its type;
    /// `None` when no source sets it (defaults are not consulted).
    pub fn raw(&self, name: &str) -> Option<&Setting> {
        self.candidates(name).next()
    }

    /// The effective setting for `name`: for a known policy the
    /// highest-precedence value of the right type, else its default; for
    /// any other name the highest-precedence value. `None` for an unknown
    /// name no source sets.
    pub fn setting(&self, name: &str) -> Option<Setting> {
        match known::info(name) {
            Some(info) => Some(
                self.candidates(name)
                    .find(|s| s.value.as_ref().is_some_and(|v| accepts(info.kind, v)))
                    .map(|s| Setting {
                        name: info.name.to_owned(),
                        ..s.clone()
                    })
                    .unwrap_or_else(|| default_setting(info)),
            ),
            None => self.raw(name).cloned(),
        }
    }

    /// Values set for a known policy that were passed over because they
    /// do not read as its type (e.g. a string where a DWORD belongs).
    pub fn rejected(&self, name: &str) -> Vec<&Setting> {
        let Some(info) = known::info(name) else {
            return Vec::new();
        };
        self.candidates(name)
            .filter(|s| !s.value.as_ref().is_some_and(|v| accepts(info.kind, v)))
            .collect()
    }

    /// Every known policy (in [`KNOWN_POLICIES`] order, defaults included),
    /// then every other value found in the three Communicator keys or
    /// in-band (sorted by name, highest precedence wins).
    pub fn settings(&self) -> Vec<Setting> {
        let mut out: Vec<Setting> = KNOWN_POLICIES
            .iter()
            .filter_map(|p| self.setting(p.name))
            .collect();
        let mut unknown: BTreeMap<String, &Setting> = BTreeMap::new();
        for layer in &self.layers {
            for (k, s) in layer {
                if known::info(k).is_none() {
                    unknown.entry(k.clone()).or_insert(s);
                }
            }
        }
        out.extend(unknown.into_values().cloned());
        out
    }

    /// A boolean policy (0 off, anything else on).
    pub fn bool(&self, name: &str) -> Effective<bool> {
        let s = self.typed_setting(name, PolicyKind::Bool);
        let value = s.value.as_ref().and_then(as_u32).is_some_and(|n| n != 0);
        effective(value, &s)
    }

    /// A DWORD policy.
    pub fn dword(&self, name: &str) -> Effective<u32> {
        let s = self.typed_setting(name, PolicyKind::Dword);
        let value = s.value.as_ref().and_then(as_u32).unwrap_or(0);
        effective(value, &s)
    }

    /// A string policy; `None` when unset.
    pub fn string(&self, name: &str) -> Effective<Option<String>> {
        let s = self.typed_setting(name, PolicyKind::String);
        let value = s.value.as_ref().and_then(as_str).map(str::to_owned);
        effective(value, &s)
    }

    fn typed_setting(&self, name: &str, kind: PolicyKind) -> Setting {
        self.candidates(name)
            .find(|s| s.value.as_ref().is_some_and(|v| accepts(kind, v)))
            .cloned()
            .unwrap_or_else(|| match known::info(name) {
                Some(info) => default_setting(info),
                None => Setting {
                    name: name.to_owned(),
                    value: None,
                    source: Source::Default,
                    from: None,
                },
            })
    }

    /// `CustomStateURL`: the custom presence states XML. Default unset.
    pub fn custom_state_url(&self) -> Effective<Option<String>> {
        self.string("CustomStateURL")
    }

    /// `EnableAppearOffline`: "Appear Offline" may be chosen. Default false.
    pub fn enable_appear_offline(&self) -> Effective<bool> {
        self.bool("EnableAppearOffline")
    }

    /// `DisableIM`: no IM sent or received. Default false.
    pub fn disable_im(&self) -> Effective<bool> {
        self.bool("DisableIM")
    }

    /// `GalDownloadInitialDelay`: the upper bound of the random wait before
    /// the first address-book download. Default 60 minutes (assumed).
    pub fn gal_download_initial_delay(&self) -> Effective<Duration> {
        let e = self.dword("GalDownloadInitialDelay");
        Effective {
            value: Duration::from_secs(u64::from(e.value) * 60),
            source: e.source,
            provenance: e.provenance,
        }
    }

    /// `ServerAddressInternal`. Default unset (DNS discovery).
    pub fn server_address_internal(&self) -> Effective<Option<String>> {
        self.string("ServerAddressInternal")
    }

    /// `ServerAddressExternal`. Default unset (DNS discovery).
    pub fn server_address_external(&self) -> Effective<Option<String>> {
        self.string("ServerAddressExternal")
    }

    /// `Transport` (`TCP` or `TLS`, any letter case). Default unset; a
    /// value that is neither is passed over like a wrong type.
    pub fn transport(&self) -> Effective<Option<Transport>> {
        let found = self.candidates("Transport").find_map(|s| {
            let t = match s.value.as_ref().and_then(as_str)?.trim() {
                t if t.eq_ignore_ascii_case("TCP") => Transport::Tcp,
                t if t.eq_ignore_ascii_case("TLS") => Transport::Tls,
                _ => return None,
            };
            Some(effective(Some(t), s))
        });
        found.unwrap_or_else(|| Effective {
            value: None,
            source: Source::Default,
            provenance: default_provenance(),
        })
    }

    /// `ConfigurationMode`: 0 automatic (DNS), 1 manual. Default 0.
    pub fn configuration_mode(&self) -> Effective<u32> {
        self.dword("ConfigurationMode")
    }

    /// `EnableSIPHighSecurityMode`. Default 0 (assumed).
    pub fn enable_sip_high_security_mode(&self) -> Effective<u32> {
        self.dword("EnableSIPHighSecurityMode")
    }

    /// `DisableFileTransfer`. Default false.
    pub fn disable_file_transfer(&self) -> Effective<bool> {
        self.bool("DisableFileTransfer")
    }

    /// `DisableNTCredentials`: never use the Windows logon. Default false.
    pub fn disable_nt_credentials(&self) -> Effective<bool> {
        self.bool("DisableNTCredentials")
    }

    /// `SavePassword`: the password may be remembered. Default true (assumed).
    pub fn save_password(&self) -> Effective<bool> {
        self.bool("SavePassword")
    }

    /// `EnableEventLogging`. Default false.
    pub fn enable_event_logging(&self) -> Effective<bool> {
        self.bool("EnableEventLogging")
    }

    /// `DisablePresenceNote`. Default false.
    pub fn disable_presence_note(&self) -> Effective<bool> {
        self.bool("DisablePresenceNote")
    }

    /// `DisableCalendarPresence`. Default false.
    pub fn disable_calendar_presence(&self) -> Effective<bool> {
        self.bool("DisableCalendarPresence")
    }

    /// `DisablePhonePresence`. Default false.
    pub fn disable_phone_presence(&self) -> Effective<bool> {
        self.bool("DisablePhonePresence")
    }

    /// `DisableHTMLIM`: plain-text IM only. Default false.
    pub fn disable_html_im(&self) -> Effective<bool> {
        self.bool("DisableHTMLIM")
    }

    /// `TrustModelData`: extra trusted server domains. Default unset.
    pub fn trust_model_data(&self) -> Effective<Option<String>> {
        self.string("TrustModelData")
    }

    /// An [`Error::PolicyDenied`] naming `policy` and where its effective
    /// value came from, e.g. `policy.denied("DisableIM")` when
    /// `policy.disable_im().value` is true.
    pub fn denied(&self, policy: &str) -> Error {
        let s = self.setting(policy);
        Error::PolicyDenied {
            policy: s
                .as_ref()
                .map_or_else(|| policy.to_owned(), |s| canonical_name(&s.name)),
            provenance: s.map_or_else(default_provenance, |s| s.provenance()),
        }
    }
}

fn canonical_name(name: &str) -> String {
    known::info(name).map_or_else(|| name.to_owned(), |i| i.name.to_owned())
}

fn default_provenance() -> Provenance {
    Provenance {
        source: Source::Default.as_str().to_owned(),
        from: None,
    }
}

fn default_setting(info: &PolicyInfo) -> Setting {
    Setting {
        name: info.name.to_owned(),
        value: info.default.map(RegValue::Dword),
        source: Source::Default,
        from: None,
    }
}

fn effective<T>(value: T, s: &Setting) -> Effective<T> {
    Effective {
        value,
        source: s.source,
        provenance: s.provenance(),
    }
}

/// Reads a number: DWORD, QWORD that fits, or a decimal / `true` /
/// `false` string (in-band provisioning sends booleans as words).
fn as_u32(v: &RegValue) -> Option<u32> {
    match v {
        RegValue::Dword(n) => Some(*n),
        RegValue::Qword(n) => u32::try_from(*n).ok(),
        RegValue::Sz(s) | RegValue::ExpandSz(s) => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                Some(1)
            } else if t.eq_ignore_ascii_case("false") {
                Some(0)
            } else {
                t.parse().ok()
            }
        }
        _ => None,
    }
}

fn as_str(v: &RegValue) -> Option<&str> {
    match v {
        RegValue::Sz(s) | RegValue::ExpandSz(s) => Some(s),
        _ => None,
    }
}

fn accepts(kind: PolicyKind, v: &RegValue) -> bool {
    match kind {
        PolicyKind::Bool | PolicyKind::Dword => as_u32(v).is_some(),
        PolicyKind::String => as_str(v).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::reg::parse_str;
    use super::*;
    use proptest::prelude::*;

    const HKLM: &str = r"HKEY_LOCAL_MACHINE\Software\Policies\Microsoft\Communicator";
    const HKCU: &str = r"HKEY_CURRENT_USER\Software\Policies\Microsoft\Communicator";
    const OPTS: &str = r"HKEY_CURRENT_USER\Software\Microsoft\Communicator";

    fn reg(body: &str) -> RegFile {
        parse_str(&format!("Windows Registry Editor Version 5.00\n{body}")).expect("parses")
    }

    fn one(key: &str, line: &str) -> RegFile {
        reg(&format!("[{key}]\n{line}\n"))
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let p = evaluate::<&str>(&[], &InBand::new());
        let d = p.disable_im();
        assert!(!d.value);
        assert_eq!(d.source, Source::Default);
        assert_eq!(
            d.provenance,
            Provenance {
                source: "default".into(),
                from: None
            }
        );
        assert!(p.save_password().value);
        assert_eq!(
            p.gal_download_initial_delay().value,
            Duration::from_secs(3600)
        );
        assert_eq!(p.custom_state_url().value, None);
        assert_eq!(p.transport().value, None);
        assert_eq!(p.settings().len(), KNOWN_POLICIES.len());
    }

    #[test]
    fn precedence_hklm_hkcu_inband_options_default() {
        let files = vec![
            ("opts.reg", one(OPTS, "\"GalDownloadInitialDelay\"=dword:5")),
            ("user.reg", one(HKCU, "\"GalDownloadInitialDelay\"=dword:4")),
            (
                "machine.reg",
                one(HKLM, "\"GalDownloadInitialDelay\"=dword:3"),
            ),
        ];
        let ib: InBand = [("GalDownloadInitialDelay", RegValue::Sz("7".into()))]
            .into_iter()
            .collect();
        let minutes = |p: &EffectivePolicy| p.dword("galdownloadinitialdelay");
        let p = evaluate(&files, &ib);
        let e = minutes(&p);
        assert_eq!((e.value, e.source), (3, Source::Hklm));
        assert_eq!(e.provenance.from.as_deref(), Some("machine.reg:3"));
        let p = evaluate(&files[..2], &ib);
        let e = minutes(&p);
        assert_eq!((e.value, e.source), (4, Source::Hkcu));
        assert_eq!(e.provenance.from.as_deref(), Some("user.reg:3"));
        let p = evaluate(&files[..1], &ib);
        assert_eq!((minutes(&p).value, minutes(&p).source), (7, Source::InBand));
        let p = evaluate(&files[..1], &InBand::new());
        let e = minutes(&p);
        assert_eq!((e.value, e.source), (5, Source::Options));
        assert_eq!(e.provenance.source, "options");
        let p = evaluate::<&str>(&[], &InBand::new());
        assert_eq!(
            (minutes(&p).value, minutes(&p).source),
            (60, Source::Default)
        );
    }

    #[test]
    fn file_order_does_not_beat_precedence() {
        // HKLM from an earlier file still beats HKCU from a later one.
        let files = [
            ("m.reg", one(HKLM, "\"DisableIM\"=dword:0")),
            ("u.reg", one(HKCU, "\"DisableIM\"=dword:1")),
        ];
        let d = evaluate(&files, &InBand::new()).disable_im();
        assert!(!d.value);
        assert_eq!(d.provenance.from.as_deref(), Some("m.reg:3"));
    }

    #[test]
    fn later_file_overrides_and_deletions_remove() {
        let a = one(HKCU, "\"DisableIM\"=dword:1");
        let b = one(
            r"HKEY_CURRENT_User\software\policies\microsoft\COMMUNICATOR",
            "\"disableim\"=dword:0",
        );
        let p = evaluate(&[("a.reg", a.clone()), ("b.reg", b)], &InBand::new());
        assert_eq!(
            p.setting("DISABLEIM").map(|s| s.name),
            Some("DisableIM".to_owned())
        );
        assert_eq!(
            p.raw("DISABLEIM").map(|s| s.name.as_str()),
            Some("disableim")
        );
        let d = p.disable_im();
        assert!(!d.value);
        assert_eq!(d.provenance.from.as_deref(), Some("b.reg:3"));

        let del = one(HKCU, "\"DisableIM\"=-");
        let p = evaluate(&[("a.reg", a.clone()), ("d.reg", del)], &InBand::new());
        assert_eq!(p.disable_im().source, Source::Default);

        let delkey = reg(&format!("[-{HKCU}]\n"));
        let p = evaluate(&[("a.reg", a.clone()), ("k.reg", delkey)], &InBand::new());
        assert_eq!(p.disable_im().source, Source::Default);

        // Deleting a parent key clears HKCU policy and options alike.
        let o = one(OPTS, "\"DisableIM\"=dword:1");
        let parent = reg("[-HKCU\\Software]\n");
        let p = evaluate(
            &[("a.reg", a.clone()), ("o.reg", o), ("p.reg", parent)],
            &InBand::new(),
        );
        assert_eq!(p.disable_im().source, Source::Default);
        // ... but not HKLM.
        let m = one(HKLM, "\"DisableIM\"=dword:1");
        let p = evaluate(
            &[("m.reg", m), ("p.reg", reg("[-HKCU\\Software]\n"))],
            &InBand::new(),
        );
        assert_eq!(p.disable_im().source, Source::Hklm);

        // Within a file, a later line wins.
        let f = reg(&format!(
            "[{HKCU}]\n\"DisableIM\"=dword:1\n\"DisableIM\"=dword:0\n"
        ));
        let d = evaluate(&[("f.reg", f)], &InBand::new()).disable_im();
        assert_eq!(
            (d.value, d.provenance.from.as_deref()),
            (false, Some("f.reg:4"))
        );
    }

    #[test]
    fn other_keys_and_subkeys_are_ignored() {
        let f = reg(&format!(
            "[{HKLM}\\Policy]\n\"EnableAppearOffline\"=dword:1\n\
             [HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Communicator]\n\"DisableIM\"=dword:1\n\
             [HKEY_USERS\\S-1-5\\Software\\Policies\\Microsoft\\Communicator]\n\"DisableIM\"=dword:1\n\
             [{HKCU}]\n@=\"\"\n"
        ));
        let p = evaluate(&[("f.reg", f)], &InBand::new());
        assert_eq!(p.enable_appear_offline().source, Source::Default);
        assert_eq!(p.disable_im().source, Source::Default);
        assert_eq!(p.settings().len(), KNOWN_POLICIES.len());
    }

    #[test]
    fn seed_examples_evaluate() {
        let f = reg(
            "[HKEY_CURRENT_User\\Software\\Policies\\Microsoft\\Communicator]\n\
             \"EnableAppearOffline\"=dword:00000001\n\
             \"DisableIM\"=dword:00000001\n\
             \"GalDownloadInitialDelay\"=dword:00000000\n\
             [HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Communicator]\n\
             @=\"\"\n\
             \"CustomStateURL\"=\"https://intranet/presence.xml\"\n",
        );
        let p = evaluate(&[("seed.reg", f)], &InBand::new());
        assert!(p.enable_appear_offline().value);
        let im = p.disable_im();
        assert!(im.value);
        assert_eq!(im.provenance.source, "HKCU");
        assert_eq!(im.provenance.from.as_deref(), Some("seed.reg:4"));
        assert_eq!(p.gal_download_initial_delay().value, Duration::ZERO);
        let c = p.custom_state_url();
        assert_eq!(c.value.as_deref(), Some("https://intranet/presence.xml"));
        assert_eq!(c.source, Source::Hklm);
        match p.denied("disableim") {
            Error::PolicyDenied { policy, provenance } => {
                assert_eq!(policy, "DisableIM");
                assert_eq!(provenance.from.as_deref(), Some("seed.reg:4"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typed_values_and_unknowns() {
        let f = reg(&format!(
            "[{HKCU}]\n\"Transport\"=\"tls\"\n\"ServerAddressInternal\"=\"ocs.contoso.com\"\n\
             \"DisableHTMLIM\"=\"yes\"\n\"SomethingElse\"=hex:01,02\n\"PreventRun\"=dword:1\n\
             [{HKLM}]\n\"Transport\"=\"UDP\"\n"
        ));
        let mut ib = InBand::new();
        ib.set_from("DisableHTMLIM", RegValue::Sz("true".into()), "ucPolicy");
        let p = evaluate(&[("f.reg", f)], &ib);
        let t = p.transport();
        assert_eq!(t.value, Some(Transport::Tls));
        assert_eq!(t.source, Source::Hkcu);
        assert_eq!(
            p.server_address_internal().value.as_deref(),
            Some("ocs.contoso.com")
        );
        // "yes" is not a DWORD: passed over for the in-band value.
        let h = p.disable_html_im();
        assert!(h.value);
        assert_eq!(h.source, Source::InBand);
        assert_eq!(h.provenance.from.as_deref(), Some("ucPolicy"));
        assert_eq!(p.rejected("DisableHTMLIM").len(), 1);
        let all = p.settings();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            &names[KNOWN_POLICIES.len()..],
            ["PreventRun", "SomethingElse"]
        );
        assert_eq!(
            p.raw("somethingelse").and_then(|s| s.value.clone()),
            Some(RegValue::Binary(vec![1, 2]))
        );
    }

    fn source_strategy() -> impl Strategy<Value = (usize, u32)> {
        (0usize..4, 0u32..3)
    }

    proptest! {
        /// The winner is the highest-precedence source that set the value,
        /// and within it the last write.
        #[test]
        fn evaluator_matches_a_model(writes in proptest::collection::vec(source_strategy(), 0..12)) {
            let keys = [HKLM, HKCU, "", OPTS];
            let mut files = Vec::new();
            let mut ib = InBand::new();
            let mut model: [Option<u32>; 4] = [None; 4];
            for (i, (src, v)) in writes.iter().enumerate() {
                if *src == 2 {
                    ib.set("GalDownloadInitialDelay", RegValue::Dword(*v));
                } else if *v == 2 {
                    files.push((format!("f{i}.reg"), one(keys[*src], "\"GalDownloadInitialDelay\"=-")));
                } else {
                    files.push((format!("f{i}.reg"), one(keys[*src], &format!("\"GalDownloadInitialDelay\"=dword:{v}"))));
                }
                model[*src] = if *v == 2 && *src != 2 { None } else { Some(*v) };
            }
            let e = evaluate(&files, &ib).dword("GalDownloadInitialDelay");
            let expect = model.iter().enumerate().find_map(|(i, v)| v.map(|v| (v, Source::PRECEDENCE[i])));
            prop_assert_eq!((e.value, e.source), expect.unwrap_or((60, Source::Default)));
        }
    }
}
