//! The portable regular-expression subset of `url-block` patterns: one syntax that
//! nginx (PCRE, `~` / `~*`), apache (PCRE, mod_rewrite `RewriteCond`, `[NC]`) and
//! IIS URL Rewrite (ECMAScript, `ignoreCase`) all read the same way. [`check`]
//! accepts a pattern only if every construct in it is in the table below, and
//! otherwise names the first construct outside it, its character offset, and what
//! to write instead; it then refuses a pattern that can match the empty string
//! (last row). [`crate::mitigation`] calls it on every `<match pattern>`, so a
//! document with an unportable pattern is refused when it is parsed (`feed publish`,
//! `fetch`, every `verify`).
//!
//! | construct | accepted | refused (write instead) |
//! |---|---|---|
//! | whole pattern | printable ASCII (0x20-0x7E), 1 to [`MAX_PATTERN_BYTES`] bytes | control and non-ASCII characters (`\t`, `\n`, `\r`, `\xHH`) |
//! | flag | `(?i)` as the very first four characters: case-insensitive | any other inline flag or flag group, `(?i)` anywhere else, `(?i)` with nothing after it |
//! | literal | printable ASCII except `\ ^ $ . \| ? * + ( ) [ ] { }` | a stray `]`, `}` (`\]`, `\}`) |
//! | escape | `\` + any ASCII punctuation (a literal), `\d \D \w \W` (ASCII), `\t \n \r`, `\xHH` with two hex digits up to `\x7f` | every other `\letter`, `\digit` and `\ `: `\s \S` (`[ \t]`), `\b \B`, backreferences `\1`-`\9`, `\0`, `\k`, `\p \P`, `\u`, `\Q \E`, `\A \z \Z \G` (`^`, `$`), `\h \H \v \V \R \N \K \X \C \c`, `\e \f \a \o`; `\x{..}`, `\xH`, `\x80`-`\xff`; a trailing `\` |
//! | any character | `.` | — |
//! | anchors | `^` and `$`, wherever an atom may stand | a quantifier on an anchor |
//! | class | `[...]`, `[^...]`: literals other than `\ ] [` (`^` when not the negation), the escapes above, ranges `a-z` between two single characters with low ≤ high, `-` first or last | `[]`, `[^]`, `]` first (`\]`), `[` inside (POSIX `[:alpha:]`, nesting; write `\[`), ranges from or to `\d \D \w \W`, reversed ranges, any other `-` (`\-`), no closing `]` |
//! | group | `( ... )`, `(?: ... )`, nested at most [`MAX_GROUP_DEPTH`] deep | `(?=`, `(?!`, `(?<=`, `(?<!`, `(?<name>`, `(?P<`, `(?'`, `(?>`, `(?#`, `(?\|`, `(?(`, flags, any other `(?`; empty groups `()`, `(?:)`; unbalanced parentheses |
//! | quantifier | after a literal, escape, `.`, class or group: `* + ?`, `{n}`, `{n,}`, `{n,m}` with decimal n ≤ m ≤ [`MAX_REPEAT`], each optionally lazy (`?` after it) | nothing to repeat (start, after `\|`, `(` or an anchor), a quantifier after a quantifier, possessive `*+ ++ ?+ {n}+`, counts above [`MAX_REPEAT`], `{` that is not one of the three forms (`\{`), `{,m}` |
//! | alternation | `a\|b` | empty alternatives: `a\|`, `\|a`, `a\|\|b`, `(a\|)` |
//! | empty match | a pattern that needs at least one character to match | a pattern that can match the empty string: `.*`, `a*`, `(x)?`, `a\|b*`, `^`, `$`, `^$`, `x{0,3}`, `a{0}`, `(a*\|b)` (`.+`, `a+`, `(x)`) |
//!
//! nginx, apache and IIS all search for a pattern anywhere in the value (none
//! anchors it implicitly), so a pattern that can match the empty string matches at
//! some position of every value: a url-block with it would block every request and
//! take the site down. Whether a pattern can is decided on its structure, in the same
//! scan: a literal, escape, `.` or class cannot match the empty string; `^` and `$`
//! can; a group can if its content can; a sequence if all its items can; an
//! alternation if any alternative can; `*`, `?`, `{0}`, `{0,}` and `{0,m}` make
//! their atom able to, `+`, `{n}`, `{n,}` and `{n,m}` with n ≥ 1 leave it as it is.
//! For simplicity this also refuses `^$`, which only matches an empty value, not
//! every one: a rule against an empty value (an empty query string, say) is better
//! written explicitly by the vendor; a url-block pattern cannot express it.
//!
//! What this guarantees: on input made of ASCII characters other than CR and LF
//! (what a raw query string and a well-formed header value are), an accepted pattern
//! matches exactly the same strings in PCRE and in ECMAScript, with or without
//! `(?i)`. The constructs that differ between the two dialects are all refused rather
//! than given one meaning: PCRE reads `[]a]` as a class holding `]` and `a`,
//! ECMAScript as an empty class followed by `a]`; PCRE reads a `{` that starts no
//! quantifier as a literal (and `{,3}` as a quantifier since PCRE2 10.43); ECMAScript
//! reads `\1` without a group 1 as an octal escape and `\s` as including Unicode
//! spaces; PCRE reads `[[:alpha:]]` as a POSIX class, ECMAScript as a class followed
//! by a literal `]`; and so on. Refused constructs that both dialects do know
//! (lookarounds, backreferences, named groups) are refused to keep the subset small
//! enough that the renderers and a reviewer can reason about every pattern.
//!
//! Where the dialects still differ, it is on input holding a line break or a
//! non-ASCII character; a path that the server percent-decodes before matching (as
//! nginx and apache do) can hold both:
//! - `$`: PCRE's also matches just before a final newline, ECMAScript's only at the
//!   very end. Header values and the raw query string cannot hold a newline; a
//!   decoded path ending in `%0A` can.
//! - `.`: neither matches a newline (LF); PCRE's matches a carriage return (unless
//!   built with CR as a newline), ECMAScript's does not. Write `[\d\D]` for "any
//!   character at all".
//! - non-ASCII input: PCRE counts bytes (unless compiled in UTF mode), ECMAScript
//!   UTF-16 units, so counted repeats of `.`, `\D`, `\W` or negated classes (`.{3}`)
//!   can disagree on it; unbounded ones (`.*`, `[^/]+`) do not.
//!
//! In the first two cases PCRE matches more, never less, than ECMAScript (no
//! accepted construct negates a sub-pattern), so nginx and apache block a superset of
//! what IIS blocks.

