//! `airlock-ledger report --html OUT.html`: one self-contained HTML page for an
//! auditor's offline laptop. It shows the chain status (the same walk as `verify`),
//! entries over time as an inline SVG chart, the apply and rollback runs, each
//! mitigation's history, and every refusal and failure.
//!
//! Invariants:
//! - every value taken from the ledger goes through [`esc`] before it reaches the
//!   page (entries' details are outside input), and the page loads nothing: no URL,
//!   no script, no font, and a Content-Security-Policy that forbids all three;
//! - the entries are read once, in `seq` order, and folded into bounded aggregates
//!   (at most [`MAX_ROWS`] rows per table, [`MAX_EVENTS`] events per mitigation,
//!   one counter per hour of the chart), so a ledger of millions of entries gives a
//!   page of bounded size in linear time;
//! - a broken chain still gives a report: the page says BROKEN with the reason, and
//!   the command then exits 3 like `verify`.

use crate::checkpoint::Checkpoint;
use crate::cli::ReportArgs;
use crate::entry::{EntryRef, format_ts};
use crate::error::{Error, Result};
use crate::output::Output;
use crate::store::{Ledger, checkpoint_from_detail};
use crate::verify::{Report as Verified, VerifyOptions};
use airlock_format::Exit;
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// Rows shown at most in the runs and refusals tables (the newest ones), and
/// mitigations and entry kinds tracked at most.
const MAX_ROWS: usize = 1000;
/// Events kept per mitigation (the newest ones).
const MAX_EVENTS: usize = 25;
/// Approvals listed per run.
const MAX_APPROVALS: usize = 20;
/// Characters of a reason or other free text shown before it is cut with `…`.
const MAX_TEXT: usize = 400;
/// Bars of the chart at most (the bucket width grows to stay under it).
const MAX_BARS: i64 = 400;

