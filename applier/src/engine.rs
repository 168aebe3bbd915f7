//! The apply engine: carries out a plan all-or-nothing, and finishes or undoes a
//! run that a crash interrupted.
//!
//! Order of a run, and why each crash point is safe:
//!
//! 1. every pre-image the run needs is stored and fsynced under `preimages/`;
//! 2. `journal.json` (every step with the pre-image it replaces) is written
//!    atomically: from here on a crash is undone from the journal;
//! 3. `<command>.started` goes into the ledger;
//! 4. the steps run, each file written atomically (temporary file, fsync,
//!    rename), then every touched directory is fsynced;
//! 5. the journal gets the state to commit;
//! 6. one ledger transaction appends every mitigation's entry and
//!    `<command>.completed`: **the commit point**;
//! 7. `state.json` is replaced, the journal removed, unused pre-images dropped,
//!    and the ledger checkpointed.
//!
//! On start, a journal whose run has no `.completed` entry in the ledger is undone
//! (every file put back to its pre-image, every unit back to its state), one whose
//! run has is finished (steps 7); both are recorded as `apply.interrupted`. Undo
//! is idempotent, so a crash while undoing is undone again on the next start. If a
//! step fails, the steps before it are undone, the failure is recorded, and the run
//! exits 5.

use crate::error::{Error, Result};
use crate::plan::{Plan, Target, UnitOp};
use crate::root::{FileMeta, HostRoot};
use crate::state::{State, StateDir};
use crate::systemd::Systemd;
use airlock_format::fsutil;
use airlock_format::hash::sha256_hex;
use airlock_format::keys::{PasswordSource, SecretKey};
use airlock_format::output::Output;
use airlock_format::profile::Profile;
use airlock_ledger::{Ledger, NewEntry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The write-ahead record of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// `airlock-journal/1`.
    pub format: String,
    /// Run id.
    pub run: String,
    /// `apply` or `rollback`.
    pub command: String,
    /// The plan hash.
    pub plan: String,
    /// The bundle, for apply.
    pub bundle: Option<String>,
    /// The ledger's size before the run.
    pub ledger_head: u64,
    /// When the run started.
    pub started: String,
    /// File steps, in order.
    pub files: Vec<JournalFile>,
    /// Unit steps, after the files.
    pub units: Vec<JournalUnit>,
    /// The state to commit, once every step is done.
    pub commit: Option<State>,
}

/// A file step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalFile {
    /// Action path.
    pub path: String,
    /// Pre-image (`None`: no file); its content is in `preimages/`.
    pub before: Option<FileMeta>,
    /// What the step writes (`None`: removes).
    pub after: Option<Target>,
}

/// A unit step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalUnit {
    /// Unit name.
    pub unit: String,
    /// What the step does.
    pub op: UnitOp,
    /// Whether it was running before the step (live root).
    pub active_before: bool,
}

/// Everything a run works with.
#[derive(Debug)]
pub struct Context<'a> {
    /// The host profile.
    pub profile: &'a Profile,
    /// The host root.
    pub root: &'a HostRoot,
    /// Its systemd.
    pub systemd: &'a Systemd,
    /// The state directory.
    pub store: &'a StateDir,
    /// The ledger.
    pub ledger: &'a mut Ledger,
    /// Who acts, for the ledger.
    pub actor: String,
    /// Operator output.
    pub out: &'a Output,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Run id.
    pub run: String,
    /// Files written or removed.
    pub files: usize,
    /// Units masked or unmasked.
    pub units: usize,
    /// Ledger size after the run (with its checkpoint).
    pub ledger_seq: u64,
}

