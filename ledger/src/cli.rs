//! Command-line definitions (clap derive only; no logic here).

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Query, export, checkpoint and verify the hash-chained airlock ledger.
#[derive(Debug, Parser)]
#[command(name = "airlock-ledger", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: airlock_format::output::Verbosity,
    /// The ledger database (default: ledger.db in the profile's state_dir).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub db: Option<PathBuf>,
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

/// The ledger's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Walk the whole chain; report the first bad entry and why (exit 3 on any break).
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// List entries, oldest first, filtered.
    #[command(after_long_help = LOG_EXAMPLES)]
    Log(LogArgs),
    /// Show one entry in full.
    #[command(after_long_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Write the ledger as JSON Lines (entries plus the latest checkpoint) for auditors.
    #[command(after_long_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Sign the current head with the host key and record it as a checkpoint entry.
    #[command(after_long_help = CHECKPOINT_EXAMPLES)]
    Checkpoint(CheckpointArgs),
    /// Write one self-contained HTML page for auditors: chain status, activity,
    /// runs, each mitigation's history, refusals (exit 3 if the chain is broken;
    /// the page is written anyway).
    #[command(after_long_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
}

/// What an auditor holds to check the chain against (`verify` and `report`).
#[derive(Debug, Args)]
pub struct ProofArgs {
    /// Also prove that the ledger extends this checkpoint (its signature is FILE.minisig).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub checkpoint: Option<PathBuf>,
    /// The host's public key: checks every checkpoint signature (default with a
    /// database: host.pub beside it, if present).
    #[arg(long, value_name = "HOST.pub")]
    pub key: Option<PathBuf>,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify an export file instead of a database (needs no database).
    #[arg(long, value_name = "FILE", conflicts_with = "db")]
    pub export: Option<PathBuf>,
    #[command(flatten)]
    pub proof: ProofArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// A JSON array of entries (detail as an object).
    Json,
    /// RFC 4180 CSV with a header row (detail as JSON text).
    Csv,
}

/// `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Entries at or after T (RFC 3339, a date such as 2026-11-28, or an age such as 7d).
    #[arg(long, value_name = "T", value_parser = crate::commands::parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Entries at or before T (RFC 3339, a date: the whole day is included, or an age).
    #[arg(long, value_name = "T", value_parser = crate::commands::parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Only entries of this kind (for example mitigation.applied).
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// Only entries about this mitigation.
    #[arg(long, value_name = "ID")]
    pub mitigation: Option<String>,
    /// Only entries about this bundle.
    #[arg(long, value_name = "ID")]
    pub bundle: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The entry's sequence number.
    #[arg(value_parser = entry_number)]
    pub seq: u64,
    /// Print the entry as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the export (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `checkpoint`.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Also write the checkpoint to FILE and its signature to FILE.minisig.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The host's secret key (default: host.key beside the database).
    #[arg(long, value_name = "FILE")]
    pub host_key: Option<PathBuf>,
    #[command(flatten)]
    pub password: airlock_format::keys::PasswordSource,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the HTML page (written atomically; it loads nothing from
    /// anywhere, so it opens on an offline laptop).
    #[arg(long, value_name = "OUT.html")]
    pub html: PathBuf,
    #[command(flatten)]
    pub proof: ProofArgs,
    /// Also print the report's numbers as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An entry number: 1, 2, 3…
fn entry_number(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| "an entry number is 1, 2, 3…; airlock-ledger log lists them".into())
}

// Examples shown at the end of `--help` and as the EXAMPLES section of the man
// pages; every line that starts with the program name is parsed by the tests.

const VERIFY_EXAMPLES: &str = "Examples:
  # this host's ledger, checkpoints checked with host.pub beside it
  airlock-ledger verify
  # an auditor's copy, against the checkpoint they hold
  airlock-ledger verify --export lab01.jsonl --checkpoint lab01.cp --key lab01-host.pub";

const LOG_EXAMPLES: &str = "Examples:
  airlock-ledger log --since 7d
  airlock-ledger log --mitigation AM-2022-0002
  airlock-ledger log --kind bundle.rejected --format csv > refusals.csv";

const SHOW_EXAMPLES: &str = "Examples:
  airlock-ledger show 42
  airlock-ledger show 42 --json";

const EXPORT_EXAMPLES: &str = "Examples:
  airlock-ledger export --out /media/usb/lab01-2026-11-28.jsonl";

const CHECKPOINT_EXAMPLES: &str = "Examples:
  # writes lab01.cp and lab01.cp.minisig (minisign -Vm lab01.cp -p host.pub)
  airlock-ledger checkpoint --out /media/usb/lab01.cp";

const REPORT_EXAMPLES: &str = "Examples:
  airlock-ledger report --html /media/usb/lab01-report.html
  airlock-ledger report --html lab01.html --checkpoint lab01.cp --key lab01-host.pub";

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_in_the_help_parses() {
        let n = airlock_format::output::check_examples::<super::Cli>();
        assert!(n.as_ref().is_ok_and(|n| *n >= 5), "{n:?}");
    }
}
