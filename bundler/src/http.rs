//! The bundler's only network code. Every GET has a byte cap that no body may pass
//! (nothing beyond it is read), connect, idle-read and whole-request timeouts, and
//! retries with backoff on 5xx, 408, 429 and dropped connections. Proxies come from
//! the environment, chosen per scheme. Nothing read here is trusted: callers verify
//! every body before they keep it.

use airlock_format::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ureq::http::{HeaderMap, StatusCode};

/// Longest ETag or Last-Modified value kept and echoed back to the server.
const MAX_VALIDATOR_BYTES: usize = 256;
/// First retry delay; it doubles on each further attempt.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest delay between two attempts, whatever the server asks in `Retry-After`.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How the client connects and how long it waits.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Trust only these CA certificates (PEM) instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Limit on setting up a connection (DNS, TCP, proxy, TLS).
    pub connect_timeout: Duration,
    /// Limit on waiting for any single read.
    pub read_timeout: Duration,
    /// Limit on one whole request, body included.
    pub request_timeout: Duration,
    /// Further attempts after a retryable failure.
    pub retries: u32,
}

/// The caching validators a server sent with a body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Last-Modified` header.
    pub last_modified: Option<String>,
}

impl Validators {
    /// Keeps the validators from response headers that are short printable ASCII.
    pub fn from_headers(headers: &HeaderMap) -> Validators {
        let keep = |name: &str| {
            let v = headers.get(name)?.to_str().ok()?;
            (v.len() <= MAX_VALIDATOR_BYTES && v.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .then(|| v.to_string())
        };
        Validators {
            etag: keep("etag"),
            last_modified: keep("last-modified"),
        }
    }

    /// Whether there is anything to send in a conditional request.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// How a body's cap is reported when the body is longer.
#[derive(Debug, Clone, Copy)]
pub enum Cap {
    /// One of airlock's hard limits ([`airlock_format::limits`]).
    Limit(u64),
    /// The size a signed feed declares for the document.
    Declared(u64),
}

impl Cap {
    fn bytes(self) -> u64 {
        match self {
            Cap::Limit(n) | Cap::Declared(n) => n,
        }
    }

    fn refuse(self, url: &str) -> Error {
        match self {
            Cap::Limit(limit) => Error::Limit {
                what: url.to_string(),
                limit,
                unit: "bytes",
            },
            Cap::Declared(n) => Error::mismatch(
                url,
                format!(
                    "the body is longer than the {n} bytes the signed feed declares; reading stopped there"
                ),
            ),
        }
    }
}

/// What a GET returned.
#[derive(Debug)]
pub enum Got {
    /// 200 with its body and validators.
    Body(Vec<u8>, Validators),
    /// 304: the validators sent still match.
    NotModified,
}

/// Totals over every request a client sent.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Counters {
    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A blocking HTTP(S) client for one feed: `Sync`, so document downloads share it.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    options: NetOptions,
    /// `host:port` of the proxy in use (never its credentials).
    pub proxy: Option<String>,
    /// What was sent and received.
    pub counters: Counters,
}

/// One failed attempt: whether trying again may help, and the error if not.
struct Failure {
    retry: bool,
    retry_after: Option<Duration>,
    error: Error,
}

impl Client {
    /// A client for URLs on `host` with `scheme` ("http" or "https"); the proxy is
    /// chosen from the environment for that scheme and host (see [`proxy_for`]).
    pub fn new(scheme: &str, host: &str, options: NetOptions) -> Result<Client> {
        let env = |name: &str| std::env::var(name).ok();
        let proxy_url = proxy_for(scheme, host, &env);
        if let Some(url) = &proxy_url
            && url.contains("://")
            && !url.to_ascii_lowercase().starts_with("http://")
        {
            return Err(Error::Usage {
                message: format!(
                    "the proxy set in the environment for {scheme}:// is {}, and only an HTTP proxy (http://HOST:PORT, reached with CONNECT) is supported",
                    url.split("://").next().unwrap_or_default()
                ),
                hint: "set HTTPS_PROXY / HTTP_PROXY to http://HOST:PORT, or add the feed's host to NO_PROXY".into(),
            });
        }
        let proxy = match &proxy_url {
            None => None,
            Some(url) => Some(ureq::Proxy::new(url).map_err(|e| Error::Usage {
                message: format!("the proxy set in the environment for {scheme}:// is not usable: {e}"),
                hint: "set HTTPS_PROXY / HTTP_PROXY to http://HOST:PORT (an HTTP proxy that supports CONNECT), or add the feed's host to NO_PROXY".into(),
            })?),
        };
        let proxy_desc = proxy.as_ref().map(|p| format!("{}:{}", p.host(), p.port()));
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier);
        if let Some(path) = &options.ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_ca_file(path)?));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(scheme == "https")
            .max_redirects(5)
            .proxy(proxy)
            .tls_config(tls.build())
            .user_agent(concat!("airlock-bundler/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_per_call(Some(options.request_timeout))
            .max_idle_connections_per_host(16)
            .build();
        Ok(Client {
            agent: config.into(),
            options,
            proxy: proxy_desc,
            counters: Counters::default(),
        })
    }

    /// GETs `url`, reading at most `cap` bytes of body. With `conditional`, a 304
    /// answer is [`Got::NotModified`]. Retryable failures are tried again with
    /// backoff; the last error names how many attempts were made.
    pub fn get(&self, url: &str, cap: Cap, conditional: Option<&Validators>) -> Result<Got> {
        let attempts = self.options.retries.saturating_add(1);
        let mut delay = BACKOFF_START;
        for attempt in 1..=attempts {
            match self.attempt(url, cap, conditional) {
                Ok(got) => return Ok(got),
                Err(f) if f.retry && attempt < attempts => {
                    let wait = f
                        .retry_after
                        .map_or(delay, |ra| ra.max(delay))
                        .min(BACKOFF_MAX);
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
                Err(f) => return Err(self.explain(f, attempt)),
            }
        }
        // `attempts` is at least 1, so the loop always returns.
        Err(network(url, "no attempt was made".into(), HINT_NETWORK))
    }

    /// Adds to a network error how many attempts were made and which proxy was used.
    fn explain(&self, f: Failure, attempts: u32) -> Error {
        match f.error {
            Error::Network {
                what,
                mut reason,
                hint,
            } => {
                if let Some(p) = &self.proxy {
                    reason.push_str(&format!(" (through the proxy at {p})"));
                }
                if attempts > 1 {
                    reason.push_str(&format!(" (gave up after {attempts} attempts)"));
                }
                Error::Network { what, reason, hint }
            }
            e => e,
        }
    }

    fn attempt(
        &self,
        url: &str,
        cap: Cap,
        conditional: Option<&Validators>,
    ) -> Result<Got, Failure> {
        let mut req = self.agent.get(url);
        if let Some(v) = conditional {
            if let Some(etag) = &v.etag {
                req = req.header("If-None-Match", etag);
            }
            if let Some(lm) = &v.last_modified {
                req = req.header("If-Modified-Since", lm);
            }
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut resp = req
            .call()
            .map_err(|e| failure(url, e, cap, &self.options))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && conditional.is_some() {
            return Ok(Got::NotModified);
        }
        if status != StatusCode::OK {
            let retry = status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS;
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let hint = if retry {
                HINT_NETWORK
            } else if url.ends_with("/feed.xml") || url.ends_with("/feed.xml.minisig") {
                "check the feed URL: it names the directory that holds feed.xml and feed.xml.minisig"
            } else {
                "the vendor's server does not serve a file its own signed feed lists: report it to the vendor, and fetch again later"
            };
            return Err(Failure {
                retry,
                retry_after,
                error: network(url, format!("the server answered HTTP {status}"), hint),
            });
        }
        let validators = Validators::from_headers(resp.headers());
        if resp
            .body()
            .content_length()
            .is_some_and(|n| n > cap.bytes())
        {
            return Err(Failure {
                retry: false,
                retry_after: None,
                error: cap.refuse(url),
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(cap.bytes())
            .read_to_vec()
            .map_err(|e| failure(url, e, cap, &self.options))?;
        self.counters
            .bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Got::Body(body, validators))
    }
}

const HINT_NETWORK: &str = "check the network, the URL and the proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then run fetch again: the cache keeps the last verified feed and every document already verified";

fn network(url: &str, reason: String, hint: &str) -> Error {
    Error::Network {
        what: format!("GET {url}"),
        reason,
        hint: hint.into(),
    }
}

/// Classifies a ureq error: which ones are worth another attempt, and what to say.
fn failure(url: &str, e: ureq::Error, cap: Cap, options: &NetOptions) -> Failure {
    const HINT_TIMEOUT: &str = "the server or the network stalled; check them, or raise the timeout named above, then run fetch again";
    const HINT_TLS: &str = "the server's certificate is not trusted or not valid for this host; behind a TLS-inspecting proxy, or for a vendor with a private CA, pass that CA with --ca-file (or add it to the system trust store)";
    let secs = |d: Duration| format!("{} s", d.as_secs_f64());
    let (retry, reason, hint) = match &e {
        ureq::Error::BodyExceedsLimit(_) => {
            return Failure {
                retry: false,
                retry_after: None,
                error: cap.refuse(url),
            };
        }
        ureq::Error::Timeout(t) => {
            let which = match t {
                ureq::Timeout::PerRead => format!(
                    "no data for {} (--read-timeout)",
                    secs(options.read_timeout)
                ),
                ureq::Timeout::Connect | ureq::Timeout::Resolve => {
                    format!(
                        "no connection within {} (--connect-timeout)",
                        secs(options.connect_timeout)
                    )
                }
                ureq::Timeout::PerCall => {
                    format!(
                        "the request took longer than {} (--request-timeout)",
                        secs(options.request_timeout)
                    )
                }
                other => format!("{other} timeout"),
            };
            (false, format!("timed out: {which}"), HINT_TIMEOUT)
        }
        ureq::Error::Io(io)
            if io.kind() == ErrorKind::TimedOut || io.kind() == ErrorKind::WouldBlock =>
        {
            (false, format!("timed out ({io})"), HINT_TIMEOUT)
        }
        // rustls reports a failed handshake (an untrusted certificate, a wrong
        // name) as invalid data on the socket.
        ureq::Error::Io(io) if io.kind() == ErrorKind::InvalidData => {
            (false, format!("TLS failed: {io}"), HINT_TLS)
        }
        ureq::Error::Io(io) => (
            matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::BrokenPipe
            ),
            format!("connection failed: {io}"),
            HINT_NETWORK,
        ),
        ureq::Error::ConnectionFailed => (true, "could not connect".into(), HINT_NETWORK),
        ureq::Error::HostNotFound => (false, "host not found (DNS)".into(), HINT_NETWORK),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            (false, format!("TLS failed: {e}"), HINT_TLS)
        }
        ureq::Error::ConnectProxyFailed(why) => (
            false,
            format!("the proxy refused the connection: {why}"),
            "check HTTPS_PROXY / HTTP_PROXY, or add the feed's host to NO_PROXY",
        ),
        ureq::Error::RequireHttpsOnly(_) => (
            false,
            format!("refused a redirect from https:// to plain http:// ({e})"),
            "ask the vendor to serve the feed over https:// only",
        ),
        _ => (false, e.to_string(), HINT_NETWORK),
    };
    Failure {
        retry,
        retry_after: None,
        error: network(url, reason, hint),
    }
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = airlock_format::fsutil::read_limited(path, 1 << 20)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Usage {
                    message: format!(
                        "--ca-file {}: not a PEM certificate file ({e})",
                        path.display()
                    ),
                    hint: "give the CA certificate(s) in PEM form (-----BEGIN CERTIFICATE-----)"
                        .into(),
                });
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Usage {
            message: format!("--ca-file {}: holds no PEM certificate", path.display()),
            hint: "give the CA certificate(s) in PEM form (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(certs)
}

/// The proxy URL for a request to `host` over `scheme`, curl-style: `https_proxy` /
/// `HTTPS_PROXY` for https, `http_proxy` / `HTTP_PROXY` for http, then `all_proxy` /
/// `ALL_PROXY`; `no_proxy` / `NO_PROXY` (comma-separated: `*`, a host, or a domain
/// that also matches its subdomains, with or without a leading dot) bypasses it.
/// Empty values count as unset.
pub fn proxy_for(scheme: &str, host: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
    };
    let no_proxy = get(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
    if bypasses(&no_proxy, host) {
        return None;
    }
    let own = match scheme {
        "https" => get(&["https_proxy", "HTTPS_PROXY"]),
        _ => get(&["http_proxy", "HTTP_PROXY"]),
    };
    own.or_else(|| get(&["all_proxy", "ALL_PROXY"]))
        .map(|v| v.trim().to_string())
}

fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy.split(',').any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        let entry = entry.trim_start_matches('[').trim_end_matches(']');
        if entry.is_empty() {
            return false;
        }
        entry == "*"
            || host == entry
            || host
                .strip_suffix(entry)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_proxy_is_chosen_by_scheme_with_all_proxy_as_fallback() {
        let e = env(&[
            ("HTTPS_PROXY", "http://s:1"),
            ("http_proxy", "http://p:2"),
            ("ALL_PROXY", "http://a:3"),
        ]);
        assert_eq!(
            proxy_for("https", "v.example", &e).as_deref(),
            Some("http://s:1")
        );
        assert_eq!(
            proxy_for("http", "v.example", &e).as_deref(),
            Some("http://p:2")
        );
        let e = env(&[("ALL_PROXY", "http://a:3"), ("HTTP_PROXY", "")]);
        assert_eq!(
            proxy_for("https", "v.example", &e).as_deref(),
            Some("http://a:3")
        );
        assert_eq!(
            proxy_for("http", "v.example", &e).as_deref(),
            Some("http://a:3")
        );
        assert_eq!(proxy_for("https", "v.example", &env(&[])), None);
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_star() {
        let with = |np: &str, host: &str| {
            proxy_for(
                "https",
                host,
                &env(&[("HTTPS_PROXY", "http://s:1"), ("NO_PROXY", np)]),
            )
            .is_none()
        };
        assert!(with("*", "anything.example"));
        assert!(with("localhost, 127.0.0.1", "127.0.0.1"));
        assert!(with("example.com", "example.com"));
        assert!(with("example.com", "feed.example.com"));
        assert!(with(".example.com", "feed.EXAMPLE.com"));
        assert!(with("*.example.com", "a.b.example.com"));
        assert!(with("::1", "[::1]"));
        assert!(!with("example.com", "badexample.com"));
        assert!(!with("feed.example.com", "example.com"));
        assert!(!with("", "example.com"));
        assert!(!with(",,", "example.com"));
        // Lower case wins over upper case, as in curl.
        let e = env(&[
            ("HTTPS_PROXY", "http://s:1"),
            ("no_proxy", "other"),
            ("NO_PROXY", "*"),
        ]);
        assert!(proxy_for("https", "v.example", &e).is_some());
    }

    #[test]
    fn validators_keep_only_short_printable_values() {
        let mut h = HeaderMap::new();
        h.insert("etag", "\"abc\"".parse().unwrap());
        h.insert(
            "last-modified",
            "x".repeat(MAX_VALIDATOR_BYTES + 1).parse().unwrap(),
        );
        let v = Validators::from_headers(&h);
        assert_eq!(v.etag.as_deref(), Some("\"abc\""));
        assert_eq!(v.last_modified, None);
        assert!(!v.is_empty());
        assert!(Validators::from_headers(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn a_body_over_its_cap_is_refused_by_kind() {
        let e = Cap::Declared(10).refuse("u");
        assert!(e.to_string().contains("longer than the 10 bytes"), "{e}");
        assert_eq!(e.exit(), airlock_format::Exit::Verification);
        let e = Cap::Limit(4096).refuse("u");
        assert!(
            e.to_string().contains("over the limit of 4096 bytes"),
            "{e}"
        );
        assert_eq!(e.exit(), airlock_format::Exit::Verification);
    }
}
