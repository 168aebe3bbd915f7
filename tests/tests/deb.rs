//! The Debian packages `packaging/build-deb.sh` builds, from the debug binaries:
//! their control fields (version, architecture, a `libc6` minimum, computed
//! Installed-Size) and exactly their files (every man page of their programs, three
//! completions per program, the four systemd units, the conffile; root:root, 0755
//! programs, 0644 the rest; the applier's programs only in its package, the
//! bundler's only in its own); and, installed with the real dpkg into a fresh
//! root, that the installed programs run, the state directory and inbox are 0700,
//! the shipped default profile is accepted by the real parser (init, status, and a
//! verify that fails only for the missing trust keys, then passes once they are in
//! place), an administrator's edit of the conffile survives a reinstall, remove
//! keeps the profile and `/var/lib/airlock`, and purge deletes the profile and the
//! enablement links but never the ledger.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Run, bin, require_tool, root, run};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The two packages, built once per test run.
#[derive(Debug)]
struct Built {
    applier: PathBuf,
    bundler: PathBuf,
    /// The workspace version, as the programs print it.
    version: String,
    /// `dpkg --print-architecture`.
    arch: String,
}

/// Whether dpkg and dpkg-deb are here (a skip line otherwise; CI must have them).
fn have_dpkg(test: &str) -> bool {
    require_tool("dpkg", test) && require_tool("dpkg-deb", test)
}

/// Builds both packages from the binaries `cargo test` built (no release build),
/// uncompressed (xz on 30 MB of debug binaries would take most of the test's time),
/// into `target/tmp/deb`.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let version = run(Command::new(bin("airlock-applier")).arg("--version"))
            .expect(0)
            .stdout
            .trim()
            .strip_prefix("airlock-applier ")
            .unwrap()
            .to_string();
        assert_eq!(version, env!("CARGO_PKG_VERSION"), "the workspace version");
        let arch = run(Command::new("dpkg").arg("--print-architecture"))
            .expect(0)
            .stdout
            .trim()
            .to_string();
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb");
        let _ = std::fs::remove_dir_all(&out);
        let bin_dir = bin("airlock-applier").parent().unwrap().to_path_buf();
        let r = run(Command::new("sh")
            .arg(root().join("packaging/build-deb.sh"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .args(["--compress", "none"])
            .arg(&out)
            .env_remove("DEB_HOST_ARCH"))
        .expect(0);
        let deb = |pkg: &str| out.join(format!("{pkg}_{version}_{arch}.deb"));
        let (applier, bundler) = (deb("airlock-applier"), deb("airlock-bundler"));
        assert_eq!(
            r.stdout,
            format!("{}\n{}\n", applier.display(), bundler.display()),
            "build-deb.sh prints the two packages, and nothing else, on stdout"
        );
        Built {
            applier,
            bundler,
            version,
            arch,
        }
    })
}

/// `dpkg-deb ARGS`.
fn dpkg_deb(args: &[&OsStr]) -> Run {
    run(Command::new("dpkg-deb").args(args))
}

/// The control fields of a package (continuation lines joined with `\n`).
fn fields(deb: &Path) -> BTreeMap<String, String> {
    let text = dpkg_deb(&["--field".as_ref(), deb.as_os_str()])
        .expect(0)
        .stdout;
    let mut out = BTreeMap::<String, String>::new();
    let mut last = String::new();
    for line in text.lines() {
        if let Some(more) = line.strip_prefix(' ') {
            let v = out.get_mut(&last).unwrap();
            v.push('\n');
            v.push_str(more);
        } else {
            let (k, v) = line.split_once(": ").unwrap();
            last = k.to_string();
            out.insert(last.clone(), v.to_string());
        }
    }
    out
}

/// One entry of `dpkg-deb --contents`.
#[derive(Debug)]
struct Entry {
    perms: String,
    owner: String,
    size: u64,
}

