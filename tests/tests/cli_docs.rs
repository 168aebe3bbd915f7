//! Man pages and shell completions, as `packaging/gen-docs.sh` asks the real
//! binaries for them (`PROGRAM --generate KIND`): every kind of every program
//! exits 0 with a well-formed page or script that names the program and each of
//! its subcommands, every subcommand page the program's page refers to exists,
//! an unknown kind is a usage error, and `--help` never shows the hidden option.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Run, bin, listed_subcommands, on_path, run};
use std::path::Path;
use std::process::Command;

const PROGRAMS: [&str; 3] = ["airlock-bundler", "airlock-applier", "airlock-ledger"];
const KINDS: [&str; 4] = ["man", "complete-bash", "complete-zsh", "complete-fish"];

/// Runs `program` with `args`.
fn airlock(program: &str, args: &[&str]) -> Run {
    run(Command::new(bin(program)).args(args))
}

/// The subcommands `PROGRAM --help` lists (without `help`), checked against the
/// ones this test knows, so that a new subcommand is covered without editing here.
fn subcommands(program: &str) -> Vec<String> {
    let help = airlock(program, &["--help"]).expect(0).stdout;
    let subs = listed_subcommands(&help);
    let known: &[&str] = match program {
        "airlock-bundler" => &["keygen", "feed", "fetch", "build", "inspect", "verify"],
        "airlock-applier" => &[
            "init", "verify", "plan", "apply", "approve", "status", "rollback", "sync",
        ],
        _ => &["verify", "log", "show", "export", "checkpoint"],
    };
    for k in known {
        assert!(
            subs.iter().any(|s| s == k),
            "{program} --help does not list {k}:\n{help}"
        );
    }
    subs
}

/// The pages a roff page refers to in its SUBCOMMANDS section (`NAME(1)` lines).
fn referenced_pages(roff: &str) -> Vec<String> {
    roff.lines()
        .filter_map(|l| l.strip_suffix("(1)"))
        .map(|name| name.replace("\\-", "-"))
        .collect()
}

/// Whether `tool` is on PATH; prints a note when it is not (these checks are
/// extras, not a CI requirement).
fn have(tool: &str, what: &str) -> bool {
    let found = on_path(tool);
    if !found {
        eprintln!("note: {tool} is not installed; skipped {what}");
    }
    found
}

