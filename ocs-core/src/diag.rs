//! Diagnostics (issue 6 §4): the configuration snapshot behind `ocs diag`
//! and the severities of the client's structured events. Pure: the driver
//! fills a [`Snapshot`] from its state
//! (`Client::diagnostics` with the `tokio` feature); rendering it needs
//! nothing else.
//!
//! # Event ids (stable, for an application's event log)
//!
//! Every `ClientEvent` has a numeric id (`ClientEvent::id`) and a
//! [`Severity`] (`ClientEvent::severity`). Ids are never reused or
//! renumbered; new events get new ids in their block.
//!
//! | id | event | severity |
//! |---|---|---|
//! | 1000 | Connected | info |
//! | 1001 | ConnectFailed | warning |
//! | 1002 | Disconnected | warning |
//! | 1003 | Reconnected | info |
//! | 1100 | Registration: Registered (first) | info |
//! | 1101 | Registration: Registered (refresh) | verbose |
//! | 1102 | Registration: CredentialsNeeded | warning |
//! | 1103 | Registration: Redirected | info |
//! | 1104 | Registration: RetryScheduled | warning |
//! | 1105 | Registration: Failed | error |
//! | 1106 | Registration: SignedOut by us | info |
//! | 1107 | Registration: SignedOut by the server | warning |
//! | 1108 | Registration: CertificateNeeded (TLS-DSK provisioning or renewal) | info |
//! | 1200 | SecurityViolation | error |
//! | 1300 | Im: Delivered | verbose |
//! | 1301 | Im: Failed | warning |
//! | 1302 | Im: Received | info |
//! | 1303 | Im: Typing | verbose |
//! | 1304 | Im: RefusedByPolicy | info |
//! | 1305 | Im: ContactCannotReceiveIm | info |
//! | 1306 | Im: SessionEnded | verbose |
//! | 1400 | Presence: Changed | verbose |
//! | 1401 | Presence: Published | info |
//! | 1402 | Presence: PublishFailed | error |
//! | 1403 | Presence: WatchEnded | warning |
//! | 1404 | Presence: ContactList | info |
//! | 1405 | Presence: ContactListChanged | info |
//! | 1406 | Presence: ContactListChangeFailed | warning |
//! | 1407 | Presence: Watching | info |
//! | 1408 | Presence: WatchFailed | warning |
//! | 1500 | Provisioning: Received | info |
//! | 1501 | Provisioning: Failed | warning |
//! | 1600 | CustomStates | info |
//! | 1601 | CustomStatesFailed | warning |
//! | 1700 | TraceFailed | warning |
//! | 1800 | AddressBook: Ready | info |
//! | 1801 | AddressBook: Failed | warning |
//! | 1802 | AddressBook: FailingForADay | error |
//! | 1900 | Stopped | info |

use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::customstates::{ClientVersion, check_url};
use crate::policy::reg::{RegValue, hex_string};
use crate::policy::{EffectivePolicy, Setting};
use crate::provisioning::ProvisionGroupList;

/// How serious an event is, for an event log (Windows event-log levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Chatty detail (typing, refreshes, contacts' presence).
    Verbose,
    /// Normal operation (signed in, message received).
    Info,
    /// Something went wrong but the client carries on.
    Warning,
    /// Something failed for good.
    Error,
}

impl Severity {
    /// `verbose`, `info`, `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Verbose => "verbose",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The host name the certificate was checked against.
    pub host: String,
    /// The server's address.
    pub addr: String,
    /// `TLS`, `TCP` or `UDP`.
    pub transport: String,
    /// How the server was found, e.g. `SRV _sipinternaltls._tcp.contoso.com`
    /// or `manual`.
    pub found_by: String,
    /// Our local address.
    pub local: String,
}

/// The registration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationInfo {
    /// `idle`, `registering`, `registered`, `waiting-for-credentials`,
    /// `waiting-to-retry`, `unregistering` or `done`.
    pub state: String,
    /// The GRUU (OCS).
    pub gruu: Option<String>,
    /// The lifetime the server granted, in seconds.
    pub expires: Option<u32>,
    /// The ms-keep-alive interval.
    pub keep_alive: Option<Duration>,
    /// Signed in through an Edge server (`ms-user-logon-data: RemoteUser`).
    pub remote_user: bool,
    /// The authentication scheme (`NTLM`, `Kerberos`, `Digest`), once
    /// signed in.
    pub auth_scheme: Option<String>,
    /// The MS-SIPAE protocol version (0 without NTLM/Kerberos).
    pub auth_version: Option<u32>,
    /// Which scheme answered the server's challenge, what it offered, and
    /// why (Lync's order: TLS-DSK or Kerberos with a host credential, then
    /// NTLM, then Digest).
    pub auth_choice: Option<String>,
}

