//! `hello` runs the sign-in, watch, IM and sign-out path with imports from
//! the top of `ocs_core` only.

use std::process::Command;

#[test]
fn hello_signs_in_watches_sends_and_signs_out() {
    let out = Command::new(env!("CARGO_BIN_EXE_hello"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "alice and bob signed in",
            "bob sees alice: busy",
            "bob got: lunch at noon?",
            "alice: IM 1 delivered",
            "signed out",
        ]
    );
}
