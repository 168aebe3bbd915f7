//! End-to-end: publish -> fetch -> build -> inspect -> verify through the real
//! `airlock-bundler` binary, for the shipped samples and for 1,000 documents.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, bundler, mitigation_xml};

#[test]
fn samples_publish_fetch_build_inspect_verify() {
    let f = Fixture::samples();
    let fetched = f.fetch().expect(0);
    assert!(
        fetched
            .stdout
            .contains("8 new, 0 updated, 0 unchanged, 1 retired"),
        "{}",
        fetched.stdout
    );

    let out = f.path("samples.airlock");
    let built = f.build(&out, &["--detached-sig"]).expect(0);
    assert!(
        built.stdout.contains("channel prod, seq 1"),
        "{}",
        built.stdout
    );
    assert!(f.path("samples.airlock.minisig").exists());

    let inspected = bundler(["inspect".as_ref(), out.as_os_str()]).expect(0);
    assert!(inspected.stdout.contains("UNVERIFIED"));
    assert!(inspected.stdout.contains("AM-2021-0001"));
    assert!(inspected.stdout.contains("retired: AM-2020-0007"));
    let json = bundler(["inspect".as_ref(), out.as_os_str(), "--json".as_ref()]).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["manifest"]["mitigations"].as_array().unwrap().len(), 8);
    assert_eq!(v["manifest"]["retired"][0], "AM-2020-0007");

    let verified = f.verify(&out).expect(0);
    assert!(
        verified
            .stdout
            .contains("8 mitigations with valid vendor signatures"),
        "{}",
        verified.stdout
    );

    // A second bundle on the same channel gets the next sequence number.
    let second = f.path("second.airlock");
    f.build(&second, &[]).expect(0);
    let v: serde_json::Value = serde_json::from_str(
        &bundler(["inspect".as_ref(), second.as_os_str(), "--json".as_ref()])
            .expect(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(v["manifest"]["seq"], 2);
}

#[test]
fn second_fetch_reports_unchanged_updated_and_retired() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let again = f.fetch().expect(0);
    assert!(
        again.stdout.contains("0 new, 0 updated, 8 unchanged"),
        "{}",
        again.stdout
    );

    // The vendor ships revision 4 of one document and retires another.
    f.set_revision("AM-2021-0003", 3, 4);
    std::fs::remove_file(f.feed().join("mitigations/AM-2024-0001.xml")).unwrap();
    f.publish(&["--retire", "AM-2020-0007", "--retire", "AM-2024-0001"]);
    let r = bundler([
        "fetch".as_ref(),
        f.feed().as_os_str(),
        "--vendor-key".as_ref(),
        f.key("vendor.pub").as_os_str(),
        "--cache".as_ref(),
        f.cache().as_os_str(),
        "--json".as_ref(),
    ])
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["updated"], serde_json::json!(["AM-2021-0003"]));
    // Only what this feed newly withdraws: AM-2020-0007 was retired already.
    assert_eq!(v["retired"], serde_json::json!(["AM-2024-0001"]));
    assert_eq!(v["dropped"], serde_json::json!([]));
    assert_eq!(v["http"], serde_json::Value::Null);
    assert_eq!(v["unchanged"].as_array().unwrap().len(), 6);
}

#[test]
fn same_inputs_and_created_time_give_identical_bytes() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let att = f.path("rulepack.bin");
    std::fs::write(
        &att,
        (0..300_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let fixed = [
        "--seq",
        "7",
        "--created",
        "2026-11-28T08:00:00Z",
        "--expires",
        "30d",
        "--attach",
        att.to_str().unwrap(),
    ];
    let (a, b) = (f.path("a.airlock"), f.path("b.airlock"));
    f.build(&a, &fixed).expect(0);
    f.build(&b, &fixed).expect(0);
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let first_diff = ba.iter().zip(&bb).position(|(x, y)| x != y);
    assert!(
        ba == bb,
        "two builds from the same inputs differ (lengths {} and {}, first difference at {first_diff:?})",
        ba.len(),
        bb.len()
    );
    f.verify(&a).expect(0);

    // A different creation time gives a different bundle id.
    let c = f.path("c.airlock");
    f.build(&c, &["--seq", "7", "--created", "2026-11-28T08:00:01Z"])
        .expect(0);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
}

#[test]
fn sequence_numbers_only_grow_per_channel() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    f.build(&f.path("a.airlock"), &["--seq", "5"]).expect(0);
    let lower = f.build(&f.path("b.airlock"), &["--seq", "4"]).expect(4);
    assert!(
        lower.stderr.contains("already has bundle sequence 5"),
        "{}",
        lower.stderr
    );
    assert!(
        lower.stderr.contains("what to do: use --seq 6 or higher"),
        "{}",
        lower.stderr
    );
    assert!(!f.path("b.airlock").exists());
    f.build(&f.path("c.airlock"), &["--channel", "staging"])
        .expect(0);
    let next = bundler([
        "inspect".as_ref(),
        f.path("c.airlock").as_os_str(),
        "--json".as_ref(),
    ])
    .expect(0);
    assert!(
        next.stdout.contains("\"seq\": 1"),
        "another channel has its own sequence: {}",
        next.stdout
    );
}

