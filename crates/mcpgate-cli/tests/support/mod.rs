//! The gateway tests' own helpers, beside the shared fixtures of `mcpgate-test-support`:
//! starting the `mcpgate` binary (which only this crate's tests can name), signing a user in
//! through it, the MCP clients' targets and an https document host. Each test binary includes
//! this module and uses what it needs.
#![allow(dead_code)]

pub use mcpgate_test_support::{idp, oauth_client, process};

pub mod document_host;
pub mod gateway;
pub mod interop_targets;
pub mod sign_in;
