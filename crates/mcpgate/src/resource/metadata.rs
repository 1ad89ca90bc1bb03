//! RFC 9728 protected-resource metadata (A1), served at the path-inserted form for the resource's
//! path and (unless one host has several) at the root well-known path, with CORS open.

use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::cors::{Any, CorsLayer};

use super::{METADATA_PATH, ProtectedResource};

/// The metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMetadata {
    /// The canonical resource URL.
    pub resource: String,
    /// Issuers of the authorization servers that issue tokens for this resource.
    pub authorization_servers: Vec<String>,
    /// Scopes clients may request.
    pub scopes_supported: Vec<String>,
    /// How tokens may be presented: the header only.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

impl ProtectedResource {
    /// The metadata document of this resource.
    pub fn metadata(&self) -> ResourceMetadata {
        ResourceMetadata {
            resource: self.resource.clone(),
            authorization_servers: self.authorization_servers.clone(),
            scopes_supported: self.scopes_supported.clone(),
            bearer_methods_supported: vec!["header".into()],
            resource_name: self.resource_name.clone(),
        }
    }

    /// Routes serving the metadata at `/.well-known/oauth-protected-resource` (unless
    /// [`metadata_at_root`](ProtectedResource::metadata_at_root) says not) and at
    /// `/.well-known/oauth-protected-resource<resource path>`. Merge them at the root of the
    /// server's router, outside the bearer layer.
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let document = Json(self.metadata());
        let handler = get(move || {
            let document = document.clone();
            async move { document }
        });
        let mut router = Router::new();
        if self.metadata_at_root || self.path.is_empty() {
            router = router.route(METADATA_PATH, handler.clone());
        }
        if !self.path.is_empty() {
            router = router.route(&format!("{METADATA_PATH}{}", self.path), handler);
        }
        router.layer(CorsLayer::new().allow_origin(Any).allow_methods(Any).allow_headers(Any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_access_is_never_published_and_scopes_are_not_repeated() {
        let r = ProtectedResource::new("https://mcp.example.com/mcp/")
            .unwrap()
            .authorization_server("https://as.example.com")
            .scope_supported("offline_access")
            .scope_supported("read")
            .required_scope("read")
            .required_scope("write");
        let m = r.metadata();
        assert_eq!(m.resource, "https://mcp.example.com/mcp");
        assert_eq!(m.scopes_supported, ["read", "write"]);
        assert_eq!(r.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    }

    #[test]
    fn resource_urls_must_be_plain_absolute_urls() {
        for bad in
            ["/mcp", "ftp://x/mcp", "https://x/mcp?a=1", "https://x/mcp#f", "https://u:p@x/mcp", "nonsense"]
        {
            assert!(ProtectedResource::new(bad).is_err(), "{bad}");
        }
        let root = ProtectedResource::new("https://x.example").unwrap();
        assert_eq!(root.metadata_url(), "https://x.example/.well-known/oauth-protected-resource");
    }
}
