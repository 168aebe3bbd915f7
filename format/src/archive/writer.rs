//! Builds a bundle in one pass over its inputs: the payload tar is hashed while it
//! is compressed (multithreaded zstd) into an anonymous temporary file, then the
//! manifest is signed and the outer tar is written to a temporary file beside the
//! output, which is fsynced and renamed into place. With a detached signature the
//! whole file is signed while it is written. The same inputs and creation time give
//! byte-identical output.

use super::{file_header, pipe};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::{HashingReader, HashingWriter, hex, sha256_hex};
use crate::keys::{KeyId, SecretKey};
use crate::limits;
use crate::manifest::{
    FORMAT_VERSION, MANIFEST_NAME, Manifest, ManifestAttachment, ManifestMitigation, PAYLOAD_NAME,
    PayloadInfo, SIGNATURE_NAME, is_valid_attachment_name,
};
use crate::mitigation::is_valid_id;
use crate::time::{Timestamp, format};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A verified mitigation document to put in a bundle.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    /// Mitigation id.
    pub id: String,
    /// Its revision.
    pub revision: u64,
    /// The vendor key that signed it.
    pub vendor_key: KeyId,
    /// Document bytes exactly as signed.
    pub xml: Vec<u8>,
    /// The vendor's `.minisig` bytes.
    pub signature: Vec<u8>,
}

/// A file to carry as an attachment.
#[derive(Debug, Clone)]
pub struct AttachmentInput {
    /// Name inside the bundle.
    pub name: String,
    /// Where to read it.
    pub path: PathBuf,
}

/// Everything a bundle is built from.
#[derive(Debug, Clone)]
pub struct BundleInput {
    /// Release channel.
    pub channel: String,
    /// Sequence number on that channel.
    pub seq: u64,
    /// Creation time (also every member's mtime).
    pub created: Timestamp,
    /// Expiry time.
    pub expires: Timestamp,
    /// Feed publisher.
    pub publisher: String,
    /// Documents (any order; stored sorted by id).
    pub documents: Vec<DocumentInput>,
    /// Retired ids.
    pub retired: Vec<String>,
    /// Attachments (any order; stored sorted by name).
    pub attachments: Vec<AttachmentInput>,
}

/// How to write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Also write `OUT.minisig`, a whole-file signature for the stock `minisign -V`.
    pub detached_signature: bool,
    /// zstd level.
    pub level: i32,
    /// zstd worker threads (at least 1; the output does not depend on it).
    pub threads: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        WriteOptions {
            detached_signature: false,
            level: 3,
            threads,
        }
    }
}

/// Writes the bundle to `out` and returns its manifest.
pub fn write_bundle(
    input: &BundleInput,
    key: &SecretKey,
    out: &Path,
    opts: &WriteOptions,
) -> Result<Manifest> {
    let mut docs: Vec<&DocumentInput> = input.documents.iter().collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut atts: Vec<&AttachmentInput> = input.attachments.iter().collect();
    atts.sort_by(|a, b| a.name.cmp(&b.name));
    check_input(input, &docs, &atts)?;
    let dir = fsutil::parent_dir(out);

    // 1. The payload: tar -> hash/count -> zstd (multithreaded) -> hash/count -> temp file.
    let tmp =
        tempfile::tempfile_in(dir).map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let io_err = |e: io::Error| Error::io("write the payload for", out, e);
    let mut enc = zstd::stream::write::Encoder::new(
        HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp)),
        opts.level,
    )
    .map_err(io_err)?;
    enc.multithread(opts.threads.max(1)).map_err(io_err)?;
    enc.include_checksum(true).map_err(io_err)?;
    let mut tar = tar::Builder::new(HashingWriter::new(enc));
    tar.mode(tar::HeaderMode::Deterministic);
    let mut mitigations = Vec::with_capacity(docs.len());
    for d in &docs {
        let path = format!("mitigations/{}.xml", d.id);
        append_bytes(&mut tar, &path, &d.xml, &input.created).map_err(io_err)?;
        append_bytes(
            &mut tar,
            &format!("{path}.minisig"),
            &d.signature,
            &input.created,
        )
        .map_err(io_err)?;
        mitigations.push(ManifestMitigation {
            id: d.id.clone(),
            revision: d.revision,
            vendor_key: d.vendor_key.to_string(),
            path,
            sha256: sha256_hex(&d.xml),
            size: d.xml.len() as u64,
            signature_sha256: sha256_hex(&d.signature),
            signature_size: d.signature.len() as u64,
        });
    }
    let mut attachments = Vec::with_capacity(atts.len());
    for a in &atts {
        let file = File::open(&a.path).map_err(|e| Error::io("open attachment", &a.path, e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("stat attachment", &a.path, e))?
            .len();
        let mut reader = HashingReader::new(io::BufReader::with_capacity(1 << 20, file).take(size));
        let header = file_header(size, &input.created);
        tar.append_data(
            &mut header.clone(),
            format!("attachments/{}", a.name),
            &mut reader,
        )
        .map_err(|e| Error::io("read attachment", &a.path, e))?;
        let (sha256, n) = reader.finish();
        if n != size {
            return Err(Error::Invalid(format!(
                "attachment {} changed size while it was read",
                a.path.display()
            )));
        }
        attachments.push(ManifestAttachment {
            name: a.name.clone(),
            size,
            sha256,
        });
    }
    let (enc, _, uncompressed_size) = tar.into_inner().map_err(io_err)?.finish();
    let (buf, compressed_sha256, compressed_size) = enc.finish().map_err(io_err)?.finish();
    let mut payload = buf.into_inner().map_err(|e| io_err(e.into_error()))?;

    // 2. The manifest and its release signature.
    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        id: String::new(),
        channel: input.channel.clone(),
        seq: input.seq,
        created: input.created,
        expires: input.expires,
        release_key: key.id().to_string(),
        publisher: input.publisher.clone(),
        mitigations,
        retired: {
            let mut r = input.retired.clone();
            r.sort();
            r.dedup();
            r
        },
        attachments,
        payload: PayloadInfo {
            compressed_size,
            compressed_sha256,
            uncompressed_size,
        },
    };
    manifest.id = bundle_id(&manifest);
    manifest.validate()?;
    let manifest_bytes = manifest.to_bytes();
    let signature = key.sign(&manifest_bytes[..], &manifest.trusted_comment())?;

    // 3. The outer tar, written (and optionally signed) in one pass.
    payload.rewind().map_err(io_err)?;
    let mut header = Vec::with_capacity(4096 + manifest_bytes.len());
    outer_member(&mut header, MANIFEST_NAME, &manifest_bytes, &input.created)?;
    outer_member(
        &mut header,
        SIGNATURE_NAME,
        signature.as_bytes(),
        &input.created,
    )?;
    let mut ph = file_header(compressed_size, &input.created);
    ph.set_path(PAYLOAD_NAME).map_err(io_err)?;
    ph.set_cksum();
    header.extend_from_slice(ph.as_bytes());
    let padding = vec![0u8; padding_len(compressed_size) + 1024];
    let whole = header
        .as_slice()
        .chain(payload.take(compressed_size))
        .chain(padding.as_slice());

    let detached = if opts.detached_signature {
        let (pw, pr) = pipe::pipe();
        let comment = format!(
            "airlock-bundle-file id={} channel={} seq={} file={}",
            manifest.id,
            manifest.channel,
            manifest.seq,
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .replace(char::is_whitespace, "_")
        );
        let signer = std::thread::scope(|s| -> Result<String> {
            let h = s.spawn(|| key.sign(pr, &comment));
            let mut tee = Tee {
                inner: whole,
                copy: Some(pw),
            };
            let written = write_outer(out, &mut tee);
            drop(tee);
            let sig = h
                .join()
                .map_err(|_| Error::Invalid("signing thread failed".into()))?;
            written?;
            sig
        })?;
        Some(signer)
    } else {
        let mut whole = whole;
        write_outer(out, &mut whole)?;
        None
    };
    if let Some(sig) = detached {
        let mut p = out.as_os_str().to_owned();
        p.push(".minisig");
        fsutil::write_atomic(Path::new(&p), sig.as_bytes(), None)?;
    }
    Ok(manifest)
}

