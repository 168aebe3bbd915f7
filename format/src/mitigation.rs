//! The mitigation document (design card §3): its model and a strict parser.
//! A document that parses is schema-valid: ids, revisions, paths, modes, units,
//! versions and url-block fields have been checked, unknown elements and
//! attributes refused. Parsing does not check signatures; see [`crate::verify`].

use crate::error::{Error, Result};
use crate::limits;
use crate::time::{Timestamp, parse_rfc3339};
use crate::xml::{self, Element};
use std::cmp::Ordering;
use std::fmt;

/// XML namespace of mitigation documents.
pub const NAMESPACE: &str = "urn:airlock:mitigation:1";

/// A parsed, schema-valid mitigation document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mitigation {
    /// `[A-Za-z0-9._-]{1,64}`.
    pub id: String,
    /// Positive, only grows.
    pub revision: u64,
    /// One-line title.
    pub title: String,
    /// Longer description.
    pub summary: String,
    /// How urgent.
    pub severity: Severity,
    /// When the vendor published this revision.
    pub published: Timestamp,
    /// Stop applying after this time.
    pub expires: Option<Timestamp>,
    /// CVE ids and links.
    pub references: Vec<Reference>,
    /// The mitigation applies when any product matches.
    pub applies_to: Vec<Product>,
    /// What to change, in order.
    pub actions: Vec<Action>,
}

/// Severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// critical
    Critical,
}

impl Severity {
    /// The word used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A reference to an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `CVE-YYYY-NNNN`.
    Cve(String),
    /// An http(s) link.
    Link(String),
}

/// A product range: versions `min <= v < below`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Product name as in the host profile's `[products]`.
    pub name: String,
    /// First affected version (inclusive).
    pub min: Option<Version>,
    /// First fixed version (exclusive bound).
    pub below: Option<Version>,
}

impl Product {
    /// Whether `v` is inside this range.
    pub fn contains(&self, v: &Version) -> bool {
        self.min.as_ref().is_none_or(|m| v >= m) && self.below.as_ref().is_none_or(|b| v < b)
    }
}

/// A dotted numeric version compared number by number (`15.2.986.5`); missing
/// trailing parts count as zero, so `1.2` equals `1.2.0`.
#[derive(Debug, Clone, Eq)]
pub struct Version(Vec<u64>);

impl Version {
    /// Parses `1.2.3`-style versions (1 to 8 numeric parts).
    pub fn parse(s: &str) -> Option<Version> {
        if s.is_empty() || s.len() > 64 {
            return None;
        }
        let parts: Option<Vec<u64>> = s
            .split('.')
            .map(|p| {
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        parts.filter(|p| p.len() <= 8).map(Version)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                self.0
                    .get(i)
                    .unwrap_or(&0)
                    .cmp(other.0.get(i).unwrap_or(&0))
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// One action; the set is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Block matching requests at the web server.
    UrlBlock(UrlBlock),
    /// Mask and stop a systemd unit.
    ServiceDisable {
        /// Unit name, e.g. `exchange-um.service`.
        unit: String,
    },
    /// Place a managed file.
    File {
        /// Absolute, normalised path inside the host root.
        path: String,
        /// Permission bits (no setuid, setgid or sticky).
        mode: u32,
        /// Exact content.
        content: String,
    },
    /// Set one key in an ini or key=value file.
    ConfigSet {
        /// Absolute, normalised path inside the host root.
        path: String,
        /// File syntax.
        format: ConfigFormat,
        /// ini section (ini only; `None` means the keys before any section).
        section: Option<String>,
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
}

impl Action {
    /// The element name of this action.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::UrlBlock(_) => "url-block",
            Action::ServiceDisable { .. } => "service-disable",
            Action::File { .. } => "file",
            Action::ConfigSet { .. } => "config-set",
        }
    }
}

/// A request-blocking rule: every `match` must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlBlock {
    /// Rule name, `[A-Za-z0-9._-]{1,64}`.
    pub name: String,
    /// Conditions, all of which must match.
    pub matches: Vec<Match>,
    /// What the server answers.
    pub response: Response,
}

/// One condition of a url-block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// What is matched.
    pub on: MatchOn,
    /// The regular expression, in the portable subset of [`crate::pattern`].
    pub pattern: String,
}

