//! File helpers that name the path in every error, never read more than a limit,
//! and never leave a half-written file: [`write_atomic`] writes a temporary file in
//! the target's directory, fsyncs it, renames it over the target and fsyncs the
//! directory, so a crash leaves either the old or the new content.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// Prefix of the temporary files [`write_atomic`] writes beside their target; a
/// process killed mid-write leaves one behind for its owner to sweep.
pub const TEMP_PREFIX: &str = ".airlock-tmp-";

/// Reads at most `limit` bytes of `path`; a longer file is refused as [`Error::Limit`].
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    // Sized from the file's length (bounded by the limit) so the read is one
    // call, not a series of growing ones; the limit is still enforced on what is read.
    let size = file.metadata().map_or(0, |m| m.len()).min(limit);
    read_into(
        file,
        limit,
        path,
        Vec::with_capacity(size.saturating_add(1) as usize),
    )
}

/// Reads at most `limit` bytes from `reader` (which reads `path`).
pub fn read_limited_from(reader: impl Read, limit: u64, path: &Path) -> Result<Vec<u8>> {
    read_into(reader, limit, path, Vec::new())
}

fn read_into(reader: impl Read, limit: u64, path: &Path, mut buf: Vec<u8>) -> Result<Vec<u8>> {
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::Limit {
            what: path.display().to_string(),
            limit,
            unit: "bytes",
        });
    }
    Ok(buf)
}

/// Reads a UTF-8 text file of at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64) -> Result<String> {
    let bytes = read_limited(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("{} is not UTF-8 text", path.display())))
}

/// Atomically replaces `path` with `contents` (mode 0644 unless `mode` is given).
pub fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    write_atomic_unsynced_dir(path, contents, mode)?;
    sync_dir(parent_dir(path))
}

/// Like [`write_atomic`] but leaves the directory fsync to the caller, who writes
/// many files into one directory and calls [`sync_dir`] once after the last.
/// A crash before that may lose the new names, never leave a partial file.
pub fn write_atomic_unsynced_dir(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    tmp.as_file_mut()
        .write_all(contents)
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    persist_temp(tmp, path, mode.unwrap_or(0o644))
}

/// Commits a temporary file written beside `path`: sets `mode`, fsyncs it, renames
/// it over `path` and fsyncs the directory.
pub fn commit_temp(tmp: tempfile::NamedTempFile, path: &Path, mode: u32) -> Result<()> {
    persist_temp(tmp, path, mode)?;
    sync_dir(parent_dir(path))
}

fn persist_temp(tmp: tempfile::NamedTempFile, path: &Path, mode: u32) -> Result<()> {
    set_mode(tmp.as_file(), mode).map_err(|e| Error::io("set the mode of", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("fsync", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    Ok(())
}

/// Fsyncs a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    let _ = dir;
    Ok(())
}

/// The directory that holds `path` ("." for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `path` as a new file with mode 0600 (for secret keys); refuses to overwrite.
pub fn create_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::io("create", path, e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", path, e))?;
    Ok(())
}

fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    let _ = (file, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"hello", None).unwrap();
        assert_eq!(read_limited(&p, 5).unwrap(), b"hello");
        assert!(matches!(read_limited(&p, 4), Err(Error::Limit { .. })));
    }

    #[test]
    fn private_files_are_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        create_private(&p, b"secret").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(create_private(&p, b"other").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
    }
}
