//! The bundler's local cache. It only ever holds verified content:
//!
//! ```text
//! CACHE/vendor.pub                 the vendor key the cache was filled with
//! CACHE/feed.xml, feed.xml.minisig the last verified feed (written last: the commit point)
//! CACHE/objects/SHA256.xml         documents, content-addressed, with their .minisig
//! CACHE/feed.http.json             the server's ETag / Last-Modified for that feed
//! CACHE/sequence.json              last sequence number built per channel
//! CACHE/lock                       held by a fetch or a build while it runs
//! ```
//!
//! Every file is written atomically, so an interrupted fetch leaves the previous
//! feed in force and at worst some extra verified objects; its temporary files are
//! removed by the next fetch. Readers re-verify everything they load, so a cache
//! edited on disk is caught too.

use crate::http::Validators;
use airlock_format::feed::{Feed, FeedEntry};
use airlock_format::keys::PublicKey;
use airlock_format::trust::TrustRoots;
use airlock_format::verify::{self, Document, Verified};
use airlock_format::{Error, Result, fsutil, hash, limits};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// What the cache last accepted from a URL: validators for the next conditional
/// request, bound to the feed bytes they came with.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct HttpRecord {
    url: String,
    feed_sha256: String,
    #[serde(flatten)]
    validators: Validators,
}

/// The feed in force in a cache, verified.
#[derive(Debug)]
pub struct CachedFeed {
    /// The feed.
    pub feed: Verified<Feed>,
    /// The cache's vendor key, as trust roots.
    pub trust: TrustRoots,
    /// Its bytes (for conditional requests and to spot an unchanged download).
    pub xml: Vec<u8>,
}

