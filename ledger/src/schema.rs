//! The ledger's SQLite schema, kept as the exact statements that create it: `verify`
//! compares the database's schema with these texts, so a dropped or rewritten
//! trigger, table or index is reported even when every entry still hashes.
//!
//! `seq` is an `INTEGER PRIMARY KEY`: an explicit column that airlock always
//! writes and hashes. SQLite stores rows by it, and because it is declared, no
//! `VACUUM` or dump/restore can renumber it. The insert trigger uses
//! `RAISE(ROLLBACK)`, which ends the whole append transaction (all or nothing, as
//! a batch must be) and spares SQLite a statement journal on every insert.

/// The schema version this crate writes and reads.
pub const VERSION: i64 = 1;

/// Every schema object as `(type, name, sql)`, in creation order. The SQL text is
/// what SQLite stores in `sqlite_schema`, byte for byte.
pub const OBJECTS: &[(&str, &str, &str)] = &[
    (
        "table",
        "airlock_schema",
        "CREATE TABLE airlock_schema (version INTEGER NOT NULL)",
    ),
    (
        "table",
        "ledger_meta",
        "CREATE TABLE ledger_meta (ledger_id TEXT NOT NULL, host TEXT NOT NULL, created TEXT NOT NULL, genesis TEXT NOT NULL)",
    ),
    (
        "table",
        "entries",
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1), ts TEXT NOT NULL, host TEXT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, bundle TEXT, mitigation TEXT, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    ),
    (
        "index",
        "entries_by_mitigation",
        "CREATE INDEX entries_by_mitigation ON entries (mitigation) WHERE mitigation IS NOT NULL",
    ),
    (
        "index",
        "entries_by_bundle",
        "CREATE INDEX entries_by_bundle ON entries (bundle) WHERE bundle IS NOT NULL",
    ),
    (
        "index",
        "entries_by_kind",
        "CREATE INDEX entries_by_kind ON entries (kind)",
    ),
    (
        "index",
        "entries_by_ts",
        "CREATE INDEX entries_by_ts ON entries (ts)",
    ),
    (
        "trigger",
        "entries_extend_head",
        "CREATE TRIGGER entries_extend_head BEFORE INSERT ON entries WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM entries) OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM entries WHERE seq = NEW.seq - 1), (SELECT genesis FROM ledger_meta)) BEGIN SELECT RAISE(ROLLBACK, 'airlock ledger: a new entry must extend the head'); END",
    ),
    (
        "trigger",
        "entries_no_update",
        "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: UPDATE refused'); END",
    ),
    (
        "trigger",
        "entries_no_delete",
        "CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: DELETE refused'); END",
    ),
    (
        "trigger",
        "meta_once",
        "CREATE TRIGGER meta_once BEFORE INSERT ON ledger_meta WHEN (SELECT count(*) FROM ledger_meta) > 0 BEGIN SELECT RAISE(ABORT, 'airlock ledger: the ledger id is set once'); END",
    ),
    (
        "trigger",
        "meta_no_update",
        "CREATE TRIGGER meta_no_update BEFORE UPDATE ON ledger_meta BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: UPDATE refused'); END",
    ),
    (
        "trigger",
        "meta_no_delete",
        "CREATE TRIGGER meta_no_delete BEFORE DELETE ON ledger_meta BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: DELETE refused'); END",
    ),
    (
        "trigger",
        "schema_once",
        "CREATE TRIGGER schema_once BEFORE INSERT ON airlock_schema WHEN (SELECT count(*) FROM airlock_schema) > 0 BEGIN SELECT RAISE(ABORT, 'airlock ledger: the schema version is set once'); END",
    ),
    (
        "trigger",
        "schema_no_update",
        "CREATE TRIGGER schema_no_update BEFORE UPDATE ON airlock_schema BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: UPDATE refused'); END",
    ),
    (
        "trigger",
        "schema_no_delete",
        "CREATE TRIGGER schema_no_delete BEFORE DELETE ON airlock_schema BEGIN SELECT RAISE(ABORT, 'airlock ledger is append-only: DELETE refused'); END",
    ),
];
