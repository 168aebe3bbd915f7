//! The ledger database: one SQLite file in WAL mode with `synchronous=FULL`, the
//! defensive flag on, and triggers that refuse UPDATE and DELETE. Every append runs
//! in a `BEGIN IMMEDIATE` transaction that reads the head and writes the next `seq`,
//! so two writers queue instead of forking the chain, and a crash leaves either the
//! whole batch or none of it.

use crate::checkpoint::Checkpoint;
use crate::entry::{self, Digest, Entry, EntryRef, NewEntry, format_ts};
use crate::error::{Error, Result};
use crate::schema;
use airlock_format::keys::{KeyId, PublicKey, SecretKey};
use chrono::Utc;
use rusqlite::config::DbConfig;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pragmas of every ledger connection: temporary tables and indexes stay in
/// memory (no copies of ledger pages in /var/tmp), and SQLite checks cell sizes
/// while reading, since a database file is outside input.
pub const PRAGMAS: &[(&str, &str)] = &[("temp_store", "MEMORY"), ("cell_size_check", "ON")];

/// Extra pragmas of the read-only connections (`log`, `show`, `export`, `verify`):
/// no SQL may write. (A memory map was measured slower than reads here, for both
/// the full scan of `verify` and the scattered rows of `log --mitigation`.)
pub const READER_PRAGMAS: &[(&str, &str)] = &[("query_only", "ON")];

/// Pragmas of writers, set once the file is known to be a ledger (after
/// `journal_mode = WAL`): every commit is fsynced, and up to 64 MiB of pages stay
/// cached (the four indexes of a large ledger; 1.25x faster bulk appends measured).
pub const WRITER_PRAGMAS: &[(&str, &str)] = &[("synchronous", "FULL"), ("cache_size", "-65536")];

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Columns in the order of [`Entry`]'s fields.
const COLUMNS: &str = "seq, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash";

/// The newest entry of a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its sequence number (the ledger's size).
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
    /// Its time.
    pub ts: String,
}

/// An open ledger database.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    id: String,
    host: String,
    genesis: Digest,
}

/// Filters for [`Ledger::query`]; every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Entries at or after this time.
    pub since: Option<chrono::DateTime<Utc>>,
    /// Entries at or before this time.
    pub until: Option<chrono::DateTime<Utc>>,
    /// Entries of this kind.
    pub kind: Option<String>,
    /// Entries about this mitigation.
    pub mitigation: Option<String>,
    /// Entries about this bundle.
    pub bundle: Option<String>,
}

