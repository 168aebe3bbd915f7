//! The bundle manifest (design card §5): a JSON document, signed by a release
//! key, that declares every payload entry with its size and SHA-256, so the
//! reader can refuse anything undeclared, reordered, longer or different.
//! [`Manifest::validate`] checks the structure and limits before any payload byte
//! is read; the trusted comment of its signature repeats id, channel, seq and expiry.

use crate::error::{Error, Result};
use crate::hash::{is_lower_hex, is_sha256_hex};
use crate::limits;
use crate::mitigation::is_valid_id;
use crate::time::{Timestamp, format, parse_rfc3339};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The manifest format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the manifest member in the outer tar.
pub const MANIFEST_NAME: &str = "airlock-manifest.json";
/// Name of the manifest signature member.
pub const SIGNATURE_NAME: &str = "airlock-manifest.json.minisig";
/// Name of the payload member.
pub const PAYLOAD_NAME: &str = "payload.tar.zst";

/// The signed description of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`].
    pub format: u32,
    /// Bundle id (32 hex digits derived from the content).
    pub id: String,
    /// Release channel, e.g. `prod`.
    pub channel: String,
    /// Sequence number; grows per channel.
    pub seq: u64,
    /// When the bundle was built.
    pub created: Timestamp,
    /// After this the bundle must not be applied.
    pub expires: Timestamp,
    /// Id of the release key that signs this manifest.
    pub release_key: String,
    /// Publisher named by the vendor feed the documents came from.
    pub publisher: String,
    /// Mitigation documents, sorted by id.
    pub mitigations: Vec<ManifestMitigation>,
    /// Withdrawn mitigation ids, sorted.
    pub retired: Vec<String>,
    /// Extra files, sorted by name.
    pub attachments: Vec<ManifestAttachment>,
    /// The compressed payload member.
    pub payload: PayloadInfo,
}

/// One mitigation document in the payload (`mitigations/ID.xml` and its `.minisig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestMitigation {
    /// Mitigation id.
    pub id: String,
    /// Its revision.
    pub revision: u64,
    /// Id of the vendor key that signed the document.
    pub vendor_key: String,
    /// Path in the payload: `mitigations/ID.xml`.
    pub path: String,
    /// SHA-256 of the document.
    pub sha256: String,
    /// Size of the document.
    pub size: u64,
    /// SHA-256 of the vendor signature file (`path` + `.minisig`).
    pub signature_sha256: String,
    /// Size of the vendor signature file.
    pub signature_size: u64,
}

/// One attachment in the payload (`attachments/NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestAttachment {
    /// File name, `[A-Za-z0-9._-]{1,80}`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
}

/// The compressed payload member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    /// Size of `payload.tar.zst`.
    pub compressed_size: u64,
    /// SHA-256 of `payload.tar.zst`.
    pub compressed_sha256: String,
    /// Size of the tar stream inside it (exactly the sum of its ustar blocks).
    pub uncompressed_size: u64,
}

/// One regular file expected in the payload tar, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEntry {
    /// Path inside the payload.
    pub path: String,
    /// Exact size.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
    /// What the entry is.
    pub kind: EntryKind,
}

/// The kinds of payload entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A mitigation document (index into `mitigations`).
    Document(usize),
    /// A vendor signature of a document (index into `mitigations`).
    DocumentSignature(usize),
    /// An attachment (index into `attachments`).
    Attachment(usize),
}

/// True for attachment names: `[A-Za-z0-9._-]{1,80}`, not `.` or `..`.
pub fn is_valid_attachment_name(s: &str) -> bool {
    (1..=80).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && s != "."
        && s != ".."
}

/// Size of one ustar member holding `size` bytes: a header block plus padded data.
pub fn tar_member_size(size: u64) -> u64 {
    512 + size.div_ceil(512) * 512
}

