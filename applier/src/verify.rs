//! `verify`: checks a bundle completely against the profile's trust roots (the
//! release signature, every size and SHA-256, every document's vendor signature)
//! and this host's policy (channel, expiry), and records the outcome in the
//! ledger: `bundle.verified`, or `bundle.rejected` with the reason. Nothing is
//! written anywhere else. A verification failure exits 3, a policy refusal 4.

use crate::error::{Error, Result};
use airlock_format::Exit;
use airlock_format::output::{OperatorError, Output};
use airlock_format::profile::{Profile, locate};
use airlock_format::time;
use airlock_format::trust::TrustRoots;
use airlock_format::verify::{Bundle, Verified, verify_bundle};
use airlock_ledger::{Ledger, NewEntry};
use serde_json::json;
use std::path::Path;

/// Runs `verify FILE` for the profile at `profile` (or the default location).
pub fn run(profile: Option<&Path>, a: &crate::cli::VerifyArgs, out: &Output) -> Result<()> {
    let profile = Profile::load(&locate(profile))?;
    let mut ledger = open_ledger(&profile)?;
    let actor = airlock_ledger::actor("airlock-applier verify");
    let Accepted {
        bundle, entry: seq, ..
    } = accept(&profile, &mut ledger, &actor, &a.file, false)?;
    crate::engine::sign(&profile, &mut ledger, &actor)?;
    let file = a.file.display().to_string();
    let m = &bundle.manifest;
    if a.json {
        out.json(&json!({
            "verified": true,
            "bundle": file,
            "id": m.id,
            "channel": m.channel,
            "seq": m.seq,
            "expires": time::format(&m.expires),
            "mitigations": bundle.documents.iter().map(|d| json!({
                "id": d.mitigation.id,
                "revision": d.mitigation.revision,
                "vendor_key": d.vendor_key.to_string(),
            })).collect::<Vec<_>>(),
            "ledger_entry": seq,
        }));
        return Ok(());
    }
    out.line(format!(
        "verified {file}: bundle {} (channel {}, seq {}) signed by release key {}; {} mitigations with valid vendor signatures, every size and SHA-256 matches",
        m.id,
        m.channel,
        m.seq,
        m.release_key,
        bundle.documents.len()
    ));
    out.line(format!("  recorded as ledger entry {seq}"));
    for d in &bundle.documents {
        out.detail(format!(
            "  {:<24} rev {:<4} {}",
            d.mitigation.id, d.mitigation.revision, d.mitigation.title
        ));
    }
    Ok(())
}

/// A bundle this host accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The verified bundle.
    pub bundle: Verified<Bundle>,
    /// The ledger entry that records it (`bundle.verified`).
    pub entry: u64,
    /// With `allow_downgrade`: the higher sequence number already accepted on the
    /// channel that this bundle goes back from.
    pub downgrade_from: Option<u64>,
}

/// Checks `file` against the profile's trust roots and policy (channel, expiry,
/// the host clock against the ledger, the sequence number against those already
/// accepted on the channel, unless `allow_downgrade`) and records the outcome
/// (`bundle.verified` or `bundle.rejected`).
pub fn accept(
    profile: &Profile,
    ledger: &mut Ledger,
    actor: &str,
    path: &Path,
    allow_downgrade: bool,
) -> Result<Accepted> {
    let trust = TrustRoots::from_files(
        profile.trust().vendor_keys(),
        profile.trust().release_keys(),
    )?;
    let file = path.display().to_string();
    let (bundle, downgrade_from) = match check(profile, ledger, &trust, path, allow_downgrade) {
        Ok(b) => b,
        Err(e) => {
            // Only a judgement on the bundle is recorded (exit 3 or 4); an I/O or
            // configuration problem (exit 1) says nothing about it.
            let exit = e.error.exit();
            if matches!(exit, Exit::Verification | Exit::Policy) {
                let mut entry = NewEntry::new(
                    "bundle.rejected",
                    actor,
                    json!({ "file": file, "exit": exit as u8, "reason": bounded(&e.error.to_string()) }),
                );
                if let Some(id) = &e.bundle_id {
                    entry = entry.bundle(id);
                }
                ledger.append(entry)?;
                crate::engine::sign(profile, ledger, actor)?;
            }
            return Err(*e.error);
        }
    };
    let m = &bundle.manifest;
    let head = ledger.append(
        NewEntry::new(
            "bundle.verified",
            actor,
            json!({
                "file": file,
                "channel": m.channel,
                "seq": m.seq,
                "created": time::format(&m.created),
                "expires": time::format(&m.expires),
                "release_key": m.release_key,
                "mitigations": bundle.documents.len(),
                "retired": m.retired.len(),
                "attachments": m.attachments.len(),
                "downgrade_from": downgrade_from,
            }),
        )
        .bundle(&m.id),
    )?;
    Ok(Accepted {
        bundle,
        entry: head.seq,
        downgrade_from,
    })
}

