//! The applier's own command-line checks: version, usage errors (exit 2), and the
//! commands that are not built yet (approve, sync) being refused rather than
//! pretending to work.
//! (Being an integration test of this package also makes `cargo test --workspace`
//! build the `airlock-applier` binary that the end-to-end tests in `tests/` run.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn applier(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-applier"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help_exit_0() {
    let (code, out, _) = applier(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("airlock-applier "), "{out}");
    let (code, out, _) = applier(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("init") && out.contains("verify"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["verify"][..],
        &["init", "--no-such-flag"][..],
        &["-q", "-v", "init"][..],
    ] {
        let (code, _, err) = applier(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn changing_commands_need_their_arguments() {
    for args in [
        &["plan"][..],
        &["apply"][..],
        &["rollback"][..],
        &["rollback", "AM-1", "--all"][..],
    ] {
        let (code, _, err) = applier(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn apply_without_a_terminal_needs_yes_and_changes_nothing() {
    // Refused before the profile is even read: exit 2 with the reason.
    let (code, _, err) = applier(&["--profile", "/nonexistent/host.toml", "apply", "x.airlock"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no terminal to confirm on") && err.contains("run apply with --yes"),
        "{err}"
    );
}

#[test]
fn every_command_of_the_card_is_offered() {
    // Without their required arguments each is a usage error naming what is
    // missing, not an unknown command.
    for (cmd, missing) in [
        ("sync", "--inbox"),
        ("approve", "--key"),
        ("apply", "FILE.airlock"),
    ] {
        let (code, _, err) = applier(&[cmd]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(!err.contains("unrecognized subcommand"), "{cmd}: {err}");
        assert!(err.contains(missing), "{cmd}: {err}");
    }
}