impl Ledger {
    /// Creates a new ledger at `path` for `host`, whose checkpoints `host_key` will
    /// sign, and writes its first entry (`ledger.created`). The database is built
    /// under a temporary name and renamed into place, so a crash never leaves a
    /// half-created ledger; an existing file is never replaced.
    pub fn create(path: &Path, host: &str, host_key: &PublicKey, actor: &str) -> Result<Ledger> {
        entry::check_name("host", host)
            .map_err(|e| Error::Invalid(format!("cannot create a ledger: {e}")))?;
        if path.exists() {
            return Err(Error::Exists { path: path.into() });
        }
        let dir = airlock_format::fsutil::parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".ledger-new-")
            .tempfile_in(dir)
            .map_err(|e| airlock_format::Error::io("create a temporary file in", dir, e))?;
        let id = new_ledger_id()?;
        let genesis = entry::genesis(&id);
        {
            let mut conn = connect(tmp.path(), true)?;
            make_durable(&conn, tmp.path())?;
            let sql = |action| Error::sqlite(tmp.path(), action);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin"))?;
            for (_, _, stmt) in schema::OBJECTS {
                tx.execute(stmt, []).map_err(sql("create the schema"))?;
            }
            tx.execute(
                "INSERT INTO airlock_schema (version) VALUES (?1)",
                [schema::VERSION],
            )
            .map_err(sql("write the schema version"))?;
            tx.execute(
                "INSERT INTO ledger_meta (ledger_id, host, created, genesis) VALUES (?1, ?2, ?3, ?4)",
                params![id, host, format_ts(&Utc::now()), genesis.hex()],
            )
            .map_err(sql("write the ledger id"))?;
            let first = NewEntry::new(
                "ledger.created",
                actor,
                serde_json::json!({
                    "ledger": id,
                    "host": host,
                    "host_key": host_key.id().to_string(),
                    "schema": schema::VERSION,
                }),
            );
            append_in(&tx, tmp.path(), host, genesis, vec![first])?;
            tx.commit().map_err(sql("commit"))?;
            conn.close().map_err(|(_, e)| sql("close")(e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| airlock_format::Error::io("fsync", tmp.path(), e))?;
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists { path: path.into() }
            } else {
                airlock_format::Error::io("rename into place", path, e.error).into()
            }
        })?;
        airlock_format::fsutil::sync_dir(dir)?;
        Ledger::open(path)
    }

    /// Opens an existing ledger for appending.
    pub fn open(path: &Path) -> Result<Ledger> {
        Ledger::open_with(path, true)
    }

    /// Opens an existing ledger read-only (for `log`, `show`, `export`, `verify`).
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        Ledger::open_with(path, false)
    }

    fn open_with(path: &Path, write: bool) -> Result<Ledger> {
        if !path.is_file() {
            let kind = if path.exists() {
                std::io::Error::other("it is not a regular file")
            } else {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
            };
            return Err(airlock_format::Error::io("open", path, kind).into());
        }
        let conn = connect(path, write)?;
        let has_schema: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'airlock_schema'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(Error::sqlite(path, "read the schema"))?
            == 1;
        if !has_schema {
            return Err(Error::NotALedger {
                path: path.into(),
                reason: "it has no airlock_schema table".into(),
            });
        }
        // From here the file claims to be an airlock ledger: anything missing or
        // doubled is damage or tampering (exit 3), not a wrong file.
        let broken = |reason: String| Error::Broken { seq: None, reason };
        let versions: Vec<i64> = one_column(&conn, "SELECT version FROM airlock_schema")?;
        if versions != [schema::VERSION] {
            return Err(broken(format!(
                "airlock_schema holds {versions:?}, not the one version {} this airlock writes: the table was edited",
                schema::VERSION
            )));
        }
        let mut metas: Vec<(String, String, String)> = {
            let mut stmt = conn
                .prepare("SELECT ledger_id, host, genesis FROM ledger_meta")
                .map_err(|e| broken(format!("ledger_meta cannot be read ({e})")))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| broken(format!("ledger_meta cannot be read ({e})")))?
        };
        let (id, host, genesis) = match (metas.pop(), metas.is_empty()) {
            (Some(m), true) => m,
            _ => {
                return Err(broken(
                    "ledger_meta does not hold exactly one row: the table was edited".into(),
                ));
            }
        };
        let genesis = Digest::from_hex(&genesis)
            .ok_or_else(|| broken("the stored genesis value is not a SHA-256".into()))?;
        if write {
            make_durable(&conn, path)?;
        }
        Ok(Ledger {
            conn,
            path: path.into(),
            id,
            host,
            genesis,
        })
    }

    /// The ledger id (32 hex digits, random at creation).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The host the ledger was created for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn stored_genesis(&self) -> Digest {
        self.genesis
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Appends one entry and returns the new head.
    pub fn append(&mut self, entry: NewEntry) -> Result<Head> {
        self.append_batch(vec![entry])
    }

    /// Appends `entries` in one transaction: all of them or, on any error, none.
    pub fn append_batch(&mut self, entries: impl IntoIterator<Item = NewEntry>) -> Result<Head> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sqlite(&path, "begin an append"))?;
        let head = append_in(&tx, &path, &self.host, self.genesis, entries)?;
        tx.commit()
            .map_err(Error::sqlite(&path, "commit an append"))?;
        Ok(head)
    }

    /// The newest entry.
    pub fn head(&self) -> Result<Head> {
        head_in(&self.conn, &self.path)?.ok_or_else(|| Error::Broken {
            seq: None,
            reason: "the ledger has no entries (not even ledger.created)".into(),
        })
    }

    /// The latest time any entry carries (not necessarily the head's: an entry
    /// written under a wound-back clock carries an earlier time than those before it).
    pub fn newest_time(&self) -> Result<Option<chrono::DateTime<Utc>>> {
        let ts: Option<String> = self
            .conn
            .query_row("SELECT max(ts) FROM entries", [], |r| r.get(0))
            .map_err(Error::sqlite(&self.path, "read the newest entry time"))?;
        Ok(ts.as_deref().and_then(crate::entry::parse_ts))
    }

    /// Signs a checkpoint of the current head with the host key and appends it as a
    /// `checkpoint` entry, in one transaction.
    pub fn checkpoint(&mut self, key: &SecretKey, actor: &str) -> Result<Checkpoint> {
        let expected = self.host_key()?;
        if key.id() != expected {
            return Err(Error::Invalid(format!(
                "the host key given is key {}, but this ledger's checkpoints are signed by key {expected}",
                key.id()
            )));
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::sqlite(&path, "begin a checkpoint"))?;
        let head = head_in(&tx, &path)?.ok_or_else(|| Error::Broken {
            seq: None,
            reason: "the ledger has no entries".into(),
        })?;
        let cp = Checkpoint::sign(
            key,
            &self.id,
            &self.host,
            head.seq,
            head.hash,
            &format_ts(&Utc::now()),
        )?;
        let entry = NewEntry::new(
            "checkpoint",
            actor,
            serde_json::json!({ "body": cp.body(), "signature": cp.signature() }),
        );
        append_in(&tx, &path, &self.host, self.genesis, vec![entry])?;
        tx.commit()
            .map_err(Error::sqlite(&path, "commit a checkpoint"))?;
        Ok(cp)
    }

    /// The newest checkpoint stored in the ledger, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let detail: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, detail FROM entries WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::sqlite(&self.path, "read the latest checkpoint"))?;
        detail
            .map(|(seq, d)| checkpoint_from_detail(seq as u64, &d))
            .transpose()
    }

    /// The key id of the host key named in the `ledger.created` entry.
    pub fn host_key(&self) -> Result<KeyId> {
        let detail = self
            .entry(1)?
            .ok_or_else(|| Error::broken(1, "entry 1 (ledger.created) is missing"))?
            .detail;
        host_key_from_detail(&detail).map_err(|r| Error::broken(1, r))
    }

    /// The entry with sequence number `seq`.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM entries WHERE seq = ?1"),
                [seq],
                row_to_entry,
            )
            .optional()
            .map_err(Error::sqlite(&self.path, "read an entry"))
    }

    /// Calls `f` with every entry that matches `q`, in sequence order; returns how
    /// many matched. Filters use the indexes on kind, mitigation, bundle and time.
    pub fn query(&self, q: &Query, mut f: impl FnMut(Entry) -> Result<()>) -> Result<u64> {
        let mut sql = format!("SELECT {COLUMNS} FROM entries WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut add = |clause: &str, v: String| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(t) = &q.since {
            add("ts >=", format_ts(t));
        }
        if let Some(t) = &q.until {
            add("ts <=", format_ts(t));
        }
        if let Some(k) = &q.kind {
            add("kind =", k.clone());
        }
        if let Some(m) = &q.mitigation {
            add("mitigation =", m.clone());
        }
        if let Some(b) = &q.bundle {
            add("bundle =", b.clone());
        }
        sql.push_str(" ORDER BY seq");
        let sqlerr = Error::sqlite(&self.path, "query entries");
        let mut stmt = self.conn.prepare(&sql).map_err(sqlerr)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(Error::sqlite(&self.path, "query entries"))?;
        let mut n = 0;
        while let Some(row) = rows
            .next()
            .map_err(Error::sqlite(&self.path, "query entries"))?
        {
            f(row_to_entry(row).map_err(Error::sqlite(&self.path, "read an entry"))?)?;
            n += 1;
        }
        Ok(n)
    }

    /// Calls `f` with every entry, borrowed, in sequence order, inside one read
    /// transaction (a consistent snapshot even while another process appends).
    /// A row whose types are not what airlock writes stops the walk with a
    /// [`Error::Broken`] naming it.
    pub(crate) fn scan(&self, mut f: impl FnMut(EntryRef<'_>, Digest) -> Result<()>) -> Result<()> {
        let sqlerr = |a| Error::sqlite(&self.path, a);
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sqlerr("begin a read"))?;
        let mut stmt = tx
            .prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY seq"))
            .map_err(sqlerr("read entries"))?;
        let mut rows = stmt.query([]).map_err(sqlerr("read entries"))?;
        let mut last = 0u64;
        while let Some(row) = rows.next().map_err(sqlerr("read entries"))? {
            let seq = row.get_ref(0).ok().and_then(|v| v.as_i64().ok());
            let seq = match seq.and_then(|s| u64::try_from(s).ok()) {
                Some(s) => s,
                None => return Err(Error::broken(last + 1, "seq is not a positive integer")),
            };
            last = seq;
            let text = |i: usize| -> Result<&str> {
                row.get_ref(i)
                    .ok()
                    .and_then(|v| v.as_str().ok())
                    .ok_or_else(|| Error::broken(seq, format!("column {i} is not text")))
            };
            let opt = |i: usize| -> Result<Option<&str>> {
                match row.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Null) => Ok(None),
                    _ => text(i).map(Some),
                }
            };
            let hash_of = |i: usize, name: &str| -> Result<Digest> {
                Digest::from_hex(text(i)?).ok_or_else(|| {
                    Error::broken(seq, format!("{name} is not 64 lowercase hex digits"))
                })
            };
            let e = EntryRef {
                seq,
                ts: text(1)?,
                host: text(2)?,
                actor: text(3)?,
                kind: text(4)?,
                bundle: opt(5)?,
                mitigation: opt(6)?,
                detail: text(7)?,
                prev_hash: hash_of(8, "prev_hash")?,
            };
            f(e, hash_of(9, "hash")?)?;
        }
        Ok(())
    }
}

