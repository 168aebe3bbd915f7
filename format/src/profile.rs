//! The host profile (design card §6, `/etc/airlock/host.toml`). A [`Profile`] can
//! only come from [`Profile::load`] or [`Profile::from_toml`], so one always holds
//! a complete, validated profile: no unknown keys, a valid host name, absolute
//! normalised paths, parsed product versions, absolute trust key paths without
//! duplicates, a release channel, valid blocked ids, an approval count the
//! configured approver keys can meet, and a parsed clock skew. Every error names
//! the profile file and the key (or, for TOML syntax, the line) at fault, and is an
//! [`Error::Unusable`] or [`Error::Io`] (exit 1: bad configuration).
//!
//! Nothing security-relevant has a default: there are no built-in keys (an empty
//! `[trust]` list loads, and the applier fails closed when it needs a key) and no
//! default channel (`policy.channel` is required).

use crate::error::{Error, Result};
use crate::fsutil;
use crate::limits::{MAX_PATH_BYTES, MAX_PROFILE_BYTES};
use crate::mitigation::{Version, check_action_path, is_valid_id, is_valid_product_name};
use crate::time::parse_duration;
use chrono::TimeDelta;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the profile is read from when neither `--profile` nor `AIRLOCK_PROFILE` is given.
pub const DEFAULT_PROFILE: &str = "/etc/airlock/host.toml";
/// The environment variable that names the profile when `--profile` is not given.
pub const PROFILE_ENV: &str = "AIRLOCK_PROFILE";
/// `root` when the profile does not set it.
pub const DEFAULT_ROOT: &str = "/";
/// `state_dir` when the profile does not set it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/airlock";
/// `policy.max_clock_skew` when the profile does not set it.
pub const DEFAULT_MAX_CLOCK_SKEW: &str = "10m";

/// The profile path to use: `explicit` (`--profile`), else `AIRLOCK_PROFILE` when
/// it is set and not empty, else [`DEFAULT_PROFILE`].
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    locate_with(explicit, std::env::var_os(PROFILE_ENV))
}

fn locate_with(explicit: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (explicit, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(v)) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_PROFILE),
    }
}

/// A validated host profile.
#[derive(Debug, Clone)]
pub struct Profile {
    path: PathBuf,
    sha256: String,
    host: String,
    root: PathBuf,
    state_dir: PathBuf,
    products: BTreeMap<String, Version>,
    web: Web,
    trust: Trust,
    policy: Policy,
}

/// The web server that receives url-block rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebServer {
    /// IIS: rules go into [`Web::web_config`].
    Iis,
    /// nginx: rules go into a file under [`Web::include_dir`].
    Nginx,
    /// Apache httpd: rules go into a file under [`Web::include_dir`].
    Apache,
    /// No web server: url-block mitigations do not apply to this host.
    None,
}

impl WebServer {
    /// The word used in the profile (`iis`, `nginx`, `apache`, `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebServer::Iis => "iis",
            WebServer::Nginx => "nginx",
            WebServer::Apache => "apache",
            WebServer::None => "none",
        }
    }

    fn parse(s: &str) -> Option<WebServer> {
        match s {
            "iis" => Some(WebServer::Iis),
            "nginx" => Some(WebServer::Nginx),
            "apache" => Some(WebServer::Apache),
            "none" => Some(WebServer::None),
            _ => None,
        }
    }
}

impl fmt::Display for WebServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[web]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    server: WebServer,
    web_config: Option<PathBuf>,
    include_dir: Option<PathBuf>,
}

impl Web {
    /// Which web server this host runs ([`WebServer::None`] when `[web]` is absent).
    pub fn server(&self) -> WebServer {
        self.server
    }

    /// The IIS `web.config` to manage: `Some` exactly when the server is IIS. An
    /// absolute, normalised path that, like action paths, lies inside the profile's root.
    pub fn web_config(&self) -> Option<&Path> {
        self.web_config.as_deref()
    }

    /// The directory that nginx or Apache includes and airlock writes its rule files
    /// into: `Some` exactly when the server is nginx or Apache. An absolute,
    /// normalised path that, like action paths, lies inside the profile's root.
    pub fn include_dir(&self) -> Option<&Path> {
        self.include_dir.as_deref()
    }
}

/// The `[trust]` section: pinned public key files. Each list may be empty; no key
/// is built in. Paths are absolute (relative ones in the file are resolved against
/// the profile's directory) and no path appears twice in one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    release_keys: Vec<PathBuf>,
    vendor_keys: Vec<PathBuf>,
    approver_keys: Vec<PathBuf>,
}

impl Trust {
    /// Keys that may sign bundles (`trust.release_keys`).
    pub fn release_keys(&self) -> &[PathBuf] {
        &self.release_keys
    }

