//! The README's first command, `bash samples/run-demo.sh`, runs the whole flow on
//! the shipped samples: it must end with exit 0 and leave no working directory.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{root, run};
use std::process::Command;

#[test]
fn the_readme_demo_runs_to_the_end_and_cleans_up() {
    let r = run(Command::new("bash")
        .arg(root().join("samples/run-demo.sh"))
        .env("NO_COLOR", "1"));
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("demo complete"), "{}", r.stdout);
    // The second fetch is one conditional request.
    assert!(
        r.stdout
            .contains("1 HTTP request, 0 bytes; the feed has not changed"),
        "{}",
        r.stdout
    );
    let work = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("working in "))
        .and_then(|l| l.strip_suffix(" (removed at exit)"))
        .unwrap();
    assert!(
        !std::path::Path::new(work).exists(),
        "{work} was left behind"
    );
}
