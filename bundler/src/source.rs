//! Where a feed comes from: a local directory, or an `https://` (or loopback or
//! explicitly allowed `http://`) URL of the feed's directory. Either way every read
//! is capped: the feed at its limit, each document at the size the signed feed
//! declares, each signature at its limit.

use crate::http::{Cap, Client, Got, NetOptions, Validators};
use airlock_format::feed::FeedEntry;
use airlock_format::{Error, Result, fsutil, limits};
use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A feed location, parsed from the command line.
#[derive(Debug)]
pub enum Origin {
    /// A local feed directory.
    Dir(PathBuf),
    /// A feed served over HTTP(S).
    Url(Remote),
}

/// A feed's base URL and the client that reads it.
#[derive(Debug)]
pub struct Remote {
    /// Ends with `/`; documents are at `base + href`.
    base: String,
    /// The client (shared by the document downloads).
    pub client: Client,
}

/// The feed index and its signature as read from the origin.
#[derive(Debug)]
pub enum FeedRead {
    /// New bytes (with the server's validators, if any).
    Bytes {
        /// `feed.xml`.
        xml: Vec<u8>,
        /// `feed.xml.minisig`, or `None` when `xml` is byte-identical to the cached
        /// feed and its signature was not fetched again.
        sig: Option<Vec<u8>>,
        /// Validators for a later conditional request.
        validators: Validators,
    },
    /// The server says the feed has not changed since the validators were issued.
    NotModified,
}

impl Origin {
    /// Parses `arg`: a URL when it starts with `http://` or `https://`, a directory
    /// otherwise. Plain `http://` is refused unless the host is loopback or
    /// `allow_http` is set. Nothing is contacted yet.
    pub fn parse(arg: &OsStr, allow_http: bool, options: NetOptions) -> Result<Origin> {
        let Some(text) = arg.to_str().filter(|t| t.contains("://")) else {
            let dir = PathBuf::from(arg);
            if !dir.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is not a feed directory (give a directory holding feed.xml, or an https:// URL)",
                    dir.display()
                )));
            }
            return Ok(Origin::Dir(dir));
        };
        let (scheme, host, base) = parse_url(text)?;
        if scheme == "http" && !allow_http && !is_loopback(&host) {
            return Err(Error::Usage {
                message: format!(
                    "refusing plain http:// to {host}: anyone on the path can see what you fetch and hold back new mitigations"
                ),
                hint: "use the vendor's https:// URL, or pass --allow-http if this network leaves no other way (every signature is still checked)".into(),
            });
        }
        let client = Client::new(&scheme, &host, options)?;
        Ok(Origin::Url(Remote { base, client }))
    }

    /// Where `feed.xml` is, for messages and the report.
    pub fn feed_location(&self) -> String {
        match self {
            Origin::Dir(d) => d.join("feed.xml").display().to_string(),
            Origin::Url(r) => format!("{}feed.xml", r.base),
        }
    }

    /// Reads the feed. `conditional` (URL origins only) makes the request
    /// conditional; `cached_xml` lets an unchanged feed reuse the cached signature.
    pub fn feed(
        &self,
        conditional: Option<&Validators>,
        cached_xml: Option<&[u8]>,
    ) -> Result<FeedRead> {
        match self {
            Origin::Dir(d) => {
                let xml = fsutil::read_limited(&d.join("feed.xml"), limits::MAX_FEED_BYTES)?;
                let sig =
                    fsutil::read_limited(&d.join("feed.xml.minisig"), limits::MAX_SIGNATURE_BYTES)?;
                Ok(FeedRead::Bytes {
                    xml,
                    sig: Some(sig),
                    validators: Validators::default(),
                })
            }
            Origin::Url(r) => {
                let url = format!("{}feed.xml", r.base);
                let (xml, validators) =
                    match r
                        .client
                        .get(&url, Cap::Limit(limits::MAX_FEED_BYTES), conditional)?
                    {
                        Got::NotModified => return Ok(FeedRead::NotModified),
                        Got::Body(xml, v) => (xml, v),
                    };
                let sig = if cached_xml == Some(xml.as_slice()) {
                    None
                } else {
                    Some(r.get_body(
                        &format!("{url}.minisig"),
                        Cap::Limit(limits::MAX_SIGNATURE_BYTES),
                    )?)
                };
                Ok(FeedRead::Bytes {
                    xml,
                    sig,
                    validators,
                })
            }
        }
    }

    /// Reads the document `entry` names and its signature: (where, bytes, signature).
    pub fn document(&self, entry: &FeedEntry) -> Result<(String, Vec<u8>, Vec<u8>)> {
        match self {
            Origin::Dir(d) => {
                let path = d.join(&entry.href);
                let xml = fsutil::read_limited(&path, entry.size)
                    .map_err(|e| declared(e, &path, entry.size))?;
                let sig = fsutil::read_limited(&with_minisig(&path), limits::MAX_SIGNATURE_BYTES)?;
                Ok((path.display().to_string(), xml, sig))
            }
            Origin::Url(r) => {
                let url = format!("{}{}", r.base, entry.href);
                let xml = r.get_body(&url, Cap::Declared(entry.size))?;
                let sig = r.get_body(
                    &format!("{url}.minisig"),
                    Cap::Limit(limits::MAX_SIGNATURE_BYTES),
                )?;
                Ok((url, xml, sig))
            }
        }
    }

    /// The HTTP client, for URL origins.
    pub fn client(&self) -> Option<&Client> {
        match self {
            Origin::Dir(_) => None,
            Origin::Url(r) => Some(&r.client),
        }
    }
}

