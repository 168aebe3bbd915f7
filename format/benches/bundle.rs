//! Library benchmarks of the wire formats: parsing one mitigation document,
//! verifying one vendor-signed document, and writing and verifying a bundle of 50
//! small signed documents plus a 16 MiB attachment. Kept small so the whole run
//! takes well under a minute:
//!
//!     cargo bench -p airlock-format --bench bundle
//!
//! The end-to-end comparison with the stock tools is `bench/run.sh`.

use airlock_format::archive::{
    AttachmentInput, BundleInput, DocumentInput, WriteOptions, write_bundle,
};
use airlock_format::keys::{self, PublicKey, SecretKey};
use airlock_format::mitigation::Mitigation;
use airlock_format::time::{Timestamp, parse_rfc3339};
use airlock_format::trust::TrustRoots;
use airlock_format::verify::{verify_bundle, verify_document};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DOCUMENTS: usize = 50;
const ATTACHMENT_BYTES: usize = 16 << 20;

/// A shipped sample document (ProxyShell, four actions) with a variable id.
fn document(n: usize) -> String {
    include_str!("../../samples/feed/mitigations/AM-2021-0001.xml").replacen(
        "id=\"AM-2021-0001\"",
        &format!("id=\"AM-2021-{n:04}\""),
        1,
    )
}

fn time(s: &str) -> Timestamp {
    parse_rfc3339(s).expect("a valid RFC 3339 time")
}

/// A fresh unencrypted key pair, the secret loaded the way the CLI loads it.
fn key_pair(dir: &Path, role: &str) -> (SecretKey, PublicKey) {
    let g = keys::generate(None, role).expect("generate a key pair");
    let path = dir.join(format!("{role}.key"));
    std::fs::write(&path, &g.secret.0).expect("write the secret key");
    let sk = SecretKey::from_file(&path, &Default::default()).expect("load the secret key");
    let pk = PublicKey::from_text(&g.public, role).expect("parse the public key");
    (sk, pk)
}

/// 16 MiB, deterministic, half incompressible and half text-like (like the
/// standard workload's attachment).
fn attachment() -> Vec<u8> {
    let words: &[&[u8]] = &[b"autodiscover ", b"powershell ", b"mapi ", b"ecp ", b"owa "];
    let mut state: u64 = 0x2026_1128_dead_beef;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut out = Vec::with_capacity(ATTACHMENT_BYTES);
    for mib in 0..ATTACHMENT_BYTES >> 20 {
        let end = out.len() + (1 << 20);
        while out.len() < end {
            if mib.is_multiple_of(2) {
                out.extend_from_slice(&next().to_le_bytes());
            } else {
                out.extend_from_slice(words[(next() % words.len() as u64) as usize]);
            }
        }
        out.truncate(end);
    }
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    out: PathBuf,
    input: BundleInput,
    release: SecretKey,
    trust: TrustRoots,
    xml: Vec<u8>,
    signature: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let (vendor, vendor_pub) = key_pair(dir.path(), "vendor");
    let (release, release_pub) = key_pair(dir.path(), "release");
    let documents: Vec<DocumentInput> = (1..=DOCUMENTS)
        .map(|n| {
            let xml = document(n).into_bytes();
            let signature = vendor
                .sign(&xml[..], &format!("airlock bench document {n}"))
                .expect("sign a document")
                .into_bytes();
            DocumentInput {
                id: format!("AM-2021-{n:04}"),
                revision: 2,
                vendor_key: vendor.id(),
                xml,
                signature,
            }
        })
        .collect();
    let att = dir.path().join("installer.bin");
    std::fs::write(&att, attachment()).expect("write the attachment");
    let input = BundleInput {
        channel: "bench".into(),
        seq: 1,
        created: time("2026-11-28T00:00:00Z"),
        expires: time("2036-11-28T00:00:00Z"),
        publisher: "airlock bench".into(),
        documents,
        retired: Vec::new(),
        attachments: vec![AttachmentInput {
            name: "installer.bin".into(),
            path: att,
        }],
    };
    Fixture {
        out: dir.path().join("bench.airlock"),
        _dir: dir,
        xml: input.documents[0].xml.clone(),
        signature: input.documents[0].signature.clone(),
        input,
        release,
        trust: TrustRoots {
            vendor: vec![vendor_pub],
            release: vec![release_pub],
        },
    }
}

fn documents(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("document");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(f.xml.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| Mitigation::parse("bench document", black_box(&f.xml)).expect("parse"))
    });
    g.bench_function("verify_signed", |b| {
        b.iter(|| {
            verify_document(
                "bench document",
                black_box(&f.xml),
                black_box(&f.signature),
                &f.trust,
            )
            .expect("verify")
        })
    });
    g.finish();
}

fn bundles(c: &mut Criterion, f: &Fixture) {
    let opts = WriteOptions::default();
    // The verify bench reads the bundle the first write leaves behind.
    write_bundle(&f.input, &f.release, &f.out, &opts).expect("write the bundle");
    let mut g = c.benchmark_group("bundle_50docs_16MiB");
    // One write or verify takes tens of milliseconds: flat sampling keeps the
    // iteration count (and so the run time) small.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(ATTACHMENT_BYTES as u64));
    g.bench_function("write", |b| {
        b.iter(|| write_bundle(&f.input, &f.release, &f.out, &opts).expect("write"))
    });
    g.bench_function("verify", |b| {
        b.iter(|| verify_bundle(&f.out, &f.trust, None).expect("verify"))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    documents(c, &f);
    bundles(c, &f);
}

criterion_group!(bundle, benches);
criterion_main!(bundle);