use crate::limits::MAX_PATTERN_BYTES;

/// Deepest nesting of groups accepted.
pub const MAX_GROUP_DEPTH: usize = 16;

/// Largest count accepted in `{n}`, `{n,}` and `{n,m}`.
pub const MAX_REPEAT: u32 = 1000;

/// The case-insensitive flag; only accepted as the first four characters.
pub const CASE_INSENSITIVE: &str = "(?i)";

/// The refusal of a pattern that can match the empty string.
const MATCHES_EMPTY: &str = "it can match the empty string, which occurs in every value (`.*` matches at the start of any value), so it would match every request; require at least one character, e.g. `.+` instead of `.*`, `a+` instead of `a*`";

/// Why a construct is refused when there is no more specific reason.
const DIALECTS: &str = "nginx and apache read PCRE, IIS reads ECMAScript";

/// Checks that `pattern` is in the portable subset and cannot match the empty
/// string. `Err` names the first construct outside it and where (character
/// offset), e.g. "lookahead `(?=` at offset 4 is not in the portable pattern subset
/// (nginx and apache read PCRE, IIS reads ECMAScript)"; a pattern inside the subset
/// that can match the empty string is refused as a whole, without an offset.
pub fn check(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "pattern is {} bytes, longer than the limit of {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let start = if pattern.starts_with(CASE_INSENSITIVE) {
        CASE_INSENSITIVE.len()
    } else {
        0
    };
    if pattern.len() == start {
        return Err(if start == 0 {
            "pattern is empty".into()
        } else {
            "pattern is empty after `(?i)`: write what to match after the flag".into()
        });
    }
    Scanner {
        src: pattern,
        s: pattern.as_bytes(),
        i: start,
    }
    .pattern()
}

/// A refusal of a construct that one of the dialects reads differently or not at
/// all: `{what} at offset {at} is not in the portable pattern subset ({why}); {fix}`.
fn unportable(what: &str, at: usize, why: &str, fix: &str) -> String {
    let mut m = format!("{what} at offset {at} is not in the portable pattern subset ({why})");
    if !fix.is_empty() {
        m.push_str("; ");
        m.push_str(fix);
    }
    m
}

/// What a quantifier at the current position would repeat.
#[derive(Clone, Copy)]
enum Prev {
    /// The start of the pattern (after the flag).
    Start,
    /// Just after `|`.
    Bar,
    /// Just after `(` or `(?:`.
    Open,
    /// An anchor, `^` or `$`.
    Anchor(u8),
    /// A literal, escape, `.`, class or group: something to repeat.
    Atom,
    /// A quantifier (with its lazy `?`, if any).
    Quantifier,
}

/// One nesting level: the top level or a group.
struct Level {
    /// Offset of the group's `(`; `None` at the top level.
    open: Option<usize>,
    /// Offset of the last `|` seen at this level.
    bar: Option<usize>,
    /// Whether the current alternative is still empty.
    empty: bool,
    /// Whether an earlier alternative at this level can match the empty string.
    nullable_alt: bool,
    /// Whether every item of the current alternative before the last one can match
    /// the empty string.
    nullable_before: bool,
    /// Whether the last item of the current alternative can match the empty string
    /// (`true` before the first item); a quantifier with minimum 0 sets it.
    nullable_last: bool,
}

impl Level {
    fn new(open: Option<usize>) -> Self {
        Level {
            open,
            bar: None,
            empty: true,
            nullable_alt: false,
            nullable_before: true,
            nullable_last: true,
        }
    }

    /// Appends an item to the current alternative.
    fn item(&mut self, nullable: bool) {
        self.nullable_before &= self.nullable_last;
        self.nullable_last = nullable;
        self.empty = false;
    }

    /// Ends the current alternative at a `|`.
    fn bar(&mut self, at: usize) {
        self.nullable_alt = self.nullable();
        self.nullable_before = true;
        self.nullable_last = true;
        self.bar = Some(at);
        self.empty = true;
    }

    /// Whether what was read at this level so far can match the empty string: an
    /// alternation if any alternative can, a sequence if all its items can.
    fn nullable(&self) -> bool {
        self.nullable_alt || (self.nullable_before && self.nullable_last)
    }
}

/// What an escape stands for.
enum Escape {
    /// One character: escaped punctuation, `\t`, `\n`, `\r`, `\xHH`.
    Char(u8),
    /// `\d \D \w \W`.
    Class,
}

/// The last member read in a class, for ranges.
enum Member {
    /// Nothing yet, a literal `-`, or the end of a range: cannot start a range.
    None,
    /// A single character at this offset: can start a range.
    Char(u8, usize),
    /// A class escape at this offset.
    ClassEscape(usize),
}

