//! The only place that constructs [`Verified`] values. A `Verified<Bundle>` means:
//! the manifest is signed by a trusted release key and its trusted comment names
//! it; every payload entry was declared, in order, a regular file of the declared
//! size and SHA-256; every document carries a valid signature by a trusted vendor
//! key (the one the manifest names) and parses as a schema-valid mitigation with
//! the declared id and revision. Expiry is a policy question left to the caller
//! ([`Bundle::expired_at`]).

use crate::archive::{BundleFile, reader};
use crate::error::{Error, Result};
use crate::feed::Feed;
use crate::keys::Signature;
use crate::manifest::{EntryKind, ExpectedEntry, Manifest, ManifestMitigation};
use crate::mitigation::Mitigation;
use crate::progress::Progress;
use crate::time::Timestamp;
use crate::trust::TrustRoots;
use std::io::{self, Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// Proof that a `T` passed verification. Only this module can construct it.
#[derive(Debug, Clone)]
pub struct Verified<T>(T);

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Verified<T> {
    /// Gives up the proof and returns the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// A verified mitigation document with the bytes and signature it was verified from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The parsed document.
    pub mitigation: Mitigation,
    /// The exact signed bytes.
    pub xml: Vec<u8>,
    /// The vendor's signature text.
    pub signature: String,
    /// The vendor key that signed it.
    pub vendor_key: crate::keys::KeyId,
}

/// A verified bundle: its manifest and documents. Attachments were checked while
/// streaming and, if a staging directory was given, written there.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where it was read from.
    pub path: PathBuf,
    /// The signed manifest.
    pub manifest: Manifest,
    /// The trusted comment of the release signature.
    pub trusted_comment: String,
    /// Documents in manifest order.
    pub documents: Vec<Document>,
}

impl Bundle {
    /// `Some(expiry)` if the bundle or one of its documents has expired at `now`.
    pub fn expired_at(&self, now: &Timestamp) -> Option<(String, Timestamp)> {
        if self.manifest.expires <= *now {
            return Some((
                format!("bundle {}", self.manifest.id),
                self.manifest.expires,
            ));
        }
        None
    }
}

/// Verifies a vendor-signed document against the vendor keys in `trust`.
pub fn verify_document(
    what: &str,
    xml: &[u8],
    signature: &[u8],
    trust: &TrustRoots,
) -> Result<Verified<Document>> {
    let sig = Signature::parse(what, signature)?;
    verify_parsed_document(what, xml.to_vec(), &sig, trust).map(Verified)
}

fn verify_parsed_document(
    what: &str,
    xml: Vec<u8>,
    sig: &Signature,
    trust: &TrustRoots,
) -> Result<Document> {
    let key = trust.vendor_key(what, sig.key_id())?;
    key.verify(what, &xml, sig)?;
    let mitigation = Mitigation::parse(what, &xml)?;
    Ok(Document {
        mitigation,
        xml,
        signature: sig.text().to_string(),
        vendor_key: key.id(),
    })
}

/// Verifies a vendor-signed feed index. Expiry is checked by the caller.
pub fn verify_feed(
    what: &str,
    xml: &[u8],
    signature: &[u8],
    trust: &TrustRoots,
) -> Result<Verified<Feed>> {
    let sig = Signature::parse(what, signature)?;
    let key = trust.vendor_key(what, sig.key_id())?;
    key.verify(what, xml, &sig)?;
    Ok(Verified(Feed::parse(what, xml)?))
}

/// Verifies a bundle file. The manifest signature is checked before one payload
/// byte is decompressed. With `staging`, attachments are written under
/// `staging/attachments/` (the directory must exist and be private to the caller);
/// without it nothing is written anywhere.
pub fn verify_bundle(
    path: &Path,
    trust: &TrustRoots,
    staging: Option<&Path>,
) -> Result<Verified<Bundle>> {
    verify_bundle_showing(path, trust, staging, &Progress::hidden())
}