/// The part of the request a pattern is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOn {
    /// The URL path.
    Path,
    /// The query string.
    Query,
    /// A request header (token characters only).
    Header(String),
}

/// The statuses a url-block may answer with: the 4xx and 5xx codes that apache's
/// mod_rewrite knows (`R=N` refuses others, and one such rule would stop the
/// server from loading its configuration), that nginx's `return N` answers as
/// written (it closes the connection for 408, 444 and 499 and answers 400 for
/// 494-497), and that IIS sends as they are. 407 is left out: it asks the client
/// for proxy credentials.
pub const PORTABLE_STATUSES: &[u16] = &[
    400, 401, 403, 404, 405, 406, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424,
    426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

/// A url-block's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Answer with this HTTP status (one of [`PORTABLE_STATUSES`]).
    Status(u16),
    /// Drop the connection.
    Abort,
}

/// Syntax of a config-set file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// `[section]` and `key = value` lines.
    Ini,
    /// `key = value` or `key value` lines.
    KeyValue,
}

/// True for ids and names: `[A-Za-z0-9._-]{1,64}`, not `.` or `..`.
pub fn is_valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && s != "."
        && s != ".."
}

/// True for product names, in documents and in the host profile's `[products]`:
/// `[a-z0-9._-]{1,64}`.
pub fn is_valid_product_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Checks an action path: absolute, normalised (no `.`, `..`, empty segments or
/// trailing slash), no control characters or backslashes, bounded length.
pub fn check_action_path(path: &str) -> std::result::Result<(), String> {
    if path.len() > limits::MAX_PATH_BYTES {
        return Err(format!(
            "path is longer than {} bytes",
            limits::MAX_PATH_BYTES
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("path '{path}' is not absolute"));
    };
    if rest.is_empty() {
        return Err("path '/' is not a file".into());
    }
    for seg in rest.split('/') {
        match seg {
            "" => return Err(format!("path '{path}' has an empty segment")),
            "." | ".." => return Err(format!("path '{path}' contains '{seg}'")),
            _ => {}
        }
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("path contains a control character or backslash".into());
    }
    Ok(())
}

fn single_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

impl Mitigation {
    /// Parses and validates a document; `what` names it in errors.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Mitigation> {
        let root = xml::parse(
            what,
            bytes,
            limits::MAX_DOCUMENT_BYTES,
            "mitigation",
            NAMESPACE,
        )?;
        Self::from_element(what, &root)
    }

    fn from_element(what: &str, root: &Element) -> Result<Mitigation> {
        let bad = |msg: String| Error::xml(what, msg);
        root.only_attrs(what, &["id", "revision"])?;
        root.no_text(what)?;
        let id = root.req_attr(what, "id")?;
        if !is_valid_id(id) {
            return Err(bad(format!(
                "id '{}' is not [A-Za-z0-9._-]{{1,64}}",
                id.escape_debug()
            )));
        }
        let revision = parse_revision(what, root.req_attr(what, "revision")?)?;

        let mut title = None;
        let mut summary = None;
        let mut severity = None;
        let mut published = None;
        let mut expires = None;
        let mut references = None;
        let mut applies_to = None;
        let mut actions = None;
        for c in &root.children {
            let slot_taken = match c.name.as_str() {
                "title" => title.replace(text_field(what, c, 200)?).is_some(),
                "summary" => summary.replace(text_field(what, c, 8000)?).is_some(),
                "severity" => severity.replace(parse_severity(what, c)?).is_some(),
                "published" => published.replace(time_field(what, c)?).is_some(),
                "expires" => expires.replace(time_field(what, c)?).is_some(),
                "references" => references.replace(parse_references(what, c)?).is_some(),
                "applies-to" => applies_to.replace(parse_applies_to(what, c)?).is_some(),
                "actions" => actions.replace(parse_actions(what, c)?).is_some(),
                _ => return Err(root.unknown(what, c)),
            };
            if slot_taken {
                return Err(bad(format!("duplicate <{}> at line {}", c.name, c.line)));
            }
        }
        let missing = |name: &str| bad(format!("missing <{name}>"));
        Ok(Mitigation {
            id: id.to_string(),
            revision,
            title: title.ok_or_else(|| missing("title"))?,
            summary: summary.ok_or_else(|| missing("summary"))?,
            severity: severity.ok_or_else(|| missing("severity"))?,
            published: published.ok_or_else(|| missing("published"))?,
            expires,
            references: references.unwrap_or_default(),
            applies_to: applies_to.ok_or_else(|| missing("applies-to"))?,
            actions: actions.ok_or_else(|| missing("actions"))?,
        })
    }
}

/// Parses a positive revision number.
pub(crate) fn parse_revision(what: &str, s: &str) -> Result<u64> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 && s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 19 => Ok(n),
        _ => Err(Error::xml(
            what,
            format!("revision '{}' is not a positive integer", s.escape_debug()),
        )),
    }
}

