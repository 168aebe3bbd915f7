//! Builds a bundle in one pass over its inputs: each payload entry is hashed while
//! it is compressed (multithreaded zstd) into an anonymous temporary file, then the
//! manifest is signed and the outer tar is written to a temporary file beside the
//! output, which is fsynced and renamed into place. With a detached signature the
//! whole file is signed while it is written. The same inputs and creation time give
//! byte-identical output.

use super::file_header;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::{CountingWriter, HashingWriter, hex, sha256_hex};
use crate::keys::{KeyId, SecretKey};
use crate::limits;
use crate::manifest::tar_member_size;
use crate::manifest::{
    FORMAT_VERSION, MANIFEST_NAME, Manifest, ManifestAttachment, ManifestMitigation, PAYLOAD_NAME,
    PayloadInfo, SIGNATURE_NAME, is_valid_attachment_name,
};
use crate::mitigation::is_valid_id;
use crate::time::{Timestamp, format};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
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
///
/// One pass: every length in the header region (manifest, signature, payload
/// header) is fixed before compression starts, because the only manifest values not
/// known yet are fixed-width (digests, the bundle id) or bounded (the compressed
/// size, at most 20 digits). The payload is compressed straight into the output at
/// its final offset; the manifest is then padded with spaces (valid JSON
/// whitespace, covered by the signature) to the reserved length and written in
/// front of it.
pub fn write_bundle(
    input: &BundleInput,
    key: &SecretKey,
    out: &Path,
    opts: &WriteOptions,
) -> Result<Manifest> {
    write_bundle_gated(input, key, out, opts, || Ok(()))
}

