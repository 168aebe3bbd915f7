//! The ledger against raw rusqlite on the same schema, in one process and one run,
//! reported as ratios (the must-show #4). Each pair runs interleaved (raw,
//! ledger, ledger, raw, …) so drift on a shared machine hits both sides alike:
//!
//! - bulk append of 1,000,000 entries in one transaction: `Ledger::append_batch`
//!   against prepared INSERTs of the same rows with precomputed dummy hashes;
//! - durable single appends (`BEGIN IMMEDIATE`, read the head, insert, `COMMIT`
//!   with fsync): `Ledger::append` against the same four steps done raw;
//! - verify of the 1,000,000-entry ledger: `Ledger::verify` against a raw scan with
//!   borrowed columns that recomputes the SHA-256 chain with the library's own
//!   `EntryRef::hash`;
//! - `log --mitigation ID` on that ledger: `Ledger::query` against the same SELECT
//!   with borrowed columns, and the `airlock-ledger` process end to end.
//!
//! The raw database is made from the statements `sqlite_schema` holds in a ledger
//! the library created (tables, indexes and triggers), with the same pragmas (WAL,
//! `synchronous=FULL`), so both sides pay for the same B-trees and triggers. Ratios
//! are ledger throughput over raw throughput (raw time / ledger time): 1.0 is as
//! fast as raw, the goal is at least 0.8.
//!
//!     cargo bench -p airlock-ledger --bench ledger [-- OPTIONS]   (`-- --help` lists them)
//!
//! The summary table goes to stdout, progress and per-round times to stderr.
//! `bench/ledger.sh` builds, runs this, keeps the results and exits 1 on a missed goal.

use airlock_format::keys::{PublicKey, generate};
use airlock_ledger::entry::{Digest, EntryRef, format_ts, genesis};
use airlock_ledger::{Ledger, NewEntry, Query, VerifyOptions, store};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const HOST: &str = "bench-host";
const ACTOR: &str = "airlock-applier";
const MITIGATIONS: u64 = 1000;
const INSERT: &str = "INSERT INTO entries (seq, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const SELECT_ALL: &str = "SELECT seq, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash FROM entries ORDER BY seq";
const SELECT_MITIGATION: &str = "SELECT seq, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash FROM entries WHERE mitigation = ?1 ORDER BY seq";

const USAGE: &str = "usage: ledger [OPTIONS]
  --entries N        entries of the bulk append and of the verified and queried ledger
                     (default 1000000)
  --rounds R         timed bulk appends of each side (default 3)
  --verify-rounds R  timed verifies of each side (default 5)
  --appends N        durable single appends of each side (default 300)
  --queries N        library queries of each side (default 200)
  --processes N      `airlock-ledger log` processes (default 30)
  --cases LIST       only these, comma-separated: bulk,durable,verify,log (default all)
  --dir DIR          where the databases go, kept afterwards (default: a temporary
                     directory under target/, removed); without bulk in --cases, verify
                     and log reuse DIR/ledger-bulk.db if it has --entries entries
  --results FILE     also write the results as JSON
  --variants         also time raw bulk appends with other settings (page cache, temp
                     store, without the trigger or indexes), to show where time goes";

#[derive(Debug)]
struct Options {
    entries: u64,
    rounds: usize,
    verify_rounds: usize,
    appends: usize,
    queries: usize,
    processes: usize,
    dir: Option<PathBuf>,
    results: Option<PathBuf>,
    cases: Vec<String>,
    variants: bool,
}

const CASES: [&str; 4] = ["bulk", "durable", "verify", "log"];

/// The options, or `None` after printing `--help`.
fn options() -> Result<Option<Options>> {
    let mut o = Options {
        entries: 1_000_000,
        rounds: 3,
        verify_rounds: 5,
        appends: 300,
        queries: 200,
        processes: 30,
        dir: None,
        results: None,
        cases: CASES.iter().map(|c| c.to_string()).collect(),
        variants: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        let number = |v: String| -> Result<u64> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{v}' is not a positive whole number\n{USAGE}").into())
        };
        match a.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--entries" => o.entries = number(value()?)?,
            "--rounds" => o.rounds = number(value()?)? as usize,
            "--verify-rounds" => o.verify_rounds = number(value()?)? as usize,
            "--appends" => o.appends = number(value()?)? as usize,
            "--queries" => o.queries = number(value()?)? as usize,
            "--processes" => o.processes = number(value()?)? as usize,
            "--dir" => o.dir = Some(value()?.into()),
            "--results" => o.results = Some(value()?.into()),
            "--cases" => {
                o.cases = value()?.split(',').map(str::to_string).collect();
                if let Some(c) = o.cases.iter().find(|c| !CASES.contains(&c.as_str())) {
                    return Err(format!("unknown case '{c}'\n{USAGE}").into());
                }
            }
            "--variants" => o.variants = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(format!("unknown argument '{a}'\n{USAGE}").into()),
        }
    }
    Ok(Some(o))
}

