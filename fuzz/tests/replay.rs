//! Replays every fuzz target's corpus (and crash artifacts, if any) through
//! the target's check function, so that CI catches regressions on stable
//! without libFuzzer.

use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 8] = [
    ("parse_message", ocs_fuzz::check_parse_message),
    ("roundtrip", ocs_fuzz::check_roundtrip),
    ("stream_framing", ocs_fuzz::check_stream_framing),
    ("typed_headers", ocs_fuzz::check_typed_headers),
    ("multipart", ocs_fuzz::check_multipart),
    ("reg_parser", ocs_fuzz::check_reg_parser),
    ("adm_parser", ocs_fuzz::check_adm_parser),
    ("client_inputs", ocs_fuzz::check_client_inputs),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, check: Check) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = files(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "corpus/{target} has no seeds");
    let artifacts = files(&root.join("artifacts").join(target));
    let mut failed = Vec::new();
    for f in corpus.iter().chain(&artifacts) {
        let data = std::fs::read(f).expect("readable");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} fails on: {failed:#?}");
}

#[test]
fn parse_message_corpus() {
    replay(TARGETS[0].0, TARGETS[0].1);
}

#[test]
fn roundtrip_corpus() {
    replay(TARGETS[1].0, TARGETS[1].1);
}

#[test]
fn stream_framing_corpus() {
    replay(TARGETS[2].0, TARGETS[2].1);
}

#[test]
fn typed_headers_corpus() {
    replay(TARGETS[3].0, TARGETS[3].1);
}

#[test]
fn multipart_corpus() {
    replay(TARGETS[4].0, TARGETS[4].1);
}

#[test]
fn reg_parser_corpus() {
    replay(TARGETS[5].0, TARGETS[5].1);
}

#[test]
fn adm_parser_corpus() {
    replay(TARGETS[6].0, TARGETS[6].1);
}

#[test]
fn sdp_corpus() {
    replay("sdp", ocs_fuzz::check_sdp);
}

#[test]
fn ms_text_format_corpus() {
    replay("ms_text_format", ocs_fuzz::check_ms_text_format);
}

#[test]
fn im_body_corpus() {
    replay("im_body", ocs_fuzz::check_im_body);
}

#[test]
fn presence_categories_corpus() {
    replay("presence_categories", ocs_fuzz::check_presence_categories);
}

#[test]
fn rlmi_multipart_corpus() {
    replay("rlmi_multipart", ocs_fuzz::check_rlmi_multipart);
}

#[test]
fn pidf_corpus() {
    replay("pidf", ocs_fuzz::check_pidf);
}

#[test]
fn custom_states_corpus() {
    replay("custom_states", ocs_fuzz::check_custom_states);
}

#[test]
fn provisioning_corpus() {
    replay("provisioning", ocs_fuzz::check_provisioning);
}

#[test]
fn abs_file_corpus() {
    replay("abs_file", ocs_fuzz::check_abs_file);
}

#[test]
fn roaming_contacts_corpus() {
    replay("roaming_contacts", ocs_fuzz::check_roaming_contacts);
}

#[test]
fn client_inputs_corpus() {
    replay(TARGETS[7].0, TARGETS[7].1);
}

#[test]
fn autodiscover_corpus() {
    replay("autodiscover", ocs_fuzz::check_autodiscover);
}

#[test]
fn sim_server_corpus() {
    replay("sim_server", ocs_fuzz::check_sim_server);
}

#[test]
fn oauth_token_corpus() {
    replay("oauth_token", ocs_fuzz::check_oauth_token);
}

#[test]
fn web_request_corpus() {
    replay("web_request", ocs_fuzz::check_web_request);
}

#[test]
fn discovery_walk_corpus() {
    replay("discovery_walk", ocs_fuzz::check_discovery_walk);
}

#[test]
fn certprov_response_corpus() {
    replay("certprov_response", ocs_fuzz::check_certprov_response);
}

#[test]
fn webticket_corpus() {
    replay("webticket", ocs_fuzz::check_webticket);
}