impl Remote {
    fn get_body(&self, url: &str, cap: Cap) -> Result<Vec<u8>> {
        match self.client.get(url, cap, None)? {
            Got::Body(b, _) => Ok(b),
            // Only a conditional request can be answered 304.
            Got::NotModified => Err(Error::Network {
                what: format!("GET {url}"),
                reason: "the server answered 304 Not Modified to a plain request".into(),
                hint: "the server or a proxy on the way is misbehaving; report it to the vendor"
                    .into(),
            }),
        }
    }
}

/// A local document longer than the feed declares is a mismatch, like a remote one.
fn declared(e: Error, path: &Path, size: u64) -> Error {
    match e {
        Error::Limit { .. } => Error::mismatch(
            path.display().to_string(),
            format!("is longer than the {size} bytes the signed feed declares"),
        ),
        e => e,
    }
}

fn with_minisig(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".minisig");
    PathBuf::from(s)
}

/// Splits a feed URL into (scheme, host, base ending with `/`). The URL of
/// `feed.xml` itself names its directory. Credentials, queries and fragments are
/// refused: a feed is a plain directory of files.
fn parse_url(text: &str) -> Result<(String, String, String)> {
    let usage = |why: &str| Error::Usage {
        message: format!("feed URL {text}: {why}"),
        hint:
            "give the URL of the vendor's feed directory, like https://vendor.example/airlock/feed/"
                .into(),
    };
    let uri: ureq::http::Uri = text
        .parse()
        .map_err(|e| usage(&format!("not a valid URL ({e})")))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(usage("only https:// and http:// URLs are supported"));
    }
    let authority = uri.authority().ok_or_else(|| usage("no host"))?;
    if authority.as_str().contains('@') {
        return Err(usage(
            "credentials in the URL are not supported (they would show in process lists and logs)",
        ));
    }
    if uri.query().is_some() || text.contains('#') {
        return Err(usage("a query or fragment is not supported"));
    }
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err(usage("no host"));
    }
    let mut path = uri.path().to_string();
    if let Some(dir) = path.strip_suffix("feed.xml").filter(|d| d.ends_with('/')) {
        path = dir.to_string();
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok((
        scheme.clone(),
        host,
        format!("{scheme}://{authority}{path}"),
    ))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_feed_directory() {
        let base = |t: &str| parse_url(t).unwrap().2;
        assert_eq!(base("https://v.example/feed"), "https://v.example/feed/");
        assert_eq!(base("https://v.example/feed/"), "https://v.example/feed/");
        assert_eq!(
            base("https://v.example/feed/feed.xml"),
            "https://v.example/feed/"
        );
        assert_eq!(base("HTTPS://v.example:8443"), "https://v.example:8443/");
        assert_eq!(base("http://127.0.0.1:80/a/b/"), "http://127.0.0.1:80/a/b/");
        assert_eq!(
            base("https://v.example/myfeed.xml"),
            "https://v.example/myfeed.xml/"
        );
        let (scheme, host, _) = parse_url("https://[::1]:9/").unwrap();
        assert_eq!((scheme.as_str(), host.as_str()), ("https", "[::1]"));
    }

    #[test]
    fn credentials_queries_fragments_and_other_schemes_are_refused() {
        for bad in [
            "https://user:pw@v.example/feed/",
            "https://v.example/feed/?token=1",
            "https://v.example/feed/#x",
            "ftp://v.example/feed/",
            "https:///feed/",
            "https://v.example/fe ed/",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.exit(), airlock_format::Exit::Usage, "{bad}: {e}");
        }
    }

    #[test]
    fn only_loopback_hosts_count_as_loopback() {
        for h in ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "localhost.example",
            "128.0.0.1",
            "[::2]",
            "vendor.example",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
