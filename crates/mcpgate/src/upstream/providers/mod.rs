//! Built-in providers: each a typed configuration with working defaults (endpoints, scopes,
//! identity claims) and its identity provider's quirks, built into the one generic
//! [`Upstream`](super::Upstream) flow. A provider is configuration and hooks, never a copy of
//! the flow.

mod github;

pub use github::GitHub;

use super::UpstreamError;

/// `url` without trailing slashes, checked to be an absolute http(s) URL (http is for local
/// fakes and development; the operator chose it).
fn base_url(url: &str, what: &str) -> Result<String, UpstreamError> {
    let trimmed = url.trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => {
            Ok(trimmed.to_owned())
        }
        _ => Err(UpstreamError::Invalid(format!("{what} {url:?} is not an http(s) URL"))),
    }
}
