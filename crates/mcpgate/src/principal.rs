//! The verified identity of a caller: what a [`TokenVerifier`](crate::verify::TokenVerifier)
//! establishes from an access token and what handlers read from the request.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The identity behind a verified access token.
///
/// Cheap to clone (one reference count): the bearer layer puts it into every authenticated
/// request's extensions, and the verified-token cache hands out clones of it.
#[derive(Clone, PartialEq)]
pub struct Principal(Arc<Identity>);

#[derive(Clone, PartialEq)]
struct Identity {
    subject: String,
    client_id: Option<String>,
    scopes: Vec<String>,
    audience: Vec<String>,
    issuer: Option<String>,
    expires_at: Option<u64>,
    claims: Map<String, Value>,
}

impl Principal {
    /// The caller of an endpoint served without authentication: an empty subject, no client,
    /// no scopes, of kind [`ClientKind::Anonymous`] (what policies and the audit trail see).
    pub fn anonymous() -> Self {
        let mut claims = Map::new();
        claims.insert(CLIENT_KIND_CLAIM.to_owned(), Value::from(ClientKind::Anonymous.as_str()));
        Self::new("").with_claims(claims)
    }

    /// Starts a principal for `subject`; the other fields are set with the `with_*` methods.
    pub fn new(subject: impl Into<String>) -> Self {
        Self(Arc::new(Identity {
            subject: subject.into(),
            client_id: None,
            scopes: Vec::new(),
            audience: Vec::new(),
            issuer: None,
            expires_at: None,
            claims: Map::new(),
        }))
    }

    fn identity_mut(&mut self) -> &mut Identity {
        Arc::make_mut(&mut self.0)
    }

    /// Sets the OAuth client the token was issued to.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.identity_mut().client_id = Some(client_id.into());
        self
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.identity_mut().scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the audiences (`aud`) the token names.
    #[must_use]
    pub fn with_audience<I, S>(mut self, audience: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.identity_mut().audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the issuer (`iss`).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.identity_mut().issuer = Some(issuer.into());
        self
    }

    /// Sets the expiry, in seconds since the Unix epoch.
    #[must_use]
    pub fn with_expires_at(mut self, exp: u64) -> Self {
        self.identity_mut().expires_at = Some(exp);
        self
    }

    /// Removes one claim, if present.
    #[must_use]
    pub fn without_claim(mut self, name: &str) -> Self {
        if self.0.claims.contains_key(name) {
            self.identity_mut().claims.remove(name);
        }
        self
    }

    /// Sets every claim of the token (or every member of the introspection response).
    #[must_use]
    pub fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        self.identity_mut().claims = claims;
        self
    }

    /// The subject (`sub`): who the token speaks for.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// The OAuth client the token was issued to, when the token says.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    /// The audiences (`aud`) the token names.
    pub fn audience(&self) -> &[String] {
        &self.0.audience
    }

    /// The issuer (`iss`), when known.
    pub fn issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// Expiry in seconds since the Unix epoch, when the token has one.
    pub fn expires_at(&self) -> Option<u64> {
        self.0.expires_at
    }

    /// Time left until expiry, measured against `now` (`None` without an expiry).
    pub fn remaining_lifetime(&self, now: SystemTime) -> Option<Duration> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        self.0.expires_at.map(|exp| Duration::from_secs(exp.saturating_sub(now)))
    }

    /// Every claim of the token, including the ones above.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.0.claims
    }

    /// One claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claims.get(name)
    }

    /// The `email` claim, when it is a string.
    pub fn email(&self) -> Option<&str> {
        self.claim("email").and_then(Value::as_str)
    }

    /// Whether the provider verified the email: only an `email_verified` claim that is JSON
    /// `true` says so (a string `"true"` is not taken).
    pub fn email_verified(&self) -> bool {
        self.claim("email_verified").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The string members of the `groups` claim (none when it is absent or not an array).
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        let groups = match self.claim("groups") {
            Some(Value::Array(groups)) => groups.as_slice(),
            _ => &[],
        };
        groups.iter().filter_map(Value::as_str)
    }

    /// Who is calling: a person signed in through a client, or a machine client with its own
    /// credentials. Read from the `client_kind` claim, which mcpgate puts in the
    /// tokens it issues; a token without it is a person's.
    pub fn client_kind(&self) -> ClientKind {
        match self.claim(CLIENT_KIND_CLAIM).and_then(Value::as_str) {
            Some("machine") => ClientKind::Machine,
            Some("api_key") => ClientKind::ApiKey,
            Some("anonymous") => ClientKind::Anonymous,
            _ => ClientKind::User,
        }
    }
}

