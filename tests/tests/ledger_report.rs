//! `airlock-ledger report --html` through the real binaries, on the ledger of a
//! lab host that applied a bundle, rolled one mitigation back, rejected a bundle
//! for another channel and refused a rollback over drift: the report's numbers
//! (its `--json` summary and the `data-*` attributes in the page) are those of
//! `airlock-ledger log --format json`; the page loads nothing from anywhere and
//! shows hostile detail text as text; a broken chain is shown and exits 3; the
//! page never replaces the database; and headless Chromium renders it.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_ledger::{Ledger, NewEntry};
use airlock_tests::{Fixture, Host, Run, require_tool, run};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A lab host whose ledger holds an apply, a rollback, a rejected bundle and a
/// refused rollback. Keep `_keys` bound while the host is used.
struct Lab {
    _keys: Fixture,
    h: Host,
}

/// [`lab`], or `None` (skipped, and said so) without `systemctl`: the sample
/// bundle's AM-2024-0001 masks a unit.
fn lab_with_systemctl(test: &str) -> Option<Lab> {
    require_tool("systemctl", test).then(lab)
}

fn lab() -> Lab {
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b1.airlock");
    f.build(&bundle, &[]).expect(0);
    let other = f.path("test.airlock");
    f.build(&other, &["--channel", "test"]).expect(0);
    let h = Host::lab(&f);
    h.applier(&["init"]).expect(0);
    let apply = |b: &Path| h.applier(&["apply".as_ref(), b.as_os_str(), OsStr::new("--yes")]);
    apply(&bundle).expect(0);
    h.applier(&["rollback", "AM-2022-0002"]).expect(0);
    // Refusals: a bundle for another channel, and a rollback over drift.
    apply(&other).expect(4);
    let sysctl = h.file("/etc/sysctl.conf");
    let mut text = std::fs::read(&sysctl).unwrap();
    text.extend_from_slice(b"vm.swappiness = 10\n");
    std::fs::write(&sysctl, text).unwrap();
    h.applier(&["rollback", "--all"]).expect(4);
    Lab { _keys: f, h }
}

/// Every ledger entry, as `log --format json` gives them.
fn log(args: &[&OsStr]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["log", "--format", "json"].map(OsStr::new));
    serde_json::from_str(&airlock_tests::ledger(all).expect(0).stdout).unwrap()
}

/// `report --html OUT --json` with `args` before it; returns the run, the
/// summary (when printed) and the page.
fn report(args: &[&OsStr], out: &Path, code: i32) -> (Run, Value, String) {
    let mut all = args.to_vec();
    all.extend([
        OsStr::new("report"),
        OsStr::new("--html"),
        out.as_os_str(),
        OsStr::new("--json"),
    ]);
    let start = Instant::now();
    let r = airlock_tests::ledger(all).expect(code);
    eprintln!("report took {:?}", start.elapsed());
    let summary = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    let html = std::fs::read_to_string(out).unwrap();
    (r, summary, html)
}

/// The value of the first `NAME="…"` attribute in `html`.
fn attr<'a>(html: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + key.len();
    &html[start..start + html[start..].find('"').unwrap()]
}

/// `kind` -> count of `<tr data-kind="K" data-count="N">` rows in the page.
fn kind_rows(html: &str) -> BTreeMap<String, u64> {
    html.match_indices("<tr data-kind=\"")
        .filter_map(|(i, _)| {
            let row = &html[i..i + html[i..].find('>').unwrap()];
            row.contains("data-count=").then(|| {
                (
                    attr(row, "data-kind").to_string(),
                    attr(row, "data-count").parse().unwrap(),
                )
            })
        })
        .collect()
}

fn is_refusal(kind: &str) -> bool {
    kind.ends_with(".refused")
        || kind.ends_with(".failed")
        || kind == "bundle.rejected"
        || kind == "sync.ignored"
}

