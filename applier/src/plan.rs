//! From a desired state to the exact changes: for every file and unit that any
//! wanted or applied mitigation touches, what is there now, what should be there,
//! and whether someone else changed it since airlock wrote it (drift).
//!
//! A file's desired content is always re-derived from its original pre-image
//! (`base`, kept in `state_dir/preimages`) by replaying, in id order, the actions
//! of every mitigation that stays wanted; a file no wanted mitigation touches any
//! more gets its pre-image back. So applying, updating, removing and rolling back
//! are one computation, and applying the same bundle twice finds nothing to do.
//!
//! The plan hash is the SHA-256 of a canonical JSON body that binds the host, the
//! profile (its bytes' SHA-256), the bundle, every verdict, and every change with
//! the pre-image it replaces.

use crate::config_edit;
use crate::desired::{Decision, Desired, Verdict};
use crate::error::{Error, Result};
use crate::root::{FileMeta, FileNow, HostRoot};
use crate::state::{ManagedFile, ManagedUnit, State, StateDir, Step, WebKind};
use crate::systemd::Systemd;
use crate::web;
use airlock_format::hash::sha256_hex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Content and mode a file should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// SHA-256 of the content.
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
}

/// One file the run changes.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Action path.
    pub path: String,
    /// What is there now (`None`: nothing): the pre-image of this run.
    pub before: Option<FileMeta>,
    /// What will be there (`None`: the file is removed).
    pub after: Option<Target>,
    /// The mitigations whose actions make up `after`.
    pub mitigations: Vec<String>,
    /// Changed by someone else since airlock wrote it.
    pub drift: bool,
    /// Current content.
    #[serde(skip)]
    pub before_content: Option<Vec<u8>>,
    /// New content.
    #[serde(skip)]
    pub after_content: Option<Vec<u8>>,
    /// Owner to keep (the current one, or the pre-image's when it comes back).
    #[serde(skip)]
    pub owner: Option<(u32, u32)>,
}

/// One unit the run masks or unmasks.
#[derive(Debug, Clone, Serialize)]
pub struct UnitChange {
    /// Unit name.
    pub unit: String,
    /// `mask` or `unmask`.
    pub op: UnitOp,
    /// `systemctl is-enabled` now.
    pub enabled_now: String,
    /// Start it again after unmasking (it ran before airlock stopped it).
    pub start: bool,
    /// Unmasked by someone else since airlock masked it.
    pub drift: bool,
    /// The mitigations that disable it.
    pub mitigations: Vec<String>,
}

/// What happens to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitOp {
    /// `systemctl mask`.
    Mask,
    /// `systemctl unmask`.
    Unmask,
}

/// Something airlock manages that was changed outside airlock.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// A path or a unit name.
    pub what: String,
    /// What is different.
    pub detail: String,
}

/// The bundle a plan comes from.
#[derive(Debug, Clone, Serialize)]
pub struct BundleRef {
    /// Bundle id.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Sequence number.
    pub seq: u64,
    /// The file it was read from.
    pub file: String,
}

/// A complete plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// `airlock-plan/1`.
    pub format: &'static str,
    /// `apply` or `rollback`.
    pub command: &'static str,
    /// Host name.
    pub host: String,
    /// Host root.
    pub root: String,
    /// SHA-256 of the profile's bytes.
    pub profile_sha256: String,
    /// The bundle (apply only).
    pub bundle: Option<BundleRef>,
    /// Per mitigation, the verdict and why.
    pub mitigations: Vec<Decision>,
    /// File changes, by path.
    pub files: Vec<FileChange>,
    /// Unit changes, by name.
    pub units: Vec<UnitChange>,
    /// Managed files and units changed outside airlock.
    pub drift: Vec<Drift>,
    /// The plan hash (`sha256:…`).
    pub hash: String,
    /// The state once the run has committed (file metadata is completed from the
    /// writes themselves).
    #[serde(skip)]
    pub new_state: State,
    /// Pre-images of files that become managed without changing now (a key that
    /// already had the value): kept all the same, so rollback can restore them.
    /// (A changed file's pre-image is its `before_content`.)
    #[serde(skip)]
    pub keep: Vec<FileNow>,
}

