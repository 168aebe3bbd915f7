//! Reads a bundle. [`BundleFile::open`] parses only the outer ustar headers, the
//! manifest and its signature, and checks that the file length is exactly what
//! those headers imply (so truncation and appended data are caught before any
//! payload byte is read). [`stream_payload`] is crate-private and called by
//! [`crate::verify`] only after the manifest signature verified: one thread hashes
//! the compressed bytes, one decompresses them, and the caller's thread walks the
//! tar, checking every entry against the manifest (order, type, path, size,
//! SHA-256) and the declared compressed and uncompressed sizes, with memory
//! bounded whatever the bundle size.

use super::pipe;
use crate::error::{Error, Result};
use crate::hash::HashingReader;
use crate::limits;
use crate::manifest::{
    ExpectedEntry, MANIFEST_NAME, Manifest, PAYLOAD_NAME, SIGNATURE_NAME, tar_member_size,
};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The outer members of a bundle, read but not yet verified.
#[derive(Debug)]
pub struct BundleFile {
    path: PathBuf,
    file: File,
    /// Manifest bytes exactly as stored (unverified until [`crate::verify`] says so).
    pub manifest_bytes: Vec<u8>,
    /// Manifest signature bytes.
    pub signature_bytes: Vec<u8>,
    payload_offset: u64,
    payload_size: u64,
}

impl BundleFile {
    /// Opens `path` and reads the manifest and signature members.
    pub fn open(path: &Path) -> Result<BundleFile> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let mut r = BufReader::with_capacity(64 * 1024, &file);
        let (manifest_len, _) =
            read_header(&mut r, path, MANIFEST_NAME, limits::MAX_MANIFEST_BYTES)?;
        let manifest_bytes = read_member(&mut r, path, MANIFEST_NAME, manifest_len)?;
        let (sig_len, _) = read_header(&mut r, path, SIGNATURE_NAME, limits::MAX_SIGNATURE_BYTES)?;
        let signature_bytes = read_member(&mut r, path, SIGNATURE_NAME, sig_len)?;
        let (payload_size, _) = read_header(&mut r, path, PAYLOAD_NAME, u64::MAX / 2)?;
        let payload_offset = tar_member_size(manifest_len) + tar_member_size(sig_len) + 512;
        let expected_len = payload_offset + tar_member_size(payload_size) - 512 + 1024;
        if len < expected_len {
            return Err(Error::archive(
                path,
                format!("truncated: {len} bytes, but its members need {expected_len}"),
            ));
        }
        if len > expected_len {
            return Err(Error::archive(
                path,
                format!(
                    "{} bytes of unexpected data after the end of the archive",
                    len - expected_len
                ),
            ));
        }
        drop(r);
        Ok(BundleFile {
            path: path.to_path_buf(),
            file,
            manifest_bytes,
            signature_bytes,
            payload_offset,
            payload_size,
        })
    }
}

fn read_header(
    r: &mut impl Read,
    path: &Path,
    name: &str,
    limit: u64,
) -> Result<(u64, tar::Header)> {
    let mut block = [0u8; 512];
    r.read_exact(&mut block)
        .map_err(|_| Error::archive(path, format!("truncated before the {name} header")))?;
    let bad = |m: String| Error::archive(path, format!("{name} member: {m}"));
    let header = tar::Header::from_byte_slice(&block).clone();
    if header.as_ustar().is_none() {
        return Err(bad(
            "not a ustar header (this is not an airlock bundle, or it is damaged)".into(),
        ));
    }
    let stored = header
        .cksum()
        .map_err(|_| bad("malformed checksum".into()))?;
    let computed: u32 = block[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&block[156..])
        .map(|&b| u32::from(b))
        .sum();
    if stored != computed {
        return Err(bad("header checksum mismatch".into()));
    }
    if header.entry_type() != tar::EntryType::Regular {
        return Err(bad("not a regular file".into()));
    }
    let no_prefix = header
        .as_ustar()
        .is_some_and(|u| u.prefix.iter().all(|&b| b == 0));
    let base = header.path_bytes();
    if !no_prefix || base.as_ref() != name.as_bytes() {
        return Err(Error::archive(
            path,
            format!(
                "expected member {name}, found '{}'",
                String::from_utf8_lossy(&base).escape_debug()
            ),
        ));
    }
    let size = header.size().map_err(|_| bad("malformed size".into()))?;
    if size > limit {
        return Err(Error::Limit {
            what: format!("{name} in {}", path.display()),
            limit,
            unit: "bytes",
        });
    }
    Ok((size, header))
}

