//! [`Clients`]: the one owner of client records. It finds a client wherever it comes from — the
//! operator's configuration (B6), a client ID metadata document (B5) or registration (B3) — and
//! holds the rules a client's metadata must meet, for registration and documents alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::cimd::{MetadataDocumentError, MetadataDocuments};
use super::client::{ClientRecord, ClientSource, GrantType, TokenEndpointAuthMethod};
use super::client_assertion::{AssertionError, ClientAssertions};
use super::display_text::disguise;
use crate::crypto::{KeyedMac, random_token};
use crate::error::{ErrorCode, OAuthError};
use crate::redirect::{ApplicationType, RedirectAllowList};
use crate::store::{Collection, Store, StoreError, StoreExt};

/// Where client records live.
const CLIENTS: Collection = Collection::new("clients");

const MAX_REDIRECT_URIS: usize = 20;
const MAX_NAME_CHARS: usize = 200;

/// The metadata mcpgate reads; other members are ignored (RFC 7591 §2 allows it).
#[derive(Debug, Deserialize)]
pub(crate) struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    client_name: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
}

pub(crate) fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// Why a client could not be looked up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientLookupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client's metadata document is unusable.
    #[error(transparent)]
    Document(#[from] MetadataDocumentError),
}

impl From<ClientLookupError> for OAuthError {
    fn from(e: ClientLookupError) -> Self {
        match e {
            ClientLookupError::Store(e) => e.into(),
            // At the token and revocation endpoints an unusable document is an unknown client.
            ClientLookupError::Document(e) => OAuthError::new(ErrorCode::InvalidClient, e.to_string()),
        }
    }
}

/// The clients of one authorization server.
pub(crate) struct Clients {
    store: Arc<dyn Store>,
    /// Digests client secrets, and checks them.
    digester: KeyedMac,
    /// Checks the assertions of clients that authenticate by their keys.
    assertions: ClientAssertions,
    rules: ClientRules,
}

/// What a client presented to authenticate at the token or revocation endpoint.
pub(crate) enum Credentials {
    /// Nothing: a public client.
    None,
    /// Its secret (HTTP Basic or the form).
    Secret(SecretString),
    /// A JWT signed by its key (`private_key_jwt`).
    Assertion(SecretString),
}

/// What [`Clients`] is built from: the settings that concern clients.
pub(crate) struct ClientRules {
    /// The operator's clients, by id (B6).
    pub configured: HashMap<String, ClientRecord>,
    /// Clients described by metadata documents (B5).
    pub documents: MetadataDocuments,
    /// Which redirect URIs a client may use, beyond the client-type rules.
    pub allowed_redirects: RedirectAllowList,
    /// The scopes a client's `scope` is narrowed to.
    pub scopes_supported: Vec<String>,
    /// How long a registered client through which no sign-in completed is kept.
    pub unconfirmed_ttl: Duration,
}

