//! End-to-end: `airlock-bundler fetch` of http:// and https:// feeds from the
//! loopback [`FeedServer`], through the real binary: conditional and incremental
//! fetches, every injected server fault (the cache must stay as it was, or hold
//! only verified objects), the plain-http guard, proxies, TLS trust, and a fetch
//! killed with SIGKILL midway.
//!
//! Every fetch starts from an environment without proxy variables and sets only
//! the ones the test means; every server binds 127.0.0.1:0 and every test has its
//! own temporary directories, so the tests run in parallel.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::hash::sha256_hex;
use airlock_tests::http::{Fault, FeedServer, Proxy, Request, TestTls, etag};
use airlock_tests::{Fixture, Run, mitigation_xml, run};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The eight documents of `samples/feed`, sorted.
const SAMPLE_IDS: [&str; 8] = [
    "AM-2021-0001",
    "AM-2021-0002",
    "AM-2021-0003",
    "AM-2021-0004",
    "AM-2022-0001",
    "AM-2022-0002",
    "AM-2023-0001",
    "AM-2024-0001",
];

/// The document the failure tests change and then break.
const CHANGED: &str = "AM-2021-0003";
const CHANGED_PATH: &str = "/mitigations/AM-2021-0003.xml";

/// Environment variables for one fetch.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `fetch SOURCE --vendor-key .. --cache CACHE EXTRA..` with no proxy variables but `env`.
fn fetch_env(f: &Fixture, source: &str, cache: &Path, extra: &[&str], env: Env<'_>) -> Run {
    let mut cmd = fetch_command(f, source, cache, extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn fetch_command(f: &Fixture, source: &str, cache: &Path, extra: &[&str]) -> Command {
    let mut cmd = f.fetch_command(source, cache);
    cmd.args(extra);
    cmd
}

/// `fetch URL --json EXTRA..` into the fixture's cache.
fn fetch(f: &Fixture, url: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    fetch_env(f, url, &f.cache(), &args, &[])
}

/// The JSON report of a successful `--json` fetch.
#[track_caller]
fn report(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

/// `ids` as a JSON array.
fn ids(ids: &[&str]) -> Value {
    json!(ids)
}

/// The fixture's samples fetched once over http: the cache holds a committed feed.
fn primed() -> (Fixture, FeedServer) {
    let f = Fixture::samples();
    let server = FeedServer::start(&f.feed());
    fetch(&f, &server.url(), &[]).expect(0);
    server.clear_log();
    (f, server)
}

/// `feed publish` again with `extra`. The server's Last-Modified has one-second
/// resolution, so a feed.xml republished within the same second gets its mtime
/// moved on: a changed feed must never look unmodified to `If-Modified-Since`.
fn republish(f: &Fixture, extra: &[&str]) {
    let path = f.feed().join("feed.xml");
    let before = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    f.publish(extra);
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let after = std::fs::metadata(&path).unwrap().modified().unwrap();
    if let Some(before) = before
        && secs(after) <= secs(before)
    {
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(before + Duration::from_secs(1)).unwrap();
    }
}

/// Bumps the revision of document `id` in the feed directory and republishes
/// (AM-2020-0007 stays retired). Returns the new document's SHA-256.
fn bump(f: &Fixture, id: &str) -> String {
    let doc = f.feed().join(format!("mitigations/{id}.xml"));
    let text = std::fs::read_to_string(&doc).unwrap();
    let at = text.find(" revision=\"").unwrap() + " revision=\"".len();
    let end = at + text[at..].find('"').unwrap();
    let rev: u64 = text[at..end].parse().unwrap();
    let text = format!("{}{}{}", &text[..at], rev + 1, &text[end..]);
    std::fs::write(&doc, &text).unwrap();
    republish(f, &["--retire", "AM-2020-0007"]);
    sha256_hex(text.as_bytes())
}

/// `bytes` with the case of the ASCII letter right after the first `marker` flipped:
/// same length, different content.
fn flip_after(bytes: &[u8], marker: &str) -> Vec<u8> {
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .unwrap()
        + marker.len();
    let mut out = bytes.to_vec();
    assert!(out[at].is_ascii_alphabetic());
    out[at] ^= 0x20;
    out
}

/// Every file under `dir` (relative path -> bytes), except the top-level `lock`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                if rel != "lock" {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Every path under `dir` whose name starts with `.airlock-tmp-`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with(".airlock-tmp-") {
                out.push(e.path());
            } else if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// Asserts every `objects/X.xml` in the cache has SHA-256 X; returns how many there are.
#[track_caller]
fn assert_objects_verified(cache: &Path) -> usize {
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir(cache.join("objects")) else {
        return 0;
    };
    for e in dir {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".airlock-tmp-") {
            continue; // temporary files are checked on their own
        }
        if let Some(sha) = name.strip_suffix(".xml") {
            assert_eq!(
                sha256_hex(&std::fs::read(e.path()).unwrap()),
                sha,
                "objects/{name} does not hold what its name says"
            );
            n += 1;
        }
    }
    n
}

/// After a failed document: the committed feed is the one before, no temporary
/// file is left, every object is verified and the failing one is not stored.
#[track_caller]
fn assert_document_failure_kept_cache(
    f: &Fixture,
    before: &BTreeMap<String, Vec<u8>>,
    failing_sha: &str,
) {
    let now = snapshot(&f.cache());
    for name in ["feed.xml", "feed.xml.minisig"] {
        assert!(
            now.get(name) == before.get(name),
            "{name} changed after a failed fetch"
        );
    }
    assert_eq!(leftovers(&f.cache()), Vec::<PathBuf>::new());
    assert_objects_verified(&f.cache());
    assert!(
        !f.cache()
            .join(format!("objects/{failing_sha}.xml"))
            .exists(),
        "the failing document was stored"
    );
}

/// After a failure about the feed itself: the cache is byte-for-byte as before.
#[track_caller]
fn assert_cache_unchanged(f: &Fixture, before: &BTreeMap<String, Vec<u8>>) {
    let now = snapshot(&f.cache());
    let changed: Vec<_> = before
        .keys()
        .chain(now.keys())
        .filter(|k| before.get(*k) != now.get(*k))
        .collect();
    assert!(changed.is_empty(), "cache files changed: {changed:?}");
}

/// How many requests in `log` are for `path`.
fn count(log: &[Request], path: &str) -> usize {
    log.iter().filter(|r| r.path == path).count()
}

/// The sorted paths of `log`.
fn paths(log: &[Request]) -> Vec<String> {
    let mut p: Vec<String> = log.iter().map(|r| r.path.clone()).collect();
    p.sort();
    p
}

/// Asserts the report's `http` object (other members, like `proxy`, may be present too).
#[track_caller]
fn assert_http(v: &Value, requests: u64, not_modified: bool, bytes: u64) {
    let http = &v["http"];
    assert_eq!(
        (&http["requests"], &http["not_modified"], &http["bytes"]),
        (&json!(requests), &json!(not_modified), &json!(bytes)),
        "http report {http}"
    );
}

#[track_caller]
fn assert_mentions(r: &Run, what: &str) {
    assert!(
        r.stderr.contains(what),
        "stderr does not mention {what:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

/// Total bytes of the files `names` under the feed directory.
fn sizes(f: &Fixture, names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| std::fs::metadata(f.feed().join(n)).unwrap().len())
        .sum()
}

/// `mitigations/ID.xml` and its `.minisig` for each id, plus `feed.xml` and its `.minisig`.
fn feed_files(ids: &[&str]) -> Vec<String> {
    let mut names = vec!["feed.xml".to_string(), "feed.xml.minisig".to_string()];
    for id in ids {
        names.push(format!("mitigations/{id}.xml"));
        names.push(format!("mitigations/{id}.xml.minisig"));
    }
    names
}

#[test]
fn fresh_then_not_modified_then_incremental_fetch() {
    let f = Fixture::samples();
    let server = FeedServer::start(&f.feed());
    let url = server.url();

    // 1. Fresh: everything new, one request per file.
    let v = report(&fetch(&f, &url, &[]).expect(0));
    assert_eq!(v["feed"], format!("{url}feed.xml"));
    assert_eq!(v["publisher"], "airlock sample vendor");
    assert_eq!(v["new"], ids(&SAMPLE_IDS));
    assert_eq!(v["updated"], ids(&[]));
    assert_eq!(v["unchanged"], ids(&[]));
    assert_eq!(v["retired"], ids(&["AM-2020-0007"]));
    assert_eq!(v["dropped"], ids(&[]));
    let files = feed_files(&SAMPLE_IDS);
    assert_http(&v, 18, false, sizes(&f, &files));
    let log = server.requests();
    assert!(log.iter().all(|r| r.method == "GET"), "{log:?}");
    assert!(log.iter().all(|r| r.status == Some(200)), "{log:?}");
    let mut expected: Vec<String> = files.iter().map(|n| format!("/{n}")).collect();
    expected.sort();
    assert_eq!(paths(&log), expected);
    assert!(f.cache().join("feed.http.json").is_file());

    // 2. Unchanged: one conditional request, answered 304.
    server.clear_log();
    let before = snapshot(&f.cache());
    let r = fetch(&f, &url, &[]).expect(0);
    let v = report(&r);
    let log = server.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("GET", "/feed.xml")
    );
    let tag = etag(&std::fs::read(f.feed().join("feed.xml")).unwrap());
    assert!(
        log[0].header("if-none-match") == Some(tag.as_str())
            || log[0].header("if-modified-since").is_some(),
        "not a conditional request: {:?}",
        log[0].headers
    );
    assert_eq!(log[0].status, Some(304));
    assert_eq!(v["new"], ids(&[]));
    assert_eq!(v["updated"], ids(&[]));
    assert_eq!(v["unchanged"], ids(&SAMPLE_IDS));
    assert_eq!(v["retired"], ids(&[]));
    assert_eq!(v["dropped"], ids(&[]));
    assert_http(&v, 1, true, 0);
    assert_eq!(snapshot(&f.cache())["feed.xml"], before["feed.xml"]);

    // 3. One new, one updated, one retired: only the two changed documents travel.
    std::fs::write(
        f.feed().join("mitigations/AM-2099-0001.xml"),
        mitigation_xml("AM-2099-0001", 1),
    )
    .unwrap();
    std::fs::remove_file(f.feed().join("mitigations/AM-2024-0001.xml")).unwrap();
    std::fs::remove_file(f.feed().join("mitigations/AM-2024-0001.xml.minisig")).unwrap();
    let doc = f.feed().join("mitigations/AM-2021-0003.xml");
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(text.contains("revision=\"3\""));
    std::fs::write(&doc, text.replacen("revision=\"3\"", "revision=\"4\"", 1)).unwrap();
    republish(
        &f,
        &["--retire", "AM-2020-0007", "--retire", "AM-2024-0001"],
    );
    server.clear_log();
    let v = report(&fetch(&f, &url, &[]).expect(0));
    assert_eq!(v["new"], ids(&["AM-2099-0001"]));
    assert_eq!(v["updated"], ids(&["AM-2021-0003"]));
    assert_eq!(v["retired"], ids(&["AM-2024-0001"]));
    assert_eq!(v["dropped"], ids(&[]));
    assert_eq!(
        v["unchanged"],
        ids(&[
            "AM-2021-0001",
            "AM-2021-0002",
            "AM-2021-0004",
            "AM-2022-0001",
            "AM-2022-0002",
            "AM-2023-0001"
        ])
    );
    let changed = feed_files(&["AM-2021-0003", "AM-2099-0001"]);
    assert_http(&v, 6, false, sizes(&f, &changed));
    let mut expected: Vec<String> = changed.iter().map(|n| format!("/{n}")).collect();
    expected.sort();
    assert_eq!(paths(&server.requests()), expected);

    // The cache builds.
    let out = f.path("http.airlock");
    f.build(&out, &[]).expect(0);
    f.verify(&out).expect(0);
}

#[test]
fn feed_url_forms_and_a_base_below_the_root() {
    // The server's root is the fixture directory: the feed lives under /feed/.
    let f = Fixture::samples();
    let server = FeedServer::start(f.dir.path());
    for (n, source) in [
        format!("{}feed/", server.url()),
        format!("{}feed/feed.xml", server.url()),
    ]
    .iter()
    .enumerate()
    {
        server.clear_log();
        let cache = f.path(&format!("cache{n}"));
        let r = fetch_env(&f, source, &cache, &["--json"], &[]).expect(0);
        let v = report(&r);
        assert_eq!(
            v["feed"],
            format!("{}feed/feed.xml", server.url()),
            "{source}"
        );
        assert_eq!(v["new"], ids(&SAMPLE_IDS), "{source}");
        let log = server.requests();
        assert_eq!(log.len(), 18, "{source}: {log:?}");
        assert!(
            log.iter().all(|r| r.path.starts_with("/feed/")),
            "{source}: {log:?}"
        );
    }
}

#[test]
fn dropped_entries_are_reported() {
    let (f, server) = primed();
    // Removed from the feed without being retired.
    std::fs::remove_file(f.feed().join("mitigations/AM-2022-0002.xml")).unwrap();
    republish(&f, &["--retire", "AM-2020-0007"]);
    let v = report(&fetch(&f, &server.url(), &[]).expect(0));
    assert_eq!(v["dropped"], ids(&["AM-2022-0002"]));
    assert_eq!(v["retired"], ids(&[]));
    assert_eq!(v["new"], ids(&[]));
    assert_eq!(v["unchanged"].as_array().unwrap().len(), 7);
    assert_eq!(v["http"]["requests"], 2);
}

#[test]
fn a_directory_source_has_no_http_report() {
    let f = Fixture::samples();
    let r = fetch_env(&f, f.feed().to_str().unwrap(), &f.cache(), &["--json"], &[]).expect(0);
    let v = report(&r);
    assert_eq!(v["http"], Value::Null);
    assert_eq!(v["new"], ids(&SAMPLE_IDS));
}

#[test]
fn document_404_fails_without_retry() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    server.set_fault(
        CHANGED_PATH,
        Fault::Status {
            code: 404,
            times: usize::MAX,
        },
    );
    let r = fetch(&f, &server.url(), &[]).expect(1);
    assert_mentions(&r, "404");
    assert_eq!(count(&server.requests(), CHANGED_PATH), 1);
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn missing_feed_fails_with_its_status() {
    let f = Fixture::empty();
    let server = FeedServer::start(&f.feed()); // no feed.xml
    let r = fetch(&f, &server.url(), &[]).expect(1);
    assert_mentions(&r, "404");
    assert_eq!(count(&server.requests(), "/feed.xml"), 1);
    assert!(!f.cache().join("feed.xml").exists());
}

#[test]
fn transient_errors_are_retried() {
    let (f, server) = primed();
    bump(&f, CHANGED);
    server.set_fault(
        CHANGED_PATH,
        Fault::Status {
            code: 500,
            times: 2,
        },
    );
    server.set_fault(
        "/mitigations/AM-2021-0003.xml.minisig",
        Fault::Status {
            code: 429,
            times: 1,
        },
    );
    server.set_fault(
        "/feed.xml.minisig",
        Fault::Status {
            code: 408,
            times: 1,
        },
    );
    let v = report(&fetch(&f, &server.url(), &[]).expect(0));
    assert_eq!(v["updated"], ids(&[CHANGED]));
    let log = server.requests();
    assert_eq!(count(&log, CHANGED_PATH), 3, "{log:?}");
    assert_eq!(count(&log, "/mitigations/AM-2021-0003.xml.minisig"), 2);
    assert_eq!(count(&log, "/feed.xml.minisig"), 2);
    assert_eq!(v["http"]["requests"], 1 + 2 + 3 + 2);
}

#[test]
fn dropped_connection_is_retried() {
    let (f, server) = primed();
    bump(&f, CHANGED);
    server.set_fault(CHANGED_PATH, Fault::Drop { times: 1 });
    let v = report(&fetch(&f, &server.url(), &[]).expect(0));
    assert_eq!(v["updated"], ids(&[CHANGED]));
    assert_eq!(count(&server.requests(), CHANGED_PATH), 2);
}

#[test]
fn refused_connection_is_retried_then_reported() {
    let f = Fixture::samples();
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let r = fetch(
        &f,
        &format!("http://127.0.0.1:{port}/"),
        &["--retries", "1"],
    )
    .expect(1);
    assert_mentions(&r, "after 2 attempts");
    // One backoff of 0.25 s between the two attempts.
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert!(!f.cache().join("feed.xml").exists());
}

#[test]
fn document_500_forever_gives_up_after_the_retries() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    server.set_fault(
        CHANGED_PATH,
        Fault::Status {
            code: 500,
            times: usize::MAX,
        },
    );
    let r = fetch(&f, &server.url(), &["--retries", "1"]).expect(1);
    assert_mentions(&r, "500");
    assert_mentions(&r, "after 2 attempts");
    assert_eq!(count(&server.requests(), CHANGED_PATH), 2);
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn feed_503_forever_gives_up_after_four_attempts_by_default() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    bump(&f, CHANGED);
    server.set_fault(
        "/feed.xml",
        Fault::Status {
            code: 503,
            times: usize::MAX,
        },
    );
    let t = Instant::now();
    let r = fetch(&f, &server.url(), &[]).expect(1);
    assert_mentions(&r, "503");
    assert_mentions(&r, "after 4 attempts");
    assert_eq!(count(&server.requests(), "/feed.xml"), 4);
    // Backoff 0.25 + 0.5 + 1 s.
    assert!(
        t.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        t.elapsed()
    );
    assert_cache_unchanged(&f, &before);
}

