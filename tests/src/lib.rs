//! Helpers for the end-to-end tests: locate the real binaries built by
//! `cargo test --workspace`, run them, and set up feeds, caches and bundles in
//! temporary directories from the shipped samples.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod http;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Path of a workspace binary (`airlock-bundler`, ...) next to the test executable.
/// `cargo test --workspace` builds every package's binaries before running tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build --workspace` first)",
        p.display()
    );
    p
}

/// What a command did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `airlock-bundler` with `args`.
pub fn bundler<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(Command::new(bin("airlock-bundler")).args(args))
}

/// Runs `airlock-applier` with `args`.
pub fn applier<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(Command::new(bin("airlock-applier")).args(args))
}

/// Runs `airlock-ledger` with `args`.
pub fn ledger<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(Command::new(bin("airlock-ledger")).args(args))
}

/// Runs the test-only `ledger-fixture` tool (tests/src/bin/ledger-fixture.rs) with `args`.
pub fn fixture<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(Command::new(bin("ledger-fixture")).args(args))
}

/// Runs a prepared command.
pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.env_remove("AIRLOCK_PASSWORD").output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The subcommands a clap `--help` text lists under "Commands:" (without `help`).
pub fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // "  name  about", not an about's continuation line (indented further)
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_owned)
        .collect()
}

/// Whether an external tool is on PATH.
pub fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether an external tool is on PATH. Under `CI=true` a missing tool is a failure;
/// on a developer machine the test prints that it skipped.
pub fn require_tool(tool: &str, test: &str) -> bool {
    let found = on_path(tool);
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required in CI (.ci/run installs it) but is missing"
        );
        eprintln!("SKIPPED {test}: {tool} is not installed");
    }
    found
}

/// A temporary workspace with TEST-ONLY keys, a published copy of a feed, and a cache.
#[derive(Debug)]
pub struct Fixture {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A copy of `samples/feed` published with the TEST-ONLY vendor key (AM-2020-0007 retired),
    /// and the TEST-ONLY keys copied in.
    pub fn samples() -> Fixture {
        let f = Fixture::empty();
        copy_dir(
            &root().join("samples/feed/mitigations"),
            &f.feed().join("mitigations"),
        );
        f.publish(&["--retire", "AM-2020-0007"]);
        f
    }

