//! `airlock-applier`: parse the command line, run it, map the outcome to an exit code.
fn main() -> std::process::ExitCode {
    airlock_applier::main(std::env::args_os()).into()
}
