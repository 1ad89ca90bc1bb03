//! `mcpgate`: the gateway binary. So far it generates root secrets (`keygen`); the gateway
//! commands (`serve`, `check`, `demo`) are built on the library in the issues that follow.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use mcpgate::crypto::RootSecret;
use secrecy::ExposeSecret;

/// OAuth 2.1 authentication and security for Model Context Protocol servers.
#[derive(Debug, Parser)]
#[command(name = "mcpgate", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a fresh random root secret (32 bytes, URL-safe base64) for MCPGATE_SECRET.
    ///
    /// To rotate, put the new secret first and keep the old one after a comma:
    /// MCPGATE_SECRET="<new>,<old>".
    Keygen,
}

fn main() {
    match Cli::parse().command {
        Command::Keygen => println!("{}", RootSecret::generate().to_base64().expose_secret()),
    }
}
