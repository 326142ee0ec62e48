//! HTML output: escaping of every user-controlled text, and the page templates in
//! `assets/` with `{{name}}` (escaped) and `{{{name}}}` (a fragment built here, already
//! escaped) placeholders.

use std::fmt::Write;

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

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the pages show times without JavaScript).
pub fn utc(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::new();
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
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

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
