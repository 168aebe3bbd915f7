//! Signed checkpoints: a short text naming the ledger, its host, its size and head
//! hash at a time, signed with the host's minisign key. The signature's trusted
//! comment repeats every field, so a checkpoint is checked field by field and
//! nothing is taken from the untrusted comment. A checkpoint file `F` sits beside
//! its signature `F.minisig`, so stock `minisign -V` can check it too.

use crate::entry::{Digest, parse_ts, printable};
use crate::error::{Error, Result};
use airlock_format::fsutil;
use airlock_format::keys::{KeyId, PublicKey, SecretKey, Signature};
use std::path::{Path, PathBuf};

/// First line of every checkpoint body (version 1).
pub const HEADER: &str = "airlock-ledger checkpoint v1";
/// Largest checkpoint body accepted, in bytes.
pub const MAX_BODY_BYTES: u64 = 1024;

/// A parsed checkpoint. Parsing checks the form only; [`Checkpoint::verify`] checks
/// the signature against a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The ledger id.
    pub ledger: String,
    /// The host the ledger belongs to.
    pub host: String,
    /// Number of entries covered (the head's seq).
    pub size: u64,
    /// Hash of entry `size`.
    pub head: Digest,
    /// When it was signed (the ledger's time format).
    pub time: String,
    body: String,
    signature: String,
}

impl Checkpoint {
    /// Signs a new checkpoint with the host key.
    pub(crate) fn sign(
        key: &SecretKey,
        ledger: &str,
        host: &str,
        size: u64,
        head: Digest,
        time: &str,
    ) -> Result<Checkpoint> {
        let body = format!(
            "{HEADER}\nledger {ledger}\nhost {host}\nsize {size}\nhead {head}\ntime {time}\n"
        );
        let mut cp = Checkpoint::parse_body(&body)?;
        cp.signature = key.sign(body.as_bytes(), &cp.trusted_comment())?;
        cp.body = body;
        Ok(cp)
    }

    /// Parses a checkpoint body and its `.minisig` text (form only, no key check).
    pub fn parse(body: &str, signature: &str) -> Result<Checkpoint> {
        let mut cp = Checkpoint::parse_body(body)?;
        Signature::parse("checkpoint signature", signature.as_bytes())?;
        cp.signature = signature.to_string();
        Ok(cp)
    }

    /// Reads a checkpoint file and the signature beside it (`FILE.minisig`).
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let body = fsutil::read_text_limited(path, MAX_BODY_BYTES)?;
        let sig_path = signature_path(path);
        let sig =
            fsutil::read_text_limited(&sig_path, airlock_format::limits::MAX_SIGNATURE_BYTES)?;
        Checkpoint::parse(&body, &sig).map_err(|e| match e {
            Error::Checkpoint { reason, .. } => Error::Checkpoint {
                what: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Writes the body to `path` and the signature to `path.minisig`, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        fsutil::write_atomic(&signature_path(path), self.signature.as_bytes(), None)?;
        fsutil::write_atomic(path, self.body.as_bytes(), None)?;
        Ok(())
    }

    /// Checks that `key` signed this checkpoint and that the signed trusted comment
    /// names exactly the body's fields.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        let what = format!("checkpoint of ledger {} at size {}", self.ledger, self.size);
        let reason = |e: airlock_format::Error| match e {
            airlock_format::Error::Signature { reason, .. } => reason,
            other => other.to_string(),
        };
        let sig = Signature::parse(&what, self.signature.as_bytes())
            .map_err(|e| self.refuse(reason(e)))?;
        key.verify(&what, self.body.as_bytes(), &sig)
            .map_err(|e| self.refuse(reason(e)))?;
        if sig.trusted_comment() != self.trusted_comment() {
            return Err(self.refuse(format!(
                "the signed trusted comment '{}' does not match the checkpoint text",
                printable(sig.trusted_comment())
            )));
        }
        Ok(())
    }

    /// The key id the signature claims (unverified until [`Checkpoint::verify`]).
    pub fn key_id(&self) -> Option<KeyId> {
        Signature::parse("checkpoint signature", self.signature.as_bytes())
            .ok()
            .map(|s| s.key_id())
    }

    /// The signed text.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The `.minisig` text.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    fn trusted_comment(&self) -> String {
        format!(
            "airlock-checkpoint ledger={} host={} size={} head={} time={}",
            self.ledger, self.host, self.size, self.head, self.time
        )
    }