#[test]
fn stalled_feed_times_out_without_retry() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    bump(&f, CHANGED);
    server.set_fault("/feed.xml", Fault::Stall);
    let t = Instant::now();
    let r = fetch(&f, &server.url(), &["--read-timeout", "0.5"]).expect(1);
    let elapsed = t.elapsed();
    assert_mentions(&r, "timed out");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(count(&server.requests(), "/feed.xml"), 1);
    assert_cache_unchanged(&f, &before);
}

#[test]
fn request_timeout_bounds_a_slow_answer() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    bump(&f, CHANGED);
    // Each answer takes 3 s: within the 30 s read timeout, over the request timeout.
    server.set_delay(Duration::from_secs(3));
    let t = Instant::now();
    let r = fetch(&f, &server.url(), &["--request-timeout", "0.5"]).expect(1);
    assert_mentions(&r, "timed out");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(count(&server.requests(), "/feed.xml"), 1);
    assert_cache_unchanged(&f, &before);
}

#[test]
fn document_stalling_midway_times_out() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    server.set_fault(CHANGED_PATH, Fault::StallBody);
    let t = Instant::now();
    let r = fetch(&f, &server.url(), &["--read-timeout", "0.5"]).expect(1);
    assert_mentions(&r, "timed out");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(count(&server.requests(), CHANGED_PATH), 1);
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn endless_document_stops_at_the_declared_size() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    server.set_fault(CHANGED_PATH, Fault::Endless);
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, "longer than");
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn endless_feed_stops_at_the_feed_limit() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    bump(&f, CHANGED);
    server.set_fault("/feed.xml", Fault::Endless);
    let t = Instant::now();
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, "over the limit");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(count(&server.requests(), "/feed.xml"), 1);
    assert_cache_unchanged(&f, &before);
}

