//! `airlock-applier`: not built yet; its issue fills it. Until then it refuses to run
//! rather than pretend to work.

fn main() -> std::process::ExitCode {
    eprintln!("airlock-applier: error: this tool is not implemented in this version of airlock");
    eprintln!(
        "  what to do: use airlock-bundler verify to check bundles until airlock-applier ships"
    );
    std::process::ExitCode::from(1)
}
