//! The vendor feed index (design card §4): `feed.xml` lists every current
//! document with its revision, location, size and SHA-256, and the retired ids.
//! Parsing is strict and bounded; writing is deterministic (entries sorted by id).

use crate::error::{Error, Result};
use crate::hash::is_sha256_hex;
use crate::limits;
use crate::mitigation::{is_valid_id, parse_revision};
use crate::time::{Timestamp, format, parse_rfc3339};
use crate::xml;
use std::collections::BTreeSet;

/// XML namespace of the feed index.
pub const NAMESPACE: &str = "urn:airlock:feed:1";

/// A parsed feed index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Who publishes it.
    pub publisher: String,
    /// When it was generated.
    pub generated: Timestamp,
    /// After this the feed must not be trusted (freeze protection).
    pub expires: Timestamp,
    /// Current documents, sorted by id.
    pub entries: Vec<FeedEntry>,
    /// Withdrawn ids, sorted.
    pub retired: Vec<String>,
}

/// One current document in the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Mitigation id.
    pub id: String,
    /// Its revision.
    pub revision: u64,
    /// Relative location of the document; its signature is at `href + ".minisig"`.
    pub href: String,
    /// SHA-256 of the document (lowercase hex).
    pub sha256: String,
    /// Size of the document in bytes.
    pub size: u64,
}

/// Checks a relative href: segments of `[A-Za-z0-9._-]`, no `.`/`..`, bounded.
pub fn is_valid_href(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 256
        && h.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

impl Feed {
    /// Parses and validates `feed.xml` bytes; `what` names the file in errors.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Feed> {
        let root = xml::parse(what, bytes, limits::MAX_FEED_BYTES, "feed", NAMESPACE)?;
        root.only_attrs(what, &["publisher", "generated", "expires"])?;
        root.no_text(what)?;
        let publisher = root.req_attr(what, "publisher")?;
        if publisher.is_empty() || publisher.len() > 200 || publisher.chars().any(char::is_control)
        {
            return Err(Error::xml(
                what,
                "publisher is empty, longer than 200 bytes or contains a control character",
            ));
        }
        let time = |name: &str| -> Result<Timestamp> {
            let v = root.req_attr(what, name)?;
            parse_rfc3339(v).ok_or_else(|| {
                Error::xml(
                    what,
                    format!("{name} '{}' is not an RFC 3339 time", v.escape_debug()),
                )
            })
        };
        let (generated, expires) = (time("generated")?, time("expires")?);
        if expires <= generated {
            return Err(Error::xml(what, "expires is not after generated"));
        }
        if root.children.len() > limits::MAX_MITIGATIONS * 2 {
            return Err(Error::Limit {
                what: format!("{what} entries"),
                limit: limits::MAX_MITIGATIONS as u64,
                unit: "entries",
            });
        }
        let mut entries = Vec::new();
        let mut retired = Vec::new();
        let mut seen = BTreeSet::new();
        for c in &root.children {
            c.leaf(what)?;
            c.no_text(what)?;
            let id = c.req_attr(what, "id")?;
            if !is_valid_id(id) {
                return Err(Error::xml(
                    what,
                    format!(
                        "id '{}' at line {} is not [A-Za-z0-9._-]{{1,64}}",
                        id.escape_debug(),
                        c.line
                    ),
                ));
            }
            if !seen.insert(id.to_string()) {
                return Err(Error::xml(
                    what,
                    format!("duplicate id {id} at line {}", c.line),
                ));
            }
            match c.name.as_str() {
                "entry" => {
                    c.only_attrs(what, &["id", "revision", "href", "sha256", "size"])?;
                    let revision = parse_revision(what, c.req_attr(what, "revision")?)?;
                    let href = c.req_attr(what, "href")?;
                    if !is_valid_href(href) {
                        return Err(Error::xml(
                            what,
                            format!(
                                "href '{}' of {id} is not a relative path of [A-Za-z0-9._-] segments",
                                href.escape_debug()
                            ),
                        ));
                    }
                    let sha256 = c.req_attr(what, "sha256")?;
                    if !is_sha256_hex(sha256) {
                        return Err(Error::xml(
                            what,
                            format!("sha256 of {id} is not 64 lowercase hex digits"),
                        ));
                    }
                    let size_s = c.req_attr(what, "size")?;
                    let size: u64 = size_s
                        .parse()
                        .ok()
                        .filter(|_| size_s.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| Error::xml(what, format!("size of {id} is not a number")))?;
                    if size > limits::MAX_DOCUMENT_BYTES {
                        return Err(Error::Limit {
                            what: format!("declared size of {id}"),
                            limit: limits::MAX_DOCUMENT_BYTES,
                            unit: "bytes",
                        });
                    }
                    entries.push(FeedEntry {
                        id: id.into(),
                        revision,
                        href: href.into(),
                        sha256: sha256.into(),
                        size,
                    });
                }
                "retired" => {
                    c.only_attrs(what, &["id"])?;
                    retired.push(id.to_string());
                }
                _ => return Err(root.unknown(what, c)),
            }
        }
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        retired.sort();
        Ok(Feed {
            publisher: publisher.into(),
            generated,
            expires,
            entries,
            retired,
        })
    }

    /// Serialises the feed deterministically.
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(&format!(
            "<feed xmlns=\"{NAMESPACE}\" publisher=\"{}\" generated=\"{}\" expires=\"{}\">\n",
            escape(&self.publisher),
            format(&self.generated),
            format(&self.expires)
        ));
        let mut entries: Vec<&FeedEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        for e in entries {
            s.push_str(&format!(
                "  <entry id=\"{}\" revision=\"{}\" href=\"{}\" sha256=\"{}\" size=\"{}\"/>\n",
                escape(&e.id),
                e.revision,
                escape(&e.href),
                e.sha256,
                e.size
            ));
        }
        let mut retired: Vec<&String> = self.retired.iter().collect();
        retired.sort();
        for r in retired {
            s.push_str(&format!("  <retired id=\"{}\"/>\n", escape(r)));
        }
        s.push_str("</feed>\n");
        s
    }

    /// The entry for `id`.
    pub fn entry(&self, id: &str) -> Option<&FeedEntry> {
        self.entries.iter().find(|e| e.id == id)
    }
}