/// `man -l FILE` as plain text, 80 columns wide.
fn man_render(file: &Path) -> Run {
    run(Command::new("man")
        .arg("-l")
        .arg(file)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LC_ALL", "C"))
}

#[test]
fn every_program_generates_every_kind() {
    for program in PROGRAMS {
        for kind in KINDS {
            let r = airlock(program, &["--generate", kind]).expect(0);
            assert!(
                !r.stdout.trim().is_empty(),
                "{program} --generate {kind}: empty"
            );
            assert!(
                r.stderr.is_empty(),
                "{program} --generate {kind}: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn man_page_names_the_program_and_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let man = have("man", "rendering the man pages with man -l");
    for program in PROGRAMS {
        let page = airlock(program, &["--generate", "man"]).expect(0).stdout;
        assert!(
            page.starts_with(".TH") || page.starts_with(".ie"),
            "{program}: not roff:\n{page}"
        );
        assert!(page.contains(&format!(".TH {program} 1")), "{page}");
        assert!(page.contains(".SH NAME\n"), "{page}");
        assert!(page.contains(".SH SYNOPSIS\n"), "{page}");
        let refs = referenced_pages(&page);
        for sub in subcommands(program) {
            let name = format!("{program}-{sub}");
            assert!(
                refs.contains(&name),
                "{program}(1) does not refer to {name}(1):\n{page}"
            );
        }
        assert!(!refs.iter().any(|r| r.ends_with("-help")), "{refs:?}");

        // Every page referred to exists (recursively: feed -> feed publish).
        let mut todo = vec![(program.to_owned(), page)];
        while let Some((name, page)) = todo.pop() {
            if man {
                let file = dir.path().join(format!("{name}.1"));
                std::fs::write(&file, &page).unwrap();
                let shown = man_render(&file).expect(0).stdout;
                // The header line (long names run into the centre title at 80 columns).
                let first = shown.lines().next().unwrap_or_default();
                assert!(first.starts_with(&name), "{name}:\n{shown}");
                for section in ["NAME", "SYNOPSIS", "DESCRIPTION"] {
                    assert!(
                        shown.lines().any(|l| l == section),
                        "{name}: no {section}:\n{shown}"
                    );
                }
            }
            for sub in referenced_pages(&page) {
                let sub_page = airlock(program, &["--generate", "man", &sub])
                    .expect(0)
                    .stdout;
                assert!(sub_page.contains(&format!(".TH {sub} 1")), "{sub_page}");
                todo.push((sub, sub_page));
            }
        }
    }
    // A nested subcommand has its own page, with the synopsis of how it is typed.
    let publish = airlock(
        "airlock-bundler",
        &["--generate", "man", "airlock-bundler-feed-publish"],
    )
    .expect(0)
    .stdout;
    assert!(
        publish.contains("airlock\\-bundler feed publish"),
        "{publish}"
    );
    assert!(publish.contains("\\-\\-retire"), "{publish}");
}

#[test]
fn bash_completion_offers_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let bash = have("bash", "bash -n on the bash completions");
    for program in PROGRAMS {
        let script = airlock(program, &["--generate", "complete-bash"])
            .expect(0)
            .stdout;
        let hook = format!("-o default {program}\n");
        assert!(
            script.contains(&hook),
            "{program}: not registered:\n{script}"
        );
        for sub in subcommands(program) {
            assert!(
                script.contains(&sub),
                "{program}: bash completion lacks {sub}"
            );
        }
        if bash {
            let file = dir.path().join(program);
            std::fs::write(&file, &script).unwrap();
            run(Command::new("bash").arg("-n").arg(&file)).expect(0);
        }
    }
}

#[test]
fn zsh_and_fish_completions_name_the_program() {
    for program in PROGRAMS {
        let zsh = airlock(program, &["--generate", "complete-zsh"])
            .expect(0)
            .stdout;
        assert!(zsh.starts_with(&format!("#compdef {program}\n")), "{zsh}");
        let fish = airlock(program, &["--generate", "complete-fish"])
            .expect(0)
            .stdout;
        assert!(fish.contains(&format!("complete -c {program} ")), "{fish}");
        for sub in subcommands(program) {
            assert!(zsh.contains(&sub), "{program}: zsh completion lacks {sub}");
            assert!(
                fish.contains(&sub),
                "{program}: fish completion lacks {sub}"
            );
        }
    }
}

#[test]
fn unknown_kind_is_a_usage_error_listing_the_kinds() {
    for program in PROGRAMS {
        let r = airlock(program, &["--generate", "bogus"]).expect(2);
        assert_eq!(r.stdout, "");
        assert_eq!(
            r.stderr,
            format!(
                "{program}: error: --generate does not know the kind 'bogus'\n  what to do: use --generate KIND with KIND one of: man, complete-bash, complete-zsh, complete-fish (`man PAGE` for a subcommand's page)\n"
            )
        );
    }
    let r = airlock("airlock-ledger", &["--generate"]).expect(2);
    assert!(
        r.stderr
            .starts_with("airlock-ledger: error: --generate needs a kind\n"),
        "{}",
        r.stderr
    );
    let r = airlock(
        "airlock-ledger",
        &["--generate", "man", "airlock-ledger-nope"],
    )
    .expect(2);
    assert_eq!(
        r.stderr,
        "airlock-ledger: error: airlock-ledger has no man page 'airlock-ledger-nope'\n  what to do: name a page as the SUBCOMMANDS section of `airlock-ledger --generate man` refers to it (airlock-ledger-SUBCOMMAND)\n"
    );
}

#[test]
fn generate_is_hidden_and_help_and_version_still_work() {
    for program in PROGRAMS {
        let help = airlock(program, &["--help"]).expect(0).stdout;
        assert!(help.contains("Usage:"), "{help}");
        assert!(
            !help.contains("generate"),
            "{program} --help shows --generate:\n{help}"
        );
        let version = airlock(program, &["--version"]).expect(0).stdout;
        assert!(version.starts_with(&format!("{program} ")), "{version}");
        // Only as the first argument: elsewhere clap refuses it as usual.
        let r = airlock(program, &["-q", "--generate", "man"]).expect(2);
        assert!(
            r.stderr.contains("unexpected argument '--generate'"),
            "{}",
            r.stderr
        );
    }
}