/// One row of the workload, as the raw side inserts it.
#[derive(Debug)]
struct Row {
    kind: &'static str,
    bundle: Option<String>,
    mitigation: Option<String>,
    detail: String,
}

/// xorshift64*: a deterministic workload without a dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The rare mitigation's index (see [`workload`]) and how often it appears.
const RARE: u64 = MITIGATIONS + 1;
const RARE_EVERY: u64 = 50_000;

fn mitigation_id(k: u64) -> String {
    format!("AM-{}-{:04}", 2020 + k / 200, k % 200 + 1)
}

/// `n` realistic entries: an applier run per 100 entries (one bundle, 32 hex), kinds
/// cycling through bundle, plan and mitigation events, 7 in 10 naming one of 1,000
/// mitigations, details of about 80-150 bytes.
fn workload(n: u64) -> Vec<Row> {
    let mut rng = Rng(0x2026_1128_0bad_cafe);
    let mut bundle = String::new();
    (0..n)
        .map(|i| {
            if i % 100 == 0 {
                bundle = format!("{:016x}{:016x}", rng.next(), rng.next());
            }
            let run = i / 100 + 1;
            let m = rng.next() % MITIGATIONS;
            // One rare mitigation: 1 entry in 50,000, spread over the whole ledger,
            // like the history of a single mitigation on a long-lived host.
            let m = if i % RARE_EVERY == 3 { RARE } else { m };
            let r = rng.next();
            let rev = r % 5 + 1;
            let ms = r % 2000;
            let (kind, with_bundle, with_mitigation, detail) = match i % 10 {
                0 => (
                    "bundle.verified",
                    true,
                    false,
                    serde_json::json!({"seq": run, "channel": "stable", "documents": 40 + r % 60, "attachments": r % 3, "release_key": format!("{:016x}", r)}),
                ),
                1 => (
                    "plan.created",
                    true,
                    false,
                    serde_json::json!({"bundle_seq": run, "actions": 10 + r % 90, "approvals_required": 1, "profile": "exchange-2019-cu14"}),
                ),
                2 => (
                    "approval.recorded",
                    true,
                    false,
                    serde_json::json!({"approver": "ops-lead@example.invalid", "key": format!("{:016x}", r), "plan_actions": 10 + r % 90}),
                ),
                3 | 4 => (
                    "mitigation.applied",
                    true,
                    true,
                    serde_json::json!({"revision": rev, "actions": 4, "changed": r % 5, "duration_ms": ms, "backup": format!("rb-{run:06}-{:04}", i % 100)}),
                ),
                5 => (
                    "mitigation.updated",
                    true,
                    true,
                    serde_json::json!({"from_revision": rev, "to_revision": rev + 1, "actions": 3, "changed": r % 4, "duration_ms": ms}),
                ),
                6 => (
                    "mitigation.skipped",
                    false,
                    true,
                    serde_json::json!({"revision": rev, "reason": "not applicable: product version 15.2.1258.12 is not affected"}),
                ),
                7 => (
                    "mitigation.removed",
                    true,
                    true,
                    serde_json::json!({"revision": rev, "retired_in": run, "actions_undone": 4, "duration_ms": ms}),
                ),
                8 => (
                    "mitigation.failed",
                    true,
                    true,
                    serde_json::json!({"revision": rev, "action": 3, "error": "access denied writing HKLM\\SOFTWARE\\Microsoft\\ExchangeServer"}),
                ),
                _ => (
                    "mitigation.rolled_back",
                    true,
                    true,
                    serde_json::json!({"revision": rev, "backup": format!("rb-{run:06}-{:04}", i % 100), "restored": 3, "duration_ms": ms}),
                ),
            };
            let mut detail = detail;
            detail["run"] = format!("run-{run:06}-{:08x}", r >> 32).into();
            Row {
                kind,
                bundle: with_bundle.then(|| bundle.clone()),
                mitigation: with_mitigation.then(|| mitigation_id(m)),
                detail: detail.to_string(),
            }
        })
        .collect()
}

