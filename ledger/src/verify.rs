//! Chain verification, the same walk for a database and for an export: every `seq`
//! follows the last with no gap, every field has the form airlock writes, every
//! `prev_hash` is the previous entry's hash (the genesis value for entry 1), every
//! hash matches its entry, and every stored checkpoint signs the head before it.
//! With a checkpoint held by an auditor, the walk also proves the ledger extends it.
//! The first failure stops the walk and names its `seq`.

use crate::checkpoint::Checkpoint;
use crate::entry::{Digest, EntryRef, genesis};
use crate::error::{Error, Result};
use crate::schema;
use crate::store::{Ledger, checkpoint_from_detail, host_key_from_detail};
use airlock_format::keys::{KeyId, PublicKey};
use airlock_format::progress::Progress;

/// What to check beyond the chain itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The host's public key: every stored checkpoint must be signed by it, and the
    /// ledger must have been created for it.
    pub key: Option<&'a PublicKey>,
    /// A checkpoint the auditor holds (its signature already checked with `key`):
    /// the ledger must extend it.
    pub checkpoint: Option<&'a Checkpoint>,
}

/// A timestamp that goes backwards: reported, not a break (clocks are set wrong;
/// hashes are what prove order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClockWarning {
    /// The entry whose time is earlier than its predecessor's.
    pub seq: u64,
    /// Its time.
    pub ts: String,
    /// The predecessor's time.
    pub previous_ts: String,
}

/// What a successful verification established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The ledger id.
    pub ledger: String,
    /// The host the ledger was created for.
    pub host: String,
    /// The host key named in `ledger.created`.
    pub host_key: String,
    /// Number of entries (the head's seq).
    pub entries: u64,
    /// Hash of the last entry.
    pub head: String,
    /// Time of the last entry.
    pub last_ts: String,
    /// Checkpoints stored in the chain.
    pub checkpoints: u64,
    /// Whether their signatures were checked (a key was given).
    pub signatures_checked: bool,
    /// The size of the auditor's checkpoint the ledger was proven to extend.
    pub extends_checkpoint: Option<u64>,
    /// Timestamps that go backwards.
    pub clock_warnings: Vec<ClockWarning>,
}

/// The walk over a chain, fed one entry at a time.
#[derive(Debug)]
pub(crate) struct Verifier<'a> {
    opts: VerifyOptions<'a>,
    ledger: String,
    host: String,
    expected_seq: u64,
    prev: Digest,
    prev_ts: String,
    host_key: Option<KeyId>,
    checkpoints: u64,
    last_checkpoint: Option<Checkpoint>,
    extends: Option<u64>,
    warnings: Vec<ClockWarning>,
}

