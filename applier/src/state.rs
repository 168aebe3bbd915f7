//! What airlock has done to this host, kept in `state_dir`:
//!
//! - `state.json`: the applied mitigations (with their actions, so that any
//!   subset can be re-derived), every managed file with its original pre-image
//!   (`base`) and what airlock last wrote, every masked unit with its state
//!   before, and the mitigations held back by a rollback. Replaced atomically.
//! - `preimages/SHA256`: the content of every pre-image, content-addressed,
//!   fsynced before the first write of the run that needs it, checked on read.
//! - `lock`: held (`flock`) by the one applier that may change the host.

use crate::error::{Error, Result};
use crate::root::FileMeta;
use airlock_format::fsutil;
use airlock_format::hash::{is_sha256_hex, sha256_hex};
use airlock_format::mitigation::{Action, ConfigFormat};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest `state.json` or journal read back (256 MiB).
pub const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// The applier's record of this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Applied mitigations by id.
    pub applied: BTreeMap<String, Applied>,
    /// Managed files by action path.
    pub files: BTreeMap<String, ManagedFile>,
    /// Masked units by name.
    pub units: BTreeMap<String, ManagedUnit>,
    /// Mitigations rolled back by the operator: id → the revision that stays off.
    /// A newer revision applies again.
    pub held: BTreeMap<String, u64>,
}

/// One applied mitigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    /// Its revision.
    pub revision: u64,
    /// Its title.
    pub title: String,
    /// The bundle it came from.
    pub bundle: String,
    /// When the run that applied this revision committed.
    pub applied_at: String,
    /// Its actions, as applied.
    pub actions: Vec<Step>,
}

/// One action of an applied mitigation, as the engine replays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Place a file.
    File {
        /// Action path.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Content.
        content: String,
    },
    /// Set one key.
    ConfigSet {
        /// Action path.
        path: String,
        /// `ini` or `keyvalue`.
        format: EditFormat,
        /// ini section.
        section: Option<String>,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Mask a unit.
    ServiceDisable {
        /// Unit name.
        unit: String,
    },
    /// A mitigation's url-blocks for the host's web server: the whole include
    /// file (nginx, apache) or its rules inside `web.config` (IIS).
    UrlRules {
        /// `nginx`, `apache` or `iis`.
        server: WebKind,
        /// The include file or `web.config`.
        path: String,
        /// The mitigation the rules belong to (IIS rule names carry it).
        mitigation: String,
        /// The url-blocks, in document order.
        blocks: Vec<crate::web::Block>,
    },
}

/// A web server airlock renders url-blocks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebKind {
    /// A managed include file of `if` rules.
    Nginx,
    /// A managed include file of mod_rewrite rules.
    Apache,
    /// Rules inside `web.config`.
    Iis,
}

impl WebKind {
    /// The profile's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            WebKind::Nginx => "nginx",
            WebKind::Apache => "apache",
            WebKind::Iis => "iis",
        }
    }
}

impl Step {
    /// The step of a document action; `None` for `url-block`, which is rendered per
    /// mitigation for the host's web server (see `desired`).
    pub fn from_action(a: &Action) -> Option<Step> {
        Some(match a {
            Action::UrlBlock(_) => return None,
            Action::ServiceDisable { unit } => Step::ServiceDisable { unit: unit.clone() },
            Action::File {
                path,
                mode,
                content,
            } => Step::File {
                path: path.clone(),
                mode: *mode,
                content: content.clone(),
            },
            Action::ConfigSet {
                path,
                format,
                section,
                key,
                value,
            } => Step::ConfigSet {
                path: path.clone(),
                format: match format {
                    ConfigFormat::Ini => EditFormat::Ini,
                    ConfigFormat::KeyValue => EditFormat::Keyvalue,
                },
                section: section.clone(),
                key: key.clone(),
                value: value.clone(),
            },
        })
    }

    /// The file this step changes, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Step::File { path, .. }
            | Step::ConfigSet { path, .. }
            | Step::UrlRules { path, .. } => Some(path),
            Step::ServiceDisable { .. } => None,
        }
    }

    /// One line for people: `file /etc/x (0644)`.
    pub fn describe(&self) -> String {
        match self {
            Step::File { path, mode, .. } => format!("file {path} (mode {mode:04o})"),
            Step::ConfigSet {
                path,
                section,
                key,
                value,
                ..
            } => match section {
                Some(s) => format!("config-set {path} [{s}] {key} = {value}"),
                None => format!("config-set {path} {key} = {value}"),
            },
            Step::ServiceDisable { unit } => format!("service-disable {unit}"),
            Step::UrlRules {
                server,
                path,
                blocks,
                ..
            } => {
                let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
                format!(
                    "url-block for {} in {path}: {}",
                    server.as_str(),
                    names.join(", ")
                )
            }
        }
    }
}

/// The syntax of a `config-set` file, as `state.json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EditFormat {
    /// `[section]` and `key = value` lines.
    Ini,
    /// `key = value` or `key value` lines.
    Keyvalue,
}

