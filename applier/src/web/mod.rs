//! `url-block` rendered for the host's web server (design card §3, §6 `[web]`):
//!
//! - nginx ([`nginx`]) and apache ([`apache`]): one managed include file per
//!   mitigation, `include_dir/airlock-ID.conf`, that the admin includes once in each
//!   protected `server` / virtual host;
//! - IIS ([`iis`]): rules inside `web.config`'s `system.webServer/rewrite/rules`,
//!   named `airlock ID NAME`, edited in place with everything else kept byte for byte.
//!
//! Patterns are the portable subset checked by `airlock_format::pattern` when a
//! document is parsed, so every server reads them the same way; the renderers only
//! translate the leading `(?i)` flag into the server's own case-insensitive switch
//! and escape the pattern for the server's config syntax, so that no pattern or
//! header name can break out of it.

pub mod apache;
pub mod iis;
pub mod nginx;

use airlock_format::mitigation::{MatchOn, Response, UrlBlock};
use serde::{Deserialize, Serialize};

/// A url-block as the applier keeps it (in `state.json`) and renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// Rule name, `[A-Za-z0-9._-]{1,64}`.
    pub name: String,
    /// Conditions, all of which must hold.
    pub matches: Vec<Cond>,
    /// What the server answers.
    pub response: Reply,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cond {
    /// What is matched.
    pub on: On,
    /// The pattern (portable subset; may start with `(?i)`).
    pub pattern: String,
}

/// The part of the request a pattern is matched against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum On {
    /// The URL path, decoded (nginx `$uri`, apache `%{REQUEST_URI}`, IIS `{URL}`).
    Path,
    /// The query string, as sent (nginx `$args`, apache `%{QUERY_STRING}`, IIS
    /// `{QUERY_STRING}`).
    Query,
    /// A request header, `[A-Za-z0-9_-]{1,64}`.
    Header(String),
}

/// The server's answer to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    /// This HTTP status (400-599), no body from the application.
    Status(u16),
    /// Drop the connection without an answer.
    Abort,
}

impl Block {
    /// The url-blocks of a mitigation, in document order.
    pub fn all_of(m: &airlock_format::mitigation::Mitigation) -> Vec<Block> {
        m.actions
            .iter()
            .filter_map(|a| match a {
                airlock_format::mitigation::Action::UrlBlock(b) => Some(Block::from_format(b)),
                _ => None,
            })
            .collect()
    }

    /// The applier's copy of a document's url-block.
    pub fn from_format(b: &UrlBlock) -> Block {
        Block {
            name: b.name.clone(),
            matches: b
                .matches
                .iter()
                .map(|m| Cond {
                    on: match &m.on {
                        MatchOn::Path => On::Path,
                        MatchOn::Query => On::Query,
                        MatchOn::Header(h) => On::Header(h.clone()),
                    },
                    pattern: m.pattern.clone(),
                })
                .collect(),
            response: match b.response {
                Response::Status(s) => Reply::Status(s),
                Response::Abort => Reply::Abort,
            },
        }
    }
}

/// The pattern without its leading `(?i)`, and whether it had one.
pub fn split_flags(pattern: &str) -> (bool, &str) {
    match pattern.strip_prefix("(?i)") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    }
}

/// The name of the managed include file of a mitigation (nginx, apache).
pub fn include_name(mitigation: &str) -> String {
    format!("airlock-{mitigation}.conf")
}