    /// Keys that may sign mitigation documents (`trust.vendor_keys`).
    pub fn vendor_keys(&self) -> &[PathBuf] {
        &self.vendor_keys
    }

    /// Keys whose signatures count as approvals of a plan (`trust.approver_keys`).
    pub fn approver_keys(&self) -> &[PathBuf] {
        &self.approver_keys
    }
}

/// The `[policy]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    channel: String,
    blocked: BTreeSet<String>,
    approvals_required: u32,
    max_clock_skew: TimeDelta,
}

impl Policy {
    /// The only release channel this host accepts bundles from (`[A-Za-z0-9._-]{1,64}`,
    /// the same rule as a bundle manifest's channel).
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Mitigation ids never applied on this host.
    pub fn blocked(&self) -> &BTreeSet<String> {
        &self.blocked
    }

    /// Whether the mitigation `id` is blocked on this host.
    pub fn is_blocked(&self, id: &str) -> bool {
        self.blocked.contains(id)
    }

    /// Distinct approver signatures a plan needs; never more than the number of
    /// configured approver keys.
    pub fn approvals_required(&self) -> u32 {
        self.approvals_required
    }

    /// How far the clock may be behind the newest time in the ledger (positive).
    pub fn max_clock_skew(&self) -> TimeDelta {
        self.max_clock_skew
    }
}

impl Profile {
    /// Reads and validates the profile at `path` (at most
    /// [`MAX_PROFILE_BYTES`], UTF-8).
    pub fn load(path: &Path) -> Result<Profile> {
        let text = fsutil::read_text_limited(path, MAX_PROFILE_BYTES).map_err(|e| match e {
            Error::Limit { limit, .. } => too_large(path, limit),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Unusable {
                    message: format!("no host profile at {}", path.display()),
                    hint: format!(
                        "write the host profile there (operator guide §3.3; the Debian package installs a commented one), or name another with --profile FILE or AIRLOCK_PROFILE (default {DEFAULT_PROFILE})"
                    ),
                }
            }
            Error::Invalid(message) => invalid(path, message),
            e => e,
        })?;
        Profile::from_toml(&text, path)
    }

    /// Parses and validates profile text; `path` names it in errors and is the base
    /// for relative key paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Profile> {
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(too_large(path, MAX_PROFILE_BYTES));
        }
        let raw: RawProfile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let mut profile = Validator { path }.profile(raw)?;
        profile.sha256 = crate::hash::sha256_hex(text.as_bytes());
        Ok(profile)
    }

    /// SHA-256 of the profile text this was parsed from (bound into plans, so a
    /// plan made under another profile does not match).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file this profile was read from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This host's name, as written into the ledger: `[A-Za-z0-9._-]{1,64}`; the
    /// machine's hostname when the profile does not set `host`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The directory every action path is inside (absolute; `/` by default).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where airlock keeps its ledger, backups, staging area and host key
    /// (absolute; `/var/lib/airlock` by default).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Installed products and their versions, by product name (`[a-z0-9._-]{1,64}`).
    pub fn products(&self) -> &BTreeMap<String, Version> {
        &self.products
    }

    /// The installed version of `product`, if this host has it.
    pub fn product(&self, product: &str) -> Option<&Version> {
        self.products.get(product)
    }

    /// The `[web]` section.
    pub fn web(&self) -> &Web {
        &self.web
    }

    /// The `[trust]` section.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The `[policy]` section.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `state_dir/ledger.db`.
    pub fn ledger_path(&self) -> PathBuf {
        self.state_dir.join("ledger.db")
    }

    /// `state_dir/host.key`: the host's secret key (signs ledger checkpoints).
    pub fn host_key_path(&self) -> PathBuf {
        self.state_dir.join("host.key")
    }

    /// `state_dir/host.pub`: the host's public key.
    pub fn host_pub_path(&self) -> PathBuf {
        self.state_dir.join("host.pub")
    }
}

