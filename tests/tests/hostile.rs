//! Hostile bundles: every case is refused with exit 3 by the real binary, and the
//! library writes nothing outside the staging directory it was given. The crafted
//! payloads are signed by a *trusted* release key, so the reader's own checks (not
//! the signature) are what refuse them. Regenerated on each run from the TEST-ONLY
//! keys in samples/keys.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::archive::{
    AttachmentInput, BundleInput, DocumentInput, WriteOptions, write_bundle,
};
use airlock_format::hash::sha256_hex;
use airlock_format::keys::{PasswordSource, SecretKey};
use airlock_format::manifest::{Manifest, ManifestAttachment, ManifestMitigation, PayloadInfo};
use airlock_format::time::parse_rfc3339;
use airlock_format::trust::TrustRoots;
use airlock_format::verify::verify_bundle;
use airlock_tests::{Fixture, bundler, mitigation_xml, root};
use std::path::{Path, PathBuf};

fn key(role: &str) -> SecretKey {
    SecretKey::from_file(
        &root().join(format!("samples/keys/TEST-ONLY-{role}.key")),
        &PasswordSource::default(),
    )
    .unwrap()
}

fn trust() -> TrustRoots {
    let k = |r: &str| root().join(format!("samples/keys/TEST-ONLY-{r}.pub"));
    TrustRoots::from_files(&[k("vendor")], &[k("release")]).unwrap()
}

fn signed_doc(id: &str) -> (Vec<u8>, Vec<u8>) {
    let xml = mitigation_xml(id, 2).into_bytes();
    let sig = key("vendor")
        .sign(&xml[..], &format!("airlock-document id={id}"))
        .unwrap()
        .into_bytes();
    (xml, sig)
}

/// A raw tar entry, written without the tar crate's safety checks.
struct Raw {
    name: &'static str,
    kind: tar::EntryType,
    data: Vec<u8>,
    declared_size: Option<u64>,
}

fn raw(name: &'static str, data: &[u8]) -> Raw {
    Raw {
        name,
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        declared_size: None,
    }
}

fn tar_bytes(entries: &[Raw], trailing_zeros: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let name = e.name.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(e.kind);
        h.set_size(e.declared_size.unwrap_or(e.data.len() as u64));
        h.set_mode(0o644);
        h.set_mtime(0);
        if matches!(e.kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.as_old_mut().linkname[..11].copy_from_slice(b"/etc/shadow");
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024 + trailing_zeros, 0);
    out
}

/// A bundle whose manifest declares `doc_ids` (with valid vendor signatures) and
/// `attachments`, but whose payload is `payload_entries`; signed by the trusted
/// release key.
fn crafted(
    dir: &Path,
    name: &str,
    doc_ids: &[&str],
    attachments: &[(&str, &[u8])],
    payload_entries: Vec<Raw>,
    trailing_zeros: usize,
) -> PathBuf {
    let docs: Vec<(String, Vec<u8>, Vec<u8>)> = doc_ids
        .iter()
        .map(|id| {
            let (x, s) = signed_doc(id);
            (id.to_string(), x, s)
        })
        .collect();
    let payload = zstd::encode_all(&tar_bytes(&payload_entries, trailing_zeros)[..], 3).unwrap();
    let release = key("release");
    let mut m = Manifest {
        format: 1,
        id: "0123456789abcdef0123456789abcdef".into(),
        channel: "prod".into(),
        seq: 1,
        created: parse_rfc3339("2026-11-28T00:00:00Z").unwrap(),
        expires: parse_rfc3339("2099-01-01T00:00:00Z").unwrap(),
        release_key: release.id().to_string(),
        publisher: "hostile".into(),
        mitigations: docs
            .iter()
            .map(|(id, x, s)| ManifestMitigation {
                id: id.clone(),
                revision: 2,
                vendor_key: key("vendor").id().to_string(),
                path: format!("mitigations/{id}.xml"),
                sha256: sha256_hex(x),
                size: x.len() as u64,
                signature_sha256: sha256_hex(s),
                signature_size: s.len() as u64,
            })
            .collect(),
        retired: vec![],
        attachments: attachments
            .iter()
            .map(|(n, d)| ManifestAttachment {
                name: n.to_string(),
                size: d.len() as u64,
                sha256: sha256_hex(d),
            })
            .collect(),
        payload: PayloadInfo {
            compressed_size: payload.len() as u64,
            compressed_sha256: sha256_hex(&payload),
            uncompressed_size: 0,
        },
    };
    m.payload.uncompressed_size = m.expected_tar_size();
    let bytes = m.to_bytes();
    let sig = release.sign(&bytes[..], &m.trusted_comment()).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, outer(&bytes, sig.as_bytes(), &payload)).unwrap();
    path
}

