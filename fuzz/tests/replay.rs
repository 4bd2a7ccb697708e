//! Replays every fuzz target's corpus (and crash artifacts, if any) through
//! the target's check function, so that CI catches regressions on stable
//! without libFuzzer.

use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 5] = [
    ("parse_message", ocs_fuzz::check_parse_message),
    ("roundtrip", ocs_fuzz::check_roundtrip),
    ("stream_framing", ocs_fuzz::check_stream_framing),
    ("typed_headers", ocs_fuzz::check_typed_headers),
    ("multipart", ocs_fuzz::check_multipart),
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
