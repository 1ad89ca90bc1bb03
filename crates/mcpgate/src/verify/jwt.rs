//! `JwtVerifier`: signed JWT access tokens (RFC 9068 and the usual IdP variants), verified
//! against configured keys or a JWKS URL (A6, A7).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::{ASYMMETRIC_ALGS, HMAC_ALGS};
use super::{
    ClaimRules, InvalidToken, JwksCache, JwksCacheConfig, KeySet, ScopeClaim, TokenVerifier, VerificationKey,
    VerifyError,
};
use crate::Principal;

/// Longest token accepted; anything longer is refused before any decoding.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where the verification keys come from.
enum KeySource {
    Static(Arc<KeySet>),
    Jwks(Arc<JwksCache>),
}

/// Verifies JWTs: signature under an allowed algorithm for the key's family, then the claim
/// rules (expiry, not-before, issuer one-of, audience one-of, scopes).
pub struct JwtVerifier {
    keys: KeySource,
    algorithms: Vec<Algorithm>,
    rules: ClaimRules,
    /// The `typ` the header must carry, when one is required (RFC 8725 §3.11).
    token_type: Option<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.algorithms)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Errors building a [`JwtVerifier`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// No key source was given.
    #[error("no keys: give a JWKS URL, keys, or an HMAC secret")]
    MissingKeys,
    /// No audience was given, and checking it was not explicitly waived.
    #[error("no audience: tokens must be bound to this resource (RFC 8707); set an audience")]
    MissingAudience,
    /// The algorithm allow-list is empty.
    #[error("no algorithm allowed")]
    EmptyAlgorithmList,
}

/// Builds a [`JwtVerifier`].
#[derive(Default)]
pub struct JwtVerifierBuilder {
    jwks: Option<Arc<JwksCache>>,
    keys: KeySet,
    algorithms: Option<Vec<Algorithm>>,
    rules: ClaimRules,
    any_audience: bool,
    token_type: Option<String>,
}

impl std::fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifierBuilder").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

impl JwtVerifierBuilder {
    /// Keys from a JWKS URL, cached with the default [`JwksCacheConfig`].
    #[must_use]
    pub fn jwks_uri(self, url: impl Into<String>) -> Self {
        self.jwks_cache(Arc::new(JwksCache::new(url, JwksCacheConfig::default())))
    }

    /// Keys from a JWKS cache built by the caller (own tuning, or shared between verifiers).
    #[must_use]
    pub fn jwks_cache(mut self, cache: Arc<JwksCache>) -> Self {
        self.jwks = Some(cache);
        self
    }

    /// A key given directly (PEM, JWK or HMAC secret through [`VerificationKey`]).
    #[must_use]
    pub fn key(mut self, key: VerificationKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Every key of a set given directly: a JWKS document held in configuration
    /// ([`KeySet::from_jwks_json`]).
    #[must_use]
    pub fn key_set(mut self, set: KeySet) -> Self {
        self.keys.extend(set);
        self
    }

    /// Restricts the accepted algorithms (default: every algorithm the keys support).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Adds an accepted issuer (`iss` must be one of them).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.rules.issuers.push(issuer.into());
        self
    }

    /// Accepts issuers made from `template` by putting the token's `tid` claim in place of
    /// `{tenantid}` (Microsoft Entra's `common` and `organizations` endpoints).
    #[must_use]
    pub fn tenant_issuer(mut self, template: impl Into<String>) -> Self {
        self.rules.tenant_issuer = Some(template.into());
        self
    }

    /// Adds an accepted audience (`aud` must name one of them); normally the canonical URL of
    /// the protected resource.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules.audiences.push(audience.into());
        self
    }

    /// Accepts tokens issued to `client_id` (their `azp` or `client_id` claim) even when `aud`
    /// does not name this resource: for Keycloak and AWS Cognito, whose access tokens name the
    /// client rather than the API. Any token of that client is then accepted here.
    #[must_use]
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.rules.clients.push(client_id.into());
        self
    }

    /// Accepts tokens whatever their audience. Only for identity providers that cannot put the
    /// resource in `aud`; such tokens can be replayed against any resource trusting the issuer.
    #[must_use]
    pub fn insecure_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 60 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.leeway = leeway;
        self
    }

    /// The clock times are checked against (default: the system's).
    #[must_use]
    pub fn clock(mut self, clock: crate::clock::Clock) -> Self {
        self.rules.clock = clock;
        self
    }

    /// Where scopes are read from (default `scope`, else `scp`).
    #[must_use]
    pub fn scope_claim(mut self, claim: ScopeClaim) -> Self {
        self.rules.scope_claim = claim;
        self
    }

    /// Requires the header's `typ` to be `token_type` (with or without `application/`, in any
    /// case: RFC 7515 §4.1.9), so that a JWT made for another purpose is not taken for this one
    /// (RFC 8725 §3.11 explicit typing; e.g. `oauth-id-jag+jwt`).
    #[must_use]
    pub fn token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = Some(token_type.into());
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Result<JwtVerifier, JwtConfigError> {
        if self.rules.audiences.is_empty() && self.rules.clients.is_empty() && !self.any_audience {
            return Err(JwtConfigError::MissingAudience);
        }
        let keys = match (self.jwks, self.keys.is_empty()) {
            (Some(jwks), true) => KeySource::Jwks(jwks),
            (None, false) => KeySource::Static(Arc::new(self.keys)),
            (Some(_), false) | (None, true) => return Err(JwtConfigError::MissingKeys),
        };
        let algorithms = self.algorithms.unwrap_or_else(|| {
            let mut all = ASYMMETRIC_ALGS.to_vec();
            // HMAC only when a secret was configured directly: never from a JWKS.
            if let KeySource::Static(set) = &keys
                && set.allows_hmac()
            {
                all.extend_from_slice(HMAC_ALGS);
            }
            all
        });
        if algorithms.is_empty() {
            return Err(JwtConfigError::EmptyAlgorithmList);
        }
        Ok(JwtVerifier { keys, algorithms, rules: self.rules, token_type: self.token_type })
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    /// RFC 7515 §4.1.11: extensions the verifier must understand. We understand none, so a
    /// token that lists any (e.g. RFC 7797 unencoded payloads) is refused.
    crit: Option<Value>,
}

