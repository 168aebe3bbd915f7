//! Desired state (design card §7): which mitigations of a verified bundle this
//! host should have, and, compared with what is applied, the verdict for each one
//! with the reason: apply, update (new revision), keep, remove (retired, no
//! longer applicable, fixed by an upgrade, expired, blocked, not in the bundle),
//! or skip.
//!
//! Only a `Verified<Bundle>` can be planned, so nothing unverified is ever acted on.

use crate::state::{State, Step, WebKind};
use crate::web::Block;
use airlock_format::mitigation::{Action, Mitigation};
use airlock_format::profile::{Profile, Web, WebServer};
use airlock_format::time::{self, Timestamp};
use airlock_format::verify::{Bundle, Verified};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a run does with one mitigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Apply it (not applied yet).
    Apply,
    /// Apply its new revision over the old one.
    Update,
    /// Already applied at this revision.
    Keep,
    /// Take it off this host.
    Remove,
    /// Leave it off.
    Skip,
}

impl Verdict {
    /// The word shown in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Apply => "apply",
            Verdict::Update => "update",
            Verdict::Keep => "keep",
            Verdict::Remove => "remove",
            Verdict::Skip => "skip",
        }
    }
}

/// The verdict on one mitigation, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Mitigation id.
    pub id: String,
    /// Revision in the bundle (or, for a removal, the applied one).
    pub revision: u64,
    /// Revision applied now, if any.
    pub applied_revision: Option<u64>,
    /// Title.
    pub title: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub reason: String,
    /// Whether a skip is worth a ledger entry (blocked, expired, unsupported,
    /// held); a mitigation that simply does not apply to this host is not.
    #[serde(skip)]
    pub record_skip: bool,
}

/// The decisions, and the mitigations this host should have with their steps.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// One decision per mitigation in the bundle or applied, sorted by id.
    pub decisions: Vec<Decision>,
    /// Mitigations wanted after the run: id → (revision, title, steps).
    pub wanted: BTreeMap<String, (u64, String, Vec<Step>)>,
}