impl Clients {
    /// The clients kept in `store`, their secrets digested with `digester`, under `rules`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        digester: KeyedMac,
        assertions: ClientAssertions,
        rules: ClientRules,
    ) -> Self {
        Self { store, digester, assertions, rules }
    }

    /// Whether a configured client authenticates by its keys (`private_key_jwt`).
    pub(crate) fn any_with_keys(&self) -> bool {
        self.assertions.any()
    }

    /// Whether a configured client may use `grant`.
    pub(crate) fn configured_grant(&self, grant: GrantType) -> bool {
        self.rules.configured.values().any(|client| client.grant_types.contains(&grant))
    }

    /// Whether URL client ids (metadata documents) are accepted.
    pub(crate) fn documents_enabled(&self) -> bool {
        self.rules.documents.enabled()
    }

    /// The client with this id: configured, described by a metadata document (a URL id), or
    /// registered.
    pub(crate) async fn find(&self, client_id: &str) -> Result<Option<ClientRecord>, ClientLookupError> {
        if let Some(client) = self.rules.configured.get(client_id) {
            return Ok(Some(client.clone()));
        }
        if self.rules.documents.applies_to(client_id) {
            let validate = |document: serde_json::Value| {
                let request: RegistrationRequest =
                    serde_json::from_value(document).map_err(|e| format!("not client metadata: {e}"))?;
                self.validate(request, TokenEndpointAuthMethod::None).map_err(|e| e.description.into_owned())
            };
            return Ok(Some(self.rules.documents.client(client_id, validate).await?));
        }
        Ok(self.store.get_json::<ClientRecord>(CLIENTS, client_id).await?.map(|v| v.value))
    }

    /// Stores a newly registered client, with a secret when its method is confidential (only its
    /// digest is kept; the secret is returned, to hand out once). The record is kept for good
    /// only once a sign-in through it completes ([`Clients::confirm`]).
    pub(crate) async fn register(
        &self,
        mut client: ClientRecord,
    ) -> Result<(ClientRecord, Option<SecretString>), OAuthError> {
        let secret = client.auth_method.uses_secret().then(random_token);
        if let Some(secret) = &secret {
            client.secret_digest = Some(self.digester.tag(secret.expose_secret().as_bytes()).to_base64());
        }
        let ttl = Some(self.rules.unconfirmed_ttl);
        if self.store.put_json_if_absent(CLIENTS, &client.client_id, &client, ttl).await?.is_none() {
            // 256-bit random ids do not collide; if one ever did, refuse rather than overwrite.
            return Err(OAuthError::new(ErrorCode::ServerError, "client id collision"));
        }
        Ok((client, secret))
    }

    /// The client `client_id`, authenticated (D2) by the one way it may: a secret (its digest
    /// compared in constant time), an assertion signed by its key, or — a public client —
    /// nothing. A failure of a secret is the same `invalid_client` whatever went wrong, so
    /// nothing tells an unknown client from a wrong secret; an assertion's says what failed
    /// (RFC 7523 §3.2), since its author has to know and an outsider learns nothing secret.
    pub(crate) async fn authenticate(
        &self,
        client_id: &str,
        credentials: Credentials,
    ) -> Result<ClientRecord, OAuthError> {
        let refused = || OAuthError::new(ErrorCode::InvalidClient, "client authentication failed");
        let client = self.find(client_id).await?.ok_or_else(refused)?;
        match (client.auth_method, credentials) {
            (TokenEndpointAuthMethod::None, Credentials::None) if client.secret_digest.is_none() => {
                Ok(client)
            }
            (method, Credentials::Secret(secret)) if method.uses_secret() => {
                let digest = client.secret_digest.as_deref().ok_or_else(refused)?;
                let digest = URL_SAFE_NO_PAD.decode(digest).map_err(|_| refused())?;
                if self.digester.verify(secret.expose_secret().as_bytes(), &digest) {
                    Ok(client)
                } else {
                    Err(refused())
                }
            }
            (TokenEndpointAuthMethod::PrivateKeyJwt, Credentials::Assertion(assertion)) => {
                match self.assertions.verify(&client.client_id, &assertion).await {
                    Ok(()) => Ok(client),
                    Err(AssertionError::Store(e)) => Err(e.into()),
                    Err(e) => {
                        tracing::debug!(client_id = %client.client_id, reason = %e, "client assertion refused");
                        Err(OAuthError::new(ErrorCode::InvalidClient, e.to_string()))
                    }
                }
            }
            // Another way than the client's own: a secret for a public client, none for a
            // confidential one, a secret where keys are due or the reverse.
            _ => Err(refused()),
        }
    }

    /// Keeps a registered client for good: a sign-in through it completed. Others are left as
    /// they are.
    pub(crate) async fn confirm(&self, client: &ClientRecord) -> Result<(), StoreError> {
        if client.source != ClientSource::Dynamic || client.confirmed {
            return Ok(());
        }
        let confirmed = ClientRecord { confirmed: true, ..client.clone() };
        self.store.put_json(CLIENTS, &client.client_id, &confirmed, None).await?;
        Ok(())
    }

    /// Validates client metadata into a client record (secret digest not yet set), for
    /// registration and for metadata documents; `default_auth` applies when the metadata names
    /// no token endpoint authentication method.
    pub(crate) fn validate(
        &self,
        request: RegistrationRequest,
        default_auth: TokenEndpointAuthMethod,
    ) -> Result<ClientRecord, OAuthError> {
        let auth_method = match request.token_endpoint_auth_method.as_deref() {
            None => default_auth,
            Some(name) => TokenEndpointAuthMethod::parse(name).ok_or_else(|| {
                metadata_error(
                    "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic",
                )
            })?,
        };
        if auth_method == TokenEndpointAuthMethod::PrivateKeyJwt {
            // Keys are the operator's to configure: registration takes no jwks.
            return Err(metadata_error("private_key_jwt is for clients the operator configures"));
        }
        let grant_types = match request.grant_types {
            None => vec![GrantType::AuthorizationCode],
            Some(names) => {
                names.iter().map(|n| GrantType::parse(n)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    metadata_error("grant_types may contain authorization_code and refresh_token only")
                })?
            }
        };
        if grant_types.contains(&GrantType::ClientCredentials) {
            // A machine client's tokens name no person: only the operator may create one.
            return Err(metadata_error("client_credentials is for clients the operator configures"));
        }
        if grant_types.contains(&GrantType::JwtBearer) {
            // It signs people in without asking them: the operator decides which clients may.
            return Err(metadata_error("the jwt-bearer grant is for clients the operator configures"));
        }
        if !grant_types.contains(&GrantType::AuthorizationCode) {
            return Err(metadata_error("grant_types must include authorization_code"));
        }
        match request.response_types.as_deref() {
            None => {}
            Some(types) if !types.is_empty() && types.iter().all(|t| t == "code") => {}
            Some(_) => return Err(metadata_error("response_types must be [\"code\"]")),
        }
        let application_type = match request.application_type.as_deref() {
            None | Some("native") => ApplicationType::Native,
            Some("web") => ApplicationType::Web,
            Some(_) => return Err(metadata_error("application_type must be native or web")),
        };
        let client_name = match request.client_name {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(metadata_error("client_name is too long"));
            }
            Some(name) => {
                // The consent page shows it: nothing that disguises what the user reads.
                if let Some(why) = disguise(&name) {
                    return Err(metadata_error(format!("client_name holds {why}")));
                }
                Some(name).filter(|n| !n.trim().is_empty())
            }
            None => None,
        };

        let raw_uris = request.redirect_uris.unwrap_or_default();
        if raw_uris.is_empty() {
            return Err(OAuthError::new(ErrorCode::InvalidRedirectUri, "redirect_uris is required"));
        }
        if raw_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::new(ErrorCode::InvalidRedirectUri, "too many redirect_uris"));
        }
        let redirect_uris = raw_uris
            .iter()
            .map(|raw| self.rules.allowed_redirects.validate(raw, application_type))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e.to_string()))?;

        // Registration never widens what the server allows (C4): keep the supported ones.
        let scope = request.scope.map(|requested| {
            requested
                .split_ascii_whitespace()
                .filter(|s| self.rules.scopes_supported.iter().any(|supported| supported == s))
                .collect::<Vec<_>>()
                .join(" ")
        });

        Ok(ClientRecord {
            client_id: random_token().expose_secret().to_owned(),
            secret_digest: None,
            auth_method,
            redirect_uris,
            grant_types,
            application_type,
            client_name,
            scope: scope.filter(|s| !s.is_empty()),
            // When it registered, by the system clock: shown to the client, never compared.
            issued_at: crate::clock::Clock::system().unix_now(),
            source: ClientSource::Dynamic,
            confirmed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::spent_assertions::SpentAssertions;
    use crate::clock::Clock;
    use crate::crypto::{Keyring, RootSecret};
    use crate::store::MemoryStore;

    fn clients() -> Clients {
        let keyring = Keyring::new(RootSecret::generate(), vec![]);
        let rules = ClientRules {
            configured: HashMap::new(),
            documents: MetadataDocuments::new(Default::default()),
            allowed_redirects: RedirectAllowList::any(),
            scopes_supported: vec!["mcp".into()],
            unconfirmed_ttl: Duration::from_secs(3600),
        };
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let spent = SpentAssertions::new(store.clone(), keyring.digester(), Clock::system());
        let assertions = ClientAssertions::new(&[], "https://as.example", spent, &Clock::system()).unwrap();
        Clients::new(store, keyring.digester(), assertions, rules)
    }

    fn request(json: serde_json::Value) -> RegistrationRequest {
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn a_registered_client_keeps_only_its_secrets_digest_and_is_confirmed_once() {
        let clients = clients();
        let metadata = request(serde_json::json!({
            "redirect_uris": ["http://127.0.0.1:9/cb"], "scope": "mcp admin",
            "token_endpoint_auth_method": "client_secret_post"}));
        let client = clients.validate(metadata, TokenEndpointAuthMethod::ClientSecretBasic).unwrap();
        assert_eq!(client.scope.as_deref(), Some("mcp"), "registration never widens the scopes");
        let (client, secret) = clients.register(client).await.unwrap();
        let secret = secret.expect("a confidential client gets a secret");
        let stored = clients.find(&client.client_id).await.unwrap().unwrap();
        let digest = stored.secret_digest.as_deref().unwrap();
        assert!(!digest.contains(secret.expose_secret()));
        assert!(!stored.confirmed);
        // Its secret, and nothing else, authenticates it; every refusal reads the same.
        let id = &client.client_id;
        assert!(clients.authenticate(id, Credentials::Secret(secret.clone())).await.is_ok());
        for (who, presented) in [
            (id.as_str(), Credentials::Secret(SecretString::from("wrong"))),
            (id.as_str(), Credentials::None),
            (id.as_str(), Credentials::Assertion(SecretString::from("a.b.c"))),
            ("nobody", Credentials::Secret(secret.clone())),
        ] {
            let refused = clients.authenticate(who, presented).await.unwrap_err();
            assert_eq!(
                (refused.code, refused.description.as_ref()),
                (ErrorCode::InvalidClient, "client authentication failed")
            );
        }
        clients.confirm(&stored).await.unwrap();
        assert!(clients.find(&client.client_id).await.unwrap().unwrap().confirmed);
    }

    #[tokio::test]
    async fn unknown_ids_are_none_and_bad_metadata_is_refused_with_its_code() {
        let clients = clients();
        assert!(clients.find("nobody").await.unwrap().is_none());
        let no_uris = clients.validate(request(serde_json::json!({})), TokenEndpointAuthMethod::None);
        assert_eq!(no_uris.unwrap_err().code, ErrorCode::InvalidRedirectUri);
        let disguised = request(serde_json::json!({
            "redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "Safe\u{202e}tnemyap"}));
        let refused = clients.validate(disguised, TokenEndpointAuthMethod::None).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidClientMetadata);
    }
}