/// `dpkg-deb --contents`, by path without the leading `./` (directories end in `/`).
fn contents(deb: &Path) -> BTreeMap<String, Entry> {
    let text = dpkg_deb(&["--contents".as_ref(), deb.as_os_str()])
        .expect(0)
        .stdout;
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 6, "an unexpected contents line: {line}");
            let path = f[5].strip_prefix("./").unwrap().to_string();
            (
                path,
                Entry {
                    perms: f[0].to_string(),
                    owner: f[1].to_string(),
                    size: f[2].parse().unwrap(),
                },
            )
        })
        .collect()
}

/// Every man page of `program`: its own and, recursively, each subcommand page
/// its SUBCOMMANDS section refers to (`airlock\-bundler\-feed(1)` lines).
fn man_pages(program: &str) -> Vec<String> {
    let (mut pages, mut todo) = (Vec::new(), vec![program.to_string()]);
    while let Some(page) = todo.pop() {
        let mut cmd = Command::new(bin(program));
        cmd.args(["--generate", "man"]);
        if page != program {
            cmd.arg(&page);
        }
        let roff = run(&mut cmd).expect(0).stdout;
        todo.extend(
            roff.lines()
                .filter_map(|l| l.strip_suffix("(1)"))
                .map(|n| n.replace("\\-", "-")),
        );
        pages.push(page);
    }
    pages
}

/// The regular files a package must hold for `programs`, besides `extra`.
fn expected_files(pkg: &str, programs: &[&str], extra: &[&str]) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = extra.iter().map(|s| (*s).to_string()).collect();
    for p in programs {
        want.insert(format!("usr/bin/{p}"));
        for page in man_pages(p) {
            want.insert(format!("usr/share/man/man1/{page}.1.gz"));
        }
        want.insert(format!("usr/share/bash-completion/completions/{p}"));
        want.insert(format!("usr/share/zsh/vendor-completions/_{p}"));
        want.insert(format!("usr/share/fish/vendor_completions.d/{p}.fish"));
    }
    for doc in [
        "copyright",
        "changelog.gz",
        "README.Debian",
        "operator-guide.md.gz",
    ] {
        want.insert(format!("usr/share/doc/{pkg}/{doc}"));
    }
    want
}

/// Checks a package's control fields and files: exactly `want` as regular files,
/// root:root, programs 0755, everything else 0644 (directories 0755), and an
/// Installed-Size that adds up.
fn check_package(deb: &Path, pkg: &str, want: &BTreeSet<String>, recommends: &str) {
    let b = built();
    let f = fields(deb);
    for (k, v) in [
        ("Package", pkg),
        ("Version", b.version.replace('-', "~").as_str()),
        ("Architecture", b.arch.as_str()),
        ("Section", "admin"),
        ("Priority", "optional"),
        ("Recommends", recommends),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{pkg}: field {k}");
    }
    assert!(f["Maintainer"].contains('@'), "{pkg}: {f:?}");
    let description = &f["Description"];
    assert!(
        description.lines().count() > 5 && description.contains("\n.\n"),
        "{pkg}: a short and a long description: {description}"
    );
    // libc6 with a minimum version taken from the binaries; libgcc-s1 for unwinding.
    let depends: Vec<&str> = f["Depends"].split(", ").collect();
    assert!(
        depends.iter().any(|d| d.starts_with("libc6 (>= 2.")),
        "{pkg}: Depends {depends:?}"
    );
    for d in &depends {
        let (name, min) = d.strip_suffix(')').unwrap().split_once(" (>= ").unwrap();
        assert!(
            ["libc6", "libgcc-s1"].contains(&name)
                && min.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{pkg}: Depends may only name libc6 and libgcc-s1, each with a minimum: {depends:?}"
        );
    }

    let entries = contents(deb);
    let files: BTreeSet<String> = entries
        .iter()
        .filter(|(_, e)| e.perms.starts_with('-'))
        .map(|(p, _)| p.clone())
        .collect();
    let missing: Vec<_> = want.difference(&files).collect();
    let extra: Vec<_> = files.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{pkg}: missing {missing:?}, unexpected {extra:?}"
    );
    let mut kib = 0;
    for (path, e) in &entries {
        assert_eq!(e.owner, "root/root", "{pkg}: {path}");
        let dir = e.perms.starts_with('d');
        let perms = if dir {
            "drwxr-xr-x"
        } else if path.starts_with("usr/bin/") {
            "-rwxr-xr-x"
        } else {
            "-rw-r--r--"
        };
        assert_eq!(e.perms, perms, "{pkg}: ./{path}");
        // as dpkg-gencontrol counts: KiB per file rounded up, 1 per directory but `./`
        if !path.is_empty() {
            kib += if dir { 1 } else { e.size.div_ceil(1024) };
        }
    }
    assert_eq!(
        f["Installed-Size"],
        kib.to_string(),
        "{pkg}: Installed-Size"
    );
}

