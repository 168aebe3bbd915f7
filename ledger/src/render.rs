//! How entries are shown: an aligned table for people, JSON with `detail` as an
//! object, and RFC 4180 CSV that spreadsheet programs open safely (cells that a
//! spreadsheet would run as a formula are prefixed with `'`).

use crate::entry::Entry;
use std::io::{self, Write};

/// CSV header row, in column order.
pub const CSV_HEADER: &str = "seq,ts,host,actor,kind,bundle,mitigation,detail,prev_hash,hash";

/// The table header.
pub fn table_header(w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "{:>7}  {:<20}  {:<24}  {:<24}  {:<12}  {:<32}  DETAIL",
        "SEQ", "TIME (UTC)", "KIND", "MITIGATION", "BUNDLE", "ACTOR"
    )
}

/// One table row: the time to the second, long ids and details shortened.
pub fn table_row(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let time = match (e.ts.get(..19), e.ts.len()) {
        (Some(t), 27) => format!("{t}Z"),
        _ => e.ts.clone(),
    };
    writeln!(
        w,
        "{:>7}  {:<20}  {:<24}  {:<24}  {:<12}  {:<32}  {}",
        e.seq,
        time,
        e.kind,
        e.mitigation.as_deref().unwrap_or("-"),
        short(e.bundle.as_deref().unwrap_or("-"), 12),
        short(&e.actor, 32),
        short(&e.detail, 60)
    )
}

/// An entry as JSON (`log --format json`, `show --json`): every column, with
/// `detail` embedded as the stored JSON text when it is valid JSON (it always is
/// for entries airlock wrote), else as a string.
#[derive(serde::Serialize)]
struct JsonEntry<'a> {
    seq: u64,
    ts: &'a str,
    host: &'a str,
    actor: &'a str,
    kind: &'a str,
    bundle: Option<&'a str>,
    mitigation: Option<&'a str>,
    detail: Detail<'a>,
    prev_hash: &'a str,
    hash: &'a str,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    Json(&'a serde_json::value::RawValue),
    Text(&'a str),
}

impl<'a> JsonEntry<'a> {
    fn of(e: &'a Entry) -> JsonEntry<'a> {
        JsonEntry {
            seq: e.seq,
            ts: &e.ts,
            host: &e.host,
            actor: &e.actor,
            kind: &e.kind,
            bundle: e.bundle.as_deref(),
            mitigation: e.mitigation.as_deref(),
            detail: serde_json::from_str(&e.detail)
                .map(Detail::Json)
                .unwrap_or(Detail::Text(&e.detail)),
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }
    }
}

/// Writes an entry as JSON without building a tree (`log --format json`).
pub fn write_json(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    serde_json::to_writer(w, &JsonEntry::of(e)).map_err(io::Error::from)
}

/// An entry as a JSON value (`show --json`), the same shape as [`write_json`].
pub fn json_value(e: &Entry) -> serde_json::Value {
    serde_json::to_value(JsonEntry::of(e)).unwrap_or_default()
}

/// One CSV record (with its line ending).
pub fn csv_row(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let seq = e.seq.to_string();
    let cells = [
        seq.as_str(),
        &e.ts,
        &e.host,
        &e.actor,
        &e.kind,
        e.bundle.as_deref().unwrap_or(""),
        e.mitigation.as_deref().unwrap_or(""),
        &e.detail,
        &e.prev_hash,
        &e.hash,
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(csv_cell(c).as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// Quotes a CSV cell when it needs it, doubling inner quotes; a cell that starts
/// like a spreadsheet formula (`= + - @`, tab, CR) gets a leading `'`.
pub fn csv_cell(s: &str) -> String {
    let guarded;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{s}");
        guarded.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `s` cut to `n` characters with `…`, control characters escaped.
fn short(s: &str, n: usize) -> String {
    let s: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_guarded() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }
}
