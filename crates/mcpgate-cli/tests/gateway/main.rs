//! `mcpgate serve` as a process, one test binary (one link on two cores): resource mode, proxy
//! mode against the real test IdP, the authorization policy, a third-party stdio server, and the
//! outside security review's findings (every test of those failed before its fix). Each module
//! says what it covers in its first lines.
//!
//! The modules that run Node (the test IdP, npm servers) or Python (the WSGI upstream) are behind
//! the `external-tests` feature, which `scripts/test.sh` turns on (with `--all-features`).

#[path = "../support/mod.rs"]
mod support;

use support::{gateway, process};
#[cfg(feature = "external-tests")]
use support::{idp, interop_targets, oauth_client, sign_in};

mod api_keys;
mod reload;
mod routes;
mod serve;
mod sessionless;

#[cfg(feature = "external-tests")]
mod boot;
#[cfg(feature = "external-tests")]
mod client_names;
#[cfg(feature = "external-tests")]
mod consent;
#[cfg(feature = "external-tests")]
mod everything;
#[cfg(feature = "external-tests")]
mod policy;
#[cfg(feature = "external-tests")]
mod rebinding;
#[cfg(feature = "external-tests")]
mod registration;
#[cfg(feature = "external-tests")]
mod serve_proxy;
#[cfg(feature = "external-tests")]
mod upstream_headers;
