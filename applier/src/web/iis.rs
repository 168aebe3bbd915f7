//! IIS: a mitigation's url-blocks as IIS URL Rewrite rules inside `web.config`,
//! under the top-level `configuration/system.webServer/rewrite/rules`, edited in
//! place so that every byte outside the edited rules stays as it was.
//!
//! # What airlock writes
//!
//! One `<rule>` per url-block, in document order, shaped like the rule that
//! Microsoft's Exchange On-premises Mitigation Tool (EOMT) and the Exchange
//! Emergency Mitigation service install (CVE-2022-41040, "PowerShell - inbound"):
//!
//! ```xml
//! <rule name="airlock AM-2021-0001 autodiscover-ssrf" stopProcessing="true">
//!   <match url=".*" />
//!   <conditions logicalGrouping="MatchAll">
//!     <add input="{URL}" pattern="autodiscover\.json.*@.*powershell" ignoreCase="true" />
//!   </conditions>
//!   <action type="AbortRequest" />
//! </rule>
//! ```
//!
//! - The rule is named `airlock ID NAME`; `path` is matched on `{URL}` (the decoded
//!   path, no query string), `query` on `{QUERY_STRING}`, a header `X-Name` on
//!   `{HTTP_X_NAME}`. EOMT matched `{REQUEST_URI}` (path and query as sent): what
//!   it caught in the query string, airlock catches with a `query` condition.
//! - A leading `(?i)` becomes `ignoreCase="true"`; without it `ignoreCase="false"`
//!   is written, because IIS's default is true.
//! - `abort` is `AbortRequest`; a status is a `CustomResponse` with that status.
//! - Every attribute value is escaped (`&` `<` `>` `"` `'`, and tab, CR and LF as
//!   character references so that attribute-value normalisation cannot turn them
//!   into spaces), so no pattern, name or id can leave its attribute.
//!
//! # Which rules are airlock's
//!
//! A `<rule>` child of that `<rules>` belongs to mitigation `ID` exactly when its
//! `name` (as an XML parser reads it) starts with `airlock ID ` (case-sensitive,
//! with the trailing space). Rules of other mitigations, site rules, and
//! look-alikes (`airlock-ID …`, `Airlock ID …`, `airlock ID0 …`) are never touched.
//! `<location>` sections are not looked into: the rules protect the site or
//! application the web.config belongs to.
//!
//! # Where they go, and the order IIS runs them in
//!
//! IIS evaluates the rules of a `<rules>` collection in document order. **airlock
//! appends**: new rules become the last children of `<rules>` (before `</rules>`),
//! so the site's own rules earlier in the list, such as an HTTP-to-HTTPS redirect,
//! keep running first. A site rule with `stopProcessing="true"` that matches a
//! request before airlock's rule does (with an action other than a redirect that
//! brings the request back) therefore keeps that request away from airlock's rule.
//! When the mitigation's rules are already there (an update), the new rules take
//! the place of the first old one, so their position does not move.
//!
//! Missing parents (`system.webServer`, `rewrite`, `rules`) are created as the last
//! child of their parent; a self-closing parent (`<rewrite/>`, `<rules />`) is
//! expanded into a start and an end tag.
//!
//! # Layout
//!
//! Line breaks are read as XML reads them: CRLF, a lone CR, or LF. Inserted lines end
//! like the document's first line break (LF when there is none), and are never put
//! right after a lone CR when they start with LF, which would merge the two into a
//! CRLF. The rules take the indentation of the first other child of `<rules>` that starts a
//! line (else of airlock's own rules there, else `<rules>`'s line plus one step);
//! created elements take that of their first sibling, else their parent's plus one
//! step. The step is the first parent-to-child indentation found in the document
//! that is a tab or one to eight spaces, else two spaces. Every inserted line starts
//! with the line break, so removing airlock's rules removes their lines whole.
//!
//! # Guarantees
//!
//! - Bytes outside the removed rules and the one insertion stay identical, an
//!   optional UTF-8 byte order mark included.
//! - `apply(apply(d, m, b), m, b) == apply(d, m, b)`, and
//!   `apply(apply(d, m, b1), m, b2) == apply(d, m, b2)`.
//! - With no url-blocks and none of the mitigation's rules in the document, the
//!   document is returned unchanged.
//! - Removal, `apply(apply(d, m, b), m, &[]) == d`, holds byte for byte when `d`
//!   has none of `m`'s rules and a `<rules>` element with a start and an end tag
//!   whose `</rules>` starts its own line (whether or not it has other rules).
//!   Otherwise removal leaves what airlock created in place: the parents it added,
//!   a `<rules/>` (or parent) expanded into a start and end tag, or a line break
//!   and indentation before a `</rules>` that shared its line. The applier does not
//!   rely on removal to restore a file: it recomputes every managed file from its
//!   pre-image and restores the pre-image's bytes on rollback.
//!
//! # What is refused
//!
//! Documents over 16 MiB, not UTF-8 (or declaring another encoding), not
//! well-formed (a character XML 1.0 does not allow, such as NUL, anywhere, comments
//! included; a second byte order mark), with a DOCTYPE (no entity expansion), nested
//! deeper than 256 elements, whose root is not `<configuration>`, or with two
//! top-level `<system.webServer>`, two `<rewrite>` in it, or two `<rules>` in that. Every
//! refusal says what is wrong and at which byte, so that an operator can fix the
//! file; nothing here panics, whatever the input.

use super::{Block, On, Reply, split_flags};
use quick_xml::Reader;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};

/// The largest web.config airlock edits (the applier's limit for edited files).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// The deepest element nesting accepted; real web.config files stay far below.
const MAX_DEPTH: usize = 256;
/// The UTF-8 byte order mark, kept when present.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The indentation step when the document shows none.
const DEFAULT_UNIT: &str = "  ";
/// What to do about a document in another encoding.
const UTF8_ONLY: &str =
    "airlock edits only UTF-8 web.config files: save it as UTF-8, then apply again.";

/// `doc` (a web.config's bytes) with the airlock rules of `mitigation` replaced by
/// the rules rendered from `blocks` (empty: they are removed). Everything else in
/// the document stays byte for byte.
pub fn apply(doc: &[u8], mitigation: &str, blocks: &[Block]) -> Result<Vec<u8>, String> {
    check_input(mitigation, blocks)?;
    if doc.len() > MAX_BYTES {
        return Err(format!(
            "web.config is {} bytes, over airlock's limit of 16 MiB for a file it edits. \
             A real web.config is far smaller: check that the profile names the right file.",
            doc.len()
        ));
    }
    if doc.starts_with(b"\xFF\xFE") || doc.starts_with(b"\xFE\xFF") {
        return Err(format!(
            "web.config is UTF-16 (it starts with a UTF-16 byte order mark). {UTF8_ONLY}"
        ));
    }
    let (bom, body) = match doc.strip_prefix(BOM) {
        Some(rest) => (BOM, rest),
        None => (&b""[..], doc),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let line = line_number(&body[..at]);
        format!(
            "web.config is not UTF-8 (invalid byte at line {line}, byte {}). {UTF8_ONLY}",
            bom.len() + at
        )
    })?;
    let prefix = format!("airlock {mitigation} ");
    let scan = Scanner {
        text,
        base: bom.len(),
        prefix: &prefix,
    }
    .run()?;
    if blocks.is_empty() && scan.ours.is_empty() {
        return Ok(doc.to_vec());
    }
    let layout = Layout {
        eol: detect_eol(text),
        unit: scan.unit.map_or(DEFAULT_UNIT, |span| slice(text, span)),
    };
    let mut edits: Vec<Edit> = scan
        .ours
        .iter()
        .map(|&(at, end)| Edit {
            at,
            end,
            with: String::new(),
        })
        .collect();
    if !blocks.is_empty() {
        let edit = insertion(text, &scan, mitigation, blocks, &layout)?;
        edits.push(not_after_cr(text, edit));
    }
    // An insertion at the start of the first removed rule sorts before its removal.
    edits.sort_by_key(|e| (e.at, e.end));
    let mut out = Vec::with_capacity(doc.len() + edits.iter().map(|e| e.with.len()).sum::<usize>());
    out.extend_from_slice(bom);
    let mut cursor = 0;
    for e in &edits {
        let (Some(keep), Some(_)) = (text.get(cursor..e.at), text.get(e.at..e.end)) else {
            return Err(format!(
                "internal error: overlapping web.config edits at byte {}; nothing was changed",
                bom.len() + e.at
            ));
        };
        out.extend_from_slice(keep.as_bytes());
        out.extend_from_slice(e.with.as_bytes());
        cursor = e.end;
    }
    out.extend_from_slice(text.get(cursor..).unwrap_or_default().as_bytes());
    Ok(out)
}

