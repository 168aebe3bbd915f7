//! Fuzzes the ledger export reader (`airlock-ledger verify --export`): arbitrary
//! bytes as an export file must give a report or an error, never a panic.
#![no_main]

use airlock_ledger::VerifyOptions;
use airlock_ledger::export::verify_export_from;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = verify_export_from(
        Cursor::new(data),
        Path::new("fuzz"),
        VerifyOptions::default(),
    );
});
