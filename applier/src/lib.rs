//! The airlock applier, the isolated-server side: `init` prepares a host (state
//! directory, host key, ledger), `verify` checks a bundle, `plan` shows what it
//! would change, `apply` changes the host all-or-nothing, `status` shows what is
//! applied and what drifted, `rollback` takes mitigations off, `approve` signs a
//! plan for change control, `sync` applies the newest valid bundle of an inbox
//! (for a timer). Every step is in the ledger.
#![forbid(unsafe_code)]

pub mod apply;
pub mod approval;
pub mod cli;
pub mod config_edit;
pub mod desired;
pub mod engine;
pub mod error;
pub mod init;
pub mod plan;
pub mod policy;
pub mod render;
pub mod rollback;
pub mod root;
pub mod session;
pub mod state;
pub mod status;
pub mod sync;
pub mod systemd;
pub mod verify;
pub mod web;

pub use error::{Error, Result};

use airlock_format::Exit;
use cli::{Cli, Command};
use std::ffi::OsString;

/// Runs the applier with `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Exit {
    let cli: Cli = match airlock_format::output::parse_args(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = cli.verbosity.output("airlock-applier");
    let result = match &cli.command {
        Command::Init(a) => init::run(cli.profile.as_deref(), a, &out),
        Command::Verify(a) => verify::run(cli.profile.as_deref(), a, &out),
        Command::Plan(a) => apply::run_plan(cli.profile.as_deref(), a, &out),
        Command::Apply(a) => apply::run_apply(cli.profile.as_deref(), a, &out),
        Command::Approve(a) => approval::run(a, &out),
        Command::Status(a) => status::run(cli.profile.as_deref(), a, &out),
        Command::Rollback(a) => rollback::run(cli.profile.as_deref(), a, &out),
        Command::Sync(a) => sync::run(cli.profile.as_deref(), a, &out),
    };
    out.finish(result)
}
