//! The outside security review's findings, each through the real `mcpgate` binary (one module
//! per area; see its first lines). Every test here failed before its fix.

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

#[path = "security/boot.rs"]
mod boot;
#[path = "security/client_names.rs"]
mod client_names;
#[path = "security/consent.rs"]
mod consent;
#[path = "security/rebinding.rs"]
mod rebinding;
#[path = "security/registration.rs"]
mod registration;
#[path = "security/upstream_headers.rs"]
mod upstream_headers;
