//! Fuzzes the minisign text parsers (signature files and public key files, design
//! card §2) with arbitrary bytes; a parsed signature is also verified against a key.
#![no_main]

use airlock_format::keys::{PublicKey, Signature};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PublicKey::from_text(
            include_str!("../../samples/keys/TEST-ONLY-vendor.pub"),
            "vendor",
        )
        .expect("the sample key parses")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(sig) = Signature::parse("fuzz", data) {
        let _ = key().verify("fuzz", b"fuzz", &sig);
        let _ = (sig.trusted_comment(), sig.untrusted_comment());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::from_text(text, "fuzz").map(|k| k.id());
    }
});
