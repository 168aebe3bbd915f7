//! Reads and sets one key in a host's plain-text config file (`sysctl.conf`,
//! `sshd_config`, gitea's `app.ini`) and changes nothing else in it.
//!
//! Guarantees, for every input text (host files are treated as hostile):
//!
//! - Pure: no I/O, no `unsafe`, no panic on any input; time and memory are linear
//!   in the size of the text.
//! - [`set`] reproduces every line that is not an active occurrence of the key in
//!   the target section byte for byte and in the same order. It only rewrites the
//!   values of those occurrences, or, when there is none, inserts the new lines
//!   described at [`set`]; appending after a last line that has no line ending
//!   first gives that line one.
//! - When the caller keeps the contract below, for all texts `t`:
//!   `get(&set(t, f, s, k, v), f, s, k) == Some(v.trim().to_string())`;
//!   `set` is idempotent (`set(&set(t, ..v), ..v) == set(t, ..v)`); and setting
//!   the current value of a key that occurs once as `key = value` returns `t`.
//!   Input outside the contract gives some string, never a panic.
//!
//! Contract: `key` is non-empty and holds no whitespace, no control characters and
//! none of `= [ ] # ;`; `value` is one line (no control characters; may be empty,
//! may hold spaces, `=` and `#`), and [`set`] writes it verbatim while [`get`]
//! returns values trimmed; `section` (ini only) holds no control characters and no
//! `[` or `]`.
//!
//! Syntax read:
//!
//! - Lines end in `\n` or `\r\n`; the last line may have no ending. A byte-order
//!   mark at the start of a line counts as indentation.
//! - A blank line is whitespace only; a comment line starts (after whitespace) with
//!   `#` or `;`. Comments, commented-out keys included, are never touched.
//! - An active key line is: spaces or tabs, exactly `key`, then spaces or tabs and
//!   `=`, or (key-value format only) at least one space or tab (the `key value` form
//!   of `sshd_config`). The value is the rest of the line, trimmed: inline comments
//!   are part of it. `key.more = x` is not a line of `key`.
//! - Ini: a section header is `[name]`, optionally indented and followed by
//!   whitespace and a `#`/`;` comment; names are trimmed, then compared exactly
//!   (the `section` argument is trimmed too). Lines before the first header are
//!   in section `None`. A section may occur more than once; its key lines are
//!   those of all its occurrences.

use airlock_format::mitigation::ConfigFormat;

/// The current value of `key` (in `section` for ini; `None` = keys before the first
/// section header): the value of the LAST active occurrence, trimmed of surrounding
/// whitespace. None when absent.
pub fn get(text: &str, format: ConfigFormat, section: Option<&str>, key: &str) -> Option<String> {
    scan(text, format, section, key)
        .iter()
        .rev()
        .find_map(|l| l.occurrence().map(|k| k.rest.trim().to_string()))
}