/// The claim naming a caller's [`ClientKind`] in mcpgate's access tokens.
pub const CLIENT_KIND_CLAIM: &str = "client_kind";

/// The claims only mcpgate's own tokens may carry, because mcpgate acts on them: the caller's
/// kind, and `gid`, the grant whose provider tokens and revocation a token stands for.
pub const RESERVED_CLAIMS: [&str; 2] = [CLIENT_KIND_CLAIM, "gid"];

/// What kind of caller a [`Principal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKind {
    /// A person, signed in at the identity provider through an OAuth client.
    User,
    /// A machine client authenticated by its own credentials (the `client_credentials` grant):
    /// the subject is the client.
    Machine,
    /// An API key the operator configured: the subject is `api_key:<name>`.
    ApiKey,
    /// Nobody in particular: a caller of an endpoint served without authentication, whatever
    /// credentials it sent (they are not read). The subject is empty.
    Anonymous,
}

impl ClientKind {
    /// Its name in tokens, headers, the audit trail and policies: `user`, `machine`,
    /// `api_key` or `anonymous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Machine => "machine",
            Self::ApiKey => "api_key",
            Self::Anonymous => "anonymous",
        }
    }
}

/// The caller of a handler behind the bearer layer
/// ([`ProtectedResource::protect`](crate::resource::ProtectedResource)), as an axum extractor:
///
/// ```
/// use mcpgate::Principal;
///
/// async fn whoami(caller: Principal) -> String {
///     caller.subject().to_owned()
/// }
/// let app: axum::Router = axum::Router::new().route("/whoami", axum::routing::get(whoami));
/// ```
///
/// A route the layer does not cover has no principal: the extractor then answers 500
/// ([`MissingPrincipal`]), as it is the server's mistake, not the caller's.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = MissingPrincipal;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or(MissingPrincipal)
    }
}

/// The rejection of the [`Principal`] extractor on a route the bearer layer does not protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this route is not behind the bearer layer, so it has no verified caller")]
pub struct MissingPrincipal;

impl axum::response::IntoResponse for MissingPrincipal {
    fn into_response(self) -> axum::response::Response {
        tracing::error!("{self}");
        (http::StatusCode::INTERNAL_SERVER_ERROR, "internal error: no verified caller\n").into_response()
    }
}

// Claims may carry personal data; Debug shows the identity, not the claim values.
impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.0.subject)
            .field("client_id", &self.0.client_id)
            .field("scopes", &self.0.scopes)
            .field("audience", &self.0.audience)
            .field("issuer", &self.0.issuer)
            .field("expires_at", &self.0.expires_at)
            .field("claims", &self.0.claims.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_back() {
        let p = Principal::new("alice")
            .with_client_id("c1")
            .with_scopes(["read", "write"])
            .with_audience(["https://mcp.example.com/mcp"])
            .with_issuer("https://idp.example.com")
            .with_expires_at(100);
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.client_id(), Some("c1"));
        assert!(p.has_scope("write"));
        assert!(!p.has_scope("admin"));
        assert_eq!(p.audience(), ["https://mcp.example.com/mcp"]);
        assert_eq!(p.issuer(), Some("https://idp.example.com"));
        assert_eq!(p.remaining_lifetime(UNIX_EPOCH + Duration::from_secs(40)), Some(Duration::from_secs(60)));
    }

    #[tokio::test]
    async fn handlers_take_the_principal_the_layer_put_in_the_request() {
        use axum::routing::get;
        use tower::ServiceExt;

        let whoami = |caller: Principal| async move { caller.subject().to_owned() };
        let request = || http::Request::get("/").body(axum::body::Body::empty()).unwrap();
        let app = axum::Router::new().route("/", get(whoami));
        let unprotected = app.clone().oneshot(request()).await.unwrap();
        assert_eq!(unprotected.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut with_caller = request();
        with_caller.extensions_mut().insert(Principal::new("alice"));
        let answer = app.oneshot(with_caller).await.unwrap();
        assert_eq!(answer.status(), http::StatusCode::OK);
        let body = axum::body::to_bytes(answer.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"alice");
    }

    #[test]
    fn debug_does_not_print_claim_values() {
        let mut claims = Map::new();
        claims.insert("email".into(), Value::String("alice@secret.example".into()));
        let p = Principal::new("alice").with_claims(claims);
        let shown = format!("{p:?}");
        assert!(shown.contains("email"));
        assert!(!shown.contains("alice@secret.example"));
    }
}
