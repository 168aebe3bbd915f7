//! nginx: one managed include file per mitigation, valid inside a `server` block
//! (`include /etc/nginx/airlock.d/*.conf;` once in each protected server).
//!
//! A rule with one condition is one `if ($VAR ~* "P") { return N; }`; a rule with
//! several (all must hold) sets a flag that each non-matching condition clears,
//! since nginx's `if` takes one condition. `$uri` is the decoded, normalised path,
//! `$args` the query string, `$http_NAME` a header. `abort` is `return 444`, which
//! closes the connection without an answer.
//!
//! Escaping: the pattern goes into a double-quoted string, where nginx turns `\\`
//! into `\` and `\"` into `"`; every backslash of the pattern is doubled and every
//! quote (`"` or the regex escape `\"`) is written `\"`, which nginx hands to PCRE
//! as a plain `"`, a literal. So the string always ends where airlock ends it, stays
//! within nginx's 4 KiB token limit for any pattern the format allows, and braces,
//! semicolons and `$` inside it are only regex characters.

use super::{Block, On, Reply, split_flags};
use std::fmt::Write;

/// The include file for `mitigation`'s url-blocks.
pub fn render(mitigation: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "# Managed by airlock: url-block rules of mitigation {mitigation}. Do not edit:\n\
         # airlock-applier replaces this file with each revision and removes it on rollback.\n\
         # Include it inside every server block to protect: include <include_dir>/*.conf;\n"
    );
    for (i, b) in blocks.iter().enumerate() {
        let action = match b.response {
            Reply::Status(n) => format!("return {n};"),
            Reply::Abort => "return 444;".to_string(),
        };
        let _ = writeln!(out, "\n# {} ({})", b.name, describe(b));
        match b.matches.as_slice() {
            [one] => {
                let _ = writeln!(out, "if ({}) {{ {action} }}", condition(one, false));
            }
            many => {
                let flag = format!("$airlock_{}_{}", variable_safe(mitigation), i + 1);
                let _ = writeln!(out, "set {flag} 1;");
                for c in many {
                    let _ = writeln!(out, "if ({}) {{ set {flag} 0; }}", condition(c, true));
                }
                let _ = writeln!(out, "if ({flag} = 1) {{ {action} }}");
            }
        }
    }
    out
}

/// `$var ~* "pattern"` (or `!~*` when `negate`).
fn condition(c: &super::Cond, negate: bool) -> String {
    let (icase, pattern) = split_flags(&c.pattern);
    let op = match (negate, icase) {
        (false, false) => "~",
        (false, true) => "~*",
        (true, false) => "!~",
        (true, true) => "!~*",
    };
    format!("{} {op} \"{}\"", variable(&c.on), quote(pattern))
}

fn variable(on: &On) -> String {
    match on {
        On::Path => "$uri".into(),
        On::Query => "$args".into(),
        On::Header(h) => format!("$http_{}", h.to_ascii_lowercase().replace('-', "_")),
    }
}

/// The pattern inside nginx double quotes.
fn quote(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('"') => out.push_str("\\\""),
                Some('\\') => out.push_str("\\\\\\\\"),
                Some(n) => {
                    out.push_str("\\\\");
                    out.push(n);
                }
                None => out.push_str("\\\\"),
            },
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// `[a-z0-9_]` for a variable name.
fn variable_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// "path and header X-Y must match: answer 403", for the comment line above a
/// rule (the patterns themselves are only in the rule: a comment line stays short
/// and free of anything a server could read into).
pub(crate) fn describe(b: &Block) -> String {
    let conds: Vec<String> = b
        .matches
        .iter()
        .map(|m| match &m.on {
            On::Path => "path".to_string(),
            On::Query => "query".to_string(),
            On::Header(h) => format!("header {h}"),
        })
        .collect();
    let reply = match b.response {
        Reply::Status(n) => format!("answer {n}"),
        Reply::Abort => "drop the connection".into(),
    };
    format!("{} must match: {reply}", conds.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Cond;

    fn block(matches: &[(On, &str)], response: Reply) -> Block {
        Block {
            name: "r".into(),
            matches: matches
                .iter()
                .map(|(on, p)| Cond {
                    on: on.clone(),
                    pattern: (*p).into(),
                })
                .collect(),
            response,
        }
    }

    #[test]
    fn one_condition_is_one_if() {
        let s = render(
            "AM-1",
            &[block(&[(On::Path, "(?i)^/a\\.json")], Reply::Status(403))],
        );
        assert!(
            s.contains("if ($uri ~* \"^/a\\\\.json\") { return 403; }"),
            "{s}"
        );
    }

    #[test]
    fn several_conditions_all_must_hold() {
        let s = render(
            "AM-2.x",
            &[block(
                &[
                    (On::Path, "^/ecp/"),
                    (On::Header("X-BEResource".into()), "(?i)~"),
                ],
                Reply::Abort,
            )],
        );
        assert!(s.contains("set $airlock_am_2_x_1 1;"), "{s}");
        assert!(
            s.contains("if ($uri !~ \"^/ecp/\") { set $airlock_am_2_x_1 0; }"),
            "{s}"
        );
        assert!(
            s.contains("if ($http_x_beresource !~* \"~\") { set $airlock_am_2_x_1 0; }"),
            "{s}"
        );
        assert!(
            s.contains("if ($airlock_am_2_x_1 = 1) { return 444; }"),
            "{s}"
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_end_the_string() {
        assert_eq!(quote(r#"a"b\"c\\d\$"#), r#"a\"b\"c\\\\d\\$"#);
        // A literal backslash before `t` must not become a tab for nginx.
        assert_eq!(quote(r"\\t"), r"\\\\t");
        let s = render(
            "AM-1",
            &[block(
                &[(On::Query, "\";} return 200; #")],
                Reply::Status(403),
            )],
        );
        let line = s.lines().find(|l| l.starts_with("if")).unwrap_or_default();
        assert_eq!(line, r#"if ($args ~ "\";} return 200; #") { return 403; }"#);
    }
}
