//! The bundler's own CLI behaviour: keys, passwords, exit codes and messages.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

fn bundler(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-bundler"))
        .args(args)
        .env_remove("AIRLOCK_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn keygen_writes_a_0600_secret_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("keys");
    let o = out.to_str().unwrap();
    let (code, stdout, _) = bundler(
        &["keygen", "--role", "release", "--out", o, "--no-password"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("release key id: "), "{stdout}");
    let mode = std::fs::metadata(out.join("release.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(out.join("release.key")).unwrap();
    assert!(
        !stdout.contains(secret.lines().nth(1).unwrap()),
        "the secret key must never be printed"
    );
    let before = std::fs::read(out.join("release.key")).unwrap();
    let (code, _, stderr) = bundler(
        &["keygen", "--role", "release", "--out", o, "--no-password"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("already exists, and airlock never overwrites a key"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("release.key")).unwrap(), before);
}

#[test]
fn password_protected_keys_take_a_password_file_or_the_environment() {
    let d = tempfile::tempdir().unwrap();
    let keys = d.path().join("keys");
    let pw = d.path().join("pw");
    std::fs::write(&pw, "s3cret passphrase\n").unwrap();
    let (k, p) = (keys.to_str().unwrap(), pw.to_str().unwrap());
    // No terminal, no file, no variable: a clear error.
    let (code, _, stderr) = bundler(&["keygen", "--role", "vendor", "--out", k], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("use --password-file FILE or AIRLOCK_PASSWORD"),
        "{stderr}"
    );
    let (code, _, stderr) = bundler(
        &[
            "keygen",
            "--role",
            "vendor",
            "--out",
            k,
            "--password-file",
            p,
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");

    let feed = d.path().join("feed");
    std::fs::create_dir_all(feed.join("mitigations")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../samples/feed/mitigations/AM-2021-0001.xml"
        ),
        feed.join("mitigations/AM-2021-0001.xml"),
    )
    .unwrap();
    let key = keys.join("vendor.key");
    let (f, key) = (feed.to_str().unwrap(), key.to_str().unwrap());
    // The key really is encrypted: without a password it cannot be used.
    let (code, _, stderr) = bundler(&["feed", "publish", f, "--key", key], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("a password is needed"), "{stderr}");
    let (code, _, stderr) = bundler(
        &["feed", "publish", f, "--key", key, "--password-file", p],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = bundler(
        &["feed", "publish", f, "--key", key],
        &[("AIRLOCK_PASSWORD", "s3cret passphrase")],
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = bundler(
        &["feed", "publish", f, "--key", key],
        &[("AIRLOCK_PASSWORD", "wrong")],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot decrypt the secret key"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password must not be echoed: {stderr}"
    );
}

#[test]
fn errors_say_what_happened_and_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.airlock");
    std::fs::write(&junk, b"this is not a bundle").unwrap();
    let (code, _, stderr) = bundler(&["inspect", junk.to_str().unwrap()], &[]);
    assert_eq!(code, 3);
    assert!(
        stderr.starts_with("airlock-bundler: error: bundle "),
        "{stderr}"
    );
    assert!(
        stderr.contains("truncated before the airlock-manifest.json header"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  what to do: do not use this file"),
        "{stderr}"
    );

    let missing = d.path().join("missing.airlock");
    let (code, _, stderr) = bundler(&["inspect", missing.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot open") && stderr.contains("missing.airlock"),
        "{stderr}"
    );

    let (code, stdout, _) = bundler(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("airlock-bundler "));
}