impl Plan {
    /// True when the run changes nothing on the host and no verdict changes the record.
    pub fn is_noop(&self) -> bool {
        self.files.is_empty()
            && self.units.is_empty()
            && self
                .mitigations
                .iter()
                .all(|d| matches!(d.verdict, Verdict::Keep | Verdict::Skip))
    }

    /// How many mitigations get each verdict.
    pub fn count(&self, v: Verdict) -> usize {
        self.mitigations.iter().filter(|d| d.verdict == v).count()
    }
}

/// What the plan reads from: the host root, its systemd, the state directory.
#[derive(Debug)]
pub struct Host<'a> {
    /// The host root.
    pub root: &'a HostRoot,
    /// Its systemd.
    pub systemd: &'a Systemd,
    /// The state directory.
    pub store: &'a StateDir,
    /// The recorded state.
    pub state: &'a State,
}

/// The header fields of a plan.
#[derive(Debug, Clone)]
pub struct Header {
    /// `apply` or `rollback`.
    pub command: &'static str,
    /// Host name.
    pub host: String,
    /// SHA-256 of the profile's bytes.
    pub profile_sha256: String,
    /// The bundle.
    pub bundle: Option<BundleRef>,
    /// When set, only these paths and units are looked at (a rollback touches
    /// nothing but what the rolled-back mitigations changed).
    pub scope: Option<BTreeSet<String>>,
    /// When the run commits (recorded as `applied_at`).
    pub now: String,
}

