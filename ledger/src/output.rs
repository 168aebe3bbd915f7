//! Operator output: results on stdout (a closed pipe is not an error), errors and
//! warnings on stderr as "what happened" then "what to do".

use crate::error::Error;
use std::io::Write;

/// Where and how much to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// `-q` / `-v`.
    pub fn new(quiet: bool, verbose: bool) -> Self {
        Output { quiet, verbose }
    }

    /// A result line (suppressed by `-q`).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(std::io::stdout().lock(), "{}", s.as_ref());
        }
    }

    /// A detail line (only with `-v`).
    pub fn detail(&self, s: impl AsRef<str>) {
        if self.verbose {
            let _ = writeln!(std::io::stdout().lock(), "{}", s.as_ref());
        }
    }

    /// Machine output (JSON), printed even with `-q`.
    pub fn json(&self, v: &serde_json::Value) {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }

    /// Prints an error with its hint.
    pub fn error(&self, e: &Error) {
        let mut o = std::io::stderr().lock();
        let _ = writeln!(o, "airlock-ledger: error: {e}");
        let _ = writeln!(o, "  what to do: {}", e.hint());
    }

    /// Prints a warning.
    pub fn warn(&self, s: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "airlock-ledger: warning: {}",
            s.as_ref()
        );
    }
}
