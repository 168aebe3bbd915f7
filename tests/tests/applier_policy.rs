//! Change-control approvals and host policy (issue 7) through the real binaries,
//! on a generated `Host::bench` server: `apply` needs `policy.approvals_required`
//! valid approvals from distinct keys in `trust.approver_keys`, for exactly the
//! plan it computes now, and any approval that does not hold refuses the run;
//! `approve` refuses an edited plan (its diff, which the approver reads, included)
//! and a malformed ticket; a bundle for another channel, an expired bundle, a
//! lower sequence number (unless an approved `--allow-downgrade`) and a clock
//! behind the ledger are refused; blocked and expired mitigations are skipped.
//! Every refusal exits 4, is recorded in the ledger, and leaves the host root and
//! `state.json` exactly as they were. The last test answers an auditor's "who
//! approved this change" from the ledger alone, with the commands
//! `docs/ledger.md` shows.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::keys::PublicKey;
use airlock_ledger::{Ledger, NewEntry};
use airlock_tests::{Fixture, Host, Run, applier, bin, bundler, mitigation_xml, require_tool, run};
use chrono::{DateTime, SecondsFormat, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The mitigation the auditor asks about (and the id `docs/ledger.md` shows).
const M1: &str = "AM-2026-0042";
/// A second mitigation, so that a bundle can leave one out.
const M2: &str = "AM-2026-0043";
/// The tickets of the two approvers (also shown in `docs/ledger.md`).
const TICKET_A: &str = "CHG-4711";
const TICKET_B: &str = "SEC-302";

// ---------------------------------------------------------------------------
// Setup

/// A published and fetched feed of `docs` (id, XML).
fn feed(docs: &[(&str, String)]) -> Fixture {
    let f = Fixture::empty();
    for (id, xml) in docs {
        std::fs::write(f.feed().join("mitigations").join(format!("{id}.xml")), xml).unwrap();
    }
    f.publish(&[]);
    f.fetch().expect(0);
    f
}

/// [`M1`] and [`M2`], both applicable to the bench host.
fn two_docs() -> Fixture {
    feed(&[(M1, mitigation_xml(M1, 1)), (M2, mitigation_xml(M2, 1))])
}

/// `build --out DIR/NAME EXTRA` (channel prod unless EXTRA names one); must succeed.
fn build(f: &Fixture, name: &str, extra: &[&str]) -> PathBuf {
    let out = f.path(name);
    f.build(&out, extra).expect(0);
    out
}

/// An approver's key pair, made with `airlock-bundler keygen --role approver`.
struct Approver {
    key: PathBuf,
    public: PathBuf,
    /// The key id, as approvals and the ledger name it.
    id: String,
}

fn approver(f: &Fixture, name: &str) -> Approver {
    let dir = f.path("approvers").join(name);
    bundler([
        "keygen".into(),
        "--role".into(),
        "approver".into(),
        "--no-password".into(),
        "--out".into(),
        dir.clone().into_os_string(),
    ])
    .expect(0);
    let public = dir.join("approver.pub");
    let id = PublicKey::from_file(&public).unwrap().id().to_string();
    Approver {
        key: dir.join("approver.key"),
        public,
        id,
    }
}

/// An initialised bench host that trusts `approvers` and has `policy` (TOML lines)
/// in its `[policy]` table.
fn host(f: &Fixture, approvers: &[&Approver], policy: &str) -> Host {
    let h = Host::bench(f);
    let keys: Vec<String> = approvers
        .iter()
        .map(|a| format!("\"{}\"", a.public.display()))
        .collect();
    let text = std::fs::read_to_string(h.profile()).unwrap();
    assert!(text.contains("\n[trust]\n") && text.contains("\n[policy]\n"));
    let text = text
        .replace(
            "\n[trust]\n",
            &format!("\n[trust]\napprover_keys = [{}]\n", keys.join(", ")),
        )
        .replace("\n[policy]\n", &format!("\n[policy]\n{policy}"));
    std::fs::write(h.profile(), text).unwrap();
    h.applier(&["init", "-q"]).expect(0);
    h
}

/// `DIR/NAME` beside the host's profile.
fn at(h: &Host, name: &str) -> PathBuf {
    h.dir.path().join(name)
}

/// An RFC 3339 time (whole seconds), as the bundler and the applier write them.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// Commands

/// `apply BUNDLE --yes FLAGS --approval A...`.
fn apply(h: &Host, bundle: &Path, flags: &[&str], approvals: &[&Path]) -> Run {
    h.applier(&apply_args(bundle, flags, approvals))
}

fn apply_args(bundle: &Path, flags: &[&str], approvals: &[&Path]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["apply".into(), bundle.into(), "--yes".into()];
    args.extend(flags.iter().map(OsString::from));
    for a in approvals {
        args.push("--approval".into());
        args.push(a.into());
    }
    args
}

/// `plan BUNDLE FLAGS --out DIR/NAME`: the plan file and its hash.
fn plan_out(h: &Host, bundle: &Path, name: &str, flags: &[&str]) -> (PathBuf, String) {
    let out = at(h, name);
    let mut args: Vec<OsString> = vec!["plan".into(), bundle.into(), "-q".into()];
    args.extend(flags.iter().map(OsString::from));
    args.extend(["--out".into(), out.clone().into()]);
    h.applier(&args).expect(0);
    let plan: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let hash = plan["hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("sha256:"), "{hash}");
    (out, hash)
}

/// `airlock-applier approve PLAN --key KEY --ticket T [--out OUT]` on the
/// approver's own machine (no host profile).
fn approve(plan: &Path, who: &Approver, ticket: &str, out: Option<&Path>) -> Run {
    let mut args: Vec<OsString> = vec![
        "approve".into(),
        plan.into(),
        "--key".into(),
        who.key.clone().into(),
        "--ticket".into(),
        ticket.into(),
    ];
    if let Some(out) = out {
        args.extend(["--out".into(), out.into()]);
    }
    applier(args)
}

/// [`approve`] that must succeed: the approval file it wrote.
fn approved(plan: &Path, who: &Approver, ticket: &str, out: Option<&Path>) -> PathBuf {
    approve(plan, who, ticket, out).expect(0);
    let path = out.map_or_else(
        || {
            let mut p = plan.as_os_str().to_os_string();
            p.push(format!(".{}.approval", who.id));
            PathBuf::from(p)
        },
        Path::to_path_buf,
    );
    assert!(path.is_file(), "{} was not written", path.display());
    path
}

/// `airlock-applier --profile P ARGS` under `faketime -f OFFSET`.
fn faked(h: &Host, offset: &str, args: &[OsString]) -> Run {
    run(Command::new("faketime")
        .args(["-f", offset])
        .arg(bin("airlock-applier"))
        .arg("--profile")
        .arg(h.profile())
        .args(args))
}

// ---------------------------------------------------------------------------
// The ledger and the host

/// The ledger's entries of `kind`, in order.
fn log(h: &Host, kind: &str) -> Vec<Value> {
    let r = h
        .ledger(&["log", "--kind", kind, "--format", "json"])
        .expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

fn last(h: &Host, kind: &str) -> Value {
    log(h, kind)
        .pop()
        .unwrap_or_else(|| panic!("no {kind} entry"))
}

/// `{key, ticket}` pairs of an `approved_by` list, as a set.
fn approved_by(detail: &Value) -> BTreeSet<(String, String)> {
    detail["approved_by"]
        .as_array()
        .unwrap_or_else(|| panic!("no approved_by in {detail}"))
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_string(),
                a["ticket"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&Approver, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(a, t)| (a.id.clone(), (*t).to_string()))
        .collect()
}

/// Every entry under a directory: path -> (mode, content or link target, mtime).
type Tree = BTreeMap<String, (u32, Option<Vec<u8>>, (i64, i64))>;

fn tree(top: &Path) -> Tree {
    fn walk(top: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.file_type().is_symlink() {
                Some(
                    std::fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else if m.is_dir() {
                None
            } else {
                Some(std::fs::read(&p).unwrap())
            };
            let rel = p.strip_prefix(top).unwrap().display().to_string();
            out.insert(
                rel,
                (
                    m.permissions().mode() & 0o7777,
                    content,
                    (m.mtime(), m.mtime_nsec()),
                ),
            );
            if m.is_dir() {
                walk(top, &p, out);
            }
        }
    }
    let mut out = Tree::new();
    walk(top, top, &mut out);
    out
}

/// What a refused command must leave alone: every file of the host root (bytes,
/// mode, mtime), `state.json`, and the number of runs started.
#[derive(Debug, PartialEq)]
struct Snapshot {
    root: Tree,
    state: Option<Vec<u8>>,
    runs_started: usize,
}

fn snapshot(h: &Host) -> Snapshot {
    Snapshot {
        root: tree(&at(h, "root")),
        state: std::fs::read(h.state("state.json")).ok(),
        runs_started: log(h, "apply.started").len(),
    }
}

#[track_caller]
fn assert_unchanged(h: &Host, before: &Snapshot, what: &str) {
    let after = snapshot(h);
    for (k, v) in &before.root {
        assert_eq!(Some(v), after.root.get(k), "{what}: {k} changed");
    }
    for k in after.root.keys() {
        assert!(before.root.contains_key(k), "{what}: {k} appeared");
    }
    assert!(before.state == after.state, "{what}: state.json changed");
    assert_eq!(
        before.runs_started, after.runs_started,
        "{what}: a run was started"
    );
}

/// Runs `act`, which must be refused by policy: exit 4 with `fragment` on stderr,
/// exactly one new `kind` entry whose reason holds `fragment`, and nothing changed
/// on the host. Returns that entry.
#[track_caller]
fn assert_refused(h: &Host, kind: &str, fragment: &str, act: impl FnOnce() -> Run) -> Value {
    let before = snapshot(h);
    let entries = log(h, kind).len();
    let r = act();
    assert_eq!(
        r.code, 4,
        "expected exit 4 ({fragment})\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains(fragment),
        "stderr lacks {fragment:?}:\n{}",
        r.stderr
    );
    assert!(r.stderr.contains("what to do:"), "{}", r.stderr);
    let after = log(h, kind);
    assert_eq!(after.len(), entries + 1, "one new {kind} entry: {after:#?}");
    let entry = after.last().unwrap().clone();
    let reason = entry["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains(fragment), "{kind} reason: {reason}");
    assert_unchanged(h, &before, fragment);
    entry
}

/// The files [`mitigation_xml`] writes for `id` are there (or not).
#[track_caller]
fn assert_applied(h: &Host, id: &str, applied: bool) {
    let conf = h.file(&format!("/etc/bench/conf.d/{id}.conf"));
    let ini = std::fs::read_to_string(h.file("/etc/bench/app.ini")).unwrap();
    assert_eq!(conf.is_file(), applied, "{}", conf.display());
    assert_eq!(ini.contains(&format!("k-{id} = v")), applied, "{ini}");
}

// ---------------------------------------------------------------------------
// Approvals

#[test]
fn two_person_rule_needs_two_distinct_trusted_approvers_of_the_current_plan() {
    let f = two_docs();
    // Built first: the bundler refuses to number a bundle below one it built.
    let other = build(&f, "other.airlock", &["--seq", "1", "--include", M1]);
    let bundle = build(&f, "b.airlock", &["--seq", "2"]);
    let [alice, bob, mallory] = ["alice", "bob", "mallory"].map(|n| approver(&f, n));
    let h = host(&f, &[&alice, &bob], "approvals_required = 2\n");

    // Approvals of another bundle's plan, by the right people.
    let (other_plan, other_hash) = plan_out(&h, &other, "other-plan.json", &[]);
    let other_a = approved(&other_plan, &alice, TICKET_A, None);
    let other_b = approved(&other_plan, &bob, TICKET_B, None);

    let (plan, hash) = plan_out(&h, &bundle, "plan.json", &[]);
    assert_ne!(hash, other_hash);
    let by_alice = approved(&plan, &alice, TICKET_A, None);
    let by_alice_again = approved(&plan, &alice, "CHG-4712", Some(&at(&h, "again.approval")));
    let by_bob = approved(&plan, &bob, TICKET_B, None);
    let by_mallory = approved(&plan, &mallory, TICKET_A, None);
    // Bob's approval with the ticket in its (signed) trusted comment changed.
    let forged = at(&h, "forged.approval");
    let text = std::fs::read_to_string(&by_bob).unwrap();
    assert!(text.contains(&format!(" ticket={TICKET_B}\n")), "{text}");
    std::fs::write(
        &forged,
        text.replace(&format!(" ticket={TICKET_B}\n"), " ticket=CHG-9999\n"),
    )
    .unwrap();

    let refused = |fragment: &str, approvals: &[&Path]| {
        assert_refused(&h, "apply.refused", fragment, || {
            apply(&h, &bundle, &[], approvals)
        })
    };
    let e = refused("needs 2 approval(s)", &[]);
    assert!(e["detail"]["reason"].as_str().unwrap().contains(&hash));
    refused("and 1 valid one(s) were given", &[&by_alice]);
    refused(
        "approvals must come from distinct approvers",
        &[&by_alice, &by_alice_again],
    );
    let e = refused(
        "which is not in this host's trust.approver_keys",
        &[&by_alice, &by_mallory],
    );
    assert!(
        e["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains(&mallory.id),
        "{e}"
    );
    // Even alongside two good ones, a bad approval refuses the run.
    refused(
        "which is not in this host's trust.approver_keys",
        &[&by_alice, &by_bob, &by_mallory],
    );
    refused(
        "the plan for this bundle on this host is now",
        &[&other_a, &other_b],
    );
    refused("the signature does not verify", &[&by_alice, &forged]);
    refused("not an approval signature", &[&by_alice, &plan]);

    // A managed file changed after the plan was approved: the approvals are for
    // the plan of the host as it was, not as it is.
    let ini = h.file("/etc/bench/app.ini");
    let original = std::fs::read(&ini).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"; edited by someone after the change board met\n");
    std::fs::write(&ini, &changed).unwrap();
    let e = refused(
        "the plan for this bundle on this host is now",
        &[&by_alice, &by_bob],
    );
    let reason = e["detail"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("it approves plan {hash}")),
        "{reason}"
    );
    std::fs::write(&ini, &original).unwrap();
    assert_eq!(log(&h, "approval.recorded").len(), 0);

    // Two distinct trusted approvers of this very plan: applied.
    apply(&h, &bundle, &[], &[&by_alice, &by_bob]).expect(0);
    assert_applied(&h, M1, true);
    assert_applied(&h, M2, true);
    let completed = last(&h, "apply.completed");
    let run = completed["detail"]["run"].as_str().unwrap();
    assert_eq!(completed["detail"]["plan"], hash.as_str());
    assert_eq!(completed["detail"]["downgrade_from"], Value::Null);
    let keys: BTreeSet<&str> = completed["detail"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, BTreeSet::from([alice.id.as_str(), bob.id.as_str()]));

    let want = pairs(&[(&alice, TICKET_A), (&bob, TICKET_B)]);
    let recorded = log(&h, "approval.recorded");
    assert_eq!(recorded.len(), 2, "{recorded:#?}");
    let mut got = BTreeSet::new();
    for r in &recorded {
        let d = &r["detail"];
        assert_eq!(d["plan"], hash.as_str());
        assert_eq!(d["run"], run);
        assert_eq!(r["bundle"], completed["bundle"]);
        let (key, ticket) = (d["key"].as_str().unwrap(), d["ticket"].as_str().unwrap());
        assert_eq!(
            d["comment"].as_str().unwrap(),
            format!(
                "airlock-approval plan={hash} host=bench01 bundle={} key={key} ticket={ticket}",
                completed["bundle"].as_str().unwrap()
            )
        );
        let file = if key == alice.id { &by_alice } else { &by_bob };
        assert_eq!(d["file"], file.display().to_string());
        got.insert((key.to_string(), ticket.to_string()));
    }
    assert_eq!(got, want);
    // In the same transaction as apply.completed: the entries right before it.
    let seqs: Vec<u64> = recorded
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let end = completed["seq"].as_u64().unwrap();
    assert_eq!(seqs, vec![end - 2, end - 1]);

    let applied = log(&h, "mitigation.applied");
    assert_eq!(applied.len(), 2);
    for m in &applied {
        assert_eq!(m["detail"]["run"], run);
        assert_eq!(approved_by(&m["detail"]), want, "{m}");
    }
    h.ledger(&["verify"]).expect(0);

    // The same bundle again changes nothing, so it needs no approval.
    apply(&h, &bundle, &[], &[]).expect(0);
    assert_eq!(log(&h, "approval.recorded").len(), 2);
    assert_eq!(log(&h, "mitigation.applied").len(), 2);
}

#[test]
fn approve_refuses_an_edited_plan_file_and_a_malformed_ticket() {
    let f = two_docs();
    let bundle = build(&f, "b.airlock", &[]);
    let alice = approver(&f, "alice");
    let h = host(&f, &[&alice], "approvals_required = 1\n");
    let (plan, hash) = plan_out(&h, &bundle, "plan.json", &[]);
    let text = std::fs::read_to_string(&plan).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let pre_image = value["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/bench/app.ini")
        .unwrap()["before"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let digit = |c: char| if c == '0' { '1' } else { '0' };
    let mut edited_hash = hash.clone();
    let l = edited_hash.pop().unwrap();
    edited_hash.push(digit(l));
    let mut edited_pre = pre_image.clone();
    let l = edited_pre.pop().unwrap();
    edited_pre.push(digit(l));

    let edits: [(&str, String); 4] = [
        (
            "a verdict",
            text.replacen("\"verdict\": \"apply\"", "\"verdict\": \"keep\"", 1),
        ),
        ("one digit of the hash", text.replace(&hash, &edited_hash)),
        (
            "one digit of a pre-image hash",
            text.replace(&pre_image, &edited_pre),
        ),
        (
            "the host",
            text.replace("\"host\": \"bench01\"", "\"host\": \"bench02\""),
        ),
    ];
    for (i, (what, edited)) in edits.iter().enumerate() {
        assert_ne!(*edited, text, "{what}: the edit did nothing");
        let dir = at(&h, &format!("edit-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("plan.json");
        std::fs::write(&file, edited).unwrap();
        let r = approve(&file, &alice, TICKET_A, None).expect(3);
        assert!(
            r.stderr.contains(
                "the plan's content does not match its hash: it was edited after airlock wrote it"
            ),
            "{what}: {}",
            r.stderr
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.json"], "{what}: an approval was written");
    }

    let long = "T".repeat(129);
    for ticket in ["two words", "", "-", "a=b", "CHG\n1", "é", long.as_str()] {
        let out = at(&h, "t.approval");
        let r = approve(&plan, &alice, ticket, Some(&out)).expect(2);
        assert!(
            r.stderr
                .contains("is not 1-128 characters of letters, digits and . _ : / # -"),
            "{ticket:?}: {}",
            r.stderr
        );
        assert!(!out.exists(), "{ticket:?}: an approval was written");
    }

    // The unedited plan: PLAN.json.KEYID.approval, whose signed comment binds
    // plan, host, bundle, key and ticket.
    let written = approved(&plan, &alice, "jira:SEC-7/a#1", None);
    let sig = std::fs::read_to_string(&written).unwrap();
    let bundle_id = value["bundle"]["id"].as_str().unwrap();
    assert!(
        sig.lines().any(|l| l
            == format!(
                "trusted comment: airlock-approval plan={hash} host=bench01 bundle={bundle_id} key={} ticket=jira:SEC-7/a#1",
                alice.id
            )),
        "{sig}"
    );
}

/// The diff is what an approver reads before signing; a plan file whose diff was
/// changed (so that it shows something other than what the hash binds) must not
/// be signed as if it were intact.
#[test]
fn approve_refuses_a_plan_whose_shown_diff_was_edited() {
    let f = two_docs();
    let bundle = build(&f, "b.airlock", &[]);
    let alice = approver(&f, "alice");
    let h = host(&f, &[&alice], "approvals_required = 1\n");
    let (plan, _) = plan_out(&h, &bundle, "plan.json", &[]);
    let text = std::fs::read_to_string(&plan).unwrap();
    let shown = format!("+k-{M2} = v\\n");
    assert!(text.contains(&shown), "{text}");
    let edited = text.replace(&shown, "");
    std::fs::write(&plan, edited).unwrap();
    let out = at(&h, "diff.approval");
    let r = approve(&plan, &alice, TICKET_A, Some(&out));
    assert_eq!(
        r.code, 3,
        "a plan whose diff no longer shows the change to app.ini was approved\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------
// Bundle policy

#[test]
fn a_bundle_for_another_channel_is_refused_by_verify_plan_and_apply() {
    let f = two_docs();
    let bundle = build(&f, "test.airlock", &["--channel", "test"]);
    let h = host(&f, &[], "");
    for cmd in ["verify", "plan", "apply"] {
        let e = assert_refused(
            &h,
            "bundle.rejected",
            "it is for channel test, and this host takes channel prod",
            || {
                let mut args: Vec<OsString> = vec![cmd.into(), bundle.clone().into()];
                if cmd == "apply" {
                    args.push("--yes".into());
                }
                h.applier(&args)
            },
        );
        assert_eq!(e["detail"]["exit"], 4, "{cmd}: {e}");
        assert!(e["bundle"].is_string(), "{cmd}: {e}");
    }
    assert!(log(&h, "bundle.verified").is_empty());
}

#[test]
fn an_expired_bundle_is_refused_by_verify_plan_and_apply() {
    let f = two_docs();
    let created = Utc::now() - TimeDelta::days(3);
    let bundle = build(
        &f,
        "old.airlock",
        &["--created", &rfc3339(created), "--expires", "1d"],
    );
    let h = host(&f, &[], "");
    let expired = rfc3339(created + TimeDelta::days(1));
    for cmd in ["verify", "plan", "apply"] {
        assert_refused(
            &h,
            "bundle.rejected",
            &format!("it expired at {expired}"),
            || {
                let mut args: Vec<OsString> = vec![cmd.into(), bundle.clone().into()];
                if cmd == "apply" {
                    args.push("--yes".into());
                }
                h.applier(&args)
            },
        );
    }
    assert!(log(&h, "bundle.verified").is_empty());
}

#[test]
fn a_lower_sequence_is_refused_unless_an_approved_downgrade() {
    let f = two_docs();
    let older = build(&f, "b1.airlock", &["--seq", "1", "--include", M1]);
    let newer = build(&f, "b2.airlock", &["--seq", "2"]);
    let alice = approver(&f, "alice");
    // No approvals required for ordinary runs; a downgrade still needs one.
    let h = host(&f, &[&alice], "");
    apply(&h, &newer, &[], &[]).expect(0);
    assert_applied(&h, M2, true);

    let lower = "its sequence number 1 is lower than 2, already accepted on channel prod";
    for cmd in ["verify", "plan", "apply"] {
        let before = log(&h, "bundle.rejected").len();
        assert_refused(&h, "bundle.rejected", lower, || {
            let mut args: Vec<OsString> = vec![cmd.into(), older.clone().into()];
            if cmd == "apply" {
                args.push("--yes".into());
            }
            let r = h.applier(&args);
            assert!(r.stderr.contains("--allow-downgrade"), "{}", r.stderr);
            r
        });
        assert_eq!(log(&h, "bundle.rejected").len(), before + 1);
    }

    // Let through verification, but not applied without a sign-off.
    let e = assert_refused(&h, "apply.refused", "needs 1 approval(s)", || {
        apply(&h, &older, &["--allow-downgrade"], &[])
    });
    assert!(
        e["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("a downgrade needs at least one"),
        "{e}"
    );

    let (plan, hash) = plan_out(&h, &older, "downgrade.json", &["--allow-downgrade"]);
    let ok = approved(&plan, &alice, "INC-0815", None);
    apply(&h, &older, &["--allow-downgrade"], &[&ok]).expect(0);
    assert_applied(&h, M1, true);
    assert_applied(&h, M2, false);

    let verified = last(&h, "bundle.verified");
    assert_eq!(verified["detail"]["seq"], 1);
    assert_eq!(verified["detail"]["downgrade_from"], 2);
    let completed = last(&h, "apply.completed");
    assert_eq!(completed["detail"]["downgrade_from"], 2);
    assert_eq!(completed["detail"]["plan"], hash.as_str());
    assert_eq!(completed["detail"]["approvals"], json!([alice.id]));
    let removed = last(&h, "mitigation.removed");
    assert_eq!(removed["mitigation"], M2);
    assert_eq!(
        approved_by(&removed["detail"]),
        pairs(&[(&alice, "INC-0815")])
    );
    let recorded = last(&h, "approval.recorded");
    assert_eq!(recorded["detail"]["ticket"], "INC-0815");
    assert_eq!(recorded["detail"]["run"], completed["detail"]["run"]);

    // Accepting the older bundle did not lower what this host has accepted.
    assert_refused(&h, "bundle.rejected", lower, || {
        apply(&h, &older, &[], &[&ok])
    });
    // A downgrade that changes nothing (it is applied already) is still recorded
    // as one, so it still needs its sign-off.
    assert_refused(&h, "apply.refused", "needs 1 approval(s)", || {
        apply(&h, &older, &["--allow-downgrade"], &[])
    });
    h.ledger(&["verify"]).expect(0);
}

#[test]
fn a_blocked_mitigation_is_skipped_shown_in_the_plan_and_recorded() {
    let f = two_docs();
    let bundle = build(&f, "b.airlock", &[]);
    let h = host(&f, &[], &format!("blocked = [\"{M2}\"]\n"));

    let r = h
        .applier(&["plan".as_ref(), bundle.as_os_str(), "--json".as_ref()])
        .expect(0);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let m2 = plan["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == M2)
        .unwrap();
    assert_eq!(m2["verdict"], "skip", "{m2}");
    let reason = m2["reason"].as_str().unwrap();
    assert!(reason.starts_with("blocked by policy.blocked"), "{reason}");
    let text = h
        .applier(&["plan".as_ref(), bundle.as_os_str()])
        .expect(0)
        .stdout;
    let line = text
        .lines()
        .position(|l| l.contains(M2))
        .unwrap_or_else(|| panic!("{M2} not shown:\n{text}"));
    let shown = text
        .lines()
        .skip(line)
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        shown.contains("skip") && shown.contains("blocked by policy.blocked"),
        "{shown}"
    );

    apply(&h, &bundle, &[], &[]).expect(0);
    assert_applied(&h, M1, true);
    assert_applied(&h, M2, false);
    let skipped = last(&h, "mitigation.skipped");
    assert_eq!(skipped["mitigation"], M2);
    assert!(
        skipped["detail"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("blocked by policy.blocked"),
        "{skipped}"
    );
    assert_eq!(log(&h, "mitigation.applied").len(), 1);

    // status shows it too, in text and JSON.
    let status = h.applier(&["status"]).expect(0);
    assert!(
        status
            .stdout
            .contains(&format!("blocked {M2}: never applied here")),
        "{}",
        status.stdout
    );
    let status = h.applier(&["status", "--json"]).expect(0);
    let v: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["blocked"], json!([M2]));
}

#[test]
fn an_expired_mitigation_is_skipped_and_the_bundle_still_applies() {
    let expired = rfc3339(Utc::now() - TimeDelta::days(1));
    let doc = mitigation_xml(M2, 1).replace(
        "</published>",
        &format!("</published>\n  <expires>{expired}</expires>"),
    );
    assert!(doc.contains("<expires>"));
    let f = feed(&[(M1, mitigation_xml(M1, 1)), (M2, doc)]);
    let bundle = build(&f, "b.airlock", &[]);
    let h = host(&f, &[], "");

    let r = h
        .applier(&["plan".as_ref(), bundle.as_os_str(), "--json".as_ref()])
        .expect(0);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap();
    let m2 = plan["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == M2)
        .unwrap();
    assert_eq!(m2["verdict"], "skip", "{m2}");
    assert_eq!(m2["reason"], format!("expired at {expired}"));

    apply(&h, &bundle, &[], &[]).expect(0);
    assert_applied(&h, M1, true);
    assert_applied(&h, M2, false);
    let skipped = last(&h, "mitigation.skipped");
    assert_eq!(skipped["mitigation"], M2);
    assert_eq!(skipped["detail"]["reason"], format!("expired at {expired}"));
    assert!(log(&h, "bundle.rejected").is_empty());
}

// ---------------------------------------------------------------------------
// The clock

/// Appends an entry dated `ahead` from now to the host's ledger, as a run whose
/// clock was right would have left it before this host's clock was set back.
fn ledger_entry_ahead(h: &Host, ahead: TimeDelta) -> DateTime<Utc> {
    let ts = Utc::now() + ahead;
    let mut ledger = Ledger::open(&h.state("ledger.db")).unwrap();
    ledger
        .append(
            NewEntry::new(
                "test.future",
                "airlock-tests",
                json!({ "ahead_s": ahead.num_seconds() }),
            )
            .at(ts),
        )
        .unwrap();
    ts
}

#[test]
fn a_clock_behind_the_ledger_beyond_the_skew_is_refused() {
    let f = two_docs();
    let bundle = build(&f, "b.airlock", &[]);

    // The ledger's newest entry is two hours ahead of this host's clock.
    let h = host(&f, &[], "max_clock_skew = \"10m\"\n");
    let newest = ledger_entry_ahead(&h, TimeDelta::hours(2));
    let newest = rfc3339(newest.with_nanosecond(0).unwrap());
    for cmd in ["verify", "plan", "apply"] {
        let e = assert_refused(&h, "bundle.rejected", "clock", || {
            let mut args: Vec<OsString> = vec![cmd.into(), bundle.clone().into()];
            if cmd == "apply" {
                args.push("--yes".into());
            }
            h.applier(&args)
        });
        let reason = e["detail"]["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("the ledger already holds an entry from {newest}"))
                && reason.contains("max_clock_skew = 600 s"),
            "{reason}"
        );
    }
    assert!(log(&h, "bundle.verified").is_empty());
    h.ledger(&["verify"]).expect(0);

    // Five minutes ahead is within the ten allowed.
    let h = host(&f, &[], "max_clock_skew = \"10m\"\n");
    ledger_entry_ahead(&h, TimeDelta::minutes(5));
    h.applier(&["verify".as_ref(), bundle.as_os_str()])
        .expect(0);
    apply(&h, &bundle, &[], &[]).expect(0);
    assert_applied(&h, M1, true);
}

#[test]
fn a_clock_wound_back_with_faketime_is_refused() {
    if !require_tool("faketime", "a_clock_wound_back_with_faketime_is_refused") {
        return;
    }
    let f = two_docs();
    // Expired two days ago: a clock set back further would make it look valid.
    let created = Utc::now() - TimeDelta::days(3);
    let stale = build(
        &f,
        "stale.airlock",
        &[
            "--seq",
            "1",
            "--created",
            &rfc3339(created),
            "--expires",
            &rfc3339(created + TimeDelta::days(1)),
        ],
    );
    let bundle = build(&f, "b.airlock", &["--seq", "2"]);
    let h = host(&f, &[], "");
    apply(&h, &bundle, &[], &[]).expect(0);
    // The sanity check of the fake: at the true time the stale bundle is expired.
    assert_refused(&h, "bundle.rejected", "it expired at", || {
        h.applier(&["verify".as_ref(), stale.as_os_str()])
    });

    let verify = |b: &Path| vec![OsString::from("verify"), b.into()];
    for (offset, args) in [
        ("-2d", verify(&bundle)),
        ("-2d", apply_args(&bundle, &[], &[])),
        ("-11m", apply_args(&bundle, &[], &[])),
        // The attack the check is for: the stale bundle looks fresh at that time.
        ("-50h", apply_args(&stale, &["--allow-downgrade"], &[])),
    ] {
        let e = assert_refused(&h, "bundle.rejected", "clock", || faked(&h, offset, &args));
        let reason = e["detail"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("clock: this host's clock says ")
                && reason.contains("a clock set back could make an expired bundle look valid"),
            "{offset}: {reason}"
        );
        // The entry carries the host's (wrong) time, which the auditor sees.
        let ts = DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).unwrap();
        assert!(
            ts.with_timezone(&Utc) < Utc::now() - TimeDelta::minutes(10),
            "{e}"
        );
    }
    // Within policy.max_clock_skew (default 10m): accepted, and nothing to do.
    faked(&h, "-5m", &apply_args(&bundle, &[], &[])).expect(0);
    let r = h.ledger(&["verify"]).expect(0);
    assert!(
        r.stderr.contains("the host clock went backwards"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------
// The auditor's question

/// The `## Who approved a change` section of `docs/ledger.md`.
fn doc_section() -> String {
    let text = std::fs::read_to_string(airlock_tests::root().join("docs/ledger.md")).unwrap();
    let start = text
        .find("\n## Who approved a change\n")
        .expect("docs/ledger.md has a `## Who approved a change` section");
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

/// "Who approved the change that applied AM-2026-0042 on this host, under which
/// ticket, and when?", answered from the ledger alone by the commands that
/// `docs/ledger.md` shows.
#[test]
fn the_ledger_alone_says_who_approved_a_change_under_which_ticket_and_when() {
    const WHICH_RUN: &str =
        "airlock-ledger log --mitigation AM-2026-0042 --kind mitigation.applied --format json";
    const APPROVALS: &str = "airlock-ledger log --kind approval.recorded --format json";

    let doc = doc_section();
    let shown: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("$ ")).collect();
    assert_eq!(
        shown,
        [WHICH_RUN, APPROVALS],
        "the commands docs/ledger.md shows"
    );
    for word in [M1, TICKET_A, TICKET_B, "approved_by", "approval.recorded"] {
        assert!(doc.contains(word), "the section does not mention {word}");
    }

    let f = two_docs();
    let bundle = build(&f, "b.airlock", &[]);
    let [alice, bob] = ["alice", "bob"].map(|n| approver(&f, n));
    let h = host(&f, &[&alice, &bob], "approvals_required = 2\n");
    let (plan, hash) = plan_out(&h, &bundle, "plan.json", &[]);
    let a = approved(&plan, &alice, TICKET_A, None);
    let b = approved(&plan, &bob, TICKET_B, None);
    let start = Utc::now() - TimeDelta::seconds(1);
    apply(&h, &bundle, &[], &[&a, &b]).expect(0);
    let end = Utc::now() + TimeDelta::seconds(1);

    let query = |command: &str| -> Vec<Value> {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        serde_json::from_str(&h.ledger(&args).expect(0).stdout).unwrap()
    };
    let want = pairs(&[(&alice, TICKET_A), (&bob, TICKET_B)]);

    // Who and under which ticket, and when: the mitigation's own entry.
    let entries = query(WHICH_RUN);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let applied = &entries[0];
    assert_eq!(applied["kind"], "mitigation.applied");
    assert_eq!(applied["mitigation"], M1);
    assert_eq!(applied["host"], "bench01");
    assert_eq!(approved_by(&applied["detail"]), want);
    let when = DateTime::parse_from_rfc3339(applied["ts"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(start <= when && when <= end, "{when} not in {start}..{end}");
    let run = &applied["detail"]["run"];

    // The same answer from the approvals of that run, with what each one signed.
    let approvals: Vec<Value> = query(APPROVALS)
        .into_iter()
        .filter(|e| e["detail"]["run"] == *run)
        .collect();
    assert_eq!(approvals.len(), 2, "{approvals:#?}");
    let got: BTreeSet<(String, String)> = approvals
        .iter()
        .map(|e| {
            assert_eq!(e["bundle"], applied["bundle"]);
            assert_eq!(e["detail"]["plan"], hash.as_str());
            (
                e["detail"]["key"].as_str().unwrap().to_string(),
                e["detail"]["ticket"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    for e in &approvals {
        let ts = DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).unwrap();
        assert!(
            (ts.with_timezone(&Utc) - when).abs() < TimeDelta::seconds(1),
            "{e}"
        );
    }
}
