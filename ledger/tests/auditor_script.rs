//! `docs/verify_ledger_export.py`, the auditor's independent re-implementation of
//! the chain rules, accepts a real export and catches an edited or cut one; with
//! the stock `minisign`, the checkpoint it extracts verifies against the host key.
//! Python 3 and minisign are installed by `.ci/run`; elsewhere a missing tool is a
//! printed skip, and under `CI=true` a failure.
#![allow(clippy::unwrap_used)]

use airlock_format::keys::{PasswordSource, PublicKey, SecretKey, generate};
use airlock_ledger::{Ledger, NewEntry};
use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok()
        || Command::new(tool).arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true"
        );
        println!("skipped: {tool} is not installed");
    }
    found
}

fn script(export: &Path, extra: &[&str]) -> (i32, String) {
    let py = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/verify_ledger_export.py"
    );
    let out = Command::new("python3")
        .arg(py)
        .arg(export)
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_python_reimplementation_agrees_with_airlock() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = generate(None, "host").unwrap();
    std::fs::write(d.join("host.key"), &g.secret.0).unwrap();
    std::fs::write(d.join("host.pub"), &g.public).unwrap();
    let sk = SecretKey::from_file(&d.join("host.key"), &PasswordSource::default()).unwrap();
    let pk = PublicKey::from_file(&d.join("host.pub")).unwrap();
    let mut l = Ledger::create(&d.join("ledger.db"), "exch01", &pk, "airlock-applier").unwrap();
    l.append_batch((0..50).map(|i| {
        let e = NewEntry::new(
            "mitigation.applied",
            "airlock-applier",
            serde_json::json!({"i": i, "text": "ünïcode, \"quotes\"\nnewline"}),
        );
        if i % 2 == 0 {
            e.mitigation(&format!("m-{i}")).bundle("b1")
        } else {
            e
        }
    }))
    .unwrap();
    let cp = l.checkpoint(&sk, "auditor-test").unwrap();
    l.append(NewEntry::new("bundle.verified", "x", serde_json::json!({})))
        .unwrap();
    let export = d.join("export.jsonl");
    let summary = l.export(&export).unwrap();

    let cp_out = d.join("cp");
    let (code, text) = script(&export, &["--checkpoint-out", cp_out.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "{} entries, head {}",
            summary.entries, summary.head
        )),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&cp_out).unwrap(), cp.body());
    // The line to compare with the checkpoint's own `size` and `head` lines.
    let covers = format!("latest checkpoint: size {}, head {}", cp.size, cp.head);
    assert!(text.contains(&covers), "{text}");
    assert!(
        cp.body()
            .contains(&format!("size {}\nhead {}\n", cp.size, cp.head))
    );
    let (code, text) = script(&export, &["--bogus"]);
    assert_eq!(code, 2, "{text}");
    let (code, text) = script(Path::new("--help"), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Usage: verify_ledger_export.py"), "{text}");

    let original = std::fs::read_to_string(&export).unwrap();
    let edited = original.replacen("\"m-10\"", "\"m-11\"", 1);
    assert_ne!(edited, original);
    std::fs::write(&export, edited).unwrap();
    let (code, text) = script(&export, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("entry 12: the hash does not match"), "{text}");

    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&export, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let (code, text) = script(&export, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("truncated"), "{text}");

    if have("minisign") {
        let out = Command::new("minisign")
            .args(["-Vm"])
            .arg(&cp_out)
            .arg("-p")
            .arg(d.join("host.pub"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
