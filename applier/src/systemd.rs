//! `service-disable` through `systemctl`: `--root=ROOT mask UNIT` on a host root
//! that is not the running system (no daemon is contacted), `mask --now UNIT`
//! when the root is `/`. Undo is `unmask` (the unit's enablement links are left
//! alone by `mask`, so unmasking gives back the enabled/disabled state), plus
//! `start` on a live root when the unit was running before.
//!
//! The program is `systemctl` from `PATH`, or `$AIRLOCK_SYSTEMCTL`.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::process::Command;

/// Environment variable naming the `systemctl` program to run.
pub const SYSTEMCTL_ENV: &str = "AIRLOCK_SYSTEMCTL";

/// The systemd of one host root.
#[derive(Debug, Clone)]
pub struct Systemd {
    root: PathBuf,
    live: bool,
    program: PathBuf,
}

impl Systemd {
    /// For the host root `root`; `live` when it is the running system.
    pub fn new(root: &std::path::Path, live: bool) -> Systemd {
        let program = std::env::var_os(SYSTEMCTL_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("systemctl"));
        Systemd {
            root: root.to_path_buf(),
            live,
            program,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        if !self.live {
            c.arg(format!("--root={}", self.root.display()));
        }
        c.env("SYSTEMD_PAGER", "").env("SYSTEMD_COLORS", "0");
        c
    }

    /// `systemctl is-enabled UNIT`: `enabled`, `disabled`, `static`, `masked`, …,
    /// or `not-found` when systemd knows no such unit.
    pub fn is_enabled(&self, unit: &str) -> Result<String> {
        let out = self
            .command()
            .args(["is-enabled", "--", unit])
            .output()
            .map_err(|e| self.spawn_error(e))?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(if state.is_empty() {
            "not-found".into()
        } else {
            state
        })
    }

    /// True when the unit is masked.
    pub fn is_masked(&self, unit: &str) -> Result<bool> {
        Ok(self.is_enabled(unit)?.starts_with("masked"))
    }

    /// Whether the unit is running (always false off-line).
    pub fn is_active(&self, unit: &str) -> Result<bool> {
        if !self.live {
            return Ok(false);
        }
        let out = self
            .command()
            .args(["is-active", "--quiet", "--", unit])
            .output()
            .map_err(|e| self.spawn_error(e))?;
        Ok(out.status.success())
    }

    /// Masks (and on a live root stops) the unit.
    pub fn mask(&self, unit: &str) -> Result<()> {
        if self.live {
            self.run(&["mask", "--now", "--", unit])
        } else {
            self.run(&["mask", "--", unit])
        }
    }

    /// Unmasks the unit, and starts it again when it was running.
    pub fn unmask(&self, unit: &str, start: bool) -> Result<()> {
        self.run(&["unmask", "--", unit])?;
        if start && self.live {
            self.run(&["start", "--", unit])?;
        }
        Ok(())
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Tool {
            what: format!("systemctl {}", args.join(" ")),
            reason: format!(
                "it failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            hint: "check the unit with systemctl status".into(),
        })
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        Error::Tool {
            what: format!("running {}", self.program.display()),
            reason: format!("it could not be started: {e}"),
            hint: format!(
                "service-disable needs systemd's systemctl; install it or set {SYSTEMCTL_ENV}"
            ),
        }
    }
}
