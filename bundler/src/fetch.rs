//! `fetch`: bring a vendor feed into the verified cache, from a directory or over
//! HTTP(S). The feed signature is checked first, then its expiry (freeze
//! protection), then that it is not older than the cached feed and that no revision
//! went backwards (replay protection). Each document's size, SHA-256 and vendor
//! signature are checked before it is stored, and the feed is committed last, so
//! any failure leaves the previous cached feed in force.

use crate::cache::{Cache, check_document};
use crate::cli::FetchArgs;
use crate::http::{NetOptions, Validators};
use crate::source::{FeedRead, Origin};
use airlock_format::feed::{Feed, FeedEntry};
use airlock_format::keys::PublicKey;
use airlock_format::output::Output;
use airlock_format::progress::Progress;
use airlock_format::trust::TrustRoots;
use airlock_format::{Error, Result, time, verify};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What a fetch changed, compared with the feed cached before it.
#[derive(Debug, Default, serde::Serialize)]
pub struct FetchReport {
    /// Ids seen for the first time.
    pub new: Vec<String>,
    /// Ids with a new revision.
    pub updated: Vec<String>,
    /// Ids already cached at this revision.
    pub unchanged: Vec<String>,
    /// Ids the feed withdraws that the cached feed did not (on a first fetch, all).
    pub retired: Vec<String>,
    /// Ids the cached feed listed that the new feed neither lists nor retires.
    pub dropped: Vec<String>,
}

impl FetchReport {
    fn new(previous: Option<&Feed>, feed: &Feed) -> FetchReport {
        let mut r = FetchReport::default();
        for e in &feed.entries {
            match previous.and_then(|p| p.entry(&e.id)) {
                None => r.new.push(e.id.clone()),
                Some(p) if p.revision != e.revision || p.sha256 != e.sha256 => {
                    r.updated.push(e.id.clone())
                }
                Some(_) => r.unchanged.push(e.id.clone()),
            }
        }
        r.retired = feed
            .retired
            .iter()
            .filter(|id| previous.is_none_or(|p| !p.retired.contains(id)))
            .cloned()
            .collect();
        if let Some(p) = previous {
            r.dropped = p
                .entries
                .iter()
                .filter(|e| feed.entry(&e.id).is_none() && !feed.retired.contains(&e.id))
                .map(|e| e.id.clone())
                .collect();
        }
        r
    }
}

/// Runs `fetch`.
pub fn run(a: &FetchArgs, out: &Output) -> Result<()> {
    let origin = Origin::parse(
        &a.source,
        a.allow_http,
        NetOptions {
            ca_file: a.ca_file.clone(),
            connect_timeout: a.connect_timeout,
            read_timeout: a.read_timeout,
            request_timeout: a.request_timeout,
            retries: a.retries,
        },
    )?;
    let key = PublicKey::from_file(&a.vendor_key)?;
    let trust = TrustRoots {
        vendor: vec![key.clone()],
        release: vec![],
    };
    let location = origin.feed_location();
    if let Some(proxy) = origin.client().and_then(|c| c.proxy.as_deref()) {
        out.detail(format!("using the proxy at {proxy}"));
    }

    let cache = Cache::new(&a.cache);
    cache.create()?;
    let _lock = cache.lock()?;
    let swept = cache.sweep_temp()?;
    if swept > 0 {
        out.detail(format!(
            "removed {swept} temporary files an interrupted fetch left"
        ));
    }
    cache.check_vendor_key(&key)?;
    let (previous, cached_xml) = match cache.feed()? {
        Some(c) => (Some(c.feed.into_inner()), Some(c.xml)),
        None => (None, None),
    };
    let conditional = match (&origin, &cached_xml) {
        (Origin::Url(_), Some(xml)) => cache.validators(&location, xml),
        _ => None,
    };

    // The feed: new bytes to verify and commit, or the cached feed still in force.
    let mut commit: Option<(Vec<u8>, Vec<u8>)> = None;
    let mut validators = Validators::default();
    let mut not_modified = false;
    let feed = match origin.feed(conditional.as_ref(), cached_xml.as_deref())? {
        FeedRead::Bytes {
            xml,
            sig: Some(sig),
            validators: v,
        } => {
            let feed = verify::verify_feed(&location, &xml, &sig, &trust)?.into_inner();
            check_not_replayed(&location, previous.as_ref(), &feed)?;
            commit = Some((xml, sig));
            validators = v;
            feed
        }
        read => {
            // 304, or a 200 with exactly the cached bytes: the cached feed, which
            // `cache.feed()` verified above, stays in force.
            not_modified = matches!(read, FeedRead::NotModified);
            if let FeedRead::Bytes { validators: v, .. } = read {
                validators = v;
            }
            previous.clone().ok_or_else(|| {
                Error::Invalid(format!(
                    "{location}: the server says the feed is unchanged, but {} holds no feed",
                    a.cache.display()
                ))
            })?
        }
    };
    check_not_expired(&location, &feed, commit.is_none())?;

    let progress = out.progress(a.json, feed.entries.len(), "checking documents");
    let downloaded = documents(&origin, &cache, &feed, &trust, a.jobs as usize, &progress)?;
    drop(progress);
    for (entry, got) in feed.entries.iter().zip(&downloaded) {
        if *got {
            out.detail(format!("stored {} revision {}", entry.id, entry.revision));
        }
    }
    let committed = match &commit {
        Some((xml, sig)) => {
            cache.commit_feed(xml, Some(sig), &key)?;
            Some(xml.as_slice())
        }
        None => cached_xml.as_deref(),
    };
    if let (Origin::Url(_), Some(xml), false) = (&origin, committed, not_modified) {
        cache.record_validators(&location, xml, &validators)?;
    }

    let report = FetchReport::new(previous.as_ref(), &feed);
    print_report(
        a,
        out,
        &origin,
        &location,
        &key,
        &feed,
        &report,
        not_modified,
    );
    Ok(())
}