/// Every value of a one-column query (damage is reported as a broken ledger).
fn one_column(conn: &Connection, sql: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare(sql).map_err(|e| Error::Broken {
        seq: None,
        reason: format!("{sql} failed ({e})"),
    })?;
    stmt.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Error::Broken {
            seq: None,
            reason: format!("{sql} failed ({e})"),
        })
}

/// Opens a connection with the ledger's settings.
fn connect(path: &Path, write: bool) -> Result<Connection> {
    let sql = |a| Error::sqlite(path, a);
    // Readers open read-write too (SQLite falls back to read-only on a
    // write-protected file) with `query_only` on: SQL cannot change anything, and
    // the last connection to close can merge and remove the -wal and -shm files
    // instead of leaving them beside the database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql("open"))?;
    let extra = if write { &[][..] } else { READER_PRAGMAS };
    for (name, value) in PRAGMAS.iter().chain(extra) {
        conn.pragma_update(None, name, value)
            .map_err(sql("set the connection's pragmas"))?;
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(sql("set the defensive flag"))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
        .map_err(sql("distrust the schema"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql("set the busy timeout"))?;
    Ok(conn)
}

/// Makes a writer's connection durable: WAL and `synchronous=FULL`. Called only
/// once the file is known to be an airlock ledger, so a wrong `--db` is never
/// converted to WAL.
fn make_durable(conn: &Connection, path: &Path) -> Result<()> {
    let sql = |a| Error::sqlite(path, a);
    {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql("switch to WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "{}: SQLite would not use WAL mode (got '{mode}')",
                path.display()
            )));
        }
        for (name, value) in WRITER_PRAGMAS {
            conn.pragma_update(None, name, value)
                .map_err(sql("set synchronous=FULL"))?;
        }
    }
    Ok(())
}

