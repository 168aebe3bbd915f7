//! `airlock-applier sync --inbox DIR` through the real binaries on a copy of the
//! sample lab host: an empty inbox costs nothing (no ledger entry, no
//! checkpoint, no sync.json); of an invalid, an older and a newer bundle the
//! newer is applied and the other two are recorded once as `sync.ignored` with
//! the reason; a second sync changes and records nothing; a bundle refused for a
//! missing approval is applied by the next sync once an approval is dropped into
//! the inbox; a clock set back refuses the run; symbolic links, copies in
//! progress, too many files, a missing inbox and a damaged sync.json are
//! handled as documented; and the systemd
//! units in packaging/systemd pass `systemd-analyze verify`.
//!
//! The bundles leave out AM-2024-0001 (it masks a unit), so no test needs
//! `systemctl`.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Host, Run, bin, bundler, require_tool, run};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const NGINX: &str = "/etc/nginx/conf.d/airlock-am-2023-0001.conf";
const SYSCTL: &str = "/etc/sysctl.conf";

/// An initialised lab host, the fixture whose keys it trusts, and an empty inbox.
struct Lab {
    f: Fixture,
    h: Host,
    inbox: PathBuf,
}

fn lab() -> Lab {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    let inbox = h.dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    Lab { f, h, inbox }
}

/// Builds the next bundle (seq grows by one per build) to `f.path(name)`,
/// without AM-2024-0001 and the `extra` ids left out.
fn build(f: &Fixture, name: &str, exclude: &[&str]) -> PathBuf {
    let out = f.path(name);
    let mut args = vec!["--exclude", "AM-2024-0001"];
    for id in exclude {
        args.extend(["--exclude", id]);
    }
    f.build(&out, &args).expect(0);
    out
}

