//! `sync --inbox DIR`: take the newest valid bundle in a directory (a USB mount,
//! a share) and apply it, unattended (a systemd timer runs it hourly).
//!
//! What sync guarantees:
//!
//! - It never writes into DIR (it may be a read-only mount). It reads regular
//!   files directly in DIR only, never through a symbolic link: the bundles
//!   `*.airlock` (not a dot name: a copy in progress) and the approvals
//!   `*.approval`, at most [`MAX_FILES`] of each.
//! - Every file is judged once, by the SHA-256 of its bytes (a name is not an
//!   identity): the verdict is kept in `state_dir/sync.json`. A file judged
//!   before is passed over, so an inbox with nothing new writes nothing at all:
//!   no ledger entry, no checkpoint, no `sync.json`. A file is judged again when
//!   the profile or one of its trust keys changed since, and a bundle whose apply
//!   was refused is tried again when the `*.approval` files in DIR changed.
//! - A new file is verified like `verify` (release and vendor signatures, every
//!   size and SHA-256) and checked for this host's channel, expiry and sequence
//!   number. Of the valid ones, only the newest (highest sequence number) goes
//!   through `apply` exactly as `apply --yes` would run it: never `--force`,
//!   never a downgrade; the approvals in DIR that name its plan count. Every
//!   other new file (invalid, another channel, expired, older) gets one
//!   `sync.ignored` ledger entry with the reason, once.
//! - A file that changes while sync reads it (still being copied) is neither
//!   recorded nor remembered; the next run judges it.
//!
//! Exit: 0 applied, or nothing new; 3 new files, none valid; 4 the newest valid
//! bundle was refused (approvals, drift, clock); 5 its apply failed and was
//! rolled back; 1 the inbox or a file in it cannot be read.

