//! Command-line definitions (clap derive only; no logic here).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Check signed mitigation bundles again on an isolated server, apply them, and
/// record every step in the host's ledger.
#[derive(Debug, Parser)]
#[command(name = "airlock-applier", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: airlock_format::output::Verbosity,
    /// Host profile (default: $AIRLOCK_PROFILE, else /etc/airlock/host.toml).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub profile: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The applier's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare this host: state_dir (0700), the host key pair (host.key 0600,
    /// host.pub) and the ledger (ledger.db). Safe to run again.
    #[command(after_long_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Check a bundle completely (release and vendor signatures, every size and
    /// SHA-256, channel, expiry) and record the outcome in the ledger.
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Show what applying a bundle would do, per mitigation and why, with the
    /// diff of every file; changes nothing on the host.
    #[command(after_long_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Apply a bundle: all-or-nothing, every file written atomically, every step
    /// in the ledger, ending with a checkpoint.
    #[command(after_long_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Sign a plan file as an approver (change-control sign-off for `apply --approval`).
    #[command(after_long_help = APPROVE_EXAMPLES)]
    Approve(ApproveArgs),
    /// Show the applied mitigations and any drift of the files and units airlock
    /// manages.
    #[command(after_long_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Take mitigations off this host, restoring every pre-image.
    #[command(after_long_help = ROLLBACK_EXAMPLES)]
    Rollback(RollbackArgs),
    /// Take the newest valid bundle in a directory (a USB mount, a share) and
    /// apply it, for a systemd timer: files judged before are passed over, so an
    /// inbox with nothing new changes and records nothing.
    #[command(after_long_help = SYNC_EXAMPLES)]
    Sync(SyncArgs),
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle.
    #[arg(value_name = "FILE.airlock")]
    pub file: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The bundle.
    #[arg(value_name = "FILE.airlock")]
    pub file: PathBuf,
    /// Also write the plan (with its hash) to this file.
    #[arg(long, value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Plan a bundle older than one already accepted on this channel (an emergency
    /// downgrade; applying it needs at least one approval).
    #[arg(long)]
    pub allow_downgrade: bool,
}

/// `approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The plan file written by `plan --out`.
    #[arg(value_name = "PLAN.json")]
    pub plan: PathBuf,
    /// The approver's secret key.
    #[arg(long, value_name = "APPROVER.key")]
    pub key: PathBuf,
    /// The change ticket this approval belongs to (recorded in the ledger).
    #[arg(long, value_name = "ID")]
    pub ticket: Option<String>,
    /// Where to write the approval (default PLAN.json.KEYID.approval).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub password: airlock_format::keys::PasswordSource,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The bundle.
    #[arg(value_name = "FILE.airlock")]
    pub file: PathBuf,
    /// Do not ask for confirmation (required when not on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Overwrite managed files and units that were changed outside airlock.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON (implies no prompt; needs --yes).
    #[arg(long)]
    pub json: bool,
    /// An approval of this plan (repeatable); the profile's approvals_required sets how many.
    #[arg(long, value_name = "FILE")]
    pub approval: Vec<PathBuf>,
    /// Apply a bundle older than one already accepted on this channel (an
    /// emergency downgrade; needs at least one approval, and is recorded).
    #[arg(long)]
    pub allow_downgrade: bool,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Mitigation ids to take off.
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub ids: Vec<String>,
    /// Take off every applied mitigation.
    #[arg(long)]
    pub all: bool,
    /// Roll back even over changes made outside airlock (they are lost).
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The directory to take bundles (`*.airlock`) and approvals (`*.approval`)
    /// from; sync never writes into it.
    #[arg(long, value_name = "DIR")]
    pub inbox: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

// Examples shown at the end of `--help` and as the EXAMPLES section of the man
// pages; every line that starts with the program name is parsed by the tests.

const INIT_EXAMPLES: &str = "Examples:
  airlock-applier init
  airlock-applier --profile /etc/airlock/lab.toml init";

const VERIFY_EXAMPLES: &str = "Examples:
  airlock-applier verify /media/usb/2026-11-28.airlock";

const PLAN_EXAMPLES: &str = "Examples:
  airlock-applier plan /media/usb/2026-11-28.airlock
  # a plan file for the approvers (airlock-applier approve)
  airlock-applier plan /media/usb/2026-11-28.airlock --out chg-4711.plan.json";

const APPLY_EXAMPLES: &str = "Examples:
  # shows the plan, then asks
  airlock-applier apply /media/usb/2026-11-28.airlock
  # unattended, with the approvals the change board signed
  airlock-applier apply /media/usb/2026-11-28.airlock --yes \\
      --approval alice.approval --approval bob.approval";

const APPROVE_EXAMPLES: &str = "Examples:
  airlock-applier approve chg-4711.plan.json --key ~/approver.key --ticket CHG-4711";

const STATUS_EXAMPLES: &str = "Examples:
  # DRIFT lines name what was changed outside airlock
  airlock-applier status
  airlock-applier status --json";

const ROLLBACK_EXAMPLES: &str = "Examples:
  # held: later bundles skip it until a newer revision arrives
  airlock-applier rollback AM-2022-0002
  airlock-applier rollback --all";

const SYNC_EXAMPLES: &str = "Examples:
  # what airlock-sync.service runs
  airlock-applier sync --inbox /var/lib/airlock/inbox
  airlock-applier sync --inbox /media/airlock --json";

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_in_the_help_parses() {
        let n = airlock_format::output::check_examples::<super::Cli>();
        assert!(n.as_ref().is_ok_and(|n| *n >= 5), "{n:?}");
    }
}