#[test]
fn include_exclude_expires_and_attachments() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let out = f.path("sel.airlock");
    let att = f.path("installer.bin");
    std::fs::write(&att, b"not executed by airlock").unwrap();
    f.build(
        &out,
        &[
            "--include",
            "AM-2021-0001",
            "--include",
            "AM-2021-0002",
            "--exclude",
            "AM-2021-0002",
            "--attach",
            att.to_str().unwrap(),
            "--expires",
            "2h",
        ],
    )
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(
        &bundler(["inspect".as_ref(), out.as_os_str(), "--json".as_ref()])
            .expect(0)
            .stdout,
    )
    .unwrap();
    let ids: Vec<&str> = v["manifest"]["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["AM-2021-0001"]);
    assert_eq!(v["manifest"]["attachments"][0]["name"], "installer.bin");
    let created =
        chrono::DateTime::parse_from_rfc3339(v["manifest"]["created"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(v["manifest"]["expires"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 7200);
    f.verify(&out).expect(0);

    let unknown = f
        .build(&f.path("x.airlock"), &["--include", "AM-9999-0001"])
        .expect(1);
    assert!(
        unknown.stderr.contains("not in the cached feed"),
        "{}",
        unknown.stderr
    );

    // An already expired bundle verifies cryptographically but is refused by policy.
    let old = f.path("old.airlock");
    let built = f
        .build(
            &old,
            &["--created", "2020-01-01T00:00:00Z", "--expires", "1d"],
        )
        .expect(0);
    assert!(
        built.stderr.contains(
            "warning: this bundle expired at 2020-01-02T00:00:00Z, before it was built: every applier will refuse it"
        ),
        "{}",
        built.stderr
    );
    let r = f.verify(&old).expect(4);
    assert!(
        r.stderr.contains("expired at 2020-01-02T00:00:00Z"),
        "{}",
        r.stderr
    );

    // An expiry not after the creation time is a usage error; nothing is written.
    let never = f.path("never.airlock");
    let r = f
        .build(
            &never,
            &[
                "--created",
                "2030-01-01T00:00:00Z",
                "--expires",
                "2029-12-31T00:00:00Z",
            ],
        )
        .expect(2);
    assert!(
        r.stderr.contains("is not after the creation time"),
        "{}",
        r.stderr
    );
    assert!(!never.exists());
    // A fraction of a second would end up in the manifest but not in its signed
    // comment: refused before anything is written.
    for extra in [
        ["--created", "2030-01-01T00:00:00.5Z"],
        ["--expires", "2030-01-01T00:00:00.5Z"],
    ] {
        let r = f.build(&never, &extra).expect(1);
        assert!(r.stderr.contains("whole seconds"), "{}", r.stderr);
        assert!(!never.exists());
    }
}

#[test]
fn a_feed_of_1000_documents() {
    let f = Fixture::empty();
    let mdir = f.feed().join("mitigations");
    for i in 1..=1000 {
        let id = format!("AM-GEN-{i:04}");
        std::fs::write(
            mdir.join(format!("{id}.xml")),
            mitigation_xml(&id, 1 + i % 5),
        )
        .unwrap();
    }
    f.publish(&[]);
    let r = f.fetch().expect(0);
    assert!(r.stdout.contains("1000 new"), "{}", r.stdout);
    let out = f.path("big.airlock");
    f.build(&out, &[]).expect(0);
    let v = f.verify(&out).expect(0);
    assert!(
        v.stdout
            .contains("1000 mitigations with valid vendor signatures"),
        "{}",
        v.stdout
    );
}

#[test]
fn expired_feed_is_refused_at_fetch() {
    let f = Fixture::samples();
    f.publish(&["--generated", "2020-01-01T00:00:00Z", "--expires", "7d"]);
    let r = f.fetch().expect(3);
    assert!(
        r.stderr.contains("expired at 2020-01-08T00:00:00Z"),
        "{}",
        r.stderr
    );
    assert!(
        !f.cache().join("feed.xml").exists(),
        "nothing committed to the cache"
    );
}

#[test]
fn usage_errors_exit_2() {
    let r = bundler(["build", "--cache"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = bundler(["frobnicate"]);
    assert_eq!(r.code, 2);
    assert_eq!(bundler(["--help"]).code, 0);
}

#[test]
fn a_damaged_cache_is_caught_by_build_and_repaired_by_fetch() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let objects = f.cache().join("objects");
    let victim = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "xml"))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&victim, &bytes).unwrap();
    let r = f.build(&f.path("x.airlock"), &[]).expect(3);
    assert!(
        r.stderr.contains("SHA-256 does not match the feed"),
        "{}",
        r.stderr
    );
    assert!(!f.path("x.airlock").exists());
    f.fetch().expect(0);
    f.build(&f.path("y.airlock"), &[]).expect(0);
    f.verify(&f.path("y.airlock")).expect(0);
}

#[test]
fn build_refuses_a_cached_document_whose_signature_no_longer_verifies() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let sigs: Vec<_> = std::fs::read_dir(f.cache().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".minisig"))
        .collect();
    // The document bytes still match the feed, but its signature is another document's.
    std::fs::copy(&sigs[0], &sigs[1]).unwrap();
    let out = f.path("x.airlock");
    let r = f.build(&out, &[]).expect(3);
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
    assert!(!out.exists(), "no bundle is left behind");
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".airlock-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