    /// Keys only.
    pub fn empty() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        for role in ["vendor", "release"] {
            for ext in ["pub", "key"] {
                std::fs::copy(
                    root().join(format!("samples/keys/TEST-ONLY-{role}.{ext}")),
                    keys.join(format!("{role}.{ext}")),
                )
                .unwrap();
            }
        }
        std::fs::create_dir_all(dir.path().join("feed/mitigations")).unwrap();
        Fixture { dir }
    }

    /// `DIR/NAME`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// The feed directory.
    pub fn feed(&self) -> PathBuf {
        self.path("feed")
    }
    /// The cache directory.
    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }
    /// A key file (`vendor.pub`, `release.key`, ...).
    pub fn key(&self, name: &str) -> PathBuf {
        self.path("keys").join(name)
    }

    /// Changes document `id` in the feed directory from revision `from` to `to`
    /// (not yet published).
    pub fn set_revision(&self, id: &str, from: u64, to: u64) {
        let doc = self.feed().join(format!("mitigations/{id}.xml"));
        let text = std::fs::read_to_string(&doc).unwrap();
        let (old, new) = (format!("revision=\"{from}\""), format!("revision=\"{to}\""));
        assert!(text.contains(&old), "{} has no {old}", doc.display());
        std::fs::write(&doc, text.replacen(&old, &new, 1)).unwrap();
    }

    /// `feed publish` with extra args; must succeed.
    pub fn publish(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "feed".into(),
            "publish".into(),
            self.feed().into_os_string(),
            "--key".into(),
            self.key("vendor.key").into_os_string(),
        ];
        args.extend(extra.iter().map(Into::into));
        bundler(args).expect(0)
    }

    /// `airlock-bundler fetch SOURCE --vendor-key VENDOR.pub --cache CACHE`, with no
    /// proxy variables in its environment, not yet run.
    pub fn fetch_command(&self, source: impl AsRef<std::ffi::OsStr>, cache: &Path) -> Command {
        let mut cmd = Command::new(bin("airlock-bundler"));
        cmd.arg("fetch")
            .arg(source)
            .arg("--vendor-key")
            .arg(self.key("vendor.pub"))
            .arg("--cache")
            .arg(cache);
        http::without_proxies(&mut cmd);
        cmd
    }

    /// `fetch` of the feed into the cache (exit code returned).
    pub fn fetch(&self) -> Run {
        bundler([
            "fetch".as_ref(),
            self.feed().as_os_str(),
            "--vendor-key".as_ref(),
            self.key("vendor.pub").as_os_str(),
            "--cache".as_ref(),
            self.cache().as_os_str(),
        ])
    }

    /// `build` into `out` with extra args (exit code returned).
    pub fn build(&self, out: &Path, extra: &[&str]) -> Run {
        let mut args: Vec<std::ffi::OsString> = vec![
            "build".into(),
            "--cache".into(),
            self.cache().into(),
            "--key".into(),
            self.key("release.key").into(),
            "--out".into(),
            out.into(),
        ];
        if !extra.contains(&"--channel") {
            args.extend(["--channel".into(), "prod".into()]);
        }
        args.extend(extra.iter().map(Into::into));
        bundler(args)
    }

    /// `verify` of `bundle` with the fixture's keys (exit code returned).
    pub fn verify(&self, bundle: &Path) -> Run {
        bundler([
            "verify".as_ref(),
            bundle.as_os_str(),
            "--release-key".as_ref(),
            self.key("release.pub").as_os_str(),
            "--vendor-key".as_ref(),
            self.key("vendor.pub").as_os_str(),
        ])
    }
}

/// An isolated server in a temporary directory: `host.toml` names host `exch01`,
/// `state_dir` DIR/state, a channel, and (optionally) trusts a fixture's TEST-ONLY
/// release and vendor keys.
#[derive(Debug)]
pub struct Host {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Host {
    /// A host on `channel`, trusting `keys`' TEST-ONLY keys when given.
    pub fn new(channel: &str, keys: Option<&Fixture>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let trust = keys.map_or(String::new(), |f| {
            format!(
                "\n[trust]\nrelease_keys = [\"{}\"]\nvendor_keys = [\"{}\"]\n",
                f.key("release.pub").display(),
                f.key("vendor.pub").display()
            )
        });
        std::fs::write(
            dir.path().join("host.toml"),
            format!(
                "host = \"exch01\"\nstate_dir = \"{}\"\n{trust}\n[policy]\nchannel = \"{channel}\"\n",
                dir.path().join("state").display()
            ),
        )
        .unwrap();
        Host { dir }
    }
    /// The sample lab server: `samples/hosts/lab01` copied to DIR/root, and
    /// `samples/profiles/lab.toml` with `root`, `state_dir` and `[trust]` pointed
    /// at the copy, DIR/state and `keys`' TEST-ONLY keys.
    pub fn lab(keys: &Fixture) -> Host {
        Host::sample("lab", "lab01", keys)
    }