fn outer(manifest: &[u8], sig: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("airlock-manifest.json", manifest),
        ("airlock-manifest.json.minisig", sig),
        ("payload.tar.zst", payload),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `airlock-bundler verify` of `bundle` with the TEST-ONLY sample keys.
fn verify_with_samples(bundle: &Path) -> airlock_tests::Run {
    let key = |role: &str| root().join(format!("samples/keys/TEST-ONLY-{role}.pub"));
    bundler([
        "verify".as_ref(),
        bundle.as_os_str(),
        "--release-key".as_ref(),
        key("release").as_os_str(),
        "--vendor-key".as_ref(),
        key("vendor").as_os_str(),
    ])
}

/// Exit 3 from the binary with `want` in the message; in-process verification with a
/// staging directory also fails and leaves nothing outside it.
#[track_caller]
fn refused(bundle: &Path, want: &str) {
    let r = verify_with_samples(bundle);
    assert_eq!(
        r.code,
        3,
        "{}: expected exit 3\n{}{}",
        bundle.display(),
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr.contains(want),
        "{}: expected '{want}' in:\n{}",
        bundle.display(),
        r.stderr
    );
    assert!(r.stderr.contains("what to do:"), "{}", r.stderr);

    let box_dir = tempfile::tempdir().unwrap();
    let staging = box_dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    assert!(verify_bundle(bundle, &trust(), Some(&staging)).is_err());
    let outside: Vec<_> = std::fs::read_dir(box_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside,
        ["staging"],
        "something was written beside the staging directory"
    );
    assert!(!Path::new("/tmp/airlock-escape").exists());
}

/// name, payload entries, declared attachments, trailing zero bytes, expected message.
type Case = (
    &'static str,
    Vec<Raw>,
    &'static [(&'static str, &'static [u8])],
    usize,
    &'static str,
);

const DOC: &str = "AM-HOSTILE-1";
const ATT: &[u8] = b"attachment bytes";

fn doc_entries() -> Vec<Raw> {
    let (x, s) = signed_doc(DOC);
    vec![
        raw("mitigations/AM-HOSTILE-1.xml", &x),
        raw("mitigations/AM-HOSTILE-1.xml.minisig", &s),
    ]
}

#[test]
fn release_signed_hostile_payloads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with = |extra: Raw, at_start: bool| {
        let mut v = doc_entries();
        if at_start {
            v.insert(0, extra)
        } else {
            v.push(extra)
        }
        v
    };

    // The honest version of the crafted bundle verifies, so each case below fails for its own reason.
    let mut honest = doc_entries();
    honest.push(raw("attachments/a.bin", ATT));
    let ok = crafted(d, "honest.airlock", &[DOC], &[("a.bin", ATT)], honest, 0);
    verify_with_samples(&ok).expect(0);

    let cases: Vec<Case> = vec![
        (
            "dotdot",
            with(raw("../airlock-escape", b"x"), true),
            &[],
            0,
            "unexpected entry '../airlock-escape'",
        ),
        (
            "dotdot-inside",
            with(raw("attachments/../../airlock-escape", ATT), false),
            &[("a.bin", ATT)],
            0,
            "unexpected entry 'attachments/../../airlock-escape'",
        ),
        (
            "absolute",
            with(raw("/tmp/airlock-escape", b"x"), true),
            &[],
            0,
            "unexpected entry '/tmp/airlock-escape'",
        ),
        (
            "duplicate",
            {
                let mut v = doc_entries();
                v.insert(1, raw("mitigations/AM-HOSTILE-1.xml", b"again"));
                v
            },
            &[],
            0,
            "unexpected entry 'mitigations/AM-HOSTILE-1.xml' where mitigations/AM-HOSTILE-1.xml.minisig was declared",
        ),
        (
            "undeclared",
            with(raw("attachments/extra.sh", b"rm -rf /"), false),
            &[],
            0,
            "undeclared entry 'attachments/extra.sh'",
        ),
        (
            "missing",
            doc_entries(),
            &[("a.bin", ATT)],
            0,
            "entry attachments/a.bin is missing",
        ),
        (
            "longer-than-declared",
            with(
                raw("attachments/a.bin", b"attachment bytes and more"),
                false,
            ),
            &[("a.bin", ATT)],
            0,
            "bytes, but 16 were declared",
        ),
        (
            "header-lies-about-size",
            with(
                Raw {
                    declared_size: Some(4096),
                    ..raw("attachments/a.bin", ATT)
                },
                false,
            ),
            &[("a.bin", ATT)],
            0,
            "were declared",
        ),
        (
            "different-content",
            with(raw("attachments/a.bin", b"ATTACHMENT BYTES"), false),
            &[("a.bin", ATT)],
            0,
            "SHA-256 does not match",
        ),
        (
            "zstd-expands-past-declared-size",
            with(raw("attachments/a.bin", ATT), false),
            &[("a.bin", ATT)],
            64 << 20,
            "expands past its declared",
        ),
    ];
    assert!(cases.len() >= 10);
    for (name, entries, atts, trailing, want) in cases {
        let b = crafted(
            d,
            &format!("{name}.airlock"),
            &[DOC],
            atts,
            entries,
            trailing,
        );
        refused(&b, want);
    }
    // Links, devices, FIFOs and directories where a declared file should be.
    for kind in [
        tar::EntryType::Symlink,
        tar::EntryType::Link,
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
        tar::EntryType::Directory,
    ] {
        let entry = Raw {
            kind,
            ..raw("attachments/a.bin", b"")
        };
        let b = crafted(
            d,
            &format!("{kind:?}.airlock"),
            &[DOC],
            &[("a.bin", b"")],
            with(entry, false),
            0,
        );
        refused(&b, "not a regular file");
    }
}