fn text_field(what: &str, el: &Element, max: usize) -> Result<String> {
    el.only_attrs(what, &[])?;
    el.leaf(what)?;
    let t = el.text.trim();
    if t.is_empty() {
        return Err(Error::xml(
            what,
            format!("<{}> is empty (line {})", el.name, el.line),
        ));
    }
    if t.chars().count() > max {
        return Err(Error::xml(
            what,
            format!("<{}> is longer than {max} characters", el.name),
        ));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::xml(
            what,
            format!("<{}> contains a control character", el.name),
        ));
    }
    Ok(t.to_string())
}

fn parse_severity(what: &str, el: &Element) -> Result<Severity> {
    match text_field(what, el, 16)?.as_str() {
        "low" => Ok(Severity::Low),
        "medium" => Ok(Severity::Medium),
        "high" => Ok(Severity::High),
        "critical" => Ok(Severity::Critical),
        other => Err(Error::xml(
            what,
            format!("severity '{other}' is not low, medium, high or critical"),
        )),
    }
}

fn time_field(what: &str, el: &Element) -> Result<Timestamp> {
    let t = text_field(what, el, 64)?;
    parse_rfc3339(&t)
        .ok_or_else(|| Error::xml(what, format!("<{}> '{t}' is not an RFC 3339 time", el.name)))
}

fn parse_references(what: &str, el: &Element) -> Result<Vec<Reference>> {
    el.only_attrs(what, &[])?;
    el.no_text(what)?;
    el.children
        .iter()
        .map(|c| {
            let t = text_field(what, c, 2048)?;
            match c.name.as_str() {
                "cve" if is_cve(&t) => Ok(Reference::Cve(t)),
                "cve" => Err(Error::xml(
                    what,
                    format!("'{t}' is not a CVE id (CVE-YYYY-NNNN)"),
                )),
                "link"
                    if (t.starts_with("https://") || t.starts_with("http://"))
                        && !t.contains(char::is_whitespace) =>
                {
                    Ok(Reference::Link(t))
                }
                "link" => Err(Error::xml(
                    what,
                    format!("link '{t}' is not an http(s) URL"),
                )),
                _ => Err(el.unknown(what, c)),
            }
        })
        .collect()
}

fn is_cve(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0] == "CVE"
        && parts[1].len() == 4
        && (4..=10).contains(&parts[2].len())
        && parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_applies_to(what: &str, el: &Element) -> Result<Vec<Product>> {
    el.only_attrs(what, &[])?;
    el.no_text(what)?;
    let mut out = Vec::new();
    for c in &el.children {
        if c.name != "product" {
            return Err(el.unknown(what, c));
        }
        c.only_attrs(what, &["name", "min", "below"])?;
        c.leaf(what)?;
        c.no_text(what)?;
        let name = c.req_attr(what, "name")?;
        if !is_valid_product_name(name) {
            return Err(Error::xml(
                what,
                format!(
                    "product name '{}' is not [a-z0-9._-]{{1,64}}",
                    name.escape_debug()
                ),
            ));
        }
        let version = |attr: &str| -> Result<Option<Version>> {
            c.attr(attr)
                .map(|v| {
                    Version::parse(v).ok_or_else(|| {
                        Error::xml(
                            what,
                            format!(
                                "{attr} version '{}' is not dotted numbers",
                                v.escape_debug()
                            ),
                        )
                    })
                })
                .transpose()
        };
        let (min, below) = (version("min")?, version("below")?);
        if let (Some(m), Some(b)) = (&min, &below)
            && m >= b
        {
            return Err(Error::xml(
                what,
                format!("product {name}: min version {m} is not below {b}"),
            ));
        }
        out.push(Product {
            name: name.to_string(),
            min,
            below,
        });
    }
    if out.is_empty() {
        return Err(Error::xml(
            what,
            "<applies-to> is empty: name at least one <product>",
        ));
    }
    Ok(out)
}