/// The rules of `mitigation` as an IIS `<rule>` fragment (for docs and tests):
/// `<rule>` lines start at column 0, each nesting level adds one `indent`, and
/// every line ends with `eol`.
///
/// It trusts its input as the format crate checked it; [`apply`] checks it again.
/// A character XML cannot carry at all (a control character other than tab, CR and
/// LF) is written as U+FFFD so that the fragment stays well-formed.
pub fn render(mitigation: &str, blocks: &[Block], indent: &str, eol: &str) -> String {
    let mut out = String::new();
    for (depth, line) in rule_lines(mitigation, blocks) {
        for _ in 0..depth {
            out.push_str(indent);
        }
        out.push_str(&line);
        out.push_str(eol);
    }
    out
}

/// The lines of the rules, each with its nesting depth below `<rules>`.
fn rule_lines(mitigation: &str, blocks: &[Block]) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for block in blocks {
        lines.push((
            0,
            format!(
                "<rule name=\"{}\" stopProcessing=\"true\">",
                escape(&format!("airlock {mitigation} {}", block.name))
            ),
        ));
        lines.push((1, "<match url=\".*\" />".to_string()));
        lines.push((1, "<conditions logicalGrouping=\"MatchAll\">".to_string()));
        for cond in &block.matches {
            let input = match &cond.on {
                On::Path => "{URL}".to_string(),
                On::Query => "{QUERY_STRING}".to_string(),
                On::Header(name) => {
                    format!("{{HTTP_{}}}", name.to_ascii_uppercase().replace('-', "_"))
                }
            };
            let (ignore_case, pattern) = split_flags(&cond.pattern);
            lines.push((
                2,
                format!(
                    "<add input=\"{}\" pattern=\"{}\" ignoreCase=\"{ignore_case}\" />",
                    escape(&input),
                    escape(pattern)
                ),
            ));
        }
        lines.push((1, "</conditions>".to_string()));
        lines.push((
            1,
            match block.response {
                Reply::Abort => "<action type=\"AbortRequest\" />".to_string(),
                Reply::Status(code) => format!(
                    "<action type=\"CustomResponse\" statusCode=\"{code}\" \
                     statusReason=\"Blocked by airlock\" \
                     statusDescription=\"Blocked by airlock mitigation {}\" />",
                    escape(mitigation)
                ),
            },
        ));
        lines.push((0, "</rule>".to_string()));
    }
    lines
}

/// `s` escaped for a double-quoted XML attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// True for the characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// True for ids and names: `[A-Za-z0-9._-]{1,64}`.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Refuses what the format crate should already have refused: ids, names and header
/// names outside their character sets, duplicate rule names (IIS refuses them),
/// rules without a condition (they would block every request), statuses outside
/// 400-599, and characters XML cannot carry.
fn check_input(mitigation: &str, blocks: &[Block]) -> Result<(), String> {
    if !is_name(mitigation) {
        return Err(format!(
            "mitigation id '{}' is not [A-Za-z0-9._-]{{1,64}}, so airlock cannot name IIS \
             rules after it; the document should have been refused when it was parsed",
            mitigation.escape_debug()
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        let what = format!("url-block '{}' of {mitigation}", block.name.escape_debug());
        if !is_name(&block.name) {
            return Err(format!("{what}: the name is not [A-Za-z0-9._-]{{1,64}}"));
        }
        if blocks[..i].iter().any(|b| b.name == block.name) {
            return Err(format!(
                "{what}: two url-blocks have this name, and IIS refuses two rules with one name"
            ));
        }
        if block.matches.is_empty() {
            return Err(format!(
                "{what}: no condition, so its IIS rule would block every request"
            ));
        }
        for cond in &block.matches {
            if let On::Header(h) = &cond.on
                && (!is_name(h) || h.contains('.'))
            {
                return Err(format!(
                    "{what}: header name '{}' is not [A-Za-z0-9_-]{{1,64}}",
                    h.escape_debug()
                ));
            }
            if let Some(c) = cond.pattern.chars().find(|&c| !is_xml_char(c)) {
                return Err(format!(
                    "{what}: the pattern holds U+{:04X}, which an XML file cannot carry",
                    u32::from(c)
                ));
            }
        }
        if let Reply::Status(code) = block.response
            && !(400..=599).contains(&code)
        {
            return Err(format!("{what}: status {code} is not in 400-599"));
        }
    }
    Ok(())
}

/// A byte range of the text (after the BOM).
type Span = (usize, usize);

/// The text of `span` (empty if it were not a valid range, which the scan never
/// produces: spans only ever end on ASCII whitespace or markup).
fn slice(text: &str, span: Span) -> &str {
    text.get(span.0..span.1).unwrap_or_default()
}

/// One replacement of `text[at..end]` by `with`.
#[derive(Debug)]
struct Edit {
    at: usize,
    end: usize,
    with: String,
}

/// The document's line ending and indentation step.
#[derive(Debug)]
struct Layout<'a> {
    eol: &'a str,
    unit: &'a str,
}

/// An element on the path to `<rules>`.
#[derive(Debug, Clone, Copy)]
struct Elem {
    /// The `<` of its start tag.
    start: usize,
    /// Just after the `>` of its start tag.
    tag_end: usize,
    /// The `<` of its end tag; `None` when it is self-closing.
    close: Option<usize>,
    /// The indentation of its first child element that starts a line.
    child_indent: Option<Span>,
}

/// What a scan of the document found.
#[derive(Debug, Default)]
struct Scan {
    root: Option<Elem>,
    web_server: Option<Elem>,
    rewrite: Option<Elem>,
    rules: Option<Elem>,
    /// Indentation of the first child element of `<rules>` that starts a line and
    /// is not one of this mitigation's rules.
    sibling_indent: Option<Span>,
    /// Indentation of the first of this mitigation's rules that starts a line.
    ours_indent: Option<Span>,
    /// This mitigation's rules, each with the line break and indentation before it
    /// when it starts a line.
    ours: Vec<Span>,
    /// The indentation step.
    unit: Option<Span>,
}

/// What an open element is to the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    Root,
    WebServer,
    Rewrite,
    Rules,
    /// A `<rule>` child of `<rules>`; `Some(start)` when it is this mitigation's.
    Rule(Option<usize>),
}

/// An open element: what it is, its name, and its indentation when its start tag
/// starts a line.
#[derive(Debug)]
struct Frame {
    kind: Kind,
    name: Span,
    indent: Option<Span>,
}

/// One pass over the document with quick-xml, checking well-formedness as it goes.
#[derive(Debug)]
struct Scanner<'a> {
    text: &'a str,
    /// Length of the BOM, added to positions in messages.
    base: usize,
    /// `airlock ID `.
    prefix: &'a str,
}

