//! Ledger entries and the exact bytes their hash covers. An entry's hash is
//! SHA-256 over a versioned domain tag and a length-prefixed encoding of every
//! other column, so no two different entries (or field splits) share an encoding;
//! the encoding is specified in `docs/ledger.md` for auditors who re-implement it.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// Domain tag that starts every entry encoding (version 1).
pub const ENTRY_TAG: &[u8] = b"airlock-ledger/v1/entry";
/// Domain tag of the genesis value that the first entry's `prev_hash` holds.
pub const GENESIS_TAG: &[u8] = b"airlock-ledger/v1/genesis";
/// Largest `detail` JSON accepted in one entry, in bytes.
pub const MAX_DETAIL_BYTES: usize = 256 * 1024;
/// Longest `actor`, in bytes.
pub const MAX_ACTOR_BYTES: usize = 256;
/// Longest `host`, `kind`, `bundle` or `mitigation`, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// A SHA-256 value in the chain (`prev_hash`, `hash`, checkpoint heads).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<Digest> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest(out))
    }

    /// The lowercase hex form stored in the database and in exports.
    pub fn hex(&self) -> String {
        airlock_format::hash::hex(&self.0)
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.hex())
    }
}

/// The `prev_hash` of entry 1: SHA-256 of the genesis tag and the ledger id, both
/// length-prefixed.
pub fn genesis(ledger_id: &str) -> Digest {
    let mut h = Sha256::new();
    frame(&mut h, GENESIS_TAG);
    frame(&mut h, ledger_id.as_bytes());
    Digest(h.finalize().into())
}

/// One stored entry, borrowed: what the verifier walks (from SQLite rows or export
/// lines) without copying.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// Position in the chain: 1, 2, 3… with no gaps.
    pub seq: u64,
    /// RFC 3339 UTC time with microseconds (`2026-11-28T08:00:00.000000Z`).
    pub ts: &'a str,
    /// The host that wrote the entry.
    pub host: &'a str,
    /// Who caused it (a user, a key id, the applier).
    pub actor: &'a str,
    /// What happened (`bundle.verified`, `mitigation.applied`, …).
    pub kind: &'a str,
    /// The bundle concerned, if any.
    pub bundle: Option<&'a str>,
    /// The mitigation concerned, if any.
    pub mitigation: Option<&'a str>,
    /// A JSON object with the details.
    pub detail: &'a str,
    /// Hash of the previous entry (or the genesis value for entry 1).
    pub prev_hash: Digest,
}

impl EntryRef<'_> {
    /// The entry's hash: SHA-256 of the encoding in `docs/ledger.md`.
    pub fn hash(&self) -> Digest {
        let mut h = Sha256::new();
        frame(&mut h, ENTRY_TAG);
        h.update(self.seq.to_be_bytes());
        frame(&mut h, self.ts.as_bytes());
        frame(&mut h, self.host.as_bytes());
        frame(&mut h, self.actor.as_bytes());
        frame(&mut h, self.kind.as_bytes());
        optional(&mut h, self.bundle);
        optional(&mut h, self.mitigation);
        frame(&mut h, self.detail.as_bytes());
        h.update(self.prev_hash.0);
        Digest(h.finalize().into())
    }

    /// Checks that every field has the form airlock writes; the reason names the field.
    pub fn check_fields(&self) -> std::result::Result<(), String> {
        if parse_ts(self.ts).is_none() {
            return Err(format!(
                "ts '{}' is not an RFC 3339 UTC time with microseconds",
                printable(self.ts)
            ));
        }
        check_name("host", self.host)?;
        self.check_content()
    }

    /// The checks of [`EntryRef::check_fields`] on what a caller supplies: actor,
    /// kind, bundle, mitigation and detail.
    fn check_content(&self) -> std::result::Result<(), String> {
        check_actor(self.actor)?;
        check_kind(self.kind)?;
        if let Some(b) = self.bundle {
            check_name("bundle", b)?;
        }
        if let Some(m) = self.mitigation {
            check_name("mitigation", m)?;
        }
        check_detail(self.detail)
    }
}

/// One stored entry, owned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the chain.
    pub seq: u64,
    /// RFC 3339 UTC time with microseconds.
    pub ts: String,
    /// The host that wrote the entry.
    pub host: String,
    /// Who caused it.
    pub actor: String,
    /// What happened.
    pub kind: String,
    /// The bundle concerned, if any.
    pub bundle: Option<String>,
    /// The mitigation concerned, if any.
    pub mitigation: Option<String>,
    /// The details, as the exact JSON text that was hashed.
    pub detail: String,
    /// Hash of the previous entry, hex.
    pub prev_hash: String,
    /// This entry's hash, hex.
    pub hash: String,
}