/// `text` with `key` set to `value`; every other byte stays as it was.
///
/// When the key occurs in the section, every occurrence becomes
/// `<prefix><value><its line ending>`, where the prefix is the line up to and
/// including the separator and the spaces or tabs after it (`key  =  old` becomes
/// `key  =  new`, `key=old` becomes `key=new`, `Key old` becomes `Key new`);
/// whitespace after the old value is dropped. A line that already reads
/// `<up to the separator><spaces or tabs><value>` is left as it is. A `key value`
/// line whose new value starts with `=` is written `key = value`, as it would
/// otherwise read as the `key =value` form.
///
/// When the key does not occur, `key = value` is added as a new line, with the
/// file's line ending (`\r\n` if its first line ending is `\r\n`, else `\n`):
///
/// - key-value format, or ini without any section header: at the end of the file;
/// - ini, section `None`: after the last non-blank line before the first section
///   header, or at the very start if there is none;
/// - ini, a section that exists: after the last non-blank line of its last
///   occurrence (the header itself if it has no other non-blank line);
/// - ini, a section that does not exist: at the end of the file, after a blank line
///   (unless the file is empty or already ends with a blank line) and `[section]`
///   (the name trimmed).
pub fn set(
    text: &str,
    format: ConfigFormat,
    section: Option<&str>,
    key: &str,
    value: &str,
) -> String {
    let lines = scan(text, format, section, key);
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 16);

    if lines.iter().any(|l| l.occurrence().is_some()) {
        for l in &lines {
            match l.occurrence() {
                Some(k) => push_rewritten(&mut out, k, value),
                None => out.push_str(l.content),
            }
            out.push_str(l.ending);
        }
        return out;
    }

    let eol = match lines.first() {
        Some(l) if l.ending == "\r\n" => "\r\n",
        _ => "\n",
    };
    let first_header = lines.iter().position(|l| l.header().is_some());
    let last_non_blank = |range: std::ops::Range<usize>| {
        range
            .rev()
            .find(|&i| lines.get(i).is_some_and(|l| !matches!(l.kind, Kind::Blank)))
    };
    let last = lines.len().checked_sub(1);
    // Where the new lines go (after this line index; None = at the start), and
    // whether they are a new section: a blank line if needed, then the header.
    let (after, new_section) = match (format, target(format, section)) {
        (ConfigFormat::KeyValue, _) => (last, None),
        (ConfigFormat::Ini, None) => match first_header {
            Some(h) => (last_non_blank(0..h), None),
            None => (last, None),
        },
        (ConfigFormat::Ini, Some(name)) => {
            match lines.iter().rposition(|l| l.header() == Some(name)) {
                Some(h) => {
                    let end = lines
                        .iter()
                        .skip(h + 1)
                        .position(|l| l.header().is_some())
                        .map_or(lines.len(), |n| h + 1 + n);
                    (last_non_blank(h..end), None)
                }
                None => (last, Some(name)),
            }
        }
    };

    let mut pending = after.map_or(0, |a| a + 1);
    for l in lines.iter().take(pending) {
        out.push_str(l.content);
        out.push_str(l.ending);
    }
    if let Some(a) = after
        && lines.get(a).is_some_and(|l| l.ending.is_empty())
    {
        out.push_str(eol);
    }
    if let Some(name) = new_section {
        if lines.last().is_some_and(|l| !matches!(l.kind, Kind::Blank)) {
            out.push_str(eol);
        }
        out.push('[');
        out.push_str(name);
        out.push(']');
        out.push_str(eol);
    }
    out.push_str(key);
    out.push_str(" = ");
    out.push_str(value);
    out.push_str(eol);
    while let Some(l) = lines.get(pending) {
        out.push_str(l.content);
        out.push_str(l.ending);
        pending += 1;
    }
    out
}

/// Whitespace inside a key line (indentation, around the separator): spaces and
/// tabs, as `sshd` and `sysctl` read them.
fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// U+FEFF, the byte-order mark (files saved by Windows editors start with one); it
/// may precede the indentation of a key line, and counts as whitespace before a
/// comment or a section header.
const BOM: char = '\u{feff}';

/// The section to edit, trimmed; always `None` in the key-value format.
fn target(format: ConfigFormat, section: Option<&str>) -> Option<&str> {
    match format {
        ConfigFormat::Ini => section.map(str::trim),
        ConfigFormat::KeyValue => None,
    }
}

/// One line of the text as read for one key and one target section.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// The line without its ending.
    content: &'a str,
    /// `"\n"`, `"\r\n"`, or `""` for a last line without an ending.
    ending: &'a str,
    kind: Kind<'a>,
    /// In the target section (always, in the key-value format).
    in_target: bool,
}

impl<'a> Line<'a> {
    /// The key line, if this line is an active occurrence of the key in the target section.
    fn occurrence(&self) -> Option<KeyLine<'a>> {
        match self.kind {
            Kind::Key(k) if self.in_target => Some(k),
            _ => None,
        }
    }

    /// The trimmed section name, if this line is a section header.
    fn header(&self) -> Option<&'a str> {
        match self.kind {
            Kind::Header(name) => Some(name),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Blank,
    Comment,
    /// An ini section header, with its trimmed name.
    Header(&'a str),
    /// An active line of the key (in any section).
    Key(KeyLine<'a>),
    Other,
}

/// An active key line, split as `<head><rest>`.
#[derive(Debug, Clone, Copy)]
struct KeyLine<'a> {
    /// Indentation, the key and, in the `key = value` form, the whitespace and `=`.
    head: &'a str,
    /// Whitespace after the separator, the value, trailing whitespace.
    rest: &'a str,
    /// The `key value` form: the separator is the whitespace at the start of `rest`.
    spaced: bool,
}

/// Reads `text` into lines, each with its kind and whether it is in the target section.
fn scan<'a>(
    text: &'a str,
    format: ConfigFormat,
    section: Option<&str>,
    key: &str,
) -> Vec<Line<'a>> {
    let target = target(format, section);
    let mut current: Option<&str> = None;
    text.split_inclusive('\n')
        .map(|raw| {
            let content = raw
                .strip_suffix('\n')
                .map_or(raw, |c| c.strip_suffix('\r').unwrap_or(c));
            let ending = raw.get(content.len()..).unwrap_or_default();
            let kind = classify(content, format, key);
            if let Kind::Header(name) = kind {
                current = Some(name);
            }
            Line {
                content,
                ending,
                kind,
                in_target: current == target,
            }
        })
        .collect()
}

