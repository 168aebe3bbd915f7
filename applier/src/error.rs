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
    /// A managed path that cannot be used safely: it leads outside the host root,
    /// through a symbolic link or a non-directory, or is not a regular file.
    #[error("refused to manage {path}: {reason}")]
    Unsafe {
        /// The action path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A policy refusal decided by the applier (drift, a held lock, an answer of no).
    #[error("{what}: {reason}")]
    Refused {
        /// What was refused.
        what: String,
        /// Why.
        reason: String,
        /// What the operator can do.
        hint: String,
    },
    /// An outside program (systemctl) is missing or failed.
    #[error("{what}: {reason}")]
    Tool {
        /// What was run.
        what: String,
        /// Why it failed.
        reason: String,
        /// What the operator can do.
        hint: String,
    },
    /// A mitigation named on the command line is not applied here.
    #[error("mitigation {id} is not applied on this host")]
    NotApplied {
        /// The id.
        id: String,
    },
    /// Another applier holds the lock.
    #[error("another airlock-applier is running on this host ({holder})")]
    Busy {
        /// What the lock file says about its holder.
        holder: String,
    },
    /// A command-line combination that cannot work.
    #[error("{message}")]
    Usage {
        /// What cannot work.
        message: String,
        /// How to ask for it correctly.
        hint: String,
    },
    /// The inbox `sync` reads cannot be used as it is (unreadable, too many files).
    #[error("inbox {}: {reason}", dir.display())]
    Inbox {
        /// The inbox directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
        /// What the operator can do.
        hint: String,
    },
    /// Every new bundle `sync` found failed verification or this host's checks.
    #[error("{what}: {reason}")]
    NoneValid {
        /// Where they were found.
        what: String,
        /// How many, and that each was recorded.
        reason: String,
        /// What the operator can do.
        hint: String,
    },
    /// A step of a run failed; every change of the run was undone.
    #[error(
        "apply failed at {step}: {reason}; every change of this run was undone ({undone} step(s) had been carried out)"
    )]
    ApplyFailed {
        /// The step that failed.
        step: String,
        /// Why.
        reason: String,
        /// How many steps had been carried out (and were undone).
        undone: usize,
    },
    /// A step failed and undoing the run failed too; the journal stays for the next start.
    #[error("apply failed at {step}: {reason}; undoing the run failed too: {undo}")]
    UndoFailed {
        /// The step that failed.
        step: String,
        /// Why.
        reason: String,
        /// Why the undo failed.
        undo: String,
    },
}

impl OperatorError for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Format(e) => e.exit(),
            Error::Ledger(e) => e.exit(),
            Error::State { .. }
            | Error::Tool { .. }
            | Error::NotApplied { .. }
            | Error::Busy { .. }
            | Error::Inbox { .. }
            | Error::UndoFailed { .. } => Exit::Operational,
            Error::NoneValid { .. } => Exit::Verification,
            Error::Unsafe { .. } | Error::Refused { .. } => Exit::Policy,
            Error::Usage { .. } => Exit::Usage,
            Error::ApplyFailed { .. } => Exit::ApplyFailed,
        }
    }

    fn hint(&self) -> String {
        match self {
            Error::Format(e) => e.hint(),
            Error::Ledger(e) => e.hint(),
            Error::State { hint, .. }
            | Error::Refused { hint, .. }
            | Error::Tool { hint, .. }
            | Error::Inbox { hint, .. }
            | Error::Usage { hint, .. }
            | Error::NoneValid { hint, .. } => hint.clone(),
            Error::Unsafe { .. } => "nothing was changed; fix the path on this host (or add the mitigation to policy.blocked), then run again".into(),
            Error::NotApplied { .. } => {
                "airlock-applier status lists the applied mitigations".into()
            }
            Error::Busy { .. } => "wait for the other run to finish, then run again".into(),
            Error::ApplyFailed { .. } => "nothing of this run stayed changed; fix the cause named above and run apply again (airlock-ledger log shows the failure)".into(),
            Error::UndoFailed { .. } => "fix the cause named above, then run any airlock-applier command: the interrupted run is finished or undone from its journal first".into(),
        }
    }
}
