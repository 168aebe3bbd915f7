//! Command-line definitions (clap derive only; no logic here).

use airlock_format::keys::PasswordSource;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Fetch vendor-signed mitigations, check every signature, and pack them into one
/// signed .airlock bundle to carry over the air gap.
#[derive(Debug, Parser)]
#[command(name = "airlock-bundler", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: airlock_format::output::Verbosity,
    #[command(subcommand)]
    pub command: Command,
}

/// The bundler's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a minisign key pair: DIR/ROLE.pub and DIR/ROLE.key (mode 0600).
    #[command(after_long_help = KEYGEN_EXAMPLES)]
    Keygen(KeygenArgs),
    /// Vendor side: publish a feed directory.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Fetch a vendor feed into a local verified cache.
    #[command(after_long_help = FETCH_EXAMPLES)]
    Fetch(FetchArgs),
    /// Build a signed bundle from the verified cache.
    #[command(after_long_help = BUILD_EXAMPLES)]
    Build(BuildArgs),
    /// Show what a bundle claims to contain, without checking signatures.
    #[command(after_long_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Check a bundle completely: release signature, every size and hash, every vendor signature.
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
}

/// Key roles (design card §2).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    /// Signs the feed index and each mitigation document.
    Vendor,
    /// Signs bundle manifests.
    Release,
    /// Signs change-control approvals of a plan.
    Approver,
    /// Signs ledger checkpoints.
    Host,
}

/// `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Which role the key is for (names the files).
    #[arg(long, value_enum)]
    pub role: Role,
    /// Directory to write ROLE.pub and ROLE.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Leave the secret key unencrypted (for automation and tests).
    #[arg(long)]
    pub no_password: bool,
    #[command(flatten)]
    pub password: PasswordSource,
    /// Print the result as JSON (the key id and both paths; never the secret key).
    #[arg(long)]
    pub json: bool,
}

/// `feed ...`.
#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Validate DIR/mitigations/*.xml, sign each, and write DIR/feed.xml and its signature.
    #[command(after_long_help = FEED_EXAMPLES)]
    Publish(PublishArgs),
}

/// `feed publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The feed directory (documents in DIR/mitigations/ID.xml).
    pub dir: PathBuf,
    /// Vendor secret key.
    #[arg(long, value_name = "VENDOR.key")]
    pub key: PathBuf,
    /// How long the feed stays valid (duration like 7d, or an RFC 3339 time).
    #[arg(long, default_value = "7d")]
    pub expires: String,
    /// Withdraw this mitigation id (repeatable).
    #[arg(long, value_name = "ID")]
    pub retire: Vec<String>,
    /// Publisher name written into the feed.
    #[arg(long, default_value = "airlock sample vendor")]
    pub publisher: String,
    /// Generation time (RFC 3339; default now).
    #[arg(long, value_name = "RFC3339")]
    pub generated: Option<String>,
    #[command(flatten)]
    pub password: PasswordSource,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The feed: an https:// URL of the vendor's feed directory (or of its feed.xml), or a local directory.
    #[arg(value_name = "URL|DIR")]
    pub source: std::ffi::OsString,
    /// The vendor's public key; the feed and every document must be signed by it.
    #[arg(long, value_name = "PUB")]
    pub vendor_key: PathBuf,
    /// The local verified cache directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub cache: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow plain http:// to a host that is not loopback.
    #[arg(long)]
    pub allow_http: bool,
    /// Trust only the CA certificates in this PEM file for https:// (default: the system's trust store).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Give up connecting (DNS, TCP, proxy, TLS) after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub connect_timeout: Duration,
    /// Give up when the server sends nothing for this many seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds)]
    pub read_timeout: Duration,
    /// Give up on one request (body included) after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Try again this many times after a 5xx, 408, 429 or dropped connection (backoff from 0.25 s, doubling).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,
    /// Download and check up to N documents at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
}

