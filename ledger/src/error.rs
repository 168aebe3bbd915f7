//! The one error type of the ledger crate. Every variant maps to exactly one exit
//! code ([`Error::exit`]) and carries a "what to do" hint ([`Error::hint`]); a broken
//! chain always names the first bad sequence number.

use airlock_format::Exit;
use std::path::PathBuf;

/// Result alias for the ledger crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while writing, reading or verifying a ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, key or time failed in the format crate (I/O naming the path, key
    /// problems, signature checks).
    #[error(transparent)]
    Format(#[from] airlock_format::Error),
    /// SQLite refused an operation on the ledger database.
    #[error("ledger {}: {action}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What we were doing.
        action: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not an airlock ledger, or one of an unknown schema version.
    #[error("{} is not an airlock ledger: {reason}", path.display())]
    NotALedger {
        /// The database file.
        path: PathBuf,
        /// What is missing or unexpected.
        reason: String,
    },
    /// A new ledger was asked for where a file already exists.
    #[error("{} already exists", path.display())]
    Exists {
        /// The path that exists.
        path: PathBuf,
    },
    /// The hash chain or the ledger's structure is broken: an entry was edited,
    /// removed, reordered or inserted, or the schema was altered.
    #[error("{}{reason}", seq.map(|s| format!("entry {s}: ")).unwrap_or_default())]
    Broken {
        /// The first bad sequence number, when the break is in an entry.
        seq: Option<u64>,
        /// Why the chain does not hold there.
        reason: String,
    },
    /// A checkpoint is malformed, not signed by the host key, or the ledger does not
    /// extend it.
    #[error("checkpoint {what}: {reason}")]
    Checkpoint {
        /// Which checkpoint (a file name, or the entry that stores it).
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// An export file is malformed or over a limit.
    #[error("export {} line {line}: {reason}", path.display())]
    Export {
        /// The export file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A value given by the caller (an entry field, an argument) is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The exit code this error maps to (design card §9).
    pub fn exit(&self) -> Exit {
        match self {
            Error::Format(e) => e.exit(),
            Error::Sqlite { source, .. } if is_corrupt(source) => Exit::Verification,
            Error::Sqlite { .. } | Error::NotALedger { .. } | Error::Exists { .. } => {
                Exit::Operational
            }
            Error::Invalid(_) => Exit::Operational,
            Error::Broken { .. } | Error::Checkpoint { .. } | Error::Export { .. } => {
                Exit::Verification
            }
        }
    }

    /// What the operator or auditor should do next.
    pub fn hint(&self) -> String {
        match self {
            Error::Format(e) => e.hint(),
            Error::Sqlite { source, .. } if is_corrupt(source) => "the database file is damaged or was edited byte by byte: keep it as evidence and verify an earlier export or copy".into(),
            Error::Sqlite { .. } => "check that the database path is right, that you may read and write it, and that no other program holds it locked".into(),
            Error::NotALedger { .. } => "pass the ledger.db of an airlock state directory (--db FILE or the profile's state_dir)".into(),
            Error::Exists { .. } => "choose another path, or open the existing ledger instead of creating one".into(),
            Error::Broken { .. } => "treat this ledger as tampered with: keep the file as evidence, compare it with an earlier export or checkpoint, and do not append to it".into(),
            Error::Checkpoint { .. } => "check that you passed the checkpoint and the public key of this host; if they are right, the ledger was rewritten or replaced since the checkpoint was signed".into(),
            Error::Export { .. } => "get a complete copy of the export from the host (airlock-ledger export --out FILE) and verify again".into(),
            Error::Invalid(_) => "correct the value and run the command again".into(),
        }
    }

    pub(crate) fn broken(seq: u64, reason: impl Into<String>) -> Error {
        Error::Broken {
            seq: Some(seq),
            reason: reason.into(),
        }
    }

    pub(crate) fn sqlite(
        path: &std::path::Path,
        action: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Sqlite {
            path,
            action,
            source,
        }
    }
}

/// SQLite's "this database is damaged" error: for a ledger, a verification failure.
/// (A file that is not a database at all is a wrong `--db`: exit 1.)
fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt)
    )
}