/// Reads the head inside `conn` (a transaction when appending).
fn head_in(conn: &Connection, path: &Path) -> Result<Option<Head>> {
    let row: Option<(i64, String, String)> = conn
        .query_row(
            "SELECT seq, hash, ts FROM entries ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(Error::sqlite(path, "read the head"))?;
    row.map(|(seq, hash, ts)| {
        let seq = u64::try_from(seq).map_err(|_| Error::broken(0, "the head's seq is negative"))?;
        let hash = Digest::from_hex(&hash)
            .ok_or_else(|| Error::broken(seq, "hash is not 64 lowercase hex digits"))?;
        Ok(Head { seq, hash, ts })
    })
    .transpose()
}

/// Appends `entries` after the head, inside the caller's transaction.
fn append_in(
    tx: &Transaction<'_>,
    path: &Path,
    host: &str,
    genesis: Digest,
    entries: impl IntoIterator<Item = NewEntry>,
) -> Result<Head> {
    let mut head = head_in(tx, path)?.unwrap_or(Head {
        seq: 0,
        hash: genesis,
        ts: String::new(),
    });
    let mut stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))
        .map_err(Error::sqlite(path, "prepare an append"))?;
    for e in entries {
        e.validate()?;
        let ts = format_ts(&e.ts.unwrap_or_else(Utc::now));
        let seq = head.seq + 1;
        let r = EntryRef {
            seq,
            ts: &ts,
            host,
            actor: &e.actor,
            kind: &e.kind,
            bundle: e.bundle.as_deref(),
            mitigation: e.mitigation.as_deref(),
            detail: &e.detail,
            prev_hash: head.hash,
        };
        let hash = r.hash();
        let seq_sql =
            i64::try_from(seq).map_err(|_| Error::Invalid("the ledger is full".into()))?;
        stmt.execute(params![
            seq_sql,
            ts,
            host,
            e.actor,
            e.kind,
            e.bundle,
            e.mitigation,
            e.detail,
            head.hash.hex(),
            hash.hex()
        ])
        .map_err(Error::sqlite(path, "append an entry"))?;
        head = Head { seq, hash, ts };
    }
    Ok(head)
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get::<_, i64>(0)?.max(0) as u64,
        ts: r.get(1)?,
        host: r.get(2)?,
        actor: r.get(3)?,
        kind: r.get(4)?,
        bundle: r.get(5)?,
        mitigation: r.get(6)?,
        detail: r.get(7)?,
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

