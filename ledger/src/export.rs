//! Portable exports: JSON Lines with a header naming the ledger, one line per entry
//! (every column, `detail` as the exact JSON text that was hashed), and an end line
//! with the size, head and latest checkpoint. Reading an export treats it as hostile:
//! each line is bounded, unknown fields are refused, and a file without its end
//! line is reported as truncated.

use crate::checkpoint::Checkpoint;
use crate::entry::{Digest, Entry};
use crate::error::{Error, Result};
use crate::store::Ledger;
use crate::verify::{Report, Verifier, VerifyOptions};
use airlock_format::fsutil;
use airlock_format::progress::Progress;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// The export format version in the header line.
pub const FORMAT: u32 = 1;
/// Longest line accepted in an export, in bytes (a full-size detail, escaped).
pub const MAX_LINE_BYTES: u64 = 2 * 1024 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    airlock_ledger_export: u32,
    ledger: String,
    host: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    end: EndFields,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EndFields {
    size: u64,
    head: String,
    checkpoint: Option<StoredCheckpoint>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCheckpoint {
    body: String,
    signature: String,
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    /// Entries written.
    pub entries: u64,
    /// Hash of the last one.
    pub head: String,
    /// Size covered by the latest checkpoint, if the ledger has one.
    pub checkpoint_size: Option<u64>,
}

impl Ledger {
    /// Writes the whole ledger to `out` as JSON Lines, atomically (temporary file,
    /// fsync, rename), from one consistent snapshot.
    pub fn export(&self, out: &Path) -> Result<ExportSummary> {
        self.export_showing(out, &Progress::hidden())
    }

    /// [`Ledger::export`], counting the entries written on `progress`.
    pub fn export_showing(&self, out: &Path, progress: &Progress) -> Result<ExportSummary> {
        let dir = fsutil::parent_dir(out);
        let tmp = tempfile::Builder::new()
            .prefix(fsutil::TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| airlock_format::Error::io("create a temporary file in", dir, e))?;
        let io = |e: std::io::Error| Error::from(airlock_format::Error::io("write", out, e));
        let mut w = BufWriter::new(tmp.as_file());
        let header = Header {
            airlock_ledger_export: FORMAT,
            ledger: self.id().into(),
            host: self.host().into(),
        };
        json_line(&mut w, &header).map_err(io)?;
        let mut entries = 0;
        let mut head = String::new();
        let mut checkpoint = None;
        self.scan(|e, hash| {
            let owned = Entry {
                seq: e.seq,
                ts: e.ts.into(),
                host: e.host.into(),
                actor: e.actor.into(),
                kind: e.kind.into(),
                bundle: e.bundle.map(Into::into),
                mitigation: e.mitigation.map(Into::into),
                detail: e.detail.into(),
                prev_hash: e.prev_hash.hex(),
                hash: hash.hex(),
            };
            json_line(&mut w, &owned).map_err(io)?;
            if e.kind == "checkpoint" {
                checkpoint = Some(crate::store::checkpoint_from_detail(e.seq, e.detail)?);
            }
            entries = e.seq;
            head = owned.hash;
            if entries % PROGRESS_STEP == 0 {
                progress.inc_by(PROGRESS_STEP as usize);
            }
            Ok(())
        })?;
        let end = End {
            end: EndFields {
                size: entries,
                head: head.clone(),
                checkpoint: checkpoint.as_ref().map(|c: &Checkpoint| StoredCheckpoint {
                    body: c.body().into(),
                    signature: c.signature().into(),
                }),
            },
        };
        json_line(&mut w, &end).map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        fsutil::commit_temp(tmp, out, 0o644)?;
        Ok(ExportSummary {
            entries,
            head,
            checkpoint_size: checkpoint.map(|c| c.size),
        })
    }
}

/// Entries between two progress updates.
const PROGRESS_STEP: u64 = 1024;

fn json_line(w: &mut impl Write, v: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, v)?;
    w.write_all(b"\n")
}