impl Entry {
    /// Borrows the entry for hashing, or says which hash field is not 64 hex digits.
    pub fn as_ref(&self) -> std::result::Result<EntryRef<'_>, String> {
        let prev_hash = Digest::from_hex(&self.prev_hash)
            .ok_or_else(|| "prev_hash is not 64 lowercase hex digits".to_string())?;
        Ok(EntryRef {
            seq: self.seq,
            ts: &self.ts,
            host: &self.host,
            actor: &self.actor,
            kind: &self.kind,
            bundle: self.bundle.as_deref(),
            mitigation: self.mitigation.as_deref(),
            detail: &self.detail,
            prev_hash,
        })
    }

    /// The detail parsed as JSON (`Null` if it does not parse).
    pub fn detail_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.detail).unwrap_or(serde_json::Value::Null)
    }
}

/// An entry to append. The ledger fills in `seq`, `host`, `prev_hash` and, unless
/// [`NewEntry::at`] set one, the time.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub(crate) kind: String,
    pub(crate) actor: String,
    pub(crate) bundle: Option<String>,
    pub(crate) mitigation: Option<String>,
    pub(crate) detail: String,
    pub(crate) ts: Option<DateTime<Utc>>,
}

impl NewEntry {
    /// An entry of `kind` caused by `actor`, with `detail` (a JSON object).
    pub fn new(kind: &str, actor: &str, detail: serde_json::Value) -> NewEntry {
        NewEntry {
            kind: kind.into(),
            actor: actor.into(),
            bundle: None,
            mitigation: None,
            detail: detail.to_string(),
            ts: None,
        }
    }

    /// Names the bundle concerned.
    pub fn bundle(mut self, id: &str) -> NewEntry {
        self.bundle = Some(id.into());
        self
    }

    /// Names the mitigation concerned.
    pub fn mitigation(mut self, id: &str) -> NewEntry {
        self.mitigation = Some(id.into());
        self
    }

    /// Records `ts` instead of the current time (for importers and tests; the
    /// ledger never reorders, so an earlier time shows up as a warning in `verify`).
    pub fn at(mut self, ts: DateTime<Utc>) -> NewEntry {
        self.ts = Some(ts);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let probe = EntryRef {
            seq: 1,
            ts: "2000-01-01T00:00:00.000000Z",
            host: "h",
            actor: &self.actor,
            kind: &self.kind,
            bundle: self.bundle.as_deref(),
            mitigation: self.mitigation.as_deref(),
            detail: &self.detail,
            prev_hash: Digest([0; 32]),
        };
        probe
            .check_content()
            .map_err(|e| Error::Invalid(format!("cannot append a ledger entry: {e}")))
    }
}

/// Formats a time the one way the ledger stores it: UTC, microseconds, `Z`.
/// Fixed width, so text order is time order.
pub fn format_ts(t: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Years outside 0000-9999 cannot be written in this fixed width; they are
    // clamped (the ledger never sees them from a working clock).
    let year = t.year().clamp(0, 9999);
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        (t.nanosecond() / 1_000).min(999_999)
    )
}

/// Parses a stored time; only the exact form [`format_ts`] writes is accepted:
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, 27 bytes, a real date, no leap second.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 27 {
        return None;
    }
    let layout_ok = b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'.',
        26 => c == b'Z',
        _ => c.is_ascii_digit(),
    });
    if !layout_ok {
        return None;
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'))
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4) as i32, num(5, 7), num(8, 10))?;
    let time =
        chrono::NaiveTime::from_hms_micro_opt(num(11, 13), num(14, 16), num(17, 19), num(20, 26))?;
    Some(date.and_time(time).and_utc())
}

fn frame(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn optional(h: &mut Sha256, v: Option<&str>) {
    match v {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            frame(h, s.as_bytes());
        }
    }
}

/// `s` with control characters escaped, for messages.
pub(crate) fn printable(s: &str) -> String {
    let s: String = s.chars().take(80).collect();
    s.escape_debug().to_string()
}

/// Names (host, bundle and mitigation ids): 1-128 of `[A-Za-z0-9._:-]`.
pub(crate) fn check_name(field: &str, v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= MAX_NAME_BYTES
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} '{}' is not 1-{MAX_NAME_BYTES} characters of A-Z a-z 0-9 . _ : -",
            printable(v)
        ))
    }
}

