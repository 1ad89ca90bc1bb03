//! The authorization server: an OAuth 2.1 server towards MCP clients — metadata, client
//! registration and metadata documents, authorize, consent, the provider's callback, token and
//! revoke — that signs users in at an upstream identity provider.
//!
//! [`AuthServer`] holds the settings, the store and the keys; [`AuthServer::router`] serves the
//! endpoints. Handlers are thin: parse, call the logic, map errors through
//! [`OAuthError`](crate::error::OAuthError). Grant records (grants, codes, refresh families)
//! are owned by one type, `grants::Grants`; ids such as D4 in comments are the behaviours of
//! `docs/behaviours.md`.

mod allowed_users;
mod authorize;
#[cfg(feature = "bench-support")]
mod bulk_load;
mod callback;
mod cimd;
mod client;
mod client_assertion;
mod clients;
mod consent;
mod cookies;
pub(crate) mod display_text;
mod downstream_token;
mod failure;
pub(crate) mod grant;
mod grantable;
mod grants;
mod identity_assertion;
mod issue;
mod limits;
mod metadata;
mod pages;
mod provider_token;
mod register;
pub(crate) mod resources;
mod revocation;
mod revoked;
mod spent_assertions;
mod step_up;
mod token;
mod transaction;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// Kept here too, where it was first published: the trait the authorization server implements.
pub use crate::policy::StepUpNotice;
pub use crate::ratelimit::RateLimit;
pub use allowed_users::AllowedUsers;
#[cfg(feature = "bench-support")]
#[doc(hidden)]
pub use bulk_load::{BulkLoad, BulkLoadError};
pub use cimd::{MetadataDocumentError, MetadataDocumentPolicy};
pub use client::{
    ClientKeys, ClientRecord, ClientSource, ConfiguredClient, GrantType, JWT_BEARER, TokenEndpointAuthMethod,
};
pub use consent::ConsentMode;
pub use identity_assertion::EnterpriseIdp;
pub use limits::RateLimits;
pub use metadata::AuthServerMetadata;
pub use provider_token::ProviderTokenError;
pub use register::Registration;
pub use revocation::AccessTokenVerifier;

use crate::crypto::{KeyedMac, Keyring, Sealer};
use crate::redirect::RedirectAllowList;
use crate::store::Store;
use crate::upstream::Upstream;

/// Largest request body the endpoints read (E3).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the operator configures. Start from [`AuthServerSettings::new`] and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthServerSettings {
    /// Our issuer identifier: the public base URL, byte-for-byte as it appears everywhere.
    pub issuer: String,
    /// The protected resources (canonical MCP URLs) tokens are issued for, at least one. Each
    /// token is bound to one (RFC 8707): the one the client names, or the only one; a client
    /// naming none is refused when there are several, so that no token is for a guessed one.
    pub resources: Vec<String>,
    /// Scopes clients may request.
    pub scopes_supported: Vec<String>,
    /// Scopes a resource may ask a client to step up to (a policy's `require_scopes`). A client
    /// that registered itself or is described by a metadata document may always be granted
    /// them, whatever scope it declared: such clients declare what they first saw, and a
    /// step-up could never succeed otherwise (RFC 7591 §3.2.1 lets the server change declared
    /// metadata). An operator's `[[auth.clients]]` scopes stay as configured.
    pub step_up_scopes: Vec<String>,
    /// Which redirect URIs registration accepts, beyond the client-type rules.
    pub allowed_redirects: RedirectAllowList,
    /// Path of the upstream callback under the issuer (registered at the provider).
    pub callback_path: String,
    /// How long a rotated-out refresh token still works (D4; 10 s is a good default).
    pub refresh_grace: std::time::Duration,
    /// How long our access tokens live (D3; default one hour).
    pub access_token_ttl: std::time::Duration,
    /// When the user is asked to approve a client (C5; default [`ConsentMode::Always`]).
    pub consent: ConsentMode,
    /// Clients from the operator's configuration, alongside registered ones (B6).
    pub clients: Vec<ConfiguredClient>,
    /// What the user's provider token is exchanged for, for an MCP server calling a downstream
    /// API as the user ([`AuthServer::downstream_token`]). None by default.
    pub token_exchange: Option<crate::upstream::TokenExchange>,
    /// Enterprise identity providers whose identity assertions (ID-JAG, SEP-990) configured
    /// clients of the jwt-bearer grant may redeem for a user's token. None by default.
    pub enterprise_idps: Vec<EnterpriseIdp>,
    /// Whether clients may register themselves (default: open).
    pub registration: Registration,
    /// How long a registered client through which no sign-in has completed is kept (default
    /// 24 hours); one that completes a sign-in is kept for good.
    pub unconfirmed_client_ttl: std::time::Duration,
    /// Whether URL client ids (client ID metadata documents, B5) are accepted, and from where.
    pub metadata_documents: MetadataDocumentPolicy,
    /// Rate limits per client address on registration, authorization and tokens (E3).
    pub rate_limits: RateLimits,
    /// Who may sign in (checked at the callback, and at refresh for providers that check
    /// identity then); default everyone the provider signs in.
    pub allowed_users: AllowedUsers,
    /// The time of day codes, transactions, tokens and revocations are dated by (the system's
    /// by default; tests move an adjustable one instead of waiting).
    pub clock: crate::clock::Clock,
}

