//! The admin page's management panels, rendered on the server so they work without
//! JavaScript: retained messages (prefix search, payload view, delete one or a subtree),
//! users (add, promote, demote, new password, delete) and ACL rules (add, delete). Every
//! destructive form carries `data-confirm`, which `assets/admin.js` asks before sending.

use std::fmt::Write;

use super::admin::topic_html;
use super::form;
use super::html::escape;
use super::payload;
use crate::broker::console::{RetainedInfo, Rows};
use crate::clock::utc;
use crate::store::{AclRule, UserRecord};

/// Retained messages shown on the page at most (the API lists up to 500); the prefix
/// search narrows the rest.
const RETAINED_ON_PAGE: usize = 100;

fn hidden(name: &str, value: &str) -> String {
    format!(
        r#"<input type="hidden" name="{name}" value="{}">"#,
        escape(value)
    )
}

/// A one-button form posting `fields` (and the CSRF token) to `action`, confirmed first
/// when `confirm` is given.
pub fn button_form(
    action: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> String {
    let mut inputs = hidden("csrf", csrf);
    for (name, value) in fields {
        inputs.push_str(&hidden(name, value));
    }
    let confirm = confirm.map_or_else(String::new, |c| format!(r#" data-confirm="{}""#, escape(c)));
    format!(
        r#"<form method="post" action="{action}" class="inline"{confirm}>{inputs}<button type="submit" class="{class}">{label}</button></form>"#,
        label = escape(label),
    )
}

/// A payload as the viewer shows it: pretty JSON, text or hex, marked when cut.
pub fn payload_html(bytes: &[u8], size: usize) -> String {
    let view = payload::view(bytes, size);
    let (kind, body) = match (&view.json, &view.text, &view.hex) {
        (Some(json), _, _) => ("json", json.as_str()),
        (None, Some(text), _) => ("text", text.as_str()),
        (None, None, Some(hex)) => ("hex", hex.as_str()),
        (None, None, None) => ("text", ""),
    };
    let cut = if view.truncated {
        format!(
            r#" <span class="hint">(first {} of {size} bytes)</span>"#,
            bytes.len()
        )
    } else {
        String::new()
    };
    format!(
        r#"<pre class="payload" data-kind="{kind}">{}</pre>{cut}"#,
        escape(body)
    )
}

pub fn retained_rows(rows: &Rows<RetainedInfo>, csrf: &str) -> String {
    if rows.rows.is_empty() {
        return r#"<tr><td colspan="5" class="empty">no retained messages</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for m in rows.rows.iter().take(RETAINED_ON_PAGE) {
        let props = match (&m.content_type, m.expires_in) {
            (Some(t), Some(e)) => format!("{}, expires in {e} s", escape(t)),
            (Some(t), None) => escape(t),
            (None, Some(e)) => format!("expires in {e} s"),
            (None, None) => "—".to_owned(),
        };
        let _ = write!(
            out,
            r#"<tr><td data-label="topic"><a href="/admin?retained={link}#retained"><code class="topic">{topic}</code></a></td><td data-label="size">{size}</td><td data-label="properties">QoS {qos}, {props}</td><td data-label="payload">{payload}</td><td>{delete}</td></tr>"#,
            link = escape(&form::encode(&m.topic)),
            topic = topic_html(&m.topic),
            size = super::admin::size(m.size as u64),
            qos = m.qos,
            payload = payload_html(&m.payload, m.size),
            delete = button_form(
                "/admin/retained/delete",
                csrf,
                &[("topic", &m.topic)],
                "Delete",
                "stop",
                Some(&format!("Delete the retained message of {}?", m.topic)),
            ),
        );
    }
    out
}

/// One retained message in full (its payload up to the viewer's cap) with its properties.
pub fn retained_detail(m: Option<&RetainedInfo>, topic: Option<&str>) -> String {
    match (m, topic) {
        (_, None) => String::new(),
        (None, Some(t)) => format!(
            r#"<p class="empty" id="retained-detail">No retained message on <code>{}</code>.</p>"#,
            escape(t)
        ),
        (Some(m), Some(_)) => {
            let mut props = format!("QoS {}, {} bytes", m.qos, m.size);
            if let Some(t) = &m.content_type {
                let _ = write!(props, ", content type <code>{}</code>", escape(t));
            }
            if m.payload_format_utf8 {
                props.push_str(", UTF-8");
            }
            if let Some(e) = m.expires_in {
                let _ = write!(props, ", expires in {e} s");
            }
            for (k, v) in &m.user_properties {
                let _ = write!(
                    props,
                    ", <code>{}</code> = <code>{}</code>",
                    escape(k),
                    escape(v)
                );
            }
            format!(
                r#"<div id="retained-detail" class="detail"><h3><code class="topic">{}</code></h3><p class="hint">{props}</p>{}</div>"#,
                topic_html(&m.topic),
                payload_html(&m.payload, m.size)
            )
        }
    }
}

pub fn user_rows(users: &[UserRecord], csrf: &str) -> String {
    let mut out = String::new();
    for u in users {
        let name = u.name.as_str();
        let role = if u.is_admin {
            button_form(
                "/admin/users/role",
                csrf,
                &[("name", name), ("admin", "no")],
                "Demote",
                "secondary",
                Some(&format!("Take administrator rights from {name}?")),
            )
        } else {
            button_form(
                "/admin/users/role",
                csrf,
                &[("name", name), ("admin", "yes")],
                "Promote",
                "secondary",
                Some(&format!("Make {name} an administrator?")),
            )
        };
        let _ = write!(
            out,
            r#"<tr data-user="{user}"><td data-label="name">{user}</td><td data-label="admin">{admin}</td><td data-label="created"><time datetime="{created_at}">{created}</time></td><td class="actions">{role}<form method="post" action="/admin/users/password" class="inline">{csrf}{name_field}<label class="sr" for="pw-{user}">New password for {user}</label><input id="pw-{user}" name="password" type="password" autocomplete="new-password" placeholder="new password" minlength="8" required><button type="submit" class="secondary">Set password</button></form>{delete}</td></tr>"#,
            user = escape(name),
            admin = if u.is_admin { "yes" } else { "no" },
            created_at = u.created_at,
            created = utc(u.created_at),
            csrf = hidden("csrf", csrf),
            name_field = hidden("name", name),
            delete = button_form(
                "/admin/users/delete",
                csrf,
                &[("name", name)],
                "Delete",
                "stop",
                Some(&format!("Delete user {name}, with their ACL rules?")),
            ),
        );
    }
    out
}

pub fn acl_rows(rules: &[AclRule], csrf: &str) -> String {
    if rules.is_empty() {
        return r#"<tr><td colspan="5" class="empty">no rules: every client may do everything (but the deny_* settings)</td></tr>"#.to_owned();
    }
    let mut out = String::new();
    for r in rules {
        let id = r.id.to_string();
        let _ = write!(
            out,
            r#"<tr><td data-label="id">{id}</td><td data-label="user">{user}</td><td data-label="access">{access}</td><td data-label="topic"><code class="topic">{topic}</code></td><td>{delete}</td></tr>"#,
            user = r
                .username
                .as_deref()
                .map_or_else(|| "everyone (pattern)".to_owned(), escape),
            access = r.access,
            topic = topic_html(&r.topic),
            delete = button_form(
                "/admin/acl/delete",
                csrf,
                &[("id", &id)],
                "Delete",
                "stop",
                Some(&format!("Delete ACL rule {id} ({} {})?", r.access, r.topic)),
            ),
        );
    }
    out
}

/// The `<option>`s naming each user for the ACL form.
pub fn user_options(users: &[UserRecord]) -> String {
    users
        .iter()
        .map(|u| format!(r#"<option value="{0}">{0}</option>"#, escape(&u.name)))
        .collect()
}
