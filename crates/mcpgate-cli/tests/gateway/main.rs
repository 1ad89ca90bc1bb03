//! `mcpgate serve` as a process, one test binary (one link on two cores): resource mode, proxy
//! mode against the real test IdP, the authorization policy, a third-party stdio server, and the
//! outside security review's findings (every test of those failed before its fix). Each module
//! says what it covers in its first lines.
//!
//! The modules that run Node (the test IdP, npm servers) or Python (the WSGI upstream) are behind
//! the `external-tests` feature, which `scripts/test.sh` turns on (with `--all-features`).

#[allow(dead_code)]
#[path = "../support/document_host.rs"]
mod document_host;
#[allow(dead_code)]
#[path = "../support/gateway.rs"]
mod gateway;
#[allow(dead_code)]
#[path = "../support/interop_targets.rs"]
mod interop_targets;
#[allow(dead_code)]
#[path = "../support/sign_in.rs"]
mod sign_in;
use mcpgate_test_support::{idp, oauth_client, process};

mod serve;

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
