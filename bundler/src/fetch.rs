//! `fetch`: copy a vendor feed into the verified cache. The feed signature is
//! checked first, then its expiry (freeze protection) and that it is not older
//! than the cached one (replay protection) and no revision went backwards; each
//! document's size, SHA-256 and vendor signature are checked before it is stored.
//! Any failure stops the fetch with the previous cached feed still in force.

use crate::cache::{Cache, check_document};
use crate::cli::FetchArgs;
use airlock_format::keys::PublicKey;
use airlock_format::output::Output;
use airlock_format::trust::TrustRoots;
use airlock_format::{Error, Result, fsutil, limits, time, verify};
use serde_json::json;

/// What a fetch changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct FetchReport {
    /// Ids seen for the first time.
    pub new: Vec<String>,
    /// Ids with a new revision.
    pub updated: Vec<String>,
    /// Ids already cached at this revision.
    pub unchanged: Vec<String>,
    /// Ids the feed withdraws.
    pub retired: Vec<String>,
}

/// Runs `fetch`.
pub fn run(a: &FetchArgs, out: &Output) -> Result<()> {
    let source = &a.source;
    if !source.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory: this version of the bundler fetches local feed directories only",
            source.display()
        )));
    }
    let key = PublicKey::from_file(&a.vendor_key)?;
    let trust = TrustRoots {
        vendor: vec![key.clone()],
        release: vec![],
    };
    let feed_path = source.join("feed.xml");
    let xml = fsutil::read_limited(&feed_path, limits::MAX_FEED_BYTES)?;
    let sig = fsutil::read_limited(
        &source.join("feed.xml.minisig"),
        limits::MAX_SIGNATURE_BYTES,
    )?;
    let feed = verify::verify_feed(&feed_path.display().to_string(), &xml, &sig, &trust)?;
    let now = time::now();
    if feed.expires <= now {
        return Err(Error::signature(
            feed_path.display().to_string(),
            format!(
                "the feed expired at {} (freeze protection: an expired feed may be a stale copy replayed to hide new mitigations)",
                time::format(&feed.expires)
            ),
        ));
    }

    let cache = Cache::new(&a.cache);
    cache.create()?;
    cache.bind_vendor_key(&key)?;
    let previous = cache.feed()?.map(|(f, _)| f.into_inner());
    if let Some(prev) = &previous {
        if feed.generated < prev.generated {
            return Err(Error::signature(
                feed_path.display().to_string(),
                format!(
                    "the feed was generated at {}, before the cached feed ({}): refusing an older feed (replay)",
                    time::format(&feed.generated),
                    time::format(&prev.generated)
                ),
            ));
        }
        for e in &feed.entries {
            if let Some(p) = prev.entry(&e.id)
                && e.revision < p.revision
            {
                return Err(Error::signature(
                    feed_path.display().to_string(),
                    format!(
                        "{} went back from revision {} to {}: refusing a rollback",
                        e.id, p.revision, e.revision
                    ),
                ));
            }
        }
    }

    let mut report = FetchReport::default();
    for entry in &feed.entries {
        let prev = previous.as_ref().and_then(|p| p.entry(&entry.id));
        // A cached object that still verifies is reused; a missing or damaged one is
        // fetched again from the source.
        if cache.document(entry, &trust).is_err() {
            let doc_path = source.join(&entry.href);
            let doc_xml = fsutil::read_limited(&doc_path, entry.size)?;
            let mut sig_path = doc_path.clone().into_os_string();
            sig_path.push(".minisig");
            let doc_sig =
                fsutil::read_limited(std::path::Path::new(&sig_path), limits::MAX_SIGNATURE_BYTES)?;
            let doc = check_document(
                &doc_path.display().to_string(),
                entry,
                &doc_xml,
                &doc_sig,
                &trust,
            )?;
            cache.store(&doc, entry)?;
            out.detail(format!("stored {} revision {}", entry.id, entry.revision));
        }
        match prev {
            None => report.new.push(entry.id.clone()),
            Some(p) if p.revision != entry.revision || p.sha256 != entry.sha256 => {
                report.updated.push(entry.id.clone())
            }
            Some(_) => report.unchanged.push(entry.id.clone()),
        }
    }
    report.retired = feed.retired.clone();
    cache.commit_feed(&xml, &sig)?;

    if a.json {
        out.json(&json!({
            "feed": feed_path.display().to_string(),
            "publisher": feed.publisher,
            "generated": time::format(&feed.generated),
            "expires": time::format(&feed.expires),
            "vendor_key": key.id().to_string(),
            "new": report.new, "updated": report.updated, "unchanged": report.unchanged, "retired": report.retired,
        }));
    } else {
        out.line(format!(
            "fetched {} from {} (vendor key {}): {} new, {} updated, {} unchanged, {} retired; feed expires {}",
            feed.entries.len(),
            feed.publisher,
            key.id(),
            report.new.len(),
            report.updated.len(),
            report.unchanged.len(),
            report.retired.len(),
            time::format(&feed.expires)
        ));
        for (label, ids) in [
            ("new", &report.new),
            ("updated", &report.updated),
            ("retired", &report.retired),
        ] {
            for id in ids {
                out.detail(format!("  {label:<8} {id}"));
            }
        }
    }
    Ok(())
}
