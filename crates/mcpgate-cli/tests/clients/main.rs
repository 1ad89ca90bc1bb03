//! Interoperability: real MCP clients and tools against mcpgate, one test binary (each module
//! is one client; see its first lines). Their packages are pinned in tests/interop, installed by
//! scripts/test.sh; they need Node, Python and Chromium, so the binary is empty without the
//! `external-tests` feature (which `scripts/test.sh` turns on).
#![cfg(feature = "external-tests")]

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

mod chromium;
mod conformance;
mod mcp_remote;
mod python_sdk;
mod rmcp_client;
mod step_up;
mod typescript_sdk;
