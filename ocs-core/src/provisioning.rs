//! In-band provisioning (`vnd-microsoft-provisioning-v2`, MS-SIPREGE
//! §2.2.2.4/2.2.2.5, PROTOCOL.md §f.3): the `provisionGroupList` document
//! the server piggy-backs in the 200 OK to our one-shot SUBSCRIBE.
//!
//! Pure: [`parse`] turns bytes into a [`ProvisionGroupList`]; the
//! [`ProvisioningAgent`](crate::provisioning_agent::ProvisioningAgent)
//! sends the SUBSCRIBE.
//!
//! Two shapes of group content are read, whatever the group:
//! - element per key, as OCS 2007 / R2 sends `ServerConfiguration`
//!   (`<absInternalServerUrl>https://…</absInternalServerUrl>`): the
//!   element's local name is the key, its trimmed text the value;
//! - `<property name="…">value</property>`, as in `ucPolicy` and
//!   `meetingPolicy` (inside `<instance>`) and in Lync-era groups (inside
//!   `<propertyEntryList>`).
//!
//! Elements that contain other elements are walked into (so wrappers such
//! as `instance` and `propertyEntryList` need no special case); a key that
//! occurs twice keeps its last value. Groups other than the three the
//! client consumes are kept raw (their source text) in
//! [`ProvisionGroupList::other`], with the values read the same way.
//!
//! Hostile input goes through the crate's hardened XML reader: no DTDs,
//! no entities beyond the predefined five, at most
//! [`MAX_DOCUMENT_BYTES`](crate::presence::MAX_DOCUMENT_BYTES) bytes,
//! [`MAX_DEPTH`](crate::presence::MAX_DEPTH) levels and
//! [`MAX_ELEMENTS`](crate::presence::MAX_ELEMENTS) elements. Errors carry
//! line and column.
//!
//! # Feeding the policy engine
//!
//! [`ProvisionGroupList::to_in_band`] is the in-band source of
//! [`crate::policy::evaluate`]. The mapping, chosen because the server's
//! `ucPolicy` properties are named like the client policies they govern:
//!
//! | provisioning | in-band value |
//! |---|---|
//! | `ucPolicy` `<property name="N">V</property>` | `N` = `V` as a string (`true`/`false` read as 1/0 by boolean policies), so a `DisableIM` or `EnableAppearOffline` property takes effect |
//! | `ServerConfiguration`, `meetingPolicy`, other groups | not fed (they configure services, not client policies; read them here) |
//!
//! In OC 2007 R2, group policy beats in-band provisioning: a value set under
//! `HKLM\…\Policies` or `HKCU\…\Policies` wins over the same name sent by the
//! server, which in turn beats the user's own options and the defaults
//! ([`crate::policy::Source`]).

use std::collections::BTreeMap;

use crate::policy::InBand;
use crate::policy::reg::RegValue;
use crate::presence::xml::{Doc, NodeId, decode};
use crate::presence::{DocumentError, DocumentErrorKind};

/// Namespace of the response document (`provisionGroupList`).
pub const PROVISION_NS: &str =
    "http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification";

/// The Content-Type of the request and of the piggy-backed answer.
pub const PROVISIONING_V2_CONTENT_TYPE: &str =
    "application/vnd-microsoft-roaming-provisioning-v2+xml";

/// The event package.
pub const PROVISIONING_V2_EVENT: &str = "vnd-microsoft-provisioning-v2";

/// A provisioning document was refused; positions are 1-based line and
/// column. What to do: keep the previous provisioning (or none) and report.
pub type ProvisioningError = DocumentError;

/// A group other than `ServerConfiguration`, `ucPolicy` and `meetingPolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGroup {
    /// The group's `name` attribute.
    pub name: String,
    /// Keys and values read as described in the module docs.
    pub values: BTreeMap<String, String>,
    /// The `<provisionGroup>` element's source text.
    pub raw: String,
}

/// A parsed `provisionGroupList`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionGroupList {
    /// `ServerConfiguration`: key (element name as written) → value.
    pub server_configuration: BTreeMap<String, String>,
    /// `ucPolicy`: property name → value.
    pub uc_policy: BTreeMap<String, String>,
    /// `meetingPolicy`: property name → value.
    pub meeting_policy: BTreeMap<String, String>,
    /// Every other group, in document order.
    pub other: Vec<RawGroup>,
}

/// Looks a key up exactly, then ignoring ASCII case.
fn lookup<'m>(m: &'m BTreeMap<String, String>, key: &str) -> Option<&'m str> {
    m.get(key)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

impl ProvisionGroupList {
    /// A `ServerConfiguration` value (key case-insensitive), e.g.
    /// `focusFactoryUri`.
    pub fn server_config(&self, key: &str) -> Option<&str> {
        lookup(&self.server_configuration, key)
    }

