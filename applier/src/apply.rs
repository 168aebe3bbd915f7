//! `plan` and `apply`: verify the bundle again (recorded), compute the desired
//! state and the exact changes, then (apply) carry them out all-or-nothing.
//!
//! A plan that cannot be carried out safely (a path out of the root, a drifted
//! file without `--force`) is refused with exit 4 before anything changes, and the
//! refusal is recorded.

use crate::approval;
use crate::cli::{ApplyArgs, PlanArgs};
use crate::desired::{self, Verdict};
use crate::engine;
use crate::error::{Error, Result};
use crate::plan::{BundleRef, Plan};
use crate::render;
use crate::session::Session;
use airlock_format::Exit;
use airlock_format::fsutil;
use airlock_format::output::{OperatorError, Output};
use airlock_format::time;
use airlock_format::verify::{Bundle, Verified};
use airlock_ledger::NewEntry;
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The bundle at `file`, verified and accepted by this host's policy (recorded).
fn accept(s: &mut Session, file: &Path, allow_downgrade: bool) -> Result<crate::verify::Accepted> {
    crate::verify::accept(&s.profile, &mut s.ledger, &s.actor, file, allow_downgrade)
}

/// Runs `plan FILE [--out PLAN.json]`.
pub fn run_plan(profile: Option<&Path>, a: &PlanArgs, out: &Output) -> Result<()> {
    let mut s = Session::open(profile, "plan", out)?;
    let bundle = accept(&mut s, &a.file, a.allow_downgrade)?.bundle;
    let plan = refusing(&mut s, "plan.refused", &bundle, |s| {
        make(s, &bundle, &a.file)
    })?;
    let json = render::plan_json(&plan);
    if let Some(path) = &a.out {
        let mut text = serde_json::to_vec_pretty(&json).unwrap_or_default();
        text.push(b'\n');
        fsutil::write_atomic(path, &text, Some(0o644))?;
    }
    s.ledger.append(
        NewEntry::new(
            "plan.created",
            &s.actor,
            json!({
                "plan": plan.hash,
                "out": a.out.as_ref().map(|p| p.display().to_string()),
                "apply": plan.count(Verdict::Apply),
                "update": plan.count(Verdict::Update),
                "keep": plan.count(Verdict::Keep),
                "remove": plan.count(Verdict::Remove),
                "skip": plan.count(Verdict::Skip),
                "files": plan.files.len(),
                "units": plan.units.len(),
                "drift": plan.drift.len(),
            }),
        )
        .bundle(&bundle.manifest.id),
    )?;
    engine::sign(&s.profile, &mut s.ledger, &s.actor)?;
    if a.json {
        out.json(&json);
    } else {
        render::plan_text(&plan, out, true);
        if let Some(path) = &a.out {
            out.line(format!("plan written to {}", path.display()));
        }
    }
    Ok(())
}

/// Runs `apply FILE [--yes] [--force]`.
pub fn run_apply(profile: Option<&Path>, a: &ApplyArgs, out: &Output) -> Result<()> {
    let interactive = std::io::stdin().is_terminal() && !a.json;
    if !a.yes && !interactive {
        return Err(Error::Usage {
            message: "apply changes this host, and there is no terminal to confirm on".into(),
            hint: "review the plan first (airlock-applier plan FILE), then run apply with --yes"
                .into(),
        });
    }
    let mut s = Session::open(profile, "apply", out)?;
    apply_in(&mut s, a, &[], out)
}