/// The three parts of a compact JWS.
struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> Compact<'a> {
    fn split(token: &'a str) -> Result<Self, InvalidToken> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(InvalidToken::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(InvalidToken::Malformed)?;
        if payload.contains('.') {
            return Err(InvalidToken::Malformed);
        }
        Ok(Self { header, payload, signing_input, signature })
    }
}

impl JwtVerifier {
    /// Starts a builder. Issuer and audience are required choices: `build` refuses a verifier
    /// without an audience unless told `insecure_any_audience()`.
    ///
    /// ```
    /// use mcpgate::verify::{JwtVerifier, TokenVerifier, VerificationKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let verifier = JwtVerifier::builder()
    ///     .key(VerificationKey::hmac(Some("k1".into()), b"a secret of at least 32 bytes!!!"))
    ///     .issuer("https://idp.example.com")
    ///     .audience("https://mcp.example.com/mcp")
    ///     .build()
    ///     .expect("a complete configuration");
    /// assert!(verifier.verify("not.a.token").await.is_err());
    /// assert!(JwtVerifier::builder().issuer("https://idp.example.com").build().is_err(), "no audience");
    /// # }
    /// ```
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// The claim rules in force.
    pub fn rules(&self) -> &ClaimRules {
        &self.rules
    }

    /// Reads the header: an algorithm that is not a JWS signature algorithm we know (`none`)
    /// is a refused algorithm, not a parse error.
    fn header(&self, encoded: &str) -> Result<(Algorithm, Option<String>), InvalidToken> {
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| InvalidToken::Malformed)?;
        let header: RawHeader = serde_json::from_slice(&json).map_err(|_| InvalidToken::Malformed)?;
        if header.crit.is_some() {
            return Err(InvalidToken::Malformed);
        }
        if let Some(wanted) = &self.token_type {
            let typ = header.typ.as_deref().unwrap_or_default();
            let bare =
                typ.get(..12).filter(|p| p.eq_ignore_ascii_case("application/")).map_or(typ, |_| &typ[12..]);
            if !bare.eq_ignore_ascii_case(wanted) {
                return Err(InvalidToken::WrongType);
            }
        }
        let alg = header.alg.parse::<Algorithm>().map_err(|_| InvalidToken::AlgorithmNotAllowed)?;
        Ok((alg, header.kid))
    }

    async fn key_set(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        match &self.keys {
            KeySource::Static(set) => Ok(set.clone()),
            KeySource::Jwks(cache) => cache.keys_for(kid).await,
        }
    }
}

#[async_trait]
impl TokenVerifier for JwtVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(InvalidToken::Malformed.into());
        }
        let jws = Compact::split(token)?;
        let (alg, kid) = self.header(jws.header)?;
        if !self.algorithms.contains(&alg) {
            return Err(InvalidToken::AlgorithmNotAllowed.into());
        }
        let signature = URL_SAFE_NO_PAD.decode(jws.signature).map_err(|_| InvalidToken::Malformed)?;
        let keys = self.key_set(kid.as_deref()).await?;
        let signed = keys
            .candidates(kid.as_deref(), alg)?
            .iter()
            .any(|key| key.verifies(alg, jws.signing_input.as_bytes(), &signature));
        if !signed {
            return Err(InvalidToken::BadSignature.into());
        }
        // Only a payload whose signature verified is parsed.
        let payload = URL_SAFE_NO_PAD.decode(jws.payload).map_err(|_| InvalidToken::Malformed)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| InvalidToken::Malformed)?;
        Ok(self.rules.principal(claims, self.rules.clock.unix_now())?)
    }
}
