//! The one error type of the applier crate: every variant maps to one exit code
//! and carries a "what to do" hint.

use airlock_format::Exit;
use airlock_format::output::OperatorError;
use std::path::PathBuf;

/// Result alias for the applier crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the applier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading files, keys, the profile or bundles (the format crate's error).
    #[error(transparent)]
    Format(#[from] airlock_format::Error),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] airlock_ledger::Error),
    /// The state directory holds some of the host's files but not all of them, or
    /// files that do not belong together.
    #[error("state directory {}: {reason}", dir.display())]
    State {
        /// The state directory.
        dir: PathBuf,
        /// What is missing or inconsistent.
        reason: String,
        /// What the operator can do.
        hint: String,
    },
}

impl OperatorError for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Format(e) => e.exit(),
            Error::Ledger(e) => e.exit(),
            Error::State { .. } => Exit::Operational,
        }
    }

    fn hint(&self) -> String {
        match self {
            Error::Format(e) => e.hint(),
            Error::Ledger(e) => e.hint(),
            Error::State { hint, .. } => hint.clone(),
        }
    }
}
