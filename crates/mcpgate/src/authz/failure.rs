//! How the authorization server's endpoints fail, in one place: an HTML page for the browser, an
//! error sent back to the client at its redirect URI, or an RFC 6749 JSON error — and the
//! redirect URI an error may be sent to, which only `/authorize`'s check of the client's
//! registration can make (C1: never redirect to a URI nobody validated).

use std::borrow::Cow;

use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::client::ClientRecord;
use super::pages::error_page;
use crate::error::{ErrorCode, OAuthError};

/// A redirect URI matched against its client's registration. Made only by
/// [`ValidatedRedirect::for_client`]; it also travels inside our sealed transactions (AEAD: what
/// comes back out is what we put in), which is the one place it is read back from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ValidatedRedirect(String);

impl ValidatedRedirect {
    /// The redirect URI of an authorization request by `client`: the one `requested` when the
    /// client registered it, or the client's only one when none is named (RFC 6749 §3.1.2.3).
    /// Anything else is a page, never a redirect.
    pub(crate) fn for_client(client: &ClientRecord, requested: Option<&str>) -> Result<Self, Failure> {
        match requested {
            Some(requested) if client.redirect_uris.iter().any(|r| r.matches(requested)) => {
                Ok(Self(requested.to_owned()))
            }
            Some(_) => Err(Failure::page(
                StatusCode::BAD_REQUEST,
                "The redirect_uri is not registered for this client.",
            )),
            None => match client.redirect_uris.as_slice() {
                [only] => Ok(Self(only.as_str().to_owned())),
                _ => Err(Failure::page(StatusCode::BAD_REQUEST, "The request has no redirect_uri.")),
            },
        }
    }

    /// The URI itself.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The host (or scheme, for private-use URIs) it sends the browser to, for display.
    pub(crate) fn target(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(url) => match url.host_str() {
                Some(host) => match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                },
                None => format!("{}:", url.scheme()),
            },
            Err(_) => self.0.clone(),
        }
    }

    /// Its origin as a CSP source (`https://host:port`, or `scheme:` for private-use URIs).
    pub(crate) fn csp_source(&self) -> Option<String> {
        csp_source(&self.0)
    }

    /// Sends the browser back to the client with `params`, then `state` and `iss` (RFC 9207).
    pub(crate) fn back_with(&self, params: &[(&str, &str)], state: Option<&str>, issuer: &str) -> Response {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return error_page(StatusCode::BAD_REQUEST, "The client's redirect URI is unusable.");
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        Redirect::to(url.as_str()).into_response()
    }

    /// The error `code` for the client, to be sent here (RFC 6749 §4.1.2.1).
    pub(crate) fn error(
        &self,
        issuer: &str,
        state: Option<&str>,
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Failure {
        Failure::Redirect {
            to: self.clone(),
            issuer: issuer.to_owned(),
            state: state.map(str::to_owned),
            code,
            description: description.into(),
        }
    }
}

/// The origin of a URI as a CSP source (`https://host:port`, or `scheme:` for private-use).
pub(crate) fn csp_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.host_str() {
        Some(_) => Some(url.origin().ascii_serialization()),
        None => Some(format!("{}:", url.scheme())),
    }
}

/// Why an endpoint of the authorization server did not do what it was asked, as its answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A page for the person at the browser: before the redirect URI is validated (C1), or when
    /// the browser itself is the problem (a sign-in started elsewhere).
    Page {
        /// The status.
        status: StatusCode,
        /// What the page says (escaped when shown).
        message: Cow<'static, str>,
    },
    /// An error for the client, at the redirect URI `/authorize` validated.
    Redirect {
        /// Where.
        to: ValidatedRedirect,
        /// Our issuer (`iss`).
        issuer: String,
        /// The client's `state`.
        state: Option<String>,
        /// The error.
        code: ErrorCode,
        /// Its description.
        description: Cow<'static, str>,
    },
    /// A JSON error for a client calling an endpoint directly (token, revoke, register).
    OAuth(OAuthError),
    /// Over a rate limit: a page or JSON, as the endpoint's audience reads, with `Retry-After`.
    TooMany {
        /// Whether a browser asked (a page) or a client (JSON).
        browser: bool,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl Failure {
    /// A page saying `message`.
    pub(crate) fn page(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::Page { status, message: message.into() }
    }
}

impl From<OAuthError> for Failure {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Page { status, message } => error_page(status, &message),
            Self::Redirect { to, issuer, state, code, description } => to.back_with(
                &[("error", code.as_str()), ("error_description", &description)],
                state.as_deref(),
                &issuer,
            ),
            Self::OAuth(error) => error.into_response(),
            Self::TooMany { browser, retry_after } => {
                let mut response = if browser {
                    error_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many requests. Wait a moment and try again.",
                    )
                } else {
                    // The OAuth error's JSON and headers, as 429 with its own Retry-After.
                    let mut response =
                        OAuthError::new(ErrorCode::TemporarilyUnavailable, "too many requests")
                            .into_response();
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    response
                };
                let headers = response.headers_mut();
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::client::{ClientSource, TokenEndpointAuthMethod};
    use crate::redirect::{ApplicationType, RedirectUri};

    fn client(uris: &[&str]) -> ClientRecord {
        ClientRecord {
            client_id: "cli".into(),
            secret_digest: None,
            auth_method: TokenEndpointAuthMethod::None,
            redirect_uris: uris
                .iter()
                .map(|u| RedirectUri::parse(u, ApplicationType::Native).unwrap())
                .collect(),
            grant_types: vec![],
            application_type: ApplicationType::Native,
            client_name: None,
            scope: None,
            issued_at: 0,
            source: ClientSource::Dynamic,
            confirmed: true,
        }
    }

    #[test]
    fn only_a_registered_uri_becomes_a_redirect_target() {
        let two = client(&["http://127.0.0.1:9/cb", "com.example.app:/cb"]);
        assert_eq!(
            ValidatedRedirect::for_client(&two, Some("com.example.app:/cb")).unwrap().as_str(),
            "com.example.app:/cb"
        );
        for refused in [Some("https://evil.example/cb"), None] {
            let failure = ValidatedRedirect::for_client(&two, refused).unwrap_err();
            assert!(matches!(failure, Failure::Page { status: StatusCode::BAD_REQUEST, .. }), "{refused:?}");
        }
        let one = client(&["http://127.0.0.1:9/cb"]);
        assert_eq!(ValidatedRedirect::for_client(&one, None).unwrap().as_str(), "http://127.0.0.1:9/cb");
    }

    #[test]
    fn an_error_goes_back_with_its_code_state_and_exactly_one_iss() {
        let to = ValidatedRedirect::for_client(&client(&["http://127.0.0.1:9/cb?x=1"]), None).unwrap();
        let response =
            to.error("https://as.example", Some("s&1"), ErrorCode::AccessDenied, "no").into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        let expected = [
            ("x", "1"),
            ("error", "access_denied"),
            ("error_description", "no"),
            ("state", "s&1"),
            ("iss", "https://as.example"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(to.target(), "127.0.0.1:9");
    }
}
