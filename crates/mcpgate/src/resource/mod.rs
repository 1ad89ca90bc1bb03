//! The protected resource: what an MCP endpoint needs to demand and check bearer tokens.
//!
//! [`ProtectedResource`] describes the resource (its canonical URL, the authorization servers
//! that issue tokens for it, its scopes, the browser origins allowed to call it). From it come
//! the [`OriginLayer`] (DNS rebinding), the [`BearerLayer`] that guards the MCP routes
//! (A2–A5, A10) and the RFC 9728 metadata routes (A1).

mod challenge;
mod layer;
mod metadata;
mod origin;
mod session;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use http::Request;
use tower::Service;

pub use challenge::AuthError;
pub use layer::{BearerLayer, BearerService};
pub use metadata::ResourceMetadata;
pub use origin::{AllowedOrigins, BadOrigin, OriginCheck, OriginLayer};
pub use session::{SESSION_HEADER, SessionBinding, SessionBindingLayer};

use crate::scope::ScopeImplications;
use crate::verify::TokenVerifier;

/// Takes the inner service that was polled ready for this call, leaving a fresh clone in its
/// place (tower's rule: the instance that answered `poll_ready` must serve the request).
pub(crate) fn take_ready<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

/// The path under which RFC 9728 metadata is published.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Errors describing a protected resource.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceConfigError {
    /// The resource URL is not an absolute http(s) URL without query or fragment.
    #[error("resource URL {0:?} must be an absolute http or https URL without query or fragment")]
    BadResourceUrl(String),
}

/// A protected MCP resource and how clients obtain tokens for it.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    resource: String,
    path: String,
    metadata_url: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
    resource_name: Option<String>,
    allowed_origins: AllowedOrigins,
    scope_implications: Arc<ScopeImplications>,
    challenge_scopes: Vec<String>,
    metadata_at_root: bool,
}

