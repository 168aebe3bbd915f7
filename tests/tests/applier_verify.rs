//! `airlock-applier verify` through the real binaries: a bundle built by the bundler
//! from the samples verifies on an initialised host and is recorded in the ledger
//! as `bundle.verified`; a damaged bundle (exit 3) and a bundle for another channel
//! (exit 4) are refused and recorded as `bundle.rejected`; a host that was never
//! initialised is told to run init.
#![allow(clippy::unwrap_used)]

use airlock_tests::{Fixture, applier, ledger};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// An initialised host whose profile trusts the fixture's TEST-ONLY keys.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(f: &Fixture, channel: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("host.toml"),
            format!(
                "host = \"exch01\"\nstate_dir = \"{}\"\n\n[trust]\nrelease_keys = [\"{}\"]\nvendor_keys = [\"{}\"]\n\n[policy]\nchannel = \"{channel}\"\n",
                dir.path().join("state").display(),
                f.key("release.pub").display(),
                f.key("vendor.pub").display(),
            ),
        )
        .unwrap();
        Host { dir }
    }
    fn profile(&self) -> PathBuf {
        self.dir.path().join("host.toml")
    }
    fn applier(&self, args: &[&OsString]) -> airlock_tests::Run {
        let mut all: Vec<OsString> = vec!["--profile".into(), self.profile().into()];
        all.extend(args.iter().map(|a| (*a).clone()));
        applier(all)
    }
    fn verify(&self, bundle: &Path) -> airlock_tests::Run {
        self.applier(&[&"verify".into(), &bundle.into()])
    }
    /// The ledger's entries of `kind`, as JSON.
    fn entries(&self, kind: &str) -> Vec<serde_json::Value> {
        let r = ledger([
            "--profile".as_ref(),
            self.profile().as_os_str(),
            "log".as_ref(),
            "--kind".as_ref(),
            kind.as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ])
        .expect(0);
        serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout).unwrap()
    }
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
    let h = Host::new(&f, "prod");
    h.applier(&[&"init".into()]).expect(0);

    let r = h.verify(&bundle).expect(0);
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
    let v = h.entries("bundle.verified");
    assert_eq!(v.len(), 1);
    let j = h
        .applier(&[&"verify".into(), &bundle.clone().into(), &"--json".into()])
        .expect(0);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v[0]["bundle"], j["id"], "the entry names the bundle id");
    assert_eq!(v[0]["detail"]["channel"], "prod");
    assert_eq!(
        v[0]["detail"]["mitigations"],
        j["mitigations"].as_array().unwrap().len()
    );
    assert_eq!(h.entries("bundle.verified").len(), 2);
    ledger([
        "--profile".as_ref(),
        h.profile().as_os_str(),
        "verify".as_ref(),
    ])
    .expect(0);
}

#[test]
fn refusals_are_recorded_with_their_reason() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let good = built(&f, "good.airlock", &[]);
    let h = Host::new(&f, "prod");
    h.applier(&[&"init".into()]).expect(0);

    // One byte of the payload changed: verification fails (exit 3).
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() - 2048;
    bytes[at] ^= 0x01;
    let damaged = f.path("damaged.airlock");
    std::fs::write(&damaged, bytes).unwrap();
    let r = h.verify(&damaged).expect(3);
    assert!(r.stderr.contains("what to do:"), "{}", r.stderr);
    let rejected = h.entries("bundle.rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["detail"]["exit"], 3);
    assert_eq!(
        rejected[0]["bundle"],
        serde_json::Value::Null,
        "an unverified id is not recorded"
    );

    // A bundle for another channel: refused by policy (exit 4), its id recorded.
    let other = built(&f, "test.airlock", &["--channel", "test"]);
    let r = h.verify(&other).expect(4);
    assert!(
        r.stderr
            .contains("it is for channel test, and this host takes channel prod"),
        "{}",
        r.stderr
    );
    let rejected = h.entries("bundle.rejected");
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
    let r = h.verify(&old).expect(4);
    assert!(
        r.stderr.contains("expired at 2020-01-02T00:00:00Z"),
        "{}",
        r.stderr
    );
    assert_eq!(h.entries("bundle.rejected").len(), 3);
    assert_eq!(h.entries("bundle.verified").len(), 0);
    ledger([
        "--profile".as_ref(),
        h.profile().as_os_str(),
        "verify".as_ref(),
    ])
    .expect(0);
}

#[test]
fn a_host_that_was_never_initialised_is_told_to_run_init() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = built(&f, "good.airlock", &[]);
    let h = Host::new(&f, "prod");
    let r = h.verify(&bundle).expect(1);
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
