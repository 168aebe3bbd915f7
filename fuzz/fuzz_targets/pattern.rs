//! Fuzzes the portable pattern check (`pattern::check`) with arbitrary UTF-8: it
//! must not panic, a pattern it accepts is printable ASCII within the length limit,
//! and adding an alternative `^` (which matches the empty string) to it is refused.
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
        if s.len() + 2 <= MAX_PATTERN_BYTES {
            let err = check(&format!("{s}|^")).expect_err(s);
            assert!(err.contains("empty string"), "{s:?}|^: {err}");
        }
    }
});