use crate::cli::{ApplyArgs, SyncArgs};
use crate::engine;
use crate::error::{Error, Result};
use crate::session::Session;
use airlock_format::Exit;
use airlock_format::hash::{HashingReader, is_sha256_hex, sha256_hex};
use airlock_format::output::{OperatorError, Output};
use airlock_format::profile::Profile;
use airlock_format::time;
use airlock_format::trust::TrustRoots;
use airlock_format::{fsutil, limits};
use airlock_ledger::{NewEntry, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most `*.airlock` (and, separately, `*.approval`) files one sync looks at.
pub const MAX_FILES: usize = 1_000;
/// Largest `sync.json` read.
const MAX_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
/// Most verdicts `sync.json` keeps; the oldest are forgotten first.
const MAX_RECORDS: usize = 10_000;
/// `sync.json`'s format.
const FORMAT: &str = "airlock-sync/1";

/// Runs `sync --inbox DIR [--json]`.
pub fn run(profile: Option<&Path>, a: &SyncArgs, out: &Output) -> Result<()> {
    let mut s = Session::open(profile, "sync", out)?;
    let inbox = Inbox::read(&a.inbox, out)?;
    let mut memory = Memory::load(&memory_path(&s), context(&s.profile))?;
    let (new, old) = memory.split(&inbox);
    let mut report = Report::new(&inbox, new.len());
    if new.is_empty() {
        report.print_nothing_new(&old, &memory, a.json, out);
        return report.unreadable_error();
    }
    if let Err(e) = crate::policy::check_clock(&s.profile, &s.ledger, &time::now()) {
        // A problem of the host, not a verdict on any file: nothing is remembered.
        let entry = refused_entry(&s.actor, &inbox.dir, &e);
        record(&mut s, vec![entry])?;
        let result = Err(e);
        report.outcome = Outcome::Refused;
        report.print_outcome(out, a.json, &result);
        return result;
    }
    let mut verdicts = judge_all(&s, &new, &mut report)?;
    let chosen = choose(&s, &mut verdicts)?;
    record_ignored(&mut s, &inbox.dir, &verdicts, &mut memory, &mut report)?;
    report.print_judged(out, a.json, chosen.as_ref());
    let result = match chosen {
        Some(c) => apply_chosen(&mut s, &inbox, c, &mut memory, &mut report, a.json, out),
        None if report.ignored.is_empty() => Ok(()),
        None => {
            report.outcome = Outcome::Invalid;
            Err(none_valid(&inbox.dir, report.ignored.len()))
        }
    };
    // Remembered after the ledger: a crash in between judges again and records
    // again, so a verdict is never remembered without its ledger entry.
    let saved = memory.save(&memory_path(&s));
    report.print_outcome(out, a.json, &result);
    match (result, saved) {
        (Err(e), saved) => {
            if let Err(s) = saved {
                out.warn(format!("{s}; the next sync judges these files again"));
            }
            Err(e)
        }
        (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => report.unreadable_error(),
    }
}

/// Verifies every new file (nothing recorded yet); a file that changed while it
/// was read, or cannot be read now, goes to the report instead.
fn judge_all<'a>(
    s: &Session,
    new: &[&'a Candidate],
    report: &mut Report<'_>,
) -> Result<Vec<(&'a Candidate, Verdict)>> {
    let trust = TrustRoots::from_files(
        s.profile.trust().vendor_keys(),
        s.profile.trust().release_keys(),
    )?;
    let mut verdicts = Vec::new();
    for c in new {
        match judge(s, &trust, c) {
            Verdict::Changing => report.changing.push(c.name.clone()),
            Verdict::Unreadable(e) => report.unreadable.push((c.name.clone(), e.to_string())),
            v => verdicts.push((*c, v)),
        }
    }
    Ok(verdicts)
}

/// Records one `sync.ignored` per ignored file, in one transaction with a
/// checkpoint, and remembers them.
fn record_ignored<'a>(
    s: &mut Session,
    inbox: &Path,
    verdicts: &[(&'a Candidate, Verdict)],
    memory: &mut Memory,
    report: &mut Report<'a>,
) -> Result<()> {
    let mut entries = Vec::new();
    for (c, v) in verdicts {
        let Verdict::Ignored {
            bundle,
            exit,
            reason,
        } = v
        else {
            continue;
        };
        entries.push(ignored_entry(
            &s.actor,
            inbox,
            c,
            bundle.as_deref(),
            *exit,
            reason,
        ));
        report.ignored.push((c, reason.clone()));
        let record = Record::ignored(c, bundle.clone(), *exit, reason, &memory.context);
        memory.remember(c, record);
    }
    record(s, entries)
}

/// Applies the chosen file through the normal apply path and remembers how that
/// ended (unless the file changed meanwhile, or the error says nothing about it).
fn apply_chosen(
    s: &mut Session,
    inbox: &Inbox,
    chosen: Chosen<'_>,
    memory: &mut Memory,
    report: &mut Report<'_>,
    json: bool,
    out: &Output,
) -> Result<()> {
    let Chosen { candidate, id, seq } = chosen;
    report.chosen = Some(candidate.name.clone());
    let result = apply(s, &inbox.approval_paths, candidate, json, out);
    report.outcome = Outcome::of(&result);
    let record = Record::applied(
        candidate,
        id,
        seq,
        &result,
        &memory.context,
        &inbox.approvals,
    );
    match record {
        Some(rec) if candidate.unchanged() => memory.remember(candidate, rec),
        Some(_) => report.changing.push(candidate.name.clone()),
        None => {}
    }
    result
}

/// The newest valid bundle, once the others are marked ignored.
#[derive(Debug)]
struct Chosen<'a> {
    candidate: &'a Candidate,
    id: String,
    seq: u64,
}

/// Takes the valid verdict with the highest sequence number (on a tie, a bundle
/// this host already accepted, else the first by file name) and turns every other
/// valid one into an ignored one.
fn choose<'a>(
    s: &Session,
    verdicts: &mut [(&'a Candidate, Verdict)],
) -> Result<Option<Chosen<'a>>> {
    let mut best: Option<(u64, bool, usize)> = None;
    for (i, (_, v)) in verdicts.iter().enumerate() {
        let Verdict::Valid { id, seq } = v else {
            continue;
        };
        let known = accepted_before(s, id)?;
        let better = match best {
            None => true,
            Some((bseq, bknown, _)) => *seq > bseq || (*seq == bseq && known && !bknown),
        };
        if better {
            best = Some((*seq, known, i));
        }
    }
    let Some((seq, _, at)) = best else {
        return Ok(None);
    };
    let (chosen, id) = match verdicts.get(at) {
        Some((c, Verdict::Valid { id, .. })) => (*c, id.clone()),
        _ => return Ok(None),
    };
    for (i, (_, v)) in verdicts.iter_mut().enumerate() {
        if i == at {
            continue;
        }
        if let Verdict::Valid { id: other, seq: o } = v {
            let reason = if *o == seq {
                format!(
                    "bundle {other} has the same sequence number {o} as {} (bundle {id}), which was taken instead",
                    chosen.name
                )
            } else {
                format!(
                    "bundle {other} (seq {o}) is older than {} (bundle {id}, seq {seq}), the newest valid bundle in the inbox",
                    chosen.name
                )
            };
            *v = Verdict::Ignored {
                bundle: Some(other.clone()),
                exit: Exit::Policy,
                reason,
            };
        }
    }
    Ok(Some(Chosen {
        candidate: chosen,
        id,
        seq,
    }))
}

/// Whether this host verified bundle `id` before.
fn accepted_before(s: &Session, id: &str) -> Result<bool> {
    let q = Query {
        kind: Some("bundle.verified".into()),
        bundle: Some(id.into()),
        ..Query::default()
    };
    Ok(s.ledger.query(&q, |_| Ok(()))? > 0)
}

/// Verifies one new file without recording anything.
fn judge(s: &Session, trust: &TrustRoots, c: &Candidate) -> Verdict {
    let verdict = match crate::verify::judge(&s.profile, &s.ledger, trust, &c.path) {
        Ok(b) => Verdict::Valid {
            id: b.manifest.id.clone(),
            seq: b.manifest.seq,
        },
        // An I/O error (a failing stick): no verdict on the bundle.
        Err((e, _)) if !matches!(e.exit(), Exit::Verification | Exit::Policy) => {
            Verdict::Unreadable(*e)
        }
        Err((e, bundle)) => Verdict::Ignored {
            bundle,
            exit: e.exit(),
            reason: crate::verify::bounded(&e.to_string()),
        },
    };
    if c.unchanged() {
        verdict
    } else {
        Verdict::Changing
    }
}

/// Runs the normal apply path on the chosen file.
fn apply(
    s: &mut Session,
    approvals: &[PathBuf],
    c: &Candidate,
    json: bool,
    out: &Output,
) -> Result<()> {
    let args = ApplyArgs {
        file: c.path.clone(),
        yes: true,
        force: false,
        // sync prints one JSON object of its own: apply's output is kept quiet then.
        json: false,
        approval: Vec::new(),
        allow_downgrade: false,
    };
    let quiet = Output::new("airlock-applier", true, false);
    crate::apply::apply_in(s, &args, approvals, if json { &quiet } else { out })
}

/// Appends `entries` in one transaction and signs a checkpoint (nothing when empty).
fn record(s: &mut Session, entries: Vec<NewEntry>) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    s.ledger.append_batch(entries)?;
    engine::sign(&s.profile, &mut s.ledger, &s.actor)?;
    Ok(())
}

fn ignored_entry(
    actor: &str,
    inbox: &Path,
    c: &Candidate,
    bundle: Option<&str>,
    exit: Exit,
    reason: &str,
) -> NewEntry {
    let entry = NewEntry::new(
        "sync.ignored",
        actor,
        json!({
            "inbox": inbox.display().to_string(),
            "file": c.name,
            "sha256": c.sha256,
            "exit": exit as u8,
            "reason": reason,
        }),
    );
    match bundle {
        Some(id) => entry.bundle(id),
        None => entry,
    }
}

fn refused_entry(actor: &str, inbox: &Path, e: &Error) -> NewEntry {
    NewEntry::new(
        "sync.refused",
        actor,
        json!({
            "inbox": inbox.display().to_string(),
            "reason": crate::verify::bounded(&e.to_string()),
        }),
    )
}

/// New files were there, and none of them is valid for this host.
fn none_valid(dir: &Path, ignored: usize) -> Error {
    Error::NoneValid {
        what: format!("inbox {}", dir.display()),
        reason: format!(
            "{ignored} new bundle file(s), none of them valid for this host (each is recorded as sync.ignored with the reason); nothing was applied"
        ),
        hint: "carry in a bundle for this host's channel that is newer than the last one applied and not expired (airlock-ledger log --kind sync.ignored shows why each file was passed over)".into(),
    }
}

fn memory_path(s: &Session) -> PathBuf {
    s.store.path().join("sync.json")
}

/// What the verdicts were judged under: the profile and the bytes of every trust
/// key it names. When it changes, every file is judged again.
fn context(profile: &Profile) -> String {
    let mut text = format!("profile {}\n", profile.sha256());
    let t = profile.trust();
    for (role, keys) in [
        ("release", t.release_keys()),
        ("vendor", t.vendor_keys()),
        ("approver", t.approver_keys()),
    ] {
        for k in keys {
            let sha = fsutil::read_limited(k, 64 * 1024)
                .map_or_else(|_| "unreadable".to_string(), |b| sha256_hex(&b));
            text.push_str(&format!("{role} {} {sha}\n", k.display()));
        }
    }
    sha256_hex(text.as_bytes())
}

/// What a new file turned out to be.
#[derive(Debug)]
enum Verdict {
    /// Verified, for this host's channel, not expired, not older than accepted.
    Valid { id: String, seq: u64 },
    /// Passed over, with the exit class and reason.
    Ignored {
        bundle: Option<String>,
        exit: Exit,
        reason: String,
    },
    /// It cannot be read now (exit 1); tried again on the next run.
    Unreadable(Error),
    /// It changed while it was read (still being copied); judged on the next run.
    Changing,
}

/// Identity and change detection of a file: a file whose stamp moved while it was
/// read is being written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A bundle file of the inbox.
#[derive(Debug)]
struct Candidate {
    /// Its name in the inbox (lossy for display and the ledger).
    name: String,
    path: PathBuf,
    sha256: String,
    stamp: Stamp,
}

impl Candidate {
    /// Whether the name still holds the very file that was hashed, unchanged (and
    /// not a symbolic link).
    fn unchanged(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| Stamp::of(&m) == self.stamp)
    }
}