#[test]
fn document_longer_than_declared_is_refused() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    server.set_fault(CHANGED_PATH, Fault::Append(b"<!-- extra -->\n".to_vec()));
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, "longer than");
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn tampered_feed_is_refused() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    bump(&f, CHANGED);
    let xml = std::fs::read(f.feed().join("feed.xml")).unwrap();
    server.set_fault("/feed.xml", Fault::Body(flip_after(&xml, "publisher=\"")));
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, "feed.xml");
    assert_cache_unchanged(&f, &before);
}

#[test]
fn document_with_another_sha256_is_refused() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    let doc = std::fs::read(f.feed().join("mitigations/AM-2021-0003.xml")).unwrap();
    let tampered = flip_after(&doc, "<title>");
    assert_eq!(tampered.len(), doc.len());
    server.set_fault(CHANGED_PATH, Fault::Body(tampered));
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, CHANGED);
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn document_with_another_documents_signature_is_refused() {
    let (f, server) = primed();
    let before = snapshot(&f.cache());
    let sha = bump(&f, CHANGED);
    let other = std::fs::read(f.feed().join("mitigations/AM-2021-0001.xml.minisig")).unwrap();
    server.set_fault("/mitigations/AM-2021-0003.xml.minisig", Fault::Body(other));
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, CHANGED);
    assert_document_failure_kept_cache(&f, &before, &sha);
}

