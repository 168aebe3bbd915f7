//! Change-control sign-off. `approve` signs a plan's hash with an approver key,
//! after checking that the plan file's content is what its hash says. An approval
//! is a minisign signature of the plan hash text (`sha256:HEX`), whose trusted
//! comment names the plan, host, bundle, approver key and ticket. `apply` accepts
//! a run only with `policy.approvals_required` valid approvals, from distinct keys
//! listed in `trust.approver_keys`, for exactly the plan it computes now.

use crate::cli::ApproveArgs;
use crate::error::{Error, Result};
use airlock_format::keys::{KeyId, PublicKey, SecretKey, Signature};
use airlock_format::output::Output;
use airlock_format::profile::Profile;
use airlock_format::{fsutil, limits};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest plan file `approve` reads.
const MAX_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// A ticket id: what a change board's tracker calls the change.
fn valid_ticket(t: &str) -> bool {
    // `-` stands for "no ticket" in the trusted comment.
    t != "-"
        && (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/#-".contains(&b))
}

/// The trusted comment of an approval.
fn comment(plan: &str, host: &str, bundle: &str, key: KeyId, ticket: Option<&str>) -> String {
    format!(
        "airlock-approval plan={plan} host={host} bundle={bundle} key={key} ticket={}",
        ticket.unwrap_or("-")
    )
}

/// The `name=value` fields of a trusted comment that starts with `airlock-approval`.
fn fields(trusted: &str) -> Option<BTreeMap<&str, &str>> {
    let mut words = trusted.split(' ');
    if words.next()? != "airlock-approval" {
        return None;
    }
    words.map(|w| w.split_once('=')).collect()
}

/// Runs `approve PLAN.json --key APPROVER.key [--ticket ID] [--out FILE]`.
pub fn run(a: &ApproveArgs, out: &Output) -> Result<()> {
    if let Some(t) = &a.ticket
        && !valid_ticket(t)
    {
        return Err(Error::Usage {
            message: format!(
                "--ticket '{}' is not 1-128 characters of letters, digits and . _ : / # -",
                t.escape_debug()
            ),
            hint: "give the change ticket's id as your tracker shows it (e.g. CHG-1234), or leave --ticket out"
                .into(),
        });
    }
    let bytes = fsutil::read_limited(&a.plan, MAX_PLAN_BYTES)?;
    let plan: Value = serde_json::from_slice(&bytes).map_err(|e| {
        airlock_format::Error::Invalid(format!(
            "{} is not a plan file (JSON: {e}); write one with airlock-applier plan FILE --out PLAN.json",
            a.plan.display()
        ))
    })?;
    if plan["format"] != "airlock-plan/1" || plan["command"] != "apply" {
        return Err(airlock_format::Error::Invalid(format!(
            "{} is not an apply plan written by airlock-applier plan --out",
            a.plan.display()
        ))
        .into());
    }
    let hash = plan["hash"].as_str().unwrap_or_default();
    if crate::plan::hash_json(&plan) != hash {
        return Err(airlock_format::Error::mismatch(
            a.plan.display().to_string(),
            "the plan's content does not match its hash: it was edited after airlock wrote it",
        )
        .into());
    }
    let host = plan["host"].as_str().unwrap_or_default();
    let bundle = plan["bundle"]["id"].as_str().unwrap_or("-");
    let key = SecretKey::from_file(&a.key, &a.password)?;
    let path = a.out.clone().unwrap_or_else(|| {
        let mut p = a.plan.clone().into_os_string();
        p.push(format!(".{}.approval", key.id()));
        PathBuf::from(p)
    });
    // An approval is evidence of a decision: never replaced silently.
    if path.exists() {
        return Err(airlock_format::Error::Unusable {
            message: format!(
                "{} already exists, and airlock never overwrites an approval",
                path.display()
            ),
            hint: "to replace it, move the old approval away first; or write this one elsewhere with --out FILE".into(),
        }
        .into());
    }
    let trusted = comment(hash, host, bundle, key.id(), a.ticket.as_deref());
    let signature = key.sign(hash.as_bytes(), &trusted)?;
    fsutil::write_atomic(&path, signature.as_bytes(), Some(0o644))?;
    let count = |v: &str| {
        plan["mitigations"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|m| m["verdict"] == v).count())
    };
    if a.json {
        out.json(&json!({
            "approval": path.display().to_string(),
            "plan": hash,
            "host": host,
            "bundle": bundle,
            "key": key.id().to_string(),
            "ticket": a.ticket,
        }));
    } else {
        out.line(format!(
            "approved plan {hash} for host {host} (bundle {bundle}: {} apply, {} update, {} remove; {} file(s)) with key {}{}",
            count("apply"),
            count("update"),
            count("remove"),
            plan["files"].as_array().map_or(0, Vec::len),
            key.id(),
            a.ticket
                .as_deref()
                .map(|t| format!(", ticket {t}"))
                .unwrap_or_default()
        ));
        out.line(format!("approval written to {}", path.display()));
    }
    Ok(())
}

/// An approval that holds for a plan.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The file it was read from.
    pub file: String,
    /// The approver key.
    pub key: KeyId,
    /// The ticket, if one was named.
    pub ticket: Option<String>,
    /// The signed trusted comment, verbatim.
    pub comment: String,
}

