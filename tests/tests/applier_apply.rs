//! `airlock-applier plan`, `apply`, `status` and `rollback` through the real
//! binaries on a copy of the sample lab host: the exact bytes each action writes;
//! a second bundle updates and removes; applying twice changes nothing; rollback
//! restores every pre-image and holds what it took off; drift is refused unless
//! forced; nothing is ever written outside the host root (symbolic links out of
//! it, paths through a file, `..`, a symlinked target, hard links and planted
//! temporary names); owners and modes are kept; a step that fails undoes the whole
//! run (exit 5) and the ledger says so; the lock keeps a second applier out; and
//! the applier's dependency tree holds no HTTP client. The last four tests pin
//! applier bugs found while writing this file (each failed before its fix).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Host, Run, bin, require_tool, run};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const APACHE: &str = "/etc/apache2/conf-enabled/zz-airlock-am-2021-0004.conf";
const GITEA: &str = "/etc/gitea/app.ini";
const NGINX: &str = "/etc/nginx/conf.d/airlock-am-2023-0001.conf";
const SYSCTL: &str = "/etc/sysctl.conf";
const UNIT: &str = "/etc/systemd/system/cups-browsed.service";
const APPLIED: [&str; 5] = [
    "AM-2021-0004",
    "AM-2022-0001",
    "AM-2022-0002",
    "AM-2023-0001",
    "AM-2024-0001",
];

/// The sample feed, a bundle built from it, and an initialised lab host. Keep `f`
/// bound (`f: _keys`) while the host is used: its directory holds the keys the
/// host's profile trusts.
struct Lab {
    f: Fixture,
    h: Host,
    bundle: PathBuf,
}

/// [`lab`], or `None` (the test is skipped, and says so) without `systemctl`: the
/// sample bundle's AM-2024-0001 masks a unit.
fn lab_with_systemctl(test: &str) -> Option<Lab> {
    require_tool("systemctl", test).then(lab)
}

fn lab() -> Lab {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b1.airlock");
    f.build(&bundle, &[]).expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    Lab { f, h, bundle }
}

fn apply(h: &Host, bundle: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec!["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()];
    args.extend(extra.iter().map(OsStr::new));
    h.applier(&args)
}

/// `plan --json` of `bundle`, parsed.
fn plan(h: &Host, bundle: &Path) -> Value {
    let r = h
        .applier(&["plan".as_ref(), bundle.as_os_str(), "--json".as_ref()])
        .expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

/// Mitigation id -> verdict of a plan.
fn verdicts(plan: &Value) -> BTreeMap<String, String> {
    plan["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The decision on `id` in a plan or `apply --json` output.
fn decision<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {plan}"))
}

fn status(h: &Host) -> Value {
    serde_json::from_str(&h.applier(&["status", "--json"]).expect(0).stdout).unwrap()
}

/// Every ledger entry, as JSON.
fn ledger(h: &Host) -> Vec<Value> {
    let r = h.ledger(&["log", "--format", "json"]).expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The kinds of the ledger's entries, in order.
fn kinds(h: &Host) -> Vec<String> {
    ledger(h)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The mitigation ids of the ledger's entries of `kind`, in order.
fn mitigations_of(h: &Host, kind: &str) -> Vec<String> {
    ledger(h)
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["mitigation"].as_str().unwrap_or("-").to_string())
        .collect()
}

fn count(h: &Host, kind: &str) -> usize {
    kinds(h).iter().filter(|k| *k == kind).count()
}

/// The ledger verifies, and its last entry is a checkpoint.
fn assert_ledger_sound(h: &Host) {
    assert_eq!(kinds(h).last().unwrap(), "checkpoint", "{:?}", kinds(h));
    h.ledger(&["verify"]).expect(0);
}

/// One entry of a directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
    },
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    Link(PathBuf),
    /// The modification time (seconds, nanoseconds) of the entry at `PATH`,
    /// stored under `PATH@mtime`.
    Time(i64, i64),
}

/// A snapshot of a tree, by path relative to its top (`PATH` for the node,
/// `PATH@mtime` for its modification time when taken with times).
type Tree = BTreeMap<String, Node>;

/// Everything under `top`, without following symbolic links: file bytes and mode,
/// directory mode, link targets, and (with `times`) every modification time to
/// the nanosecond.
fn tree(top: &Path, times: bool) -> Tree {
    fn walk(top: &Path, dir: &Path, times: bool, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(top).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if times {
                out.insert(
                    format!("{rel}@mtime"),
                    Node::Time(m.mtime(), m.mtime_nsec()),
                );
            }
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&p).unwrap()));
            } else if m.is_dir() {
                out.insert(rel, Node::Dir { mode });
                walk(top, &p, times, out);
            } else {
                out.insert(
                    rel,
                    Node::File {
                        bytes: std::fs::read(&p).unwrap(),
                        mode,
                    },
                );
            }
        }
    }
    let mut out = Tree::new();
    walk(top, top, times, &mut out);
    out
}

/// Files (bytes and mode) and link targets only: what a copy of the samples
/// shares with the samples whatever the umask.
fn content(t: &Tree) -> Tree {
    t.iter()
        .map(|(k, v)| {
            let v = match v {
                Node::Dir { .. } => Node::Dir { mode: 0 },
                v => v.clone(),
            };
            (k.clone(), v)
        })
        .filter(|(_, v)| !matches!(v, Node::Time(..)))
        .collect()
}

/// Asserts two trees are the same, naming the first difference.
#[track_caller]
fn assert_same_tree(before: &Tree, after: &Tree, what: &str) {
    for (k, v) in before {
        assert_eq!(Some(v), after.get(k), "{what}: {k} changed");
    }
    for k in after.keys() {
        assert!(before.contains_key(k), "{what}: {k} appeared");
    }
}