/// A copy of the host's ledger in a new directory (no host key beside it).
fn copy_ledger(h: &Host) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    std::fs::copy(h.state("ledger.db"), &db).unwrap();
    (dir, db)
}

#[test]
fn the_reports_numbers_are_those_of_the_log() {
    let Some(Lab { h, _keys }) = lab_with_systemctl("the_reports_numbers_are_those_of_the_log")
    else {
        return;
    };
    let profile = h.profile();
    let p = [OsStr::new("--profile"), profile.as_os_str()];
    let entries = log(&p);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut runs = BTreeSet::new();
    let mut mitigations = BTreeSet::new();
    for e in &entries {
        *kinds.entry(e["kind"].as_str().unwrap().into()).or_default() += 1;
        if let Some(run) = e["detail"]["run"].as_str() {
            runs.insert(run.to_string());
        }
        if e["kind"].as_str().unwrap().starts_with("mitigation.") {
            mitigations.insert(e["mitigation"].as_str().unwrap().to_string());
        }
    }
    let refusals: u64 = kinds
        .iter()
        .filter(|(k, _)| is_refusal(k))
        .map(|(_, n)| n)
        .sum();
    // The scenario has what the report is for.
    for k in [
        "mitigation.applied",
        "mitigation.rolled_back",
        "bundle.rejected",
        "rollback.refused",
        "apply.completed",
        "rollback.completed",
    ] {
        assert!(kinds.contains_key(k), "{k} missing from {kinds:?}");
    }
    assert_eq!(runs.len(), 2, "one apply and one rollback run: {runs:?}");
    assert_eq!(refusals, 2);

    let out = h.dir.path().join("report.html");
    let (_, s, html) = report(&p, &out, 0);
    assert_eq!(s["entries"], entries.len());
    assert_eq!(s["kinds"], serde_json::to_value(&kinds).unwrap());
    assert_eq!(s["runs"], runs.len());
    assert_eq!(s["refusals"], refusals);
    assert_eq!(s["mitigations"], mitigations.len());
    assert_eq!(s["chain_ok"], true);
    assert_eq!(
        s["signatures_checked"], true,
        "host.pub beside the database"
    );
    assert_eq!(s["first_ts"], entries[0]["ts"]);
    assert_eq!(s["bytes"], html.len());
    let last_cp = entries.iter().rfind(|e| e["kind"] == "checkpoint").unwrap();
    assert_eq!(s["latest_checkpoint"]["entry"], last_cp["seq"]);

    // The same numbers in the page.
    assert_eq!(attr(&html, "data-entries"), entries.len().to_string());
    assert_eq!(attr(&html, "data-runs"), runs.len().to_string());
    assert_eq!(attr(&html, "data-refusals"), refusals.to_string());
    assert_eq!(attr(&html, "data-chain"), "ok");
    assert_eq!(kind_rows(&html), kinds);
    assert_eq!(html.matches("<tr data-run=\"").count(), runs.len());
    for run in &runs {
        assert!(html.contains(&format!("<tr data-run=\"{run}\">")), "{run}");
    }
    let refusal_rows = html.split("<table class=\"refusals\">").nth(1).unwrap();
    let refusal_rows = &refusal_rows[..refusal_rows.find("</table>").unwrap()];
    assert_eq!(
        refusal_rows.matches("<tr data-kind=").count() as u64,
        refusals
    );
    assert!(refusal_rows.contains("it is for channel test, and this host takes channel prod"));
    assert!(refusal_rows.contains("changed outside airlock"));
    for m in &mitigations {
        assert!(
            html.contains(&format!("<tr data-mitigation=\"{m}\">")),
            "{m}"
        );
    }
    assert!(html.contains("Chain OK"));
    assert!(html.contains("<span class=\"badge b-ok\">completed</span>"));

    // The plain output names the file; an auditor's checkpoint and key are used.
    let cp = h.dir.path().join("held.cp");
    h.ledger(&[OsStr::new("checkpoint"), "--out".as_ref(), cp.as_os_str()])
        .expect(0);
    let key = h.state("host.pub");
    let r = h
        .ledger(&[
            OsStr::new("report"),
            "--html".as_ref(),
            out.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
            "--checkpoint".as_ref(),
            cp.as_os_str(),
        ])
        .expect(0);
    assert!(r.stdout.contains("chain intact"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&out.display().to_string()),
        "{}",
        r.stdout
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("<b>Proven:</b> the ledger extends your checkpoint"));
}

