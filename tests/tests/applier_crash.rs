//! Crash safety of `airlock-applier` with real processes: an `apply` of 320
//! file mitigations is killed with SIGKILL at 60 random moments (uniform over its
//! whole run time, one fresh host each), and a `rollback --all` at 10. After every
//! kill the host is never half-written (each managed file is absent, its old
//! bytes or its complete new bytes), and the next `apply` (or `rollback --all`)
//! converges to exactly the intended tree: every file byte-identical to an
//! uninterrupted run, no `.airlock-tmp` left in the root or the state directory,
//! no journal, no drift, a ledger that verifies and records each mitigation as
//! applied exactly once, and every interrupted run as `apply.interrupted`.
//!
//! The kill moments are random; the seed is printed, and `AIRLOCK_CRASH_SEED=N`
//! replays a run (`AIRLOCK_CRASH_ITERATIONS=N` runs more or fewer apply kills).
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Host, bin, mitigation_xml};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Mitigations in the bundle.
const N: usize = 320;
/// Apply kills by default.
const APPLY_KILLS: usize = 60;
/// Rollback kills.
const ROLLBACK_KILLS: usize = 10;
/// `app.ini` as `Host::bench` creates it.
const ORIGINAL_INI: &str = "; bench application\n[s]\nname = bench\n";
/// What every `mitigation_xml` file action writes.
const CONF: &str = "# managed by airlock\nlimit = 1\n";
const CONF_D: &str = "/etc/bench/conf.d";
const APP_INI: &str = "/etc/bench/app.ini";

fn id(i: usize) -> String {
    format!("AM-CRASH-{i:04}")
}

/// xorshift64 (seeded through splitmix64): enough to spread kill moments, and
/// replayable from its seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = match std::env::var("AIRLOCK_CRASH_SEED") {
            Ok(s) => s
                .trim()
                .parse()
                .expect("AIRLOCK_CRASH_SEED must be an unsigned integer"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        };
        // One splitmix64 step, so that small seeds (42) start well spread too.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (Rng((z ^ (z >> 31)).max(1)), seed)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One bundle of `N` generated file mitigations, and the keys the hosts trust.
fn bundle() -> (Fixture, PathBuf) {
    let fx = Fixture::empty();
    let dir = fx.feed().join("mitigations");
    for i in 1..=N {
        std::fs::write(
            dir.join(format!("{}.xml", id(i))),
            mitigation_xml(&id(i), 1),
        )
        .unwrap();
    }
    fx.publish(&[]);
    fx.fetch().expect(0);
    let out = fx.path("crash.airlock");
    fx.build(&out, &[]).expect(0);
    (fx, out)
}

/// A fresh `Host::bench`, initialised.
fn fresh(fx: &Fixture) -> Host {
    let h = Host::bench(fx);
    h.applier(&["init", "-q"]).expect(0);
    h
}

