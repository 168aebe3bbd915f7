//! apache httpd: one managed include file per mitigation of mod_rewrite rules,
//! valid in server config and `<VirtualHost>` context (`IncludeOptional
//! /etc/apache2/airlock.d/*.conf` once in each protected virtual host; mod_rewrite
//! must be enabled).
//!
//! Each rule is its conditions (`RewriteCond`, which all must hold) and
//! `RewriteRule ^ - [R=N,L]`: a status outside 3xx makes mod_rewrite answer with
//! it and stop. `%{REQUEST_URI}` is the decoded path, `%{QUERY_STRING}` the query,
//! `%{HTTP:Name}` a header, `[NC]` the case-insensitive flag. mod_rewrite cannot
//! drop a connection, so `abort` is answered with 403, and the file says so.
//!
//! Escaping: the pattern goes into a double-quoted argument, where apache only
//! unescapes `\"`; every quote is rewritten as the regex escape `\x22`, so the
//! argument always ends where airlock ends it; every literal `$` as `\x24`, so no
//! `${NAME}` is left for apache's configuration-variable substitution; and a first
//! character that mod_rewrite would read as an operator (`!`, `-`, `<`, `>`, `=`)
//! is escaped.

use super::{Block, On, Reply, split_flags};
use std::fmt::Write;

/// The include file for `mitigation`'s url-blocks.
pub fn render(mitigation: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "# Managed by airlock: url-block rules of mitigation {mitigation}. Do not edit:\n\
         # airlock-applier replaces this file with each revision and removes it on rollback.\n\
         # Include it in every virtual host to protect: IncludeOptional <include_dir>/*.conf\n\
         RewriteEngine On\n"
    );
    for b in blocks {
        let _ = writeln!(out, "\n# {} ({})", b.name, super::nginx::describe(b));
        if b.response == Reply::Abort {
            let _ = writeln!(
                out,
                "# mod_rewrite cannot drop a connection: answered with 403 instead"
            );
        }
        for c in &b.matches {
            let (icase, pattern) = split_flags(&c.pattern);
            let input = match &c.on {
                On::Path => "%{REQUEST_URI}".to_string(),
                On::Query => "%{QUERY_STRING}".to_string(),
                On::Header(h) => format!("%{{HTTP:{h}}}"),
            };
            let flags = if icase { " [NC]" } else { "" };
            let _ = writeln!(out, "RewriteCond {input} \"{}\"{flags}", quote(pattern));
        }
        let status = match b.response {
            Reply::Status(n) => n,
            Reply::Abort => 403,
        };
        let _ = writeln!(out, "RewriteRule ^ - [R={status},L]");
    }
    out
}

/// The pattern inside apache double quotes: quotes as `\x22`, literal dollars as
/// `\x24` (apache substitutes `${NAME}` on every configuration line, quoted or not,
/// and the only `$` left is the anchor, which the subset never lets a `{` follow),
/// and a first character mod_rewrite would read as an operator escaped.
fn quote(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    if pattern.starts_with(['!', '-', '<', '>', '=']) {
        out.push('\\');
    }
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('"') => out.push_str(r"\x22"),
                Some('$') => out.push_str(r"\x24"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '"' => out.push_str(r"\x22"),
            '$' if in_class => out.push_str(r"\x24"),
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Cond;

    #[test]
    fn conditions_then_one_rule() {
        let b = Block {
            name: "x".into(),
            matches: vec![
                Cond {
                    on: On::Path,
                    pattern: "(?i)^/cgi-bin/".into(),
                },
                Cond {
                    on: On::Header("User-Agent".into()),
                    pattern: "\\$\\{jndi".into(),
                },
            ],
            response: Reply::Status(403),
        };
        let s = render("AM-1", &[b]);
        assert!(
            s.contains("RewriteCond %{REQUEST_URI} \"^/cgi-bin/\" [NC]\n"),
            "{s}"
        );
        assert!(
            s.contains(r#"RewriteCond %{HTTP:User-Agent} "\x24\{jndi""#),
            "{s}"
        );
        assert!(s.contains("RewriteRule ^ - [R=403,L]\n"), "{s}");
    }

    #[test]
    fn operators_and_quotes_are_escaped() {
        assert_eq!(quote("!x"), "\\!x");
        assert_eq!(quote("-f"), "\\-f");
        assert_eq!(quote("=a\"b\\\"c"), "\\=a\\x22b\\x22c");
        assert_eq!(quote(r"^z[${PATH}]z\${2}$"), r"^z[\x24{PATH}]z\x24{2}$");
    }
}