fn new_entry(r: &Row) -> NewEntry {
    let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
    let mut e = NewEntry::new(r.kind, ACTOR, detail);
    if let Some(b) = &r.bundle {
        e = e.bundle(b);
    }
    if let Some(m) = &r.mitigation {
        e = e.mitigation(m);
    }
    e
}

/// The dummy hash of raw entry `seq` (and the raw genesis value, for 0): 64 hex
/// digits, so raw rows are as long as the ledger's.
fn dummy_hash(seq: u64) -> String {
    format!("{seq:064x}")
}

fn remove_db(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", Path::new(&p).display()).into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Read-only, without SQLite's per-call mutex (as the ledger opens).
fn read_only() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// A raw reader with the same pragmas as the ledger's readers (memory map, cell
/// size checks), so the ratio measures the library, not a setting.
fn raw_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, read_only())?;
    for (name, value) in store::PRAGMAS.iter().chain(store::READER_PRAGMAS) {
        conn.pragma_update(None, name, value)?;
    }
    Ok(conn)
}

/// The schema statements of a ledger the library created, in creation order.
fn ledger_schema(ledger_db: &Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(ledger_db, read_only())?;
    let mut stmt =
        conn.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")?;
    let sql = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sql)
}

/// A raw database: the ledger's schema, WAL and `synchronous=FULL`, one first row
/// (like `ledger.created`).
fn raw_create(path: &Path, schema: &[String]) -> Result<Connection> {
    raw_create_with(path, schema, &[])
}

/// [`raw_create`] with more pragmas (for `--variants`).
fn raw_create_with(path: &Path, schema: &[String], pragmas: &[(&str, &str)]) -> Result<Connection> {
    remove_db(path)?;
    let mut conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("{}: SQLite would not use WAL (got {mode})", path.display()).into());
    }
    for (name, value) in store::PRAGMAS
        .iter()
        .chain(store::WRITER_PRAGMAS)
        .chain(pragmas)
    {
        conn.pragma_update(None, name, value)?;
    }
    let tx = conn.transaction()?;
    for s in schema {
        tx.execute(s, [])?;
    }
    tx.execute("INSERT INTO airlock_schema (version) VALUES (1)", [])?;
    tx.execute(
        "INSERT INTO ledger_meta (ledger_id, host, created, genesis) VALUES ('raw', ?1, ?2, ?3)",
        params![HOST, format_ts(&chrono::Utc::now()), dummy_hash(0)],
    )?;
    tx.execute(
        INSERT,
        params![
            1i64,
            format_ts(&chrono::Utc::now()),
            HOST,
            ACTOR,
            "ledger.created",
            None::<&str>,
            None::<&str>,
            "{}",
            dummy_hash(0),
            dummy_hash(1)
        ],
    )?;
    tx.commit()?;
    Ok(conn)
}

/// Everything prepared for the runs.
#[derive(Debug)]
struct Fixture {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    key: PublicKey,
    schema: Vec<String>,
    rows: Vec<Row>,
    entries: Vec<NewEntry>,
    /// `ts` of each raw row (the ledger stamps its own).
    ts: Vec<String>,
    /// `dummy_hash(seq)` for seq 0..=entries+1.
    hashes: Vec<String>,
}