fn sync(h: &Host, inbox: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["sync".as_ref(), "--inbox".as_ref(), inbox.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    h.applier(&args)
}

/// Every ledger entry, as JSON.
fn ledger(h: &Host) -> Vec<Value> {
    let r = h.ledger(&["log", "--format", "json"]).expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

fn of_kind(h: &Host, kind: &str) -> Vec<Value> {
    ledger(h)
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// The ledger verifies, and its last entry is a checkpoint.
#[track_caller]
fn assert_ledger_sound(h: &Host) {
    assert_eq!(ledger(h).last().unwrap()["kind"], "checkpoint");
    h.ledger(&["verify"]).expect(0);
}

/// Files by path, with their bytes and modification time.
type Tree = BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>;

/// Every file under `top` with its bytes and modification time.
fn tree(top: &Path) -> Tree {
    fn walk(dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(&p, out);
            } else if m.is_file() {
                out.insert(
                    p.clone(),
                    (std::fs::read(&p).unwrap(), m.modified().unwrap()),
                );
            }
        }
    }
    let mut out = Tree::new();
    walk(top, &mut out);
    out
}

/// Asserts two trees are the same, naming the first difference.
#[track_caller]
fn assert_same(before: &Tree, after: &Tree, what: &str) {
    for (k, v) in before {
        assert!(after.get(k) == Some(v), "{what}: {} changed", k.display());
    }
    for k in after.keys() {
        assert!(before.contains_key(k), "{what}: {} appeared", k.display());
    }
}

/// `sync.json` and `state.json` (the lock and the ledger's own files left out).
fn state_files(h: &Host) -> Tree {
    tree(&h.dir.path().join("state"))
        .into_iter()
        .filter(|(p, _)| p.ends_with("sync.json") || p.ends_with("state.json"))
        .collect()
}

fn root_of(h: &Host) -> PathBuf {
    h.dir.path().join("root")
}

/// A copy of `bundle` with one byte of its payload (near the end) flipped.
fn flipped(bundle: &Path, to: &Path) {
    let mut bytes = std::fs::read(bundle).unwrap();
    let at = bytes.len() - 3000;
    bytes[at] ^= 0x01;
    std::fs::write(to, bytes).unwrap();
}

#[test]
fn an_empty_inbox_is_nothing_new_and_costs_nothing() {
    let Lab { h, inbox, f: _keys } = lab();
    let before = ledger(&h).len();
    let r = sync(&h, &inbox, &[]).expect(0);
    assert!(
        r.stdout
            .starts_with(&format!("nothing new in {}", inbox.display())),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let r = sync(&h, &inbox, &["--json"]).expect(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "nothing new");
    assert_eq!(v["considered"], 0);
    assert_eq!(v["new"], 0);
    assert_eq!(v["chosen"], Value::Null);
    assert_eq!(v["inbox"], inbox.display().to_string());
    assert_eq!(ledger(&h).len(), before, "no ledger entry, no checkpoint");
    assert!(!h.state("sync.json").exists(), "nothing remembered");
}

/// The lab host with seq 2 applied, and an inbox holding a corrupted copy of
/// seq 3, seq 1 and seq 3; seq 3 adds AM-2023-0001 (the nginx file).
fn inbox_of_three() -> Lab {
    let lab = lab();
    let b1 = build(&lab.f, "b1.airlock", &["AM-2023-0001"]);
    let b2 = build(&lab.f, "b2.airlock", &["AM-2023-0001"]);
    let b3 = build(&lab.f, "b3.airlock", &[]);
    lab.h
        .applier(&["apply".as_ref(), b2.as_os_str(), "--yes".as_ref()])
        .expect(0);
    assert!(!lab.h.file(NGINX).exists());
    flipped(&b3, &lab.inbox.join("broken.airlock"));
    std::fs::copy(&b1, lab.inbox.join("old.airlock")).unwrap();
    std::fs::copy(&b3, lab.inbox.join("new.airlock")).unwrap();
    lab
}

#[test]
fn the_newest_valid_bundle_is_applied_and_the_others_are_ignored_once_with_the_reason() {
    let Lab { h, inbox, f: _keys } = inbox_of_three();
    let sysctl = std::fs::read(h.file(SYSCTL)).unwrap();
    let before = ledger(&h).len();

    let r = sync(&h, &inbox, &["--json"]).expect(0);
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON object on stdout");
    assert_eq!(v["outcome"], "applied", "{v}");
    assert_eq!(v["considered"], 3);
    assert_eq!(v["new"], 3);
    assert_eq!(v["chosen"], "new.airlock");
    let ignored: Vec<&str> = v["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap())
        .collect();
    assert_eq!(ignored, ["broken.airlock", "old.airlock"]);

    // The new bundle is applied: the nginx file appears, the rest stays.
    let nginx = std::fs::read_to_string(h.file(NGINX)).unwrap();
    assert!(nginx.contains("AM-2023-0001"), "{nginx}");
    assert_eq!(std::fs::read(h.file(SYSCTL)).unwrap(), sysctl);

    // One sync.ignored each, with the file, its SHA-256, the exit class and why.
    let entries = ledger(&h);
    let new: Vec<&Value> = entries[before..].iter().collect();
    let ignored: Vec<&Value> = new
        .iter()
        .copied()
        .filter(|e| e["kind"] == "sync.ignored")
        .collect();
    assert_eq!(ignored.len(), 2, "{new:#?}");
    let broken = &ignored[0]["detail"];
    assert_eq!(broken["file"], "broken.airlock");
    assert_eq!(broken["exit"], 3, "a corrupted bundle fails verification");
    assert_eq!(broken["sha256"].as_str().unwrap().len(), 64, "{broken}");
    assert_eq!(broken["inbox"], inbox.display().to_string());
    let old = &ignored[1];
    assert_eq!(old["detail"]["file"], "old.airlock");
    assert_eq!(
        old["detail"]["exit"], 4,
        "an older bundle is refused by policy"
    );
    let reason = old["detail"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("sequence number 1 is lower than 2"),
        "{reason}"
    );
    assert!(
        old["bundle"].is_string(),
        "the old bundle's id is known: {old}"
    );
    assert!(
        ignored[0]["bundle"].is_null(),
        "a corrupted manifest names no bundle"
    );

    // Then the normal apply path, recorded as apply records it.
    let kinds: Vec<&str> = new.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let verified = kinds.iter().position(|k| *k == "bundle.verified").unwrap();
    assert!(verified > kinds.iter().rposition(|k| *k == "sync.ignored").unwrap());
    assert_eq!(
        new[verified]["detail"]["file"],
        inbox.join("new.airlock").display().to_string()
    );
    assert_eq!(new[verified]["detail"]["seq"], 3);
    assert!(kinds.contains(&"apply.completed"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "mitigation.applied").count(),
        1,
        "only AM-2023-0001 is new: {kinds:?}"
    );
    assert!(!kinds.contains(&"bundle.rejected"), "{kinds:?}");
    assert_ledger_sound(&h);

    // The text report says the same.
    let Lab { h, inbox, f: _keys } = inbox_of_three();
    let r = sync(&h, &inbox, &[]).expect(0);
    assert!(
        r.stdout.contains("3 bundle file(s), 3 new")
            && r.stdout.contains("ignored broken.airlock: ")
            && r.stdout.contains("ignored old.airlock: ")
            && r.stdout.contains("chosen new.airlock: ")
            && r.stdout.contains("applied bundle "),
        "{}",
        r.stdout
    );
}

#[test]
fn a_second_sync_changes_and_records_nothing() {
    let Lab { h, inbox, f: _keys } = inbox_of_three();
    sync(&h, &inbox, &[]).expect(0);
    let entries = ledger(&h).len();
    let files = tree(&root_of(&h));
    let memory = state_files(&h);

    let r = sync(&h, &inbox, &[]).expect(0);
    assert!(
        r.stdout.starts_with(&format!(
            "nothing new in {} (3 bundle file(s), each judged before)",
            inbox.display()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(ledger(&h).len(), entries, "no ledger entry, no checkpoint");
    assert_same(&files, &tree(&root_of(&h)), "the host's files");
    assert_same(&memory, &state_files(&h), "sync.json and state.json");

    // The same bytes under another name are the same file.
    std::fs::copy(inbox.join("new.airlock"), inbox.join("copy.airlock")).unwrap();
    let r = sync(&h, &inbox, &["--json"]).expect(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "nothing new");
    assert_eq!(v["considered"], 4);
    assert_eq!(ledger(&h).len(), entries);
}

#[test]
fn a_bundle_refused_for_a_missing_approval_is_applied_once_an_approval_is_in_the_inbox() {
    let Lab { f, h, inbox } = lab();
    let keys = f.path("approver");
    bundler([
        "keygen".as_ref(),
        "--role".as_ref(),
        "approver".as_ref(),
        "--no-password".as_ref(),
        "--out".as_ref(),
        keys.as_os_str(),
    ])
    .expect(0);
    let profile = std::fs::read_to_string(h.profile())
        .unwrap()
        .replace("[policy]\n", "[policy]\napprovals_required = 1\n")
        .replace(
            "[trust]\n",
            &format!(
                "[trust]\napprover_keys = [\"{}\"]\n",
                keys.join("approver.pub").display()
            ),
        );
    std::fs::write(h.profile(), profile).unwrap();
    let b1 = build(&f, "b1.airlock", &[]);
    let bundle = inbox.join("b1.airlock");
    std::fs::copy(&b1, &bundle).unwrap();
    let files = tree(&root_of(&h));

    // No approval: refused (exit 4), recorded, nothing changed.
    let r = sync(&h, &inbox, &[]).expect(4);
    assert!(r.stderr.contains("needs 1 approval(s)"), "{}", r.stderr);
    assert!(r.stdout.contains("b1.airlock was refused"), "{}", r.stdout);
    assert_eq!(of_kind(&h, "apply.refused").len(), 1);
    assert!(of_kind(&h, "apply.started").is_empty());
    assert!(
        of_kind(&h, "sync.ignored").is_empty(),
        "a refusal is not an ignored file"
    );
    assert_same(&files, &tree(&root_of(&h)), "refused sync");
    assert_ledger_sound(&h);

    // Until the approvals change, the refusal is not repeated.
    let entries = ledger(&h).len();
    let r = sync(&h, &inbox, &[]).expect(0);
    assert!(
        r.stdout.contains("nothing new") && r.stdout.contains("b1.airlock is waiting"),
        "{}",
        r.stdout
    );
    assert_eq!(ledger(&h).len(), entries);

    // The change board signs the plan; the approval goes into the inbox.
    let plan = f.path("plan.json");
    h.applier(&[
        "plan".as_ref(),
        bundle.as_os_str(),
        "--out".as_ref(),
        plan.as_os_str(),
    ])
    .expect(0);
    let approval = inbox.join("chg-1.approval");
    h.applier(&[
        "approve".as_ref(),
        plan.as_os_str(),
        "--key".as_ref(),
        keys.join("approver.key").as_os_str(),
        "--ticket".as_ref(),
        "CHG-1".as_ref(),
        "--out".as_ref(),
        approval.as_os_str(),
    ])
    .expect(0);
    let r = sync(&h, &inbox, &["--json"]).expect(0);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "applied", "{v}");
    assert_eq!(v["chosen"], "b1.airlock");
    assert!(h.file(NGINX).exists());
    let recorded = of_kind(&h, "approval.recorded");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["detail"]["ticket"], "CHG-1");
    assert_eq!(
        recorded[0]["detail"]["file"],
        approval.display().to_string()
    );
    assert_eq!(of_kind(&h, "apply.completed").len(), 1);
    assert_ledger_sound(&h);

    // Applied: judged, and not tried again.
    let entries = ledger(&h).len();
    sync(&h, &inbox, &[]).expect(0);
    assert_eq!(ledger(&h).len(), entries);
}

#[test]
fn new_files_none_of_them_valid_exit_3_and_are_recorded_once() {
    let Lab { f, h, inbox } = lab();
    let b1 = build(&f, "b1.airlock", &[]);
    flipped(&b1, &inbox.join("broken.airlock"));
    let test = f.path("test.airlock");
    f.build(&test, &["--channel", "test", "--exclude", "AM-2024-0001"])
        .expect(0);
    std::fs::copy(&test, inbox.join("test.airlock")).unwrap();
    let files = tree(&root_of(&h));

    let r = sync(&h, &inbox, &[]).expect(3);
    assert!(
        r.stderr
            .contains("2 new bundle file(s), none of them valid for this host"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("what to do: "), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("it is for channel test, and this host takes channel prod"),
        "{}",
        r.stdout
    );
    let ignored = of_kind(&h, "sync.ignored");
    assert_eq!(ignored.len(), 2);
    assert_eq!(ignored[1]["detail"]["exit"], 4, "{}", ignored[1]);
    assert_same(&files, &tree(&root_of(&h)), "sync of invalid files");
    assert_ledger_sound(&h);

    let entries = ledger(&h).len();
    sync(&h, &inbox, &[]).expect(0);
    assert_eq!(ledger(&h).len(), entries, "judged once");
}

#[test]
fn symbolic_links_and_copies_in_progress_are_passed_over() {
    let Lab { f, h, inbox } = lab();
    let b1 = build(&f, "b1.airlock", &[]);
    // A link out of the inbox, to a valid bundle: never followed.
    std::os::unix::fs::symlink(&b1, inbox.join("link.airlock")).unwrap();
    // A copy in progress under a dot name, and a directory named like a bundle.
    std::fs::copy(&b1, inbox.join(".b1.airlock")).unwrap();
    std::fs::create_dir(inbox.join("dir.airlock")).unwrap();
    let before = ledger(&h).len();

    let r = sync(&h, &inbox, &[]).expect(0);
    assert!(r.stdout.starts_with("nothing new in"), "{}", r.stdout);
    assert!(
        r.stderr.contains("link.airlock is not a regular file")
            && r.stderr.contains("dir.airlock is not a regular file"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(".b1.airlock"), "{}", r.stderr);
    assert_eq!(ledger(&h).len(), before);
    assert!(!h.file(NGINX).exists());
}

#[test]
fn a_missing_inbox_and_too_many_files_are_operational_errors() {
    let Lab { h, inbox, f: _keys } = lab();
    let before = ledger(&h).len();
    let missing = inbox.join("absent");
    let r = sync(&h, &missing, &[]).expect(1);
    assert!(
        r.stderr
            .contains(&format!("cannot list the inbox {}", missing.display())),
        "{}",
        r.stderr
    );

    for i in 0..=1000 {
        std::fs::write(inbox.join(format!("b{i:04}.airlock")), b"").unwrap();
    }
    let r = sync(&h, &inbox, &[]).expect(1);
    assert!(
        r.stderr.contains("holds more than 1000 bundle files"),
        "{}",
        r.stderr
    );
    assert_eq!(ledger(&h).len(), before);
    assert!(!h.state("sync.json").exists());
}

#[test]
fn a_damaged_sync_json_is_reported_and_kept() {
    let Lab { f, h, inbox } = lab();
    let b1 = build(&f, "b1.airlock", &[]);
    std::fs::copy(&b1, inbox.join("b1.airlock")).unwrap();
    std::fs::write(h.state("sync.json"), b"{\"format\": \"airlock-sync/1\", ").unwrap();
    let before = ledger(&h).len();
    let r = sync(&h, &inbox, &[]).expect(1);
    assert!(
        r.stderr.contains("sync.json cannot be read"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("move it away"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(h.state("sync.json")).unwrap(),
        b"{\"format\": \"airlock-sync/1\", ",
        "not silently reset"
    );
    assert_eq!(ledger(&h).len(), before);
    assert!(!h.file(NGINX).exists());
}

#[test]
fn a_clock_set_back_refuses_the_run_and_remembers_nothing() {
    let Lab { f, h, inbox } = lab();
    let b1 = build(&f, "b1.airlock", &[]);
    std::fs::copy(&b1, inbox.join("b1.airlock")).unwrap();
    // The ledger holds an entry two hours ahead of this host's clock.
    let mut l = airlock_ledger::Ledger::open(&h.state("ledger.db")).unwrap();
    l.append(
        airlock_ledger::NewEntry::new("test.future", "airlock-tests", serde_json::json!({}))
            .at(chrono::Utc::now() + chrono::TimeDelta::hours(2)),
    )
    .unwrap();
    drop(l);

    let r = sync(&h, &inbox, &["--json"]).expect(4);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["outcome"], "refused");
    assert!(
        r.stderr.contains("clock: this host's clock says "),
        "{}",
        r.stderr
    );
    let refused = of_kind(&h, "sync.refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["detail"]["inbox"], inbox.display().to_string());
    assert!(
        of_kind(&h, "sync.ignored").is_empty(),
        "no verdict on the file"
    );
    assert!(of_kind(&h, "bundle.verified").is_empty());
    assert!(
        !h.state("sync.json").exists(),
        "judged again once the clock is right"
    );
    assert!(!h.file(NGINX).exists());
    assert_ledger_sound(&h);
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if !require_tool(
        "systemd-analyze",
        "the_systemd_units_pass_systemd_analyze_verify",
    ) {
        return;
    }
    let src = airlock_tests::root().join("packaging/systemd");
    let dir = tempfile::tempdir().unwrap();
    let applier = bin("airlock-applier");
    let mut units = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        // /usr/bin/airlock-applier is not installed here: point at the built one.
        let text = text.replace("/usr/bin/airlock-applier", &applier.display().to_string());
        let to = dir.path().join(p.file_name().unwrap());
        std::fs::write(&to, text).unwrap();
        units.push(to);
    }
    units.sort();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "airlock-sync-usb.service",
        "airlock-sync.path",
        "airlock-sync.service",
        "airlock-sync.timer",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    let r = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .env("SYSTEMD_LOG_LEVEL", "notice"));
    let ours: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("airlock") || l.contains(&dir.path().display().to_string()))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify:\n{}", r.stderr);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The service runs the applier's sync on the documented inbox, hourly.
    let service = std::fs::read_to_string(src.join("airlock-sync.service")).unwrap();
    assert!(
        service
            .contains("\nExecStart=/usr/bin/airlock-applier sync --inbox /var/lib/airlock/inbox\n")
    );
    assert!(service.contains("\nType=oneshot\n"));
    assert!(service.contains("\nPrivateNetwork=yes\n"));
    let timer = std::fs::read_to_string(src.join("airlock-sync.timer")).unwrap();
    for line in [
        "OnCalendar=hourly",
        "Persistent=true",
        "RandomizedDelaySec=300",
    ] {
        assert!(timer.contains(&format!("\n{line}\n")), "{line}");
    }
}
