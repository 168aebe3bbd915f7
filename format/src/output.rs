//! Operator output shared by the airlock binaries: results on stdout (a closed pipe
//! is not an error), errors and warnings on stderr, each error as "what happened"
//! then "what to do".

use crate::Exit;
use std::fmt::Display;
use std::io::Write;

/// An error as the binaries report it: what happened (`Display`), what to do,
/// and the exit code.
pub trait OperatorError: Display {
    /// The "what to do" line.
    fn hint(&self) -> String;
    /// The exit code (design card §9).
    fn exit(&self) -> Exit;
}

impl OperatorError for crate::Error {
    fn hint(&self) -> String {
        crate::Error::hint(self)
    }
    fn exit(&self) -> Exit {
        crate::Error::exit(self)
    }
}

/// Parses a binary's command line: `Err` is the exit code after clap has printed
/// its message (usage errors exit 2; `--help` and `--version` exit 0).
pub fn parse_args<C: clap::Parser>(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<C, Exit> {
    C::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            Exit::Usage
        } else {
            Exit::Success
        }
    })
}

/// Where and how much to print, for one program.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    program: &'static str,
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// `program` prefixes errors and warnings; `-q` / `-v`.
    pub fn new(program: &'static str, quiet: bool, verbose: bool) -> Self {
        Output {
            program,
            quiet,
            verbose,
        }
    }

    /// True with `-v` (for output that is costly to prepare).
    pub fn is_verbose(&self) -> bool {
        self.verbose
    }

    /// A result line (suppressed by `-q`).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.quiet {
            stdout(s.as_ref());
        }
    }

    /// A detail line (only with `-v`).
    pub fn detail(&self, s: impl AsRef<str>) {
        if self.verbose {
            stdout(s.as_ref());
        }
    }

    /// Machine output (JSON), printed even with `-q`.
    pub fn json(&self, v: &serde_json::Value) {
        stdout(&serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// Prints an error with its hint.
    pub fn error(&self, e: &dyn OperatorError) {
        let mut o = std::io::stderr().lock();
        let _ = writeln!(o, "{}: error: {e}", self.program);
        let _ = writeln!(o, "  what to do: {}", e.hint());
    }

    /// The exit code of a finished command, printing its error if it failed.
    pub fn finish<E: OperatorError>(&self, result: Result<(), E>) -> Exit {
        match result {
            Ok(()) => Exit::Success,
            Err(e) => {
                self.error(&e);
                e.exit()
            }
        }
    }

    /// Prints a warning.
    pub fn warn(&self, s: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}: warning: {}",
            self.program,
            s.as_ref()
        );
    }
}

fn stdout(s: &str) {
    // A closed pipe (`| head`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}