/// Checks approval files against the plan `hash` for `host` and the profile's
/// approver keys. Any file that does not hold (unreadable, not an approval, an
/// untrusted key, another plan, a bad signature) refuses the whole run: a change
/// board's sign-off is never silently ignored. Returns one approval per key.
pub fn check(
    profile: &Profile,
    files: &[PathBuf],
    hash: &str,
    host: &str,
) -> Result<Vec<Approval>> {
    let keys: Vec<PublicKey> = profile
        .trust()
        .approver_keys()
        .iter()
        .map(|p| PublicKey::from_file(p))
        .collect::<airlock_format::Result<_>>()?;
    let mut by_key: BTreeMap<KeyId, Approval> = BTreeMap::new();
    for file in files {
        let a = check_one(&keys, file, hash, host)?;
        if by_key.contains_key(&a.key) {
            return Err(refused(
                file,
                format!(
                    "a second approval from key {}: approvals must come from distinct approvers",
                    a.key
                ),
                "get the other approval from a different approver (another key in trust.approver_keys)".into(),
            ));
        }
        by_key.insert(a.key, a);
    }
    Ok(by_key.into_values().collect())
}

/// Those of `files` whose trusted comment names `hash` (the signature is checked
/// later by [`check`]). Approvals of other plans, left in an inbox from earlier
/// changes, are passed over, and so are files that are not approvals at all.
pub fn naming(files: &[PathBuf], hash: &str) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|path| {
            fsutil::read_limited(path, limits::MAX_SIGNATURE_BYTES)
                .ok()
                .and_then(|b| Signature::parse(&path.display().to_string(), &b).ok())
                .is_some_and(|sig| {
                    fields(sig.trusted_comment()).and_then(|f| f.get("plan").copied()) == Some(hash)
                })
        })
        .cloned()
        .collect()
}

fn check_one(keys: &[PublicKey], file: &Path, hash: &str, host: &str) -> Result<Approval> {
    let bytes = fsutil::read_limited(file, limits::MAX_SIGNATURE_BYTES)?;
    // Recorded as an absolute path: a relative one means nothing in the ledger later.
    let what = std::path::absolute(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string();
    let sig = Signature::parse(&what, &bytes).map_err(|e| {
        refused(
            file,
            format!("not an approval signature ({e})"),
            "pass the .approval file airlock-applier approve wrote".into(),
        )
    })?;
    let Some(f) = fields(sig.trusted_comment()) else {
        return Err(refused(
            file,
            "its trusted comment is not an airlock approval".into(),
            "pass the .approval file airlock-applier approve wrote".into(),
        ));
    };
    let Some(key) = keys.iter().find(|k| k.id() == sig.key_id()) else {
        return Err(refused(
            file,
            format!(
                "it is signed by key {}, which is not in this host's trust.approver_keys",
                sig.key_id()
            ),
            "have an approver whose key this host trusts sign the plan, or add the key to trust.approver_keys".into(),
        ));
    };
    if f.get("plan").copied() != Some(hash) || f.get("host").copied() != Some(host) {
        return Err(refused(
            file,
            format!(
                "it approves plan {} on host {}, but the plan for this bundle on this host is now {hash}: the bundle, the profile or the host's files changed since that plan was made",
                f.get("plan").copied().unwrap_or("?"),
                f.get("host").copied().unwrap_or("?")
            ),
            "make a new plan (airlock-applier plan FILE --out PLAN.json) and have it approved"
                .into(),
        ));
    }
    key.verify(&what, hash.as_bytes(), &sig).map_err(|e| {
        refused(
            file,
            format!("the signature does not verify ({e})"),
            "get a fresh approval from the approver".into(),
        )
    })?;
    Ok(Approval {
        file: what,
        key: key.id(),
        ticket: f
            .get("ticket")
            .filter(|t| **t != "-")
            .map(|t| t.to_string()),
        comment: sig.trusted_comment().to_string(),
    })
}

fn refused(file: &Path, reason: String, hint: String) -> Error {
    Error::Refused {
        what: format!("approval {}", file.display()),
        reason,
        hint,
    }
}

/// Approval entries for the ledger.
pub fn entry_detail(a: &Approval, plan: &str, run: &str) -> Value {
    json!({
        "plan": plan,
        "key": a.key.to_string(),
        "ticket": a.ticket,
        "file": a.file,
        "comment": a.comment,
        "run": run,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_short_plain_words() {
        for ok in ["CHG-1234", "INC0012345", "jira:SEC-7", "a/b#3", "x"] {
            assert!(valid_ticket(ok), "{ok}");
        }
        for bad in ["", "-", "two words", "a=b", "é", &"x".repeat(129), "a\nb"] {
            assert!(!valid_ticket(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_comment_round_trips_through_fields() {
        let key = KeyId([1, 2, 3, 4, 5, 6, 7, 8]);
        let c = comment("sha256:ab", "h1", "b1", key, Some("CHG-1"));
        let f = fields(&c).unwrap();
        assert_eq!(f["plan"], "sha256:ab");
        assert_eq!(f["host"], "h1");
        assert_eq!(f["bundle"], "b1");
        assert_eq!(f["key"], key.to_string());
        assert_eq!(f["ticket"], "CHG-1");
        assert!(fields("airlock-bundle id=1").is_none());
        assert!(fields("airlock-approval plan").is_none());
    }
}
