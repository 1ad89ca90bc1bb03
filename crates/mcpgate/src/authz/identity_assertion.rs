//! Enterprise-managed authorization (MCP's SEP-990, D9): a user's Identity Assertion JWT
//! Authorization Grant (ID-JAG, `typ: oauth-id-jag+jwt`), signed by an enterprise identity
//! provider the operator trusts, redeemed at `/token` for an access token without a browser or
//! a consent click. [`IdentityAssertions`] checks one: the provider's signature, `aud` our
//! issuer, `resource` the MCP URL, `client_id` the client redeeming it, `exp` within an hour,
//! and its `jti` spent once across instances.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::SettingsError;
use super::spent_assertions::{SpentAssertions, Unspendable};
use crate::clock::Clock;
use crate::store::StoreError;
use crate::upstream::UpstreamIdentity;
use crate::verify::{JwtVerifier, TokenVerifier, VerifyError, unverified_issuer};

/// The `typ` of an ID-JAG's header.
const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";

/// An enterprise identity provider whose identity assertions are redeemed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseIdp {
    /// Its issuer (`iss` of its assertions).
    pub issuer: String,
    /// Where its signing keys are published (https, or http on loopback).
    pub jwks_uri: String,
    /// The clients that may redeem its assertions; empty for any client allowed the grant.
    pub allowed_clients: Vec<String>,
}

/// Why an identity assertion was refused: each is `invalid_grant`, but for the store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityAssertionError {
    /// Its issuer is no trusted provider (or it is no JWT).
    #[error("the assertion's issuer is not a trusted identity provider")]
    UnknownIssuer,
    /// The provider does not let this client redeem its assertions.
    #[error("this client may not redeem this identity provider's assertions")]
    ClientNotAllowed,
    /// The signature, type, audience or time checks failed.
    #[error("identity assertion refused: {0}")]
    Invalid(VerifyError),
    /// `client_id` is not the client redeeming it.
    #[error("identity assertion refused: it was issued to another client")]
    WrongClient,
    /// `resource` is missing or is none of our MCP URLs.
    #[error("identity assertion refused: its resource is not an MCP endpoint of this server")]
    WrongResource,
    /// No `jti`, too long a life, or redeemed before.
    #[error("identity assertion refused: {0}")]
    Unspendable(Unspendable),
    /// The store failed recording it.
    #[error(transparent)]
    Store(StoreError),
}

impl From<Unspendable> for IdentityAssertionError {
    fn from(e: Unspendable) -> Self {
        match e {
            Unspendable::Store(e) => Self::Store(e),
            e => Self::Unspendable(e),
        }
    }
}

/// What a redeemed assertion says.
#[derive(Debug)]
pub(crate) struct AssertedUser {
    /// The provider that vouched.
    pub issuer: String,
    /// The user, as the provider describes them.
    pub identity: UpstreamIdentity,
    /// The scopes the provider allowed (`scope`), when it said.
    pub scopes: Option<Vec<String>>,
    /// The MCP endpoint it allows the client to call (`resource`): one of ours.
    pub resource: String,
}

struct TrustedIdp {
    verifier: JwtVerifier,
    allowed_clients: Vec<String>,
}

/// The trusted enterprise identity providers, and the assertion ids already used.
pub(crate) struct IdentityAssertions {
    idps: HashMap<String, TrustedIdp>,
    /// Our resources (canonical).
    resources: Vec<String>,
    spent: SpentAssertions,
}

impl IdentityAssertions {
    /// A verifier per provider: its keys, its issuer, our issuer as audience, the ID-JAG type.
    pub(crate) fn new(
        idps: &[EnterpriseIdp],
        issuer: &str,
        resources: &[String],
        spent: SpentAssertions,
        clock: &Clock,
    ) -> Result<Self, SettingsError> {
        let mut trusted = HashMap::new();
        for idp in idps {
            let bad = |reason: String| SettingsError::BadEnterpriseIdp { issuer: idp.issuer.clone(), reason };
            if !crate::http_client::is_secure_url(&idp.jwks_uri) {
                return Err(bad(format!(
                    "jwks_uri {:?} must be https (http on loopback only)",
                    idp.jwks_uri
                )));
            }
            if idp.issuer == issuer || trusted.contains_key(&idp.issuer) {
                return Err(bad("listed twice, or this server's own issuer".into()));
            }
            let verifier = JwtVerifier::builder()
                .jwks_uri(&idp.jwks_uri)
                .issuer(&idp.issuer)
                .audience(issuer)
                .token_type(ID_JAG_TYPE)
                .clock(clock.clone())
                .build()
                .map_err(|e| bad(e.to_string()))?;
            trusted.insert(
                idp.issuer.clone(),
                TrustedIdp { verifier, allowed_clients: idp.allowed_clients.clone() },
            );
        }
        Ok(Self { idps: trusted, resources: resources.to_vec(), spent })
    }

    /// Whether any provider is trusted.
    pub(crate) fn any(&self) -> bool {
        !self.idps.is_empty()
    }

    /// Checks `assertion` redeemed by `client_id`, and spends it.
    pub(crate) async fn redeem(
        &self,
        assertion: &SecretString,
        client_id: &str,
    ) -> Result<AssertedUser, IdentityAssertionError> {
        let assertion = assertion.expose_secret();
        let issuer = unverified_issuer(assertion).ok_or(IdentityAssertionError::UnknownIssuer)?;
        let idp = self.idps.get(&issuer).ok_or(IdentityAssertionError::UnknownIssuer)?;
        if !idp.allowed_clients.is_empty() && !idp.allowed_clients.iter().any(|c| c == client_id) {
            return Err(IdentityAssertionError::ClientNotAllowed);
        }
        let claims = idp.verifier.verify(assertion).await.map_err(IdentityAssertionError::Invalid)?;
        if claims.claim("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(IdentityAssertionError::WrongClient);
        }
        let resource =
            claims.claim("resource").and_then(Value::as_str).map(super::resources::canonical_resource);
        let resource = self
            .resources
            .iter()
            .find(|ours| Some(ours.as_str()) == resource)
            .ok_or(IdentityAssertionError::WrongResource)?
            .clone();
        self.spent.spend(&issuer, &claims, idp.verifier.rules().leeway).await?;
        let scopes = claims
            .claim("scope")
            .and_then(Value::as_str)
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>());
        // Only the identity's named fields go into our token (`user_claims`): a `gid` or
        // `client_kind` the assertion carries goes nowhere.
        let identity = UpstreamIdentity::from_claims(claims.subject().to_owned(), claims.claims().clone());
        Ok(AssertedUser { issuer, identity, scopes, resource })
    }
}