#[test]
fn expired_feed_is_refused() {
    let f = Fixture::samples();
    // A feed generated long ago that is still valid for a week...
    let week = (chrono::Utc::now() + chrono::TimeDelta::days(7))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    republish(
        &f,
        &[
            "--retire",
            "AM-2020-0007",
            "--generated",
            "2020-01-01T00:00:00Z",
            "--expires",
            &week,
        ],
    );
    let server = FeedServer::start(&f.feed());
    fetch(&f, &server.url(), &[]).expect(0);
    let before = snapshot(&f.cache());
    // ...then a newer one that expired long ago.
    bump(&f, CHANGED);
    republish(
        &f,
        &[
            "--retire",
            "AM-2020-0007",
            "--generated",
            "2020-01-02T00:00:00Z",
            "--expires",
            "2020-01-09T00:00:00Z",
        ],
    );
    let r = fetch(&f, &server.url(), &[]).expect(3);
    assert_mentions(&r, "expired");
    assert_cache_unchanged(&f, &before);
}

#[test]
fn bad_network_options_are_usage_errors() {
    let f = Fixture::samples();
    for (option, value) in [
        ("--read-timeout", "abc"),
        ("--read-timeout", "-1"),
        ("--connect-timeout", "NaN"),
        ("--request-timeout", "inf"),
        ("--read-timeout", "1e30"),
        ("--retries", "-1"),
        ("--jobs", "0"),
    ] {
        let arg = format!("{option}={value}");
        let r = fetch_env(&f, "http://127.0.0.1:9/", &f.cache(), &[&arg], &[]).expect(2);
        assert!(r.stderr.contains(option), "{arg}: {}", r.stderr);
        assert!(!f.cache().exists(), "{arg}: the cache was created");
    }
}

