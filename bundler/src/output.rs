//! Operator output: results on stdout (a closed pipe is not an error), errors on
//! stderr as "what happened" then "what to do".

use airlock_format::Error;
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
            self.raw(s);
        }
    }

    /// A detail line (only with `-v`).
    pub fn detail(&self, s: impl AsRef<str>) {
        if self.verbose {
            self.raw(s);
        }
    }

    /// Machine output (JSON), printed even with `-q`.
    pub fn json(&self, v: &serde_json::Value) {
        self.raw(serde_json::to_string_pretty(v).unwrap_or_default());
    }

    fn raw(&self, s: impl AsRef<str>) {
        let mut o = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error.
        let _ = writeln!(o, "{}", s.as_ref());
    }

    /// Prints an error with its hint.
    pub fn error(&self, e: &Error) {
        let mut o = std::io::stderr().lock();
        let _ = writeln!(o, "airlock-bundler: error: {e}");
        let _ = writeln!(o, "  what to do: {}", e.hint());
    }

    /// Prints a warning.
    pub fn warn(&self, s: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "airlock-bundler: warning: {}",
            s.as_ref()
        );
    }
}