fn fixture(o: &Options) -> Result<Fixture> {
    let (dir, tmp) = match &o.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("ledger-bench-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let g = generate(None, "host")?;
    let pub_path = dir.join("host.pub");
    std::fs::write(&pub_path, &g.public)?;
    let key = PublicKey::from_file(&pub_path)?;
    let probe = dir.join("schema-probe.db");
    remove_db(&probe)?;
    drop(Ledger::create(&probe, HOST, &key, ACTOR)?);
    let schema = ledger_schema(&probe)?;
    remove_db(&probe)?;
    let rows = workload(o.entries);
    let entries = rows.iter().map(new_entry).collect();
    let start = chrono::Utc::now();
    let ts = (0..o.entries)
        .map(|i| format_ts(&(start + chrono::Duration::microseconds(i as i64))))
        .collect();
    let hashes = (0..=o.entries + 1).map(dummy_hash).collect();
    Ok(Fixture {
        dir,
        _tmp: tmp,
        key,
        schema,
        rows,
        entries,
        ts,
        hashes,
    })
}

/// Raw bulk append: one `BEGIN IMMEDIATE` transaction, the head read once, one
/// prepared INSERT per row, precomputed hashes; no hashing, no validation.
fn raw_bulk(conn: &mut Connection, f: &Fixture) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let head: i64 = tx.query_row(
        "SELECT seq FROM entries ORDER BY seq DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    {
        let mut stmt = tx.prepare(INSERT)?;
        for (i, r) in f.rows.iter().enumerate() {
            let seq = head + 1 + i as i64;
            stmt.execute(params![
                seq,
                f.ts[i],
                HOST,
                ACTOR,
                r.kind,
                r.bundle,
                r.mitigation,
                r.detail,
                f.hashes[seq as usize - 1],
                f.hashes[seq as usize]
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Raw durable append of one row: `BEGIN IMMEDIATE`, read the head, insert, `COMMIT`.
fn raw_append(conn: &mut Connection, r: &Row, ts: &str) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (seq, hash): (i64, String) = tx.query_row(
        "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.prepare_cached(INSERT)?.execute(params![
        seq + 1,
        ts,
        HOST,
        ACTOR,
        r.kind,
        r.bundle,
        r.mitigation,
        r.detail,
        hash,
        dummy_hash(seq as u64 + 1)
    ])?;
    tx.commit()?;
    Ok(())
}

/// Raw verify: scan every row with borrowed columns and recompute the chain with the
/// library's hash; returns the number of entries.
fn raw_verify(path: &Path) -> Result<u64> {
    let conn = raw_reader(path)?;
    let ledger_id: String =
        conn.query_row("SELECT ledger_id FROM ledger_meta", [], |r| r.get(0))?;
    let mut prev = genesis(&ledger_id);
    let mut stmt = conn.prepare(SELECT_ALL)?;
    let mut rows = stmt.query([])?;
    let mut expected = 1u64;
    let hex = |v: ValueRef<'_>| -> Result<Digest> {
        Digest::from_hex(v.as_str()?).ok_or_else(|| "not a hash".into())
    };
    while let Some(row) = rows.next()? {
        let seq = row.get_ref(0)?.as_i64()? as u64;
        let opt = |i: usize| -> Result<Option<&str>> {
            Ok(match row.get_ref(i)? {
                ValueRef::Null => None,
                v => Some(v.as_str()?),
            })
        };
        let e = EntryRef {
            seq,
            ts: row.get_ref(1)?.as_str()?,
            host: row.get_ref(2)?.as_str()?,
            actor: row.get_ref(3)?.as_str()?,
            kind: row.get_ref(4)?.as_str()?,
            bundle: opt(5)?,
            mitigation: opt(6)?,
            detail: row.get_ref(7)?.as_str()?,
            prev_hash: hex(row.get_ref(8)?)?,
        };
        let hash = e.hash();
        if seq != expected || e.prev_hash != prev || hash != hex(row.get_ref(9)?)? {
            return Err(format!("raw verify: entry {seq} does not chain").into());
        }
        prev = hash;
        expected += 1;
    }
    Ok(expected - 1)
}

/// Raw `log --mitigation`: the same SELECT over the same index, borrowed columns.
fn raw_query(conn: &Connection, mitigation: &str) -> Result<u64> {
    let mut stmt = conn.prepare_cached(SELECT_MITIGATION)?;
    let mut rows = stmt.query([mitigation])?;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        for i in 0..10 {
            black_box(row.get_ref(i)?);
        }
        n += 1;
    }
    Ok(n)
}

fn ledger_query(ledger: &Ledger, mitigation: &str) -> Result<u64> {
    let q = Query {
        mitigation: Some(mitigation.into()),
        ..Query::default()
    };
    Ok(ledger.query(&q, |e| {
        black_box(e);
        Ok(())
    })?)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// Runs `a` and `b` `rounds` times each, alternating A B, B A, A B, …; returns
/// the times of each.
fn interleave<T>(
    rounds: usize,
    mut a: impl FnMut(usize) -> Result<T>,
    mut b: impl FnMut(usize) -> Result<T>,
) -> Result<(Vec<T>, Vec<T>)> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            ta.push(a(i)?);
            tb.push(b(i)?);
        } else {
            tb.push(b(i)?);
            ta.push(a(i)?);
        }
    }
    Ok((ta, tb))
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(Duration, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed(), v))
}

