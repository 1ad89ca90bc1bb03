//! The protected-resource side, one test binary (one link on two cores): token verifiers, the
//! bearer layer over real HTTP, the policy layer, and the resource-server example as a process.
//! Each module says what it covers in its first lines.

mod example_server;
mod introspection;
mod jwt;
mod policy_layer;
mod resource_http;
