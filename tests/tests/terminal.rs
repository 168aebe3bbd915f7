//! What a person at a terminal sees, and what pipes, logs and programs never see:
//! run under a real pseudo-terminal (`script` from util-linux), a slow fetch draws
//! a progress bar on stderr; the same fetch piped, with `--json` or with `-q`
//! draws none. Colour (the plan's diff, clap's help) appears on a terminal and
//! disappears with `NO_COLOR`; output to a pipe is never coloured.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::http::{FeedServer, without_proxies};
use airlock_tests::{Fixture, Host, Run, bin, mitigation_xml, run};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BAR: &str = "checking documents [";
const ESC: &str = "\x1b[";

/// `s` quoted for `sh`.
fn quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// Runs `program args` under a pseudo-terminal with `TERM=xterm` and `env`;
/// stdout and stderr both arrive in `Run::stdout`, as on a screen.
fn on_terminal<S: AsRef<OsStr>>(program: &str, args: &[S], env: &[(&str, &str)]) -> Run {
    let mut line = quote(bin(program).as_os_str());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a.as_ref()));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    without_proxies(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// A feed of `n` documents served with `delay` per request: a fetch with
/// `--jobs 1` lasts well over the bar's 0.3 s threshold.
fn slow_feed(n: usize) -> (Fixture, FeedServer) {
    let f = Fixture::empty();
    for i in 1..=n {
        let id = format!("AM-2031-{i:04}");
        std::fs::write(
            f.feed().join(format!("mitigations/{id}.xml")),
            mitigation_xml(&id, 1),
        )
        .unwrap();
    }
    f.publish(&[]);
    let server = FeedServer::start(&f.feed());
    server.set_delay(Duration::from_millis(8));
    (f, server)
}

/// `fetch URL --vendor-key .. --cache CACHE --jobs 1`.
fn fetch_args(f: &Fixture, url: &str, cache: &Path) -> Vec<OsString> {
    vec![
        "fetch".into(),
        url.into(),
        "--vendor-key".into(),
        f.key("vendor.pub").into(),
        "--cache".into(),
        cache.into(),
        "--jobs".into(),
        "1".into(),
    ]
}

#[test]
fn progress_bar_only_on_a_terminal_for_a_person() {
    if !airlock_tests::require_tool("script", "progress_bar_only_on_a_terminal_for_a_person") {
        return;
    }
    let (f, server) = slow_feed(40);
    let url = server.url();
    let caches = tempfile::tempdir().unwrap();
    let cache = |name: &str| caches.path().join(name);

    // On a terminal: the bar is drawn (and redrawn in place), then the report.
    let c = cache("tty");
    let r = on_terminal("airlock-bundler", &fetch_args(&f, &url, &c), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains(BAR),
        "no progress bar on a terminal:\n{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("/40"),
        "the bar counts the 40 documents:\n{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains('\r'),
        "the bar is redrawn in place:\n{:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("40 new"),
        "the report follows the bar:\n{}",
        r.stdout
    );

    // Piped (stderr not a terminal): no bar, no control characters at all.
    let c = cache("pipe");
    let mut cmd = Command::new(bin("airlock-bundler"));
    cmd.args(fetch_args(&f, &url, &c)).env("TERM", "xterm");
    without_proxies(&mut cmd);
    let r = run(&mut cmd).expect(0);
    assert!(!r.stderr.contains(BAR) && !r.stderr.contains('\r') && !r.stderr.contains(ESC));
    assert!(
        !r.stdout.contains('\r') && !r.stdout.contains(ESC),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.contains("40 new"), "{}", r.stdout);

    // On a terminal, but for a program (--json) or asked to be quiet (-q): no bar.
    for extra in ["--json", "-q"] {
        let c = cache(extra);
        let mut args = fetch_args(&f, &url, &c);
        args.push(extra.into());
        let r = on_terminal("airlock-bundler", &args, &[]);
        assert_eq!(r.code, 0, "{extra}: {}", r.stdout);
        assert!(
            !r.stdout.contains(BAR),
            "{extra} drew a bar:\n{:?}",
            r.stdout
        );
        assert!(
            !r.stdout.contains('\r') || extra == "--json",
            "{:?}",
            r.stdout
        );
    }
    let r = on_terminal("airlock-bundler", &fetch_args(&f, &url, &cache("tty")), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("40 unchanged"), "{}", r.stdout);
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    if !airlock_tests::require_tool("script", "colour_on_a_terminal_unless_no_color") {
        return;
    }
    let f = Fixture::samples();
    f.fetch().expect(0);
    let bundle = f.dir.path().join("b.airlock");
    f.build(&bundle, &[]).expect(0);
    let host = Host::lab(&f);
    host.applier(&["init"]).expect(0);
    let profile = host.profile();
    let plan: [&OsStr; 4] = [
        "--profile".as_ref(),
        profile.as_os_str(),
        "plan".as_ref(),
        bundle.as_os_str(),
    ];

    // The plan's diff is coloured on a terminal, plain with NO_COLOR.
    let r = on_terminal("airlock-applier", &plan, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("\x1b[32m+"),
        "no coloured diff:\n{:?}",
        r.stdout
    );
    let r = on_terminal("airlock-applier", &plan, &[("NO_COLOR", "1")]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("+kernel.unprivileged_userns_clone = 0"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains(ESC),
        "NO_COLOR still coloured:\n{:?}",
        r.stdout
    );
    // Piped: plain, whatever NO_COLOR says.
    let r = host
        .applier(&["plan".as_ref(), bundle.as_os_str()])
        .expect(0);
    assert!(!r.stdout.contains(ESC), "{:?}", r.stdout);

    // clap's help and usage errors follow the same rule, for all three programs.
    for program in ["airlock-bundler", "airlock-applier", "airlock-ledger"] {
        let help: [&OsStr; 1] = ["--help".as_ref()];
        let r = on_terminal(program, &help, &[]);
        assert!(
            r.stdout.contains(ESC),
            "{program} --help not styled on a terminal"
        );
        let r = on_terminal(program, &help, &[("NO_COLOR", "1")]);
        assert!(
            !r.stdout.contains(ESC),
            "{program} --help styled with NO_COLOR"
        );
        let bad: [&OsStr; 1] = ["--no-such-flag".as_ref()];
        let r = on_terminal(program, &bad, &[("NO_COLOR", "1")]);
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(
            !r.stdout.contains(ESC),
            "{program}: usage error styled with NO_COLOR"
        );
    }
}