fn parse_actions(what: &str, el: &Element) -> Result<Vec<Action>> {
    el.only_attrs(what, &[])?;
    el.no_text(what)?;
    let mut out = Vec::new();
    for c in &el.children {
        let action = match c.name.as_str() {
            "url-block" => Action::UrlBlock(parse_url_block(what, c)?),
            "service-disable" => {
                c.only_attrs(what, &["unit"])?;
                c.leaf(what)?;
                c.no_text(what)?;
                let unit = c.req_attr(what, "unit")?;
                if !is_unit_name(unit) {
                    return Err(Error::xml(
                        what,
                        format!("unit '{}' is not a systemd unit name", unit.escape_debug()),
                    ));
                }
                Action::ServiceDisable {
                    unit: unit.to_string(),
                }
            }
            "file" => {
                c.only_attrs(what, &["path", "mode"])?;
                c.leaf(what)?;
                let path = checked_path(what, c)?;
                let mode = match c.attr("mode") {
                    None => 0o644,
                    Some(m) => parse_mode(m).ok_or_else(|| {
                        Error::xml(what, format!("mode '{}' is not 3-4 octal digits without setuid, setgid or sticky bits", m.escape_debug()))
                    })?,
                };
                Action::File {
                    path,
                    mode,
                    content: c.text.clone(),
                }
            }
            "config-set" => {
                c.only_attrs(what, &["path", "format", "section", "key", "value"])?;
                c.leaf(what)?;
                c.no_text(what)?;
                let path = checked_path(what, c)?;
                let format = match c.req_attr(what, "format")? {
                    "ini" => ConfigFormat::Ini,
                    "keyvalue" => ConfigFormat::KeyValue,
                    f => {
                        return Err(Error::xml(
                            what,
                            format!(
                                "config-set format '{}' is not ini or keyvalue",
                                f.escape_debug()
                            ),
                        ));
                    }
                };
                let section = c.attr("section").map(str::to_string);
                if format == ConfigFormat::KeyValue && section.is_some() {
                    return Err(Error::xml(
                        what,
                        "config-set: section is only for format=\"ini\"",
                    ));
                }
                let key = c.req_attr(what, "key")?;
                let value = c.req_attr(what, "value")?;
                let key_ok = !key.is_empty()
                    && key.len() <= 256
                    && single_line(key)
                    && !key.contains(['=', '[', ']', '#', ';'])
                    && key.trim() == key;
                if !key_ok {
                    return Err(Error::xml(
                        what,
                        format!(
                            "config-set key '{}' is empty, too long or contains = [ ] # ; or a control character",
                            key.escape_debug()
                        ),
                    ));
                }
                if value.len() > 4096 || !single_line(value) {
                    return Err(Error::xml(
                        what,
                        "config-set value is longer than 4096 bytes or contains a control character",
                    ));
                }
                if let Some(s) = &section
                    && (s.is_empty() || s.len() > 256 || !single_line(s) || s.contains([']', '[']))
                {
                    return Err(Error::xml(
                        what,
                        format!(
                            "config-set section '{}' is empty, too long or contains [ ] or a control character",
                            s.escape_debug()
                        ),
                    ));
                }
                Action::ConfigSet {
                    path,
                    format,
                    section,
                    key: key.to_string(),
                    value: value.to_string(),
                }
            }
            _ => {
                return Err(Error::xml(
                    what,
                    format!(
                        "unknown element <{}> in <actions> at line {}: the action kinds are url-block, service-disable, file and config-set",
                        c.name, c.line
                    ),
                ));
            }
        };
        out.push(action);
    }
    if out.is_empty() {
        return Err(Error::xml(
            what,
            "<actions> is empty: a mitigation needs at least one action",
        ));
    }
    Ok(out)
}

fn checked_path(what: &str, el: &Element) -> Result<String> {
    let path = el.req_attr(what, "path")?;
    check_action_path(path)
        .map_err(|m| Error::xml(what, format!("<{}> at line {}: {m}", el.name, el.line)))?;
    Ok(path.to_string())
}