fn root_of(h: &Host) -> PathBuf {
    h.dir.path().join("root")
}

/// No `.NAME.airlock-tmp` in the root and no `.airlock-tmp-*` in the state dir.
#[track_caller]
fn assert_no_temps(h: &Host) {
    for (top, pattern) in [
        (root_of(h), ".airlock-tmp"),
        (h.dir.path().join("state"), ".airlock-tmp-"),
    ] {
        if !top.exists() {
            continue;
        }
        for name in tree(&top, false).keys() {
            assert!(!name.contains(pattern), "temporary file left: {name}");
        }
    }
}

/// The CDATA content of a sample document's only `<file>`.
fn sample_cdata(doc: &str) -> String {
    let text = std::fs::read_to_string(
        airlock_tests::root()
            .join("samples/feed/mitigations")
            .join(doc),
    )
    .unwrap();
    let start = text.find("<![CDATA[").unwrap() + "<![CDATA[".len();
    let end = text[start..].find("]]>").unwrap() + start;
    assert!(!text[end..].contains("<![CDATA["), "{doc} has one CDATA");
    text[start..end].to_string()
}

fn sample(path: &str) -> Vec<u8> {
    std::fs::read(
        airlock_tests::root()
            .join("samples/hosts/lab01")
            .join(path.trim_start_matches('/')),
    )
    .unwrap()
}