#[test]
fn an_unusable_proxy_or_ca_file_is_a_usage_error() {
    let f = Fixture::samples();
    // Only an HTTP (CONNECT) proxy is supported: a SOCKS one is refused up front.
    let r = fetch_env(
        &f,
        "https://vendor.example/feed/",
        &f.cache(),
        &[],
        &[("HTTPS_PROXY", "socks5://127.0.0.1:1080")],
    )
    .expect(2);
    assert!(r.stderr.contains("only an HTTP proxy"), "{}", r.stderr);
    // A --ca-file that holds no certificate.
    let pem = f.path("not-a-ca.pem");
    std::fs::write(&pem, "hello\n").unwrap();
    let arg = format!("--ca-file={}", pem.display());
    let r = fetch_env(&f, "https://vendor.example/feed/", &f.cache(), &[&arg], &[]).expect(2);
    assert!(r.stderr.contains("no PEM certificate"), "{}", r.stderr);
    assert!(!f.cache().exists(), "the cache was created");
}

#[test]
fn plain_http_to_another_host_needs_allow_http() {
    let f = Fixture::samples();
    let proxy = Proxy::start();
    for url in [
        "http://example.invalid/feed/",
        "http://10.1.2.3:8080/feed.xml",
        "http://localhost.example/feed/",
        "http://127.0.0.1.example/feed/",
        "http://[::2]/feed/",
    ] {
        // Any connection would go through the proxy: it must see nothing.
        let r = fetch_env(
            &f,
            url,
            &f.cache(),
            &[],
            &[("HTTP_PROXY", &proxy.url()), ("ALL_PROXY", &proxy.url())],
        )
        .expect(2);
        assert_mentions(&r, "--allow-http");
        assert!(!f.cache().exists(), "{url}: the cache was created");
    }
    assert_eq!(proxy.requests(), Vec::<String>::new());
}

