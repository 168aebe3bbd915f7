//! Fuzzes the vendor feed index parser (`feed.xml`, design card §4) with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = airlock_format::feed::Feed::parse("fuzz", data);
});
