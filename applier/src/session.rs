//! One changing command's hold on the host: the profile, the host root, the
//! ledger, and the lock, taken before anything is read for a plan; opening a
//! session first finishes or undoes a run a crash interrupted.

use crate::desired::Desired;
use crate::engine::{self, Context};
use crate::error::Result;
use crate::plan::{self, BundleRef, Header, Host, Plan};
use crate::root::HostRoot;
use crate::state::{Lock, State, StateDir};
use crate::systemd::Systemd;
use airlock_format::output::Output;
use airlock_format::profile::{Profile, locate};
use airlock_ledger::Ledger;
use std::collections::BTreeSet;
use std::path::Path;

/// An open, locked host.
#[derive(Debug)]
pub struct Session {
    /// The host profile.
    pub profile: Profile,
    /// SHA-256 of the profile's bytes (bound into plans).
    pub profile_sha256: String,
    /// The host root.
    pub root: HostRoot,
    /// Its systemd.
    pub systemd: Systemd,
    /// The state directory.
    pub store: StateDir,
    /// The ledger.
    pub ledger: Ledger,
    /// Who acts, for the ledger.
    pub actor: String,
    _lock: Lock,
}

impl Session {
    /// Opens the host of the profile at `profile` (or the default location), takes
    /// the lock, and recovers an interrupted run.
    pub fn open(profile: Option<&Path>, command: &str, out: &Output) -> Result<Session> {
        let path = locate(profile);
        let profile = Profile::load(&path)?;
        let profile_sha256 = profile.sha256().to_string();
        let ledger = crate::verify::open_ledger(&profile)?;
        let store = StateDir::new(profile.state_dir());
        let lock = store.lock()?;
        let root = HostRoot::open(profile.root())?;
        let systemd = Systemd::new(profile.root(), root.is_live());
        let mut s = Session {
            profile,
            profile_sha256,
            root,
            systemd,
            store,
            ledger,
            actor: airlock_ledger::actor(&format!("airlock-applier {command}")),
            _lock: lock,
        };
        engine::recover(&mut s.context(out))?;
        Ok(s)
    }

    /// The plan that brings this host from `state` to `desired`, for `command`.
    pub fn plan(
        &self,
        state: &State,
        desired: &Desired,
        command: &'static str,
        bundle: Option<BundleRef>,
        scope: Option<BTreeSet<String>>,
    ) -> Result<Plan> {
        plan::make(
            &Host {
                root: &self.root,
                systemd: &self.systemd,
                store: &self.store,
                state,
            },
            desired,
            Header {
                command,
                host: self.profile.host().into(),
                profile_sha256: self.profile_sha256.clone(),
                bundle,
                scope,
                now: airlock_format::time::format(&airlock_format::time::now()),
            },
        )
    }

    /// The engine's view of this session.
    pub fn context<'a>(&'a mut self, out: &'a Output) -> Context<'a> {
        Context {
            profile: &self.profile,
            root: &self.root,
            systemd: &self.systemd,
            store: &self.store,
            ledger: &mut self.ledger,
            actor: self.actor.clone(),
            out,
        }
    }
}
