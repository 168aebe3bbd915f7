//! Fuzzes the portable pattern check (`pattern::check`) with arbitrary UTF-8: it
//! must not panic, and a pattern it accepts is printable ASCII within the length limit.
#![no_main]

use airlock_format::{limits::MAX_PATTERN_BYTES, pattern::check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && check(s).is_ok()
    {
        assert!(s.len() <= MAX_PATTERN_BYTES, "accepted {} bytes", s.len());
        assert!(
            s.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "accepted a character outside printable ASCII: {s:?}"
        );
    }
});