/// Runs `plan` as its command (`apply` or `rollback`). `entries(run)` gives the
/// ledger entries written at the commit point, the last of which must be
/// `<command>.completed` with `"run": run` in its detail.
pub fn execute(
    cx: &mut Context<'_>,
    plan: &Plan,
    entries: impl FnOnce(&str) -> Vec<NewEntry>,
) -> Result<Outcome> {
    let command = plan.command;
    let bundle = plan.bundle.as_ref().map(|b| b.id.clone());
    let run = run_id(&plan.hash);
    let mut seen = BTreeSet::new();
    let preimages: Vec<(&str, &[u8])> = plan
        .files
        .iter()
        .filter_map(|f| {
            Some((
                f.before.as_ref()?.sha256.as_str(),
                f.before_content.as_deref()?,
            ))
        })
        .chain(
            plan.keep
                .iter()
                .map(|k| (k.meta.sha256.as_str(), k.content.as_slice())),
        )
        .filter(|(sha, _)| seen.insert(*sha))
        .collect();
    let (_, failed) = parallel(&preimages, |(sha, content)| {
        cx.store.keep_preimage(sha, content)
    });
    if let Some((_, e)) = failed {
        return Err(e);
    }
    cx.store.sync_preimages()?;

    let mut journal = Journal {
        format: "airlock-journal/1".into(),
        run: run.clone(),
        command: command.into(),
        plan: plan.hash.clone(),
        bundle: bundle.clone(),
        ledger_head: cx.ledger.head()?.seq,
        started: airlock_format::time::format(&airlock_format::time::now()),
        files: plan
            .files
            .iter()
            .map(|f| JournalFile {
                path: f.path.clone(),
                before: f.before.clone(),
                after: f.after.clone(),
            })
            .collect(),
        units: plan
            .units
            .iter()
            .map(|u| {
                Ok(JournalUnit {
                    unit: u.unit.clone(),
                    op: u.op,
                    active_before: cx.systemd.is_active(&u.unit)?,
                })
            })
            .collect::<Result<_>>()?,
        commit: None,
    };
    write_journal(cx.store, &journal)?;
    let mut started = NewEntry::new(
        &format!("{command}.started"),
        &cx.actor,
        json!({
            "run": run,
            "plan": plan.hash,
            "files": plan.files.len(),
            "units": plan.units.len(),
        }),
    );
    if let Some(b) = &bundle {
        started = started.bundle(b);
    }
    cx.ledger.append(started)?;

    // The steps: files (in parallel: each is independent, and fsync latency, not
    // CPU, is what a run waits for), then units in order.
    let root = cx.root;
    let (results, failed) = parallel(&plan.files, |f| match (&f.after, &f.after_content) {
        (Some(t), Some(c)) => root
            .write(&f.path, c, t.mode, f.owner)
            .map(|(dir, meta)| (dir, Some((f.path.clone(), meta)))),
        _ => root.remove(&f.path).map(|dir| (dir, None)),
    });
    let mut done = results.len();
    let mut dirs = BTreeSet::new();
    let mut written = Vec::with_capacity(results.len());
    for (dir, meta) in results {
        dirs.insert(dir);
        written.extend(meta);
    }
    let mut failure = failed.map(|(i, e)| match plan.files.get(i) {
        Some(f) => (format!("file {}", f.path), f.mitigations.clone(), e),
        None => ("the file steps".to_string(), Vec::new(), e),
    });
    if failure.is_none() {
        for u in &plan.units {
            let step = cx.root.check_unit(&u.unit).and_then(|()| match u.op {
                UnitOp::Mask => cx.systemd.mask(&u.unit),
                UnitOp::Unmask => cx.systemd.unmask(&u.unit, u.start),
            });
            match step {
                Ok(()) => done += 1,
                Err(e) => {
                    failure = Some((format!("unit {}", u.unit), u.mitigations.clone(), e));
                    break;
                }
            }
        }
    }
    if failure.is_none()
        && let Err(e) = cx.root.sync_dirs(&dirs)
    {
        failure = Some(("fsync of the changed directories".into(), Vec::new(), e));
    }
    if let Some((step, mitigations, error)) = failure {
        return fail(cx, &journal, &step, &mitigations, &error, done);
    }

    // Commit.
    let mut state = plan.new_state.clone();
    for (path, meta) in written {
        if let Some(m) = state.files.get_mut(&path) {
            m.written = meta;
        }
    }
    journal.commit = Some(state.clone());
    let committed = write_journal(cx.store, &journal)
        .and_then(|()| Ok(cx.ledger.append_batch(entries(&run))?));
    if let Err(e) = committed {
        journal.commit = None;
        return fail(cx, &journal, "the commit", &[], &e, done);
    }
    finish(cx.store, &state)?;
    let seq = checkpoint(cx)?;
    Ok(Outcome {
        run,
        files: plan.files.len(),
        units: plan.units.len(),
        ledger_seq: seq,
    })
}