impl<'a> Verifier<'a> {
    pub(crate) fn new(ledger: &str, host: &str, opts: VerifyOptions<'a>) -> Result<Verifier<'a>> {
        if let Some(cp) = opts.checkpoint
            && (cp.ledger != ledger || cp.host != host)
        {
            return Err(Error::Checkpoint {
                what: format!("of ledger {} at size {}", cp.ledger, cp.size),
                reason: format!(
                    "it is for ledger {} of host {}, but this is ledger {ledger} of host {host}: the ledger was replaced by another one",
                    cp.ledger, cp.host
                ),
            });
        }
        Ok(Verifier {
            opts,
            ledger: ledger.into(),
            host: host.into(),
            expected_seq: 1,
            prev: genesis(ledger),
            prev_ts: String::new(),
            host_key: None,
            checkpoints: 0,
            last_checkpoint: None,
            extends: None,
            warnings: Vec::new(),
        })
    }

    /// Checks one entry and its stored hash.
    pub(crate) fn push(&mut self, e: EntryRef<'_>, stored: Digest) -> Result<()> {
        let seq = self.expected_seq;
        if e.seq != seq {
            return Err(Error::broken(
                seq,
                if e.seq > seq {
                    format!("missing: the next stored entry is {}", e.seq)
                } else {
                    format!("found entry {} again where {seq} should be", e.seq)
                },
            ));
        }
        e.check_fields().map_err(|r| Error::broken(seq, r))?;
        if e.prev_hash != self.prev {
            return Err(Error::broken(
                seq,
                if seq == 1 {
                    "prev_hash is not the genesis value of this ledger id".to_string()
                } else {
                    format!(
                        "prev_hash is not the hash of entry {}: an entry was changed, removed or reordered before this point",
                        seq - 1
                    )
                },
            ));
        }
        let hash = e.hash();
        if hash != stored {
            return Err(Error::broken(
                seq,
                "the stored hash does not match the entry's contents: the entry was edited",
            ));
        }
        if seq == 1 {
            self.check_created(&e)?;
        }
        if e.host != self.host {
            return Err(Error::broken(
                seq,
                format!(
                    "host is '{}', but this ledger belongs to {} (airlock writes the ledger's host in every entry)",
                    crate::entry::printable(e.host),
                    self.host
                ),
            ));
        }
        if e.kind == "checkpoint" {
            self.check_stored_checkpoint(&e)?;
        }
        if let Some(cp) = self.opts.checkpoint
            && cp.size == seq
        {
            if hash != cp.head {
                return Err(Error::Checkpoint {
                    what: format!("signed at {}", cp.time),
                    reason: format!(
                        "entry {seq} has hash {hash}, but the checkpoint says {}: the ledger was rewritten up to entry {seq}",
                        cp.head
                    ),
                });
            }
            self.extends = Some(seq);
        }
        if e.ts < self.prev_ts.as_str() {
            self.warnings.push(ClockWarning {
                seq,
                ts: e.ts.into(),
                previous_ts: std::mem::take(&mut self.prev_ts),
            });
        }
        e.ts.clone_into(&mut self.prev_ts);
        self.prev = hash;
        self.expected_seq += 1;
        Ok(())
    }

    fn check_created(&mut self, e: &EntryRef<'_>) -> Result<()> {
        if e.kind != "ledger.created" {
            return Err(Error::broken(
                1,
                format!("kind is '{}', not ledger.created", e.kind),
            ));
        }
        let v: serde_json::Value = serde_json::from_str(e.detail)
            .map_err(|_| Error::broken(1, "ledger.created detail is malformed"))?;
        if v.get("ledger").and_then(|l| l.as_str()) != Some(self.ledger.as_str()) {
            return Err(Error::broken(1, "ledger.created names another ledger id"));
        }
        if v.get("host").and_then(|l| l.as_str()) != Some(self.host.as_str()) {
            return Err(Error::broken(1, "ledger.created names another host"));
        }
        let key = host_key_from_detail(e.detail).map_err(|r| Error::broken(1, r))?;
        if let Some(pk) = self.opts.key
            && pk.id() != key
        {
            return Err(Error::broken(
                1,
                format!(
                    "this ledger was created for host key {key}, not for the key given ({}): it is another host's ledger or a fabricated one",
                    pk.id()
                ),
            ));
        }
        self.host_key = Some(key);
        Ok(())
    }

    fn check_stored_checkpoint(&mut self, e: &EntryRef<'_>) -> Result<()> {
        let seq = e.seq;
        let cp = checkpoint_from_detail(seq, e.detail)?;
        if cp.ledger != self.ledger || cp.host != self.host {
            return Err(Error::broken(
                seq,
                "the checkpoint names another ledger or host",
            ));
        }
        if cp.size.checked_add(1) != Some(seq) || cp.head != self.prev {
            return Err(Error::broken(
                seq,
                format!(
                    "the checkpoint signs size {} and head {}, which is not the entry before it",
                    cp.size, cp.head
                ),
            ));
        }
        if let Some(pk) = self.opts.key {
            cp.verify(pk)
                .map_err(|err| Error::broken(seq, err.to_string()))?;
        }
        self.checkpoints += 1;
        self.last_checkpoint = Some(cp);
        Ok(())
    }

    /// The last stored checkpoint seen so far.
    pub(crate) fn last_checkpoint(&self) -> Option<&Checkpoint> {
        self.last_checkpoint.as_ref()
    }

    /// Ends the walk: the chain must have entries and reach the auditor's checkpoint.
    pub(crate) fn finish(self) -> Result<Report> {
        let entries = self.expected_seq - 1;
        let Some(host_key) = self.host_key else {
            return Err(Error::Broken {
                seq: None,
                reason: "the ledger has no entries (not even ledger.created)".into(),
            });
        };
        if let Some(cp) = self.opts.checkpoint
            && self.extends.is_none()
        {
            return Err(Error::Checkpoint {
                what: format!("signed at {}", cp.time),
                reason: format!(
                    "the ledger has {entries} entries, but the checkpoint covers {}: entries were deleted or the ledger was replaced by an older copy",
                    cp.size
                ),
            });
        }
        Ok(Report {
            ledger: self.ledger,
            host: self.host,
            host_key: host_key.to_string(),
            entries,
            head: self.prev.hex(),
            last_ts: self.prev_ts,
            checkpoints: self.checkpoints,
            signatures_checked: self.opts.key.is_some(),
            extends_checkpoint: self.extends,
            clock_warnings: self.warnings,
        })
    }
}

/// Rows per batch handed from the reading thread to the checking thread.
const BATCH_ROWS: usize = 1024;
/// Batches that may wait between the two threads.
const QUEUED_BATCHES: usize = 4;

/// Entries copied out of SQLite: every text field of every row back to back in
/// one buffer, with the end offset of each field.
#[derive(Debug, Default)]
struct Batch {
    text: String,
    rows: Vec<BatchRow>,
}

#[derive(Debug)]
struct BatchRow {
    seq: u64,
    /// End offsets in `text` of ts, host, actor, kind, bundle, mitigation, detail.
    ends: [usize; 7],
    has_bundle: bool,
    has_mitigation: bool,
    prev_hash: Digest,
    hash: Digest,
}

impl Batch {
    fn push(&mut self, e: &EntryRef<'_>, hash: Digest) {
        let mut ends = [0; 7];
        let fields = [
            e.ts,
            e.host,
            e.actor,
            e.kind,
            e.bundle.unwrap_or(""),
            e.mitigation.unwrap_or(""),
            e.detail,
        ];
        for (end, f) in ends.iter_mut().zip(fields) {
            self.text.push_str(f);
            *end = self.text.len();
        }
        self.rows.push(BatchRow {
            seq: e.seq,
            ends,
            has_bundle: e.bundle.is_some(),
            has_mitigation: e.mitigation.is_some(),
            prev_hash: e.prev_hash,
            hash,
        });
    }

