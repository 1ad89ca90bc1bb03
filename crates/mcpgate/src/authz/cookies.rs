//! The cookies the authorization server sets: `__Host-` prefixed and `Secure` when the issuer is
//! https (plain names on loopback http, where browsers refuse `Secure`), always HttpOnly and
//! SameSite=Lax, path `/`.

use http::HeaderMap;
use http::header::COOKIE;

/// A cookie's full name for an issuer: `__Host-<name>` over https.
pub(crate) fn cookie_name(issuer: &str, name: &str) -> String {
    if issuer.starts_with("https://") { format!("__Host-{name}") } else { name.to_owned() }
}

/// The `Set-Cookie` value for `name=value`, living `max_age` seconds.
pub(crate) fn set_cookie(issuer: &str, name: &str, value: &str, max_age: u64) -> String {
    let secure = if issuer.starts_with("https://") { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(issuer, name)
    )
}

/// The value of cookie `name` (already prefixed) in the request, if sent exactly once.
pub(crate) fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    // Two cookies of one name (one planted by a sibling domain, say) are not trusted.
    if found.next().is_some() { None } else { Some(first) }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn names_and_attributes_follow_the_scheme() {
        assert_eq!(
            set_cookie("https://auth.example.com", "mcpgate-bind", "v", 600),
            "__Host-mcpgate-bind=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set_cookie("http://127.0.0.1:8000", "b", "v", 1),
            "b=v; Path=/; Max-Age=1; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn reads_one_cookie_and_distrusts_duplicates() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(read_cookie(&headers, "b"), Some("2"));
        assert_eq!(read_cookie(&headers, "c"), None);
        headers.append(COOKIE, HeaderValue::from_static("b=3"));
        assert_eq!(read_cookie(&headers, "b"), None);
    }
}