/// `apply` inside an open session. Of `offered` (the approval files of a `sync`
/// inbox), those that name this plan are used besides `a.approval`.
pub fn apply_in(s: &mut Session, a: &ApplyArgs, offered: &[PathBuf], out: &Output) -> Result<()> {
    let accepted = accept(s, &a.file, a.allow_downgrade)?;
    let bundle = accepted.bundle;
    let downgrade_from = accepted.downgrade_from;
    let (plan, approvals) = refusing(s, "apply.refused", &bundle, |s| {
        let plan = make(s, &bundle, &a.file)?;
        if !plan.drift.is_empty() && !a.force {
            return Err(drift_refusal(&plan, "apply"));
        }
        let mut files = a.approval.clone();
        files.extend(approval::naming(offered, &plan.hash));
        let approvals = approval::check(&s.profile, &files, &plan.hash, &plan.host)?;
        let required = s.profile.policy().approvals_required();
        // A downgrade is an emergency measure: it always needs a sign-off.
        let needed = match downgrade_from {
            Some(_) => required.max(1),
            None => required,
        };
        // A plan that changes nothing needs no sign-off, unless it is a downgrade,
        // which is recorded as one.
        let changes = !plan.is_noop() || downgrade_from.is_some();
        if (approvals.len() as u64) < u64::from(needed) && changes {
            return Err(Error::Refused {
                what: "apply".into(),
                reason: format!(
                    "this plan ({}) needs {needed} approval(s) from distinct keys in trust.approver_keys{}, and {} valid one(s) were given; nothing was changed",
                    plan.hash,
                    if downgrade_from.is_some() {
                        " (a downgrade needs at least one)"
                    } else {
                        ""
                    },
                    approvals.len()
                ),
                hint: "write the plan with `airlock-applier plan FILE --out PLAN.json`, have each approver sign it with `airlock-applier approve PLAN.json --key APPROVER.key --ticket ID`, then run apply again with --approval FILE for each approval".into(),
            });
        }
        Ok((plan, approvals))
    })?;
    if !a.yes {
        render::plan_text(&plan, out, true);
        if !confirm()? {
            return Err(Error::Refused {
                what: "apply".into(),
                reason: "not confirmed; nothing was changed".into(),
                hint: "run again and answer y, or pass --yes".into(),
            });
        }
    } else if !a.json {
        render::plan_text(&plan, out, false);
    }
    let actor = s.actor.clone();
    let bundle_id = bundle.manifest.id.clone();
    let forced = a.force && !plan.drift.is_empty();
    let outcome = engine::execute(&mut s.context(out), &plan, |run| {
        let mut batch = Vec::new();
        for d in &plan.mitigations {
            let (kind, detail) = match d.verdict {
                Verdict::Apply => (
                    "mitigation.applied",
                    json!({ "revision": d.revision, "reason": d.reason }),
                ),
                Verdict::Update => (
                    "mitigation.updated",
                    json!({ "from_revision": d.applied_revision, "revision": d.revision, "reason": d.reason }),
                ),
                Verdict::Remove => (
                    "mitigation.removed",
                    json!({ "revision": d.revision, "reason": d.reason }),
                ),
                Verdict::Skip if d.record_skip => (
                    "mitigation.skipped",
                    json!({ "revision": d.revision, "reason": d.reason }),
                ),
                Verdict::Keep | Verdict::Skip => continue,
            };
            let mut detail = detail;
            detail["run"] = json!(run);
            let changed = matches!(
                d.verdict,
                Verdict::Apply | Verdict::Update | Verdict::Remove
            );
            if changed && !approvals.is_empty() {
                // So that "who approved this, under which ticket" is one query.
                detail["approved_by"] = json!(
                    approvals
                        .iter()
                        .map(|ap| json!({ "key": ap.key.to_string(), "ticket": ap.ticket }))
                        .collect::<Vec<_>>()
                );
            }
            if let Some(a) = plan.new_state.applied.get(&d.id)
                && matches!(d.verdict, Verdict::Apply | Verdict::Update)
            {
                detail["actions"] =
                    json!(a.actions.iter().map(|s| s.describe()).collect::<Vec<_>>());
            }
            batch.push(
                NewEntry::new(kind, &actor, detail)
                    .bundle(&bundle_id)
                    .mitigation(&d.id),
            );
        }
        for ap in &approvals {
            batch.push(
                NewEntry::new(
                    "approval.recorded",
                    &actor,
                    approval::entry_detail(ap, &plan.hash, run),
                )
                .bundle(&bundle_id),
            );
        }
        batch.push(
            NewEntry::new(
                "apply.completed",
                &actor,
                json!({
                    "run": run,
                    "plan": plan.hash,
                    "applied": plan.count(Verdict::Apply),
                    "updated": plan.count(Verdict::Update),
                    "kept": plan.count(Verdict::Keep),
                    "removed": plan.count(Verdict::Remove),
                    "skipped": plan.count(Verdict::Skip),
                    "files": plan.files.len(),
                    "units": plan.units.len(),
                    "forced_over_drift": forced,
                    "approvals": approvals.iter().map(|ap| ap.key.to_string()).collect::<Vec<_>>(),
                    "downgrade_from": downgrade_from,
                }),
            )
            .bundle(&bundle_id),
        );
        batch
    })?;
    if a.json {
        out.json(&json!({
            "applied": true,
            "run": outcome.run,
            "plan": plan.hash,
            "bundle": bundle_id,
            "mitigations": plan.mitigations,
            "files": outcome.files,
            "units": outcome.units,
            "ledger_size": outcome.ledger_seq,
        }));
    } else {
        out.line(format!(
            "applied bundle {bundle_id}: {} applied, {} updated, {} kept, {} removed, {} skipped; {} file(s) and {} unit(s) changed (run {}, ledger checkpointed at entry {})",
            plan.count(Verdict::Apply),
            plan.count(Verdict::Update),
            plan.count(Verdict::Keep),
            plan.count(Verdict::Remove),
            plan.count(Verdict::Skip),
            outcome.files,
            outcome.units,
            outcome.run,
            outcome.ledger_seq,
        ));
    }
    Ok(())
}