/// Escapes text for an XML attribute value.
pub(crate) fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> Feed {
        Feed {
            publisher: "Example <PSIRT> & \"Co\"".into(),
            generated: parse_rfc3339("2026-11-28T08:00:00Z").unwrap(),
            expires: parse_rfc3339("2026-12-05T08:00:00Z").unwrap(),
            entries: vec![FeedEntry {
                id: "AM-1".into(),
                revision: 2,
                href: "mitigations/AM-1.xml".into(),
                sha256: "0".repeat(64),
                size: 10,
            }],
            retired: vec!["AM-0".into()],
        }
    }

    #[test]
    fn round_trips() {
        let f = feed();
        assert_eq!(Feed::parse("feed.xml", f.to_xml().as_bytes()).unwrap(), f);
    }

    #[test]
    fn refuses_bad_entries() {
        let xml = feed().to_xml();
        for (from, to, want) in [
            ("mitigations/AM-1.xml", "../AM-1.xml", "href"),
            ("mitigations/AM-1.xml", "/etc/passwd", "href"),
            ("size=\"10\"", "size=\"99999999999\"", "limit"),
            (
                "<retired id=\"AM-0\"/>",
                "<retired id=\"AM-1\"/>",
                "duplicate id AM-1",
            ),
            (
                "<retired id=\"AM-0\"/>",
                "<other id=\"AM-0\"/>",
                "unknown element",
            ),
            (
                "expires=\"2026-12-05T08:00:00Z\"",
                "expires=\"2026-11-01T08:00:00Z\"",
                "expires",
            ),
        ] {
            let bad = xml.replacen(from, to, 1);
            let err = Feed::parse("feed.xml", bad.as_bytes())
                .expect_err(to)
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
    }
}
