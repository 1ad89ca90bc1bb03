//! The protected resource's front door (A2–A5, DNS rebinding): any `Authorization` and `Origin`
//! header values. No panic; only the exact bearer token (scheme in any case) is served; a
//! foreign origin never is; every refusal is 400, 401 or 403, and each `WWW-Authenticate` it
//! sends is `Bearer` with well-formed, quoted parameters.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use http::{HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use mcpgate::Principal;
use mcpgate::resource::ProtectedResource;
use mcpgate::verify::{FixedVerifier, TokenVerifier};
use tower::ServiceExt;

const TOKEN: &str = "valid-token-123";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let verifier: Arc<dyn TokenVerifier> = Arc::new(
            FixedVerifier::new().with_token(&secrecy::SecretString::from(TOKEN), Principal::new("alice")),
        );
        let served =
            tower::service_fn(|_: Request<Body>| async { Ok::<_, std::convert::Infallible>("served") });
        let router = ProtectedResource::new("https://mcp.example.com/mcp")
            .unwrap()
            .authorization_server("https://auth.example.com")
            .protect(verifier, served);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Fixture { runtime, router }
    })
}

/// Whether `value` is `Bearer` followed by comma-separated `name="quoted"` parameters.
fn well_formed_challenge(value: &str) -> bool {
    let Some(params) = value.strip_prefix("Bearer ") else { return value == "Bearer" };
    let mut rest = params;
    loop {
        let Some((name, after)) = rest.split_once("=\"") else { return false };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return false;
        }
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, c) if c.is_control() => return false,
                _ => {}
            }
        }
        let Some(end) = end else { return false };
        rest = &after[end + 1..];
        if rest.is_empty() {
            return true;
        }
        let Some(next) = rest.strip_prefix(", ") else { return false };
        rest = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (authorization, origin) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let mut request = Request::post("/mcp");
    let authorization = HeaderValue::from_bytes(authorization).ok();
    if let Some(value) = &authorization {
        request = request.header("authorization", value.clone());
    }
    let origin = (!origin.is_empty()).then(|| HeaderValue::from_bytes(origin).ok()).flatten();
    if let Some(value) = &origin {
        request = request.header("origin", value.clone());
    }
    let fixture = fixture();
    let response = fixture
        .runtime
        .block_on(fixture.router.clone().oneshot(request.body(Body::empty()).unwrap()))
        .unwrap();
    let status = response.status().as_u16();
    let exact = authorization.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split_once(' ')
            .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && token.trim() == TOKEN)
    });
    let foreign = origin.as_ref().is_some_and(|o| o.as_bytes() != b"https://mcp.example.com");
    if status == 200 {
        assert!(exact, "served without the token: {authorization:?}");
        let loopback = origin.as_ref().and_then(|o| o.to_str().ok()).is_some_and(|o| {
            [
                "http://localhost:",
                "https://localhost:",
                "http://127.0.0.1:",
                "https://127.0.0.1:",
                "http://[::1]:",
                "https://[::1]:",
            ]
            .iter()
            .any(|p| o.to_ascii_lowercase().starts_with(p))
        });
        assert!(!foreign || loopback, "served to origin {origin:?}");
    } else {
        assert!(matches!(status, 400 | 401 | 403), "answered {status}");
    }
    for challenge in response.headers().get_all("www-authenticate") {
        let challenge = challenge.to_str().expect("a challenge is ASCII");
        assert!(well_formed_challenge(challenge), "malformed challenge {challenge:?}");
    }
});
