//! Every sample host profile in `samples/profiles/` loads, declares the web server
//! its file name says (`lab`, the sample host root's profile, has none), and lists at least one product that a sample mitigation in
//! `samples/feed/mitigations/` applies to.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_format::mitigation::Mitigation;
use airlock_format::profile::{Profile, WebServer};
use std::path::{Path, PathBuf};

fn samples(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

#[test]
fn every_sample_profile_loads() {
    let mitigations: Vec<Mitigation> = samples("feed/mitigations", "xml")
        .iter()
        .map(|p| Mitigation::parse(&p.display().to_string(), &std::fs::read(p).unwrap()).unwrap())
        .collect();
    let files = samples("profiles", "toml");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["apache", "iis", "lab", "nginx", "none"]);

    for (path, name) in files.iter().zip(&names) {
        let profile = Profile::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let server = if name == "lab" { "none" } else { name.as_str() };
        assert_eq!(
            profile.web().server().as_str(),
            server,
            "{}",
            path.display()
        );
        match profile.web().server() {
            WebServer::Iis => assert!(profile.web().web_config().is_some()),
            WebServer::Nginx | WebServer::Apache => assert!(profile.web().include_dir().is_some()),
            WebServer::None => {}
        }
        assert!(
            !profile.trust().release_keys().is_empty(),
            "{name}: no release key"
        );
        assert!(
            !profile.trust().vendor_keys().is_empty(),
            "{name}: no vendor key"
        );
        let relevant: Vec<&str> = mitigations
            .iter()
            .filter(|m| {
                m.applies_to.iter().any(|range| {
                    profile
                        .product(&range.name)
                        .is_some_and(|v| range.contains(v))
                })
            })
            .map(|m| m.id.as_str())
            .collect();
        assert!(
            !relevant.is_empty(),
            "{name}: no sample mitigation applies to its products"
        );
    }
}
