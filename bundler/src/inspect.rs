//! `inspect` shows what a bundle claims without trusting it (clearly labelled
//! unverified); `verify` checks it completely with the given trusted keys and
//! writes nothing anywhere.

use crate::cli::{InspectArgs, VerifyArgs};
use airlock_format::archive::BundleFile;
use airlock_format::keys::Signature;
use airlock_format::manifest::Manifest;
use airlock_format::output::Output;
use airlock_format::trust::TrustRoots;
use airlock_format::{Error, Result, time, verify};
use serde_json::json;

/// Runs `inspect`.
pub fn run_inspect(a: &InspectArgs, out: &Output) -> Result<()> {
    let file = BundleFile::open(&a.file)?;
    let manifest = Manifest::parse(&file.manifest_bytes)?;
    let sig = Signature::parse("bundle manifest", &file.signature_bytes)?;
    if a.json {
        out.json(&json!({
            "verified": false,
            "bundle": a.file.display().to_string(),
            "signature": { "key_id": sig.key_id().to_string(), "trusted_comment": sig.trusted_comment() },
            "manifest": manifest,
        }));
        return Ok(());
    }
    out.line(format!(
        "{} (UNVERIFIED: inspect shows what the bundle claims; run `verify` to check it)",
        a.file.display()
    ));
    out.line(format!("  bundle     {}", manifest.id));
    out.line(format!(
        "  channel    {}   seq {}",
        manifest.channel, manifest.seq
    ));
    out.line(format!("  created    {}", time::format(&manifest.created)));
    out.line(format!("  expires    {}", time::format(&manifest.expires)));
    out.line(format!("  publisher  {}", manifest.publisher));
    out.line(format!(
        "  signed by  release key {} (claimed)",
        sig.key_id()
    ));
    out.line(format!(
        "  payload    {} bytes compressed, {} bytes uncompressed",
        manifest.payload.compressed_size, manifest.payload.uncompressed_size
    ));
    out.line(format!("  mitigations ({}):", manifest.mitigations.len()));
    for m in &manifest.mitigations {
        out.line(format!(
            "    {:<24} rev {:<4} vendor key {}  {} bytes",
            m.id, m.revision, m.vendor_key, m.size
        ));
    }
    if !manifest.retired.is_empty() {
        out.line(format!("  retired: {}", manifest.retired.join(", ")));
    }
    for att in &manifest.attachments {
        out.line(format!(
            "  attachment {} ({} bytes, sha256 {})",
            att.name, att.size, att.sha256
        ));
    }
    Ok(())
}

/// Runs `verify`.
pub fn run_verify(a: &VerifyArgs, out: &Output) -> Result<()> {
    let trust = TrustRoots::from_files(&a.vendor_key, &a.release_key)?;
    let progress = out.progress(a.json, 0, "verifying documents");
    let bundle = verify::verify_bundle_showing(&a.file, &trust, None, &progress)?;
    drop(progress);
    let m = &bundle.manifest;
    let expired = bundle.expired_at(&time::now());
    if a.json {
        out.json(&json!({
            "verified": true,
            "bundle": a.file.display().to_string(),
            "id": m.id, "channel": m.channel, "seq": m.seq,
            "created": time::format(&m.created), "expires": time::format(&m.expires), "expired": expired.is_some(),
            "release_key": m.release_key,
            "mitigations": bundle.documents.iter().map(|d| json!({
                "id": d.mitigation.id, "revision": d.mitigation.revision, "vendor_key": d.vendor_key.to_string(),
                "title": d.mitigation.title, "severity": d.mitigation.severity.as_str(),
            })).collect::<Vec<_>>(),
            "retired": m.retired,
            "attachments": m.attachments.iter().map(|x| json!({"name": x.name, "size": x.size, "sha256": x.sha256})).collect::<Vec<_>>(),
        }));
    } else {
        // An expired bundle's signatures are good, but it must not read as usable.
        let (verdict, but) = match expired {
            Some(_) => ("EXPIRED", ", but it has expired: do not carry it"),
            None => ("verified", ""),
        };
        out.line(format!(
            "{verdict} {}: bundle {} (channel {}, seq {}) signed by release key {}; {} mitigations with valid vendor signatures, {} attachment{}, every size and SHA-256 matches{but}",
            a.file.display(),
            m.id,
            m.channel,
            m.seq,
            m.release_key,
            bundle.documents.len(),
            m.attachments.len(),
            if m.attachments.len() == 1 { "" } else { "s" }
        ));
        for d in &bundle.documents {
            out.detail(format!(
                "  {:<24} rev {:<4} {}",
                d.mitigation.id, d.mitigation.revision, d.mitigation.title
            ));
        }
    }
    match expired {
        Some((what, at)) => Err(Error::Policy {
            what,
            reason: format!(
                "expired at {}; its signatures are valid but appliers will refuse it",
                time::format(&at)
            ),
            hint: "build and carry a fresh bundle".into(),
        }),
        None => Ok(()),
    }
}
