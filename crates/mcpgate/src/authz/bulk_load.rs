//! The benchmarks' bulk loader (feature `bench-support`, not a public API): fills a store with
//! registered clients and live grants, written by the record owners ([`Clients`], [`Grants`])
//! exactly as the endpoints write them — keys, hash tags, TTLs and sealing included — instead
//! of by SQL or Redis commands that would drift from what a real deployment holds.
//!
//! [`Clients`]: super::clients::Clients
//! [`Grants`]: super::grants::Grants

use futures::{StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::AuthServer;
use super::client::TokenEndpointAuthMethod;
use super::clients::RegistrationRequest;
use super::grants::{GrantError, GrantRequest};
use crate::crypto::random_token;
use crate::store::StoreError;
use crate::upstream::{UpstreamIdentity, UpstreamTokens};

/// What to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkLoad {
    /// Registered clients through which a sign-in completed (kept for good).
    pub clients: usize,
    /// Grants redeemed, each with its refresh family: a user signed in through one of the
    /// loaded clients.
    pub grants: usize,
    /// Registered clients no sign-in confirmed: they expire after the server's
    /// `unconfirmed_client_ttl`, all at about the same moment.
    pub unconfirmed_clients: usize,
    /// Writes in flight at once.
    pub concurrency: usize,
}

/// Why loading stopped.
#[derive(Debug, thiserror::Error)]
pub enum BulkLoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record the endpoints would refuse (a defect of the loader).
    #[error("the loader's records are refused: {0}")]
    Refused(String),
}

impl From<GrantError> for BulkLoadError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Store(e) => Self::Store(e),
            other => Self::Refused(other.to_string()),
        }
    }
}