#[test]
fn vendor_signatures_are_checked_inside_a_release_signed_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let release = key("release");
    let build = |name: &str, xml: Vec<u8>, sig: Vec<u8>, vendor_key| {
        let out = dir.path().join(name);
        let input = BundleInput {
            channel: "prod".into(),
            seq: 1,
            created: parse_rfc3339("2026-11-28T00:00:00Z").unwrap(),
            expires: parse_rfc3339("2099-01-01T00:00:00Z").unwrap(),
            publisher: "t".into(),
            documents: vec![DocumentInput {
                id: "AM-V-1".into(),
                revision: 2,
                vendor_key,
                xml,
                signature: sig,
            }],
            retired: vec![],
            attachments: Vec::<AttachmentInput>::new(),
        };
        write_bundle(&input, &release, &out, &WriteOptions::default()).unwrap();
        out
    };
    let vendor = key("vendor");
    let good = mitigation_xml("AM-V-1", 2).into_bytes();
    // Signature over different bytes.
    let other_sig = vendor
        .sign(mitigation_xml("AM-V-1", 3).as_bytes(), "x")
        .unwrap()
        .into_bytes();
    refused(
        &build("wrong-sig.airlock", good.clone(), other_sig, vendor.id()),
        "does not verify",
    );
    // Signed by the release key, which is not a vendor key.
    let by_release = release.sign(&good[..], "x").unwrap().into_bytes();
    refused(
        &build(
            "untrusted-signer.airlock",
            good.clone(),
            by_release,
            release.id(),
        ),
        "not a trusted vendor key",
    );
    // A legacy-looking or garbage signature.
    refused(
        &build(
            "garbage-sig.airlock",
            good.clone(),
            b"untrusted comment: x\nAAAA\n".to_vec(),
            vendor.id(),
        ),
        "malformed signature",
    );
    // Correctly signed by the vendor, but hostile XML.
    for (file, want) in [
        ("billion-laughs.xml", "DOCTYPE"),
        ("unknown-action-element.xml", "unknown element <exec>"),
        ("malformed-unclosed-tag.xml", "malformed"),
    ] {
        let xml = std::fs::read(root().join("samples/hostile/xml").join(file)).unwrap();
        let text = String::from_utf8_lossy(&xml)
            .replacen("id=\"AM-HOSTILE-0001\"", "id=\"AM-V-1\"", 1)
            .into_bytes();
        let sig = vendor.sign(&text[..], "x").unwrap().into_bytes();
        refused(
            &build(&format!("signed-{file}.airlock"), text, sig, vendor.id()),
            want,
        );
    }
}

