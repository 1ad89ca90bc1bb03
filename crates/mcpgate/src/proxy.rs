//! The OAuth proxy assembled: one builder that turns a public URL, an upstream provider, a
//! store and the root secret into an axum [`Router`] serving the authorization server, the
//! protected-resource metadata and the MCP service behind the bearer layer.
//!
//! ```no_run
//! # async fn run(mcp: axum::routing::MethodRouter) -> Result<(), Box<dyn std::error::Error>> {
//! use mcpgate::OAuthProxy;
//! use mcpgate::upstream::Upstream;
//!
//! let upstream = Upstream::oidc(
//!     "https://accounts.example.com/.well-known/openid-configuration",
//!     "client-id-at-the-provider",
//!     std::env::var("PROVIDER_SECRET")?.into(),
//!     vec!["email".into()],
//! )
//! .await?;
//! let proxy = OAuthProxy::builder("https://mcp.example.com")
//!     .upstream(upstream)
//!     .keyring(mcpgate::crypto::Keyring::from_env("MCPGATE_SECRET")?)
//!     .store(mcpgate::store::open("sqlite://mcpgate.db").await?)
//!     .scopes(["mcp:read"])
//!     .build()?;
//! let app = proxy.protect(mcp); // the MCP service `mcp` at /mcp, behind OAuth
//! # let _ = app; Ok(()) }
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::Request;

use crate::authz::{AuthServer, AuthServerSettings, ConsentMode, SettingsError};
use crate::crypto::Keyring;
use crate::redirect::RedirectAllowList;
use crate::resource::{AllowedOrigins, BearerLayer, ProtectedResource, ResourceConfigError};
use crate::scope::ScopeImplications;
use crate::store::Store;
use crate::upstream::Upstream;
use crate::verify::{
    API_KEY_PREFIX, ApiKeyVerifier, CachedVerifier, ForeignTokens, JwtConfigError, TokenRouter, TokenVerifier,
};

/// Why the proxy could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyBuildError {
    /// No upstream provider was given.
    #[error("an upstream provider is required")]
    MissingUpstream,
    /// No keyring (root secret) was given.
    #[error("a keyring (the root secret) is required")]
    MissingKeyring,
    /// No store was given.
    #[error("a store is required (memory://, sqlite://… or redis://…)")]
    MissingStore,
    /// The authorization server's settings are unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The resource URL is unusable.
    #[error(transparent)]
    Resource(#[from] ResourceConfigError),
    /// An allowed origin is not an origin pattern.
    #[error(transparent)]
    Origin(#[from] crate::resource::BadOrigin),
    /// The verifier of our tokens could not be made.
    #[error(transparent)]
    Verifier(#[from] JwtConfigError),
    /// Two verifiers were given for one issuer (or one for this server's own).
    #[error("tokens of issuer {0:?} are accepted twice (or it is this server's own issuer)")]
    IssuerTwice(String),
    /// Two verifiers were given for opaque tokens.
    #[error("opaque tokens can be checked by one verifier only")]
    OpaqueTwice,
    /// A resource to protect is not one this proxy issues tokens for.
    #[error("{0:?} is not a resource of this proxy (add its path with resource_path)")]
    UnknownResource(String),
    /// Two MCP endpoints at one path.
    #[error("the MCP path {0:?} is given twice")]
    PathTwice(String),
}

/// Builds an [`OAuthProxy`]; see the module documentation.
pub struct OAuthProxyBuilder {
    settings: AuthServerSettings,
    mcp_path: String,
    upstream: Option<Upstream>,
    keyring: Option<Keyring>,
    store: Option<Arc<dyn Store>>,
    allowed_origins: Option<Vec<String>>,
    scope_implications: ScopeImplications,
    api_keys: Option<ApiKeyVerifier>,
    /// Other issuers' verifiers, by issuer (`None`: opaque tokens).
    foreign: Vec<(Option<String>, Arc<dyn TokenVerifier>)>,
}

impl std::fmt::Debug for OAuthProxyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProxyBuilder").field("issuer", &self.settings.issuer).finish_non_exhaustive()
    }
}