#[test]
fn loopback_http_needs_no_allow_http() {
    let f = Fixture::samples();
    // A port nothing listens on: the fetch gets as far as connecting, and fails there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for host in ["127.0.0.1", "127.0.0.2", "[::1]", "localhost", "LocalHost"] {
        let url = format!("http://{host}:{port}/");
        let r = fetch_env(&f, &url, &f.path(host), &["--retries", "0"], &[]).expect(1);
        assert!(!r.stderr.contains("--allow-http"), "{url}: {}", r.stderr);
    }
}

#[test]
fn allow_http_lets_plain_http_through() {
    let f = Fixture::samples();
    let proxy = Proxy::start();
    // The test proxy answers 502 for any host that is not loopback.
    let r = fetch_env(
        &f,
        "http://vendor.example/feed/",
        &f.cache(),
        &["--allow-http", "--retries", "0"],
        &[("HTTP_PROXY", &proxy.url()), ("NO_PROXY", "other.example")],
    )
    .expect(1);
    assert!(!r.stderr.contains("refusing plain http"), "{}", r.stderr);
    assert_eq!(proxy.connects(), ["vendor.example:80"]);
    assert!(!f.cache().join("feed.xml").exists());
}

#[test]
fn http_proxies_from_the_environment() {
    let f = Fixture::samples();
    let server = FeedServer::start(&f.feed());
    let (proxy, other) = (Proxy::start(), Proxy::start());
    let target = format!("127.0.0.1:{}", server.port());
    let (p, o) = (proxy.url(), other.url());
    let (p, o) = (p.as_str(), o.as_str());
    // (case, variables, whether `proxy` carries the fetch)
    let cases: [(&str, Env<'_>, bool); 7] = [
        ("HTTP_PROXY", &[("HTTP_PROXY", p)], true),
        ("http_proxy", &[("http_proxy", p)], true),
        (
            "ALL_PROXY fallback",
            &[("ALL_PROXY", p), ("HTTPS_PROXY", o)],
            true,
        ),
        ("HTTPS_PROXY is for https", &[("HTTPS_PROXY", p)], false),
        (
            "NO_PROXY exact host",
            &[("HTTP_PROXY", p), ("NO_PROXY", "127.0.0.1")],
            false,
        ),
        (
            "no_proxy list",
            &[("http_proxy", p), ("no_proxy", "vendor.example,127.0.0.1")],
            false,
        ),
        ("NO_PROXY *", &[("ALL_PROXY", p), ("NO_PROXY", "*")], false),
    ];
    for (n, (name, env, proxied)) in cases.iter().enumerate() {
        let before = proxy.connects().len();
        server.clear_log();
        let cache = f.path(&format!("cache{n}"));
        let r = fetch_env(&f, &server.url(), &cache, &["--json"], env).expect(0);
        assert_eq!(report(&r)["new"], ids(&SAMPLE_IDS), "{name}");
        assert_eq!(server.requests().len(), 18, "{name}");
        let connects = proxy.connects()[before..].to_vec();
        if *proxied {
            assert!(!connects.is_empty(), "{name}: the proxy was not used");
            assert!(
                connects.iter().all(|c| *c == target),
                "{name}: {connects:?}"
            );
        } else {
            assert_eq!(connects, Vec::<String>::new(), "{name}");
        }
    }
    assert_eq!(other.requests(), Vec::<String>::new());
    // The proxy only ever saw CONNECT.
    assert!(proxy.requests().iter().all(|l| l.starts_with("CONNECT ")));
}

#[test]
fn https_with_a_pinned_ca_and_through_a_proxy() {
    let f = Fixture::samples();
    let tls = TestTls::generate();
    let ca = f.path("ca.pem");
    tls.write_ca(&ca);
    let ca = ca.to_str().unwrap();
    let server = FeedServer::start_tls(&f.feed(), &tls);
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"));

    let r = fetch_env(&f, &url, &f.cache(), &["--json", "--ca-file", ca], &[]).expect(0);
    let v = report(&r);
    assert_eq!(v["new"], ids(&SAMPLE_IDS));
    assert_eq!(v["feed"], format!("{url}feed.xml"));
    assert_eq!(server.requests().len(), 18);

    // HTTPS_PROXY carries https; HTTP_PROXY does not.
    let (proxy, other) = (Proxy::start(), Proxy::start());
    let r = fetch_env(
        &f,
        &url,
        &f.path("cache-proxied"),
        &["--json", "--ca-file", ca],
        &[("HTTPS_PROXY", &proxy.url()), ("HTTP_PROXY", &other.url())],
    )
    .expect(0);
    assert_eq!(report(&r)["new"], ids(&SAMPLE_IDS));
    let connects = proxy.connects();
    assert!(!connects.is_empty());
    let target = format!("127.0.0.1:{}", server.port());
    assert!(connects.iter().all(|c| *c == target), "{connects:?}");
    assert_eq!(other.requests(), Vec::<String>::new());
}

#[test]
fn https_with_an_untrusted_certificate_fails() {
    let f = Fixture::samples();
    let tls = TestTls::generate();
    let server = FeedServer::start_tls(&f.feed(), &tls);
    let wrong = f.path("other-ca.pem");
    TestTls::generate().write_ca(&wrong);
    let system = Vec::<&str>::new();
    let pinned = vec!["--ca-file", wrong.to_str().unwrap()];
    for (n, extra) in [system, pinned].iter().enumerate() {
        let cache = f.path(&format!("cache{n}"));
        let r = fetch_env(&f, &server.url(), &cache, extra, &[]).expect(1);
        let msg = r.stderr.to_ascii_lowercase();
        assert!(
            msg.contains("certificate") || msg.contains("tls"),
            "{extra:?}: {}",
            r.stderr
        );
        assert!(!cache.join("feed.xml").exists());
    }
    // No request ever got through the handshake.
    assert_eq!(server.requests(), Vec::<Request>::new());
    // A certificate failure is not retried: one connection per fetch.
    assert_eq!(server.connection_count(), 2);
}

#[test]
fn sigkill_midway_leaves_only_verified_objects() {
    const N: usize = 300;
    let f = Fixture::empty();
    let ids: Vec<String> = (1..=N).map(|i| format!("AM-2030-{i:04}")).collect();
    for id in &ids {
        std::fs::write(
            f.feed().join(format!("mitigations/{id}.xml")),
            mitigation_xml(id, 1),
        )
        .unwrap();
    }
    f.publish(&[]);
    let server = FeedServer::start(&f.feed());
    server.set_delay(Duration::from_millis(3));

    let mut child = fetch_command(&f, &server.url(), &f.cache(), &["--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while server.request_count() < 200 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "only {} requests after 30 s",
            server.request_count()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the fetch ended ({status}) before it could be killed, after {} requests",
                server.request_count()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_after = server.request_count();

    assert!(
        !f.cache().join("feed.xml").exists(),
        "the killed fetch committed a feed"
    );
    let stored = assert_objects_verified(&f.cache());
    assert!(stored > 0, "nothing was stored in {killed_after} requests");
    // A crash may leave temporary files; the next fetch removes them (planted here so
    // that is checked whatever the kill left).
    std::fs::write(f.cache().join(".airlock-tmp-planted"), b"x").unwrap();
    std::fs::write(f.cache().join("objects/.airlock-tmp-planted"), b"x").unwrap();

    server.set_delay(Duration::ZERO);
    server.clear_log();
    let r = fetch_env(&f, &server.url(), &f.cache(), &["--json"], &[]).expect(0);
    let v = report(&r);
    assert_eq!(v["new"].as_array().unwrap().len(), N);
    assert_eq!(leftovers(&f.cache()), Vec::<PathBuf>::new());
    assert_eq!(assert_objects_verified(&f.cache()), N);
    let documents = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/mitigations/"))
        .count();
    assert!(documents < 2 * N, "{documents} document requests");
    assert_eq!(
        documents,
        2 * (N - stored),
        "{stored} documents were stored before the kill; only the others should travel"
    );
    eprintln!(
        "killed after {killed_after} requests with {stored} documents stored; the second fetch made {documents} document requests"
    );
    f.build(&f.path("after-kill.airlock"), &[]).expect(0);
}

#[test]
fn feed_server_binary_prints_its_url_and_serves() {
    use std::io::{BufRead, BufReader, Read, Write};
    let f = Fixture::samples();
    let mut child = Command::new(env!("CARGO_BIN_EXE_feed-server"))
        .arg(f.feed())
        .args(["--delay-ms", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.strip_suffix('/'))
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .parse()
        .unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let feed = std::fs::read(f.feed().join("feed.xml")).unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(got.ends_with(&feed));
    // And the bundler fetches from it.
    let v = report(&fetch(&f, &url, &[]).expect(0));
    assert_eq!(v["new"], ids(&SAMPLE_IDS));
    child.kill().unwrap();
    child.wait().unwrap();

    let usage = Command::new(env!("CARGO_BIN_EXE_feed-server"))
        .arg("--port")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: feed-server DIR"));
}