/// The address book (GAL) download.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressBookInfo {
    /// The download URL.
    pub url: Option<String>,
    /// Where the URL came from, e.g.
    /// `in-band ServerConfiguration absInternalServerUrl`.
    pub url_from: Option<String>,
    /// The last successful download (UTC, `2026-11-25T21:30:00Z`).
    pub last_download: Option<String>,
    /// The next scheduled download (UTC).
    pub next_download: Option<String>,
    /// `not configured …`, `waiting for sign-in`, `downloading`,
    /// `N entries, current to day XXXX` or `failing: …`.
    pub status: String,
}

impl AddressBookInfo {
    /// The URL from provisioning: external for remote users, else internal
    /// ([`ProvisionGroupList::abs_url`]).
    pub fn from_provisioning(p: Option<&ProvisionGroupList>, remote_user: bool) -> Self {
        let url = p.and_then(|p| p.abs_url(remote_user)).map(str::to_owned);
        let key = if remote_user {
            "absExternalServerUrl"
        } else {
            "absInternalServerUrl"
        };
        AddressBookInfo {
            url_from: url
                .as_ref()
                .map(|_| format!("in-band ServerConfiguration {key}")),
            url,
            last_download: None,
            next_download: None,
            status: "not configured".into(),
        }
    }
}

/// The custom presence states file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomStatesInfo {
    /// The effective CustomStateURL.
    pub url: Option<String>,
    /// Its provenance, e.g. `HKCU F.reg:7`.
    pub from: Option<String>,
    /// `not configured`, `allowed`, `refused: …`, or what the loader
    /// reported.
    pub status: String,
}

impl CustomStatesInfo {
    /// From the effective policy: the URL, and whether the OC 2007 R2 URL
    /// rules (with EnableSIPHighSecurityMode) allow it.
    pub fn from_policy(policy: &EffectivePolicy) -> Self {
        let e = policy.custom_state_url();
        let Some(url) = e.value.filter(|u| !u.trim().is_empty()) else {
            return CustomStatesInfo {
                url: None,
                from: None,
                status: "not configured".into(),
            };
        };
        // Value 2 is the high-security mode that forbids http (PROTOCOL.md d).
        let high = policy.enable_sip_high_security_mode().value == 2;
        let status = match check_url(&url, ClientVersion::Oc2007R2, high) {
            Ok(()) => "allowed".to_owned(),
            Err(v) => format!("refused: {v}"),
        };
        CustomStatesInfo {
            url: Some(url),
            from: Some(provenance_text(&e.provenance.source, &e.provenance.from)),
            status,
        }
    }
}

/// Everything `ocs diag` shows. Build it with the driver's
/// `Client::diagnostics`, or fill it yourself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Our SIP URI.
    pub sip_uri: String,
    /// `ocs` or `standard`.
    pub dialect: String,
    /// The current connection, if any.
    pub server: Option<ServerInfo>,
    /// The registration.
    pub registration: RegistrationInfo,
    /// In-band provisioning: `received`, `pending`, `not requested`,
    /// `failed: …`.
    pub provisioning: String,
    /// The address book.
    pub address_book: AddressBookInfo,
    /// The custom states.
    pub custom_states: CustomStatesInfo,
    /// The effective policies with provenance
    /// ([`EffectivePolicy::settings`]).
    pub policies: Vec<Setting>,
    /// Messages dropped since the session started because their MS-SIPAE
    /// signature was missing or wrong (each was also reported as a
    /// `SecurityViolation` event and never acted on).
    pub refused_unsigned: u64,
    /// Why the latest of them was dropped.
    pub last_refused: Option<String>,
}

fn provenance_text(source: &str, from: &Option<String>) -> String {
    match from {
        Some(f) => format!("{source} {f}"),
        None => source.to_owned(),
    }
}

/// Appends `s` as a JSON string (quotes included) with RFC 8259 escaping.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_string(out, s),
        None => out.push_str("null"),
    }
}

fn json_opt_num(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

/// A registry value as JSON, as `ocs policy eval` prints it: dword/qword →
/// number, sz/expand_sz → string, multi_sz → array, other → hex string.
pub fn value_json(out: &mut String, v: &RegValue) {
    match v {
        RegValue::Dword(n) => {
            let _ = write!(out, "{n}");
        }
        RegValue::Qword(n) => {
            let _ = write!(out, "{n}");
        }
        RegValue::Sz(s) | RegValue::ExpandSz(s) => json_string(out, s),
        RegValue::MultiSz(v) => {
            out.push('[');
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, s);
            }
            out.push(']');
        }
        RegValue::Binary(b) | RegValue::Raw { bytes: b, .. } => json_string(out, &hex_string(b)),
    }
}