fn mode(h: &Host, path: &str) -> u32 {
    std::fs::metadata(h.file(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// A mitigation for the lab host (product linux) with one `<file path=...>`.
fn file_doc(id: &str, path: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<mitigation xmlns="urn:airlock:mitigation:1" id="{id}" revision="1">
  <title>Test-only mitigation {id}</title>
  <summary>A document made by the end-to-end tests to exercise the applier's path checks.</summary>
  <severity>high</severity>
  <published>2026-01-01T00:00:00Z</published>
  <applies-to><product name="linux" min="5.0.0" below="6.0.0"/></applies-to>
  <actions>
    <file path="{path}" mode="0644"><![CDATA[# written by a test
]]></file>
  </actions>
</mitigation>
"#
    )
}

/// `airlock-applier --profile PROFILE ARGS` with `AIRLOCK_SYSTEMCTL=systemctl`.
fn applier_with_systemctl(h: &Host, systemctl: &Path, args: &[&OsStr]) -> Run {
    run(Command::new(bin("airlock-applier"))
        .arg("--profile")
        .arg(h.profile())
        .args(args)
        .env("AIRLOCK_SYSTEMCTL", systemctl))
}

#[test]
fn full_flow_plans_applies_exact_bytes_and_records_every_step() {
    if !require_tool(
        "systemctl",
        "full_flow_plans_applies_exact_bytes_and_records_every_step",
    ) {
        return;
    }
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b1.airlock");
    f.build(&bundle, &[]).expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    h.applier(&["verify".as_ref(), bundle.as_os_str()])
        .expect(0);
    let pristine = tree(&root_of(&h), true);

    // The plan: verdicts, a diff for every file, the same plan in --out and --json.
    let out = f.path("plan.json");
    h.applier(&[
        "plan".as_ref(),
        bundle.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .expect(0);
    let p = plan(&h, &bundle);
    assert_eq!(p["format"], "airlock-plan/1");
    assert_eq!(p["command"], "apply");
    assert_eq!(p["host"], "lab01");
    assert_eq!(p["bundle"]["channel"], "prod");
    assert_eq!(p["bundle"]["seq"], 1);
    let expected: BTreeMap<String, String> = [
        ("AM-2021-0001", "skip"),
        ("AM-2021-0002", "skip"),
        ("AM-2021-0003", "skip"),
        ("AM-2021-0004", "apply"),
        ("AM-2022-0001", "apply"),
        ("AM-2022-0002", "apply"),
        ("AM-2023-0001", "apply"),
        ("AM-2024-0001", "apply"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(verdicts(&p), expected);
    for id in ["AM-2021-0001", "AM-2021-0002", "AM-2021-0003"] {
        let reason = decision(&p, id)["reason"].as_str().unwrap();
        assert!(reason.starts_with("not applicable"), "{id}: {reason}");
    }
    let files: Vec<&str> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, [APACHE, GITEA, NGINX, SYSCTL], "files in path order");
    for f in p["files"].as_array().unwrap() {
        let diff = f["diff"].as_str().unwrap();
        assert!(
            diff.contains(&format!("+++ {}", f["path"].as_str().unwrap())) && diff.contains("\n+"),
            "{}: {diff}",
            f["path"]
        );
        assert_eq!(f["drift"], false);
    }
    assert_eq!(
        p["files"][0]["before"],
        Value::Null,
        "the apache file is new"
    );
    assert_eq!(p["files"][0]["after"]["mode"], 0o644);
    let units = p["units"].as_array().unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0]["unit"], "cups-browsed.service");
    assert_eq!(units[0]["op"], "mask");
    assert_eq!(p["drift"].as_array().unwrap().len(), 0);
    let hash = p["hash"].as_str().unwrap();
    assert!(
        hash.len() == 71
            && hash.starts_with("sha256:")
            && hash[7..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["hash"], p["hash"], "--out and --json plan hashes");
    assert_eq!(written, p, "--out holds the same plan as --json");
    assert_eq!(
        plan(&h, &bundle)["hash"],
        p["hash"],
        "planning again gives the same hash"
    );
    assert_eq!(count(&h, "plan.created"), 3);
    assert_same_tree(&pristine, &tree(&root_of(&h), true), "plan");

    // Without --yes and without a terminal, apply is a usage error and changes nothing.
    let r = h.applier(&["apply".as_ref(), bundle.as_os_str()]).expect(2);
    assert!(r.stderr.contains("run apply with --yes"), "{}", r.stderr);
    assert_same_tree(&pristine, &tree(&root_of(&h), true), "apply without --yes");

    // Apply.
    let r = apply(&h, &bundle, &[]).expect(0);
    assert!(
        r.stdout
            .contains("5 applied, 0 updated, 0 kept, 0 removed, 3 skipped"),
        "{}",
        r.stdout
    );
    assert_no_temps(&h);

    let mut sysctl = sample(SYSCTL);
    sysctl.extend_from_slice(b"kernel.unprivileged_userns_clone = 0\n");
    assert_eq!(
        String::from_utf8(std::fs::read(h.file(SYSCTL)).unwrap()).unwrap(),
        String::from_utf8(sysctl).unwrap()
    );
    let ini = String::from_utf8(sample(GITEA)).unwrap();
    assert_eq!(ini.matches("DEFAULT_BRANCH = main\n").count(), 1);
    let ini = ini.replace(
        "DEFAULT_BRANCH = main\n",
        "DEFAULT_BRANCH = main\nDISABLE_MIGRATIONS = true\n",
    );
    assert!(ini.contains("[repository]\nROOT = "));
    assert_eq!(std::fs::read_to_string(h.file(GITEA)).unwrap(), ini);
    for (path, doc) in [(APACHE, "AM-2021-0004.xml"), (NGINX, "AM-2023-0001.xml")] {
        let want = sample_cdata(doc);
        assert!(want.starts_with("# Managed by airlock ("), "{want}");
        assert_eq!(
            std::fs::read_to_string(h.file(path)).unwrap(),
            want,
            "{path}"
        );
        assert_eq!(mode(&h, path), 0o644, "{path}");
    }
    assert_eq!(
        std::fs::read_link(h.file(UNIT)).unwrap(),
        Path::new("/dev/null")
    );
    // Nothing else in the root changed.
    let mut after = content(&tree(&root_of(&h), false));
    for p in [APACHE, GITEA, NGINX, SYSCTL, UNIT] {
        after.remove(p.trim_start_matches('/'));
    }
    let mut before = content(&pristine);
    for p in [GITEA, SYSCTL] {
        before.remove(p.trim_start_matches('/'));
    }
    assert_same_tree(&before, &after, "apply (files it does not manage)");

    // Status.
    let s = status(&h);
    let ids: Vec<&str> = s["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, APPLIED);
    assert_eq!(s["drift"], 0);
    assert_eq!(s["interrupted_run"], false);
    assert_eq!(s["files"].as_array().unwrap().len(), 4);
    assert!(
        s["files"]
            .as_array()
            .unwrap()
            .iter()
            .chain(s["units"].as_array().unwrap())
            .all(|f| f["drift"] == false)
    );
    assert_eq!(s["units"][0]["unit"], "cups-browsed.service");
    assert_eq!(s["held"], serde_json::json!({}));

    // Ledger.
    assert_eq!(mitigations_of(&h, "mitigation.applied"), APPLIED);
    assert_eq!(count(&h, "apply.started"), 1);
    assert_eq!(count(&h, "apply.completed"), 1);
    let completed = ledger(&h)
        .into_iter()
        .find(|e| e["kind"] == "apply.completed")
        .unwrap();
    assert_eq!(completed["detail"]["plan"], p["hash"], "the applied plan");
    assert_eq!(completed["detail"]["applied"], 5);
    assert_eq!(completed["detail"]["skipped"], 3);
    assert_eq!(completed["bundle"], p["bundle"]["id"]);
    assert_ledger_sound(&h);
    assert!(!h.state("journal.json").exists());
}

#[test]
fn a_second_bundle_updates_a_new_revision_and_removes_a_retired_mitigation() {
    let Some(Lab { f, h, bundle }) = lab_with_systemctl(
        "a_second_bundle_updates_a_new_revision_and_removes_a_retired_mitigation",
    ) else {
        return;
    };
    apply(&h, &bundle, &[]).expect(0);

    // The vendor ships revision 2 of AM-2023-0001 and retires AM-2021-0004.
    let doc = f.feed().join("mitigations/AM-2023-0001.xml");
    let old = sample_cdata("AM-2023-0001.xml");
    let new = "# Managed by airlock (AM-2023-0001) revision 2.\nkeepalive_requests 500;\nhttp2_max_concurrent_streams 64;\n";
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(text.contains(&old));
    let text = text
        .replacen("revision=\"1\"", "revision=\"2\"", 1)
        .replace(&old, new);
    std::fs::write(&doc, text).unwrap();
    std::fs::remove_file(f.feed().join("mitigations/AM-2021-0004.xml")).unwrap();
    f.publish(&["--retire", "AM-2020-0007", "--retire", "AM-2021-0004"]);
    f.fetch().expect(0);
    let second = f.path("b2.airlock");
    f.build(&second, &[]).expect(0);

    let p = plan(&h, &second);
    assert_eq!(p["bundle"]["seq"], 2);
    let v = verdicts(&p);
    assert_eq!(v["AM-2023-0001"], "update");
    assert_eq!(v["AM-2021-0004"], "remove");
    for id in ["AM-2022-0001", "AM-2022-0002", "AM-2024-0001"] {
        assert_eq!(v[id], "keep", "{id}");
    }
    let update = decision(&p, "AM-2023-0001");
    assert_eq!(update["applied_revision"], 1);
    assert_eq!(update["revision"], 2);
    let remove = decision(&p, "AM-2021-0004");
    assert_eq!(remove["reason"], "retired by the vendor");
    let files: Vec<(&str, &Value)> = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), &f["after"]))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0], (APACHE, &Value::Null), "the apache file goes");
    assert_eq!(files[1].0, NGINX);
    assert!(p["units"].as_array().unwrap().is_empty());

    let before = tree(&root_of(&h), true);
    apply(&h, &second, &[]).expect(0);
    assert_no_temps(&h);
    assert_eq!(std::fs::read_to_string(h.file(NGINX)).unwrap(), new);
    assert_eq!(mode(&h, NGINX), 0o644);
    assert!(
        std::fs::symlink_metadata(h.file(APACHE)).is_err(),
        "the apache file is gone"
    );
    // Everything else is untouched: bytes, modes, link targets, mtimes.
    let mut after = tree(&root_of(&h), true);
    let mut before = before;
    for t in [&mut before, &mut after] {
        for p in [APACHE, NGINX] {
            let p = p.trim_start_matches('/');
            let dir = Path::new(p).parent().unwrap().display().to_string();
            for k in [p.to_string(), format!("{p}@mtime"), format!("{dir}@mtime")] {
                t.remove(&k);
            }
        }
    }
    assert_same_tree(&before, &after, "second apply (what it does not change)");

    assert_eq!(mitigations_of(&h, "mitigation.updated"), ["AM-2023-0001"]);
    assert_eq!(mitigations_of(&h, "mitigation.removed"), ["AM-2021-0004"]);
    let updated = ledger(&h)
        .into_iter()
        .find(|e| e["kind"] == "mitigation.updated")
        .unwrap();
    assert_eq!(updated["detail"]["from_revision"], 1);
    assert_eq!(updated["detail"]["revision"], 2);
    assert_eq!(mitigations_of(&h, "mitigation.applied").len(), 5);
    assert_eq!(count(&h, "apply.completed"), 2);
    let s = status(&h);
    let applied: Vec<(&str, u64)> = s["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["revision"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        applied,
        [
            ("AM-2022-0001", 1),
            ("AM-2022-0002", 1),
            ("AM-2023-0001", 2),
            ("AM-2024-0001", 1)
        ]
    );
    assert_eq!(s["drift"], 0);
    assert_ledger_sound(&h);
}