/// The plan for a verified bundle on this session's host.
fn make(s: &mut Session, bundle: &Verified<Bundle>, file: &Path) -> Result<Plan> {
    let state = s.store.load()?;
    let desired = desired::from_bundle(bundle, &s.profile, &state, &time::now());
    let m = &bundle.manifest;
    let bundle = BundleRef {
        id: m.id.clone(),
        channel: m.channel.clone(),
        seq: m.seq,
        file: file.display().to_string(),
    };
    s.plan(&state, &desired, "apply", Some(bundle), None)
}

/// Runs `f`; a policy refusal (exit 4) is recorded as `kind` before it is returned.
fn refusing<T>(
    s: &mut Session,
    kind: &str,
    bundle: &Verified<Bundle>,
    f: impl FnOnce(&mut Session) -> Result<T>,
) -> Result<T> {
    let result = f(s);
    if let Err(e) = &result
        && e.exit() == Exit::Policy
    {
        s.ledger.append(
            NewEntry::new(
                kind,
                &s.actor,
                json!({ "reason": crate::verify::bounded(&e.to_string()) }),
            )
            .bundle(&bundle.manifest.id),
        )?;
        engine::sign(&s.profile, &mut s.ledger, &s.actor)?;
    }
    result
}

/// The refusal for a plan that would overwrite changes made outside airlock.
pub fn drift_refusal(plan: &Plan, command: &str) -> Error {
    let list: Vec<String> = plan
        .drift
        .iter()
        .map(|d| format!("{} ({})", d.what, d.detail))
        .collect();
    Error::Refused {
        what: command.into(),
        reason: format!(
            "{} managed item(s) changed outside airlock since airlock wrote them: {}",
            list.len(),
            list.join("; ")
        ),
        hint: format!(
            "look at the change (airlock-applier status shows it); keep it by restoring what airlock wrote, or run {command} again with --force to overwrite it"
        ),
    }
}

/// Asks on the terminal; true for y/yes.
fn confirm() -> Result<bool> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "apply these changes to this host? [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| airlock_format::Error::io("read the answer from", Path::new("stdin"), e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
