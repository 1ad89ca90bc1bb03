//! `mcpgate`: the gateway binary: `demo` (everything on one machine), `serve` (in front of a
//! Streamable HTTP upstream so far; stdio upstreams follow), `check`, `keygen`.
#![forbid(unsafe_code)]

mod app;
mod boot;
mod check;
mod config;
mod demo;
mod devidp;
mod exit;
mod fd_limit;
mod gateway;
mod guard;
mod headers;
mod health;
mod hop;
mod host_check;
mod identity;
mod listener;
mod metrics;
mod providers;
mod public_route;
mod serve;
mod shutdown;
mod stdio;
mod user_tokens;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Print a new API key on the first line and, on the second, the digest to configure as
    /// an [[auth.api_keys]] entry's `digest`.
    ///
    /// Give the key to its user once; the gateway keeps only the digest.
    Apikey,
    /// Check a configuration file: its keys, its secrets, and what the provider publishes.
    ///
    /// Exit status 0: all is well; 2: the configuration is wrong (each problem is named with
    /// its key and line); 1: something could not be reached.
    Check {
        /// The configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Try it all on this machine: an MCP server with `whoami` and `echo` behind mcpgate's
    /// OAuth proxy, with a development login page that takes any user name. State is kept
    /// in ./.mcpgate/.
    Demo {
        /// Port to listen on (127.0.0.1).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Log lines as text or JSON.
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Serve the gateway: OAuth in front of the upstream MCP server of the configuration.
    ///
    /// Exit status 2: the configuration is wrong; 1: something could not be reached or started.
    Serve {
        /// The configuration file (TOML); `mcpgate.example.toml` documents every key.
        #[arg(long)]
        config: PathBuf,
        /// Log lines as text or JSON.
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging to stderr (`RUST_LOG` filters; default `info`) in `format`, and a multi-threaded
/// runtime, for the commands that serve.
pub(crate) fn server_runtime(format: LogFormat) -> Result<tokio::runtime::Runtime, ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::from(exit::RUNTIME_FAILURE)
    })
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Keygen => {
            println!("{}", RootSecret::generate().to_base64().expose_secret());
            ExitCode::SUCCESS
        }
        Command::Apikey => {
            let (key, digest) = mcpgate::verify::new_api_key();
            println!("{}\n{digest}", key.expose_secret());
            ExitCode::SUCCESS
        }
        Command::Check { config } => check::run(&config),
        Command::Serve { config, log_format } => serve::run(&config, log_format),
        Command::Demo { port, log_format } => demo::run(port, log_format),
    }
}
