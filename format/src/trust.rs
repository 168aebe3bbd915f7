//! Trust roots: the explicitly configured public keys for each role. There are no
//! built-in keys; a role with no configured key trusts nothing (fail closed).

use crate::error::{Error, Result};
use crate::keys::{KeyId, PublicKey};
use std::path::PathBuf;

/// The public keys trusted for each signing role.
#[derive(Debug, Clone, Default)]
pub struct TrustRoots {
    /// Keys trusted to sign feeds and mitigation documents.
    pub vendor: Vec<PublicKey>,
    /// Keys trusted to sign bundle manifests.
    pub release: Vec<PublicKey>,
}

impl TrustRoots {
    /// Loads the given key files.
    pub fn from_files(vendor: &[PathBuf], release: &[PathBuf]) -> Result<TrustRoots> {
        let load = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| PublicKey::from_file(p))
                .collect::<Result<Vec<_>>>()
        };
        Ok(TrustRoots {
            vendor: load(vendor)?,
            release: load(release)?,
        })
    }

    /// The vendor key with `id`, or a verification error naming `what`.
    pub fn vendor_key(&self, what: &str, id: KeyId) -> Result<&PublicKey> {
        find(&self.vendor, "vendor", what, id)
    }

    /// The release key with `id`, or a verification error naming `what`.
    pub fn release_key(&self, what: &str, id: KeyId) -> Result<&PublicKey> {
        find(&self.release, "release", what, id)
    }
}

fn find<'a>(keys: &'a [PublicKey], role: &str, what: &str, id: KeyId) -> Result<&'a PublicKey> {
    if keys.is_empty() {
        return Err(Error::signature(
            what,
            format!("no {role} key is configured, so nothing is trusted"),
        ));
    }
    keys.iter().find(|k| k.id() == id).ok_or_else(|| {
        Error::signature(
            what,
            format!("signed by key {id}, which is not a trusted {role} key"),
        )
    })
}
