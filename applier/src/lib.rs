//! The airlock applier, the isolated-server side. This version has `init`, which
//! prepares a host (state directory, host key, ledger) from its profile, and
//! `verify`, which checks a bundle and records the outcome in the ledger. The rest
//! of the card's commands (plan, approve, apply, status, rollback, sync) are issue 4
//! onwards, and are not offered until they work.
#![forbid(unsafe_code)]

pub mod cli;
pub mod error;
pub mod init;
pub mod verify;

pub use error::{Error, Result};

use airlock_format::Exit;
use airlock_format::output::Output;
use clap::Parser;
use cli::{Cli, Command};
use std::ffi::OsString;

/// Runs the applier with `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Exit {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
            let _ = e.print();
            return code;
        }
    };
    let out = Output::new("airlock-applier", cli.quiet, cli.verbose);
    let result = match &cli.command {
        Command::Init(a) => init::run(cli.profile.as_deref(), a, &out),
        Command::Verify(a) => verify::run(cli.profile.as_deref(), a, &out),
    };
    out.finish(result)
}
