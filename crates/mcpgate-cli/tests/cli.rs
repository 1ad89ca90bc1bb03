//! The `mcpgate` binary as a user runs it.

use std::process::Command;

use mcpgate::crypto::Keyring;

fn mcpgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcpgate")).args(args).output().unwrap()
}

#[test]
fn keygen_prints_a_usable_fresh_secret() {
    let first = mcpgate(&["keygen"]);
    assert!(first.status.success());
    let secret = String::from_utf8(first.stdout).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 43, "32 bytes in URL-safe base64");
    assert!(Keyring::parse(secret).is_ok(), "MCPGATE_SECRET accepts what keygen prints");
    let second = String::from_utf8(mcpgate(&["keygen"]).stdout).unwrap();
    assert_ne!(secret, second.trim());
}

#[test]
fn version_and_help() {
    let version = mcpgate(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8(version.stdout).unwrap().starts_with("mcpgate "));
    let no_args = mcpgate(&[]);
    assert!(!no_args.status.success());
    assert!(String::from_utf8(no_args.stderr).unwrap().contains("keygen"));
}