fn say(s: impl AsRef<str>) {
    eprintln!("== {}", s.as_ref());
}

fn list(v: &[Duration]) -> String {
    let s: Vec<String> = v
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect();
    s.join(" ")
}

/// One line of the summary.
#[derive(Debug, serde::Serialize)]
struct Case {
    case: String,
    raw: String,
    ledger: String,
    /// Ledger throughput over raw throughput (raw time / ledger time).
    ratio: Option<f64>,
    goal: String,
    pass: Option<bool>,
    raw_median_s: Option<f64>,
    ledger_median_s: f64,
    samples: usize,
}

/// `n` entries in `d`, as "250k entries/s (4.00 s)".
fn rate(n: u64, d: Duration) -> String {
    let per_s = n as f64 / d.as_secs_f64();
    format!(
        "{:.0}k entries/s ({:.2} s)",
        per_s / 1000.0,
        d.as_secs_f64()
    )
}

/// One append in `d`, as "2500 appends/s (0.40 ms)".
fn append_rate(d: Duration) -> String {
    format!(
        "{:.0} appends/s ({:.2} ms)",
        1.0 / d.as_secs_f64(),
        d.as_secs_f64() * 1e3
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn bulk(o: &Options, f: &Fixture, keep: &Path) -> Result<Case> {
    say(format!(
        "bulk append of {} entries, {} rounds each (one transaction)",
        o.entries, o.rounds
    ));
    let raw_db = f.dir.join("raw-bulk.db");
    // Each ledger round replaces `keep`; the last one stays for verify and log.
    let (raw, led) = interleave(
        o.rounds,
        |_| {
            let mut conn = raw_create(&raw_db, &f.schema)?;
            let (t, ()) = timed(|| raw_bulk(&mut conn, f))?;
            drop(conn);
            remove_db(&raw_db)?;
            eprintln!("   raw    {:.3} s", t.as_secs_f64());
            Ok(t)
        },
        |_| {
            remove_db(keep)?;
            let mut ledger = Ledger::create(keep, HOST, &f.key, ACTOR)?;
            let batch = f.entries.clone();
            let (t, head) = timed(|| Ok(ledger.append_batch(batch)?))?;
            if head.seq != o.entries + 1 {
                return Err(
                    format!("the ledger's head is {}, not {}", head.seq, o.entries + 1).into(),
                );
            }
            eprintln!("   ledger {:.3} s", t.as_secs_f64());
            Ok(t)
        },
    )?;
    let (r, l) = (median(&raw), median(&led));
    let ratio = r.as_secs_f64() / l.as_secs_f64();
    Ok(Case {
        case: format!("bulk append {} (1 tx)", o.entries),
        raw: rate(o.entries, r),
        ledger: rate(o.entries, l),
        ratio: Some(ratio),
        goal: ">= 0.80x (~250k entries/s)".into(),
        pass: Some(ratio >= 0.8),
        raw_median_s: Some(r.as_secs_f64()),
        ledger_median_s: l.as_secs_f64(),
        samples: o.rounds,
    })
}

/// A raw setup that differs from the ledger's in one setting.
#[derive(Debug)]
struct Variant {
    name: &'static str,
    pragmas: &'static [(&'static str, &'static str)],
    /// Schema objects left out.
    without: &'static [&'static str],
    /// A text replaced in the schema statements.
    edit: Option<(&'static str, &'static str)>,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "temp_store=MEMORY",
        pragmas: &[("temp_store", "MEMORY")],
        without: &[],
        edit: None,
    },
    Variant {
        name: "entries as a rowid table (no WITHOUT ROWID)",
        pragmas: &[],
        without: &[],
        edit: Some((" WITHOUT ROWID", "")),
    },
    Variant {
        name: "rowid table, temp_store=MEMORY",
        pragmas: &[("temp_store", "MEMORY")],
        without: &[],
        edit: Some((" WITHOUT ROWID", "")),
    },
    Variant {
        name: "without trigger entries_extend_head",
        pragmas: &[],
        without: &["entries_extend_head"],
        edit: None,
    },
    Variant {
        name: "without entries_extend_head, cache_size=64 MiB",
        pragmas: &[("cache_size", "-65536")],
        without: &["entries_extend_head"],
        edit: None,
    },
    Variant {
        name: "without entries_extend_head and the 4 indexes",
        pragmas: &[],
        without: &["entries_extend_head", "CREATE INDEX"],
        edit: None,
    },
];

