//! The connect page's bytes: the HTML templates, the stylesheet and the script, compiled into the
//! binary, and the headers every answer carries. No framework and no third-party request: the
//! page loads its one stylesheet and one script from the hub itself, and the Content Security
//! Policy allows nothing else (no inline script or style, no frames, no other origin).

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};

const PAGE: &str = include_str!("assets/page.html");
const ERROR_PAGE: &str = include_str!("assets/error.html");
pub const STYLESHEET: &str = include_str!("assets/connect.css");
pub const SCRIPT: &str = include_str!("assets/connect.js");

/// The page's one policy: its own script and stylesheet, calls to its own origin, no frames, no
/// forms to elsewhere, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Fills `{{name}}` placeholders with escaped values, in one pass over the template (a value
/// that contains `{{…}}` is not filled again). An unknown placeholder is left empty.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if let Some((_, v)) = values.iter().find(|(k, _)| *k == name) {
            out.push_str(&escape(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What the page shows when it is rendered (the script keeps it current).
pub struct PageValues<'a> {
    pub partner_name: &'a str,
    pub tenant_name: &'a str,
    pub csrf_token: &'a str,
    /// `new` or `shown`.
    pub token_state: &'a str,
    pub status_state: &'a str,
    pub status_title: &'a str,
    pub status_detail: &'a str,
    pub key_label: &'a str,
    pub expires: &'a str,
}

pub fn page(v: &PageValues<'_>) -> String {
    fill(
        PAGE,
        &[
            ("partner_name", v.partner_name),
            ("tenant_name", v.tenant_name),
            ("csrf_token", v.csrf_token),
            ("token_state", v.token_state),
            ("status_state", v.status_state),
            ("status_title", v.status_title),
            ("status_detail", v.status_detail),
            ("key_label", v.key_label),
            ("expires", v.expires),
        ],
    )
}

pub fn error_page(title: &str, message: &str) -> String {
    fill(ERROR_PAGE, &[("title", title), ("message", message)])
}

/// The headers of every connect answer: the policy, no caching (the page and its answers are
/// one customer's), no referrer (the link is a credential), no sniffing, no framing.
pub fn secure(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// A response of `content_type` with the connect headers.
pub fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    secure(resp)
}

pub const HTML: &str = "text/html; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_filled_once() {
        assert_eq!(
            fill(
                "<p>{{a}}</p><i>{{ b }}</i>{{c}}",
                &[("a", "<x&\"'>"), ("b", "{{a}}")]
            ),
            "<p>&lt;x&amp;&quot;&#39;&gt;</p><i>{{a}}</i>"
        );
        assert_eq!(fill("a {{ unterminated", &[]), "a {{ unterminated");
    }

    #[test]
    fn the_templates_have_no_inline_script_or_style_and_no_other_origin() {
        for t in [PAGE, ERROR_PAGE] {
            let lower = t.to_ascii_lowercase();
            assert!(!lower.contains("<style"), "no <style> block");
            assert!(!lower.contains(" style="), "no style attribute");
            assert!(!lower.contains("javascript:"));
            assert!(!lower.contains("http://") && !lower.contains("https://"));
            for (i, _) in lower.match_indices("<script") {
                let tag = &lower[i..i + lower[i..].find('>').unwrap_or(0)];
                assert!(tag.contains("src="), "every script is a file: {tag}");
            }
            assert!(!lower.contains(" on") || !lower.contains("onclick="));
        }
        let page = page(&PageValues {
            partner_name: "Assessment Hub",
            tenant_name: "Acme <Corp>",
            csrf_token: "tok",
            token_state: "new",
            status_state: "waiting_for_ashby",
            status_title: "Waiting for Ashby",
            status_detail: "d",
            key_label: "",
            expires: "soon",
        });
        assert!(page.contains("Acme &lt;Corp&gt;"));
        for id in [
            "reveal-token",
            "trigger-token",
            "copy-token",
            "rotate-token",
            "ashby-key",
            "save-ashby-key",
            "key-status",
            "connection-status",
        ] {
            assert!(
                page.contains(&format!("data-testid=\"{id}\"")),
                "the page has the test hook {id}"
            );
        }
    }
}