/// An approval file of the inbox, as remembered with a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalFile {
    name: String,
    size: u64,
    sha256: String,
}

/// What the inbox holds.
#[derive(Debug)]
struct Inbox {
    dir: PathBuf,
    /// Bundle files, hashed, by name.
    candidates: Vec<Candidate>,
    /// `*.approval` files, by name.
    approvals: Vec<ApprovalFile>,
    /// Their paths, for apply to take those that name its plan.
    approval_paths: Vec<PathBuf>,
    /// Bundle files that could not be read (name, error).
    unreadable: Vec<(String, String)>,
    /// Bundle files that changed while they were hashed.
    changing: Vec<String>,
}

impl Inbox {
    /// Lists DIR's bundle and approval files and hashes them.
    fn read(dir: &Path, out: &Output) -> Result<Inbox> {
        let (bundles, approvals) = list(dir, out)?;
        let mut inbox = Inbox {
            dir: dir.to_path_buf(),
            candidates: Vec::with_capacity(bundles.len()),
            approval_paths: approvals.iter().map(|(_, path)| path.clone()).collect(),
            approvals: approvals
                .into_iter()
                .map(|(name, path)| approval_file(name, &path))
                .collect(),
            unreadable: Vec::new(),
            changing: Vec::new(),
        };
        for (name, path) in bundles {
            match hash(&path) {
                Ok(Some((sha256, stamp))) => inbox.candidates.push(Candidate {
                    name,
                    path,
                    sha256,
                    stamp,
                }),
                Ok(None) => inbox.changing.push(name),
                Err(e) => inbox.unreadable.push((name, e.to_string())),
            }
        }
        Ok(inbox)
    }
}

