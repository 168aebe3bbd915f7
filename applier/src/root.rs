//! The host root, opened as a capability (`cap-std`): every path the applier reads
//! or writes is resolved inside it by the kernel (`openat2(RESOLVE_BENEATH)` where
//! available), so `..`, an absolute symbolic link, or a relative one that climbs
//! out of the root can never reach a file outside it. On top of that, the applier
//! only manages regular files: a managed path that is a symbolic link, a
//! directory, or lies below something that is not a directory is refused.
//!
//! Writes are atomic: the new content goes to `.NAME.airlock-tmp` in the same
//! directory (a fixed name, so a crashed run's leftovers are found and removed),
//! is given the mode and owner, fsynced, and renamed over the target. The
//! directory itself is fsynced by [`HostRoot::sync_dirs`] before the run commits.

use crate::error::{Error, Result};
use airlock_format::hash::sha256_hex;
use airlock_format::mitigation::check_action_path;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

/// Largest file the applier reads as a pre-image or edits (16 MiB).
pub const MAX_MANAGED_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What a regular file is: its content hash, permission bits and owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl FileMeta {
    /// True when content and mode are the same (the owner is kept, not managed).
    pub fn same_content_and_mode(&self, other: &FileMeta) -> bool {
        self.sha256 == other.sha256 && self.mode == other.mode
    }
}

/// A regular file read from the host root.
#[derive(Debug, Clone)]
pub struct FileNow {
    /// Its metadata.
    pub meta: FileMeta,
    /// Its content.
    pub content: Vec<u8>,
}

/// The opened host root.
#[derive(Debug)]
pub struct HostRoot {
    dir: Dir,
    path: PathBuf,
}

impl HostRoot {
    /// Opens `root` (the profile's `root`).
    pub fn open(root: &Path) -> Result<HostRoot> {
        let dir = Dir::open_ambient_dir(root, ambient_authority())
            .map_err(|e| airlock_format::Error::io("open the host root", root, e))?;
        Ok(HostRoot {
            dir,
            path: root.to_path_buf(),
        })
    }

    /// The root's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the root is the running system's `/`.
    pub fn is_live(&self) -> bool {
        self.path == Path::new("/")
    }

