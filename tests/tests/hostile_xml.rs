//! The hostile XML vectors in samples/hostile/xml (one file per failure, named
//! after it; expected.tsv gives a word the error must contain) are each refused by
//! the document parser, and through the real binary at `feed publish` (exit 3).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::mitigation::Mitigation;
use airlock_tests::{Fixture, bundler, root};

fn vectors() -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(root().join("samples/hostile/xml/expected.tsv")).unwrap();
    tsv.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (f, w) = l.split_once('\t').unwrap();
            (f.to_string(), w.to_string())
        })
        .collect()
}

#[test]
fn every_hostile_vector_is_refused_with_its_reason() {
    let vs = vectors();
    assert!(vs.len() >= 27, "only {} vectors", vs.len());
    let listed: std::collections::BTreeSet<_> = vs.iter().map(|(f, _)| f.clone()).collect();
    for e in std::fs::read_dir(root().join("samples/hostile/xml")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "expected.tsv" || listed.contains(&name),
            "{name} is not listed in expected.tsv"
        );
    }
    for (file, want) in vs {
        let bytes = std::fs::read(root().join("samples/hostile/xml").join(&file)).unwrap();
        let err = Mitigation::parse(&file, &bytes)
            .expect_err(&file)
            .to_string();
        assert!(
            err.to_lowercase().contains(&want),
            "{file}: expected '{want}' in: {err}"
        );
        assert!(
            err.starts_with(&file),
            "{file}: the message names the document: {err}"
        );
    }
}

#[test]
fn publish_refuses_hostile_documents() {
    for (file, want) in [
        ("billion-laughs.xml", "doctype"),
        ("unknown-action-element.xml", "unknown element <exec>"),
        ("external-entity.xml", "doctype"),
        ("pattern-lookahead.xml", "lookahead `(?=` at offset"),
        (
            "pattern-backslash-s.xml",
            "not in the portable pattern subset",
        ),
    ] {
        let f = Fixture::empty();
        std::fs::copy(
            root().join("samples/hostile/xml").join(file),
            f.feed().join("mitigations").join(file),
        )
        .unwrap();
        let r = bundler([
            "feed".as_ref(),
            "publish".as_ref(),
            f.feed().as_os_str(),
            "--key".as_ref(),
            f.key("vendor.key").as_os_str(),
        ])
        .expect(3);
        assert!(
            r.stderr.to_lowercase().contains(want),
            "{file}: {}",
            r.stderr
        );
        assert!(!f.feed().join("feed.xml").exists());
    }
}
