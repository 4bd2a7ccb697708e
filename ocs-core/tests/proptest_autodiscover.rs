//! Properties of the autodiscover parser: any input is refused or read
//! without a panic, and generated answers read back as written.

use ocs_core::autodiscover::{AccessLocation, Next, Resource, SipAccess, parse};
use proptest::prelude::*;

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){1,3}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_are_refused_or_read(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = parse(&data) {
            let _ = r.next();
        }
    }

    #[test]
    fn any_text_around_the_root_is_refused_or_read(s in "\\PC{0,200}") {
        let doc = format!("<AutodiscoverResponse>{s}</AutodiscoverResponse>");
        if let Ok(r) = parse(doc.as_bytes()) {
            let _ = r.next();
        }
    }

    #[test]
    fn a_user_answer_reads_back(
        internal in host(),
        external in host(),
        ip in 1u16..,
        ep in 1u16..,
        location in prop_oneof![Just("Internal"), Just("External"), Just("")],
    ) {
        let attr = if location.is_empty() { String::new() } else { format!(" AccessLocation=\"{location}\"") };
        let doc = format!(
            "<AutodiscoverResponse{attr}><User><SipClientInternalAccess fqdn=\"{internal}\" port=\"{ip}\"/><SipClientExternalAccess fqdn=\"{external}\" port=\"{ep}\"/></User></AutodiscoverResponse>"
        );
        let r = parse(doc.as_bytes()).expect("a well-formed answer");
        prop_assert_eq!(r.resource, Resource::User);
        let i = SipAccess { fqdn: internal, port: ip };
        let e = SipAccess { fqdn: external, port: ep };
        let want = match location {
            "Internal" => { prop_assert_eq!(r.access, AccessLocation::Internal); vec![i] }
            "External" => { prop_assert_eq!(r.access, AccessLocation::External); vec![e] }
            _ => { prop_assert_eq!(r.access, AccessLocation::Unknown); vec![i, e] }
        };
        prop_assert_eq!(r.next(), Next::Sip(want));
    }
}