fn check_input(
    input: &BundleInput,
    docs: &[&DocumentInput],
    atts: &[&AttachmentInput],
) -> Result<()> {
    if !is_valid_id(&input.channel) {
        return Err(Error::Invalid(format!(
            "channel '{}' is not [A-Za-z0-9._-]{{1,64}}",
            input.channel
        )));
    }
    if input.seq == 0 {
        return Err(Error::Invalid(
            "the sequence number must be at least 1".into(),
        ));
    }
    if input.expires <= input.created {
        return Err(Error::Invalid(format!(
            "expiry {} is not after creation {}",
            format(&input.expires),
            format(&input.created)
        )));
    }
    if atts.len() > limits::MAX_ATTACHMENTS {
        return Err(Error::Invalid(format!(
            "more than {} attachments",
            limits::MAX_ATTACHMENTS
        )));
    }
    for w in docs.windows(2) {
        if w[0].id == w[1].id {
            return Err(Error::Invalid(format!(
                "mitigation {} is given twice",
                w[0].id
            )));
        }
    }
    for a in atts {
        if !is_valid_attachment_name(&a.name) {
            return Err(Error::Invalid(format!(
                "attachment name '{}' is not [A-Za-z0-9._-]{{1,80}}: rename the file",
                a.name.escape_debug()
            )));
        }
    }
    for w in atts.windows(2) {
        if w[0].name == w[1].name {
            return Err(Error::Invalid(format!(
                "two attachments are named {}",
                w[0].name
            )));
        }
    }
    Ok(())
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mtime: &Timestamp,
) -> io::Result<()> {
    let mut h = file_header(data.len() as u64, mtime);
    tar.append_data(&mut h, path, data)
}

/// The bundle id: 32 hex digits of SHA-256 over the channel, sequence, times,
/// retired ids and the payload digest (which covers every document and attachment).
fn bundle_id(m: &Manifest) -> String {
    let mut h = Sha256::new();
    h.update(b"airlock-bundle-id/1\n");
    for part in [
        m.channel.as_str(),
        &m.seq.to_string(),
        &format(&m.created),
        &format(&m.expires),
        &m.payload.compressed_sha256,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    for r in &m.retired {
        h.update(r.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize()[..16])
}

fn padding_len(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

fn outer_member(out: &mut Vec<u8>, name: &str, data: &[u8], mtime: &Timestamp) -> Result<()> {
    let mut h = file_header(data.len() as u64, mtime);
    h.set_path(name)
        .map_err(|e| Error::Invalid(format!("tar header: {e}")))?;
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, padding_len(data.len() as u64)));
    Ok(())
}

fn write_outer(out: &Path, src: &mut impl Read) -> Result<()> {
    fsutil::write_atomic_with(out, Some(0o644), |f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        io::copy(src, &mut w)?;
        w.flush()
    })
}

/// A reader that hands a copy of everything it reads to a second writer.
struct Tee<R> {
    inner: R,
    copy: Option<pipe::PipeWriter>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &mut self.copy {
            c.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}