    /// A sample host: `samples/hosts/ROOT` copied to DIR/root and
    /// `samples/profiles/PROFILE.toml` with `root` and `state_dir` pointed at the
    /// copy and DIR/state, `[trust]` replaced by `keys`' TEST-ONLY release and
    /// vendor keys, and no approvals required.
    pub fn sample(profile: &str, root_dir: &str, keys: &Fixture) -> Host {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(
            &root().join("samples/hosts").join(root_dir),
            &dir.path().join("root"),
        );
        let text = std::fs::read_to_string(root().join(format!("samples/profiles/{profile}.toml")))
            .unwrap();
        let mut out = String::new();
        let mut in_trust = false;
        for line in text.lines() {
            if line.starts_with('[') {
                in_trust = line == "[trust]";
                if in_trust {
                    out.push_str(&format!(
                        "[trust]\nrelease_keys = [\"{}\"]\nvendor_keys = [\"{}\"]\n",
                        keys.key("release.pub").display(),
                        keys.key("vendor.pub").display()
                    ));
                    continue;
                }
            }
            if in_trust {
                continue;
            }
            let line = if line.starts_with("root = ") {
                format!("root = \"{}\"", dir.path().join("root").display())
            } else if line.starts_with("state_dir = ") {
                format!("state_dir = \"{}\"", dir.path().join("state").display())
            } else if line.starts_with("approvals_required = ") {
                "approvals_required = 0".to_string()
            } else {
                line.to_string()
            };
            out.push_str(&line);
            out.push('\n');
        }
        std::fs::write(dir.path().join("host.toml"), out).unwrap();
        Host { dir }
    }

    /// A host for generated [`mitigation_xml`] documents (product `bench` 1.5, no
    /// web server): DIR/root holds `/etc/bench/conf.d/` and `/etc/bench/app.ini`.
    pub fn bench(keys: &Fixture) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("root/etc/bench");
        std::fs::create_dir_all(etc.join("conf.d")).unwrap();
        std::fs::write(
            etc.join("app.ini"),
            "; bench application\n[s]\nname = bench\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("host.toml"),
            format!(
                "host = \"bench01\"\nroot = \"{}\"\nstate_dir = \"{}\"\n\n[products]\nbench = \"1.5\"\n\n[web]\nserver = \"none\"\n\n[trust]\nrelease_keys = [\"{}\"]\nvendor_keys = [\"{}\"]\n\n[policy]\nchannel = \"prod\"\n",
                dir.path().join("root").display(),
                dir.path().join("state").display(),
                keys.key("release.pub").display(),
                keys.key("vendor.pub").display()
            ),
        )
        .unwrap();
        Host { dir }
    }

    /// `DIR/root/PATH` for an absolute action path.
    pub fn file(&self, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("root")
            .join(path.trim_start_matches('/'))
    }

    /// The profile.
    pub fn profile(&self) -> PathBuf {
        self.dir.path().join("host.toml")
    }
    /// `state_dir/NAME`.
    pub fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join("state").join(name)
    }
    /// `airlock-applier --profile PROFILE ARGS`.
    pub fn applier<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        applier(self.with_profile(args))
    }
    /// `airlock-ledger --profile PROFILE ARGS`.
    pub fn ledger<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        ledger(self.with_profile(args))
    }
    fn with_profile<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Vec<std::ffi::OsString> {
        let mut all = vec!["--profile".into(), self.profile().into_os_string()];
        all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        all
    }
}

/// Copies the files of `from` into `to` (one level).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Copies a directory tree (files, directories and symbolic links as links).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_tree(&src, &dst);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A valid mitigation document with `id` and `revision`.
pub fn mitigation_xml(id: &str, revision: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<mitigation xmlns="urn:airlock:mitigation:1" id="{id}" revision="{revision}">
  <title>Generated mitigation {id}</title>
  <summary>A generated document for the end-to-end tests.</summary>
  <severity>high</severity>
  <published>2026-11-01T00:00:00Z</published>
  <applies-to><product name="bench" min="1.0" below="2.0"/></applies-to>
  <actions>
    <url-block name="rule"><match on="path" pattern="(?i)/{id}/admin"/><response status="403"/></url-block>
    <file path="/etc/bench/conf.d/{id}.conf" mode="0644"><![CDATA[# managed by airlock
limit = 1
]]></file>
    <config-set path="/etc/bench/app.ini" format="ini" section="s" key="k-{id}" value="v"/>
  </actions>
</mitigation>
"#
    )
}