fn classify<'a>(content: &'a str, format: ConfigFormat, key: &str) -> Kind<'a> {
    let trimmed = content.trim_start_matches(|c: char| c.is_whitespace() || c == BOM);
    if trimmed.is_empty() {
        return Kind::Blank;
    }
    if trimmed.starts_with(['#', ';']) {
        return Kind::Comment;
    }
    if format == ConfigFormat::Ini
        && let Some(name) = header_name(trimmed)
    {
        return Kind::Header(name);
    }
    key_line(content, format, key).map_or(Kind::Other, Kind::Key)
}

/// The trimmed name of a section header (`trimmed` has no leading whitespace).
fn header_name(trimmed: &str) -> Option<&str> {
    let (name, after) = trimmed.strip_prefix('[')?.split_once(']')?;
    let after = after.trim_start();
    if after.is_empty() || after.starts_with(['#', ';']) {
        Some(name.trim())
    } else {
        None
    }
}

fn key_line<'a>(content: &'a str, format: ConfigFormat, key: &str) -> Option<KeyLine<'a>> {
    // A key may itself start with a byte-order mark: try the line as it is first.
    let body = content.trim_start_matches(is_space);
    let after_key = body.strip_prefix(key).or_else(|| {
        body.strip_prefix(BOM)?
            .trim_start_matches(is_space)
            .strip_prefix(key)
    })?;
    let gap = after_key.trim_start_matches(is_space);
    let (rest, spaced) = match gap.strip_prefix('=') {
        Some(rest) => (rest, false),
        None if format == ConfigFormat::KeyValue && gap.len() < after_key.len() => {
            (after_key, true)
        }
        None => return None,
    };
    let head = content.get(..content.len() - rest.len())?;
    Some(KeyLine { head, rest, spaced })
}