/// Finishes or undoes the run a crash interrupted, if there is one. Call with
/// the lock held, before planning anything.
pub fn recover(cx: &mut Context<'_>) -> Result<()> {
    cx.store.sweep_temps()?;
    let path = cx.store.journal_path();
    if !path.exists() {
        return Ok(());
    }
    let journal = read_journal(cx.store)?;
    let committed = match &journal.commit {
        Some(state)
            if ledger_has(
                cx.ledger,
                &journal,
                &format!("{}.completed", journal.command),
            )? =>
        {
            Some(state)
        }
        _ => None,
    };
    let outcome = match committed {
        Some(state) => {
            cx.store.save(state)?;
            "finished"
        }
        None => {
            undo(cx.root, cx.systemd, cx.store, &journal)?;
            "undone"
        }
    };
    // Recorded before the journal goes, so that a crash from here on is recovered
    // (and recorded) again; a second recovery does not record it twice.
    if !ledger_has(cx.ledger, &journal, "apply.interrupted")? {
        let mut entry = NewEntry::new(
            "apply.interrupted",
            &cx.actor,
            json!({
                "run": journal.run,
                "command": journal.command,
                "plan": journal.plan,
                "started": journal.started,
                "outcome": outcome,
                "files": journal.files.len(),
                "units": journal.units.len(),
            }),
        );
        if let Some(b) = &journal.bundle {
            entry = entry.bundle(b);
        }
        cx.ledger.append(entry)?;
    }
    match committed {
        Some(state) => finish(cx.store, state)?,
        None => remove_journal(cx.store)?,
    }
    checkpoint(cx)?;
    cx.out.warn(format!(
        "the {} run {} (started {}) was interrupted; it has been {outcome} and recorded in the ledger as apply.interrupted",
        journal.command, journal.run, journal.started
    ));
    Ok(())
}

/// Signs a checkpoint of the ledger with the host key; returns the ledger size.
pub fn checkpoint(cx: &mut Context<'_>) -> Result<u64> {
    sign(cx.profile, cx.ledger, &cx.actor)
}

/// Signs a checkpoint of `ledger` with the host key of `profile`, so that what
/// a command recorded (a verification, a plan, a refusal) is signed at once;
/// returns the ledger size.
pub fn sign(profile: &Profile, ledger: &mut Ledger, actor: &str) -> Result<u64> {
    let key = SecretKey::from_file(&profile.host_key_path(), &PasswordSource::default())?;
    ledger.checkpoint(&key, actor)?;
    Ok(ledger.head()?.seq)
}

/// A failed step: undo what the run did, record it, exit 5.
fn fail(
    cx: &mut Context<'_>,
    journal: &Journal,
    step: &str,
    mitigations: &[String],
    error: &Error,
    done: usize,
) -> Result<Outcome> {
    let reason = error.to_string();
    if let Err(undo_error) = undo(cx.root, cx.systemd, cx.store, journal) {
        // The journal stays: the next start undoes the run again.
        return Err(Error::UndoFailed {
            step: step.into(),
            reason,
            undo: undo_error.to_string(),
        });
    }
    let mut batch = Vec::new();
    for id in mitigations {
        batch.push(
            NewEntry::new(
                "mitigation.failed",
                &cx.actor,
                json!({ "run": journal.run, "step": step, "error": reason }),
            )
            .mitigation(id),
        );
    }
    let mut failed = NewEntry::new(
        &format!("{}.failed", journal.command),
        &cx.actor,
        json!({
            "run": journal.run,
            "plan": journal.plan,
            "step": step,
            "error": reason,
            "steps_done": done,
            "undone": "every change of this run was undone",
        }),
    );
    if let Some(b) = &journal.bundle {
        batch = batch.into_iter().map(|e| e.bundle(b)).collect();
        failed = failed.bundle(b);
    }
    batch.push(failed);
    cx.ledger.append_batch(batch)?;
    remove_journal(cx.store)?;
    checkpoint(cx)?;
    Err(Error::ApplyFailed {
        step: step.into(),
        reason,
        undone: done,
    })
}

/// What one worker of [`parallel`] did: its results, and the error it stopped at.
type Outcomes<R> = (Vec<R>, Option<(usize, Error)>);

/// Most threads a run writes files with.
const WRITERS: usize = 8;

