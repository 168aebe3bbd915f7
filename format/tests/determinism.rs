//! A bundle's bytes depend only on its inputs and creation time: not on the number
//! of zstd worker threads, nor on the attachment files' own metadata.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::archive::{
    AttachmentInput, BundleInput, DocumentInput, WriteOptions, write_bundle,
};
use airlock_format::keys::{self, PasswordSource, PublicKey, SecretKey};
use airlock_format::time::parse_rfc3339;
use airlock_format::trust::TrustRoots;
use airlock_format::verify::verify_bundle;

#[test]
fn output_does_not_depend_on_threads_or_file_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let g = keys::generate(None, "release").unwrap();
    let key_path = dir.path().join("release.key");
    std::fs::write(&key_path, &g.secret.0).unwrap();
    let key = SecretKey::from_file(&key_path, &PasswordSource::default()).unwrap();
    let xml = include_bytes!("../../samples/feed/mitigations/AM-2021-0001.xml").to_vec();
    let sig = key.sign(&xml[..], "vendor").unwrap().into_bytes();

    let att = dir.path().join("big.bin");
    let data: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 ^ (i / 4096) as u8)
        .collect();
    std::fs::write(&att, &data).unwrap();
    let input = BundleInput {
        channel: "prod".into(),
        seq: 3,
        created: parse_rfc3339("2026-11-28T08:00:00Z").unwrap(),
        expires: parse_rfc3339("2026-12-28T08:00:00Z").unwrap(),
        publisher: "test".into(),
        documents: vec![DocumentInput {
            id: "AM-2021-0001".into(),
            revision: 2,
            vendor_key: key.id(),
            xml,
            signature: sig,
        }],
        retired: vec!["AM-2020-0007".into()],
        attachments: vec![AttachmentInput {
            name: "big.bin".into(),
            path: att.clone(),
        }],
    };
    let mut outputs = Vec::new();
    for threads in [1, 2, 4] {
        let out = dir.path().join(format!("t{threads}.airlock"));
        write_bundle(
            &input,
            &key,
            &out,
            &WriteOptions {
                threads,
                ..WriteOptions::default()
            },
        )
        .unwrap();
        outputs.push(std::fs::read(&out).unwrap());
        // Touch the attachment: its mtime and mode must not leak into the bundle.
        let f = std::fs::File::options().append(true).open(&att).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "bundle bytes depend on the thread count or file metadata"
    );

    let pk = PublicKey::from_text(&g.public, "release").unwrap();
    let trust = TrustRoots {
        vendor: vec![pk.clone()],
        release: vec![pk],
    };
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let b = verify_bundle(&dir.path().join("t1.airlock"), &trust, Some(&staging)).unwrap();
    assert_eq!(b.documents[0].mitigation.id, "AM-2021-0001");
    assert_eq!(
        std::fs::read(staging.join("attachments/big.bin")).unwrap(),
        data,
        "staged attachment is the original"
    );
}
