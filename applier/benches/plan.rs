//! Criterion micro-benchmarks of the applier's pure work, the parts `bench/applier.sh`
//! cannot separate from process start-up and fsync:
//!
//! - `config_edit/set`: one key set in a 3,000-line ini file (50 sections);
//! - `plan/make`: the plan for 1,000 wanted mitigations, each placing one file and
//!   setting one key in a shared ini file, on a host root with 1,000 existing files
//!   (every file is read and hashed, the shared file is re-derived 1,000 times).
//!
//!     cargo bench -p airlock-applier --bench plan

use airlock_applier::config_edit;
use airlock_applier::desired::{Decision, Desired, Verdict};
use airlock_applier::plan::{self, Header, Host};
use airlock_applier::root::HostRoot;
use airlock_applier::state::{EditFormat, State, StateDir, Step};
use airlock_applier::systemd::Systemd;
use airlock_format::mitigation::ConfigFormat;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const MITIGATIONS: usize = 1000;

fn ini(sections: usize, keys: usize) -> String {
    let mut s = String::from("; generated\n");
    for i in 0..sections {
        s.push_str(&format!("\n[m{i}]\n"));
        for k in 0..keys {
            s.push_str(&format!("key{k} = value {k}\n"));
        }
    }
    s
}

fn config_edit(c: &mut Criterion) {
    let text = ini(50, 58);
    c.bench_function("config_edit/set (3,000 lines)", |b| {
        b.iter(|| {
            config_edit::set(
                black_box(&text),
                ConfigFormat::Ini,
                Some("m25"),
                "k-new",
                "v",
            )
        })
    });
}

fn plan_make(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let etc = dir.path().join("root/etc/bench");
    std::fs::create_dir_all(etc.join("conf.d")).expect("mkdir");
    std::fs::write(etc.join("app.ini"), ini(50, 1)).expect("write");
    let mut desired = Desired::default();
    for i in 0..MITIGATIONS {
        let id = format!("AM-BENCH-{i:04}");
        let path = format!("/etc/bench/conf.d/{id}.conf");
        std::fs::write(etc.join(format!("conf.d/{id}.conf")), "old\n").expect("write");
        desired.wanted.insert(
            id.clone(),
            (
                1,
                id.clone(),
                vec![
                    Step::File {
                        path,
                        mode: 0o644,
                        content: format!("# managed by airlock\nlimit = {i}\n"),
                    },
                    Step::ConfigSet {
                        path: "/etc/bench/app.ini".into(),
                        format: EditFormat::Ini,
                        section: Some(format!("m{}", i % 50)),
                        key: format!("k{i}"),
                        value: format!("v{i}"),
                    },
                ],
            ),
        );
        desired.decisions.push(Decision {
            id: id.clone(),
            revision: 1,
            applied_revision: None,
            title: id,
            verdict: Verdict::Apply,
            reason: "bench".into(),
            record_skip: false,
        });
    }
    let root = HostRoot::open(&dir.path().join("root")).expect("root");
    let systemd = Systemd::new(root.path(), false);
    let store = StateDir::new(&dir.path().join("state"));
    let state = State::default();
    let host = Host {
        root: &root,
        systemd: &systemd,
        store: &store,
        state: &state,
    };
    let header = Header {
        command: "apply",
        host: "bench01".into(),
        profile_sha256: String::new(),
        bundle: None,
        scope: None,
        now: "2026-11-28T00:00:00Z".into(),
    };
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    group.bench_function("make (1,000 mitigations, 1,001 files)", |b| {
        b.iter(|| {
            let p = plan::make(&host, &desired, header.clone()).expect("plan");
            assert_eq!(p.files.len(), MITIGATIONS + 1);
            p
        })
    });
    group.finish();
}

criterion_group!(benches, config_edit, plan_make);
criterion_main!(benches);
