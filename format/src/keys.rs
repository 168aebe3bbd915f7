//! minisign keys and signatures, interoperable with the stock `minisign` tool.
//! Only prehashed (`ED`) signatures are made and accepted; legacy (`Ed`)
//! signatures are refused. Verification and signing are done here with ed25519-dalek over the
//! BLAKE2b-512 prehash (deterministic, and fast enough to re-check thousands of
//! documents); the minisign crate generates keys and decrypts password-protected
//! secret keys. Nothing is ever decided from an untrusted comment, and secret key
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
    key: ed25519_dalek::VerifyingKey,
    text: String,
    source: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} from {})", self.id, self.source)
    }
}

/// Why a key file could not be read, without repeating its path (the key error
/// names it already).
fn read_failure(e: Error) -> String {
    match e {
        Error::Io { action, source, .. } => format!("cannot {action} it: {source}"),
        e => e.to_string(),
    }
}

impl PublicKey {
    /// Reads a public key file (`untrusted comment:` line, then the base64 key).
    pub fn from_file(path: &Path) -> Result<PublicKey> {
        let key_err = |reason: String| Error::Key {
            path: path.into(),
            reason,
        };
        let text = fsutil::read_text_limited(path, limits::MAX_SIGNATURE_BYTES)
            .map_err(|e| key_err(read_failure(e)))?;
        Self::from_text(&text, &path.display().to_string()).map_err(key_err)
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
        let bin = base64_decode(lines[1].trim()).ok_or("not a minisign public key (bad base64)")?;
        if bin.len() != 42 || &bin[..2] != b"Ed" {
            return Err("not a minisign Ed25519 public key".into());
        }
        let id = KeyId::from_slice(&bin[2..10]).ok_or("malformed key id")?;
        let raw: [u8; 32] = bin[10..42].try_into().map_err(|_| "malformed key")?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|_| "not a valid Ed25519 public key")?;
        if key.is_weak() {
            return Err("a weak (small-order) Ed25519 public key is refused".into());
        }
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

    /// Verifies `sig` over `data`: the Ed25519 signature of the BLAKE2b-512 prehash,
    /// then the global signature over it and the trusted comment (strict Ed25519
    /// verification). `what` names the signed thing in errors.
    pub fn verify(&self, what: &str, data: &[u8], sig: &Signature) -> Result<()> {
        use blake2::Digest;
        if sig.key_id != self.id {
            return Err(Error::signature(
                what,
                format!("signed by key {}, not by {}", sig.key_id, self.id),
            ));
        }
        let prehash = blake2::Blake2b512::digest(data);
        let mut global = sig.signature.to_bytes().to_vec();
        global.extend_from_slice(sig.trusted_comment.as_bytes());
        let ok = self.key.verify_strict(&prehash, &sig.signature).is_ok()
            && self.key.verify_strict(&global, &sig.global).is_ok();
        if ok {
            Ok(())
        } else {
            Err(Error::signature(
                what,
                format!("signature by key {} does not verify", self.id),
            ))
        }
    }
}

/// A parsed minisign signature (prehashed only; legacy signatures are refused).
#[derive(Clone)]
pub struct Signature {
    key_id: KeyId,
    signature: ed25519_dalek::Signature,
    global: ed25519_dalek::Signature,
    untrusted_comment: String,
    trusted_comment: String,
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
        if !lines[0].starts_with("untrusted comment:") {
            return Err(bad("the first line must be an untrusted comment"));
        }
        let trusted_comment = lines[2]
            .strip_prefix("trusted comment: ")
            .ok_or_else(|| bad("the third line must be a trusted comment"))?;
        if trusted_comment.chars().any(|c| c.is_control() && c != '\t') {
            return Err(bad("control character in the trusted comment"));
        }
        let bin = base64_decode(lines[1]).ok_or_else(|| bad("the signature line is not base64"))?;
        match bin.get(..2) {
            Some(b"ED") => {}
            Some(b"Ed") => {
                return Err(Error::signature(
                    what,
                    "legacy (non-prehashed) minisign signature refused: sign again with a current minisign (without -l)",
                ));
            }
            _ => return Err(bad("unsupported signature algorithm")),
        }
        if bin.len() != 74 {
            return Err(bad("the signature line has the wrong length"));
        }
        let global = base64_decode(lines[3])
            .ok_or_else(|| bad("the global signature line is not base64"))?;
        let to_sig = |b: &[u8]| {
            b.try_into()
                .ok()
                .map(|a: [u8; 64]| ed25519_dalek::Signature::from_bytes(&a))
        };
        Ok(Signature {
            key_id: KeyId::from_slice(&bin[2..10]).ok_or_else(|| bad("key id"))?,
            signature: to_sig(&bin[10..74]).ok_or_else(|| bad("signature"))?,
            global: to_sig(&global)
                .ok_or_else(|| bad("the global signature has the wrong length"))?,
            untrusted_comment: lines[0].to_string(),
            trusted_comment: trusted_comment.to_string(),
            text: text.to_string(),
        })
    }

    /// Id of the key that made it (not yet verified).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The untrusted comment line (not covered by the signature; never trusted).
    pub fn untrusted_comment(&self) -> &str {
        &self.untrusted_comment
    }

    /// The trusted comment (covered by the signature once verified).
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// The signature file text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Where a secret key's password comes from; also the `--password-file` option
/// of every command that opens a secret key (flattened into its clap definition).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PasswordSource {
    /// Read the secret key's password from the first line of FILE (else
    /// AIRLOCK_PASSWORD, else a prompt; an unencrypted key needs none).
    #[arg(long = "password-file", id = "password_file", value_name = "FILE")]
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
///
/// Signatures are made here rather than by `minisign::sign`, which mixes a random
/// nonce into every signature: airlock needs plain deterministic Ed25519 (RFC 8032)
/// so that the same bundle inputs give byte-identical files. The output is the
/// same prehashed (`ED`) format the stock tool writes and verifies.
pub struct SecretKey {
    id: KeyId,
    signing: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, redacted)", self.id)
    }
}

