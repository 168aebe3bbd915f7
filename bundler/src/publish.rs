//! `feed publish`: the vendor side. Every document in DIR/mitigations/ is parsed
//! with the same strict parser the consumers use (so a vendor cannot publish what
//! airlock would refuse), named after its id, signed, and listed in DIR/feed.xml,
//! which is signed last. Revisions may only grow relative to an existing feed.xml.

use crate::cli::PublishArgs;
use airlock_format::feed::{Feed, FeedEntry};
use airlock_format::keys::SecretKey;
use airlock_format::mitigation::{Mitigation, is_valid_id};
use airlock_format::output::Output;
use airlock_format::time::{self, parse_deadline};
use airlock_format::{Error, Result, fsutil, hash, limits};
use std::path::Path;

/// Runs `feed publish`.
pub fn run(a: &PublishArgs, out: &Output) -> Result<()> {
    let generated = match &a.generated {
        Some(t) => time::parse_argument(t).ok_or_else(|| {
            Error::Invalid(format!(
                "--generated '{t}' is not an RFC 3339 time in whole seconds (like 2026-11-28T08:00:00Z)"
            ))
        })?,
        None => time::now(),
    };
    let expires = parse_deadline(&a.expires, &generated)?;
    if expires <= generated {
        return Err(Error::Invalid(
            "--expires must be after the generation time".into(),
        ));
    }
    let key = SecretKey::from_file(&a.key, &a.password)?;
    let previous = read_previous(&a.dir);

    let mdir = a.dir.join("mitigations");
    let mut names: Vec<_> = std::fs::read_dir(&mdir)
        .map_err(|e| Error::io("list", &mdir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no .xml documents",
            mdir.display()
        )));
    }
    if names.len() > limits::MAX_MITIGATIONS {
        return Err(Error::Invalid(format!(
            "more than {} documents",
            limits::MAX_MITIGATIONS
        )));
    }
    let mut entries = Vec::with_capacity(names.len());
    for name in &names {
        let path = mdir.join(name);
        let bytes = fsutil::read_limited(&path, limits::MAX_DOCUMENT_BYTES)?;
        let m = Mitigation::parse(&path.display().to_string(), &bytes)?;
        if *name != format!("{}.xml", m.id) {
            return Err(Error::Invalid(format!(
                "{} holds mitigation {}: name the file {}.xml",
                path.display(),
                m.id,
                m.id
            )));
        }
        if let Some(prev) = previous.as_ref().and_then(|f| f.entry(&m.id))
            && prev.revision > m.revision
        {
            return Err(Error::Invalid(format!(
                "{} is revision {}, but the feed already published revision {}: revisions only grow",
                m.id, m.revision, prev.revision
            )));
        }
        let sig = key.sign(
            &bytes[..],
            &format!(
                "airlock-document id={} revision={} file={name}",
                m.id, m.revision
            ),
        )?;
        let mut sig_path = path.clone().into_os_string();
        sig_path.push(".minisig");
        fsutil::write_atomic(Path::new(&sig_path), sig.as_bytes(), None)?;
        entries.push(FeedEntry {
            id: m.id.clone(),
            revision: m.revision,
            href: format!("mitigations/{name}"),
            sha256: hash::sha256_hex(&bytes),
            size: bytes.len() as u64,
        });
        out.detail(format!("signed {} revision {}", m.id, m.revision));
    }
    let mut retired = Vec::new();
    for r in &a.retire {
        if !is_valid_id(r) {
            return Err(Error::Invalid(format!(
                "--retire '{r}' is not a mitigation id"
            )));
        }
        if entries.iter().any(|e| &e.id == r) {
            return Err(Error::Invalid(format!(
                "{r} is both published and retired: remove mitigations/{r}.xml or drop --retire {r}"
            )));
        }
        retired.push(r.clone());
    }
    retired.sort();
    retired.dedup();
    let feed = Feed {
        publisher: a.publisher.clone(),
        generated,
        expires,
        entries,
        retired,
    };
    let xml = feed.to_xml();
    Feed::parse("feed.xml", xml.as_bytes())?;
    let sig = key.sign(
        xml.as_bytes(),
        &format!(
            "airlock-feed generated={} expires={}",
            time::format(&generated),
            time::format(&expires)
        ),
    )?;
    fsutil::write_atomic(&a.dir.join("feed.xml.minisig"), sig.as_bytes(), None)?;
    fsutil::write_atomic(&a.dir.join("feed.xml"), xml.as_bytes(), None)?;
    if a.json {
        out.json(&serde_json::json!({
            "feed": a.dir.join("feed.xml"),
            "publisher": feed.publisher,
            "key_id": key.id().to_string(),
            "generated": time::format(&generated),
            "expires": time::format(&expires),
            "mitigations": feed.entries.iter().map(|e| serde_json::json!({
                "id": e.id,
                "revision": e.revision,
                "sha256": e.sha256,
                "size": e.size,
            })).collect::<Vec<_>>(),
            "retired": feed.retired,
        }));
        return Ok(());
    }
    out.line(format!(
        "published {} mitigations ({} retired) in {}, signed by vendor key {}, expires {}",
        feed.entries.len(),
        feed.retired.len(),
        a.dir.join("feed.xml").display(),
        key.id(),
        time::format(&expires)
    ));
    Ok(())
}

/// The feed already in `dir`, if it parses (its signature is the vendor's own business).
fn read_previous(dir: &Path) -> Option<Feed> {
    let bytes = fsutil::read_limited(&dir.join("feed.xml"), limits::MAX_FEED_BYTES).ok()?;
    Feed::parse("feed.xml", &bytes).ok()
}