impl Scanner<'_> {
    /// `line L, byte B` of text position `pos` (bytes count from the file's start,
    /// byte order mark included).
    fn locate(&self, pos: usize) -> String {
        let head = self.text.get(..pos).unwrap_or(self.text);
        let line = line_number(head.as_bytes());
        format!("line {line}, byte {}", self.base + pos)
    }

    fn malformed(&self, pos: usize, detail: impl std::fmt::Display) -> String {
        format!(
            "web.config is not well-formed XML at {}: {detail}. Repair the file (IIS cannot \
             read it either), then apply again.",
            self.locate(pos)
        )
    }

    /// Refuses what quick-xml lets through although XML 1.0 forbids it, and IIS
    /// refuses it too: a character outside XML's `Char` anywhere (quick-xml does not
    /// look into comments, processing instructions or text), and a second byte order
    /// mark. The latter would also derail the scan: quick-xml drops a U+FEFF at the
    /// start of its input without counting it, so every position would be three
    /// bytes short and the edits would land in the wrong place.
    fn check_chars(&self) -> Result<(), String> {
        if self.text.starts_with('\u{FEFF}') {
            return Err(self.malformed(
                0,
                "a second byte order mark (U+FEFF); a file starts with one at most",
            ));
        }
        match self.text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
            Some((at, c)) => Err(self.malformed(
                at,
                format_args!("U+{:04X}, a character XML does not allow", u32::from(c)),
            )),
            None => Ok(()),
        }
    }

    fn run(&self) -> Result<Scan, String> {
        self.check_chars()?;
        let text = self.text;
        let mut reader = Reader::from_str(text);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        let mut scan = Scan::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut first = true;
        loop {
            let pos = to_usize(reader.buffer_position());
            let event = reader.read_event().map_err(|e| {
                self.malformed(to_usize(reader.error_position()), format_args!("{e}"))
            })?;
            let end = to_usize(reader.buffer_position());
            // Every edit is spliced at positions taken from tags: should quick-xml's
            // positions ever drift from the text, refuse rather than corrupt the file.
            if matches!(event, Event::Start(_) | Event::Empty(_) | Event::End(_))
                && text.as_bytes().get(pos) != Some(&b'<')
            {
                return Err(format!(
                    "internal error: the scan of web.config lost its place at byte {}; \
                     nothing was changed",
                    self.base + pos
                ));
            }
            match event {
                Event::Decl(d) => {
                    if !first || pos != 0 {
                        return Err(self.malformed(
                            pos,
                            "an XML declaration is only allowed at the very start",
                        ));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| self.attr_error(pos, "?xml", &e))?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(format!(
                                "web.config declares encoding \"{}\". airlock edits only UTF-8 \
                                 web.config files: save it as UTF-8 with encoding=\"utf-8\", \
                                 then apply again.",
                                enc.escape_debug()
                            ));
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(format!(
                        "web.config has a DOCTYPE at {}. airlock refuses DTDs (entity \
                         expansion, external entities) and IIS does not need one: remove it, \
                         then apply again.",
                        self.locate(pos)
                    ));
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Start(e) => {
                    let frame = self.element(&e, pos, end, false, &stack, &mut scan)?;
                    stack.push(frame);
                    if stack.len() > MAX_DEPTH {
                        return Err(self.malformed(
                            pos,
                            format_args!("elements nest deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                }
                Event::Empty(e) => {
                    self.element(&e, pos, end, true, &stack, &mut scan)?;
                }
                Event::End(_) => {
                    let Some(frame) = stack.pop() else {
                        return Err(self.malformed(pos, "an end tag without a start tag"));
                    };
                    let elem = match frame.kind {
                        Kind::Root => scan.root.as_mut(),
                        Kind::WebServer => scan.web_server.as_mut(),
                        Kind::Rewrite => scan.rewrite.as_mut(),
                        Kind::Rules => scan.rules.as_mut(),
                        Kind::Rule(Some(start)) => {
                            scan.ours.push((removal_start(text, start), end));
                            None
                        }
                        Kind::Rule(None) | Kind::Other => None,
                    };
                    if let Some(elem) = elem {
                        elem.close = Some(pos);
                    }
                }
                Event::Text(t) => {
                    let raw = t.as_ref();
                    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
                    if let (true, Some(at)) =
                        (stack.is_empty(), raw.bytes().position(|b| !blank(b)))
                    {
                        return Err(self.malformed(pos + at, "text outside the root element"));
                    }
                    if let Some(at) = raw.find("]]>") {
                        return Err(self.malformed(pos + at, "']]>' in text"));
                    }
                }
                Event::CData(_) => {
                    if stack.is_empty() {
                        return Err(self.malformed(pos, "CDATA outside the root element"));
                    }
                }
                Event::GeneralRef(r) => {
                    if stack.is_empty() {
                        return Err(self.malformed(pos, "a reference outside the root element"));
                    }
                    let ok = if r.is_char_ref() {
                        matches!(r.resolve_char_ref(), Ok(Some(c)) if is_xml_char(c))
                    } else {
                        matches!(
                            r.xml10_content().as_ref(),
                            "lt" | "gt" | "amp" | "apos" | "quot"
                        )
                    };
                    if !ok {
                        return Err(self.malformed(
                            pos,
                            format_args!(
                                "'{}' is not a predefined entity or a valid character reference",
                                text.get(pos..end).unwrap_or_default().escape_debug()
                            ),
                        ));
                    }
                }
                Event::Eof => break,
            }
            first = false;
        }
        if let Some(open) = stack.last() {
            return Err(self.malformed(
                text.len(),
                format_args!(
                    "the document ends before <{}> (at {}) is closed",
                    text.get(open.name.0..open.name.1).unwrap_or_default(),
                    self.locate(open.name.0.saturating_sub(1))
                ),
            ));
        }
        if scan.root.is_none() {
            return Err(
                "web.config has no root element: an IIS web.config is a <configuration> \
                 element. Check that the profile names the right file."
                    .to_string(),
            );
        }
        Ok(scan)
    }

    /// Records a start tag (or a self-closing one, `empty`) at `pos..end` whose parent
    /// is the top of `stack`, and returns its frame.
    fn element(
        &self,
        e: &BytesStart<'_>,
        pos: usize,
        end: usize,
        empty: bool,
        stack: &[Frame],
        scan: &mut Scan,
    ) -> Result<Frame, String> {
        let text = self.text;
        let name = e.name().into_inner();
        if !is_xml_name(name) {
            return Err(self.malformed(
                pos,
                format_args!("'{}' is not an element name", name.escape_debug()),
            ));
        }
        let rule_name = self.attributes(e, pos, name)?;
        let indent = begins_line(text, pos);
        let parent = stack.last().map(|f| f.kind);
        let kind = match (parent, name) {
            (None, _) if scan.root.is_some() => {
                return Err(self.malformed(pos, "a second root element"));
            }
            (None, "configuration") => Kind::Root,
            (None, other) => {
                return Err(format!(
                    "web.config's root element is <{other}>, not <configuration>: this is not \
                     an IIS configuration file. Check that the profile names the right file."
                ));
            }
            (Some(Kind::Root), "system.webServer") => Kind::WebServer,
            (Some(Kind::WebServer), "rewrite") => Kind::Rewrite,
            (Some(Kind::Rewrite), "rules") => Kind::Rules,
            (Some(Kind::Rules), "rule") => {
                let ours = rule_name.is_some_and(|n| n.starts_with(self.prefix));
                Kind::Rule(ours.then_some(pos))
            }
            _ => Kind::Other,
        };
        let this = Elem {
            start: pos,
            tag_end: end,
            close: None,
            child_indent: None,
        };
        let (slot, parent_name, what) = match kind {
            Kind::Root => (Some(&mut scan.root), "", "configuration"),
            Kind::WebServer => (
                Some(&mut scan.web_server),
                "configuration",
                "system.webServer",
            ),
            Kind::Rewrite => (Some(&mut scan.rewrite), "system.webServer", "rewrite"),
            Kind::Rules => (Some(&mut scan.rules), "system.webServer/rewrite", "rules"),
            _ => (None, "", ""),
        };
        if let Some(slot) = slot {
            if let Some(first) = slot {
                return Err(format!(
                    "web.config has two <{what}> sections under {parent_name} (at {} and {}), \
                     and airlock cannot tell which one IIS uses: merge them into one, then \
                     apply again.",
                    self.locate(first.start),
                    self.locate(pos)
                ));
            }
            *slot = Some(this);
        }
        if let Some(ind) = indent {
            let parent_elem = match parent {
                Some(Kind::Root) => scan.root.as_mut(),
                Some(Kind::WebServer) => scan.web_server.as_mut(),
                Some(Kind::Rewrite) => scan.rewrite.as_mut(),
                _ => None,
            };
            if let Some(p) = parent_elem {
                p.child_indent.get_or_insert(ind);
            }
            if parent == Some(Kind::Rules) {
                match kind {
                    Kind::Rule(Some(_)) => scan.ours_indent.get_or_insert(ind),
                    _ => scan.sibling_indent.get_or_insert(ind),
                };
            }
            if scan.unit.is_none()
                && let Some(pind) = stack.last().and_then(|f| f.indent)
            {
                scan.unit = step(text, pind, ind);
            }
        }
        if empty && let Kind::Rule(Some(start)) = kind {
            scan.ours.push((removal_start(text, start), end));
        }
        Ok(Frame {
            kind,
            name: (pos + 1, pos + 1 + name.len()),
            indent,
        })
    }

    /// Checks the attributes of `e` (at `pos`, named `name`) and returns the value of
    /// its `name` attribute, as an XML parser reads it.
    fn attributes(
        &self,
        e: &BytesStart<'_>,
        pos: usize,
        name: &str,
    ) -> Result<Option<String>, String> {
        let mut found = None;
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.attr_error(pos, name, &err))?;
            let key = attr.key.into_inner();
            if attr.value.contains('<') {
                return Err(self.malformed(
                    pos,
                    format_args!("attribute '{key}' of <{name}> contains '<'"),
                ));
            }
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|_| {
                    self.malformed(
                        pos,
                        format_args!(
                            "attribute '{key}' of <{name}> has an undefined or malformed \
                             reference (only &lt; &gt; &amp; &apos; &quot; and character \
                             references are allowed)"
                        ),
                    )
                })?;
            if key == "name" {
                found = Some(value.into_owned());
            }
        }
        Ok(found)
    }

    /// The message for a malformed attribute of the tag at `pos` named `name`.
    fn attr_error(&self, pos: usize, name: &str, err: &AttrError) -> String {
        // Positions in `AttrError` count from the byte after the tag's `<`.
        let at = |rel: usize| pos + 1 + rel;
        match *err {
            AttrError::ExpectedEq(p) => self.malformed(
                at(p),
                format_args!("an attribute of <{name}> without '=' and a value"),
            ),
            AttrError::ExpectedValue(p) => self.malformed(
                at(p),
                format_args!("an attribute of <{name}> without a value"),
            ),
            AttrError::UnquotedValue(p) => self.malformed(
                at(p),
                format_args!("an unquoted attribute value in <{name}>"),
            ),
            AttrError::ExpectedQuote(p, q) => self.malformed(
                at(p),
                format_args!(
                    "an attribute value of <{name}> without its closing {}",
                    char::from(q)
                ),
            ),
            AttrError::Duplicated(p, first) => self.malformed(
                at(p),
                format_args!(
                    "a duplicate attribute in <{name}> (the first one is at {})",
                    self.locate(at(first))
                ),
            ),
        }
    }
}

/// True for a plausible XML name: no markup characters, no whitespace, not starting
/// with a digit, `-` or `.`.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.' | '\u{B7}'))
}

/// A reader position as an index into the text (it always fits: the text is in
/// memory).
fn to_usize(pos: u64) -> usize {
    usize::try_from(pos).unwrap_or(usize::MAX)
}

/// The first line break of `text` as XML reads it (CRLF, a lone CR, or LF); LF when
/// there is none.
fn detect_eol(text: &str) -> &'static str {
    let bytes = text.as_bytes();
    match text.find(['\r', '\n']) {
        Some(i) if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') => "\r\n",
        Some(i) if bytes[i] == b'\r' => "\r",
        _ => "\n",
    }
}