/// Desired state for `bundle` on this host, compared with `state`, at `now`.
pub fn from_bundle(
    bundle: &Verified<Bundle>,
    profile: &Profile,
    state: &State,
    now: &Timestamp,
) -> Desired {
    let mut out = Desired::default();
    let mut in_bundle = std::collections::BTreeSet::new();
    let mut docs: Vec<&Mitigation> = bundle.documents.iter().map(|d| &d.mitigation).collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    for m in docs {
        in_bundle.insert(m.id.clone());
        let applied = state.applied.get(&m.id).map(|a| a.revision);
        let mut decide = |verdict: Verdict, reason: String, record_skip: bool| {
            out.decisions.push(Decision {
                id: m.id.clone(),
                revision: m.revision,
                applied_revision: applied,
                title: m.title.clone(),
                verdict,
                reason,
                record_skip,
            })
        };
        // Why it must stay off, if it must: (reason, worth a ledger entry).
        let off: Option<(String, bool)> = if bundle.manifest.retired.contains(&m.id) {
            Some(("retired by the vendor".into(), false))
        } else if let Err(why) = applicability(m, profile) {
            Some((why, false))
        } else if profile.policy().is_blocked(&m.id) {
            // The absolute path: the reason is part of the plan hash, which must not
            // depend on how the profile was named on the command line.
            let path = std::path::absolute(profile.path())
                .unwrap_or_else(|_| profile.path().to_path_buf());
            Some((
                format!("blocked by policy.blocked in {}", path.display()),
                true,
            ))
        } else if let Some(at) = m.expires.filter(|at| at <= now) {
            Some((format!("expired at {}", time::format(&at)), true))
        } else if let Some(held) = state.held.get(&m.id).filter(|&&r| r >= m.revision) {
            Some((
                format!(
                    "rolled back by the operator at revision {held}; it stays off until a newer revision arrives"
                ),
                true,
            ))
        } else {
            match steps(m, profile.web()) {
                Err(why) => Some((why, true)),
                Ok(s) if s.is_empty() => Some((
                    "nothing to do on this host: its url-block rules need a web server, and this host has none".into(),
                    false,
                )),
                Ok(s) => {
                    let why = applicability(m, profile).unwrap_or_default();
                    match applied {
                        None => decide(Verdict::Apply, why, false),
                        Some(r) if r == m.revision => decide(Verdict::Keep, format!("applied at this revision; {why}"), false),
                        Some(r) => decide(Verdict::Update, format!("revision {r} is applied; {why}"), false),
                    }
                    out.wanted
                        .insert(m.id.clone(), (m.revision, m.title.clone(), s));
                    None
                }
            }
        };
        if let Some((reason, record)) = off {
            match applied {
                Some(r) => out.decisions.push(Decision {
                    id: m.id.clone(),
                    revision: r,
                    applied_revision: Some(r),
                    title: m.title.clone(),
                    verdict: Verdict::Remove,
                    reason,
                    record_skip: false,
                }),
                None => decide(Verdict::Skip, reason, record),
            }
        }
    }
    for (id, a) in &state.applied {
        if in_bundle.contains(id) {
            continue;
        }
        let reason = if bundle.manifest.retired.contains(id) {
            "retired by the vendor"
        } else {
            "not in this bundle, which is now the desired state of this host"
        };
        out.decisions.push(Decision {
            id: id.clone(),
            revision: a.revision,
            applied_revision: Some(a.revision),
            title: a.title.clone(),
            verdict: Verdict::Remove,
            reason: reason.into(),
            record_skip: false,
        });
    }
    out.decisions.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Desired state after rolling back `ids` (every other applied mitigation stays).
pub fn without(state: &State, ids: &[String]) -> Desired {
    let mut out = Desired::default();
    for (id, a) in &state.applied {
        let verdict = if ids.contains(id) {
            Verdict::Remove
        } else {
            out.wanted
                .insert(id.clone(), (a.revision, a.title.clone(), a.actions.clone()));
            Verdict::Keep
        };
        out.decisions.push(Decision {
            id: id.clone(),
            revision: a.revision,
            applied_revision: Some(a.revision),
            title: a.title.clone(),
            verdict,
            reason: if verdict == Verdict::Remove {
                "rolled back by the operator".into()
            } else {
                "stays applied".into()
            },
            record_skip: false,
        });
    }
    out
}

/// `Ok(why it applies)` or `Err(why not)`: any `<product>` that matches the
/// host's inventory makes it apply.
fn applicability(m: &Mitigation, profile: &Profile) -> Result<String, String> {
    let mut seen = Vec::new();
    for p in &m.applies_to {
        let Some(v) = profile.product(&p.name) else {
            continue;
        };
        if p.contains(v) {
            let range = match (&p.min, &p.below) {
                (Some(a), Some(b)) => format!(" (affected: {a} up to, not including, {b})"),
                (Some(a), None) => format!(" (affected: {a} and later)"),
                (None, Some(b)) => format!(" (affected: below {b})"),
                (None, None) => " (every version is affected)".into(),
            };
            return Ok(format!("{} {v} is installed{range}", p.name));
        }
        seen.push(format!("{} {v}", p.name));
    }
    if seen.is_empty() {
        let names: std::collections::BTreeSet<&str> =
            m.applies_to.iter().map(|p| p.name.as_str()).collect();
        Err(format!(
            "not applicable: {} is not in this host's [products]",
            names.into_iter().collect::<Vec<_>>().join(", ")
        ))
    } else {
        seen.dedup();
        Err(format!(
            "not applicable: {} is outside every affected range (fixed, or not yet affected)",
            seen.join(", ")
        ))
    }
}

/// The steps of a mitigation on this host: its actions in document order, with
/// its url-blocks gathered into one rules step for the host's web server (placed
/// where the first url-block was). `Err` when they cannot be carried out here, in
/// which case none of its actions is.
fn steps(m: &Mitigation, web: &Web) -> Result<Vec<Step>, String> {
    let blocks = Block::all_of(m);
    let rules = if blocks.is_empty() {
        None
    } else {
        let (server, path) = match (web.server(), web.include_dir(), web.web_config()) {
            (WebServer::None, _, _) => (None, String::new()),
            (WebServer::Nginx, Some(dir), _) => (
                Some(WebKind::Nginx),
                format!("{}/{}", dir.display(), crate::web::include_name(&m.id)),
            ),
            (WebServer::Apache, Some(dir), _) => (
                Some(WebKind::Apache),
                format!("{}/{}", dir.display(), crate::web::include_name(&m.id)),
            ),
            (WebServer::Iis, _, Some(config)) => (Some(WebKind::Iis), config.display().to_string()),
            (s, _, _) => {
                return Err(format!(
                    "its url-blocks need web settings for {s} that the profile does not have"
                ));
            }
        };
        server.map(|server| Step::UrlRules {
            server,
            path,
            mitigation: m.id.clone(),
            blocks,
        })
    };
    let mut out = Vec::new();
    let mut rules = rules;
    for a in &m.actions {
        match a {
            Action::UrlBlock(_) => out.extend(rules.take()),
            a => out.extend(Step::from_action(a)),
        }
    }
    Ok(out)
}
