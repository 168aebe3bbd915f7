//! The `airlock-ledger` commands: resolve the database, run one command, and map
//! the outcome to the shared exit codes.

use crate::checkpoint::Checkpoint;
use crate::cli::{
    CheckpointArgs, Cli, Command, ExportArgs, Format, LogArgs, ProofArgs, ShowArgs, VerifyArgs,
};
use crate::entry::parse_ts;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::render;
use crate::store::{Ledger, Query};
use crate::verify::{Report, VerifyOptions};
use airlock_format::Exit;
use airlock_format::keys::{PublicKey, SecretKey};
use airlock_format::profile::{Profile, locate};
use chrono::{DateTime, NaiveDate, Utc};
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Runs `airlock-ledger` with `args` (including the program name) and returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Exit {
    let cli: Cli = match airlock_format::output::parse_args(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = cli.verbosity.output("airlock-ledger");
    let json = matches!(&cli.command, Command::Verify(a) if a.json);
    let result = run(&cli, &out);
    if let (Err(e), true) = (&result, json) {
        let seq = match e {
            Error::Broken { seq, .. } => *seq,
            _ => None,
        };
        out.json(&serde_json::json!({ "ok": false, "seq": seq, "error": e.to_string() }));
    }
    out.finish(result)
}

fn run(cli: &Cli, out: &Output) -> Result<()> {
    match &cli.command {
        Command::Verify(a) => verify(cli, a, out),
        Command::Log(a) => log(cli, a),
        Command::Show(a) => show(cli, a, out),
        Command::Export(a) => export(cli, a, out),
        Command::Checkpoint(a) => checkpoint(cli, a, out),
        Command::Report(a) => {
            let db = db_path(cli)?;
            check_out(&a.html, &protected(&db, a.proof.key.as_deref()))?;
            crate::report::report(&db, a, out)
        }
    }
}

/// `--db`, else `ledger.db` in the profile's state_dir.
fn db_path(cli: &Cli) -> Result<PathBuf> {
    if let Some(db) = &cli.db {
        return Ok(db.clone());
    }
    let profile = Profile::load(&locate(cli.profile.as_deref()))?;
    Ok(profile.ledger_path())
}

/// The host key to check checkpoint signatures with: `--key`, else `host.pub`
/// beside the database when there is one.
pub(crate) fn host_key(
    proof: &ProofArgs,
    db: Option<&Path>,
) -> Result<Option<(PathBuf, PublicKey)>> {
    let path = proof
        .key
        .clone()
        .or_else(|| db.map(|d| beside(d, "host.pub")).filter(|p| p.is_file()));
    match path {
        Some(p) => Ok(Some((p.clone(), PublicKey::from_file(&p)?))),
        None => Ok(None),
    }
}

/// A file beside the database (`host.key`, `host.pub`).
fn beside(db: &Path, name: &str) -> PathBuf {
    airlock_format::fsutil::parent_dir(db).join(name)
}

fn verify(cli: &Cli, a: &VerifyArgs, out: &Output) -> Result<()> {
    let db = if a.export.is_none() {
        Some(db_path(cli)?)
    } else {
        None
    };
    let key = host_key(&a.proof, db.as_deref())?;
    if let Some((p, k)) = &key {
        out.detail(format!("host key {} from {}", k.id(), p.display()));
    }
    let key_path = key.as_ref().map(|(p, _)| p.clone());
    let key = key.map(|(_, k)| k);
    let checkpoint = match &a.proof.checkpoint {
        Some(path) => {
            let cp = Checkpoint::read(path)?;
            // The CLI already requires --key with --checkpoint; fail closed anyway.
            let k = key.as_ref().ok_or_else(|| {
                Error::Invalid(
                    "--checkpoint needs the host's public key: pass --key HOST.pub".into(),
                )
            })?;
            cp.verify(k)?;
            out.detail(format!(
                "checkpoint {}: ledger {} size {} signed at {}, signature good",
                path.display(),
                cp.ledger,
                cp.size,
                cp.time
            ));
            Some(cp)
        }
        None => None,
    };
    let opts = VerifyOptions {
        key: key.as_ref(),
        checkpoint: checkpoint.as_ref(),
    };
    let (source, report) = match (&a.export, db) {
        (Some(export), _) => (export.clone(), crate::export::verify_export(export, opts)?),
        (None, Some(db)) => {
            let ledger = Ledger::open_read_only(&db)?;
            let size = ledger.head().map(|h| h.seq).unwrap_or(0);
            let progress = out.progress(a.json, size as usize, "verifying entries");
            let report = ledger.verify_showing(opts, &progress)?;
            (db, report)
        }
        (None, None) => return Err(Error::Invalid("nothing to verify".into())),
    };
    if report.checkpoints == 0 && checkpoint.is_none() {
        out.warn(
            "nothing in this ledger is signed (no checkpoint stored, none given): the chain is consistent, but only a checkpoint signed by the host key proves it is this host's ledger",
        );
    }
    for w in &report.clock_warnings {
        out.warn(format!(
            "entry {} has time {}, earlier than the entry before it ({}): the host clock went backwards",
            w.seq, w.ts, w.previous_ts
        ));
    }
    if a.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("ok".into(), true.into());
            obj.insert("source".into(), source.display().to_string().into());
        }
        out.json(&v);
        return Ok(());
    }
    print_report(&report, &source, key_path.as_deref(), out);
    Ok(())
}

