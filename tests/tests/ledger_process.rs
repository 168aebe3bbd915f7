//! The ledger under real processes: a writer killed with SIGKILL in the middle of
//! appending leaves a ledger that verifies with every batch whole or absent; two
//! writers at once queue instead of forking the chain; `verify` and `export` while
//! a writer appends see a consistent snapshot; and a clock that goes backwards is
//! a warning naming the entry, not a break.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{bin, fixture, ledger};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// A new fixture ledger `ledger.db` (host `exch01`) in `dir`.
fn create(dir: &Path) -> PathBuf {
    let db = dir.join("ledger.db");
    fixture([os("create"), os(&db), os("exch01")]).expect(0);
    db
}

/// `airlock-ledger --db DB verify --json` must succeed; returns its report.
fn verify_json(db: &Path) -> serde_json::Value {
    let r = ledger([os("--db"), os(db), os("verify"), os("--json")]).expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The seqs in `committed SEQ` lines.
fn committed(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .map(|l| l.strip_prefix("committed ").unwrap().parse().unwrap())
        .collect()
}

#[test]
fn sigkill_mid_append_leaves_a_valid_ledger_with_whole_batches() {
    const BATCH: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    let started = Instant::now();
    let mut head = 1;
    for round in 0..10u64 {
        // Vary where the kill lands: after 2 to 30 batches, then 0 to 3 ms more.
        let wait_for = 2 + (round * 37) % 29;
        let mut child = Command::new(bin("ledger-fixture"))
            .args([os("append"), os(&db), os("1000000"), os(BATCH.to_string())])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        while (seen.len() as u64) < wait_for {
            let line = lines.next().unwrap_or_else(|| {
                panic!(
                    "round {round}: the writer stopped after {} batches",
                    seen.len()
                )
            });
            seen.extend(committed(&line.unwrap()));
        }
        std::thread::sleep(Duration::from_millis(round % 4));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer finished before the kill"
        );
        drop(lines);

        let last = *seen.last().unwrap();
        let report = verify_json(&db);
        let now = report["entries"].as_u64().unwrap();
        println!(
            "round {round}: killed after {} committed lines (last {last}), head {head} -> {now}",
            seen.len()
        );
        assert!(
            now >= last,
            "round {round}: head {now} is before the last commit {last}"
        );
        assert_eq!(
            (now - head) % BATCH,
            0,
            "round {round}: head went {head} -> {now}, not whole batches of {BATCH}"
        );
        assert_eq!((now - 1) % BATCH, 0, "round {round}: head {now}");
        assert!(report["clock_warnings"].as_array().unwrap().is_empty());
        // The plain verify agrees (exit 0; the only warning is that the fixture
        // ledger holds no checkpoint).
        let plain = ledger([os("--db"), os(&db), os("verify")]).expect(0);
        assert!(
            plain
                .stderr
                .lines()
                .all(|l| l.contains("nothing in this ledger is signed")),
            "{}",
            plain.stderr
        );
        head = now;
    }
    println!("10 kill rounds in {:?}", started.elapsed());
}

#[test]
fn two_writers_at_once_queue_without_forking_the_chain() {
    const EACH: u64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    let started = Instant::now();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(bin("ledger-fixture"))
                .args([os("append"), os(&db), os(EACH.to_string()), os("1")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seqs: Vec<Vec<u64>> = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        let out = w.wait_with_output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "writer {i}: {:?}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        seqs.push(committed(&stdout));
    }
    println!(
        "two writers of {EACH} entries each in {:?}",
        started.elapsed()
    );

    // Each writer saw its own commits, and no seq was handed to both.
    let a: BTreeSet<u64> = seqs[0].iter().copied().collect();
    let b: BTreeSet<u64> = seqs[1].iter().copied().collect();
    assert_eq!((a.len() as u64, b.len() as u64), (EACH, EACH));
    assert!(a.is_disjoint(&b), "a seq was committed by both writers");
    let all: Vec<u64> = a.union(&b).copied().collect();
    assert_eq!(all, (2..=2 * EACH + 1).collect::<Vec<_>>());

    let report = verify_json(&db);
    assert_eq!(report["entries"], 2 * EACH + 1);

    let log = ledger([os("--db"), os(&db), os("log"), os("--format"), os("json")]).expect(0);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&log.stdout).unwrap();
    assert_eq!(entries.len() as u64, 2 * EACH + 1);
    let logged: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let unique: BTreeSet<u64> = logged.iter().copied().collect();
    assert_eq!(unique.len(), logged.len(), "a seq appears twice in the log");
    assert_eq!(logged, (1..=2 * EACH + 1).collect::<Vec<_>>());
    assert_eq!(entries[0]["kind"], "ledger.created");
}

#[test]
fn verify_and_export_while_a_writer_appends_see_a_consistent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    let mut writer = Command::new(bin("ledger-fixture"))
        .args([os("append"), os(&db), os("100000"), os("3")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut sizes = Vec::new();
    for round in 0..6 {
        // Let the writer get ahead between reads.
        for _ in 0..20 {
            lines.next().unwrap().unwrap();
        }
        let report = verify_json(&db);
        let n = report["entries"].as_u64().unwrap();
        assert_eq!(
            (n - 1) % 3,
            0,
            "round {round}: a snapshot inside a batch ({n})"
        );
        let export = dir.path().join(format!("export-{round}.jsonl"));
        ledger([os("--db"), os(&db), os("export"), os("--out"), os(&export)]).expect(0);
        ledger([os("verify"), os("--export"), os(&export)]).expect(0);
        sizes.push(n);
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(
        sizes.windows(2).all(|w| w[0] < w[1]),
        "the writer kept appending: {sizes:?}"
    );
    verify_json(&db);
}

#[test]
fn a_clock_going_backwards_is_a_warning_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    fixture([os("append"), os(&db), os("3")]).expect(0);
    let yesterday = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let at = fixture([
        os("append-at"),
        os(&db),
        os(yesterday.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    ])
    .expect(0);
    assert_eq!(at.stdout.trim(), "committed 5");
    fixture([os("append"), os(&db), os("1")]).expect(0);

    let r = ledger([os("--db"), os(&db), os("verify")]).expect(0);
    assert!(r.stdout.contains("6 entries, chain intact"), "{}", r.stdout);
    let warning = r
        .stderr
        .lines()
        .find(|l| l.contains("clock"))
        .unwrap_or_else(|| panic!("no warning in stderr:\n{}", r.stderr));
    println!("{warning}");
    assert!(
        warning.contains("entry 5 has time") && warning.contains("the host clock went backwards"),
        "{warning}"
    );
    assert_eq!(
        r.stderr.lines().filter(|l| l.contains("clock")).count(),
        1,
        "{}",
        r.stderr
    );

    let report = verify_json(&db);
    let warnings = report["clock_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert_eq!(warnings[0]["seq"], 5);
}

#[test]
fn the_fixture_refuses_bad_arguments_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let r = fixture([os("append")]).expect(2);
    assert!(r.stderr.contains("usage:"), "{}", r.stderr);
    let r = fixture([os("append"), os(dir.path().join("none.db")), os("1")]).expect(1);
    assert!(r.stderr.contains("ledger-fixture: error:"), "{}", r.stderr);
    let db = create(dir.path());
    let r = fixture([os("append-at"), os(&db), os("yesterday")]).expect(1);
    assert!(r.stderr.contains("not an RFC 3339 time"), "{}", r.stderr);
}
