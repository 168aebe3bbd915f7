//! Tamper tests for the ledger: every row builds a real ledger with the test-only
//! `ledger-fixture` tool, tampers with it in ONE way (SQL through rusqlite, raw bytes
//! of the file, the checkpoint file or an export) and requires the real
//! `airlock-ledger verify` to exit 3 naming the first bad entry or the reason.
//!
//! Edits that must be caught by the hash chain itself re-create the append-only
//! triggers from their exact stored SQL afterwards, so `verify`'s schema check
//! passes and only the chain (or the auditor's checkpoint) can catch them.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::keys::{PasswordSource, PublicKey, SecretKey, generate};
use airlock_ledger::entry::{Digest, EntryRef, format_ts, parse_ts};
use airlock_ledger::{Checkpoint, Entry, Ledger, NewEntry};
use airlock_tests::{Run, fixture, ledger};
use rusqlite::{Connection, OptionalExtension, params};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The host every fixture ledger is created for.
const HOST: &str = "exch01";
/// Entries in a fresh fixture ledger.
const SIZE: u64 = 22;
/// The entry that the column edits hit: `bundle.verified`, bundle `b-0`, no mitigation.
const MID: u64 = 12;
/// The size the checkpoint FILE signs (`airlock-ledger checkpoint --out`); the
/// command also stores it as entry `CP_SIZE + 1`.
const CP_SIZE: u64 = 15;

/// A fresh fixture ledger in a temporary directory:
///
/// | seq    | what                                                        |
/// |--------|-------------------------------------------------------------|
/// | 1      | ledger.created                                              |
/// | 2-9    | fixture entries (kind by seq % 3: verified/applied/skipped) |
/// | 10     | checkpoint stored by `ledger-fixture checkpoint` (size 9)   |
/// | 11-15  | fixture entries                                             |
/// | 16     | checkpoint stored by `airlock-ledger checkpoint --out cp`   |
/// | 17-22  | fixture entries                                             |
struct Fix {
    dir: tempfile::TempDir,
}

impl Fix {
    fn new() -> Fix {
        let dir = tempfile::tempdir().unwrap();
        let f = Fix { dir };
        let db = f.db();
        fixture([os("create"), db.clone().into(), os(HOST)]).expect(0);
        fixture([os("append"), db.clone().into(), os("8")]).expect(0);
        fixture([os("checkpoint"), db.clone().into()]).expect(0);
        fixture([os("append"), db.clone().into(), os("5"), os("2")]).expect(0);
        ledger([
            os("--db"),
            db.clone().into(),
            os("checkpoint"),
            os("--out"),
            f.cp().into(),
        ])
        .expect(0);
        fixture([os("append"), db.into(), os("6")]).expect(0);
        f.assert_closed();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn db(&self) -> PathBuf {
        self.path("ledger.db")
    }
    /// The host's public key.
    fn key(&self) -> PathBuf {
        self.path("host.pub")
    }
    /// The checkpoint file (size [`CP_SIZE`]); its signature is `cp.minisig`.
    fn cp(&self) -> PathBuf {
        self.path("cp")
    }

    /// `--db DB verify`: the chain alone (with host.pub beside the database).
    fn plain(&self) -> Vec<OsString> {
        vec![os("--db"), self.db().into(), os("verify")]
    }

    /// `--db DB verify --checkpoint CP --key host.pub`.
    fn against(&self, cp: &Path) -> Vec<OsString> {
        let mut a = self.plain();
        a.extend([
            os("--checkpoint"),
            cp.into(),
            os("--key"),
            self.key().into(),
        ]);
        a
    }

    /// No connection is open: SQLite merged and removed the WAL, so the `.db` file
    /// alone holds the ledger (safe to copy, byte-edit or put back).
    fn assert_closed(&self) {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = self.db().into_os_string();
            p.push(suffix);
            assert!(
                !Path::new(&p).exists(),
                "{} still exists",
                Path::new(&p).display()
            );
        }
    }