/// Key-value writer for one JSON object.
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        json_string(self.out, k);
        self.out.push(':');
        self.out
    }
    fn str(&mut self, k: &str, v: &str) {
        json_string(self.key(k), v);
    }
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        json_opt_str(self.key(k), v);
    }
    fn opt_num(&mut self, k: &str, v: Option<u64>) {
        json_opt_num(self.key(k), v);
    }
    fn end(self) {
        self.out.push('}');
    }
}

/// `t` as an ISO 8601 UTC timestamp to the second
/// (`2026-11-25T21:30:00Z`).
pub fn utc_timestamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

impl Snapshot {
    /// The snapshot as one JSON object:
    ///
    /// ```text
    /// {"sip_uri","dialect",
    ///  "server":{"host","addr","transport","found_by","local"}|null,
    ///  "auth":{"scheme","version"},
    ///  "registration":{"state","gruu","expires","keep_alive","remote_user"},
    ///  "provisioning",
    ///  "address_book":{"url","from","last_download","next_download","download"},
    ///  "custom_states":{"url","from","status"},
    ///  "policies":{"NAME":{"value","source","from"},...},
    ///  "security":{"refused_unsigned","last_refused"}}
    /// ```
    ///
    /// `keep_alive` is in seconds; `download` is the download's status.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut o = Obj::new(&mut out);
        o.str("sip_uri", &self.sip_uri);
        o.str("dialect", &self.dialect);
        {
            let w = o.key("server");
            match &self.server {
                Some(s) => {
                    let mut so = Obj::new(w);
                    so.str("host", &s.host);
                    so.str("addr", &s.addr);
                    so.str("transport", &s.transport);
                    so.str("found_by", &s.found_by);
                    so.str("local", &s.local);
                    so.end();
                }
                None => w.push_str("null"),
            }
        }
        let r = &self.registration;
        {
            let mut a = Obj::new(o.key("auth"));
            a.opt_str("scheme", r.auth_scheme.as_deref());
            a.opt_num("version", r.auth_version.map(u64::from));
            a.opt_str("why", r.auth_choice.as_deref());
            a.end();
        }
        {
            let mut ro = Obj::new(o.key("registration"));
            ro.str("state", &r.state);
            ro.opt_str("gruu", r.gruu.as_deref());
            ro.opt_num("expires", r.expires.map(u64::from));
            ro.opt_num("keep_alive", r.keep_alive.map(|d| d.as_secs()));
            ro.key("remote_user")
                .push_str(if r.remote_user { "true" } else { "false" });
            ro.end();
        }
        o.str("provisioning", &self.provisioning);
        {
            let ab = &self.address_book;
            let mut ao = Obj::new(o.key("address_book"));
            ao.opt_str("url", ab.url.as_deref());
            ao.opt_str("from", ab.url_from.as_deref());
            ao.opt_str("last_download", ab.last_download.as_deref());
            ao.opt_str("next_download", ab.next_download.as_deref());
            ao.str("download", &ab.status);
            ao.end();
        }
        {
            let cs = &self.custom_states;
            let mut co = Obj::new(o.key("custom_states"));
            co.opt_str("url", cs.url.as_deref());
            co.opt_str("from", cs.from.as_deref());
            co.str("status", &cs.status);
            co.end();
        }
        {
            let mut po = Obj::new(o.key("policies"));
            for s in &self.policies {
                let mut so = Obj::new(po.key(&s.name));
                {
                    let w = so.key("value");
                    match &s.value {
                        Some(v) => value_json(w, v),
                        None => w.push_str("null"),
                    }
                }
                so.str("source", s.source.as_str());
                so.opt_str("from", s.from.as_deref());
                so.end();
            }
            po.end();
        }
        {
            let mut so = Obj::new(o.key("security"));
            so.opt_num("refused_unsigned", Some(self.refused_unsigned));
            so.opt_str("last_refused", self.last_refused.as_deref());
            so.end();
        }
        o.end();
        out
    }

    /// The snapshot as a human-readable two-column table.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        let or_dash = |v: Option<&str>| v.map_or_else(|| "-".to_owned(), str::to_owned);
        row("SIP URI", self.sip_uri.clone());
        row("Dialect", self.dialect.clone());
        match &self.server {
            Some(s) => {
                row("Server", format!("{} ({})", s.host, s.addr));
                row("Transport", s.transport.clone());
                row("Found by", s.found_by.clone());
                row("Local address", s.local.clone());
            }
            None => row("Server", "not connected".into()),
        }
        let r = &self.registration;
        row(
            "Auth",
            match (&r.auth_scheme, r.auth_version) {
                (Some(s), Some(v)) if !s.is_empty() => format!("{s} (version {v})"),
                (Some(s), None) if !s.is_empty() => s.clone(),
                _ => "-".into(),
            },
        );
        if let Some(why) = &r.auth_choice {
            row("Auth chosen", why.clone());
        }
        row("Registration", r.state.clone());
        row("GRUU", or_dash(r.gruu.as_deref()));
        row(
            "Expires",
            r.expires.map_or_else(|| "-".into(), |e| format!("{e} s")),
        );
        row(
            "Keep-alive",
            r.keep_alive
                .map_or_else(|| "-".into(), |d| format!("{} s", d.as_secs())),
        );
        row(
            "Remote user",
            if r.remote_user { "yes" } else { "no" }.into(),
        );
        row("Provisioning", self.provisioning.clone());
        row(
            "Refused (unsigned)",
            match &self.last_refused {
                Some(why) => format!("{} (latest: {why})", self.refused_unsigned),
                None => self.refused_unsigned.to_string(),
            },
        );
        let ab = &self.address_book;
        row(
            "Address book URL",
            match (&ab.url, &ab.url_from) {
                (Some(u), Some(f)) => format!("{u} ({f})"),
                (Some(u), None) => u.clone(),
                _ => "-".into(),
            },
        );
        row("Address book", ab.status.clone());
        row(
            "Last download",
            ab.last_download.clone().unwrap_or_else(|| "-".into()),
        );
        row(
            "Next download",
            ab.next_download.clone().unwrap_or_else(|| "-".into()),
        );
        let cs = &self.custom_states;
        row(
            "Custom states URL",
            match (&cs.url, &cs.from) {
                (Some(u), Some(f)) => format!("{u} ({f})"),
                (Some(u), None) => u.clone(),
                _ => "-".into(),
            },
        );
        row("Custom states", cs.status.clone());
        for s in &self.policies {
            let v = s
                .value
                .as_ref()
                .map_or_else(|| "(not set)".to_owned(), ToString::to_string);
            row(
                &format!("Policy {}", s.name),
                format!("{v} [{}]", provenance_text(s.source.as_str(), &s.from)),
            );
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            // Control characters from the server or a file must not mess
            // up the terminal.
            let v: String = v
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{InBand, Source, evaluate};

    fn sample() -> Snapshot {
        let prov = crate::provisioning::parse(
            br#"<provisionGroupList><provisionGroup name="ServerConfiguration"><absInternalServerUrl>https://pool/abs/int</absInternalServerUrl><absExternalServerUrl>https://edge/abs/ext</absExternalServerUrl></provisionGroup><provisionGroup name="ucPolicy"><instance><property name="DisableIM">true</property></instance></provisionGroup></provisionGroupList>"#,
        )
        .expect("parses");
        let reg = crate::policy::reg::parse_str(
            "Windows Registry Editor Version 5.00\n[HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\n\"CustomStateURL\"=\"file:///C:/a \\\"q\\\".xml\"\n",
        )
        .expect("reg");
        let policy = evaluate(&[("F.reg", reg)], &prov.to_in_band());
        Snapshot {
            sip_uri: "sip:alice@contoso.com".into(),
            dialect: "ocs".into(),
            server: Some(ServerInfo {
                host: "pool.contoso.com".into(),
                addr: "127.0.0.1:5061".into(),
                transport: "TLS".into(),
                found_by: "manual".into(),
                local: "127.0.0.1:50000".into(),
            }),
            registration: RegistrationInfo {
                state: "registered".into(),
                gruu: Some("sip:alice@contoso.com;opaque=user:epid:x;gruu".into()),
                expires: Some(3600),
                keep_alive: Some(Duration::from_secs(300)),
                remote_user: true,
                auth_scheme: Some("NTLM".into()),
                auth_version: Some(3),
                auth_choice: Some(
                    "NTLM (offered: NTLM, Kerberos): the first offered scheme with a password"
                        .into(),
                ),
            },
            provisioning: "received".into(),
            address_book: AddressBookInfo::from_provisioning(Some(&prov), true),
            custom_states: CustomStatesInfo::from_policy(&policy),
            policies: policy.settings(),
            refused_unsigned: 2,
            last_refused: Some("unsigned NOTIFY dropped".into()),
        }
    }

    #[test]
    fn utc_timestamps() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2008-05-24 00:00 UTC (vector T19) and a leap day.
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(1_211_587_200)),
            "2008-05-24T00:00:00Z"
        );
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(1_709_208_000 + 3661)),
            "2024-02-29T13:01:01Z"
        );
    }

    #[test]
    fn json_is_valid_and_complete() {
        let s = sample();
        let j: serde_json::Value = serde_json::from_str(&s.to_json()).expect("valid JSON");
        assert_eq!(j["sip_uri"], "sip:alice@contoso.com");
        assert_eq!(j["server"]["found_by"], "manual");
        assert_eq!(j["auth"]["scheme"], "NTLM");
        assert_eq!(j["auth"]["version"], 3);
        assert!(
            j["auth"]["why"]
                .as_str()
                .is_some_and(|w| w.starts_with("NTLM (offered: NTLM, Kerberos)"))
        );
        assert_eq!(j["registration"]["keep_alive"], 300);
        assert_eq!(j["security"]["refused_unsigned"], 2);
        assert_eq!(j["security"]["last_refused"], "unsigned NOTIFY dropped");
        assert_eq!(j["registration"]["remote_user"], true);
        assert_eq!(j["address_book"]["url"], "https://edge/abs/ext");
        assert_eq!(
            j["address_book"]["from"],
            "in-band ServerConfiguration absExternalServerUrl"
        );
        assert_eq!(j["address_book"]["download"], "not configured");
        assert!(j["address_book"]["last_download"].is_null());
        assert_eq!(j["custom_states"]["url"], "file:///C:/a \"q\".xml");
        assert_eq!(j["custom_states"]["from"], "HKCU F.reg:3");
        assert!(
            j["custom_states"]["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("refused")),
            "{}",
            j["custom_states"]
        );
        assert_eq!(j["policies"]["DisableIM"]["value"], "true");
        assert_eq!(j["policies"]["DisableIM"]["source"], "in-band");
        assert_eq!(j["policies"]["EnableAppearOffline"]["source"], "default");
        assert!(j["policies"]["EnableAppearOffline"]["from"].is_null());
    }

    #[test]
    fn json_escapes_everything() {
        let mut s = Snapshot {
            sip_uri: "sip:\"a\\b\"\n\t\u{1}\u{2028}é@x".into(),
            ..Snapshot::default()
        };
        s.policies.push(Setting {
            name: "Odd\"Name".into(),
            value: Some(RegValue::MultiSz(vec!["a".into(), "b\u{7f}".into()])),
            source: Source::InBand,
            from: None,
        });
        s.policies.push(Setting {
            name: "Bin".into(),
            value: Some(RegValue::Binary(vec![0xde, 0xad])),
            source: Source::Hklm,
            from: Some("x.reg:2".into()),
        });
        let text = s.to_json();
        assert!(!text.contains('\n'));
        let j: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(j["sip_uri"], "sip:\"a\\b\"\n\t\u{1}\u{2028}é@x");
        assert_eq!(j["policies"]["Odd\"Name"]["value"][1], "b\u{7f}");
        assert_eq!(j["policies"]["Bin"]["value"], "dead");
        assert!(j["server"].is_null());
    }

    #[test]
    fn table_lists_every_section() {
        let t = sample().to_table();
        for want in [
            "SIP URI",
            "sip:alice@contoso.com",
            "pool.contoso.com (127.0.0.1:5061)",
            "NTLM (version 3)",
            "Keep-alive",
            "300 s",
            "https://edge/abs/ext (in-band ServerConfiguration absExternalServerUrl)",
            "Last download",
            "Address book",
            "not configured",
            "Custom states",
            "Policy DisableIM",
            "\"true\" [in-band provisionGroup ucPolicy]",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // Aligned: every value starts in the same column.
        let cols: Vec<usize> = t
            .lines()
            .filter_map(|l| {
                l.find("  ")
                    .map(|i| i + l[i..].len() - l[i..].trim_start().len())
            })
            .collect();
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{t}");
    }

    #[test]
    fn custom_states_status() {
        let p = evaluate::<&str>(&[], &InBand::new());
        assert_eq!(CustomStatesInfo::from_policy(&p).status, "not configured");
        let mut ib = InBand::new();
        ib.set("CustomStateURL", RegValue::Sz("https://x/cs.xml".into()));
        let p = evaluate::<&str>(&[], &ib);
        let c = CustomStatesInfo::from_policy(&p);
        assert_eq!(c.status, "allowed");
        assert_eq!(c.from.as_deref(), Some("in-band"));
        let ab = AddressBookInfo::from_provisioning(None, false);
        assert_eq!((ab.url, ab.url_from), (None, None));
    }
}