/// Offset of the Ed25519 seed in a decoded minisign secret key: signature
/// algorithm, KDF algorithm, checksum algorithm (2 bytes each), KDF salt (32),
/// opslimit and memlimit (8 each), key id (8); then seed (32), public key (32), checksum.
const SK_SEED_OFFSET: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8;

impl SecretKey {
    /// Reads a secret key file, asking `password` only if the key is encrypted.
    pub fn from_file(path: &Path, password: &PasswordSource) -> Result<SecretKey> {
        let key_err = |reason: String| Error::Key {
            path: path.into(),
            reason,
        };
        let text = fsutil::read_text_limited(path, limits::MAX_SECRET_KEY_BYTES)
            .map_err(|e| key_err(read_failure(e)))?;
        let b64 = text
            .lines()
            .nth(1)
            .ok_or_else(|| key_err("not a minisign secret key".into()))?;
        let mut raw = base64_decode(b64.trim())
            .ok_or_else(|| key_err("not a minisign secret key (bad base64)".into()))?;
        if raw.len() != SK_SEED_OFFSET + 96 || &raw[..2] != b"Ed" {
            return Err(key_err("not a minisign Ed25519 secret key".into()));
        }
        // Unencrypted keys (kdf "\0\0", `minisign -G -W` or `keygen --no-password`) are read
        // directly: stock minisign leaves their checksum empty, and the seed/public-key
        // consistency check below is the stronger integrity check anyway.
        if raw[2..4] != [0, 0] {
            let sk_box =
                minisign::SecretKeyBox::from_string(&text).map_err(|e| key_err(e.to_string()))?;
            let pw = password.get(&format!("Password for {}: ", path.display()))?;
            let sk = minisign::SecretKey::from_box(sk_box, Some(pw))
                .map_err(|e| key_err(format!("cannot decrypt the secret key ({e})")))?;
            raw = sk.to_bytes();
        }
        let id = KeyId::from_slice(&raw[SK_SEED_OFFSET - 8..SK_SEED_OFFSET])
            .ok_or_else(|| key_err("malformed key id".into()))?;
        let seed: [u8; 32] = raw
            .get(SK_SEED_OFFSET..SK_SEED_OFFSET + 32)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| key_err("malformed secret key".into()))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let stored_pk = raw.get(SK_SEED_OFFSET + 32..SK_SEED_OFFSET + 64);
        if stored_pk != Some(&signing.verifying_key().to_bytes()[..]) {
            return Err(key_err(
                "the secret key is damaged (its public half does not match)".into(),
            ));
        }
        Ok(SecretKey { id, signing })
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Signs everything `data` yields (prehashed, BLAKE2b-512 as minisign does) with
    /// `trusted_comment`, returning the `.minisig` text.
    pub fn sign(&self, mut data: impl Read, trusted_comment: &str) -> Result<String> {
        use blake2::Digest;
        use ed25519_dalek::Signer;
        if trusted_comment.chars().any(char::is_control) {
            return Err(Error::Invalid("a trusted comment must be one line".into()));
        }
        let mut hasher = blake2::Blake2b512::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = data
                .read(&mut buf)
                .map_err(|e| Error::Invalid(format!("reading the data to sign failed: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let sig = self.signing.sign(&hasher.finalize());
        let mut global = sig.to_bytes().to_vec();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = self.signing.sign(&global);
        let mut bin = Vec::with_capacity(74);
        bin.extend_from_slice(b"ED");
        bin.extend_from_slice(&self.id.0);
        bin.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            airlock_untrusted_comment(self.id),
            base64(&bin),
            base64(&global_sig.to_bytes())
        ))
    }
}

/// The untrusted comment line airlock writes on every signature it makes.
pub fn airlock_untrusted_comment(id: KeyId) -> String {
    format!("untrusted comment: signature from airlock key {id}")
}

/// Decodes standard base64 with padding; `None` on anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&b[..3 - pad]);
    }
    // Canonical only: unused trailing bits must be zero, so one byte sequence has
    // exactly one text form and no character of a signature can change unnoticed.
    (base64(&out) == s).then_some(out)
}

/// Standard base64 with padding (the encoding of minisign files).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn signatures_are_deterministic_and_base64_is_standard() {
        let (sk, _) = pair();
        assert_eq!(
            sk.sign(&b"same"[..], "c").unwrap(),
            sk.sign(&b"same"[..], "c").unwrap()
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        for data in [&b""[..], b"f", b"fo", b"foo", b"\xff\x00\x10\x80"] {
            assert_eq!(base64_decode(&base64(data)).unwrap(), data);
        }
        assert!(base64_decode("Zg=").is_none());
        assert!(base64_decode("Z===").is_none());
        assert!(base64_decode("Zg==Zg==").is_none());
        assert!(base64_decode("Zh==").is_none(), "non-zero unused bits");
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