/// Verifies an export file on any machine, without the database: the same chain
/// walk as [`Ledger::verify`], plus the end line (size, head and the latest
/// checkpoint must match the entries, so a cut-off file is caught).
pub fn verify_export(path: &Path, opts: VerifyOptions<'_>) -> Result<Report> {
    let file = std::fs::File::open(path).map_err(|e| airlock_format::Error::io("open", path, e))?;
    verify_export_from(BufReader::new(file), path, opts)
}

/// [`verify_export`] over any reader (`path` names it in messages).
pub fn verify_export_from(
    mut r: impl BufRead,
    path: &Path,
    opts: VerifyOptions<'_>,
) -> Result<Report> {
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let bad = |line: u64, reason: String| Error::Export {
        path: path.into(),
        line,
        reason,
    };
    let mut next = |buf: &mut Vec<u8>, line_no: &mut u64| -> Result<bool> {
        buf.clear();
        *line_no += 1;
        let n = (&mut r)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', buf)
            .map_err(|e| airlock_format::Error::io("read", path, e))?;
        if n == 0 {
            return Ok(false);
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n as u64 > MAX_LINE_BYTES {
                bad(*line_no, format!("longer than {MAX_LINE_BYTES} bytes"))
            } else {
                bad(
                    *line_no,
                    "the file ends in the middle of a line: it is truncated".into(),
                )
            });
        }
        buf.pop();
        Ok(true)
    };
    if !next(&mut buf, &mut line_no)? {
        return Err(bad(1, "the file is empty".into()));
    }
    let header: Header = serde_json::from_slice(&buf)
        .map_err(|e| bad(1, format!("not an airlock ledger export header ({e})")))?;
    if header.airlock_ledger_export != FORMAT {
        return Err(bad(
            1,
            format!(
                "export format {}; this airlock reads format {FORMAT}",
                header.airlock_ledger_export
            ),
        ));
    }
    if !airlock_format::hash::is_lower_hex(&header.ledger, 32) {
        return Err(bad(
            1,
            "the ledger id is not 32 lowercase hex digits".into(),
        ));
    }
    let mut v = Verifier::new(&header.ledger, &header.host, opts)?;
    loop {
        if !next(&mut buf, &mut line_no)? {
            return Err(bad(
                line_no,
                "the file ends without its end line: it is truncated".into(),
            ));
        }
        if buf.starts_with(b"{\"end\":") {
            let end: End = serde_json::from_slice(&buf)
                .map_err(|e| bad(line_no, format!("malformed end line ({e})")))?;
            let end_line = line_no;
            let same_checkpoint = match (&end.end.checkpoint, v.last_checkpoint()) {
                (None, None) => true,
                (Some(s), Some(c)) => s.body == c.body() && s.signature == c.signature(),
                _ => false,
            };
            let report = v.finish()?;
            if end.end.size != report.entries || end.end.head != report.head {
                return Err(bad(
                    end_line,
                    format!(
                        "the end line says {} entries ending in {}, but the file holds {} ending in {}",
                        end.end.size, end.end.head, report.entries, report.head
                    ),
                ));
            }
            if !same_checkpoint {
                return Err(bad(
                    end_line,
                    "the end line's checkpoint is not the latest checkpoint entry".into(),
                ));
            }
            if next(&mut buf, &mut line_no)? {
                return Err(bad(line_no, "data after the end line".into()));
            }
            return Ok(report);
        }
        let e: Entry = serde_json::from_slice(&buf)
            .map_err(|e| bad(line_no, format!("not a ledger entry ({e})")))?;
        let stored = Digest::from_hex(&e.hash)
            .ok_or_else(|| Error::broken(e.seq, "hash is not 64 lowercase hex digits"))?;
        let r = e.as_ref().map_err(|reason| Error::broken(e.seq, reason))?;
        v.push(r, stored)?;
    }
}