/// The line number (from 1) of the position just after `head`, counting line breaks
/// as XML does (CRLF, a lone CR, LF).
fn line_number(head: &[u8]) -> usize {
    let lone_cr = |i: usize| head.get(i + 1) != Some(&b'\n');
    1 + head
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && lone_cr(i)))
        .count()
}

/// The indentation before `pos` when only spaces and tabs stand between the start
/// of its line (after an LF or a lone CR) and `pos`.
fn begins_line(text: &str, pos: usize) -> Option<Span> {
    let bytes = text.as_bytes();
    let mut i = pos.min(bytes.len());
    while i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    (i == 0 || matches!(bytes[i - 1], b'\n' | b'\r')).then_some((i, pos))
}

/// The leading spaces and tabs of the line `pos` is on.
fn line_indent(text: &str, pos: usize) -> &str {
    let head = text.get(..pos).unwrap_or(text);
    let start = head.rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let line = text.get(start..).unwrap_or_default();
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..len]
}

/// Where the removal of an element starting at `pos` begins: at the line break
/// (CRLF, lone CR or LF) before its indentation when it starts a line, else at `pos`.
fn removal_start(text: &str, pos: usize) -> usize {
    match begins_line(text, pos) {
        Some((line, _)) if line > 0 => {
            let brk = line - 1;
            let bytes = text.as_bytes();
            if bytes[brk] == b'\n' && brk > 0 && bytes[brk - 1] == b'\r' {
                brk - 1
            } else {
                brk
            }
        }
        _ => pos,
    }
}

/// `edit` moved so that, when it inserts lines starting with LF, it does not follow a
/// lone CR: the two would merge into one CRLF line break, which a second application
/// would read differently (as the document's line ending, or as its rules' line
/// break). It moves before the run of CRs, which stays after the inserted lines.
fn not_after_cr(text: &str, mut edit: Edit) -> Edit {
    if edit.at == edit.end && edit.with.starts_with('\n') {
        let head = text.as_bytes().get(..edit.at).unwrap_or_default();
        let crs = head.iter().rev().take_while(|&&b| b == b'\r').count();
        edit.at -= crs;
        edit.end = edit.at;
    }
    edit
}

/// The indentation step from a parent indented `parent` to a child indented
/// `child`, when it is a tab or one to eight spaces.
fn step(text: &str, parent: Span, child: Span) -> Option<Span> {
    let (p, c) = (slice(text, parent), slice(text, child));
    let diff = c.strip_prefix(p)?;
    let ok = diff == "\t" || ((1..=8).contains(&diff.len()) && diff.bytes().all(|b| b == b' '));
    ok.then_some((child.0 + p.len(), child.1))
}

/// The edit that puts the rendered rules into the document: in place of the first
/// removed rule, else appended to `<rules>`, creating what is missing on the way.
fn insertion(
    text: &str,
    scan: &Scan,
    mitigation: &str,
    blocks: &[Block],
    layout: &Layout<'_>,
) -> Result<Edit, String> {
    let Layout { eol, unit } = *layout;
    let lines = |indent: &str| {
        let mut out = String::new();
        for (depth, line) in rule_lines(mitigation, blocks) {
            out.push_str(eol);
            out.push_str(indent);
            for _ in 0..depth {
                out.push_str(unit);
            }
            out.push_str(&line);
        }
        out
    };
    if let Some(rules) = scan.rules {
        let indent = match scan.sibling_indent.or(scan.ours_indent) {
            Some(span) => slice(text, span).to_string(),
            None => format!("{}{unit}", line_indent(text, rules.start)),
        };
        let content = lines(&indent);
        return Ok(match scan.ours.first() {
            Some(&(at, _)) => Edit {
                at,
                end: at,
                with: content,
            },
            None => append_child(text, "rules", &rules, content, eol),
        });
    }
    let (parent, name, missing): (Option<Elem>, &str, &[&str]) =
        match (scan.rewrite, scan.web_server) {
            (Some(rw), _) => (Some(rw), "rewrite", &["rules"]),
            (None, Some(ws)) => (Some(ws), "system.webServer", &["rewrite", "rules"]),
            (None, None) => (
                scan.root,
                "configuration",
                &["system.webServer", "rewrite", "rules"],
            ),
        };
    let Some(parent) = parent else {
        return Err("internal error: web.config has no root element".to_string());
    };
    let top = match parent.child_indent {
        Some(span) => slice(text, span).to_string(),
        None => format!("{}{unit}", line_indent(text, parent.start)),
    };
    let indent = |level: usize| format!("{top}{}", unit.repeat(level));
    let mut content = lines(&indent(missing.len()));
    for (level, element) in missing.iter().enumerate().rev() {
        let ind = indent(level);
        content = format!("{eol}{ind}<{element}>{content}{eol}{ind}</{element}>");
    }
    Ok(append_child(text, name, &parent, content, eol))
}