/// [`write_bundle`], but `gate` runs after the payload is compressed and before the
/// manifest is signed; if it fails, nothing is signed and no output is left. The
/// bundler uses it to check vendor signatures while the payload is compressed.
pub fn write_bundle_gated(
    input: &BundleInput,
    key: &SecretKey,
    out: &Path,
    opts: &WriteOptions,
    gate: impl FnOnce() -> Result<()>,
) -> Result<Manifest> {
    let mut docs: Vec<&DocumentInput> = input.documents.iter().collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut atts: Vec<&AttachmentInput> = input.attachments.iter().collect();
    atts.sort_by(|a, b| a.name.cmp(&b.name));
    check_input(input, &docs, &atts)?;
    let mut files = Vec::with_capacity(atts.len());
    for a in &atts {
        let file = File::open(&a.path).map_err(|e| Error::io("open attachment", &a.path, e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("stat attachment", &a.path, e))?
            .len();
        files.push((file, size));
    }

    // 1. The manifest with placeholders of maximal width, to fix the header layout.
    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        id: "0".repeat(32),
        channel: input.channel.clone(),
        seq: input.seq,
        created: input.created,
        expires: input.expires,
        release_key: key.id().to_string(),
        publisher: input.publisher.clone(),
        mitigations: docs
            .iter()
            .map(|d| ManifestMitigation {
                id: d.id.clone(),
                revision: d.revision,
                vendor_key: d.vendor_key.to_string(),
                path: format!("mitigations/{}.xml", d.id),
                sha256: sha256_hex(&d.xml),
                size: d.xml.len() as u64,
                signature_sha256: sha256_hex(&d.signature),
                signature_size: d.signature.len() as u64,
            })
            .collect(),
        retired: {
            let mut r = input.retired.clone();
            r.sort();
            r.dedup();
            r
        },
        attachments: atts
            .iter()
            .zip(&files)
            .map(|(a, (_, size))| ManifestAttachment {
                name: a.name.clone(),
                size: *size,
                sha256: "0".repeat(64),
            })
            .collect(),
        payload: PayloadInfo {
            compressed_size: u64::MAX,
            compressed_sha256: "0".repeat(64),
            uncompressed_size: 0,
        },
    };
    manifest.payload.uncompressed_size = manifest.expected_tar_size();
    let manifest_len = manifest.to_bytes().len();
    let signature_len = key.sign(&b""[..], &manifest.trusted_comment())?.len();
    let header_len =
        tar_member_size(manifest_len as u64) + tar_member_size(signature_len as u64) + 512;

    // 2. The payload, compressed into the output at its final offset:
    //    tar -> count -> zstd (multithreaded) -> SHA-256 and count -> file.
    let dir = fsutil::parent_dir(out);
    let mut tmp = tempfile::Builder::new()
        .prefix(".airlock-tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    let io_err = |e: io::Error| Error::io("write", out, e);
    tmp.as_file_mut()
        .seek(SeekFrom::Start(header_len))
        .map_err(io_err)?;
    let sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp.as_file_mut()));
    let mut enc = zstd::stream::write::Encoder::new(sink, opts.level).map_err(io_err)?;
    enc.multithread(opts.threads.max(1)).map_err(io_err)?;
    enc.include_checksum(true).map_err(io_err)?;
    let mut tar = Ustar {
        w: CountingWriter::new(enc),
        mtime: input.created,
        buf: vec![0u8; 1 << 20],
    };
    for (d, m) in docs.iter().zip(&manifest.mitigations) {
        tar.bytes(&m.path, &d.xml).map_err(io_err)?;
        tar.bytes(&format!("{}.minisig", m.path), &d.signature)
            .map_err(io_err)?;
    }
    for ((a, (file, size)), slot) in atts.iter().zip(files).zip(manifest.attachments.iter_mut()) {
        slot.sha256 = tar
            .file(&format!("attachments/{}", a.name), file, size)
            .map_err(|e| Error::io("read attachment", &a.path, e))?;
    }
    let (enc, uncompressed_size) = tar.finish().map_err(io_err)?;
    let (buf, compressed_sha256, compressed_size) = enc.finish().map_err(io_err)?.finish();
    buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    if uncompressed_size != manifest.payload.uncompressed_size {
        return Err(Error::Invalid(format!(
            "the payload tar is {uncompressed_size} bytes, not the {} its entries need",
            manifest.payload.uncompressed_size
        )));
    }

    gate()?;

    // 3. The real manifest, padded to the reserved length, and its signature.
    manifest.payload.compressed_size = compressed_size;
    manifest.payload.compressed_sha256 = compressed_sha256;
    manifest.id = bundle_id(&manifest);
    manifest.validate()?;
    let mut manifest_bytes = manifest.to_bytes();
    let newline = manifest_bytes.pop();
    if manifest_bytes.len() >= manifest_len || newline != Some(b'\n') {
        return Err(Error::Invalid(
            "internal error: the manifest outgrew its reserved space".into(),
        ));
    }
    manifest_bytes.resize(manifest_len - 1, b' ');
    manifest_bytes.push(b'\n');
    let signature = key.sign(&manifest_bytes[..], &manifest.trusted_comment())?;
    if signature.len() != signature_len {
        return Err(Error::Invalid(
            "internal error: the signature length changed".into(),
        ));
    }

    // 4. The header region in front, the end-of-archive blocks behind, then commit.
    let mut header = Vec::with_capacity(usize::try_from(header_len).unwrap_or(0));
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
    let f = tmp.as_file_mut();
    f.write_all(&vec![0u8; padding_len(compressed_size) + 1024])
        .map_err(io_err)?;
    f.seek(SeekFrom::Start(0)).map_err(io_err)?;
    f.write_all(&header).map_err(io_err)?;
    fsutil::commit_temp(tmp, out, 0o644)?;

    if opts.detached_signature {
        let file = File::open(out).map_err(|e| Error::io("open", out, e))?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().replace(char::is_whitespace, "_"))
            .unwrap_or_default();
        let comment = format!(
            "airlock-bundle-file id={} channel={} seq={} file={name}",
            manifest.id, manifest.channel, manifest.seq
        );
        let sig = key.sign(io::BufReader::with_capacity(1 << 20, file), &comment)?;
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

/// The payload's ustar writer: regular files only, airlock's fixed metadata, data
/// streamed in 1 MiB chunks and hashed on the way (the same bytes the tar crate's
/// builder writes, without its per-8 KiB copying).
struct Ustar<W: Write> {
    w: CountingWriter<W>,
    mtime: Timestamp,
    buf: Vec<u8>,
}

impl<W: Write> Ustar<W> {
    fn header(&mut self, path: &str, size: u64) -> io::Result<()> {
        let mut h = file_header(size, &self.mtime);
        h.set_path(path)?;
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        self.w.write_all(&[0u8; 512][..padding_len(size)])
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.header(path, data.len() as u64)?;
        self.w.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// Streams exactly `size` bytes of `file`; returns their SHA-256.
    fn file(&mut self, path: &str, mut file: File, size: u64) -> io::Result<String> {
        self.header(path, size)?;
        let mut hasher = Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was read",
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&self.buf[..n]);
            self.w.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        self.pad(size)?;
        Ok(hex(&hasher.finalize()))
    }

    /// Writes the end-of-archive blocks; returns the writer and the tar's length.
    fn finish(mut self) -> io::Result<(W, u64)> {
        self.w.write_all(&[0u8; 1024])?;
        Ok(self.w.finish())
    }
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