    /// A `ucPolicy` property (name case-insensitive).
    pub fn uc_policy(&self, name: &str) -> Option<&str> {
        lookup(&self.uc_policy, name)
    }

    /// A `meetingPolicy` property (name case-insensitive).
    pub fn meeting_policy(&self, name: &str) -> Option<&str> {
        lookup(&self.meeting_policy, name)
    }

    /// The address-book (GAL) download URL: `absExternalServerUrl` when the
    /// REGISTER 200 OK carried `ms-user-logon-data: RemoteUser`
    /// ([`crate::register::Registration::is_remote_user`]), else
    /// `absInternalServerUrl`. There is no fallback to the other one: an
    /// internal URL is not reachable from outside and vice versa. Empty
    /// values count as absent.
    pub fn abs_url(&self, remote_user: bool) -> Option<&str> {
        let key = if remote_user {
            "absExternalServerUrl"
        } else {
            "absInternalServerUrl"
        };
        self.server_config(key).filter(|v| !v.is_empty())
    }

    /// A group of any name (`ServerConfiguration`, `ucPolicy` and
    /// `meetingPolicy` included), its values by key.
    pub fn group(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        match name {
            "ServerConfiguration" => Some(&self.server_configuration),
            "ucPolicy" => Some(&self.uc_policy),
            "meetingPolicy" => Some(&self.meeting_policy),
            _ => self
                .other
                .iter()
                .find(|g| g.name == name)
                .map(|g| &g.values),
        }
    }

    /// The in-band policy source (see the module docs for the mapping),
    /// with provenance `provisionGroup ucPolicy`.
    pub fn to_in_band(&self) -> InBand {
        self.to_in_band_from("provisionGroup ucPolicy")
    }

    /// As [`ProvisionGroupList::to_in_band`], with `from` as every value's
    /// locator (e.g. the file the document was read from).
    pub fn to_in_band_from(&self, from: &str) -> InBand {
        let mut b = InBand::new();
        for (name, value) in &self.uc_policy {
            b.set_from(name.clone(), RegValue::Sz(value.clone()), from);
        }
        b
    }
}

/// Parses a `provisionGroupList` document (UTF-8, or UTF-16 with a BOM).
///
/// The root must be `provisionGroupList`, in [`PROVISION_NS`] or in no
/// namespace; every `provisionGroup` needs a `name`. Other children of the
/// root are ignored.
pub fn parse(bytes: &[u8]) -> Result<ProvisionGroupList, ProvisioningError> {
    let text = decode(bytes)?;
    let doc = Doc::parse(&text)?;
    let root = doc.root();
    let r = doc.node(root);
    if r.local() != "provisionGroupList" {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::UnexpectedRoot {
                expected: "provisionGroupList",
                found: r.qname().to_owned(),
            },
        ));
    }
    if let Some(ns) = doc.namespace(root)
        && ns != PROVISION_NS
    {
        return Err(doc.error_at(
            root,
            DocumentErrorKind::WrongNamespace {
                expected: PROVISION_NS,
                found: ns.into_owned(),
            },
        ));
    }
    let mut out = ProvisionGroupList::default();
    for g in doc.children(root) {
        if doc.node(g).local() != "provisionGroup" {
            continue;
        }
        let Some(name) = doc.node(g).attr("name") else {
            return Err(doc.error_at(g, DocumentErrorKind::Missing("provisionGroup name")));
        };
        let mut values = BTreeMap::new();
        collect(&doc, g, &mut values);
        match &*name {
            "ServerConfiguration" => out.server_configuration.extend(values),
            "ucPolicy" => out.uc_policy.extend(values),
            "meetingPolicy" => out.meeting_policy.extend(values),
            _ => out.other.push(RawGroup {
                name: name.into_owned(),
                values,
                raw: doc.raw(g).to_owned(),
            }),
        }
    }
    Ok(out)
}