/// Computes the plan that brings `host` to `desired`.
pub fn make(host: &Host<'_>, desired: &Desired, header: Header) -> Result<Plan> {
    let state = host.state;
    // Who touches what, in id order then action order.
    let mut by_path: BTreeMap<&str, Vec<(&str, &Step)>> = BTreeMap::new();
    let mut by_unit: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, (_, _, steps)) in &desired.wanted {
        for s in steps {
            match s {
                Step::ServiceDisable { unit } => by_unit.entry(unit).or_default().push(id),
                s => {
                    if let Some(p) = s.path() {
                        by_path.entry(p).or_default().push((id, s));
                    }
                }
            }
        }
    }
    let in_scope = |what: &str| header.scope.as_ref().is_none_or(|s| s.contains(what));
    let mut paths: BTreeSet<&str> = by_path.keys().copied().collect();
    paths.extend(state.files.keys().map(String::as_str));
    let mut units: BTreeSet<&str> = by_unit.keys().copied().collect();
    units.extend(state.units.keys().map(String::as_str));

    let mut new_state = State {
        applied: BTreeMap::new(),
        files: BTreeMap::new(),
        units: BTreeMap::new(),
        held: state.held.clone(),
    };
    let mut files = Vec::new();
    let mut drift = Vec::new();
    let mut keep = Vec::new();
    for path in paths {
        let managed = state.files.get(path);
        if !in_scope(path) {
            if let Some(m) = managed {
                new_state.files.insert(path.into(), m.clone());
            }
            continue;
        }
        let now = host.root.read(path)?;
        let base: Option<FileNow> = match managed {
            Some(m) => match &m.base {
                Some(meta) => Some(FileNow {
                    meta: meta.clone(),
                    content: host.store.preimage(&meta.sha256)?,
                }),
                None => None,
            },
            None => now.clone(),
        };
        let is_drift = managed.is_some_and(|m| match &now {
            Some(n) => !n.meta.same_content_and_mode(&m.written),
            None => true,
        });
        if is_drift {
            drift.push(Drift {
                what: path.into(),
                detail: match &now {
                    Some(_) => "its content or mode is not what airlock wrote".into(),
                    None => "it was removed".into(),
                },
            });
        }
        let touching = by_path.get(path).map(Vec::as_slice).unwrap_or_default();
        let (content, mode) = fold(path, base.as_ref(), touching)?;
        let owner = now
            .as_ref()
            .or(base.as_ref())
            .map(|f| (f.meta.uid, f.meta.gid));
        let after = content.as_ref().map(|c| Target {
            sha256: sha256_hex(c),
            mode,
        });
        if let (false, Some(a)) = (touching.is_empty(), &after) {
            // Completed with the real owner once written.
            let written = FileMeta {
                sha256: a.sha256.clone(),
                mode,
                uid: owner.map_or(0, |o| o.0),
                gid: owner.map_or(0, |o| o.1),
            };
            new_state.files.insert(
                path.into(),
                ManagedFile {
                    base: base.as_ref().map(|b| b.meta.clone()),
                    written,
                },
            );
        }
        let same = match (&now, &after) {
            (None, None) => true,
            (Some(n), Some(a)) => n.meta.sha256 == a.sha256 && n.meta.mode == a.mode,
            _ => false,
        };
        if same {
            // Newly managed without a change now (a key that already had the
            // value): its pre-image is kept all the same, for rollback.
            if managed.is_none()
                && !touching.is_empty()
                && let Some(b) = base
            {
                keep.push(b);
            }
        } else {
            files.push(FileChange {
                path: path.into(),
                before: now.as_ref().map(|n| n.meta.clone()),
                after,
                // One entry per mitigation, though it may have several steps here.
                mitigations: touching
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                drift: is_drift,
                before_content: now.map(|n| n.content),
                after_content: content,
                owner,
            });
        }
    }

    let mut unit_changes = Vec::new();
    for unit in units {
        let managed = state.units.get(unit);
        if !in_scope(unit) {
            if let Some(m) = managed {
                new_state.units.insert(unit.into(), m.clone());
            }
            continue;
        }
        let wanted = by_unit.get(unit);
        host.root.check_unit(unit)?;
        let enabled_now = host.systemd.is_enabled(unit)?;
        let masked = enabled_now.starts_with("masked");
        let is_drift = managed.is_some() && !masked;
        if is_drift {
            drift.push(Drift {
                what: unit.into(),
                detail: format!("it was unmasked outside airlock (now {enabled_now})"),
            });
        }
        let mitigations: Vec<String> = wanted
            .map(|w| w.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        let change = |op: UnitOp, start: bool| UnitChange {
            unit: unit.into(),
            op,
            enabled_now: enabled_now.clone(),
            start,
            drift: is_drift,
            mitigations: mitigations.clone(),
        };
        match (wanted.is_some(), managed) {
            (true, m) => {
                let record = match m {
                    Some(m) => m.clone(),
                    None => ManagedUnit {
                        enabled_before: enabled_now.clone(),
                        active_before: host.systemd.is_active(unit)?,
                    },
                };
                if !masked {
                    unit_changes.push(change(UnitOp::Mask, false));
                }
                new_state.units.insert(unit.into(), record);
            }
            (false, Some(m)) => {
                // Masked before airlock came: leave it masked.
                if masked && !m.enabled_before.starts_with("masked") {
                    unit_changes.push(change(UnitOp::Unmask, m.active_before));
                }
            }
            (false, None) => {}
        }
    }

    for d in &desired.decisions {
        match d.verdict {
            Verdict::Keep => {
                if let Some(a) = state.applied.get(&d.id) {
                    new_state.applied.insert(d.id.clone(), a.clone());
                }
            }
            Verdict::Apply | Verdict::Update => {
                new_state.held.remove(&d.id);
                if let Some((revision, title, steps)) = desired.wanted.get(&d.id) {
                    new_state.applied.insert(
                        d.id.clone(),
                        crate::state::Applied {
                            revision: *revision,
                            title: title.clone(),
                            bundle: header
                                .bundle
                                .as_ref()
                                .map(|b| b.id.clone())
                                .unwrap_or_default(),
                            applied_at: header.now.clone(),
                            actions: steps.clone(),
                        },
                    );
                }
            }
            Verdict::Remove | Verdict::Skip => {}
        }
    }

    let mut plan = Plan {
        format: "airlock-plan/1",
        command: header.command,
        host: header.host,
        root: host.root.path().display().to_string(),
        profile_sha256: header.profile_sha256,
        bundle: header.bundle,
        mitigations: desired.decisions.clone(),
        files,
        units: unit_changes,
        drift,
        hash: String::new(),
        new_state,
        keep,
    };
    plan.hash = hash(&plan);
    Ok(plan)
}

