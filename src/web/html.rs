//! HTML output: escaping of every user-controlled text, and the page templates in
//! `assets/` with `{{name}}` (escaped) and `{{{name}}}` (a fragment built here, already
//! escaped) placeholders.

/// Escapes text for an HTML element or a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a template placeholder.
pub enum Value<'a> {
    /// Escaped when placed.
    Text(&'a str),
    /// Already HTML (built from escaped parts); placed as is, only with `{{{ }}}`.
    Html(&'a str),
}

/// Fills `template`'s placeholders. A placeholder without a value, or a `{{{ }}}` given
/// text (or `{{ }}` given HTML), is a bug in the caller and panics in tests.
pub fn render(template: &str, values: &[(&str, Value<'_>)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let raw = rest[start..].starts_with("{{{");
        let (open, close) = if raw { ("{{{", "}}}") } else { ("{{", "}}") };
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        match (value, raw) {
            (Some(Value::Text(t)), false) => out.push_str(&escape(t)),
            (Some(Value::Html(h)), true) => out.push_str(h),
            _ => debug_assert!(false, "template placeholder {name} has no fitting value"),
        }
        rest = &after[end + close.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn renders_text_escaped_and_fragments_as_is() {
        let page = render(
            "<p>{{ name }}</p>{{{list}}}<i>{{name}}</i>",
            &[
                ("name", Value::Text("<b>")),
                ("list", Value::Html("<ul></ul>")),
            ],
        );
        assert_eq!(page, "<p>&lt;b&gt;</p><ul></ul><i>&lt;b&gt;</i>");
    }
}
