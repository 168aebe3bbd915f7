//! Interop with the stock `minisign` tool, both ways. These tests need Debian's
//! `minisign`: they print SKIPPED without it on a developer machine and fail under
//! `CI=true` (where `.ci/run` installs it).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, bundler, require_tool, run};
use std::path::Path;
use std::process::Command;

fn minisign(args: &[&std::ffi::OsStr]) -> airlock_tests::Run {
    run(Command::new("minisign")
        .args(args)
        .stdin(std::process::Stdio::null()))
}

fn stock_keypair(dir: &Path, name: &str) {
    let (p, s) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&s);
    minisign(&[
        "-G".as_ref(),
        "-W".as_ref(),
        "-p".as_ref(),
        p.as_os_str(),
        "-s".as_ref(),
        s.as_os_str(),
    ])
    .expect(0);
}

fn stock_sign(key: &Path, file: &Path, extra: &[&str]) {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-S".as_ref(),
        "-s".as_ref(),
        key.as_os_str(),
        "-m".as_ref(),
        file.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    minisign(&args).expect(0);
}

/// Keys made by `minisign -G` work as vendor and release keys; documents and the
/// feed signed by `minisign -S` are accepted; the manifest signature and the
/// detached whole-file signature verify with `minisign -V`.
#[test]
fn stock_minisign_keys_and_signatures_work_both_ways() {
    if !require_tool(
        "minisign",
        "stock_minisign_keys_and_signatures_work_both_ways",
    ) {
        return;
    }
    let f = Fixture::samples();
    stock_keypair(&f.path("keys"), "vendor");
    stock_keypair(&f.path("keys"), "release");
    f.publish(&["--retire", "AM-2020-0007"]);
    // Re-sign every document and the feed with the stock tool.
    for e in std::fs::read_dir(f.feed().join("mitigations")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "xml") {
            stock_sign(&f.key("vendor.key"), &p, &[]);
        }
    }
    stock_sign(
        &f.key("vendor.key"),
        &f.feed().join("feed.xml"),
        &["-t", "stock minisign feed signature"],
    );
    f.fetch().expect(0);

    let out = f.path("stock.airlock");
    f.build(&out, &["--detached-sig"]).expect(0);
    f.verify(&out).expect(0);

    // The manifest signature inside the bundle verifies with minisign -V.
    let x = f.path("extracted");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar").arg("-xf").arg(&out).arg("-C").arg(&x)).expect(0);
    let r = minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        f.key("release.pub").as_os_str(),
        "-m".as_ref(),
        x.join("airlock-manifest.json").as_os_str(),
    ])
    .expect(0);
    assert!(
        r.stdout.contains("Trusted comment: airlock-bundle id="),
        "{}",
        r.stdout
    );
    // So does the detached whole-file signature.
    let r = minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        f.key("release.pub").as_os_str(),
        "-m".as_ref(),
        out.as_os_str(),
    ])
    .expect(0);
    assert!(
        r.stdout
            .contains("Trusted comment: airlock-bundle-file id="),
        "{}",
        r.stdout
    );
    // And a modified copy does not.
    let mut bytes = std::fs::read(&out).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let copy = f.path("copy.airlock");
    std::fs::write(&copy, &bytes).unwrap();
    std::fs::copy(
        f.path("stock.airlock.minisig"),
        f.path("copy.airlock.minisig"),
    )
    .unwrap();
    let r = minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        f.key("release.pub").as_os_str(),
        "-m".as_ref(),
        copy.as_os_str(),
    ]);
    assert_ne!(r.code, 0);
}

/// airlock's own keys and signatures are read by the stock tool.
#[test]
fn airlock_keys_sign_for_stock_minisign() {
    if !require_tool("minisign", "airlock_keys_sign_for_stock_minisign") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("k");
    bundler([
        "keygen".as_ref(),
        "--role".as_ref(),
        "vendor".as_ref(),
        "--out".as_ref(),
        keys.as_os_str(),
        "--no-password".as_ref(),
    ])
    .expect(0);
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "hello").unwrap();
    // Stock minisign signs with an airlock-generated (unencrypted) key...
    stock_sign(
        &keys.join("vendor.key"),
        &doc,
        &["-t", "made by stock minisign"],
    );
    // ...and verifies with an airlock-generated public key.
    minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        keys.join("vendor.pub").as_os_str(),
        "-m".as_ref(),
        doc.as_os_str(),
    ])
    .expect(0);
}

/// A legacy (`minisign -S -l`) signature is refused at fetch with a clear message.
#[test]
fn legacy_signatures_are_refused() {
    if !require_tool("minisign", "legacy_signatures_are_refused") {
        return;
    }
    let f = Fixture::samples();
    stock_keypair(&f.path("keys"), "vendor");
    f.publish(&[]);
    stock_sign(
        &f.key("vendor.key"),
        &f.feed().join("mitigations/AM-2021-0001.xml"),
        &["-l"],
    );
    let r = f.fetch().expect(3);
    assert!(
        r.stderr
            .contains("legacy (non-prehashed) minisign signature refused"),
        "{}",
        r.stderr
    );
    stock_sign(&f.key("vendor.key"), &f.feed().join("feed.xml"), &["-l"]);
    let r = f.fetch().expect(3);
    assert!(r.stderr.contains("feed.xml: legacy"), "{}", r.stderr);
    assert!(!f.cache().join("feed.xml").exists());
}

/// Password-protected keys (scrypt) interoperate both ways: a key made by
/// `minisign -G` with a password signs through `--password-file`, and a key made by
/// `airlock-bundler keygen` with a password signs with the stock tool.
#[test]
fn password_protected_keys_interoperate() {
    if !require_tool("minisign", "password_protected_keys_interoperate") {
        return;
    }
    let f = Fixture::samples();
    let pw = f.path("password");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    let (p, s) = (f.key("vendor.pub"), f.key("vendor.key"));
    std::fs::remove_file(&p).unwrap();
    std::fs::remove_file(&s).unwrap();
    let mut keygen = Command::new("minisign");
    keygen.args([
        "-G".as_ref(),
        "-p".as_ref(),
        p.as_os_str(),
        "-s".as_ref(),
        s.as_os_str(),
    ]);
    keygen
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = keygen.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"correct horse battery\ncorrect horse battery\n",
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    f.publish(&["--password-file", pw.to_str().unwrap()]);
    let r = minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        p.as_os_str(),
        "-m".as_ref(),
        f.feed().join("feed.xml").as_os_str(),
    ])
    .expect(0);
    assert!(
        r.stdout.contains("Trusted comment: airlock-feed"),
        "{}",
        r.stdout
    );

    let keys = f.path("airlock-keys");
    bundler([
        "keygen".as_ref(),
        "--role".as_ref(),
        "approver".as_ref(),
        "--out".as_ref(),
        keys.as_os_str(),
        "--password-file".as_ref(),
        pw.as_os_str(),
    ])
    .expect(0);
    let doc = f.path("doc.txt");
    std::fs::write(&doc, "approve").unwrap();
    let mut sign = Command::new("minisign");
    sign.args([
        "-S".as_ref(),
        "-s".as_ref(),
        keys.join("approver.key").as_os_str(),
        "-m".as_ref(),
        doc.as_os_str(),
    ]);
    sign.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = sign.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"correct horse battery\n").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "stock minisign could not use an airlock key with its password"
    );
    minisign(&[
        "-V".as_ref(),
        "-p".as_ref(),
        keys.join("approver.pub").as_os_str(),
        "-m".as_ref(),
        doc.as_os_str(),
    ])
    .expect(0);
}