    /// Reads the regular file at the action path `path` (absolute, inside the
    /// root); `None` when nothing is there yet (its directory must exist).
    pub fn read(&self, path: &str) -> Result<Option<FileNow>> {
        let rel = relative(path)?;
        let meta = match self.dir.symlink_metadata(rel) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.check_parent(path, rel)?;
                return Ok(None);
            }
            Err(e) => return Err(unsafe_path(path, &e)),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            return Err(Error::Unsafe {
                path: path.into(),
                reason: "it is a symbolic link; airlock manages regular files only, and never writes through a link".into(),
            });
        }
        if !ft.is_file() {
            return Err(Error::Unsafe {
                path: path.into(),
                reason: "it exists and is not a regular file".into(),
            });
        }
        if meta.len() > MAX_MANAGED_FILE_BYTES {
            return Err(Error::Unsafe {
                path: path.into(),
                reason: format!(
                    "it is {} bytes, more than the {MAX_MANAGED_FILE_BYTES} bytes airlock edits or keeps as a pre-image",
                    meta.len()
                ),
            });
        }
        let mut opts = OpenOptions::new();
        opts.read(true);
        let file = self
            .dir
            .open_with(rel, &opts)
            .map_err(|e| unsafe_path(path, &e))?;
        let fmeta = file.metadata().map_err(|e| self.io("read", path, e))?;
        let mut content = Vec::new();
        file.take(MAX_MANAGED_FILE_BYTES + 1)
            .read_to_end(&mut content)
            .map_err(|e| self.io("read", path, e))?;
        if content.len() as u64 > MAX_MANAGED_FILE_BYTES {
            return Err(Error::Unsafe {
                path: path.into(),
                reason: "it grew beyond the largest file airlock edits while being read".into(),
            });
        }
        Ok(Some(FileNow {
            meta: FileMeta {
                sha256: sha256_hex(&content),
                mode: fmeta.mode() & 0o7777,
                uid: fmeta.uid(),
                gid: fmeta.gid(),
            },
            content,
        }))
    }

    /// Atomically replaces (or creates) the file at `path` with `content`, `mode`,
    /// and `owner` when given (else the process's own). Returns the directory to
    /// fsync before the run commits, and what was written.
    pub fn write(
        &self,
        path: &str,
        content: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(PathBuf, FileMeta)> {
        let rel = relative(path)?;
        let tmp = temp_name(rel);
        let dir = parent(rel);
        // A regular file or nothing may be replaced; re-checked here because time
        // passed since the plan read it.
        if let Ok(m) = self.dir.symlink_metadata(rel)
            && !m.file_type().is_file()
        {
            return Err(Error::Unsafe {
                path: path.into(),
                reason: "it is no longer a regular file".into(),
            });
        }
        match self.dir.remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(unsafe_path(path, &e)),
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(0o600);
        let file = self
            .dir
            .open_with(&tmp, &opts)
            .map_err(|e| unsafe_path(path, &e))?;
        let mut file = file.into_std();
        let result = (|| -> std::io::Result<FileMeta> {
            file.write_all(content)?;
            if let Some((uid, gid)) = owner {
                let m = file.metadata()?;
                if std::os::unix::fs::MetadataExt::uid(&m) != uid
                    || std::os::unix::fs::MetadataExt::gid(&m) != gid
                {
                    std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                }
            }
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            file.sync_all()?;
            let m = file.metadata()?;
            Ok(FileMeta {
                sha256: sha256_hex(content),
                mode: std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
                uid: std::os::unix::fs::MetadataExt::uid(&m),
                gid: std::os::unix::fs::MetadataExt::gid(&m),
            })
        })();
        drop(file);
        let meta = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = self.dir.remove_file(&tmp);
                return Err(self.io("write", path, e));
            }
        };
        if let Err(e) = self.dir.rename(&tmp, &self.dir, rel) {
            let _ = self.dir.remove_file(&tmp);
            return Err(self.io("rename into place", path, e));
        }
        Ok((dir, meta))
    }

    /// Removes the file at `path` if it is there. Returns the directory to fsync.
    pub fn remove(&self, path: &str) -> Result<PathBuf> {
        let rel = relative(path)?;
        match self.dir.symlink_metadata(rel) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(parent(rel)),
            Err(e) => return Err(unsafe_path(path, &e)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(Error::Unsafe {
                    path: path.into(),
                    reason: "it is no longer a regular file".into(),
                });
            }
            Ok(_) => {}
        }
        self.dir
            .remove_file(rel)
            .map_err(|e| self.io("remove", path, e))?;
        Ok(parent(rel))
    }

    /// Removes the temporary file a crashed write of `path` may have left.
    pub fn sweep_temp(&self, path: &str) -> Result<PathBuf> {
        let rel = relative(path)?;
        match self.dir.remove_file(temp_name(rel)) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
            Err(e) => return Err(self.io("remove a leftover temporary file beside", path, e)),
        }
        Ok(parent(rel))
    }

    /// Fsyncs each directory (relative to the root), so the renames in it are durable.
    pub fn sync_dirs(&self, dirs: &BTreeSet<PathBuf>) -> Result<()> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        for d in dirs {
            let rel = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d.as_path()
            };
            self.dir
                .open_with(rel, &opts)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| self.io("fsync directory", &format!("/{}", d.display()), e))?;
        }
        Ok(())
    }

    /// Refuses a unit whose mask link `systemctl --root` would create or remove
    /// outside the root: `/etc`, `/etc/systemd` and `/etc/systemd/system` must be
    /// real directories (or not exist yet), never symbolic links, and the unit's
    /// own entry must not be a directory. systemctl resolves those paths itself,
    /// so they are checked here first. Nothing to check on a live root (`/`).
    pub fn check_unit(&self, unit: &str) -> Result<()> {
        if self.is_live() {
            return Ok(());
        }
        let link = format!("/etc/systemd/system/{unit}");
        let refuse = |reason: String| Error::Unsafe {
            path: link.clone(),
            reason,
        };
        let mut dir = PathBuf::new();
        for part in ["etc", "systemd", "system"] {
            dir.push(part);
            match self.dir.symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(refuse(format!(
                        "/{} is a symbolic link; systemctl --root would follow it, possibly out of the host root",
                        dir.display()
                    )));
                }
                Ok(m) if !m.is_dir() => {
                    return Err(refuse(format!("/{} is not a directory", dir.display())));
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(unsafe_path(&link, &e)),
            }
        }
        match self.dir.symlink_metadata(dir.join(unit)) {
            Ok(m) if m.is_dir() => Err(refuse("it is a directory".into())),
            _ => Ok(()),
        }
    }

    /// Why a missing file cannot be created: its directory is missing, or is not one.
    fn check_parent(&self, path: &str, rel: &Path) -> Result<()> {
        let dir = parent(rel);
        if dir.as_os_str().is_empty() {
            return Ok(());
        }
        match self.dir.metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::Unsafe {
                path: path.into(),
                reason: format!("/{} is not a directory", dir.display()),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::Unsafe {
                path: path.into(),
                reason: format!(
                    "its directory /{} does not exist on this host (airlock does not create directories)",
                    dir.display()
                ),
            }),
            Err(e) => Err(unsafe_path(path, &e)),
        }
    }

    fn io(&self, action: &'static str, path: &str, e: std::io::Error) -> Error {
        airlock_format::Error::io(action, &self.path.join(path.trim_start_matches('/')), e).into()
    }
}