/// A checkpoint stored in the detail of `checkpoint` entry `seq`.
pub(crate) fn checkpoint_from_detail(seq: u64, detail: &str) -> Result<Checkpoint> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Stored {
        body: String,
        signature: String,
    }
    let s: Stored = serde_json::from_str(detail)
        .map_err(|e| Error::broken(seq, format!("the checkpoint detail is malformed ({e})")))?;
    Checkpoint::parse(&s.body, &s.signature).map_err(|e| Error::broken(seq, e.to_string()))
}

/// The host key id named in a `ledger.created` detail.
pub(crate) fn host_key_from_detail(detail: &str) -> std::result::Result<KeyId, String> {
    let v: serde_json::Value = serde_json::from_str(detail)
        .map_err(|e| format!("ledger.created detail is malformed ({e})"))?;
    v.get("host_key")
        .and_then(|k| k.as_str())
        .and_then(parse_key_id)
        .ok_or_else(|| "ledger.created does not name a host key".to_string())
}

fn parse_key_id(s: &str) -> Option<KeyId> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u64::from_str_radix(s, 16).ok()?;
    Some(KeyId(n.to_le_bytes()))
}

/// A fresh random ledger id: 16 bytes from the operating system, as hex.
fn new_ledger_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Invalid(format!("the operating system gave no random bytes ({e})")))?;
    Ok(airlock_format::hash::hex(&b))
}
