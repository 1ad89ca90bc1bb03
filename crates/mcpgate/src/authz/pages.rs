//! The HTML pages the authorization server shows a browser: errors that must not redirect
//! (C1) and the consent page (C5). Everything printed is escaped; every page forbids framing
//! and loads nothing from anywhere.

use axum::response::{Html, IntoResponse, Response};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, StatusCode};

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}\
code{background:#f3f3f3;padding:0 .2rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}";

/// A page with the security headers every page gets. `form_action` lists the origins a form on
/// the page may submit to, and be redirected to after submitting (browsers check both).
pub(crate) fn page(status: StatusCode, title: &str, body: &str, form_action: &[String]) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let form_action = if form_action.is_empty() { "'none'".to_owned() } else { form_action.join(" ") };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a browser posts our own forms with `Origin: null`, which
    // `POST /consent` must refuse. `same-origin` still sends nothing to other sites.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error shown to the user instead of a redirect.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!("<h1>Authorization failed</h1><p>{}</p>", escape(message));
    page(status, "Authorization failed", &body, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;y&#x27;"
        );
    }

    #[test]
    fn pages_forbid_framing_and_load_nothing() {
        let response = error_page(StatusCode::BAD_REQUEST, "<b>bad</b>");
        let csp = response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("default-src 'none'"));
        assert!(csp.contains("form-action 'none'"));
        assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
    }
}
