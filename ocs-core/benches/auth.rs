//! Cost of MS-SIPAE message signing and verification (NTLM, auth version
//! 4): building the signature buffer from a parsed message plus the MAC.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ocs_core::auth::ntlm::{Role, SecurityContext, SessionKeys};
use ocs_core::auth::sipae::SecurityAssociation;
use ocs_core::sip::{HeaderName, Message};

fn keys() -> SessionKeys {
    let esk: Vec<u8> = (0..16)
        .map(|i| {
            u8::from_str_radix(&"6742fbe37bb1946b49d86a525bd29a9b"[2 * i..2 * i + 2], 16)
                .unwrap_or(0)
        })
        .collect();
    SessionKeys::derive(&esk.try_into().unwrap_or([0; 16]))
}

fn sa(role: Role, header: HeaderName) -> SecurityAssociation {
    SecurityAssociation::new(
        SecurityContext::new(keys(), role),
        "SIP Communications Service",
        "cosmo-ocs-r2.cosmo.local",
        Some("2BDBAC9D"),
        4,
        header,
    )
}

fn benches(c: &mut Criterion) {
    let t2 = Message::parse(include_bytes!("../tests/data/ocs/t2_register_200.sip"))
        .unwrap_or_else(|e| panic!("T2: {e}"));
    let mut t1 = Message::parse(include_bytes!("../tests/data/ocs/t1_register_request.sip"))
        .unwrap_or_else(|e| panic!("T1: {e}"));
    t1.remove_headers(HeaderName::ProxyAuthorization);
    let mut g = c.benchmark_group("ntlm_sipae");
    let mut client = sa(Role::Client, HeaderName::ProxyAuthorization);
    g.bench_function("sign_request", |b| {
        b.iter(|| {
            let mut m = t1.clone();
            client
                .sign(&mut m, black_box("13317733"))
                .unwrap_or_else(|e| panic!("{e}"));
            m
        })
    });
    let verifier = sa(Role::Client, HeaderName::ProxyAuthorization);
    g.bench_function("verify_response", |b| {
        b.iter(|| verifier.verify(black_box(&t2)))
    });
    g.bench_function("clone_only_baseline", |b| b.iter(|| black_box(t1.clone())));
    g.finish();
}

criterion_group!(auth_benches, benches);
criterion_main!(auth_benches);