    fn refuse(&self, reason: String) -> Error {
        Error::Checkpoint {
            what: format!("of ledger {} at size {}", self.ledger, self.size),
            reason,
        }
    }

    fn parse_body(body: &str) -> Result<Checkpoint> {
        let bad = |reason: String| Error::Checkpoint {
            what: "text".into(),
            reason,
        };
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(bad(format!("over the limit of {MAX_BODY_BYTES} bytes")));
        }
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad("does not end with a newline".into()));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [header, ledger, host, size, head, time] = lines[..] else {
            return Err(bad(format!(
                "has {} lines; a checkpoint has exactly 6",
                lines.len()
            )));
        };
        if header != HEADER {
            return Err(bad(format!("does not start with '{HEADER}'")));
        }
        let field = |line: &str, name: &str| -> Result<String> {
            line.strip_prefix(name)
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| {
                    bad(format!(
                        "expected a '{name}' line, found '{}'",
                        printable(line)
                    ))
                })
        };
        let ledger = field(ledger, "ledger")?;
        if !airlock_format::hash::is_lower_hex(&ledger, 32) {
            return Err(bad("the ledger id is not 32 lowercase hex digits".into()));
        }
        let host = field(host, "host")?;
        crate::entry::check_name("host", &host).map_err(bad)?;
        let size_text = field(size, "size")?;
        let size: u64 = size_text
            .parse()
            .ok()
            .filter(|n: &u64| *n >= 1 && size_text == n.to_string())
            .ok_or_else(|| {
                bad(format!(
                    "size '{}' is not a positive number",
                    printable(&size_text)
                ))
            })?;
        let head_text = field(head, "head")?;
        let head = Digest::from_hex(&head_text)
            .ok_or_else(|| bad("head is not 64 lowercase hex digits".into()))?;
        let time = field(time, "time")?;
        if parse_ts(&time).is_none() {
            return Err(bad(format!(
                "time '{}' is not a ledger time",
                printable(&time)
            )));
        }
        Ok(Checkpoint {
            ledger,
            host,
            size,
            head,
            time,
            body: body.to_string(),
            signature: String::new(),
        })
    }
}

/// Where the signature of checkpoint file `path` lives: `path.minisig`.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".minisig");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> String {
        format!(
            "{HEADER}\nledger {}\nhost exch01\nsize 3\nhead {}\ntime 2026-11-28T08:00:00.000000Z\n",
            "ab".repeat(16),
            "cd".repeat(32)
        )
    }

    #[test]
    fn parses_the_exact_form_only() {
        let cp = Checkpoint::parse_body(&body()).unwrap();
        assert_eq!((cp.size, cp.host.as_str()), (3, "exch01"));
        for (from, to) in [
            ("size 3", "size 03"),
            ("size 3", "size 0"),
            ("size 3", "size -3"),
            ("host exch01", "host exch 01"),
            ("host exch01", "hostexch01"),
            (
                "time 2026-11-28T08:00:00.000000Z",
                "time 2026-11-28T08:00:00Z",
            ),
            ("v1\n", "v2\n"),
            ("\ntime", "\nextra x\ntime"),
        ] {
            let b = body().replacen(from, to, 1);
            assert!(Checkpoint::parse_body(&b).is_err(), "{to}");
        }
        assert!(Checkpoint::parse_body(body().trim_end()).is_err());
        assert!(Checkpoint::parse_body(&"x".repeat(2000)).is_err());
    }
}
