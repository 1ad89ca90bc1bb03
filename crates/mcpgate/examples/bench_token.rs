//! Prints a JWKS and a matching RS256 access token (valid one hour) for load tests of the
//! `resource_server` example; used by `scripts/bench-http.sh`. The key is the test suite's
//! throw-away key, never a real one.
//!
//! ```text
//! cargo run -p mcpgate --example bench_token -- <issuer> <audience> <jwks-file> <token-file>
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, audience, jwks_file, token_file] = args.as_slice() else {
        return Err("usage: bench_token <issuer> <audience> <jwks-file> <token-file>".into());
    };
    let key = EncodingKey::from_rsa_pem(include_bytes!("../../mcpgate-test-support/keys/rsa.pem"))?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some("bench".into());
    std::fs::write(jwks_file, serde_json::to_vec(&JwkSet { keys: vec![jwk] })?)?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "iss": issuer, "sub": "bench-user", "aud": audience, "client_id": "bench-client",
        "scope": "mcp:read mcp:write", "iat": now, "exp": now + 3600,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench".into());
    std::fs::write(token_file, jsonwebtoken::encode(&header, &claims, &key)?)?;
    Ok(())
}
