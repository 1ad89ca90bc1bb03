//! mcpgate: OAuth 2.1 authentication and authorization for Model Context Protocol servers.
//!
//! Protecting a server:
//! - [`verify`]: token verifiers (JWT with JWKS, introspection, API keys, fixed tokens, chains,
//!   a router sending each token to its issuer's verifier) and the verified-token cache;
//!   [`Principal`]: the verified caller, an axum extractor;
//! - [`resource`]: the protected resource — a bearer-token tower layer with MCP-correct
//!   challenges, `Origin` checks, session binding and the RFC 9728 metadata routes;
//! - [`policy`]: who may call which tool, prompt or resource (rules, CEL conditions, step-up),
//!   as a tower layer; [`scope`]: scope hierarchies; [`audit`]: the decisions' audit trail;
//! - [`mcp`] (feature `rmcp`): reading the caller in rmcp tools, and the demo `whoami`/`echo`
//!   server.
//!
//! Being the authorization server:
//! - [`authz`]: the OAuth 2.1 server towards MCP clients (registration, metadata documents,
//!   consent, tokens, revocation, machine clients, enterprise identity assertions, downstream
//!   token exchange), signing users in at an identity provider from [`upstream`];
//!   [`OAuthProxy`] puts it and the protected resource together; [`redirect`]: redirect-URI
//!   rules; [`error`]: its OAuth error codes and JSON answers;
//! - [`store`]: the key-value store (memory, SQLite, Redis) with atomic take and
//!   compare-and-swap; [`crypto`]: one root secret, derived keys, sealing, keyed digests;
//! - [`client_address`]: who the client is behind trusted proxies; [`clock`]: the time of
//!   day, which tests can move; [`OutboundTimeouts`]: how long calls to identity providers may
//!   take (every outbound call is bounded in time and size by one crate-private client).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
#[cfg(feature = "proxy")]
pub mod authz;
pub mod client_address;
pub mod clock;
pub mod crypto;
#[cfg(feature = "proxy")]
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http_client;
#[cfg(feature = "rmcp")]
pub mod mcp;
mod metrics;
pub mod policy;
mod principal;
#[cfg(feature = "proxy")]
mod proxy;
#[cfg(feature = "proxy")]
pub mod ratelimit;
#[cfg(feature = "proxy")]
pub mod redirect;
pub mod resource;
pub mod scope;
pub mod store;
#[cfg(feature = "proxy")]
pub mod upstream;
pub mod verify;

pub use http_client::OutboundTimeouts;
pub use principal::{CLIENT_KIND_CLAIM, ClientKind, MissingPrincipal, Principal, RESERVED_CLAIMS};
#[cfg(feature = "proxy")]
pub use proxy::{OAuthProxy, OAuthProxyBuilder, ProxyBuildError};