fn print_report(r: &Report, source: &Path, key: Option<&Path>, out: &Output) {
    out.line(format!(
        "ledger {} (host {}): {} entries, chain intact",
        r.ledger, r.host, r.entries
    ));
    out.line(format!("  source      {}", source.display()));
    out.line(format!("  head        {} at {}", r.head, r.last_ts));
    match key {
        _ if r.checkpoints == 0 => out.line(
            "  checkpoints none stored: nothing in this ledger is signed yet, so only a checkpoint you hold can prove it is this host's ledger",
        ),
        Some(k) => out.line(format!(
            "  checkpoints {} stored, every signature checked with host key {} ({})",
            r.checkpoints,
            r.host_key,
            k.display()
        )),
        None => out.line(format!(
            "  checkpoints {} stored, signatures NOT checked: pass --key HOST.pub",
            r.checkpoints
        )),
    }
    if let Some(size) = r.extends_checkpoint {
        out.line(format!(
            "  proven      extends the checkpoint of size {size}: no entry up to {size} was changed, removed or reordered"
        ));
    }
}

fn log(cli: &Cli, a: &LogArgs) -> Result<()> {
    let db = db_path(cli)?;
    let ledger = Ledger::open_read_only(&db)?;
    let q = Query {
        since: a.since,
        until: a.until,
        kind: a.kind.clone(),
        mitigation: a.mitigation.clone(),
        bundle: a.bundle.clone(),
    };
    let stdout = std::io::stdout();
    let mut w = BufWriter::new(stdout.lock());
    // Writes to a closed pipe (`| head`) end the listing quietly.
    let mut closed = false;
    let mut put = |r: std::io::Result<()>| {
        if r.is_err() {
            closed = true;
        }
    };
    match a.format {
        Format::Table => put(render::table_header(&mut w)),
        Format::Csv => put(write!(w, "{}\r\n", render::CSV_HEADER)),
        Format::Json => put(w.write_all(b"[")),
    }
    let mut first = true;
    ledger.query(&q, |e| {
        if closed {
            return Ok(());
        }
        let r = match a.format {
            Format::Table => render::table_row(&mut w, &e),
            Format::Csv => render::csv_row(&mut w, &e),
            Format::Json => {
                let sep: &[u8] = if first { b"\n" } else { b",\n" };
                w.write_all(sep)
                    .and_then(|_| render::write_json(&mut w, &e))
            }
        };
        first = false;
        if r.is_err() {
            closed = true;
        }
        Ok(())
    })?;
    if a.format == Format::Json && !closed {
        let _ = w.write_all(if first { b"]\n" } else { b"\n]\n" });
    }
    let _ = w.flush();
    Ok(())
}

/// `--since T` (clap value parser): a bad value is a usage error (exit 2).
pub(crate) fn parse_since(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_time(s, false)
}

/// `--until T` (clap value parser): a date includes the whole day.
pub(crate) fn parse_until(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_time(s, true)
}

/// RFC 3339, a date (start of day, or end of day for `--until`), or an age such
/// as `7d` (that long before now).
fn parse_time(s: &str, end_of_day: bool) -> std::result::Result<DateTime<Utc>, String> {
    if let Some(t) = airlock_format::time::parse_rfc3339(s).or_else(|| parse_ts(s)) {
        return Ok(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc());
        }
    }
    match airlock_format::time::parse_duration(s) {
        Ok(d) => Ok(Utc::now() - d),
        Err(_) => Err(format!(
            "'{s}' is not a time: use RFC 3339 (2026-11-28T08:00:00Z), a date (2026-11-28) or an age (7d)"
        )),
    }
}

