//! The `mcpgate` binary as a user runs it, one test binary (one link on two cores) of the parts
//! that need only Rust: the commands (`keygen`, `check`, …), `mcpgate demo` as a newcomer runs
//! it, each built-in provider against its fake, and stdio MCP servers behind the gateway. Each
//! module says what it covers in its first lines.

#[path = "../support/mod.rs"]
mod support;

use mcpgate_test_support::{fake_github, fake_oidc, provider_flow};
use support::{gateway, oauth_client, process, sign_in};

mod commands;
mod demo;
mod providers;
mod stdio;