#[test]
fn applying_the_same_bundle_twice_changes_nothing_the_second_time() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("applying_the_same_bundle_twice_changes_nothing_the_second_time")
    else {
        return;
    };
    apply(&h, &bundle, &[]).expect(0);
    let before = tree(&root_of(&h), true);

    let p = plan(&h, &bundle);
    for id in APPLIED {
        assert_eq!(decision(&p, id)["verdict"], "keep", "{id}");
        assert_eq!(
            decision(&p, id)["applied_revision"],
            decision(&p, id)["revision"]
        );
    }
    assert!(p["files"].as_array().unwrap().is_empty(), "{}", p["files"]);
    assert!(p["units"].as_array().unwrap().is_empty(), "{}", p["units"]);
    assert!(p["drift"].as_array().unwrap().is_empty());

    let r = apply(&h, &bundle, &[]).expect(0);
    assert!(
        r.stdout.contains("0 applied, 0 updated, 5 kept")
            && r.stdout.contains("0 file(s) and 0 unit(s) changed"),
        "{}",
        r.stdout
    );
    assert_same_tree(&before, &tree(&root_of(&h), true), "second apply");
    assert_no_temps(&h);
    assert_eq!(
        count(&h, "mitigation.applied"),
        5,
        "no second mitigation.applied"
    );
    assert_eq!(count(&h, "apply.completed"), 2);
    assert_eq!(status(&h)["drift"], 0);
    assert_ledger_sound(&h);
}

#[test]
fn rollback_restores_pre_images_holds_them_and_refuses_over_drift_unless_forced() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl(
        "rollback_restores_pre_images_holds_them_and_refuses_over_drift_unless_forced",
    )
    else {
        return;
    };
    apply(&h, &bundle, &[]).expect(0);

    // One mitigation.
    h.applier(&["rollback", "AM-2022-0002"]).expect(0);
    assert_no_temps(&h);
    assert_eq!(std::fs::read(h.file(GITEA)).unwrap(), sample(GITEA));
    assert_eq!(mode(&h, GITEA), 0o644);
    let s = status(&h);
    assert_eq!(s["held"], serde_json::json!({ "AM-2022-0002": 1 }));
    assert_eq!(s["applied"].as_array().unwrap().len(), 4);
    assert!(
        s["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"] != GITEA)
    );
    assert_eq!(
        mitigations_of(&h, "mitigation.rolled_back"),
        ["AM-2022-0002"]
    );
    assert_eq!(count(&h, "rollback.completed"), 1);
    assert_ledger_sound(&h);

    // The same bundle again keeps it off.
    let r = h
        .applier(&[
            "apply".as_ref(),
            bundle.as_os_str(),
            "--yes".as_ref(),
            "--json".as_ref(),
        ])
        .expect(0);
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    let held = decision(&j, "AM-2022-0002");
    assert_eq!(held["verdict"], "skip");
    assert!(
        held["reason"].as_str().unwrap().contains("rolled back"),
        "{held}"
    );
    assert_eq!(std::fs::read(h.file(GITEA)).unwrap(), sample(GITEA));
    assert_eq!(mitigations_of(&h, "mitigation.skipped"), ["AM-2022-0002"]);

    // Drift: rollback --all is refused and changes nothing.
    let mut sysctl = std::fs::read(h.file(SYSCTL)).unwrap();
    sysctl.extend_from_slice(b"vm.swappiness = 10\n");
    std::fs::write(h.file(SYSCTL), &sysctl).unwrap();
    let before = tree(&root_of(&h), true);
    let entries = ledger(&h).len();
    let r = h.applier(&["rollback", "--all"]).expect(4);
    assert!(
        r.stderr.contains("changed outside airlock") && r.stderr.contains(SYSCTL),
        "{}",
        r.stderr
    );
    assert_same_tree(&before, &tree(&root_of(&h), true), "refused rollback");
    assert_eq!(kinds(&h)[entries..], ["rollback.refused", "checkpoint"]);
    assert_eq!(status(&h)["applied"].as_array().unwrap().len(), 4);

    // --force: the whole root is the sample host again.
    h.applier(&["rollback", "--all", "--force"]).expect(0);
    assert_no_temps(&h);
    assert_same_tree(
        &content(&tree(
            &airlock_tests::root().join("samples/hosts/lab01"),
            false,
        )),
        &content(&tree(&root_of(&h), false)),
        "root after rollback --all --force",
    );
    assert!(std::fs::symlink_metadata(h.file(UNIT)).is_err());
    let s = status(&h);
    assert!(s["applied"].as_array().unwrap().is_empty());
    assert!(s["files"].as_array().unwrap().is_empty());
    assert!(s["units"].as_array().unwrap().is_empty());
    assert_eq!(s["held"].as_object().unwrap().len(), 5);
    assert_eq!(
        mitigations_of(&h, "mitigation.rolled_back"),
        [
            "AM-2022-0002",
            "AM-2021-0004",
            "AM-2022-0001",
            "AM-2023-0001",
            "AM-2024-0001"
        ]
    );
    let last = ledger(&h)
        .into_iter()
        .rfind(|e| e["kind"] == "rollback.completed")
        .unwrap();
    assert_eq!(last["detail"]["forced_over_drift"], true);
    assert_ledger_sound(&h);

    // Nothing applied: a named rollback is an operational error.
    let before = tree(&root_of(&h), true);
    let r = h.applier(&["rollback", "NOT-APPLIED"]).expect(1);
    assert!(
        r.stderr
            .contains("mitigation NOT-APPLIED is not applied on this host"),
        "{}",
        r.stderr
    );
    assert_same_tree(&before, &tree(&root_of(&h), true), "rollback NOT-APPLIED");
}