/// Actors: 1-256 bytes of printable text (no control characters).
fn check_actor(v: &str) -> std::result::Result<(), String> {
    let control = if v.is_ascii() {
        v.bytes().any(|b| b.is_ascii_control())
    } else {
        v.chars().any(char::is_control)
    };
    if v.is_empty() || v.len() > MAX_ACTOR_BYTES || control {
        return Err(format!(
            "actor '{}' is not 1-{MAX_ACTOR_BYTES} bytes of printable text",
            printable(v)
        ));
    }
    Ok(())
}

/// Kinds: dotted lowercase words, such as `mitigation.rolled_back`.
fn check_kind(v: &str) -> std::result::Result<(), String> {
    // Each word starts with a lowercase letter; then lowercase, digits, `_`.
    let mut word_start = true;
    let mut ok = !v.is_empty() && v.len() <= 64;
    for &b in v.as_bytes() {
        ok &= if word_start {
            b.is_ascii_lowercase()
        } else {
            b == b'.' || b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
        };
        word_start = b == b'.';
    }
    let ok = ok && !word_start;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "kind '{}' is not lowercase words joined by dots (such as mitigation.applied)",
            printable(v)
        ))
    }
}

/// Details: a JSON object of at most [`MAX_DETAIL_BYTES`], on one line.
fn check_detail(v: &str) -> std::result::Result<(), String> {
    if v.len() > MAX_DETAIL_BYTES {
        return Err(format!(
            "detail is {} bytes, over the limit of {MAX_DETAIL_BYTES}",
            v.len()
        ));
    }
    if !v.starts_with('{') || v.bytes().any(|b| b == b'\n' || b == b'\r') {
        return Err("detail is not a one-line JSON object".into());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(v)
        .map(|_| ())
        .map_err(|e| format!("detail is not valid JSON ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_round_trips_and_only_the_canonical_form_parses() {
        let t = parse_ts("2026-11-28T08:00:00.123456Z").unwrap();
        assert_eq!(format_ts(&t), "2026-11-28T08:00:00.123456Z");
        for bad in [
            "2026-11-28T08:00:00Z",
            "2026-11-28T08:00:00.123456+00:00",
            "2026-11-28t08:00:00.123456Z",
            "2026-11-28T08:00:00.1234567Z",
            "2026-13-28T08:00:00.123456Z",
        ] {
            assert!(parse_ts(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn optional_none_and_empty_differ() {
        let base = EntryRef {
            seq: 1,
            ts: "2026-11-28T08:00:00.000000Z",
            host: "h",
            actor: "a",
            kind: "x.y",
            bundle: None,
            mitigation: None,
            detail: "{}",
            prev_hash: genesis("00"),
        };
        let empty = EntryRef {
            bundle: Some(""),
            ..base
        };
        assert_ne!(base.hash(), empty.hash());
    }

    #[test]
    fn kinds_are_lowercase_words_joined_by_dots() {
        for good in ["checkpoint", "mitigation.rolled_back", "a1.b_2.c"] {
            assert!(check_kind(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a..b",
            "a.",
            ".a",
            "A.b",
            "a.1b",
            "a-b",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actors_refuse_control_characters_ascii_or_not() {
        assert!(check_actor("airlock-applier:élodie").is_ok());
        for bad in ["", "a\tb", "a\u{7f}", "é\u{85}", &"a".repeat(257)] {
            assert!(check_actor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn format_ts_writes_what_parse_ts_reads() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-02-03T04:05:06.000007Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_ts(&t), "2026-02-03T04:05:06.000007Z");
        assert_eq!(parse_ts(&format_ts(&t)), Some(t));
        assert!(parse_ts("2026-02-29T00:00:00.000000Z").is_none());
        assert!(parse_ts("2026-12-31T23:59:60.000000Z").is_none());
    }

    #[test]
    fn field_checks_name_the_field() {
        let e = NewEntry::new("Bad Kind", "me", serde_json::json!({}));
        assert!(e.validate().unwrap_err().to_string().contains("kind"));
        let e = NewEntry::new("a.b", "me\n", serde_json::json!({}));
        assert!(e.validate().unwrap_err().to_string().contains("actor"));
        let e = NewEntry::new("a.b", "me", serde_json::json!([1]));
        assert!(e.validate().unwrap_err().to_string().contains("detail"));
        let e = NewEntry::new("a.b", "me", serde_json::json!({})).mitigation("a b");
        assert!(e.validate().unwrap_err().to_string().contains("mitigation"));
    }
}
