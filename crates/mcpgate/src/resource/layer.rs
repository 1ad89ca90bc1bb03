//! The bearer layer: a tower layer that lets a request through only with an acceptable
//! bearer token in the `Authorization` header, and hands the verified [`Principal`] to the
//! inner service in the request extensions.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Request, Version};
use tower::{Layer, Service};

use super::ProtectedResource;
use super::challenge::{AuthError, ChallengeContext};
use crate::Principal;
use crate::scope::ScopeImplications;
use crate::verify::{CachedVerifier, InvalidToken, TokenVerifier};

struct Guard {
    verifier: Arc<dyn TokenVerifier>,
    required_scopes: Vec<String>,
    scope_implications: Arc<ScopeImplications>,
    challenge: ChallengeContext,
}

impl Guard {
    async fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Principal, AuthError> {
        let result = self.check(headers, query).await;
        crate::metrics::verification(match &result {
            Ok(_) => "valid",
            Err(e) => e.metric_label(),
        });
        result
    }

    async fn check(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(headers, query)?;
        let principal = self.verifier.verify(token).await?;
        if !self.required_scopes.iter().all(|s| self.scope_implications.covers(principal.scopes(), s)) {
            return Err(AuthError::InsufficientScope);
        }
        Ok(principal)
    }
}

/// The characters of RFC 6750 §2.1's `b64token` before its trailing `=`s, the only ones a
/// bearer token may have: a table, since every request's token (≈ 1 KB of JWT) is checked.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

/// Whether `token` is a `b64token`: one or more of [`B64TOKEN`], then any number of `=`.
fn is_b64token(token: &[u8]) -> bool {
    let padding = token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..token.len() - padding];
    !body.is_empty() && body.iter().all(|&b| B64TOKEN[usize::from(b)])
}

/// The token from the one `Authorization: Bearer` header. A token offered in the query string
/// is refused outright (A5): URLs end up in logs and browser histories.
fn bearer_token<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Result<&'a str, AuthError> {
    let query_token =
        query.is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"));
    if query_token {
        return Err(AuthError::InvalidRequest("access tokens are accepted in the Authorization header only"));
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(header), None) = (values.next(), values.next()) else {
        return match headers.contains_key(AUTHORIZATION) {
            true => Err(AuthError::InvalidRequest("more than one Authorization header")),
            false => Err(AuthError::MissingToken),
        };
    };
    let malformed = AuthError::InvalidToken(InvalidToken::Malformed);
    // Bytes, not `to_str`: the token's own check below is stricter than visible ASCII, and one
    // pass over it is enough.
    let value = header.as_bytes();
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP…) is not a bearer token: ask for one.
        return Err(if header.to_str().is_ok() { AuthError::MissingToken } else { malformed });
    }
    let start = token.iter().position(|&b| b != b' ').unwrap_or(token.len());
    let end = token.iter().rposition(|&b| b != b' ').map_or(start, |last| last + 1);
    let token = &token[start..end];
    if !is_b64token(token) {
        return Err(malformed);
    }
    // Always ASCII by now.
    std::str::from_utf8(token).map_err(|_| malformed)
}

/// Guards the services it wraps with bearer-token authentication.
#[derive(Clone)]
pub struct BearerLayer {
    guard: Arc<Guard>,
}

impl std::fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerLayer")
            .field("required_scopes", &self.guard.required_scopes)
            .field("resource_metadata", &self.guard.challenge.metadata_url)
            .finish()
    }
}

impl BearerLayer {
    /// A layer for `resource`, checking tokens with `verifier` behind a [`CachedVerifier`], so
    /// that a token in use is verified once per cache lifetime, not on every request (the
    /// verifier's own `max_cache_ttl` bounds that; a verifier that is itself a cache is passed
    /// through, not cached twice).
    pub fn new(resource: &ProtectedResource, verifier: impl TokenVerifier) -> Self {
        Self::uncached(resource, CachedVerifier::new(verifier))
    }

    /// A layer for `resource` asking `verifier` about every request: for a verifier that
    /// caches on its own terms (the authorization server's `AccessTokenVerifier` revalidates
    /// each use against revocations), or one that must see every use.
    pub fn uncached(resource: &ProtectedResource, verifier: impl TokenVerifier) -> Self {
        let guard = Guard {
            verifier: Arc::new(verifier),
            required_scopes: resource.required_scopes.clone(),
            scope_implications: resource.scope_implications.clone(),
            challenge: ChallengeContext {
                metadata_url: resource.metadata_url.clone(),
                scope: resource.challenge_scope_text(),
            },
        };
        Self { guard: Arc::new(guard) }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService { inner, guard: self.guard.clone() }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    guard: Arc<Guard>,
}

impl<S> std::fmt::Debug for BearerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerService").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for BearerService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut inner = super::take_ready(&mut self.inner);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard.authenticate(request.headers(), request.uri().query()).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await.map(IntoResponse::into_response)
                }
                Err(refusal) => {
                    let mut response = refusal.into_response_for(&guard.challenge);
                    if leaves_body_unread(&request) {
                        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok(response)
                }
            }
        })
    }
}