#[test]
fn each_package_declares_its_fields_and_holds_exactly_its_files() {
    if !have_dpkg("deb::each_package_declares_its_fields_and_holds_exactly_its_files") {
        return;
    }
    let b = built();
    let applier_files = expected_files(
        "airlock-applier",
        &["airlock-applier", "airlock-ledger"],
        &[
            "etc/airlock/host.toml",
            "usr/lib/systemd/system/airlock-sync.service",
            "usr/lib/systemd/system/airlock-sync.timer",
            "usr/lib/systemd/system/airlock-sync.path",
            "usr/lib/systemd/system/airlock-sync-usb.service",
            "usr/share/doc/airlock-applier/packaging.md.gz",
            "usr/share/lintian/overrides/airlock-applier",
        ],
    );
    check_package(&b.applier, "airlock-applier", &applier_files, "systemd");
    let bundler_files = expected_files("airlock-bundler", &["airlock-bundler"], &[]);
    check_package(
        &b.bundler,
        "airlock-bundler",
        &bundler_files,
        "ca-certificates",
    );
    // Neither package holds the other's programs or pages (the exact lists say
    // so too; this says it by name).
    for (files, other) in [
        (&applier_files, "airlock-bundler"),
        (&bundler_files, "airlock-applier"),
        (&bundler_files, "airlock-ledger"),
    ] {
        assert!(!files.iter().any(|f| f.contains(other)), "{other}");
    }
    assert!(
        applier_files
            .iter()
            .filter(|f| f.starts_with("usr/share/man/"))
            .count()
            > 10,
        "{applier_files:?}"
    );

    let info =
        |deb: &Path, member: &str| dpkg_deb(&["--info".as_ref(), deb.as_os_str(), member.as_ref()]);
    assert_eq!(
        info(&b.applier, "conffiles").expect(0).stdout,
        "/etc/airlock/host.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        assert!(
            info(&b.applier, script)
                .expect(0)
                .stdout
                .starts_with("#!/bin/sh\n")
        );
    }
    // The bundler package has no conffiles and no maintainer scripts.
    for member in ["conffiles", "postinst", "prerm", "postrm"] {
        assert_ne!(info(&b.bundler, member).code, 0, "{member}");
    }
}

/// An empty root for `dpkg --root`: its database, with no package in it.
fn fresh_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("var/lib/dpkg");
    for sub in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(sub)).unwrap();
    }
    for file in ["status", "available"] {
        std::fs::write(admin.join(file), "").unwrap();
    }
    dir
}

/// `dpkg --root=FRESH ARGS`, running the maintainer scripts outside a chroot
/// with `$DPKG_ROOT` set (which they honour).
fn dpkg(fresh: &Path, args: &[&OsStr]) -> Run {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", fresh.display()))
        // not the host's /var/log/dpkg.log
        .arg("--log=/dev/null")
        .arg("--force-script-chrootless")
        // The fresh root's database lists no libc6 or libgcc-s1; the host's are the
        // ones the programs load.
        .arg("--force-depends")
        // Whatever path-exclude lines the host's /etc/dpkg/dpkg.cfg.d holds (slim
        // images drop man pages and docs), install every file.
        .arg("--path-include=*")
        .args(args)
        .env_remove("DPKG_ROOT")
        .env_remove("DPKG_ADMINDIR")
        // dpkg as root insists on finding ldconfig and start-stop-daemon.
        .env(
            "PATH",
            format!(
                "{}:/usr/local/sbin:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        cmd.arg("--force-not-root");
    }
    run(&mut cmd)
}

/// The `Status:` line of `dpkg -s PKG`, or None when dpkg knows no such package.
fn status(fresh: &Path, pkg: &str) -> Option<String> {
    let r = dpkg(fresh, &["-s".as_ref(), pkg.as_ref()]);
    (r.code == 0).then(|| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("Status: "))
            .unwrap()
            .to_string()
    })
}