#[test]
fn apply_over_drift_is_refused_unless_forced() {
    let Some(Lab { f, h, bundle }) =
        lab_with_systemctl("apply_over_drift_is_refused_unless_forced")
    else {
        return;
    };
    apply(&h, &bundle, &[]).expect(0);
    let applied = std::fs::read(h.file(SYSCTL)).unwrap();
    let mut drifted = applied.clone();
    drifted.extend_from_slice(b"vm.swappiness = 10\n");
    std::fs::write(h.file(SYSCTL), &drifted).unwrap();
    let s = status(&h);
    assert_eq!(s["drift"], 1);
    let file = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == SYSCTL)
        .unwrap();
    assert_eq!(file["drift"], true);

    // A new revision of another mitigation makes the run do something; the
    // drifted file still stops it.
    let doc = f.feed().join("mitigations/AM-2023-0001.xml");
    let text = std::fs::read_to_string(&doc)
        .unwrap()
        .replacen("revision=\"1\"", "revision=\"2\"", 1)
        .replace("keepalive_requests 1000;", "keepalive_requests 900;");
    std::fs::write(&doc, text).unwrap();
    f.publish(&["--retire", "AM-2020-0007"]);
    f.fetch().expect(0);
    let second = f.path("b2.airlock");
    f.build(&second, &[]).expect(0);

    let before = tree(&root_of(&h), true);
    for b in [&bundle, &second] {
        let r = apply(&h, b, &[]).expect(4);
        assert!(
            r.stderr.contains("changed outside airlock") && r.stderr.contains(SYSCTL),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("--force"), "{}", r.stderr);
        assert_same_tree(&before, &tree(&root_of(&h), true), "refused apply");
    }
    assert_eq!(count(&h, "apply.refused"), 2);
    assert_eq!(
        count(&h, "apply.started"),
        1,
        "a refused apply never starts"
    );

    let r = h
        .applier(&[
            "apply".as_ref(),
            second.as_os_str(),
            "--yes".as_ref(),
            "--force".as_ref(),
        ])
        .expect(0);
    assert!(r.stdout.contains("1 updated, 4 kept"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(h.file(SYSCTL)).unwrap(),
        applied,
        "--force puts back what airlock wrote"
    );
    assert!(
        std::fs::read_to_string(h.file(NGINX))
            .unwrap()
            .contains("keepalive_requests 900;")
    );
    assert_eq!(status(&h)["drift"], 0);
    let completed = ledger(&h)
        .into_iter()
        .rfind(|e| e["kind"] == "apply.completed")
        .unwrap();
    assert_eq!(completed["detail"]["forced_over_drift"], true);
    assert_no_temps(&h);
    assert_ledger_sound(&h);
}

/// A lab host with `DIR/outside`, an empty sibling of the root.
fn outside(h: &Host) -> PathBuf {
    let o = h.dir.path().join("outside");
    std::fs::create_dir(&o).unwrap();
    o
}

/// `apply` and `plan` of `bundle` are refused (exit 4) with `reason` in the
/// message, each refusal recorded; nothing changes in the root, nothing is
/// written outside it, nothing starts.
#[track_caller]
fn assert_refused(h: &Host, bundle: &Path, path: &str, reason: &str) {
    let before = tree(&root_of(h), true);
    let outside = h.dir.path().join("outside");
    let r = apply(h, bundle, &[]).expect(4);
    assert!(
        r.stderr.contains(&format!("refused to manage {path}: ")) && r.stderr.contains(reason),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
    let r = h.applier(&["plan".as_ref(), bundle.as_os_str()]).expect(4);
    assert!(r.stderr.contains(reason), "{}", r.stderr);
    assert_same_tree(&before, &tree(&root_of(h), true), "refused apply");
    if outside.exists() {
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "something was written outside the root"
        );
    }
    let refused: Vec<Value> = ledger(h)
        .into_iter()
        .filter(|e| e["kind"] == "apply.refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains(reason),
        "{}",
        refused[0]
    );
    assert_eq!(count(h, "plan.refused"), 1);
    assert_eq!(count(h, "apply.started"), 0);
    assert!(!h.state("state.json").exists());
    assert_no_temps(h);
    h.ledger(&["verify"]).expect(0);
}

