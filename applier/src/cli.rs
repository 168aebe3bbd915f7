//! Command-line definitions (clap derive only; no logic here).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Check signed mitigation bundles again on an isolated server, apply them, and
/// record every step in the host's ledger.
#[derive(Debug, Parser)]
#[command(name = "airlock-applier", version, about, max_term_width = 100)]
pub struct Cli {
    /// Print only errors (and JSON when asked for).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Host profile (default: $AIRLOCK_PROFILE, else /etc/airlock/host.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The applier's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare this host: state_dir (0700), the host key pair (host.key 0600,
    /// host.pub) and the ledger (ledger.db). Safe to run again.
    Init(InitArgs),
    /// Check a bundle completely (release and vendor signatures, every size and
    /// SHA-256, channel, expiry) and record the outcome in the ledger.
    Verify(VerifyArgs),
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