/// Raw bulk appends under each [`Variant`], each run alternating with the plain raw
/// baseline; prints entries/s and the speed-up over that baseline.
fn variants(o: &Options, f: &Fixture) -> Result<serde_json::Value> {
    let raw_db = f.dir.join("raw-variant.db");
    let mut out = Vec::new();
    for v in VARIANTS {
        say(format!("raw bulk variant: {}, {} rounds", v.name, o.rounds));
        let schema: Vec<String> = f
            .schema
            .iter()
            .filter(|s| !v.without.iter().any(|w| s.contains(w)))
            .map(|s| match v.edit {
                Some((from, to)) => s.replace(from, to),
                None => s.clone(),
            })
            .collect();
        let run = |schema: &[String], pragmas: &[(&str, &str)]| -> Result<Duration> {
            let mut conn = raw_create_with(&raw_db, schema, pragmas)?;
            let (t, ()) = timed(|| raw_bulk(&mut conn, f))?;
            drop(conn);
            remove_db(&raw_db)?;
            Ok(t)
        };
        let (base, var) = interleave(
            o.rounds,
            |_| run(&f.schema, &[]),
            |_| run(&schema, v.pragmas),
        )?;
        let (b, t) = (median(&base), median(&var));
        eprintln!(
            "   {}: {} vs raw {}: {:.2}x",
            v.name,
            rate(o.entries, t),
            rate(o.entries, b),
            b.as_secs_f64() / t.as_secs_f64()
        );
        out.push(serde_json::json!({
            "variant": v.name,
            "median_s": t.as_secs_f64(),
            "raw_median_s": b.as_secs_f64(),
            "speedup": b.as_secs_f64() / t.as_secs_f64(),
        }));
    }
    Ok(serde_json::Value::Array(out))
}

fn durable(o: &Options, f: &Fixture) -> Result<Case> {
    say(format!(
        "durable single appends (fsync each), {} of each side, alternating",
        o.appends
    ));
    let raw_db = f.dir.join("raw-durable.db");
    let led_db = f.dir.join("ledger-durable.db");
    remove_db(&led_db)?;
    let mut conn = raw_create(&raw_db, &f.schema)?;
    let mut ledger = Ledger::create(&led_db, HOST, &f.key, ACTOR)?;
    let (raw, led) = interleave(
        o.appends,
        |i| {
            let r = &f.rows[i % f.rows.len()];
            let ts = format_ts(&chrono::Utc::now());
            Ok(timed(|| raw_append(&mut conn, r, &ts))?.0)
        },
        |i| {
            let e = f.entries[i % f.entries.len()].clone();
            Ok(timed(|| Ok(ledger.append(e)?))?.0)
        },
    )?;
    drop((conn, ledger));
    remove_db(&raw_db)?;
    remove_db(&led_db)?;
    let (r, l) = (median(&raw), median(&led));
    eprintln!(
        "   medians: raw {:.3} ms, ledger {:.3} ms",
        r.as_secs_f64() * 1e3,
        l.as_secs_f64() * 1e3
    );
    let ratio = r.as_secs_f64() / l.as_secs_f64();
    Ok(Case {
        case: "durable single append (fsync)".into(),
        raw: append_rate(r),
        ledger: append_rate(l),
        ratio: Some(ratio),
        goal: ">= 0.80x".into(),
        pass: Some(ratio >= 0.8),
        raw_median_s: Some(r.as_secs_f64()),
        ledger_median_s: l.as_secs_f64(),
        samples: o.appends,
    })
}

