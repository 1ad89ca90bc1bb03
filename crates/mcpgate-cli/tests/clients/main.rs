//! Interoperability: real MCP clients and tools against mcpgate, one test binary (each module
//! is one client; see its first lines). Their packages are pinned in tests/interop, installed by
//! scripts/test.sh; they need Node, Python and Chromium, so the binary is empty without the
//! `external-tests` feature (which `scripts/test.sh` turns on).
#![cfg(feature = "external-tests")]

#[path = "../support/mod.rs"]
mod support;

use support::{interop_targets, oauth_client, process, sign_in};

mod chromium;
mod conformance;
mod conformance_servers;
mod mcp_remote;
mod python_sdk;
mod rmcp_client;
mod step_up;
mod typescript_sdk;
