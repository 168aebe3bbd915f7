//! `airlock-applier init` through the real binary: it prepares a host from its
//! profile (state_dir 0700, host.key 0600, host.pub, a ledger that verifies), is
//! safe to run again, and refuses a partial or mismatched state without changing it.
#![allow(clippy::unwrap_used)]

use airlock_tests::{Host, applier};
use std::path::Path;

fn init(h: &Host) -> airlock_tests::Run {
    h.applier(&["init"])
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn snapshot(h: &Host) -> Vec<(String, Vec<u8>)> {
    ["host.key", "host.pub", "ledger.db"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(h.state(n)).unwrap_or_default()))
        .collect()
}

#[test]
fn init_prepares_a_host_whose_ledger_verifies() {
    let h = Host::new("prod", None);
    let r = init(&h).expect(0);
    assert!(
        r.stdout.starts_with("initialised host exch01 in "),
        "{}",
        r.stdout
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&h.state("")), 0o700);
        assert_eq!(mode(&h.state("host.key")), 0o600);
    }
    let key = std::fs::read_to_string(h.state("host.key")).unwrap();
    assert!(
        !r.stdout.contains(key.lines().nth(1).unwrap()),
        "the secret key was printed"
    );

    let v = h.ledger(&["verify", "--json"]).expect(0);
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(report["entries"], 1);
    assert_eq!(report["host"], "exch01");
    assert_eq!(
        report["signatures_checked"], true,
        "host.pub beside the ledger is used"
    );

    // A checkpoint signed with the key init made verifies against host.pub.
    h.ledger(&["checkpoint"]).expect(0);
    h.ledger(&["verify"]).expect(0);
}

#[test]
fn init_again_changes_nothing() {
    let h = Host::new("prod", None);
    init(&h).expect(0);
    let before = snapshot(&h);
    let r = init(&h).expect(0);
    assert!(r.stdout.contains("already initialised"), "{}", r.stdout);
    let j = h.applier(&["init", "--json"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(
        (v["created"].clone(), v["entries"].clone()),
        (false.into(), 1.into())
    );
    assert_eq!(snapshot(&h), before);
}

#[test]
fn a_partial_or_mismatched_state_is_refused_and_left_alone() {
    // A lost ledger is never replaced by a new one.
    let h = Host::new("prod", None);
    init(&h).expect(0);
    std::fs::remove_file(h.state("ledger.db")).unwrap();
    let before = snapshot(&h);
    let r = init(&h).expect(1);
    assert!(
        r.stderr
            .contains("it holds host.key, host.pub but not ledger.db"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("what to do:"), "{}", r.stderr);
    assert_eq!(snapshot(&h), before);

    // A host key swapped for another one.
    let h = Host::new("prod", None);
    init(&h).expect(0);
    let other = Host::new("prod", None);
    init(&other).expect(0);
    for f in ["host.key", "host.pub"] {
        std::fs::copy(other.state(f), h.state(f)).unwrap();
    }
    let r = init(&h).expect(1);
    assert!(
        r.stderr
            .contains("the ledger's checkpoints are signed by key"),
        "{}",
        r.stderr
    );

    // The profile names another host than the ledger's.
    let h = Host::new("prod", None);
    init(&h).expect(0);
    let text = std::fs::read_to_string(h.profile()).unwrap();
    std::fs::write(h.profile(), text.replace("exch01", "exch02")).unwrap();
    let r = init(&h).expect(1);
    assert!(
        r.stderr.contains("the ledger belongs to host exch01"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bad_profile_is_named_and_nothing_is_created() {
    let h = Host::new("prod", None);
    std::fs::write(h.profile(), "host = \"exch01\"\nstate_dir = \"relative\"\n").unwrap();
    let r = init(&h).expect(1);
    assert!(r.stderr.contains("host.toml"), "{}", r.stderr);
    assert!(!h.dir.path().join("relative").exists());
    let r = applier(["--profile", "/nonexistent/host.toml", "init"]).expect(1);
    assert!(r.stderr.contains("/nonexistent/host.toml"), "{}", r.stderr);
}