impl AuthServerSettings {
    /// Settings for `issuer` protecting `resource` (push more onto `resources`), with the defaults: every redirect URI the
    /// client-type rules accept, no scopes, callback at `/auth/callback`, a 10 s refresh grace
    /// window, one-hour access tokens, consent always asked, no configured clients.
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            resources: vec![resource.into()],
            scopes_supported: Vec::new(),
            step_up_scopes: Vec::new(),
            allowed_redirects: RedirectAllowList::any(),
            callback_path: "/auth/callback".into(),
            refresh_grace: std::time::Duration::from_secs(10),
            access_token_ttl: std::time::Duration::from_secs(3600),
            consent: ConsentMode::Always,
            clients: Vec::new(),
            enterprise_idps: Vec::new(),
            token_exchange: None,
            registration: Registration::Open,
            unconfirmed_client_ttl: std::time::Duration::from_secs(24 * 3600),
            metadata_documents: MetadataDocumentPolicy::default(),
            rate_limits: RateLimits::default(),
            allowed_users: AllowedUsers::everyone(),
            clock: crate::clock::Clock::system(),
        }
    }
}

/// Errors in the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The issuer must be an https URL (http only on loopback), without query or fragment.
    #[error("issuer {0:?} must be an https URL (http for loopback only) without query or fragment")]
    BadIssuer(String),
    /// A configured client is unusable.
    #[error("configured client {client_id:?}: {reason}")]
    BadClient {
        /// Its id.
        client_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A trusted enterprise identity provider is unusable.
    #[error("enterprise identity provider {issuer:?}: {reason}")]
    BadEnterpriseIdp {
        /// Its issuer.
        issuer: String,
        /// What is wrong.
        reason: String,
    },
    /// No protected resource, or one that is not an absolute URL without query or fragment.
    #[error("resources: {0:?} is not an absolute URL without query or fragment (and one is required)")]
    BadResource(String),
    /// The access-token lifetime must be positive and not longer than the refresh tokens'.
    #[error("access_token_ttl must be between 1 s and the refresh-token lifetime")]
    BadAccessTokenTtl,
}

pub(crate) struct Inner {
    pub settings: AuthServerSettings,
    /// The issuer's path (empty for an issuer at the origin's root), where endpoints live.
    pub issuer_path: String,
    /// The issuer's origin as browsers write it in `Origin` (`https://auth.example.com`).
    pub issuer_origin: String,
    pub store: Arc<dyn Store>,
    pub cookie_mac: KeyedMac,
    pub sealer: Sealer,
    pub upstream: Arc<Upstream>,
    pub signer: issue::TokenSigner,
    /// Verifies our own access tokens (for revocation requests); no cache.
    pub own_jwt: crate::verify::JwtVerifier,
    /// Grants, their codes and refresh families: the only owner of their records.
    pub grants: grants::Grants,
    /// `issuer + callback_path`: our redirect URI at the provider.
    pub callback_url: String,
    /// Every client, wherever it comes from: the only owner of their records.
    pub clients: clients::Clients,
    /// The trusted enterprise identity providers' assertions (SEP-990).
    pub identity_assertions: identity_assertion::IdentityAssertions,
    /// Downstream tokens, when a token exchange is configured.
    pub downstream: Option<downstream_token::DownstreamTokens>,
    /// The endpoints' rate limiters (E3).
    pub limits: limits::EndpointLimits,
}

