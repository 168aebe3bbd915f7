//! Every `--json` output of the three binaries, `ledger log --format json`, each
//! line of a `ledger export` and the plan file of `plan --out` match their JSON
//! Schema in `docs/schemas/` (draft 2020-12), checked on real outputs of the real
//! binaries across the whole flow: feed publish, fetch from a directory and over
//! HTTP through a proxy, build, inspect, verify (good and expired), init, plan and
//! apply with and without changes, status with and without drift, rollback,
//! approve, sync (applied, nothing new, invalid, refused), and the ledger
//! commands on a sound, a clock-warped and a tampered ledger. Refusals that print
//! no JSON are checked to print nothing on stdout. The schemas themselves must be
//! valid draft 2020-12 with a description on every property, each must be used
//! here, and the validator must reject a real output with a field removed, a hash
//! mangled, a field added or a type changed, so these tests cannot pass vacuously.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::http::{FeedServer, Proxy};
use airlock_tests::{
    Fixture, Host, Run, applier, bin, bundler, fixture, ledger, mitigation_xml, root, run,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where every schema's `$id` lives: `BASE` + file name.
const BASE: &str = "https://example.invalid/airlock/schemas/";
/// The dialect every schema declares.
const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
/// The shared definitions the other schemas `$ref`.
const COMMON: &str = "common.schema.json";

// ---------------------------------------------------------------------------
// Schemas and validation

fn schema_dir() -> PathBuf {
    root().join("docs/schemas")
}

/// Every `docs/schemas/*.schema.json` by file name, parsed.
fn schema_files() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(schema_dir()).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".schema.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        out.insert(name, v);
    }
    out
}

/// A validator per schema file (by name without `.schema.json`), built once,
/// with `common.schema.json` registered so that `$ref`s to it resolve offline,
/// and `format` asserted (`date-time`).
fn validators() -> &'static BTreeMap<String, jsonschema::Validator> {
    static V: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let files = schema_files();
        let common = files
            .get(COMMON)
            .unwrap_or_else(|| panic!("docs/schemas/{COMMON} is missing"))
            .clone();
        let registry = jsonschema::Registry::new()
            .add(format!("{BASE}{COMMON}"), common)
            .unwrap()
            .prepare()
            .unwrap_or_else(|e| panic!("docs/schemas/{COMMON} cannot be registered: {e}"));
        files
            .iter()
            .map(|(name, schema)| {
                let v = jsonschema::draft202012::options()
                    .with_registry(&registry)
                    .should_validate_formats(true)
                    .build(schema)
                    .unwrap_or_else(|e| panic!("docs/schemas/{name} does not compile: {e}"));
                (name.trim_end_matches(".schema.json").to_string(), v)
            })
            .collect()
    })
}

/// The validator's errors for `value` against schema `schema` (a file name
/// without `.schema.json`), each as `at INSTANCE_PATH: MESSAGE`.
fn errors(schema: &str, value: &Value) -> Vec<String> {
    let v = validators()
        .get(schema)
        .unwrap_or_else(|| panic!("there is no docs/schemas/{schema}.schema.json"));
    v.iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("at {at}: {}", cut(&e.to_string(), 300))
        })
        .collect()
}

/// Panics unless `value`, the output of `what`, matches `schema`.
#[track_caller]
fn check(schema: &str, what: &str, value: &Value) {
    let errs = errors(schema, value);
    assert!(
        errs.is_empty(),
        "{what}: the output does not match docs/schemas/{schema}.schema.json\n{} error(s):\n  {}\noutput:\n{}",
        errs.len(),
        errs.join("\n  "),
        cut(&serde_json::to_string_pretty(value).unwrap(), 4000)
    );
}

/// The stdout of a `--json` command: exactly one JSON document, nothing else.
#[track_caller]
fn json_out(r: &Run, what: &str) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is not one JSON document ({e})\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        )
    })
}

/// [`json_out`], then [`check`] against `schema`.
#[track_caller]
fn checked(r: &Run, schema: &str, what: &str) -> Value {
    let v = json_out(r, what);
    check(schema, what, &v);
    v
}

/// A refusal that prints no JSON: stdout empty, the error as text on stderr.
#[track_caller]
fn assert_text_error_only(r: &Run, program: &str, what: &str) {
    assert!(
        r.stdout.is_empty(),
        "{what}: a refusal printed on stdout:\n{}",
        r.stdout
    );
    assert!(
        r.stderr.starts_with(&format!("{program}: error: ")) && r.stderr.contains("what to do: "),
        "{what}: the error is not on stderr as text:\n{}",
        r.stderr
    );
}