/// A left-to-right scan. Every byte is checked to be printable ASCII before the
/// scan moves past it, so an offset reached by the scan is also a character offset.
struct Scanner<'a> {
    src: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, at: usize) -> Option<u8> {
        self.s.get(at).copied()
    }

    /// The ASCII text `at..end` for messages.
    fn text(&self, at: usize, end: usize) -> &'a str {
        self.src.get(at..end.min(self.s.len())).unwrap_or("")
    }

    /// Refuses the character at byte `at` when it is not printable ASCII.
    fn printable(&self, at: usize) -> Result<(), String> {
        match self.peek_at(at) {
            Some(b) if !(0x20..=0x7e).contains(&b) => Err(self.not_printable(at)),
            _ => Ok(()),
        }
    }

    fn not_printable(&self, at: usize) -> String {
        // Everything before `at` is ASCII, so `at` is a character boundary and offset.
        let Some(c) = self.src.get(at..).and_then(|r| r.chars().next()) else {
            return format!("byte at offset {at} is not printable ASCII");
        };
        if c.is_ascii() {
            let fix = match c {
                '\t' => "write `\\t`".to_string(),
                '\n' => "write `\\n`".to_string(),
                '\r' => "write `\\r`".to_string(),
                _ => format!("write `\\x{:02x}`", u32::from(c)),
            };
            return unportable(
                &format!("control character U+{:04X}", u32::from(c)),
                at,
                "printable ASCII only",
                &fix,
            );
        }
        let mut utf8 = [0; 4];
        let encoded: String = c
            .encode_utf8(&mut utf8)
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        unportable(
            &format!("non-ASCII character {c:?} (U+{:04X})", u32::from(c)),
            at,
            "printable ASCII only: PCRE and ECMAScript do not agree on what one non-ASCII character is",
            &format!(
                "where the server matches undecoded text, as in a query string, write its percent-encoding `{encoded}`"
            ),
        )
    }

    /// The whole pattern, from after the flag.
    fn pattern(mut self) -> Result<(), String> {
        let mut outer: Vec<Level> = Vec::new();
        let mut level = Level::new(None);
        let mut prev = Prev::Start;
        while let Some(c) = self.peek() {
            let at = self.i;
            self.printable(at)?;
            match c {
                b'\\' => {
                    self.escape(false)?;
                    level.item(false);
                    prev = Prev::Atom;
                }
                b'.' => {
                    self.i += 1;
                    level.item(false);
                    prev = Prev::Atom;
                }
                b'^' | b'$' => {
                    self.i += 1;
                    level.item(true);
                    prev = Prev::Anchor(c);
                }
                b'[' => {
                    self.class()?;
                    level.item(false);
                    prev = Prev::Atom;
                }
                b'(' => {
                    self.group_open()?;
                    if outer.len() >= MAX_GROUP_DEPTH {
                        return Err(format!(
                            "group at offset {at} is nested deeper than {MAX_GROUP_DEPTH} levels, the portable pattern limit; flatten the groups"
                        ));
                    }
                    // The group is an item of `level` once it is closed.
                    level.empty = false;
                    outer.push(level);
                    level = Level::new(Some(at));
                    prev = Prev::Open;
                }
                b')' => {
                    let (Some(open), Some(up)) = (level.open, outer.pop()) else {
                        return Err(format!(
                            "`)` at offset {at} closes no group; write `\\)` for a literal `)`"
                        ));
                    };
                    if level.empty {
                        return Err(match level.bar {
                            Some(bar) => empty_alternative(bar),
                            None => format!(
                                "empty group `{}` at offset {open} matches only the empty string; remove it",
                                self.text(open, at + 1)
                            ),
                        });
                    }
                    self.i += 1;
                    let nullable = level.nullable();
                    level = up;
                    level.item(nullable);
                    prev = Prev::Atom;
                }
                b'|' => {
                    if level.empty {
                        return Err(empty_alternative(at));
                    }
                    self.i += 1;
                    level.bar(at);
                    prev = Prev::Bar;
                }
                b'*' | b'+' | b'?' | b'{' => {
                    if self.quantifier(prev)? == 0 {
                        level.nullable_last = true;
                    }
                    prev = Prev::Quantifier;
                }
                b']' => {
                    return Err(format!(
                        "`]` at offset {at} closes no class; write `\\]` for a literal `]`"
                    ));
                }
                b'}' => {
                    return Err(format!(
                        "`}}` at offset {at} closes no quantifier; write `\\}}` for a literal `}}`"
                    ));
                }
                _ => {
                    self.i += 1;
                    level.item(false);
                    prev = Prev::Atom;
                }
            }
        }
        // The outermost group still open is the first one not closed.
        if let Some(open) = outer.iter().chain([&level]).find_map(|l| l.open) {
            return Err(format!(
                "group `(` at offset {open} is not closed; add `)`, or write `\\(` for a literal `(`"
            ));
        }
        match (level.empty, level.bar) {
            (true, Some(bar)) => Err(empty_alternative(bar)),
            _ if level.nullable() => Err(MATCHES_EMPTY.into()),
            _ => Ok(()),
        }
    }

    /// A `\` escape, outside or inside a class; the scan is on the `\`.
    fn escape(&mut self, in_class: bool) -> Result<Escape, String> {
        let at = self.i;
        let Some(c) = self.peek_at(at + 1) else {
            return Err(format!(
                "trailing `\\` at offset {at} escapes nothing; write `\\\\` for a literal `\\`"
            ));
        };
        self.printable(at + 1)?;
        self.i = at + 2;
        match c {
            b'd' | b'D' | b'w' | b'W' => Ok(Escape::Class),
            b't' => Ok(Escape::Char(b'\t')),
            b'n' => Ok(Escape::Char(b'\n')),
            b'r' => Ok(Escape::Char(b'\r')),
            b'x' => self.hex(at),
            c if c.is_ascii_punctuation() => Ok(Escape::Char(c)),
            _ => Err(bad_escape(at, c, in_class)),
        }
    }

    /// The two hex digits of `\xHH`; the scan is after the `x`.
    fn hex(&mut self, at: usize) -> Result<Escape, String> {
        let digit = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16));
        let (Some(hi), Some(lo)) = (digit(self.peek()), digit(self.peek_at(self.i + 1))) else {
            return Err(unportable(
                "`\\x` without two hex digits",
                at,
                "PCRE reads `\\x{...}` and one-digit `\\xH`, ECMAScript reads a lone `\\x` as `x`",
                "write exactly two hex digits, e.g. `\\x2e`",
            ));
        };
        self.i += 2;
        let value = hi * 16 + lo;
        if value > 0x7f {
            return Err(unportable(
                &format!("`{}` (above `\\x7f`)", self.text(at, self.i)),
                at,
                "PCRE reads it as a byte, ECMAScript as a character",
                "",
            ));
        }
        Ok(Escape::Char(value as u8))
    }

    /// A class `[...]`; the scan is on the `[`.
    fn class(&mut self) -> Result<(), String> {
        let open = self.i;
        self.i += 1;
        if self.peek() == Some(b'^') {
            self.i += 1;
        }
        let first = self.i;
        if self.peek() == Some(b']') {
            return Err(self.bracket_first(open, first));
        }
        let mut last = Member::None;
        loop {
            let at = self.i;
            let Some(c) = self.peek() else {
                return Err(format!(
                    "class `[` at offset {open} is not closed; add `]`, or write `\\[` for a literal `[`"
                ));
            };
            self.printable(at)?;
            match c {
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                b'[' => return Err(self.bracket_inside(at)),
                b'\\' => {
                    last = match self.escape(true)? {
                        Escape::Char(v) => Member::Char(v, at),
                        Escape::Class => Member::ClassEscape(at),
                    };
                }
                b'-' if at == first || self.peek_at(at + 1) == Some(b']') => {
                    self.i += 1;
                    last = Member::None;
                }
                b'-' => {
                    let (lo, lo_at) = match last {
                        Member::Char(lo, lo_at) => (lo, lo_at),
                        Member::ClassEscape(esc) => return Err(self.class_escape_range(esc)),
                        Member::None => {
                            return Err(format!(
                                "`-` at offset {at} in a class is neither first, last nor between the two ends of a range; write `\\-` for a literal `-`"
                            ));
                        }
                    };
                    self.i += 1;
                    let hi_at = self.i;
                    self.printable(hi_at)?;
                    let hi = match self.peek() {
                        Some(b'\\') => match self.escape(true)? {
                            Escape::Char(v) => v,
                            Escape::Class => return Err(self.class_escape_range(lo_at)),
                        },
                        Some(b'[') => return Err(self.bracket_inside(hi_at)),
                        Some(h) => {
                            self.i += 1;
                            h
                        }
                        // The class is not closed: the loop reports it.
                        None => continue,
                    };
                    if lo > hi {
                        return Err(format!(
                            "range `{}` at offset {lo_at} runs backwards; write the lower end first",
                            self.text(lo_at, self.i)
                        ));
                    }
                    last = Member::None;
                }
                _ => {
                    self.i += 1;
                    last = Member::Char(c, at);
                }
            }
        }
    }

    /// A `]` right after `[` or `[^`: PCRE's literal member or ECMAScript's empty class.
    fn bracket_first(&self, open: usize, first: usize) -> String {
        // PCRE closes the class at the next unescaped `]`, if there is one.
        let mut j = first + 1;
        let mut closes = false;
        while let Some(b) = self.peek_at(j) {
            match b {
                b'\\' => j += 2,
                b']' => {
                    closes = true;
                    break;
                }
                _ => j += 1,
            }
        }
        if closes {
            unportable(
                "`]` as the first member of a class",
                first,
                "PCRE reads it as a literal `]`, ECMAScript as the end of an empty class",
                "write `\\]`",
            )
        } else {
            unportable(
                &format!("empty class `{}`", self.text(open, first + 1)),
                open,
                "ECMAScript reads `[]` as matching nothing and `[^]` as any character, PCRE as the start of a longer class",
                "remove it, or write `\\[\\]` for the literal brackets",
            )
        }
    }

    /// A `[` inside a class: a POSIX class or a nested class.
    fn bracket_inside(&self, at: usize) -> String {
        let name_end = (at + 2..self.s.len()).find(|&j| !self.s[j].is_ascii_alphabetic());
        let posix = self.peek_at(at + 1) == Some(b':')
            && name_end.is_some_and(|e| {
                e > at + 2 && self.peek_at(e) == Some(b':') && self.peek_at(e + 1) == Some(b']')
            });
        match name_end {
            Some(e) if posix => unportable(
                &format!("POSIX class `{}`", self.text(at, e + 2)),
                at,
                "ECMAScript has no POSIX classes and reads one as a class followed by a literal `]`",
                "list the characters instead, e.g. `[a-zA-Z]`",
            ),
            _ => unportable(
                "`[` inside a class",
                at,
                "PCRE reads `[:` as the start of a POSIX class, and neither dialect nests classes",
                "write `\\[` for a literal `[`",
            ),
        }
    }

    /// A range whose end (at `at`) is `\d \D \w \W`.
    fn class_escape_range(&self, at: usize) -> String {
        unportable(
            "range with a class escape",
            at,
            "the dialects disagree on whether `\\d-z` is an error or holds a literal `-`",
            "write `\\-` for a literal `-`, or list the ranges, e.g. `[0-9a-z]`",
        )
    }

    /// The group opener `(` or `(?:`; refuses every other `(?`. The scan is on the `(`.
    fn group_open(&mut self) -> Result<(), String> {
        let at = self.i;
        if self.peek_at(at + 1) != Some(b'?') {
            self.i += 1;
            return Ok(());
        }
        let rest = self.s.get(at + 2..).unwrap_or_default();
        if rest.starts_with(b":") {
            self.i += 3;
            return Ok(());
        }
        let fixed: [(&[u8], &str, &str); 16] = [
            (b"=", "lookahead `(?=`", ""),
            (b"!", "negative lookahead `(?!`", ""),
            (b"<=", "lookbehind `(?<=`", ""),
            (b"<!", "negative lookbehind `(?<!`", ""),
            (b"<", "named group `(?<`", "write `(` or `(?:`"),
            (b"P<", "named group `(?P<`", "write `(` or `(?:`"),
            (b"'", "named group `(?'`", "write `(` or `(?:`"),
            (b"P=", "named backreference `(?P=`", ""),
            (b"P>", "named subroutine `(?P>`", ""),
            (b"&", "named subroutine `(?&`", ""),
            (b">", "atomic group `(?>`", "write `(?:`"),
            (b"#", "comment `(?#`", "remove it"),
            (b"|", "branch reset group `(?|`", "write `(?:`"),
            (b"(", "conditional group `(?(`", ""),
            (b"R)", "recursion `(?R)`", ""),
            (b"C", "callout `(?C`", ""),
        ];
        if let Some((_, what, fix)) = fixed.iter().find(|(p, _, _)| rest.starts_with(p)) {
            return Err(unportable(what, at, DIALECTS, fix));
        }
        let flags = rest
            .iter()
            .take_while(|b| b.is_ascii_alphabetic() || **b == b'-' || **b == b'^')
            .count();
        let after = rest.get(flags).copied();
        if flags > 0 && matches!(after, Some(b')' | b':')) {
            let text = self.text(at, at + 2 + flags + 1);
            let what = if after == Some(b')') {
                format!("inline flag `{text}`")
            } else {
                format!("inline flag group `{text}`")
            };
            return Err(unportable(
                &what,
                at,
                DIALECTS,
                "only `(?i)` as the very first characters of the pattern is portable",
            ));
        }
        Err(unportable(
            "group `(?`",
            at,
            DIALECTS,
            "write `(` or `(?:` for a group, `\\(\\?` for the literal text",
        ))
    }

    /// A quantifier `* + ? {n} {n,} {n,m}` with an optional lazy `?`; the scan is on
    /// its first character. Returns its minimum count.
    fn quantifier(&mut self, prev: Prev) -> Result<u32, String> {
        let at = self.i;
        let (end, min, max) = match self.s[at] {
            b'{' => self.braces(at)?,
            b'*' => (at + 1, 0, None),
            b'+' => (at + 1, 1, None),
            _ => (at + 1, 0, Some(1)),
        };
        let text = self.text(at, end);
        let after = match prev {
            Prev::Atom => None,
            Prev::Start => Some("at the start of the pattern".to_string()),
            Prev::Bar => Some("after `|`".to_string()),
            Prev::Open => Some("after `(`".to_string()),
            Prev::Anchor(a) => Some(format!("after the anchor `{}`", char::from(a))),
            Prev::Quantifier => {
                return Err(format!(
                    "quantifier `{text}` at offset {at} follows another quantifier (only one `?` after a quantifier, making it lazy, is portable); group the repeated part with `(?:...)`, or escape it for a literal"
                ));
            }
        };
        if let Some(after) = after {
            let literal = text.replace('{', "\\{").replace('}', "\\}");
            let literal = if literal == text {
                format!("\\{text}")
            } else {
                literal
            };
            return Err(format!(
                "quantifier `{text}` at offset {at} has nothing to repeat ({after}); write `{literal}` for a literal `{text}`"
            ));
        }
        if max.is_some_and(|m| m < min) {
            return Err(format!(
                "quantifier `{text}` at offset {at} has its minimum above its maximum; write `{{n,m}}` with n <= m"
            ));
        }
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(unportable(
                &format!("quantifier `{text}` (more than {MAX_REPEAT} repeats)"),
                at,
                "PCRE refuses counts above 65535, and large counts make huge matchers",
                "write `+` or `*` if any number will do",
            ));
        }
        self.i = end;
        match self.peek() {
            Some(b'?') => self.i += 1,
            Some(b'+') => {
                return Err(unportable(
                    &format!("possessive quantifier `{text}+`"),
                    at,
                    "ECMAScript has no possessive quantifiers",
                    "drop the `+`",
                ));
            }
            _ => {}
        }
        Ok(min)
    }

    /// `{n}`, `{n,}` or `{n,m}` at `at`: (end, min, max). Anything else is a stray `{`.
    fn braces(&self, at: usize) -> Result<(usize, u32, Option<u32>), String> {
        let number = |from: usize| -> (usize, Option<u32>) {
            let mut j = from;
            let mut n: u32 = 0;
            while let Some(d) = self.peek_at(j).filter(u8::is_ascii_digit) {
                n = n.saturating_mul(10).saturating_add(u32::from(d - b'0'));
                j += 1;
            }
            (j, (j > from).then_some(n))
        };
        let stray = || {
            unportable(
                "`{` that starts no quantifier `{n}`, `{n,}` or `{n,m}`",
                at,
                "PCRE reads it as a literal, or `{,m}` as a quantifier since PCRE2 10.43",
                "write `\\{` for a literal `{`",
            )
        };
        let (j, Some(min)) = number(at + 1) else {
            return Err(stray());
        };
        match self.peek_at(j) {
            Some(b'}') => Ok((j + 1, min, Some(min))),
            Some(b',') => match number(j + 1) {
                (k, max) if self.peek_at(k) == Some(b'}') => Ok((k + 1, min, max)),
                _ => Err(stray()),
            },
            _ => Err(stray()),
        }
    }
}

