//! `init`: prepares a host from its profile. It creates `state_dir` (mode 0700),
//! an unencrypted host key pair (`host.key` 0600, `host.pub`) for signing ledger
//! checkpoints unattended, and the ledger. It never replaces anything: run again on
//! a prepared host it checks that the key pair and the ledger belong together and
//! changes nothing; a partial state (a key without a ledger, or the reverse) is
//! refused, because silently starting a new ledger would hide a lost one.

use crate::error::{Error, Result};
use airlock_format::fsutil;
use airlock_format::keys::{self, PasswordSource, PublicKey, SecretKey};
use airlock_format::output::Output;
use airlock_format::profile::{Profile, locate};
use airlock_ledger::Ledger;
use std::path::Path;

/// Runs `init` for the profile at `profile` (or the default location).
pub fn run(profile: Option<&Path>, a: &crate::cli::InitArgs, out: &Output) -> Result<()> {
    let profile = Profile::load(&locate(profile))?;
    let state = profile.state_dir();
    let (key_path, pub_path, db) = (
        profile.host_key_path(),
        profile.host_pub_path(),
        profile.ledger_path(),
    );
    let present = [&key_path, &pub_path, &db].map(|p| p.exists());
    let state_err = |reason: String, hint: &str| Error::State {
        dir: state.to_path_buf(),
        reason,
        hint: hint.into(),
    };
    let (created, ledger) = match present {
        [false, false, false] => {
            create_private_dir(state)?;
            let key = keys::generate(None, "host")?;
            fsutil::create_private(&key_path, key.secret.0.as_bytes())?;
            fsutil::write_atomic(&pub_path, key.public.as_bytes(), Some(0o644))?;
            let pk = PublicKey::from_file(&pub_path)?;
            let ledger = Ledger::create(
                &db,
                profile.host(),
                &pk,
                &airlock_ledger::actor("airlock-applier init"),
            )?;
            (true, ledger)
        }
        [true, true, true] => {
            let sk = SecretKey::from_file(&key_path, &PasswordSource::default())?;
            let pk = PublicKey::from_file(&pub_path)?;
            let ledger = Ledger::open_read_only(&db)?;
            let named = ledger.host_key()?;
            if sk.id() != pk.id() || pk.id() != named {
                return Err(state_err(
                    format!(
                        "host.key is key {}, host.pub is key {}, and the ledger's checkpoints are signed by key {named}",
                        sk.id(),
                        pk.id()
                    ),
                    "put back the host key pair this ledger was created with; never replace a host key in place",
                ));
            }
            if ledger.host() != profile.host() {
                return Err(state_err(
                    format!(
                        "the ledger belongs to host {}, but the profile says host = \"{}\"",
                        ledger.host(),
                        profile.host()
                    ),
                    "set host in the profile back to the ledger's host, or point state_dir at this host's own directory",
                ));
            }
            (false, ledger)
        }
        _ => {
            let names = ["host.key", "host.pub", "ledger.db"];
            let (have, missing): (Vec<_>, Vec<_>) =
                names.iter().zip(present).partition(|(_, p)| *p);
            let list =
                |v: Vec<(&&str, bool)>| v.iter().map(|(n, _)| **n).collect::<Vec<_>>().join(", ");
            return Err(state_err(
                format!("it holds {} but not {}", list(have), list(missing)),
                "if this host was never initialised, move those files away and run init again; if a ledger existed, restore it from a copy: init never starts a new ledger beside an old key",
            ));
        }
    };
    let head = ledger.head()?;
    let key_id = ledger.host_key()?;
    if a.json {
        out.json(&serde_json::json!({
            "created": created,
            "state_dir": state.display().to_string(),
            "host": ledger.host(),
            "ledger": ledger.id(),
            "entries": head.seq,
            "host_key": key_id.to_string(),
            "host_key_file": key_path.display().to_string(),
            "host_pub_file": pub_path.display().to_string(),
        }));
        return Ok(());
    }
    if created {
        out.line(format!(
            "initialised host {} in {}",
            ledger.host(),
            state.display()
        ));
    } else {
        out.line(format!(
            "host {} is already initialised in {}; nothing changed",
            ledger.host(),
            state.display()
        ));
    }
    let entries = if head.seq == 1 {
        "1 entry".to_string()
    } else {
        format!("{} entries", head.seq)
    };
    out.line(format!(
        "  ledger      {} ({}, {entries})",
        db.display(),
        ledger.id()
    ));
    out.line(format!(
        "  host key    {} (key {key_id}, mode 0600)",
        key_path.display()
    ));
    out.line(format!(
        "  public key  {}: give auditors a copy; it checks this host's ledger checkpoints",
        pub_path.display()
    ));
    Ok(())
}

/// Creates `dir` and its missing parents; `dir` itself gets mode 0700.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| airlock_format::Error::io("create", dir, e))?;
    Ok(())
}