#[test]
fn an_absolute_symlink_out_of_the_root_is_refused_and_nothing_is_written() {
    let Lab {
        h,
        bundle,
        f: _keys,
    } = lab();
    let out = outside(&h);
    let dir = h.file("/etc/nginx/conf.d");
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&out, &dir).unwrap();
    assert_refused(&h, &bundle, NGINX, "leads outside the host root");
}

#[test]
fn a_relative_symlink_out_of_the_root_is_refused_and_nothing_is_written() {
    let Lab {
        h,
        bundle,
        f: _keys,
    } = lab();
    outside(&h);
    let dir = h.file("/etc/nginx/conf.d");
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("../../../outside", &dir).unwrap();
    assert!(
        std::fs::metadata(&dir).unwrap().is_dir(),
        "the link resolves to DIR/outside"
    );
    assert_refused(&h, &bundle, NGINX, "leads outside the host root");
}

#[test]
fn a_path_through_a_file_is_refused() {
    let f = Fixture::samples();
    let evil = "/etc/sysctl.conf/evil.conf";
    std::fs::write(
        f.feed().join("mitigations/AM-2026-9001.xml"),
        file_doc("AM-2026-9001", evil),
    )
    .unwrap();
    f.publish(&["--retire", "AM-2020-0007"]);
    f.fetch().expect(0);
    let bundle = f.path("evil.airlock");
    f.build(&bundle, &[]).expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    outside(&h);
    assert_refused(&h, &bundle, evil, "not a directory");
}

#[test]
fn a_path_with_dot_dot_never_reaches_a_bundle() {
    let f = Fixture::samples();
    let evil = "/etc/../../evil";
    let doc = file_doc("AM-2026-9002", evil);
    std::fs::write(f.feed().join("mitigations/AM-2026-9002.xml"), &doc).unwrap();
    let r = airlock_tests::bundler([
        "feed".as_ref(),
        "publish".as_ref(),
        f.feed().as_os_str(),
        "--key".as_ref(),
        f.key("vendor.key").as_os_str(),
        "--retire".as_ref(),
        "AM-2020-0007".as_ref(),
    ])
    .expect(3);
    assert!(r.stderr.contains(evil), "{}", r.stderr);
    // The parser the applier's verify runs on every document of a bundle refuses
    // it too, so a bundle holding it (which the bundler cannot build) would not
    // verify.
    let e = airlock_format::mitigation::Mitigation::parse("AM-2026-9002.xml", doc.as_bytes())
        .unwrap_err();
    assert!(e.to_string().contains(evil), "{e}");
    // The feed as last published (without it) is still what fetch sees.
    std::fs::remove_file(f.feed().join("mitigations/AM-2026-9002.xml")).unwrap();
    f.fetch().expect(0);
    let bundle = f.path("b.airlock");
    f.build(&bundle, &[]).expect(0);
    let r = airlock_tests::bundler(["inspect".as_ref(), bundle.as_os_str(), "--json".as_ref()])
        .expect(0);
    assert!(!r.stdout.contains("AM-2026-9002"));
}

#[test]
fn a_target_that_is_a_symlink_inside_the_root_is_refused() {
    let Lab {
        h,
        bundle,
        f: _keys,
    } = lab();
    outside(&h);
    std::os::unix::fs::symlink("default.conf", h.file(NGINX)).unwrap();
    assert_refused(&h, &bundle, NGINX, "symbolic link");
    assert_eq!(
        std::fs::read(h.file("/etc/nginx/conf.d/default.conf")).unwrap(),
        sample("/etc/nginx/conf.d/default.conf"),
        "the link's target is untouched"
    );
}

/// A `systemctl` that knows the unit is disabled and not running, but cannot mask it.
fn failing_systemctl(dir: &Path) -> PathBuf {
    let p = dir.join("fake-systemctl");
    std::fs::write(
        &p,
        r#"#!/bin/sh
for a in "$@"; do
  case "$a" in
    is-enabled) echo disabled; exit 1 ;;
    is-active) exit 3 ;;
    mask) echo "Failed to mask unit: Access denied (fake systemctl)" >&2; exit 1 ;;
    unmask) exit 0 ;;
  esac
done
echo "fake systemctl: unexpected arguments: $*" >&2
exit 1
"#,
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// After a failed run: exit 5 with every change undone, the root as `before`
/// (files, modes, links), no journal, no temporary files, nothing applied, the
/// failure in a sound ledger.
#[track_caller]
fn assert_undone(h: &Host, r: &Run, before: &Tree, failed: &str) {
    assert!(
        r.stderr.contains("every change of this run was undone"),
        "{}",
        r.stderr
    );
    assert_same_tree(
        &content(before),
        &content(&tree(&root_of(h), false)),
        "root after a failed run",
    );
    assert_no_temps(h);
    assert!(!h.state("journal.json").exists());
    let s = status(h);
    assert!(s["applied"].as_array().unwrap().is_empty(), "{s}");
    assert_eq!(s["interrupted_run"], false);
    assert_eq!(mitigations_of(h, "mitigation.failed"), [failed]);
    assert_eq!(count(h, "apply.failed"), 1);
    assert_eq!(count(h, "apply.completed"), 0);
    assert_eq!(count(h, "mitigation.applied"), 0);
    let f = ledger(h)
        .into_iter()
        .find(|e| e["kind"] == "apply.failed")
        .unwrap();
    assert_eq!(f["detail"]["undone"], "every change of this run was undone");
    assert_ledger_sound(h);
}

