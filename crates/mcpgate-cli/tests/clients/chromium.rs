//! A real browser: headless Chromium (Debian's `chromium`, driven by playwright-core, pinned in
//! tests/interop) completes one sign-in at `mcpgate demo` by clicking through the consent page and
//! the development login page (`tests/interop/chromium_flow.mjs`), so the browser-binding
//! cookie, the redirects and the pages' Content-Security-Policy are shown to hold in a browser.
//! The consent page's screenshot is kept as an artifact: target/tmp/interop/consent.png.

use std::path::{Path, PathBuf};

#[tokio::test]
async fn chromium_signs_in_by_clicking_through_the_pages() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run scripts/test.sh (it installs it)"
    );
    assert!(
        crate::interop_targets::interop_dir().join("node_modules/playwright-core").exists(),
        "run scripts/test.sh (npm ci in tests/interop)"
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("consent.png");
    let _ = std::fs::remove_file(&screenshot);

    let target = crate::interop_targets::demo().await;
    let mut command = std::process::Command::new("node");
    command.arg("chromium_flow.mjs").arg(&target.mcp_url).arg("uma").arg(&screenshot);
    command.current_dir(crate::interop_targets::interop_dir());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the Chromium flow failed:\n{stderr}\n{stdout}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["consentTitle"], "Allow access?");
    assert_eq!(seen["cspViolations"], serde_json::json!([]));
    assert_eq!(seen["mcpStatus"], 200);
    // The browser held the CSRF cookie and the transaction's binding cookie.
    let cookies = seen["cookies"].as_array().unwrap();
    assert!(cookies.iter().any(|c| c.as_str().unwrap().starts_with("mcpgate-bind-")), "{seen}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 1000, "the consent page's screenshot");
}