/// Writes the report of the ledger `db` (the caller has checked that `a.html`
/// replaces nothing airlock keeps). A broken chain is shown in the report and
/// then returned as the error (exit 3).
pub(crate) fn report(db: &Path, a: &ReportArgs, out: &Output) -> Result<()> {
    let ledger = Ledger::open_read_only(db)?;
    let chain = check_chain(db, &ledger, a)?;
    let mut tally = Tally::default();
    if let Err(e) = ledger.scan(|e, _| {
        tally.add(&e);
        Ok(())
    }) {
        if e.exit() != Exit::Verification {
            return Err(e);
        }
        tally.stopped = Some(e.to_string());
    }
    let latest = tally
        .last_checkpoint
        .as_ref()
        .map(|(seq, detail)| (*seq, checkpoint_from_detail(*seq, detail)));
    let page = Page {
        ledger: &ledger,
        db,
        chain: &chain,
        tally: &tally,
        latest: latest.as_ref(),
        generated: format_ts(&chrono::Utc::now()),
    };
    let html = page.render();
    airlock_format::fsutil::write_atomic(&a.html, html.as_bytes(), None)?;

    let summary = tally.summary(&ledger, &chain, &a.html, html.len(), latest.as_ref());
    if a.json {
        out.json(&summary);
    } else {
        out.line(format!(
            "report of ledger {} (host {}): {} entries, {} runs, {} refusals and failures, chain {}",
            ledger.id(),
            ledger.host(),
            tally.entries,
            tally.runs.ids.len(),
            tally.refusals_total,
            if chain.result.is_ok() { "intact" } else { "BROKEN" }
        ));
        out.line(format!(
            "  written to  {} ({} KiB, self-contained: open it in any browser, offline)",
            a.html.display(),
            html.len().div_ceil(1024)
        ));
    }
    match chain.result {
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The outcome of the `verify` walk, and what it was run with.
#[derive(Debug)]
struct Chain {
    result: Result<Verified>,
    key: Option<(String, PathBuf)>,
    checkpoint: Option<PathBuf>,
}

/// Runs the same checks as `airlock-ledger verify`: the host key given (else
/// `host.pub` beside the database), the auditor's checkpoint, then the walk. A
/// verification failure is kept for the report; anything else (a missing file,
/// an unreadable key) stops the command.
fn check_chain(db: &Path, ledger: &Ledger, a: &ReportArgs) -> Result<Chain> {
    let key = crate::commands::host_key(&a.proof, Some(db))?;
    let mut chain = Chain {
        result: Err(Error::Invalid("not verified".into())),
        key: key.as_ref().map(|(p, k)| (k.id().to_string(), p.clone())),
        checkpoint: a.proof.checkpoint.clone(),
    };
    let key = key.map(|(_, k)| k);
    let held = match &a.proof.checkpoint {
        Some(path) => {
            // The CLI already requires --key with --checkpoint; fail closed anyway.
            let k = key.as_ref().ok_or_else(|| {
                Error::Invalid(
                    "--checkpoint needs the host's public key: pass --key HOST.pub".into(),
                )
            })?;
            match Checkpoint::read(path).and_then(|cp| cp.verify(k).map(|()| cp)) {
                Ok(cp) => Some(cp),
                Err(e) if e.exit() == Exit::Verification => {
                    chain.result = Err(e);
                    return Ok(chain);
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    chain.result = match ledger.verify(VerifyOptions {
        key: key.as_ref(),
        checkpoint: held.as_ref(),
    }) {
        Err(e) if e.exit() != Exit::Verification => return Err(e),
        r => r,
    };
    Ok(chain)
}

/// The class of an entry kind, for the chart and the colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A mitigation applied, updated, removed or rolled back.
    Change,
    /// A refusal or a failure: shown in red.
    Refusal,
    /// Everything else (verifications, plans, approvals, checkpoints, skips).
    Other,
}

fn class(kind: &str) -> Class {
    match kind {
        "mitigation.applied"
        | "mitigation.updated"
        | "mitigation.removed"
        | "mitigation.rolled_back" => Class::Change,
        _ if is_refusal(kind) => Class::Refusal,
        _ => Class::Other,
    }
}

/// `*.refused`, `*.failed`, `bundle.rejected` and `sync.ignored` (which covers
/// `sync.refused` too).
fn is_refusal(kind: &str) -> bool {
    kind.ends_with(".refused")
        || kind.ends_with(".failed")
        || kind == "bundle.rejected"
        || kind == "sync.ignored"
}

/// The mitigation events of a history, in column order.
const MITIGATION_EVENTS: [&str; 6] = [
    "applied",
    "updated",
    "removed",
    "rolled_back",
    "skipped",
    "failed",
];

/// Everything the page shows, folded from one pass over the entries.
#[derive(Debug, Default)]
struct Tally {
    entries: u64,
    first_seq: Option<u64>,
    last_seq: u64,
    /// Earliest and latest entry time (the host clock may go backwards).
    first_ts: Option<String>,
    last_ts: Option<String>,
    kinds: BTreeMap<String, u64>,
    /// Entries of kinds beyond the first [`MAX_ROWS`] distinct ones.
    other_kinds: u64,
    /// Entries per hour (`YYYY-MM-DDTHH`), by [`Class`].
    hours: BTreeMap<String, [u64; 3]>,
    /// Entries whose time is not in airlock's form (only in a broken ledger).
    untimed: u64,
    runs: Runs,
    mitigations: BTreeMap<String, History>,
    /// Mitigations beyond the first [`MAX_ROWS`], and their entries.
    more_mitigations: HashSet<String>,
    more_mitigation_entries: u64,
    refusals: VecDeque<Refusal>,
    refusals_total: u64,
    last_checkpoint: Option<(u64, String)>,
    /// Why the read stopped early (a row of the wrong type in a damaged database).
    stopped: Option<String>,
}

/// Runs by id: every id seen (to count them), the newest [`MAX_ROWS`] in full.
#[derive(Debug, Default)]
struct Runs {
    /// Run id -> seq of its first entry.
    ids: HashMap<String, u64>,
    /// First seq -> run, the newest [`MAX_ROWS`].
    rows: BTreeMap<u64, Run>,
}

#[derive(Debug, Default)]
struct Run {
    id: String,
    command: Option<String>,
    start: String,
    end: String,
    started: bool,
    completed: bool,
    failed: Option<String>,
    interrupted: Option<String>,
    bundle: Option<String>,
    plan: Option<String>,
    files: Option<String>,
    units: Option<String>,
    kept: Option<String>,
    /// Mitigation entries of the run, per [`MITIGATION_EVENTS`].
    counts: [u64; 6],
    approvals: Vec<(String, String)>,
    more_approvals: u64,
    forced: bool,
    downgrade_from: Option<String>,
}

#[derive(Debug, Default)]
struct History {
    events: VecDeque<Event>,
    total: u64,
    counts: [u64; 6],
}

#[derive(Debug)]
struct Event {
    seq: u64,
    ts: String,
    what: usize,
    revision: String,
    run: Option<String>,
    bundle: Option<String>,
    approved_by: Vec<(String, String)>,
    note: String,
}

#[derive(Debug)]
struct Refusal {
    seq: u64,
    ts: String,
    kind: String,
    bundle: Option<String>,
    mitigation: Option<String>,
    exit: Option<String>,
    reason: String,
}

/// A detail field as text: strings as they are, numbers and booleans printed,
/// anything else as compact JSON; `None` when missing or null.
fn field(d: &Value, k: &str) -> Option<String> {
    match d.get(k)? {
        Value::Null => None,
        Value::String(s) => Some(clip(s)),
        v => Some(clip(&v.to_string())),
    }
}

/// `s` cut to [`MAX_TEXT`] characters with `…`.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `[{key, ticket}]` of `approved_by`.
fn approvers(d: &Value) -> Vec<(String, String)> {
    d.get("approved_by")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .take(MAX_APPROVALS)
                .map(|a| {
                    (
                        field(a, "key").unwrap_or_default(),
                        field(a, "ticket").unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Tally {
    fn add(&mut self, e: &EntryRef<'_>) {
        self.entries += 1;
        self.first_seq.get_or_insert(e.seq);
        self.last_seq = e.seq;
        let full = self.kinds.len() >= MAX_ROWS;
        match self.kinds.get_mut(e.kind) {
            Some(n) => *n += 1,
            None if !full => {
                self.kinds.insert(e.kind.to_string(), 1);
            }
            None => self.other_kinds += 1,
        }
        let cls = class(e.kind);
        // Every valid time has 27 ASCII characters, so text order is time order.
        if e.ts.len() == 27 && e.ts.is_ascii() {
            if self.first_ts.as_deref().is_none_or(|t| e.ts < t) {
                self.first_ts = Some(e.ts.to_string());
            }
            if self.last_ts.as_deref().is_none_or(|t| e.ts > t) {
                self.last_ts = Some(e.ts.to_string());
            }
            let hour = &e.ts[..13];
            match self.hours.get_mut(hour) {
                Some(slot) => slot[cls as usize] += 1,
                None => {
                    let mut slot = [0; 3];
                    slot[cls as usize] = 1;
                    self.hours.insert(hour.to_string(), slot);
                }
            }
        } else {
            self.untimed += 1;
        }
        if e.kind == "checkpoint" {
            self.last_checkpoint = Some((e.seq, e.detail.to_string()));
            return;
        }
        let d: Value = serde_json::from_str(e.detail).unwrap_or(Value::Null);
        if let Some(run) = d.get("run").and_then(Value::as_str) {
            self.runs.add(run, e, &d);
        }
        if let (Some(m), Some(what)) = (
            e.mitigation,
            e.kind
                .strip_prefix("mitigation.")
                .and_then(|k| MITIGATION_EVENTS.iter().position(|x| *x == k)),
        ) {
            self.add_event(m, what, e, &d);
        }
        if cls == Class::Refusal {
            self.refusals_total += 1;
            if self.refusals.len() == MAX_ROWS {
                self.refusals.pop_front();
            }
            self.refusals.push_back(Refusal {
                seq: e.seq,
                ts: e.ts.to_string(),
                kind: e.kind.to_string(),
                bundle: e.bundle.map(str::to_string),
                mitigation: e.mitigation.map(str::to_string),
                exit: field(&d, "exit"),
                reason: field(&d, "reason")
                    .or_else(|| field(&d, "error"))
                    .or_else(|| (!d.is_object()).then(|| clip(e.detail)))
                    .unwrap_or_default(),
            });
        }
    }

    fn add_event(&mut self, m: &str, what: usize, e: &EntryRef<'_>, d: &Value) {
        if !self.mitigations.contains_key(m) && self.mitigations.len() >= MAX_ROWS {
            if !self.more_mitigations.contains(m) {
                self.more_mitigations.insert(m.to_string());
            }
            self.more_mitigation_entries += 1;
            return;
        }
        let h = match self.mitigations.get_mut(m) {
            Some(h) => h,
            None => self.mitigations.entry(m.to_string()).or_default(),
        };
        h.total += 1;
        h.counts[what] += 1;
        if h.events.len() == MAX_EVENTS {
            h.events.pop_front();
        }
        let revision = match (field(d, "from_revision"), field(d, "revision")) {
            (Some(from), Some(to)) => format!("{from} → {to}"),
            (_, r) => r.unwrap_or_default(),
        };
        let note = match (field(d, "reason"), field(d, "error"), field(d, "step")) {
            (_, Some(err), Some(step)) => format!("{step}: {err}"),
            (Some(r), _, _) | (None, Some(r), _) => r,
            _ if d.get("forced_over_drift") == Some(&Value::Bool(true)) => {
                "forced over drift".into()
            }
            _ => String::new(),
        };
        h.events.push_back(Event {
            seq: e.seq,
            ts: e.ts.to_string(),
            what,
            revision,
            run: field(d, "run"),
            bundle: e.bundle.map(str::to_string),
            approved_by: approvers(d),
            note,
        });
    }

    /// The numbers of the report, for `--json` (and the tests).
    fn summary(
        &self,
        ledger: &Ledger,
        chain: &Chain,
        html: &Path,
        bytes: usize,
        latest: Option<&(u64, Result<Checkpoint>)>,
    ) -> Value {
        let (error, seq) = match &chain.result {
            Ok(_) => (None, None),
            Err(e) => (
                Some(e.to_string()),
                match e {
                    Error::Broken { seq, .. } => *seq,
                    _ => None,
                },
            ),
        };
        let verified = chain.result.as_ref().ok();
        serde_json::json!({
            "html": html.display().to_string(),
            "bytes": bytes,
            "ledger": ledger.id(),
            "host": ledger.host(),
            "entries": self.entries,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "runs": self.runs.ids.len(),
            "runs_shown": self.runs.rows.len(),
            "kinds": self.kinds,
            "refusals": self.refusals_total,
            "refusals_shown": self.refusals.len(),
            "mitigations": self.mitigations.len() + self.more_mitigations.len(),
            "chain_ok": chain.result.is_ok(),
            "chain_error": error,
            "chain_seq": seq,
            "signatures_checked": verified.is_some_and(|r| r.signatures_checked),
            "extends_checkpoint": verified.and_then(|r| r.extends_checkpoint),
            "latest_checkpoint": latest.and_then(|(seq, cp)| cp.as_ref().ok().map(|cp| serde_json::json!({
                "entry": seq,
                "size": cp.size,
                "head": cp.head.hex(),
                "key": cp.key_id().map(|k| k.to_string()),
                "time": cp.time,
            }))),
        })
    }
}

impl Runs {
    fn add(&mut self, id: &str, e: &EntryRef<'_>, d: &Value) {
        let first = match self.ids.get(id) {
            Some(first) => *first,
            None => {
                self.ids.insert(id.to_string(), e.seq);
                self.rows.insert(
                    e.seq,
                    Run {
                        id: id.to_string(),
                        start: e.ts.to_string(),
                        ..Run::default()
                    },
                );
                if self.rows.len() > MAX_ROWS {
                    self.rows.pop_first();
                }
                e.seq
            }
        };
        // A run older than the newest MAX_ROWS is counted, not shown.
        let Some(run) = self.rows.get_mut(&first) else {
            return;
        };
        e.ts.clone_into(&mut run.end);
        if run.bundle.is_none() {
            run.bundle = e.bundle.map(str::to_string);
        }
        if run.plan.is_none() {
            run.plan = field(d, "plan");
        }
        let (command, event) = e.kind.split_once('.').unwrap_or((e.kind, ""));
        match (command, event) {
            ("apply" | "rollback", "started" | "completed" | "failed") => {
                run.command = Some(command.to_string());
                match event {
                    "started" => {
                        run.started = true;
                        e.ts.clone_into(&mut run.start);
                    }
                    "completed" => run.completed = true,
                    _ => {
                        run.failed = Some(format!(
                            "{}: {}",
                            field(d, "step").unwrap_or_default(),
                            field(d, "error").unwrap_or_default()
                        ));
                    }
                }
                run.files = field(d, "files").or(run.files.take());
                run.units = field(d, "units").or(run.units.take());
                run.kept = field(d, "kept").or(run.kept.take());
                run.downgrade_from = field(d, "downgrade_from").or(run.downgrade_from.take());
            }
            ("apply", "interrupted") => {
                run.command = field(d, "command").or(run.command.take());
                run.interrupted = Some(field(d, "outcome").unwrap_or_default());
            }
            ("approval", "recorded") => {
                if run.approvals.len() < MAX_APPROVALS {
                    run.approvals.push((
                        field(d, "key").unwrap_or_default(),
                        field(d, "ticket").unwrap_or_default(),
                    ));
                } else {
                    run.more_approvals += 1;
                }
            }
            ("mitigation", ev) => {
                if let Some(i) = MITIGATION_EVENTS.iter().position(|x| *x == ev) {
                    run.counts[i] += 1;
                }
            }
            _ => {}
        }
        if d.get("forced_over_drift") == Some(&Value::Bool(true)) {
            run.forced = true;
        }
    }
}

/// HTML-escapes text for element content and quoted attribute values. Control
/// characters and the bidirectional overrides that could make a line read
/// differently from what it holds are shown as `\u{…}`.
fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c if c.is_control()
                    || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
                {
                    write!(f, "{}", c.escape_unicode())?
                }
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Appends formatted text to a `String` (which cannot fail).
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

/// `2026-11-28T08:05:30.250000Z` as `2026-11-28 08:05:30` (UTC is said once).
fn when(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..19), ts.len()) {
        (Some(d), Some(t), 27) => format!("{d} {t}"),
        _ => ts.to_string(),
    }
}

/// A time cell: seconds shown, the full time in the tooltip.
fn time_cell(ts: &str) -> String {
    format!(
        "<td class=\"t\" title=\"{}\">{}</td>",
        esc(ts),
        esc(&when(ts))
    )
}

/// An optional value, `–` when absent.
fn opt(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => esc(s).to_string(),
        _ => "–".into(),
    }
}

/// Key (ticket) list.
fn approvals_html(list: &[(String, String)], more: u64) -> String {
    if list.is_empty() {
        return "–".into();
    }
    let mut s = String::new();
    for (i, (key, ticket)) in list.iter().enumerate() {
        if i > 0 {
            s.push_str("<br>");
        }
        put!(s, "<code>{}</code>", esc(key));
        if !ticket.is_empty() {
            put!(s, " ({})", esc(ticket));
        }
    }
    if more > 0 {
        put!(s, "<br>and {more} more");
    }
    s
}

const STYLE: &str = r#"
:root{--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--chg:#1f6feb;--oth:#8c959f;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;margin:0;background:#fff}
main{max-width:1240px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:20px 0 6px}
code.id{white-space:nowrap;word-break:normal}
code,.h{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
nav a{margin-right:14px}nav{margin:8px 0 16px;font-size:13px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
dl.facts dt{color:#57606a}dl.facts dd{margin:0}
.status{border:2px solid;border-radius:6px;padding:12px 16px;margin:16px 0}
.status.ok{border-color:var(--ok);background:#dafbe1}.status.broken{border-color:var(--bad);background:#ffebe9}
.status .big{font-size:20px;font-weight:700}.status.ok .big{color:var(--ok)}.status.broken .big{color:var(--bad)}
.note{color:#57606a;font-size:13px}.warn{color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}td.t{white-space:nowrap}
table.refusals th{background:#ffcecb}table.refusals td{background:#fff5f5}
.badge{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.b-ok{background:var(--ok)}.b-bad{background:var(--bad)}.b-warn{background:var(--warn)}.b-chg{background:var(--chg)}.b-oth{background:var(--oth)}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
svg{width:100%;height:auto;border:1px solid var(--line);background:#fff}
svg text{font:11px system-ui,sans-serif;fill:#57606a}
@media print{nav{display:none}main{max-width:none;padding:0}h2{break-after:avoid}tr{break-inside:avoid}}
"#;

struct Page<'a> {
    ledger: &'a Ledger,
    db: &'a Path,
    chain: &'a Chain,
    tally: &'a Tally,
    latest: Option<&'a (u64, Result<Checkpoint>)>,
    generated: String,
}

impl Page<'_> {
    fn render(&self) -> String {
        let t = self.tally;
        let mut h = String::with_capacity(64 * 1024);
        put!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"airlock-ledger report\">\n\
             <title>airlock ledger report: {}</title>\n<style>{STYLE}</style>\n</head>\n",
            esc(self.ledger.host())
        );
        put!(
            h,
            "<body data-ledger=\"{}\" data-host=\"{}\" data-entries=\"{}\" data-runs=\"{}\" data-refusals=\"{}\" data-mitigations=\"{}\" data-chain=\"{}\">\n<main>\n",
            esc(self.ledger.id()),
            esc(self.ledger.host()),
            t.entries,
            t.runs.ids.len(),
            t.refusals_total,
            t.mitigations.len() + t.more_mitigations.len(),
            if self.chain.result.is_ok() {
                "ok"
            } else {
                "broken"
            }
        );
        put!(
            h,
            "<h1>Ledger report: {}</h1>\n<div class=\"note\">airlock audit ledger; all times are UTC (the host clock)</div>\n",
            esc(self.ledger.host())
        );
        h.push_str(
            "<nav><a href=\"#status\">Chain status</a><a href=\"#activity\">Activity</a><a href=\"#runs\">Runs</a><a href=\"#mitigations\">Mitigations</a><a href=\"#refusals\">Refusals and failures</a><a href=\"#kinds\">Entry kinds</a></nav>\n",
        );
        self.facts(&mut h);
        self.status(&mut h);
        self.activity(&mut h);
        self.runs(&mut h);
        self.mitigations(&mut h);
        self.refusals(&mut h);
        self.kinds(&mut h);
        put!(
            h,
            "<p class=\"note\">Generated by airlock-ledger report at {}. Any entry can be shown in full with <code>airlock-ledger show SEQ</code>.</p>\n</main>\n</body>\n</html>\n",
            esc(&self.generated)
        );
        h
    }

    fn facts(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<dl class=\"facts\">\n");
        let mut fact = |k: &str, v: String| put!(h, "<dt>{k}</dt><dd>{v}</dd>\n");
        fact("Host", esc(self.ledger.host()).to_string());
        fact(
            "Ledger id",
            format!("<code>{}</code>", esc(self.ledger.id())),
        );
        fact(
            "Database",
            format!("<code>{}</code>", esc(&self.db.display().to_string())),
        );
        fact(
            "Entries",
            format!(
                "<span id=\"entries\" data-entries=\"{0}\">{0}</span>{1}",
                t.entries,
                match t.first_seq {
                    Some(first) => format!(" (seq {first} to {})", t.last_seq),
                    None => String::new(),
                }
            ),
        );
        fact(
            "Time range",
            match (&t.first_ts, &t.last_ts) {
                (Some(a), Some(b)) => format!("{} to {}", esc(&when(a)), esc(&when(b))),
                _ => "–".into(),
            },
        );
        fact(
            "Runs",
            format!("<span data-runs=\"{0}\">{0}</span>", t.runs.ids.len()),
        );
        fact(
            "Refusals and failures",
            format!("<span data-refusals=\"{0}\">{0}</span>", t.refusals_total),
        );
        fact("Generated", esc(&when(&self.generated)).to_string());
        h.push_str("</dl>\n");
    }

    fn status(&self, h: &mut String) {
        let c = self.chain;
        h.push_str("<section id=\"status\">\n");
        match &c.result {
            Ok(r) => {
                put!(
                    h,
                    "<div class=\"status ok\" data-chain=\"ok\"><div class=\"big\">Chain OK</div>\
                     <div>The whole chain verifies: {} entries, every hash, every <code>prev_hash</code> and the schema as airlock made it. Head <code>{}</code> at {}.</div>\n",
                    r.entries,
                    esc(&r.head),
                    esc(&when(&r.last_ts))
                );
                match (&c.key, r.checkpoints) {
                    (_, 0) => h.push_str("<div class=\"warn\">No checkpoint is stored in this ledger: nothing in it is signed, so only a checkpoint you hold can prove it is this host's ledger.</div>\n"),
                    (Some((id, path)), n) => put!(h, "<div>{n} stored checkpoints, every signature checked with host key <code>{}</code> ({}).</div>\n", esc(id), esc(&path.display().to_string())),
                    (None, n) => put!(h, "<div class=\"warn\">{n} stored checkpoints; their signatures were NOT checked: no host key was given (pass <code>--key HOST.pub</code>).</div>\n"),
                }
                if let (Some(size), Some(path)) = (r.extends_checkpoint, &c.checkpoint) {
                    put!(
                        h,
                        "<div><b>Proven:</b> the ledger extends your checkpoint {} of size {size}: no entry up to {size} was changed, removed or reordered.</div>\n",
                        esc(&path.display().to_string())
                    );
                }
                if !r.clock_warnings.is_empty() {
                    put!(
                        h,
                        "<div class=\"warn\">{} entries carry a time earlier than the entry before them (the host clock went backwards; the order is fixed by <code>seq</code> and the hashes), first at entry {}.</div>\n",
                        r.clock_warnings.len(),
                        r.clock_warnings[0].seq
                    );
                }
            }
            Err(e) => {
                put!(
                    h,
                    "<div class=\"status broken\" data-chain=\"broken\"><div class=\"big\">Chain BROKEN</div>\
                     <div><b>{}</b></div><div>What to do: {}</div>\n",
                    esc(&e.to_string()),
                    esc(&e.hint())
                );
                if let Error::Broken { seq: Some(seq), .. } = e {
                    put!(
                        h,
                        "<div>The tables below show what the database holds; nothing from entry {seq} on can be trusted.</div>\n"
                    );
                }
            }
        }
        if let Some(why) = &self.tally.stopped {
            put!(
                h,
                "<div class=\"warn\">The report stops early: {}</div>\n",
                esc(why)
            );
        }
        h.push_str("</div>\n<h3>Latest checkpoint</h3>\n");
        match self.latest {
            None => h.push_str("<p>None stored.</p>\n"),
            Some((seq, Err(e))) => put!(
                h,
                "<p class=\"warn\">Entry {seq} holds a checkpoint that cannot be read: {}</p>\n",
                esc(&e.to_string())
            ),
            Some((seq, Ok(cp))) => {
                put!(
                    h,
                    "<dl class=\"facts\" id=\"checkpoint\" data-checkpoint-entry=\"{seq}\" data-checkpoint-size=\"{}\">\n\
                     <dt>Stored as</dt><dd>entry {seq}</dd>\n<dt>Covers</dt><dd>entries 1 to {}</dd>\n\
                     <dt>Head</dt><dd><code>{}</code></dd>\n<dt>Signed by</dt><dd>key <code>{}</code>{}</dd>\n<dt>Time</dt><dd>{}</dd>\n</dl>\n",
                    cp.size,
                    cp.size,
                    cp.head,
                    opt(cp.key_id().map(|k| k.to_string()).as_deref()),
                    if c.result.as_ref().is_ok_and(|r| r.signatures_checked) {
                        " (signature verified)"
                    } else {
                        " (signature not verified)"
                    },
                    esc(&when(&cp.time))
                );
            }
        }
        h.push_str("</section>\n");
    }

    fn activity(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<section id=\"activity\">\n<h2>Activity</h2>\n");
        match chart(&t.hours) {
            Some(svg) => h.push_str(&svg),
            None => h.push_str("<p>No entry has a readable time.</p>\n"),
        }
        h.push_str(
            "<div class=\"legend note\"><span style=\"background:var(--chg)\"></span>changes (applied, updated, removed, rolled back)\
             <span style=\"background:var(--bad)\"></span>refusals and failures<span style=\"background:var(--oth)\"></span>other entries</div>\n",
        );
        if t.untimed > 0 {
            put!(
                h,
                "<p class=\"warn\">{} entries have a time not in airlock's form and are not in the chart.</p>\n",
                t.untimed
            );
        }
        h.push_str("</section>\n");
    }

    fn runs(&self, h: &mut String) {
        let runs = &self.tally.runs;
        h.push_str("<section id=\"runs\">\n<h2>Runs</h2>\n");
        put!(
            h,
            "<p class=\"note\">One row per apply or rollback run (entries grouped by <code>detail.run</code>), oldest first.{}</p>\n",
            shown_note(runs.rows.len(), runs.ids.len() as u64, "runs", "")
        );
        if runs.rows.is_empty() {
            h.push_str("<p>No runs.</p>\n</section>\n");
            return;
        }
        h.push_str("<table class=\"runs\"><thead><tr><th>Run</th><th>Command</th><th>Start</th><th>End</th><th>Outcome</th><th>Bundle</th><th>Plan</th><th>Mitigations</th><th>Files / units</th><th>Approvals (key, ticket)</th><th>Forced over drift</th></tr></thead><tbody>\n");
        for r in runs.rows.values() {
            let outcome = if let Some(f) = &r.failed {
                format!("<span class=\"badge b-bad\">failed</span><br>{}", esc(f))
            } else if let Some(o) = &r.interrupted {
                format!("<span class=\"badge b-warn\">interrupted</span> {}", esc(o))
            } else if r.completed {
                "<span class=\"badge b-ok\">completed</span>".to_string()
            } else if r.started {
                "<span class=\"badge b-warn\">no end recorded</span>".to_string()
            } else {
                "<span class=\"badge b-oth\">unknown</span>".to_string()
            };
            let mut counts: Vec<String> = MITIGATION_EVENTS
                .iter()
                .zip(r.counts)
                .filter(|(_, n)| *n > 0)
                .map(|(what, n)| format!("{n} {}", what.replace('_', " ")))
                .collect();
            if let Some(k) = &r.kept {
                counts.push(format!("{} kept", esc(k)));
            }
            let downgrade = r
                .downgrade_from
                .as_deref()
                .map(|d| format!("<br>downgrade from <code>{}</code>", esc(d)))
                .unwrap_or_default();
            put!(
                h,
                "<tr data-run=\"{}\"><td><code class=\"id\">{}</code></td><td>{}</td>{}{}<td>{outcome}{downgrade}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&r.id),
                esc(&r.id),
                opt(r.command.as_deref()),
                time_cell(&r.start),
                time_cell(&r.end),
                opt(r.bundle.as_deref()),
                opt(r.plan.as_deref()),
                if counts.is_empty() {
                    "–".into()
                } else {
                    counts.join(", ")
                },
                opt(r.files.as_deref()),
                opt(r.units.as_deref()),
                approvals_html(&r.approvals, r.more_approvals),
                if r.forced {
                    "<span class=\"badge b-warn\">yes</span>"
                } else {
                    "no"
                }
            );
        }
        h.push_str("</tbody></table>\n</section>\n");
    }

    fn mitigations(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<section id=\"mitigations\">\n<h2>Mitigations</h2>\n");
        if t.mitigations.is_empty() {
            h.push_str("<p>No mitigation was applied, updated, removed, rolled back, skipped or failed.</p>\n</section>\n");
            return;
        }
        h.push_str("<table class=\"mitigation-summary\"><thead><tr><th>Mitigation</th><th>Last event</th><th>At</th>");
        for what in MITIGATION_EVENTS {
            put!(h, "<th>{}</th>", what.replace('_', " "));
        }
        h.push_str("</tr></thead><tbody>\n");
        for (id, m) in &t.mitigations {
            let Some(last) = m.events.back() else {
                continue;
            };
            put!(
                h,
                "<tr data-mitigation=\"{}\"><td><a href=\"#m-{}\"><code class=\"id\">{}</code></a></td><td>{}</td>{}",
                esc(id),
                esc(&anchor(id)),
                esc(id),
                event_badge(last.what),
                time_cell(&last.ts)
            );
            for n in m.counts {
                put!(h, "<td class=\"n\">{n}</td>");
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table>\n");
        if !t.more_mitigations.is_empty() {
            put!(
                h,
                "<p class=\"note\">{} more mitigations ({} entries) are not shown: see <code>airlock-ledger log --mitigation ID</code>.</p>\n",
                t.more_mitigations.len(),
                t.more_mitigation_entries
            );
        }
        for (id, m) in &t.mitigations {
            put!(h, "<h3 id=\"m-{}\">{}</h3>\n", esc(&anchor(id)), esc(id));
            if m.total > m.events.len() as u64 {
                put!(
                    h,
                    "<p class=\"note\">The last {} of {} events; all of them: <code>airlock-ledger log --mitigation {}</code>.</p>\n",
                    m.events.len(),
                    m.total,
                    esc(id)
                );
            }
            h.push_str("<table class=\"history\"><thead><tr><th>Seq</th><th>Time</th><th>Event</th><th>Revision</th><th>Run</th><th>Bundle</th><th>Approved by (key, ticket)</th><th>Reason</th></tr></thead><tbody>\n");
            for ev in &m.events {
                put!(
                    h,
                    "<tr><td class=\"n\">{}</td>{}<td>{}</td><td>{}</td><td><code class=\"id\">{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    ev.seq,
                    time_cell(&ev.ts),
                    event_badge(ev.what),
                    opt(Some(&ev.revision)),
                    opt(ev.run.as_deref()),
                    opt(ev.bundle.as_deref()),
                    approvals_html(&ev.approved_by, 0),
                    esc(&ev.note)
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</section>\n");
    }

    fn refusals(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<section id=\"refusals\">\n<h2>Refusals and failures</h2>\n");
        put!(
            h,
            "<p class=\"note\">Every <code>*.refused</code>, <code>*.failed</code>, <code>bundle.rejected</code> and <code>sync.ignored</code> entry, oldest first.{}</p>\n",
            shown_note(
                t.refusals.len(),
                t.refusals_total,
                "refusals and failures",
                "airlock-ledger log --kind KIND"
            )
        );
        if t.refusals.is_empty() {
            h.push_str("<p>None.</p>\n</section>\n");
            return;
        }
        h.push_str("<table class=\"refusals\"><thead><tr><th>Seq</th><th>Time</th><th>Kind</th><th>Bundle</th><th>Mitigation</th><th>Exit</th><th>Reason</th></tr></thead><tbody>\n");
        for r in &t.refusals {
            put!(
                h,
                "<tr data-kind=\"{}\"><td class=\"n\">{}</td>{}<td><span class=\"badge b-bad\">{}</span></td><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td></tr>\n",
                esc(&r.kind),
                r.seq,
                time_cell(&r.ts),
                esc(&r.kind),
                opt(r.bundle.as_deref()),
                opt(r.mitigation.as_deref()),
                opt(r.exit.as_deref()),
                esc(&r.reason)
            );
        }
        h.push_str("</tbody></table>\n</section>\n");
    }

    fn kinds(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<section id=\"kinds\">\n<h2>Entry kinds</h2>\n<table class=\"kinds\" style=\"width:auto\"><thead><tr><th>Kind</th><th>Entries</th></tr></thead><tbody>\n");
        for (kind, n) in &t.kinds {
            let badge = match class(kind) {
                Class::Change => "b-chg",
                Class::Refusal => "b-bad",
                Class::Other => "b-oth",
            };
            put!(
                h,
                "<tr data-kind=\"{0}\" data-count=\"{n}\"><td><span class=\"badge {badge}\">&nbsp;</span> <code>{0}</code></td><td class=\"n\">{n}</td></tr>\n",
                esc(kind)
            );
        }
        if t.other_kinds > 0 {
            put!(
                h,
                "<tr><td>entries of further kinds</td><td class=\"n\">{}</td></tr>\n",
                t.other_kinds
            );
        }
        put!(
            h,
            "</tbody><tfoot><tr><th>all</th><th class=\"n\">{}</th></tr></tfoot></table>\n</section>\n",
            t.entries
        );
    }
}

/// " Showing the last N of M …" when rows were left out.
fn shown_note(shown: usize, total: u64, what: &str, command: &str) -> String {
    if total <= shown as u64 {
        return String::new();
    }
    let more = total - shown as u64;
    if command.is_empty() {
        format!(
            " Showing the last {shown} of {total} {what}; {more} more in <code>airlock-ledger log</code>."
        )
    } else {
        format!(
            " Showing the last {shown} of {total} {what}; {more} more in <code>{command}</code>."
        )
    }
}

/// An element id for a mitigation id (ids are `A-Z a-z 0-9 . _ : -` already).
fn anchor(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn event_badge(what: usize) -> String {
    let name = MITIGATION_EVENTS.get(what).copied().unwrap_or("?");
    let cls = match name {
        "failed" => "b-bad",
        "skipped" => "b-oth",
        "rolled_back" | "removed" => "b-warn",
        _ => "b-chg",
    };
    format!(
        "<span class=\"badge {cls}\">{}</span>",
        name.replace('_', " ")
    )
}

/// The chart: entries per hour when the entries span less than two days, else per
/// day (per week, 30 days or year when that would give more than [`MAX_BARS`]
/// bars), stacked by class. Only non-empty buckets are drawn, so the SVG is never
/// larger than the number of distinct hours.
fn chart(hours: &BTreeMap<String, [u64; 3]>) -> Option<String> {
    let parse = |k: &str| NaiveDateTime::parse_from_str(&format!("{k}:00"), "%Y-%m-%dT%H:%M").ok();
    let parsed: Vec<(NaiveDateTime, [u64; 3])> = hours
        .iter()
        .filter_map(|(k, v)| parse(k).map(|t| (t, *v)))
        .collect();
    let (first, last) = (parsed.first()?.0, parsed.last()?.0);
    let span = last - first;
    let (width, unit) = if span < TimeDelta::days(2) {
        (TimeDelta::hours(1), "hour")
    } else {
        [(1, "day"), (7, "week"), (30, "30 days"), (365, "365 days")]
            .into_iter()
            .map(|(d, u)| (TimeDelta::days(d), u))
            .find(|(w, _)| span.num_hours() / w.num_hours() < MAX_BARS)
            .unwrap_or((TimeDelta::days(365), "365 days"))
    };
    let origin = if unit == "hour" {
        first
    } else {
        first.date().and_hms_opt(0, 0, 0)?
    };
    let mut buckets: BTreeMap<i64, [u64; 3]> = BTreeMap::new();
    for (t, v) in &parsed {
        let i = (*t - origin).num_hours() / width.num_hours();
        let b = buckets.entry(i).or_default();
        for c in 0..3 {
            b[c] += v[c];
        }
    }
    let n = buckets.keys().last().map_or(1, |l| l + 1).max(1);
    let max = buckets
        .values()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (x0, x1, y0, y1) = (56.0, 990.0, 12.0, 200.0);
    // A few buckets get bars of a readable width, not the whole plot each.
    let bar = ((x1 - x0) / n as f64).min(48.0);
    let label = |i: i64| {
        let t = origin + width * i32::try_from(i).unwrap_or(i32::MAX);
        if unit == "hour" {
            t.format("%Y-%m-%d %H:00").to_string()
        } else {
            t.format("%Y-%m-%d").to_string()
        }
    };
    let total: u64 = buckets.values().flatten().sum();
    let mut s = String::new();
    put!(
        s,
        "<p class=\"note\">Entries per {unit}, {} bucket{} from {} to {}.</p>\n\
         <svg viewBox=\"0 0 1000 236\" role=\"img\" aria-label=\"{total} entries per {unit}\" data-bars=\"{}\">\n",
        n,
        if n == 1 { "" } else { "s" },
        label(0),
        label(n - 1),
        buckets.len()
    );
    put!(
        s,
        "<line x1=\"{x0}\" y1=\"{y1}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#8c959f\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#8c959f\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text><text x=\"{}\" y=\"{y1}\" text-anchor=\"end\">0</text>\n\
         <text x=\"{x0}\" y=\"220\">{}</text><text x=\"{x1}\" y=\"220\" text-anchor=\"end\">{}</text>\n",
        x0 - 4.0,
        y0 + 10.0,
        x0 - 4.0,
        label(0),
        label(n - 1)
    );
    let colours = ["#1f6feb", "#c62828", "#8c959f"];
    for (i, b) in &buckets {
        let x = x0 + bar * *i as f64;
        let w = (bar * 0.85).max(0.5);
        put!(
            s,
            "<g><title>{}: {} changes, {} refusals and failures, {} other</title>",
            label(*i),
            b[0],
            b[1],
            b[2]
        );
        // Stacked from the axis up: other, changes, refusals on top.
        let mut y = y1;
        for c in [2, 0, 1] {
            if b[c] == 0 {
                continue;
            }
            let hgt = (y1 - y0) * b[c] as f64 / max as f64;
            y -= hgt;
            put!(
                s,
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                hgt.max(0.5),
                colours[c]
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_invisible_characters() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(esc("a\u{202e}b\u{0}").to_string(), "a\\u{202e}b\\u{0}");
        assert_eq!(esc("AM-2026-0042 ü").to_string(), "AM-2026-0042 ü");
    }

    #[test]
    fn refusals_and_classes() {
        for k in [
            "apply.refused",
            "plan.refused",
            "rollback.refused",
            "sync.refused",
            "sync.ignored",
            "bundle.rejected",
            "mitigation.failed",
            "apply.failed",
        ] {
            assert!(is_refusal(k), "{k}");
            assert_eq!(class(k), Class::Refusal, "{k}");
        }
        assert_eq!(class("mitigation.rolled_back"), Class::Change);
        assert_eq!(class("mitigation.skipped"), Class::Other);
        assert_eq!(class("checkpoint"), Class::Other);
    }

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let s = "é".repeat(MAX_TEXT + 5);
        let c = clip(&s);
        assert_eq!(c.chars().count(), MAX_TEXT + 1);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn the_chart_buckets_by_hour_under_two_days_and_by_day_beyond() {
        let mut hours = BTreeMap::new();
        hours.insert("2026-11-28T08".to_string(), [1, 0, 2]);
        hours.insert("2026-11-28T10".to_string(), [0, 1, 0]);
        let svg = chart(&hours).unwrap();
        assert!(svg.contains("Entries per hour, 3 buckets"), "{svg}");
        hours.insert("2026-12-05T10".to_string(), [0, 0, 1]);
        let svg = chart(&hours).unwrap();
        assert!(svg.contains("Entries per day, 8 buckets"), "{svg}");
        assert!(svg.contains("data-bars=\"2\""), "{svg}");
        // A clock set centuries off gives wide buckets, never thousands of bars.
        hours.insert("2426-12-05T10".to_string(), [0, 0, 1]);
        let svg = chart(&hours).unwrap();
        assert!(svg.contains("Entries per 365 days"), "{svg}");
        assert!(chart(&BTreeMap::new()).is_none());
    }
}
