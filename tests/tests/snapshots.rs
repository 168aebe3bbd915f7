//! Snapshot tests (insta) of what an operator sees: `--help` of every program and
//! subcommand and `--version`; the text output of the main commands of the three
//! binaries (stdout, stderr and exit code together); and the error messages of
//! representative failures (what happened, what to do, exit code). The commands
//! run as the operator types them, with a fixed environment (`NO_COLOR=1`,
//! `COLUMNS=100`, `USER=operator`, no terminal on stdin, stdout or stderr, so no
//! colour, no prompt and no progress bar), and every snapshot starts with the
//! command line it shows. Inputs are pinned where the tools allow it (the shipped
//! TEST-ONLY keys, `--generated` and `--created` times), so bundle ids and key
//! ids stay real; what still varies (temporary paths, the current time, random
//! host, approver and ledger ids, run ids, hashes over those) is filtered to
//! `[PLACEHOLDERS]` before comparison, see [`Scrub`].
//!
//! After an intended change of an output, regenerate the snapshots and read the
//! diff of every changed `.snap` file under `tests/tests/snapshots/` before
//! committing it:
//!
//! ```text
//! cargo build --workspace && INSTA_UPDATE=always cargo test -p airlock-tests --test snapshots
//! ```
//!
//! (or `cargo insta test -p airlock-tests --test snapshots --review`). Under
//! `CI=true` a missing or different snapshot fails and nothing is written; a
//! `.snap.new` file left in the directory fails [`no_pending_snapshots`].
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::keys::PublicKey;
use airlock_tests::{Fixture, Host, Run, bin, copy_dir, copy_tree, listed_subcommands, root, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Pinned times: the feed is generated and the bundles created in the past, and
/// both stay valid long after any machine's clock.
const GENERATED: &str = "2025-01-01T00:00:00Z";
const CREATED: &str = "2025-01-02T00:00:00Z";
const EXPIRES: &str = "2099-01-01T00:00:00Z";

// ---------------------------------------------------------------------------
// Running commands and snapshotting what they show

/// A command line as the operator types it: the program and its arguments.
struct Cmd {
    program: &'static str,
    args: Vec<String>,
}

/// `PROGRAM ARGS...` with arguments given as anything printable (`&str`, `String`,
/// or a path through [`p`]).
macro_rules! cmd {
    ($program:expr $(, $arg:expr)* $(,)?) => {
        Cmd { program: $program, args: vec![$(String::from($arg)),*] }
    };
}

/// A path as a command-line argument (temporary paths are UTF-8).
fn p(path: impl AsRef<Path>) -> String {
    path.as_ref().to_str().unwrap().to_owned()
}

impl Cmd {
    /// `airlock-applier --profile PROFILE ARGS...` for `h`.
    fn applier(h: &Host, args: &[&str]) -> Cmd {
        let mut all = vec!["--profile".to_owned(), p(h.profile())];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Cmd {
            program: "airlock-applier",
            args: all,
        }
    }

    /// `airlock-ledger --profile PROFILE ARGS...` for `h`.
    fn ledger(h: &Host, args: &[&str]) -> Cmd {
        Cmd {
            program: "airlock-ledger",
            ..Cmd::applier(h, args)
        }
    }

    /// Runs the command with the operator's fixed environment: nothing inherited
    /// but `PATH` (so `SUDO_USER`, `AIRLOCK_PROFILE`, `AIRLOCK_PASSWORD`,
    /// `CLICOLOR_FORCE`, a narrow `COLUMNS` and the like cannot leak in), stdin
    /// not a terminal. clap (`wrap_help`, `max_term_width = 100`) asks
    /// stdout, stderr and then stdin for a terminal size, and only then reads
    /// `COLUMNS`: with none of them a terminal, help is wrapped at exactly 100
    /// columns on every machine.
    fn run(&self) -> Run {
        let mut c = Command::new(bin(self.program));
        c.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("USER", "operator")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        run(&mut c)
    }

    /// Runs the command, which must exit 0 (setup steps).
    #[track_caller]
    fn ok(&self) -> Run {
        self.run().expect(0)
    }

    /// The command line with `scrub` applied to each argument, then shell-quoted
    /// where needed (so a temporary directory with a space in it changes nothing).
    fn line(&self, scrub: &Scrub) -> String {
        std::iter::once(self.program.to_owned())
            .chain(self.args.iter().map(|a| {
                let a = scrub.text(a);
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("'{}'", a.replace('\'', r"'\''"))
                } else {
                    a
                }
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What varies between runs and machines, and what stands for it in a snapshot.
///
/// First, known values are replaced literally (longest first): each temporary
/// directory (`[TMP]` for the bundler's side, `[HOST]` for a server's), the
/// workspace root (`[ROOT]`), the package version (`[VERSION]`), and random ids
/// read back from the files that hold them (`[HOST_KEY_ID]`, `[LEDGER_ID]`,
/// `[APPROVER_KEY_ID]`, `[NEW_KEY_ID]`). Then insta's regex filters replace
/// what cannot be known in advance:
///
/// - `[TIME]`: an RFC 3339 time within the last ten minutes (ledger times, apply
///   times: what the commands of this test wrote). Pinned times (2025, 2099, the
///   2020 of an expired bundle) and the fixed examples in messages and help
///   (`2026-11-28T08:00:00Z`) are kept, whatever the date the test runs on.
/// - `[HASH]`: 64 hex digits (plan hashes cover the temporary host root; ledger
///   hashes cover entry times).
/// - `[RUN]`: the random id of an apply or rollback run.
/// - `[HEX]…`: hex cut off inside a `DETAIL` cell of the ledger's table (`log`):
///   a ledger id or hash prefix, which the literal replacement cannot recognise
///   (the `BUNDLE` column, pinned, is kept).
///
/// No durations are printed by these commands (only `fetch` over HTTP names
/// seconds, as stable timeouts), user names are pinned by `USER=operator`, and
/// every profile names its host, so none of those needs a filter.
struct Scrub {
    literals: Vec<(String, String)>,
}

impl Scrub {
    fn new() -> Scrub {
        let mut s = Scrub {
            literals: Vec::new(),
        };
        s.add(p(root()), "[ROOT]");
        s.add(format!(" {}\n", env!("CARGO_PKG_VERSION")), " [VERSION]\n");
        s
    }

    /// Replace `value` with `placeholder`.
    fn add(&mut self, value: impl Into<String>, placeholder: &str) -> &mut Scrub {
        let value = value.into();
        assert!(!value.is_empty());
        self.literals.push((value, placeholder.to_owned()));
        self.literals
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        self
    }

    /// Replace a temporary directory (and its canonical form) with `placeholder`.
    fn dir(&mut self, dir: &Path, placeholder: &str) -> &mut Scrub {
        self.add(p(dir), placeholder);
        let canonical = p(dir.canonicalize().unwrap());
        if canonical != p(dir) {
            self.add(canonical, placeholder);
        }
        self
    }

    /// Replace the id of the public key in `file` with `placeholder`.
    fn key(&mut self, file: &Path, placeholder: &str) -> &mut Scrub {
        let id = PublicKey::from_file(file).unwrap().id().to_string();
        self.add(id, placeholder)
    }

    /// A fixture (`[TMP]`) and a host (`[HOST]`) with its host key and ledger id.
    fn host(f: &Fixture, h: &Host) -> Scrub {
        let mut s = Scrub::new();
        s.dir(f.dir.path(), "[TMP]").dir(h.dir.path(), "[HOST]");
        if h.state("host.pub").exists() {
            s.key(&h.state("host.pub"), "[HOST_KEY_ID]");
            let v = Cmd::ledger(h, &["verify", "--json"]).ok();
            let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
            s.add(report["ledger"].as_str().unwrap(), "[LEDGER_ID]");
        }
        s
    }

    fn text(&self, text: &str) -> String {
        self.literals
            .iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    }

    /// Runs `cmd` and compares what it showed with snapshot `name`.
    #[track_caller]
    fn snap(&self, name: &str, cmd: &Cmd) -> Run {
        let r = cmd.run();
        self.check(name, cmd, &r);
        r
    }

    /// Compares the command line, exit code, stdout and stderr with snapshot `name`.
    #[track_caller]
    fn check(&self, name: &str, cmd: &Cmd, r: &Run) {
        let shown = format!(
            "$ {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            cmd.line(self),
            r.code,
            ended(&r.stdout),
            ended(&r.stderr)
        );
        settings().bind(|| insta::assert_snapshot!(name, self.text(&shown)));
    }
}

/// `s`, marking a last line without its newline (a stream must end with one).
fn ended(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_owned()
    } else {
        format!("{s}\n[no newline at end]\n")
    }
}

/// The regex filters every snapshot goes through (see [`Scrub`]).
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    // The minutes of the last ten, as RFC 3339 prefixes ("2026-11-28T19:01").
    let now = chrono::Utc::now();
    let minutes: Vec<String> = (-10..=1)
        .map(|m| {
            (now + chrono::TimeDelta::minutes(m))
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        })
        .collect();
    s.add_filter(
        &format!(
            r"\b(?:{})(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)",
            minutes.join("|")
        ),
        "[TIME]",
    );
    s.add_filter(r"\b[0-9a-f]{64}\b", "[HASH]");
    s.add_filter(r#"\b(run[ ":=]+)[0-9a-f]{16}\b"#, "${1}[RUN]");
    s.add_filter(r#"([":]|ledger )[0-9a-f]{3,}…"#, "${1}[HEX]…");
    s.add_filter(r#"([":]|key )[0-9A-F]{3,}…"#, "${1}[HEX]…");
    s
}

// ---------------------------------------------------------------------------
// Setup

/// The shipped sample feed published with the TEST-ONLY vendor key at pinned
/// times (AM-2020-0007 retired), fetched into the cache.
fn pinned() -> Fixture {
    let f = Fixture::empty();
    copy_dir(
        &root().join("samples/feed/mitigations"),
        &f.feed().join("mitigations"),
    );
    publish(&f, &f.feed()).ok();
    fetch(&f, &f.feed(), &f.cache()).ok();
    f
}

fn publish(f: &Fixture, feed: &Path) -> Cmd {
    cmd!(
        "airlock-bundler",
        "feed",
        "publish",
        p(feed),
        "--key",
        p(f.key("vendor.key")),
        "--retire",
        "AM-2020-0007",
        "--generated",
        GENERATED,
        "--expires",
        EXPIRES
    )
}

/// `fetch FEED --vendor-key VENDOR.pub --cache CACHE`.
fn fetch(f: &Fixture, feed: &Path, cache: &Path) -> Cmd {
    fetch_with_key(f, feed, "vendor.pub", cache)
}

/// `fetch FEED --vendor-key KEY --cache CACHE`, KEY one of the fixture's keys.
fn fetch_with_key(f: &Fixture, feed: &Path, key: &str, cache: &Path) -> Cmd {
    cmd!(
        "airlock-bundler",
        "fetch",
        p(feed),
        "--vendor-key",
        p(f.key(key)),
        "--cache",
        p(cache)
    )
}

/// `build --created CREATED --expires EXPIRES --out DIR/NAME [--channel prod] EXTRA`.
fn build(f: &Fixture, name: &str, extra: &[&str]) -> Cmd {
    build_at(f, name, CREATED, EXPIRES, extra)
}

/// `build --created CREATED --expires EXPIRES --out DIR/NAME [--channel prod] EXTRA`
/// with the given times.
fn build_at(f: &Fixture, name: &str, created: &str, expires: &str, extra: &[&str]) -> Cmd {
    let mut c = cmd!(
        "airlock-bundler",
        "build",
        "--cache",
        p(f.cache()),
        "--key",
        p(f.key("release.key")),
        "--created",
        created,
        "--expires",
        expires,
        "--out",
        p(f.path(name))
    );
    if !extra.contains(&"--channel") {
        c.args.extend(["--channel".into(), "prod".into()]);
    }
    c.args.extend(extra.iter().map(|a| (*a).to_owned()));
    c
}

fn verify(f: &Fixture, bundle: &Path) -> Cmd {
    cmd!(
        "airlock-bundler",
        "verify",
        p(bundle),
        "--release-key",
        p(f.key("release.pub")),
        "--vendor-key",
        p(f.key("vendor.pub"))
    )
}

/// A bundle that expired in 2020, a day after it was built (the next seq).
fn expired_bundle(f: &Fixture) -> PathBuf {
    build_at(f, "old.airlock", "2020-01-01T00:00:00Z", "1d", &[]).ok();
    f.path("old.airlock")
}

/// A bundle for the lab host: the pinned sample bundle without AM-2024-0001
/// (it masks a unit, which needs `systemctl`), so the flow runs anywhere.
fn lab_bundle(f: &Fixture, name: &str) -> PathBuf {
    build(f, name, &["--exclude", "AM-2024-0001"]).ok();
    f.path(name)
}

/// An initialised copy of the sample lab host trusting `f`'s keys.
fn lab(f: &Fixture) -> Host {
    let h = Host::lab(f);
    Cmd::applier(&h, &["init", "-q"]).ok();
    h
}

/// `airlock-bundler keygen --role ROLE --no-password --out DIR`: the public key.
fn keygen(role: &str, dir: &Path) -> PathBuf {
    keygen_cmd(role, dir).ok();
    dir.join(format!("{role}.pub"))
}

/// `keygen --role ROLE --no-password --out DIR`.
fn keygen_cmd(role: &str, dir: &Path) -> Cmd {
    cmd!(
        "airlock-bundler",
        "keygen",
        "--role",
        role,
        "--no-password",
        "--out",
        p(dir)
    )
}

/// Edits the text of `file`; `from` must occur in it.
#[track_caller]
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

// ---------------------------------------------------------------------------
// --help and --version

/// The commands `--help` of `words` lists (without `help`), with their own
/// subcommands after them (`feed`, `feed publish`).
fn commands(program: &'static str, words: &[String]) -> Vec<Vec<String>> {
    let mut args = words.to_vec();
    args.push("--help".into());
    let help = Cmd { program, args }.ok().stdout;
    let mut out = Vec::new();
    for name in listed_subcommands(&help) {
        let mut sub = words.to_vec();
        sub.push(name);
        let nested = commands(program, &sub);
        out.push(sub);
        out.extend(nested);
    }
    out
}

#[test]
fn help_of_every_program_and_subcommand_and_version() {
    let known: [(&str, &[&str]); 3] = [
        (
            "airlock-bundler",
            &[
                "keygen",
                "feed",
                "feed publish",
                "fetch",
                "build",
                "inspect",
                "verify",
            ],
        ),
        (
            "airlock-applier",
            &[
                "init", "verify", "plan", "apply", "approve", "status", "rollback", "sync",
            ],
        ),
        (
            "airlock-ledger",
            &["verify", "log", "show", "export", "checkpoint", "report"],
        ),
    ];
    let scrub = Scrub::new();
    for (program, subs) in known {
        let found: Vec<String> = commands(program, &[]).iter().map(|w| w.join(" ")).collect();
        assert_eq!(
            found, subs,
            "{program}: the subcommands changed; add the new one to this list, run the \
             snapshot update command and read its new help snapshot"
        );
        scrub.snap(&format!("help__{program}"), &cmd!(program, "--help"));
        scrub.snap(&format!("version__{program}"), &cmd!(program, "--version"));
        for sub in subs {
            let mut c = Cmd {
                program,
                args: sub.split(' ').map(str::to_owned).collect(),
            };
            c.args.push("--help".into());
            scrub.snap(&format!("help__{program}-{}", sub.replace(' ', "-")), &c);
        }
    }
}

// ---------------------------------------------------------------------------
// Main outputs

#[test]
fn bundler_outputs() {
    let f = Fixture::empty();
    copy_dir(
        &root().join("samples/feed/mitigations"),
        &f.feed().join("mitigations"),
    );
    let mut scrub = Scrub::new();
    scrub.dir(f.dir.path(), "[TMP]");

    let out = f.path("new-keys");
    let keygen = keygen_cmd("release", &out);
    let r = keygen.run();
    scrub.key(&out.join("release.pub"), "[NEW_KEY_ID]");
    scrub.check("bundler_keygen", &keygen, &r);

    scrub.snap("bundler_feed_publish", &publish(&f, &f.feed()));
    let fetch = fetch(&f, &f.feed(), &f.cache());
    scrub.snap("bundler_fetch_first", &fetch);
    scrub.snap("bundler_fetch_unchanged", &fetch);
    scrub.snap("bundler_build", &build(&f, "samples.airlock", &[]));
    let bundle = f.path("samples.airlock");
    scrub.snap(
        "bundler_inspect",
        &cmd!("airlock-bundler", "inspect", p(&bundle)),
    );
    scrub.snap("bundler_verify", &verify(&f, &bundle));
}

#[test]
fn applier_and_ledger_outputs() {
    let f = pinned();
    let bundle = lab_bundle(&f, "lab.airlock");
    let h = Host::lab(&f);
    let init = Cmd::applier(&h, &["init"]);
    let r = init.run();
    let scrub = Scrub::host(&f, &h);
    scrub.check("applier_init", &init, &r);
    scrub.snap("applier_init_again", &init);
    let b = p(&bundle);
    scrub.snap("applier_verify", &Cmd::applier(&h, &["verify", &b]));
    scrub.snap("applier_plan", &Cmd::applier(&h, &["plan", &b]));

    scrub.snap("applier_apply", &Cmd::applier(&h, &["apply", &b, "--yes"]));
    scrub.snap("applier_status_clean", &Cmd::applier(&h, &["status"]));

    scrub.snap("ledger_verify", &Cmd::ledger(&h, &["verify"]));
    scrub.snap("ledger_log", &Cmd::ledger(&h, &["log"]));
    // Entry 11: mitigation.applied of AM-2022-0002 (the app.ini edit).
    scrub.snap("ledger_show", &Cmd::ledger(&h, &["show", "11"]));
    scrub.snap("ledger_checkpoint", &Cmd::ledger(&h, &["checkpoint"]));

    // Drift: someone edits a file airlock manages.
    let sysctl = h.file("/etc/sysctl.conf");
    let mut text = std::fs::read_to_string(&sysctl).unwrap();
    text.push_str("vm.swappiness = 10\n");
    std::fs::write(&sysctl, text).unwrap();
    scrub.snap("applier_status_drift", &Cmd::applier(&h, &["status"]));
    scrub.snap(
        "applier_rollback",
        &Cmd::applier(&h, &["rollback", "AM-2022-0002"]),
    );
}

/// On a second host (so that the ledger shown above holds no plan file path).
#[test]
fn applier_approve_and_sync_outputs() {
    let f = pinned();
    let bundle = lab_bundle(&f, "lab.airlock");
    let b = p(&bundle);
    let h = lab(&f);
    let mut scrub = Scrub::host(&f, &h);

    // Approve: the approver signs the plan file on their own machine.
    let approver = keygen("approver", &f.path("approver"));
    scrub.key(&approver, "[APPROVER_KEY_ID]");
    let plan = f.path("plan.json");
    Cmd::applier(&h, &["plan", &b, "-q", "--out", &p(&plan)]).ok();
    scrub.snap(
        "applier_approve",
        &cmd!(
            "airlock-applier",
            "approve",
            p(&plan),
            "--key",
            p(f.path("approver/approver.key")),
            "--ticket",
            "CHG-4711"
        ),
    );

    let inbox = h.dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::copy(&bundle, inbox.join("lab.airlock")).unwrap();
    let sync = Cmd::applier(&h, &["sync", "--inbox", &p(&inbox)]);
    scrub.snap("applier_sync_applied", &sync);
    scrub.snap("applier_sync_nothing_new", &sync);
}

// ---------------------------------------------------------------------------
// Error messages

#[test]
fn bundler_errors() {
    let f = pinned();
    let mut scrub = Scrub::new();
    scrub.dir(f.dir.path(), "[TMP]");
    let cache2 = f.path("cache2");

    scrub.snap(
        "error_bundler_fetch_missing_vendor_key",
        &fetch_with_key(&f, &f.feed(), "missing.pub", &cache2),
    );
    scrub.snap(
        "error_bundler_fetch_wrong_vendor_key",
        &fetch_with_key(&f, &f.feed(), "release.pub", &cache2),
    );

    // A document changed after the vendor signed it.
    let tampered = f.path("tampered-feed");
    copy_tree(&f.feed(), &tampered);
    edit(
        &tampered.join("mitigations/AM-2022-0001.xml"),
        "value=\"0\"",
        "value=\"1\"",
    );
    scrub.snap(
        "error_bundler_fetch_tampered_document",
        &fetch(&f, &tampered, &cache2),
    );

    // A feed that expired a week after it was generated, in 2020.
    let expired = f.path("expired-feed");
    copy_dir(
        &root().join("samples/feed/mitigations"),
        &expired.join("mitigations"),
    );
    cmd!(
        "airlock-bundler",
        "feed",
        "publish",
        p(&expired),
        "--key",
        p(f.key("vendor.key")),
        "--generated",
        "2020-01-01T00:00:00Z",
        "--expires",
        "7d"
    )
    .ok();
    scrub.snap(
        "error_bundler_fetch_expired_feed",
        &fetch(&f, &expired, &f.path("cache3")),
    );
    // The same feed into the cache that holds the newer one (2025).
    scrub.snap(
        "error_bundler_fetch_older_feed",
        &fetch(&f, &expired, &f.cache()),
    );

    // A document the vendor's publish refuses: no title.
    let bad = f.path("bad-feed");
    copy_dir(
        &root().join("samples/feed/mitigations"),
        &bad.join("mitigations"),
    );
    let doc = bad.join("mitigations/AM-2022-0001.xml");
    let text = std::fs::read_to_string(&doc).unwrap();
    let title = text.lines().find(|l| l.contains("<title>")).unwrap();
    std::fs::write(&doc, text.replace(&format!("{title}\n"), "")).unwrap();
    scrub.snap(
        "error_bundler_publish_invalid_document",
        &cmd!(
            "airlock-bundler",
            "feed",
            "publish",
            p(&bad),
            "--key",
            p(f.key("vendor.key"))
        ),
    );

    let empty = f.path("empty-cache");
    std::fs::create_dir(&empty).unwrap();
    scrub.snap(
        "error_bundler_build_empty_cache",
        &cmd!(
            "airlock-bundler",
            "build",
            "--cache",
            p(&empty),
            "--key",
            p(f.key("release.key")),
            "--channel",
            "prod",
            "--out",
            p(f.path("x.airlock"))
        ),
    );

    build(&f, "good.airlock", &["--seq", "5"]).ok();
    let good = f.path("good.airlock");
    scrub.snap(
        "error_bundler_build_lower_seq",
        &build(&f, "again.airlock", &["--seq", "4"]),
    );

    let bytes = std::fs::read(&good).unwrap();
    let truncated = f.path("truncated.airlock");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    scrub.snap(
        "error_bundler_verify_truncated_bundle",
        &verify(&f, &truncated),
    );
    scrub.snap(
        "error_bundler_verify_wrong_release_key",
        &cmd!(
            "airlock-bundler",
            "verify",
            p(&good),
            "--release-key",
            p(f.key("vendor.pub")),
            "--vendor-key",
            p(f.key("vendor.pub"))
        ),
    );
    scrub.snap(
        "error_bundler_verify_expired_bundle",
        &verify(&f, &expired_bundle(&f)),
    );
    scrub.snap(
        "error_bundler_inspect_not_a_bundle",
        &cmd!("airlock-bundler", "inspect", p(f.feed().join("feed.xml"))),
    );
    scrub.snap(
        "error_bundler_keygen_existing_key",
        &keygen_cmd("release", &f.path("keys")),
    );
}

#[test]
fn usage_errors() {
    let scrub = Scrub::new();
    for (name, c) in [
        ("bundler_no_command", cmd!("airlock-bundler")),
        (
            "bundler_unknown_command",
            cmd!("airlock-bundler", "frobnicate"),
        ),
        (
            "bundler_unknown_flag",
            cmd!("airlock-bundler", "build", "--frobnicate"),
        ),
        (
            "bundler_missing_required_arg",
            cmd!("airlock-bundler", "verify", "bundle.airlock"),
        ),
        (
            "bundler_bad_value",
            cmd!("airlock-bundler", "keygen", "--role", "admin", "--out", "k"),
        ),
        (
            "applier_rollback_without_ids",
            cmd!("airlock-applier", "rollback"),
        ),
        (
            "ledger_show_not_a_number",
            cmd!("airlock-ledger", "show", "last"),
        ),
        (
            "ledger_log_bad_since",
            cmd!("airlock-ledger", "log", "--since", "last-tuesday"),
        ),
    ] {
        scrub.snap(&format!("error_usage_{name}"), &c);
    }
}

#[test]
fn applier_errors() {
    let f = pinned();
    let bundle = lab_bundle(&f, "lab.airlock");
    let b = p(&bundle);

    // Profiles: missing, a field misspelt, a relative state_dir.
    let fresh = Host::lab(&f);
    let scrub = Scrub::host(&f, &fresh);
    scrub.snap(
        "error_applier_profile_not_found",
        &cmd!(
            "airlock-applier",
            "--profile",
            p(fresh.dir.path().join("missing.toml")),
            "status"
        ),
    );
    scrub.snap(
        "error_applier_not_initialised",
        &Cmd::applier(&fresh, &["verify", &b]),
    );
    let text = std::fs::read_to_string(fresh.profile()).unwrap();
    edit(&fresh.profile(), "channel = \"prod\"", "chanel = \"prod\"");
    scrub.snap(
        "error_applier_profile_unknown_field",
        &Cmd::applier(&fresh, &["init"]),
    );
    std::fs::write(fresh.profile(), &text).unwrap();
    let state_dir = format!("state_dir = \"{}\"", p(fresh.dir.path().join("state")));
    edit(
        &fresh.profile(),
        &state_dir,
        "state_dir = \"var/lib/airlock\"",
    );
    scrub.snap(
        "error_applier_profile_relative_state_dir",
        &Cmd::applier(&fresh, &["init"]),
    );

    let h = lab(&f);
    let scrub = Scrub::host(&f, &h);
    build(&f, "test.airlock", &["--channel", "test"]).ok();
    scrub.snap(
        "error_applier_verify_other_channel",
        &Cmd::applier(&h, &["verify", &p(f.path("test.airlock"))]),
    );
    scrub.snap(
        "error_applier_verify_expired_bundle",
        &Cmd::applier(&h, &["verify", &p(expired_bundle(&f))]),
    );
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() - 2048;
    bytes[at] ^= 0x01;
    let damaged = f.path("damaged.airlock");
    std::fs::write(&damaged, bytes).unwrap();
    scrub.snap(
        "error_applier_verify_tampered_bundle",
        &Cmd::applier(&h, &["verify", &p(&damaged)]),
    );
    scrub.snap(
        "error_applier_apply_without_yes",
        &Cmd::applier(&h, &["apply", &b]),
    );
    scrub.snap(
        "error_applier_rollback_not_applied",
        &Cmd::applier(&h, &["rollback", "AM-2022-0001"]),
    );

    // Applied, then a managed file edited by hand: rollback is refused.
    Cmd::applier(&h, &["apply", &b, "--yes", "-q"]).ok();
    edit(
        &h.file("/etc/sysctl.conf"),
        "kernel.unprivileged_userns_clone = 0",
        "kernel.unprivileged_userns_clone = 1",
    );
    scrub.snap(
        "error_applier_rollback_over_drift",
        &Cmd::applier(&h, &["rollback", "AM-2022-0001"]),
    );
    scrub.snap(
        "error_applier_sync_missing_inbox",
        &Cmd::applier(&h, &["sync", "--inbox", &p(h.dir.path().join("no-inbox"))]),
    );

    // A host that needs one approval from a trusted approver.
    let approver = keygen("approver", &f.path("approver"));
    let strict = Host::lab(&f);
    edit(
        &strict.profile(),
        "\n[trust]\n",
        &format!("\n[trust]\napprover_keys = [\"{}\"]\n", p(&approver)),
    );
    edit(
        &strict.profile(),
        "\n[policy]\n",
        "\n[policy]\napprovals_required = 1\n",
    );
    Cmd::applier(&strict, &["init", "-q"]).ok();
    let mut scrub = Scrub::host(&f, &strict);
    scrub.key(&approver, "[APPROVER_KEY_ID]");
    scrub.snap(
        "error_applier_apply_missing_approval",
        &Cmd::applier(&strict, &["apply", &b, "--yes"]),
    );
}

#[test]
fn ledger_errors() {
    let f = pinned();
    let bundle = lab_bundle(&f, "lab.airlock");
    let h = lab(&f);
    Cmd::applier(&h, &["verify", &p(&bundle)]).ok();
    let scrub = Scrub::host(&f, &h);

    scrub.snap(
        "error_ledger_missing_file",
        &cmd!(
            "airlock-ledger",
            "--db",
            p(h.dir.path().join("missing.db")),
            "verify"
        ),
    );
    scrub.snap(
        "error_ledger_show_no_such_entry",
        &Cmd::ledger(&h, &["show", "99"]),
    );

    // Someone with write access to the database edits entry 2 (bundle.verified)
    // and puts the append-only trigger back, so only the hash chain can tell.
    let conn = rusqlite::Connection::open(h.state("ledger.db")).unwrap();
    let trigger: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'entries_no_update'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute("DROP TRIGGER entries_no_update", []).unwrap();
    let n = conn
        .execute(
            "UPDATE entries SET detail = replace(detail, '\"mitigations\":7', '\"mitigations\":6') \
             WHERE seq = 2 AND instr(detail, '\"mitigations\":7') > 0",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    conn.execute(&trigger, []).unwrap();
    conn.close().unwrap();
    scrub.snap(
        "error_ledger_verify_tampered",
        &Cmd::ledger(&h, &["verify"]),
    );
}

/// A `.snap.new` file is a snapshot waiting for review, never to be committed.
#[test]
fn no_pending_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let pending: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".snap.new") || n.ends_with(".pending-snap"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        pending.is_empty(),
        "snapshots waiting for review in {}: {pending:?}; review them (cargo insta review) or \
         delete them",
        dir.display()
    );
}
