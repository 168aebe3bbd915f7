//! minisign keys and signatures, interoperable with the stock `minisign` tool.
//! Signing uses the minisign crate and always produces prehashed (`ED`)
//! signatures; verification uses minisign-verify and refuses legacy (`Ed`)
//! signatures. Nothing is ever decided from an untrusted comment, and secret key
//! material and passwords are never logged or put into error messages.

use crate::error::{Error, Result};
use crate::fsutil;
use crate::limits;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An 8-byte minisign key id, shown as 16 upper-case hex digits like `minisign` does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    fn from_slice(s: &[u8]) -> Option<KeyId> {
        <[u8; 8]>::try_from(s).ok().map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A minisign public key read from a `.pub` file (or its text).
#[derive(Clone)]
pub struct PublicKey {
    id: KeyId,
    key: minisign_verify::PublicKey,
    text: String,
    source: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} from {})", self.id, self.source)
    }
}

impl PublicKey {
    /// Reads a public key file (`untrusted comment:` line, then the base64 key).
    pub fn from_file(path: &Path) -> Result<PublicKey> {
        let text = fsutil::read_text_limited(path, limits::MAX_SIGNATURE_BYTES).map_err(|e| {
            Error::Key {
                path: path.into(),
                reason: e.to_string(),
            }
        })?;
        Self::from_text(&text, &path.display().to_string()).map_err(|reason| Error::Key {
            path: path.into(),
            reason,
        })
    }

    /// Parses the text of a public key file; `source` names it in messages.
    pub fn from_text(text: &str, source: &str) -> std::result::Result<PublicKey, String> {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != 2 || !lines[0].starts_with("untrusted comment:") {
            return Err(
                "not a minisign public key (expected an 'untrusted comment:' line and a key line)"
                    .into(),
            );
        }
        let key = minisign_verify::PublicKey::from_base64(lines[1].trim())
            .map_err(|e| format!("not a minisign public key: {e}"))?;
        let mk = minisign::PublicKey::from_base64(lines[1].trim())
            .map_err(|e| format!("not a minisign public key: {e}"))?;
        let id = KeyId::from_slice(mk.keynum()).ok_or("malformed key id")?;
        Ok(PublicKey {
            id,
            key,
            text: format!("{}\n{}\n", lines[0], lines[1].trim()),
            source: source.into(),
        })
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The canonical text of the key file.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Verifies `sig` over `data`; `what` names the signed thing in errors.
    pub fn verify(&self, what: &str, data: &[u8], sig: &Signature) -> Result<()> {
        if sig.key_id != self.id {
            return Err(Error::signature(
                what,
                format!("signed by key {}, not by {}", sig.key_id, self.id),
            ));
        }
        self.key.verify(data, &sig.inner, false).map_err(|e| {
            Error::signature(
                what,
                format!("signature by key {} does not verify ({e})", self.id),
            )
        })
    }
}

/// A parsed minisign signature (prehashed only).
#[derive(Clone)]
pub struct Signature {
    key_id: KeyId,
    inner: minisign_verify::Signature,
    text: String,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(by {})", self.key_id)
    }
}

impl Signature {
    /// Parses signature text; refuses anything that is not exactly a prehashed
    /// minisign signature of four lines. `what` names the signed thing in errors.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Signature> {
        if bytes.len() as u64 > limits::MAX_SIGNATURE_BYTES {
            return Err(Error::Limit {
                what: format!("signature of {what}"),
                limit: limits::MAX_SIGNATURE_BYTES,
                unit: "bytes",
            });
        }
        let bad = |m: &str| Error::signature(what, format!("malformed signature: {m}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != 4 {
            return Err(bad("a minisign signature has exactly four lines"));
        }
        if lines[2].chars().any(char::is_control) {
            return Err(bad("control character in the trusted comment"));
        }
        let boxed = minisign::SignatureBox::from_string(text).map_err(|e| bad(&e.to_string()))?;
        if !boxed.is_prehashed() {
            return Err(Error::signature(
                what,
                "legacy (non-prehashed) minisign signature refused: sign again with a current minisign (without -l)",
            ));
        }
        let key_id = KeyId::from_slice(boxed.keynum()).ok_or_else(|| bad("key id"))?;
        let inner = minisign_verify::Signature::decode(text).map_err(|e| bad(&e.to_string()))?;
        Ok(Signature {
            key_id,
            inner,
            text: text.to_string(),
        })
    }

    /// Id of the key that made it (not yet verified).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The trusted comment (covered by the signature once verified).
    pub fn trusted_comment(&self) -> &str {
        self.inner.trusted_comment()
    }

    /// The signature file text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Where a secret key's password comes from.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    /// `--password-file`: the first line of this file.
    pub file: Option<PathBuf>,
}

impl PasswordSource {
    /// The password: from the file, else `AIRLOCK_PASSWORD`, else a prompt on the terminal.
    pub fn get(&self, prompt: &str) -> Result<String> {
        if let Some(path) = &self.file {
            let text = fsutil::read_text_limited(path, 4096)?;
            return Ok(text.lines().next().unwrap_or("").to_string());
        }
        if let Ok(p) = std::env::var("AIRLOCK_PASSWORD") {
            return Ok(p);
        }
        rpassword::prompt_password(prompt).map_err(|_| {
            Error::Invalid("a password is needed but there is no terminal to ask on: use --password-file FILE or AIRLOCK_PASSWORD".into())
        })
    }
}

/// A minisign secret key, decrypted and ready to sign.
pub struct SecretKey {
    id: KeyId,
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, redacted)", self.id)
    }
}