impl OAuthProxyBuilder {
    /// Where the MCP service is served under the base URL (default `/mcp`).
    pub fn mcp_path(mut self, path: impl Into<String>) -> Self {
        self.mcp_path = path.into();
        self.settings.resources[0] = format!("{}{}", self.settings.issuer, self.mcp_path);
        self
    }

    /// Another MCP endpoint behind this authorization server, at `path` under the base URL: a
    /// protected resource of its own (its URL, metadata and challenge), served by
    /// [`OAuthProxy::protect_resource`]. Tokens are bound to one endpoint: one for `path` is
    /// refused at the others. One sign-in page and one set of clients serve them all.
    pub fn resource_path(mut self, path: impl AsRef<str>) -> Self {
        self.settings.resources.push(format!("{}{}", self.settings.issuer, path.as_ref()));
        self
    }

    /// The provider users log in at.
    pub fn upstream(mut self, upstream: Upstream) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// The root secret every key is derived from.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Where clients, grants and tokens' digests are kept.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The scopes clients may ask for.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.settings.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Scopes granted on demand (a policy's `require_scopes`): offered, granted to clients
    /// that ask for them, and left out of the `401` challenge and of default grants, so that
    /// clients start with the others and step up (see `AuthServerSettings::step_up_scopes`).
    pub fn step_up_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        for scope in scopes.into_iter().map(Into::into) {
            if !self.settings.scopes_supported.contains(&scope) {
                self.settings.scopes_supported.push(scope.clone());
            }
            if !self.settings.step_up_scopes.contains(&scope) {
                self.settings.step_up_scopes.push(scope);
            }
        }
        self
    }

    /// When users are asked to approve a client (default: always).
    pub fn consent(mut self, mode: ConsentMode) -> Self {
        self.settings.consent = mode;
        self
    }

    /// Which redirect URIs registration accepts (default: any the client-type rules accept).
    pub fn allowed_redirects(mut self, allowed: RedirectAllowList) -> Self {
        self.settings.allowed_redirects = allowed;
        self
    }

    /// The browser origins allowed to call the MCP endpoint besides the issuer's own, replacing
    /// the default (loopback origins); `*` allows every origin. See
    /// [`AllowedOrigins`](crate::resource::AllowedOrigins).
    pub fn allowed_origins<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.allowed_origins = Some(patterns.into_iter().map(Into::into).collect());
        self
    }

    /// Scopes that stand for others, honoured where the MCP endpoint checks scopes.
    pub fn scope_implications(mut self, implications: ScopeImplications) -> Self {
        self.scope_implications = implications;
        self
    }

    /// API keys accepted at the MCP endpoint beside the access tokens this proxy issues.
    pub fn api_keys(mut self, keys: ApiKeyVerifier) -> Self {
        self.api_keys = Some(keys);
        self
    }

    /// Also accepts another issuer's tokens at the MCP endpoint: JWTs whose `iss` is `issuer`
    /// go to `verifier` (cached as it allows), and to no other. Their claims cannot pass for
    /// this server's own ([`ForeignTokens`]).
    pub fn accept_issuer(mut self, issuer: impl Into<String>, verifier: impl TokenVerifier) -> Self {
        self.foreign.push((Some(issuer.into()), Arc::new(CachedVerifier::new(ForeignTokens(verifier)))));
        self
    }

    /// Also accepts opaque tokens (not JWTs naming an issuer) at the MCP endpoint, checked by
    /// `verifier` (an [`IntrospectionVerifier`](crate::verify::IntrospectionVerifier)), cached
    /// as it allows.
    pub fn accept_opaque(mut self, verifier: impl TokenVerifier) -> Self {
        self.foreign.push((None, Arc::new(CachedVerifier::new(ForeignTokens(verifier)))));
        self
    }

    /// Any other setting of the authorization server.
    pub fn configure(mut self, change: impl FnOnce(&mut AuthServerSettings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// The proxy.
    pub fn build(self) -> Result<OAuthProxy, ProxyBuildError> {
        let upstream = self.upstream.ok_or(ProxyBuildError::MissingUpstream)?;
        let keyring = self.keyring.ok_or(ProxyBuildError::MissingKeyring)?;
        let store = self.store.ok_or(ProxyBuildError::MissingStore)?;
        let resource_urls = self.settings.resources.clone();
        let canonical = crate::authz::resources::canonical_resource;
        for (i, url) in resource_urls.iter().enumerate() {
            if resource_urls[..i].iter().any(|earlier| canonical(earlier) == canonical(url)) {
                let path = url.strip_prefix(&self.settings.issuer).unwrap_or(url);
                return Err(ProxyBuildError::PathTwice(path.to_owned()));
            }
        }
        let issuer = self.settings.issuer.clone();
        let step_up = &self.settings.step_up_scopes;
        let baseline: Vec<String> = self
            .settings
            .scopes_supported
            .iter()
            .filter(|s| !step_up.contains(s) && *s != "offline_access")
            .cloned()
            .collect();
        let implications = self.scope_implications;
        let several = resource_urls.len() > 1;
        let mut resources = Vec::new();
        for url in &resource_urls {
            let mut resource = ProtectedResource::new(url)?
                .authorization_server(issuer.clone())
                .scope_implications(implications.clone())
                .challenge_scopes(baseline.clone())
                .metadata_at_root(!several);
            for scope in &self.settings.scopes_supported {
                resource = resource.scope_supported(scope.clone());
            }
            if let Some(patterns) = &self.allowed_origins {
                resource = resource.allowed_origins(AllowedOrigins::for_resource(url)?.only(patterns)?);
            }
            resources.push(resource);
        }
        let server = AuthServer::new(self.settings, store, &keyring, upstream)?;
        let others = OtherCredentials {
            api_keys: self.api_keys.filter(|keys| !keys.is_empty()).map(Arc::new),
            foreign: self.foreign,
        };
        let verifiers = server
            .resources()
            .iter()
            .map(|resource| others.verifier(&server, resource))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OAuthProxy { server, resources, verifiers, mcp_path: self.mcp_path })
    }
}