/// A name and path per file.
type Listing = Vec<(String, PathBuf)>;

/// The regular bundle and approval files directly in `dir`, by name; anything
/// else named like one is passed over with a warning.
fn list(dir: &Path, out: &Output) -> Result<(Listing, Listing)> {
    let listing = |e| airlock_format::Error::io("list the inbox", dir, e);
    let mut bundles = Vec::new();
    let mut approvals = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let os_name = entry.file_name();
        let name = shown(&os_name.to_string_lossy());
        let has = |ext: &str| Path::new(&os_name).extension().is_some_and(|x| x == ext);
        // A dot name is a bundle still being copied in; approvals are taken
        // whatever their name.
        let (list, kind) = if has("airlock") && !name.starts_with('.') {
            (&mut bundles, "bundle")
        } else if has("approval") {
            (&mut approvals, "approval")
        } else {
            continue;
        };
        // file_type() does not follow a symbolic link.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            out.warn(format!(
                "{}/{name} is not a regular file (a symbolic link, a directory…): sync reads only regular {kind} files of the inbox, and passes over this one",
                dir.display()
            ));
            continue;
        }
        if list.len() == MAX_FILES {
            return Err(too_many(dir, kind));
        }
        list.push((name, entry.path()));
    }
    bundles.sort();
    approvals.sort();
    Ok((bundles, approvals))
}

