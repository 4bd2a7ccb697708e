//! Shared helpers for the example programs (input reading, exit codes).

pub mod custom_state_server;
pub mod track;

use std::io::Read;
use std::process::ExitCode;

/// Exit code for a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit code for invalid input or a failed operation.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for usage or I/O errors.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends the program with a one-line message.
#[derive(Debug)]
pub enum CliError {
    /// Invalid input or a failed operation (exit 1).
    Failed(String),
    /// Usage or I/O error (exit 2).
    Usage(String),
}

impl CliError {
    /// Prints `error: ...` on stderr and returns the exit code.
    pub fn report(&self) -> ExitCode {
        match self {
            CliError::Failed(m) => {
                eprintln!("error: {m}");
                ExitCode::from(EXIT_FAILED)
            }
            CliError::Usage(m) => {
                eprintln!("error: {m}");
                ExitCode::from(EXIT_USAGE)
            }
        }
    }
}

/// Reads FILE, or stdin when it is absent or `-`.
pub fn read_input(file: Option<&str>) -> Result<Vec<u8>, CliError> {
    match file {
        None | Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
            Ok(buf)
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| CliError::Usage(format!("reading {path}: {e}")))
        }
    }
}

/// Writes one line to stdout; a closed pipe or full disk is an I/O error
/// (exit 2), never a panic.
pub fn emit(line: impl std::fmt::Display) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Usage(format!("writing output: {e}")))
}
