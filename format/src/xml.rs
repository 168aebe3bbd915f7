//! A strict, bounded XML reader for vendor documents. It accepts only UTF-8 XML 1.0
//! with a single default namespace: no DTD (so no entity expansion and no external
//! entities), no processing instructions, no entities beyond the XML five and
//! character references, no namespace prefixes, limited depth, attributes and
//! children. It yields a small element tree that the schema code walks.

use crate::error::{Error, Result};
use crate::limits;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One element: its local name, attributes in document order, child elements and
/// the concatenated character data directly inside it.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    pub line: usize,
}

/// Parses `bytes` (named `what` in errors) and checks that the root element is
/// `root` in namespace `namespace`.
pub(crate) fn parse(
    what: &str,
    bytes: &[u8],
    limit: u64,
    root: &str,
    namespace: &str,
) -> Result<Element> {
    if bytes.len() as u64 > limit {
        return Err(Error::Limit {
            what: what.to_string(),
            limit,
            unit: "bytes",
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::xml(
            what,
            format!(
                "malformed: not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let el = Parser {
        what,
        text,
        cursor: std::cell::Cell::new((0, 1)),
    }
    .run()?;
    if el.name != root {
        return Err(Error::xml(
            what,
            format!(
                "unknown element <{}> at line {}: the root must be <{root}>",
                el.name, el.line
            ),
        ));
    }
    match el.attr("xmlns") {
        Some(ns) if ns == namespace => Ok(el),
        Some(ns) => Err(Error::xml(
            what,
            format!("namespace '{ns}' is not '{namespace}'"),
        )),
        None => Err(Error::xml(
            what,
            format!("namespace missing: the root needs xmlns=\"{namespace}\""),
        )),
    }
}

struct Parser<'a> {
    what: &'a str,
    text: &'a str,
    /// (byte offset, line number) of the last position asked for: positions only
    /// grow while parsing, so counting newlines from there keeps the whole parse O(n).
    cursor: std::cell::Cell<(usize, usize)>,
}

impl Parser<'_> {
    fn line_at(&self, pos: u64) -> usize {
        let pos = usize::try_from(pos)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        let (mut from, mut line) = self.cursor.get();
        if pos < from {
            (from, line) = (0, 1);
        }
        line += self.text.as_bytes()[from..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.cursor.set((pos, line));
        line
    }

    fn err(&self, pos: u64, msg: impl std::fmt::Display) -> Error {
        Error::xml(self.what, format!("{msg} (line {})", self.line_at(pos)))
    }

    fn run(&self) -> Result<Element> {
        let mut reader = Reader::from_str(self.text);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let mut seen_anything = false;
        loop {
            let pos = reader.buffer_position();
            let event = reader.read_event().map_err(|e| {
                self.err(reader.error_position(), format_args!("malformed XML: {e}"))
            })?;
            match event {
                Event::Decl(d) => {
                    if seen_anything {
                        return Err(self.err(pos, "malformed: XML declaration after the start"));
                    }
                    let version = d
                        .version()
                        .map_err(|e| self.err(pos, format_args!("malformed declaration: {e}")))?;
                    if version.as_ref() != "1.0" {
                        return Err(self.err(pos, "unsupported XML version: only 1.0 is accepted"));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| {
                            self.err(pos, format_args!("malformed declaration: {e}"))
                        })?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(
                                self.err(pos, "malformed: only UTF-8 documents are accepted")
                            );
                        }
                    }
                }
                Event::DocType(_) => {
                    return Err(self.err(pos, "a DOCTYPE (DTD) is not allowed: entities and external references are refused"));
                }
                Event::PI(_) => {
                    return Err(self.err(pos, "a processing instruction is not allowed"));
                }
                Event::Comment(_) => {}
                Event::Start(e) => {
                    let el = self.element(&e, pos, stack.is_empty(), root.is_some())?;
                    stack.push(el);
                    if stack.len() > limits::MAX_XML_DEPTH {
                        return Err(self.err(
                            pos,
                            format_args!(
                                "nesting depth is over the limit of {}",
                                limits::MAX_XML_DEPTH
                            ),
                        ));
                    }
                }
                Event::Empty(e) => {
                    let el = self.element(&e, pos, stack.is_empty(), root.is_some())?;
                    if stack.len() + 1 > limits::MAX_XML_DEPTH {
                        return Err(self.err(
                            pos,
                            format_args!(
                                "nesting depth is over the limit of {}",
                                limits::MAX_XML_DEPTH
                            ),
                        ));
                    }
                    self.close(el, &mut stack, &mut root, pos)?;
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| self.err(pos, "malformed: unexpected end tag"))?;
                    self.close(el, &mut stack, &mut root, pos)?;
                }
                Event::Text(t) => {
                    let content = t.xml10_content();
                    match stack.last_mut() {
                        Some(el) => el.text.push_str(&content),
                        None if content.trim().is_empty() => {}
                        None => {
                            return Err(self.err(pos, "malformed: text outside the root element"));
                        }
                    }
                }
                Event::CData(c) => {
                    let content = c.xml10_content();
                    match stack.last_mut() {
                        Some(el) => el.text.push_str(&content),
                        None => {
                            return Err(self.err(pos, "malformed: CDATA outside the root element"));
                        }
                    }
                }
                Event::GeneralRef(r) => {
                    let ch = if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => c,
                            _ => return Err(self.err(pos, "malformed character reference")),
                        }
                    } else {
                        match r.xml10_content().as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => {
                                let shown: String = other.chars().take(32).collect();
                                return Err(self.err(pos, format_args!("entity &{shown}; is not allowed: only &lt; &gt; &amp; &apos; &quot; and character references")));
                            }
                        }
                    };
                    match stack.last_mut() {
                        Some(el) => el.text.push(ch),
                        None => {
                            return Err(
                                self.err(pos, "malformed: reference outside the root element")
                            );
                        }
                    }
                }
                Event::Eof => break,
            }
            seen_anything = true;
        }
        if !stack.is_empty() {
            return Err(self.err(
                self.text.len() as u64,
                "malformed: document ends inside an element",
            ));
        }
        root.ok_or_else(|| self.err(0, "malformed: no root element"))
    }

    fn close(
        &self,
        el: Element,
        stack: &mut [Element],
        root: &mut Option<Element>,
        pos: u64,
    ) -> Result<()> {
        match stack.last_mut() {
            Some(parent) => {
                if parent.children.len() >= limits::MAX_XML_CHILDREN {
                    return Err(self.err(
                        pos,
                        format_args!("more than {} child elements", limits::MAX_XML_CHILDREN),
                    ));
                }
                parent.children.push(el);
            }
            None => *root = Some(el),
        }
        Ok(())
    }

    fn element(
        &self,
        e: &BytesStart<'_>,
        pos: u64,
        is_root: bool,
        root_done: bool,
    ) -> Result<Element> {
        if is_root && root_done {
            return Err(self.err(pos, "malformed: a second root element after the first"));
        }
        let name = e.name().into_inner().to_string();
        if name.contains(':') {
            return Err(self.err(
                pos,
                format_args!("namespace prefixes are not allowed (<{name}>)"),
            ));
        }
        let line = self.line_at(pos);
        let mut attrs = Vec::new();
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| self.err(pos, format_args!("malformed attribute: {err}")))?;
            let key = attr.key.into_inner().to_string();
            if key.contains(':') {
                return Err(self.err(
                    pos,
                    format_args!("namespace prefixes are not allowed (attribute {key})"),
                ));
            }
            if key == "xmlns" && !is_root {
                return Err(self.err(
                    pos,
                    "namespace declarations are only allowed on the root element",
                ));
            }
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| {
                    self.err(
                        pos,
                        format_args!(
                            "entity in attribute {key} is not allowed or malformed: {err}"
                        ),
                    )
                })?;
            attrs.push((key, value.into_owned()));
            if attrs.len() > limits::MAX_XML_ATTRIBUTES {
                return Err(self.err(
                    pos,
                    format_args!(
                        "more than {} attributes on <{name}>",
                        limits::MAX_XML_ATTRIBUTES
                    ),
                ));
            }
        }
        Ok(Element {
            name,
            attrs,
            children: Vec::new(),
            text: String::new(),
            line,
        })
    }
}