/// A held cache lock; released on drop.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// A cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache at `dir` (not created yet).
    pub fn new(dir: &Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    /// Creates the directories.
    pub fn create(&self) -> Result<()> {
        let objects = self.dir.join("objects");
        std::fs::create_dir_all(&objects).map_err(|e| Error::io("create", &objects, e))
    }

    /// Takes the cache lock (fetch and build both write). Refused at once, not
    /// waited for, when another bundler holds it.
    pub fn lock(&self) -> Result<CacheLock> {
        let p = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io("open", &p, e))?;
        match file.try_lock() {
            Ok(()) => Ok(CacheLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Busy(format!(
                "cache {} is in use by another airlock-bundler fetch or build",
                self.dir.display()
            ))),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", &p, e)),
        }
    }

    /// Removes temporary files an interrupted fetch left (call with the exclusive
    /// lock held). Returns how many were removed.
    pub fn sweep_temp(&self) -> Result<usize> {
        let mut removed = 0;
        for dir in [self.dir.clone(), self.dir.join("objects")] {
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if is_file
                    && entry
                        .file_name()
                        .to_string_lossy()
                        .starts_with(fsutil::TEMP_PREFIX)
                {
                    let p = entry.path();
                    std::fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn object_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("objects").join(format!("{sha256}.xml"))
    }

    fn sig_path(&self, sha256: &str) -> PathBuf {
        self.dir
            .join("objects")
            .join(format!("{sha256}.xml.minisig"))
    }

    /// The vendor key recorded in the cache, if any.
    pub fn vendor_key(&self) -> Result<Option<PublicKey>> {
        let p = self.dir.join("vendor.pub");
        if !p.exists() {
            return Ok(None);
        }
        PublicKey::from_file(&p).map(Some)
    }

    /// Refuses a vendor key other than the one the cache was filled with.
    pub fn check_vendor_key(&self, key: &PublicKey) -> Result<()> {
        match self.vendor_key()? {
            Some(k) if k.id() != key.id() => Err(Error::Invalid(format!(
                "cache {} was filled from vendor key {}, not {}: use a separate cache directory per vendor key",
                self.dir.display(),
                k.id(),
                key.id()
            ))),
            _ => Ok(()),
        }
    }

    /// The cached feed, re-verified with the cached vendor key; `None` when the
    /// cache has never been filled.
    pub fn feed(&self) -> Result<Option<CachedFeed>> {
        let Some(key) = self.vendor_key()? else {
            return Ok(None);
        };
        let p = self.dir.join("feed.xml");
        if !p.exists() {
            return Ok(None);
        }
        let xml = fsutil::read_limited(&p, limits::MAX_FEED_BYTES)?;
        let sig = fsutil::read_limited(
            &self.dir.join("feed.xml.minisig"),
            limits::MAX_SIGNATURE_BYTES,
        )?;
        let trust = TrustRoots {
            vendor: vec![key],
            release: vec![],
        };
        let feed = verify::verify_feed(&p.display().to_string(), &xml, &sig, &trust)?;
        Ok(Some(CachedFeed { feed, trust, xml }))
    }

    /// Loads and re-verifies the document for `entry`.
    pub fn document(&self, entry: &FeedEntry, trust: &TrustRoots) -> Result<Verified<Document>> {
        let (what, xml, sig) = self.read(entry)?;
        check_document(&what, entry, &xml, &sig, trust)
    }

    /// Reads the document for `entry` and its signature file, and checks the
    /// document's size and SHA-256 against the (verified) feed entry. The signature
    /// is not checked here: pass the result to [`check_document`] for that.
    pub fn read(&self, entry: &FeedEntry) -> Result<(String, Vec<u8>, Vec<u8>)> {
        let p = self.object_path(&entry.sha256);
        let what = p.display().to_string();
        let xml = fsutil::read_limited(&p, entry.size)?;
        check_digest(&what, entry, &xml)?;
        let sig = fsutil::read_limited(&self.sig_path(&entry.sha256), limits::MAX_SIGNATURE_BYTES)?;
        Ok((what, xml, sig))
    }

    /// Stores a verified document (signature first, then the document). Each file
    /// is complete and fsynced before it gets its name; the directory entries are
    /// made durable by [`Cache::commit_feed`], once for the whole fetch.
    pub fn store(&self, doc: &Document, entry: &FeedEntry) -> Result<()> {
        fsutil::write_atomic_unsynced_dir(
            &self.sig_path(&entry.sha256),
            doc.signature.as_bytes(),
            None,
        )?;
        fsutil::write_atomic_unsynced_dir(&self.object_path(&entry.sha256), &doc.xml, None)
    }

    /// Commits a verified feed: written last, after the objects directory is
    /// synced, so it only ever names stored objects. `sig: None` keeps the cached
    /// signature (the feed bytes are the cached ones).
    /// The first commit records `key` as the cache's vendor key.
    pub fn commit_feed(&self, xml: &[u8], sig: Option<&[u8]>, key: &PublicKey) -> Result<()> {
        fsutil::sync_dir(&self.dir.join("objects"))?;
        if self.vendor_key()?.is_none() {
            fsutil::write_atomic(&self.dir.join("vendor.pub"), key.text().as_bytes(), None)?;
        }
        if let Some(sig) = sig {
            fsutil::write_atomic(&self.dir.join("feed.xml.minisig"), sig, None)?;
        }
        fsutil::write_atomic(&self.dir.join("feed.xml"), xml, None)
    }

    fn http_path(&self) -> PathBuf {
        self.dir.join("feed.http.json")
    }

    /// The validators to send for `url`: only when they were recorded for `url`
    /// together with exactly the feed now cached (`cached_xml`). A damaged record
    /// only costs a full download.
    pub fn validators(&self, url: &str, cached_xml: &[u8]) -> Option<Validators> {
        let bytes = fsutil::read_limited(&self.http_path(), 64 * 1024).ok()?;
        let rec: HttpRecord = serde_json::from_slice(&bytes).ok()?;
        (rec.url == url
            && rec.feed_sha256 == hash::sha256_hex(cached_xml)
            && !rec.validators.is_empty())
        .then_some(rec.validators)
    }

    /// Records the validators that came with the committed feed `xml` from `url`
    /// (or forgets them when there are none).
    pub fn record_validators(&self, url: &str, xml: &[u8], validators: &Validators) -> Result<()> {
        if validators.is_empty() {
            return match std::fs::remove_file(self.http_path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("remove", &self.http_path(), e))
                }
                _ => Ok(()),
            };
        }
        let rec = HttpRecord {
            url: url.to_string(),
            feed_sha256: hash::sha256_hex(xml),
            validators: validators.clone(),
        };
        let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        fsutil::write_atomic(&self.http_path(), &json, None)
    }

    fn sequence_path(&self) -> PathBuf {
        self.dir.join("sequence.json")
    }

    /// Last sequence number built per channel.
    pub fn sequences(&self) -> Result<BTreeMap<String, u64>> {
        let p = self.sequence_path();
        if !p.exists() {
            return Ok(BTreeMap::new());
        }
        let bytes = fsutil::read_limited(&p, 1 << 20)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{} is damaged ({e}): fix or remove it",
                p.display()
            ))
        })
    }

    /// Records `seq` as built on `channel`.
    pub fn record_sequence(&self, channel: &str, seq: u64) -> Result<()> {
        let mut all = self.sequences()?;
        let e = all.entry(channel.to_string()).or_insert(0);
        *e = (*e).max(seq);
        let json = serde_json::to_vec_pretty(&all).unwrap_or_default();
        fsutil::write_atomic(&self.sequence_path(), &json, None)
    }
}

/// Checks document bytes against a verified feed entry (size, SHA-256), then the
/// vendor signature and schema, then that id and revision are what the feed says.
pub fn check_document(
    what: &str,
    entry: &FeedEntry,
    xml: &[u8],
    sig: &[u8],
    trust: &TrustRoots,
) -> Result<Verified<Document>> {
    check_digest(what, entry, xml)?;
    let doc = verify::verify_document(what, xml, sig, trust)?;
    if doc.mitigation.id != entry.id || doc.mitigation.revision != entry.revision {
        return Err(Error::mismatch(
            what,
            format!(
                "document is {} revision {}, but the feed lists {} revision {}",
                doc.mitigation.id, doc.mitigation.revision, entry.id, entry.revision
            ),
        ));
    }
    Ok(doc)
}

fn check_digest(what: &str, entry: &FeedEntry, xml: &[u8]) -> Result<()> {
    if xml.len() as u64 != entry.size {
        return Err(Error::mismatch(
            what,
            format!(
                "is {} bytes, but the feed declares {}",
                xml.len(),
                entry.size
            ),
        ));
    }
    if hash::sha256_hex(xml) != entry.sha256 {
        return Err(Error::mismatch(what, "SHA-256 does not match the feed"));
    }
    Ok(())
}
