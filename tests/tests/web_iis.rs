//! url-block on an IIS host, through the real binaries: the sample Exchange host
//! (`samples/hosts/exch01`, profile `samples/profiles/iis.toml`) gets the
//! Exchange-flavoured sample mitigations as URL Rewrite rules inside its
//! `web.config`, equivalent to the rules Microsoft's EOMT installed (conditions on
//! the request URI or the Cookie header, `AbortRequest`); everything else in the
//! file (BOM, CRLF, comments, the site's own rules) stays byte for byte; a new
//! revision replaces the rules in place; rollback gives back the original bytes.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use airlock_tests::{Fixture, Host, require_tool, root};
use std::path::Path;

const WEB_CONFIG: &str = "/inetpub/wwwroot/web.config";

fn apply(h: &Host, bundle: &Path) {
    h.applier(&["apply".as_ref(), bundle.as_os_str(), "--yes".as_ref()])
        .expect(0);
}

fn exchange(fx: &Fixture, version: &str) -> Host {
    let h = Host::sample("iis", "exch01", fx);
    let profile = std::fs::read_to_string(h.profile()).unwrap().replace(
        "exchange = \"15.2.986.4\"",
        &format!("exchange = \"{version}\""),
    );
    std::fs::write(h.profile(), profile).unwrap();
    h.applier(&["init"]).expect(0);
    h
}

fn bundle(fx: &Fixture, name: &str) -> std::path::PathBuf {
    fx.fetch().expect(0);
    let out = fx.path(name);
    fx.build(&out, &[]).expect(0);
    out
}

#[test]
fn the_exchange_sample_becomes_eomt_style_rules_and_rollback_restores_every_byte() {
    let fx = Fixture::samples();
    let b = bundle(&fx, "b1.airlock");
    let h = exchange(&fx, "15.2.986.4");
    let original = std::fs::read(h.file(WEB_CONFIG)).unwrap();

    apply(&h, &b);
    let after = std::fs::read(h.file(WEB_CONFIG)).unwrap();
    // Exactly the golden output of the editor's own tests for this document and
    // AM-2021-0001's two url-blocks.
    let golden =
        std::fs::read(root().join("samples/web/iis/expected/exchange-web.config.after")).unwrap();
    assert_eq!(after, golden, "web.config after apply");
    let text = String::from_utf8(after).unwrap();
    assert!(text.starts_with('\u{feff}'), "the BOM is kept");
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "CRLF kept"
    );
    // The shape EOMT installed: match every URL, a condition on the request, abort.
    let rule = text
        .split("<rule name=\"airlock AM-2021-0001 autodiscover-ssrf\"")
        .nth(1)
        .and_then(|r| r.split("</rule>").next())
        .unwrap();
    assert!(rule.contains("<match url=\".*\" />"), "{rule}");
    assert!(
        rule.contains(
            "<add input=\"{URL}\" pattern=\"autodiscover\\.json.*@.*powershell\" ignoreCase=\"true\" />"
        ),
        "{rule}"
    );
    assert!(rule.contains("<action type=\"AbortRequest\" />"), "{rule}");

    // status shows the web.config as managed and not drifted.
    let status: serde_json::Value =
        serde_json::from_str(&h.applier(&["status", "--json"]).expect(0).stdout).unwrap();
    assert_eq!(status["drift"], 0);
    assert!(
        status["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == WEB_CONFIG)
    );

    h.applier(&["rollback", "--all"]).expect(0);
    assert_eq!(
        std::fs::read(h.file(WEB_CONFIG)).unwrap(),
        original,
        "rollback gives back the original bytes"
    );
}