fn sample_bundle(f: &Fixture, name: &str, extra: &[&str]) -> PathBuf {
    let att = f.path("rules.bin");
    std::fs::write(
        &att,
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = f.path(name);
    let mut args = vec!["--attach", att.to_str().unwrap()];
    args.extend_from_slice(extra);
    f.build(&out, &args).expect(0);
    out
}

#[test]
fn flipped_bytes_truncation_and_appended_data_are_refused() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let good = sample_bundle(&f, "good.airlock", &[]);
    f.verify(&good).expect(0);
    let bytes = std::fs::read(&good).unwrap();
    let len = bytes.len();
    let size = |at: usize| {
        usize::from_str_radix(std::str::from_utf8(&bytes[at + 124..at + 135]).unwrap(), 8).unwrap()
    };
    let manifest_len = size(0);
    let sig_at = 512 + manifest_len.div_ceil(512) * 512;
    let sig_len = size(sig_at);
    let payload_at = sig_at + 512 + sig_len.div_ceil(512) * 512;
    let payload_len = size(payload_at);
    let data = payload_at + 512;

    // Offsets in every region: each header (name, mode, size, mtime, checksum, type,
    // magic, padding), manifest and signature bodies and padding, payload start,
    // middle and end, the end-of-archive blocks, plus an even spread.
    let mut offsets = vec![];
    for h in [0, sig_at, payload_at] {
        offsets.extend([
            h,
            h + 10,
            h + 100,
            h + 110,
            h + 124,
            h + 130,
            h + 136,
            h + 148,
            h + 156,
            h + 257,
            h + 300,
            h + 511,
        ]);
    }
    offsets.extend([
        512,
        512 + manifest_len / 2,
        512 + manifest_len - 1,
        sig_at - 1,
    ]);
    offsets.extend([
        sig_at + 512,
        sig_at + 512 + 60,
        sig_at + 512 + sig_len / 2,
        sig_at + 512 + sig_len - 2,
        payload_at - 1,
    ]);
    offsets.extend([
        data,
        data + 4,
        data + 100,
        data + payload_len / 3,
        data + payload_len / 2,
        data + payload_len - 1,
    ]);
    offsets.extend([len - 1024, len - 512, len - 1]);
    offsets.extend((1..=16).map(|i| i * len / 17));
    assert!(offsets.len() >= 40, "{} offsets", offsets.len());
    for off in offsets {
        let mut b = bytes.clone();
        b[off] ^= 0x01;
        let p = f.path("flipped.airlock");
        std::fs::write(&p, &b).unwrap();
        let r = f.verify(&p);
        assert_eq!(
            r.code, 3,
            "flipping byte {off} of {len} was not refused:\n{}{}",
            r.stdout, r.stderr
        );
    }

    for cut in [
        0,
        1,
        100,
        511,
        512,
        512 + manifest_len / 2,
        sig_at + 600,
        data + payload_len / 2,
        len - 1025,
        len - 1024,
        len - 1,
    ] {
        let p = f.path("truncated.airlock");
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let r = f.verify(&p);
        assert_eq!(
            r.code, 3,
            "truncation to {cut} bytes was not refused:\n{}",
            r.stderr
        );
    }
    for tail in [
        &b"\0"[..],
        &[0u8; 512],
        &[0u8; 10240],
        b"#!/bin/sh\nrm -rf /\n",
    ] {
        let mut b = bytes.clone();
        b.extend_from_slice(tail);
        let p = f.path("appended.airlock");
        std::fs::write(&p, &b).unwrap();
        let r = f.verify(&p).expect(3);
        assert!(
            r.stderr.contains("unexpected data after the end"),
            "{}",
            r.stderr
        );
    }
    // A whole extra tar member appended after the archive end.
    let mut extra = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(5);
    extra
        .append_data(&mut h, "evil.sh", &b"evil\n"[..])
        .unwrap();
    let mut b = bytes.clone();
    b.extend_from_slice(&extra.into_inner().unwrap());
    let p = f.path("appended-member.airlock");
    std::fs::write(&p, &b).unwrap();
    f.verify(&p).expect(3);
}

