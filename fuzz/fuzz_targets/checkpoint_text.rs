//! Fuzzes the ledger checkpoint parser: the input up to its first 0 byte is the
//! checkpoint body, the rest its `.minisig` text (each only when it is UTF-8).
#![no_main]

use airlock_ledger::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (body, sig) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let (Ok(body), Ok(sig)) = (std::str::from_utf8(body), std::str::from_utf8(sig)) {
        let _ = Checkpoint::parse(body, sig);
    }
});