#[test]
fn the_report_loads_nothing_and_shows_hostile_text_as_text() {
    let Some(Lab { h, _keys }) =
        lab_with_systemctl("the_report_loads_nothing_and_shows_hostile_text_as_text")
    else {
        return;
    };
    let (dir, db) = copy_ledger(&h);
    let out = dir.path().join("report.html");

    // Self-contained: no URL, no external resource, no script.
    let (_, _, html) = report(&[OsStr::new("--db"), db.as_os_str()], &out, 0);
    for banned in [
        "http://", "https://", "<link", "<script", "<iframe", "@import", "url(",
    ] {
        assert!(!html.contains(banned), "the page holds {banned}");
    }
    for (i, _) in html.match_indices("src=") {
        assert!(html[i..].starts_with("src=\"data:"), "{}", &html[i..i + 40]);
    }

    let run = log(&[OsStr::new("--db"), db.as_os_str()])
        .iter()
        .find(|e| e["kind"] == "apply.started")
        .unwrap()["detail"]["run"]
        .as_str()
        .unwrap()
        .to_string();
    // Ids and kinds have a fixed alphabet; the detail is free text.
    let script = "<script>alert(1)</script>";
    let mut ledger = Ledger::open(&db).unwrap();
    ledger
        .append_batch([
            NewEntry::new(
                "apply.refused",
                "tester",
                json!({ "reason": script, "exit": "\"><img src=x onerror=alert(2)>" }),
            ),
            NewEntry::new(
                "mitigation.applied",
                "tester",
                json!({
                    "run": run,
                    "revision": "<b>7</b>",
                    "reason": "</td></tr></table><script>alert(3)</script>",
                    "approved_by": [{ "key": "<i>K</i>", "ticket": "'><svg onload=alert(4)>" }],
                }),
            )
            .mitigation("AM-2026-0666"),
            NewEntry::new(
                "approval.recorded",
                "tester",
                json!({ "run": run, "key": "\u{202e}KEY", "ticket": "<a href=\"https://evil.example\">x</a>" }),
            ),
        ])
        .unwrap();
    drop(ledger);

    let (_, s, html) = report(&[OsStr::new("--db"), db.as_os_str()], &out, 0);
    assert_eq!(s["chain_ok"], true);
    assert_eq!(
        s["signatures_checked"], false,
        "no host.pub beside the copy"
    );
    assert!(html.contains("signatures were NOT checked"));

    // Nothing hostile is markup.
    for raw in [
        "<script",
        "<img",
        "<svg onload",
        "<b>7</b>",
        "<i>K</i>",
        "<a href=\"https",
        "\u{202e}",
    ] {
        assert!(!html.contains(raw), "{raw:?} reached the page unescaped");
    }
    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
        "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;",
        "&lt;b&gt;7&lt;/b&gt;",
        "<code>&lt;i&gt;K&lt;/i&gt;</code> (&#39;&gt;&lt;svg onload=alert(4)&gt;)",
        "\\u{202e}KEY",
    ] {
        assert!(html.contains(escaped), "{escaped} is not in the page");
    }
    // Text that looks like a URL is text: no link or resource points anywhere.
    assert!(!html.contains("href=\"http") && !html.contains("src=\""));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