impl SecretKey {
    /// Reads a secret key file, asking `password` only if the key is encrypted.
    pub fn from_file(path: &Path, password: &PasswordSource) -> Result<SecretKey> {
        let key_err = |reason: String| Error::Key {
            path: path.into(),
            reason,
        };
        let text = fsutil::read_text_limited(path, limits::MAX_SECRET_KEY_BYTES)
            .map_err(|e| key_err(e.to_string()))?;
        let sk_box =
            minisign::SecretKeyBox::from_string(&text).map_err(|e| key_err(e.to_string()))?;
        let sk = match minisign::SecretKey::from_unencrypted_box(sk_box.clone()) {
            Ok(sk) => sk,
            Err(_) => {
                let pw = password.get(&format!("Password for {}: ", path.display()))?;
                minisign::SecretKey::from_box(sk_box, Some(pw))
                    .map_err(|e| key_err(format!("cannot decrypt the secret key ({e})")))?
            }
        };
        let pk = minisign::PublicKey::from_secret_key(&sk).map_err(|e| key_err(e.to_string()))?;
        let id =
            KeyId::from_slice(sk.keynum()).ok_or_else(|| key_err("malformed key id".into()))?;
        Ok(SecretKey { id, sk, pk })
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Signs everything `data` yields (prehashed) with `trusted_comment`, returning
    /// the `.minisig` text.
    pub fn sign(&self, data: impl Read, trusted_comment: &str) -> Result<String> {
        if trusted_comment.chars().any(char::is_control) {
            return Err(Error::Invalid("a trusted comment must be one line".into()));
        }
        let untrusted = format!("signature from airlock key {}", self.id);
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            data,
            Some(trusted_comment),
            Some(&untrusted),
        )
        .map_err(|e| Error::Invalid(format!("signing failed: {e}")))?;
        Ok(sig.into_string())
    }
}

/// A freshly generated key pair as file texts.
#[derive(Debug)]
pub struct GeneratedKey {
    /// Key id.
    pub id: KeyId,
    /// Public key file text.
    pub public: String,
    /// Secret key file text (never log it).
    pub secret: SecretText,
}

/// Secret key text whose `Debug` does not print it.
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

/// Generates a key pair; `password` `None` leaves the secret key unencrypted.
pub fn generate(password: Option<String>, label: &str) -> Result<GeneratedKey> {
    let fail = |e: minisign::PError| Error::Invalid(format!("key generation failed: {e}"));
    let kp = match password {
        Some(pw) => minisign::KeyPair::generate_encrypted_keypair(Some(pw)).map_err(fail)?,
        None => minisign::KeyPair::generate_unencrypted_keypair().map_err(fail)?,
    };
    let id = KeyId::from_slice(kp.pk.keynum())
        .ok_or_else(|| Error::Invalid("malformed key id".into()))?;
    let pk_b64 = kp.pk.to_base64();
    let public = format!("untrusted comment: airlock {label} public key {id}\n{pk_b64}\n");
    let secret = kp
        .sk
        .to_box(Some(&format!("airlock {label} secret key {id}")))
        .map_err(fail)?
        .into_string();
    Ok(GeneratedKey {
        id,
        public,
        secret: SecretText(secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SecretKey, PublicKey) {
        let g = generate(None, "test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, &g.secret.0).unwrap();
        let sk = SecretKey::from_file(&p, &PasswordSource::default()).unwrap();
        (sk, PublicKey::from_text(&g.public, "test").unwrap())
    }

    #[test]
    fn sign_and_verify() {
        let (sk, pk) = pair();
        assert_eq!(sk.id(), pk.id());
        let sig = sk.sign(&b"hello"[..], "airlock test").unwrap();
        let sig = Signature::parse("hello", sig.as_bytes()).unwrap();
        assert_eq!(sig.trusted_comment(), "airlock test");
        pk.verify("hello", b"hello", &sig).unwrap();
        assert!(pk.verify("hello", b"hellO", &sig).is_err());
        let (_, other) = pair();
        assert!(
            other
                .verify("hello", b"hello", &sig)
                .unwrap_err()
                .to_string()
                .contains("signed by key")
        );
    }

    #[test]
    fn tampered_trusted_comment_fails() {
        let (sk, pk) = pair();
        let sig = sk
            .sign(&b"x"[..], "seq=1")
            .unwrap()
            .replace("seq=1", "seq=9");
        let sig = Signature::parse("x", sig.as_bytes()).unwrap();
        assert!(pk.verify("x", b"x", &sig).is_err());
    }

    #[test]
    fn encrypted_keys_need_the_password() {
        let g = generate(Some("correct horse".into()), "test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (k, pw, wrong) = (
            dir.path().join("k"),
            dir.path().join("pw"),
            dir.path().join("wrong"),
        );
        std::fs::write(&k, &g.secret.0).unwrap();
        std::fs::write(&pw, "correct horse\n").unwrap();
        std::fs::write(&wrong, "nope\n").unwrap();
        let sk = SecretKey::from_file(&k, &PasswordSource { file: Some(pw) }).unwrap();
        assert_eq!(sk.id(), g.id);
        let err = SecretKey::from_file(&k, &PasswordSource { file: Some(wrong) })
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot decrypt"), "{err}");
        assert!(!err.contains("nope"));
    }

    #[test]
    fn malformed_signatures_are_refused() {
        for bad in [
            &b""[..],
            b"untrusted comment: x\n",
            &[0xff; 10],
            &[b'a'; 5000],
        ] {
            assert!(Signature::parse("x", bad).is_err());
        }
    }
}
