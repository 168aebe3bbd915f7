//! Fuzzes the host config editor (`config_edit::set` and `get`): four header bytes
//! pick a format, section, key and value within the caller's contract, the rest (if
//! UTF-8) is the file; the result must read back the value trimmed, and a second
//! `set` must change nothing.
#![no_main]

use airlock_applier::config_edit::{get, set};
use airlock_format::mitigation::ConfigFormat;
use libfuzzer_sys::fuzz_target;

/// Key characters first, then those sections may also hold, then `[` and `]` for values.
const CHARS: &[&str] = &[
    "k", "e", "y", "K", ".", "_", "-", "/", "1", "é", "語", "\u{feff}", // key
    " ", "=", "#", ";", "\u{a0}", "\u{3000}", // section
    "[", "]", // value
];
const KEYS: &[&str] = &["key", "PermitRootLogin", "net.ipv4.ip_forward", "ROOT"];

/// `len` characters from the first `alphabet` entries of `CHARS`, picked by the next bytes.
fn word(data: &mut &[u8], len: u8, alphabet: usize) -> String {
    let (picks, rest) = data.split_at(usize::from(len).min(data.len()));
    *data = rest;
    picks
        .iter()
        .map(|&b| CHARS[usize::from(b) % alphabet])
        .collect()
}

fuzz_target!(|input: &[u8]| {
    let [flags, key_len, section_len, value_len, rest @ ..] = input else {
        return;
    };
    let mut data = rest;
    let format = if flags & 1 == 0 {
        ConfigFormat::KeyValue
    } else {
        ConfigFormat::Ini
    };
    let key = match KEYS.get(usize::from(key_len % 16)) {
        Some(k) => k.to_string(),
        None => word(&mut data, key_len % 8 + 1, 12),
    };
    let section = word(&mut data, section_len % 8, 18);
    let section = (flags & 2 != 0).then_some(section.as_str());
    let value = word(&mut data, value_len % 16, CHARS.len());
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let once = set(text, format, section, &key, &value);
    assert_eq!(
        get(&once, format, section, &key).as_deref(),
        Some(value.trim())
    );
    assert_eq!(
        set(&once, format, section, &key, &value),
        once,
        "set is not idempotent"
    );
});