#[test]
fn a_broken_chain_is_shown_in_the_report_and_exits_3() {
    let Some(Lab { h, _keys }) =
        lab_with_systemctl("a_broken_chain_is_shown_in_the_report_and_exits_3")
    else {
        return;
    };
    let (dir, db) = copy_ledger(&h);
    // An auditor-side edit: entry 5's detail changed with the update trigger dropped.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'entries_no_update'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        conn.execute("DROP TRIGGER entries_no_update", []).unwrap();
        conn.execute("UPDATE entries SET detail = '{}' WHERE seq = 5", [])
            .unwrap();
        conn.execute(&sql, []).unwrap();
    }
    let out = dir.path().join("report.html");
    let (r, s, html) = report(&[OsStr::new("--db"), db.as_os_str()], &out, 3);
    assert_eq!(s["chain_ok"], false);
    assert_eq!(s["chain_seq"], 5);
    assert!(
        r.stderr
            .contains("error: entry 5: the stored hash does not match"),
        "{}",
        r.stderr
    );
    assert_eq!(attr(&html, "data-chain"), "broken");
    assert!(html.contains("Chain BROKEN"));
    assert!(html.contains("entry 5: the stored hash does not match the entry&#39;s contents"));
    assert!(html.contains("nothing from entry 5 on can be trusted"));
}

#[test]
fn the_report_never_replaces_the_database_or_the_host_key() {
    let Some(Lab { h, _keys }) =
        lab_with_systemctl("the_report_never_replaces_the_database_or_the_host_key")
    else {
        return;
    };
    let before = std::fs::read(h.state("ledger.db")).unwrap();
    for target in ["ledger.db", "host.key", "host.pub"] {
        let r = h
            .ledger(&[
                OsStr::new("report"),
                "--html".as_ref(),
                h.state(target).as_os_str(),
            ])
            .expect(1);
        assert!(
            r.stderr.contains("which airlock-ledger never overwrites"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(std::fs::read(h.state("ledger.db")).unwrap(), before);
    h.ledger(&["verify"]).expect(0);
}

/// The Chromium binary on PATH, or `None` (skipped, and said so; a failure under CI).
fn chromium(test: &str) -> Option<&'static str> {
    let on_path = |t: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if on_path("chromium-browser") && !on_path("chromium") {
        return Some("chromium-browser");
    }
    require_tool("chromium", test).then_some("chromium")
}

/// A headless screenshot of `page` into `png`, killed after two minutes.
fn screenshot(browser: &str, page: &Path, png: &Path, profile: &Path) {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "{browser} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{browser} took more than two minutes to take a screenshot");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn headless_chromium_renders_the_report() {
    let test = "headless_chromium_renders_the_report";
    let Some(browser) = chromium(test) else {
        return;
    };
    let Some(Lab { h, _keys }) = lab_with_systemctl(test) else {
        return;
    };
    // The screenshots are kept for a person to look at.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ledger_report");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let profile = h.profile();
    report(&[OsStr::new("--profile"), profile.as_os_str()], &page, 0);
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><title>blank</title>\n").unwrap();

    let start = Instant::now();
    let (png, blank_png) = (dir.join("report.png"), dir.join("blank.png"));
    for p in [&png, &blank_png] {
        let _ = std::fs::remove_file(p);
    }
    let user_data = tempfile::tempdir().unwrap();
    screenshot(browser, &page, &png, user_data.path());
    screenshot(browser, &blank, &blank_png, user_data.path());
    eprintln!(
        "two screenshots took {:?}; the report's is {}",
        start.elapsed(),
        png.display()
    );
    let (shot, empty) = (
        std::fs::read(&png).unwrap(),
        std::fs::read(&blank_png).unwrap(),
    );
    for b in [&shot, &empty] {
        assert!(b.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    }
    // A white page compresses to almost nothing; text, tables and the chart do not.
    assert!(
        shot.len() > 20_000 && shot.len() > 5 * empty.len(),
        "the screenshot looks empty: {} bytes, a blank page's is {}",
        shot.len(),
        empty.len()
    );
}

#[test]
fn a_report_needs_an_html_path() {
    let r = run(Command::new(airlock_tests::bin("airlock-ledger")).args(["report"]));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--html <OUT.html>"), "{}", r.stderr);
}
