//! A small XML writer for the query protocols' responses.
//!
//! Responses are built element by element with closures, so every start tag has its end tag by
//! construction, and every piece of text goes through `escape` — scenario data (tag values,
//! names) must never be able to break the document the SDK parses.

use std::fmt::Write;

pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// A document whose root element is `root` in namespace `xmlns`; `body` writes its content.
    pub fn document(root: &str, xmlns: &str, body: impl FnOnce(&mut XmlWriter)) -> String {
        let mut writer = XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        };
        let _ = write!(writer.out, "<{root} xmlns=\"{}\">", escape(xmlns));
        body(&mut writer);
        let _ = write!(writer.out, "</{root}>");
        writer.out
    }

    /// A document whose root element has no namespace (EC2's error `Response`).
    pub fn bare_document(root: &str, body: impl FnOnce(&mut XmlWriter)) -> String {
        let mut writer = XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        };
        writer.element(root, body);
        writer.out
    }

    /// `<name>…</name>` with content written by `body`.
    pub fn element(&mut self, name: &str, body: impl FnOnce(&mut XmlWriter)) -> &mut Self {
        let _ = write!(self.out, "<{name}>");
        body(self);
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.out, "<{name}>{}</{name}>", escape(&text.to_string()));
        self
    }

    /// `text` when there is a value, nothing otherwise.
    pub fn optional_text(&mut self, name: &str, text: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(text) = text {
            self.text(name, text);
        }
        self
    }
}

/// Escapes the five XML special characters and drops characters XML 1.0 cannot carry.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_elements_nest() {
        let xml = XmlWriter::document("R", "urn:x", |w| {
            w.element("tagSet", |w| {
                w.text("value", "<a & 'b'> \"c\"\u{1}");
            });
            w.optional_text("absent", None::<&str>);
        });
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"urn:x\"><tagSet><value>&lt;a &amp; &apos;b&apos;&gt; &quot;c&quot;</value></tagSet></R>"
        );
    }
}