/// `airlock-applier --profile P ARGS` as a child with no output, timed from spawn.
fn spawn(h: &Host, args: &[&str]) -> std::process::Child {
    Command::new(bin("airlock-applier"))
        .arg("--profile")
        .arg(h.profile())
        .args(args)
        .env_remove("AIRLOCK_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs `args` to completion and returns how long it took.
fn timed(h: &Host, args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = spawn(h, args).wait().unwrap();
    let took = t.elapsed();
    assert!(
        status.success(),
        "{args:?} failed while calibrating: {status}"
    );
    took
}

/// Every file under the host root: relative path -> (mode, bytes); directories
/// with an empty content and their mode.
type Tree = BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>;

fn tree(root: &Path) -> Tree {
    fn walk(base: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                out.insert(rel, (mode, None));
                walk(base, &p, out);
            } else {
                out.insert(rel, (mode, Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

/// Every path under `dir` whose name contains `.airlock-tmp`.
fn temps(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().contains(".airlock-tmp") {
                found.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

/// The ledger as `log --format json` shows it.
fn ledger_entries(h: &Host) -> Vec<Value> {
    let r = h.ledger(&["log", "--format", "json"]).expect(0);
    serde_json::from_str::<Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn of_kind<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind).collect()
}

/// Runs (`apply.started`, `rollback.started`) that no entry closes: no
/// `.completed` or `.failed` of the same command and run, and no
/// `apply.interrupted` naming the run.
fn unclosed_runs(entries: &[Value]) -> Vec<String> {
    let closing: BTreeSet<(String, String)> = entries
        .iter()
        .filter_map(|e| {
            let kind = e["kind"].as_str()?;
            let run = e["detail"]["run"].as_str()?.to_string();
            let command = match kind.split_once('.')? {
                ("apply", "interrupted") => e["detail"]["command"].as_str()?,
                (c, "completed" | "failed") => c,
                _ => return None,
            };
            Some((command.to_string(), run))
        })
        .collect();
    entries
        .iter()
        .filter_map(|e| {
            let (command, what) = e["kind"].as_str()?.split_once('.')?;
            let run = e["detail"]["run"].as_str()?;
            (what == "started" && !closing.contains(&(command.to_string(), run.to_string())))
                .then(|| format!("{command} run {run} (seq {})", e["seq"]))
        })
        .collect()
}

/// Every run that started is closed in the ledger.
fn check_closed(label: &str, entries: &[Value]) {
    let unclosed = unclosed_runs(entries);
    assert!(
        unclosed.is_empty(),
        "{label}: runs never closed in the ledger: {unclosed:?}"
    );
}

/// Where a kill landed, judged from the state directory right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// The process had already exited.
    Exited,
    /// No journal and no committed state: the host was not touched yet.
    BeforeJournal,
    /// A journal: the run was under way (or committing); the next start finishes
    /// or undoes it.
    MidRun,
    /// No journal and the new state saved: the run had committed and finished.
    AfterCommit,
}

/// The managed files right after a kill: each conf.d file absent or whole (with
/// mode 0644), only write temporaries of managed names beside them, and
/// `app.ini` either as it was or as the uninterrupted run left it.
fn check_intermediate(label: &str, h: &Host, ini_before: &[u8], ini_after: &[u8], landed: Landed) {
    let wanted: BTreeSet<String> = (1..=N).map(|i| format!("{}.conf", id(i))).collect();
    let mut present = 0;
    for e in std::fs::read_dir(h.file(CONF_D)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(target) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".airlock-tmp"))
        {
            assert!(
                wanted.contains(target),
                "{label}: a temporary file for an unmanaged name: {name}"
            );
            assert_eq!(
                landed,
                Landed::MidRun,
                "{label}: a write temporary {name} without a journal"
            );
            continue;
        }
        assert!(wanted.contains(&name), "{label}: unexpected file {name}");
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            CONF,
            "{label}: {name} is partial or wrong after the kill"
        );
        let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{label}: {name} has mode {mode:o}");
        present += 1;
    }
    let ini = std::fs::read(h.file(APP_INI)).unwrap();
    assert!(
        ini == ini_before || ini == ini_after,
        "{label}: app.ini is neither its old nor its new content after the kill:\n{}",
        String::from_utf8_lossy(&ini)
    );
    match landed {
        Landed::BeforeJournal => {
            assert_eq!(present, 0, "{label}: files written before the journal");
            assert_eq!(
                ini, ini_before,
                "{label}: app.ini written before the journal"
            );
        }
        Landed::AfterCommit | Landed::Exited => {
            assert_eq!(present, N, "{label}: committed but files are missing");
            assert_eq!(ini, ini_after, "{label}: committed but app.ini is old");
        }
        Landed::MidRun => {}
    }
}

/// Kills `child` after `delay` (from its spawn at `t0`); says where it landed,
/// `committed` telling a finished run from one that has not begun changing the host.
fn kill_after(
    h: &Host,
    mut child: std::process::Child,
    t0: Instant,
    delay: Duration,
    committed: fn(&Host) -> bool,
) -> Landed {
    if let Some(left) = delay.checked_sub(t0.elapsed()) {
        std::thread::sleep(left);
    }
    let exited = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL on Unix (Ok when it has already exited)
    child.wait().unwrap();
    if exited {
        Landed::Exited
    } else if h.state("journal.json").exists() {
        Landed::MidRun
    } else if committed(h) {
        Landed::AfterCommit
    } else {
        Landed::BeforeJournal
    }
}

/// An apply has committed once `state.json` exists (it is saved after the commit).
fn apply_committed(h: &Host) -> bool {
    h.state("state.json").exists()
}

/// A rollback of everything has committed once `state.json` lists nothing applied.
fn rollback_committed(h: &Host) -> bool {
    let state: Value =
        serde_json::from_slice(&std::fs::read(h.state("state.json")).unwrap()).unwrap();
    state["applied"].as_object().unwrap().is_empty()
}

/// The checks every converged host passes: no temporaries anywhere, no journal,
/// `status` clean with `applied` mitigations, and a ledger that verifies.
fn check_converged(label: &str, h: &Host, applied: usize) -> Vec<Value> {
    let left = temps(h.dir.path());
    assert!(left.is_empty(), "{label}: temporary files left: {left:?}");
    assert!(
        !h.state("journal.json").exists(),
        "{label}: the journal is still there"
    );
    let status: Value =
        serde_json::from_str(&h.applier(&["status", "--json"]).expect(0).stdout).unwrap();
    assert_eq!(
        status["applied"].as_array().unwrap().len(),
        applied,
        "{label}: status shows the wrong number of applied mitigations"
    );
    assert_eq!(status["drift"], 0, "{label}: status shows drift: {status}");
    assert_eq!(status["interrupted_run"], false, "{label}: {status}");
    h.ledger(&["verify"]).expect(0);
    ledger_entries(h)
}

/// The ledger of a converged apply: `mitigation.applied` exactly once per
/// mitigation, all from the one run that applied 320; any other `apply.completed`
/// applied nothing; one `apply.interrupted` exactly when the kill found a journal,
/// "finished" only when that run had committed.
fn check_apply_ledger(label: &str, entries: &[Value], landed: Landed) -> Option<String> {
    let applied = of_kind(entries, "mitigation.applied");
    let ids: BTreeSet<&str> = applied
        .iter()
        .map(|e| e["mitigation"].as_str().unwrap())
        .collect();
    assert_eq!(applied.len(), N, "{label}: mitigation.applied entries");
    assert_eq!(ids.len(), N, "{label}: a mitigation applied twice");
    let completed = of_kind(entries, "apply.completed");
    let full: Vec<&&Value> = completed
        .iter()
        .filter(|e| e["detail"]["applied"] == N)
        .collect();
    assert_eq!(
        full.len(),
        1,
        "{label}: apply.completed entries: {completed:?}"
    );
    let run = full[0]["detail"]["run"].as_str().unwrap();
    for e in &completed {
        if e["detail"]["run"] != run {
            assert_eq!(e["detail"]["applied"], 0, "{label}: a second apply: {e}");
        }
    }
    assert!(
        applied.iter().all(|e| e["detail"]["run"] == run),
        "{label}: mitigation.applied entries of another run"
    );
    let interrupted = of_kind(entries, "apply.interrupted");
    let expected = usize::from(landed == Landed::MidRun);
    assert_eq!(
        interrupted.len(),
        expected,
        "{label}: apply.interrupted entries after a kill that landed {landed:?}"
    );
    interrupted.first().map(|e| {
        assert_eq!(e["detail"]["command"], "apply", "{label}: {e}");
        let outcome = e["detail"]["outcome"].as_str().unwrap().to_string();
        let same_run = e["detail"]["run"] == run;
        match outcome.as_str() {
            // Finished: the killed run had committed; its entries come first.
            "finished" => assert!(
                same_run && full[0]["seq"].as_u64() < e["seq"].as_u64(),
                "{label}: finished a run that is not the committed one: {e}"
            ),
            "undone" => assert!(!same_run, "{label}: undid the committed run: {e}"),
            other => panic!("{label}: outcome {other}"),
        }
        outcome
    })
}

#[test]
fn sigkill_at_random_moments_of_apply_and_rollback_always_converges() {
    let started = Instant::now();
    let (fx, bundle) = bundle();
    let b = bundle.to_str().unwrap();
    let (mut rng, seed) = Rng::seeded();
    println!("seed {seed} (replay with AIRLOCK_CRASH_SEED={seed})");

    // The reference: three uninterrupted applies, then their rollbacks, each on
    // a fresh host; the medians set the kill windows (one run alone is at the
    // mercy of whatever else this machine is doing). Each run must leave the
    // same tree.
    let mut original = None;
    let mut intended = None;
    let (mut t_apply, mut t_rollback) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let h = fresh(&fx);
        let root = h.dir.path().join("root");
        let before = tree(&root);
        t_apply.push(timed(&h, &["apply", b, "--yes", "-q"]));
        let after = tree(&root);
        check_reference(&after);
        t_rollback.push(timed(&h, &["rollback", "--all", "-q"]));
        assert!(tree(&root) == before, "an uninterrupted rollback");
        assert!(*original.get_or_insert_with(|| before.clone()) == before);
        assert!(*intended.get_or_insert_with(|| after.clone()) == after);
    }
    let (original, intended) = (original.unwrap(), intended.unwrap());
    let ini_after = intended[Path::new("etc/bench/app.ini")].1.clone().unwrap();
    t_apply.sort();
    t_rollback.sort();
    println!(
        "setup {:?}; uninterrupted apply of {N} mitigations {t_apply:?}, rollback --all {t_rollback:?}",
        started.elapsed()
    );
    let (t_apply, t_rollback) = (t_apply[1], t_rollback[1]);

    let kills = std::env::var("AIRLOCK_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(APPLY_KILLS);
    let t = Instant::now();
    let mut landed = BTreeMap::<Landed, usize>::new();
    let mut outcomes = BTreeMap::<String, usize>::new();
    for k in 1..=kills {
        let h = fresh(&fx);
        let delay = t_apply.mul_f64(1.1 * rng.unit());
        let label = format!("apply kill {k}/{kills} after {delay:?}");
        let t0 = Instant::now();
        let child = spawn(&h, &["apply", b, "--yes", "-q"]);
        let at = kill_after(&h, child, t0, delay, apply_committed);
        check_intermediate(&label, &h, ORIGINAL_INI.as_bytes(), &ini_after, at);
        let again = h.applier(&["apply", b, "--yes", "-q"]).expect(0);
        assert_eq!(
            again.stderr.contains("was interrupted"),
            at == Landed::MidRun,
            "{label} ({at:?}): {}",
            again.stderr
        );
        assert!(
            tree(&h.dir.path().join("root")) == intended,
            "{label} ({at:?}): the root is not what an uninterrupted apply leaves"
        );
        let entries = check_converged(&label, &h, N);
        let outcome = check_apply_ledger(&label, &entries, at);
        check_closed(&label, &entries);
        println!(
            "{label}: landed {at:?}{}",
            outcome
                .as_deref()
                .map(|o| format!(", {o}"))
                .unwrap_or_default()
        );
        *landed.entry(at).or_default() += 1;
        if let Some(o) = outcome {
            *outcomes.entry(o).or_default() += 1;
        }
    }
    let interrupted: usize = outcomes.values().sum();
    println!(
        "{kills} apply kills in {:?}: {landed:?}; apply.interrupted {interrupted} ({outcomes:?})",
        t.elapsed()
    );
    assert!(
        interrupted >= kills / 6,
        "only {interrupted} of {kills} kills landed mid-run (seed {seed}); the kill window misses the run"
    );

    let t = Instant::now();
    let mut rb_landed = BTreeMap::<Landed, usize>::new();
    for k in 1..=ROLLBACK_KILLS {
        let h = fresh(&fx);
        h.applier(&["apply", b, "--yes", "-q"]).expect(0);
        let delay = t_rollback.mul_f64(1.1 * rng.unit());
        let label = format!("rollback kill {k}/{ROLLBACK_KILLS} after {delay:?}");
        let t0 = Instant::now();
        let child = spawn(&h, &["rollback", "--all", "-q"]);
        let at = kill_after(&h, child, t0, delay, rollback_committed);
        check_rollback_intermediate(&label, &h, &ini_after);
        let now = tree(&h.dir.path().join("root"));
        match at {
            Landed::BeforeJournal => {
                assert!(now == intended, "{label}: changed before the journal")
            }
            Landed::AfterCommit | Landed::Exited => {
                assert!(now == original, "{label}: committed but not restored");
            }
            Landed::MidRun => {}
        }
        let again = h.applier(&["rollback", "--all", "-q"]).expect(0);
        assert_eq!(
            again.stderr.contains("was interrupted"),
            at == Landed::MidRun,
            "{label} ({at:?}): {}",
            again.stderr
        );
        assert!(
            tree(&h.dir.path().join("root")) == original,
            "{label} ({at:?}): the root is not back to its original tree"
        );
        let entries = check_converged(&label, &h, 0);
        assert_eq!(
            of_kind(&entries, "mitigation.rolled_back").len(),
            N,
            "{label}: mitigation.rolled_back entries"
        );
        assert_eq!(
            of_kind(&entries, "rollback.completed").len(),
            1,
            "{label}: rollback.completed entries"
        );
        let interrupted = of_kind(&entries, "apply.interrupted");
        assert_eq!(
            interrupted.len(),
            usize::from(at == Landed::MidRun),
            "{label}"
        );
        if let Some(e) = interrupted.first() {
            assert_eq!(e["detail"]["command"], "rollback", "{label}: {e}");
        }
        check_closed(&label, &entries);
        println!("{label}: landed {at:?}");
        *rb_landed.entry(at).or_default() += 1;
    }
    println!(
        "{ROLLBACK_KILLS} rollback kills in {:?}: {rb_landed:?}; whole test {:?}",
        t.elapsed(),
        started.elapsed()
    );
}

/// The uninterrupted apply wrote what the documents say: every conf.d file whole
/// with mode 0644, and every key under `[s]` after the original lines.
fn check_reference(intended: &Tree) {
    for i in 1..=N {
        let rel = PathBuf::from(format!("etc/bench/conf.d/{}.conf", id(i)));
        let (mode, bytes) = &intended[&rel];
        assert_eq!(*mode, 0o644);
        assert_eq!(bytes.as_deref(), Some(CONF.as_bytes()));
    }
    let ini = intended[Path::new("etc/bench/app.ini")]
        .1
        .as_deref()
        .unwrap();
    let ini = std::str::from_utf8(ini).unwrap();
    assert!(ini.starts_with(ORIGINAL_INI), "{ini}");
    let keys: BTreeSet<&str> = ini[ORIGINAL_INI.len()..].lines().collect();
    let wanted: BTreeSet<String> = (1..=N).map(|i| format!("k-{} = v", id(i))).collect();
    assert_eq!(
        keys,
        wanted.iter().map(String::as_str).collect(),
        "app.ini after the uninterrupted apply"
    );
}

/// Right after a rollback kill: each conf.d file whole or absent, `app.ini`
/// either as applied or as original; nothing else in conf.d but write temps.
fn check_rollback_intermediate(label: &str, h: &Host, ini_applied: &[u8]) {
    for e in std::fs::read_dir(h.file(CONF_D)).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".airlock-tmp") {
            continue;
        }
        assert_eq!(
            std::fs::read_to_string(e.path()).unwrap(),
            CONF,
            "{label}: {name} is partial after the kill"
        );
    }
    let ini = std::fs::read(h.file(APP_INI)).unwrap();
    assert!(
        ini == ini_applied || ini == ORIGINAL_INI.as_bytes(),
        "{label}: app.ini is neither applied nor original after the kill"
    );
}

/// Regression: `engine::recover` used to remove `journal.json` before it appended
/// `apply.interrupted`, so when that append did not happen (a crash or power loss
/// in between, or the ledger busy or failing) the journal, the only trace of the
/// interrupted run, was gone and no later start recorded it: the ledger showed
/// `apply.started` for a run that never ended. The ledger is made busy here
/// (another writer holds `BEGIN IMMEDIATE`) to stop the recovery at exactly that
/// point; it waits for the ledger's 30 s busy timeout.
#[test]
fn an_interrupted_run_is_closed_in_the_ledger_even_when_its_recovery_fails() {
    let (fx, bundle) = bundle();
    let b = bundle.to_str().unwrap();
    let h = fresh(&fx);

    // Kill the apply as soon as it writes into conf.d (after its journal and
    // `apply.started`): an interrupted run, for sure.
    let mut child = spawn(&h, &["apply", b, "--yes", "-q"]);
    let t0 = Instant::now();
    while std::fs::read_dir(h.file(CONF_D)).unwrap().next().is_none() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before its writes were seen"
        );
        assert!(t0.elapsed() < Duration::from_secs(30), "no writes");
        std::thread::sleep(Duration::from_micros(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let started = unclosed_runs(&ledger_entries(&h));
    assert_eq!(started.len(), 1, "{started:?}");

    // The next start recovers while another writer holds the ledger.
    let db = rusqlite::Connection::open(h.state("ledger.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let r = h.applier(&["apply", b, "--yes", "-q"]);
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    assert_ne!(r.code, 0, "the recovery could not write the ledger: {r:?}");
    let journal_kept = h.state("journal.json").exists();

    // Once the ledger is free again, the host converges...
    h.applier(&["apply", b, "--yes", "-q"]).expect(0);
    let entries = check_converged("after the failed recovery", &h, N);
    // ...and the interrupted run must be on record.
    let unclosed = unclosed_runs(&entries);
    assert!(
        unclosed.is_empty(),
        "runs never closed in the ledger: {unclosed:?}; the failed recovery \
         {} the journal (exit {}: {})",
        if journal_kept { "kept" } else { "removed" },
        r.code,
        r.stderr.trim()
    );
}