/// A file name as printed and recorded: control characters escaped, so that a
/// name cannot forge a line of the report.
fn shown(name: &str) -> String {
    if name.chars().any(char::is_control) {
        name.escape_debug().to_string()
    } else {
        name.to_string()
    }
}

/// An approval file as remembered with a refusal. Only the set matters (did it
/// change?): a file too large to be an approval is not read, and an unreadable
/// one still counts.
fn approval_file(name: String, path: &Path) -> ApprovalFile {
    let size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
    let sha256 = if size > limits::MAX_SIGNATURE_BYTES {
        "not read: larger than an approval".into()
    } else {
        match hash(path) {
            Ok(Some((sha, _))) => sha,
            Ok(None) | Err(_) => "unreadable".into(),
        }
    };
    ApprovalFile { name, size, sha256 }
}

fn too_many(dir: &Path, kind: &str) -> Error {
    Error::Inbox {
        dir: dir.to_path_buf(),
        reason: format!(
            "it holds more than {MAX_FILES} {kind} files, more than sync looks at in one run, so nothing was judged"
        ),
        hint: "move the files already carried in out of the inbox (only the newest bundle matters), then run sync again".into(),
    }
}

/// Streams `path` through SHA-256; returns the digest and the file's stamp, or
/// `None` when the file was replaced or changed while it was read.
fn hash(path: &Path) -> Result<Option<(String, Stamp)>> {
    let io = |action, e| Error::from(airlock_format::Error::io(action, path, e));
    let file = std::fs::File::open(path).map_err(|e| io("open", e))?;
    let before = file.metadata().map_err(|e| io("stat", e))?;
    let listed = std::fs::symlink_metadata(path).map_err(|e| io("stat", e))?;
    if !before.is_file() || Stamp::of(&before) != Stamp::of(&listed) {
        return Ok(None);
    }
    let mut reader = HashingReader::new(&file);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read", e)),
        }
    }
    let (sha256, _) = reader.finish();
    let after = file.metadata().map_err(|e| io("stat", e))?;
    if Stamp::of(&after) != Stamp::of(&before) {
        return Ok(None);
    }
    Ok(Some((sha256, Stamp::of(&after))))
}

/// How the run ended, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    NothingNew,
    Refused,
    Failed,
    Invalid,
    Error,
}

impl Outcome {
    fn of(result: &Result<()>) -> Outcome {
        match result {
            Ok(()) => Outcome::Applied,
            Err(e) => match e.exit() {
                Exit::Policy => Outcome::Refused,
                Exit::ApplyFailed => Outcome::Failed,
                Exit::Verification => Outcome::Invalid,
                _ => Outcome::Error,
            },
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NothingNew => "nothing new",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
        }
    }
}

/// The operator's summary of a run.
#[derive(Debug)]
struct Report<'a> {
    inbox: &'a Path,
    considered: usize,
    new: usize,
    ignored: Vec<(&'a Candidate, String)>,
    unreadable: Vec<(String, String)>,
    changing: Vec<String>,
    chosen: Option<String>,
    outcome: Outcome,
}