/// The edit that makes `content` (lines that each start with a line break) the last
/// children of `parent`, named `name`.
fn append_child(text: &str, name: &str, parent: &Elem, content: String, eol: &str) -> Edit {
    let own = line_indent(text, parent.start);
    match parent.close {
        // Self-closing: `<name .../>` becomes `<name ...>` content `</name>`.
        None => {
            let tag = text.get(parent.start..parent.tag_end).unwrap_or_default();
            let open = tag.strip_suffix("/>").unwrap_or(tag).trim_end();
            Edit {
                at: parent.start,
                end: parent.tag_end,
                with: format!("{open}>{content}{eol}{own}</{name}>"),
            }
        }
        Some(close) => match begins_line(text, close) {
            // `</name>` starts a line: insert before the line break that precedes it.
            Some((line, _)) if line > 0 => {
                let at = removal_start(text, close);
                Edit {
                    at,
                    end: at,
                    with: content,
                }
            }
            // `</name>` shares its line: give it a line of its own after the content.
            _ => Edit {
                at: close,
                end: close,
                with: format!("{content}{eol}{own}"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::Cond;
    use std::path::PathBuf;

    const M: &str = "AM-2021-0001";

    /// The sample documents of `samples/web/iis`, each with what the common prefix
    /// of input and output must cover (up to the end of the first occurrence) and
    /// what their common suffix must cover (from the start of the last occurrence).
    const SAMPLES: &[(&str, &str, &str)] = &[
        (
            "exchange-web.config",
            "^aspnet_client/system_web/.*\\.aspx$\" />\r\n                    <action type=\"AbortRequest\" />\r\n                </rule>",
            "\r\n            </rules>",
        ),
        ("no-webserver.config", "</system.web>", "\n</configuration>"),
        (
            "lookalike.config",
            "^/ecp/.*\\.js$\" ignoreCase=\"true\" />\n          </conditions>\n          <action type=\"AbortRequest\" />\n        </rule>",
            "\n      </rules>",
        ),
        ("self-closing-rules.config", "<rewrite><rules", "</rewrite>"),
        (
            "self-closing-webserver.config",
            "<system.webServer",
            "\r\n</configuration>",
        ),
        (
            "previous-revision.config",
            "redirectType=\"Found\" />\n        </rule>",
            "\n        <rule name=\"airlock AM-2021-0002 ecp-js\"",
        ),
    ];

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/web/iis")
    }

    fn read(rel: &str) -> Vec<u8> {
        let path = dir().join(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn cond(on: On, pattern: &str) -> Cond {
        Cond {
            on,
            pattern: pattern.to_string(),
        }
    }

    /// The two url-blocks of `samples/feed/mitigations/AM-2021-0001.xml`.
    fn am_2021_0001() -> Vec<Block> {
        vec![
            Block {
                name: "autodiscover-ssrf".into(),
                matches: vec![cond(On::Path, r"(?i)autodiscover\.json.*@.*powershell")],
                response: Reply::Abort,
            },
            Block {
                name: "autodiscover-ssrf-query".into(),
                matches: vec![
                    cond(On::Path, r"(?i)/autodiscover/autodiscover\.json"),
                    cond(On::Query, r"(?i)@.*powershell"),
                ],
                response: Reply::Abort,
            },
        ]
    }

    /// A different set: a status answer, a header condition, a case-sensitive pattern.
    fn other_blocks() -> Vec<Block> {
        vec![Block {
            name: "backend-cookie".into(),
            matches: vec![
                cond(On::Path, "^/owa/auth/"),
                cond(On::Header("X-AnonResource-Backend".into()), "(?i).*/ecp/"),
            ],
            response: Reply::Status(403),
        }]
    }

    fn apply_ok(doc: &[u8], blocks: &[Block]) -> Vec<u8> {
        apply(doc, M, blocks).unwrap_or_else(|e| panic!("apply failed: {e}"))
    }

    /// An element's path from the root and its attributes, values as a parser reads them.
    type Element = (String, Vec<(String, String)>);
    /// A rule's name and its conditions' (input, pattern, ignoreCase).
    type Rule = (String, Vec<(String, String, String)>);

    /// Every element of a well-formed document; `Err` when it is not well-formed.
    fn elements(doc: &[u8]) -> Result<Vec<Element>, String> {
        let body = doc.strip_prefix(BOM).unwrap_or(doc);
        let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_comments = true;
        let mut path: Vec<String> = Vec::new();
        let mut out = Vec::new();
        let mut roots = 0;
        loop {
            let (e, empty) = match reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    path.pop();
                    continue;
                }
                Event::DocType(_) => return Err("DOCTYPE".into()),
                Event::GeneralRef(r) if !r.is_char_ref() => {
                    let name = r.xml10_content();
                    if !["lt", "gt", "amp", "apos", "quot"].contains(&name.as_ref()) {
                        return Err(format!("entity {name}"));
                    }
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            if path.is_empty() {
                roots += 1;
            }
            let name = e.name().into_inner().to_string();
            let mut attrs = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|e| e.to_string())?;
                let v = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|e| e.to_string())?;
                attrs.push((a.key.into_inner().to_string(), v.into_owned()));
            }
            path.push(name);
            out.push((path.join("/"), attrs));
            if empty {
                path.pop();
            }
        }
        if !path.is_empty() || roots != 1 {
            return Err(format!("open elements {path:?}, {roots} roots"));
        }
        Ok(out)
    }

    /// The rules of `doc` under configuration/system.webServer/rewrite/rules: name and
    /// the (input, pattern, ignoreCase) of each condition.
    fn rules_of(doc: &[u8]) -> Vec<Rule> {
        let attr = |attrs: &[(String, String)], k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let base = "configuration/system.webServer/rewrite/rules/rule";
        let mut rules: Vec<Rule> = Vec::new();
        for (path, attrs) in elements(doc).expect("well-formed") {
            if path == base {
                rules.push((attr(&attrs, "name"), Vec::new()));
            } else if path == format!("{base}/conditions/add")
                && let Some(last) = rules.last_mut()
            {
                last.1.push((
                    attr(&attrs, "input"),
                    attr(&attrs, "pattern"),
                    attr(&attrs, "ignoreCase"),
                ));
            }
        }
        rules
    }

    #[test]
    fn sample_blocks_are_those_of_the_sample_feed() {
        use airlock_format::mitigation::Mitigation;
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/feed/mitigations/AM-2021-0001.xml");
        let bytes = std::fs::read(&path).expect("sample mitigation");
        let m = Mitigation::parse("AM-2021-0001.xml", &bytes).expect("parses");
        let blocks = Block::all_of(&m);
        assert_eq!(m.id, M);
        assert_eq!(blocks, am_2021_0001());
    }

    #[test]
    fn golden_outputs() {
        for (name, _, _) in SAMPLES {
            let out = apply_ok(&read(name), &am_2021_0001());
            let expected = read(&format!("expected/{name}.after"));
            assert!(
                out == expected,
                "{name}: output differs from expected/{name}.after:\n{}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn outputs_are_well_formed_and_carry_the_rules() {
        for (name, _, _) in SAMPLES {
            let out = apply_ok(&read(name), &am_2021_0001());
            let ours: Vec<_> = rules_of(&out)
                .into_iter()
                .filter(|(n, _)| n.starts_with("airlock AM-2021-0001 "))
                .collect();
            assert_eq!(
                ours,
                vec![
                    (
                        "airlock AM-2021-0001 autodiscover-ssrf".to_string(),
                        vec![(
                            "{URL}".to_string(),
                            r"autodiscover\.json.*@.*powershell".to_string(),
                            "true".to_string()
                        )]
                    ),
                    (
                        "airlock AM-2021-0001 autodiscover-ssrf-query".to_string(),
                        vec![
                            (
                                "{URL}".to_string(),
                                r"/autodiscover/autodiscover\.json".to_string(),
                                "true".to_string()
                            ),
                            (
                                "{QUERY_STRING}".to_string(),
                                "@.*powershell".to_string(),
                                "true".to_string()
                            ),
                        ]
                    ),
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn bom_and_line_endings_are_kept() {
        let out = apply_ok(&read("exchange-web.config"), &am_2021_0001());
        assert!(out.starts_with(BOM));
        assert!(!out[3..].starts_with(BOM));
        let lf_only = out
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' && (i == 0 || out[i - 1] != b'\r'))
            .count();
        assert_eq!(lf_only, 0, "every line break stays CRLF");
        let out = apply_ok(&read("no-webserver.config"), &am_2021_0001());
        assert!(!out.starts_with(BOM));
        assert!(!out.contains(&b'\r'));
    }

    #[test]
    fn only_the_rules_section_changes() {
        for (name, before, after) in SAMPLES {
            let doc = read(name);
            let out = apply_ok(&doc, &am_2021_0001());
            // Common prefix and suffix, each on its own: where an insertion starts and
            // ends is ambiguous when it begins like the text after it.
            let prefix = doc.iter().zip(&out).take_while(|(a, b)| a == b).count();
            let suffix = doc
                .iter()
                .rev()
                .zip(out.iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            let text = std::str::from_utf8(&doc).expect("UTF-8");
            let must_prefix = text.find(before).expect("anchor") + before.len();
            let must_suffix = text.len() - text.rfind(after).expect("anchor");
            assert!(
                must_prefix + must_suffix <= doc.len().min(out.len()),
                "{name}"
            );
            assert!(
                prefix >= must_prefix,
                "{name}: output differs at byte {prefix}, before the end of {before:?}"
            );
            assert!(
                suffix >= must_suffix,
                "{name}: output differs {suffix} bytes from the end, after {after:?}"
            );
            // Between the anchors, the input held only whitespace, this mitigation's
            // old rule, or the end of a self-closing tag that was expanded.
            let old = String::from_utf8_lossy(&doc[must_prefix..doc.len() - must_suffix]);
            assert!(
                ["", "/>"].contains(&old.trim()) || old.contains("airlock AM-2021-0001 "),
                "{name}: changed {old:?}"
            );
        }
    }

    #[test]
    fn removal_gives_back_the_original_when_rules_existed() {
        for name in ["exchange-web.config", "lookalike.config"] {
            let doc = read(name);
            let out = apply_ok(&doc, &am_2021_0001());
            assert_eq!(apply_ok(&out, &[]), doc, "{name}");
        }
        // An existing `<rules>` without rules, `</rules>` on its own line.
        let doc = b"<configuration>\r\n  <system.webServer>\r\n    <rewrite>\r\n      <rules>\r\n      </rules>\r\n    </rewrite>\r\n  </system.webServer>\r\n</configuration>\r\n";
        let out = apply_ok(doc, &am_2021_0001());
        assert_eq!(apply_ok(&out, &[]), doc);
    }

    #[test]
    fn removal_keeps_what_airlock_created() {
        let removed = |name: &str| {
            let out = apply_ok(&read(name), &am_2021_0001());
            String::from_utf8(apply_ok(&out, &[])).expect("UTF-8")
        };
        assert!(removed("no-webserver.config").ends_with(
            "\t</system.web>\n\t<system.webServer>\n\t\t<rewrite>\n\t\t\t<rules>\n\t\t\t</rules>\n\t\t</rewrite>\n\t</system.webServer>\n</configuration>\n"
        ));
        assert!(
            removed("self-closing-rules.config")
                .contains("    <rewrite><rules>\n    </rules></rewrite>\n")
        );
        assert!(removed("self-closing-webserver.config").contains(
            "    <system.webServer>\r\n        <rewrite>\r\n            <rules>\r\n            </rules>\r\n        </rewrite>\r\n    </system.webServer>\r\n"
        ));
        // The previous revision's rule goes; the other mitigation's and the site's stay.
        let doc = read("previous-revision.config");
        let names: Vec<String> = rules_of(&apply_ok(&doc, &[]))
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(
            names,
            [
                "HTTP to HTTPS",
                "airlock AM-2021-0002 ecp-js",
                "Maintenance page"
            ]
        );
    }

    #[test]
    fn properties_hold_on_every_sample() {
        let (b1, b2) = (am_2021_0001(), other_blocks());
        for (name, _, _) in SAMPLES {
            let doc = read(name);
            let once = apply_ok(&doc, &b1);
            assert_eq!(apply_ok(&once, &b1), once, "{name}: idempotent");
            let other = apply_ok(&doc, &b2);
            assert_eq!(apply_ok(&once, &b2), other, "{name}: b1 -> b2");
            assert_eq!(apply_ok(&other, &b1), once, "{name}: b2 -> b1");
            let removed = apply_ok(&once, &[]);
            assert_eq!(
                apply_ok(&removed, &[]),
                removed,
                "{name}: removal is stable"
            );
            if *name != "previous-revision.config" {
                // (There the old rule sat between site rules; re-added rules go last.)
                assert_eq!(
                    apply_ok(&removed, &b1),
                    once,
                    "{name}: re-adding after removal"
                );
            }
            elements(&other).unwrap_or_else(|e| panic!("{name}: {e}"));
            elements(&removed).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn nothing_to_do_returns_the_same_bytes() {
        let docs: Vec<Vec<u8>> = SAMPLES
            .iter()
            .filter(|s| s.0 != "previous-revision.config")
            .map(|s| read(s.0))
            .chain([
                b"<configuration/>".to_vec(),
                b"<configuration>\n  <system.webServer />\n</configuration>".to_vec(),
            ])
            .collect();
        for doc in docs {
            assert_eq!(apply_ok(&doc, &[]), doc);
        }
    }

    #[test]
    fn lookalikes_and_other_mitigations_are_kept() {
        let out = apply_ok(&read("lookalike.config"), &other_blocks());
        let names: Vec<String> = rules_of(&out).into_iter().map(|r| r.0).collect();
        assert_eq!(
            names,
            [
                "airlock AM-2021-00010 x",
                "Airlock AM-2021-0001 y",
                "airlock-AM-2021-0001 w",
                "airlock AM-2021-0001",
                "airlock AM-2021-0002 z",
                "airlock AM-2021-0001 backend-cookie",
            ]
        );
        // Seen from mitigation AM-2021-00010, only its own rule is its.
        let names: Vec<String> =
            rules_of(&apply(&read("lookalike.config"), "AM-2021-00010", &[]).expect("ok"))
                .into_iter()
                .map(|r| r.0)
                .collect();
        assert_eq!(
            names,
            [
                "Airlock AM-2021-0001 y",
                "airlock-AM-2021-0001 w",
                "airlock AM-2021-0001",
                "airlock AM-2021-0002 z",
            ]
        );
    }

    #[test]
    fn update_replaces_the_old_rules_in_place() {
        let out = apply_ok(&read("previous-revision.config"), &am_2021_0001());
        let names: Vec<String> = rules_of(&out).into_iter().map(|r| r.0).collect();
        assert_eq!(
            names,
            [
                "HTTP to HTTPS",
                "airlock AM-2021-0001 autodiscover-ssrf",
                "airlock AM-2021-0001 autodiscover-ssrf-query",
                "airlock AM-2021-0002 ecp-js",
                "Maintenance page",
            ]
        );
    }

    #[test]
    fn hostile_patterns_are_escaped_and_read_back_exactly() {
        let patterns = [
            r#"a"b"#,
            "<rule name=\"x\">",
            "&amp;&lt;&#60;",
            "it's",
            "]]>",
            "--><!--",
            r#"" /><action type="None" /><add input="{URL}" pattern=""#,
            "(?i)\"'<>&",
            "tab\there",
            "\u{e9}t\u{e9} \u{1F600}",
        ];
        let blocks: Vec<Block> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Block {
                name: format!("b{i}"),
                matches: vec![cond(On::Path, p), cond(On::Header("X-Test".into()), p)],
                response: Reply::Status(451),
            })
            .collect();
        for (name, _, _) in SAMPLES {
            let out = apply_ok(&read(name), &blocks);
            let ours: Vec<_> = rules_of(&out)
                .into_iter()
                .filter(|(n, _)| n.starts_with("airlock AM-2021-0001 "))
                .collect();
            assert_eq!(ours.len(), patterns.len(), "{name}");
            for ((rule, conds), p) in ours.iter().zip(patterns) {
                let (ci, bare) = split_flags(p);
                assert_eq!(conds.len(), 2, "{name}: {rule}");
                assert_eq!(conds[0], ("{URL}".into(), bare.into(), ci.to_string()));
                assert_eq!(
                    conds[1],
                    ("{HTTP_X_TEST}".into(), bare.into(), ci.to_string())
                );
            }
            assert_eq!(apply_ok(&out, &blocks), out, "{name}: idempotent");
        }
        // Names and ids are checked by `apply`, and escaped by `render` all the same.
        let hostile = Block {
            name: "x\" stopProcessing=\"false".into(),
            matches: vec![cond(On::Path, "a")],
            response: Reply::Status(403),
        };
        let fragment = render("<id>&'", std::slice::from_ref(&hostile), "  ", "\n");
        let doc = format!(
            "<configuration><system.webServer><rewrite><rules>{fragment}</rules></rewrite></system.webServer></configuration>"
        );
        let els = elements(doc.as_bytes()).expect("well-formed");
        let rule = els
            .iter()
            .find(|(p, _)| p.ends_with("/rule"))
            .expect("rule");
        assert_eq!(
            rule.1,
            [
                (
                    "name".to_string(),
                    "airlock <id>&' x\" stopProcessing=\"false".to_string()
                ),
                ("stopProcessing".to_string(), "true".to_string()),
            ]
        );
        let action = els
            .iter()
            .find(|(p, _)| p.ends_with("/action"))
            .expect("action");
        assert_eq!(action.1[3].1, "Blocked by airlock mitigation <id>&'");
        assert!(apply(doc.as_bytes(), "<id>&'", &[]).is_err());
        assert!(apply(doc.as_bytes(), M, &[hostile]).is_err());
        // A control character XML cannot carry: refused by apply, replaced by render.
        let nul = Block {
            name: "nul".into(),
            matches: vec![cond(On::Path, "a\u{0}b")],
            response: Reply::Abort,
        };
        assert!(
            render(M, std::slice::from_ref(&nul), "  ", "\n").contains("pattern=\"a\u{FFFD}b\"")
        );
        assert_eq!(
            apply(b"<configuration/>", M, &[nul]),
            Err("url-block 'nul' of AM-2021-0001: the pattern holds U+0000, which an XML file cannot carry".into())
        );
    }

    #[test]
    fn refused_documents() {
        let table = String::from_utf8(read("refused/expected.tsv")).expect("UTF-8");
        let mut seen = 0;
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (file, message) = line.split_once('\t').expect("file<TAB>message");
            let doc = read(&format!("refused/{file}"));
            assert_eq!(
                apply(&doc, M, &am_2021_0001()),
                Err(message.to_string()),
                "{file}"
            );
            // Refused whether or not there are rules to write.
            assert!(apply(&doc, M, &[]).is_err(), "{file}");
            seen += 1;
        }
        let files = std::fs::read_dir(dir().join("refused"))
            .expect("refused/")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".config"))
            })
            .count();
        assert_eq!(
            seen, files,
            "every refused/*.config has a line in expected.tsv"
        );
    }

    #[test]
    fn refused_inputs() {
        let big = [
            b"<configuration>".as_slice(),
            &vec![b' '; MAX_BYTES],
            b"</configuration>",
        ]
        .concat();
        assert_eq!(
            apply(&big, M, &[]),
            Err(format!(
                "web.config is {} bytes, over airlock's limit of 16 MiB for a file it edits. \
                 A real web.config is far smaller: check that the profile names the right file.",
                big.len()
            ))
        );
        let deep = format!("<configuration>{}", "<a>".repeat(300));
        assert!(apply(deep.as_bytes(), M, &[]).is_err_and(|e| e.contains("deeper than 256")));
        let doc = b"<configuration/>";
        let block = |name: &str, matches: Vec<Cond>, response| Block {
            name: name.into(),
            matches,
            response,
        };
        let path = || vec![cond(On::Path, "x")];
        let cases: Vec<(&str, Vec<Block>, &str)> = vec![
            (
                "AM 1",
                vec![],
                "mitigation id 'AM 1' is not [A-Za-z0-9._-]{1,64}, so airlock cannot name IIS rules after it; the document should have been refused when it was parsed",
            ),
            (
                M,
                vec![
                    block("a", path(), Reply::Abort),
                    block("a", path(), Reply::Abort),
                ],
                "url-block 'a' of AM-2021-0001: two url-blocks have this name, and IIS refuses two rules with one name",
            ),
            (
                M,
                vec![block("a b", path(), Reply::Abort)],
                "url-block 'a b' of AM-2021-0001: the name is not [A-Za-z0-9._-]{1,64}",
            ),
            (
                M,
                vec![block("a", vec![], Reply::Abort)],
                "url-block 'a' of AM-2021-0001: no condition, so its IIS rule would block every request",
            ),
            (
                M,
                vec![block(
                    "a",
                    vec![cond(On::Header("X}".into()), "x")],
                    Reply::Abort,
                )],
                "url-block 'a' of AM-2021-0001: header name 'X}' is not [A-Za-z0-9_-]{1,64}",
            ),
            (
                M,
                vec![block("a", path(), Reply::Status(302))],
                "url-block 'a' of AM-2021-0001: status 302 is not in 400-599",
            ),
        ];
        for (id, blocks, message) in cases {
            assert_eq!(apply(doc, id, &blocks), Err(message.to_string()));
        }
    }

    #[test]
    fn render_fragment() {
        assert_eq!(
            render(M, &other_blocks(), "  ", "\n"),
            "<rule name=\"airlock AM-2021-0001 backend-cookie\" stopProcessing=\"true\">\n  \
             <match url=\".*\" />\n  \
             <conditions logicalGrouping=\"MatchAll\">\n    \
             <add input=\"{URL}\" pattern=\"^/owa/auth/\" ignoreCase=\"false\" />\n    \
             <add input=\"{HTTP_X_ANONRESOURCE_BACKEND}\" pattern=\".*/ecp/\" ignoreCase=\"true\" />\n  \
             </conditions>\n  \
             <action type=\"CustomResponse\" statusCode=\"403\" statusReason=\"Blocked by airlock\" statusDescription=\"Blocked by airlock mitigation AM-2021-0001\" />\n\
             </rule>\n"
        );
        assert_eq!(render(M, &[], "\t", "\r\n"), "");
    }

    /// Microsoft's EOMT rule for CVE-2022-41040 ("ProxyNotShell"), as EOMTv2's summary
    /// shows it, against the same rule written as an airlock url-block: same match,
    /// pattern, case-insensitivity, grouping and action. The one difference is the
    /// input: airlock matches `path` on `{URL}`, the decoded path without the query
    /// string, where EOMT used `{REQUEST_URI}`, path and query string as sent. A
    /// request whose "Powershell" travels in the query string is seen by EOMT's rule
    /// and not by this one; an airlock mitigation covers that with a url-block on
    /// `query`, as AM-2021-0001 revision 2 does.
    #[test]
    fn equivalent_to_the_eomt_rule_for_cve_2022_41040() {
        let eomt = "<configuration><system.webServer><rewrite><rules>\
            <rule name=\"PowerShell - inbound\">\
            <match url=\".*\" />\
            <conditions>\
            <add input=\"{REQUEST_URI}\" pattern=\".*autodiscover\\.json.*Powershell.*\" />\
            </conditions>\
            <action type=\"AbortRequest\" />\
            </rule></rules></rewrite></system.webServer></configuration>";
        let block = Block {
            name: "proxynotshell".into(),
            matches: vec![cond(On::Path, r"(?i).*autodiscover\.json.*Powershell.*")],
            response: Reply::Abort,
        };
        let ours = apply_ok(b"<configuration/>", std::slice::from_ref(&block));
        let view = |doc: &[u8]| {
            let els = elements(doc).expect("well-formed");
            let get = |suffix: &str, key: &str| {
                els.iter()
                    .find(|(p, _)| p.ends_with(suffix))
                    .and_then(|(_, a)| a.iter().find(|(k, _)| k == key))
                    .map(|(_, v)| v.clone())
            };
            let adds = els.iter().filter(|(p, _)| p.ends_with("/add")).count();
            (
                get("/rule/match", "url"),
                adds,
                get("/add", "pattern"),
                // IIS's default for ignoreCase is true.
                get("/add", "ignoreCase").unwrap_or_else(|| "true".into()),
                get("/conditions", "logicalGrouping").unwrap_or_else(|| "MatchAll".into()),
                get("/action", "type"),
                get("/add", "input"),
            )
        };
        let (e, o) = (view(eomt.as_bytes()), view(&ours));
        assert_eq!(
            (&e.0, e.1, &e.2, &e.3, &e.4, &e.5),
            (&o.0, o.1, &o.2, &o.3, &o.4, &o.5)
        );
        assert_eq!(e.6.as_deref(), Some("{REQUEST_URI}"));
        assert_eq!(o.6.as_deref(), Some("{URL}"));
    }

    #[test]
    fn layout_follows_the_document() {
        let one = [Block {
            name: "n".into(),
            matches: vec![cond(On::Query, "q")],
            response: Reply::Abort,
        }];
        let rule = |ind: &str, unit: &str, eol: &str| {
            render(M, &one, unit, eol)
                .lines()
                .map(|l| format!("{eol}{ind}{l}"))
                .collect::<String>()
        };
        let cases: Vec<(&str, String)> = vec![
            (
                "<configuration/>",
                format!(
                    "<configuration>\n  <system.webServer>\n    <rewrite>\n      <rules>{}\n      </rules>\n    </rewrite>\n  </system.webServer>\n</configuration>",
                    rule("        ", "  ", "\n")
                ),
            ),
            (
                "<configuration><appSettings/></configuration>",
                format!(
                    "<configuration><appSettings/>\n  <system.webServer>\n    <rewrite>\n      <rules>{}\n      </rules>\n    </rewrite>\n  </system.webServer>\n</configuration>",
                    rule("        ", "  ", "\n")
                ),
            ),
            (
                "<configuration>\r\n\t<system.webServer>\r\n\t\t<rewrite>\r\n\t\t\t<rules></rules>\r\n\t\t</rewrite>\r\n\t</system.webServer>\r\n</configuration>",
                format!(
                    "<configuration>\r\n\t<system.webServer>\r\n\t\t<rewrite>\r\n\t\t\t<rules>{}\r\n\t\t\t</rules>\r\n\t\t</rewrite>\r\n\t</system.webServer>\r\n</configuration>",
                    rule("\t\t\t\t", "\t", "\r\n")
                ),
            ),
            (
                "<configuration>\n    <system.webServer>\n        <rewrite>\n            <rules>\n            </rules>\n        </rewrite>\n    </system.webServer>\n</configuration>\n",
                format!(
                    "<configuration>\n    <system.webServer>\n        <rewrite>\n            <rules>{}\n            </rules>\n        </rewrite>\n    </system.webServer>\n</configuration>\n",
                    rule("                ", "    ", "\n")
                ),
            ),
            (
                // A rule sharing its line with `<rules>` is replaced where it is.
                "<configuration>\n <system.webServer>\n  <rewrite>\n   <rules><rule name=\"airlock AM-2021-0001 old\"/>\n    <rule name=\"site\"/>\n   </rules>\n  </rewrite>\n </system.webServer>\n</configuration>",
                format!(
                    "<configuration>\n <system.webServer>\n  <rewrite>\n   <rules>{}\n    <rule name=\"site\"/>\n   </rules>\n  </rewrite>\n </system.webServer>\n</configuration>",
                    rule("    ", " ", "\n")
                ),
            ),
        ];
        for (doc, expected) in cases {
            let out = apply_ok(doc.as_bytes(), &one);
            assert_eq!(
                String::from_utf8(out.clone()).expect("UTF-8"),
                expected,
                "{doc:?}"
            );
            assert_eq!(apply_ok(&out, &one), out, "{doc:?}: idempotent");
        }
    }

    #[test]
    fn never_panics_on_damaged_documents() {
        let blocks = am_2021_0001();
        for (name, _, _) in SAMPLES {
            let doc = read(name);
            let once = apply_ok(&doc, &blocks);
            for d in [&doc, &once] {
                for cut in 0..d.len() {
                    if let Ok(out) = apply(&d[..cut], M, &blocks) {
                        elements(&out).unwrap_or_else(|e| panic!("{name}[..{cut}]: {e}"));
                    }
                }
            }
            // Deterministic single-byte damage at every position.
            let damage = b"<>/=\"'&;! \n\r-?x\xff";
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            for at in 0..doc.len() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut d = doc.clone();
                d[at] = damage[(seed % damage.len() as u64) as usize];
                if let Ok(out) = apply(&d, M, &blocks) {
                    elements(&out).unwrap_or_else(|e| panic!("{name} damaged at {at}: {e}"));
                    assert_eq!(apply(&out, M, &blocks).as_ref(), Ok(&out), "{name} at {at}");
                }
            }
        }
    }

    /// Fuzz crash: quick-xml silently drops a U+FEFF at the start of its input without
    /// counting it, so after airlock stripped the file's BOM, a second one made every
    /// position three bytes short. `<configuration>\n</configuration>` got its rules
    /// spliced into the middle of `</configuration>`; on larger files a second apply
    /// left `</rule>le>` behind.
    #[test]
    fn a_second_byte_order_mark_is_refused() {
        let refused = "web.config is not well-formed XML at line 1, byte 3: a second byte \
                       order mark (U+FEFF); a file starts with one at most. Repair the file \
                       (IIS cannot read it either), then apply again.";
        for doc in [
            "\u{FEFF}\u{FEFF}\n<configuration>\n</configuration>",
            "\u{FEFF}\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<configuration>\r\n</configuration>\r\n",
        ] {
            assert_eq!(
                apply(doc.as_bytes(), M, &am_2021_0001()),
                Err(refused.into())
            );
            assert_eq!(apply(doc.as_bytes(), M, &[]), Err(refused.into()));
        }
        // U+FEFF elsewhere is an ordinary character (a zero-width no-break space).
        let doc = "\u{FEFF}<configuration>\n<!-- \u{FEFF} -->\n</configuration>\n";
        let out = apply_ok(doc.as_bytes(), &am_2021_0001());
        elements(&out).expect("well-formed");
        assert!(out.starts_with(BOM) && !out[3..].starts_with(BOM));
        assert_eq!(apply_ok(&out, &am_2021_0001()), out, "idempotent");
    }

    /// Fuzz crash (same input): NULs inside a comment were accepted, because quick-xml
    /// does not check characters in comments, text or processing instructions. XML 1.0
    /// forbids them anywhere, and IIS refuses such a file.
    #[test]
    fn characters_xml_forbids_are_refused() {
        let refused = |line: usize, byte: usize, ch: &str| {
            format!(
                "web.config is not well-formed XML at line {line}, byte {byte}: {ch}, a \
                 character XML does not allow. Repair the file (IIS cannot read it either), \
                 then apply again."
            )
        };
        let cases = [
            (
                "<configuration>\n<!-- a\u{0}b -->\n</configuration>",
                2,
                22,
                "U+0000",
            ),
            (
                "\u{FEFF}<configuration>\n<!-- a\u{0}b -->\n</configuration>",
                2,
                25,
                "U+0000",
            ),
            ("<configuration>x\u{1}</configuration>", 1, 16, "U+0001"),
            // Line numbers count line breaks as XML does: CRLF, lone CR, LF.
            ("<configuration>\r<!-- \u{0} -->", 2, 21, "U+0000"),
            ("<configuration>\r\n\r<!-- \u{0} -->", 3, 23, "U+0000"),
            ("<configuration a=\"\u{B}\"/>", 1, 18, "U+000B"),
            ("<?x \u{1F}?><configuration/>", 1, 4, "U+001F"),
            ("<configuration/>\n<!-- \u{FFFE} -->", 2, 22, "U+FFFE"),
            (
                "<configuration><![CDATA[\u{FFFF}]]></configuration>",
                1,
                24,
                "U+FFFF",
            ),
        ];
        for (doc, line, byte, ch) in cases {
            let expected = Err(refused(line, byte, ch));
            assert_eq!(
                apply(doc.as_bytes(), M, &am_2021_0001()),
                expected,
                "{doc:?}"
            );
            assert_eq!(apply(doc.as_bytes(), M, &[]), expected, "{doc:?}");
        }
        // Tab, CR, LF and the characters around the forbidden ranges are allowed.
        let doc = "<configuration>\t\r\n<!-- \u{20}\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF} -->\r</configuration>";
        let out = apply_ok(doc.as_bytes(), &am_2021_0001());
        assert_eq!(apply_ok(&out, &am_2021_0001()), out, "idempotent");
    }

    /// A run of lone CRs (a line break to XML) before a rule, as in the first fuzz
    /// crash (where the second byte order mark was the cause): applying stays
    /// idempotent, removal is accepted, and the lone CRs are kept.
    #[test]
    fn a_lone_cr_run_before_a_rule_keeps_apply_idempotent() {
        let docs = [
            "<configuration><system.webServer><rewrite><rules>\r\n  <rule name=\"site\"/>\r\n  \r\r\r  <rule name=\"next\"/>\r\n</rules></rewrite></system.webServer></configuration>",
            "<configuration><system.webServer><rewrite><rules>\r\r\r    <rule name=\"airlock AM-2021-0001 old\"/>\r\r  </rules></rewrite></system.webServer></configuration>",
            "<configuration>\n<system.webServer>\n<rewrite>\n<rules>\n<rule name=\"site\"/>\r\r\r  <rule name=\"airlock AM-2021-0001 old\"/>\r\n\r\r</rules>\r</rewrite>\n</system.webServer>\n</configuration>",
            "<configuration>\r\r<system.webServer/>\r</configuration>",
        ];
        for doc in docs {
            for blocks in [am_2021_0001(), other_blocks()] {
                let once = apply_ok(doc.as_bytes(), &blocks);
                elements(&once).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
                assert_eq!(apply_ok(&once, &blocks), once, "{doc:?}: idempotent");
                let removed = apply_ok(&once, &[]);
                elements(&removed).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
                assert!(
                    rules_of(&removed)
                        .iter()
                        .all(|r| !r.0.starts_with("airlock AM-2021-0001 ")),
                    "{doc:?}"
                );
                assert_eq!(
                    apply_ok(&removed, &[]),
                    removed,
                    "{doc:?}: removal is stable"
                );
                let lone = |d: &[u8]| d.windows(2).filter(|w| w == b"\r\r").count();
                assert_eq!(lone(&once), lone(doc.as_bytes()), "{doc:?}: lone CRs kept");
            }
        }
    }

    /// Fuzz crash: in `<?pi?>\r<configuration>\r</configuration>\n` the first apply
    /// wrote its LF-led lines right after the lone CR, which merged with the first LF
    /// into a CRLF, so the second apply took CRLF for the document's line ending and
    /// rewrote every inserted line. Line breaks are now read as XML reads them, and
    /// lines starting with LF never go right after a lone CR.
    #[test]
    fn lf_lines_after_a_lone_cr_keep_apply_idempotent() {
        let one = [Block {
            name: "n".into(),
            matches: vec![cond(On::Query, "q")],
            response: Reply::Abort,
        }];
        let rule = |ind: &str, unit: &str, eol: &str| {
            render(M, &one, unit, eol)
                .split_terminator(eol)
                .map(|l| format!("{eol}{ind}{l}"))
                .collect::<String>()
        };
        let cases: Vec<(&str, String)> = vec![
            (
                // The fuzz input: a lone CR is the first line break, so the lines end
                // with CR, and `</configuration>` after a lone CR starts a line.
                "<?pi x?>\r<configuration>\r</configuration>\t\n",
                format!(
                    "<?pi x?>\r<configuration>\r  <system.webServer>\r    <rewrite>\r      <rules>{}\r      </rules>\r    </rewrite>\r  </system.webServer>\r</configuration>\t\n",
                    rule("        ", "  ", "\r")
                ),
            ),
            (
                // LF document, a run of lone CRs before `</rules>`: the rules go before
                // the run.
                "<configuration>\n  <system.webServer>\n    <rewrite>\n      <rules>\r\r      </rules>\n    </rewrite>\n  </system.webServer>\n</configuration>\n",
                format!(
                    "<configuration>\n  <system.webServer>\n    <rewrite>\n      <rules>{}\r\r      </rules>\n    </rewrite>\n  </system.webServer>\n</configuration>\n",
                    rule("        ", "  ", "\n")
                ),
            ),
            (
                // LF document, a run of lone CRs before the old rule that is replaced.
                "<configuration>\n <system.webServer>\n  <rewrite>\n   <rules>\n    <rule name=\"site\"/>\r\r    <rule name=\"airlock AM-2021-0001 old\"/>\n   </rules>\n  </rewrite>\n </system.webServer>\n</configuration>",
                format!(
                    "<configuration>\n <system.webServer>\n  <rewrite>\n   <rules>\n    <rule name=\"site\"/>{}\r\n   </rules>\n  </rewrite>\n </system.webServer>\n</configuration>",
                    rule("    ", " ", "\n")
                ),
            ),
            (
                // CRLF document with a lone CR before `</rules>`: CRLF does not merge.
                "<configuration>\r\n<system.webServer>\r\n<rewrite>\r\n<rules>\r</rules>\r\n</rewrite>\r\n</system.webServer>\r\n</configuration>",
                format!(
                    "<configuration>\r\n<system.webServer>\r\n<rewrite>\r\n<rules>{}\r</rules>\r\n</rewrite>\r\n</system.webServer>\r\n</configuration>",
                    rule("  ", "  ", "\r\n")
                ),
            ),
        ];
        for (doc, expected) in cases {
            let out = apply_ok(doc.as_bytes(), &one);
            assert_eq!(
                String::from_utf8(out.clone()).expect("UTF-8"),
                expected,
                "{doc:?}"
            );
            assert_eq!(apply_ok(&out, &one), out, "{doc:?}: idempotent");
            assert_eq!(
                apply_ok(&out, &other_blocks()),
                apply_ok(doc.as_bytes(), &other_blocks()),
                "{doc:?}: update"
            );
            elements(&apply_ok(&out, &[])).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        }
        // With `</rules>` on its own line (after lone CRs), removal gives back the bytes.
        for doc in [
            "<configuration>\n  <system.webServer>\n    <rewrite>\n      <rules>\r\r      </rules>\n    </rewrite>\n  </system.webServer>\n</configuration>\n",
            "<configuration>\r<system.webServer>\r<rewrite>\r<rules>\r<rule name=\"site\"/>\r</rules>\r</rewrite>\r</system.webServer>\r</configuration>\r",
        ] {
            let out = apply_ok(doc.as_bytes(), &am_2021_0001());
            assert_eq!(apply_ok(&out, &[]), doc.as_bytes(), "{doc:?}");
        }
    }
}