impl Element {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses attributes not in `allowed` (the root's `xmlns` is always allowed).
    pub fn only_attrs(&self, what: &str, allowed: &[&str]) -> Result<()> {
        for (k, _) in &self.attrs {
            if k != "xmlns" && !allowed.contains(&k.as_str()) {
                return Err(Error::xml(
                    what,
                    format!(
                        "unknown attribute '{k}' on <{}> at line {}",
                        self.name, self.line
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The value of required attribute `name`.
    pub fn req_attr(&self, what: &str, name: &str) -> Result<&str> {
        self.attr(name).ok_or_else(|| {
            Error::xml(
                what,
                format!(
                    "missing attribute '{name}' on <{}> at line {}",
                    self.name, self.line
                ),
            )
        })
    }

    /// Refuses child elements (a leaf element).
    pub fn leaf(&self, what: &str) -> Result<()> {
        match self.children.first() {
            Some(c) => Err(Error::xml(
                what,
                format!(
                    "unknown element <{}> inside <{}> at line {}",
                    c.name, self.name, c.line
                ),
            )),
            None => Ok(()),
        }
    }

    /// Refuses non-whitespace text directly inside a container element.
    pub fn no_text(&self, what: &str) -> Result<()> {
        if self.text.trim().is_empty() {
            Ok(())
        } else {
            Err(Error::xml(
                what,
                format!(
                    "malformed: unexpected text inside <{}> at line {}",
                    self.name, self.line
                ),
            ))
        }
    }

    /// An "unknown element" error for child `c`.
    pub fn unknown(&self, what: &str, c: &Element) -> Error {
        Error::xml(
            what,
            format!(
                "unknown element <{}> inside <{}> at line {}",
                c.name, self.name, c.line
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "urn:t";

    fn p(s: &str) -> Result<Element> {
        parse("t.xml", s.as_bytes(), 1 << 20, "r", NS)
    }

    #[test]
    fn accepts_the_five_entities_and_char_refs() {
        let el = p(r#"<?xml version="1.0" encoding="UTF-8"?><r xmlns="urn:t" a="&lt;&amp;&#65;">&lt;&gt;&amp;&apos;&quot;&#x41;<![CDATA[<x>]]></r>"#).unwrap();
        assert_eq!(el.text, "<>&'\"A<x>");
        assert_eq!(el.attr("a"), Some("<&A"));
    }

    #[test]
    fn errors_name_the_right_line() {
        let el = p("<r xmlns=\"urn:t\">\n<a/>\n\n<b x=\"1\"/>\n</r>").unwrap();
        assert_eq!((el.children[0].line, el.children[1].line), (2, 4));
        let err = p("<r xmlns=\"urn:t\">\n<a/>\n<?pi?>\n</r>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("(line 3)"), "{err}");
    }

    #[test]
    fn refuses_what_a_hostile_document_uses() {
        let cases = [
            (
                r#"<!DOCTYPE r [<!ENTITY a "aaaa">]><r xmlns="urn:t">&a;</r>"#,
                "DOCTYPE",
            ),
            (r#"<r xmlns="urn:t">&foo;</r>"#, "entity &foo;"),
            (r#"<r xmlns="urn:t" a="&foo;"/>"#, "entity in attribute"),
            (
                r#"<r xmlns="urn:t"><?php x ?></r>"#,
                "processing instruction",
            ),
            (r#"<r xmlns="urn:t"><a></b></r>"#, "malformed"),
            (r#"<r xmlns="urn:t"><a>"#, "malformed"),
            (r#"<r xmlns="urn:t"/><r xmlns="urn:t"/>"#, "malformed"),
            (r#"<r xmlns="urn:other"/>"#, "namespace"),
            (r#"<r/>"#, "namespace missing"),
            (r#"<x:r xmlns:x="urn:t"/>"#, "prefixes"),
            (r#"<q xmlns="urn:t"/>"#, "unknown element <q>"),
            (r#"<r xmlns="urn:t"/>trailing"#, "malformed"),
            (r#"<?xml version="1.1"?><r xmlns="urn:t"/>"#, "version"),
            (
                r#"<?xml version="1.0" encoding="ISO-8859-1"?><r xmlns="urn:t"/>"#,
                "UTF-8",
            ),
        ];
        for (doc, want) in cases {
            let err = p(doc).expect_err(doc).to_string();
            assert!(err.contains(want), "{doc}: {err}");
        }
        let deep = format!(
            r#"<r xmlns="urn:t">{}{}</r>"#,
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert!(p(&deep).unwrap_err().to_string().contains("depth"));
        assert!(matches!(
            parse("t", &[b'<'; 100], 10, "r", NS),
            Err(Error::Limit { .. })
        ));
        assert!(
            parse("t", b"<r xmlns=\"urn:t\">\xff</r>", 100, "r", NS)
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
    }
}