// The file as written. Everything is optional or a string here so that the
// messages for missing and malformed values come from `Validator`, which names
// the key; only wrong TOML types and unknown keys are reported by the toml crate.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawProfile {
    host: Option<String>,
    root: Option<String>,
    state_dir: Option<String>,
    #[serde(default)]
    products: BTreeMap<String, String>,
    web: Option<RawWeb>,
    trust: Option<RawTrust>,
    policy: Option<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawWeb {
    server: Option<String>,
    web_config: Option<String>,
    include_dir: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawTrust {
    #[serde(default)]
    release_keys: Vec<String>,
    #[serde(default)]
    vendor_keys: Vec<String>,
    #[serde(default)]
    approver_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPolicy {
    channel: Option<String>,
    #[serde(default)]
    blocked: Vec<String>,
    #[serde(default)]
    approvals_required: u32,
    max_clock_skew: Option<String>,
}

/// Turns the raw file into a [`Profile`], naming the file and key in every error.
struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn err(&self, key: &str, msg: impl fmt::Display) -> Error {
        invalid(
            self.path,
            format!("profile {}: {key}: {msg}", self.path.display()),
        )
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile> {
        let host = match raw.host {
            Some(h) if is_valid_id(&h) => h,
            Some(h) => {
                return Err(self.err(
                    "host",
                    format!("'{}' is not [A-Za-z0-9._-]{{1,64}}", h.escape_debug()),
                ));
            }
            None => machine_hostname().ok_or_else(|| {
                self.err(
                    "host",
                    "not set, and the machine's hostname is missing or not [A-Za-z0-9._-]{1,64}: \
                     set host = \"NAME\" in the profile",
                )
            })?,
        };
        let root = self.dir("root", raw.root.as_deref().unwrap_or(DEFAULT_ROOT))?;
        let state_dir = self.dir(
            "state_dir",
            raw.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR),
        )?;
        let mut products = BTreeMap::new();
        for (name, version) in raw.products {
            let key = format!("products.{}", name.escape_debug());
            if !is_valid_product_name(&name) {
                return Err(self.err(&key, "product names are [a-z0-9._-]{1,64}"));
            }
            let v = Version::parse(&version).ok_or_else(|| {
                self.err(
                    &key,
                    format!(
                        "'{}' is not a version: use 1 to 8 dotted numbers, for example 15.2.986.4",
                        version.escape_debug()
                    ),
                )
            })?;
            products.insert(name, v);
        }
        let web = self.web(raw.web)?;
        let trust = self.trust(raw.trust.unwrap_or_default())?;
        let policy = self.policy(raw.policy, &trust)?;
        Ok(Profile {
            path: self.path.to_path_buf(),
            sha256: String::new(),
            host,
            root,
            state_dir,
            products,
            web,
            trust,
            policy,
        })
    }

    fn web(&self, raw: Option<RawWeb>) -> Result<Web> {
        let Some(raw) = raw else {
            return Ok(Web {
                server: WebServer::None,
                web_config: None,
                include_dir: None,
            });
        };
        let server = match raw.server.as_deref() {
            None => WebServer::None,
            Some(s) => WebServer::parse(s).ok_or_else(|| {
                self.err(
                    "web.server",
                    format!(
                        "'{}' is not one of iis, nginx, apache, none",
                        s.escape_debug()
                    ),
                )
            })?,
        };
        let (wants_config, wants_include) = match server {
            WebServer::Iis => (true, false),
            WebServer::Nginx | WebServer::Apache => (false, true),
            WebServer::None => (false, false),
        };
        let web_config = match (raw.web_config, wants_config) {
            (Some(p), true) => Some(self.file("web.web_config", &p)?),
            (None, false) => None,
            (None, true) => {
                return Err(self.err(
                    "web.web_config",
                    "missing: server = \"iis\" needs the path of the web.config to manage",
                ));
            }
            (Some(_), false) => {
                return Err(self.err(
                    "web.web_config",
                    format!("only for server = \"iis\", not \"{server}\": remove it"),
                ));
            }
        };
        let include_dir = match (raw.include_dir, wants_include) {
            (Some(p), true) => Some(self.dir("web.include_dir", &p)?),
            (None, false) => None,
            (None, true) => {
                return Err(self.err(
                    "web.include_dir",
                    format!(
                        "missing: server = \"{server}\" needs the directory it includes airlock's rules from"
                    ),
                ));
            }
            (Some(_), false) => {
                return Err(self.err(
                    "web.include_dir",
                    format!(
                        "only for server = \"nginx\" or \"apache\", not \"{server}\": remove it"
                    ),
                ));
            }
        };
        Ok(Web {
            server,
            web_config,
            include_dir,
        })
    }

    fn trust(&self, raw: RawTrust) -> Result<Trust> {
        // Resolved lazily: only a relative key path needs the current directory.
        let mut base: Option<PathBuf> = None;
        let mut list = |key: &str, items: Vec<String>| -> Result<Vec<PathBuf>> {
            let mut out: Vec<PathBuf> = Vec::with_capacity(items.len());
            for item in items {
                check_text_path(&item).map_err(|m| self.err(key, m))?;
                let p = Path::new(&item);
                let abs = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    let dir = match &base {
                        Some(d) => d,
                        None => base.insert(self.profile_dir()?),
                    };
                    dir.join(p)
                };
                if out.contains(&abs) {
                    return Err(self.err(
                        key,
                        format!("{} is listed twice: remove one", abs.display()),
                    ));
                }
                out.push(abs);
            }
            Ok(out)
        };
        Ok(Trust {
            release_keys: list("trust.release_keys", raw.release_keys)?,
            vendor_keys: list("trust.vendor_keys", raw.vendor_keys)?,
            approver_keys: list("trust.approver_keys", raw.approver_keys)?,
        })
    }

    fn policy(&self, raw: Option<RawPolicy>, trust: &Trust) -> Result<Policy> {
        let missing_channel = || {
            self.err(
                "policy.channel",
                "missing: set the release channel this host accepts, for example \
                 [policy] channel = \"prod\" (there is no default)",
            )
        };
        let raw = raw.ok_or_else(missing_channel)?;
        let channel = raw.channel.ok_or_else(missing_channel)?;
        if !is_valid_id(&channel) {
            return Err(self.err(
                "policy.channel",
                format!("'{}' is not [A-Za-z0-9._-]{{1,64}}", channel.escape_debug()),
            ));
        }
        let mut blocked = BTreeSet::new();
        for id in raw.blocked {
            if !is_valid_id(&id) {
                return Err(self.err(
                    "policy.blocked",
                    format!(
                        "'{}' is not a mitigation id ([A-Za-z0-9._-]{{1,64}})",
                        id.escape_debug()
                    ),
                ));
            }
            blocked.insert(id);
        }
        let keys = trust.approver_keys.len();
        if u64::from(raw.approvals_required) > keys as u64 {
            return Err(self.err(
                "policy.approvals_required",
                format!(
                    "{} required but trust.approver_keys lists {keys} key(s), so no plan \
                     could ever be approved: add approver keys or lower the number",
                    raw.approvals_required
                ),
            ));
        }
        let skew = raw
            .max_clock_skew
            .as_deref()
            .unwrap_or(DEFAULT_MAX_CLOCK_SKEW);
        let max_clock_skew =
            parse_duration(skew).map_err(|e| self.err("policy.max_clock_skew", e))?;
        Ok(Policy {
            channel,
            blocked,
            approvals_required: raw.approvals_required,
            max_clock_skew,
        })
    }

    /// An absolute, normalised directory (`/` allowed, one trailing slash tolerated).
    fn dir(&self, key: &str, s: &str) -> Result<PathBuf> {
        if s == "/" {
            return Ok(PathBuf::from("/"));
        }
        let trimmed = s.strip_suffix('/').unwrap_or(s);
        check_action_path(trimmed).map_err(|m| self.err(key, m))?;
        Ok(PathBuf::from(trimmed))
    }

    /// An absolute, normalised file path.
    fn file(&self, key: &str, s: &str) -> Result<PathBuf> {
        check_action_path(s).map_err(|m| self.err(key, m))?;
        Ok(PathBuf::from(s))
    }

    /// The absolute directory of the profile file.
    fn profile_dir(&self) -> Result<PathBuf> {
        let dir = fsutil::parent_dir(self.path);
        std::path::absolute(dir).map_err(|e| Error::io("resolve the directory of", self.path, e))
    }
}

