//! The authorization-server side, one test binary (one link on two cores): `/authorize` and
//! consent, metadata documents, rate limits, machine clients, registration, a misbehaving provider and each
//! built-in provider against its fake. Each module says what it covers in its first lines.
//!
//! The modules that run the real test IdP (oidc-provider on Node) are behind the
//! `external-tests` feature, which `scripts/test.sh` turns on (with `--all-features`); plain
//! `cargo test` runs the rest on a machine with only Rust.

mod authorize;
mod cimd;
mod downstream;
mod enterprise;
mod limits;
mod machine;
mod provider_discord;
mod provider_entra;
mod provider_github;
mod provider_google;
mod provider_oidc_apps;
mod register;
mod several_resources;
mod upstream_failures;

#[cfg(feature = "external-tests")]
mod example_oauth_proxy;
#[cfg(feature = "external-tests")]
mod flow;
#[cfg(feature = "external-tests")]
mod idp_harness;
#[cfg(feature = "external-tests")]
mod upstream_oidc;
