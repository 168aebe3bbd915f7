//! Fuzzes the host profile parser (`host.toml`, design card §6) with arbitrary UTF-8.
#![no_main]

use airlock_format::profile::Profile;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Profile::from_toml(s, Path::new("/etc/airlock/host.toml"));
    }
});
