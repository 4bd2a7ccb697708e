//! Properties of the OAuth token reader, the password-grant form and the
//! embedded server's HTTP request reader: any input is refused at a byte
//! within it or read without a panic, and what we write reads back.

use std::time::Instant;

use ocs_core::oauth::{Value, parse_object, parse_token, password_grant_body};
use ocs_core::rng::Rng;
use ocs_core::sim::web::{WebRequest, parse_request};
use ocs_core::sim::{Registrar, RegistrarConfig, SimServer};
use proptest::prelude::*;

/// A JSON string literal for `s`, escaping the way other writers might:
/// control characters as `\u00XX`, the rest of the escapes by name, and
/// (with `ascii`) everything beyond ASCII as `\u` escapes, in surrogate
/// pairs where needed.
fn json_string(s: &str, ascii: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_are_refused_within_them_or_read(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        match parse_object(&data) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.offset <= data.len(), "{e}"),
        }
        let _ = parse_token(&data);
    }

    #[test]
    fn written_members_read_back(
        members in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 1..8),
        ascii in any::<bool>(),
        n in any::<u32>(),
    ) {
        let mut doc = String::from("{ ");
        for (k, v) in &members {
            doc.push_str(&format!("{}: {}, ", json_string(k, ascii), json_string(v, ascii)));
        }
        doc.push_str(&format!("\"zz_number\" : {n}, \"zz_nested\": [{{\"a\": [true, null]}}, -1.5e3] }}"));
        let read = parse_object(doc.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read.len(), members.len() + 2);
        for ((k, v), (rk, rv)) in members.iter().zip(&read) {
            prop_assert_eq!(k, rk);
            prop_assert_eq!(&Value::Str(v.clone()), rv);
        }
        prop_assert_eq!(&read[members.len()].1, &Value::Num(f64::from(n)));
        prop_assert_eq!(&read[members.len() + 1].1, &Value::Nested);
    }

    /// Whatever a password holds, the form we post carries it to the
    /// embedded token service intact.
    #[test]
    fn any_password_reaches_the_token_service(password in "\\PC{1,40}", wrong in "\\PC{1,40}") {
        let mut r = Registrar::new(RegistrarConfig::ocs("contoso.com"), Rng::from_seed(1), [7; 32]);
        r.add_user("alice", "CONTOSO", &password);
        let mut s = SimServer::new(r, Rng::from_seed(2));
        s.configure_web(ocs_core::sim::web::WebConfig {
            base_url: "http://127.0.0.1:1".into(),
            sip_fqdn: "127.0.0.1".into(),
            sip_port: 5061,
        });
        let post = |pw: &str| {
            let body = password_grant_body("CONTOSO\\alice", pw);
            let wire = format!(
                "POST /WebTicket/oauthtoken HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let (req, used): (WebRequest, usize) = parse_request(wire.as_bytes())
                .expect("parses")
                .expect("complete");
            assert_eq!(used, wire.len());
            req
        };
        let ok = s.handle_http(&post(&password), now());
        prop_assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        prop_assert!(parse_token(&ok.body).is_ok());
        if wrong != password {
            prop_assert_eq!(s.handle_http(&post(&wrong), now()).status, 400);
        }
    }

    #[test]
    fn any_request_bytes_are_framed_or_refused(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        match parse_request(&data) {
            Ok(Some((_, used))) => prop_assert!(used <= data.len()),
            Ok(None) => {}
            Err(e) => prop_assert!(matches!(e.status(), 400 | 413)),
        }
    }
}