fn is_key_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl Manifest {
    /// Parses manifest bytes (bounded) and validates them.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        if bytes.len() as u64 > limits::MAX_MANIFEST_BYTES {
            return Err(Error::Limit {
                what: "manifest".into(),
                limit: limits::MAX_MANIFEST_BYTES,
                unit: "bytes",
            });
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::mismatch("manifest", format!("malformed JSON: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// The canonical bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The trusted comment the release signature must carry.
    pub fn trusted_comment(&self) -> String {
        format!(
            "airlock-bundle id={} channel={} seq={} expires={}",
            self.id,
            self.channel,
            self.seq,
            format(&self.expires)
        )
    }

    /// Checks that a verified trusted comment names exactly this manifest.
    pub fn check_trusted_comment(&self, comment: &str) -> Result<()> {
        let mut fields = comment.split(' ');
        let ok = fields.next() == Some("airlock-bundle") && {
            let pairs: Vec<(&str, &str)> = fields.filter_map(|f| f.split_once('=')).collect();
            let get = |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            pairs.len() == 4
                && get("id") == Some(self.id.as_str())
                && get("channel") == Some(self.channel.as_str())
                && get("seq") == Some(self.seq.to_string().as_str())
                && get("expires").and_then(parse_rfc3339) == Some(self.expires)
        };
        if ok {
            Ok(())
        } else {
            Err(Error::signature(
                "manifest",
                format!(
                    "the signed trusted comment '{}' does not match the manifest ({})",
                    comment.escape_debug(),
                    self.trusted_comment()
                ),
            ))
        }
    }

    /// Structural checks and limits; run before any payload byte is read.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Error::mismatch("manifest", m);
        if self.format != FORMAT_VERSION {
            return Err(bad(format!(
                "format {} is not supported (this airlock reads format {FORMAT_VERSION})",
                self.format
            )));
        }
        if !is_lower_hex(&self.id, 32) {
            return Err(bad("bundle id is not 32 hex digits".into()));
        }
        if !is_valid_id(&self.channel) {
            return Err(bad("channel is not [A-Za-z0-9._-]{1,64}".into()));
        }
        if self.seq == 0 {
            return Err(bad("seq must be at least 1".into()));
        }
        if self.expires <= self.created {
            return Err(bad("expires is not after created".into()));
        }
        if !is_key_id(&self.release_key) {
            return Err(bad("release_key is not a key id".into()));
        }
        if self.publisher.len() > 200 || self.publisher.chars().any(char::is_control) {
            return Err(bad(
                "publisher is longer than 200 bytes or contains a control character".into(),
            ));
        }
        if self.mitigations.len() > limits::MAX_MITIGATIONS {
            return Err(Error::Limit {
                what: "manifest mitigations".into(),
                limit: limits::MAX_MITIGATIONS as u64,
                unit: "entries",
            });
        }
        if self.attachments.len() > limits::MAX_ATTACHMENTS {
            return Err(Error::Limit {
                what: "manifest attachments".into(),
                limit: limits::MAX_ATTACHMENTS as u64,
                unit: "entries",
            });
        }
        let mut doc_total: u64 = 0;
        let mut prev: Option<&str> = None;
        for m in &self.mitigations {
            if !is_valid_id(&m.id) || prev.is_some_and(|p| p >= m.id.as_str()) {
                return Err(bad(format!(
                    "mitigation id '{}' is invalid, duplicated or out of order",
                    m.id.escape_debug()
                )));
            }
            prev = Some(&m.id);
            if m.revision == 0
                || m.path != format!("mitigations/{}.xml", m.id)
                || !is_key_id(&m.vendor_key)
            {
                return Err(bad(format!(
                    "mitigation {}: bad revision, path or vendor key",
                    m.id
                )));
            }
            if !is_sha256_hex(&m.sha256) || !is_sha256_hex(&m.signature_sha256) {
                return Err(bad(format!(
                    "mitigation {}: sha256 is not 64 lowercase hex digits",
                    m.id
                )));
            }
            if m.size > limits::MAX_DOCUMENT_BYTES || m.signature_size > limits::MAX_SIGNATURE_BYTES
            {
                return Err(Error::Limit {
                    what: format!("declared size of {}", m.id),
                    limit: limits::MAX_DOCUMENT_BYTES,
                    unit: "bytes",
                });
            }
            doc_total += m.size + m.signature_size;
        }
        if doc_total > limits::MAX_DOCUMENTS_TOTAL_BYTES {
            return Err(Error::Limit {
                what: "documents in one bundle".into(),
                limit: limits::MAX_DOCUMENTS_TOTAL_BYTES,
                unit: "bytes",
            });
        }
        let mut seen = BTreeSet::new();
        for r in &self.retired {
            if !is_valid_id(r)
                || !seen.insert(r.as_str())
                || self.mitigations.iter().any(|m| &m.id == r)
            {
                return Err(bad(format!(
                    "retired id '{}' is invalid, duplicated or also current",
                    r.escape_debug()
                )));
            }
        }
        let mut prev: Option<&str> = None;
        for a in &self.attachments {
            if !is_valid_attachment_name(&a.name) || prev.is_some_and(|p| p >= a.name.as_str()) {
                return Err(bad(format!(
                    "attachment name '{}' is invalid, duplicated or out of order",
                    a.name.escape_debug()
                )));
            }
            prev = Some(&a.name);
            if !is_sha256_hex(&a.sha256) {
                return Err(bad(format!(
                    "attachment {}: sha256 is not 64 lowercase hex digits",
                    a.name
                )));
            }
            if a.size > limits::MAX_ATTACHMENT_BYTES {
                return Err(Error::Limit {
                    what: format!("attachment {}", a.name),
                    limit: limits::MAX_ATTACHMENT_BYTES,
                    unit: "bytes",
                });
            }
        }
        if !is_sha256_hex(&self.payload.compressed_sha256) {
            return Err(bad("payload sha256 is not 64 lowercase hex digits".into()));
        }
        let expected_tar = self.expected_tar_size();
        if self.payload.uncompressed_size != expected_tar {
            return Err(bad(format!(
                "payload uncompressed_size {} is not the {expected_tar} bytes its declared entries take",
                self.payload.uncompressed_size
            )));
        }
        Ok(())
    }

    /// Exact length of the payload tar that holds the declared entries: one ustar
    /// member per entry plus the two end-of-archive blocks.
    pub fn expected_tar_size(&self) -> u64 {
        self.expected_entries()
            .iter()
            .map(|e| tar_member_size(e.size))
            .sum::<u64>()
            + 1024
    }

    /// The payload entries in the exact order the writer stores them.
    pub fn expected_entries(&self) -> Vec<ExpectedEntry> {
        let mut v = Vec::with_capacity(self.mitigations.len() * 2 + self.attachments.len());
        for (i, m) in self.mitigations.iter().enumerate() {
            v.push(ExpectedEntry {
                path: m.path.clone(),
                size: m.size,
                sha256: m.sha256.clone(),
                kind: EntryKind::Document(i),
            });
            v.push(ExpectedEntry {
                path: format!("{}.minisig", m.path),
                size: m.signature_size,
                sha256: m.signature_sha256.clone(),
                kind: EntryKind::DocumentSignature(i),
            });
        }
        for (i, a) in self.attachments.iter().enumerate() {
            v.push(ExpectedEntry {
                path: format!("attachments/{}", a.name),
                size: a.size,
                sha256: a.sha256.clone(),
                kind: EntryKind::Attachment(i),
            });
        }
        v
    }
}
