//! mcpgate: OAuth 2.1 authentication and security for Model Context Protocol servers.
//!
//! - [`verify`]: token verifiers (JWT with JWKS, introspection, fixed tokens, chains) and the
//!   verified-token cache;
//! - [`resource`]: the protected resource — a bearer-token tower layer with MCP-correct
//!   challenges, and the RFC 9728 metadata routes;
//! - [`store`]: the key-value store (memory, SQLite, Redis) with atomic take and
//!   compare-and-swap; [`crypto`]: one root secret, derived keys, sealing, keyed digests;
//! - [`mcp`] (feature `rmcp`): reading the caller's [`Principal`] in rmcp tools, and the demo
//!   `whoami`/`echo` server.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod authz;
pub mod client_address;
pub mod clock;
pub mod crypto;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http_client;
#[cfg(feature = "rmcp")]
pub mod mcp;
mod metrics;
pub mod policy;
mod principal;
mod proxy;
pub mod ratelimit;
pub mod redirect;
pub mod resource;
pub mod scope;
pub mod store;
pub mod upstream;
pub mod verify;

pub use principal::{MissingPrincipal, Principal};
pub use proxy::{OAuthProxy, OAuthProxyBuilder, ProxyBuildError};
