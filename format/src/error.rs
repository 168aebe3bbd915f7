//! The one error type of the format crate. Every variant maps to exactly one exit
//! code ([`Error::exit`]) and carries a "what to do" hint ([`Error::hint`]), so the
//! binaries print "what happened, what to do" without guessing.

use crate::exit::Exit;
use std::io;
use std::path::{Path, PathBuf};

/// Result alias for the format crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, writing or verifying airlock files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a named path failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("read", "create", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file is missing, malformed, encrypted without a password, or the password is wrong.
    #[error("key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why it could not be used.
        reason: String,
    },
    /// An argument or local input has a value airlock does not accept.
    #[error("{0}")]
    Invalid(String),
    /// A local file, directory or setting cannot be used as it is (a profile with a
    /// bad key, an empty cache, a key file in the way), with how to fix it.
    #[error("{message}")]
    Unusable {
        /// What is wrong, naming the file and the key.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// Outside input is larger than one of the limits in [`crate::limits`].
    #[error("{what} is over the limit of {limit} {unit}")]
    Limit {
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
        /// Unit of the limit ("bytes", "entries", "levels").
        unit: &'static str,
    },
    /// An XML document is malformed or breaks the schema.
    #[error("{what}: {message}")]
    Xml {
        /// Which document.
        what: String,
        /// What is wrong, with the position when known.
        message: String,
    },
    /// A signature is malformed, legacy, made by an untrusted key, or does not verify.
    #[error("{what}: {reason}")]
    Signature {
        /// What the signature was supposed to cover.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// Content does not match what a signed index declared (size, hash, presence).
    #[error("{what}: {reason}")]
    Mismatch {
        /// Which content.
        what: String,
        /// What differs.
        reason: String,
    },
    /// A bundle archive is malformed or hostile.
    #[error("bundle {}: {reason}", path.display())]
    Archive {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Signed content that verifies but must not be used: expired, or older than
    /// what was already accepted (freeze, replay, rollback protection).
    #[error("{what}: {reason}")]
    Stale {
        /// What was refused.
        what: String,
        /// Why.
        reason: String,
        /// What the operator can do about it.
        hint: String,
    },
    /// A network transfer failed: connection, TLS, timeout, or an HTTP error status.
    #[error("{what}: {reason}")]
    Network {
        /// The URL involved.
        what: String,
        /// What went wrong.
        reason: String,
        /// What the operator can do about it.
        hint: String,
    },
    /// The command line asks for something airlock refuses to do as given.
    #[error("{message}")]
    Usage {
        /// What is wrong with the arguments.
        message: String,
        /// How to ask for it correctly.
        hint: String,
    },
    /// Another airlock process holds a lock this command needs.
    #[error("{0}")]
    Busy(String),
    /// Refused by policy: expired, sequence going backwards, and similar.
    #[error("{what}: {reason}")]
    Policy {
        /// What was refused.
        what: String,
        /// Why.
        reason: String,
        /// What the operator can do about it.
        hint: String,
    },
}

/// What to do about an I/O error, by its kind.
fn io_hint(action: &str, path: &Path, e: &io::Error) -> String {
    let path = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => {
            format!("check the path: {path} (or a directory above it) does not exist")
        }
        io::ErrorKind::PermissionDenied => format!(
            "run as a user allowed to {action} {path} (the applier usually runs as root), or fix its permissions"
        ),
        io::ErrorKind::AlreadyExists => {
            format!("{path} is in the way: move it aside, or choose another path")
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!("free space on the file system that holds {path}, then run the command again")
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            format!(
                "{path} is on a read-only file system: remount it read-write or choose another path"
            )
        }
        io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory => {
            format!("check the path: {path} is not the kind of file this command expects")
        }
        _ => format!("check {path} and the file system it is on, then run the command again"),
    }
}

impl Error {
    /// The exit code this error maps to (design card §9).
    pub fn exit(&self) -> Exit {
        match self {
            Error::Io { .. }
            | Error::Key { .. }
            | Error::Invalid(_)
            | Error::Unusable { .. }
            | Error::Network { .. }
            | Error::Busy(_) => Exit::Operational,
            Error::Usage { .. } => Exit::Usage,
            Error::Limit { .. }
            | Error::Xml { .. }
            | Error::Signature { .. }
            | Error::Mismatch { .. }
            | Error::Archive { .. }
            | Error::Stale { .. } => Exit::Verification,
            Error::Policy { .. } => Exit::Policy,
        }
    }

    /// What the operator should do next.
    pub fn hint(&self) -> String {
        match self {
            Error::Io { action, path, source } => io_hint(action, path, source),
            Error::Key { path, .. } if path.extension().is_some_and(|e| e == "pub") => {
                "check the public key's path (a .pub file as airlock-bundler keygen or minisign -G wrote it)".into()
            }
            Error::Key { .. } => "check the key path and, for a secret key, its password (--password-file or AIRLOCK_PASSWORD)".into(),
            Error::Invalid(_) => "correct the value and run the command again".into(),
            Error::Limit { .. } | Error::Archive { .. } | Error::Mismatch { .. } => {
                "do not use this file: it is damaged, not what it claims to be, or was altered on the way; get a fresh copy from its publisher and report one that keeps failing".into()
            }
            Error::Xml { .. } => "the document was refused as written; ask its publisher for a corrected document".into(),
            Error::Signature { .. } => {
                "do not use this file; check that you passed the right public key, then get a fresh copy from its publisher".into()
            }
            Error::Policy { hint, .. }
            | Error::Stale { hint, .. }
            | Error::Network { hint, .. }
            | Error::Usage { hint, .. }
            | Error::Unusable { hint, .. } => hint.clone(),
            Error::Busy(_) => "wait for the other command to finish, then run this one again".into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A malformed or hostile bundle.
    pub fn archive(path: &Path, reason: impl Into<String>) -> Self {
        Error::Archive {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A schema or well-formedness error in the XML document `what`.
    pub fn xml(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Xml {
            what: what.into(),
            message: message.into(),
        }
    }

    /// A refused signature on `what`.
    pub fn signature(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Signature {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Content that does not match its signed declaration.
    pub fn mismatch(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Mismatch {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