fn read_member(r: &mut impl Read, path: &Path, name: &str, size: u64) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    r.take(size)
        .read_to_end(&mut data)
        .map_err(|e| Error::io("read", path, e))?;
    if data.len() as u64 != size {
        return Err(Error::archive(path, format!("truncated inside {name}")));
    }
    let pad = tar_member_size(size) - 512 - size;
    let mut zeros = vec![0u8; usize::try_from(pad).unwrap_or(0)];
    r.read_exact(&mut zeros)
        .map_err(|_| Error::archive(path, format!("truncated after {name}")))?;
    if zeros.iter().any(|&b| b != 0) {
        return Err(Error::archive(
            path,
            format!("non-zero padding after {name}"),
        ));
    }
    Ok(data)
}

/// Streams the payload of `bundle`, calling `sink` for each declared entry in
/// order with a reader of exactly that entry's bytes. The entry's digest is
/// checked after `sink` returns (the rest of the entry is read if `sink` stopped
/// early). Only for manifests whose signature verified.
pub(crate) fn stream_payload(
    bundle: &mut BundleFile,
    manifest: &Manifest,
    sink: &mut dyn FnMut(&ExpectedEntry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let path = bundle.path.clone();
    if bundle.payload_size != manifest.payload.compressed_size {
        return Err(Error::archive(
            &path,
            format!(
                "payload is {} bytes but the manifest declares {}",
                bundle.payload_size, manifest.payload.compressed_size
            ),
        ));
    }
    bundle
        .file
        .seek(SeekFrom::Start(bundle.payload_offset))
        .map_err(|e| Error::io("seek in", &path, e))?;
    let compressed = BufReader::with_capacity(1 << 20, (&bundle.file).take(bundle.payload_size));
    let compressed_digest = check_payload(&path, manifest, compressed, sink)?;
    if compressed_digest != manifest.payload.compressed_sha256 {
        return Err(Error::mismatch(
            format!("payload of {}", path.display()),
            "SHA-256 does not match the manifest",
        ));
    }
    let tail_offset = bundle.payload_offset + tar_member_size(bundle.payload_size) - 512;
    bundle
        .file
        .seek(SeekFrom::Start(tail_offset))
        .map_err(|e| Error::io("seek in", &path, e))?;
    let mut tail = [0u8; 1024];
    (&bundle.file)
        .read_exact(&mut tail)
        .map_err(|e| Error::io("read", &path, e))?;
    if tail.iter().any(|&b| b != 0) {
        return Err(Error::archive(
            &path,
            "the end-of-archive blocks are not zero",
        ));
    }
    Ok(())
}

/// Decompresses and walks a payload against `manifest`; returns the SHA-256 of the
/// compressed bytes. Exposed (hidden) for the fuzz targets; callers outside this
/// crate must not treat its success as verification.
#[doc(hidden)]
pub fn check_payload(
    path: &Path,
    manifest: &Manifest,
    compressed: impl Read + Send,
    sink: &mut dyn FnMut(&ExpectedEntry, &mut dyn Read) -> Result<()>,
) -> Result<String> {
    let declared_uncompressed = manifest.payload.uncompressed_size;
    let declared_compressed = manifest.payload.compressed_size;
    // Three stages on three threads, joined by bounded pipes: hash the compressed
    // bytes | decompress (capped at the declared size) | walk and hash the tar.
    let (mut cw, cr) = pipe::pipe();
    let (mut pw, pr) = pipe::pipe();
    let stopped = || (Error::archive(path, "payload reader stopped"), false);
    std::thread::scope(|s| {
        // Each stage returns its error and whether that error is a root cause (a
        // corrupt zstd stream also makes the tar walker fail, less usefully).
        let hasher = s.spawn(move || -> std::result::Result<String, (Error, bool)> {
            let mut hashed = HashingReader::new(compressed);
            match copy_chunks(&mut hashed, &mut cw) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(stopped()),
                Err(e) => return Err((Error::io("read", path, e), true)),
            }
            drop(cw);
            let (digest, count) = hashed.finish();
            if count != declared_compressed {
                return Err((
                    Error::archive(path, "payload size does not match the manifest"),
                    true,
                ));
            }
            Ok(digest)
        });
        let decoder = s.spawn(move || -> std::result::Result<(), (Error, bool)> {
            let corrupt = |e: io::Error| {
                (
                    Error::archive(path, format!("payload is not a valid zstd stream: {e}")),
                    true,
                )
            };
            let mut dec = zstd::stream::read::Decoder::new(cr).map_err(corrupt)?;
            dec.window_log_max(limits::MAX_ZSTD_WINDOW_LOG)
                .map_err(corrupt)?;
            let mut capped = dec.take(declared_uncompressed.saturating_add(1));
            let n = match io::copy(&mut capped, &mut pw) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(stopped()),
                Err(e) => return Err(corrupt(e)),
            };
            drop(pw);
            if n > declared_uncompressed {
                return Err((
                    Error::archive(
                        path,
                        format!("payload expands past its declared {declared_uncompressed} bytes"),
                    ),
                    false,
                ));
            }
            if n < declared_uncompressed {
                return Err((
                    Error::archive(
                        path,
                        format!(
                            "payload expands to {n} bytes, not the declared {declared_uncompressed}"
                        ),
                    ),
                    false,
                ));
            }
            // Anything after the zstd frames is refused by the digest; read it so the
            // hasher sees the whole member.
            io::copy(&mut capped.into_inner().finish(), &mut io::sink()).map_err(corrupt)?;
            Ok(())
        });
        let walked = walk_tar(path, manifest, pr, sink);
        let decoded = decoder
            .join()
            .map_err(|_| Error::archive(path, "payload decoder failed"))?;
        let hashed = hasher
            .join()
            .map_err(|_| Error::archive(path, "payload hasher failed"))?;
        // Root causes first (I/O, corrupt stream), then what the walker found, then the rest.
        match (hashed, decoded, walked) {
            (Err((e, true)), _, _) | (_, Err((e, true)), _) => Err(e),
            (_, _, Err(w)) => Err(w),
            (Err((e, _)), _, _) | (_, Err((e, _)), _) => Err(e),
            (Ok(digest), Ok(()), Ok(())) => Ok(digest),
        }
    })
}