impl AuthServer {
    /// Loads `load` into this server's store through its record owners. Clients are named
    /// `bulk-<n>` in their `client_name`; grant `n` belongs to client `n % clients` and user
    /// `bulk-user-<n>`.
    #[doc(hidden)]
    pub async fn bulk_load(&self, load: BulkLoad) -> Result<(), BulkLoadError> {
        let width = load.concurrency.max(1);
        let clients: Vec<String> = futures::stream::iter(0..load.clients)
            .map(|n| self.load_client(n, true))
            .buffered(width)
            .try_collect()
            .await?;
        futures::stream::iter(0..load.unconfirmed_clients)
            .map(|n| self.load_client(load.clients + n, false))
            .buffer_unordered(width)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        if load.grants > 0 && clients.is_empty() {
            return Err(BulkLoadError::Refused("grants need clients to belong to".into()));
        }
        futures::stream::iter(0..load.grants)
            .map(|n| self.load_grant(n, n % clients.len().max(1), &clients))
            .buffer_unordered(width)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// Registers client `n` as `POST /register` would; confirmed as a completed sign-in would.
    async fn load_client(&self, n: usize, confirmed: bool) -> Result<String, BulkLoadError> {
        let metadata = json!({
            "redirect_uris": [format!("http://127.0.0.1:9/bulk/{n}")],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": format!("bulk-{n}"),
        });
        let refused = |e: String| BulkLoadError::Refused(e);
        let request: RegistrationRequest =
            serde_json::from_value(metadata).map_err(|e| refused(e.to_string()))?;
        let clients = &self.inner.clients;
        let client = clients
            .validate(request, TokenEndpointAuthMethod::None)
            .map_err(|e| refused(e.description.into_owned()))?;
        let (client, _) = clients.register(client).await.map_err(|e| refused(e.description.into_owned()))?;
        if confirmed {
            clients.confirm(&client).await?;
        }
        Ok(client.client_id)
    }

    /// Grant `n` of loaded client `c`: created at the callback, its code redeemed, its family
    /// started. Its first refresh token.
    async fn load_grant(
        &self,
        n: usize,
        c: usize,
        clients: &[String],
    ) -> Result<SecretString, BulkLoadError> {
        let client_id = clients[c].as_str();
        let grants = &self.inner.grants;
        let identity = UpstreamIdentity {
            subject: format!("bulk-user-{n}"),
            email: Some(format!("bulk-user-{n}@example.com")),
            email_verified: true,
            name: Some(format!("Bulk User {n}")),
            username: None,
            groups: vec![],
            claims: Default::default(),
        };
        let tokens = UpstreamTokens {
            access_token: random_token(),
            refresh_token: Some(random_token()),
            expires_at: None,
            id_token: None,
            scope: None,
            response: Default::default(),
        };
        let scopes = self.inner.settings.scopes_supported.clone();
        let resource = self.inner.settings.resources.first().cloned().unwrap_or_default();
        let redirect_uri = format!("http://127.0.0.1:9/bulk/{c}");
        let request = GrantRequest {
            client_id,
            redirect_uri: &redirect_uri,
            code_challenge: "bulk",
            resource: &resource,
            scopes: &scopes,
        };
        let code: SecretString = grants.create(request, identity, &tokens).await?;
        let found = grants.find_code(code.expose_secret(), client_id).await?;
        let grant = grants.redeem(found).await?;
        Ok(grants.start_family(&grant, &scopes).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::authz::AuthServerSettings;
    use crate::authz::grants::REFRESH_TOKEN_TTL;
    use crate::crypto::{Keyring, RootSecret};
    use crate::store::MemoryStore;
    use crate::upstream::{IdentitySource, Upstream, UpstreamConfig};
    use crate::verify::ClientAuthMethod;

    fn server() -> AuthServer {
        let upstream = Upstream::new(UpstreamConfig {
            authorization_endpoint: "https://idp.example/authorize".into(),
            token_endpoint: "https://idp.example/token".into(),
            revocation_endpoint: None,
            client_id: "mcpgate".into(),
            client_secret: SecretString::from("unused"),
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: vec![],
            extra_authorize_params: vec![],
            identity: IdentitySource::UserInfo {
                url: "https://idp.example/me".into(),
                subject_claim: "sub".into(),
            },
            timeouts: Default::default(),
        });
        let mut settings = AuthServerSettings::new("https://auth.example.com", "https://mcp.example.com/mcp");
        settings.scopes_supported = vec!["mcp:read".into()];
        let keyring = Keyring::new(RootSecret::generate(), vec![]);
        AuthServer::new(settings, Arc::new(MemoryStore::new()), &keyring, upstream).unwrap()
    }

    #[tokio::test]
    async fn loaded_records_are_the_ones_the_endpoints_find_and_use() {
        let server = server();
        let clients = &server.inner.clients;
        let kept = server.load_client(0, true).await.unwrap();
        let pending = server.load_client(1, false).await.unwrap();
        let found = clients.find(&kept).await.unwrap().unwrap();
        assert!(found.confirmed);
        assert_eq!(found.client_name.as_deref(), Some("bulk-0"));
        assert!(!clients.find(&pending).await.unwrap().unwrap().confirmed);

        // The grant's refresh token works at its client, as one from a real sign-in does.
        let token = server.load_grant(7, 0, std::slice::from_ref(&kept)).await.unwrap();
        let refresh = server.inner.grants.refresh(token.expose_secret(), &kept).await.unwrap();
        assert_eq!(refresh.grant.value.subject, "bulk-user-7");
        assert_eq!(refresh.grant.value.resource, "https://mcp.example.com/mcp");
        let now = server.inner.settings.clock.unix_now();
        assert!(refresh.grant.value.expires_at.unwrap() > now + REFRESH_TOKEN_TTL.as_secs());
    }

    #[tokio::test]
    async fn a_whole_load_completes_and_grants_without_clients_are_refused() {
        let server = server();
        let load = BulkLoad { clients: 12, grants: 30, unconfirmed_clients: 3, concurrency: 4 };
        server.bulk_load(load).await.unwrap();
        let orphans = BulkLoad { grants: 1, ..BulkLoad::default() };
        assert!(matches!(server.bulk_load(orphans).await, Err(BulkLoadError::Refused(_))));
    }
}