impl ProtectedResource {
    /// A resource whose canonical URL is `resource_url` (e.g. `https://mcp.example.com/mcp`):
    /// the value tokens must carry in `aud`, and what the metadata's `resource` says.
    pub fn new(resource_url: &str) -> Result<Self, ResourceConfigError> {
        let bad = || ResourceConfigError::BadResourceUrl(resource_url.to_owned());
        let url = url::Url::parse(resource_url).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad());
        }
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(bad());
        }
        // The canonical form drops a lone trailing slash (MCP spec, "Canonical Server URI").
        let resource = resource_url.strip_suffix('/').unwrap_or(resource_url).to_owned();
        let path = url.path().trim_end_matches('/').to_owned();
        let origin = url.origin().ascii_serialization();
        // RFC 9728 §3.1: the well-known segment goes between the host and the path.
        let metadata_url = format!("{origin}{METADATA_PATH}{path}");
        let allowed_origins = AllowedOrigins::for_resource(resource_url).map_err(|_| bad())?;
        Ok(Self {
            resource,
            path,
            metadata_url,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            resource_name: None,
            allowed_origins,
            scope_implications: Arc::default(),
            challenge_scopes: Vec::new(),
            metadata_at_root: true,
        })
    }

    /// Adds an authorization server (its issuer URL) to the metadata.
    #[must_use]
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Adds a scope to `scopes_supported` (`offline_access` is never published).
    #[must_use]
    pub fn scope_supported(mut self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        if scope != "offline_access" && !self.scopes_supported.contains(&scope) {
            self.scopes_supported.push(scope);
        }
        self
    }

    /// Adds a scope every request must carry; it is also published as supported.
    #[must_use]
    pub fn required_scope(mut self, scope: impl Into<String>) -> Self {
        let scope = scope.into();
        if !self.required_scopes.contains(&scope) {
            self.required_scopes.push(scope.clone());
        }
        self.scope_supported(scope)
    }

    /// A human-readable name for the metadata's `resource_name`.
    #[must_use]
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The browser origins allowed to call the MCP endpoint (default: the resource's own
    /// origin and loopback origins; see [`AllowedOrigins`]).
    #[must_use]
    pub fn allowed_origins(mut self, allowed: AllowedOrigins) -> Self {
        self.allowed_origins = allowed;
        self
    }

    /// The scopes a `401` names for a client to ask for at first, when they are not all
    /// required (default: the required scopes). A resource whose policy asks for more scopes
    /// on demand names its baseline here, so that clients start small and step up.
    #[must_use]
    pub fn challenge_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.challenge_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// What a `401`'s `scope` names (space-separated; empty for none).
    pub(crate) fn challenge_scope_text(&self) -> String {
        let mut scopes = self.required_scopes.clone();
        scopes.extend(self.challenge_scopes.iter().filter(|s| !self.required_scopes.contains(s)).cloned());
        scopes.join(" ")
    }

    /// Scopes that stand for others: a token with `mcp:admin` satisfies a required `mcp:read`
    /// when `implications` say so.
    #[must_use]
    pub fn scope_implications(mut self, implications: ScopeImplications) -> Self {
        self.scope_implications = Arc::new(implications);
        self
    }

    /// Whether the metadata is also served at the root well-known path, for clients that look
    /// there first (default: yes). Several resources on one host each keep to their own
    /// path-inserted URL instead, which is what their challenges name.
    #[must_use]
    pub fn metadata_at_root(mut self, at_root: bool) -> Self {
        self.metadata_at_root = at_root;
        self
    }

    /// The canonical resource URL.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path it is served at (`/` for a resource at the origin's root).
    pub fn path(&self) -> &str {
        if self.path.is_empty() { "/" } else { &self.path }
    }

    /// The `Origin` check of its routes: its allowed origins (see
    /// [`allowed_origins`](Self::allowed_origins)).
    pub fn origin_layer(&self) -> OriginLayer {
        OriginLayer::new(self.allowed_origins.clone())
    }

    /// The URL of this resource's metadata document (path-inserted form).
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The scopes every request must carry.
    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The answer to a request that needs more scopes than its token has: 403 with an RFC 6750
    /// `insufficient_scope` challenge naming `scopes`, the scopes to ask for.
    pub fn insufficient_scope(&self, scopes: &[String]) -> axum::response::Response {
        let context =
            challenge::ChallengeContext { metadata_url: self.metadata_url.clone(), scope: scopes.join(" ") };
        AuthError::InsufficientScope.into_response_for(&context)
    }

    /// The bearer layer that guards this resource's routes with `verifier`, cached
    /// ([`BearerLayer::new`]).
    pub fn layer(&self, verifier: impl TokenVerifier) -> BearerLayer {
        BearerLayer::new(self, verifier)
    }

    /// A router serving `service` (typically rmcp's Streamable HTTP service) at the resource's
    /// path behind the `Origin` check, the bearer layer with `verifier` (cached:
    /// [`BearerLayer::new`]) and session binding, and the metadata routes beside it.
    ///
    /// ```
    /// use axum::body::Body;
    /// use mcpgate::resource::ProtectedResource;
    /// use mcpgate::verify::FixedVerifier;
    /// use mcpgate::Principal;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let resource = ProtectedResource::new("https://mcp.example.com/mcp").unwrap()
    ///     .authorization_server("https://auth.example.com");
    /// let verifier = FixedVerifier::new().with_token(&"t0ken".to_owned().into(), Principal::new("alice"));
    /// let mcp = axum::routing::post(|caller: Principal| async move { caller.subject().to_owned() });
    /// let app = resource.protect(verifier, mcp);
    ///
    /// let ask = |token: Option<&str>| {
    ///     let request = http::Request::post("/mcp");
    ///     let request = match token { Some(t) => request.header("authorization", format!("Bearer {t}")), None => request };
    ///     request.body(Body::empty()).unwrap()
    /// };
    /// let refused = app.clone().oneshot(ask(None)).await.unwrap();
    /// assert_eq!(refused.status(), 401);
    /// assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("resource_metadata="));
    /// assert_eq!(app.oneshot(ask(Some("t0ken"))).await.unwrap().status(), 200);
    /// # }
    /// ```
    pub fn protect<S>(&self, verifier: impl TokenVerifier, service: S) -> Router
    where
        S: Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        self.protect_with(self.layer(verifier), service)
    }

    /// [`protect`](Self::protect) with a bearer layer of the caller's making (an
    /// [uncached](BearerLayer::uncached) one).
    pub fn protect_with<S>(&self, bearer: BearerLayer, service: S) -> Router
    where
        S: Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: IntoResponse,
        S::Future: Send + 'static,
    {
        // Outermost first: a browser page of a foreign origin is refused before any token is read.
        let guarded = tower::ServiceBuilder::new()
            .layer(self.origin_layer())
            .layer(bearer)
            .layer(SessionBindingLayer::default())
            .service(service);
        Router::new().route_service(self.path(), guarded).merge(self.metadata_router())
    }
}
