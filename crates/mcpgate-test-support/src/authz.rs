//! Authorization-server fixtures shared by the in-process tests.

use mcpgate::upstream::{IdentitySource, Upstream, UpstreamConfig};
use mcpgate::verify::ClientAuthMethod;
use secrecy::SecretString;

/// An upstream provider these tests never call: its authorization endpoint only appears in
/// redirects, at `authorization_endpoint`.
pub fn unreachable_upstream(authorization_endpoint: &str) -> Upstream {
    Upstream::new(UpstreamConfig {
        authorization_endpoint: authorization_endpoint.into(),
        token_endpoint: "https://idp.example/token".into(),
        revocation_endpoint: None,
        client_id: "mcpgate-at-idp".into(),
        client_secret: SecretString::from("s"),
        client_auth: ClientAuthMethod::ClientSecretBasic,
        scopes: vec!["openid".into(), "email".into()],
        extra_authorize_params: vec![],
        identity: IdentitySource::UserInfo {
            url: "https://idp.example/userinfo".into(),
            subject_claim: "sub".into(),
        },
        timeouts: Default::default(),
    })
}
