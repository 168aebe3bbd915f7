//! `ledger-fixture`: a TEST-ONLY tool that creates and fills airlock ledgers through
//! the `airlock-ledger` library, so the end-to-end tamper and crash tests can run
//! real writer processes (and kill them). Never ship it or point it at a real ledger.
//!
//! ```text
//! ledger-fixture create DB HOST           new ledger; unencrypted DIR/host.key (0600) and DIR/host.pub beside DB
//! ledger-fixture append DB N [BATCH]      N entries in batches of BATCH (default 1); prints `committed SEQ` per batch
//! ledger-fixture checkpoint DB            stores a checkpoint signed with DIR/host.key; prints `checkpoint SIZE`
//! ledger-fixture append-at DB RFC3339     one entry with that time; prints `committed SEQ`
//! ```
//!
//! Entry `i` (the seq it gets when no other process appends at the same time) has
//! kind `bundle.verified` (bundle only), `mitigation.applied` (bundle and mitigation)
//! or `mitigation.skipped` (mitigation only) for `i % 3` = 0, 1, 2; mitigation
//! `m-{i % 10}`, bundle `b-{i / 100}`, and detail `{"i":i,"note":"fixture entry i"}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock_format::fsutil;
use airlock_format::keys::{PasswordSource, PublicKey, SecretKey, generate};
use airlock_ledger::{Ledger, NewEntry};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The actor of every entry the fixture writes.
const ACTOR: &str = "ledger-fixture";

const USAGE: &str = "usage:
  ledger-fixture create DB HOST
  ledger-fixture append DB N [BATCH]
  ledger-fixture checkpoint DB
  ledger-fixture append-at DB RFC3339";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        ["create", db, host] => create(Path::new(db), host),
        ["append", db, n] => number(n, "N").and_then(|n| append(Path::new(db), n, 1)),
        ["append", db, n, batch] => number(n, "N").and_then(|n| {
            number(batch, "BATCH")
                .and_then(|b| {
                    if b == 0 {
                        Err("BATCH must be at least 1".into())
                    } else {
                        Ok(b)
                    }
                })
                .and_then(|b| append(Path::new(db), n, b))
        }),
        ["checkpoint", db] => checkpoint(Path::new(db)),
        ["append-at", db, ts] => append_at(Path::new(db), ts),
        _ => {
            eprintln!("ledger-fixture: error: unknown command or wrong arguments\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger-fixture: error: {e}");
            ExitCode::from(1)
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn number(s: &str, name: &str) -> Result<u64> {
    s.parse()
        .map_err(|_| format!("{name} '{s}' is not a whole number\n{USAGE}"))
}

/// A ledger error with its "what to do" line.
fn lerr(e: airlock_ledger::Error) -> String {
    format!("{e}\n  what to do: {}", e.hint())
}

/// A file beside the database.
fn beside(db: &Path, name: &str) -> PathBuf {
    fsutil::parent_dir(db).join(name)
}

fn create(db: &Path, host: &str) -> Result<()> {
    let key = generate(None, "host").map_err(|e| format!("cannot generate a host key: {e}"))?;
    let secret = beside(db, "host.key");
    let public = beside(db, "host.pub");
    fsutil::create_private(&secret, key.secret.0.as_bytes()).map_err(|e| e.to_string())?;
    fsutil::write_atomic(&public, key.public.as_bytes(), None).map_err(|e| e.to_string())?;
    let pk = PublicKey::from_file(&public).map_err(|e| e.to_string())?;
    let ledger = Ledger::create(db, host, &pk, ACTOR).map_err(lerr)?;
    println!(
        "created {} for host {host} with host key {}",
        ledger.id(),
        pk.id()
    );
    Ok(())
}

fn entry(i: u64) -> NewEntry {
    let detail = serde_json::json!({ "i": i, "note": format!("fixture entry {i}") });
    let bundle = format!("b-{}", i / 100);
    let mitigation = format!("m-{}", i % 10);
    match i % 3 {
        0 => NewEntry::new("bundle.verified", ACTOR, detail).bundle(&bundle),
        1 => NewEntry::new("mitigation.applied", ACTOR, detail)
            .bundle(&bundle)
            .mitigation(&mitigation),
        _ => NewEntry::new("mitigation.skipped", ACTOR, detail).mitigation(&mitigation),
    }
}

fn committed(seq: u64) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "committed {seq}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

fn append(db: &Path, n: u64, batch: u64) -> Result<()> {
    let mut ledger = Ledger::open(db).map_err(lerr)?;
    let start = ledger.head().map_err(lerr)?.seq + 1;
    let mut done = 0;
    while done < n {
        let size = batch.min(n - done);
        let first = start + done;
        let head = ledger
            .append_batch((first..first + size).map(entry))
            .map_err(lerr)?;
        committed(head.seq)?;
        done += size;
    }
    Ok(())
}

fn checkpoint(db: &Path) -> Result<()> {
    let key = SecretKey::from_file(&beside(db, "host.key"), &PasswordSource::default())
        .map_err(|e| e.to_string())?;
    let mut ledger = Ledger::open(db).map_err(lerr)?;
    let cp = ledger.checkpoint(&key, ACTOR).map_err(lerr)?;
    println!("checkpoint {}", cp.size);
    Ok(())
}

fn append_at(db: &Path, ts: &str) -> Result<()> {
    let t = airlock_format::time::parse_rfc3339(ts)
        .ok_or_else(|| format!("'{ts}' is not an RFC 3339 time (such as 2026-11-28T08:00:00Z)"))?;
    let mut ledger = Ledger::open(db).map_err(lerr)?;
    let i = ledger.head().map_err(lerr)?.seq + 1;
    let head = ledger.append(entry(i).at(t)).map_err(lerr)?;
    committed(head.seq)
}