impl EditFormat {
    /// The editor's format.
    pub fn config(self) -> ConfigFormat {
        match self {
            EditFormat::Ini => ConfigFormat::Ini,
            EditFormat::Keyvalue => ConfigFormat::KeyValue,
        }
    }
}

/// A file airlock manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedFile {
    /// What was there before airlock first changed it (`None`: nothing); its
    /// content is in `preimages/`.
    pub base: Option<FileMeta>,
    /// What airlock last wrote.
    pub written: FileMeta,
}

/// A unit airlock masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedUnit {
    /// `systemctl is-enabled` before airlock masked it.
    pub enabled_before: String,
    /// Whether it was running (live root only).
    pub active_before: bool,
}

/// The files of the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory of a profile.
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// `journal.json`.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.json")
    }

    fn preimages(&self) -> PathBuf {
        self.dir.join("preimages")
    }

    /// The recorded state (empty before the first run).
    pub fn load(&self) -> Result<State> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(State::default());
        }
        let bytes = fsutil::read_limited(&path, MAX_STATE_BYTES)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::State {
            dir: self.dir.clone(),
            reason: format!("state.json cannot be read: {e}"),
            hint: "restore state.json from a backup of this host; airlock-ledger log shows what was applied".into(),
        })
    }

    /// Replaces `state.json` atomically.
    pub fn save(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::State {
            dir: self.dir.clone(),
            reason: format!("state cannot be encoded: {e}"),
            hint: "report this as a bug".into(),
        })?;
        fsutil::write_atomic(&self.state_path(), &bytes, Some(0o600))?;
        Ok(())
    }

    /// Stores `content`, whose SHA-256 (computed when it was read) is `sha256`, as a
    /// pre-image (no-op when already stored); fsynced. [`StateDir::preimage`]
    /// checks the content against its name on every read.
    pub fn keep_preimage(&self, sha256: &str, content: &[u8]) -> Result<()> {
        if !is_sha256_hex(sha256) {
            return Err(Error::State {
                dir: self.dir.clone(),
                reason: format!("{sha256} is not a SHA-256 pre-image name"),
                hint: "report this as a bug".into(),
            });
        }
        let dir = self.preimages();
        let path = dir.join(sha256);
        if path.exists() {
            return Ok(());
        }
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| airlock_format::Error::io("create", &dir, e))?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(airlock_format::fsutil::TEMP_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| airlock_format::Error::io("create a temporary file in", &dir, e))?;
        tmp.as_file_mut()
            .write_all(content)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| airlock_format::Error::io("write", &path, e))?;
        tmp.persist(&path)
            .map_err(|e| airlock_format::Error::io("rename into place", &path, e.error))?;
        Ok(())
    }

    /// Fsyncs `preimages/` after [`StateDir::keep_preimage`] calls.
    pub fn sync_preimages(&self) -> Result<()> {
        let dir = self.preimages();
        if dir.exists() {
            fsutil::sync_dir(&dir)?;
        }
        Ok(())
    }

    /// The stored pre-image with this SHA-256, checked.
    pub fn preimage(&self, sha256: &str) -> Result<Vec<u8>> {
        let broken = |reason: String| Error::State {
            dir: self.dir.clone(),
            reason,
            hint:
                "the pre-image store was changed outside airlock; restore state_dir from a backup"
                    .into(),
        };
        if !is_sha256_hex(sha256) {
            return Err(broken(format!("{sha256} is not a SHA-256 pre-image name")));
        }
        let path = self.preimages().join(sha256);
        let bytes = fsutil::read_limited(&path, crate::root::MAX_MANAGED_FILE_BYTES)?;
        if sha256_hex(&bytes) != sha256 {
            return Err(broken(format!(
                "pre-image {} does not match its SHA-256",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Removes every stored pre-image not in `used` (after a commit).
    pub fn drop_preimages_except(&self, used: &std::collections::BTreeSet<&str>) -> Result<()> {
        let dir = self.preimages();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if is_sha256_hex(&name) && !used.contains(name.as_ref()) {
                std::fs::remove_file(e.path())
                    .map_err(|err| airlock_format::Error::io("remove", &e.path(), err))?;
            }
        }
        Ok(())
    }

    /// Removes the temporary files a crashed run left in the state directory.
    pub fn sweep_temps(&self) -> Result<()> {
        for dir in [self.dir.clone(), self.preimages()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(airlock_format::fsutil::TEMP_PREFIX)
                {
                    std::fs::remove_file(e.path())
                        .map_err(|err| airlock_format::Error::io("remove", &e.path(), err))?;
                }
            }
        }
        Ok(())
    }

    /// Takes the applier's lock; refused when another applier holds it.
    pub fn lock(&self) -> Result<Lock> {
        let path = self.dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| airlock_format::Error::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(Error::Busy {
                    holder: match holder.trim() {
                        "" => format!("{} is locked", path.display()),
                        h => h.to_string(),
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(airlock_format::Error::io("lock", &path, e).into());
            }
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(Lock { _file: file })
    }
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}