fn verify(o: &Options, db: &Path) -> Result<Case> {
    say(format!(
        "verify of {} entries, {} rounds each",
        o.entries + 1,
        o.verify_rounds
    ));
    let count = raw_verify(db)?; // warms the page cache
    let (raw, led) = interleave(
        o.verify_rounds,
        |_| {
            let (t, n) = timed(|| raw_verify(db))?;
            if n != count {
                return Err("raw verify counted a different number of entries".into());
            }
            Ok(t)
        },
        |_| {
            let (t, r) =
                timed(|| Ok(Ledger::open_read_only(db)?.verify(VerifyOptions::default())?))?;
            if r.entries != count {
                return Err(format!("verify found {} entries, raw {count}", r.entries).into());
            }
            Ok(t)
        },
    )?;
    eprintln!("   raw    {}\n   ledger {}", list(&raw), list(&led));
    let (r, l) = (median(&raw), median(&led));
    let ratio = r.as_secs_f64() / l.as_secs_f64();
    Ok(Case {
        case: format!("verify {count}"),
        raw: rate(count, r),
        ledger: rate(count, l),
        ratio: Some(ratio),
        goal: ">= 0.80x (~1.2M entries/s)".into(),
        pass: Some(ratio >= 0.8),
        raw_median_s: Some(r.as_secs_f64()),
        ledger_median_s: l.as_secs_f64(),
        samples: o.verify_rounds,
    })
}

fn query(o: &Options, db: &Path) -> Result<Vec<Case>> {
    say(format!(
        "log --mitigation on {} entries: {} library queries of each side, {} processes",
        o.entries + 1,
        o.queries,
        o.processes
    ));
    let ids: Vec<String> = (0..MITIGATIONS).map(mitigation_id).collect();
    let conn = raw_reader(db)?;
    let ledger = Ledger::open_read_only(db)?;
    let mut rows = 0u64;
    for id in ids.iter().take(20) {
        rows += raw_query(&conn, id)?;
        ledger_query(&ledger, id)?;
    }
    let id = |i: usize| ids[(i * 7919) % ids.len()].as_str();
    // Blocks of BLOCK different ids per side, alternating, so that neither side
    // runs right after the other on the same pages (about 3 MB for 700 rows, which
    // the CPU caches can still hold).
    const BLOCK: usize = 25;
    let blocks = o.queries.div_ceil(BLOCK);
    let (raw, led) = interleave(
        blocks,
        |b| {
            (b * BLOCK..(b + 1) * BLOCK)
                .map(|i| Ok(timed(|| raw_query(&conn, id(i)))?.0))
                .collect::<Result<Vec<_>>>()
        },
        |b| {
            (b * BLOCK..(b + 1) * BLOCK)
                .map(|i| Ok(timed(|| ledger_query(&ledger, id(i)))?.0))
                .collect::<Result<Vec<_>>>()
        },
    )?;
    let (raw, led) = (raw.concat(), led.concat());
    let (r, l) = (median(&raw), median(&led));
    let ratio = r.as_secs_f64() / l.as_secs_f64();
    eprintln!("   about {} entries per mitigation", rows / 20);
    let lib = Case {
        case: format!("log --mitigation, library query (~{} rows)", rows / 20),
        raw: ms(r),
        ledger: ms(l),
        ratio: Some(ratio),
        goal: "< 5 ms".into(),
        pass: Some(l < Duration::from_millis(5)),
        raw_median_s: Some(r.as_secs_f64()),
        ledger_median_s: l.as_secs_f64(),
        samples: blocks * BLOCK,
    };
    let bin = env!("CARGO_BIN_EXE_airlock-ledger");
    // One `airlock-ledger log --mitigation ID --format json >/dev/null` process.
    let run = |mitigation: &str| -> Result<Duration> {
        let (t, status) = timed(|| {
            Ok(Command::new(bin)
                .arg("--db")
                .arg(db)
                .args(["log", "--mitigation", mitigation, "--format", "json"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()?)
        })?;
        if !status.success() {
            return Err(format!("{bin} log failed: {status}").into());
        }
        Ok(t)
    };
    run(id(0))?;
    let times = (0..o.processes)
        .map(|i| run(id(i)))
        .collect::<Result<Vec<_>>>()?;
    let p = median(&times);
    let process = Case {
        case: format!(
            "log --mitigation --format json, process (~{} rows of output)",
            rows / 20
        ),
        raw: "-".into(),
        ledger: ms(p),
        ratio: None,
        goal: "(informational)".into(),
        pass: None,
        raw_median_s: None,
        ledger_median_s: p.as_secs_f64(),
        samples: o.processes,
    };
    // A mitigation with a typical history: 1 entry in 50,000, spread over the file.
    let rare = mitigation_id(RARE);
    let rare_rows = ledger_query(&ledger, &rare)?;
    let rare_times = (0..o.processes)
        .map(|_| run(&rare))
        .collect::<Result<Vec<_>>>()?;
    let start_times = (0..o.processes)
        .map(|_| {
            timed(|| {
                Ok(Command::new(bin)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()?)
            })
            .map(|(t, _)| t)
        })
        .collect::<Result<Vec<_>>>()?;
    let pr = median(&rare_times);
    let ps = median(&start_times);
    let rare_case = Case {
        case: format!(
            "log --mitigation --format json, process ({rare_rows} rows spread over the ledger; process start alone {:.2} ms)",
            ps.as_secs_f64() * 1e3
        ),
        raw: "-".into(),
        ledger: ms(pr),
        ratio: None,
        goal: "< 5 ms".into(),
        pass: Some(pr < Duration::from_millis(5)),
        raw_median_s: Some(ps.as_secs_f64()),
        ledger_median_s: pr.as_secs_f64(),
        samples: o.processes,
    };
    Ok(vec![lib, process, rare_case])
}

fn table(cases: &[Case]) -> String {
    let mut out = String::from(
        "| case | raw | ledger | ratio | goal | pass |\n|---|---:|---:|---:|---|---|\n",
    );
    for c in cases {
        let ratio = c
            .ratio
            .map(|r| format!("{r:.2}"))
            .unwrap_or_else(|| "-".into());
        let pass = match c.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {ratio} | {} | {pass} |\n",
            c.case, c.raw, c.ledger, c.goal
        ));
    }
    out
}

