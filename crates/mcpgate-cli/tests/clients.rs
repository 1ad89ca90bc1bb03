//! Interoperability: real MCP clients and tools against mcpgate, one test binary (each module
//! is one client; see its first lines). Their packages are pinned in tests/interop, installed by
//! scripts/test.sh.

#[allow(dead_code)]
mod document_host;
#[allow(dead_code)]
mod gateway;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/idp.rs"]
mod idp;
#[allow(dead_code)]
mod interop_targets;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/oauth_client.rs"]
mod oauth_client;
#[allow(dead_code)]
#[path = "../../mcpgate/tests/common/process.rs"]
mod process;
#[allow(dead_code)]
mod sign_in;

#[path = "clients/chromium.rs"]
mod chromium;
#[path = "clients/conformance.rs"]
mod conformance;
#[path = "clients/mcp_remote.rs"]
mod mcp_remote;
#[path = "clients/python_sdk.rs"]
mod python_sdk;
#[path = "clients/rmcp_client.rs"]
mod rmcp_client;
#[path = "clients/step_up.rs"]
mod step_up;
#[path = "clients/typescript_sdk.rs"]
mod typescript_sdk;
