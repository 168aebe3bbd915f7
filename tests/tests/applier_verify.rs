//! `airlock-applier verify` through the real binaries: a bundle built by the bundler
//! from the samples verifies on an initialised host and is recorded in the ledger
//! as `bundle.verified`; a damaged bundle (exit 3) and a bundle for another channel
//! (exit 4) are refused and recorded as `bundle.rejected`; a host that was never
//! initialised is told to run init.
#![allow(clippy::unwrap_used)]

use airlock_tests::{Fixture, Host};
use std::path::{Path, PathBuf};

fn verify(h: &Host, bundle: &Path) -> airlock_tests::Run {
    h.applier(&["verify".as_ref(), bundle.as_os_str()])
}

/// The ledger's entries of `kind`, as JSON.
fn entries(h: &Host, kind: &str) -> Vec<serde_json::Value> {
    let r = h
        .ledger(&["log", "--kind", kind, "--format", "json"])
        .expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

fn built(f: &Fixture, name: &str, extra: &[&str]) -> PathBuf {
    let out = f.path(name);
    f.build(&out, extra).expect(0);
    out
}

#[test]
fn a_good_bundle_is_verified_and_recorded() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = built(&f, "good.airlock", &[]);
    let h = Host::new("prod", Some(&f));
    h.applier(&["init"]).expect(0);

    let r = verify(&h, &bundle).expect(0);
    assert!(
        r.stdout
            .starts_with(&format!("verified {}: bundle ", bundle.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("recorded as ledger entry 2"),
        "{}",
        r.stdout
    );
    let v = entries(&h, "bundle.verified");
    assert_eq!(v.len(), 1);
    let j = h
        .applier(&["verify".as_ref(), bundle.as_os_str(), "--json".as_ref()])
        .expect(0);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v[0]["bundle"], j["id"], "the entry names the bundle id");
    assert_eq!(v[0]["detail"]["channel"], "prod");
    assert_eq!(
        v[0]["detail"]["mitigations"],
        j["mitigations"].as_array().unwrap().len()
    );
    assert_eq!(entries(&h, "bundle.verified").len(), 2);
    h.ledger(&["verify"]).expect(0);
}

#[test]
fn refusals_are_recorded_with_their_reason() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let good = built(&f, "good.airlock", &[]);
    let h = Host::new("prod", Some(&f));
    h.applier(&["init"]).expect(0);

    // One byte of the payload changed: verification fails (exit 3).
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() - 2048;
    bytes[at] ^= 0x01;
    let damaged = f.path("damaged.airlock");
    std::fs::write(&damaged, bytes).unwrap();
    let r = verify(&h, &damaged).expect(3);
    assert!(r.stderr.contains("what to do:"), "{}", r.stderr);
    let rejected = entries(&h, "bundle.rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["detail"]["exit"], 3);
    assert_eq!(
        rejected[0]["bundle"],
        serde_json::Value::Null,
        "an unverified id is not recorded"
    );

    // A bundle for another channel: refused by policy (exit 4), its id recorded.
    let other = built(&f, "test.airlock", &["--channel", "test"]);
    let r = verify(&h, &other).expect(4);
    assert!(
        r.stderr
            .contains("it is for channel test, and this host takes channel prod"),
        "{}",
        r.stderr
    );
    let rejected = entries(&h, "bundle.rejected");
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[1]["detail"]["exit"], 4);
    assert!(
        rejected[1]["bundle"]
            .as_str()
            .is_some_and(|id| id.len() == 32)
    );

    // An expired bundle: refused by policy (exit 4).
    let old = built(
        &f,
        "old.airlock",
        &["--created", "2020-01-01T00:00:00Z", "--expires", "1d"],
    );
    let r = verify(&h, &old).expect(4);
    assert!(
        r.stderr.contains("expired at 2020-01-02T00:00:00Z"),
        "{}",
        r.stderr
    );
    assert_eq!(entries(&h, "bundle.rejected").len(), 3);
    assert_eq!(entries(&h, "bundle.verified").len(), 0);
    h.ledger(&["verify"]).expect(0);
}

#[test]
fn a_host_that_was_never_initialised_is_told_to_run_init() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = built(&f, "good.airlock", &[]);
    let h = Host::new("prod", Some(&f));
    let r = verify(&h, &bundle).expect(1);
    assert!(
        r.stderr.contains("this host has not been initialised"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("run airlock-applier init"),
        "{}",
        r.stderr
    );
    assert!(!h.dir.path().join("state").exists(), "verify created state");
}
