//! How plans, runs and status look to people (text, with a unified diff of every
//! file, coloured only on a terminal without `NO_COLOR`) and to programs (JSON).

use crate::desired::Verdict;
use crate::plan::{FileChange, Plan, UnitOp};
use airlock_format::output::Output;
use serde_json::{Value, json};
use similar::TextDiff;
use std::io::IsTerminal;

/// Whether to colour stdout.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The unified diff of one file change (`/dev/null` for a missing side).
pub fn diff(f: &FileChange, color: bool) -> String {
    let old_name = if f.before.is_some() {
        f.path.as_str()
    } else {
        "/dev/null"
    };
    let new_name = if f.after.is_some() {
        f.path.as_str()
    } else {
        "/dev/null"
    };
    let text = |c: &Option<Vec<u8>>| -> Option<String> {
        match c {
            None => Some(String::new()),
            Some(b) => String::from_utf8(b.clone()).ok(),
        }
    };
    let (Some(old), Some(new)) = (text(&f.before_content), text(&f.after_content)) else {
        return format!(
            "--- {old_name}\n+++ {new_name}\nBinary content differs ({} -> {})\n",
            f.before.as_ref().map_or("none", |m| &m.sha256),
            f.after.as_ref().map_or("none", |m| &m.sha256)
        );
    };
    let mut body = TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    if let (Some(b), Some(a)) = (&f.before, &f.after)
        && b.mode != a.mode
    {
        if body.is_empty() {
            body = format!("--- {old_name}\n+++ {new_name}\n");
        }
        body.push_str(&format!("mode {:04o} -> {:04o}\n", b.mode, a.mode));
    }
    if !color {
        return body;
    }
    body.lines()
        .map(|l| {
            let code = if l.starts_with("+++") || l.starts_with("---") {
                "1"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with("@@") {
                "36"
            } else {
                return format!("{l}\n");
            };
            format!("\x1b[{code}m{l}\x1b[0m\n")
        })
        .collect()
}

/// A plan for people; the diffs are shown with `diffs`, else only with `-v`.
pub fn plan_text(plan: &Plan, out: &Output, diffs: bool) {
    let what = match &plan.bundle {
        Some(b) => format!("bundle {} (channel {}, seq {})", b.id, b.channel, b.seq),
        None => "rollback".into(),
    };
    out.line(format!(
        "plan for host {} (root {}), {what}: {} to apply, {} to update, {} to keep, {} to remove, {} skipped",
        plan.host,
        plan.root,
        plan.count(Verdict::Apply),
        plan.count(Verdict::Update),
        plan.count(Verdict::Keep),
        plan.count(Verdict::Remove),
        plan.count(Verdict::Skip),
    ));
    for d in &plan.mitigations {
        let rev = match (d.verdict, d.applied_revision) {
            (Verdict::Update, Some(from)) => format!("rev {from} -> {}", d.revision),
            _ => format!("rev {}", d.revision),
        };
        out.line(format!(
            "  {:<7} {:<20} {:<12} {}",
            d.verdict.as_str(),
            d.id,
            rev,
            d.title
        ));
        out.line(format!("          why: {}", d.reason));
    }
    for d in &plan.drift {
        out.line(format!("  DRIFT   {}: {}", d.what, d.detail));
    }
    if plan.files.is_empty() && plan.units.is_empty() {
        out.line("no file or unit changes: this host is already in the desired state");
    } else {
        out.line(format!(
            "changes: {} file(s), {} unit(s)",
            plan.files.len(),
            plan.units.len()
        ));
    }
    let color = color();
    for f in &plan.files {
        let verb = match (&f.before, &f.after) {
            (None, Some(_)) => "create",
            (Some(_), None) => "remove",
            _ => "change",
        };
        let by = if f.mitigations.is_empty() {
            "back to its pre-image".to_string()
        } else {
            format!("for {}", f.mitigations.join(", "))
        };
        out.line(format!("  {verb} {} ({by})", f.path));
        if !diffs && !out.is_verbose() {
            continue;
        }
        for l in diff(f, color).lines() {
            if diffs {
                out.line(format!("    {l}"));
            } else {
                out.detail(format!("    {l}"));
            }
        }
    }
    for u in &plan.units {
        let verb = match u.op {
            UnitOp::Mask => "mask",
            UnitOp::Unmask => "unmask",
        };
        out.line(format!("  {verb} {} (now {})", u.unit, u.enabled_now));
    }
    out.line(format!("plan hash: {}", plan.hash));
}

/// A plan for programs: the plan's fields plus each file's diff.
pub fn plan_json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
    if let Some(files) = v.get_mut("files").and_then(Value::as_array_mut) {
        for (j, f) in files.iter_mut().zip(&plan.files) {
            if let Some(o) = j.as_object_mut() {
                o.insert("diff".into(), json!(diff(f, false)));
            }
        }
    }
    v
}
