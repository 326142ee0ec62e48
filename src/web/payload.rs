//! How the console shows a payload: as text when it is UTF-8 (pretty-printed when it is
//! JSON), else as hex; cut at the cap the loop sent it with, and saying so.

use serde::Serialize;

/// A payload ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadView {
    /// The payload as text, when it is UTF-8.
    pub text: Option<String>,
    /// The text pretty-printed, when it is whole and a JSON document.
    pub json: Option<String>,
    /// Lower-case hex, two digits a byte and a space between bytes, when it is not UTF-8.
    pub hex: Option<String>,
    /// True when `bytes` is shorter than the payload (`size`).
    pub truncated: bool,
}

/// Views `bytes`, the first bytes of a payload of `size` bytes.
pub fn view(bytes: &[u8], size: usize) -> PayloadView {
    let truncated = bytes.len() < size;
    // A cut may split a character: drop an incomplete one at the end.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.to_owned()),
        Err(e) if truncated && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    };
    let json = text
        .as_deref()
        .filter(|t| !truncated && t.trim_start().starts_with(['{', '[']))
        .filter(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok())
        .map(pretty);
    let hex = text.is_none().then(|| {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    PayloadView {
        text,
        json,
        hex,
        truncated,
    }
}

/// Valid JSON text re-indented by two spaces a level, keys and numbers exactly as sent
/// (a parse and print would sort the keys and rewrite `20.50` as `20.5`).
fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_json_and_binary() {
        let v = view(br#"{"t":20.5,"ok":true}"#, 20);
        assert_eq!(v.text.as_deref(), Some(r#"{"t":20.5,"ok":true}"#));
        assert_eq!(
            v.json.as_deref(),
            Some("{\n  \"t\": 20.5,\n  \"ok\": true\n}")
        );
        assert!(v.hex.is_none() && !v.truncated);
        let v = view(&[0xff, 0x00, 0x10], 3);
        assert_eq!(v.hex.as_deref(), Some("ff 00 10"));
        assert!(v.text.is_none());
        let v = view("é".as_bytes()[..1].as_ref(), 2);
        assert_eq!(v.text.as_deref(), Some(""), "a cut character is dropped");
        assert!(v.truncated);
        assert!(view(b"42", 2).json.is_none(), "only objects and arrays");
        let nested = br#"{ "b": [1, {"a\"]": "x,y"}], "e": {}, "f": [ ], "n": 20.50 }"#;
        assert_eq!(
            view(nested, nested.len()).json.as_deref(),
            Some(
                "{\n  \"b\": [\n    1,\n    {\n      \"a\\\"]\": \"x,y\"\n    }\n  ],\n  \"e\": {},\n  \"f\": [],\n  \"n\": 20.50\n}"
            )
        );
    }
}