/// Reads the keys below `id` (see the module docs). Recursion is bounded
/// by the reader's depth limit.
fn collect(doc: &Doc<'_>, id: NodeId, out: &mut BTreeMap<String, String>) {
    for c in doc.children(id) {
        let n = doc.node(c);
        if n.local() == "property"
            && let Some(name) = n.attr("name")
        {
            out.insert(name.into_owned(), n.trimmed().to_owned());
        } else if doc.children(c).next().is_some() {
            collect(doc, c, out);
        } else {
            out.insert(n.local().to_owned(), n.trimmed().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Source, evaluate};

    /// T18-style: OCS 2007 R2 element-per-key ServerConfiguration, ucPolicy
    /// and meetingPolicy instances, and a Lync-era propertyEntryList group.
    const T18: &str = r#"<provisionGroupList xmlns="http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification">
  <provisionGroup name="ServerConfiguration">
    <absInternalServerUrl>https://pool.contoso.com:443/abs/int/handler</absInternalServerUrl>
    <absExternalServerUrl>https://edge.contoso.com:443/abs/ext/handler</absExternalServerUrl>
    <dlxInternalUrl>https://pool.contoso.com/GroupExpansion/Int/service.asmx</dlxInternalUrl>
    <focusFactoryUri>sip:alice@contoso.com;gruu;opaque=app:conf:focusfactory</focusFactoryUri>
    <ucEnableSipSecurityMode>High</ucEnableSipSecurityMode>
    <ucPC2PCAVEncryption>SupportEncryption</ucPC2PCAVEncryption>
    <voicemailUri/>
  </provisionGroup>
  <provisionGroup name="meetingPolicy">
    <instance>
      <property name="AllowIPAudio">true</property>
      <property name="MaxMeetingSize">250</property>
    </instance>
  </provisionGroup>
  <provisionGroup name="ucPolicy">
    <instance>
      <property name="EnableCallTransfer">true</property>
      <property name="DisableIM">true</property>
      <property name="EnableAppearOffline"> false </property>
    </instance>
  </provisionGroup>
  <provisionGroup name="endpointConfiguration">
    <propertyEntryList>
      <property name="ShowRecentContacts">true</property>
    </propertyEntryList>
  </provisionGroup>
</provisionGroupList>"#;

    #[test]
    fn parses_t18_style_document() {
        let p = parse(T18.as_bytes()).expect("parses");
        assert_eq!(
            p.server_config("absinternalserverurl"),
            Some("https://pool.contoso.com:443/abs/int/handler")
        );
        assert_eq!(p.server_config("ucEnableSipSecurityMode"), Some("High"));
        assert_eq!(p.server_config("voicemailUri"), Some(""));
        assert_eq!(p.server_configuration.len(), 7);
        assert_eq!(p.meeting_policy("MaxMeetingSize"), Some("250"));
        assert_eq!(p.uc_policy("EnableAppearOffline"), Some("false"));
        assert_eq!(p.uc_policy.len(), 3);
        assert_eq!(p.other.len(), 1);
        assert_eq!(p.other[0].name, "endpointConfiguration");
        assert_eq!(
            p.group("endpointConfiguration")
                .and_then(|g| g.get("ShowRecentContacts"))
                .map(String::as_str),
            Some("true")
        );
        assert!(
            p.other[0]
                .raw
                .starts_with("<provisionGroup name=\"endpointConfiguration\">")
        );
        assert!(p.other[0].raw.ends_with("</provisionGroup>"));
    }

    #[test]
    fn abs_url_follows_remote_user() {
        let p = parse(T18.as_bytes()).expect("parses");
        assert_eq!(
            p.abs_url(false),
            Some("https://pool.contoso.com:443/abs/int/handler")
        );
        assert_eq!(
            p.abs_url(true),
            Some("https://edge.contoso.com:443/abs/ext/handler")
        );
        let only_internal = parse(
            br#"<provisionGroupList><provisionGroup name="ServerConfiguration"><absInternalServerUrl>https://a/int</absInternalServerUrl><absExternalServerUrl></absExternalServerUrl></provisionGroup></provisionGroupList>"#,
        )
        .expect("parses");
        assert_eq!(only_internal.abs_url(true), None);
        assert_eq!(only_internal.abs_url(false), Some("https://a/int"));
    }

    #[test]
    fn feeds_the_policy_engine_below_group_policy() {
        let p = parse(T18.as_bytes()).expect("parses");
        let none: [(&str, crate::policy::reg::RegFile); 0] = [];
        let eff = evaluate(&none, &p.to_in_band_from("F.xml"));
        let im = eff.disable_im();
        assert!(im.value);
        assert_eq!(im.source, Source::InBand);
        assert_eq!(im.provenance.from.as_deref(), Some("F.xml"));
        let ao = eff.enable_appear_offline();
        assert!(!ao.value);
        assert_eq!(ao.source, Source::InBand);
        // ServerConfiguration keys are not policies.
        assert!(eff.raw("absInternalServerUrl").is_none());
        assert_eq!(
            eff.raw("EnableCallTransfer").map(|s| s.source),
            Some(Source::InBand)
        );

        // HKCU policy beats the server.
        let reg = crate::policy::reg::parse_str(
            "Windows Registry Editor Version 5.00\n[HKEY_CURRENT_USER\\Software\\Policies\\Microsoft\\Communicator]\n\"DisableIM\"=dword:00000000\n",
        )
        .expect("reg parses");
        let eff = evaluate(&[("gp.reg", reg)], &p.to_in_band());
        let im = eff.disable_im();
        assert!(!im.value);
        assert_eq!(im.source, Source::Hkcu);
        let in_band = eff.candidates("DisableIM").nth(1).expect("in-band kept");
        assert_eq!(in_band.from.as_deref(), Some("provisionGroup ucPolicy"));
    }

    #[test]
    fn the_sims_document_parses() {
        let doc = concat!(
            "<provisionGroupList xmlns=\"http://schemas.microsoft.com/2006/09/sip/provisiongrouplist-notification\">",
            "<provisionGroup name=\"ServerConfiguration\">",
            "<absInternalServerUrl>http://127.0.0.1/abs/int</absInternalServerUrl>",
            "<absExternalServerUrl>http://127.0.0.1/abs/ext</absExternalServerUrl>",
            "</provisionGroup></provisionGroupList>"
        );
        let p = parse(doc.as_bytes()).expect("parses");
        assert_eq!(p.abs_url(true), Some("http://127.0.0.1/abs/ext"));
        assert!(p.uc_policy.is_empty());
        assert!(p.to_in_band().is_empty());
    }

    #[test]
    fn utf16_with_bom() {
        let bytes: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(T18.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(
            parse(&bytes).expect("parses"),
            parse(T18.as_bytes()).expect("parses")
        );
    }

    #[test]
    fn errors_are_positioned() {
        let e = parse(b"<provisioningGroupList/>").expect_err("request root");
        assert!(matches!(e.kind, DocumentErrorKind::UnexpectedRoot { .. }));
        let e = parse(b"<provisionGroupList xmlns=\"urn:other\"/>").expect_err("ns");
        assert!(matches!(e.kind, DocumentErrorKind::WrongNamespace { .. }));
        let e = parse(b"<provisionGroupList>\n  <provisionGroup><x>1</x></provisionGroup>\n</provisionGroupList>")
            .expect_err("no name");
        assert_eq!(e.kind, DocumentErrorKind::Missing("provisionGroup name"));
        assert_eq!((e.line, e.column), (2, 3));
        let e = parse(b"<provisionGroupList>\n<provisionGroup name=\"a\">\n</provisionGroupList>")
            .expect_err("mismatched");
        assert!(matches!(e.kind, DocumentErrorKind::Syntax(_)));
        assert!(e.line >= 2);
        assert!(parse(b"").is_err());
        assert!(parse(b"\xff\xfe\x00").is_err());
    }

    #[test]
    fn hostile_inputs_are_refused() {
        let e = parse(
            b"<!DOCTYPE p [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><provisionGroupList>&b;</provisionGroupList>",
        )
        .expect_err("doctype");
        assert_eq!(e.kind, DocumentErrorKind::DocType);
        let e = parse(b"<provisionGroupList><provisionGroup name=\"ucPolicy\"><property name=\"x\">&xxe;</property></provisionGroup></provisionGroupList>")
            .expect_err("entity");
        assert!(matches!(e.kind, DocumentErrorKind::UndefinedEntity(_)));
        let deep = format!(
            "<provisionGroupList><provisionGroup name=\"g\">{}",
            "<a>".repeat(100)
        );
        let e = parse(deep.as_bytes()).expect_err("deep");
        assert!(matches!(e.kind, DocumentErrorKind::TooDeep(_)));
        let big = vec![b' '; crate::presence::MAX_DOCUMENT_BYTES + 1];
        let e = parse(&big).expect_err("big");
        assert!(matches!(e.kind, DocumentErrorKind::TooLarge(_)));
        // Deep but within limits: the walk is bounded and does not overflow.
        let nested = format!(
            "<provisionGroupList><provisionGroup name=\"g\">{}<k>v</k>{}</provisionGroup></provisionGroupList>",
            "<a>".repeat(60),
            "</a>".repeat(60)
        );
        let p = parse(nested.as_bytes()).expect("parses");
        assert_eq!(
            p.group("g").and_then(|g| g.get("k")).map(String::as_str),
            Some("v")
        );
    }

    #[test]
    fn later_keys_win_and_entities_resolve() {
        let p = parse(
            br#"<provisionGroupList><provisionGroup name="ucPolicy"><instance><property name="A">1</property><property name="A">2 &amp; 3</property></instance></provisionGroup><provisionGroup name="ucPolicy"><instance><property name="B">x</property></instance></provisionGroup></provisionGroupList>"#,
        )
        .expect("parses");
        assert_eq!(p.uc_policy("a"), Some("2 & 3"));
        assert_eq!(p.uc_policy("B"), Some("x"));
    }
}
