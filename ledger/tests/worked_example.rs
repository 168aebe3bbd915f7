//! The worked example in docs/ledger.md: the encoding bytes, the genesis value and
//! the entry hashes printed there are recomputed here from the field values in the
//! same document, by an independent implementation of the encoding and by the
//! library, so the document cannot drift from the code.
#![allow(clippy::unwrap_used)]

use airlock_ledger::entry::{Digest, EntryRef, genesis};
use sha2::{Digest as _, Sha256};

/// `key = value` lines of the fenced block that follows `marker` in docs/ledger.md.
fn block(doc: &str, marker: &str) -> Vec<(String, String)> {
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in docs/ledger.md"));
    let rest = &doc[start..];
    let open = rest.find("```\n").unwrap() + 4;
    let close = open + rest[open..].find("```").unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for l in rest[open..close].lines().filter(|l| !l.trim().is_empty()) {
        match l.split_once(" = ") {
            Some((k, v)) => out.push((k.trim().to_string(), v.trim().to_string())),
            // A line without " = " continues the previous value (long hex dumps).
            None => out.last_mut().unwrap().1.push_str(l.trim()),
        }
    }
    out
}

fn get<'a>(b: &'a [(String, String)], k: &str) -> &'a str {
    &b.iter()
        .find(|(key, _)| key == k)
        .unwrap_or_else(|| panic!("{k} missing"))
        .1
}

/// Undoes the doc's quoting: `"text"` is the text, `none` is absent.
fn field(b: &[(String, String)], k: &str) -> Option<String> {
    let v = get(b, k);
    if v == "none" {
        return None;
    }
    Some(serde_json::from_str::<String>(v).unwrap())
}

/// The encoding as docs/ledger.md specifies it, written independently of the library.
fn encode(tag: &[u8], fields: &[(&str, Option<&[u8]>)], seq: u64, prev: &[u8]) -> Vec<u8> {
    let frame = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
        out.extend_from_slice(b);
    };
    let mut out = Vec::new();
    frame(&mut out, tag);
    out.extend_from_slice(&seq.to_be_bytes());
    for (name, v) in fields {
        match (*name, v) {
            ("bundle" | "mitigation", None) => out.push(0),
            ("bundle" | "mitigation", Some(b)) => {
                out.push(1);
                frame(&mut out, b);
            }
            (_, Some(b)) => frame(&mut out, b),
            (_, None) => panic!("{name} is required"),
        }
    }
    out.extend_from_slice(prev);
    out
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn docs_worked_example_matches_the_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ledger.md")).unwrap();

    let g = block(&doc, "<!-- example: genesis -->");
    let id = field(&g, "ledger_id").unwrap();
    let mut enc = Vec::new();
    for part in [b"airlock-ledger/v1/genesis".as_slice(), id.as_bytes()] {
        enc.extend_from_slice(&(part.len() as u64).to_be_bytes());
        enc.extend_from_slice(part);
    }
    assert_eq!(
        airlock_format::hash::hex(&enc),
        unhex(get(&g, "encoding"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let genesis_doc = get(&g, "genesis");
    assert_eq!(
        airlock_format::hash::hex(&Sha256::digest(&enc)),
        genesis_doc
    );
    assert_eq!(genesis(&id).hex(), genesis_doc);

    let mut prev = Digest::from_hex(genesis_doc).unwrap();
    for (n, marker) in ["<!-- example: entry 1 -->", "<!-- example: entry 2 -->"]
        .iter()
        .enumerate()
    {
        let b = block(&doc, marker);
        let seq: u64 = get(&b, "seq").parse().unwrap();
        assert_eq!(seq, n as u64 + 1);
        assert_eq!(get(&b, "prev_hash"), prev.hex(), "{marker}: prev_hash");
        let names = [
            "ts",
            "host",
            "actor",
            "kind",
            "bundle",
            "mitigation",
            "detail",
        ];
        let values: Vec<Option<String>> = names.iter().map(|k| field(&b, k)).collect();
        let fields: Vec<(&str, Option<&[u8]>)> = names
            .iter()
            .zip(&values)
            .map(|(k, v)| (*k, v.as_deref().map(str::as_bytes)))
            .collect();
        let enc = encode(b"airlock-ledger/v1/entry", &fields, seq, &prev.0);
        assert_eq!(enc, unhex(get(&b, "encoding")), "{marker}: encoding");
        let expected = get(&b, "hash");
        assert_eq!(
            airlock_format::hash::hex(&Sha256::digest(&enc)),
            expected,
            "{marker}: sha256(encoding)"
        );
        let v = |i: usize| values[i].as_deref();
        let e = EntryRef {
            seq,
            ts: v(0).unwrap(),
            host: v(1).unwrap(),
            actor: v(2).unwrap(),
            kind: v(3).unwrap(),
            bundle: v(4),
            mitigation: v(5),
            detail: v(6).unwrap(),
            prev_hash: prev,
        };
        e.check_fields().unwrap();
        assert_eq!(e.hash().hex(), expected, "{marker}: library hash");
        prev = e.hash();
    }
}