/// Whether `--dir` holds a ledger-bulk.db of the right size from an earlier run.
fn reusable(db: &Path, entries: u64) -> bool {
    let ok = db.is_file()
        && Ledger::open_read_only(db)
            .and_then(|l| l.head())
            .is_ok_and(|h| h.seq == entries + 1);
    if ok {
        say(format!("reusing {}", db.display()));
    }
    ok
}

fn run() -> Result<bool> {
    let Some(o) = options()? else {
        return Ok(true);
    };
    say(format!("preparing {} entries", o.entries));
    let f = fixture(&o)?;
    let sizes = f.rows.iter().map(|r| r.detail.len());
    eprintln!(
        "   details {}-{} bytes, average {}; databases in {}",
        sizes.clone().min().unwrap_or(0),
        sizes.clone().max().unwrap_or(0),
        sizes.sum::<usize>() / f.rows.len().max(1),
        f.dir.display()
    );
    let big = f.dir.join("ledger-bulk.db");
    let want = |c: &str| o.cases.iter().any(|x| x == c);
    let mut cases = Vec::new();
    if want("bulk") {
        cases.push(bulk(&o, &f, &big)?);
    } else if (want("verify") || want("log")) && !reusable(&big, o.entries) {
        say(format!(
            "making a ledger of {} entries (untimed)",
            o.entries
        ));
        remove_db(&big)?;
        Ledger::create(&big, HOST, &f.key, ACTOR)?.append_batch(f.entries.clone())?;
    }
    let variants = if o.variants {
        Some(variants(&o, &f)?)
    } else {
        None
    };
    if want("durable") {
        cases.push(durable(&o, &f)?);
    }
    if want("verify") {
        cases.push(verify(&o, &big)?);
    }
    if want("log") {
        cases.extend(query(&o, &big)?);
    }
    // With --dir, ledger-bulk.db stays there for profiling (`--cases log` etc.).
    let pass = cases.iter().all(|c| c.pass != Some(false));
    println!("\n{}", table(&cases));
    if let Some(serde_json::Value::Array(vs)) = &variants {
        println!(
            "| raw bulk append, {} entries | entries/s | x raw |\n|---|---:|---:|",
            o.entries
        );
        for v in vs {
            let t = v["median_s"].as_f64().unwrap_or(f64::NAN);
            println!(
                "| {} | {:.0}k | {:.2} |",
                v["variant"].as_str().unwrap_or("?"),
                o.entries as f64 / t / 1000.0,
                v["speedup"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    println!("verdict: {}", if pass { "PASS" } else { "FAIL" });
    if let Some(path) = &o.results {
        let json = serde_json::json!({
            "entries": o.entries,
            "rounds": o.rounds,
            "verify_rounds": o.verify_rounds,
            "verdict": if pass { "PASS" } else { "FAIL" },
            "cases": cases,
            "raw_variants": variants,
        });
        std::fs::write(path, format!("{json:#}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(pass)
}

fn main() -> ExitCode {
    match run() {
        // A missed goal is a result, not a failure of the bench: bench/ledger.sh reads
        // the verdict.
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