#[test]
fn manifest_or_signature_swapped_from_another_bundle_is_refused() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let a = std::fs::read(sample_bundle(&f, "a.airlock", &["--seq", "1"])).unwrap();
    let b = std::fs::read(sample_bundle(
        &f,
        "b.airlock",
        &["--seq", "2", "--exclude", "AM-2021-0001"],
    ))
    .unwrap();
    let split = |bytes: &[u8]| {
        let mut ar = tar::Archive::new(bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                v
            })
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (split(&a), split(&b));
    let cases = [
        (
            "manifest-and-signature-from-a",
            outer(&pa[0], &pa[1], &pb[2]),
            "payload",
        ),
        (
            "signature-from-a",
            outer(&pb[0], &pa[1], &pb[2]),
            "does not verify",
        ),
        (
            "manifest-from-a",
            outer(&pa[0], &pb[1], &pb[2]),
            "does not verify",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = f.path(name);
        std::fs::write(&p, bytes).unwrap();
        let r = f.verify(&p).expect(3);
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
    }
    // Sanity: re-assembling b from its own parts still verifies.
    let p = f.path("reassembled.airlock");
    std::fs::write(&p, outer(&pb[0], &pb[1], &pb[2])).unwrap();
    f.verify(&p).expect(0);
}

#[test]
fn a_bad_vendor_signature_is_refused_at_fetch_and_the_cache_is_unchanged() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let before = std::fs::read(f.cache().join("feed.xml")).unwrap();
    // The vendor publishes a new revision, but the document's signature is replaced
    // by one over different bytes (a man in the middle).
    let doc = f.feed().join("mitigations/AM-2021-0001.xml");
    let text =
        std::fs::read_to_string(&doc)
            .unwrap()
            .replacen("revision=\"2\"", "revision=\"5\"", 1);
    std::fs::write(&doc, text).unwrap();
    f.publish(&["--retire", "AM-2020-0007"]);
    std::fs::copy(
        f.feed().join("mitigations/AM-2021-0002.xml.minisig"),
        f.feed().join("mitigations/AM-2021-0001.xml.minisig"),
    )
    .unwrap();
    let r = f.fetch().expect(3);
    assert!(
        r.stderr.contains("AM-2021-0001.xml: signature by key"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(f.cache().join("feed.xml")).unwrap(),
        before,
        "the cached feed must stay the previous one"
    );

    // A feed whose own signature does not match.
    f.publish(&["--retire", "AM-2020-0007"]);
    let feed = f.feed().join("feed.xml");
    let t = std::fs::read_to_string(&feed)
        .unwrap()
        .replace("airlock sample vendor", "airlock sample vendoR");
    std::fs::write(&feed, t).unwrap();
    let r = f.fetch().expect(3);
    assert!(
        r.stderr.contains("feed.xml: signature by key"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(f.cache().join("feed.xml")).unwrap(), before);
}

#[test]
fn pax_and_gnu_extension_headers_are_refused_without_being_buffered() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [
        ("pax", tar::EntryType::XHeader),
        ("pax-global", tar::EntryType::XGlobalHeader),
        ("gnu-longname", tar::EntryType::GNULongName),
    ] {
        let mut v = doc_entries();
        // A large extension header right before a declared entry.
        v.insert(
            0,
            Raw {
                kind,
                ..raw("mitigations/AM-HOSTILE-1.xml", &vec![b'a'; 1 << 20])
            },
        );
        let b = crafted(dir.path(), &format!("{name}.airlock"), &[DOC], &[], v, 0);
        refused(&b, "not a regular file");
    }
}
