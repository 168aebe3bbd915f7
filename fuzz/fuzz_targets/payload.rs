//! Fuzzes the streaming payload checker (zstd + tar walk against a manifest, design card §5)
//! with arbitrary compressed bytes, against the manifest of a small real two-document bundle.
#![no_main]

use airlock_format::archive::reader::check_payload;
use airlock_format::archive::{BundleFile, BundleInput, DocumentInput, WriteOptions, write_bundle};
use airlock_format::keys::{self, SecretKey};
use airlock_format::manifest::{Manifest, tar_member_size};
use airlock_format::time::parse_rfc3339;
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::OnceLock;

/// A shipped sample document; the second document is the same with id AM-2021-0002.
const DOC: &str = include_str!("../../samples/feed/mitigations/AM-2021-0001.xml");

/// Set to a path to get a copy of the bundle built at start-up (its
/// `payload.tar.zst` member is the seed of this target; see README.md).
const DUMP_ENV: &str = "AIRLOCK_FUZZ_PAYLOAD_BUNDLE";

/// Builds the bundle once and returns its manifest as read back from the file.
///
/// The vendor signatures are fixed bytes (the checker only hashes them), and the
/// creation time is fixed, so the payload, and with it the committed seed, is the
/// same in every process although the release key is new each time.
fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("airlock-fuzz-payload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        let generated = keys::generate(None, "fuzz").expect("generate a key");
        let key_path = dir.join("release.key");
        std::fs::write(&key_path, &generated.secret.0).expect("write the key");
        let key = SecretKey::from_file(&key_path, &Default::default()).expect("load the key");
        let doc = |id: &str| DocumentInput {
            id: id.into(),
            revision: 2,
            vendor_key: key.id(),
            xml: DOC.replace("AM-2021-0001", id).into_bytes(),
            signature: format!("fuzz: stands in for the vendor signature of {id}\n").into_bytes(),
        };
        let input = BundleInput {
            channel: "prod".into(),
            seq: 1,
            created: parse_rfc3339("2026-01-01T00:00:00Z").expect("time"),
            expires: parse_rfc3339("2036-01-01T00:00:00Z").expect("time"),
            publisher: "fuzz".into(),
            documents: vec![doc("AM-2021-0001"), doc("AM-2021-0002")],
            retired: vec!["AM-2020-0007".into()],
            attachments: vec![],
        };
        let bundle = dir.join("seed.airlock");
        let opts = WriteOptions {
            detached_signature: false,
            level: 3,
            threads: 1,
        };
        let written = write_bundle(&input, &key, &bundle, &opts).expect("write the bundle");
        let file = BundleFile::open(&bundle).expect("open the bundle");
        let manifest = Manifest::parse(&file.manifest_bytes).expect("parse the manifest");
        assert_eq!(manifest, written);

        // Harness self-check: the real payload must pass, or the fuzzer explores nothing.
        let bytes = std::fs::read(&bundle).expect("read the bundle");
        let start = tar_member_size(file.manifest_bytes.len() as u64)
            + tar_member_size(file.signature_bytes.len() as u64)
            + 512;
        let payload = &bytes[start as usize..(start + manifest.payload.compressed_size) as usize];
        check(&manifest, payload).expect("the real payload must pass check_payload");

        if let Some(out) = std::env::var_os(DUMP_ENV) {
            std::fs::copy(&bundle, out).expect("copy the bundle");
        }
        let _ = std::fs::remove_dir_all(&dir);
        manifest
    })
}

fn check(manifest: &Manifest, data: &[u8]) -> airlock_format::Result<String> {
    check_payload(
        Path::new("fuzz"),
        manifest,
        Cursor::new(data),
        &mut |_e, r: &mut dyn Read| {
            std::io::copy(r, &mut std::io::sink())
                .map(|_| ())
                .map_err(|e| airlock_format::Error::Invalid(e.to_string()))
        },
    )
}

fuzz_target!(
    init: {
        manifest();
    },
    |data: &[u8]| {
        let _ = check(manifest(), data);
    }
);