/// Pushes the content of key line `k` with its value set to `value`.
fn push_rewritten(out: &mut String, k: KeyLine<'_>, value: &str) {
    out.push_str(k.head);
    let already = k
        .rest
        .strip_suffix(value)
        .is_some_and(|ws| ws.chars().all(is_space));
    if already {
        out.push_str(k.rest);
        return;
    }
    if k.spaced && value.trim_start_matches(is_space).starts_with('=') {
        out.push_str(" = ");
    } else {
        let ws_len = k.rest.len() - k.rest.trim_start_matches(is_space).len();
        out.push_str(k.rest.get(..ws_len).unwrap_or_default());
    }
    out.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConfigFormat::{Ini, KeyValue};

    /// Shorthand for `set` in the key-value format.
    fn kv(text: &str, key: &str, value: &str) -> String {
        set(text, KeyValue, None, key, value)
    }

    #[test]
    fn sysctl_conf_with_comments_and_a_commented_out_key() {
        let t = "# /etc/sysctl.conf\n\
                 #net.ipv4.ip_forward=1\n\
                 \n\
                 kernel.kptr_restrict = 1\n\
                 net.ipv4.ip_forward = 0\n\
                 ; net.ipv4.ip_forward = 2\n";
        assert_eq!(
            get(t, KeyValue, None, "net.ipv4.ip_forward").as_deref(),
            Some("0")
        );
        assert_eq!(
            kv(t, "net.ipv4.ip_forward", "1"),
            t.replace("net.ipv4.ip_forward = 0\n", "net.ipv4.ip_forward = 1\n")
        );
        assert_eq!(
            kv(t, "kernel.dmesg_restrict", "1"),
            format!("{t}kernel.dmesg_restrict = 1\n")
        );
        // Only commented out: absent, and the comment stays.
        let c = "#kernel.dmesg_restrict = 0\n";
        assert_eq!(get(c, KeyValue, None, "kernel.dmesg_restrict"), None);
        assert_eq!(
            kv(c, "kernel.dmesg_restrict", "1"),
            "#kernel.dmesg_restrict = 0\nkernel.dmesg_restrict = 1\n"
        );
    }

    #[test]
    fn key_value_form_keeps_its_whitespace() {
        let t = "Port 22\n\tPermitRootLogin   yes  \n#PermitRootLogin no\n";
        assert_eq!(
            get(t, KeyValue, None, "PermitRootLogin").as_deref(),
            Some("yes")
        );
        assert_eq!(
            kv(t, "PermitRootLogin", "no"),
            "Port 22\n\tPermitRootLogin   no\n#PermitRootLogin no\n"
        );
        assert_eq!(kv(t, "Port", "2222"), t.replace("Port 22", "Port 2222"));
        // `key value` is not a key line in ini.
        assert_eq!(get(t, Ini, None, "Port"), None);
        assert_eq!(get(t, Ini, None, "PermitRootLogin"), None);
    }

    #[test]
    fn key_value_form_with_a_value_starting_with_equals() {
        let t = "Banner none\n";
        let s = kv(t, "Banner", "=x");
        assert_eq!(s, "Banner = =x\n");
        assert_eq!(get(&s, KeyValue, None, "Banner").as_deref(), Some("=x"));
        assert_eq!(kv(&s, "Banner", "=x"), s);
    }

    #[test]
    fn separator_spacing_is_kept() {
        assert_eq!(kv("key  =  old\n", "key", "new"), "key  =  new\n");
        assert_eq!(kv("key=old\n", "key", "new"), "key=new\n");
        assert_eq!(kv("  key\t=\told", "key", "new"), "  key\t=\tnew");
        assert_eq!(kv("key =\n", "key", "new"), "key =new\n");
        assert_eq!(kv("key = old   \n", "key", "new"), "key = new\n");
        assert_eq!(kv("key = old\n", "key", ""), "key = \n");
    }

    #[test]
    fn every_duplicate_is_set_and_the_last_one_is_read() {
        let t = "a = 1\nb = 2\na=3\n  a 4\n";
        assert_eq!(get(t, KeyValue, None, "a").as_deref(), Some("4"));
        assert_eq!(kv(t, "a", "9"), "a = 9\nb = 2\na=9\n  a 9\n");
        assert_eq!(get(t, Ini, None, "a").as_deref(), Some("3"));
        assert_eq!(set(t, Ini, None, "a", "9"), "a = 9\nb = 2\na=9\n  a 4\n");
    }

    const APP_INI: &str = "\
APP_NAME = Gitea
RUN_USER = git

[repository]
ROOT = /var/lib/gitea/repos
; DISABLE_HTTP_GIT = true
DEFAULT_BRANCH = main

[server]  ; web
DOMAIN = git.example.com
";

    #[test]
    fn gitea_app_ini() {
        let s = Some("repository");
        assert_eq!(
            get(APP_INI, Ini, s, "ROOT").as_deref(),
            Some("/var/lib/gitea/repos")
        );
        assert_eq!(get(APP_INI, Ini, None, "ROOT"), None);
        assert_eq!(get(APP_INI, Ini, Some("server"), "ROOT"), None);
        assert_eq!(
            get(APP_INI, Ini, Some("server"), "DOMAIN").as_deref(),
            Some("git.example.com")
        );
        assert_eq!(get(APP_INI, Ini, s, "DISABLE_HTTP_GIT"), None);

        // An existing key.
        assert_eq!(
            set(APP_INI, Ini, s, "ROOT", "/srv/repos"),
            APP_INI.replace("/var/lib/gitea/repos", "/srv/repos")
        );
        // A missing key in an existing section: after its last non-blank line.
        assert_eq!(
            set(APP_INI, Ini, s, "DISABLE_HTTP_GIT", "true"),
            APP_INI.replace(
                "DEFAULT_BRANCH = main\n",
                "DEFAULT_BRANCH = main\nDISABLE_HTTP_GIT = true\n"
            )
        );
        // The section name is trimmed on both sides.
        assert_eq!(
            set(APP_INI, Ini, Some(" server "), "PROTOCOL", "https"),
            format!("{APP_INI}PROTOCOL = https\n")
        );
        // A missing section.
        assert_eq!(
            set(APP_INI, Ini, Some("security"), "INSTALL_LOCK", "true"),
            format!("{APP_INI}\n[security]\nINSTALL_LOCK = true\n")
        );
        // Section None: before the first header, after the last non-blank line.
        assert_eq!(
            set(APP_INI, Ini, None, "RUN_MODE", "prod"),
            APP_INI.replace("RUN_USER = git\n", "RUN_USER = git\nRUN_MODE = prod\n")
        );
        assert_eq!(
            set(APP_INI, Ini, None, "RUN_USER", "gitea"),
            APP_INI.replace("RUN_USER = git", "RUN_USER = gitea")
        );
    }

    #[test]
    fn ini_section_none_and_header_only_sections() {
        assert_eq!(set("\n[a]\n", Ini, None, "k", "v"), "k = v\n\n[a]\n");
        assert_eq!(
            set("[a]\n\n[b]\n", Ini, Some("a"), "k", "v"),
            "[a]\nk = v\n\n[b]\n"
        );
        assert_eq!(set("[a]", Ini, Some("a"), "k", "v"), "[a]\nk = v\n");
        assert_eq!(set("x = 1", Ini, None, "k", "v"), "x = 1\nk = v\n");
        // A repeated section: read across all occurrences, insert into the last.
        let t = "[a]\nk = 1\n[b]\n[a] # again\nj = 2\n\n";
        assert_eq!(get(t, Ini, Some("a"), "j").as_deref(), Some("2"));
        assert_eq!(
            set(t, Ini, Some("a"), "k", "3"),
            t.replace("k = 1", "k = 3")
        );
        assert_eq!(
            set(t, Ini, Some("a"), "m", "3"),
            "[a]\nk = 1\n[b]\n[a] # again\nj = 2\nm = 3\n\n"
        );
        // Not headers: text after `]`, or no `]`; they stay in the section above.
        let t = "[a]\n[b] x\n[c\nk = 1\n";
        assert_eq!(get(t, Ini, Some("a"), "k").as_deref(), Some("1"));
        // Missing section after a blank last line: no second blank line.
        assert_eq!(
            set("a = 1\n\n", Ini, Some("s"), "k", "v"),
            "a = 1\n\n[s]\nk = v\n"
        );
        assert_eq!(
            set("a = 1\n  ", Ini, Some("s"), "k", "v"),
            "a = 1\n  \n[s]\nk = v\n"
        );
    }

    #[test]
    fn crlf_file() {
        let t = "# c\r\nkey = 1\r\nother = 2\r\n";
        assert_eq!(get(t, KeyValue, None, "key").as_deref(), Some("1"));
        assert_eq!(kv(t, "key", "2"), "# c\r\nkey = 2\r\nother = 2\r\n");
        assert_eq!(kv(t, "new", "3"), format!("{t}new = 3\r\n"));
        assert_eq!(
            set("[a]\r\nx = 1", Ini, Some("b"), "k", "v"),
            "[a]\r\nx = 1\r\n\r\n[b]\r\nk = v\r\n"
        );
        // The first line ending decides.
        assert_eq!(kv("a = 1\nb = 2\r\n", "k", "v"), "a = 1\nb = 2\r\nk = v\n");
    }

    #[test]
    fn file_without_final_newline() {
        assert_eq!(kv("a = 1\nkey = 1", "key", "2"), "a = 1\nkey = 2");
        assert_eq!(kv("a = 1", "key", "2"), "a = 1\nkey = 2\n");
        assert_eq!(
            kv("a = 1\r\nb = 1", "key", "2"),
            "a = 1\r\nb = 1\r\nkey = 2\r\n"
        );
        assert_eq!(
            set("[s]\nx = 1", Ini, Some("s"), "key", "2"),
            "[s]\nx = 1\nkey = 2\n"
        );
    }

    #[test]
    fn empty_file() {
        assert_eq!(get("", KeyValue, None, "k"), None);
        assert_eq!(kv("", "k", "v"), "k = v\n");
        assert_eq!(set("", Ini, None, "k", "v"), "k = v\n");
        assert_eq!(set("", Ini, Some("s"), "k", "v"), "[s]\nk = v\n");
    }

    #[test]
    fn a_longer_key_does_not_match() {
        let t = "key.more = x\nkeyed = y\nkey.more y\n";
        assert_eq!(get(t, KeyValue, None, "key"), None);
        assert_eq!(kv(t, "key", "1"), format!("{t}key = 1\n"));
        // A bare key without a separator is not a key line either.
        assert_eq!(get("key\n", KeyValue, None, "key"), None);
    }

    #[test]
    fn value_with_equals_and_hash() {
        let t = "opts = a=b # not a comment\n";
        assert_eq!(
            get(t, KeyValue, None, "opts").as_deref(),
            Some("a=b # not a comment")
        );
        let s = kv(t, "opts", "x=1 #2; [y]");
        assert_eq!(s, "opts = x=1 #2; [y]\n");
        assert_eq!(
            get(&s, KeyValue, None, "opts").as_deref(),
            Some("x=1 #2; [y]")
        );
        let s = set("[s]\n", Ini, Some("s"), "opts", "= a");
        assert_eq!(get(&s, Ini, Some("s"), "opts").as_deref(), Some("= a"));
    }

    #[test]
    fn unicode_elsewhere_is_untouched() {
        let t = "# Grüße, 日本語 ☃\nname = Zoë\n[ünï]\r\nk = ✓\n";
        assert_eq!(get(t, KeyValue, None, "name").as_deref(), Some("Zoë"));
        assert_eq!(kv(t, "name", "Åsa"), t.replace("Zoë", "Åsa"));
        assert_eq!(get(t, Ini, Some("ünï"), "k").as_deref(), Some("✓"));
        assert_eq!(
            set(t, Ini, Some("ünï"), "k", "✗ ok"),
            t.replace('✓', "✗ ok")
        );
        assert_eq!(set(t, Ini, Some("ünï"), "j", "1"), format!("{t}j = 1\n"));
    }

    #[test]
    fn byte_order_mark_is_indentation() {
        let t = "\u{feff}[s]\r\nk = 1\r\n";
        assert_eq!(get(t, Ini, Some("s"), "k").as_deref(), Some("1"));
        assert_eq!(set(t, Ini, Some("s"), "j", "2"), format!("{t}j = 2\r\n"));
        assert_eq!(kv("\u{feff}k = 1\n", "k", "2"), "\u{feff}k = 2\n");
        assert_eq!(kv("\u{feff} k 1\n", "k", "2"), "\u{feff} k 2\n");
        // A key that starts with a byte-order mark (within the contract) still matches.
        let s = kv("", "\u{feff}k", "1");
        assert_eq!(get(&s, KeyValue, None, "\u{feff}k").as_deref(), Some("1"));
        assert_eq!(kv(&s, "\u{feff}k", "1"), s);
    }

    #[test]
    fn values_are_written_verbatim_and_read_trimmed() {
        let s = kv("", "k", "  padded\u{a0} ");
        assert_eq!(s, "k =   padded\u{a0} \n");
        assert_eq!(get(&s, KeyValue, None, "k").as_deref(), Some("padded"));
        assert_eq!(kv(&s, "k", "  padded\u{a0} "), s);
    }

    /// Tricky texts for the properties; each is tried with every case in `CASES`.
    const TEXTS: &[&str] = &[
        "",
        "\n",
        "\r\n",
        "   ",
        "key",
        "key\n",
        "key = 1",
        "key=1\n",
        "key 1\n",
        "  key  =  1  \n",
        "key =\n",
        "key\t\n",
        "key = 1\nkey = 2\n",
        "# key = 1\n; key 2\n",
        "key.more = 1\nkeyx 2\n",
        "a = 1\r\nkey = 2\r\n",
        "a = 1\r\nb = 2",
        "x\r",
        "key = 1\r",
        "\r\n\n\r\n",
        "[s]\n",
        "[s]",
        "[ s ] ; c\nkey = 1\n\n[t]\nkey = 2\n",
        "key = 0\n[s]\nkey = 1\n[s]\n\nother = 3\n\n[u]\n",
        "\n\n[s]\n\n",
        "[s\nkey = 1\n[s] junk\nkey = 2\n",
        "[]\nkey = 1\n",
        "# Grüße\nkey = ✓\n[日本]\nkey = 語\n",
        "key = a=b # c\n",
        "\u{feff}key = 1\n",
        "\tkey\t=\tv\t\n[s]#c\n\tkey\tv\n",
        "key\u{a0}= 1\nkey \u{a0}1\n",
    ];

    /// (format, section, key, value) cases for the properties.
    const CASES: &[(ConfigFormat, Option<&str>, &str, &str)] = &[
        (KeyValue, None, "key", "v"),
        (KeyValue, None, "key", ""),
        (KeyValue, None, "key", "  =spaced= "),
        (KeyValue, None, "key", "1"),
        (KeyValue, None, "other", "x # y"),
        (Ini, None, "key", "v"),
        (Ini, None, "key", "=x"),
        (Ini, Some("s"), "key", "v w"),
        (Ini, Some("s"), "key", ""),
        (Ini, Some(" t "), "key", "\u{3000}x\u{a0}"),
        (Ini, Some("u"), "new", "[v]"),
        (Ini, Some(""), "key", "1"),
        (Ini, Some("日本"), "key", "語"),
        (Ini, Some("missing"), "key", "v"),
    ];

    /// The lines of `text` (each with its ending) that are not active occurrences of
    /// the key in the target section.
    fn other_lines<'a>(text: &'a str, c: (ConfigFormat, Option<&str>, &str, &str)) -> Vec<&'a str> {
        let mut raw = text.split_inclusive('\n');
        scan(text, c.0, c.1, c.2)
            .iter()
            .zip(&mut raw)
            .filter(|(l, _)| l.occurrence().is_none())
            .map(|(_, r)| r)
            .collect()
    }

    fn occurrences(text: &str, c: (ConfigFormat, Option<&str>, &str, &str)) -> usize {
        scan(text, c.0, c.1, c.2)
            .iter()
            .filter(|l| l.occurrence().is_some())
            .count()
    }

    #[test]
    fn properties_over_tricky_inputs() {
        let (mut checked, mut noop) = (0, 0);
        for &t in TEXTS {
            for &c in CASES {
                let (f, s, k, v) = c;
                let ctx = format!("text {t:?}, case {c:?}");
                let once = set(t, f, s, k, v);
                assert_eq!(get(&once, f, s, k), Some(v.trim().to_string()), "{ctx}");
                assert_eq!(set(&once, f, s, k, v), once, "idempotent: {ctx}");

                // The key's lines are rewritten in place, or one is inserted.
                let (before, after) = (occurrences(t, c), occurrences(&once, c));
                assert!(after == before || (before == 0 && after == 1), "{ctx}");

                // Every other line is unchanged and in order; an appended section
                // adds its header (and a blank line); the last line may gain an ending.
                let old = other_lines(t, c);
                let mut new = other_lines(&once, c);
                let section_exists = scan(t, f, s, k)
                    .iter()
                    .any(|l| l.header().is_some() && l.header() == target(f, s));
                if before == 0 && f == Ini && s.is_some() && !section_exists {
                    let header = new.pop().unwrap_or_default();
                    assert_eq!(
                        header.trim_end(),
                        format!("[{}]", s.unwrap_or_default().trim()),
                        "{ctx}"
                    );
                    if new.len() > old.len() {
                        assert_eq!(new.pop().map(str::trim), Some(""), "{ctx}");
                    }
                }
                assert_eq!(new.len(), old.len(), "{ctx}");
                for (i, (o, n)) in old.iter().zip(&new).enumerate() {
                    if i + 1 == old.len() && !o.ends_with('\n') {
                        assert!(n.starts_with(o), "{ctx}: {o:?} became {n:?}");
                    } else {
                        assert_eq!(o, n, "{ctx}");
                    }
                }

                // Setting the current value of a single `key = value` line is a no-op.
                let lines = scan(t, f, s, k);
                let mut occ = lines.iter().filter(|l| l.occurrence().is_some());
                if let (Some(only), None, Some(cur)) = (occ.next(), occ.next(), get(t, f, s, k))
                    && only.content == format!("{k} = {cur}")
                {
                    assert_eq!(set(t, f, s, k, &cur), t, "current value: {ctx}");
                    noop += 1;
                }
                checked += 1;
            }
        }
        assert_eq!(checked, TEXTS.len() * CASES.len());
        assert!(noop > 20, "only {noop} no-op checks ran");
    }
}