/// Runs `f` on every item, on up to [`WRITERS`] threads (one below 32 items, so
/// small runs stay strictly in order). Stops taking new items after the first
/// error; returns the results of the items that succeeded and the first error
/// with its index.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Outcomes<R> {
    let threads = if items.len() < 32 { 1 } else { WRITERS };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let work = || {
        let mut ok = Vec::new();
        let mut err = None;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            match f(item) {
                Ok(r) => ok.push(r),
                Err(e) => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    err = Some((i, e));
                }
            }
        }
        (ok, err)
    };
    let outcomes: Vec<Outcomes<R>> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        let e = Error::Tool {
                            what: "a writer thread".into(),
                            reason: "it panicked".into(),
                            hint: "report this as a bug".into(),
                        };
                        (Vec::new(), Some((usize::MAX, e)))
                    })
                })
                .collect()
        })
    };
    let mut all = Vec::with_capacity(items.len());
    let mut first: Option<(usize, Error)> = None;
    for (ok, err) in outcomes {
        all.extend(ok);
        if let Some((i, e)) = err
            && first.as_ref().is_none_or(|(j, _)| i < *j)
        {
            first = Some((i, e));
        }
    }
    (all, first)
}

/// Puts every file of the journal back to its pre-image and every unit back to
/// its state; steps never reached are already there, so this is idempotent.
fn undo(root: &HostRoot, systemd: &Systemd, store: &StateDir, journal: &Journal) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for f in journal.files.iter().rev() {
        dirs.insert(root.sweep_temp(&f.path)?);
        let now = root.read(&f.path)?;
        let dir = match (&f.before, now) {
            (None, None) => continue,
            (Some(b), Some(n)) if b.same_content_and_mode(&n.meta) => continue,
            (None, Some(_)) => root.remove(&f.path)?,
            (Some(b), _) => {
                let content = store.preimage(&b.sha256)?;
                root.write(&f.path, &content, b.mode, Some((b.uid, b.gid)))?
                    .0
            }
        };
        dirs.insert(dir);
    }
    root.sync_dirs(&dirs)?;
    for u in journal.units.iter().rev() {
        root.check_unit(&u.unit)?;
        let masked = systemd.is_masked(&u.unit)?;
        match u.op {
            UnitOp::Mask if masked => systemd.unmask(&u.unit, u.active_before)?,
            UnitOp::Unmask if !masked => systemd.mask(&u.unit)?,
            _ => {}
        }
    }
    Ok(())
}

/// Step 7: the new state, no journal, no unused pre-images.
fn finish(store: &StateDir, state: &State) -> Result<()> {
    store.save(state)?;
    remove_journal(store)?;
    let used: BTreeSet<&str> = state
        .files
        .values()
        .filter_map(|m| m.base.as_ref().map(|b| b.sha256.as_str()))
        .collect();
    store.drop_preimages_except(&used)
}

/// Whether the ledger holds an entry of `kind` for the journal's run (written
/// after the run started).
fn ledger_has(ledger: &Ledger, journal: &Journal, kind: &str) -> Result<bool> {
    let head = ledger.head()?.seq;
    for seq in journal.ledger_head + 1..=head {
        if let Some(e) = ledger.entry(seq)?
            && e.kind == kind
            && serde_json::from_str::<Value>(&e.detail)
                .ok()
                .and_then(|d| {
                    d.get("run")
                        .and_then(Value::as_str)
                        .map(|r| r == journal.run)
                })
                .unwrap_or(false)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn write_journal(store: &StateDir, journal: &Journal) -> Result<()> {
    let bytes = serde_json::to_vec(journal).map_err(|e| Error::State {
        dir: store.path().to_path_buf(),
        reason: format!("the journal cannot be encoded: {e}"),
        hint: "report this as a bug".into(),
    })?;
    fsutil::write_atomic(&store.journal_path(), &bytes, Some(0o600))?;
    Ok(())
}

fn read_journal(store: &StateDir) -> Result<Journal> {
    let path = store.journal_path();
    let bytes = fsutil::read_limited(&path, crate::state::MAX_STATE_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::State {
        dir: store.path().to_path_buf(),
        reason: format!("journal.json cannot be read ({e}), so an interrupted run cannot be finished or undone"),
        hint: "compare the managed files with airlock-ledger log, put them right by hand, then move journal.json away".into(),
    })
}

fn remove_journal(store: &StateDir) -> Result<()> {
    let path = store.journal_path();
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(airlock_format::Error::io("remove", &path, e).into()),
    }
    fsutil::sync_dir(store.path())?;
    Ok(())
}

/// A run id: 16 hex digits from the plan hash, the time and the process.
fn run_id(plan: &str) -> String {
    let seed = format!(
        "{plan} {} {}",
        airlock_format::time::now()
            .timestamp_nanos_opt()
            .unwrap_or_default(),
        std::process::id()
    );
    sha256_hex(seed.as_bytes())[..16].to_string()
}
