//! Fuzzes the mitigation document parser (design card §3) with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = airlock_format::mitigation::Mitigation::parse("fuzz", data);
});