    /// Runs `edit` on the database with the triggers `drop` removed, then re-creates
    /// them from the exact SQL SQLite stored for them, and checks that the schema is
    /// byte for byte what it was (so only the chain can catch the edit).
    fn edit(&self, drop: &[&str], edit: impl FnOnce(&Connection)) {
        let conn = Connection::open(self.db()).unwrap();
        let before = schema(&conn);
        for name in drop {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            conn.execute(&format!("DROP TRIGGER {name}"), []).unwrap();
            assert!(sql.starts_with(&format!("CREATE TRIGGER {name} ")), "{sql}");
        }
        edit(&conn);
        for (kind, name, sql) in &before {
            if kind == "trigger" && drop.contains(&name.as_str()) {
                conn.execute(sql, []).unwrap();
            }
        }
        assert_eq!(
            schema(&conn),
            before,
            "the triggers were not restored exactly"
        );
        conn.close().unwrap();
        self.assert_closed();
    }

    /// `UPDATE` with the update trigger dropped; exactly one row must change.
    fn update(&self, sql: &str, params: impl rusqlite::Params) {
        self.edit(&["entries_no_update"], |c| {
            assert_eq!(c.execute(sql, params).unwrap(), 1, "{sql}");
        });
    }

    /// Entries with `seq >= from`, in order.
    fn entries_from(&self, from: u64) -> Vec<Entry> {
        let conn = Connection::open(self.db()).unwrap();
        let v = entries_from(&conn, from);
        conn.close().unwrap();
        v
    }
}

fn os(s: &str) -> OsString {
    s.into()
}

/// Every schema object as `(type, name, sql)`, by name.
fn schema(conn: &Connection) -> Vec<(String, String, String)> {
    let mut stmt = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get::<_, i64>(0)? as u64,
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

const COLUMNS: &str = "seq, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash";

fn entries_from(conn: &Connection, from: u64) -> Vec<Entry> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM entries WHERE seq >= ?1 ORDER BY seq"
        ))
        .unwrap();
    stmt.query_map([from as i64], row_to_entry)
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn entry(conn: &Connection, seq: u64) -> Option<Entry> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM entries WHERE seq = ?1"),
        [seq as i64],
        row_to_entry,
    )
    .optional()
    .unwrap()
}

/// Gives `e` the next `seq` after `prev` and its correct `prev_hash` and `hash`,
/// computed with the library's own hashing, as a forger who read the docs would.
fn rechain(e: &mut Entry, seq: u64, prev: Digest) -> Digest {
    e.seq = seq;
    e.prev_hash = prev.hex();
    let r = EntryRef {
        prev_hash: prev,
        ..e.as_ref().unwrap()
    };
    let hash = r.hash();
    e.hash = hash.hex();
    hash
}

/// Deletes every entry from `from` on and appends `tail` in their place with correct
/// seqs and hashes. The inserts go through the `entries_extend_head` trigger, which
/// proves that the forged chain is internally consistent.
fn forge_tail(f: &Fix, from: u64, tail: Vec<Entry>) {
    f.edit(&["entries_no_delete"], |c| {
        let n = c
            .execute("DELETE FROM entries WHERE seq >= ?1", [from as i64])
            .unwrap();
        assert_eq!(n as u64, SIZE - from + 1, "deleted rows");
        let mut prev = Digest::from_hex(&entry(c, from - 1).unwrap().hash).unwrap();
        for (i, mut e) in tail.into_iter().enumerate() {
            prev = rechain(&mut e, from + i as u64, prev);
            c.execute(
                &format!("INSERT INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    e.seq as i64,
                    e.ts,
                    e.host,
                    e.actor,
                    e.kind,
                    e.bundle,
                    e.mitigation,
                    e.detail,
                    e.prev_hash,
                    e.hash
                ],
            )
            .unwrap();
        }
    });
}

