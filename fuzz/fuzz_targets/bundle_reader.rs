//! Fuzzes the outer bundle reader (`BundleFile::open`, design card §5) on a file holding
//! the input, then the manifest and signature parsers on the members it returns.
#![no_main]

use airlock_format::{archive::BundleFile, keys::Signature, manifest::Manifest};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One scratch file per fuzzing process, written for every input and removed after it.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "airlock-fuzz-bundle_reader-{}.airlock",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    std::fs::write(scratch(), data).expect("write the scratch bundle");
    if let Ok(file) = BundleFile::open(scratch()) {
        let _ = Manifest::parse(&file.manifest_bytes);
        let _ = Signature::parse("m", &file.signature_bytes);
    }
    let _ = std::fs::remove_file(scratch());
});
