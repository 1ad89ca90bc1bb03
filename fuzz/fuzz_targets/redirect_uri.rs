//! Redirect URIs and the operator's allow-list patterns (B4): no panic on any input; an
//! accepted URI parses again as itself; it has no user info and no forbidden scheme; a web
//! client's is https; and what the allow-list decides for the URI as written it decides for
//! the URI as a browser normalises it — so no spelling lets a refused target through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate::redirect::{ApplicationType, RedirectAllowList, RedirectError, RedirectUri};

const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "file", "vbscript", "about", "blob"];

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let allowed = RedirectAllowList::only([
        "http://127.0.0.1:*/callback",
        "https://*.example.com/cb",
        "com.example.app:/oauth*",
    ]);
    for app in [ApplicationType::Native, ApplicationType::Web] {
        let Ok(uri) = RedirectUri::parse(raw, app) else { continue };
        let again = RedirectUri::parse(uri.as_str(), app).expect("an accepted URI parses again");
        assert_eq!(again.as_str(), uri.as_str());
        let url = url::Url::parse(uri.as_str()).expect("an accepted URI is a URL");
        assert!(url.username().is_empty() && url.password().is_none(), "user info in {raw:?}");
        assert!(!FORBIDDEN_SCHEMES.contains(&url.scheme()), "scheme of {raw:?}");
        if app == ApplicationType::Web {
            assert_eq!(url.scheme(), "https", "{raw:?}");
        }
        // Where a browser really goes: the URL as normalised.
        let verdict = allowed.validate(raw, app).map(|_| ());
        match RedirectUri::parse(url.as_str(), app) {
            Ok(normalised) => {
                let normalised_verdict = allowed.validate(normalised.as_str(), app).map(|_| ());
                if verdict.is_ok() {
                    assert!(normalised_verdict.is_ok(), "{raw:?} allowed, but its normal form {url} is not");
                }
                if verdict == Err(RedirectError::NotAllowed) {
                    assert!(normalised_verdict.is_err(), "{raw:?} refused, but its normal form {url} passes");
                }
            }
            // A normal form we would refuse outright: then the written form must not have been allowed.
            Err(_) => assert!(verdict.is_err(), "{raw:?} allowed, its normal form {url} is refused"),
        }
    }
});