/// `FRESH/usr/bin/PROGRAM ARGS`.
fn installed(fresh: &Path, program: &str, args: &[&OsStr]) -> Run {
    run(Command::new(fresh.join("usr/bin").join(program)).args(args))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The installed profile with its absolute paths moved into FRESH (root,
/// state_dir, trust keys), written beside the bundle, not under FRESH/etc.
fn profile_in(fresh: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fresh.join("etc/airlock/host.toml")).unwrap();
    let mut out = text.clone();
    for (from, to) in [
        ("root = \"/\"", format!("root = \"{}\"", fresh.display())),
        (
            "\"/var/lib/airlock\"",
            format!("\"{}/var/lib/airlock\"", fresh.display()),
        ),
        (
            "\"/etc/airlock/keys/",
            format!("\"{}/etc/airlock/keys/", fresh.display()),
        ),
    ] {
        assert!(
            out.contains(from),
            "the shipped profile has {from}:\n{text}"
        );
        out = out.replace(from, &to);
    }
    let p = dir.join("host.toml");
    std::fs::write(&p, out).unwrap();
    p
}

#[test]
fn the_applier_package_installs_runs_and_purges_but_keeps_the_ledger() {
    if !have_dpkg("deb::the_applier_package_installs_runs_and_purges_but_keeps_the_ledger") {
        return;
    }
    let b = built();
    let fresh = fresh_root();
    let r = fresh.path();
    dpkg(r, &["-i".as_ref(), b.applier.as_os_str()]).expect(0);
    assert_eq!(
        status(r, "airlock-applier").as_deref(),
        Some("install ok installed")
    );
    for program in ["airlock-applier", "airlock-ledger"] {
        assert_eq!(
            installed(r, program, &["--version".as_ref()])
                .expect(0)
                .stdout,
            format!("{program} {}\n", b.version)
        );
    }
    let state = r.join("var/lib/airlock");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("inbox")), 0o700);
    // Units installed, none enabled.
    assert!(
        r.join("usr/lib/systemd/system/airlock-sync.timer")
            .is_file()
    );
    assert!(!r.join("etc/systemd").exists());

    // The shipped profile: safe defaults, read by the real parser.
    let shipped = std::fs::read_to_string(r.join("etc/airlock/host.toml")).unwrap();
    for line in [
        "server = \"none\"",
        "channel = \"prod\"",
        "state_dir = \"/var/lib/airlock\"",
        "release_keys = [\"/etc/airlock/keys/release.pub\"]",
        "vendor_keys = [\"/etc/airlock/keys/vendor.pub\"]",
        "approvals_required = 0",
    ] {
        assert!(
            shipped.lines().any(|l| l.starts_with(line)),
            "{line}:\n{shipped}"
        );
    }
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.path("b.airlock");
    f.build(&bundle, &[]).expect(0);
    let profile = profile_in(r, f.dir.path());
    let applier = |args: &[&OsStr]| {
        let mut all = vec!["--profile".as_ref(), profile.as_os_str()];
        all.extend(args);
        installed(r, "airlock-applier", &all)
    };
    let init = applier(&["init".as_ref()]).expect(0);
    assert!(init.stdout.starts_with("initialised host "), "{init:?}");
    assert!(state.join("ledger.db").is_file());
    assert_eq!(mode(&state), 0o700, "init keeps the state directory's mode");
    let st = applier(&["status".as_ref()]).expect(0);
    assert!(st.stdout.contains(" 0 mitigation(s) applied"), "{st:?}");
    // No key placed yet: the one thing missing, and nothing trusted.
    let keys = r.join("etc/airlock/keys");
    let v = applier(&["verify".as_ref(), bundle.as_os_str()]).expect(1);
    assert!(
        v.stderr.contains(&format!("key {}/", keys.display()))
            && v.stderr.contains("No such file or directory"),
        "{v:?}"
    );
    // The administrator places the keys where the profile says: the bundle verifies.
    for key in ["release.pub", "vendor.pub"] {
        std::fs::copy(f.key(key), keys.join(key)).unwrap();
    }
    applier(&["verify".as_ref(), bundle.as_os_str()]).expect(0);

    // An edit of the conffile survives reinstalling the same version, unasked.
    let host_toml = r.join("etc/airlock/host.toml");
    let edited = format!("{shipped}# edited by the administrator\n");
    std::fs::write(&host_toml, &edited).unwrap();
    dpkg(r, &["-i".as_ref(), b.applier.as_os_str()]).expect(0);
    assert_eq!(std::fs::read_to_string(&host_toml).unwrap(), edited);

    // `systemctl enable airlock-sync.timer`, as a site would, and someone else's link.
    let wants = r.join("etc/systemd/system/timers.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    let ours = wants.join("airlock-sync.timer");
    let theirs = wants.join("other.timer");
    std::os::unix::fs::symlink("/usr/lib/systemd/system/airlock-sync.timer", &ours).unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/other.timer", &theirs).unwrap();
    let ledger = std::fs::read(state.join("ledger.db")).unwrap();

    // Remove: programs, pages and units go; profile, enablement and state stay.
    dpkg(r, &["-r".as_ref(), "airlock-applier".as_ref()]).expect(0);
    assert_eq!(
        status(r, "airlock-applier").as_deref(),
        Some("deinstall ok config-files")
    );
    for gone in [
        "usr/bin/airlock-applier",
        "usr/bin/airlock-ledger",
        "usr/lib/systemd/system/airlock-sync.service",
        "usr/share/man/man1/airlock-applier.1.gz",
    ] {
        assert!(!r.join(gone).exists(), "{gone} is still there");
    }
    assert_eq!(std::fs::read_to_string(&host_toml).unwrap(), edited);
    assert!(ours.symlink_metadata().is_ok());
    assert_eq!(std::fs::read(state.join("ledger.db")).unwrap(), ledger);

    // Purge: the profile and our enablement link go; the keys, the other link and
    // the whole state directory stay, the ledger byte for byte.
    let p = dpkg(r, &["-P".as_ref(), "airlock-applier".as_ref()]).expect(0);
    assert!(p.stdout.contains("kept /var/lib/airlock"), "{p:?}");
    assert_eq!(status(r, "airlock-applier"), None);
    assert!(!host_toml.exists());
    assert!(ours.symlink_metadata().is_err());
    assert!(theirs.symlink_metadata().is_ok());
    assert!(keys.join("release.pub").is_file());
    assert!(state.join("inbox").is_dir() && state.join("host.key").is_file());
    assert_eq!(std::fs::read(state.join("ledger.db")).unwrap(), ledger);
    run(Command::new(bin("airlock-ledger"))
        .arg("--db")
        .arg(state.join("ledger.db"))
        .arg("verify"))
    .expect(0);
}

#[test]
fn the_bundler_package_installs_runs_and_purges() {
    if !have_dpkg("deb::the_bundler_package_installs_runs_and_purges") {
        return;
    }
    let b = built();
    let fresh = fresh_root();
    let r = fresh.path();
    dpkg(r, &["-i".as_ref(), b.bundler.as_os_str()]).expect(0);
    assert_eq!(
        status(r, "airlock-bundler").as_deref(),
        Some("install ok installed")
    );
    assert_eq!(
        installed(r, "airlock-bundler", &["--version".as_ref()])
            .expect(0)
            .stdout,
        format!("airlock-bundler {}\n", b.version)
    );
    assert!(!r.join("usr/bin/airlock-applier").exists());
    assert!(!r.join("var/lib/airlock").exists() && !r.join("etc/airlock").exists());
    dpkg(r, &["-P".as_ref(), "airlock-bundler".as_ref()]).expect(0);
    assert_eq!(status(r, "airlock-bundler"), None);
    assert!(!r.join("usr/bin/airlock-bundler").exists());
}
