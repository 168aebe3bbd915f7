//! The airlock bundler, the connected side: generate keys, publish a vendor feed,
//! fetch a feed into a cache that only ever holds verified content, build signed
//! bundles from that cache, and inspect or verify bundles. The bundler uses the
//! error type of the format crate ([`airlock_format::Error`]) so that every
//! failure maps to one exit code and carries a "what to do" hint.
#![forbid(unsafe_code)]

pub mod build;
pub mod cache;
pub mod cli;
pub mod fetch;
pub mod http;
pub mod inspect;
pub mod keygen;
pub mod publish;
pub mod source;

pub use airlock_format::{Error, Exit, Result};

use cli::{Cli, Command, FeedCommand};
use std::ffi::OsString;

/// Runs the bundler with `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Exit {
    let cli: Cli = match airlock_format::output::parse_args(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = cli.verbosity.output("airlock-bundler");
    let result = match cli.command {
        Command::Keygen(a) => keygen::run(&a, &out),
        Command::Feed(FeedCommand::Publish(a)) => publish::run(&a, &out),
        Command::Fetch(a) => fetch::run(&a, &out),
        Command::Build(a) => build::run(&a, &out),
        Command::Inspect(a) => inspect::run_inspect(&a, &out),
        Command::Verify(a) => inspect::run_verify(&a, &out),
    };
    out.finish(result)
}
