//! `mcpgate`: the gateway binary. This first release only identifies itself; the gateway
//! (`serve`, `check`, `demo`, `keygen`) is built on the library in the issues that follow.
#![forbid(unsafe_code)]

use clap::Parser;

/// OAuth 2.1 authentication and security for Model Context Protocol servers.
#[derive(Debug, Parser)]
#[command(name = "mcpgate", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "mcpgate {}: the library is ready (see crates/mcpgate); the gateway commands are not built yet.",
        env!("CARGO_PKG_VERSION")
    );
}
