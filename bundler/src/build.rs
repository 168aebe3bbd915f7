//! `build`: pack verified documents from the cache into a signed bundle. The cached
//! feed and every document are re-verified against the cached vendor key first;
//! the sequence number only grows per channel (recorded in the cache).

use crate::cache::{Cache, CachedFeed, check_document};
use crate::cli::BuildArgs;
use airlock_format::archive::{
    AttachmentInput, BundleInput, DocumentInput, WriteOptions, write_bundle_gated,
};
use airlock_format::keys::{SecretKey, Signature};
use airlock_format::output::Output;
use airlock_format::{Error, Result, time};
use serde_json::json;
use std::collections::BTreeSet;

/// Runs `build`.
pub fn run(a: &BuildArgs, out: &Output) -> Result<()> {
    let cache = Cache::new(&a.cache);
    // Held to the end: no fetch changes the cache, and no other build takes the
    // same sequence number, while this one reads and records.
    let _lock = match a.cache.is_dir() {
        true => Some(cache.lock()?),
        false => None,
    };
    let CachedFeed { feed, trust, .. } = cache.feed()?.ok_or_else(|| Error::Unusable {
        message: format!("{} holds no fetched feed", a.cache.display()),
        hint: format!(
            "fetch the vendor feed into it first: airlock-bundler fetch URL --vendor-key VENDOR.pub --cache {}",
            a.cache.display()
        ),
    })?;
    let created = match &a.created {
        Some(t) => time::parse_argument(t).ok_or_else(|| {
            Error::Invalid(format!(
                "--created '{t}' is not an RFC 3339 time in whole seconds (like 2026-11-28T08:00:00Z)"
            ))
        })?,
        None => time::now(),
    };
    if feed.expires <= time::now() {
        return Err(Error::Policy {
            what: format!("cached feed in {}", a.cache.display()),
            reason: format!("expired at {}", time::format(&feed.expires)),
            hint: "run `airlock-bundler fetch` again to get a current feed".into(),
        });
    }
    let expires = time::parse_deadline(&a.expires, &created)?;
    if expires <= created {
        return Err(Error::Usage {
            message: format!(
                "--expires {} is not after the creation time {}",
                time::format(&expires),
                time::format(&created)
            ),
            hint: "give a duration (--expires 14d) or a later time".into(),
        });
    }
    if expires <= time::now() {
        out.warn(format!(
            "this bundle expired at {}, before it was built: every applier will refuse it (a duration such as --expires 14d counts from --created)",
            time::format(&expires)
        ));
    }

    let known: BTreeSet<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
    for id in a.include.iter().chain(&a.exclude) {
        if !known.contains(id.as_str()) {
            return Err(Error::Invalid(format!(
                "--include/--exclude names {id}, which is not in the cached feed"
            )));
        }
    }
    let selected: Vec<_> = feed
        .entries
        .iter()
        .filter(|e| a.include.is_empty() || a.include.contains(&e.id))
        .filter(|e| !a.exclude.contains(&e.id))
        .collect();
    if selected.is_empty() && feed.retired.is_empty() {
        return Err(Error::Invalid(
            "nothing to bundle: the selection is empty".into(),
        ));
    }
    // Each document is bound to the verified feed by its SHA-256 as it is read; its
    // vendor signature is re-checked on a second thread while the payload is
    // compressed, and the manifest is only signed if every check passed.
    let mut documents = Vec::with_capacity(selected.len());
    let mut checks = Vec::with_capacity(selected.len());
    for entry in selected {
        let (what, xml, sig) = cache.read(entry)?;
        let vendor_key = Signature::parse(&what, &sig)?.key_id();
        documents.push(DocumentInput {
            id: entry.id.clone(),
            revision: entry.revision,
            vendor_key,
            xml,
            signature: sig,
        });
        checks.push((what, entry));
    }
    let last = cache.sequences()?.get(&a.channel).copied().unwrap_or(0);
    let seq = match a.seq {
        Some(s) if s < last => {
            return Err(Error::Policy {
                what: format!("--seq {s}"),
                reason: format!(
                    "channel {} already has bundle sequence {last}; appliers refuse a lower number",
                    a.channel
                ),
                hint: format!("use --seq {} or higher, or leave --seq out", last + 1),
            });
        }
        Some(s) => s,
        None => last + 1,
    };

    let attachments = a
        .attach
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            AttachmentInput {
                name,
                path: p.clone(),
            }
        })
        .collect();
    let input = BundleInput {
        channel: a.channel.clone(),
        seq,
        created,
        expires,
        publisher: feed.publisher.clone(),
        documents,
        retired: feed.retired.clone(),
        attachments,
    };
    let key = SecretKey::from_file(&a.key, &a.password)?;
    let opts = WriteOptions {
        detached_signature: a.detached_sig,
        ..WriteOptions::default()
    };
    // After the password prompt: a bar must not draw over it.
    let progress = out.progress(a.json, checks.len(), "checking and packing documents");
    let manifest = std::thread::scope(|s| {
        let verifier = s.spawn(|| -> Result<()> {
            for ((what, entry), doc) in checks.iter().zip(&input.documents) {
                check_document(what, entry, &doc.xml, &doc.signature, &trust)?;
                progress.inc();
            }
            Ok(())
        });
        write_bundle_gated(&input, &key, &a.out, &opts, || {
            verifier
                .join()
                .map_err(|_| Error::Invalid("the signature checking thread failed".into()))?
        })
    })?;
    drop(progress);
    cache.record_sequence(&a.channel, seq)?;

    if a.json {
        out.json(&json!({
            "bundle": a.out.display().to_string(),
            "id": manifest.id, "channel": manifest.channel, "seq": manifest.seq,
            "created": time::format(&manifest.created), "expires": time::format(&manifest.expires),
            "release_key": manifest.release_key,
            "mitigations": manifest.mitigations.len(), "retired": manifest.retired.len(),
            "attachments": manifest.attachments.len(),
            "compressed_size": manifest.payload.compressed_size,
            "detached_signature": a.detached_sig,
        }));
    } else {
        out.line(format!(
            "built {}: bundle {} (channel {}, seq {}), {} mitigations, {} retired, {} attachment{}, signed by release key {}, expires {}",
            a.out.display(),
            manifest.id,
            manifest.channel,
            manifest.seq,
            manifest.mitigations.len(),
            manifest.retired.len(),
            manifest.attachments.len(),
            if manifest.attachments.len() == 1 { "" } else { "s" },
            manifest.release_key,
            time::format(&manifest.expires)
        ));
        if a.detached_sig {
            out.line(format!("detached signature: {}.minisig", a.out.display()));
        }
    }
    Ok(())
}