/// The action path as a path relative to the root, checked again (the document
/// parser already refused anything else).
fn relative(path: &str) -> Result<&Path> {
    check_action_path(path).map_err(|reason| Error::Unsafe {
        path: path.into(),
        reason,
    })?;
    Ok(Path::new(path.trim_start_matches('/')))
}

fn parent(rel: &Path) -> PathBuf {
    rel.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `dir/.NAME.airlock-tmp` for `dir/NAME`.
fn temp_name(rel: &Path) -> PathBuf {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(rel).join(format!(".{name}.airlock-tmp"))
}

/// An I/O error while resolving a path, phrased for the operator. cap-std reports
/// an escape from the root as `PermissionDenied` ("a path led outside of the
/// filesystem").
fn unsafe_path(path: &str, e: &std::io::Error) -> Error {
    let reason = match e.kind() {
        ErrorKind::NotADirectory => "a component of it is not a directory".to_string(),
        ErrorKind::PermissionDenied if e.to_string().contains("outside") => {
            "it leads outside the host root (through a symbolic link or `..`)".to_string()
        }
        ErrorKind::NotFound => "a directory on the way to it does not exist".to_string(),
        _ => format!("it cannot be resolved inside the host root: {e}"),
    };
    Error::Unsafe {
        path: path.into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn root() -> (tempfile::TempDir, HostRoot) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
        let r = HostRoot::open(&t.path().join("root")).unwrap();
        (t, r)
    }

    fn is_unsafe(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Unsafe { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn writes_reads_and_removes_inside_the_root() {
        let (t, r) = root();
        assert!(r.read("/etc/x.conf").unwrap().is_none());
        let (dir, meta) = r.write("/etc/x.conf", b"a = 1\n", 0o640, None).unwrap();
        assert_eq!(meta.mode, 0o640);
        assert_eq!(dir, Path::new("etc"));
        let now = r.read("/etc/x.conf").unwrap().unwrap();
        assert_eq!(now.content, b"a = 1\n");
        assert_eq!(now.meta.mode, 0o640);
        assert_eq!(now.meta.sha256, sha256_hex(b"a = 1\n"));
        r.sync_dirs(&[dir, PathBuf::new()].into_iter().collect())
            .unwrap();
        let names: Vec<_> = std::fs::read_dir(t.path().join("root/etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["x.conf"], "no temporary file is left");
        r.remove("/etc/x.conf").unwrap();
        assert!(r.read("/etc/x.conf").unwrap().is_none());
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused_and_nothing_is_written_outside() {
        let (t, r) = root();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("root/etc/evil")).unwrap();
        std::os::unix::fs::symlink("../../outside", t.path().join("root/etc/rel")).unwrap();
        for p in ["/etc/evil/x.conf", "/etc/rel/x.conf"] {
            let reason = is_unsafe(r.read(p));
            assert!(reason.contains("outside the host root"), "{reason}");
            assert!(r.write(p, b"x", 0o644, None).is_err());
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_symlinked_target_a_path_through_a_file_and_dot_dot_are_refused() {
        let (t, r) = root();
        std::fs::write(t.path().join("root/etc/passwd"), "root:x:0:0\n").unwrap();
        std::os::unix::fs::symlink("passwd", t.path().join("root/etc/link")).unwrap();
        assert!(is_unsafe(r.read("/etc/link")).contains("symbolic link"));
        assert!(is_unsafe(r.read("/etc/passwd/x")).contains("not a directory"));
        assert!(is_unsafe(r.read("/etc/../../x")).contains(".."));
        assert!(is_unsafe(r.read("/nodir/x")).contains("does not exist"));
        assert!(is_unsafe(r.read("/etc")).contains("not a regular file"));
        assert!(r.write("/etc/../x", b"x", 0o644, None).is_err());
        assert!(!t.path().join("x").exists());
    }
}
