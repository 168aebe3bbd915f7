//! The airlock ledger: an append-only, hash-chained audit log in SQLite, with
//! checkpoints signed by the host key, portable exports, and the `airlock-ledger`
//! tool. Every entry's hash covers every column and the previous hash, so an
//! edited, removed, inserted or reordered entry breaks the chain at a named `seq`;
//! a checkpoint held by an auditor also catches a truncated, rewritten or swapped
//! database.
//!
//! ```no_run
//! # fn demo(key: &airlock_format::keys::PublicKey, sk: &airlock_format::keys::SecretKey) -> airlock_ledger::Result<()> {
//! use airlock_ledger::{Ledger, NewEntry, VerifyOptions};
//! let mut ledger = Ledger::create("ledger.db".as_ref(), "exch01", key, "airlock-applier")?;
//! ledger.append(NewEntry::new("bundle.verified", "airlock-applier", serde_json::json!({"seq": 7})).bundle("0123"))?;
//! ledger.checkpoint(sk, "airlock-applier")?;
//! let report = ledger.verify(VerifyOptions { key: Some(key), checkpoint: None })?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod cli;
mod commands;
pub mod entry;
pub mod error;
pub mod export;
mod output;
mod render;
mod report;
mod schema;
pub mod store;
pub mod verify;

pub use checkpoint::Checkpoint;
pub use entry::{Digest, Entry, NewEntry};
pub use error::{Error, Result};
pub use export::{ExportSummary, verify_export};
pub use store::{Head, Ledger, Query};
pub use verify::{Report, VerifyOptions};

pub use commands::main;

/// The `actor` column for a command run by a person: `PROGRAM:USER`, the user
/// taken from `SUDO_USER`, `USER`, `LOGNAME` or `USERNAME`, else (a systemd unit
/// sets none of them) the name of the process's user id in `/etc/passwd`, else
/// `uid:N` (informational: the environment is not proof of identity; approvals
/// are signed).
pub fn actor(program: &str) -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|s| !s.is_empty() && s.len() < 64)
        })
        .or_else(user_of_uid);
    format!("{program}:{}", user.as_deref().unwrap_or("unknown"))
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// The name of this process's real user id, from `/proc/self/status` and
/// `/etc/passwd` (both read with a bound), or `uid:N` when it has no name.
fn user_of_uid() -> Option<String> {
    let read =
        |p: &str| airlock_format::fsutil::read_text_limited(std::path::Path::new(p), 1 << 20).ok();
    let status = read("/proc/self/status")?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let name = read("/etc/passwd").and_then(|passwd| {
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid && !name.is_empty() && name.len() < 64).then(|| name.to_string())
        })
    });
    Some(name.unwrap_or_else(|| format!("uid:{uid}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_uid_has_a_name_or_a_number() {
        let name = super::user_of_uid();
        let name = name.as_deref().unwrap_or_default();
        assert!(
            !name.is_empty() && !name.contains(':') || name.starts_with("uid:"),
            "{name:?}"
        );
    }
}
