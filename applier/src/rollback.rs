//! `rollback ID... | --all [--force]`: takes mitigations off this host, giving
//! every file they touched back its pre-image (or, where another applied
//! mitigation also edits it, re-deriving it without them) and unmasking their
//! units. Refused (exit 4, recorded) when airlock's work was changed by someone
//! else since, unless `--force`. A rolled-back revision stays off: a later
//! `apply` of the same bundle skips it until a newer revision arrives.

use crate::apply::drift_refusal;
use crate::cli::RollbackArgs;
use crate::desired;
use crate::engine;
use crate::error::{Error, Result};
use crate::session::Session;
use airlock_format::output::Output;
use airlock_ledger::NewEntry;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// Runs `rollback`.
pub fn run(profile: Option<&Path>, a: &RollbackArgs, out: &Output) -> Result<()> {
    let mut s = Session::open(profile, "rollback", out)?;
    let state = s.store.load()?;
    let ids: Vec<String> = if a.all {
        state.applied.keys().cloned().collect()
    } else {
        for id in &a.ids {
            if !state.applied.contains_key(id) {
                return Err(Error::NotApplied { id: id.clone() });
            }
        }
        let mut ids = Vec::new();
        for id in &a.ids {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    };
    if ids.is_empty() {
        if a.json {
            out.json(&json!({
                "rolled_back": [], "run": null, "files": 0, "units": 0, "ledger_size": null,
            }));
        } else {
            out.line("nothing to roll back: no mitigation is applied on this host");
        }
        return Ok(());
    }
    let mut scope = BTreeSet::new();
    for id in &ids {
        for step in state
            .applied
            .get(id)
            .map(|a| a.actions.as_slice())
            .unwrap_or_default()
        {
            scope.insert(match step {
                crate::state::Step::ServiceDisable { unit } => unit.clone(),
                other => other.path().unwrap_or_default().to_string(),
            });
        }
    }
    let desired = desired::without(&state, &ids);
    let made = s.plan(&state, &desired, "rollback", None, Some(scope));
    let mut plan = match made {
        Ok(p) if p.drift.is_empty() || a.force => p,
        Ok(p) => Err(drift_refusal(&p, "rollback")).map_err(|e| record(&mut s, &ids, e))?,
        Err(e) => return Err(record(&mut s, &ids, e)),
    };
    for id in &ids {
        if let Some(applied) = state.applied.get(id) {
            plan.new_state.held.insert(id.clone(), applied.revision);
        }
    }
    if !a.json {
        crate::render::plan_text(&plan, out, false);
    }
    let actor = s.actor.clone();
    let forced = a.force && !plan.drift.is_empty();
    let outcome = engine::execute(&mut s.context(out), &plan, |run| {
        let mut batch: Vec<NewEntry> = ids
            .iter()
            .map(|id| {
                let revision = state.applied.get(id).map(|a| a.revision);
                NewEntry::new(
                    "mitigation.rolled_back",
                    &actor,
                    json!({ "run": run, "revision": revision, "forced_over_drift": forced }),
                )
                .mitigation(id)
            })
            .collect();
        batch.push(NewEntry::new(
            "rollback.completed",
            &actor,
            json!({
                "run": run,
                "plan": plan.hash,
                "mitigations": ids,
                "files": plan.files.len(),
                "units": plan.units.len(),
                "forced_over_drift": forced,
            }),
        ));
        batch
    })?;
    if a.json {
        out.json(&json!({
            "rolled_back": ids,
            "run": outcome.run,
            "files": outcome.files,
            "units": outcome.units,
            "ledger_size": outcome.ledger_seq,
        }));
    } else {
        out.line(format!(
            "rolled back {}: {} file(s) and {} unit(s) restored (run {}, ledger checkpointed at entry {}); {} off until a newer revision arrives",
            ids.join(", "),
            outcome.files,
            outcome.units,
            outcome.run,
            outcome.ledger_seq,
            if ids.len() == 1 { "it stays" } else { "they stay" },
        ));
    }
    Ok(())
}

/// Records a refusal (`rollback.refused`) and gives the error back.
fn record(s: &mut Session, ids: &[String], e: Error) -> Error {
    use airlock_format::output::OperatorError;
    if e.exit() == airlock_format::Exit::Policy {
        let entry = NewEntry::new(
            "rollback.refused",
            &s.actor,
            json!({ "mitigations": ids, "reason": crate::verify::bounded(&e.to_string()) }),
        );
        if let Err(le) = s.ledger.append(entry) {
            return le.into();
        }
        if let Err(se) = crate::engine::sign(&s.profile, &mut s.ledger, &s.actor) {
            return se;
        }
    }
    e
}
