//! Building REGISTER requests: a pure function, so the captured OC 2007 R2
//! request (T1) can be reproduced byte for byte.

use super::*;

/// Everything one REGISTER needs; [`build_register`] is a pure function
/// so captured requests can be reproduced byte for byte.
#[derive(Debug, Clone)]
pub struct RegisterParams<'a> {
    /// Dialect.
    pub dialect: Dialect,
    /// Address of record.
    pub aor: &'a str,
    /// Local transport and address.
    pub local: LocalTransport,
    /// From tag.
    pub tag: &'a str,
    /// OCS epid.
    pub epid: &'a str,
    /// OCS ms-opaque.
    pub ms_opaque: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number.
    pub cseq: u32,
    /// Via branch (`None` only to reproduce captures that lack it).
    pub branch: Option<&'a str>,
    /// User-Agent.
    pub user_agent: &'a str,
    /// Expires header value (0 to un-register).
    pub expires: Option<u32>,
    /// Authorization or Proxy-Authorization, with its value.
    pub auth: Option<(HeaderName, String)>,
}

pub(super) fn registrar_uri(aor: &str) -> String {
    match SipUri::parse(aor) {
        Ok(u) => format!("{}:{}", if u.secure { "sips" } else { "sip" }, u.host),
        Err(_) => aor.to_owned(),
    }
}

/// Builds a REGISTER. The OCS dialect follows the captured OC 2007 R2
/// request (T1) header for header.
pub fn build_register(p: &RegisterParams<'_>) -> Message {
    let mut m = Message::request(Method::Register, &registrar_uri(p.aor));
    let transport = p.local.transport.as_str();
    let mut via = match p.branch {
        Some(b) => format!("SIP/2.0/{transport} {};branch={b}", p.local.addr),
        None => format!("SIP/2.0/{transport} {}", p.local.addr),
    };
    if p.local.transport == Transport::Udp {
        // RFC 3581: answers come back to the address and port the request
        // left from, through a NAT or a proxy.
        via.push_str(";rport");
    }
    m.push_header(HeaderName::Via, via);
    m.push_header(HeaderName::MaxForwards, "70");
    let lower = transport.to_ascii_lowercase();
    match p.dialect {
        Dialect::Ocs => {
            m.push_header(
                HeaderName::From,
                format!("<{}>;tag={};epid={}", p.aor, p.tag, p.epid),
            );
            m.push_header(HeaderName::To, format!("<{}>", p.aor));
            m.push_header(HeaderName::CallId, p.call_id);
            m.push_header(HeaderName::CSeq, format!("{} REGISTER", p.cseq));
            m.push_header(
                HeaderName::Contact,
                format!(
                    "<sip:{};transport={lower};ms-opaque={}>;methods=\"{OC_CONTACT_METHODS}\";proxy=replace;+sip.instance=\"<urn:uuid:{}>\"",
                    p.local.addr,
                    p.ms_opaque,
                    sip_instance_uuid(p.epid).to_ascii_uppercase()
                ),
            );
            m.push_header(HeaderName::UserAgent, p.user_agent);
            m.push_header(
                HeaderName::Supported,
                "gruu-10, adhoclist, msrtc-event-categories",
            );
            m.push_header(HeaderName::Supported, "ms-forking");
            m.push_header(HeaderName::MsKeepAlive, "UAC;hop-hop=yes");
            m.push_header(HeaderName::Event, "registration");
        }
        _ => {
            m.push_header(HeaderName::From, format!("<{}>;tag={}", p.aor, p.tag));
            m.push_header(HeaderName::To, format!("<{}>", p.aor));
            m.push_header(HeaderName::CallId, p.call_id);
            m.push_header(HeaderName::CSeq, format!("{} REGISTER", p.cseq));
            let user = SipUri::parse(p.aor)
                .ok()
                .and_then(|u| u.user.map(|u| format!("{u}@")))
                .unwrap_or_default();
            m.push_header(
                HeaderName::Contact,
                format!(
                    "<sip:{user}{};transport={lower}>;+sip.instance=\"<urn:uuid:{}>\"",
                    p.local.addr,
                    sip_instance_uuid(p.epid)
                ),
            );
            m.push_header(HeaderName::UserAgent, p.user_agent);
            m.push_header(
                HeaderName::Allow,
                "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, NOTIFY",
            );
        }
    }
    if let Some(e) = p.expires {
        m.push_header(HeaderName::Expires, e.to_string());
    }
    if let Some((name, value)) = &p.auth {
        m.push_header(name.clone(), value.clone());
    }
    m.push_header(HeaderName::ContentLength, "0");
    m
}