#[test]
fn a_new_revision_replaces_the_rules_in_place_and_keeps_the_rest() {
    let fx = Fixture::samples();
    let b1 = bundle(&fx, "b1.airlock");
    let h = exchange(&fx, "15.2.986.4");
    let original = String::from_utf8(std::fs::read(h.file(WEB_CONFIG)).unwrap()).unwrap();
    apply(&h, &b1);

    // Revision 3 of AM-2021-0001: one rule, answering 403 instead of aborting.
    let doc = fx.feed().join("mitigations/AM-2021-0001.xml");
    let xml = std::fs::read_to_string(&doc).unwrap();
    let start = xml.find("<actions>").unwrap();
    let end = xml.find("</actions>").unwrap() + "</actions>".len();
    let xml = format!(
        "{}<actions>\n    <url-block name=\"autodiscover-ssrf-v3\">\n      <match on=\"path\" pattern=\"(?i)/autodiscover/.*powershell\"/>\n      <response status=\"403\"/>\n    </url-block>\n  </actions>{}",
        &xml[..start],
        &xml[end..]
    )
    .replace("revision=\"2\"", "revision=\"3\"");
    std::fs::write(&doc, xml).unwrap();
    fx.publish(&["--retire", "AM-2020-0007"]);
    let b2 = bundle(&fx, "b2.airlock");
    apply(&h, &b2);

    let text = String::from_utf8(std::fs::read(h.file(WEB_CONFIG)).unwrap()).unwrap();
    assert!(
        !text.contains("airlock AM-2021-0001 autodiscover-ssrf\""),
        "old rule gone"
    );
    assert!(!text.contains("autodiscover-ssrf-query"), "old rule gone");
    assert!(
        text.contains("<rule name=\"airlock AM-2021-0001 autodiscover-ssrf-v3\""),
        "new rule"
    );
    assert!(text.contains("statusCode=\"403\""), "{text}");
    // Only the rules section differs from the original document.
    let prefix = original
        .bytes()
        .zip(text.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = original
        .bytes()
        .rev()
        .zip(text.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(original.len() - prefix);
    let changed_original = &original[prefix..original.len() - suffix];
    assert!(
        changed_original.trim().is_empty() || !changed_original.contains('<'),
        "only an insertion into <rules>: {changed_original:?}"
    );
    assert!(original[..prefix].contains("<rules>"));
    assert!(original[original.len() - suffix..].contains("</rules>"));

    h.applier(&["rollback", "--all"]).expect(0);
    assert_eq!(
        String::from_utf8(std::fs::read(h.file(WEB_CONFIG)).unwrap()).unwrap(),
        original
    );
}

#[test]
fn the_proxylogon_sample_is_eomts_cookie_abort_rule() {
    // AM-2021-0002 also masks the Unified Messaging units (systemctl --root).
    if !require_tool(
        "systemctl",
        "the_proxylogon_sample_is_eomts_cookie_abort_rule",
    ) {
        return;
    }
    let fx = Fixture::samples();
    let b = bundle(&fx, "b1.airlock");
    // A build inside AM-2021-0002's range (and outside AM-2021-0001's fix).
    let h = exchange(&fx, "15.2.721.2");
    apply(&h, &b);
    let text = String::from_utf8(std::fs::read(h.file(WEB_CONFIG)).unwrap()).unwrap();
    // EOMT's CVE-2021-26855 rules: "X-AnonResource-Backend Abort - inbound" and
    // "X-BEResource Abort - inbound", a condition on {HTTP_COOKIE}, AbortRequest.
    for (name, pattern) in [
        (
            "airlock AM-2021-0002 x-anonresource-backend",
            "X-AnonResource-Backend=.*/ecp/.*~.*",
        ),
        ("airlock AM-2021-0002 x-beresource", "X-BEResource=.+/.+~.+"),
    ] {
        let rule = text
            .split(&format!("<rule name=\"{name}\""))
            .nth(1)
            .and_then(|r| r.split("</rule>").next())
            .unwrap_or_else(|| panic!("no rule {name} in\n{text}"));
        assert!(rule.contains("<match url=\".*\" />"), "{rule}");
        assert!(
            rule.contains(&format!(
                "<add input=\"{{HTTP_COOKIE}}\" pattern=\"{pattern}\" ignoreCase=\"true\" />"
            )),
            "{rule}"
        );
        assert!(rule.contains("<action type=\"AbortRequest\" />"), "{rule}");
    }
}