#[test]
fn a_failing_unit_step_undoes_the_files_written_before_it() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("a_failing_unit_step_undoes_the_files_written_before_it")
    else {
        return;
    };
    let fake = failing_systemctl(h.dir.path());
    let before = tree(&root_of(&h), false);
    let r = applier_with_systemctl(
        &h,
        &fake,
        &["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()],
    )
    .expect(5);
    assert!(
        r.stderr
            .contains("apply failed at unit cups-browsed.service")
            && r.stderr.contains("Access denied (fake systemctl)"),
        "{}",
        r.stderr
    );
    assert_undone(&h, &r, &before, "AM-2024-0001");
    let f = ledger(&h)
        .into_iter()
        .find(|e| e["kind"] == "mitigation.failed")
        .unwrap();
    assert_eq!(f["detail"]["step"], "unit cups-browsed.service");

    // The cause gone, the same bundle applies.
    apply(&h, &bundle, &[]).expect(0);
    assert_eq!(status(&h)["applied"].as_array().unwrap().len(), 5);
    assert_ledger_sound(&h);
}

/// Removes the immutable flag when dropped, so the temporary directory can go.
struct Immutable(PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_immutable_file_fails_the_run_and_the_earlier_file_steps_are_undone() {
    if !require_tool(
        "systemctl",
        "an_immutable_file_fails_the_run_and_the_earlier_file_steps_are_undone",
    ) || !require_tool(
        "chattr",
        "an_immutable_file_fails_the_run_and_the_earlier_file_steps_are_undone",
    ) {
        return;
    }
    let Lab {
        h,
        bundle,
        f: _keys,
    } = lab();
    // chattr +i needs root (CAP_LINUX_IMMUTABLE) and a file system that has it.
    let probe = h.dir.path().join("probe");
    std::fs::write(&probe, "x").unwrap();
    let probe = Immutable(probe);
    let works = Command::new("chattr")
        .arg("+i")
        .arg(&probe.0)
        .output()
        .is_ok_and(|o| o.status.success());
    drop(probe);
    if !works {
        eprintln!(
            "SKIPPED an_immutable_file_fails_the_run_and_the_earlier_file_steps_are_undone: chattr +i does not work here (not root, or the file system has no immutable flag)"
        );
        return;
    }
    let before = tree(&root_of(&h), false);
    let sysctl = Immutable(h.file(SYSCTL));
    let ok = Command::new("chattr")
        .arg("+i")
        .arg(&sysctl.0)
        .status()
        .unwrap();
    assert!(ok.success());
    let r = apply(&h, &bundle, &[]).expect(5);
    assert!(
        r.stderr.contains(&format!("apply failed at file {SYSCTL}")),
        "{}",
        r.stderr
    );
    // The steps before it (apache created, app.ini changed, nginx created) are undone.
    assert_undone(&h, &r, &before, "AM-2022-0001");
    assert!(std::fs::symlink_metadata(h.file(APACHE)).is_err());
    assert!(std::fs::symlink_metadata(h.file(NGINX)).is_err());
    assert_eq!(std::fs::read(h.file(GITEA)).unwrap(), sample(GITEA));
    drop(sysctl);

    apply(&h, &bundle, &[]).expect(0);
    assert_eq!(status(&h)["applied"].as_array().unwrap().len(), 5);
}

#[test]
fn the_applier_depends_on_no_http_client() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let r = run(Command::new(cargo)
        .current_dir(airlock_tests::root())
        .args([
            "tree",
            "-p",
            "airlock-applier",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ]))
    .expect(0);
    let names: std::collections::BTreeSet<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for present in ["airlock-applier", "airlock-ledger", "airlock-format"] {
        assert!(
            names.contains(present),
            "{present} missing from\n{}",
            r.stdout
        );
    }
    for banned in [
        "reqwest",
        "ureq",
        "hyper",
        "http",
        "curl",
        "isahc",
        "attohttpc",
        "surf",
        "h2",
        "rustls",
        "native-tls",
        "openssl",
    ] {
        assert!(
            !names.contains(banned),
            "airlock-applier depends on {banned}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn a_second_applier_is_kept_out_by_the_lock() {
    let Lab {
        h,
        bundle,
        f: _keys,
    } = lab();
    let before = tree(&root_of(&h), true);
    let entries = ledger(&h).len();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(h.state("lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let r = apply(&h, &bundle, &[]).expect(1);
    assert!(
        r.stderr
            .contains("another airlock-applier is running on this host"),
        "{}",
        r.stderr
    );
    let r = h.applier(&["rollback", "--all"]).expect(1);
    assert!(
        r.stderr.contains("another airlock-applier is running"),
        "{}",
        r.stderr
    );
    assert_same_tree(&before, &tree(&root_of(&h), true), "locked apply");
    assert_eq!(ledger(&h).len(), entries, "nothing was recorded");
    assert!(!h.state("state.json").exists());
    assert!(!h.state("journal.json").exists());

    // Once the lock is free, the same command runs (AM-2024-0001 needs systemctl).
    drop(lock);
    if require_tool("systemctl", "a_second_applier_is_kept_out_by_the_lock") {
        apply(&h, &bundle, &[]).expect(0);
    }
}

#[test]
fn links_in_the_root_are_replaced_never_written_through() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("links_in_the_root_are_replaced_never_written_through")
    else {
        return;
    };
    let out = outside(&h);
    // /etc/sysctl.conf is a hard link to a file outside the root (same file system).
    std::fs::rename(h.file(SYSCTL), out.join("sysctl.conf")).unwrap();
    std::fs::hard_link(out.join("sysctl.conf"), h.file(SYSCTL)).unwrap();
    // A symbolic link out of the root waits where the nginx file's temporary goes.
    std::fs::write(out.join("victim"), "outside\n").unwrap();
    let tmp = h.file("/etc/nginx/conf.d/.airlock-am-2023-0001.conf.airlock-tmp");
    std::os::unix::fs::symlink(out.join("victim"), &tmp).unwrap();
    let outside_before = tree(&out, true);

    apply(&h, &bundle, &[]).expect(0);
    assert_same_tree(&outside_before, &tree(&out, true), "outside the root");
    assert!(
        std::fs::symlink_metadata(&tmp).is_err(),
        "the planted link is gone"
    );
    let mut want = sample(SYSCTL);
    want.extend_from_slice(b"kernel.unprivileged_userns_clone = 0\n");
    assert_eq!(std::fs::read(h.file(SYSCTL)).unwrap(), want);
    assert_eq!(std::fs::metadata(h.file(SYSCTL)).unwrap().nlink(), 1);
    assert_eq!(
        std::fs::read_to_string(h.file(NGINX)).unwrap(),
        sample_cdata("AM-2023-0001.xml")
    );
    assert_no_temps(&h);

    h.applier(&["rollback", "--all"]).expect(0);
    assert_same_tree(&outside_before, &tree(&out, true), "outside after rollback");
    assert_eq!(std::fs::read(h.file(SYSCTL)).unwrap(), sample(SYSCTL));
}

#[test]
fn a_changed_file_keeps_its_owner_and_mode_through_apply_and_rollback() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("a_changed_file_keeps_its_owner_and_mode_through_apply_and_rollback")
    else {
        return;
    };
    if std::os::unix::fs::chown(h.file(GITEA), Some(1234), Some(5678)).is_err() {
        eprintln!(
            "SKIPPED a_changed_file_keeps_its_owner_and_mode_through_apply_and_rollback: chown needs root"
        );
        return;
    }
    std::fs::set_permissions(h.file(GITEA), std::fs::Permissions::from_mode(0o640)).unwrap();
    let owner = |h: &Host| {
        let m = std::fs::metadata(h.file(GITEA)).unwrap();
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
    };
    let p = plan(&h, &bundle);
    let gitea = p["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == GITEA)
        .unwrap();
    assert_eq!(gitea["before"]["uid"], 1234);
    assert_eq!(gitea["before"]["gid"], 5678);
    assert_eq!(gitea["after"]["mode"], 0o640);
    apply(&h, &bundle, &[]).expect(0);
    assert_eq!(owner(&h), (1234, 5678, 0o640));
    assert!(
        std::fs::read_to_string(h.file(GITEA))
            .unwrap()
            .contains("DISABLE_MIGRATIONS = true")
    );
    assert_eq!(status(&h)["drift"], 0);
    h.applier(&["rollback", "AM-2022-0002"]).expect(0);
    assert_eq!(owner(&h), (1234, 5678, 0o640));
    assert_eq!(std::fs::read(h.file(GITEA)).unwrap(), sample(GITEA));
}

#[test]
fn a_unit_directory_symlinked_out_of_the_root_is_refused() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("a_unit_directory_symlinked_out_of_the_root_is_refused")
    else {
        return;
    };
    let out = outside(&h);
    let dir = h.file("/etc/systemd/system");
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&out, &dir).unwrap();
    let before = tree(&root_of(&h), true);
    let r = apply(&h, &bundle, &[]);
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        written.is_empty(),
        "written outside the root: {written:?} (apply exit {})",
        r.code
    );
    let r = r.expect(4);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_same_tree(&before, &tree(&root_of(&h), true), "refused apply");
}