/// A forged entry (no checkpoint: the forger has no host key).
fn forged(i: u64) -> Entry {
    Entry {
        seq: 0,
        ts: format_ts(&chrono::Utc::now()),
        host: HOST.into(),
        actor: "ledger-fixture".into(),
        kind: "mitigation.removed".into(),
        bundle: Some("b-0".into()),
        mitigation: Some(format!("m-{i}")),
        detail: format!(r#"{{"forged":{i}}}"#),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Runs `verify` and returns its output (for the rows that must pass).
fn verify(args: &[OsString]) -> Run {
    ledger(args)
}

/// The first `error:` line of stderr (what the report shows).
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_else(|| stderr.lines().next().unwrap_or(""))
}

/// One tamper: `tamper` changes a fresh ledger (asserting that the change really
/// happened) and returns the `airlock-ledger` arguments that must exit 3 with
/// `expect` in stderr.
struct Case {
    name: &'static str,
    tamper: fn(&Fix) -> Vec<OsString>,
    expect: &'static str,
}

const HASH_EDITED: &str = "the stored hash does not match the entry's contents";

fn cases() -> Vec<Case> {
    vec![
        // --- one column of one middle entry ---------------------------------------
        Case {
            name: "column seq: entry 12 moved to the free number 100",
            tamper: |f| {
                f.update("UPDATE entries SET seq = 100 WHERE seq = 12", []);
                f.plain()
            },
            expect: "entry 12: missing: the next stored entry is 13",
        },
        Case {
            name: "column ts: entry 12 one second later, same format",
            tamper: |f| {
                let ts = f.entries_from(MID)[0].ts.clone();
                let later = format_ts(&(parse_ts(&ts).unwrap() + chrono::TimeDelta::seconds(1)));
                assert!(parse_ts(&later).is_some() && later != ts);
                f.update("UPDATE entries SET ts = ?1 WHERE seq = 12", [later]);
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column host: entry 12 written by another host",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET host = 'exch02' WHERE seq = 12 AND host = 'exch01'",
                    [],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column actor: entry 12 blamed on someone else",
            tamper: |f| {
                f.update("UPDATE entries SET actor = 'mallory' WHERE seq = 12", []);
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column kind: entry 12 bundle.verified -> bundle.rejected",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET kind = 'bundle.rejected' WHERE seq = 12 AND kind = 'bundle.verified'",
                    [],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column bundle: value -> NULL (entry 12)",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET bundle = NULL WHERE seq = 12 AND bundle = 'b-0'",
                    [],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column bundle: NULL -> value (entry 14, mitigation.skipped)",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET bundle = 'b-0' WHERE seq = 14 AND bundle IS NULL",
                    [],
                );
                f.plain()
            },
            expect: "entry 14: the stored hash does not match",
        },
        Case {
            name: "column mitigation: NULL -> value (entry 12)",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET mitigation = 'm-2' WHERE seq = 12 AND mitigation IS NULL",
                    [],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column mitigation: value -> NULL (entry 13, mitigation.applied)",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET mitigation = NULL WHERE seq = 13 AND mitigation = 'm-3'",
                    [],
                );
                f.plain()
            },
            expect: "entry 13: the stored hash does not match",
        },
        Case {
            name: "column detail: entry 12 detail rewritten (valid JSON)",
            tamper: |f| {
                f.update(
                    r#"UPDATE entries SET detail = '{"i":12,"note":"fixture entry 99"}' WHERE seq = 12 AND detail = '{"i":12,"note":"fixture entry 12"}'"#,
                    [],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        Case {
            name: "column prev_hash: entry 12 points at entry 10",
            tamper: |f| {
                let e10 = f.entries_from(10)[0].hash.clone();
                f.update("UPDATE entries SET prev_hash = ?1 WHERE seq = 12", [e10]);
                f.plain()
            },
            expect: "entry 12: prev_hash is not the hash of entry 11",
        },
        Case {
            name: "column hash: entry 12 hash replaced",
            tamper: |f| {
                f.update(
                    "UPDATE entries SET hash = ?1 WHERE seq = 12",
                    ["ab".repeat(32)],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        // --- field boundary ----------------------------------------------------------
        Case {
            name: "field boundary: last char of actor moved to the front of kind",
            tamper: |f| {
                let e = &f.entries_from(MID)[0];
                let (actor, last) = e.actor.split_at(e.actor.len() - 1);
                let kind = format!("{last}{}", e.kind);
                // Same concatenation, both fields still valid: only the length
                // prefixes in the hashed encoding tell the two entries apart.
                assert_eq!(format!("{actor}{kind}"), format!("{}{}", e.actor, e.kind));
                assert_eq!(
                    (actor, kind.as_str()),
                    ("ledger-fixtur", "ebundle.verified")
                );
                f.update(
                    "UPDATE entries SET actor = ?1, kind = ?2 WHERE seq = 12",
                    [actor, kind.as_str()],
                );
                f.plain()
            },
            expect: HASH_EDITED,
        },
        // --- whole entries -----------------------------------------------------------
        Case {
            name: "entry 12 deleted",
            tamper: |f| {
                f.edit(&["entries_no_delete"], |c| {
                    assert_eq!(
                        c.execute("DELETE FROM entries WHERE seq = 12", []).unwrap(),
                        1
                    );
                });
                f.plain()
            },
            expect: "entry 12: missing: the next stored entry is 13",
        },
        Case {
            name: "entries 12 and 13 swapped (every column but seq)",
            tamper: |f| {
                let [a, b] = [MID, MID + 1].map(|s| f.entries_from(s).remove(0));
                f.edit(&["entries_no_update"], |c| {
                    for (seq, e) in [(a.seq, &b), (b.seq, &a)] {
                        let n = c
                            .execute(
                                "UPDATE entries SET ts = ?2, host = ?3, actor = ?4, kind = ?5, bundle = ?6, mitigation = ?7, detail = ?8, prev_hash = ?9, hash = ?10 WHERE seq = ?1",
                                params![
                                    seq as i64,
                                    e.ts,
                                    e.host,
                                    e.actor,
                                    e.kind,
                                    e.bundle,
                                    e.mitigation,
                                    e.detail,
                                    e.prev_hash,
                                    e.hash
                                ],
                            )
                            .unwrap();
                        assert_eq!(n, 1);
                    }
                });
                f.plain()
            },
            expect: "entry 12: prev_hash is not the hash of entry 11",
        },
        // --- consistent rewrites: only the auditor's checkpoint catches them -----------
        Case {
            name: "entry 12 deleted, later entries renumbered and rehashed (checkpoint file)",
            tamper: |f| {
                // The forger also drops the stored checkpoint entries after 12, which
                // they cannot re-sign; what remains is a consistent chain.
                let tail: Vec<Entry> = f
                    .entries_from(MID + 1)
                    .into_iter()
                    .filter(|e| e.kind != "checkpoint")
                    .collect();
                assert_eq!(tail.len() as u64, SIZE - MID - 1);
                forge_tail(f, MID, tail);
                let alone = verify(&f.plain());
                println!(
                    "    [renumbered] verify without --checkpoint: exit {}: {}",
                    alone.code,
                    alone.stdout.lines().next().unwrap_or("")
                );
                alone.expect(0);
                f.against(&f.cp())
            },
            expect: "the ledger was rewritten up to entry 15",
        },
        Case {
            name: "tail deleted: entries 13-22, across the checkpoint file's size 15",
            tamper: |f| {
                forge_tail(f, MID + 1, Vec::new());
                verify(&f.plain()).expect(0);
                f.against(&f.cp())
            },
            expect: "the ledger has 12 entries, but the checkpoint covers 15",
        },
        Case {
            name: "tail deleted then forged entries appended with correct hashes",
            tamper: |f| {
                forge_tail(f, MID + 1, (0..15).map(forged).collect());
                let v = verify(&[f.plain(), vec![os("--json")]].concat()).expect(0);
                let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
                assert_eq!(report["entries"], 27, "{}", v.stdout);
                f.against(&f.cp())
            },
            expect: "the ledger was rewritten up to entry 15",
        },
        Case {
            name: "database replaced by an older copy (newer checkpoint file)",
            tamper: |f| {
                let old = f.path("old.db");
                std::fs::copy(f.db(), &old).unwrap();
                fixture([os("append"), f.db().into(), os("5")]).expect(0);
                let cp2 = f.path("cp2");
                ledger([
                    os("--db"),
                    f.db().into(),
                    os("checkpoint"),
                    os("--out"),
                    cp2.clone().into(),
                ])
                .expect(0);
                f.assert_closed();
                assert!(
                    std::fs::read_to_string(&cp2)
                        .unwrap()
                        .contains("\nsize 27\n")
                );
                std::fs::copy(&old, f.db()).unwrap();
                // The old copy is a valid ledger, and extends the OLD checkpoint.
                verify(&f.against(&f.cp())).expect(0);
                f.against(&cp2)
            },
            expect: "the ledger has 22 entries, but the checkpoint covers 27",
        },
        Case {
            name: "fabricated database with another host key (original host.pub)",
            tamper: |f| {
                let fab = fabricated(f);
                vec![
                    os("--db"),
                    fab.into(),
                    os("verify"),
                    os("--key"),
                    f.key().into(),
                ]
            },
            expect: "not for the key given",
        },
        Case {
            name: "fabricated database with another host key (original checkpoint file)",
            tamper: |f| {
                let fab = fabricated(f);
                let mut a = f.against(&f.cp());
                a[1] = fab.into();
                a
            },
            expect: "the ledger was replaced by another one",
        },
        Case {
            name: "fabricated database created for the ORIGINAL host.pub (checkpoint file)",
            tamper: |f| {
                // All an attacker needs is the public key; only a checkpoint catches it.
                let fab = f.path("fab-pub/ledger.db");
                std::fs::create_dir_all(fab.parent().unwrap()).unwrap();
                let pk = PublicKey::from_file(&f.key()).unwrap();
                let mut l = Ledger::create(&fab, HOST, &pk, "ledger-fixture").unwrap();
                l.append_batch((2..=SIZE).map(|i| {
                    NewEntry::new(
                        "bundle.verified",
                        "ledger-fixture",
                        serde_json::json!({ "i": i }),
                    )
                }))
                .unwrap();
                drop(l);
                let alone = verify(&[
                    os("--db"),
                    fab.clone().into(),
                    os("verify"),
                    os("--key"),
                    f.key().into(),
                ]);
                println!(
                    "    [fabricated for host.pub] verify --key without --checkpoint: exit {}: {}",
                    alone.code,
                    alone.stdout.lines().next().unwrap_or("")
                );
                let mut a = f.against(&f.cp());
                a[1] = fab.into();
                a
            },
            expect: "the ledger was replaced by another one",
        },
        // --- the checkpoint file itself ---------------------------------------------
        Case {
            name: "forged checkpoint file: size line 15 -> 14",
            tamper: |f| {
                edit_file(&f.cp(), "\nsize 15\n", "\nsize 14\n");
                f.against(&f.cp())
            },
            expect: "does not verify",
        },
        Case {
            name: "forged checkpoint file: head line -> hash of entry 14",
            tamper: |f| {
                let cp = std::fs::read_to_string(f.cp()).unwrap();
                let head = cp
                    .lines()
                    .find_map(|l| l.strip_prefix("head "))
                    .unwrap()
                    .to_string();
                let h14 = f.entries_from(14)[0].hash.clone();
                edit_file(
                    &f.cp(),
                    &format!("\nhead {head}\n"),
                    &format!("\nhead {h14}\n"),
                );
                f.against(&f.cp())
            },
            expect: "does not verify",
        },
        Case {
            name: "checkpoint file signed by another key",
            tamper: |f| {
                let (sk, pk) = other_key(f);
                let cp = Checkpoint::read(&f.cp()).unwrap();
                let comment = format!(
                    "airlock-checkpoint ledger={} host={} size={} head={} time={}",
                    cp.ledger, cp.host, cp.size, cp.head, cp.time
                );
                let sig = sk.sign(cp.body().as_bytes(), &comment).unwrap();
                std::fs::write(f.path("cp.minisig"), sig).unwrap();
                // Well-formed and valid, just by the wrong key.
                Checkpoint::read(&f.cp()).unwrap().verify(&pk).unwrap();
                f.against(&f.cp())
            },
            expect: "not by",
        },
        // --- raw bytes and schema ----------------------------------------------------
        Case {
            name: "raw byte edit: one character of entry 12's detail in the .db file",
            tamper: |f| {
                let original = std::fs::read(f.db()).unwrap();
                let needle = br#""note":"fixture entry 12""#;
                let at: Vec<usize> = original
                    .windows(needle.len())
                    .enumerate()
                    .filter(|(_, w)| w == needle)
                    .map(|(i, _)| i + br#""note":""#.len())
                    .collect();
                // SQLite leaves stale copies of moved cells in unused page space;
                // flip each copy in turn and keep the one that changes the live record.
                let mut live = Vec::new();
                for &i in &at {
                    let mut bytes = original.clone();
                    assert_eq!(bytes[i], b'f');
                    bytes[i] = b'F';
                    std::fs::write(f.db(), &bytes).unwrap();
                    // Read-write, so that closing removes the -wal and -shm files again.
                    let c = Connection::open(f.db()).unwrap();
                    if entry(&c, MID).unwrap().detail == r#"{"i":12,"note":"Fixture entry 12"}"# {
                        live.push(i);
                    }
                    c.close().unwrap();
                }
                println!(
                    "    [raw bytes] entry 12's detail is in the file {} times; live copy at byte {live:?}",
                    at.len()
                );
                assert_eq!(live.len(), 1, "exactly one copy is the live record");
                let mut bytes = original;
                bytes[live[0]] = b'F';
                std::fs::write(f.db(), &bytes).unwrap();
                f.assert_closed();
                f.plain()
            },
            expect: "entry 12: the stored hash does not match",
        },
        Case {
            name: "schema: trigger entries_no_delete dropped (no entry touched)",
            tamper: |f| {
                let c = Connection::open(f.db()).unwrap();
                c.execute("DROP TRIGGER entries_no_delete", []).unwrap();
                c.close().unwrap();
                f.plain()
            },
            expect: "the trigger entries_no_delete was removed from the database",
        },
        Case {
            name: "ledger_meta: ledger id edited",
            tamper: |f| {
                f.edit(&["meta_no_update"], |c| {
                    let n = c
                        .execute("UPDATE ledger_meta SET ledger_id = ?1", ["0".repeat(32)])
                        .unwrap();
                    assert_eq!(n, 1);
                });
                f.plain()
            },
            expect: "ledger_meta was edited",
        },
        Case {
            name: "ledger_meta: host edited",
            tamper: |f| {
                f.edit(&["meta_no_update"], |c| {
                    let n = c
                        .execute(
                            "UPDATE ledger_meta SET host = 'exch02' WHERE host = 'exch01'",
                            [],
                        )
                        .unwrap();
                    assert_eq!(n, 1);
                });
                f.plain()
            },
            expect: "entry 1: ledger.created names another host",
        },
        Case {
            name: "airlock_schema: version edited",
            tamper: |f| {
                f.edit(&["schema_no_update"], |c| {
                    let n = c
                        .execute("UPDATE airlock_schema SET version = 2", [])
                        .unwrap();
                    assert_eq!(n, 1);
                });
                f.plain()
            },
            expect: "airlock_schema holds [2]",
        },
        Case {
            name: "ledger_meta: row deleted",
            tamper: |f| {
                f.edit(&["meta_no_delete"], |c| {
                    let n = c.execute("DELETE FROM ledger_meta", []).unwrap();
                    assert_eq!(n, 1);
                });
                f.plain()
            },
            expect: "ledger_meta does not hold exactly one row",
        },
        Case {
            name: "ledger_meta: a second row added",
            tamper: |f| {
                f.edit(&["meta_once"], |c| {
                    let n = c
                        .execute(
                            "INSERT INTO ledger_meta SELECT ledger_id, 'exch02', created, genesis FROM ledger_meta",
                            [],
                        )
                        .unwrap();
                    assert_eq!(n, 1);
                });
                f.plain()
            },
            expect: "ledger_meta does not hold exactly one row",
        },
        // --- exports -------------------------------------------------------------------
        Case {
            name: "export: actor of entry 12 edited in the JSONL",
            tamper: |f| {
                let e = export(f);
                edit_export(&e, |lines| {
                    let line = lines
                        .iter_mut()
                        .find(|l| l.get("seq").and_then(|s| s.as_u64()) == Some(MID))
                        .unwrap();
                    assert_eq!(line["actor"], "ledger-fixture");
                    line["actor"] = "mallory".into();
                });
                vec![
                    os("verify"),
                    os("--export"),
                    e.into(),
                    os("--key"),
                    f.key().into(),
                ]
            },
            expect: "entry 12: the stored hash does not match",
        },
        Case {
            name: "export: last line (the end line) cut",
            tamper: |f| {
                let e = export(f);
                let text = std::fs::read_to_string(&e).unwrap();
                let body = text.strip_suffix('\n').unwrap();
                let cut = &text[..body.rfind('\n').unwrap() + 1];
                assert!(text[cut.len()..].starts_with(r#"{"end":"#));
                std::fs::write(&e, cut).unwrap();
                vec![
                    os("verify"),
                    os("--export"),
                    e.into(),
                    os("--key"),
                    f.key().into(),
                ]
            },
            expect: "the file ends without its end line: it is truncated",
        },
        Case {
            name: "export: cut in the middle of the last line",
            tamper: |f| {
                let e = export(f);
                let text = std::fs::read(&e).unwrap();
                std::fs::write(&e, &text[..text.len() - 10]).unwrap();
                vec![
                    os("verify"),
                    os("--export"),
                    e.into(),
                    os("--key"),
                    f.key().into(),
                ]
            },
            expect: "it is truncated",
        },
        Case {
            name: "export: entries 13-22 removed and the end line rewritten (checkpoint file)",
            tamper: |f| {
                let e = export(f);
                let kept = f.entries_from(MID)[0].hash.clone();
                let stored_cp = Ledger::open_read_only(&f.db())
                    .unwrap()
                    .entry(10)
                    .unwrap()
                    .unwrap()
                    .detail_json();
                edit_export(&e, |lines| {
                    lines.retain(|l| {
                        l.get("seq")
                            .and_then(|s| s.as_u64())
                            .is_none_or(|s| s <= MID)
                    });
                    let end = lines.last_mut().unwrap();
                    end["end"]["size"] = MID.into();
                    end["end"]["head"] = kept.clone().into();
                    end["end"]["checkpoint"] = stored_cp.clone();
                });
                let alone = verify(&[
                    os("verify"),
                    os("--export"),
                    e.clone().into(),
                    os("--key"),
                    f.key().into(),
                ]);
                alone.expect(0);
                vec![
                    os("verify"),
                    os("--export"),
                    e.into(),
                    os("--checkpoint"),
                    f.cp().into(),
                    os("--key"),
                    f.key().into(),
                ]
            },
            expect: "the ledger has 12 entries, but the checkpoint covers 15",
        },
    ]
}

/// A new ledger for the same host name, created by the fixture with its own host
/// key, filled with as many entries; returns its database.
fn fabricated(f: &Fix) -> PathBuf {
    let dir = f.path("fabricated");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("ledger.db");
    fixture([os("create"), db.clone().into(), os(HOST)]).expect(0);
    fixture([os("append"), db.clone().into(), os("20"), os("4")]).expect(0);
    fixture([os("checkpoint"), db.clone().into()]).expect(0);
    assert_ne!(
        std::fs::read_to_string(dir.join("host.pub")).unwrap(),
        std::fs::read_to_string(f.key()).unwrap()
    );
    db
}

/// A second key pair (not the host's).
fn other_key(f: &Fix) -> (SecretKey, PublicKey) {
    let g = generate(None, "other").unwrap();
    let (sk, pk) = (f.path("other.key"), f.path("other.pub"));
    std::fs::write(&sk, &g.secret.0).unwrap();
    std::fs::write(&pk, &g.public).unwrap();
    (
        SecretKey::from_file(&sk, &PasswordSource::default()).unwrap(),
        PublicKey::from_file(&pk).unwrap(),
    )
}

/// Replaces the one occurrence of `from` in `path` with `to`.
fn edit_file(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `airlock-ledger export` of the fixture ledger; the untouched export verifies.
fn export(f: &Fix) -> PathBuf {
    let e = f.path("export.jsonl");
    ledger([
        os("--db"),
        f.db().into(),
        os("export"),
        os("--out"),
        e.clone().into(),
    ])
    .expect(0);
    ledger([
        os("verify"),
        os("--export"),
        e.clone().into(),
        os("--key"),
        f.key().into(),
    ])
    .expect(0);
    e
}

/// Rewrites an export's lines as JSON values.
fn edit_export(path: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let before = lines.clone();
    edit(&mut lines);
    assert_ne!(lines, before, "the export edit changed nothing");
    let out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, out).unwrap();
}

#[test]
fn every_tamper_is_caught_with_exit_3_naming_the_entry_or_reason() {
    let cases = cases();
    let outcomes: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| {
                s.spawn(move || {
                    let f = Fix::new();
                    let args = (case.tamper)(&f);
                    let r = ledger(&args);
                    let line = error_line(&r.stderr).to_string();
                    if r.code == 3 && r.stderr.contains(case.expect) {
                        Ok(line)
                    } else {
                        Err(format!(
                            "exit {} (want 3), stderr should contain {:?}\nstdout:\n{}\nstderr:\n{}",
                            r.code, case.expect, r.stdout, r.stderr
                        ))
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the tamper itself panicked (see above)".into()))
            })
            .collect()
    });
    let mut failed = Vec::new();
    for (case, outcome) in cases.iter().zip(outcomes) {
        match outcome {
            Ok(line) => println!("ok   {}\n       {line}", case.name),
            Err(why) => {
                println!("FAIL {}\n       {why}", case.name);
                failed.push(case.name);
            }
        }
    }
    assert!(failed.is_empty(), "rows that were not caught: {failed:#?}");
}

#[test]
fn the_untouched_ledger_and_its_export_verify() {
    let f = Fix::new();
    let plain = verify(&f.plain()).expect(0);
    assert!(
        plain.stdout.contains("22 entries, chain intact"),
        "{}",
        plain.stdout
    );
    assert!(plain.stderr.is_empty(), "{}", plain.stderr);
    let with = verify(&f.against(&f.cp())).expect(0);
    assert!(
        with.stdout.contains("extends the checkpoint of size 15"),
        "{}",
        with.stdout
    );
    let json = verify(&[f.plain(), vec![os("--json")]].concat()).expect(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (v["entries"].as_u64(), v["checkpoints"].as_u64()),
        (Some(SIZE), Some(2))
    );
    let e = export(&f);
    ledger([
        os("verify"),
        os("--export"),
        e.into(),
        os("--checkpoint"),
        f.cp().into(),
        os("--key"),
        f.key().into(),
    ])
    .expect(0);
}

/// Regression test for a bug found while writing these tests: a stored checkpoint
/// whose body says `size 18446744073709551615` made `verify` compute `cp.size + 1`
/// in `Verifier::check_stored_checkpoint` (ledger/src/verify.rs), which overflowed:
/// a debug build panicked (exit 101) instead of exiting 3. No key is needed: the size
/// is checked before the signature, and a hostile export chooses every hash.
#[test]
fn a_stored_checkpoint_of_size_u64_max_is_a_break_not_a_panic() {
    let f = Fix::new();
    let e = export(&f);
    let text = std::fs::read_to_string(&e).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut prev: Option<Digest> = None;
    for line in lines.iter_mut().skip(1) {
        if line.starts_with(r#"{"end":"#) {
            let mut end: serde_json::Value = serde_json::from_str(line).unwrap();
            end["end"]["head"] = prev.unwrap().hex().into();
            *line = end.to_string();
            break;
        }
        let mut entry: Entry = serde_json::from_str(line).unwrap();
        if entry.seq == CP_SIZE + 1 {
            let mut d = entry.detail_json();
            let body = d["body"].as_str().unwrap().replace(
                &format!("\nsize {CP_SIZE}\n"),
                &format!("\nsize {}\n", u64::MAX),
            );
            d["body"] = body.into();
            entry.detail = d.to_string();
        }
        let p = prev.unwrap_or_else(|| Digest::from_hex(&entry.prev_hash).unwrap());
        let seq = entry.seq;
        prev = Some(rechain(&mut entry, seq, p));
        *line = serde_json::to_string(&entry).unwrap();
    }
    std::fs::write(
        &e,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let r = ledger([os("verify"), os("--export"), e.into()]);
    assert_eq!(r.code, 3, "stderr:\n{}", r.stderr);
    assert!(r.stderr.contains("entry 16:"), "{}", r.stderr);
}