/// What the MCP endpoints accept beside this server's own tokens: API keys, other issuers'.
struct OtherCredentials {
    api_keys: Option<Arc<ApiKeyVerifier>>,
    /// Other issuers' verifiers, by issuer (`None`: opaque tokens).
    foreign: Vec<(Option<String>, Arc<dyn TokenVerifier>)>,
}

impl OtherCredentials {
    /// The verifier of `resource`'s endpoint: our tokens for it (cached, revocation-aware), and
    /// the others, each routed to its own verifier.
    fn verifier(
        &self,
        server: &AuthServer,
        resource: &str,
    ) -> Result<Arc<dyn TokenVerifier>, ProxyBuildError> {
        // It caches, and checks revocation on every use: no cache around it.
        let own: Arc<dyn TokenVerifier> = Arc::new(server.access_token_verifier_for(resource)?);
        if self.api_keys.is_none() && self.foreign.is_empty() {
            return Ok(own);
        }
        let mut router = TokenRouter::new().issuer(server.issuer(), own);
        if let Some(keys) = &self.api_keys {
            router = router.prefix(API_KEY_PREFIX, keys.clone());
        }
        for (issuer, verifier) in &self.foreign {
            router = match issuer {
                Some(issuer) if router.has_issuer(issuer) => {
                    return Err(ProxyBuildError::IssuerTwice(issuer.clone()));
                }
                Some(issuer) => router.issuer(issuer.clone(), verifier.clone()),
                None if router.has_opaque() => return Err(ProxyBuildError::OpaqueTwice),
                None => router.opaque(verifier.clone()),
            };
        }
        Ok(Arc::new(router))
    }
}

