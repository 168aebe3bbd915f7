//! Fuzzes the bundle manifest parser (design card §5); every accepted manifest must
//! list its expected entries and survive a `to_bytes` / `parse` round trip unchanged.
#![no_main]

use airlock_format::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        let _ = m.expected_entries();
        let again = Manifest::parse(&m.to_bytes()).expect("a canonical manifest must parse");
        assert_eq!(again, m, "manifest changed in a to_bytes/parse round trip");
    }
});