impl<'a> Report<'a> {
    fn new(inbox: &'a Inbox, new: usize) -> Report<'a> {
        Report {
            inbox: &inbox.dir,
            considered: inbox.candidates.len() + inbox.unreadable.len() + inbox.changing.len(),
            new,
            ignored: Vec::new(),
            unreadable: inbox.unreadable.clone(),
            changing: inbox.changing.clone(),
            chosen: None,
            outcome: Outcome::NothingNew,
        }
    }

    /// The run's JSON object; `reason` is the error of a run that did not end well.
    fn json(&self, reason: Option<String>) -> Value {
        let files = |list: &[(String, String)]| {
            list.iter()
                .map(|(file, reason)| json!({ "file": file, "reason": reason }))
                .collect::<Vec<_>>()
        };
        json!({
            "inbox": self.inbox.display().to_string(),
            "considered": self.considered,
            "new": self.new,
            "ignored": self.ignored.iter().map(|(c, reason)| json!({
                "file": c.name,
                "sha256": c.sha256,
                "reason": reason,
            })).collect::<Vec<_>>(),
            "unreadable": files(&self.unreadable),
            "changing": self.changing,
            "chosen": self.chosen,
            "outcome": self.outcome.as_str(),
            "reason": reason,
        })
    }

    /// A file of the inbox that could not be read makes the run exit 1, after the
    /// rest of it was done.
    fn unreadable_error(&self) -> Result<()> {
        match self.unreadable.first() {
            None => Ok(()),
            Some((name, e)) => Err(Error::Inbox {
                dir: self.inbox.to_path_buf(),
                reason: format!(
                    "{} bundle file(s) could not be read (first {name}: {e})",
                    self.unreadable.len()
                ),
                hint: "check the medium (dmesg), copy the file again, and run sync again".into(),
            }),
        }
    }

    fn print_nothing_new(&self, old: &[&Candidate], memory: &Memory, json: bool, out: &Output) {
        if json {
            out.json(&self.json(None));
            return;
        }
        out.line(format!(
            "nothing new in {} ({} bundle file(s), each judged before)",
            self.inbox.display(),
            old.len()
        ));
        self.print_skipped(out);
        for c in old {
            if let Some(r) = memory.files.get(&c.sha256)
                && r.outcome == Remembered::Refused
            {
                out.line(format!(
                    "  {} is waiting: its apply was refused ({}); sync tries it again when the *.approval files of the inbox change",
                    c.name,
                    r.reason.as_deref().unwrap_or("-")
                ));
            }
        }
    }

    fn print_skipped(&self, out: &Output) {
        for name in &self.changing {
            out.line(format!(
                "  skipped {name}: it changed while sync read it (still being copied?); judged on the next run"
            ));
        }
        for (name, e) in &self.unreadable {
            out.line(format!("  unreadable {name}: {e}"));
        }
    }

    fn print_judged(&self, out: &Output, json: bool, chosen: Option<&Chosen<'_>>) {
        if json {
            return;
        }
        out.line(format!(
            "inbox {}: {} bundle file(s), {} new",
            self.inbox.display(),
            self.considered,
            self.new
        ));
        for (c, reason) in &self.ignored {
            out.line(format!("  ignored {}: {reason}", c.name));
        }
        self.print_skipped(out);
        match chosen {
            Some(c) => out.line(format!(
                "  chosen {}: bundle {} (seq {}), the newest valid bundle; applying it",
                c.candidate.name, c.id, c.seq
            )),
            None => out.line("  no new valid bundle; nothing was applied"),
        }
    }

    fn print_outcome(&self, out: &Output, json: bool, result: &Result<()>) {
        if json {
            if self.outcome != Outcome::Error {
                out.json(&self.json(result.as_ref().err().map(ToString::to_string)));
            }
            return;
        }
        if self.outcome == Outcome::Refused
            && let Some(name) = &self.chosen
        {
            out.line(format!(
                "{name} was refused (why: below); sync tries it again when the *.approval files of the inbox change, or apply it by hand once the cause is fixed"
            ));
        }
    }
}

/// A file's remembered verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Remembered {
    /// Passed over (`sync.ignored`, or rejected when apply verified it).
    Ignored,
    /// Applied (possibly a no-op).
    Applied,
    /// Apply refused it by policy; retried when the approvals change.
    Refused,
    /// Apply failed and was rolled back.
    Failed,
}

/// One judged file in `sync.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// Its name when it was judged.
    file: String,
    outcome: Remembered,
    exit: u8,
    bundle: Option<String>,
    seq: Option<u64>,
    reason: Option<String>,
    /// When (RFC 3339).
    judged: String,
    /// See [`context`].
    context: String,
    /// With a refusal: the approval files the inbox held then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvals: Option<Vec<ApprovalFile>>,
}

impl Record {
    fn ignored(
        c: &Candidate,
        bundle: Option<String>,
        exit: Exit,
        reason: &str,
        context: &str,
    ) -> Record {
        Record {
            file: c.name.clone(),
            outcome: Remembered::Ignored,
            exit: exit as u8,
            bundle,
            seq: None,
            reason: Some(reason.to_string()),
            judged: time::format(&time::now()),
            context: context.to_string(),
            approvals: None,
        }
    }