impl Inner {
    /// The authorization endpoint of the provider (its origin goes into the consent page's CSP).
    pub(crate) fn upstream_authorization_endpoint(&self) -> &str {
        self.upstream.authorization_endpoint()
    }
}

/// The authorization server.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer").field("issuer", &self.inner.settings.issuer).finish_non_exhaustive()
    }
}

impl AuthServer {
    /// An authorization server with `settings`, keeping its records in `store`, deriving its
    /// keys from `keyring`, and logging users in at `upstream`.
    pub fn new(
        mut settings: AuthServerSettings,
        store: Arc<dyn Store>,
        keyring: &Keyring,
        upstream: Upstream,
    ) -> Result<Self, SettingsError> {
        let bad = || SettingsError::BadIssuer(settings.issuer.clone());
        let url = url::Url::parse(&settings.issuer).map_err(|_| bad())?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        let secure = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !secure || url.query().is_some() || url.fragment().is_some() || settings.issuer.ends_with('/') {
            return Err(bad());
        }
        settings.resources = resources::canonical(&settings.resources)?;
        let ttl = settings.access_token_ttl;
        if ttl.is_zero() || ttl > grants::REFRESH_TOKEN_TTL {
            return Err(SettingsError::BadAccessTokenTtl);
        }
        let digester = keyring.digester();
        let configured_clients = settings
            .clients
            .iter()
            .map(|c| c.to_record(&digester).map(|record| (record.client_id.clone(), record)))
            .collect::<Result<_, _>>()?;
        let issuer_path = url.path().trim_end_matches('/').to_owned();
        let issuer_origin = url.origin().ascii_serialization();
        let callback_url = format!("{}{}", settings.issuer, settings.callback_path);
        let signer = issue::TokenSigner::new(keyring);
        let own_jwt =
            signer.verifier(&settings.issuer, &settings.resources, &settings.clock).map_err(|_| bad())?;
        let revoked =
            revoked::RevokedGrants::new(store.clone(), ttl, own_jwt.rules().leeway, settings.clock.clone());
        let grants = grants::Grants::new(
            store.clone(),
            keyring.digester(),
            keyring.sealer(),
            revoked,
            settings.refresh_grace,
            settings.clock.clone(),
        );
        let spent =
            spent_assertions::SpentAssertions::new(store.clone(), keyring.digester(), settings.clock.clone());
        let assertions = client_assertion::ClientAssertions::new(
            &settings.clients,
            &settings.issuer,
            spent,
            &settings.clock,
        )?;
        let clients = clients::Clients::new(
            store.clone(),
            keyring.digester(),
            assertions,
            clients::ClientRules {
                configured: configured_clients,
                documents: cimd::MetadataDocuments::new(settings.metadata_documents),
                allowed_redirects: settings.allowed_redirects.clone(),
                scopes_supported: settings.scopes_supported.clone(),
                unconfirmed_ttl: settings.unconfirmed_client_ttl,
            },
        );
        let identity_assertions = identity_assertion::IdentityAssertions::new(
            &settings.enterprise_idps,
            &settings.issuer,
            &settings.resources,
            spent_assertions::SpentAssertions::new(store.clone(), keyring.digester(), settings.clock.clone()),
            &settings.clock,
        )?;
        let downstream = settings.token_exchange.clone().map(|exchange| {
            downstream_token::DownstreamTokens::new(
                exchange,
                store.clone(),
                keyring.sealer(),
                settings.clock.clone(),
            )
        });
        let limits = limits::EndpointLimits::new(&settings.rate_limits);
        let inner = Inner {
            settings,
            issuer_path,
            issuer_origin,
            store,
            cookie_mac: keyring.cookie_signer(),
            sealer: keyring.sealer(),
            upstream: Arc::new(upstream),
            signer,
            own_jwt,
            grants,
            clients,
            identity_assertions,
            downstream,
            callback_url,
            limits,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.inner.settings.issuer
    }

    /// A verifier of the access tokens this server issues for its first resource, for that
    /// resource's bearer layer; see [`access_token_verifier_for`](Self::access_token_verifier_for).
    pub fn access_token_verifier(&self) -> Result<AccessTokenVerifier, crate::verify::JwtConfigError> {
        self.access_token_verifier_for(&self.inner.settings.resources[0])
    }

    /// A verifier of the access tokens this server issues for `resource` (one of
    /// [`AuthServerSettings::resources`]), for its bearer layer: keys in memory, issuer and
    /// audience fixed — a token for another resource is refused — results cached, and revoked
    /// grants refused.
    pub fn access_token_verifier_for(
        &self,
        resource: &str,
    ) -> Result<AccessTokenVerifier, crate::verify::JwtConfigError> {
        let settings = &self.inner.settings;
        let audience = [resources::canonical_resource(resource).to_owned()];
        let jwt = self.inner.signer.verifier(&settings.issuer, &audience, &settings.clock)?;
        Ok(AccessTokenVerifier::new(jwt, self.inner.grants.revoked().clone()))
    }

    /// The protected resources tokens are issued for.
    pub fn resources(&self) -> &[String] {
        &self.inner.settings.resources
    }

    /// The signed-in user's access token at the provider, for a server that calls the
    /// provider's API on their behalf: refreshed first when it is expired or near it, at most
    /// once at a time per grant across every instance sharing the store (D5).
    /// [`ProviderTokenError::NoGrant`] for a caller that did not sign in through this server.
    pub async fn provider_token(
        &self,
        principal: &crate::Principal,
    ) -> Result<secrecy::SecretString, ProviderTokenError> {
        let grant_id = self.user_grant(principal)?;
        self.inner.provider_access_token(grant_id).await
    }

    /// A token for the downstream API of [`AuthServerSettings::token_exchange`], obtained by
    /// exchanging the signed-in user's provider token: kept until shortly before it expires,
    /// exchanged at most once at a time per grant across every instance sharing the store.
    /// [`ProviderTokenError::NoGrant`] for a caller that did not sign in through this server.
    pub async fn downstream_token(
        &self,
        principal: &crate::Principal,
    ) -> Result<secrecy::SecretString, ProviderTokenError> {
        let grant_id = self.user_grant(principal)?;
        self.inner.downstream_token(grant_id).await
    }

    /// The grant of one of our own tokens of a person who signed in, or `NoGrant`.
    fn user_grant<'p>(&self, principal: &'p crate::Principal) -> Result<&'p str, ProviderTokenError> {
        // Only our own tokens of people name a grant that holds a provider token.
        let ours = principal.issuer() == Some(self.issuer());
        if !ours || principal.client_kind() != crate::ClientKind::User {
            return Err(ProviderTokenError::NoGrant);
        }
        principal
            .claim("gid")
            .and_then(serde_json::Value::as_str)
            .filter(|gid| !grants::is_unstored(gid))
            .ok_or(ProviderTokenError::NoGrant)
    }

    /// The endpoints and metadata documents, to merge at the root of the server's router.
    pub fn router(&self) -> Router {
        let path = |endpoint: &str| format!("{}{endpoint}", self.inner.issuer_path);
        // Each limited group has its own limiter, shared by its routes and by every router.
        let limited = |routes: Router<Arc<Inner>>, limit: &Option<limits::EndpointLimit>| match limit {
            None => routes,
            Some(limit) => routes.layer(axum::middleware::from_fn_with_state(limit.clone(), limits::enforce)),
        };
        let limits = &self.inner.limits;
        let register = Router::new().route(&path("/register"), post(register::register));
        let authorize = Router::new()
            .route(&path("/authorize"), get(authorize::authorize_get).post(authorize::authorize_post))
            .route(&path("/consent"), post(consent::consent_post));
        let token = Router::new()
            .route(&path("/token"), post(token::token))
            .route(&path("/revoke"), post(revocation::revoke));
        Router::new()
            .merge(limited(register, &limits.register))
            .merge(limited(authorize, &limits.authorize))
            .merge(limited(token, &limits.token))
            .route(&path(&self.inner.settings.callback_path), get(callback::callback))
            .route(&path("/jwks.json"), get(token::jwks))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.inner.clone())
            .merge(metadata::routes(&self.inner))
    }
}