/// Refuses a feed older than the cached one, or one where a revision went back.
fn check_not_replayed(location: &str, previous: Option<&Feed>, feed: &Feed) -> Result<()> {
    let Some(prev) = previous else {
        return Ok(());
    };
    let hint = "an older copy of the feed was served (a lagging mirror or cache, or an attack that hides newer mitigations): check that the URL is the vendor's own, and fetch again later; the cache keeps the newer feed";
    if feed.generated < prev.generated {
        return Err(Error::Stale {
            what: location.into(),
            reason: format!(
                "the feed was generated at {}, before the cached feed ({}): refusing an older feed (replay)",
                time::format(&feed.generated),
                time::format(&prev.generated)
            ),
            hint: hint.into(),
        });
    }
    for e in &feed.entries {
        if let Some(p) = prev.entry(&e.id)
            && e.revision < p.revision
        {
            return Err(Error::Stale {
                what: location.into(),
                reason: format!(
                    "{} went back from revision {} to {}: refusing a rollback",
                    e.id, p.revision, e.revision
                ),
                hint: hint.into(),
            });
        }
    }
    Ok(())
}

/// Freeze protection: an expired feed is refused, also when it is the cached one
/// the server says has not changed.
fn check_not_expired(location: &str, feed: &Feed, cached: bool) -> Result<()> {
    if feed.expires > time::now() {
        return Ok(());
    }
    let unchanged = if cached {
        "; the server still serves this feed, so the vendor has not published a newer one"
    } else {
        ""
    };
    Err(Error::Stale {
        what: location.into(),
        reason: format!(
            "the feed expired at {}{unchanged} (freeze protection: an expired feed may be a stale copy replayed to hide new mitigations)",
            time::format(&feed.expires)
        ),
        hint: "do not build bundles from it: check that the URL is the vendor's own and the system clock is right, then ask the vendor for a fresh feed".into(),
    })
}

/// Makes sure every document of `feed` is in the cache, verified: a cached object
/// that still verifies is kept, a missing or damaged one is read from `origin`,
/// checked and stored. Runs `jobs` at a time; the first failure (in feed order)
/// stops the rest. Returns, per entry, whether it was downloaded.
fn documents(
    origin: &Origin,
    cache: &Cache,
    feed: &Feed,
    trust: &TrustRoots,
    jobs: usize,
    progress: &Progress,
) -> Result<Vec<bool>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let one = |entry: &FeedEntry| -> Result<bool> {
        if cache.document(entry, trust).is_ok() {
            return Ok(false);
        }
        let (what, xml, sig) = origin.document(entry)?;
        let doc = check_document(&what, entry, &xml, &sig, trust)?;
        cache.store(&doc, entry)?;
        Ok(true)
    };
    let worker = || {
        let mut done = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(entry) = feed.entries.get(i) else {
                break;
            };
            let r = one(entry);
            progress.inc();
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let threads = jobs.clamp(1, feed.entries.len().max(1));
    let results: Vec<(usize, Result<bool>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        usize::MAX,
                        Err(Error::Invalid(
                            "a download thread failed unexpectedly".into(),
                        )),
                    )]
                })
            })
            .collect()
    });
    let mut downloaded = vec![false; feed.entries.len()];
    let mut first_error: Option<(usize, Error)> = None;
    for (i, r) in results {
        match r {
            Ok(got) => {
                if let Some(d) = downloaded.get_mut(i) {
                    *d = got;
                }
            }
            Err(e) => {
                if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(downloaded),
    }
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    a: &FetchArgs,
    out: &Output,
    origin: &Origin,
    location: &str,
    key: &PublicKey,
    feed: &Feed,
    report: &FetchReport,
    not_modified: bool,
) {
    let http = origin.client().map(|c| {
        json!({
            "requests": c.counters.requests(),
            "bytes": c.counters.bytes(),
            "not_modified": not_modified,
            "proxy": c.proxy,
        })
    });
    if a.json {
        out.json(&json!({
            "feed": location,
            "publisher": feed.publisher,
            "generated": time::format(&feed.generated),
            "expires": time::format(&feed.expires),
            "vendor_key": key.id().to_string(),
            "new": report.new, "updated": report.updated, "unchanged": report.unchanged,
            "retired": report.retired, "dropped": report.dropped,
            "http": http,
        }));
        return;
    }
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
    if let Some(c) = origin.client() {
        out.line(format!(
            "{} HTTP request{}, {} bytes{}{}",
            c.counters.requests(),
            if c.counters.requests() == 1 { "" } else { "s" },
            c.counters.bytes(),
            if not_modified {
                "; the feed has not changed since the last fetch (304)"
            } else {
                ""
            },
            c.proxy
                .as_deref()
                .map(|p| format!("; through the proxy at {p}"))
                .unwrap_or_default()
        ));
    }
    if !report.dropped.is_empty() {
        out.line(format!(
            "no longer in the feed (neither listed nor retired): {}",
            report.dropped.join(", ")
        ));
    }
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