/// The authorization server and the protected resources, ready to serve.
#[derive(Clone)]
pub struct OAuthProxy {
    server: AuthServer,
    /// In the order of [`AuthServer::resources`]: the first at the MCP path, then the others.
    resources: Vec<ProtectedResource>,
    /// Each resource's verifier, in the same order.
    verifiers: Vec<Arc<dyn TokenVerifier>>,
    mcp_path: String,
}

impl std::fmt::Debug for OAuthProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProxy").field("server", &self.server).field("mcp_path", &self.mcp_path).finish()
    }
}

impl OAuthProxy {
    /// A builder for the proxy at `base_url`, the public URL users and clients reach: it is
    /// the issuer, and the MCP service is served under it at `/mcp` unless changed.
    pub fn builder(base_url: impl Into<String>) -> OAuthProxyBuilder {
        let issuer = base_url.into().trim_end_matches('/').to_owned();
        let mcp_path = "/mcp".to_owned();
        OAuthProxyBuilder {
            settings: AuthServerSettings::new(issuer.clone(), format!("{issuer}{mcp_path}")),
            mcp_path,
            upstream: None,
            keyring: None,
            store: None,
            allowed_origins: None,
            scope_implications: ScopeImplications::new(),
            api_keys: None,
            foreign: Vec::new(),
        }
    }

    /// Everything in one router: the authorization server's endpoints and metadata, the
    /// protected-resource metadata, and `mcp` at the MCP path behind the bearer layer. With
    /// more endpoints ([`OAuthProxyBuilder::resource_path`]), merge each one's
    /// [`protect_resource`](Self::protect_resource) into it.
    pub fn protect<S>(&self, mcp: S) -> Router
    where
        S: tower::Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        // Our verifier is the cache (revalidating each use against revocations): none around it.
        let bearer = BearerLayer::uncached(&self.resources[0], self.verifiers[0].clone());
        self.server.router().merge(self.resources[0].protect_with(bearer, mcp))
    }

    /// `mcp` behind the bearer layer at `resource`'s path, with its metadata: `resource` is one
    /// of [`resources`](Self::resources) (its URL decides which), as it is or changed — its own
    /// scopes, say. Tokens are checked for that resource alone. Without the authorization
    /// server's routes: those are [`AuthServer::router`], once.
    pub fn protect_resource<S>(&self, resource: &ProtectedResource, mcp: S) -> Result<Router, ProxyBuildError>
    where
        S: tower::Service<Request<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        let index = self
            .resources
            .iter()
            .position(|r| r.resource() == resource.resource())
            .ok_or_else(|| ProxyBuildError::UnknownResource(resource.resource().to_owned()))?;
        // With several endpoints on one host, none owns the root metadata path.
        let resource = resource.clone().metadata_at_root(self.resources.len() == 1);
        let bearer = BearerLayer::uncached(&resource, self.verifiers[index].clone());
        Ok(resource.protect_with(bearer, mcp))
    }

    /// The authorization server, for composing routes differently or for
    /// [`AuthServer::provider_token`].
    pub fn auth_server(&self) -> &AuthServer {
        &self.server
    }

    /// The verifier of the (first) MCP endpoint: the access tokens this proxy issues for it
    /// (cached, revocation-aware), the API keys and other issuers' tokens when there are some.
    pub fn verifier(&self) -> Arc<dyn TokenVerifier> {
        self.verifiers[0].clone()
    }

    /// The (first) protected resource (its URL, metadata and challenge).
    pub fn resource(&self) -> &ProtectedResource {
        &self.resources[0]
    }

    /// Every protected resource, the first at the MCP path, then those of
    /// [`OAuthProxyBuilder::resource_path`] in order.
    pub fn resources(&self) -> &[ProtectedResource] {
        &self.resources
    }
}