    /// The verdict on the chosen file after apply; `None` for an operational error
    /// (the file is tried again).
    fn applied(
        c: &Candidate,
        id: String,
        seq: u64,
        result: &Result<()>,
        context: &str,
        approvals: &[ApprovalFile],
    ) -> Option<Record> {
        let (outcome, exit, reason) = match result {
            Ok(()) => (Remembered::Applied, Exit::Success, None),
            Err(e) => {
                let outcome = match e.exit() {
                    Exit::Policy => Remembered::Refused,
                    Exit::ApplyFailed => Remembered::Failed,
                    Exit::Verification => Remembered::Ignored,
                    _ => return None,
                };
                (
                    outcome,
                    e.exit(),
                    Some(crate::verify::bounded(&e.to_string())),
                )
            }
        };
        Some(Record {
            file: c.name.clone(),
            outcome,
            exit: exit as u8,
            bundle: Some(id),
            seq: Some(seq),
            reason,
            judged: time::format(&time::now()),
            context: context.to_string(),
            approvals: (outcome == Remembered::Refused).then(|| approvals.to_vec()),
        })
    }
}

/// `state_dir/sync.json`: the verdict on every file judged, by SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Memory {
    format: String,
    files: BTreeMap<String, Record>,
    /// Whether this run remembered something (else `sync.json` is not rewritten).
    #[serde(skip)]
    changed: bool,
    /// What this run judges under (see [`context`]).
    #[serde(skip)]
    context: String,
}

impl Memory {
    /// Reads `sync.json` (empty when there is none); a damaged file is an error,
    /// never silently reset (that would record every file of the inbox again).
    fn load(path: &Path, context: String) -> Result<Memory> {
        if !path.exists() {
            return Ok(Memory {
                format: FORMAT.into(),
                files: BTreeMap::new(),
                changed: false,
                context,
            });
        }
        let bytes = fsutil::read_limited(path, MAX_MEMORY_BYTES)?;
        let damaged = |reason: String| {
            Error::State {
            dir: fsutil::parent_dir(path).to_path_buf(),
            reason: format!("sync.json cannot be read: {reason}"),
            hint: "restore sync.json from a backup, or move it away: the next sync then judges every file in the inbox again (and records each one again)".into(),
        }
        };
        let mut memory: Memory =
            serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        memory.context = context;
        if memory.format != FORMAT {
            return Err(damaged(format!(
                "its format is {:?}, this applier reads {FORMAT}",
                memory.format
            )));
        }
        if let Some(k) = memory.files.keys().find(|k| !is_sha256_hex(k)) {
            return Err(damaged(format!("{k:?} is not a SHA-256")));
        }
        Ok(memory)
    }

