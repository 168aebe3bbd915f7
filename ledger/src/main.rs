//! `airlock-ledger`: not built yet; its issue fills it. Until then it refuses to run
//! rather than pretend to work.

fn main() -> std::process::ExitCode {
    eprintln!("airlock-ledger: error: this tool is not implemented in this version of airlock");
    eprintln!(
        "  what to do: use airlock-bundler verify to check bundles until airlock-ledger ships"
    );
    std::process::ExitCode::from(1)
}