/// A key path as written: not empty, bounded, no control characters.
fn check_text_path(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Err("empty path".into());
    }
    if s.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "path '{}' contains a control character",
            s.escape_debug()
        ));
    }
    Ok(())
}

fn too_large(path: &Path, limit: u64) -> Error {
    invalid(
        path,
        format!(
            "profile {}: larger than {limit} bytes: a host profile is a short TOML file",
            path.display()
        ),
    )
}

/// A profile that cannot be used as written: `message` names the file and key.
fn invalid(path: &Path, message: String) -> Error {
    Error::Unusable {
        message,
        hint: format!(
            "edit {} (every key is shown in the operator guide §3.3 and the design card §6), then run the command again",
            path.display()
        ),
    }
}

/// The machine's hostname: `/proc/sys/kernel/hostname`, else `/etc/hostname`, else
/// `COMPUTERNAME` or `HOSTNAME`; the first that is a valid host name, trimmed.
fn machine_hostname() -> Option<String> {
    let files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|f| fsutil::read_limited(Path::new(f), 256).ok())
        .filter_map(|b| String::from_utf8(b).ok());
    let env = ["COMPUTERNAME", "HOSTNAME"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok());
    first_valid_hostname(files.chain(env))
}

fn first_valid_hostname(candidates: impl IntoIterator<Item = String>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| c.trim().to_string())
        .find(|c| is_valid_id(c))
}

/// A toml error as one line: `profile PATH: KEY: MESSAGE (line L, column C)`.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let mut message = printable(e.message().trim());
    if let Some(rest) = message.strip_prefix("unknown field ") {
        message = format!("unknown key {rest}");
    }
    let mut out = format!("profile {}: ", path.display());
    if let Some(span) = e.span() {
        match key_at(text, span.start) {
            Some(Ok(key)) => {
                out.push_str(&key);
                out.push_str(": ");
            }
            Some(Err(())) => {}
            None => out.push_str("not valid TOML: "),
        }
        let (line, column) = line_column(text, span.start);
        out.push_str(&format!("{message} (line {line}, column {column})"));
    } else {
        out.push_str(&message);
    }
    invalid(path, out)
}