    /// The inbox's files that need judging in this run, and the others. Two
    /// names for the same bytes are one file, judged once under the first name.
    fn split<'a>(&self, inbox: &'a Inbox) -> (Vec<&'a Candidate>, Vec<&'a Candidate>) {
        let mut seen = BTreeSet::new();
        inbox
            .candidates
            .iter()
            .partition(|c| self.is_new(c, &inbox.approvals) && seen.insert(c.sha256.as_str()))
    }

    /// Whether `c` needs judging in this run.
    fn is_new(&self, c: &Candidate, approvals: &[ApprovalFile]) -> bool {
        match self.files.get(&c.sha256) {
            None => true,
            Some(r) if r.context != self.context => true,
            Some(r) => {
                r.outcome == Remembered::Refused && r.approvals.as_deref() != Some(approvals)
            }
        }
    }

    fn remember(&mut self, c: &Candidate, record: Record) {
        self.files.insert(c.sha256.clone(), record);
        self.changed = true;
    }

    /// Writes `sync.json` atomically (0600), keeping the newest [`MAX_RECORDS`];
    /// nothing when this run remembered nothing.
    fn save(&mut self, path: &Path) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        if self.files.len() > MAX_RECORDS {
            let mut times: Vec<(String, String)> = self
                .files
                .iter()
                .map(|(k, r)| (r.judged.clone(), k.clone()))
                .collect();
            times.sort();
            for (_, k) in times.iter().take(self.files.len() - MAX_RECORDS) {
                self.files.remove(k);
            }
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::State {
            dir: fsutil::parent_dir(path).to_path_buf(),
            reason: format!("sync.json cannot be encoded: {e}"),
            hint: "report this as a bug".into(),
        })?;
        fsutil::write_atomic(path, &bytes, Some(0o600))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn candidate(dir: &Path, name: &str, bytes: &[u8]) -> Candidate {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (sha256, stamp) = hash(&path).unwrap().unwrap();
        Candidate {
            name: name.into(),
            path,
            sha256,
            stamp,
        }
    }

    #[test]
    fn a_file_is_new_until_judged_and_a_refusal_waits_for_new_approvals() {
        let dir = tempfile::tempdir().unwrap();
        let c = candidate(dir.path(), "a.airlock", b"bundle");
        assert_eq!(c.sha256, sha256_hex(b"bundle"));
        let mut m = Memory::load(&dir.path().join("sync.json"), "ctx".into()).unwrap();
        assert!(m.is_new(&c, &[]));
        m.remember(
            &c,
            Record::ignored(&c, None, Exit::Verification, "bad", "ctx"),
        );
        assert!(!m.is_new(&c, &[]));
        assert!(
            Memory {
                context: "other profile".into(),
                ..m.clone()
            }
            .is_new(&c, &[]),
            "a changed profile judges again"
        );

        let refused = Err(Error::Refused {
            what: "apply".into(),
            reason: "needs 1 approval(s)".into(),
            hint: "-".into(),
        });
        let rec = Record::applied(&c, "b1".into(), 3, &refused, "ctx", &[]).unwrap();
        m.remember(&c, rec);
        assert!(!m.is_new(&c, &[]));
        let approval = ApprovalFile {
            name: "x.approval".into(),
            size: 1,
            sha256: sha256_hex(b"x"),
        };
        assert!(m.is_new(&c, std::slice::from_ref(&approval)));

        let busy = Err(Error::Busy {
            holder: "pid 1".into(),
        });
        assert!(
            Record::applied(&c, "b1".into(), 3, &busy, "ctx", &[]).is_none(),
            "an operational error is not a verdict"
        );
    }

    #[test]
    fn sync_json_round_trips_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.json");
        let c = candidate(dir.path(), "a.airlock", b"bundle");
        let mut m = Memory::load(&path, "ctx".into()).unwrap();
        m.remember(
            &c,
            Record::ignored(&c, Some("b".into()), Exit::Policy, "old", "ctx"),
        );
        m.save(&path).unwrap();
        let again = Memory::load(&path, "ctx".into()).unwrap();
        assert!(!again.is_new(&c, &[]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        for damaged in [
            &b"{"[..],
            br#"{"format":"airlock-sync/9","files":{}}"#,
            br#"{"format":"airlock-sync/1","files":{"nothex":{}}}"#,
            br#"{"format":"airlock-sync/1","files":{},"extra":1}"#,
        ] {
            std::fs::write(&path, damaged).unwrap();
            let e = Memory::load(&path, "ctx".into()).unwrap_err();
            assert_eq!(e.exit(), Exit::Operational);
            assert!(e.to_string().contains("sync.json cannot be read"), "{e}");
        }
    }

    #[test]
    fn the_oldest_verdicts_are_forgotten_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.json");
        let c = candidate(dir.path(), "a.airlock", b"x");
        let mut m = Memory::load(&path, "ctx".into()).unwrap();
        for i in 0..=MAX_RECORDS {
            let mut r = Record::ignored(&c, None, Exit::Verification, "bad", "ctx");
            r.judged = format!("2026-01-01T00:00:00.{i:06}Z");
            m.files.insert(sha256_hex(i.to_string().as_bytes()), r);
        }
        m.changed = true;
        m.save(&path).unwrap();
        assert_eq!(m.files.len(), MAX_RECORDS);
        assert!(!m.files.contains_key(&sha256_hex(b"0")), "the oldest went");
        assert!(
            m.files
                .contains_key(&sha256_hex(MAX_RECORDS.to_string().as_bytes()))
        );
    }

    #[test]
    fn a_file_that_grows_while_hashed_is_not_judged() {
        let dir = tempfile::tempdir().unwrap();
        let c = candidate(dir.path(), "a.airlock", b"part");
        assert!(c.unchanged());
        std::fs::write(&c.path, b"partial and more").unwrap();
        assert!(!c.unchanged());
    }
}