/// An empty alternative next to the `|` at `bar`.
fn empty_alternative(bar: usize) -> String {
    format!(
        "empty alternative next to `|` at offset {bar}: it matches the empty string (at the top level, every request); remove the extra `|`, or write `(?:...)?` for an optional part"
    )
}

/// A `\` + letter, digit or space that is not in the subset.
fn bad_escape(at: usize, c: u8, in_class: bool) -> String {
    let esc = format!("`\\{}`", char::from(c));
    let (what, why, fix): (String, &str, &str) = match c {
        b's' => (
            esc,
            "ECMAScript's `\\s` also matches Unicode spaces",
            "write `[ \\t]` (or the characters you mean)",
        ),
        b'S' => (
            esc,
            "ECMAScript's `\\S` excludes Unicode spaces",
            "write `[^ \\t]` (or the characters you mean)",
        ),
        b'b' | b'B' if !in_class => (
            format!("word boundary {esc}"),
            DIALECTS,
            "write the neighbouring characters, e.g. `(^|\\W)word(\\W|$)`",
        ),
        b'1'..=b'9' => (
            format!("backreference {esc}"),
            "ECMAScript reads it as an octal escape when there is no such group",
            "repeat the group's pattern instead",
        ),
        b'0' => (format!("octal escape {esc}"), DIALECTS, "write `\\xHH`"),
        b'k' => (format!("named backreference {esc}"), DIALECTS, ""),
        b'p' | b'P' => (
            format!("Unicode property {esc}"),
            DIALECTS,
            "list the ASCII characters in a class, e.g. `[a-zA-Z]`",
        ),
        b'u' => (
            format!("Unicode escape {esc}"),
            "PCRE has no `\\u`",
            "write `\\xHH` for an ASCII character",
        ),
        b'Q' | b'E' => (
            format!("quoting {esc}"),
            "ECMAScript has no `\\Q...\\E`",
            "escape each metacharacter with `\\`",
        ),
        b'A' | b'z' | b'Z' | b'G' => (
            format!("anchor {esc}"),
            "ECMAScript has no such anchor",
            "write `^` or `$`",
        ),
        b'e' | b'f' | b'a' | b'o' | b'b' => (
            format!("control or octal escape {esc}"),
            DIALECTS,
            "write `\\xHH`",
        ),
        b' ' => (
            "escaped space `\\ `".to_string(),
            "only punctuation is escaped",
            "write a plain space",
        ),
        _ => (
            format!("escape {esc}"),
            "after `\\` the subset takes only punctuation, `\\d \\D \\w \\W \\t \\n \\r` and `\\xHH`",
            "write the character without `\\` if you mean it literally",
        ),
    };
    unportable(&what, at, why, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern in samples/feed/mitigations/*.xml (as the parser returns it).
    const SAMPLES: &[&str] = &[
        r"(?i)autodiscover\.json.*@.*powershell",
        r"(?i)/autodiscover/autodiscover\.json",
        r"(?i)@.*powershell",
        r"(?i)X-AnonResource-Backend=.*/ecp/.*~.*",
        r"(?i)X-BEResource=.+/.+~.+",
        r"(?i)(\$|%24)(\{|%7b)jndi(:|%3a)",
        r"(?i)(\$|%24)(\{|%7b)(\$|%24|lower(:|%3a)|upper(:|%3a)|env(:|%3a)|::-|%3a%3a-)",
        r"(?i)\$\{(jndi:|lower:|upper:|env:|sys:|date:|::-|\$\{)",
        r"(?i)(\.|%2e|%%32%65)(\.|%2e|%%32%65)(/|%2f)",
        r"(?i)^/cgi-bin/.*(%2e|%%32%65)",
        r"(?i)^/(repo/migrate|api/v1/repos/migrate)",
        r"^/airlock-hostile-probe/",
    ];

    #[test]
    fn accepts_every_sample_pattern() {
        for p in SAMPLES {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn the_samples_list_is_complete() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/feed/mitigations");
        let mut seen = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for part in text.split("pattern=\"").skip(1) {
                let p = part.split('"').next().unwrap();
                assert!(SAMPLES.contains(&p), "add {p} to SAMPLES");
                seen += 1;
            }
        }
        assert!(seen >= 11, "only {seen} sample patterns");
    }

    #[test]
    fn accepts_the_edge_cases() {
        for p in [
            r"\\\^\$\.\|\?\*\+\(\)\[\]\{\}",
            r#"\/\-\"\'\#\%\&\,\:\;\<\=\>\@\!\~\`\_"#,
            r"[\\\]\[\^\-\d\D\w\W\t\n\r\x2e.$|?*+(){}]",
            r"a*?b+?c??d{2}?e{2,}?f{2,5}?",
            r"a{2,5}",
            r"a{3}",
            r"a{0}b{0,0}c{1000}d{1000,}e{0,1000}f{001}",
            r"[a-z0-9._-]",
            r"[^/]+",
            r"[-a]",
            r"[^-a]",
            r"[a-]",
            r"[-]",
            r"[^^]",
            r"[a^]",
            r"[+--]",
            r"[!-\/]",
            r"[\x20-\x7e]",
            r"[A-z]",
            r"\x2e",
            r"\x00\x7f",
            r"\d\D\w\W\t\n\r",
            r"^a$",
            r"a^b$c",
            r"(^)*a",
            r"(?:a|b)+",
            r"((((((((((((((((a))))))))))))))))",
            r"a|b|c",
            r"(?i)a",
            r"%24%7b",
            r"a b",
            r"[ ]",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
        assert_eq!(check(&"a".repeat(MAX_PATTERN_BYTES)), Ok(()));
    }

    #[test]
    fn accepts_patterns_that_need_a_character() {
        for p in [
            r"a*b",
            r"(a|b)+",
            r"^/x",
            r"x$",
            r".+",
            r"\d{1,3}",
            r"(?i)a?b",
            r"[^/]",
            r"a{0}b",
            r"a{1,}",
            r"(a*)b",
            r"(a?b)?c",
            r"(a|b*)c",
            r"a|b|c*d",
            r"(^|/)x",
            r"^(a|b*c)+$",
            r"^.{0,3}x",
            r"((a?)?b)",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refuses_patterns_that_match_the_empty_string() {
        for p in [
            r".*",
            r"a*",
            r"(x)?",
            r"a|b*",
            r"b*|a",
            r"^",
            r"$",
            r"^$",
            r"x{0,3}",
            r"x{0,}",
            r"a{0}",
            r"(?i)(a?)",
            r"(?i).*",
            r"(a*|b)",
            r"(?:a*|b)+",
            r"a*?",
            r"^.*$",
            r"(^)*",
            r"(a+)?",
            r"((a?))",
            r"(a|(b|c?))",
            r"a?b?c*",
            r"^(a|b)*$",
            r"^(a*|b)+$",
            r"(?:(?:a)*)",
        ] {
            assert_eq!(check(p), Err(MATCHES_EMPTY.to_string()), "{p}");
        }
    }

    /// A construct outside the subset is named before the empty match is.
    #[test]
    fn refuses_constructs_before_the_empty_match() {
        assert!(check("(?:)").unwrap_err().starts_with("empty group `(?:)`"));
        assert!(check("()*").unwrap_err().starts_with("empty group `()`"));
        assert!(check(r".*\s").unwrap_err().starts_with(r"`\s`"));
        assert!(check("a*|").unwrap_err().starts_with("empty alternative"));
        assert!(
            check("(a*")
                .unwrap_err()
                .starts_with("group `(` at offset 0")
        );
    }

    /// (pattern, substring of the refusal).
    const REFUSED: &[(&str, &str)] = &[
        ("", "pattern is empty"),
        ("(?i)", "empty after `(?i)`"),
        ("ab(?=c)", "lookahead `(?=` at offset 2"),
        ("ab(?!c)", "negative lookahead `(?!` at offset 2"),
        ("(?<=a)b", "lookbehind `(?<=` at offset 0"),
        ("(?<!a)b", "negative lookbehind `(?<!`"),
        (r"(a)\1", r"backreference `\1` at offset 3"),
        (r"(a)\9", r"backreference `\9`"),
        ("(?<x>a)", "named group `(?<`"),
        ("(?P<x>a)", "named group `(?P<`"),
        ("(?'x'a)", "named group `(?'`"),
        ("(?P=x)", "named backreference `(?P=`"),
        ("(?P>x)", "named subroutine"),
        ("(?&x)", "named subroutine"),
        ("(?>a)", "atomic group `(?>`"),
        ("(?#c)a", "comment `(?#`"),
        ("(?|a)", "branch reset"),
        ("(?(1)a)", "conditional group"),
        ("(?R)", "recursion `(?R)` at offset 0"),
        ("(?C1)", "callout `(?C`"),
        ("(?-1)", "group `(?` at offset 0"),
        ("(?1)", "group `(?` at offset 0"),
        ("a(?i)b", "inline flag `(?i)` at offset 1"),
        ("(?i)(?i)b", "inline flag `(?i)` at offset 4"),
        ("(?s)a", "inline flag `(?s)` at offset 0"),
        ("(?I)a", "inline flag `(?I)`"),
        ("(?i-s)a", "inline flag `(?i-s)`"),
        ("(?i:a)", "inline flag group `(?i:`"),
        ("a*+", "possessive quantifier `*+` at offset 1"),
        ("a++", "possessive quantifier `++`"),
        ("a?+", "possessive quantifier `?+`"),
        ("a{2}+", "possessive quantifier `{2}+`"),
        ("a{2,3}+", "possessive quantifier `{2,3}+`"),
        (r"\s", r"`\s` at offset 0"),
        (r"a\S", r"`\S` at offset 1"),
        (r"[\s]", r"`\s` at offset 1"),
        (r"\b", r"word boundary `\b`"),
        (r"\B", r"word boundary `\B`"),
        (r"[\b]", r"control or octal escape `\b`"),
        (r"\0", r"octal escape `\0`"),
        (r"\k<x>", r"named backreference `\k`"),
        (r"\p{L}", r"Unicode property `\p` at offset 0"),
        (r"\P{L}", r"Unicode property `\P`"),
        (r"\u0041", r"Unicode escape `\u` at offset 0"),
        (r"\Qa.b\E", r"quoting `\Q`"),
        (r"a\E", r"quoting `\E`"),
        (r"\Aa", r"anchor `\A`"),
        (r"a\z", r"anchor `\z`"),
        (r"a\Z", r"anchor `\Z`"),
        (r"\Ga", r"anchor `\G`"),
        (r"\h", r"escape `\h`"),
        (r"\H", r"escape `\H`"),
        (r"\v", r"escape `\v`"),
        (r"\V", r"escape `\V`"),
        (r"\R", r"escape `\R`"),
        (r"\N", r"escape `\N`"),
        (r"a\K", r"escape `\K`"),
        (r"\X", r"escape `\X`"),
        (r"\C", r"escape `\C`"),
        (r"\cA", r"escape `\c`"),
        (r"\e", r"control or octal escape `\e`"),
        (r"\f", r"control or octal escape `\f`"),
        (r"\a", r"control or octal escape `\a`"),
        (r"\o{101}", r"control or octal escape `\o`"),
        (r"\g1", r"escape `\g`"),
        (r"\i", r"escape `\i`"),
        (r"a\ b", r"escaped space `\ ` at offset 1"),
        ("abc\\", r"trailing `\` at offset 3"),
        (r"\x", r"`\x` without two hex digits at offset 0"),
        (r"\x4", r"`\x` without two hex digits"),
        (r"\x4g", r"`\x` without two hex digits"),
        (r"\x{41}", r"`\x` without two hex digits"),
        (r"\x80", r"`\x80` (above `\x7f`)"),
        (r"[\xff]", r"`\xff` (above `\x7f`) at offset 1"),
        ("[[:alpha:]]", "POSIX class `[:alpha:]` at offset 1"),
        ("[^[:digit:]]", "POSIX class `[:digit:]` at offset 2"),
        ("[a[]", "`[` inside a class at offset 2"),
        ("[[=a=]]", "`[` inside a class at offset 1"),
        ("[]a]", "`]` as the first member of a class at offset 1"),
        ("[^]a]", "`]` as the first member of a class at offset 2"),
        ("a[]", "empty class `[]` at offset 1"),
        ("a[^]", "empty class `[^]` at offset 1"),
        ("[a", "class `[` at offset 0 is not closed"),
        ("[a\\", "trailing `\\` at offset 2"),
        (
            "[a-z-0]",
            "`-` at offset 4 in a class is neither first, last nor between",
        ),
        ("[a-b-c]", "`-` at offset 4"),
        (r"[\d-z]", "range with a class escape at offset 1"),
        (r"[a-\w]", "range with a class escape at offset 1"),
        ("[z-a]", "range `z-a` at offset 1 runs backwards"),
        (
            r"[\x7e-\x20]",
            r"range `\x7e-\x20` at offset 1 runs backwards",
        ),
        ("[a-[]", "`[` inside a class at offset 3"),
        ("a{", "`{` that starts no quantifier"),
        ("a{x}", "`{` that starts no quantifier"),
        (
            "a{,3}",
            "`{` that starts no quantifier `{n}`, `{n,}` or `{n,m}` at offset 1",
        ),
        ("a{1,2", "`{` that starts no quantifier"),
        ("a{1 }", "`{` that starts no quantifier"),
        ("{", "or `{n,m}` at offset 0"),
        ("{2}", "quantifier `{2}` at offset 0 has nothing to repeat"),
        ("a}", "`}` at offset 1 closes no quantifier"),
        ("a]", "`]` at offset 1 closes no class"),
        (
            "a{1001}",
            "quantifier `{1001}` (more than 1000 repeats) at offset 1",
        ),
        ("a{1,1001}", "more than 1000 repeats"),
        ("a{1001,}", "more than 1000 repeats"),
        ("a{99999999999999999999}", "more than 1000 repeats"),
        (
            "a{5,2}",
            "quantifier `{5,2}` at offset 1 has its minimum above its maximum",
        ),
        (
            "*a",
            "quantifier `*` at offset 0 has nothing to repeat (at the start",
        ),
        (
            "(?i)+a",
            "quantifier `+` at offset 4 has nothing to repeat (at the start",
        ),
        (
            "a|*b",
            "quantifier `*` at offset 2 has nothing to repeat (after `|`)",
        ),
        (
            "(*a)",
            "quantifier `*` at offset 1 has nothing to repeat (after `(`)",
        ),
        (
            "(?:?a)",
            "quantifier `?` at offset 3 has nothing to repeat (after `(`)",
        ),
        ("^*a", "has nothing to repeat (after the anchor `^`)"),
        ("a$?", "has nothing to repeat (after the anchor `$`)"),
        (
            "a**",
            "quantifier `*` at offset 2 follows another quantifier",
        ),
        (
            "a*??",
            "quantifier `?` at offset 3 follows another quantifier",
        ),
        (
            "a{2}{3}",
            "quantifier `{3}` at offset 4 follows another quantifier",
        ),
        ("a{2}*", "follows another quantifier"),
        ("()", "empty group `()` at offset 0"),
        ("a(?:)", "empty group `(?:)` at offset 1"),
        ("|a", "empty alternative next to `|` at offset 0"),
        ("a|", "empty alternative next to `|` at offset 1"),
        ("a||b", "empty alternative next to `|` at offset 2"),
        ("(|a)", "empty alternative next to `|` at offset 1"),
        ("(a|)", "empty alternative next to `|` at offset 2"),
        ("(a", "group `(` at offset 0 is not closed"),
        ("(a(b)", "group `(` at offset 0 is not closed"),
        ("a)", "`)` at offset 1 closes no group"),
        ("(a))", "`)` at offset 3 closes no group"),
        (
            "(((((((((((((((((a)))))))))))))))))",
            "group at offset 16 is nested deeper than 16 levels",
        ),
        ("a\tb", "control character U+0009 at offset 1"),
        ("a\u{7f}", "control character U+007F at offset 1"),
        ("caf\u{e9}", "non-ASCII character 'é' (U+00E9) at offset 3"),
        ("\u{e9}(?=", "non-ASCII character 'é' (U+00E9) at offset 0"),
        ("ab(?=\u{e9}", "lookahead `(?=` at offset 2"),
        ("[\u{e9}]", "non-ASCII character 'é' (U+00E9) at offset 1"),
        ("\\\u{e9}", "non-ASCII character 'é' (U+00E9) at offset 1"),
        ("[a-\u{e9}]", "non-ASCII character 'é' (U+00E9) at offset 3"),
        (
            "\u{200b}a",
            r"non-ASCII character '\u{200b}' (U+200B) at offset 0",
        ),
    ];

    #[test]
    fn refuses_every_construct_outside_the_subset() {
        for (p, want) in REFUSED {
            let err = check(p).expect_err(p);
            assert!(err.contains(want), "{p:?}: expected {want:?} in: {err}");
        }
    }

    #[test]
    fn messages_say_what_to_write_instead() {
        let err = |p: &str| check(p).unwrap_err();
        assert_eq!(
            err("ab(?=c)"),
            "lookahead `(?=` at offset 2 is not in the portable pattern subset (nginx and apache read PCRE, IIS reads ECMAScript)"
        );
        assert!(err(r"\s").ends_with("; write `[ \\t]` (or the characters you mean)"));
        assert!(err("[]a]").ends_with("; write `\\]`"));
        assert!(err("a{").ends_with("; write `\\{` for a literal `{`"));
        assert!(err("a}").ends_with("write `\\}` for a literal `}`"));
        assert!(err("*").ends_with("write `\\*` for a literal `*`"));
        assert!(err("caf\u{e9}").ends_with("percent-encoding `%C3%A9`"));
        assert!(err("a\tb").ends_with("write `\\t`"));
        assert!(err("a\u{1}").ends_with("write `\\x01`"));
        assert!(err("a(?i)b").contains("only `(?i)` as the very first characters"));
        assert_eq!(
            err(".*"),
            "it can match the empty string, which occurs in every value (`.*` matches at the start of any value), so it would match every request; require at least one character, e.g. `.+` instead of `.*`, `a+` instead of `a*`"
        );
    }

    #[test]
    fn refuses_patterns_over_the_length_limit() {
        let err = check(&"a".repeat(MAX_PATTERN_BYTES + 1)).unwrap_err();
        assert!(err.contains("longer than the limit of 1024"), "{err}");
    }

    #[test]
    fn names_the_first_construct_outside_the_subset() {
        assert!(check(r"(?=a)\s").unwrap_err().starts_with("lookahead"));
        assert!(check(r"\s(?=a)").unwrap_err().starts_with("`\\s`"));
        // An unclosed group is only known at the end.
        assert!(check(r"(a\s").unwrap_err().starts_with("`\\s`"));
    }
}
