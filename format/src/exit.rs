//! The one exit-code table shared by all three airlock binaries (design card §9).

use std::process::ExitCode;

/// How an airlock command ended. The numeric values are part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Success = 0,
    /// 1: operational error (I/O, bad config, missing file).
    Operational = 1,
    /// 2: usage error (bad arguments).
    Usage = 2,
    /// 3: verification failed (signature, hash, size, malformed or hostile input).
    Verification = 3,
    /// 4: refused by policy (rollback, expired, wrong channel, blocked, approvals, drift, clock).
    Policy = 4,
    /// 5: apply failed; this run's changes were rolled back.
    ApplyFailed = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