    fn for_each(&self, mut f: impl FnMut(EntryRef<'_>, Digest) -> Result<()>) -> Result<()> {
        let mut start = 0;
        for r in &self.rows {
            let mut field = |i: usize| {
                let s = self.text.get(start..r.ends[i]).unwrap_or_default();
                start = r.ends[i];
                s
            };
            let (ts, host, actor, kind) = (field(0), field(1), field(2), field(3));
            let (bundle, mitigation, detail) = (field(4), field(5), field(6));
            f(
                EntryRef {
                    seq: r.seq,
                    ts,
                    host,
                    actor,
                    kind,
                    bundle: r.has_bundle.then_some(bundle),
                    mitigation: r.has_mitigation.then_some(mitigation),
                    detail,
                    prev_hash: r.prev_hash,
                },
                r.hash,
            )?;
        }
        Ok(())
    }
}

impl Ledger {
    /// Verifies the whole ledger: its schema (every table, index and trigger exactly
    /// as airlock creates them), its ledger id, and the chain. Returns the first
    /// break as an error (exit 3).
    ///
    /// Two threads share the work: this one reads rows from SQLite and copies them
    /// into batches; a second one checks and hashes them in order. At most
    /// four batches of 1,024 rows wait between them, so memory stays bounded.
    pub fn verify(&self, opts: VerifyOptions<'_>) -> Result<Report> {
        self.verify_showing(opts, &Progress::hidden())
    }

    /// [`Ledger::verify`], counting the entries checked on `progress`.
    pub fn verify_showing(&self, opts: VerifyOptions<'_>, progress: &Progress) -> Result<Report> {
        self.check_schema()?;
        if self.stored_genesis() != genesis(self.id()) {
            return Err(Error::Broken {
                seq: None,
                reason: "the stored genesis value does not derive from the ledger id: ledger_meta was edited".into(),
            });
        }
        let mut v = Verifier::new(self.id(), self.host(), opts)?;
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(QUEUED_BATCHES);
            let checker = scope.spawn(move || -> Result<Verifier<'_>> {
                for batch in rx {
                    batch.for_each(|e, stored| v.push(e, stored))?;
                    progress.inc_by(batch.rows.len());
                }
                Ok(v)
            });
            let mut batch = Batch::default();
            let read = self.scan(|e, stored| {
                batch.push(&e, stored);
                if batch.rows.len() >= BATCH_ROWS {
                    // A closed channel means the checker stopped at a break; its
                    // error is the one reported below.
                    tx.send(std::mem::take(&mut batch))
                        .map_err(|_| Error::Invalid("the checking thread stopped".into()))?;
                }
                Ok(())
            });
            // Rows read before a read error are still checked first, so the
            // first bad seq is the one reported.
            let _ = tx.send(batch);
            drop(tx);
            let checked = checker
                .join()
                .map_err(|_| Error::Invalid("the checking thread failed".into()))?;
            let v = checked?;
            read?;
            v.finish()
        })
    }

    fn check_schema(&self) -> Result<()> {
        let mut stmt = self
            .conn()
            .prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(Error::sqlite(self.path(), "read the schema"))?;
        let found: Vec<(String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(Error::sqlite(self.path(), "read the schema"))?;
        let broken = |reason: String| Error::Broken { seq: None, reason };
        for (kind, name, sql) in schema::OBJECTS {
            match found.iter().find(|(_, n, _)| n == name) {
                None => {
                    return Err(broken(format!(
                        "the {kind} {name} was removed from the database"
                    )));
                }
                Some((k, _, s)) if k != kind || s.as_deref() != Some(*sql) => {
                    return Err(broken(format!("the {kind} {name} was altered")));
                }
                Some(_) => {}
            }
        }
        if let Some((kind, name, _)) = found
            .iter()
            .find(|(_, n, _)| !schema::OBJECTS.iter().any(|(_, o, _)| o == n))
        {
            return Err(broken(format!(
                "the database holds a {kind} {name} that airlock did not create"
            )));
        }
        Ok(())
    }
}