/// The plan hash: see [`hash_json`]. No time goes into a plan, so the same
/// bundle on an unchanged host always gives the same hash.
pub fn hash(plan: &Plan) -> String {
    hash_json(&crate::render::plan_json(plan))
}

/// The plan hash of a plan as JSON (what `plan --out` writes): SHA-256 of the
/// compact JSON, keys sorted, of everything in it but `hash` itself and the
/// bundle's file name. So every word an approver reads (verdicts, reasons,
/// titles, diffs) is covered, and `approve` can check a plan file against its
/// hash; the same bundle copied elsewhere still gives the same plan.
pub fn hash_json(plan: &serde_json::Value) -> String {
    let mut body = plan.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("hash");
    }
    if let Some(b) = body
        .get_mut("bundle")
        .and_then(serde_json::Value::as_object_mut)
    {
        b.remove("file");
    }
    // serde_json's maps are sorted by key, so this text is canonical.
    format!("sha256:{}", sha256_hex(body.to_string().as_bytes()))
}

/// Replays `steps` over the pre-image: the content (None: no file) and mode.
fn fold(
    path: &str,
    base: Option<&FileNow>,
    steps: &[(&str, &Step)],
) -> Result<(Option<Vec<u8>>, u32)> {
    let mut content = base.map(|b| b.content.clone());
    let mut mode = base.map_or(0o644, |b| b.meta.mode);
    for (_, step) in steps {
        match step {
            Step::File {
                mode: m,
                content: c,
                ..
            } => {
                content = Some(c.as_bytes().to_vec());
                mode = *m;
            }
            Step::ConfigSet {
                format,
                section,
                key,
                value,
                ..
            } => {
                let bytes = content.take().unwrap_or_default();
                let text = String::from_utf8(bytes).map_err(|_| Error::Unsafe {
                    path: path.into(),
                    reason: "it is not UTF-8 text, so airlock cannot set a key in it".into(),
                })?;
                content = Some(
                    config_edit::set(&text, format.config(), section.as_deref(), key, value)
                        .into_bytes(),
                );
            }
            Step::UrlRules {
                server,
                mitigation,
                blocks,
                ..
            } => match server {
                WebKind::Nginx => {
                    content = Some(web::nginx::render(mitigation, blocks).into_bytes());
                    mode = 0o644;
                }
                WebKind::Apache => {
                    content = Some(web::apache::render(mitigation, blocks).into_bytes());
                    mode = 0o644;
                }
                WebKind::Iis => {
                    let Some(doc) = content.take() else {
                        return Err(Error::Unsafe {
                            path: path.into(),
                            reason: "web.config does not exist, so there is nowhere to put the url-block rules; check web.web_config in the profile".into(),
                        });
                    };
                    content =
                        Some(web::iis::apply(&doc, mitigation, blocks).map_err(|reason| {
                            Error::Unsafe {
                                path: path.into(),
                                reason,
                            }
                        })?);
                }
            },
            Step::ServiceDisable { .. } => {}
        }
    }
    Ok((content, mode))
}
