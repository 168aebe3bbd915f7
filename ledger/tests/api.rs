//! The library API as the applier uses it: create, append, batch, checkpoint,
//! verify, query, export and verify the export.
#![allow(clippy::unwrap_used)]

use airlock_format::keys::{PasswordSource, PublicKey, SecretKey, generate};
use airlock_ledger::{Error, Ledger, NewEntry, Query, VerifyOptions, verify_export};
use serde_json::json;
use std::path::Path;

fn host_keys(dir: &Path) -> (SecretKey, PublicKey) {
    let g = generate(None, "host").unwrap();
    std::fs::write(dir.join("host.key"), &g.secret.0).unwrap();
    std::fs::write(dir.join("host.pub"), &g.public).unwrap();
    (
        SecretKey::from_file(&dir.join("host.key"), &PasswordSource::default()).unwrap(),
        PublicKey::from_file(&dir.join("host.pub")).unwrap(),
    )
}

#[test]
fn create_append_checkpoint_verify_export() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = host_keys(dir.path());
    let db = dir.path().join("ledger.db");
    let mut l = Ledger::create(&db, "exch01", &pk, "airlock-applier").unwrap();
    assert!(matches!(
        Ledger::create(&db, "exch01", &pk, "x"),
        Err(Error::Exists { .. })
    ));
    let h = l
        .append(NewEntry::new("bundle.verified", "airlock-applier", json!({"seq": 7})).bundle("b1"))
        .unwrap();
    assert_eq!(h.seq, 2);
    let h = l
        .append_batch((0..3).map(|i| {
            NewEntry::new("mitigation.applied", "airlock-applier", json!({"i": i}))
                .bundle("b1")
                .mitigation(&format!("m-{i}"))
        }))
        .unwrap();
    assert_eq!(h.seq, 5);
    assert_eq!(l.head().unwrap(), h);
    let cp = l.checkpoint(&sk, "airlock-applier").unwrap();
    assert_eq!((cp.size, cp.head), (5, h.hash));
    assert_eq!(l.latest_checkpoint().unwrap(), Some(cp.clone()));
    cp.verify(&pk).unwrap();

    let r = l
        .verify(VerifyOptions {
            key: Some(&pk),
            checkpoint: Some(&cp),
        })
        .unwrap();
    assert_eq!(
        (r.entries, r.checkpoints, r.extends_checkpoint),
        (6, 1, Some(5))
    );

    let mut seen = Vec::new();
    let n = l
        .query(
            &Query {
                mitigation: Some("m-1".into()),
                ..Query::default()
            },
            |e| {
                seen.push(e.seq);
                Ok(())
            },
        )
        .unwrap();
    assert_eq!((n, seen), (1, vec![4]));

    let out = dir.path().join("export.jsonl");
    let s = l.export(&out).unwrap();
    assert_eq!((s.entries, s.checkpoint_size), (6, Some(5)));
    let r2 = verify_export(
        &out,
        VerifyOptions {
            key: Some(&pk),
            checkpoint: Some(&cp),
        },
    )
    .unwrap();
    assert_eq!((r2.entries, r2.head), (r.entries, r.head));
}

#[test]
fn a_bad_entry_appends_nothing_from_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pk) = host_keys(dir.path());
    let db = dir.path().join("ledger.db");
    let mut l = Ledger::create(&db, "h1", &pk, "t").unwrap();
    let err = l
        .append_batch([
            NewEntry::new("a.ok", "t", json!({})),
            NewEntry::new("Not A Kind", "t", json!({})),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
    assert_eq!(l.head().unwrap().seq, 1);
}

#[test]
fn checkpoint_refuses_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pk) = host_keys(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (sk2, _) = host_keys(other.path());
    let mut l = Ledger::create(&dir.path().join("l.db"), "h1", &pk, "t").unwrap();
    let err = l.checkpoint(&sk2, "t").unwrap_err();
    assert!(err.to_string().contains("signed by key"), "{err}");
}

#[test]
fn the_database_itself_refuses_edits_and_entries_that_do_not_extend_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pk) = host_keys(dir.path());
    let db = dir.path().join("ledger.db");
    let mut l = Ledger::create(&db, "h1", &pk, "t").unwrap();
    l.append(NewEntry::new("a.b", "t", json!({}))).unwrap();
    let head = l.head().unwrap();

    let c = rusqlite::Connection::open(&db).unwrap();
    for (what, sql) in [
        (
            "update",
            "UPDATE entries SET actor = 'mallory' WHERE seq = 2",
        ),
        ("delete", "DELETE FROM entries WHERE seq = 2"),
        ("update meta", "UPDATE ledger_meta SET host = 'h2'"),
        ("delete meta", "DELETE FROM ledger_meta"),
        (
            "second meta",
            "INSERT INTO ledger_meta SELECT * FROM ledger_meta",
        ),
        ("update schema", "UPDATE airlock_schema SET version = 2"),
        (
            "gap",
            "INSERT INTO entries SELECT seq + 2, ts, host, actor, kind, bundle, mitigation, detail, hash, hash FROM entries WHERE seq = 2",
        ),
        (
            "wrong prev",
            "INSERT INTO entries SELECT seq + 1, ts, host, actor, kind, bundle, mitigation, detail, prev_hash, hash FROM entries WHERE seq = 2",
        ),
        (
            "null seq",
            "INSERT INTO entries SELECT NULL, ts, host, actor, kind, bundle, mitigation, detail, hash, hash FROM entries WHERE seq = 2",
        ),
    ] {
        let err = c.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("airlock ledger"), "{what}: {err}");
    }
    // A refused insert inside a transaction undoes the whole transaction.
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c.execute(
        "INSERT INTO entries SELECT seq + 1, ts, host, actor, kind, bundle, mitigation, detail, hash, '00' FROM entries WHERE seq = 2",
        [],
    )
    .unwrap();
    assert!(c.execute("INSERT INTO entries SELECT seq + 5, ts, host, actor, kind, bundle, mitigation, detail, hash, hash FROM entries WHERE seq = 3", []).is_err());
    assert!(c.is_autocommit(), "RAISE(ROLLBACK) ended the transaction");
    drop(c);
    assert_eq!(l.head().unwrap(), head);
    l.verify(VerifyOptions::default()).unwrap();
}