/// `s` cut to `n` characters.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn os<S: AsRef<OsStr>>(s: S) -> OsString {
    s.as_ref().to_os_string()
}

// ---------------------------------------------------------------------------
// The schemas themselves

/// Every `properties` member under `v` (at `at`) that has no `description`.
fn undocumented(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get("properties") {
                for (k, p) in props {
                    let documented = p
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.trim().is_empty());
                    // A property that is only a condition (`if`/`then`) needs none.
                    let condition =
                        p.as_object().is_some_and(|p| {
                            p.keys()
                                .all(|k| matches!(k.as_str(), "const" | "enum" | "type" | "$ref"))
                        }) && (at.contains("/if") || at.contains("/then") || at.contains("/else"));
                    if !documented && !condition {
                        out.push(format!("{at}/properties/{k}"));
                    }
                }
            }
            for (k, c) in o {
                undocumented(c, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                undocumented(c, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_is_valid_draft_2020_12_documented_and_used() {
    let files = schema_files();
    assert!(files.len() > 10, "{:?}", files.keys());
    let source = include_str!("json_schema.rs");
    let all_text: String = files.values().map(Value::to_string).collect();
    for (name, schema) in &files {
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!(
                "docs/schemas/{name} is not a valid draft 2020-12 schema: at {}: {e}",
                e.instance_path()
            );
        }
        assert_eq!(schema["$schema"], DRAFT, "{name}: $schema");
        assert_eq!(schema["$id"], format!("{BASE}{name}"), "{name}: $id");
        for key in ["title", "description"] {
            assert!(
                schema[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{name}: no {key}"
            );
        }
        let mut missing = Vec::new();
        undocumented(schema, "", &mut missing);
        assert!(
            missing.is_empty(),
            "{name}: properties without a description: {missing:?}"
        );
        // Compiles, with every $ref resolved.
        assert!(validators().contains_key(name.trim_end_matches(".schema.json")));
        if name == COMMON {
            continue;
        }
        // Used: some test of this file validates an output against it.
        let stem = name.trim_end_matches(".schema.json");
        assert!(
            source.contains(&format!("\"{stem}\"")),
            "docs/schemas/{name} is not used by any test in tests/tests/json_schema.rs"
        );
    }
    // Every shared definition is referred to from somewhere.
    for def in files[COMMON]["$defs"].as_object().unwrap().keys() {
        let used = all_text.contains(&format!("{COMMON}#/$defs/{def}\""))
            || all_text.contains(&format!("\"#/$defs/{def}\""));
        assert!(
            used,
            "{COMMON}: $defs/{def} is not referred to by any schema"
        );
    }
}

/// A change to a real output that must make it invalid.
type Edit = fn(&mut Value);

#[test]
fn the_validator_rejects_broken_outputs() {
    // A real output: feed publish --json of one document.
    let f = Fixture::empty();
    std::fs::write(
        f.feed().join("mitigations/AM-2026-0001.xml"),
        mitigation_xml("AM-2026-0001", 3),
    )
    .unwrap();
    let good = checked(
        &f.publish(&["--json"]),
        "bundler-feed-publish",
        "feed publish --json",
    );
    let broken = |edit: Edit| {
        let mut v = good.clone();
        edit(&mut v);
        errors("bundler-feed-publish", &v)
    };
    let cases: [(&str, Edit, &str); 7] = [
        (
            "a field removed",
            |v| {
                v.as_object_mut().unwrap().remove("key_id");
            },
            "at /: ",
        ),
        (
            "a hash mangled",
            |v| v["mitigations"][0]["sha256"] = json!("ABC123"),
            "at /mitigations/0/sha256: ",
        ),
        (
            "a key id in lower case",
            |v| {
                let id = v["key_id"].as_str().unwrap().to_lowercase();
                v["key_id"] = json!(id);
            },
            "at /key_id: ",
        ),
        (
            "a field added",
            |v| v["mitigations"][0]["signed"] = json!(true),
            "at /mitigations/0: ",
        ),
        (
            "a number as a string",
            |v| v["mitigations"][0]["revision"] = json!("3"),
            "at /mitigations/0/revision: ",
        ),
        (
            "a time that is not RFC 3339",
            |v| v["expires"] = json!("2026-12-05 08:00:00"),
            "at /expires: ",
        ),
        (
            "a day that does not exist (format date-time is asserted)",
            |v| v["generated"] = json!("2026-02-30T08:00:00Z"),
            "at /generated: ",
        ),
    ];
    for (case, edit, at) in cases {
        let errs = broken(edit);
        assert!(
            errs.iter().any(|e| e.starts_with(at)),
            "{case}: expected an error {at}…, got {errs:?}"
        );
    }

    // A ledger entry (show --json) with its hash mangled and a null kind.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    fixture([os("create"), os(&db), os("exch01")]).expect(0);
    let entry = checked(
        &ledger([os("--db"), os(&db), os("show"), os("1"), os("--json")]).expect(0),
        "ledger-show",
        "ledger show 1 --json",
    );
    assert_eq!(entry["kind"], "ledger.created");
    let mut bad = entry.clone();
    bad["hash"] = json!(format!("{}0", bad["hash"].as_str().unwrap()));
    bad["kind"] = Value::Null;
    let errs = errors("ledger-show", &bad);
    for at in ["at /hash: ", "at /kind: "] {
        assert!(errs.iter().any(|e| e.starts_with(at)), "{at}: {errs:?}");
    }
    // The loose per-kind detail rules are wired up: a known field of the wrong form
    // fails, an unknown field passes.
    let mut odd = entry.clone();
    odd["detail"]["host_key"] = json!("not a key id");
    odd["detail"]["note"] = json!("an extra field");
    let errs = errors("ledger-show", &odd);
    assert!(
        errs.len() == 1 && errs[0].starts_with("at /detail/host_key: "),
        "{errs:?}"
    );

    // The failure message names the output, the schema and each error's path.
    let message = std::panic::catch_unwind(|| check("ledger-show", "the mangled entry", &bad))
        .expect_err("check accepted a mangled entry");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    for part in [
        "the mangled entry",
        "docs/schemas/ledger-show.schema.json",
        "at /hash: ",
        "at /kind: ",
    ] {
        assert!(message.contains(part), "{part} not in:\n{message}");
    }
}

// ---------------------------------------------------------------------------
// airlock-bundler

/// `fetch SOURCE --vendor-key .. --cache CACHE --json`, without proxy variables but `env`.
fn fetch(f: &Fixture, source: &OsStr, env: &[(&str, &str)]) -> Run {
    let mut cmd = f.fetch_command(source, &f.cache());
    cmd.arg("--json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn bundler_outputs() {
    let f = Fixture::samples();
    for (role, extra) in [("approver", "--no-password"), ("host", "--password-file")] {
        let dir = f.path(&format!("new-{role}"));
        let mut args = vec![
            os("keygen"),
            os("--role"),
            os(role),
            os("--out"),
            os(&dir),
            os("--json"),
            os(extra),
        ];
        if extra == "--password-file" {
            let pw = f.path("password");
            std::fs::write(&pw, "correct horse\n").unwrap();
            args.push(os(&pw));
        }
        let v = checked(&bundler(args).expect(0), "bundler-keygen", "keygen --json");
        assert_eq!(v["encrypted"], extra == "--password-file");
    }

    let published = checked(
        &f.publish(&["--retire", "AM-2020-0007", "--json"]),
        "bundler-feed-publish",
        "feed publish --json",
    );
    assert_eq!(published["retired"], json!(["AM-2020-0007"]));

    let first = checked(
        &fetch(&f, f.feed().as_os_str(), &[]).expect(0),
        "bundler-fetch",
        "fetch DIR --json (first)",
    );
    assert_eq!(first["http"], Value::Null);
    assert_eq!(first["new"].as_array().unwrap().len(), 8);
    // A new revision of one document, another dropped without being retired.
    f.set_revision("AM-2021-0003", 3, 4);
    std::fs::remove_file(f.feed().join("mitigations/AM-2021-0001.xml")).unwrap();
    f.publish(&["--retire", "AM-2020-0007"]);
    let second = checked(
        &fetch(&f, f.feed().as_os_str(), &[]).expect(0),
        "bundler-fetch",
        "fetch DIR --json (updated, dropped)",
    );
    assert_eq!(second["updated"], json!(["AM-2021-0003"]));
    assert_eq!(second["dropped"], json!(["AM-2021-0001"]));

    let att = f.path("rules.bin");
    std::fs::write(&att, b"carried, never executed").unwrap();
    let out = f.path("b.airlock");
    let built = checked(
        &f.build(
            &out,
            &[
                "--attach",
                att.to_str().unwrap(),
                "--detached-sig",
                "--json",
            ],
        )
        .expect(0),
        "bundler-build",
        "build --json",
    );
    assert_eq!(built["detached_signature"], true);

    let inspected = checked(
        &bundler([os("inspect"), os(&out), os("--json")]).expect(0),
        "bundler-inspect",
        "inspect --json",
    );
    assert_eq!(inspected["manifest"]["id"], built["id"]);

    let verify = |bundle: &Path, release: &str| {
        bundler([
            os("verify"),
            os(bundle),
            os("--release-key"),
            os(f.key(release)),
            os("--vendor-key"),
            os(f.key("vendor.pub")),
            os("--json"),
        ])
    };
    let verified = checked(
        &verify(&out, "release.pub").expect(0),
        "bundler-verify",
        "verify --json",
    );
    assert_eq!(verified["expired"], false);
    assert_eq!(verified["attachments"][0]["name"], "rules.bin");

    // An expired bundle: the report is printed, then exit 4 with the error on stderr.
    let old = f.path("old.airlock");
    f.build(
        &old,
        &["--created", "2020-01-01T00:00:00Z", "--expires", "1d"],
    )
    .expect(0);
    let r = verify(&old, "release.pub").expect(4);
    let expired = checked(&r, "bundler-verify", "verify --json of an expired bundle");
    assert_eq!(expired["expired"], true);
    assert!(r.stderr.contains("expired at"), "{}", r.stderr);

    // A bundle that fails verification prints no JSON.
    let r = verify(&out, "vendor.pub").expect(3);
    assert_text_error_only(&r, "airlock-bundler", "verify --json with the wrong key");
}

#[test]
fn fetch_over_http_through_a_proxy_then_not_modified() {
    let f = Fixture::samples();
    let server = FeedServer::start(&f.feed());
    let proxy = Proxy::start();
    let url = server.url();
    let through = checked(
        &fetch(&f, url.as_ref(), &[("HTTP_PROXY", &proxy.url())]).expect(0),
        "bundler-fetch",
        "fetch URL --json through a proxy",
    );
    let http = &through["http"];
    assert!(http["requests"].as_u64().unwrap() > 0, "{through}");
    assert_eq!(http["not_modified"], false);
    assert!(http["proxy"].is_string(), "{through}");
    assert!(!proxy.connects().is_empty());

    let again = checked(
        &fetch(&f, url.as_ref(), &[]).expect(0),
        "bundler-fetch",
        "fetch URL --json, unchanged",
    );
    assert_eq!(again["http"]["not_modified"], true, "{again}");
    assert_eq!(again["http"]["proxy"], Value::Null);
    assert_eq!(again["unchanged"].as_array().unwrap().len(), 8);
}

// ---------------------------------------------------------------------------
// airlock-applier

/// A `systemctl` for the tests: it remembers a masked unit as a file in
/// `PROGRAM.units/`, so units can be masked, unmasked and made to drift without
/// systemd.
fn fake_systemctl(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("systemctl");
    std::fs::write(
        &p,
        r#"#!/bin/sh
units="$0.units"
mkdir -p "$units"
cmd=; unit=
for a in "$@"; do
  case "$a" in
    --root=*|--now|--quiet|--) ;;
    is-enabled|is-active|mask|unmask|start) cmd=$a ;;
    *) unit=$a ;;
  esac
done
case "$cmd" in
  is-enabled) if [ -e "$units/$unit" ]; then echo masked; else echo disabled; fi; exit 1 ;;
  is-active) exit 3 ;;
  mask) : > "$units/$unit" ;;
  unmask) rm -f "$units/$unit" ;;
  *) echo "fake systemctl: unexpected arguments: $*" >&2; exit 1 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// `airlock-applier --profile P ARGS` with `AIRLOCK_SYSTEMCTL=systemctl`.
