//! `status`: the applied mitigations (bundle, revision, time), every managed file
//! and unit with its drift (changed outside airlock since airlock wrote it), held
//! mitigations, and an interrupted run waiting to be finished or undone. Reads
//! only; takes no lock.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::root::HostRoot;
use crate::state::StateDir;
use crate::systemd::Systemd;
use airlock_format::output::Output;
use airlock_format::profile::{Profile, locate};
use serde_json::json;
use std::path::Path;

/// Runs `status`.
pub fn run(profile: Option<&Path>, a: &StatusArgs, out: &Output) -> Result<()> {
    let profile = Profile::load(&locate(profile))?;
    crate::verify::open_ledger(&profile)?;
    let store = StateDir::new(profile.state_dir());
    let state = store.load()?;
    let root = HostRoot::open(profile.root())?;
    let systemd = Systemd::new(profile.root(), root.is_live());
    let interrupted = store.journal_path().exists();

    let mut files = Vec::new();
    for (path, m) in &state.files {
        let drift = match root.read(path) {
            Ok(Some(now)) if now.meta.same_content_and_mode(&m.written) => None,
            Ok(Some(_)) => Some("content or mode is not what airlock wrote".to_string()),
            Ok(None) => Some("removed".to_string()),
            Err(e) => Some(e.to_string()),
        };
        let by: Vec<&str> = state
            .applied
            .iter()
            .filter(|(_, a)| a.actions.iter().any(|s| s.path() == Some(path)))
            .map(|(id, _)| id.as_str())
            .collect();
        files.push((path, by, drift));
    }
    let mut units = Vec::new();
    for unit in state.units.keys() {
        let drift = match systemd.is_enabled(unit) {
            Ok(s) if s.starts_with("masked") => None,
            Ok(s) => Some(format!("not masked (now {s})")),
            Err(e) => Some(e.to_string()),
        };
        units.push((unit, drift));
    }
    let drifted = files.iter().filter(|f| f.2.is_some()).count()
        + units.iter().filter(|u| u.1.is_some()).count();

    if a.json {
        out.json(&json!({
            "host": profile.host(),
            "root": profile.root().display().to_string(),
            "interrupted_run": interrupted,
            "applied": state.applied.iter().map(|(id, m)| json!({
                "id": id, "revision": m.revision, "title": m.title, "bundle": m.bundle, "applied_at": m.applied_at,
            })).collect::<Vec<_>>(),
            "files": files.iter().map(|(p, by, d)| json!({
                "path": p, "mitigations": by, "drift": d.is_some(), "detail": d,
            })).collect::<Vec<_>>(),
            "units": units.iter().map(|(u, d)| json!({
                "unit": u, "drift": d.is_some(), "detail": d,
            })).collect::<Vec<_>>(),
            "held": state.held,
            "blocked": profile.policy().blocked(),
            "drift": drifted,
        }));
        return Ok(());
    }
    if interrupted {
        out.warn(
            "an interrupted run is waiting: the next apply or rollback finishes or undoes it first",
        );
    }
    out.line(format!(
        "host {} (root {}): {} mitigation(s) applied, {} file(s) and {} unit(s) managed, {drifted} drifted",
        profile.host(),
        profile.root().display(),
        state.applied.len(),
        files.len(),
        units.len()
    ));
    for (id, m) in &state.applied {
        out.line(format!(
            "  {id:<20} rev {:<4} {}  bundle {}  {}",
            m.revision, m.applied_at, m.bundle, m.title
        ));
    }
    for (path, by, drift) in &files {
        match drift {
            None => out.line(format!("  ok     {path} ({})", by.join(", "))),
            Some(d) => out.line(format!("  DRIFT  {path} ({}): {d}", by.join(", "))),
        }
    }
    for (unit, drift) in &units {
        match drift {
            None => out.line(format!("  ok     {unit} masked")),
            Some(d) => out.line(format!("  DRIFT  {unit}: {d}")),
        }
    }
    for (id, rev) in &state.held {
        out.line(format!(
            "  held   {id} rev {rev}: rolled back; stays off until a newer revision"
        ));
    }
    for id in profile.policy().blocked() {
        out.line(format!(
            "  blocked {id}: never applied here (policy.blocked in {})",
            profile.path().display()
        ));
    }
    Ok(())
}