fn parse_mode(m: &str) -> Option<u32> {
    if !(3..=4).contains(&m.len()) || !m.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(m, 8).ok().filter(|v| *v <= 0o777)
}

fn is_unit_name(u: &str) -> bool {
    const SUFFIXES: [&str; 6] = [
        ".service", ".socket", ".timer", ".path", ".mount", ".target",
    ];
    (1..=255).contains(&u.len())
        && SUFFIXES.iter().any(|s| u.ends_with(s) && u.len() > s.len())
        && !u.starts_with('-')
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.@-\\".contains(&b))
}

fn parse_url_block(what: &str, el: &Element) -> Result<UrlBlock> {
    el.only_attrs(what, &["name"])?;
    el.no_text(what)?;
    let name = el.req_attr(what, "name")?;
    if !is_valid_id(name) {
        return Err(Error::xml(
            what,
            format!(
                "url-block name '{}' is not [A-Za-z0-9._-]{{1,64}}",
                name.escape_debug()
            ),
        ));
    }
    let mut matches = Vec::new();
    let mut response = None;
    for c in &el.children {
        c.leaf(what)?;
        c.no_text(what)?;
        match c.name.as_str() {
            "match" => {
                c.only_attrs(what, &["on", "pattern"])?;
                let on = match c.req_attr(what, "on")? {
                    "path" => MatchOn::Path,
                    "query" => MatchOn::Query,
                    other => match other.strip_prefix("header:") {
                        Some(h)
                            if !h.is_empty()
                                && h.len() <= 64
                                && h.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
                                }) =>
                        {
                            MatchOn::Header(h.to_string())
                        }
                        _ => {
                            return Err(Error::xml(
                                what,
                                format!(
                                    "match on '{}' is not path, query or header:NAME (letters, digits, - and _)",
                                    other.escape_debug()
                                ),
                            ));
                        }
                    },
                };
                let pattern = c.req_attr(what, "pattern")?;
                if pattern.is_empty()
                    || pattern.len() > limits::MAX_PATTERN_BYTES
                    || !single_line(pattern)
                {
                    return Err(Error::xml(
                        what,
                        format!(
                            "url-block {name}: pattern is empty, longer than {} bytes or contains a control character",
                            limits::MAX_PATTERN_BYTES
                        ),
                    ));
                }
                crate::pattern::check(pattern).map_err(|reason| {
                    Error::xml(
                        what,
                        format!(
                            "url-block {name}: pattern '{}': {reason}",
                            pattern.escape_debug()
                        ),
                    )
                })?;
                matches.push(Match {
                    on,
                    pattern: pattern.to_string(),
                });
            }
            "response" => {
                c.only_attrs(what, &["status", "abort"])?;
                let r = match (c.attr("status"), c.attr("abort")) {
                    (Some(s), None) => match s.parse::<u16>() {
                        Ok(n) if PORTABLE_STATUSES.contains(&n) && s.len() == 3 => {
                            Response::Status(n)
                        }
                        _ => {
                            return Err(Error::xml(
                                what,
                                format!(
                                    "response status '{}' is not one that nginx, apache and IIS all answer as written: {}",
                                    s.escape_debug(),
                                    PORTABLE_STATUSES
                                        .iter()
                                        .map(u16::to_string)
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                ),
                            ));
                        }
                    },
                    (None, Some("true")) => Response::Abort,
                    _ => {
                        return Err(Error::xml(
                            what,
                            "response needs exactly one of status=\"4xx/5xx\" or abort=\"true\"",
                        ));
                    }
                };
                if response.replace(r).is_some() {
                    return Err(Error::xml(
                        what,
                        format!("duplicate <response> in url-block {name}"),
                    ));
                }
            }
            _ => return Err(el.unknown(what, c)),
        }
    }
    if matches.is_empty() {
        return Err(Error::xml(
            what,
            format!("url-block {name}: missing <match>"),
        ));
    }
    let response = response
        .ok_or_else(|| Error::xml(what, format!("url-block {name}: missing <response>")))?;
    Ok(UrlBlock {
        name: name.to_string(),
        matches,
        response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mitigation xmlns="urn:airlock:mitigation:1" id="AM-2021-0001" revision="2">
  <title>Block ProxyShell autodiscover SSRF</title>
  <summary>Rejects requests.</summary>
  <severity>critical</severity>
  <published>2021-09-28T00:00:00Z</published>
  <expires>2030-12-31T00:00:00Z</expires>
  <references><cve>CVE-2021-34473</cve><link>https://example.invalid/advisory</link></references>
  <applies-to><product name="exchange" min="15.1.0.0" below="15.2.986.5"/></applies-to>
  <actions>
    <url-block name="autodiscover-ssrf">
      <match on="path" pattern="(?i)autodiscover\.json.*@.*powershell"/>
      <response status="403"/>
    </url-block>
    <service-disable unit="exchange-um.service"/>
    <file path="/etc/exchange/limits.d/50-airlock.conf" mode="0644"><![CDATA[max_request_kb = 64
]]></file>
    <config-set path="/etc/exchange/app.ini" format="ini" section="ecp" key="enabled" value="false"/>
  </actions>
</mitigation>"#;

    #[test]
    fn parses_the_design_card_example() {
        let m = Mitigation::parse("doc", DOC.as_bytes()).unwrap();
        assert_eq!((m.id.as_str(), m.revision), ("AM-2021-0001", 2));
        assert_eq!(m.severity, Severity::Critical);
        assert_eq!(m.actions.len(), 4);
        assert_eq!(
            m.actions[2],
            Action::File {
                path: "/etc/exchange/limits.d/50-airlock.conf".into(),
                mode: 0o644,
                content: "max_request_kb = 64\n".into()
            }
        );
        assert!(m.applies_to[0].contains(&Version::parse("15.2.986.4").unwrap()));
        assert!(!m.applies_to[0].contains(&Version::parse("15.2.986.5").unwrap()));
        assert!(m.applies_to[0].contains(&Version::parse("15.1").unwrap()));
    }

    #[test]
    fn refuses_schema_violations() {
        let cases = [
            (r#"id="AM-2021-0001""#, r#"id="../x""#, "id"),
            (r#"revision="2""#, r#"revision="0""#, "revision"),
            (r#"revision="2""#, r#"revision="+2""#, "revision"),
            (
                "<service-disable unit=\"exchange-um.service\"/>",
                "<exec cmd=\"rm\"/>",
                "unknown element <exec>",
            ),
            (r#"mode="0644""#, r#"mode="4755""#, "mode"),
            ("/etc/exchange/app.ini", "/etc/../shadow", "contains '..'"),
            ("/etc/exchange/app.ini", "etc/app.ini", "not absolute"),
            (
                "<severity>critical</severity>",
                "<severity>urgent</severity>",
                "severity",
            ),
            (r#"below="15.2.986.5""#, r#"below="15.x""#, "version"),
            (r#"status="403""#, r#"status="200""#, "status"),
            (
                r#"status="403""#,
                r#"status="403" abort="true""#,
                "exactly one",
            ),
            ("<title>Block", "<title x=\"1\">Block", "unknown attribute"),
            (
                "<summary>",
                "<title>again</title><summary>",
                "duplicate <title>",
            ),
            (r#"on="path""#, r#"on="header:Bad Header""#, "header:NAME"),
            (r#"format="ini""#, r#"format="yaml""#, "format"),
            (
                "(?i)autodiscover",
                "(?i)(?=x)autodiscover",
                r"url-block autodiscover-ssrf: pattern '(?i)(?=x)autodiscover\\.json.*@.*powershell': lookahead `(?=` at offset 4 is not in the portable pattern subset",
            ),
        ];
        for (from, to, want) in cases {
            let doc = DOC.replacen(from, to, 1);
            assert_ne!(doc, DOC, "case {from} did not apply");
            let err = Mitigation::parse("doc", doc.as_bytes())
                .expect_err(to)
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
        let no_actions = DOC.split("<actions>").next().unwrap().to_string() + "</mitigation>";
        assert!(
            Mitigation::parse("doc", no_actions.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("missing <actions>")
        );
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("15.2.986.10") > v("15.2.986.9"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert!(Version::parse("1..2").is_none());
        assert!(Version::parse("1.-2").is_none());
    }
}