/// [`verify_bundle`], counting each document whose vendor signature was checked
/// on `progress`.
pub fn verify_bundle_showing(
    path: &Path,
    trust: &TrustRoots,
    staging: Option<&Path>,
    progress: &Progress,
) -> Result<Verified<Bundle>> {
    let mut file = BundleFile::open(path)?;
    let (manifest, trusted_comment) = verify_manifest(&file, trust)?;
    progress.set_len(manifest.mitigations.len());

    let mut raw: Vec<(Vec<u8>, Vec<u8>)> =
        vec![(Vec::new(), Vec::new()); manifest.mitigations.len()];
    if let Some(dir) = staging {
        let att = dir.join("attachments");
        std::fs::create_dir(&att).map_err(|e| Error::io("create", &att, e))?;
    }
    reader::stream_payload(
        &mut file,
        &manifest,
        &mut |entry: &ExpectedEntry, r: &mut dyn Read| match entry.kind {
            EntryKind::Document(i) => read_small(r, entry, &mut raw[i].0),
            EntryKind::DocumentSignature(i) => read_small(r, entry, &mut raw[i].1),
            EntryKind::Attachment(i) => match staging {
                Some(dir) => {
                    let p = dir.join("attachments").join(&manifest.attachments[i].name);
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&p)
                        .map_err(|e| Error::io("create", &p, e))?;
                    io::copy(r, &mut f)
                        .and_then(|_| f.flush())
                        .map_err(|e| Error::io("write", &p, e))?;
                    Ok(())
                }
                None => Ok(()),
            },
        },
    )?;

    let documents = manifest
        .mitigations
        .iter()
        .zip(raw)
        .map(|(m, (xml, sig))| {
            let doc = verify_bundled_document(path, m, xml, &sig, trust);
            progress.inc();
            doc
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Verified(Bundle {
        path: path.to_path_buf(),
        manifest,
        trusted_comment,
        documents,
    }))
}

/// Checks the release signature and trusted comment, then parses and validates
/// the manifest; returns it with the verified trusted comment. Nothing of the
/// payload is read.
pub fn verify_manifest(file: &BundleFile, trust: &TrustRoots) -> Result<(Manifest, String)> {
    let what = "bundle manifest";
    let sig = Signature::parse(what, &file.signature_bytes)?;
    let key = trust.release_key(what, sig.key_id())?;
    key.verify(what, &file.manifest_bytes, &sig)?;
    // minisign does not sign the untrusted comment. airlock always writes the same
    // one, and refuses any other, so that no byte of a bundle can change unnoticed;
    // its content is compared, never used.
    if sig.untrusted_comment() != crate::keys::airlock_untrusted_comment(sig.key_id()) {
        return Err(Error::signature(
            what,
            "the signature's untrusted comment line is not the one airlock writes: the bundle was altered",
        ));
    }
    let manifest = Manifest::parse(&file.manifest_bytes)?;
    manifest.check_trusted_comment(sig.trusted_comment())?;
    if manifest.release_key != key.id().to_string() {
        return Err(Error::mismatch(
            what,
            format!(
                "names release key {} but is signed by {}",
                manifest.release_key,
                key.id()
            ),
        ));
    }
    Ok((manifest, sig.trusted_comment().to_string()))
}

fn read_small(r: &mut dyn Read, entry: &ExpectedEntry, out: &mut Vec<u8>) -> Result<()> {
    // entry.size was bounded by Manifest::validate before streaming started.
    out.reserve_exact(usize::try_from(entry.size).unwrap_or(0));
    r.read_to_end(out)
        .map_err(|e| Error::mismatch(entry.path.clone(), format!("read failed: {e}")))?;
    Ok(())
}

fn verify_bundled_document(
    path: &Path,
    m: &ManifestMitigation,
    xml: Vec<u8>,
    sig: &[u8],
    trust: &TrustRoots,
) -> Result<Document> {
    let what = format!("{} in {}", m.path, path.display());
    let parsed = Signature::parse(&what, sig)?;
    if parsed.key_id().to_string() != m.vendor_key {
        return Err(Error::signature(
            &what,
            format!(
                "signed by key {}, but the manifest says {}",
                parsed.key_id(),
                m.vendor_key
            ),
        ));
    }
    let doc = verify_parsed_document(&what, xml, &parsed, trust)?;
    if doc.mitigation.id != m.id || doc.mitigation.revision != m.revision {
        return Err(Error::mismatch(
            &what,
            format!(
                "document is {} revision {}, but the manifest declares {} revision {}",
                doc.mitigation.id, doc.mitigation.revision, m.id, m.revision
            ),
        ));
    }
    Ok(doc)
}