/// Parses a positive number of seconds, decimals allowed (at most a day).
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0 and 86400"
        )),
    }
}

/// `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The verified cache filled by `fetch`.
    #[arg(long, value_name = "DIR")]
    pub cache: PathBuf,
    /// Release secret key that signs the manifest.
    #[arg(long, value_name = "RELEASE.key")]
    pub key: PathBuf,
    /// Release channel, e.g. prod.
    #[arg(long)]
    pub channel: String,
    /// Sequence number (default: one more than the last bundle built from this cache for the channel).
    #[arg(long)]
    pub seq: Option<u64>,
    /// Creation time (RFC 3339; default now). The same inputs and time give the same bytes.
    #[arg(long, value_name = "RFC3339")]
    pub created: Option<String>,
    /// Expiry: a duration after --created (like 30d) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    pub expires: String,
    /// Carry this file as an attachment (repeatable).
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Only include this mitigation id (repeatable).
    #[arg(long, value_name = "ID")]
    pub include: Vec<String>,
    /// Leave out this mitigation id (repeatable).
    #[arg(long, value_name = "ID")]
    pub exclude: Vec<String>,
    /// Also write FILE.minisig, a whole-file signature that stock `minisign -V` checks.
    #[arg(long)]
    pub detached_sig: bool,
    /// Where to write the bundle.
    #[arg(long, value_name = "FILE.airlock")]
    pub out: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub password: PasswordSource,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle.
    pub file: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle.
    pub file: PathBuf,
    /// Trusted release public key (repeatable).
    #[arg(long, value_name = "PUB", required = true)]
    pub release_key: Vec<PathBuf>,
    /// Trusted vendor public key (repeatable).
    #[arg(long, value_name = "PUB", required = true)]
    pub vendor_key: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

// Examples shown at the end of `--help` and as the EXAMPLES section of the man
// pages; every line that starts with the program name is parsed by the tests.

const KEYGEN_EXAMPLES: &str = "Examples:
  # asks for the password twice; prints the key id for your register
  airlock-bundler keygen --role release --out ~/airlock-keys";

const FEED_EXAMPLES: &str = "Examples:
  airlock-bundler feed publish ./feed --key vendor.key --expires 7d
  airlock-bundler feed publish ./feed --key vendor.key --retire AM-2020-0007";

const FETCH_EXAMPLES: &str = "Examples:
  airlock-bundler fetch https://psirt.example/airlock/ --vendor-key vendor.pub --cache ~/cache
  # from a directory (a vendor DVD), or through a proxy
  airlock-bundler fetch /media/dvd/feed --vendor-key vendor.pub --cache ~/cache
  HTTPS_PROXY=http://proxy:3128 airlock-bundler fetch https://psirt.example/airlock/ \\
      --vendor-key vendor.pub --cache ~/cache";

const BUILD_EXAMPLES: &str = "Examples:
  airlock-bundler build --cache ~/cache --key ~/airlock-keys/release.key \\
      --channel prod --detached-sig --out /media/usb/2026-11-28.airlock
  # leave one mitigation out
  airlock-bundler build --cache ~/cache --key ~/airlock-keys/release.key \\
      --channel prod --exclude AM-2022-0002 --out /media/usb/2026-11-28.airlock";

const INSPECT_EXAMPLES: &str = "Examples:
  # what the bundle claims, UNVERIFIED: use verify before trusting any of it
  airlock-bundler inspect /media/usb/2026-11-28.airlock";

const VERIFY_EXAMPLES: &str = "Examples:
  airlock-bundler verify /media/usb/2026-11-28.airlock \\
      --release-key release.pub --vendor-key vendor.pub
  # the same file with stock minisign (a bundle built with --detached-sig)
  minisign -Vm /media/usb/2026-11-28.airlock -p release.pub";

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_in_the_help_parses() {
        let n = airlock_format::output::check_examples::<super::Cli>();
        assert!(n.as_ref().is_ok_and(|n| *n >= 5), "{n:?}");
    }
}