/// Copies `r` to `w` in 256 KiB chunks.
fn copy_chunks(r: &mut impl Read, w: &mut impl io::Write) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn walk_tar(
    path: &Path,
    manifest: &Manifest,
    pr: pipe::PipeReader,
    sink: &mut dyn FnMut(&ExpectedEntry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let bad = |m: String| Error::archive(path, format!("payload: {m}"));
    let mut archive = tar::Archive::new(pr);
    let expected = manifest.expected_entries();
    // Raw mode: pax and GNU extension headers come out as entries of their own (and
    // are refused as not regular files) instead of being read into memory and applied.
    let mut entries = archive.entries().map_err(|e| bad(e.to_string()))?.raw(true);
    for want in &expected {
        let mut entry = match entries.next() {
            Some(e) => {
                e.map_err(|e| bad(format!("malformed tar entry before {}: {e}", want.path)))?
            }
            None => return Err(bad(format!("entry {} is missing", want.path))),
        };
        let got = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if got != want.path {
            return Err(bad(format!(
                "unexpected entry '{}' where {} was declared",
                got.escape_debug(),
                want.path
            )));
        }
        let header = entry.header();
        if header.entry_type() != tar::EntryType::Regular {
            return Err(bad(format!(
                "entry {got} is a {:?}, not a regular file",
                header.entry_type()
            )));
        }
        if header.as_ustar().is_none() {
            return Err(bad(format!("entry {got} is not a plain ustar entry")));
        }
        if entry.size() != want.size {
            return Err(bad(format!(
                "entry {got} is {} bytes, but {} were declared",
                entry.size(),
                want.size
            )));
        }
        let mut hashed = HashingReader::new(&mut entry);
        sink(want, &mut hashed)?;
        io::copy(&mut hashed, &mut io::sink()).map_err(|e| bad(format!("reading {got}: {e}")))?;
        let (digest, n) = hashed.finish();
        if n != want.size {
            return Err(bad(format!("entry {got} is truncated")));
        }
        if digest != want.sha256 {
            return Err(Error::mismatch(
                format!("{got} in {}", path.display()),
                "SHA-256 does not match the manifest",
            ));
        }
    }
    if let Some(extra) = entries.next() {
        let name = extra
            .map(|e| String::from_utf8_lossy(&e.path_bytes()).into_owned())
            .unwrap_or_else(|e| e.to_string());
        return Err(bad(format!(
            "undeclared entry '{}' after the declared ones",
            name.escape_debug()
        )));
    }
    let mut rest = archive.into_inner();
    let mut tail = Vec::new();
    (&mut rest)
        .take(1 << 20)
        .read_to_end(&mut tail)
        .map_err(|e| bad(e.to_string()))?;
    if tail.iter().any(|&b| b != 0) {
        return Err(bad("data after the end of the payload tar".into()));
    }
    io::copy(&mut rest, &mut io::sink()).map_err(|e| bad(e.to_string()))?;
    Ok(())
}