/// Whether refusing `request` leaves a request body unread on an HTTP/1 connection. hyper
/// then closes the connection after the answer; without `Connection: close` in that answer a
/// client may send its next request (the metadata lookup that follows a 401) on it meanwhile
/// and see the connection vanish.
fn leaves_body_unread<B>(request: &Request<B>) -> bool {
    let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
    let headers = request.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.to_str().map_or(true, |l| l.trim() != "0"));
    http1 && has_body
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn reads_one_bearer_header() {
        assert_eq!(bearer_token(&headers(&["Bearer abc.def-_~+/=="]), None), Ok("abc.def-_~+/=="));
        assert_eq!(bearer_token(&headers(&["bearer  abc"]), None), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[]), None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(&headers(&["Basic dXNlcjpwdw=="]), None), Err(AuthError::MissingToken));
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"]), None),
            Err(AuthError::InvalidRequest(_))
        ));
        assert_eq!(
            bearer_token(&headers(&["Bearer a b"]), None),
            Err(AuthError::InvalidToken(InvalidToken::Malformed))
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer "]), None),
            Err(AuthError::InvalidToken(InvalidToken::Malformed))
        );
        assert_eq!(
            bearer_token(&headers(&["Bearer ==="]), None),
            Err(AuthError::InvalidToken(InvalidToken::Malformed))
        );
    }

    #[test]
    fn bytes_outside_b64token_are_malformed_whatever_the_scheme() {
        let raw = |value: &[u8]| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_bytes(value).expect("header"));
            bearer_token(&h, None).map(str::to_owned)
        };
        let malformed = Err(AuthError::InvalidToken(InvalidToken::Malformed));
        assert_eq!(raw(b"Bearer abc  "), Ok("abc".to_owned()));
        assert_eq!(raw(b"Bearer"), malformed);
        assert_eq!(raw(b"Bearer ab\xffc"), malformed);
        assert_eq!(raw(b"Bearer ab\tc"), malformed);
        assert_eq!(raw(b"Bearer ab=c"), malformed, "padding only at the end");
        assert_eq!(raw(b"Basic \xff"), malformed, "not visible ASCII, as before the byte-wise check");
        assert_eq!(raw(b"DPoP abc"), Err(AuthError::MissingToken));
    }

    #[test]
    fn query_tokens_are_refused_even_beside_a_header() {
        assert!(matches!(
            bearer_token(&headers(&[]), Some("access_token=abc")),
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer abc"]), Some("x=1&access_token=abc")),
            Err(AuthError::InvalidRequest(_))
        ));
        assert_eq!(bearer_token(&headers(&["Bearer abc"]), Some("x=1")), Ok("abc"));
    }

    mod implications {
        use std::convert::Infallible;

        use axum::body::Body;
        use secrecy::SecretString;
        use tower::{Layer, ServiceExt};

        use super::super::*;
        use crate::verify::FixedVerifier;

        #[tokio::test]
        async fn a_scope_that_implies_the_required_one_satisfies_it() {
            let implications = ScopeImplications::new()
                .imply("mcp:admin", ["mcp:write"])
                .unwrap()
                .imply("mcp:write", ["mcp:read"])
                .unwrap();
            let resource = ProtectedResource::new("https://mcp.example.com/mcp")
                .unwrap()
                .required_scope("mcp:read")
                .scope_implications(implications);
            let verifier: Arc<dyn TokenVerifier> = Arc::new(
                FixedVerifier::new()
                    .with_token(&SecretString::from("admin"), Principal::new("a").with_scopes(["mcp:admin"]))
                    .with_token(
                        &SecretString::from("files"),
                        Principal::new("b").with_scopes(["files:read"]),
                    ),
            );
            let ok = tower::service_fn(|_: Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            });
            let service = resource.layer(verifier).layer(ok);
            for (token, status) in [("admin", 200), ("files", 403)] {
                let request = Request::post("/mcp")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                let response = service.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), status, "{token}");
            }
        }

        /// Counts the verifications that reach it.
        #[derive(Default)]
        struct Counting(std::sync::atomic::AtomicUsize);

        #[async_trait::async_trait]
        impl TokenVerifier for Counting {
            async fn verify(&self, _token: &str) -> Result<Principal, crate::verify::VerifyError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Principal::new("alice"))
            }
        }

        #[tokio::test]
        async fn the_layer_caches_verified_tokens_unless_made_uncached() {
            let resource = ProtectedResource::new("https://mcp.example.com/mcp").unwrap();
            let ok = tower::service_fn(|_: Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            });
            for (cached, expected) in [(true, 1), (false, 3)] {
                let counting = Arc::new(Counting::default());
                let layer = if cached {
                    BearerLayer::new(&resource, counting.clone())
                } else {
                    BearerLayer::uncached(&resource, counting.clone())
                };
                let service = layer.layer(ok);
                for _ in 0..3 {
                    let request = Request::post("/mcp")
                        .header("authorization", "Bearer t0ken")
                        .body(Body::empty())
                        .unwrap();
                    assert_eq!(service.clone().oneshot(request).await.unwrap().status(), 200);
                }
                let calls = counting.0.load(std::sync::atomic::Ordering::SeqCst);
                assert_eq!(calls, expected, "cached: {cached}");
            }
        }
    }
}