#[test]
fn a_failed_run_reports_how_many_changes_it_undid() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("a_failed_run_reports_how_many_changes_it_undid")
    else {
        return;
    };
    let fake = failing_systemctl(h.dir.path());
    let r = applier_with_systemctl(
        &h,
        &fake,
        &["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()],
    )
    .expect(5);
    // Four file steps ran, then the unit step failed: four changes were undone.
    assert!(
        r.stderr
            .contains("every change of this run was undone (4 step(s) had been carried out)"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_preimage_store_is_private() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("the_preimage_store_is_private")
    else {
        return;
    };
    // The applier as an operator's shell would start it (umask 022).
    let r = run(Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(bin("airlock-applier"))
        .arg("--profile")
        .arg(h.profile())
        .args(["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()]));
    r.expect(0);
    let dir = h.state("preimages");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(format!("{mode:04o}"), "0700", "{}", dir.display());
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(format!("{mode:04o}"), "0600", "{}", e.path().display());
    }
}

#[test]
fn a_repeated_rollback_id_is_recorded_once() {
    let Some(Lab {
        h,
        bundle,
        f: _keys,
    }) = lab_with_systemctl("a_repeated_rollback_id_is_recorded_once")
    else {
        return;
    };
    apply(&h, &bundle, &[]).expect(0);
    let r = h.applier(&["rollback", "AM-2022-0002", "AM-2022-0002"]);
    // Either refused as a usage error, or done once.
    assert!(r.code == 0 || r.code == 2, "{r:?}");
    assert!(
        count(&h, "mitigation.rolled_back") <= 1,
        "{:?}",
        mitigations_of(&h, "mitigation.rolled_back")
    );
}

#[test]
fn a_host_that_needs_approvals_is_refused_until_they_can_be_checked() {
    let Lab { h, bundle, f } = lab();
    let profile = std::fs::read_to_string(h.profile())
        .unwrap()
        .replace("[policy]\n", "[policy]\napprovals_required = 1\n");
    let profile = profile.replace(
        "[trust]\n",
        &format!(
            "[trust]\napprover_keys = [\"{}\"]\n",
            f.key("vendor.pub").display()
        ),
    );
    std::fs::write(h.profile(), profile).unwrap();
    let before = tree(&root_of(&h), true);
    let r = apply(&h, &bundle, &[]).expect(4);
    assert!(r.stderr.contains("needs 1 approval(s)"), "{}", r.stderr);
    assert_same_tree(&before, &tree(&root_of(&h), true), "refused apply");
    assert_eq!(count(&h, "apply.refused"), 1);
    assert_eq!(count(&h, "apply.started"), 0);
}