fn applier_with(h: &Host, systemctl: &Path, args: &[&OsStr]) -> Run {
    run(Command::new(bin("airlock-applier"))
        .arg("--profile")
        .arg(h.profile())
        .args(args)
        .env("AIRLOCK_SYSTEMCTL", systemctl))
}

/// Every read-only ledger output of `h`'s ledger, and `checkpoint`, validated:
/// verify (database, export, against a checkpoint), log, show of the first and
/// last entry, export and every line of the file, report.
fn check_ledger_outputs(h: &Host, what: &str) {
    let l = |args: &[&OsStr]| h.ledger(args);
    let verified = checked(
        &l(&["verify".as_ref(), "--json".as_ref()]).expect(0),
        "ledger-verify",
        &format!("{what}: ledger verify --json"),
    );
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["signatures_checked"], true);

    let log = checked(
        &l(&["log".as_ref(), "--format".as_ref(), "json".as_ref()]).expect(0),
        "ledger-log",
        &format!("{what}: ledger log --format json"),
    );
    let entries = log.as_array().unwrap();
    for seq in [1, entries.len()] {
        let shown = checked(
            &l(&["show".as_ref(), seq.to_string().as_ref(), "--json".as_ref()]).expect(0),
            "ledger-show",
            &format!("{what}: ledger show {seq} --json"),
        );
        assert_eq!(shown, entries[seq - 1], "show {seq} and log disagree");
    }

    let cp = h.dir.path().join("cp");
    let signed = checked(
        &l(&[
            "checkpoint".as_ref(),
            "--out".as_ref(),
            cp.as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "ledger-checkpoint",
        &format!("{what}: ledger checkpoint --out --json"),
    );
    assert!(signed["out"].is_string());
    let proven = checked(
        &l(&[
            "verify".as_ref(),
            "--checkpoint".as_ref(),
            cp.as_os_str(),
            "--key".as_ref(),
            h.state("host.pub").as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "ledger-verify",
        &format!("{what}: ledger verify --checkpoint --json"),
    );
    assert_eq!(proven["extends_checkpoint"], signed["size"]);

    let export = h.dir.path().join("export.jsonl");
    checked(
        &l(&[
            "export".as_ref(),
            "--out".as_ref(),
            export.as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "ledger-export",
        &format!("{what}: ledger export --json"),
    );
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), entries.len() + 1 + 2, "header, entries, end");
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: export line {} is not JSON: {e}", i + 1));
        check(
            "ledger-export-record",
            &format!("{what}: export line {}", i + 1),
            &v,
        );
    }
    checked(
        &l(&[
            "verify".as_ref(),
            "--export".as_ref(),
            export.as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "ledger-verify",
        &format!("{what}: ledger verify --export --json"),
    );

    let html = h.dir.path().join("report.html");
    let report = checked(
        &l(&[
            "report".as_ref(),
            "--html".as_ref(),
            html.as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "ledger-report",
        &format!("{what}: ledger report --json"),
    );
    assert_eq!(report["chain_ok"], true);
}

#[test]
fn applier_outputs_through_plan_apply_drift_and_rollback() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b1.airlock");
    f.build(&bundle, &[]).expect(0);
    let h = Host::lab(&f);
    let ctl = fake_systemctl(h.dir.path());
    let a = |args: &[&OsStr]| applier_with(&h, &ctl, args);
    let b = bundle.as_os_str();

    let init = checked(
        &a(&["init".as_ref(), "--json".as_ref()]).expect(0),
        "applier-init",
        "init --json",
    );
    assert_eq!(init["created"], true);
    let again = checked(
        &a(&["init".as_ref(), "--json".as_ref()]).expect(0),
        "applier-init",
        "init --json on a prepared host",
    );
    assert_eq!(again["created"], false);

    checked(
        &a(&["verify".as_ref(), b, "--json".as_ref()]).expect(0),
        "applier-verify",
        "applier verify --json",
    );

    // A plan with changes (files and a unit), printed and written.
    let plan_file = h.dir.path().join("plan.json");
    let plan = checked(
        &a(&[
            "plan".as_ref(),
            b,
            "--out".as_ref(),
            plan_file.as_os_str(),
            "--json".as_ref(),
        ])
        .expect(0),
        "applier-plan",
        "plan --json (changes)",
    );
    let written: Value = serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    check("applier-plan", "plan --out PLAN.json", &written);
    assert_eq!(written, plan, "plan --out and plan --json differ");
    assert!(!plan["files"].as_array().unwrap().is_empty());
    assert_eq!(plan["units"][0]["op"], "mask", "{plan}");

    let applied = checked(
        &a(&["apply".as_ref(), b, "--yes".as_ref(), "--json".as_ref()]).expect(0),
        "applier-apply",
        "apply --json (changes)",
    );
    assert!(applied["files"].as_u64().unwrap() > 0);

    // Nothing left to change.
    let noop = checked(
        &a(&["plan".as_ref(), b, "--json".as_ref()]).expect(0),
        "applier-plan",
        "plan --json (nothing to change)",
    );
    assert_eq!(noop["files"], json!([]));
    let noop = checked(
        &a(&["apply".as_ref(), b, "--yes".as_ref(), "--json".as_ref()]).expect(0),
        "applier-apply",
        "apply --json (nothing to change)",
    );
    assert_eq!(
        (noop["files"].as_u64(), noop["units"].as_u64()),
        (Some(0), Some(0))
    );

    let status = checked(
        &a(&["status".as_ref(), "--json".as_ref()]).expect(0),
        "applier-status",
        "status --json (no drift)",
    );
    assert_eq!(status["drift"], 0);
    assert!(!status["units"].as_array().unwrap().is_empty());

    // Drift: a managed file edited, the masked unit unmasked behind airlock's back.
    let sysctl = h.file("/etc/sysctl.conf");
    let mut text = std::fs::read_to_string(&sysctl).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&sysctl, text).unwrap();
    let units = PathBuf::from(format!("{}.units", ctl.display()));
    std::fs::remove_file(units.join("cups-browsed.service")).unwrap();
    let status = checked(
        &a(&["status".as_ref(), "--json".as_ref()]).expect(0),
        "applier-status",
        "status --json (drift)",
    );
    assert_eq!(status["drift"], 2, "{status}");
    let drifted = checked(
        &a(&["plan".as_ref(), b, "--json".as_ref()]).expect(0),
        "applier-plan",
        "plan --json (drift)",
    );
    assert_eq!(drifted["drift"].as_array().unwrap().len(), 2, "{drifted}");

    // Refusals print no JSON.
    let r = a(&["apply".as_ref(), b, "--yes".as_ref(), "--json".as_ref()]).expect(4);
    assert_text_error_only(&r, "airlock-applier", "apply --json over drift");
    let r = a(&[
        "rollback".as_ref(),
        "AM-2022-0001".as_ref(),
        "--json".as_ref(),
    ])
    .expect(4);
    assert_text_error_only(&r, "airlock-applier", "rollback --json over drift");

    let rolled = checked(
        &a(&[
            "rollback".as_ref(),
            "AM-2022-0001".as_ref(),
            "--force".as_ref(),
            "--json".as_ref(),
        ])
        .expect(0),
        "applier-rollback",
        "rollback --force --json",
    );
    assert_eq!(rolled["rolled_back"], json!(["AM-2022-0001"]));
    let status = checked(
        &a(&["status".as_ref(), "--json".as_ref()]).expect(0),
        "applier-status",
        "status --json (held, unit drift)",
    );
    assert_eq!(status["held"], json!({"AM-2022-0001": 1}));

    // A bundle for another channel is refused, with no JSON.
    let other = f.path("staging.airlock");
    f.build(&other, &["--channel", "staging"]).expect(0);
    let r = a(&["verify".as_ref(), other.as_os_str(), "--json".as_ref()]).expect(4);
    assert_text_error_only(
        &r,
        "airlock-applier",
        "applier verify --json of another channel",
    );

    check_ledger_outputs(&h, "after apply and rollback");
}

/// Regression: `rollback --json` printed the plan as text on stdout before its
/// JSON object, so its stdout did not parse; and `rollback --all --json` with
/// nothing applied printed a text line.
#[test]
fn rollback_json_prints_only_json() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b1.airlock");
    f.build(&bundle, &["--exclude", "AM-2024-0001"]).expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    h.applier(&[os("apply"), os(&bundle), os("--yes")])
        .expect(0);
    checked(
        &h.applier(&["rollback", "AM-2022-0001", "--json"]).expect(0),
        "applier-rollback",
        "rollback --json without -q",
    );
    let all = checked(
        &h.applier(&["rollback", "--all", "--json"]).expect(0),
        "applier-rollback",
        "rollback --all --json",
    );
    assert!(all["rolled_back"].as_array().is_some_and(|a| !a.is_empty()));
    let none = checked(
        &h.applier(&["rollback", "--all", "--json"]).expect(0),
        "applier-rollback",
        "rollback --all --json with nothing applied",
    );
    assert_eq!(
        none,
        json!({"rolled_back": [], "run": null, "files": 0, "units": 0, "ledger_size": null})
    );
}

/// An approver's key made with `keygen --role approver --json`: (key, public key, id).
fn approver(f: &Fixture) -> (PathBuf, PathBuf, String) {
    let dir = f.path("approver");
    let v = checked(
        &bundler([
            os("keygen"),
            os("--role"),
            os("approver"),
            os("--no-password"),
            os("--out"),
            os(&dir),
            os("--json"),
        ])
        .expect(0),
        "bundler-keygen",
        "keygen --role approver --json",
    );
    (
        dir.join("approver.key"),
        dir.join("approver.pub"),
        v["key_id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn approval_outputs() {
    let f = Fixture::empty();
    for id in ["AM-2026-0042", "AM-2026-0043"] {
        std::fs::write(
            f.feed().join("mitigations").join(format!("{id}.xml")),
            mitigation_xml(id, 1),
        )
        .unwrap();
    }
    f.publish(&[]);
    f.fetch().expect(0);
    let bundle = f.path("b.airlock");
    f.build(&bundle, &[]).expect(0);
    let (key, public, key_id) = approver(&f);
    let h = Host::bench(&f);
    let profile = std::fs::read_to_string(h.profile())
        .unwrap()
        .replace(
            "\n[trust]\n",
            &format!("\n[trust]\napprover_keys = [\"{}\"]\n", public.display()),
        )
        .replace("\n[policy]\n", "\n[policy]\napprovals_required = 1\n");
    std::fs::write(h.profile(), profile).unwrap();
    h.applier(&["init", "-q"]).expect(0);

    let plan = h.dir.path().join("plan.json");
    h.applier(&[os("plan"), os(&bundle), os("--out"), os(&plan), os("-q")])
        .expect(0);
    let written: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    check(
        "applier-plan",
        "plan --out PLAN.json (bench host)",
        &written,
    );

    // Without an approval the run is refused, with no JSON.
    let r = h
        .applier(&[os("apply"), os(&bundle), os("--yes"), os("--json")])
        .expect(4);
    assert_text_error_only(&r, "airlock-applier", "apply --json without approval");

    let approve = |extra: &[&str]| {
        let mut args = vec![
            os("approve"),
            os(&plan),
            os("--key"),
            os(&key),
            os("--json"),
        ];
        args.extend(extra.iter().map(os));
        applier(args).expect(0)
    };
    let untagged = checked(&approve(&[]), "applier-approve", "approve --json");
    assert_eq!(untagged["ticket"], Value::Null);
    assert_eq!(untagged["key"], key_id.as_str());
    let other = h.dir.path().join("chg.approval");
    let tagged = checked(
        &approve(&["--ticket", "CHG-4711", "--out", other.to_str().unwrap()]),
        "applier-approve",
        "approve --ticket --out --json",
    );
    assert_eq!(tagged["ticket"], "CHG-4711");
    assert_eq!(tagged["plan"], written["hash"]);

    let applied = checked(
        &h.applier(&[
            os("apply"),
            os(&bundle),
            os("--yes"),
            os("--approval"),
            os(&other),
            os("--json"),
        ])
        .expect(0),
        "applier-apply",
        "apply --json with an approval",
    );
    assert_eq!(applied["plan"], written["hash"]);

    check_ledger_outputs(&h, "after an approved apply");
}

#[test]
fn sync_outputs() {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    let inbox = h.dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    // The bundles leave out AM-2024-0001 (it masks a unit): no systemctl needed.
    let build = |name: &str| {
        f.build(&inbox.join(name), &["--exclude", "AM-2024-0001"])
            .expect(0);
    };
    let sync = || h.applier(&[os("sync"), os("--inbox"), os(&inbox), os("--json")]);

    build("older.airlock");
    build("newer.airlock");
    std::fs::write(inbox.join("broken.airlock"), b"not a bundle").unwrap();
    let applied = checked(&sync().expect(0), "applier-sync", "sync --json (applied)");
    assert_eq!(applied["outcome"], "applied");
    assert_eq!(applied["chosen"], "newer.airlock");
    assert_eq!(applied["ignored"].as_array().unwrap().len(), 2, "{applied}");

    let nothing = checked(
        &sync().expect(0),
        "applier-sync",
        "sync --json (nothing new)",
    );
    assert_eq!(nothing["outcome"], "nothing new");

    std::fs::write(inbox.join("broken2.airlock"), b"still not a bundle").unwrap();
    let r = sync().expect(3);
    let invalid = checked(&r, "applier-sync", "sync --json (invalid)");
    assert_eq!(invalid["outcome"], "invalid");
    assert!(
        r.stderr.contains("airlock-applier: error: "),
        "{}",
        r.stderr
    );

    // A newer bundle over a drifted file: apply refuses, sync reports it.
    let sysctl = h.file("/etc/sysctl.conf");
    let mut text = std::fs::read_to_string(&sysctl).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&sysctl, text).unwrap();
    build("newest.airlock");
    let refused = checked(&sync().expect(4), "applier-sync", "sync --json (refused)");
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(refused["chosen"], "newest.airlock");

    check_ledger_outputs(&h, "after sync");
}

// ---------------------------------------------------------------------------
// airlock-ledger on its own

#[test]
fn ledger_outputs_of_a_warped_and_a_tampered_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let l = |args: &[&str]| {
        let mut all = vec![os("--db"), os(&db)];
        all.extend(args.iter().map(os));
        ledger(all)
    };
    fixture([os("create"), os(&db), os("exch01")]).expect(0);
    fixture([os("append"), os(&db), os("4")]).expect(0);

    // An export of a ledger without a checkpoint: checkpoint_size and end.checkpoint null.
    let export = dir.path().join("e.jsonl");
    let summary = checked(
        &l(&["export", "--out", export.to_str().unwrap(), "--json"]).expect(0),
        "ledger-export",
        "ledger export --json (no checkpoint)",
    );
    assert_eq!(summary["checkpoint_size"], Value::Null);
    for (i, line) in std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .enumerate()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        check(
            "ledger-export-record",
            &format!("export line {} (no checkpoint)", i + 1),
            &v,
        );
    }

    let signed = checked(
        &l(&["checkpoint", "--json"]).expect(0),
        "ledger-checkpoint",
        "ledger checkpoint --json",
    );
    assert_eq!(signed["out"], Value::Null);

    // A time that goes backwards: a warning in the report, not a break.
    fixture([os("append-at"), os(&db), os("2000-01-01T00:00:00Z")]).expect(0);
    let warped = checked(
        &l(&["verify", "--json"]).expect(0),
        "ledger-verify",
        "ledger verify --json (clock warning)",
    );
    assert_eq!(warped["clock_warnings"][0]["seq"], 7, "{warped}");

    // One entry's detail edited: the chain breaks at it (exit 3), still JSON.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let trigger: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'entries_no_update'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("DROP TRIGGER entries_no_update", []).unwrap();
    conn.execute(
        "UPDATE entries SET detail = '{\"i\":999}' WHERE seq = 3",
        [],
    )
    .unwrap();
    conn.execute(&trigger, []).unwrap();
    conn.close().unwrap();
    let r = l(&["verify", "--json"]).expect(3);
    let broken = checked(&r, "ledger-verify", "ledger verify --json (broken chain)");
    assert_eq!(
        (broken["ok"].clone(), broken["seq"].clone()),
        (json!(false), json!(3))
    );
    assert!(
        r.stderr.contains("airlock-ledger: error: entry 3"),
        "{}",
        r.stderr
    );
    let html = dir.path().join("r.html");
    let report = checked(
        &l(&["report", "--html", html.to_str().unwrap(), "--json"]).expect(3),
        "ledger-report",
        "ledger report --json (broken chain)",
    );
    assert_eq!(
        (report["chain_ok"].clone(), report["chain_seq"].clone()),
        (json!(false), json!(3))
    );
    checked(
        &l(&["log", "--format", "json"]).expect(0),
        "ledger-log",
        "ledger log --format json (tampered ledger)",
    );

    // An operational error (exit 1) is reported the same way, without a seq.
    let missing = dir.path().join("missing.db");
    let r = ledger([os("--db"), os(&missing), os("verify"), os("--json")]).expect(1);
    let failed = checked(
        &r,
        "ledger-verify",
        "ledger verify --json (no such database)",
    );
    assert_eq!(failed["seq"], Value::Null);
}