/// Control characters escaped, lines joined: safe to print on one terminal line.
fn printable(s: &str) -> String {
    s.lines()
        .map(|l| {
            l.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn line_column(text: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The dotted key (`web.server`, `trust.release_keys[1]`) whose key or value
/// covers byte offset `pos`, the innermost one; `Some(Err(()))` when no key covers
/// it, `None` when `text` is not valid TOML.
fn key_at(text: &str, pos: usize) -> Option<std::result::Result<String, ()>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    if !find_in_table(doc.get_ref(), pos, &mut path) {
        return Some(Err(()));
    }
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(&seg);
    }
    Some(Ok(out))
}

fn find_in_table(table: &toml::de::DeTable<'_>, pos: usize, path: &mut Vec<String>) -> bool {
    for (k, v) in table.iter() {
        path.push(printable(k.get_ref()));
        if find_in_value(v, pos, path) || k.span().contains(&pos) || v.span().contains(&pos) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(
    v: &toml::Spanned<toml::de::DeValue<'_>>,
    pos: usize,
    path: &mut Vec<String>,
) -> bool {
    match v.get_ref() {
        toml::de::DeValue::Table(t) => find_in_table(t, pos, path),
        toml::de::DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(format!("[{i}]"));
                if find_in_value(item, pos, path) || item.span().contains(&pos) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = r#"
host = "exch01"                    # default: the machine's hostname
root = "/"                         # every action path is inside this root
state_dir = "/var/lib/airlock"     # ledger.db, backups, staging, host key

[products]
exchange = "15.2.986.4"

[web]
server = "iis"                     # iis | nginx | apache | none
web_config = "/inetpub/wwwroot/web.config"   # iis

[trust]
release_keys = ["/etc/airlock/keys/release.pub"]
vendor_keys = ["/etc/airlock/keys/vendor.pub"]
approver_keys = []

[policy]
channel = "prod"
blocked = []                       # mitigation ids never applied here
approvals_required = 0             # distinct approver signatures a plan needs
max_clock_skew = "10m"
"#;

    const MINIMAL: &str = "[policy]\nchannel = \"prod\"\n";

    fn parse(text: &str) -> Result<Profile> {
        Profile::from_toml(text, Path::new("/etc/airlock/host.toml"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(p) => panic!("accepted:\n{text}\n{p:?}"),
            Err(e) => {
                assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
                e.to_string()
            }
        }
    }

    #[test]
    fn the_card_example_parses() {
        let p = parse(CARD).unwrap();
        assert_eq!(p.host(), "exch01");
        assert_eq!(p.root(), Path::new("/"));
        assert_eq!(p.state_dir(), Path::new("/var/lib/airlock"));
        assert_eq!(
            p.product("exchange"),
            Some(&Version::parse("15.2.986.4").unwrap())
        );
        assert_eq!(p.web().server(), WebServer::Iis);
        assert_eq!(
            p.web().web_config(),
            Some(Path::new("/inetpub/wwwroot/web.config"))
        );
        assert_eq!(p.web().include_dir(), None);
        assert_eq!(
            p.trust().release_keys(),
            [PathBuf::from("/etc/airlock/keys/release.pub")]
        );
        assert_eq!(
            p.trust().vendor_keys(),
            [PathBuf::from("/etc/airlock/keys/vendor.pub")]
        );
        assert!(p.trust().approver_keys().is_empty());
        assert_eq!(p.policy().channel(), "prod");
        assert!(p.policy().blocked().is_empty());
        assert_eq!(p.policy().approvals_required(), 0);
        assert_eq!(p.policy().max_clock_skew(), TimeDelta::minutes(10));
        assert_eq!(p.ledger_path(), Path::new("/var/lib/airlock/ledger.db"));
        assert_eq!(p.host_key_path(), Path::new("/var/lib/airlock/host.key"));
        assert_eq!(p.host_pub_path(), Path::new("/var/lib/airlock/host.pub"));
        assert_eq!(p.path(), Path::new("/etc/airlock/host.toml"));
    }

    #[test]
    fn the_card_example_with_both_web_paths_is_refused() {
        // The card lists web_config and include_dir side by side as a catalogue;
        // a real profile sets only the one its server uses.
        let text = CARD.replace(
            "web_config = \"/inetpub/wwwroot/web.config\"   # iis\n",
            "web_config = \"/inetpub/wwwroot/web.config\"\ninclude_dir = \"/etc/nginx/airlock.d\"\n",
        );
        assert!(err(&text).contains("web.include_dir: only for server"));
    }

    #[test]
    fn defaults() {
        let Some(hostname) = machine_hostname() else {
            assert!(err(MINIMAL).contains(": host: not set"));
            return;
        };
        let p = parse(MINIMAL).unwrap();
        assert_eq!(p.host(), hostname);
        assert_eq!(p.root(), Path::new("/"));
        assert_eq!(p.state_dir(), Path::new("/var/lib/airlock"));
        assert!(p.products().is_empty());
        assert_eq!(p.web().server(), WebServer::None);
        assert_eq!(p.web().web_config(), None);
        assert_eq!(p.web().include_dir(), None);
        assert!(p.trust().release_keys().is_empty());
        assert!(p.trust().vendor_keys().is_empty());
        assert!(p.trust().approver_keys().is_empty());
        assert_eq!(p.policy().approvals_required(), 0);
        assert_eq!(p.policy().max_clock_skew(), TimeDelta::minutes(10));
        let p = parse(&format!("[web]\n{MINIMAL}")).unwrap();
        assert_eq!(p.web().server(), WebServer::None);
        let p = parse(&format!("[web]\nserver = \"none\"\n{MINIMAL}")).unwrap();
        assert_eq!(p.web().server(), WebServer::None);
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let text = format!("\u{feff}{}", CARD.replace('\n', "\r\n"));
        assert_eq!(parse(&text).unwrap().host(), "exch01");
    }

    #[test]
    fn error_positions_count_characters() {
        assert_eq!(line_column("", 0), (1, 1));
        assert_eq!(line_column("a\nbé=x", 6), (2, 4));
        assert_eq!(line_column("a\nbé=x", 4), (2, 2));
        assert_eq!(line_column("ab", 99), (1, 3));
    }

    #[test]
    fn hostname_candidates() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            first_valid_hostname(s(&["", "bad host\n", " exch01.corp\n", "x"])),
            Some("exch01.corp".into())
        );
        assert_eq!(first_valid_hostname(s(&["", "\n", "a/b"])), None);
    }

    #[test]
    fn locate_order() {
        let e = |s: &str| Some(OsString::from(s));
        assert_eq!(
            locate_with(Some(Path::new("/x.toml")), e("/env.toml")),
            Path::new("/x.toml")
        );
        assert_eq!(locate_with(None, e("/env.toml")), Path::new("/env.toml"));
        assert_eq!(locate_with(None, e("")), Path::new(DEFAULT_PROFILE));
        assert_eq!(locate_with(None, None), Path::new(DEFAULT_PROFILE));
    }

    #[test]
    fn web_servers() {
        let p = parse(&format!(
            "[web]\nserver = \"nginx\"\ninclude_dir = \"/etc/nginx/airlock.d/\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(p.web().server(), WebServer::Nginx);
        assert_eq!(
            p.web().include_dir(),
            Some(Path::new("/etc/nginx/airlock.d"))
        );
        let p = parse(&format!(
            "[web]\nserver = \"apache\"\ninclude_dir = \"/etc/apache2/airlock.d\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(p.web().server(), WebServer::Apache);
    }

    #[test]
    fn policy_values() {
        let p = parse(
            "[trust]\napprover_keys = [\"/k/a.pub\", \"/k/b.pub\"]\n\
             [policy]\nchannel = \"Prod-EU_1.x\"\nblocked = [\"AM-2021-0002\", \"AM-2021-0002\"]\n\
             approvals_required = 2\nmax_clock_skew = \"2h\"\n",
        )
        .unwrap();
        assert_eq!(p.policy().channel(), "Prod-EU_1.x");
        assert!(p.policy().is_blocked("AM-2021-0002"));
        assert!(!p.policy().is_blocked("AM-2021-0001"));
        assert_eq!(p.policy().blocked().len(), 1);
        assert_eq!(p.policy().approvals_required(), 2);
        assert_eq!(p.policy().max_clock_skew(), TimeDelta::hours(2));
    }

    #[test]
    fn relative_key_paths_resolve_against_the_profile_dir() {
        let text = format!(
            "[trust]\nrelease_keys = [\"keys/release.pub\", \"/abs/release.pub\"]\n\
             vendor_keys = [\"../vendor.pub\"]\napprover_keys = [\"approver.pub\"]\n{MINIMAL}"
        );
        let p = Profile::from_toml(&text, Path::new("/etc/airlock/host.toml")).unwrap();
        assert_eq!(
            p.trust().release_keys(),
            [
                PathBuf::from("/etc/airlock/keys/release.pub"),
                PathBuf::from("/abs/release.pub")
            ]
        );
        assert_eq!(
            p.trust().vendor_keys(),
            [PathBuf::from("/etc/airlock/../vendor.pub")]
        );
        assert_eq!(
            p.trust().approver_keys(),
            [PathBuf::from("/etc/airlock/approver.pub")]
        );
        // A relative profile path resolves against the current directory.
        let p = Profile::from_toml(&text, Path::new("host.toml")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(p.trust().approver_keys(), [cwd.join("approver.pub")]);
        assert!(p.trust().release_keys().iter().all(|k| k.is_absolute()));
    }

    #[test]
    fn invalid_profiles_name_the_file_and_the_key() {
        let with = |extra: &str| format!("{extra}\n{MINIMAL}");
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "unknown top-level key",
                with("hots = \"exch01\""),
                "hots: unknown key `hots`",
            ),
            (
                "unknown key in [web]",
                with("[web]\nserver = \"iis\"\nweb_config = \"/w/web.config\"\nlisten = 80"),
                "web.listen: unknown key `listen`",
            ),
            (
                "unknown key in [policy]",
                "[policy]\nchannel = \"prod\"\nchanel = \"x\"\n".into(),
                "policy.chanel: unknown key",
            ),
            (
                "unknown section",
                with("[webserver]\nserver = \"iis\""),
                "webserver: unknown key",
            ),
            (
                "bad server",
                with("[web]\nserver = \"caddy\""),
                "web.server: 'caddy' is not one of iis, nginx, apache, none",
            ),
            (
                "iis without web_config",
                with("[web]\nserver = \"iis\""),
                "web.web_config: missing",
            ),
            (
                "nginx without include_dir",
                with("[web]\nserver = \"nginx\""),
                "web.include_dir: missing",
            ),
            (
                "apache without include_dir",
                with("[web]\nserver = \"apache\""),
                "web.include_dir: missing",
            ),
            (
                "web_config for nginx",
                with(
                    "[web]\nserver = \"nginx\"\ninclude_dir = \"/etc/nginx/airlock.d\"\n\
                     web_config = \"/w/web.config\"",
                ),
                "web.web_config: only for server = \"iis\"",
            ),
            (
                "include_dir without a server",
                with("[web]\ninclude_dir = \"/etc/nginx/airlock.d\""),
                "web.include_dir: only for server",
            ),
            (
                "relative web_config",
                with("[web]\nserver = \"iis\"\nweb_config = \"inetpub/web.config\""),
                "web.web_config: path 'inetpub/web.config' is not absolute",
            ),
            (
                "include_dir with ..",
                with("[web]\nserver = \"nginx\"\ninclude_dir = \"/etc/nginx/../shadow\""),
                "web.include_dir: path '/etc/nginx/../shadow' contains '..'",
            ),
            (
                "relative state_dir",
                with("state_dir = \"var/lib/airlock\""),
                "state_dir: path 'var/lib/airlock' is not absolute",
            ),
            (
                "relative root",
                with("root = \"srv/root\""),
                "root: path 'srv/root' is not absolute",
            ),
            (
                "root with ..",
                with("root = \"/srv/../etc\""),
                "root: path '/srv/../etc' contains '..'",
            ),
            (
                "empty root",
                with("root = \"\""),
                "root: path '' is not absolute",
            ),
            (
                "bad host",
                with("host = \"exch 01\""),
                "host: 'exch 01' is not [A-Za-z0-9._-]{1,64}",
            ),
            (
                "host too long",
                with(&format!("host = \"{}\"", "h".repeat(65))),
                "host: 'hhhh",
            ),
            ("host ..", with("host = \"..\""), "host: '..' is not"),
            (
                "bad product version",
                with("[products]\nexchange = \"15.2.x\""),
                "products.exchange: '15.2.x' is not a version",
            ),
            (
                "bad product name",
                with("[products]\nExchange = \"15.2.986.4\""),
                "products.Exchange: product names are [a-z0-9._-]{1,64}",
            ),
            (
                "product version not a string",
                with("[products]\nexchange = 15"),
                "products.exchange: invalid type: integer `15`, expected a string (line 2, column 12)",
            ),
            (
                "no policy",
                "host = \"exch01\"\n".into(),
                "policy.channel: missing",
            ),
            (
                "policy without channel",
                "[policy]\nblocked = []\n".into(),
                "policy.channel: missing",
            ),
            (
                "bad channel",
                "[policy]\nchannel = \"prod/eu\"\n".into(),
                "policy.channel: 'prod/eu' is not [A-Za-z0-9._-]{1,64}",
            ),
            (
                "empty channel",
                "[policy]\nchannel = \"\"\n".into(),
                "policy.channel: '' is not",
            ),
            (
                "bad blocked id",
                "[policy]\nchannel = \"prod\"\nblocked = [\"AM-2021-0001\", \"../AM 1\"]\n".into(),
                "policy.blocked: '../AM 1' is not a mitigation id",
            ),
            (
                "approvals_required > approver_keys",
                "[trust]\napprover_keys = [\"/k/a.pub\"]\n\
                 [policy]\nchannel = \"prod\"\napprovals_required = 2\n"
                    .into(),
                "policy.approvals_required: 2 required but trust.approver_keys lists 1 key(s)",
            ),
            (
                "approvals without approver keys",
                "[policy]\nchannel = \"prod\"\napprovals_required = 1\n".into(),
                "policy.approvals_required: 1 required but trust.approver_keys lists 0 key(s)",
            ),
            (
                "negative approvals_required",
                "[policy]\nchannel = \"prod\"\napprovals_required = -1\n".into(),
                "policy.approvals_required: invalid value: integer `-1`, expected u32",
            ),
            (
                "bad max_clock_skew",
                "[policy]\nchannel = \"prod\"\nmax_clock_skew = \"10x\"\n".into(),
                "policy.max_clock_skew: '10x' is not a duration",
            ),
            (
                "max_clock_skew as a number",
                "[policy]\nchannel = \"prod\"\nmax_clock_skew = 600\n".into(),
                "policy.max_clock_skew: invalid type: integer `600`, expected a string",
            ),
            (
                "wrong type",
                "[policy]\nchannel = \"prod\"\napprovals_required = \"2\"\n".into(),
                "policy.approvals_required: invalid type: string \"2\", expected u32 (line 3, column 22)",
            ),
            (
                "wrong type: web is not a table",
                with("web = \"iis\""),
                "web: invalid type: string \"iis\"",
            ),
            (
                "key list is not a list",
                with("[trust]\nrelease_keys = \"/k/release.pub\""),
                "trust.release_keys: invalid type: string",
            ),
            (
                "key list element is not a string",
                with("[trust]\nrelease_keys = [\"/k/release.pub\", 7]"),
                "trust.release_keys[1]: invalid type: integer `7`, expected a string",
            ),
            (
                "empty key path",
                with("[trust]\nvendor_keys = [\"\"]"),
                "trust.vendor_keys: empty path",
            ),
            (
                "duplicate key path",
                with("[trust]\nvendor_keys = [\"/k/v.pub\", \"/k/v.pub\"]"),
                "trust.vendor_keys: /k/v.pub is listed twice",
            ),
            (
                "duplicate key after resolution",
                with("[trust]\nvendor_keys = [\"/etc/airlock/v.pub\", \"v.pub\"]"),
                "trust.vendor_keys: /etc/airlock/v.pub is listed twice",
            ),
            (
                "control character in a key path",
                with("[trust]\nvendor_keys = [\"/k/v\\u001b.pub\"]"),
                "trust.vendor_keys: path '/k/v\\u{1b}.pub' contains a control character",
            ),
            (
                "unknown key in an inline table",
                with("web = { server = \"none\", port = 80 }"),
                "web.port: unknown key `port`",
            ),
            (
                "unknown dotted key",
                with("trust.host_keys = []"),
                "trust.host_keys: unknown key `host_keys`",
            ),
            (
                "TOML syntax error",
                with("host = exch01"),
                "host.toml: not valid TOML: string values must be quoted",
            ),
            (
                "duplicate key",
                with("host = \"a\"\nhost = \"b\""),
                "not valid TOML: duplicate key (line 2, column 1)",
            ),
            (
                "duplicate table",
                format!("{MINIMAL}[policy]\nblocked = []\n"),
                "not valid TOML: ",
            ),
            ("not a table at all", "= 1\n".into(), "not valid TOML: "),
        ];
        for (name, text, want) in cases {
            let got = err(&text);
            assert!(
                got.starts_with("profile /etc/airlock/host.toml: "),
                "{name}: {got}"
            );
            assert!(
                got.contains(want),
                "{name}: {got:?} does not contain {want:?}"
            );
            assert!(!got.contains('\n'), "{name}: {got:?} is not one line");
        }
    }

    #[test]
    fn over_size_file_is_refused_as_bad_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        let mut text = String::from(MINIMAL);
        text.push_str(&"# padding\n".repeat(MAX_PROFILE_BYTES as usize / 10 + 1));
        fsutil::write_atomic(&path, text.as_bytes(), None).unwrap();
        let e = Profile::load(&path).unwrap_err();
        assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
        assert_eq!(e.exit(), crate::Exit::Operational);
        assert!(
            e.to_string()
                .starts_with(&format!("profile {}: larger than", path.display())),
            "{e}"
        );
        let e = Profile::from_toml(&text, &path).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        fsutil::write_atomic(&path, CARD.as_bytes(), None).unwrap();
        assert_eq!(Profile::load(&path).unwrap().host(), "exch01");
        let missing = dir.path().join("missing.toml");
        let e = Profile::load(&missing).unwrap_err();
        assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.toml"), "{e}");
        assert!(e.hint().contains("--profile"), "{}", e.hint());
        assert_eq!(e.exit(), crate::Exit::Operational);
        fsutil::write_atomic(&path, b"host = \"caf\xe9\"\n", None).unwrap();
        let e = Profile::load(&path).unwrap_err();
        assert!(matches!(e, Error::Unusable { .. }), "{e:?}");
    }
}