/// `s` cut to at most 4 KiB (on a character boundary), so a long error message
/// always fits in a ledger entry.
pub(crate) fn bounded(s: &str) -> String {
    const MAX: usize = 4096;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The host's ledger; a host without one has not been initialised.
pub(crate) fn open_ledger(profile: &Profile) -> Result<Ledger> {
    let db = profile.ledger_path();
    if !db.exists() {
        return Err(Error::State {
            dir: profile.state_dir().to_path_buf(),
            reason: "it holds no ledger.db: this host has not been initialised".into(),
            hint: "run airlock-applier init (with the same --profile) first".into(),
        });
    }
    Ok(Ledger::open(&db)?)
}

/// Checks `file` as [`accept`] does without `allow_downgrade` (signatures and
/// hashes, the host clock, channel, expiry, a sequence number not lower than one
/// already accepted), but records nothing: for `sync`, which records its own
/// verdict on each file of an inbox. A refusal comes with the bundle id when the
/// manifest was trusted far enough to know it.
pub(crate) fn judge(
    profile: &Profile,
    ledger: &Ledger,
    trust: &TrustRoots,
    file: &Path,
) -> std::result::Result<Verified<Bundle>, (Box<Error>, Option<String>)> {
    check(profile, ledger, trust, file, false)
        .map(|(bundle, _)| bundle)
        .map_err(|r| (r.error, r.bundle_id))
}

/// A refusal, with the bundle id when the manifest was trusted far enough to know it.
struct Refusal {
    error: Box<Error>,
    bundle_id: Option<String>,
}

/// Signatures and hashes, then this host's policy.
fn check(
    profile: &Profile,
    ledger: &Ledger,
    trust: &TrustRoots,
    file: &Path,
    allow_downgrade: bool,
) -> std::result::Result<(Verified<Bundle>, Option<u64>), Refusal> {
    let bundle = verify_bundle(file, trust, None).map_err(|e| Refusal {
        error: Box::new(e.into()),
        bundle_id: None,
    })?;
    let m = &bundle.manifest;
    let refuse = |reason: String, hint: String| Refusal {
        error: Box::new(
            airlock_format::Error::Policy {
                what: format!("bundle {} ({})", m.id, file.display()),
                reason,
                hint,
            }
            .into(),
        ),
        bundle_id: Some(m.id.clone()),
    };
    let now = time::now();
    let known = |error: Error| Refusal {
        error: Box::new(error),
        bundle_id: Some(m.id.clone()),
    };
    // The clock first: the expiry checks below are only as good as it is.
    crate::policy::check_clock(profile, ledger, &now).map_err(known)?;
    let channel = profile.policy().channel();
    if m.channel != channel {
        return Err(refuse(
            format!(
                "it is for channel {}, and this host takes channel {channel}",
                m.channel
            ),
            format!(
                "carry a bundle built with --channel {channel}, or correct policy.channel in {}",
                profile.path().display()
            ),
        ));
    }
    if let Some((_, at)) = bundle.expired_at(&now) {
        return Err(refuse(
            format!(
                "it expired at {}; its signatures are valid, but an expired bundle is never applied",
                time::format(&at)
            ),
            "build and carry a fresh bundle".into(),
        ));
    }
    let highest = crate::policy::highest_accepted(ledger, channel).map_err(known)?;
    let downgrade_from = highest.filter(|h| m.seq < *h);
    if let Some(h) = downgrade_from
        && !allow_downgrade
    {
        return Err(refuse(
            format!(
                "its sequence number {} is lower than {h}, already accepted on channel {channel}: a rollback to an older bundle could undo newer mitigations",
                m.seq
            ),
            "carry the newest bundle for this channel; in a real emergency, plan and apply with --allow-downgrade, which needs an approval and is recorded".into(),
        ));
    }
    Ok((bundle, downgrade_from))
}