fn show(cli: &Cli, a: &ShowArgs, out: &Output) -> Result<()> {
    let db = db_path(cli)?;
    let ledger = Ledger::open_read_only(&db)?;
    let Some(e) = ledger.entry(a.seq)? else {
        let head = ledger.head()?.seq;
        return Err(airlock_format::Error::Unusable {
            message: format!(
                "the ledger has no entry {} (entries are 1 to {head})",
                a.seq
            ),
            hint: "airlock-ledger log lists the entries with their numbers".into(),
        }
        .into());
    };
    if a.json {
        out.json(&render::json_value(&e));
        return Ok(());
    }
    out.line(format!("entry {}", e.seq));
    for (k, v) in [
        ("time", Some(e.ts.as_str())),
        ("host", Some(e.host.as_str())),
        ("actor", Some(e.actor.as_str())),
        ("kind", Some(e.kind.as_str())),
        ("bundle", e.bundle.as_deref()),
        ("mitigation", e.mitigation.as_deref()),
        ("prev_hash", Some(e.prev_hash.as_str())),
        ("hash", Some(e.hash.as_str())),
    ] {
        out.line(format!("  {k:<11} {}", v.unwrap_or("-").escape_debug()));
    }
    out.line("  detail");
    let pretty = serde_json::to_string_pretty(&e.detail_json()).unwrap_or_default();
    for l in pretty.lines() {
        out.line(format!("    {l}"));
    }
    Ok(())
}

fn export(cli: &Cli, a: &ExportArgs, out: &Output) -> Result<()> {
    let db = db_path(cli)?;
    check_out(&a.out, &protected(&db, None))?;
    let ledger = Ledger::open_read_only(&db)?;
    let size = ledger.head().map(|h| h.seq).unwrap_or(0);
    let progress = out.progress(a.json, size as usize, "exporting entries");
    let s = ledger.export_showing(&a.out, &progress)?;
    drop(progress);
    if a.json {
        out.json(&serde_json::json!({
            "out": a.out.display().to_string(),
            "ledger": ledger.id(),
            "entries": s.entries,
            "head": s.head,
            "checkpoint_size": s.checkpoint_size,
        }));
        return Ok(());
    }
    out.line(format!(
        "exported {} entries of ledger {} to {}",
        s.entries,
        ledger.id(),
        a.out.display()
    ));
    match s.checkpoint_size {
        Some(n) => out.line(format!("  latest checkpoint covers entries 1 to {n}")),
        None => out.line("  the ledger has no checkpoint yet: run airlock-ledger checkpoint first so the export can be tied to the host key"),
    }
    out.line(format!(
        "  check it anywhere with: airlock-ledger verify --export {} --key HOST.pub",
        a.out.display()
    ));
    Ok(())
}

/// The files an `--out` must never replace: the database with its WAL and shared
/// memory, and the host key pair beside it (plus the key in use).
fn protected(db: &Path, key: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![db.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        v.push(p.into());
    }
    v.push(beside(db, "host.key"));
    v.push(beside(db, "host.pub"));
    v.extend(key.map(Path::to_path_buf));
    v
}

/// Refuses an output path that is a directory, lies in a missing directory, or is
/// one of the `keep` files, before anything is written or recorded.
fn check_out(out: &Path, keep: &[PathBuf]) -> Result<()> {
    if out.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {} is a directory: give a file name",
            out.display()
        )));
    }
    let dir = airlock_format::fsutil::parent_dir(out);
    let resolved = std::fs::canonicalize(dir)
        .map_err(|e| airlock_format::Error::io("find the directory", dir, e))?
        .join(out.file_name().unwrap_or_default());
    for k in keep {
        if std::fs::canonicalize(k).is_ok_and(|k| k == resolved) {
            return Err(Error::Invalid(format!(
                "--out {} would replace {}, which airlock-ledger never overwrites",
                out.display(),
                k.display()
            )));
        }
    }
    Ok(())
}

fn checkpoint(cli: &Cli, a: &CheckpointArgs, out: &Output) -> Result<()> {
    let db = db_path(cli)?;
    let key_path = a
        .host_key
        .clone()
        .unwrap_or_else(|| beside(&db, "host.key"));
    let key = SecretKey::from_file(&key_path, &a.password)?;
    if let Some(out) = &a.out {
        let keep = protected(&db, Some(&key_path));
        check_out(out, &keep)?;
        check_out(&crate::checkpoint::signature_path(out), &keep)?;
    }
    let mut ledger = Ledger::open(&db)?;
    let cp = ledger.checkpoint(&key, &crate::actor("airlock-ledger"))?;
    if let Some(path) = &a.out {
        cp.write(path)?;
    }
    if a.json {
        out.json(&serde_json::json!({
            "ledger": cp.ledger,
            "host": cp.host,
            "size": cp.size,
            "head": cp.head.hex(),
            "time": cp.time,
            "key": key.id().to_string(),
            "entry": cp.size + 1,
            "out": a.out.as_ref().map(|p| p.display().to_string()),
        }));
        return Ok(());
    }
    out.line(format!(
        "checkpoint of ledger {} at size {} signed with host key {}",
        cp.ledger,
        cp.size,
        key.id()
    ));
    out.line(format!("  head        {}", cp.head));
    out.line(format!("  stored as   entry {}", cp.size + 1));
    if let Some(path) = &a.out {
        out.line(format!(
            "  written to  {} and {}",
            path.display(),
            crate::checkpoint::signature_path(path).display()
        ));
    }
    Ok(())
}
